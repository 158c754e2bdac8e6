//! A client we did not write, p4runtime-shell, against the agent's
//! P4Runtime server: it pushes the pipeline, inserts entries, reads them
//! back; then the controller's client reads the same entries.
//!
//! Needs `.venv-shell` (created by `scripts/setup.sh`) or
//! `SOLYX_SHELL_PYTHON`; skips with a message when absent, unless
//! `SOLYX_REQUIRE_PY=1`.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use solyx::p4rt::{DeviceSession, SessionConfig};
use solyx_agent::p4rt::{spawn_tcp, AgentService, MemoryDataplane, ServerConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shell_python() -> Option<PathBuf> {
    let candidates = std::env::var_os("SOLYX_SHELL_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([root().join(".venv-shell/bin/python")]);
    for p in candidates {
        let ok = std::process::Command::new(&p)
            .args(["-c", "import p4runtime_sh.shell"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(p);
        }
    }
    let msg = "p4runtime-shell not found (run scripts/setup.sh or set SOLYX_SHELL_PYTHON)";
    if std::env::var("SOLYX_REQUIRE_PY").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4runtime_shell_programs_the_agent_and_we_read_it_back() {
    let Some(python) = shell_python() else { return };
    let service = AgentService::new(ServerConfig::new(1), Arc::new(MemoryDataplane::new()));
    let server = spawn_tcp(service, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let p4info = root().join("p4runtime/testdata/test.p4info.txtpb");

    let out = tokio::process::Command::new(&python)
        .arg(root().join("controller/tests/py/shell_client.py"))
        .args(["interop", &addr, "1", "5"])
        .arg(&p4info)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "p4runtime-shell failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let read = v["read"].as_array().unwrap();
    assert_eq!(
        read.len(),
        2,
        "p4runtime-shell reads back both entries: {v}"
    );
    let mpls = read.iter().find(|e| e["table"] == "mpls_forward").unwrap();
    assert_eq!(mpls["match"]["1"], "exact", "{mpls}");
    assert_eq!(mpls["values"][0], "64", "label 100, canonical: {mpls}");
    let acl = read.iter().find(|e| e["table"] == "acl").unwrap();
    assert_eq!(acl["priority"], 5);

    // The controller sees what p4runtime-shell wrote, by name.
    let s = DeviceSession::start(SessionConfig::new(addr, 1, 1)).unwrap();
    s.wait_for(Duration::from_secs(10), "connection", |m| {
        matches!(
            m,
            solyx::p4rt::Mastership::Backup { .. } | solyx::p4rt::Mastership::Primary
        )
    })
    .await
    .unwrap();
    s.get_pipeline().await.unwrap();
    let ix = s.index().unwrap();
    assert_eq!(ix.package().1, "solyx_test");
    let entries = s
        .read_table(ix.tables.by_name("mpls_forward").unwrap().id)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let line = solyx::p4rt::show::table_entry_line(&ix, &entries[0]);
    assert!(
        line.contains("mpls_label=0x64") && line.contains("port=0x07"),
        "{line}"
    );
    s.close();
    server.stop().await.unwrap();
}
