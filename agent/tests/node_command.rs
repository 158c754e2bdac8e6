//! `solyx-agent node` as an operator runs it: it refuses a bad declared
//! file with the place of the error, serves the node over gRPC (TCP and a
//! Unix socket) and `/metrics`, and stops cleanly on SIGTERM with a Watch
//! still open.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use solyx::node::NodeClient;

fn temp(name: &str, body: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("solyx-node-cmd-{}-{name}", std::process::id()));
    std::fs::write(&p, body).unwrap();
    p
}

/// A loopback port free at the time of the call.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn a_bad_declared_file_stops_the_agent_with_its_place() {
    let file = temp("bad.yaml", "cpus: 16\npower_watts: lots\n");
    let o = Command::new(env!("CARGO_BIN_EXE_solyx-agent"))
        .args(["node", "--grpc", "127.0.0.1:0", "--declare"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    let place = format!("{}:2:", file.display());
    assert!(err.contains(&place) && err.contains("power_watts"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_node_and_stops_on_sigterm_with_a_watch_open() {
    let file = temp("good.yaml", "site: site-a\ncpus: 12\n");
    let grpc = free_port();
    let metrics = free_port();
    let socket = std::env::temp_dir().join(format!("solyx-node-cmd-{}.sock", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_solyx-agent"))
        .args(["node", "--node-poll", "100ms"])
        .args([
            "--grpc",
            &grpc.to_string(),
            "--metrics",
            &metrics.to_string(),
        ])
        .arg("--unix")
        .arg(&socket)
        .arg("--declare")
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the "listening" line.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "agent exited");
    }

    let mut client = NodeClient::connect(&grpc.to_string()).await.unwrap();
    let node = client.get().await.unwrap();
    assert_eq!(node.site, "site-a");
    assert_eq!(node.cpu.unwrap().cores, 12);
    let over_unix = NodeClient::connect(&format!("unix:{}", socket.display()))
        .await
        .unwrap()
        .get()
        .await
        .unwrap();
    assert_eq!(over_unix.name, node.name);
    let mut watch = client.watch().await.unwrap();
    assert!(watch.next().await.unwrap().is_ok());

    let body = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(metrics).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    assert!(
        body.contains("solyx_node_cpu_cores{source=\"declared\"} 12"),
        "{body}"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the agent did not stop within 5 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed");
    // The open Watch ends instead of hanging.
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = watch.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the Watch did not end");
    let _ = std::fs::remove_file(&file);
}
