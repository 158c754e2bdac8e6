//! `solyx serve` with everything secured and the scheduler extender on:
//! P4Runtime over mutual TLS to an agent (memory data plane) that only
//! accepts controllers its CA signed, the API over HTTPS, and the
//! Kubernetes extender answering kube-scheduler's filter verb from the
//! orchestrator's inventory (the topology's declared nodes). Certificates
//! are made here with rcgen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::certs::{ca, leaf, Ca};
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::{json, Value};
use solyx_agent::p4rt::{spawn_tcp_tls, AgentService, MemoryDataplane, ServerConfig, ServerTls};
use solyx_orchestrator::extender::ExtenderFilterResult;

/// A certificate and key (PEM) for `localhost`, signed by `ca`.
fn localhost(ca: &Ca, usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let (cert, key) = leaf(ca, "localhost", usage);
    (
        String::from_utf8(cert).unwrap(),
        String::from_utf8(key).unwrap(),
    )
}

struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let d = std::env::temp_dir().join(format!("solyx-serve-tls-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Stops the child on every way out of the test.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_over_mutual_tls_and_https_with_the_extender() {
    let dir = Dir::new();
    let ca = ca("solyx test CA");
    let ca_file = dir.file("ca.pem", &ca.pem);

    // The agent accepts only clients with a certificate from the CA.
    let (cert, key) = localhost(&ca, ExtendedKeyUsagePurpose::ServerAuth);
    let tls = ServerTls::from_pem(
        cert.clone().into_bytes(),
        key.clone().into_bytes(),
        Some(ca.pem.clone().into_bytes()),
    );
    let service = AgentService::new(ServerConfig::new(1), Arc::new(MemoryDataplane::new()));
    let agent = spawn_tcp_tls(service, "127.0.0.1:0".parse().unwrap(), tls)
        .await
        .unwrap();
    let agent_port = agent.local_addr().unwrap().port();

    // The controller's client certificate and the API's server certificate.
    let (client_cert, client_key) = localhost(&ca, ExtendedKeyUsagePurpose::ClientAuth);
    let p4rt_cert = dir.file("controller.pem", &client_cert);
    let p4rt_key = dir.file("controller.key", &client_key);
    let api_cert = dir.file("api.pem", &cert);
    let api_key = dir.file("api.key", &key);

    let topology = dir.file(
        "net.yaml",
        &format!(
            "name: tls\ndevices:\n\
             \x20 - {{ name: s1, role: fabric, device_id: 1, address: \"localhost:{agent_port}\" }}\n\
             \x20 - name: gpu1\n    role: host\n    device_id: 101\n    ip: 10.0.0.1/24\n\
             \x20   node: {{ cpus: 32, memory: 256GiB, gpus: [{{ model: A100, count: 4, memory: 80GiB }}] }}\n\
             \x20 - name: cpu1\n    role: host\n    device_id: 102\n    ip: 10.0.0.2/24\n\
             \x20   node: {{ cpus: 32, memory: 256GiB }}\n\
             links:\n  - [gpu1:1, s1:1]\n  - [cpu1:1, s1:2]\n"
        ),
    );
    let extender_port = free_port();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_solyx"))
            .current_dir(root())
            .args(["serve", "--topology"])
            .arg(&topology)
            .args(["--int-listen", "127.0.0.1:0", "--election-id", "10"])
            .args(["--api-listen", "127.0.0.1:0", "--insecure-no-auth"])
            .arg("--tls-cert")
            .arg(&api_cert)
            .arg("--tls-key")
            .arg(&api_key)
            .arg("--p4rt-tls-ca")
            .arg(&ca_file)
            .arg("--p4rt-tls-cert")
            .arg(&p4rt_cert)
            .arg("--p4rt-tls-key")
            .arg(&p4rt_key)
            .args(["--extender-listen", &format!("127.0.0.1:{extender_port}")])
            .arg("--orchestrator-db")
            .arg(dir.0.join("orchestrator.db"))
            .env("SOLYX_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    for pipe in [
        Box::new(child.0.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.0.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }

    // The device is configured over mutual TLS, and the API says where it
    // listens (https).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = Vec::new();
    let mut api = None;
    while !(api.is_some() && log.iter().any(|l: &String| l.contains("device configured"))) {
        while let Ok(line) = rx.try_recv() {
            if let Some(addr) = line.strip_prefix("https://") {
                api = Some(addr.trim().to_string());
            }
            log.push(line);
        }
        assert!(
            Instant::now() < deadline,
            "not configured over mutual TLS within 30 s:\n{}",
            log.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let port = api.unwrap().rsplit(':').next().unwrap().to_string();

    // HTTPS with the test CA as the only root.
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let devices: Value = https
        .get(format!("https://localhost:{port}/v1/devices"))
        .send()
        .await
        .expect("the API answers over HTTPS")
        .json()
        .await
        .unwrap();
    assert!(devices.to_string().contains("\"s1\""), "{devices}");
    // Plain HTTP on the same port is not served.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/v1/devices")).await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP answered"
    );

    // kube-scheduler asks which nodes fit a one-GPU pod.
    let args = json!({
        "Pod": {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": { "name": "train-0", "namespace": "ml", "annotations": {} },
            "spec": {
                "schedulerName": "solyx-scheduler",
                "containers": [{
                    "name": "worker",
                    "image": "registry.example/trainer:1.4",
                    "resources": { "requests": { "cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1" } }
                }]
            }
        },
        "Nodes": null,
        "NodeNames": ["gpu1", "cpu1", "ghost"]
    });
    let reply = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{extender_port}/scheduler/filter"))
        .json(&args)
        .send()
        .await
        .expect("the extender answers");
    assert_eq!(reply.status(), 200);
    let r: ExtenderFilterResult = reply.json().await.unwrap();
    assert_eq!(r.node_names, Some(vec!["gpu1".to_string()]), "{r:?}");
    assert!(r.failed_nodes["cpu1"].contains("gpu"), "{r:?}");
    assert!(
        r.failed_and_unresolvable_nodes["ghost"].contains("inventory"),
        "{r:?}"
    );

    // SIGTERM: a clean stop.
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::block_in_place(|| child.0.wait()).unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    assert!(
        exit.success(),
        "serve exited with {exit}:\n{}",
        log.join("\n")
    );
    agent.stop().await.unwrap();
}
