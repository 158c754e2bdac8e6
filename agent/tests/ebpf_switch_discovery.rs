//! Link discovery against real switches: three `solyx-agent switch`
//! processes (s1, s2, s3, each in its network namespace) wired in a
//! triangle by veths, driven by the controller's runtime
//! (`solyx::serve::Controller`, what `solyx serve` runs) over their Unix
//! sockets:
//!
//! 1. the controller pushes the pipeline, installs the LLDP punt rule,
//!    probes every port every 100 ms and learns the six directed links of
//!    the triangle; a declared link whose ports lead nowhere is reported
//!    `declared_not_seen`;
//! 2. one veth of the s2 — s3 link is set down by name: the agents report
//!    the port down (`WatchPorts`) and both directions go down sooner than
//!    three missed probes would take them, the other links stay up;
//! 3. set up again, the link comes back.
//!
//! Needs root and the eBPF object; skips otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use solyx::linkstate::{LinkEvent, LinkKey, LinkStatus};
use solyx::serve::{Controller, ServeConfig};
use switch::{can_run, ip, Pins, Topology};

const INTERVAL: Duration = Duration::from_millis(100);

/// A running `solyx-agent switch`; killed (by its PID) on drop.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(ns: &str, args: &[String], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("agent log");
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

fn mac(switch: u8, port: u8) -> [u8; 6] {
    [0x02, 0x5f, 0, 0x4d, switch, port]
}

fn key(a: u64, ap: u32, b: u64, bp: u32) -> LinkKey {
    LinkKey {
        src_device: a,
        src_port: ap,
        dst_device: b,
        dst_port: bp,
    }
}

/// The status of every link discovery knows.
fn statuses(c: &Controller) -> Vec<(LinkKey, LinkStatus)> {
    c.discovery()
        .links()
        .iter()
        .map(|d| (d.link, d.status))
        .collect()
}

/// Polls until `check` holds on the link statuses; the time it took.
async fn until(
    c: &Controller,
    timeout: Duration,
    what: &str,
    check: impl Fn(&[(LinkKey, LinkStatus)]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let s = statuses(c);
        if check(&s) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{what} within {timeout:?}: {s:#?}\ncounters {:?}",
            c.discovery().counters()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_of(s: &[(LinkKey, LinkStatus)], k: LinkKey) -> Option<LinkStatus> {
    s.iter().find(|(l, _)| *l == k).map(|(_, st)| *st)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_learns_the_triangle_and_sees_a_link_go_down() {
    if !can_run("discovery_learns_the_triangle_and_sees_a_link_go_down") {
        return;
    }
    let mut t = Topology::new("disc", "d", &["s1", "s2", "s3"]);
    t.link(("s1", "a1", mac(1, 1)), ("s2", "b1", mac(2, 1)));
    t.link(("s2", "b2", mac(2, 2)), ("s3", "c1", mac(3, 1)));
    t.link(("s3", "c2", mac(3, 2)), ("s1", "a2", mac(1, 2)));
    // Port 3 of s1 and of s3: cabled to a dangling end in the same
    // namespace, so the declared s1:3 — s3:3 link never carries a probe.
    t.link(("s1", "a3", mac(1, 3)), ("s1", "x1", mac(1, 9)));
    t.link(("s3", "c3", mac(3, 3)), ("s3", "x3", mac(3, 9)));

    let dir = TempDir(std::env::temp_dir().join(format!("sxf{}-disc", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let switches = [
        ("s1", 1u64, ["a1", "a2", "a3"]),
        ("s2", 2, ["b1", "b2", ""]),
        ("s3", 3, ["c1", "c2", "c3"]),
    ];
    let mut agents = Vec::new();
    let mut pins = Vec::new();
    let mut devices = String::new();
    for (role, id, ports) in &switches {
        let p = Pins::new(&format!("disc-{role}"));
        let socket = dir.0.join(format!("{role}.sock"));
        let mut args: Vec<String> = vec![
            "--unix".into(),
            socket.display().to_string(),
            "--device-id".into(),
            id.to_string(),
            "--instance".into(),
            p.instance.clone(),
            "--state-dir".into(),
            dir.0.join(format!("{role}-state")).display().to_string(),
        ];
        for (i, dev) in ports.iter().enumerate().filter(|(_, d)| !d.is_empty()) {
            args.push("--port".into());
            args.push(format!("{}={}", i + 1, t.dev(dev)));
        }
        agents.push(Agent::start(
            &t.ns(role),
            &args,
            &dir.0.join(format!("{role}.log")),
        ));
        pins.push(p);
        devices.push_str(&format!(
            "  - {{ name: {role}, role: fabric, device_id: {id}, address: \"unix:{}\" }}\n",
            socket.display()
        ));
    }
    let topology = dir.0.join("triangle.yaml");
    std::fs::write(
        &topology,
        format!(
            "name: triangle\ndefaults:\n  probe_interval: 100ms\ndevices:\n{devices}links:\n  \
             - [s1:1, s2:1]\n  - [s2:2, s3:1]\n  - [s3:2, s1:2]\n  - [s1:3, s3:3]\n"
        ),
    )
    .expect("topology file");

    let mut config = ServeConfig::new(&topology);
    config.p4_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../p4");
    config.collector.listen = "127.0.0.1:0".parse().expect("address");
    let controller = Controller::start(config).await.expect("controller");
    let mut events = controller.link_events();

    // 1. The six directed links of the triangle come up; the dangling
    //    declared link is reported, and nothing else is there.
    let triangle = [
        key(1, 1, 2, 1),
        key(2, 1, 1, 1),
        key(2, 2, 3, 1),
        key(3, 1, 2, 2),
        key(3, 2, 1, 2),
        key(1, 2, 3, 2),
    ];
    let learned = until(
        &controller,
        Duration::from_secs(30),
        "the triangle is up",
        |s| {
            triangle
                .iter()
                .all(|k| status_of(s, *k) == Some(LinkStatus::Up))
        },
    )
    .await;
    // Several probe rounds later, the rest is settled too.
    tokio::time::sleep(INTERVAL * 5).await;
    let s = statuses(&controller);
    let mut expected: Vec<(LinkKey, LinkStatus)> = triangle
        .iter()
        .map(|k| (*k, LinkStatus::Up))
        .chain([
            (key(1, 3, 3, 3), LinkStatus::DeclaredNotSeen),
            (key(3, 3, 1, 3), LinkStatus::DeclaredNotSeen),
        ])
        .collect();
    expected.sort_by_key(|(k, _)| *k);
    assert_eq!(
        s,
        expected,
        "agents' logs:\n{}",
        agents.iter().map(Agent::log_text).collect::<String>()
    );
    let views = controller.links();
    assert!(
        views.iter().filter(|v| v.declared).count() == 8,
        "{views:#?}"
    );

    // 2. s3's end of the s2 — s3 link goes down.
    let s3_ns = t.ns("s3");
    let c1 = t.dev("c1");
    let before = controller.discovery().counters();
    ip(&["-n", &s3_ns, "link", "set", &c1, "down"]);
    let down = until(
        &controller,
        Duration::from_secs(5),
        "s2 — s3 is down",
        |s| {
            status_of(s, key(2, 2, 3, 1)) == Some(LinkStatus::Down)
                && status_of(s, key(3, 1, 2, 2)) == Some(LinkStatus::Down)
        },
    )
    .await;
    let s = statuses(&controller);
    for k in [
        key(1, 1, 2, 1),
        key(2, 1, 1, 1),
        key(3, 2, 1, 2),
        key(1, 2, 3, 2),
    ] {
        assert_eq!(status_of(&s, k), Some(LinkStatus::Up), "{k} stays up");
    }
    // The agents report the port down (WatchPorts) and the controller
    // takes the link down at once: before three probes could have been
    // missed, which is how long the probes alone would take.
    assert!(
        down < INTERVAL * 3,
        "the link went down {down:?} after the veth: no sooner than the probes \
         would have found it (3 x {INTERVAL:?})\nagents' logs:\n{}",
        agents.iter().map(Agent::log_text).collect::<String>()
    );
    assert!(
        agents[2].log_text().contains("port link state changed"),
        "s3's agent saw its port go down: {}",
        agents[2].log_text()
    );
    let mut downs = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let LinkEvent::Down(k) = e {
            downs.push(k);
        }
    }
    downs.sort();
    assert_eq!(
        downs,
        [key(2, 2, 3, 1), key(3, 1, 2, 2)],
        "one event per direction"
    );

    // 3. Back up.
    ip(&["-n", &s3_ns, "link", "set", &c1, "up"]);
    let back = until(
        &controller,
        Duration::from_secs(10),
        "s2 — s3 is back",
        |s| {
            triangle
                .iter()
                .all(|k| status_of(s, *k) == Some(LinkStatus::Up))
        },
    )
    .await;
    let after = controller.discovery().counters();
    eprintln!(
        "discovery: triangle learned in {learned:?}; s2 — s3 down {down:?} after its veth \
         went down (interval {INTERVAL:?}); back {back:?} after it came up; \
         probes sent {} received {} over the outage window",
        after.probes_sent - before.probes_sent,
        after.probes_received - before.probes_received
    );
    controller.shutdown().await;
    drop(agents);
    drop(pins);
}
