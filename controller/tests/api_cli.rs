//! The `solyx` noun-verb commands against a real `solyx api serve --demo`
//! process on a loopback port, as a user runs them, and the job and node
//! commands against one serving the orchestrator over declared nodes.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_solyx");
const OPERATOR: &str = "cli-operator-token-0123456789";
const VIEWER: &str = "cli-viewer-token-0123456789";

/// A `solyx api serve` child, stopped by PID when dropped.
struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("operator ci {OPERATOR}\nviewer dash {VIEWER}\n"),
    )
    .unwrap();
    spawn(dir, &["--demo".into()])
}

/// Starts `solyx api serve` on a loopback port with the tokens and a state
/// file in `dir`, and the extra `args`; waits for the address it prints.
fn spawn(dir: tempfile::TempDir, args: &[std::ffi::OsString]) -> Server {
    let mut child = Command::new(BIN)
        .args(["api", "serve", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(dir.path().join("tokens"))
        .arg("--db")
        .arg(dir.path().join("state.db"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
    Server {
        child,
        addr: line.trim().to_string(),
        _dir: dir,
    }
}

fn solyx(server: &Server, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SOLYX_API", &server.addr)
        .env("SOLYX_TOKEN", token)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn tables_and_json_show_the_network() {
    let s = serve();
    let table = stdout(&solyx(&s, VIEWER, &["device", "list"]));
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("PRIMARY"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("spine1 ")), "{table}");

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&solyx(&s, VIEWER, &["link", "list", "--json"]))).unwrap();
    assert_eq!(
        json.as_array().unwrap().len(),
        16,
        "8 cables, both directions"
    );

    let paths = stdout(&solyx(&s, VIEWER, &["path", "show", "h1", "h4"]));
    assert!(
        paths.contains("h1 > leaf1 > spine2 > leaf2 > h4"),
        "{paths}"
    );
    let ports = stdout(&solyx(&s, VIEWER, &["port", "list", "--of", "leaf1"]));
    assert_eq!(ports.lines().count(), 5, "header and 4 ports: {ports}");
    let t = stdout(&solyx(&s, VIEWER, &["telemetry"]));
    assert!(t.contains("truncated"), "{t}");
}

#[test]
fn intents_are_added_listed_and_deleted_by_an_operator() {
    let s = serve();
    stdout(&solyx(
        &s,
        OPERATOR,
        &[
            "intent",
            "add",
            "lat1",
            "--src",
            "h1",
            "--dst",
            "h4",
            "--max-latency-us",
            "900",
        ],
    ));
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&solyx(&s, VIEWER, &["intent", "list", "--json"]))).unwrap();
    assert_eq!(list[0]["spec"]["max_latency_us"], 900, "{list}");
    let one = stdout(&solyx(&s, VIEWER, &["intent", "get", "lat1"]));
    assert!(one.contains("pending"), "{one}");

    // A viewer may not change intents; the message says who may.
    let e = stderr(&solyx(&s, VIEWER, &["intent", "delete", "lat1"]));
    assert!(e.contains("needs the operator role"), "{e}");
    stdout(&solyx(&s, OPERATOR, &["intent", "delete", "lat1"]));
    let e = stderr(&solyx(&s, VIEWER, &["intent", "get", "lat1"]));
    assert!(e.contains("no intent named \"lat1\""), "{e}");
}

#[test]
fn a_bad_intent_file_is_refused_naming_the_field() {
    let s = serve();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("intent.yaml");
    std::fs::write(
        &file,
        "name: x\nsrc: h1\ndst: h2\navoid: [spine1, nowhere]\n",
    )
    .unwrap();
    let e = stderr(&solyx(
        &s,
        OPERATOR,
        &["intent", "add", "-f", file.to_str().unwrap()],
    ));
    assert!(e.contains("avoid[1]: no device named \"nowhere\""), "{e}");
}

#[test]
fn errors_say_what_to_do() {
    let s = serve();
    let e = stderr(&solyx(&s, VIEWER, &["node", "list"]));
    assert!(e.contains("no orchestrator is attached"), "{e}");
    let o = Command::new(BIN)
        .args(["device", "list", "--api", "http://127.0.0.1:9"])
        .env_remove("SOLYX_TOKEN")
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(
        e.contains("cannot reach the Solyx API at http://127.0.0.1:9"),
        "{e}"
    );
    let o = Command::new(BIN)
        .args(["device", "list", "--api", &s.addr])
        .env_remove("SOLYX_TOKEN")
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(e.contains("--token or SOLYX_TOKEN"), "{e}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = stdout(&o);
        assert!(text.contains("intent") && text.contains("p4rt"), "{shell}");
    }
}

/// `solyx api serve` with the orchestrator over two declared GPU nodes.
fn serve_with_nodes() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("operator ci {OPERATOR}\n")).unwrap();
    let topology = dir.path().join("cluster.yaml");
    let orchestrator = dir.path().join("orchestrator.db");
    std::fs::write(
        &topology,
        "name: cli\ndevices:\n\
         \x20 - { name: leaf1, role: fabric, device_id: 1 }\n\
         \x20 - name: gpu1\n    role: host\n    device_id: 101\n    ip: 10.0.1.1/24\n\
         \x20   node: { cpus: 32, memory: 256GiB, gpus: [{ model: A100, count: 4, memory: 80GiB }] }\n\
         \x20 - name: gpu2\n    role: host\n    device_id: 102\n    ip: 10.0.1.2/24\n\
         \x20   node: { cpus: 32, memory: 256GiB, gpus: [{ model: A100, count: 4, memory: 80GiB }] }\n\
         links:\n  - [gpu1:1, leaf1:1]\n  - [gpu2:1, leaf1:2]\n",
    )
    .unwrap();
    spawn(
        dir,
        &[
            "--topology".into(),
            topology.into_os_string(),
            "--orchestrator-db".into(),
            orchestrator.into_os_string(),
        ],
    )
}

#[test]
fn a_job_is_submitted_placed_and_shown_on_its_nodes() {
    let server = serve_with_nodes();
    let job = server._dir.path().join("ring.yaml");
    std::fs::write(
        &job,
        "name: ring\ntenant: team-a\ntasks:\n\
         \x20 - name: worker\n    replicas: 6\n    cpus: 4\n    memory_mib: 16384\n    gpus: 1\n\
         \x20   gpu_model: A100\n\
         \x20   traffic: { pattern: ring_allreduce, bytes_per_step: 1073741824, step_time_ms: 500 }\n",
    )
    .unwrap();
    let out = stdout(&solyx(
        &server,
        OPERATOR,
        &["job", "submit", job.to_str().unwrap(), "--wait"],
    ));
    assert!(out.contains("job-1"), "{out}");
    assert!(out.contains("running"), "{out}");

    // Six one-GPU workers on two 4-GPU nodes: 2 GPUs free in all.
    let nodes: serde_json::Value = serde_json::from_str(&stdout(&solyx(
        &server,
        OPERATOR,
        &["node", "list", "--json"],
    )))
    .unwrap();
    let free: u64 = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["accelerators"][0]["free"].as_u64().unwrap())
        .sum();
    assert_eq!(free, 2, "{nodes}");
    let table = stdout(&solyx(&server, OPERATOR, &["node", "list"]));
    assert!(
        table.contains("ALLOCATIONS") && table.contains("job-1"),
        "{table}"
    );
    let jobs = stdout(&solyx(&server, OPERATOR, &["job", "list"]));
    assert!(jobs.contains("ring") && jobs.contains("running"), "{jobs}");

    // The same job again is refused, naming it.
    let err = stderr(&solyx(
        &server,
        OPERATOR,
        &["job", "submit", job.to_str().unwrap()],
    ));
    assert!(err.contains("ring"), "{err}");
}
