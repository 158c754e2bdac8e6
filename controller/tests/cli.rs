//! The `solyx p4rt` commands as an operator runs them, against the agent's
//! P4Runtime server: exit codes, messages that name the input, and output
//! that survives a closed pipe.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use solyx_agent::p4rt::{spawn_tcp, AgentService, MemoryDataplane, RunningServer, ServerConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn solyx(addr: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_solyx"))
        .current_dir(root())
        .env("SOLYX_P4RT_ADDR", addr)
        .env_remove("RUST_BACKTRACE")
        .args(["p4rt", "--timeout", "5"])
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn agent() -> RunningServer {
    let service = AgentService::new(ServerConfig::new(1), Arc::new(MemoryDataplane::new()));
    spawn_tcp(service, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn tmp(name: &str, body: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("solyx-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, body).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_read_and_dry_run_as_an_operator_would() {
    let server = agent().await;
    let addr = server.endpoint().to_string();
    let addr = addr.as_str();
    let p4info = "p4/solyx_fabric/solyx_fabric.p4info.txtpb";

    let o = tokio::task::block_in_place(|| solyx(addr, &["pipeline-set", "--p4info", p4info]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("solyx_fabric (v1model): Installed"),
        "{}",
        text(&o)
    );

    let o =
        tokio::task::block_in_place(|| solyx(addr, &["apply", "-f", "docs/examples/leaf1.yaml"]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("14 inserted, 1 modified, 0 deleted"),
        "{}",
        text(&o)
    );
    let o =
        tokio::task::block_in_place(|| solyx(addr, &["apply", "-f", "docs/examples/leaf1.yaml"]));
    assert!(
        text(&o).contains("0 inserted, 0 modified, 0 deleted"),
        "{}",
        text(&o)
    );

    let moved = std::fs::read_to_string(root().join("docs/examples/leaf1.yaml"))
        .unwrap()
        .replace("mpls_label: 2001", "mpls_label: 2002");
    let moved = tmp("moved.yaml", &moved);
    let o = tokio::task::block_in_place(|| {
        solyx(addr, &["apply", "--dry-run", "-f", moved.to_str().unwrap()])
    });
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("+ mpls_forward") && out.contains("0x07d2"),
        "{out}"
    );
    assert!(
        out.contains("- mpls_forward") && out.contains("0x07d1"),
        "{out}"
    );

    let o = tokio::task::block_in_place(|| solyx(addr, &["read"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("group wcmp_selector 10  members 1:3 2:1"),
        "{out}"
    );
    assert!(out.contains("-> group 10"), "{out}");

    // A closed pipe ends the command quietly.
    let mut child = Command::new(env!("CARGO_BIN_EXE_solyx"))
        .current_dir(root())
        .env("SOLYX_P4RT_ADDR", addr)
        .args(["p4rt", "read"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_file(moved);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_its_place_and_changes_nothing() {
    let server = agent().await;
    let addr = server.endpoint().to_string();
    let addr = addr.as_str();
    let p4info = "p4/solyx_fabric/solyx_fabric.p4info.txtpb";
    let o = tokio::task::block_in_place(|| solyx(addr, &["pipeline-set", "--p4info", p4info]));
    assert!(o.status.success(), "{}", text(&o));

    let empty = tmp("empty.txtpb", "");
    let o = tokio::task::block_in_place(|| {
        solyx(addr, &["pipeline-set", "--p4info", empty.to_str().unwrap()])
    });
    assert!(!o.status.success());
    assert!(text(&o).contains("is empty"), "{}", text(&o));

    let broken = tmp(
        "broken.txtpb",
        "tables {\n  preamble { id: 1 }\n  sise: 3\n}\n",
    );
    let o = tokio::task::block_in_place(|| {
        solyx(
            addr,
            &["pipeline-set", "--p4info", broken.to_str().unwrap()],
        )
    });
    assert!(!o.status.success());
    assert!(text(&o).contains("line 3"), "{}", text(&o));

    let o = tokio::task::block_in_place(|| {
        solyx(
            addr,
            &[
                "entry",
                "insert",
                "--table",
                "mpls_forward",
                "-m",
                "mpls_label=100",
                "--action",
                "mpls_forward_to",
                "-p",
                "port=512",
            ],
        )
    });
    assert!(!o.status.success());
    assert!(
        text(&o).contains("parameter \"port\"") && text(&o).contains("9 bits"),
        "{}",
        text(&o)
    );

    let empty_yaml = tmp("empty.yaml", "\n");
    let o =
        tokio::task::block_in_place(|| solyx(addr, &["apply", "-f", empty_yaml.to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(text(&o).contains("entries: []"), "{}", text(&o));

    let typo = tmp("typo.yaml", "entries:\n  - { table: mpls_forward, match: { mpls_lable: 1 }, action: mpls_forward_to, params: { port: 1 } }\n");
    let o = tokio::task::block_in_place(|| solyx(addr, &["apply", "-f", typo.to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("entries[0].match.mpls_lable"),
        "{}",
        text(&o)
    );

    let o = tokio::task::block_in_place(|| solyx("127.0.0.1", &["tables"]));
    assert!(!o.status.success());
    assert!(text(&o).contains("no port"), "{}", text(&o));

    let o = tokio::task::block_in_place(|| solyx(addr, &["--device-id", "2", "tables"]));
    assert!(!o.status.success());
    assert!(text(&o).contains("device 2"), "{}", text(&o));

    // A state the device refuses in part is applied not at all: 4100
    // entries overflow a 4096-entry table.
    let many: String = (0..4100)
        .map(|i| {
            format!(
                "  - {{ table: mpls_forward, match: {{ mpls_label: {} }}, \
                 action: mpls_forward_to, params: {{ port: 1 }} }}\n",
                16 + i
            )
        })
        .collect();
    let many = tmp("many.yaml", &format!("entries:\n{many}"));
    let o = tokio::task::block_in_place(|| solyx(addr, &["apply", "-f", many.to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("rolled back: nothing changed"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_file(many);

    let o = tokio::task::block_in_place(|| solyx(addr, &["read"]));
    assert!(
        text(&o).contains("0 entries"),
        "nothing was written: {}",
        text(&o)
    );
    for f in [empty, broken, empty_yaml, typo] {
        let _ = std::fs::remove_file(f);
    }
    server.stop().await.unwrap();
}
