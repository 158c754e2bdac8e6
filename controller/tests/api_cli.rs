//! The `solyx` noun-verb commands against a real `solyx api serve --demo`
//! process on a loopback port, as a user runs them.

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
    let mut child = Command::new(BIN)
        .args([
            "api",
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--tokens",
        ])
        .arg(&tokens)
        .arg("--db")
        .arg(dir.path().join("state.db"))
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
