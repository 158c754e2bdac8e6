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

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use solyx::topology::Mac;

fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?;
    let bin = dir.join("solyx-agent");
    bin.exists().then_some(bin)
}

fn can_run() -> Option<PathBuf> {
    let reason = if !nix::unistd::Uid::effective().is_root() {
        "needs root (BPF programs, network namespaces)".to_string()
    } else if !solyx_agent::ebpf::is_built() {
        "the agent was built without eBPF programs".to_string()
    } else {
        match agent_binary() {
            Some(bin) => return Some(bin),
            None => "no solyx-agent binary next to solyx: run `cargo build -p solyx-agent`".into(),
        }
    };
    assert!(
        std::env::var("SOLYX_REQUIRE_ROOT").as_deref() != Ok("1"),
        "SOLYX_REQUIRE_ROOT=1 but {reason}"
    );
    let _ = writeln!(std::io::stderr(), "skipped serve_failover: {reason}");
    None
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let handle = File::open(format!("/run/netns/{ns}")).expect("open netns");
                nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("netns thread panicked")
    })
}

/// Namespaces, veths, pins and a temp dir; removed by name on drop.
struct Lab {
    pid: u32,
    namespaces: Vec<String>,
    veths: Vec<(String, String)>,
    pins: Vec<String>,
    dir: PathBuf,
}

impl Lab {
    fn new(roles: &[&str]) -> Self {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("sxl{pid}-serve"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Self {
            pid,
            namespaces: Vec::new(),
            veths: Vec::new(),
            pins: Vec::new(),
            dir,
        };
        for r in roles {
            let ns = lab.ns(r);
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            lab.namespaces.push(ns);
        }
        lab
    }

    fn ns(&self, role: &str) -> String {
        format!("sxl{}-{role}", self.pid)
    }

    fn dev(&self, end: &str) -> String {
        format!("sxl{}{end}", self.pid % 100_000)
    }

    /// A veth between `a` (in `role_a`, MAC `mac_a`) and `b`.
    fn link(
        &mut self,
        (role_a, a, mac_a): (&str, &str, Mac),
        (role_b, b, mac_b): (&str, &str, Mac),
    ) {
        let (ns_a, ns_b) = (self.ns(role_a), self.ns(role_b));
        let (dev_a, dev_b) = (self.dev(a), self.dev(b));
        ip(&[
            "link",
            "add",
            &dev_a,
            "address",
            &mac_a.to_string(),
            "netns",
            &ns_a,
            "type",
            "veth",
            "peer",
            "name",
            &dev_b,
            "address",
            &mac_b.to_string(),
            "netns",
            &ns_b,
        ]);
        self.veths.push((ns_a.clone(), dev_a.clone()));
        for (ns, dev) in [(&ns_a, &dev_a), (&ns_b, &dev_b)] {
            let sysctl = format!("net.ipv6.conf.{dev}.disable_ipv6=1");
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-q", "-w", &sysctl])
                .output();
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (ns, dev) in &self.veths {
            let _ = Command::new("ip")
                .args(["-n", ns, "link", "del", dev])
                .output();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for p in &self.pins {
            let _ = solyx_agent::ebpf::remove_instance(
                Path::new(solyx_agent::ebpf::DEFAULT_PIN_ROOT),
                p,
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process killed (by its PID) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_programs_real_agents_and_reroutes_around_a_failed_link() {
    let Some(agent) = can_run() else { return };
    let mut lab = Lab::new(&["s1", "s2", "h1", "h2"]);
    let port = Mac::for_port;
    lab.link(("h1", "h1", Mac::for_device(101)), ("s1", "a1", port(1, 1)));
    lab.link(("s1", "a2", port(1, 2)), ("s2", "b1", port(2, 1)));
    lab.link(("s1", "a3", port(1, 3)), ("s2", "b2", port(2, 2)));
    lab.link(("s2", "b3", port(2, 3)), ("h2", "h2", Mac::for_device(102)));
    // Hosts: an address, a gateway the switch's port MAC stands for (the
    // fabric answers no ARP), a route to the other host's subnet.
    for (role, dev, cidr, gw, gw_mac, other) in [
        (
            "h1",
            "h1",
            "10.0.1.1/24",
            "10.0.1.254",
            port(1, 1),
            "10.0.2.0/24",
        ),
        (
            "h2",
            "h2",
            "10.0.2.2/24",
            "10.0.2.254",
            port(2, 3),
            "10.0.1.0/24",
        ),
    ] {
        let (ns, dev) = (lab.ns(role), lab.dev(dev));
        ip(&["-n", &ns, "addr", "add", cidr, "dev", &dev]);
        ip(&[
            "-n",
            &ns,
            "neigh",
            "replace",
            gw,
            "lladdr",
            &gw_mac.to_string(),
            "dev",
            &dev,
            "nud",
            "permanent",
        ]);
        ip(&["-n", &ns, "route", "replace", other, "via", gw, "dev", &dev]);
    }

    let mut agents = Vec::new();
    let mut devices = String::new();
    for (role, kind, id, ports) in [
        ("s1", "switch", 1u64, vec!["a1", "a2", "a3"]),
        ("s2", "switch", 2, vec!["b1", "b2", "b3"]),
        ("h1", "host", 101, vec!["h1"]),
        ("h2", "host", 102, vec!["h2"]),
    ] {
        let instance = format!("sxl{}-{role}", lab.pid);
        let _ = solyx_agent::ebpf::remove_instance(
            Path::new(solyx_agent::ebpf::DEFAULT_PIN_ROOT),
            &instance,
        );
        lab.pins.push(instance.clone());
        let socket = lab.dir.join(format!("{role}.sock"));
        let mut cmd = Command::new(&agent);
        cmd.args([
            kind,
            "--netns",
            &lab.ns(role),
            "--device-id",
            &id.to_string(),
        ])
        .arg("--unix")
        .arg(&socket)
        .args(["--instance", &instance])
        .arg("--state-dir")
        .arg(lab.dir.join(format!("{role}-state")));
        for (i, p) in ports.iter().enumerate() {
            cmd.args(["--port", &format!("{}={}", i + 1, lab.dev(p))]);
        }
        let log = File::create(lab.dir.join(format!("{role}.log"))).unwrap();
        cmd.env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        agents.push(Proc(cmd.spawn().expect("start solyx-agent")));
        let role_kind = if kind == "switch" { "fabric" } else { "host" };
        let addr = match role {
            "h1" => ", ip: 10.0.1.1/24",
            "h2" => ", ip: 10.0.2.2/24",
            _ => "",
        };
        devices.push_str(&format!(
            "  - {{ name: {role}, role: {role_kind}, device_id: {id}{addr}, address: \"unix:{}\" }}\n",
            socket.display()
        ));
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

    let mut serve = Command::new(env!("CARGO_BIN_EXE_solyx"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["serve", "--topology"])
        .arg(&topology)
        .args([
            "--int-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--insecure-no-auth",
            "--telemetry-period-ms",
            "200",
        ])
        .env("SOLYX_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = serve.stdout.take().unwrap();
    let stderr = serve.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
    }
    let serve = Proc(serve);
    let mut api = String::new();
    BufReader::new(stdout).read_line(&mut api).unwrap();
    let api = api.trim().trim_start_matches("http://").to_string();
    let log_text = || log.lock().unwrap().join("\n");

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
        ["s1", "s2", "h1", "h2"]
            .iter()
            .map(|r| std::fs::read_to_string(lab.dir.join(format!("{r}.log"))).unwrap_or_default())
            .collect::<String>()
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
