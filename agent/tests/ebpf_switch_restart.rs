//! Hitless restart of `solyx-agent switch` (the binary, in s1's network
//! namespace with `--netns`), programmed through the controller's
//! P4Runtime client over its Unix socket:
//!
//! 1. routes h1 ↔ h2, an ACL rule and INT (switch ID 11, an
//!    `int_watchlist` rule marking DSCP 0x17) are installed; a flow of
//!    numbered UDP datagrams runs h1 → h2 for the whole test;
//! 2. the agent is stopped (SIGTERM): the pinned programs keep forwarding
//!    and adding INT, datagrams keep arriving, INT probes still get their
//!    hop (the egress links are pinned too);
//! 3. the agent is started again: a Read returns exactly what was
//!    installed, the pipeline cookie is the same, reconciliation writes
//!    nothing, counters went on counting (the INT rule's too);
//! 4. no datagram of the flow was lost.
//!
//! Needs root and the eBPF object; skips otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use solyx::p4rt::{DeviceSession, SessionConfig};
use solyx_p4runtime::entity::normalize;
use solyx_p4runtime::proto::p4::v1 as p4;
use switch::fabric::{self, index, install};
use switch::int;
use switch::{can_run, in_netns, Pins, Topology};

const H1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x31, 0x01];
const S1_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x31, 0xfe];
const S1_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x32, 0xfe];
const H2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x32, 0x02];
const H1_IP: Ipv4Addr = Ipv4Addr::new(10, 79, 1, 1);
const H2_IP: Ipv4Addr = Ipv4Addr::new(10, 79, 2, 2);
/// The UDP port of the INT probes and their DSCP.
const PROBE_PORT: u16 = 6101;
const DSCP: u8 = 0x17;
const PROBES: usize = 5;

/// Sends [`PROBES`] INT probes h1 → h2 with the watched DSCP; checks that
/// every one arrived with s1's hop (switch ID 11, ports 1 → 2).
fn probe_through_s1(h1: &str, rx: &UdpSocket, what: &str) {
    in_netns(h1, || {
        let socket = int::sender(std::net::SocketAddrV4::new(H1_IP, 0), DSCP);
        for i in 0..PROBES {
            let body = format!("{what}-{i}");
            socket
                .send_to(&int::probe(8, body.as_bytes()), (H2_IP, PROBE_PORT))
                .expect("send probe");
        }
    });
    let got = int::receive(rx, PROBES, Duration::from_secs(3));
    assert_eq!(got.len(), PROBES, "{what}: every probe arrived: {got:?}");
    for probe in got {
        assert_eq!(probe.hops.len(), 1, "{what}: s1 added its hop: {probe:?}");
        assert_eq!(probe.remaining, 7, "{what}");
        assert_eq!(probe.hops[0].switch_id, Some(11), "{what}");
        let ports = probe.hops[0].level1_ports.expect("ports");
        assert_eq!((ports.ingress, ports.egress), (1, 2), "{what}");
    }
}

/// A running `solyx-agent switch`; killed (by its PID) on drop.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(ns: &str, args: &[String], log: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_solyx-agent"))
            .args(["switch", "--netns", ns])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start solyx-agent");
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// Stops the agent with SIGTERM and waits for it; its exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not stop:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the agent serves /metrics, inside the switch's namespace.
const METRICS: &str = "127.0.0.1:9464";

/// The body of `GET /metrics` at `addr`.
fn http_get(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    text
}

/// A primary session over the agent's Unix socket, once it listens.
async fn connect(socket: &Path, agent: &Agent) -> DeviceSession {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "agent did not listen:\n{}",
            agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = DeviceSession::start(SessionConfig::new(
        format!("unix:{}", socket.display()),
        1,
        10,
    ))
    .expect("session");
    s.wait_primary(fabric::WAIT).await.expect("primary");
    s
}

/// Every entity the device holds, normalised and sorted.
async fn everything(s: &DeviceSession) -> Vec<p4::Entity> {
    use p4::entity::Entity as E;
    let wildcards = vec![
        E::TableEntry(p4::TableEntry::default()),
        E::ActionProfileMember(p4::ActionProfileMember::default()),
        E::ActionProfileGroup(p4::ActionProfileGroup::default()),
    ];
    let mut all = s
        .read(
            wildcards
                .into_iter()
                .map(|e| p4::Entity { entity: Some(e) })
                .collect(),
        )
        .await
        .expect("read");
    for e in &mut all {
        normalize(e);
    }
    all.sort_by_key(|e| format!("{e:?}"));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_flows_while_the_agent_restarts_and_state_comes_back() {
    if !can_run("traffic_flows_while_the_agent_restarts_and_state_comes_back") {
        return;
    }
    let mut t = Topology::new("restart", "h", &["h1", "s1", "h2"]);
    t.link(("h1", "h1", H1), ("s1", "p1", S1_P1));
    t.link(("s1", "p2", S1_P2), ("h2", "h2", H2));
    t.host(
        "h1",
        "h1",
        "10.79.1.1/24",
        "10.79.1.254",
        S1_P1,
        &["10.79.2.0/24"],
    );
    t.host(
        "h2",
        "h2",
        "10.79.2.2/24",
        "10.79.2.254",
        S1_P2,
        &["10.79.1.0/24"],
    );
    let pins = Pins::new("restart");
    let dir = TempDir(std::env::temp_dir().join(format!("sxf{}-restart", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let socket = dir.0.join("agent.sock");
    let log = dir.0.join("agent.log");
    let declared = dir.0.join("node.yaml");
    std::fs::write(&declared, "site: site-s1\nrack: r7\n").expect("declared file");
    let args: Vec<String> = vec![
        "--port".into(),
        format!("1={}", t.dev("p1")),
        "--port".into(),
        format!("2={}", t.dev("p2")),
        "--unix".into(),
        socket.display().to_string(),
        "--instance".into(),
        pins.instance.clone(),
        "--state-dir".into(),
        dir.0.join("state").display().to_string(),
        "--declare".into(),
        declared.display().to_string(),
        "--metrics".into(),
        METRICS.into(),
    ];
    let s1_ns = t.ns("s1");

    // First run: program the switch.
    let agent = Agent::start(&s1_ns, &args, &log);
    let s = connect(&socket, &agent).await;
    let ix = index();
    s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .expect("pipeline");
    let desired = vec![
        fabric::egress_rewrite(&ix, 1, S1_P1),
        fabric::egress_rewrite(&ix, 2, S1_P2),
        fabric::member(&ix, 1, 1, H1),
        fabric::member(&ix, 2, 2, H2),
        fabric::group(&ix, 7, &[(2, 1)]),
        fabric::route_to_member(&ix, Ipv4Addr::new(10, 79, 1, 0), 24, 1),
        fabric::route_to_group(&ix, Ipv4Addr::new(10, 79, 2, 0), 24, 7),
        fabric::acl_udp(&ix, 5, 9999, 0xffff, "drop"),
        fabric::int_watch_dscp(&ix, 10, DSCP, "int_mark_int"),
        fabric::int_switch_id(&ix, 11),
    ];
    install(&s, desired[..5].to_vec()).await;
    install(&s, desired[5..9].to_vec()).await;
    fabric::all_ok(s.modify(desired[9..].to_vec()).await.expect("switch ID"));

    // The switch reports its node on the same socket, and serves
    // /metrics (in its namespace) with the writes just made.
    let node = solyx::node::NodeClient::connect(&format!("unix:{}", socket.display()))
        .await
        .expect("node service")
        .get()
        .await
        .expect("node");
    assert_eq!((node.site.as_str(), node.rack.as_str()), ("site-s1", "r7"));
    let metrics = in_netns(&s1_ns, || http_get(METRICS));
    let writes: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("solyx_agent_p4rt_writes_total{device_id=\"1\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no write count in:\n{metrics}"));
    assert!(writes >= 3, "{writes} writes counted, 3 made");
    for line in [
        "solyx_agent_p4rt_requests_total{rpc=\"SetForwardingPipelineConfig\"}",
        "solyx_node_info{node=",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in:\n{metrics}");
    }
    let installed = everything(&s).await;
    let cookie = s.device_cookie().await.expect("cookie");

    // A second agent for the same instance is refused (the instance lock).
    let second = Command::new(env!("CARGO_BIN_EXE_solyx-agent"))
        .args(["switch", "--netns", &s1_ns])
        .args(&args)
        .output()
        .expect("second agent");
    assert_eq!(second.status.code(), Some(2), "second agent refused");
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another agent runs instance"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // Also with another state directory: the pin directory is locked too.
    let mut other = args.clone();
    let value_of = |flag: &str| args.iter().position(|a| a == flag).expect("flag") + 1;
    other[value_of("--state-dir")] = dir.0.join("other-state").display().to_string();
    other[value_of("--unix")] = dir.0.join("other.sock").display().to_string();
    let third = Command::new(env!("CARGO_BIN_EXE_solyx-agent"))
        .args(["switch", "--netns", &s1_ns])
        .args(&other)
        .output()
        .expect("third agent");
    assert_eq!(
        third.status.code(),
        Some(2),
        "agent with another state dir refused"
    );
    assert!(
        String::from_utf8_lossy(&third.stderr).contains("another agent runs instance"),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );

    // Both hooks of both ports are pinned links, which outlive the agent.
    let pin_dir = Path::new(solyx_agent::ebpf::DEFAULT_PIN_ROOT).join(&pins.instance);
    for dev in ["p1", "p2"] {
        for hook in ["ingress", "egress"] {
            let link = pin_dir.join(format!("link-{hook}-{}", t.dev(dev)));
            assert!(link.exists(), "{} is pinned", link.display());
        }
    }

    // INT probes get s1's hop.
    let probes_rx = in_netns(&t.ns("h2"), || {
        UdpSocket::bind((H2_IP, PROBE_PORT)).expect("bind h2 probes")
    });
    probe_through_s1(&t.ns("h1"), &probes_rx, "before");
    let watch_before = fabric::table_hits(&s, &ix, "int_watchlist").await;
    assert_eq!(watch_before, PROBES as i64, "int_watchlist_counter");

    // A numbered flow h1 → h2, every 2 ms, for the rest of the test.
    let rx = in_netns(&t.ns("h2"), || {
        UdpSocket::bind((H2_IP, 6100)).expect("bind h2")
    });
    rx.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let mut buf = [0u8; 16];
                if let Ok((8, _)) = rx.recv_from(&mut buf) {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&buf[..8]);
                    seen.insert(u64::from_be_bytes(n));
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            seen
        })
    };
    let sender = {
        let stop = stop.clone();
        let h1 = t.ns("h1");
        std::thread::spawn(move || {
            let handle = std::fs::File::open(format!("/run/netns/{h1}")).expect("netns");
            nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let socket = UdpSocket::bind((H1_IP, 41100)).expect("bind h1");
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                socket
                    .send_to(&sent.to_be_bytes(), (H2_IP, 6100))
                    .expect("send");
                sent += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_stop = received.load(Ordering::Relaxed);
    assert!(before_stop > 50, "the flow is forwarded: {before_stop}");
    let hits_before = fabric::table_hits(&s, &ix, "ipv4_route").await;
    s.close();

    // The agent stops; forwarding does not.
    let status = agent.stop();
    assert!(status.success(), "clean stop: {status}");
    let at_stop = received.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let while_stopped = received.load(Ordering::Relaxed) - at_stop;
    assert!(
        while_stopped > 200,
        "only {while_stopped} datagrams arrived in the second without an agent; s1: {}; agent log:\n{}",
        String::from_utf8_lossy(&switch::netns_exec(&s1_ns, &["ip", "-br", "link"]).stdout),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // INT goes on without an agent: the egress links are pinned.
    probe_through_s1(&t.ns("h1"), &probes_rx, "stopped");

    // A new agent takes over: same entities, same cookie, counters on.
    let agent = Agent::start(&s1_ns, &args, &log);
    let s = connect(&socket, &agent).await;
    assert_eq!(
        s.device_cookie().await.expect("cookie"),
        cookie,
        "same pipeline cookie"
    );
    let restored = everything(&s).await;
    assert_eq!(restored, installed, "a Read returns what was installed");
    s.get_pipeline().await.expect("pipeline");
    let report = s.reconcile(&desired).await.expect("reconcile");
    assert_eq!(
        report.inserted + report.modified + report.deleted,
        0,
        "nothing to rewrite: {report:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits_after = fabric::table_hits(&s, &ix, "ipv4_route").await;
    assert!(
        hits_after > hits_before,
        "route counters kept counting across the restart: {hits_before} then {hits_after}"
    );
    probe_through_s1(&t.ns("h1"), &probes_rx, "restarted");
    let watch_after = fabric::table_hits(&s, &ix, "int_watchlist").await;
    assert_eq!(
        watch_after,
        3 * PROBES as i64,
        "the INT rule's counter kept its count and counted without an agent"
    );

    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = receiver.join().expect("receiver");
    let lost = (0..sent).filter(|n| !seen.contains(n)).count();
    eprintln!(
        "restart: {sent} datagrams sent, {} received, {lost} lost; {while_stopped} arrived in \
         the 1 s without an agent; {} entities restored; route hits {hits_before} → {hits_after}; \
         INT probes with s1's hop before, during and after the stop ({watch_after} matched)",
        seen.len(),
        restored.len()
    );
    // The tail may still be in flight when the receiver stops.
    assert!(lost <= 2, "{lost} datagrams lost across the restart");
    s.close();
    let status = agent.stop();
    assert!(status.success(), "clean stop: {status}");
}
