//! `solyx-agent host` as a process: started on a namespace's port,
//! programmed over P4Runtime, stopped with SIGTERM and started again.
//!
//! 1. the first agent takes the `solyx_host` pipeline, a path member and a
//!    route; 40 datagrams are labelled and counted on the path;
//! 2. the agent stops: the pinned programs keep labelling (40 more
//!    datagrams, counted in the pinned maps);
//! 3. a second agent restores the saved state over the pinned maps: the
//!    route is there on Read, its counter and the path's carry on from 80,
//!    and 40 more make 120; the route's pinned counter slot was kept.
//!
//! Namespaces `sxf<pid>-hostrestart-…`, pins `sxh<pid>-restart`, removed
//! by name. Without root or the eBPF object the test prints why and
//! passes, unless `SOLYX_REQUIRE_ROOT=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod switch;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use solyx::p4rt::{DeviceSession, SessionConfig};
use solyx_agent::ebpf::{remove_instance, DEFAULT_PIN_ROOT};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;
use switch::{can_run, in_netns, Topology};

const HOST_P4INFO: &str = include_str!("../../p4/solyx_host/solyx_host.p4info.txtpb");
const MAC_H: [u8; 6] = [0x02, 0x5e, 0x41, 0, 0, 0x01];
const MAC_GW: [u8; 6] = [0x02, 0x5e, 0x41, 0, 0, 0xfe];

/// A running `solyx-agent host`; killed (by its PID) on drop.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(args: &[String], log: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_solyx-agent"))
            .arg("host")
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start solyx-agent host");
        Self {
            child,
            log: log.to_owned(),
        }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not stop:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// Pins and state directory, removed on drop.
struct Leftovers {
    instance: String,
    state: PathBuf,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.instance);
        let _ = std::fs::remove_dir_all(&self.state);
        let _ = std::fs::remove_file(self.state.with_extension("sock"));
        let _ = std::fs::remove_file(self.state.with_extension("log"));
    }
}

async fn session(endpoint: &str) -> DeviceSession {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = DeviceSession::start(SessionConfig::new(endpoint, 1, 10)).expect("session");
        if s.wait_primary(Duration::from_secs(2)).await.is_ok() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no primary session on {endpoint}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn counters(s: &DeviceSession, ix: &P4InfoIndex) -> (i64, i64) {
    let path = s
        .read_counter(ix.counters.by_name("path_counter").unwrap().id, Some(5))
        .await
        .expect("path counter")
        .first()
        .and_then(|c| c.data.as_ref())
        .map_or(0, |d| d.packet_count);
    let route: i64 = s
        .read_direct_counters(ix.tables.by_name("host_route").unwrap().id)
        .await
        .expect("route counter")
        .iter()
        .filter_map(|c| c.data.as_ref())
        .map(|d| d.packet_count)
        .sum();
    (path, route)
}

fn send(sender: &UdpSocket, n: usize) {
    for i in 0..n {
        sender
            .send_to(&(i as u32).to_be_bytes(), ("10.0.9.9", 4000))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_agent_restarts_with_its_state_and_keeps_labelling() {
    if !can_run("host_agent_restarts_with_its_state_and_keeps_labelling") {
        return;
    }
    let mut t = Topology::new("hostrestart", "hr", &["h", "g"]);
    t.link(("h", "h", MAC_H), ("g", "g", MAC_GW));
    t.host(
        "h",
        "h",
        "10.0.1.1/24",
        "10.0.1.254",
        MAC_GW,
        &["10.0.9.0/24"],
    );
    let instance = format!("sxh{}-restart", std::process::id());
    let state = std::env::temp_dir().join(&instance);
    let _left = Leftovers {
        instance: instance.clone(),
        state: state.clone(),
    };
    // The agent listens in the host's namespace: a Unix socket reaches it.
    let socket = state.with_extension("sock");
    let endpoint = format!("unix:{}", socket.display());
    let args: Vec<String> = [
        "--netns",
        &t.ns("h"),
        "--port",
        &format!("1={}", t.dev("h")),
        "--unix",
        &socket.display().to_string(),
        "--instance",
        &instance,
        "--state-dir",
        &state.display().to_string(),
        "--probe-rate",
        "0",
        "--flowlet-gap",
        "1ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let log = state.with_extension("log");
    let ix = P4InfoIndex::from_text(HOST_P4INFO).unwrap();
    let sender = in_netns(&t.ns("h"), || UdpSocket::bind("10.0.1.1:0").unwrap());

    // 1. First agent.
    let first = Agent::start(&args, &log);
    let s = session(&endpoint).await;
    s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .expect("solyx_host pipeline");
    let member = ix
        .action("set_path")
        .unwrap()
        .param("port", 1u16)
        .unwrap()
        .param("label", 300u32)
        .unwrap()
        .param("dmac", MAC_GW)
        .unwrap()
        .param("path_id", 5u8)
        .unwrap()
        .build()
        .unwrap();
    let entities = vec![
        p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileMember(
                ix.profile_member("path_selector", 1, member).unwrap(),
            )),
        },
        ix.table_entry("host_route")
            .unwrap()
            .lpm("ipv4_dst", Ipv4Addr::new(10, 0, 9, 0), 24)
            .unwrap()
            .member(1)
            .unwrap()
            .build()
            .unwrap(),
    ];
    switch::fabric::all_ok(s.insert(entities).await.unwrap());
    send(&sender, 40);
    assert_eq!(counters(&s, &ix).await, (40, 40));
    drop(s);

    // 2. No agent: the pinned programs keep labelling.
    assert!(first.stop().success(), "clean stop");
    send(&sender, 40);

    // 3. Second agent: state restored over the pinned maps.
    let _second = Agent::start(&args, &log);
    let s = session(&endpoint).await;
    let routes = s
        .read_table(ix.tables.by_name("host_route").unwrap().id)
        .await
        .expect("read routes");
    assert_eq!(routes.len(), 1, "the route came back");
    assert_eq!(
        counters(&s, &ix).await,
        (80, 80),
        "counted while no agent ran, kept across the restart"
    );
    send(&sender, 40);
    assert_eq!(counters(&s, &ix).await, (120, 120));
}
