//! INT telemetry and link discovery agree on the links of a real fabric:
//!
//! ```text
//!   h1 ── p1 [s1] p2 ── p1 [s2] p2 ── h2
//!   INT switch IDs: s1 = 11 (device 1), s2 = 12 (device 2)
//! ```
//!
//! Two eBPF switches (in-process servers) are programmed over P4Runtime
//! with routes, the INT watchlist, their switch IDs and the discovery punt
//! rule; `solyx::discovery` learns the s1 — s2 link from LLDP probes. h1
//! sends INT probes carrying the probe payload (path label 100, sequence
//! numbers 0–9 without 4); the switches push their hops; at h2 the test
//! plays the host's INT sink (the `solyx_host` pipeline is not built yet):
//! it wraps each probe in a Telemetry Report and sends it to the
//! collector. The collector's link `1:2 -> 2:1`, from the switches'
//! real CLOCK_TAI timestamps, is the link discovery found up; the path
//! lost exactly one probe.
//!
//! Needs root and the eBPF object; skips otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use solyx::discovery::{install_punt_rule, Discovery, DiscoveryConfig};
use solyx::linkstate::{self, LinkKey, LinkStatus};
use solyx::telemetry::probe::ProbePayload;
use solyx::telemetry::{Collector, CollectorConfig};
use solyx_int::{GroupHeader, InnerPacket, IntMdBuilder, ReportBuilder, Stack, UdpHeader};
use switch::fabric::{self, index, install, session};
use switch::int::{self, Probe};
use switch::{can_run, in_netns, Switch, Topology};

const H1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x71, 0x01];
const S1_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x71, 0xfe];
const S1_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x72, 0xfe];
const S2_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x81, 0xfe];
const S2_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x82, 0xfe];
const H2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x82, 0x02];
const H1_IP: Ipv4Addr = Ipv4Addr::new(10, 83, 1, 1);
const H2_IP: Ipv4Addr = Ipv4Addr::new(10, 83, 2, 2);
const PORT: u16 = 6300;
const DSCP: u8 = 0x17;
const LABEL: u32 = 100;

/// The test in the host sink's role: the Telemetry Report a sink exports
/// for `probe` received at h2.
fn test_sink_report(probe: &Probe, sequence: u32) -> bytes::Bytes {
    let md = IntMdBuilder::new(int::INSTRUCTIONS, probe.remaining, Stack::Hops(&probe.hops));
    let mut inner = InnerPacket::udp(
        UdpHeader {
            src_port: 40000,
            dst_port: PORT,
            ..UdpHeader::default()
        },
        md,
        &probe.body,
    );
    inner.ipv4.src = H1_IP;
    inner.ipv4.dst = H2_IP;
    inner.fill_lengths().expect("lengths");
    let group = GroupHeader {
        hw_id: 0,
        sequence_number: sequence,
        node_id: u32::from(H2_IP),
    };
    let mut buf = BytesMut::new();
    ReportBuilder::new(group, inner)
        .write(&mut buf)
        .expect("report");
    buf.freeze()
}

const S1_S2: LinkKey = LinkKey {
    src_device: 1,
    src_port: 2,
    dst_device: 2,
    dst_port: 1,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int_telemetry_and_discovery_agree_on_the_link() {
    if !can_run("int_telemetry_and_discovery_agree_on_the_link") {
        return;
    }
    let mut t = Topology::new("tel", "t", &["h1", "s1", "s2", "h2"]);
    t.link(("h1", "h1", H1), ("s1", "s1p1", S1_P1));
    t.link(("s1", "s1p2", S1_P2), ("s2", "s2p1", S2_P1));
    t.link(("s2", "s2p2", S2_P2), ("h2", "h2", H2));
    t.host(
        "h1",
        "h1",
        "10.83.1.1/24",
        "10.83.1.254",
        S1_P1,
        &["10.83.2.0/24"],
    );
    t.host(
        "h2",
        "h2",
        "10.83.2.2/24",
        "10.83.2.254",
        S2_P2,
        &["10.83.1.0/24"],
    );
    let s1 = Switch::start(&t, "s1", 1, &[(1, "s1p1"), (2, "s1p2")]).await;
    let s2 = Switch::start(&t, "s2", 2, &[(1, "s2p1"), (2, "s2p2")]).await;
    let (c1, c2) = (
        session(&s1.endpoint(), 1).await,
        session(&s2.endpoint(), 2).await,
    );
    let ix = index();
    let route = Ipv4Addr::new(10, 83, 2, 0);
    let watch = fabric::int_watch_dscp(&ix, 10, DSCP, "int_mark_int");
    for (c, smac, next, id) in [(&c1, S1_P2, S2_P1, 11), (&c2, S2_P2, H2, 12)] {
        install(
            c,
            vec![
                fabric::egress_rewrite(&ix, 2, smac),
                fabric::member(&ix, 1, 2, next),
                fabric::route_to_member(&ix, route, 24, 1),
                watch.clone(),
            ],
        )
        .await;
        fabric::all_ok(
            c.modify(vec![fabric::int_switch_id(&ix, id)])
                .await
                .expect("switch ID"),
        );
        install_punt_rule(c).await.expect("punt rule");
    }

    // Discovery over the s1 — s2 link.
    let ports = BTreeMap::from([(1, BTreeSet::from([2])), (2, BTreeSet::from([1]))]);
    let discovery = Discovery::start(
        vec![c1.clone(), c2.clone()],
        DiscoveryConfig {
            ports,
            declared: vec![S1_S2, S1_S2.reversed()],
            ..DiscoveryConfig::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !discovery.links().iter().all(|d| d.status == LinkStatus::Up) {
        assert!(
            Instant::now() < deadline,
            "s1 — s2 not discovered: {:?} {:?}",
            discovery.links(),
            discovery.counters()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The collector, with the switch IDs of the topology.
    let collector = Collector::bind(CollectorConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..CollectorConfig::default()
    })
    .await
    .expect("collector");
    collector.map_switch(11, 1);
    collector.map_switch(12, 2);

    // Probes 0..=9 of path 100, 4 never sent.
    let sequences: Vec<u32> = (0..10).filter(|s| *s != 4).collect();
    let rx = in_netns(&t.ns("h2"), || {
        UdpSocket::bind((H2_IP, PORT)).expect("bind h2")
    });
    in_netns(&t.ns("h1"), || {
        let socket = int::sender(SocketAddrV4::new(H1_IP, 0), DSCP);
        for seq in &sequences {
            let payload = ProbePayload {
                label: LABEL,
                sequence: *seq,
            }
            .to_bytes();
            socket
                .send_to(&int::probe(8, &payload), (H2_IP, PORT))
                .expect("send probe");
        }
    });
    let got = int::receive(&rx, sequences.len(), Duration::from_secs(3));
    assert_eq!(got.len(), sequences.len(), "every probe arrived at h2");
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink socket");
    for (i, probe) in got.iter().enumerate() {
        assert_eq!(probe.hops.len(), 2, "{probe:?}");
        let report = test_sink_report(probe, i as u32);
        sink.send_to(&report, collector.local_addr())
            .expect("send report");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while collector.counters().reports < sequences.len() as u64 {
        assert!(Instant::now() < deadline, "{:?}", collector.counters());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let snapshot = collector.snapshot();
    let views = linkstate::join(&discovery.links(), &snapshot);
    let s1_s2 = views
        .iter()
        .find(|v| v.link == S1_S2)
        .unwrap_or_else(|| panic!("no view of {S1_S2}: {views:#?}"));
    assert_eq!(s1_s2.status, Some(LinkStatus::Up));
    assert!(s1_s2.declared);
    let tel = s1_s2
        .telemetry
        .as_ref()
        .expect("telemetry on the discovered link");
    let latency = tel.latency_ns.expect("link latency from the timestamps");
    assert_eq!(latency.samples, 9);
    // s1's egress hook to s2's ingress hook over a veth: positive, and
    // well below a millisecond on one machine.
    assert!(
        latency.last > 0 && latency.window.p99 < 1_000_000,
        "{latency:?}"
    );
    assert!(
        tel.hop_latency_ns.is_some_and(|h| h.samples == 9),
        "{tel:?}"
    );
    // Telemetry knows no link discovery does not: s2 → h2 has no next hop
    // in the stack, h1 → s1 no previous one.
    assert_eq!(snapshot.links.len(), 1, "{:?}", snapshot.links);

    assert_eq!(snapshot.paths.len(), 1);
    let path = &snapshot.paths[0];
    assert_eq!((path.label, path.sink), (LABEL, u32::from(H2_IP)));
    assert_eq!(path.links, [S1_S2]);
    assert_eq!(
        (path.loss.received, path.loss.lost),
        (9, 1),
        "{:?}",
        path.loss
    );
    eprintln!(
        "telemetry: s1 -> s2 link latency last {} ns, EWMA {:.0} ns, p50 {} ns; \
         s1 hop latency EWMA {:.0} ns; path {LABEL} loss {:.3}",
        latency.last,
        latency.ewma,
        latency.window.p50,
        tel.hop_latency_ns.map_or(0.0, |h| h.ewma),
        path.loss.window_loss
    );
    discovery.shutdown().await;
    collector.shutdown().await;
}
