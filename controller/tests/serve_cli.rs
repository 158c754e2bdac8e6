//! `solyx serve` as an operator runs it: against the agent's P4Runtime
//! server (memory data plane) it pushes the pipeline and installs the
//! discovery punt rule, then stops cleanly on SIGTERM; a bad topology file
//! is refused with the file and the place named.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use solyx::p4rt::{DeviceSession, SessionConfig};
use solyx_agent::p4rt::{spawn_tcp, AgentService, MemoryDataplane, ServerConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("solyx-serve-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_brings_a_device_up_and_stops_on_sigterm() {
    let service = AgentService::new(ServerConfig::new(1), Arc::new(MemoryDataplane::new()));
    let server = spawn_tcp(service, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let topology = tmp(
        "one.yaml",
        &format!(
            "name: one\ndevices:\n  - {{ name: s1, role: fabric, device_id: 1, switch_id: 11, address: \"{}\" }}\n",
            server.endpoint()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_solyx"))
        .current_dir(root())
        .args(["serve", "--topology"])
        .arg(&topology)
        .args(["--int-listen", "127.0.0.1:0", "--election-id", "10"])
        .env("SOLYX_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its log, line by line, on a thread.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    // A second client (a backup: lower election ID) reads what serve
    // installed: the pipeline and the LLDP punt rule.
    let reader =
        DeviceSession::start(SessionConfig::new(server.endpoint().to_string(), 1, 5)).unwrap();
    let index = solyx_p4runtime::P4InfoIndex::from_text(
        &std::fs::read_to_string(root().join("p4/solyx_fabric/solyx_fabric.p4info.txtpb")).unwrap(),
    )
    .unwrap();
    let acl = index.tables.by_name("acl").unwrap().id;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = Vec::new();
    let rule = loop {
        while let Ok(line) = rx.try_recv() {
            log.push(line);
        }
        if let Ok(entries) = reader.read_table(acl).await {
            if let Some(e) = entries.into_iter().next() {
                break e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no punt rule after 20 s; serve's log:\n{}",
            log.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rule.priority, solyx::discovery::PUNT_PRIORITY);
    let expected = solyx::discovery::punt_rule(&index).unwrap();
    let mut expected = match expected.entity {
        Some(solyx_p4runtime::proto::p4::v1::entity::Entity::TableEntry(t)) => t,
        other => panic!("{other:?}"),
    };
    let mut got = rule;
    got.counter_data = None;
    expected.counter_data = None;
    assert_eq!(got.r#match, expected.r#match);
    assert_eq!(got.action, expected.action);

    // SIGTERM: a clean stop.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::block_in_place(|| child.wait()).unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(exit.success(), "serve exited with {exit}:\n{log}");
    assert!(log.contains("INT collector listening"), "{log}");
    assert!(log.contains("device configured"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    reader.close();
    let _ = std::fs::remove_file(topology);
    server.stop().await.unwrap();
}

#[test]
fn a_bad_topology_is_refused_with_the_file_and_the_place() {
    let topology = tmp(
        "bad.yaml",
        "name: bad\ndevices:\n  - { name: s1, role: fabric, device_id: 1, address: \"127.0.0.1:1\" }\nlinks:\n  - [s1:1, s9:1]\n",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_solyx"))
        .current_dir(root())
        .args(["serve", "--topology"])
        .arg(&topology)
        .args(["--int-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&topology.display().to_string()), "{err}");
    // File, line and column, then the field.
    assert!(
        err.contains(":5:5: links[0].b: no device named \"s9\""),
        "{err}"
    );
    let _ = std::fs::remove_file(topology);
}
