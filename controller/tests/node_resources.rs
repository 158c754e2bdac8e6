//! Node resources end to end: the agent's node service and `/metrics`
//! endpoint served next to its P4Runtime server on loopback, read with the
//! controller's node client, its P4Runtime client, plain HTTP and the
//! `solyx node show` command.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup is a failed test

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use solyx::node::NodeClient;
use solyx::p4rt::{DeviceSession, SessionConfig};
use solyx_agent::node::{self, MonitorConfig, NodeAgent};
use solyx_agent::p4rt::{self, AgentService, MemoryDataplane, ServerConfig};
use solyx_p4runtime::proto::solyx::node::v1 as pb;
use solyx_p4runtime::P4InfoIndex;
use tokio::sync::oneshot;
use tonic::service::Routes;

const P4INFO: &str = include_str!("../../p4runtime/testdata/test.p4info.txtpb");

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, body: &str) -> Self {
        let p = std::env::temp_dir().join(format!("solyx-node-{}-{name}", std::process::id()));
        std::fs::write(&p, body).unwrap();
        Self(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    /// Replaces the contents at once (write + rename), as an editor or a
    /// configuration tool does.
    fn replace(&self, body: &str) {
        let tmp = self.0.with_extension("new");
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An agent as `solyx-agent switch` runs one: P4Runtime and the node
/// service on one gRPC listener, `/metrics` on another port.
struct Agent {
    addr: SocketAddr,
    node: Option<NodeAgent>,
    stop: Option<oneshot::Sender<()>>,
}

impl Agent {
    fn metrics(&self) -> SocketAddr {
        self.node.as_ref().unwrap().metrics_addr().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(n) = &self.node {
            n.service().close_streams();
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn monitor(declare: Option<&Path>) -> MonitorConfig {
    MonitorConfig {
        declare: declare.map(Path::to_path_buf),
        poll: Duration::from_millis(50),
        // No RAPL here whatever the machine: power comes from the file or
        // is unknown.
        powercap_root: PathBuf::from("/nonexistent/powercap"),
        // NVML as in production: on a machine without a driver this proves
        // that its absence is no error.
        nvml: true,
        ..MonitorConfig::default()
    }
}

async fn agent(config: MonitorConfig, heartbeat: Duration) -> Result<Agent, node::NodeError> {
    let service = AgentService::new(ServerConfig::new(1), Arc::new(MemoryDataplane::new()));
    let node = node::spawn_with(
        config,
        heartbeat,
        Some("127.0.0.1:0".parse().unwrap()),
        Some(&service),
    )
    .await?;
    let listener = p4rt::bind_tcp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Routes::new(node.service().into_grpc());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(p4rt::serve_tcp_listener_with(
        service,
        routes,
        listener,
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Agent {
        addr,
        node: Some(node),
        stop: Some(stop),
    })
}

/// MemTotal of this machine, bytes.
fn mem_total() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// GET `path` over HTTP/1.1; the status line and the body.
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

const DECLARED: &str = "\
# A testbed host declaring more than the machine has.
name: gpu-07
site: site-a
rack: r1
pod: p1
cpus: 64
gpus: [{ model: A100, count: 4, memory: 80GiB }]
accelerators: [{ kind: fpga, model: U250, count: 2, memory: 64GiB }]
power_watts: 1200
";

#[tokio::test]
async fn get_returns_declared_values_over_discovered_ones() {
    let file = TempFile::new("get.yaml", DECLARED);
    let a = agent(monitor(Some(file.path())), Duration::from_secs(10))
        .await
        .unwrap();
    let mut client = NodeClient::connect(&a.addr.to_string()).await.unwrap();
    let n = client.get().await.unwrap();

    assert_eq!(n.name, "gpu-07");
    assert_eq!(
        (n.site.as_str(), n.rack.as_str(), n.pod.as_str()),
        ("site-a", "r1", "p1")
    );
    let cpu = n.cpu.unwrap();
    assert_eq!(cpu.cores, 64);
    assert_eq!(cpu.cores_source(), pb::Source::Declared);
    assert!((0.0..=1.0).contains(&cpu.utilization));
    // Memory is not declared: the machine's own.
    let mem = n.memory.unwrap();
    assert_eq!(mem.total_bytes, mem_total());
    assert_eq!(mem.total_source(), pb::Source::Discovered);
    assert!(mem.available_bytes > 0 && mem.available_bytes <= mem.total_bytes);
    // Declared GPUs replace discovered ones, one entry per device.
    assert_eq!(n.gpus.len(), 4);
    assert!(n.gpus.iter().all(|g| g.model == "A100"
        && g.memory_bytes == 80 << 30
        && g.source() == pb::Source::Declared));
    assert_eq!(
        n.accelerators,
        vec![pb::Accelerator {
            kind: "fpga".into(),
            model: "U250".into(),
            count: 2,
            memory_bytes: 64 << 30,
        }]
    );
    let power = n.power.unwrap();
    assert_eq!(power.watts, Some(1200.0));
    assert_eq!(power.source(), pb::Source::Declared);
    assert!(n.sampled_at.is_some());

    // Without a declaration everything is discovered: no GPUs unless
    // NVML found some, power unknown (no RAPL under the test's root).
    let bare = agent(monitor(None), Duration::from_secs(10)).await.unwrap();
    let n = NodeClient::connect(&bare.addr.to_string())
        .await
        .unwrap()
        .get()
        .await
        .unwrap();
    let cpu = n.cpu.unwrap();
    assert_eq!(cpu.cores_source(), pb::Source::Discovered);
    let online = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    assert_eq!(cpu.cores as usize, online);
    assert!(n.gpus.iter().all(|g| g.source() == pb::Source::Discovered));
    assert!(n.site.is_empty());
    assert_eq!(n.power.unwrap().watts, None);
}

#[tokio::test]
async fn watch_delivers_a_change_of_the_declared_file_within_a_second() {
    let file = TempFile::new("watch.yaml", "cpus: 16\nsite: site-a\n");
    let a = agent(monitor(Some(file.path())), Duration::from_secs(30))
        .await
        .unwrap();
    let mut client = NodeClient::connect(&a.addr.to_string()).await.unwrap();
    let mut updates = client.watch().await.unwrap();

    let first = updates.next().await.unwrap().unwrap();
    assert_eq!(first.reason(), pb::node_update::Reason::Initial);
    assert_eq!(first.node.unwrap().cpu.unwrap().cores, 16);

    let changed_at = Instant::now();
    file.replace("cpus: 32\nsite: site-b\n");
    // CPU gauges of a busy machine may publish changes of their own
    // first; the declared change must arrive within a second.
    let update = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let u = updates.next().await.unwrap().unwrap();
            if u.node.as_ref().unwrap().cpu.unwrap().cores == 32 {
                return u;
            }
        }
    })
    .await
    .expect("no update within a second of the file change");
    println!("declared change delivered after {:?}", changed_at.elapsed());
    assert_eq!(update.reason(), pb::node_update::Reason::Changed);
    assert!(update.sequence > first.sequence);
    assert_eq!(update.node.unwrap().site, "site-b");

    // A refused change keeps the last valid declaration and is counted.
    file.replace("cpus: 32\nsite: site-b\nmemory: 12GB\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = client.get().await.unwrap();
    assert_eq!(n.cpu.unwrap().cores, 32);
    assert_eq!(n.memory.unwrap().total_source(), pb::Source::Discovered);
    let (_, body) = tokio::task::spawn_blocking({
        let m = a.metrics();
        move || http_get(m, "/metrics")
    })
    .await
    .unwrap();
    assert!(
        body.contains("solyx_node_declared_reload_errors_total 1"),
        "{body}"
    );
}

#[tokio::test]
async fn watch_sends_heartbeats_while_nothing_changes() {
    let file = TempFile::new("beat.yaml", "cpus: 8\n");
    // Samples further apart than the heartbeat: gauges moving on a busy
    // machine cannot keep the stream from falling quiet.
    let config = MonitorConfig {
        poll: Duration::from_secs(2),
        ..monitor(Some(file.path()))
    };
    let a = agent(config, Duration::from_millis(200)).await.unwrap();
    let mut client = NodeClient::connect(&a.addr.to_string()).await.unwrap();
    let mut updates = client.watch().await.unwrap();
    let beat = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let u = updates.next().await.unwrap().unwrap();
            if u.reason() == pb::node_update::Reason::Heartbeat {
                return u;
            }
        }
    })
    .await
    .expect("no heartbeat");
    assert_eq!(beat.node.unwrap().cpu.unwrap().cores, 8);
}

#[tokio::test]
async fn metrics_carry_node_gauges_and_p4runtime_counters_after_a_write() {
    let file = TempFile::new("metrics.yaml", DECLARED);
    let a = agent(monitor(Some(file.path())), Duration::from_secs(10))
        .await
        .unwrap();

    // A real P4Runtime session: pipeline, one entry, then the same entry
    // again (ALREADY_EXISTS).
    let session = DeviceSession::start(SessionConfig::new(a.addr.to_string(), 1, 1)).unwrap();
    session.wait_primary(Duration::from_secs(10)).await.unwrap();
    let ix = P4InfoIndex::from_text(P4INFO).unwrap();
    session
        .set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .unwrap();
    let entry = ix
        .table_entry("mpls_forward")
        .unwrap()
        .exact("mpls_label", 100u32)
        .unwrap()
        .action(
            ix.action("mpls_out")
                .unwrap()
                .param("port", 2u16)
                .unwrap()
                .param("pop", 0u8)
                .unwrap()
                .build()
                .unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
    for r in session.insert(vec![entry.clone()]).await.unwrap() {
        r.unwrap();
    }
    let again = session.insert(vec![entry]).await.unwrap();
    assert!(again[0].is_err());

    let m = a.metrics();
    let (status, body) = tokio::task::spawn_blocking(move || http_get(m, "/metrics"))
        .await
        .unwrap();
    assert!(status.contains("200"), "{status}");
    for line in [
        "solyx_node_cpu_cores{source=\"declared\"} 64",
        "solyx_node_gpus 4",
        "solyx_node_gpu_memory_total_bytes{gpu=\"3\",model=\"A100\"} 85899345920",
        "solyx_node_accelerators{kind=\"fpga\",model=\"U250\"} 2",
        "solyx_node_power_watts{method=\"declared\"} 1200",
        "solyx_node_info{node=\"gpu-07\",pod=\"p1\",rack=\"r1\",site=\"site-a\"",
        "solyx_agent_p4rt_requests_total{rpc=\"Write\"} 2",
        "solyx_agent_p4rt_requests_total{rpc=\"SetForwardingPipelineConfig\"} 1",
        "solyx_agent_p4rt_request_duration_seconds_count{rpc=\"Write\"} 2",
        "solyx_agent_p4rt_errors_total{code=\"UNKNOWN\",rpc=\"Write\"} 1",
        "solyx_agent_p4rt_writes_total{device_id=\"1\"} 2",
        "solyx_agent_p4rt_write_updates_total{device_id=\"1\",type=\"INSERT\"} 2",
        "solyx_agent_p4rt_write_update_errors_total{code=\"ALREADY_EXISTS\",device_id=\"1\"} 1",
    ] {
        assert!(body.contains(line), "missing {line:?} in:\n{body}");
    }
    assert!(body.contains("solyx_node_memory_available_bytes "));
    assert!(body.contains("solyx_node_load_average{window=\"1m\"}"));

    let (status, _) = tokio::task::spawn_blocking(move || http_get(m, "/other"))
        .await
        .unwrap();
    assert!(status.contains("404"), "{status}");
}

#[tokio::test]
async fn a_bad_declared_file_is_refused_naming_file_line_and_field() {
    let file = TempFile::new(
        "bad.yaml",
        "site: site-a\ncpus: 16\ngpus:\n  - model: A100\n    memory: 80GB\n",
    );
    let e = agent(monitor(Some(file.path())), Duration::from_secs(10))
        .await
        .err()
        .expect("refused")
        .to_string();
    let expected = format!(
        "{}:5:13: gpus[0].memory: invalid size \"80GB\"",
        file.path().display()
    );
    assert!(e.starts_with(&expected), "{e}");

    file.replace("cpus: 16\ncores: 4\n");
    let e = agent(monitor(Some(file.path())), Duration::from_secs(10))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains(":2:1: ") && e.contains("unknown field `cores`"),
        "{e}"
    );

    let missing = PathBuf::from("/nonexistent/node.yaml");
    let e = agent(monitor(Some(&missing)), Duration::from_secs(10))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("/nonexistent/node.yaml"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solyx_node_show_prints_the_table_and_json() {
    let file = TempFile::new("cli.yaml", DECLARED);
    let a = agent(monitor(Some(file.path())), Duration::from_secs(10))
        .await
        .unwrap();
    let addr = a.addr.to_string();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_solyx"))
            .args(["node", "show", &addr])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let table = tokio::task::block_in_place(|| run(&[]));
    for row in [
        "node           gpu-07",
        "site/rack/pod  site-a / r1 / p1",
        "cpu            64 cores (declared)",
        "gpu 3          A100 80.0 GiB (declared)",
        "fpga           2 x U250, 64.0 GiB each",
        "power          1200 W (declared)",
    ] {
        assert!(table.contains(row), "missing {row:?} in:\n{table}");
    }
    assert!(
        table.contains("(discovered)"),
        "memory is discovered:\n{table}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&tokio::task::block_in_place(|| run(&["--json"]))).unwrap();
    assert_eq!(json["cpu"]["cores"], 64);
    assert_eq!(json["cpu"]["cores_source"], "declared");
    assert_eq!(json["memory"]["total_source"], "discovered");
    assert_eq!(json["gpus"].as_array().unwrap().len(), 4);
    assert_eq!(json["power"]["watts"], 1200.0);

    let o = Command::new(env!("CARGO_BIN_EXE_solyx"))
        .args(["node", "show", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot connect to 127.0.0.1:1"));

    // Several agents: one line each, the unreachable one named, exit 1.
    let bare = agent(monitor(None), Duration::from_secs(10)).await.unwrap();
    let bare_addr = bare.addr.to_string();
    let o = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_solyx"))
            .args(["node", "show", &addr, &bare_addr, "127.0.0.1:1"])
            .output()
            .unwrap()
    });
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("ADDRESS") && lines[0].contains("GPUS"),
        "{out}"
    );
    let declared_row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        declared_row[..6],
        [addr.as_str(), "gpu-07", "site-a", "r1", "p1", "64"],
        "{out}"
    );
    assert!(
        lines[1].contains("4xA100")
            && lines[1].contains("2xU250 fpga")
            && lines[1].ends_with("1200 W"),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&bare_addr) && lines[2].contains(" - "),
        "{out}"
    );
    assert!(
        lines[3].starts_with("127.0.0.1:1") && lines[3].contains("unreachable"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 of 3 agents could not be read"));
}
