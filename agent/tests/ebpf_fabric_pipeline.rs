//! The fabric ingress pipeline, frame by frame (`BPF_PROG_TEST_RUN`),
//! programmed through the controller's P4Runtime client: the output frame,
//! the verdict and the drop reason of every path the P4 program has —
//! routed (TTL and checksum, MACs), IPv4 options, TTL expired, bad
//! checksum, malformed IHL and TCP data offset, route miss, `route_drop`
//! member, one-shot action sets, member changes rewriting routes and
//! groups, unsupported EtherType, the ACL default action, and a
//! RECONCILE_AND_COMMIT that keeps routes and counters in the maps.
//!
//! The switch's namespace `lo` is port 3 (test runs enter through it);
//! p1/p2 are the egress ports. Needs root and the eBPF object; skips
//! otherwise (fails with `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::net::Ipv4Addr;
use std::time::Duration;

use aya::programs::{TestRun as _, TestRunOptions};
use solyx_agent::ebpf::common::DropReason;
use solyx_agent::ebpf::EbpfFabricDataplane;
use solyx_p4runtime::proto::p4::v1 as p4;
use switch::fabric::{self, index, install, session};
use switch::packet::ipv4_checksum;
use switch::{can_run, in_netns, Switch, Topology};

const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

const NH_A: [u8; 6] = [0x02, 0x5f, 0, 0, 0x51, 0x0a];
const NH_B: [u8; 6] = [0x02, 0x5f, 0, 0, 0x52, 0x0b];
const SMAC_1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x51, 0xfe];
const SMAC_2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x52, 0xfe];

/// An IPv4 frame: Ethernet, IPv4 with `options` (a multiple of 4 bytes),
/// then `l4` bytes; protocol `proto`; the header checksum made right.
fn ipv4_frame(dst: Ipv4Addr, ttl: u8, proto: u8, options: &[u8], l4: &[u8]) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let mut ip = vec![0u8; 20];
    ip[0] = 0x40 | ihl as u8;
    ip[2..4].copy_from_slice(&((ihl * 4 + l4.len()) as u16).to_be_bytes());
    ip[8] = ttl;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[10, 81, 0, 1]);
    ip[16..20].copy_from_slice(&dst.octets());
    ip.extend_from_slice(options);
    let c = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut frame = vec![
        0x02, 0x5f, 0, 0, 0, 0x03, 0x02, 0x5f, 0, 0, 0, 0x99, 0x08, 0x00,
    ];
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(l4);
    frame
}

/// A UDP header and payload, ports 1234 → 5678.
fn udp() -> Vec<u8> {
    let mut l4 = vec![0x04, 0xd2, 0x16, 0x2e, 0, 12, 0, 0];
    l4.extend_from_slice(b"data");
    l4
}

/// Runs the program on `frame` in namespace `ns`: verdict, output frame.
fn run(ns: &str, dp: &EbpfFabricDataplane, frame: &[u8]) -> (u32, Vec<u8>) {
    in_netns(ns, || {
        dp.with_fabric(|f| {
            let mut out = vec![0u8; frame.len() + 64];
            let result = f
                .program()
                .expect("program")
                .test_run(TestRunOptions {
                    data_in: Some(frame),
                    data_out: Some(&mut out),
                    ..TestRunOptions::default()
                })
                .expect("BPF_PROG_TEST_RUN");
            out.truncate(result.data_size_out as usize);
            (result.return_value, out)
        })
    })
}

fn drops(dp: &EbpfFabricDataplane, reason: DropReason) -> u64 {
    dp.with_fabric(|f| f.drop_count(reason).expect("drop count"))
}

/// Runs `frame`, expects a drop for `reason` (counted once more).
fn expect_drop(ns: &str, dp: &EbpfFabricDataplane, frame: &[u8], reason: DropReason) {
    let before = drops(dp, reason);
    let (verdict, _) = run(ns, dp, frame);
    assert_eq!(verdict, TC_ACT_SHOT, "{reason:?}: dropped");
    assert_eq!(drops(dp, reason), before + 1, "{reason:?}: counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_of_the_ingress_pipeline() {
    if !can_run("every_path_of_the_ingress_pipeline") {
        return;
    }
    let mut t = Topology::new("pipe", "p", &["s1", "peer"]);
    t.link(
        ("s1", "p1", SMAC_1),
        ("peer", "x1", [2, 0x5f, 0, 0, 0x61, 1]),
    );
    t.link(
        ("s1", "p2", SMAC_2),
        ("peer", "x2", [2, 0x5f, 0, 0, 0x62, 1]),
    );
    let ns = t.ns("s1");
    let s1 = start_with_lo(&t).await;
    let dp = s1.dataplane.clone();
    let s = session(&s1.endpoint(), 1).await;
    let ix = index();
    install(
        &s,
        vec![
            fabric::egress_rewrite(&ix, 1, SMAC_1),
            fabric::egress_rewrite(&ix, 2, SMAC_2),
            fabric::member(&ix, 1, 1, NH_A),
            fabric::member(&ix, 2, 2, NH_B),
            fabric::drop_member(&ix, 9),
        ],
    )
    .await;
    install(
        &s,
        vec![
            fabric::group(&ix, 4, &[(1, 1)]),
            fabric::route_to_member(&ix, Ipv4Addr::new(10, 81, 1, 0), 24, 1),
            fabric::route_to_group(&ix, Ipv4Addr::new(10, 81, 4, 0), 24, 4),
            fabric::route_to_member(&ix, Ipv4Addr::new(10, 81, 9, 0), 24, 9),
        ],
    )
    .await;

    // Routed: TTL 63, checksum still right, next hop MAC, port 1's MAC.
    let frame = ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 64, 17, &[], &udp());
    let (verdict, out) = run(&ns, &dp, &frame);
    assert_eq!(verdict, TC_ACT_REDIRECT);
    assert_eq!(&out[0..6], &NH_A);
    assert_eq!(&out[6..12], &SMAC_1);
    assert_eq!(out[22], 63);
    assert_eq!(
        ipv4_checksum(&out[14..34]),
        0,
        "checksum updated incrementally"
    );
    assert_eq!(&out[34..], &frame[34..], "payload untouched");

    // IPv4 options are covered by the checksum and skipped for the ports.
    let options = [0x01, 0x01, 0x01, 0x00]; // NOP NOP NOP EOL
    let frame = ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 9, 17, &options, &udp());
    let (verdict, out) = run(&ns, &dp, &frame);
    assert_eq!(verdict, TC_ACT_REDIRECT, "options");
    assert_eq!(ipv4_checksum(&out[14..38]), 0, "checksum over the options");

    // Drops before and in forwarding.
    expect_drop(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 1, 17, &[], &udp()),
        DropReason::Ipv4TtlExpired,
    );
    let mut bad = ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 64, 17, &[], &udp());
    bad[24] ^= 0xff;
    expect_drop(&ns, &dp, &bad, DropReason::Ipv4Checksum);
    let mut ihl4 = ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 64, 17, &[], &udp());
    ihl4[14] = 0x44;
    expect_drop(&ns, &dp, &ihl4, DropReason::Malformed);
    let mut tcp = vec![0u8; 20];
    tcp[12] = 0x40; // data offset 4
    expect_drop(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 64, 6, &[], &tcp),
        DropReason::Malformed,
    );
    expect_drop(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 82, 0, 1), 64, 17, &[], &udp()),
        DropReason::Ipv4Miss,
    );
    expect_drop(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 81, 9, 1), 64, 17, &[], &udp()),
        DropReason::RouteDrop,
    );
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0x5f, 0, 0, 0, 0x99, 0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    expect_drop(&ns, &dp, &arp, DropReason::UnsupportedEthertype);

    // A member change rewrites the route and the group that use it.
    let via_group = ipv4_frame(Ipv4Addr::new(10, 81, 4, 4), 64, 17, &[], &udp());
    let (_, out) = run(&ns, &dp, &via_group);
    assert_eq!(&out[0..6], &NH_A, "group → member 1");
    let modified = s
        .modify(vec![fabric::member(&ix, 1, 2, NH_B)])
        .await
        .expect("write");
    fabric::all_ok(modified);
    let (_, out) = run(&ns, &dp, &via_group);
    assert_eq!(
        (&out[0..6], &out[6..12]),
        (&NH_B[..], &SMAC_2[..]),
        "group rewritten"
    );
    let (_, out) = run(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 64, 17, &[], &udp()),
    );
    assert_eq!(&out[0..6], &NH_B, "route rewritten");

    // One-shot action set: the route has a group of its own.
    let set = ix
        .table_entry("ipv4_route")
        .unwrap()
        .lpm("ipv4_dst", Ipv4Addr::new(10, 81, 5, 0), 24)
        .unwrap()
        .one_shot(vec![(
            ix.action("set_next_hop")
                .unwrap()
                .param("port", 1u16)
                .unwrap()
                .param("dmac", NH_A)
                .unwrap()
                .build()
                .unwrap(),
            2,
        )])
        .unwrap()
        .build()
        .unwrap();
    install(&s, vec![set.clone()]).await;
    let (verdict, out) = run(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 81, 5, 5), 64, 17, &[], &udp()),
    );
    assert_eq!(
        (verdict, &out[0..6]),
        (TC_ACT_REDIRECT, &NH_A[..]),
        "one-shot"
    );
    fabric::all_ok(s.delete(vec![set]).await.expect("delete"));
    expect_drop(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 81, 5, 5), 64, 17, &[], &udp()),
        DropReason::Ipv4Miss,
    );
    let groups = dp.with_fabric(|f| f.tables().groups().expect("groups").len());
    assert_eq!(groups, 1, "the one-shot group went with its route");

    // The ACL default action, modified to drop: everything is denied.
    let default_drop = ix
        .table_entry("acl")
        .unwrap()
        .action(ix.action("drop").unwrap().build().unwrap())
        .unwrap()
        .as_default()
        .build()
        .unwrap();
    fabric::all_ok(s.modify(vec![default_drop]).await.expect("write"));
    expect_drop(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 64, 17, &[], &udp()),
        DropReason::AclDeny,
    );
    let read = s
        .read(vec![p4::Entity {
            entity: Some(p4::entity::Entity::DirectCounterEntry(
                p4::DirectCounterEntry {
                    table_entry: Some(p4::TableEntry {
                        table_id: fabric::table_id(&ix, "acl"),
                        is_default_action: true,
                        ..Default::default()
                    }),
                    data: None,
                },
            )),
        }])
        .await
        .expect("read the default entry's counter");
    let default_packets = match read.first().and_then(|e| e.entity.as_ref()) {
        Some(p4::entity::Entity::DirectCounterEntry(c)) => {
            c.data.as_ref().map_or(0, |d| d.packet_count)
        }
        _ => 0,
    };
    // Every frame that reached the ACL (all but the 3 dropped by the
    // parser's checks) went through its default entry.
    assert_eq!(default_packets, 12, "default entry counter");
    eprintln!("pipeline paths checked; ACL default entry counted {default_packets} packets");

    // RECONCILE_AND_COMMIT (a new cookie) keeps what is installed, in the
    // maps too: routes forward on, counters go on.
    let hits_before = fabric::table_hits(&s, &ix, "ipv4_route").await;
    let reset = ix.table_entry("acl").unwrap().as_default().build().unwrap();
    fabric::all_ok(s.modify(vec![reset]).await.expect("reset the ACL default"));
    s.set_pipeline(ix.p4info().clone(), b"v2".to_vec(), true)
        .await
        .expect("reconcile");
    let (verdict, _) = run(
        &ns,
        &dp,
        &ipv4_frame(Ipv4Addr::new(10, 81, 1, 7), 64, 17, &[], &udp()),
    );
    assert_eq!(verdict, TC_ACT_REDIRECT, "the route survived the reconcile");
    let hits_after = fabric::table_hits(&s, &ix, "ipv4_route").await;
    assert_eq!(
        hits_after,
        hits_before + 1,
        "route counters kept across the reconcile"
    );
    s.close();
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// s1 with `lo` as port 3 besides p1 and p2 (`lo` is named as is:
/// `Switch::start` would prefix it).
async fn start_with_lo(t: &Topology) -> Switch {
    use solyx_agent::ebpf::{PortSpec, SwitchPorts};
    use solyx_agent::p4rt::{spawn_tcp, AgentService, ServerConfig};
    use std::sync::Arc;
    let pins = switch::Pins::new("pipe-lo");
    let ports = SwitchPorts {
        instance: pins.instance.clone(),
        ports: vec![
            PortSpec {
                port: 1,
                interface: t.dev("p1"),
            },
            PortSpec {
                port: 2,
                interface: t.dev("p2"),
            },
            PortSpec {
                port: 3,
                interface: "lo".into(),
            },
        ],
    };
    let dataplane = Arc::new(in_netns(&t.ns("s1"), || {
        EbpfFabricDataplane::start(&ports).expect("data plane")
    }));
    let service = AgentService::new(ServerConfig::new(1), dataplane.clone());
    let server = spawn_tcp(service, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("server");
    Switch {
        server,
        dataplane,
        pins,
    }
}
