//! INT-MD transit on two eBPF fabric switches programmed only over
//! P4Runtime (the controller's `DeviceSession`), each with its own
//! in-process server:
//!
//! ```text
//!   h1 ── p1 [s1] p2 ── p1 [s2] p2 ── h2
//!   10.81.1.1       ipv4_route 10.81.2.0/24       10.81.2.2
//!   INT switch IDs: s1 = 11, s2 = 12; int_watchlist: DSCP 0x17 → int_mark_int
//! ```
//!
//! h1 sends UDP datagrams whose payload starts with an INT shim and INT-MD
//! header (`solyx_int::IntMdBuilder`, 8 hops allowed): with DSCP 0x17 they
//! reach h2 with two hops of metadata, s2's first, the remaining hop count
//! 6, the ports 1 → 2 on both, the timestamps in path order; without the
//! mark they arrive as sent. `int_watchlist_counter`,
//! `int_switch_config_counter` and `egress_port_counter` count them, read
//! over P4Runtime; a RECONCILE_AND_COMMIT keeps them. Then the P4Runtime
//! errors (a value outside its mask, a 65th rule, a non-default
//! `int_switch_config` entry), the reset of the switch ID and the delete of
//! the rule, each checked with a probe; last, the data plane's own refusal
//! of a 65th rule.
//!
//! Needs root and the eBPF object; skips otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use solyx::p4rt::{update, DeviceSession};
use solyx_agent::p4rt::{Change, Dataplane, DataplaneErrorKind, Entry};
use solyx_int::UNAVAILABLE_32;
use solyx_p4runtime::proto::p4::v1 as p4;
use switch::fabric::{self, index, install, session};
use switch::int::{self, Probe};
use switch::{can_run, in_netns, Switch, Topology};

const H1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x51, 0x01];
const S1_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x51, 0xfe];
const S1_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x52, 0xfe];
const S2_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x61, 0xfe];
const S2_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x62, 0xfe];
const H2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x62, 0x02];
const H1_IP: Ipv4Addr = Ipv4Addr::new(10, 81, 1, 1);
const H2_IP: Ipv4Addr = Ipv4Addr::new(10, 81, 2, 2);
const PORT: u16 = 6200;
const DSCP: u8 = 0x17;
const PROBES: usize = 5;

/// CLOCK_TAI now, in ns (the clock of the INT timestamps).
fn tai_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_TAI).expect("CLOCK_TAI");
    u64::try_from(ts.tv_sec()).expect("secs") * 1_000_000_000
        + u64::try_from(ts.tv_nsec()).expect("nanos")
}

/// Sends one probe per body from h1 with `dscp`; receives as many at h2.
fn exchange(h1: &str, rx: &UdpSocket, dscp: u8, bodies: &[String]) -> Vec<Probe> {
    in_netns(h1, || {
        let socket = int::sender(SocketAddrV4::new(H1_IP, 0), dscp);
        for body in bodies {
            socket
                .send_to(&int::probe(8, body.as_bytes()), (H2_IP, PORT))
                .expect("send probe");
        }
    });
    let got = int::receive(rx, bodies.len(), Duration::from_secs(3));
    assert_eq!(got.len(), bodies.len(), "h2 received every probe: {got:?}");
    got
}

/// Packets of the direct counters of table `name`.
async fn hits(s: &DeviceSession, name: &str) -> i64 {
    fabric::table_hits(s, &index(), name).await
}

/// The codes of one continue-on-error Write of `updates`.
async fn codes(s: &DeviceSession, updates: Vec<p4::Update>) -> Vec<tonic::Code> {
    s.write(updates)
        .await
        .expect("write")
        .into_iter()
        .map(|r| r.map_or_else(|e| e.code, |()| tonic::Code::Ok))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int_over_p4runtime_on_two_switches() {
    if !can_run("int_over_p4runtime_on_two_switches") {
        return;
    }
    let mut t = Topology::new("int", "n", &["h1", "s1", "s2", "h2"]);
    t.link(("h1", "h1", H1), ("s1", "s1p1", S1_P1));
    t.link(("s1", "s1p2", S1_P2), ("s2", "s2p1", S2_P1));
    t.link(("s2", "s2p2", S2_P2), ("h2", "h2", H2));
    t.host(
        "h1",
        "h1",
        "10.81.1.1/24",
        "10.81.1.254",
        S1_P1,
        &["10.81.2.0/24"],
    );
    t.host(
        "h2",
        "h2",
        "10.81.2.2/24",
        "10.81.2.254",
        S2_P2,
        &["10.81.1.0/24"],
    );
    let s1 = Switch::start(&t, "s1", 1, &[(1, "s1p1"), (2, "s1p2")]).await;
    let s2 = Switch::start(&t, "s2", 2, &[(1, "s2p1"), (2, "s2p2")]).await;
    let (c1, c2) = (
        session(&s1.endpoint(), 1).await,
        session(&s2.endpoint(), 2).await,
    );
    let ix = index();
    let route = Ipv4Addr::new(10, 81, 2, 0);
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
    }

    let h1 = t.ns("h1");
    let rx = in_netns(&t.ns("h2"), || {
        UdpSocket::bind((H2_IP, PORT)).expect("bind h2")
    });
    let sent_at = tai_ns();
    let marked: Vec<String> = (0..PROBES).map(|i| format!("int-probe-{i}")).collect();
    let got = exchange(&h1, &rx, DSCP, &marked);
    let received_at = tai_ns();
    for probe in &got {
        assert!(probe.body.starts_with(b"int-probe-"), "{probe:?}");
        assert_eq!(probe.hops.len(), 2, "two hops: {probe:?}");
        assert_eq!(probe.remaining, 6, "remaining hop count 8 - 2");
        assert_eq!(probe.shim_words, 3 + 2 * 9, "two hops of 9 words");
        let (s2_hop, s1_hop) = (probe.hops[0], probe.hops[1]);
        assert_eq!(s2_hop.switch_id, Some(12), "newest hop first");
        assert_eq!(s1_hop.switch_id, Some(11));
        for hop in [s1_hop, s2_hop] {
            let ports = hop.level1_ports.expect("ports");
            assert_eq!((ports.ingress, ports.egress), (1, 2), "{hop:?}");
            assert!(hop.hop_latency.is_some_and(|l| l != UNAVAILABLE_32));
        }
        let ts = [
            s1_hop.ingress_timestamp.expect("s1 ingress"),
            s1_hop.egress_timestamp.expect("s1 egress"),
            s2_hop.ingress_timestamp.expect("s2 ingress"),
            s2_hop.egress_timestamp.expect("s2 egress"),
        ];
        assert!(
            sent_at <= ts[0] && ts.windows(2).all(|w| w[0] <= w[1]) && ts[3] <= received_at,
            "timestamps in path order within {sent_at}..{received_at}: {ts:?}"
        );
    }
    eprintln!("a probe at h2: {:?}", got[0].hops);

    // Without the mark: nothing added, nothing counted by the rule.
    let plain = exchange(&h1, &rx, 0, &["plain".to_owned()]);
    assert_eq!(plain[0].hops.len(), 0, "no metadata: {:?}", plain[0]);
    assert_eq!(plain[0].remaining, 8);

    // Counters over P4Runtime.
    let n = PROBES as i64;
    for (name, c) in [("s1", &c1), ("s2", &c2)] {
        let watch_hits = hits(c, "int_watchlist").await;
        let (inserted, _) = fabric::default_entry_hits(c, &ix, "int_switch_config").await;
        let tx = fabric::counter_packets(c, &ix, "egress_port_counter", 2).await;
        let rx1 = fabric::counter_packets(c, &ix, "ingress_port_counter", 1).await;
        eprintln!(
            "{name}: int_watchlist_counter {watch_hits}, int_switch_config_counter {inserted}, \
             egress_port_counter[2] {tx}, ingress_port_counter[1] {rx1}"
        );
        assert_eq!(watch_hits, n, "{name}: the rule matched the marked probes");
        assert_eq!(inserted, n, "{name}: metadata added to the marked probes");
        assert_eq!(tx, n + 1, "{name}: port 2 sent every probe, marked or not");
        assert_eq!(
            fabric::counter_packets(c, &ix, "egress_port_counter", 1).await,
            0,
            "{name}: nothing left on port 1"
        );
    }

    // A RECONCILE_AND_COMMIT on s2 keeps its INT rule, with its counter,
    // and its switch ID.
    c2.set_pipeline(ix.p4info().clone(), b"v2".to_vec(), true)
        .await
        .expect("reconcile");
    let got = exchange(&h1, &rx, DSCP, &["reconciled".to_owned()]);
    let ids: Vec<Option<u32>> = got[0].hops.iter().map(|h| h.switch_id).collect();
    assert_eq!(ids, vec![Some(12), Some(11)], "INT across the reconcile");
    assert_eq!(hits(&c2, "int_watchlist").await, n + 1, "counter kept");

    // P4Runtime errors: a value outside its mask (the builders would mask
    // it, so the bytes are set by hand), a 65th rule, an entry in the
    // keyless int_switch_config.
    let mut outside = fabric::int_watch_dscp(&ix, 3, 0x07, "int_mark_int");
    if let Some(p4::entity::Entity::TableEntry(t)) = outside.entity.as_mut() {
        t.r#match[0].field_match_type = Some(p4::field_match::FieldMatchType::Ternary(
            p4::field_match::Ternary {
                value: vec![DSCP],
                mask: vec![0x0f],
            },
        ));
    }
    let got = codes(&c1, vec![update(p4::update::Type::Insert, outside)]).await;
    assert_eq!(
        got,
        vec![tonic::Code::InvalidArgument],
        "0x17 outside mask 0x0f"
    );
    let more: Vec<p4::Entity> = (0..63u8)
        .map(|d| fabric::int_watch_dscp(&ix, 1, d, "int_no_mark"))
        .collect();
    install(&c1, more.clone()).await;
    let extra = fabric::int_watch_dscp(&ix, 2, 0x3f, "int_no_mark");
    let got = codes(&c1, vec![update(p4::update::Type::Insert, extra)]).await;
    assert_eq!(
        got,
        vec![tonic::Code::ResourceExhausted],
        "64 rules at most"
    );
    let keyed = p4::Entity {
        entity: Some(p4::entity::Entity::TableEntry(p4::TableEntry {
            table_id: fabric::table_id(&ix, "int_switch_config"),
            action: Some(p4::TableAction {
                r#type: Some(p4::table_action::Type::Action(
                    ix.action("int_set_switch_id")
                        .unwrap()
                        .param("switch_id", 5u32)
                        .unwrap()
                        .build()
                        .unwrap(),
                )),
            }),
            ..Default::default()
        })),
    };
    let got = codes(&c1, vec![update(p4::update::Type::Insert, keyed)]).await;
    assert_ne!(got, vec![tonic::Code::Ok], "only the default entry");
    let removed = codes(
        &c1,
        more.into_iter()
            .map(|e| update(p4::update::Type::Delete, e))
            .collect(),
    )
    .await;
    assert!(removed.iter().all(|c| *c == tonic::Code::Ok), "{removed:?}");

    // s1's switch ID reset: its hop reports the unknown ID.
    let reset = p4::Entity {
        entity: Some(p4::entity::Entity::TableEntry(p4::TableEntry {
            table_id: fabric::table_id(&ix, "int_switch_config"),
            is_default_action: true,
            ..Default::default()
        })),
    };
    fabric::all_ok(c1.modify(vec![reset]).await.expect("reset"));
    let got = exchange(&h1, &rx, DSCP, &["reset".to_owned()]);
    let ids: Vec<Option<u32>> = got[0].hops.iter().map(|h| h.switch_id).collect();
    assert_eq!(ids, vec![Some(12), Some(UNAVAILABLE_32)]);

    // s2's rule deleted: only s1 adds a hop.
    fabric::all_ok(c2.delete(vec![watch]).await.expect("delete"));
    let got = exchange(&h1, &rx, DSCP, &["one-hop".to_owned()]);
    assert_eq!(got[0].hops.len(), 1, "{:?}", got[0]);
    assert_eq!(got[0].remaining, 7);
    c1.close();
    c2.close();

    // The data plane itself refuses a 65th rule (on the wire the server's
    // size check answers first): s1's rules given to it directly.
    let entry = |priority: i32, d: u8| match fabric::int_watch_dscp(
        &ix,
        priority,
        d,
        "int_mark_int",
    )
    .entity
    {
        Some(p4::entity::Entity::TableEntry(t)) => t,
        _ => unreachable!("a table entry"),
    };
    let dp = &s1.dataplane;
    for d in 0..63 {
        dp.apply(&Change::Insert(Entry::Table(&entry(4, d))))
            .expect("rules 2 to 64");
    }
    let e = dp
        .apply(&Change::Insert(Entry::Table(&entry(5, 0))))
        .expect_err("a 65th rule");
    assert_eq!(e.kind, DataplaneErrorKind::Full, "{e}");
    assert_eq!(dp.with_int(|int| int.watch_rules().len()), 64);
}
