//! INT collector throughput, each figure next to a baseline measured in
//! the same run:
//!
//! 1. reports parsed and applied to the telemetry store per second on one
//!    core (3-hop probe reports over 64 paths, all common INT
//!    instructions), next to parsing the same reports without applying
//!    them; goal ≥ 2,000,000/s;
//! 2. end to end over UDP on loopback: one sender thread (`sendmmsg`,
//!    batches of 64) blasting reports at the collector (one socket, a
//!    single-threaded Tokio runtime), next to the same sender blasting at a
//!    receiver that only counts datagrams (`recvmmsg`, batches of 64): the
//!    raw UDP receive rate of this machine. Goal ≥ 1,000,000 reports/s.
//!
//! Run: `cargo bench -p solyx --bench telemetry` (add `-- --quick` for a
//! short run, `-- --senders N` for N sender threads in both UDP runs).

#[path = "../tests/common/int_reports.rs"]
mod int_reports;

use std::hint::black_box;
use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::sys::socket::{self as nsock, MsgFlags, MultiHeaders, SockaddrIn};
use solyx::telemetry::{Collector, CollectorConfig, StoreConfig, TelemetryStore};
use solyx_int::Report;

const PATHS: u32 = 64;

/// `count` distinct probe reports: 64 paths over 3-hop chains of 16
/// switches, values varying per report.
fn reports(count: u32) -> Vec<Bytes> {
    (0..count)
        .map(|i| {
            let path = PATHS.min(count);
            let label = i % path;
            let mut hops = int_reports::three_hops(
                1_000_000 + u64::from(i) * 1000,
                200 + i % 500,
                40 + u64::from(i % 30),
                i % 20_000,
                50_000 + i % 40_000,
            );
            for (n, h) in hops.iter_mut().enumerate() {
                h.switch = 1 + (label + n as u32 * 5) % 16;
            }
            int_reports::report(0x0a00_0002, i, &hops, Some((label, i / path)))
        })
        .collect()
}

/// Reports per second of `f` over `budget`, best of three.
fn rate(budget: Duration, datagrams: &[Bytes], mut f: impl FnMut(&[Bytes]) -> u64) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut done = 0u64;
        while start.elapsed() < budget {
            done += f(datagrams);
        }
        best = best.max(done as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn parse_only(datagrams: &[Bytes]) -> u64 {
    let mut n = 0u64;
    for d in datagrams {
        if let Ok(each) = Report::parse_coalesced(d.clone()) {
            for r in each.flatten() {
                n += 1;
                black_box(r.hops().len());
            }
        }
    }
    n
}

/// Parses and applies in batches of 64 under one clock read, as the
/// collector does.
fn parse_and_apply(store: &mut TelemetryStore, datagrams: &[Bytes]) -> u64 {
    let mut n = 0u64;
    let mut batch = Vec::with_capacity(64);
    for chunk in datagrams.chunks(64) {
        for d in chunk {
            if let Ok(each) = Report::parse_coalesced(d.clone()) {
                batch.extend(each.flatten());
            }
        }
        let now = Instant::now();
        for r in &batch {
            store.apply(r, now);
        }
        n += batch.len() as u64;
        batch.clear();
    }
    n
}

/// Blasts `datagrams` at `to` with sendmmsg until `stop`; datagrams sent.
fn blast(to: SocketAddr, datagrams: Arc<Vec<Bytes>>, stop: Arc<AtomicBool>) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("sender socket");
    socket.connect(to).expect("connect");
    let fd = socket.as_raw_fd();
    let mut sent = 0u64;
    let addrs: Vec<Option<SockaddrIn>> = vec![None; 64];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(64, None);
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let slices: Vec<[IoSlice<'_>; 1]> = (0..64)
            .map(|i| [IoSlice::new(&datagrams[(next + i) % datagrams.len()])])
            .collect();
        next = (next + 64) % datagrams.len();
        match nsock::sendmmsg(fd, &mut headers, &slices, &addrs, [], MsgFlags::empty()) {
            Ok(r) => sent += r.count() as u64,
            // The receiver's refusal of an earlier datagram (ICMP) shows
            // here; go on.
            Err(_) => std::thread::yield_now(),
        }
    }
    sent
}

/// The raw rate: datagrams per second a receiver that only counts takes
/// from one sender, and the datagrams per second the sender pushed.
fn raw_udp(budget: Duration, datagrams: &Arc<Vec<Bytes>>, senders: usize) -> (f64, f64) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("receiver");
    nsock::setsockopt(&socket, nsock::sockopt::RcvBuf, &(8 << 20)).ok();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let to = socket.local_addr().expect("address");
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let counter = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || {
            let fd = socket.as_raw_fd();
            let mut buf = vec![0u8; 64 * 2048];
            while !stop.load(Ordering::Relaxed) {
                let mut headers = MultiHeaders::<()>::preallocate(64, None);
                let mut iovs: Vec<[std::io::IoSliceMut<'_>; 1]> = buf
                    .chunks_mut(2048)
                    .map(|c| [std::io::IoSliceMut::new(c)])
                    .collect();
                if let Ok(r) =
                    nsock::recvmmsg(fd, &mut headers, iovs.iter_mut(), MsgFlags::empty(), None)
                {
                    received.fetch_add(r.count() as u64, Ordering::Relaxed);
                }
            }
        })
    };
    let senders: Vec<_> = (0..senders)
        .map(|_| {
            let (datagrams, stop) = (datagrams.clone(), stop.clone());
            std::thread::spawn(move || blast(to, datagrams, stop))
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(budget / 5);
    let (r0, t0) = (received.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(budget);
    let (r1, t1) = (received.load(Ordering::Relaxed), Instant::now());
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = senders.into_iter().map(|s| s.join().expect("sender")).sum();
    let sent_rate = sent as f64 / start.elapsed().as_secs_f64();
    counter.join().expect("counter");
    ((r1 - r0) as f64 / (t1 - t0).as_secs_f64(), sent_rate)
}

/// Reports per second the collector applies from one sender, and the
/// datagrams per second the sender managed.
fn collector_udp(budget: Duration, datagrams: &Arc<Vec<Bytes>>, senders: usize) -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let (collector, rt_thread) = {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = stop.clone();
        let t = std::thread::spawn(move || {
            runtime.block_on(async move {
                let c = Collector::bind(CollectorConfig {
                    listen: "127.0.0.1:0".parse().expect("address"),
                    ..CollectorConfig::default()
                })
                .await
                .expect("collector");
                let c = Arc::new(c);
                tx.send(c.clone()).expect("hand over");
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        });
        (rx.recv().expect("collector"), t)
    };
    let to = collector.local_addr();
    let senders: Vec<_> = (0..senders)
        .map(|_| {
            let (datagrams, stop) = (datagrams.clone(), stop.clone());
            std::thread::spawn(move || blast(to, datagrams, stop))
        })
        .collect();
    let reports = || collector.counters().reports;
    let start = Instant::now();
    std::thread::sleep(budget / 5);
    let (r0, t0) = (reports(), Instant::now());
    std::thread::sleep(budget);
    let (r1, t1) = (reports(), Instant::now());
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = senders.into_iter().map(|s| s.join().expect("sender")).sum();
    let sent_rate = sent as f64 / start.elapsed().as_secs_f64();
    rt_thread.join().expect("runtime thread");
    let total = collector.counters();
    assert_eq!(total.rejected_total(), 0, "{total:?}");
    ((r1 - r0) as f64 / (t1 - t0).as_secs_f64(), sent_rate)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let senders: usize = args
        .iter()
        .position(|a| a == "--senders")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let budget = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(1)
    };
    let datagrams = reports(4096);
    let size = datagrams[0].len();
    println!(
        "INT collector benchmark: {} distinct 3-hop probe reports of {size} bytes, {PATHS} paths",
        datagrams.len()
    );

    // 1. One core.
    let parse = rate(budget, &datagrams, parse_only);
    let mut store = TelemetryStore::new(StoreConfig::default(), Instant::now());
    let apply = rate(budget, &datagrams, |d| parse_and_apply(&mut store, d));
    let snapshot = store.snapshot(Instant::now());
    println!(
        "one core: parse only {:>12.0} reports/s\n          parse + apply {:>10.0} reports/s  ({:.2}× of parse only; goal 2,000,000: {:.2}×)  [{} links, {} ports, {} paths in the store]",
        parse,
        apply,
        apply / parse,
        apply / 2e6,
        snapshot.links.len(),
        snapshot.hops.len(),
        snapshot.paths.len()
    );

    // 2. Over UDP on loopback.
    let shared = Arc::new(datagrams);
    let (raw, raw_sent) = raw_udp(budget * 2, &shared, senders);
    let (applied, sent) = collector_udp(budget * 2, &shared, senders);
    println!(
        "loopback UDP, {senders} sender(s): raw receive (count only) {raw:>10.0} datagrams/s  (sender pushed {raw_sent:.0}/s)\n                          collector (parse + apply) {applied:>10.0} reports/s    (sender pushed {sent:.0}/s)\n                          {:.2}× of raw; goal 1,000,000: {:.2}×",
        applied / raw,
        applied / 1e6
    );
}
