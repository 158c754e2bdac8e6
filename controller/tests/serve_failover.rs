//! `solyx serve` over real processes: two `solyx-agent switch` and two
//! `solyx-agent host` processes, each in a network namespace this test
//! creates, joined by veths:
//!
//! ```text
//!                     port 2 ---- port 1
//!   h1 -1------1- s1 <                  > s2 -3------1- h2
//!                     port 3 ---- port 2
//! ```
//!
//! `solyx serve --topology F --api-listen 127.0.0.1:0` programs all four
//! from the same file: every pair of hosts gets two labelled paths with
//! even weights. UDP from h1 to h2 is delivered; then s1's end of the
//! port-2 link is set down by name. Discovery sees the link down,
//! failover moves all weight to the other path, delivery resumes, and the
//! controller logs `reroute link_down ... ms` and exports
//! `solyx_reroute_duration_seconds` on `/metrics`.
//!
//! Namespaces `sxl<pid>-<role>`, veths `sxl<pid%100000><end>`, pin
//! directories `sxl<pid>-<role>`: all removed by name. Needs root, the
//! eBPF object and the `solyx-agent` binary next to `solyx` (`cargo build
//! -p solyx-agent`); skips with the reason otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/serve_lab.rs"]
mod serve_lab;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serve_lab::{can_run, http_get, in_netns, ip, Lab, Serve};
use solyx::topology::Mac;

#[test]
fn serve_programs_real_agents_and_reroutes_around_a_failed_link() {
    let Some(agent) = can_run("serve_failover") else {
        return;
    };
    let mut lab = Lab::new("sxl", &["s1", "s2", "h1", "h2"]);
    let port = Mac::for_port;
    lab.link(("h1", "h1", Mac::for_device(101)), ("s1", "a1", port(1, 1)));
    lab.link(("s1", "a2", port(1, 2)), ("s2", "b1", port(2, 1)));
    lab.link(("s1", "a3", port(1, 3)), ("s2", "b2", port(2, 2)));
    lab.link(("s2", "b3", port(2, 3)), ("h2", "h2", Mac::for_device(102)));
    lab.host(
        "h1",
        "h1",
        "10.0.1.1/24",
        ("10.0.1.254", port(1, 1)),
        "10.0.2.0/24",
    );
    lab.host(
        "h2",
        "h2",
        "10.0.2.2/24",
        ("10.0.2.254", port(2, 3)),
        "10.0.1.0/24",
    );

    let mut agents = Vec::new();
    let mut devices = String::new();
    for (role, kind, id, ports, extra) in [
        ("s1", "switch", 1u64, &["a1", "a2", "a3"][..], ""),
        ("s2", "switch", 2, &["b1", "b2", "b3"], ""),
        ("h1", "host", 101, &["h1"], ", ip: 10.0.1.1/24"),
        ("h2", "host", 102, &["h2"], ", ip: 10.0.2.2/24"),
    ] {
        let (proc, line) = lab.agent(&agent, (role, kind, id), ports, extra);
        agents.push(proc);
        devices.push_str(&line);
    }
    let topology = lab.dir.join("two-paths.yaml");
    std::fs::write(
        &topology,
        format!(
            "name: two-paths\ndefaults:\n  probe_interval: 50ms\ndevices:\n{devices}links:\n  \
             - [h1:1, s1:1]\n  - [s1:2, s2:1]\n  - [s1:3, s2:2]\n  - [s2:3, h2:1]\n"
        ),
    )
    .unwrap();
    let serve = Serve::start(&topology, &["--telemetry-period-ms", "200"]);
    let api = serve.api.clone();
    let log_text = || serve.log_text();

    // Traffic: h1 sends numbered datagrams every millisecond; h2 records
    // which arrived.
    let received = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let receiver = in_netns(&lab.ns("h2"), || UdpSocket::bind("10.0.2.2:5000").unwrap());
    receiver
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let sender = in_netns(&lab.ns("h1"), || UdpSocket::bind("10.0.1.1:0").unwrap());
    let rx = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = receiver.recv(&mut buf) {
                    if n >= 8 {
                        let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
                        received.lock().unwrap().push(seq);
                    }
                }
            }
        })
    };
    let tx = {
        let (sent, stop) = (sent.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut payload = [0u8; 200];
                payload[..8].copy_from_slice(&seq.to_be_bytes());
                let _ = sender.send_to(&payload, "10.0.2.2:5000");
                seq += 1;
                sent.store(seq, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Every datagram of a window of 300 consecutive ones arrives.
    let delivering = |after: u64, timeout: Duration| -> Option<u64> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let got = received.lock().unwrap().clone();
            let mut run = 0u64;
            let mut prev = None;
            for s in got.iter().copied().filter(|s| *s >= after) {
                run = if prev == Some(s.wrapping_sub(1)) {
                    run + 1
                } else {
                    1
                };
                prev = Some(s);
                if run >= 300 {
                    return Some(s);
                }
            }
        }
        None
    };

    // 1. Programmed: delivery from h1 to h2.
    let first = delivering(0, Duration::from_secs(30));
    assert!(
        first.is_some(),
        "no delivery h1 -> h2 after 30 s\nserve:\n{}\nagents:\n{}",
        log_text(),
        lab.agent_logs(&["s1", "s2", "h1", "h2"])
    );
    let paths = http_get(&api, "/v1/paths?src=h1&dst=h2");
    assert!(paths.contains("\"weight\":8"), "{paths}");

    // 2. s1's end of the port-2 link goes down.
    let cut_at = sent.load(Ordering::Relaxed);
    let down = Instant::now();
    ip(&["-n", &lab.ns("s1"), "link", "set", &lab.dev("a2"), "down"]);
    let resumed = delivering(cut_at, Duration::from_secs(10));
    let waited = down.elapsed();
    assert!(
        resumed.is_some(),
        "delivery did not resume within 10 s\nserve:\n{}",
        log_text()
    );
    // Lost in between: the datagrams the dead path swallowed until the
    // controller moved the weight.
    let got = received.lock().unwrap().clone();
    let window: Vec<u64> = got.iter().copied().filter(|s| *s >= cut_at).collect();
    let lost = window
        .last()
        .map_or(0, |last| last - cut_at + 1 - window.len() as u64);
    stop.store(true, Ordering::Relaxed);
    tx.join().unwrap();
    rx.join().unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let text = log_text();
        if let Some(l) = text.lines().find(|l| l.contains("reroute link_down")) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no reroute logged:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(line.contains(" ms"), "{line}");
    let metrics = http_get(&api, "/metrics");
    let count = metrics
        .lines()
        .find(|l| l.starts_with("solyx_reroute_duration_seconds_count{reason=\"link_down\"}"))
        .unwrap_or_else(|| panic!("no reroute histogram:\n{metrics}"));
    assert!(!count.ends_with(" 0"), "{count}");
    let paths = http_get(&api, "/v1/paths?src=h1&dst=h2");
    assert!(paths.contains("\"weight\":16"), "{paths}");
    println!(
        "link down -> 300 in a row delivered again: {waited:?}; datagrams lost: {lost}; {line}"
    );
    drop(serve);
    drop(agents);
}
