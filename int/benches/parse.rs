//! Telemetry reports parsed per second on one core, for realistic reports
//! (Ethernet, IPv4, UDP, INT-MD with switch ID, level-1 ports, hop latency,
//! queue, both timestamps and TX utilization, 3 and 5 hops), next to a
//! baseline measured in the same run: summing the same bytes, i.e. just
//! touching the data once. The ratio says how close parsing is to that.
//!
//! Run: `cargo bench -p solyx-int --bench parse` (add `-- --quick` for a
//! short run). The goal is at least 2,000,000 reports/s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use solyx_int::Report;

#[path = "../tests/common/mod.rs"]
mod common;

/// Runs `f` in batches until `budget` has passed, five times, and returns
/// the best nanoseconds per call.
fn measure(budget: Duration, mut f: impl FnMut() -> u64) -> f64 {
    const BATCH: u32 = 10_000;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let mut calls = 0u64;
        let mut sink = 0u64;
        while start.elapsed() < budget {
            for _ in 0..BATCH {
                sink = sink.wrapping_add(f());
            }
            calls += u64::from(BATCH);
        }
        black_box(sink);
        let ns = start.elapsed().as_nanos() as f64 / calls as f64;
        best = best.min(ns);
    }
    best
}

/// Parses and reads every field of every hop, as the collector does.
fn parse_and_walk(buf: &Bytes) -> u64 {
    let Ok(report) = Report::parse(buf.clone()) else {
        return 0;
    };
    let mut acc = u64::from(report.group().node_id);
    for hop in report.hops() {
        acc = acc
            .wrapping_add(u64::from(hop.switch_id().unwrap_or(0)))
            .wrapping_add(u64::from(hop.ingress_port().unwrap_or(0)))
            .wrapping_add(u64::from(hop.egress_port().unwrap_or(0)))
            .wrapping_add(u64::from(hop.hop_latency().unwrap_or(0)))
            .wrapping_add(u64::from(hop.queue_occupancy().unwrap_or(0)))
            .wrapping_add(hop.ingress_timestamp().unwrap_or(0))
            .wrapping_add(hop.egress_timestamp().unwrap_or(0))
            .wrapping_add(u64::from(hop.egress_tx_utilization().unwrap_or(0)));
    }
    acc
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 100 } else { 400 });
    println!("solyx-int parse benchmark (one core; best of 5 runs)");
    println!(
        "{:>4} {:>6} {:>14} {:>14} {:>16} {:>14} {:>10} {:>10}",
        "hops",
        "bytes",
        "parse ns",
        "parse+walk ns",
        "reports/s",
        "sum bytes ns",
        "parse/sum",
        "walk/sum"
    );
    for hops in [3usize, 5] {
        let buf = common::report_bytes(&common::common_hops(hops), &[0u8; 32]);
        assert_eq!(
            Report::parse(buf.clone()).map(|r| r.hop_count()).ok(),
            Some(hops)
        );
        let parse = measure(budget, || {
            Report::parse(black_box(&buf).clone()).map_or(0, |r| r.hop_count() as u64)
        });
        let walk = measure(budget, || parse_and_walk(black_box(&buf)));
        let sum = measure(budget, || {
            black_box(&buf[..])
                .iter()
                .fold(0u64, |a, &b| a.wrapping_add(u64::from(b)))
        });
        println!(
            "{:>4} {:>6} {:>14.1} {:>14.1} {:>16.0} {:>14.1} {:>10.2} {:>10.2}",
            hops,
            buf.len(),
            parse,
            walk,
            1e9 / walk,
            sum,
            parse / sum,
            walk / sum
        );
    }
    println!("reports/s counts parse+walk: parse the report and read every field of every hop.");
}
