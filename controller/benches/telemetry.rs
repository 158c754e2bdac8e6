//! INT collector throughput, each figure next to a baseline measured in
//! the same run:
//!
//! 1. reports parsed and applied to the telemetry store per second on one
//!    core (3-hop probe reports over 64 paths, all common INT
//!    instructions), next to parsing the same reports without applying
//!    them; goal ≥ 2,000,000/s;
//! 2. end to end over UDP on loopback: one sender thread (`sendmmsg`,
//!    batches of 64) blasting report datagrams at the collector (one
//!    socket, a single-threaded Tokio runtime), next to the same sender
//!    blasting the same datagrams at a receiver that only counts them
//!    (`recvmmsg`, batches of 64): the raw UDP receive rate of this
//!    machine. Once with one report per datagram, once with as many 3-hop
//!    reports as fit a 1500-byte MTU coalesced behind one group header
//!    (Telemetry Report v2.0), as a host agent with `--report-coalesce`
//!    sends them. Goal ≥ 1,000,000 reports/s.
//!
//! Run: `cargo bench -p solyx --bench telemetry` (add `-- --quick` for a
//! short run, `-- --senders N` for N sender threads in both UDP runs,
//! `-- --per-datagram 1,4,7` for the reports per datagram to run).

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
use solyx_int::{GroupHeader, Report};

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

/// Blasts `datagrams` at `to` with sendmmsg until `stop`, counting what
/// it sent in [`SENT`].
fn blast(to: SocketAddr, datagrams: Arc<Vec<Bytes>>, stop: Arc<AtomicBool>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("sender socket");
    socket.connect(to).expect("connect");
    let fd = socket.as_raw_fd();
    let addrs: Vec<Option<SockaddrIn>> = vec![None; 64];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(64, None);
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let slices: Vec<[IoSlice<'_>; 1]> = (0..64)
            .map(|i| [IoSlice::new(&datagrams[(next + i) % datagrams.len()])])
            .collect();
        next = (next + 64) % datagrams.len();
        match nsock::sendmmsg(fd, &mut headers, &slices, &addrs, [], MsgFlags::empty()) {
            Ok(r) => {
                SENT.fetch_add(r.count() as u64, Ordering::Relaxed);
            }
            // The receiver's refusal of an earlier datagram (ICMP) shows
            // here; go on.
            Err(_) => std::thread::yield_now(),
        }
    }
}

/// `count` datagrams of `per` reports each, taken in turn from `reports`
/// (one datagram per report when `per` is 1, as they are).
fn datagrams(reports: &[Bytes], per: usize, count: usize) -> Vec<Bytes> {
    if per <= 1 {
        return reports.to_vec();
    }
    (0..count)
        .map(|k| {
            let these: Vec<Bytes> = (0..per)
                .map(|j| reports[(k * per + j) % reports.len()].clone())
                .collect();
            let group = GroupHeader {
                hw_id: 0,
                sequence_number: k as u32 & 0x3f_ffff,
                node_id: 0x0a00_0002,
            };
            int_reports::coalesce(group, &these)
        })
        .collect()
}

/// What a receiver took from the senders over one window.
struct Udp {
    /// Datagrams per second received.
    datagrams: f64,
    /// Reports per second received (raw: datagrams × reports per
    /// datagram; collector: reports applied).
    reports: f64,
    /// Datagrams per second the senders pushed.
    sent: f64,
}

/// Starts `senders` threads blasting `datagrams` at `to`, waits budget / 5,
/// reads `count` (datagrams, reports) over `budget`, stops the senders.
fn measure(
    to: SocketAddr,
    budget: Duration,
    datagrams: &Arc<Vec<Bytes>>,
    senders: usize,
    stop: &Arc<AtomicBool>,
    count: impl Fn() -> (u64, u64),
) -> Udp {
    let threads: Vec<_> = (0..senders)
        .map(|_| {
            let (datagrams, stop) = (datagrams.clone(), stop.clone());
            std::thread::spawn(move || blast(to, datagrams, stop))
        })
        .collect();
    std::thread::sleep(budget / 5);
    let (d0, r0, t0, s0) = {
        let (d, r) = count();
        (d, r, Instant::now(), SENT.load(Ordering::Relaxed))
    };
    std::thread::sleep(budget);
    let (d1, r1, t1, s1) = {
        let (d, r) = count();
        (d, r, Instant::now(), SENT.load(Ordering::Relaxed))
    };
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("sender");
    }
    let secs = (t1 - t0).as_secs_f64();
    Udp {
        datagrams: (d1 - d0) as f64 / secs,
        reports: (r1 - r0) as f64 / secs,
        sent: (s1 - s0) as f64 / secs,
    }
}

/// Datagrams all senders pushed so far (read at the same instants as the
/// receivers, so both rates cover the same window).
static SENT: AtomicU64 = AtomicU64::new(0);

/// The raw rate: what a receiver that only counts takes from the senders.
fn raw_udp(budget: Duration, datagrams: &Arc<Vec<Bytes>>, per: usize, senders: usize) -> Udp {
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
    let udp = measure(to, budget, datagrams, senders, &stop, || {
        let d = received.load(Ordering::Relaxed);
        (d, d * per as u64)
    });
    counter.join().expect("counter");
    udp
}

/// What the collector applies from the senders.
fn collector_udp(budget: Duration, datagrams: &Arc<Vec<Bytes>>, senders: usize) -> Udp {
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
    let udp = measure(
        collector.local_addr(),
        budget,
        datagrams,
        senders,
        &stop,
        || {
            let c = collector.counters();
            (c.datagrams, c.reports)
        },
    );
    rt_thread.join().expect("runtime thread");
    let total = collector.counters();
    assert_eq!(total.rejected_total(), 0, "{total:?}");
    udp
}

fn goal(ratio: f64) -> &'static str {
    if ratio >= 1.0 {
        "met"
    } else {
        "not met"
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let senders: usize = value("--senders")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let budget = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(1)
    };
    let singles = reports(4096);
    let size = singles[0].len();
    let fit = int_reports::fit(&singles[0], int_reports::MTU_1500_PAYLOAD);
    let per_datagram: Vec<usize> = match value("--per-datagram") {
        Some(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .filter(|n| *n >= 1)
            .collect(),
        None => vec![1, fit],
    };
    println!(
        "INT collector benchmark: {} distinct 3-hop probe reports of {size} bytes, {PATHS} paths; {fit} fit one {}-byte UDP payload (1500-byte MTU)",
        singles.len(),
        int_reports::MTU_1500_PAYLOAD
    );

    // 1. One core.
    let parse = rate(budget, &singles, parse_only);
    let mut store = TelemetryStore::new(StoreConfig::default(), Instant::now());
    let apply = rate(budget, &singles, |d| parse_and_apply(&mut store, d));
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

    // 2. Over UDP on loopback, the raw receiver and the collector on the
    // same datagrams, one after the other.
    // TODO-perf: with reports coalesced 7 per datagram the collector, not
    // the datagram rate, is the limit: it took 60–80% of the datagrams the
    // sender offered on the loaded 2-core machine (one socket, one task
    // parsing and applying every report). Applying in parallel (a store
    // sharded by link, several tasks per socket) would lift it.
    for per in per_datagram {
        let shared = Arc::new(datagrams(&singles, per, singles.len()));
        let bytes = shared[0].len();
        let raw = raw_udp(budget * 2, &shared, per, senders);
        let col = collector_udp(budget * 2, &shared, senders);
        let line = |name: &str, u: &Udp| {
            println!(
                "  {name:<26} {:>10.0} reports/s  {:>9.0} datagrams/s  (senders pushed {:.0} datagrams/s; {:.0}% taken)",
                u.reports,
                u.datagrams,
                u.sent,
                100.0 * u.datagrams / u.sent.max(1.0)
            );
        };
        println!(
            "loopback UDP, {senders} sender(s), {per} report(s) per datagram ({bytes}-byte payload):"
        );
        line("raw receive (count only)", &raw);
        line("collector (parse + apply)", &col);
        let to_goal = col.reports / 1e6;
        println!(
            "  collector {:.2}× of raw; goal 1,000,000 reports/s: {to_goal:.2}× — {}",
            col.reports / raw.reports,
            goal(to_goal)
        );
        if bytes > int_reports::MTU_1500_PAYLOAD {
            println!("  (datagrams larger than a 1500-byte MTU carries)");
        }
    }
}
