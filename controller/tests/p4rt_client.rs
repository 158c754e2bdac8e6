//! The controller's P4Runtime client end to end, over real gRPC, against the
//! Solyx agent's P4Runtime server (with its memory-only data plane, which
//! forwards nothing but applies and counts every change it is given).

#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::sync::Arc;
use std::time::Duration;

use solyx::p4rt::{
    Backoff, ClientError, DeviceSession, Mastership, PipelineOutcome, SessionConfig, WriteOptions,
};
use solyx_agent::p4rt::{
    spawn_tcp, spawn_unix, AgentService, MemoryDataplane, PacketIn, RunningServer, ServerConfig,
};
use solyx_p4runtime::entity::normalize;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

const P4INFO: &str = include_str!("../../p4runtime/testdata/test.p4info.txtpb");
const WAIT: Duration = Duration::from_secs(10);

fn index() -> P4InfoIndex {
    P4InfoIndex::from_text(P4INFO).expect("test P4Info")
}

struct Device {
    server: RunningServer,
    dataplane: Arc<MemoryDataplane>,
}

async fn device(device_id: u64) -> Device {
    let dataplane = Arc::new(MemoryDataplane::new());
    let service = AgentService::new(ServerConfig::new(device_id), dataplane.clone());
    let server = spawn_tcp(service, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("server");
    Device { server, dataplane }
}

fn config(d: &Device, device_id: u64, election_id: u128) -> SessionConfig {
    let mut c = SessionConfig::new(d.server.endpoint().to_string(), device_id, election_id);
    c.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    c
}

async fn primary(d: &Device, device_id: u64, election_id: u128) -> DeviceSession {
    let s = DeviceSession::start(config(d, device_id, election_id)).expect("session");
    s.wait_primary(WAIT).await.expect("primary");
    s
}

async fn with_pipeline(d: &Device, election_id: u128) -> (DeviceSession, P4InfoIndex) {
    let s = primary(d, 1, election_id).await;
    let ix = index();
    s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .expect("pipeline");
    (s, ix)
}

fn mpls(ix: &P4InfoIndex, label: u32, port: u16) -> p4::Entity {
    let a = ix
        .action("mpls_out")
        .unwrap()
        .param("port", port)
        .unwrap()
        .param("pop", 0u8)
        .unwrap();
    ix.table_entry("mpls_forward")
        .unwrap()
        .exact("mpls_label", label)
        .unwrap()
        .action(a.build().unwrap())
        .unwrap()
        .build()
        .unwrap()
}

fn member(ix: &P4InfoIndex, id: u32, port: u16) -> p4::Entity {
    let a = ix
        .action("set_next_hop")
        .unwrap()
        .param("port", port)
        .unwrap();
    let a = a
        .param("dmac", [2u8, 0, 0, 0, 0, id as u8])
        .unwrap()
        .build()
        .unwrap();
    p4::Entity {
        entity: Some(p4::entity::Entity::ActionProfileMember(
            ix.profile_member("wcmp_selector", id, a).unwrap(),
        )),
    }
}

fn group(ix: &P4InfoIndex, id: u32, members: &[(u32, i32)]) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::ActionProfileGroup(
            ix.profile_group("wcmp_selector", id, members).unwrap(),
        )),
    }
}

fn all_ok(results: Vec<Result<(), solyx::p4rt::UpdateError>>) {
    for (i, r) in results.into_iter().enumerate() {
        if let Err(e) = r {
            panic!("update {i} failed: {e}");
        }
    }
}

fn sorted(mut v: Vec<p4::Entity>) -> Vec<p4::Entity> {
    for e in &mut v {
        normalize(e);
    }
    v.sort_by_key(prost::Message::encode_to_vec);
    v
}

#[tokio::test]
async fn pipeline_push_is_skipped_when_the_device_already_runs_it() {
    let d = device(1).await;
    let s = primary(&d, 1, 10).await;
    assert_eq!(
        s.device_cookie().await.unwrap(),
        None,
        "a new device has no pipeline"
    );
    let ix = index();
    assert_eq!(
        s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
            .await
            .unwrap(),
        PipelineOutcome::Installed
    );
    assert_eq!(
        s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
            .await
            .unwrap(),
        PipelineOutcome::AlreadyInstalled
    );
    let got = s.get_pipeline().await.unwrap().expect("pipeline");
    assert_eq!(got.p4info.as_ref(), Some(ix.p4info()));
    assert_eq!(s.index().unwrap().tables.len(), ix.tables.len());
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn every_match_kind_reads_back_equal_to_what_was_written() {
    let d = device(1).await;
    let (s, ix) = with_pipeline(&d, 10).await;
    let punt = || ix.action("punt").unwrap().build().unwrap();
    let entities = vec![
        member(&ix, 1, 1),
        member(&ix, 2, 2),
        group(&ix, 100, &[(1, 3), (2, 1)]),
        mpls(&ix, 100, 2),
        ix.table_entry("ipv4_route")
            .unwrap()
            .lpm("ipv4_dst", std::net::Ipv4Addr::new(10, 0, 2, 0), 24)
            .unwrap()
            .group(100)
            .unwrap()
            .build()
            .unwrap(),
        ix.table_entry("ipv4_route")
            .unwrap()
            .lpm("ipv4_dst", std::net::Ipv4Addr::new(10, 0, 3, 0), 24)
            .unwrap()
            .member(2)
            .unwrap()
            .build()
            .unwrap(),
        ix.table_entry("acl")
            .unwrap()
            .ternary("eth_type", 0x0800u16, 0xffffu16)
            .unwrap()
            .ternary(
                "ipv4_dst",
                std::net::Ipv4Addr::new(10, 0, 0, 0),
                std::net::Ipv4Addr::new(255, 0, 0, 0),
            )
            .unwrap()
            .priority(10)
            .action(punt())
            .unwrap()
            .build()
            .unwrap(),
        ix.table_entry("port_filter")
            .unwrap()
            .range("l4_dport", 4791u16, 4800u16)
            .unwrap()
            .optional("ip_proto", 17u8)
            .unwrap()
            .priority(5)
            .action(punt())
            .unwrap()
            .build()
            .unwrap(),
    ];
    all_ok(s.insert(entities.clone()).await.unwrap());

    let tables: Vec<p4::Entity> = s
        .read_all_tables()
        .await
        .unwrap()
        .into_iter()
        .map(|t| p4::Entity {
            entity: Some(p4::entity::Entity::TableEntry(t)),
        })
        .collect();
    let written_tables: Vec<p4::Entity> = entities
        .iter()
        .filter(|e| matches!(e.entity, Some(p4::entity::Entity::TableEntry(_))))
        .cloned()
        .collect();
    assert_eq!(
        sorted(tables),
        sorted(written_tables),
        "tables read back as written"
    );

    let profile = p4::Entity {
        entity: Some(p4::entity::Entity::ActionProfileGroup(
            p4::ActionProfileGroup {
                action_profile_id: ix.action_profiles.by_name("wcmp_selector").unwrap().id,
                ..Default::default()
            },
        )),
    };
    let groups = s.read(vec![profile]).await.unwrap();
    assert_eq!(
        groups,
        vec![sorted(vec![group(&ix, 100, &[(1, 3), (2, 1)])]).remove(0)]
    );

    let one = s
        .read_table(ix.tables.by_name("mpls_forward").unwrap().id)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn per_update_errors_come_back_one_per_update_in_order() {
    let d = device(1).await;
    let (s, ix) = with_pipeline(&d, 10).await;
    all_ok(s.insert(vec![mpls(&ix, 1, 1)]).await.unwrap());
    let results = s
        .insert(vec![
            mpls(&ix, 2, 1),
            mpls(&ix, 1, 1), // already there
            mpls(&ix, 3, 1),
            ix.table_entry("ipv4_route")
                .unwrap()
                .lpm("ipv4_dst", std::net::Ipv4Addr::new(10, 9, 0, 0), 16)
                .unwrap()
                .group(999) // no such group
                .unwrap()
                .build()
                .unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(
        results[1].as_ref().unwrap_err().code,
        tonic::Code::AlreadyExists
    );
    assert_eq!(results[3].as_ref().unwrap_err().code, tonic::Code::NotFound);
    assert_eq!(
        s.read_table(ix.tables.by_name("mpls_forward").unwrap().id)
            .await
            .unwrap()
            .len(),
        3
    );
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_large_batch_of_failures_still_reports_every_update() {
    let d = device(1).await;
    let (s, ix) = with_pipeline(&d, 10).await;
    // 1000 routes to a group that does not exist: every update fails, and
    // the errors must arrive as per-update results, not a transport error.
    let routes: Vec<_> = (0..1000u32)
        .map(|i| {
            ix.table_entry("ipv4_route")
                .unwrap()
                .lpm("ipv4_dst", (10u32 << 24) | (i << 8), 24)
                .unwrap()
                .group(77)
                .unwrap()
                .build()
                .unwrap()
        })
        .collect();
    let results = s.insert(routes).await.unwrap();
    assert_eq!(results.len(), 1000);
    for r in &results {
        assert_eq!(r.as_ref().unwrap_err().code, tonic::Code::NotFound);
    }
    assert!(
        results[0].as_ref().unwrap_err().message.contains("77"),
        "{:?}",
        results[0]
    );
    assert!(s.is_primary(), "the session survives");
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn writes_are_batched_and_all_arrive() {
    let d = device(1).await;
    let mut cfg = config(&d, 1, 10);
    cfg.write = WriteOptions {
        batch_size: 300,
        ..WriteOptions::default()
    };
    let s = DeviceSession::start(cfg).unwrap();
    s.wait_primary(WAIT).await.unwrap();
    let ix = index();
    s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .unwrap();
    let entries: Vec<_> = (0..1000u32)
        .map(|l| mpls(&ix, l + 16, (l % 8) as u16))
        .collect();
    let results = s.insert(entries).await.unwrap();
    assert_eq!(results.len(), 1000);
    all_ok(results);
    assert_eq!(s.read_all_tables().await.unwrap().len(), 1000);
    // The table holds 1024: the 25th extra entry is refused, the others not.
    let more: Vec<_> = (0..25u32).map(|l| mpls(&ix, 5000 + l, 1)).collect();
    let results = s.insert(more).await.unwrap();
    assert!(results[..24].iter().all(Result::is_ok));
    assert_eq!(
        results[24].as_ref().unwrap_err().code,
        tonic::Code::ResourceExhausted
    );
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn the_highest_election_id_is_primary_and_others_notice() {
    let d = device(1).await;
    let a = primary(&d, 1, 10).await;
    let b = DeviceSession::start(config(&d, 1, 5)).unwrap();
    let m = b
        .wait_for(WAIT, "backup", |m| matches!(m, Mastership::Backup { .. }))
        .await
        .unwrap();
    assert_eq!(m, Mastership::Backup { primary: Some(10) });
    let ix = index();
    a.set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .unwrap();
    let err = b.insert(vec![mpls(&ix, 1, 1)]).await.unwrap_err();
    assert!(
        matches!(err, ClientError::NotPrimary { device_id: 1, .. }),
        "{err}"
    );

    // A higher ID takes over: the old primary notices it lost.
    let c = primary(&d, 1, 20).await;
    a.wait_for(WAIT, "loss of primary", |m| {
        *m == Mastership::Backup { primary: Some(20) }
    })
    .await
    .unwrap();
    // The primary leaves: the next highest (a, 10) takes over.
    c.close();
    drop(c);
    a.wait_primary(WAIT).await.unwrap();
    all_ok(a.insert(vec![mpls(&ix, 7, 1)]).await.unwrap());
    a.close();
    b.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_reconnects_after_the_device_restarts() {
    let dir = std::env::temp_dir().join(format!("solyx-reconnect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent.sock");
    let start = || {
        let service = AgentService::new(ServerConfig::new(1), Arc::new(MemoryDataplane::new()));
        spawn_unix(service, &path).expect("unix server")
    };
    let server = start();
    let mut cfg = SessionConfig::new(format!("unix:{}", path.display()), 1, 10);
    cfg.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    let s = DeviceSession::start(cfg).unwrap();
    s.wait_primary(WAIT).await.unwrap();
    assert_eq!(s.primary_epoch(), 1);
    let ix = index();
    s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .unwrap();
    let desired = vec![mpls(&ix, 1, 1), mpls(&ix, 2, 2)];
    assert_eq!(s.reconcile(&desired).await.unwrap().inserted, 2);

    server.stop().await.unwrap();
    s.wait_for(WAIT, "disconnect", |m| *m == Mastership::Disconnected)
        .await
        .unwrap();
    let server = start();
    s.wait_primary(WAIT).await.unwrap();
    assert_eq!(
        s.primary_epoch(),
        2,
        "a new primary epoch tells the controller to reconcile"
    );
    // The restarted device lost everything: push and reconcile again.
    assert_eq!(
        s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
            .await
            .unwrap(),
        PipelineOutcome::Installed
    );
    let report = s.reconcile(&desired).await.unwrap();
    assert_eq!(
        (report.inserted, report.modified, report.deleted),
        (2, 0, 0)
    );
    s.close();
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn reconcile_writes_only_the_difference_and_a_restart_writes_nothing() {
    let d = device(1).await;
    let (s, ix) = with_pipeline(&d, 10).await;
    all_ok(
        s.insert(vec![
            member(&ix, 1, 1),
            mpls(&ix, 1, 1),
            mpls(&ix, 2, 2),
            mpls(&ix, 3, 3),
        ])
        .await
        .unwrap(),
    );
    // Desired: 1 unchanged, 2 to another port, 3 gone, 4 new, member 1 gone.
    let desired = vec![mpls(&ix, 1, 1), mpls(&ix, 2, 9), mpls(&ix, 4, 4)];
    let r = s.reconcile(&desired).await.unwrap();
    assert_eq!((r.inserted, r.modified, r.deleted), (1, 1, 1), "{r:?}");
    assert!(r.failed.is_empty());
    let read = s.read_all_tables().await.unwrap();
    let got = sorted(
        read.into_iter()
            .map(|t| p4::Entity {
                entity: Some(p4::entity::Entity::TableEntry(t)),
            })
            .collect(),
    );
    assert_eq!(got, sorted(desired.clone()));

    // A controller restart: a new session reconciles and writes nothing.
    s.close();
    drop(s);
    let applied = d.dataplane.changes_applied();
    let s = primary(&d, 1, 11).await;
    assert_eq!(
        s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
            .await
            .unwrap(),
        PipelineOutcome::AlreadyInstalled
    );
    let r = s.reconcile(&desired).await.unwrap();
    assert_eq!((r.inserted, r.modified, r.deleted), (0, 0, 0));
    assert_eq!(
        d.dataplane.changes_applied(),
        applied,
        "the data plane saw no change"
    );
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_desired_state_with_duplicates_or_dangling_references_writes_nothing() {
    let d = device(1).await;
    let (s, ix) = with_pipeline(&d, 10).await;
    all_ok(
        s.insert(vec![mpls(&ix, 1, 1), mpls(&ix, 2, 2)])
            .await
            .unwrap(),
    );
    let applied = d.dataplane.changes_applied();

    let err = s
        .reconcile(&[mpls(&ix, 5, 1), mpls(&ix, 5, 2)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("entities 0 and 1"), "{err}");
    let err = s
        .reconcile(&[member(&ix, 1, 1), group(&ix, 10, &[(1, 1), (9, 1)])])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("member 9"), "{err}");

    assert_eq!(
        d.dataplane.changes_applied(),
        applied,
        "nothing was written"
    );
    assert_eq!(s.read_all_tables().await.unwrap().len(), 2);
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn packet_out_reaches_the_port_and_packet_in_carries_its_port() {
    let d = device(1).await;
    let (s, _) = with_pipeline(&d, 10).await;
    let mut outs = d.dataplane.packet_outs();
    s.packet_out_named(b"hello port 3".to_vec(), &[("egress_port", &3u16)])
        .await
        .unwrap();
    let out = tokio::time::timeout(WAIT, outs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (out.egress_port, out.payload.as_slice()),
        (3, &b"hello port 3"[..])
    );

    let err = s
        .packet_out_named(vec![0], &[("egress_port", &600u16)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("egress_port"), "{err}");

    let mut ins = s.packet_ins();
    let delivered = d.dataplane.inject_packet_in(PacketIn {
        ingress_port: 5,
        payload: b"probe".to_vec(),
    });
    assert_eq!(delivered, 1, "one primary stream receives it");
    let pkt = tokio::time::timeout(WAIT, ins.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pkt.payload, b"probe");
    let named = s
        .index()
        .unwrap()
        .decode_packet_metadata("packet_in", &pkt.metadata);
    assert_eq!(named[0], ("ingress_port".to_string(), vec![5]));
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn counters_and_direct_counters_are_read() {
    let d = device(1).await;
    let (s, ix) = with_pipeline(&d, 10).await;
    all_ok(
        s.insert(vec![mpls(&ix, 1, 1), mpls(&ix, 2, 1)])
            .await
            .unwrap(),
    );
    let cells = s
        .read_counter(ix.counters.by_name("port_rx").unwrap().id, None)
        .await
        .unwrap();
    assert_eq!(cells.len(), 512, "one cell per index");
    let one = s
        .read_counter(ix.counters.by_name("port_rx").unwrap().id, Some(7))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].index.unwrap().index, 7);
    let direct = s
        .read_direct_counters(ix.tables.by_name("mpls_forward").unwrap().id)
        .await
        .unwrap();
    assert_eq!(direct.len(), 2, "one per entry");
    s.close();
    d.server.stop().await.unwrap();
}

#[tokio::test]
async fn many_devices_share_one_runtime() {
    let mut devices = Vec::new();
    for id in 1..=16u64 {
        devices.push((id, device(id).await));
    }
    let ix = index();
    let mut sessions = Vec::new();
    for (id, d) in &devices {
        sessions.push(DeviceSession::start(config(d, *id, 1)).unwrap());
    }
    for s in &sessions {
        s.wait_primary(WAIT).await.unwrap();
        s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
            .await
            .unwrap();
        all_ok(
            s.insert(vec![mpls(&ix, s.device_id() as u32, 1)])
                .await
                .unwrap(),
        );
    }
    for s in &sessions {
        let t = s.read_all_tables().await.unwrap();
        assert_eq!(t.len(), 1);
        s.close();
    }
    for (_, d) in devices {
        d.server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_wrong_device_id_is_not_primary() {
    let d = device(1).await;
    let s = DeviceSession::start(config(&d, 2, 10)).unwrap();
    let err = s
        .wait_primary(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { device_id: 2, .. }),
        "{err}"
    );
    s.close();
    d.server.stop().await.unwrap();
}
