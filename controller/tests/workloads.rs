//! The orchestrator inside the controller, over real HTTP on 127.0.0.1:
//! placement of a ring all-reduce job on the leaf-spine topology, refusal
//! of a gang that cannot fit, jobs and allocations across a restart of
//! `solyx api serve`, and a node change reported by a real `solyx-agent
//! node` process reaching `GET /v1/nodes`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup is a failed test

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use solyx::api::auth::{Auth, TokenSource};
use solyx::api::{self, ApiServer, ApiState};
use solyx::metrics::Metrics;
use solyx::state::StateStore;
use solyx::topology::Topology;
use solyx::workloads::{self, WorkloadsConfig};
use tempfile::TempDir;

const OPERATOR: &str = "operator-token-0123456789";

/// A fresh directory under the system temporary directory, removed on
/// drop.
fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("solyx-wl-{tag}-"))
        .tempdir()
        .unwrap()
}

/// topologies/leaf-spine.yaml (2 spines, 4 leaves, 2 hosts per leaf) with
/// every host declaring 32 CPUs, 256 GiB and four A100s, and its agent
/// address moved to a Unix socket in `dir` that nobody serves.
fn leaf_spine_with_nodes(dir: &TempDir) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../topologies/leaf-spine.yaml"
    ))
    .unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("  address: 127.0.0.1:") {
            if rest.parse::<u32>().is_ok_and(|p| p >= 50007) {
                let sock = dir.path().join(format!("agent-{rest}.sock"));
                out.push_str(&format!("  address: unix:{}\n", sock.display()));
                out.push_str(
                    "  node: { cpus: 32, memory: 256GiB, \
                     gpus: [{ model: A100, count: 4, memory: 80GiB }] }\n",
                );
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    let path = dir.path().join("leaf-spine.yaml");
    std::fs::write(&path, out).unwrap();
    path
}

/// The API with the orchestrator, served by the library on port 0.
struct Api {
    server: ApiServer,
    base: String,
    http: reqwest::Client,
}

fn serve_in_process(topology: &Path, db: &Path) -> Api {
    let topo = Topology::load(topology).unwrap();
    let (orchestrator, _feed) = workloads::start(&WorkloadsConfig::new(db), &topo).unwrap();
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(StateStore::ephemeral().unwrap());
    let auth =
        Arc::new(Auth::load(TokenSource::Inline(format!("operator ci {OPERATOR}\n"))).unwrap());
    let state = ApiState::new(store, auth, metrics).with_orchestrator(orchestrator);
    let server = api::spawn("127.0.0.1:0".parse().unwrap(), api::router(state), None).unwrap();
    Api {
        base: format!("http://{}", server.local_addr()),
        server,
        http: reqwest::Client::new(),
    }
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(OPERATOR);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        call(&self.http, &self.base, method, path, body).await
    }
}

fn ring_job(name: &str, replicas: u32) -> Value {
    json!({
        "name": name,
        "tenant": "team-a",
        "tasks": [{
            "name": "worker", "replicas": replicas, "cpus": 8, "memory_mib": 65536,
            "gpus": 1, "gpu_model": "A100",
            "traffic": {"pattern": "ring_allreduce", "bytes_per_step": 1u64 << 30,
                        "step_time_ms": 500}
        }]
    })
}

/// The leaf of each host of topologies/leaf-spine.yaml.
fn leaf_of(host: &str) -> &'static str {
    match host {
        "h1" | "h2" => "leaf1",
        "h3" | "h4" => "leaf2",
        "h5" | "h6" => "leaf3",
        "h7" | "h8" => "leaf4",
        other => panic!("{other} is not a host of leaf-spine.yaml"),
    }
}

fn nodes_of(placements: &Value) -> Vec<String> {
    placements
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["node"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_ring_allreduce_job_is_placed_under_one_leaf() {
    let dir = temp_dir("ring");
    let topo = leaf_spine_with_nodes(&dir);
    let api = serve_in_process(&topo, &dir.path().join("orchestrator.db"));
    // Eight workers of one GPU: two hosts' worth, and one leaf has two.
    for name in ["ring-a", "ring-b"] {
        let (s, job) = api
            .call(Method::POST, "/v1/jobs", Some(ring_job(name, 8)))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{job}");
        assert_eq!(job["state"], "running", "{job}");
        let id = job["id"].as_str().unwrap();
        let (s, placements) = api
            .call(Method::GET, &format!("/v1/placements?job={id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let nodes = nodes_of(&placements);
        assert_eq!(nodes.len(), 8, "{placements}");
        let leaves: std::collections::BTreeSet<&str> = nodes.iter().map(|n| leaf_of(n)).collect();
        assert_eq!(leaves.len(), 1, "{name} spans {leaves:?}: {placements}");
        let p0 = &placements[0];
        assert!(p0["explanation"].as_str().unwrap().contains("leaf"), "{p0}");
        assert!(p0["cost_breakdown"]["comm"].is_number(), "{p0}");
        println!("{name}: {nodes:?} under {leaves:?}");
    }
    // The two jobs did not share a host.
    let (_, all) = api.call(Method::GET, "/v1/placements", None).await;
    let per_node = nodes_of(&all)
        .into_iter()
        .fold(BTreeMap::<String, u32>::new(), |mut m, n| {
            *m.entry(n).or_default() += 1;
            m
        });
    assert!(per_node.values().all(|&c| c <= 4), "{per_node:?}");
    // Nodes show what is taken and by whom: one GPU per task placed there.
    let (_, listed) = api.call(Method::GET, "/v1/nodes", None).await;
    for node in listed.as_array().unwrap() {
        let name = node["name"].as_str().unwrap();
        let tasks = per_node.get(name).copied().unwrap_or(0);
        let gpus = &node["accelerators"][0];
        assert_eq!(
            gpus["free"].as_u64().unwrap(),
            gpus["count"].as_u64().unwrap() - u64::from(tasks),
            "{node}"
        );
        let holders = node["allocations"].as_array().unwrap();
        assert_eq!(holders.is_empty(), tasks == 0, "{node}");
    }
    api.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_gang_that_cannot_fit_is_refused_and_changes_nothing() {
    let dir = temp_dir("gang");
    let topo = leaf_spine_with_nodes(&dir);
    let api = serve_in_process(&topo, &dir.path().join("orchestrator.db"));
    let (s, _) = api
        .call(Method::POST, "/v1/jobs", Some(ring_job("small", 4)))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, nodes_before) = api.call(Method::GET, "/v1/nodes", None).await;
    let (_, jobs_before) = api.call(Method::GET, "/v1/jobs", None).await;
    let (_, placements_before) = api.call(Method::GET, "/v1/placements", None).await;

    // 8 hosts x 4 GPUs = 32, 4 taken: 40 one-GPU workers cannot all run.
    let (s, v) = api
        .call(Method::POST, "/v1/jobs", Some(ring_job("too-big", 40)))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["details"]["field"], "tasks[0]", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("of 40 tasks fit"),
        "{v}"
    );
    // A GPU model no node has is refused naming the field.
    let mut h100 = ring_job("h100", 2);
    h100["tasks"][0]["gpu_model"] = json!("H100");
    let (s, v) = api.call(Method::POST, "/v1/jobs", Some(h100)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["details"]["field"], "tasks[0].gpu_model", "{v}");
    // A traffic pattern without its size, too.
    let mut no_bytes = ring_job("nobytes", 2);
    no_bytes["tasks"][0]["traffic"]["bytes_per_step"] = json!(0);
    let (s, v) = api.call(Method::POST, "/v1/jobs", Some(no_bytes)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        v["details"]["field"], "tasks[0].traffic.bytes_per_step",
        "{v}"
    );

    assert_eq!(
        api.call(Method::GET, "/v1/nodes", None).await.1,
        nodes_before
    );
    assert_eq!(api.call(Method::GET, "/v1/jobs", None).await.1, jobs_before);
    assert_eq!(
        api.call(Method::GET, "/v1/placements", None).await.1,
        placements_before
    );
    // The name of the refused job is still free.
    let (s, v) = api
        .call(Method::POST, "/v1/jobs", Some(ring_job("too-big", 8)))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    api.server.stop().await.unwrap();
}

/// `solyx api serve` as a child process, ended with SIGTERM on drop.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(topology: &Path, db_dir: &TempDir) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_solyx"))
            .args([
                "api",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--insecure-no-auth",
            ])
            .arg("--db")
            .arg(db_dir.path().join("state.db"))
            .arg("--topology")
            .arg(topology)
            .arg("--orchestrator-db")
            .arg(db_dir.path().join("orchestrator.db"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("http://"),
            "no address on stdout: {line:?}"
        );
        Self {
            child,
            base: line.trim().to_string(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        call(&reqwest::Client::new(), &self.base, method, path, body).await
    }

    /// Jobs, placements and nodes.
    async fn views(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for p in ["/v1/jobs", "/v1/placements", "/v1/nodes"] {
            out.push(self.call(Method::GET, p, None).await.1);
        }
        out
    }

    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.terminate();
    }
}

#[tokio::test]
async fn jobs_and_allocations_survive_a_restart_of_the_api() {
    let dir = temp_dir("restart");
    let topo = leaf_spine_with_nodes(&dir);
    let serve = Serve::start(&topo, &dir);
    let (s, job) = serve
        .call(Method::POST, "/v1/jobs", Some(ring_job("keep-me", 6)))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{job}");
    let before = serve.views().await;
    serve.stop();

    let serve = Serve::start(&topo, &dir);
    let after = serve.views().await;
    assert_eq!(after, before);
    let free: u64 = after[2]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["cpus_free"].as_u64().unwrap())
        .sum();
    assert_eq!(
        free,
        8 * 32 - 6 * 8,
        "the six workers still hold their CPUs"
    );
    // The job's name is still taken, and new jobs take what is left.
    let (s, _) = serve
        .call(Method::POST, "/v1/jobs", Some(ring_job("keep-me", 1)))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = serve
        .call(Method::POST, "/v1/jobs", Some(ring_job("next", 26)))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["id"], "job-2");
    serve.stop();
}

/// The `solyx-agent` binary built next to this test.
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("solyx-agent");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p solyx-agent`",
        bin.display()
    );
    bin
}

#[tokio::test]
async fn a_node_change_reported_by_its_agent_is_listed_within_a_second() {
    let dir = temp_dir("agent");
    let sock = dir.path().join("h1.sock");
    let declare = dir.path().join("node.yaml");
    std::fs::write(&declare, "cpus: 8\nmemory: 16GiB\ngpus: []\n").unwrap();
    // h1's file block declares its GPUs only: CPUs and memory come from
    // the agent; h2 has no block and no agent.
    let topo = dir.path().join("topo.yaml");
    std::fs::write(
        &topo,
        format!(
            "name: two\ndefaults: {{ link: {{ bandwidth: 1Gbit, delay: 1ms }} }}\n\
             devices:\n  - {{ name: leaf1, role: fabric, device_id: 1 }}\n  \
             - name: h1\n    role: host\n    device_id: 2\n    ip: 10.0.0.1/24\n    \
             address: unix:{}\n    site: site-a\n    \
             node: {{ gpus: [{{ model: A100, count: 2 }}] }}\n  \
             - {{ name: h2, role: host, device_id: 3, ip: 10.0.0.2/24 }}\n\
             links:\n  - [leaf1:1, h1:1]\n  - [leaf1:2, h2:1]\n",
            sock.display()
        ),
    )
    .unwrap();
    let mut agent = Command::new(agent_binary())
        .args(["node", "--node-poll", "50ms", "--unix"])
        .arg(&sock)
        .arg("--declare")
        .arg(&declare)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serve = Serve::start(&topo, &dir);

    let h1 = |nodes: &Value| -> Option<Value> {
        nodes
            .as_array()?
            .iter()
            .find(|n| n["name"] == "h1")
            .cloned()
    };
    // First report: the agent's CPUs and memory, the file's GPUs.
    let deadline = Instant::now() + Duration::from_secs(10);
    let node = loop {
        let (_, nodes) = serve.call(Method::GET, "/v1/nodes", None).await;
        if let Some(n) = h1(&nodes).filter(|n| n["ready"] == true) {
            break n;
        }
        assert!(Instant::now() < deadline, "h1 never became ready: {nodes}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(node["cpus"], 8, "{node}");
    assert_eq!(node["memory_mib"], 16 * 1024, "{node}");
    assert_eq!(node["site"], "site-a", "{node}");
    assert_eq!(
        node["accelerators"][0]["model"], "A100",
        "declared GPUs win: {node}"
    );
    assert_eq!(node["accelerators"][0]["count"], 2, "{node}");

    // The operator changes the agent's declared file.
    let tmp = declare.with_extension("new");
    std::fs::write(&tmp, "cpus: 12\nmemory: 16GiB\ngpus: []\n").unwrap();
    let changed = Instant::now();
    std::fs::rename(&tmp, &declare).unwrap();
    let seen = loop {
        let (_, nodes) = serve.call(Method::GET, "/v1/nodes", None).await;
        if h1(&nodes).is_some_and(|n| n["cpus"] == 12) {
            break changed.elapsed();
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "the change did not reach GET /v1/nodes within a second: {nodes}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!("agent change visible in GET /v1/nodes after {seen:?}");

    // The agent stops: the node stays, no longer ready.
    let _ = Command::new("kill").arg(agent.id().to_string()).status();
    let _ = agent.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, nodes) = serve.call(Method::GET, "/v1/nodes", None).await;
        let n = h1(&nodes).unwrap();
        if n["ready"] == false {
            assert_eq!(n["cpus"], 12);
            break;
        }
        assert!(Instant::now() < deadline, "h1 still ready: {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    serve.stop();
}
