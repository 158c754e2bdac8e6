//! `/v1/ports` on a live controller: the topology's ports with the
//! counters the devices keep, read over P4Runtime.
//!
//! One `solyx-agent switch` and two `solyx-agent host` processes, each in a
//! network namespace this test creates, joined by veths:
//!
//! ```text
//!   h1 -1------1- s1 -2------1- h2
//! ```
//!
//! `solyx serve --topology F --api-listen 127.0.0.1:0` programs them; UDP
//! datagrams go from h1 to h2 and back through the switch's eBPF
//! pipeline. `/v1/ports` over HTTP then lists the four ports of the file,
//! up, and their counters cover at least what arrived: the switch counted
//! every datagram in on one port and out of the other
//! (`ingress_port_counter`, `egress_port_counter`), each host every
//! datagram it sent (`path_counter`). More traffic moves the counters
//! within a few read periods.
//!
//! Namespaces `sxp<pid>-<role>`, veths `sxp<pid%100000><end>`, pin
//! directories `sxp<pid>-<role>`: all removed by name. Needs root, the
//! eBPF object and the `solyx-agent` binary next to `solyx` (`cargo build
//! -p solyx-agent`); skips with the reason otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/serve_lab.rs"]
mod serve_lab;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use serve_lab::{can_run, in_netns, Lab, Serve};
use solyx::state::Port;
use solyx::topology::Mac;

/// `GET path` over HTTP/1.1: the status line and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    let out = serve_lab::http_get(addr, path);
    let status = out.lines().next().unwrap_or_default().to_string();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn ports(api: &str) -> Vec<Port> {
    let (status, body) = http_get(api, "/v1/ports");
    assert!(status.contains(" 200 "), "{status}\n{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn port<'a>(all: &'a [Port], device: &str, number: u32) -> &'a Port {
    all.iter()
        .find(|p| p.device == device && p.port == number)
        .unwrap_or_else(|| panic!("no port {device}:{number} in {all:#?}"))
}

/// Sends `n` numbered datagrams from `from` to `to` (one every 200 µs) and
/// answers how many arrived.
fn exchange(from: &UdpSocket, to: &UdpSocket, dst: &str, n: u64) -> u64 {
    let mut arrived = 0;
    let mut buf = [0u8; 2048];
    for seq in 0..n {
        let mut payload = [0u8; 300];
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        let _ = from.send_to(&payload, dst);
        std::thread::sleep(Duration::from_micros(200));
        while to.recv(&mut buf).is_ok() {
            arrived += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    while to.recv(&mut buf).is_ok() {
        arrived += 1;
    }
    arrived
}

#[test]
fn live_ports_list_the_topology_with_the_devices_counters() {
    let Some(agent) = can_run("serve_ports") else {
        return;
    };
    let mut lab = Lab::new("sxp", &["s1", "h1", "h2"]);
    let port_mac = Mac::for_port;
    lab.link(
        ("h1", "h1", Mac::for_device(101)),
        ("s1", "a1", port_mac(1, 1)),
    );
    lab.link(
        ("s1", "a2", port_mac(1, 2)),
        ("h2", "h2", Mac::for_device(102)),
    );
    let gw = |ip, port| (ip, port_mac(1, port));
    lab.host(
        "h1",
        "h1",
        "10.0.1.1/24",
        gw("10.0.1.254", 1),
        "10.0.2.0/24",
    );
    lab.host(
        "h2",
        "h2",
        "10.0.2.2/24",
        gw("10.0.2.254", 2),
        "10.0.1.0/24",
    );

    let mut agents = Vec::new();
    let mut devices = String::new();
    for (role, kind, id, ports, extra) in [
        ("s1", "switch", 1u64, &["a1", "a2"][..], ""),
        ("h1", "host", 101, &["h1"], ", ip: 10.0.1.1/24"),
        ("h2", "host", 102, &["h2"], ", ip: 10.0.2.2/24"),
    ] {
        let (proc, line) = lab.agent(&agent, (role, kind, id), ports, extra);
        agents.push(proc);
        devices.push_str(&line);
    }
    let topology = lab.dir.join("line.yaml");
    std::fs::write(
        &topology,
        format!(
            "name: line\ndefaults:\n  link: {{ bandwidth: 1Gbit }}\ndevices:\n{devices}\
             links:\n  - [h1:1, s1:1]\n  - [s1:2, h2:1]\n"
        ),
    )
    .unwrap();
    let serve = Serve::start(&topology, &[]);
    let api = serve.api.clone();
    let log_text = || serve.log_text();

    // Before any traffic: the four ports of the file, up, at the links'
    // speed.
    let listed = ports(&api);
    let mut names: Vec<String> = listed
        .iter()
        .map(|p| format!("{}:{}", p.device, p.port))
        .collect();
    names.sort();
    assert_eq!(names, ["h1:1", "h2:1", "s1:1", "s1:2"], "{listed:#?}");
    for p in &listed {
        assert!(p.up, "{p:?}");
        assert_eq!(p.speed_bps, Some(1_000_000_000), "{p:?}");
    }

    let h1 = in_netns(&lab.ns("h1"), || UdpSocket::bind("10.0.1.1:5000").unwrap());
    let h2 = in_netns(&lab.ns("h2"), || UdpSocket::bind("10.0.2.2:5000").unwrap());
    for s in [&h1, &h2] {
        s.set_nonblocking(true).unwrap();
    }
    // Wait until the controller has programmed the path both ways.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut there, mut back) = (0, 0);
    while there == 0 || back == 0 {
        assert!(
            Instant::now() < deadline,
            "no delivery between h1 and h2 after 30 s\nserve:\n{}",
            log_text()
        );
        there += exchange(&h1, &h2, "10.0.2.2:5000", 20);
        back += exchange(&h2, &h1, "10.0.1.1:5000", 20);
    }
    there += exchange(&h1, &h2, "10.0.2.2:5000", 500);
    back += exchange(&h2, &h1, "10.0.1.1:5000", 500);

    // Within a few read periods (1 s), the counters cover what arrived.
    let covers = |all: &[Port], there: u64, back: u64| {
        let (s1_1, s1_2) = (port(all, "s1", 1), port(all, "s1", 2));
        let (h1_1, h2_1) = (port(all, "h1", 1), port(all, "h2", 1));
        s1_1.counters.rx_packets >= there
            && s1_2.counters.tx_packets >= there
            && s1_2.counters.rx_packets >= back
            && s1_1.counters.tx_packets >= back
            && h1_1.counters.tx_packets >= there
            && h2_1.counters.tx_packets >= back
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let all = ports(&api);
        if covers(&all, there, back) {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "{there} datagrams h1 -> h2 and {back} back arrived, but after 10 s the \
             counters say {all:#?}\nserve:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Each datagram is 342 bytes on the wire at least (300 of payload, the
    // UDP, IPv4 and Ethernet headers; a label on the way in).
    let bytes = |n: u64| n * 342;
    let (s1_1, s1_2) = (port(&first, "s1", 1), port(&first, "s1", 2));
    assert!(s1_1.counters.rx_bytes >= bytes(there), "{s1_1:?}");
    assert!(s1_1.counters.tx_bytes >= bytes(back), "{s1_1:?}");
    assert!(s1_2.counters.rx_bytes >= bytes(back), "{s1_2:?}");
    assert!(s1_2.counters.tx_bytes >= bytes(there), "{s1_2:?}");
    for (host, sent) in [("h1", there), ("h2", back)] {
        let p = port(&first, host, 1);
        assert!(p.counters.tx_bytes >= bytes(sent), "{p:?}");
        // solyx_host counts what it sends on its paths, nothing it
        // receives.
        assert_eq!(
            (p.counters.rx_packets, p.counters.rx_bytes),
            (0, 0),
            "{p:?}"
        );
    }
    for p in &first {
        assert!(p.up, "{p:?}");
        assert_eq!(
            p.counters.drops, 0,
            "solyx_fabric counts no drops per port: {p:?}"
        );
    }

    // More traffic one way: the counters follow it.
    let more = exchange(&h1, &h2, "10.0.2.2:5000", 300);
    assert!(more > 0);
    let before = port(&first, "s1", 1).counters.rx_packets;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = ports(&api);
        let now = port(&all, "s1", 1).counters.rx_packets;
        if now >= before + more {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "s1:1 rx_packets {before} -> {now} after {more} more datagrams arrived"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, body) = http_get(&api, "/v1/ports?device=s1");
    assert!(status.contains(" 200 "), "{status}");
    let s1: Vec<Port> = serde_json::from_str(&body).unwrap();
    assert_eq!(s1.len(), 2, "{s1:#?}");
    drop(serve);
    drop(agents);
}
