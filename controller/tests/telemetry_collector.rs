//! The INT collector over a real UDP socket on loopback: reports built
//! with `solyx-int` become hop, link and path series whose averages and
//! percentiles match hand-computed values; malformed datagrams are counted
//! by the parser's reason and nothing stops; stale series expire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::int_reports::{report, three_hops};
use solyx::linkstate::LinkKey;
use solyx::telemetry::{Collector, CollectorConfig, HopKey, StoreConfig, TelemetrySnapshot};

async fn collector(store: StoreConfig, max_datagram: usize) -> Collector {
    Collector::bind(CollectorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_datagram,
        store,
        ..CollectorConfig::default()
    })
    .await
    .expect("bind the collector")
}

fn send_all(to: std::net::SocketAddr, datagrams: &[Bytes]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams {
        socket.send_to(d, to).unwrap();
    }
}

/// Waits until the collector has seen `datagrams` datagrams.
async fn wait_datagrams(c: &Collector, datagrams: u64) -> TelemetrySnapshot {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = c.snapshot();
        if s.received.datagrams >= datagrams {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {datagrams} datagrams arrived: {:?}",
            s.received.datagrams,
            s.received
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn link(src: u64, dst: u64) -> LinkKey {
    LinkKey {
        src_device: src,
        src_port: 2,
        dst_device: dst,
        dst_port: 1,
    }
}

#[tokio::test]
async fn reports_become_hop_link_and_path_series_with_hand_computed_values() {
    let store = StoreConfig {
        ewma_alpha: 0.5,
        ..StoreConfig::default()
    };
    let c = collector(store, 2048).await;
    // Three probes on path label 7, sequence numbers 0, 1, 4 (2 and 3 lost),
    // over s1 → s2 → s3. Per report: hop latency, wire time, queue, TX
    // utilisation.
    let samples = [(100, 10, 100, 40), (200, 20, 200, 80), (50, 30, 250, 120)];
    let sequences = [0, 1, 4];
    let datagrams: Vec<Bytes> = samples
        .iter()
        .zip(sequences)
        .enumerate()
        .map(|(i, (&(lat, wire, queue, util), seq))| {
            let path = three_hops(1_000_000 * (i as u64 + 1), lat, wire, queue, util);
            report(0x0a00_0002, i as u32, &path, Some((7, seq)))
        })
        .collect();
    send_all(c.local_addr(), &datagrams);
    let s = wait_datagrams(&c, 3).await;

    assert_eq!(s.received.reports, 3);
    assert_eq!(s.received.rejected_total(), 0, "{:?}", s.received);
    assert_eq!(s.applied.reports, 3);
    assert_eq!(s.applied.hops, 9);
    assert_eq!(s.applied.probes, 3);

    // Every switch's egress port 2: latency 100, 200, 50 → EWMA(0.5)
    // 100, 150, 100; p50 100, p90 and p99 200.
    let hops: Vec<HopKey> = s.hops.iter().map(|h| h.hop).collect();
    assert_eq!(
        hops,
        (1..=3)
            .map(|device| HopKey {
                device,
                egress_port: 2
            })
            .collect::<Vec<_>>()
    );
    let h1 = &s.hops[0];
    let lat = h1.hop_latency_ns.expect("hop latency");
    assert_eq!((lat.last, lat.ewma, lat.samples), (50, 100.0, 3));
    assert_eq!(
        (
            lat.window.p50,
            lat.window.p90,
            lat.window.p99,
            lat.window.samples
        ),
        (100, 200, 200, 3)
    );
    // Queue 100, 200, 250 → EWMA 100, 150, 200; utilisation 40, 80, 120 →
    // 40, 60, 90.
    let q = h1.queue_bytes.expect("queue");
    assert_eq!((q.last, q.ewma, q.window.p50), (250, 200.0, 200));
    let u = h1.tx_utilization_kbps.expect("utilisation");
    assert_eq!((u.last, u.ewma, u.window.p99), (120, 90.0, 120));

    // Links s1 → s2 and s2 → s3: wire time 10, 20, 30 → EWMA 10, 15, 22.5.
    let links: Vec<LinkKey> = s.links.iter().map(|l| l.link).collect();
    assert_eq!(links, [link(1, 2), link(2, 3)]);
    for l in &s.links {
        let w = l.latency_ns.expect("link latency");
        assert_eq!((w.last, w.ewma), (30, 22.5), "{}", l.link);
        assert_eq!(
            (w.window.p50, w.window.p90, w.window.p99),
            (20, 30, 30),
            "{}",
            l.link
        );
        // The source's egress port, joined in.
        assert_eq!(l.queue_bytes.map(|q| q.last), Some(250));
        assert_eq!(l.hop_latency_ns.map(|q| q.ewma), Some(100.0));
    }

    // Path 7: 3 received, 2 lost: 2 / 5 over the window. Its latency is
    // first ingress → last egress: 3 × latency + 2 × wire = 320, 640, 210
    // → EWMA 320, 480, 345.
    assert_eq!(s.paths.len(), 1);
    let p = &s.paths[0];
    assert_eq!((p.label, p.sink), (7, 0x0a00_0002));
    assert_eq!(p.links, [link(1, 2), link(2, 3)]);
    assert_eq!((p.loss.received, p.loss.lost), (3, 2));
    assert!((p.loss.window_loss - 0.4).abs() < 1e-12, "{:?}", p.loss);
    let pl = p.latency_ns.expect("path latency");
    assert_eq!((pl.last, pl.ewma), (210, 345.0));
    // Above 256 the histograms keep two significant digits.
    assert!(pl.window.p50.abs_diff(320) <= 4, "{pl:?}");
}

#[tokio::test]
async fn malformed_datagrams_are_counted_by_reason_and_receiving_goes_on() {
    let c = collector(StoreConfig::default(), 512).await;
    let good = report(9, 0, &three_hops(1000, 100, 10, 0, 0), None);

    let mut bad_version = good.to_vec();
    bad_version[0] = (bad_version[0] & 0x0f) | 0x10; // version 1
    let mut ioam = good.to_vec();
    ioam[8] = (ioam[8] & 0x0f) | 0x20; // RepType 2
    let mut reserved_in_type = good.to_vec();
    reserved_in_type[8] = (reserved_in_type[8] & 0xf0) | 0x06; // InType 6
    let mut ipv6 = good.to_vec();
    ipv6[8] = (ipv6[8] & 0xf0) | 0x05; // InType 5
    let cut = good.slice(..40);
    let mut trailing = good.to_vec();
    trailing.extend_from_slice(&[0, 0]); // a second report cut to 2 bytes

    // (datagram, copies, reason).
    let cases: Vec<(Bytes, usize, &str)> = vec![
        (
            Bytes::from_static(&[0x20, 0, 0]),
            1,
            "truncated_group_header",
        ),
        (Bytes::from(bad_version), 2, "bad_version"),
        (Bytes::from(ioam), 3, "unsupported_rep_type"),
        (Bytes::from(reserved_in_type), 1, "unknown_in_type"),
        (Bytes::from(ipv6), 2, "unsupported_in_type"),
        (cut, 4, "report_length_past_buffer"),
        (Bytes::from(trailing), 1, "truncated_report_header"),
        (Bytes::from(vec![0x20; 600]), 2, solyx::telemetry::TOO_LONG),
    ];
    let mut datagrams = Vec::new();
    for (d, n, _) in &cases {
        datagrams.extend(std::iter::repeat_n(d.clone(), *n));
    }
    datagrams.push(good.clone());
    send_all(c.local_addr(), &datagrams);
    let s = wait_datagrams(&c, datagrams.len() as u64).await;

    for (_, n, reason) in &cases {
        assert_eq!(
            s.received.rejected_for(reason),
            *n as u64,
            "{reason}: {:?}",
            s.received
        );
    }
    let expected: usize = cases.iter().map(|(_, n, _)| n).sum();
    assert_eq!(s.received.rejected_total(), expected as u64);
    // Every parser reason is listed, zeros included.
    for reason in solyx_int::ParseError::REASONS {
        assert!(s.received.rejected.contains_key(reason), "{reason}");
    }
    // The good report behind the bad ones and the one coalesced with the
    // 2 stray bytes were both applied.
    assert_eq!(s.received.reports, 2);
    assert_eq!(s.links.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_sockets_share_one_port_and_one_store() {
    let c = Collector::bind(CollectorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        sockets: 3,
        ..CollectorConfig::default()
    })
    .await
    .expect("bind three sockets");
    // Sixteen senders (source ports), spread by the kernel over the
    // sockets; every probe of path 5 lands in the same store.
    let path = three_hops(1000, 100, 10, 5, 5);
    for seq in 0..16u32 {
        send_all(c.local_addr(), &[report(1, seq, &path, Some((5, seq)))]);
    }
    let s = wait_datagrams(&c, 16).await;
    assert_eq!(s.received.reports, 16);
    assert_eq!(s.paths.len(), 1);
    // Arrival order across sockets may differ from sending order: late
    // probes are taken back, so nothing counts as lost in the end.
    assert_eq!(
        (s.paths[0].loss.received, s.paths[0].loss.lost),
        (16, 0),
        "{:?}",
        s.paths[0].loss
    );
}

#[tokio::test]
async fn series_expire_when_reports_stop() {
    let store = StoreConfig {
        expire_after: Duration::from_millis(200),
        ..StoreConfig::default()
    };
    let c = collector(store, 2048).await;
    let path = three_hops(1000, 100, 10, 5, 5);
    send_all(c.local_addr(), &[report(1, 0, &path, Some((3, 0)))]);
    let s = wait_datagrams(&c, 1).await;
    assert_eq!((s.links.len(), s.hops.len(), s.paths.len()), (2, 3, 1));

    // Seen from 300 ms on, nothing is fresh any more.
    let later = c.snapshot_at(Instant::now() + Duration::from_millis(300));
    assert!(later.links.is_empty() && later.hops.is_empty() && later.paths.is_empty());

    // The expiry task drops the series themselves: a new report starts
    // them again from one sample.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(c.snapshot().links.is_empty());
    send_all(c.local_addr(), &[report(1, 1, &path, Some((3, 1)))]);
    let s = wait_datagrams(&c, 2).await;
    let l = s.links[0].latency_ns.expect("latency");
    assert_eq!(l.samples, 1, "a new series");
    assert_eq!(s.paths[0].loss.received, 1);
}
