//! The cost of the `solyx_host` programs on a host's own traffic: UDP
//! datagrams per second with the host programs attached against the same
//! host without them, measured in the same run and printed as ratios.
//!
//! Run as root: `cargo bench -p solyx-agent --bench host_path` (about
//! 40 s), or `-- --quick` (about 10 s). Without root or without the eBPF
//! object it says why and exits successfully.
//!
//! ```text
//!  sxhb<pid>-a                          sxhb<pid>-b
//!  10.91.0.1  sxhba<pid> ───────────── sxhbb<pid>  10.91.0.2
//!  sender thread                        (send: TC drop; sink: receiver
//!                                        thread and the INT exporter)
//! ```
//!
//! * **send**: one thread in `a` sends 64-byte UDP datagrams to `b` as fast
//!   as `send_to` returns, for the run's seconds; `b` drops everything at
//!   TC ingress (a two-instruction TCX program, the forwarding bench's), so
//!   `b` costs the same either way.
//!   Baseline: no program on `a`. With the host: `host_egress` on `a`'s
//!   port with a route to `10.91.0.0/24` over a group of two paths (two
//!   labels, weights 1:1) and a 500 µs flowlet gap: a route and group
//!   lookup, the flowlet bucket, four counters and a label push per
//!   datagram.
//! * **sink**: `a` sends datagrams with an INT-MD block (shim, header, two
//!   hops of switch ID + hop latency) and 64 bytes of payload to a UDP
//!   port of `b`, where a receiver thread counts what arrives. Baseline:
//!   no program on `b` (the application gets the INT bytes with its
//!   payload). With the host: `host_ingress` on `b`'s port strips INT and
//!   hands it to the agent, whose exporter sends one Telemetry Report per
//!   datagram to a collector socket on `b`'s loopback.
//!
//! Both configurations alternate run by run; the table gives the median
//! datagrams/s of each and the ratio with/without.

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use solyx_agent::ebpf::common::host::{HostGroup, HostPath, HostRoute, SinkPort};
use solyx_agent::ebpf::{remove_instance, Host, SinkExporter, DEFAULT_PIN_ROOT};
use solyx_int::{HopMetadata, Instructions, IntMdBuilder, Stack};

/// The forwarding bench's hand-assembled TCX drop program.
#[path = "forwarding/sys.rs"]
#[allow(unsafe_code, dead_code)]
mod sys;

const SINK_PORT: u16 = 9001;
const DROP_PORT: u16 = 9000;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `f` on a thread in namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        solyx_agent::switch::enter_netns(&ns).expect("enter namespace");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Namespaces and pins, removed by name on drop.
struct Testbed {
    a: String,
    b: String,
    dev_a: String,
    dev_b: String,
    instance: String,
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.instance);
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat"])
        .arg(format!("/sys/class/net/{dev}/address"))
        .output()
        .expect("read MAC");
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    bytes.try_into().unwrap_or([0; 6])
}

/// Sends datagrams `payload` to `to` from namespace `ns` for `seconds`;
/// returns datagrams/s the sender got out.
fn send_for(ns: &str, payload: Vec<u8>, to: (&'static str, u16), seconds: f64) -> f64 {
    in_ns(ns, move || {
        let socket = UdpSocket::bind("10.91.0.1:0").expect("bind");
        let start = Instant::now();
        let limit = Duration::from_secs_f64(seconds);
        let mut sent = 0u64;
        while start.elapsed() < limit {
            for _ in 0..64 {
                if socket.send_to(&payload, to).is_ok() {
                    sent += 1;
                }
            }
        }
        sent as f64 / start.elapsed().as_secs_f64()
    })
}

fn int_payload() -> Vec<u8> {
    let hops = [
        HopMetadata {
            switch_id: Some(2),
            hop_latency: Some(900),
            ..HopMetadata::default()
        },
        HopMetadata {
            switch_id: Some(1),
            hop_latency: Some(800),
            ..HopMetadata::default()
        },
    ];
    let mut b = BytesMut::new();
    IntMdBuilder::new(
        Instructions::SWITCH_ID | Instructions::HOP_LATENCY,
        6,
        Stack::Hops(&hops),
    )
    .write(&mut b)
    .expect("INT block");
    b.extend_from_slice(&[0x5a; 64]);
    b.to_vec()
}

/// Counts datagrams arriving at `b`'s sink port while `a` sends them.
fn sink_run(t: &Testbed, seconds: f64) -> f64 {
    let receiver = in_ns(&t.b, || {
        UdpSocket::bind(("10.91.0.2", SINK_PORT)).expect("bind")
    });
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let (flag, counter) = (stop.clone(), count.clone());
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !flag.load(Ordering::Relaxed) {
            if receiver.recv(&mut buf).is_ok() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let start = Instant::now();
    send_for(&t.a, int_payload(), ("10.91.0.2", SINK_PORT), seconds);
    let received = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    received
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if !nix::unistd::Uid::effective().is_root() {
        println!("host_path: skipped: needs root (network namespaces and eBPF)");
        return;
    }
    if !solyx_agent::ebpf::is_built() {
        println!("host_path: skipped: the agent was built without eBPF programs");
        return;
    }
    if let Err(e) = run(quick) {
        println!("host_path: failed: {e}");
        std::process::exit(1);
    }
}

fn run(quick: bool) -> Result<(), String> {
    let pid = std::process::id();
    let t = Testbed {
        a: format!("sxhb{pid}-a"),
        b: format!("sxhb{pid}-b"),
        dev_a: format!("sxhba{pid}"),
        dev_b: format!("sxhbb{pid}"),
        instance: format!("sxhb{pid}"),
    };
    for ns in [&t.a, &t.b] {
        ip(&["netns", "add", ns])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
    }
    ip(&[
        "link", "add", &t.dev_a, "netns", &t.a, "type", "veth", "peer", "name", &t.dev_b, "netns",
        &t.b,
    ])?;
    ip(&["-n", &t.a, "addr", "add", "10.91.0.1/24", "dev", &t.dev_a])?;
    ip(&["-n", &t.b, "addr", "add", "10.91.0.2/24", "dev", &t.dev_b])?;
    for (ns, dev) in [(&t.a, &t.dev_a), (&t.b, &t.dev_b)] {
        ip(&["-n", ns, "link", "set", dev, "up"])?;
    }
    let mac_b = mac_of(&t.b, &t.dev_b);
    let mac_a = mac_of(&t.a, &t.dev_a);
    ip(&[
        "-n",
        &t.a,
        "neigh",
        "replace",
        "10.91.0.2",
        "lladdr",
        &mac_b
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        "dev",
        &t.dev_a,
        "nud",
        "permanent",
    ])?;

    let (runs, seconds) = if quick { (3, 0.5) } else { (7, 2.0) };
    let mut send = (Vec::new(), Vec::new());
    let mut sink = (Vec::new(), Vec::new());

    // ---- send ---------------------------------------------------------
    let dev_b = t.dev_b.clone();
    let drop_link = in_ns(&t.b, move || -> Result<(sys::BpfFd, sys::BpfFd), String> {
        let ifindex = nix::net::if_::if_nametoindex(dev_b.as_str()).map_err(|e| e.to_string())?;
        let program =
            sys::BpfFd::load_tc("sxhb_drop", &sys::drop_program()).map_err(|e| e.to_string())?;
        let link = program
            .attach_tcx_ingress(ifindex)
            .map_err(|e| e.to_string())?;
        Ok((program, link))
    })?;
    let payload = vec![0x5au8; 64];
    for _ in 0..runs {
        send.0.push(send_for(
            &t.a,
            payload.clone(),
            ("10.91.0.2", DROP_PORT),
            seconds,
        ));
        let (instance, dev) = (t.instance.clone(), t.dev_a.clone());
        let host = in_ns(&t.a, move || -> Result<Host, String> {
            let mut host = Host::load_with(Path::new(DEFAULT_PIN_ROOT), &instance)
                .map_err(|e| e.to_string())?;
            host.attach(&dev, 1).map_err(|e| e.to_string())?;
            let path = |label| HostPath {
                label,
                egress_ifindex: 0,
                egress_port: 1,
                path_id: 1,
                dst_mac: mac_b,
                src_mac: mac_a,
            };
            let mut group = HostGroup {
                slot_count: 2,
                version: 1,
                ..HostGroup::default()
            };
            group.slots[0] = path(100);
            group.slots[1] = path(200);
            host.set_group(1, &group).map_err(|e| e.to_string())?;
            host.insert_route(
                [10, 91, 0, 0],
                24,
                HostRoute {
                    group_id: 1,
                    hit_slot: 0,
                },
            )
            .map_err(|e| e.to_string())?;
            host.set_flowlet_gap(500_000).map_err(|e| e.to_string())?;
            Ok(host)
        })?;
        send.1.push(send_for(
            &t.a,
            payload.clone(),
            ("10.91.0.2", DROP_PORT),
            seconds,
        ));
        let pushed = host
            .event(solyx_agent::ebpf::common::host::HostEvent::LabelPushed)
            .map_err(|e| e.to_string())?;
        if pushed == 0 {
            return Err("the host program labelled nothing".into());
        }
        drop(host);
        remove_instance(Path::new(DEFAULT_PIN_ROOT), &t.instance).map_err(|e| e.to_string())?;
    }
    drop(drop_link);

    // ---- sink ---------------------------------------------------------
    for _ in 0..runs {
        sink.0.push(sink_run(&t, seconds));
        let (instance, dev) = (t.instance.clone(), t.dev_b.clone());
        let (host, exporter, collector) = in_ns(
            &t.b,
            move || -> Result<(Host, SinkExporter, UdpSocket), String> {
                let mut host = Host::load_with(Path::new(DEFAULT_PIN_ROOT), &instance)
                    .map_err(|e| e.to_string())?;
                host.attach(&dev, 1).map_err(|e| e.to_string())?;
                host.insert_sink_port(SINK_PORT, SinkPort { flags: 0 })
                    .map_err(|e| e.to_string())?;
                let collector = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
                let rings = host.open_sink(64).map_err(|e| e.to_string())?;
                let socket =
                    SinkExporter::connect(collector.local_addr().map_err(|e| e.to_string())?)
                        .map_err(|e| e.to_string())?;
                let exporter = SinkExporter::start(rings, 2, socket).map_err(|e| e.to_string())?;
                Ok((host, exporter, collector))
            },
        )?;
        sink.1.push(sink_run(&t, seconds));
        let exported = exporter.stats().exported.load(Ordering::Relaxed);
        if exported == 0 {
            return Err("the sink exported nothing".into());
        }
        drop((exporter, collector, host));
        remove_instance(Path::new(DEFAULT_PIN_ROOT), &t.instance).map_err(|e| e.to_string())?;
    }

    let rows = [
        ("send: 64 B UDP from the host", send),
        ("sink: INT-MD datagrams received", sink),
    ];
    println!(
        "host_path: {runs} runs of {seconds} s each, medians (datagrams/s), same run, 2 configurations interleaved"
    );
    println!(
        "| traffic | without host programs | with host programs | ratio |\n| --- | ---: | ---: | ---: |"
    );
    for (name, (without, with)) in rows {
        let (a, b) = (median(without), median(with));
        println!("| {name} | {a:.0} | {b:.0} | {:.2}× |", b / a);
    }
    Ok(())
}
