//! What `solyx serve` installs from a topology, and that a controller
//! restart rewrites nothing that is already right.
//!
//! Four agents with the memory data plane (real gRPC, real P4Runtime
//! server, no eBPF): two fabric switches joined by two parallel links and
//! two hosts, so every pair of hosts has two labelled paths.
//!
//! ```text
//!   h1 -1--1- s1 =2,3==1,2= s2 -3--1- h2
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use solyx::metrics::Metrics;
use solyx::p4rt::{DeviceSession, SessionConfig};
use solyx::serve::{Controller, ServeConfig};
use solyx::state::StateStore;
use solyx_agent::p4rt::{spawn_tcp, AgentService, MemoryDataplane, RunningServer, ServerConfig};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

async fn agent(device_id: u64) -> RunningServer {
    let service = AgentService::new(
        ServerConfig::new(device_id),
        Arc::new(MemoryDataplane::new()),
    );
    spawn_tcp(service, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn p4_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../p4")
}

fn index(pipeline: &str) -> P4InfoIndex {
    let path = p4_dir()
        .join(pipeline)
        .join(format!("{pipeline}.p4info.txtpb"));
    P4InfoIndex::from_text(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn start(topology: &Path) -> Controller {
    start_with(topology, ServeConfig::new(topology).metrics).await
}

async fn start_with(topology: &Path, metrics: Arc<Metrics>) -> Controller {
    Controller::start(serve_config(topology, metrics))
        .await
        .expect("controller")
}

fn serve_config(topology: &Path, metrics: Arc<Metrics>) -> ServeConfig {
    let mut config = ServeConfig::new(topology);
    config.metrics = metrics;
    config.p4_dir = p4_dir();
    config.collector.listen = "127.0.0.1:0".parse().unwrap();
    config.election_id = 10;
    // The memory data plane sends no probes anywhere: a long probe period
    // keeps the declared links up for the whole test.
    config.probe_interval = Some(Duration::from_secs(5));
    config
}

/// Waits until all `n` devices are reconciled.
async fn programmed_n(
    c: &Controller,
    n: usize,
) -> std::collections::BTreeMap<String, solyx::serve::control::Programmed> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = c.programmed();
        if p.len() == n {
            return p;
        }
        assert!(Instant::now() < deadline, "only {p:?} programmed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until all four devices are reconciled.
async fn programmed(
    c: &Controller,
) -> std::collections::BTreeMap<String, solyx::serve::control::Programmed> {
    programmed_n(c, 4).await
}

async fn read_all(endpoint: &str, device_id: u64, ix: &P4InfoIndex) -> Vec<p4::Entity> {
    let s = DeviceSession::start(SessionConfig::new(endpoint, device_id, 1)).unwrap();
    s.wait_for(Duration::from_secs(10), "connection", |m| {
        matches!(
            m,
            solyx::p4rt::Mastership::Backup { .. } | solyx::p4rt::Mastership::Primary
        )
    })
    .await
    .unwrap();
    let profile = ix.action_profiles.by_name("path_selector").map(|p| p.id);
    let mut want = vec![p4::Entity {
        entity: Some(p4::entity::Entity::TableEntry(p4::TableEntry::default())),
    }];
    if let Some(id) = profile {
        want.push(p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileGroup(
                p4::ActionProfileGroup {
                    action_profile_id: id,
                    ..Default::default()
                },
            )),
        });
        want.push(p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileMember(
                p4::ActionProfileMember {
                    action_profile_id: id,
                    ..Default::default()
                },
            )),
        });
    }
    let got = s.read(want).await.unwrap();
    s.close();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_programs_paths_and_a_restart_writes_nothing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let (s1, s2, h1, h2) = (
        agent(1).await,
        agent(2).await,
        agent(101).await,
        agent(102).await,
    );
    let dir = std::env::temp_dir().join(format!("solyx-serve-program-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let topology = dir.join("two-paths.yaml");
    std::fs::write(
        &topology,
        format!(
            "name: two-paths\ndevices:\n\
             \x20 - {{ name: s1, role: fabric, device_id: 1, address: \"{}\" }}\n\
             \x20 - {{ name: s2, role: fabric, device_id: 2, address: \"{}\" }}\n\
             \x20 - {{ name: h1, role: host, device_id: 101, ip: 10.0.0.1/24, address: \"{}\" }}\n\
             \x20 - {{ name: h2, role: host, device_id: 102, ip: 10.0.0.2/24, address: \"{}\" }}\n\
             links:\n  - [h1:1, s1:1]\n  - [s1:2, s2:1]\n  - [s1:3, s2:2]\n  - [s2:3, h2:1]\n",
            s1.endpoint(),
            s2.endpoint(),
            h1.endpoint(),
            h2.endpoint()
        ),
    )
    .unwrap();

    // 1. First start: everything is written.
    let metrics = Arc::new(Metrics::new());
    let c = start_with(&topology, metrics.clone()).await;
    let first = programmed(&c).await;
    for (name, p) in &first {
        assert!(p.inserted > 0 && p.failed == 0, "{name}: {p:?}");
        assert_eq!(p.inserted + p.modified, p.desired, "{name}: {p:?}");
        // The metrics count every update that reached the device.
        let written = metrics
            .p4rt_updates
            .with_label_values(&[name.as_str(), "ok"])
            .get();
        assert_eq!(written, (p.inserted + p.modified) as u64, "{name}: {p:?}");
        assert_eq!(
            metrics
                .p4rt_rpcs
                .with_label_values(&[name.as_str(), "SetForwardingPipelineConfig", "ok"])
                .get(),
            1,
            "{name}: one pipeline push"
        );
    }
    // Every period the loop counts the sessions that are up.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metrics.devices_connected.with_label_values(&["host"]).get() < 2 {
        assert!(Instant::now() < deadline, "{}", metrics.render());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metrics
            .devices_connected
            .with_label_values(&["fabric"])
            .get(),
        2
    );
    let text = metrics.render();
    assert!(
        text.contains(r#"solyx_int_reports_total{result="accepted"} 0"#),
        "{text}"
    );
    assert!(text.contains(r#"rpc="Write""#), "{text}");
    // A datagram that is no Telemetry Report is counted by its reason.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&[0xff; 3], c.collector().local_addr()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rejected: u64 = metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("solyx_int_reports_total{") && !l.contains("accepted"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if rejected == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", metrics.render());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hx = index("solyx_host");
    let fx = index("solyx_fabric");
    let held = read_all(h1.endpoint(), 101, &hx).await;
    let groups: Vec<&p4::ActionProfileGroup> = held
        .iter()
        .filter_map(|e| match &e.entity {
            Some(p4::entity::Entity::ActionProfileGroup(g)) => Some(g),
            _ => None,
        })
        .collect();
    assert_eq!(groups.len(), 1, "one group towards h2: {held:#?}");
    assert_eq!(groups[0].group_id, 102);
    let weights: Vec<i32> = groups[0].members.iter().map(|m| m.weight).collect();
    assert_eq!(
        weights,
        vec![8, 8],
        "two paths, even weights summing to the selector size 16"
    );
    let route = hx.tables.by_name("host_route").unwrap().id;
    assert_eq!(
        held.iter()
            .filter(|e| matches!(&e.entity, Some(p4::entity::Entity::TableEntry(t)) if t.table_id == route))
            .count(),
        1
    );
    let mpls = fx.tables.by_name("mpls_forward").unwrap().id;
    for (server, id) in [(&s1, 1), (&s2, 2)] {
        let held = read_all(server.endpoint(), id, &fx).await;
        let labels = held
            .iter()
            .filter(|e| matches!(&e.entity, Some(p4::entity::Entity::TableEntry(t)) if t.table_id == mpls))
            .count();
        assert_eq!(labels, 4, "s{id}: two paths each way");
    }
    c.shutdown().await;

    // 2. A restart over the same devices: read, compare, write nothing.
    let c = start(&topology).await;
    let second = programmed(&c).await;
    for (name, p) in &second {
        assert_eq!(
            (p.inserted, p.modified, p.deleted, p.failed),
            (0, 0, 0, 0),
            "{name} rewritten after a restart: {p:?}"
        );
        assert_eq!(p.desired, first[name].desired);
    }
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    for s in [s1, s2, h1, h2] {
        s.stop().await.unwrap();
    }
}

/// The pipeline device `device_id` at `endpoint` holds, read back whole.
async fn pipeline_of(endpoint: &str, device_id: u64) -> p4::ForwardingPipelineConfig {
    let s = DeviceSession::start(SessionConfig::new(endpoint, device_id, 1)).unwrap();
    s.wait_for(Duration::from_secs(10), "connection", |m| {
        matches!(
            m,
            solyx::p4rt::Mastership::Backup { .. } | solyx::p4rt::Mastership::Primary
        )
    })
    .await
    .unwrap();
    let got = s.get_pipeline().await.unwrap().expect("a pipeline");
    s.close();
    got
}

/// The file's `defaults.device_config` reaches every device of that
/// pipeline as `p4_device_config`, byte for byte, and devices of other
/// pipelines get none; a restart with the same file pushes no pipeline
/// again. The store lists the file's ports from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_the_files_device_config_and_lists_the_ports() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let (s1, h1, h2) = (agent(1).await, agent(101).await, agent(102).await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bmv2")).unwrap();
    // The controller passes the file through unread: any bytes will do,
    // and enough of them to need more than one HTTP/2 frame.
    let device_config: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(dir.path().join("bmv2/fabric.json"), &device_config).unwrap();
    let topology = dir.path().join("line.yaml");
    std::fs::write(
        &topology,
        format!(
            "name: line\ndefaults:\n  device_config:\n    solyx_fabric: bmv2/fabric.json\n\
             devices:\n\
             \x20 - {{ name: s1, role: fabric, device_id: 1, address: \"{}\" }}\n\
             \x20 - {{ name: h1, role: host, device_id: 101, ip: 10.0.0.1/24, address: \"{}\" }}\n\
             \x20 - {{ name: h2, role: host, device_id: 102, ip: 10.0.0.2/24, address: \"{}\" }}\n\
             links:\n  - [h1:1, s1:1]\n  - [s1:2, h2:1]\n",
            s1.endpoint(),
            h1.endpoint(),
            h2.endpoint()
        ),
    )
    .unwrap();

    let store = Arc::new(StateStore::ephemeral().unwrap());
    let mut config = serve_config(&topology, Arc::new(Metrics::new()));
    config.store = Some(store.clone());
    let c = Controller::start(config).await.expect("controller");
    // The ports are there before any device answered.
    let ports: Vec<(String, u32, bool, Option<u64>)> = store
        .ports(None)
        .into_iter()
        .map(|p| (p.device, p.port, p.up, p.speed_bps))
        .collect();
    let gbit = Some(1_000_000_000);
    assert_eq!(
        ports,
        [
            ("h1".to_string(), 1, true, gbit),
            ("h2".to_string(), 1, true, gbit),
            ("s1".to_string(), 1, true, gbit),
            ("s1".to_string(), 2, true, gbit),
        ]
    );
    let first = programmed_n(&c, 3).await;
    assert!(first.values().all(|p| p.failed == 0), "{first:?}");
    let fabric = pipeline_of(s1.endpoint(), 1).await;
    assert!(
        fabric.p4_device_config == device_config,
        "s1 holds {} bytes of device config, not the file's {}",
        fabric.p4_device_config.len(),
        device_config.len()
    );
    for (server, id) in [(&h1, 101), (&h2, 102)] {
        let host = pipeline_of(server.endpoint(), id).await;
        assert!(
            host.p4_device_config.is_empty(),
            "h{}: {:?}",
            id - 100,
            host.cookie
        );
        assert!(host.p4info.is_some());
    }
    c.shutdown().await;

    // The cookie covers the device config: the same file again is the same
    // pipeline, and nothing is pushed.
    let metrics = Arc::new(Metrics::new());
    let c = start_with(&topology, metrics.clone()).await;
    programmed_n(&c, 3).await;
    let pushed = metrics
        .p4rt_rpcs
        .with_label_values(&["s1", "SetForwardingPipelineConfig", "ok"])
        .get();
    assert_eq!(pushed, 0, "{}", metrics.render());
    c.shutdown().await;
    for s in [s1, h1, h2] {
        s.stop().await.unwrap();
    }
}
