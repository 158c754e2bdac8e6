//! Packets per second through one forwarding element between veth pairs:
//! Linux IPv4 forwarding, solyx-agent's eBPF fabric stage (TC ingress,
//! `bpf_redirect`) and Open vSwitch's userspace datapath (`netdev`), with
//! the same senders, the same receiver and the same frames, measured in
//! the same run and printed as ratios.
//!
//! Run as root: `cargo bench -p solyx-agent --bench forwarding` (about 2
//! minutes), or `-- --quick` (about 20 s); `-- --help` lists the options.
//! Without root or without the eBPF object the bench says why and exits
//! successfully; without Open vSwitch it compares the kernel and eBPF only.
//!
//! ```text
//!  sxb<pid>-gen               sxb<pid>-dut                     sxb<pid>-sink
//!  g0 ──────────────────────── i0 ─┐
//!  g1 ──────────────────────── i1 ─┼─ forwarding element ─ o ──── s   TCX drop
//!  …  (one veth pair per sender)   ┘
//!  d0 ───────────────────────────────────────────────────────────── r0  TCX drop
//!  d1 ───────────────────────────────────────────────────────────── r1  (direct:
//!  …                                                                  sender rate)
//! ```
//!
//! One sender thread per CPU sends pre-built frames from an `AF_PACKET`
//! socket (`sendmmsg`, 64 frames a call, `PACKET_QDISC_BYPASS`, 64 UDP
//! flows per sender) into its own port of the forwarding element. Every
//! receiver port drops at TC ingress (a two-instruction TCX program), so
//! that no receiver network stack runs, and delivered packets are the
//! receive counters of the receiver's veths (`/proc/net/dev` of the sink
//! namespace). The forwarding elements:
//!
//! * direct: the senders' second veths go straight to the sink; this is the
//!   senders' maximum rate, and a forwarder that reaches it is sender-bound;
//! * kernel: `ip_forward=1`, a gateway route, a permanent neighbour entry;
//! * TC redirect floor: a four-instruction TC program that only calls
//!   `bpf_redirect` (no parsing, no maps, no rewrite): the least any TC
//!   forwarder on this path costs;
//! * eBPF: [`Fabric`] (TC ingress) and [`IntTransit`] (TC egress, INT off:
//!   no switch ID, no watch rules) loaded and attached to every port like
//!   the agent's data plane does, with the entries the agent would write:
//!   an MPLS transit entry (TTL decrement), an MPLS pop entry (pop,
//!   destination MAC), the output port's source MAC (egress rewrite), and,
//!   when the stage routes IPv4, a /16 route to a next hop among 320 other
//!   prefixes (LPM, TTL decrement, destination MAC);
//! * OVS: `ovsdb-server` and `ovs-vswitchd` started here in the forwarding
//!   namespace with their own files in a temporary directory, a `netdev`
//!   (userspace datapath) bridge, and one OpenFlow rule per port and
//!   traffic kind doing what the fabric stage does (IPv4: both MACs and
//!   `dec_ttl`; MPLS transit: `dec_mpls_ttl` and the source MAC; pop:
//!   `pop_mpls` and both MACs). Twice: with `system` ports, which OVS reads
//!   and writes through packet sockets (the frames would also climb the
//!   forwarding namespace's own stack; a TCX drop on the input ports stops
//!   them there, after the packet sockets got their copy), and with
//!   `afxdp-nonpmd` ports (AF_XDP sockets behind an XDP program, polled by
//!   OVS's main thread: a busy-polling PMD thread would take one of the
//!   two CPUs whole). "vs OVS" compares with the faster of the two.
//!
//! veth offloads are off (GRO, GSO, TSO) and every frame is one skb: the
//! large-frame figure is per-frame forwarding at 1514 bytes, not what
//! segmentation offload achieves with 64 KiB super-packets.
//!
//! Configurations run interleaved (every repetition visits all of them) so
//! that drifting background load spreads over all; each figure is the
//! median of the repetitions, with the minimum and maximum. Each window
//! also records the CPU time spent per delivered packet (`schedstat` of the
//! sender threads, which run the softirqs their sends raise, of
//! `ksoftirqd`, and of `ovs-vswitchd`): on a shared machine packets/s
//! follow the share of the CPUs the run gets, CPU time per packet much
//! less so, and the difference to the direct path is what the forwarder
//! itself costs.
//!
//! Everything created here is named `sxb<pid>…` and removed by name when
//! the run ends, fails or is interrupted (SIGINT, SIGTERM, SIGHUP).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use solyx_agent::ebpf::common::route::{Ipv4Route, NextHop, ROUTE_KIND_NEXT_HOP};
use solyx_agent::ebpf::common::{
    MplsForward, ETHERTYPE_IPV4, ETHERTYPE_MPLS, MPLS_FLAG_POP, MPLS_FLAG_SET_DST_MAC,
};
use solyx_agent::ebpf::{remove_instance, Fabric, IntTransit, DEFAULT_PIN_ROOT};

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const USAGE: &str = "\
forwarding bench: packets/s through kernel IPv4 forwarding, the eBPF fabric
stage and Open vSwitch (userspace datapath) between veth pairs (needs root)

usage: cargo bench -p solyx-agent --bench forwarding [-- OPTIONS]

  --quick          short run for the main job (~20 s): 3 runs of 0.2 s, without
                   the TC floor, OVS system ports and the BPF run-time profile
  --runs N         repetitions of every configuration (default 5)
  --seconds S      length of one measurement window (default 0.6)
  --senders N      sender threads, one veth port each (default: CPUs, max 16)
  --only LIST      only these forwarders, comma-separated, of
                   direct,kernel,floor,ebpf,ovs,ovs-afxdp, and
                   ebpf-ingress (the ingress stage alone, only by name)
  --frames F       small (64 B), large (1518 B) or both (default)
  --no-ovs         leave Open vSwitch out (both port types)
  --no-floor       leave the TC redirect floor out
  -h, --help       this text";

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    runs: usize,
    window: Duration,
    warmup: Duration,
    senders: usize,
    ovs: bool,
    floor: bool,
    quick: bool,
    /// Forwarders to measure (all by default).
    only: Option<Vec<Dut>>,
    /// OVS with `system` ports as well as with AF_XDP ports.
    ovs_system: bool,
    /// The fabric program's run time per packet (BPF statistics).
    profile: bool,
    /// Frame lengths (without FCS) to send.
    sizes: Vec<usize>,
}

impl Options {
    /// Parses the arguments; `Ok(None)` for `--help`.
    fn parse(args: impl Iterator<Item = String>, cpus: usize) -> Result<Option<Self>> {
        let mut options = Self {
            runs: 5,
            window: Duration::from_millis(600),
            warmup: Duration::from_millis(200),
            senders: cpus.clamp(1, MAX_SENDERS),
            ovs: true,
            floor: true,
            quick: false,
            only: None,
            ovs_system: true,
            profile: true,
            sizes: vec![FRAME_SMALL, FRAME_LARGE],
        };
        let mut runs = None;
        let mut window = None;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| anyhow!("{name} needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                // cargo bench passes --bench to harness = false targets.
                "--bench" => {}
                "--quick" => options.quick = true,
                "--no-ovs" => options.ovs = false,
                "--no-floor" => options.floor = false,
                "--runs" => runs = Some(parse_number::<usize>("--runs", &value("--runs")?)?),
                "--seconds" => {
                    let seconds = parse_number::<f64>("--seconds", &value("--seconds")?)?;
                    if !(0.05..=60.0).contains(&seconds) {
                        bail!("--seconds must be between 0.05 and 60");
                    }
                    window = Some(Duration::from_secs_f64(seconds));
                }
                "--senders" => {
                    options.senders = parse_number("--senders", &value("--senders")?)?;
                    if !(1..=MAX_SENDERS).contains(&options.senders) {
                        bail!("--senders must be between 1 and {MAX_SENDERS}");
                    }
                }
                "--only" => {
                    let list = value("--only")?;
                    let duts = list
                        .split(',')
                        .map(|name| {
                            Dut::from_name(name.trim()).ok_or_else(|| {
                                anyhow!("--only: unknown forwarder {name:?}\n\n{USAGE}")
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    options.only = Some(duts);
                }
                "--frames" => {
                    options.sizes = match value("--frames")?.as_str() {
                        "small" => vec![FRAME_SMALL],
                        "large" => vec![FRAME_LARGE],
                        "both" => vec![FRAME_SMALL, FRAME_LARGE],
                        other => bail!("--frames: {other:?} is not small, large or both"),
                    };
                }
                "-h" | "--help" => return Ok(None),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if options.quick {
            options.runs = 3;
            options.window = Duration::from_millis(200);
            options.warmup = Duration::from_millis(120);
            // The floor, OVS's slower port type and the BPF run-time
            // profile are for the analysis, not for the headline figures.
            options.floor = false;
            options.ovs_system = false;
            options.profile = false;
        }
        if let Some(runs) = runs {
            if runs == 0 {
                bail!("--runs must be at least 1");
            }
            options.runs = runs;
        }
        if let Some(window) = window {
            options.window = window;
        }
        // Forwarders asked for by name run even where --quick leaves them out.
        if let Some(only) = &options.only {
            options.floor |= only.contains(&Dut::TcFloor);
            options.ovs_system |= only.contains(&Dut::Ovs);
        }
        Ok(Some(options))
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T> {
    text.parse()
        .map_err(|_| anyhow!("{name}: {text:?} is not a valid number"))
}

/// Sender threads at most (interface names hold two digits of index).
const MAX_SENDERS: usize = 16;

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

fn main() -> ExitCode {
    let cpus = allowed_cpus();
    let options = match Options::parse(std::env::args().skip(1), cpus.len()) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("forwarding bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(reason) = skip_reason() {
        println!("forwarding bench skipped: {reason}");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = watch_signals() {
        eprintln!("forwarding bench: {e:#}");
        return ExitCode::FAILURE;
    }
    match run(&options, &cpus) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if STOP.load(Ordering::SeqCst) {
                eprintln!("forwarding bench interrupted; the testbed was removed");
                ExitCode::from(130)
            } else {
                eprintln!("forwarding bench failed: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Why the bench cannot run here at all, if it cannot.
fn skip_reason() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some(
            "needs root (network namespaces, veths, BPF programs); \
             run `sudo -E cargo bench -p solyx-agent --bench forwarding`"
                .into(),
        );
    }
    if !solyx_agent::ebpf::is_built() {
        return Some(
            "the agent was built without eBPF programs (nightly rust-src or \
             bpf-linker missing, or SOLYX_EBPF_BUILD=skip): install them with \
             scripts/setup.sh and rebuild"
                .into(),
        );
    }
    for tool in ["ip", "ethtool"] {
        if find_program(tool).is_none() {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// Open vSwitch programs, when all of them are installed.
fn ovs_programs() -> Result<OvsPrograms, String> {
    let find = |name: &str| find_program(name).ok_or_else(|| format!("{name} not found"));
    let schema = Path::new("/usr/share/openvswitch/vswitch.ovsschema");
    if !schema.exists() {
        return Err(format!("{} not found", schema.display()));
    }
    Ok(OvsPrograms {
        ovsdb_tool: find("ovsdb-tool")?,
        ovsdb_server: find("ovsdb-server")?,
        vswitchd: find("ovs-vswitchd")?,
        vsctl: find("ovs-vsctl")?,
        ofctl: find("ovs-ofctl")?,
        schema: schema.to_owned(),
    })
}

/// `name` in `PATH` or the sbin directories (not always in root's `PATH`
/// under sudo).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    let pid = nix::unistd::Pid::from_raw(0);
    let cpus: Vec<usize> = nix::sched::sched_getaffinity(pid)
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    if cpus.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        (0..n).collect()
    } else {
        cpus
    }
}

// ---------------------------------------------------------------------------
// Interruption
// ---------------------------------------------------------------------------

/// Set on SIGINT, SIGTERM or SIGHUP: every wait ends with an error, so that
/// the guards remove the testbed on the way out.
static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the signal handlers (on a thread of their own).
fn watch_signals() -> Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let streams = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                );
                let (Ok(mut int), Ok(mut term), Ok(mut hup)) = streams else {
                    let _ = ready_tx.send(Err("cannot install signal handlers".into()));
                    return;
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                        _ = hup.recv() => {}
                    }
                    if STOP.swap(true, Ordering::SeqCst) {
                        eprintln!("still removing the testbed, please wait");
                    } else {
                        eprintln!("\ninterrupted: stopping senders and removing the testbed");
                    }
                }
            });
        })
        .context("start the signal thread")?;
    ready_rx
        .recv()
        .map_err(|_| anyhow!("the signal thread ended early"))?
        .map_err(|e| anyhow!(e))
}

/// An error when the run was interrupted.
fn check_interrupted() -> Result<()> {
    if STOP.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps for `duration`, ending early with an error on interruption.
fn pause(duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    loop {
        check_interrupted()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

// ---------------------------------------------------------------------------
// What is measured
// ---------------------------------------------------------------------------

/// The forwarding element between senders and receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Dut {
    /// No forwarder: the senders' direct veths (their maximum rate).
    Direct,
    Kernel,
    /// A TC program that only redirects.
    TcFloor,
    Ebpf,
    /// The fabric's ingress stage without the egress stage.
    EbpfIngress,
    /// OVS with `system` ports (packet sockets).
    Ovs,
    /// OVS with `afxdp-nonpmd` ports.
    OvsXdp,
}

/// What the senders send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Traffic {
    Ipv4,
    /// MPLS, label [`LABEL_TRANSIT`]: swapped to itself, TTL decremented.
    MplsTransit,
    /// MPLS, label [`LABEL_POP`]: popped, IPv4 goes out.
    MplsPop,
}

/// One row of the result tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Case {
    dut: Dut,
    traffic: Traffic,
}

impl Case {
    fn label(self) -> &'static str {
        match (self.dut, self.traffic) {
            (Dut::Direct, _) => "direct veth (sender max)",
            (Dut::Kernel, _) => "kernel IPv4 forwarding",
            (Dut::TcFloor, _) => "TC redirect only (floor)",
            (Dut::Ebpf, Traffic::Ipv4) => "eBPF fabric, IPv4",
            (Dut::Ebpf, Traffic::MplsTransit) => "eBPF fabric, MPLS transit",
            (Dut::Ebpf, Traffic::MplsPop) => "eBPF fabric, MPLS pop",
            (Dut::EbpfIngress, Traffic::Ipv4) => "eBPF ingress only, IPv4",
            (Dut::EbpfIngress, Traffic::MplsTransit) => "eBPF ingress only, MPLS tr.",
            (Dut::EbpfIngress, Traffic::MplsPop) => "eBPF ingress only, MPLS pop",
            (Dut::Ovs, Traffic::Ipv4) => "OVS netdev, IPv4",
            (Dut::Ovs, Traffic::MplsTransit) => "OVS netdev, MPLS transit",
            (Dut::Ovs, Traffic::MplsPop) => "OVS netdev, MPLS pop",
            (Dut::OvsXdp, Traffic::Ipv4) => "OVS netdev AF_XDP, IPv4",
            (Dut::OvsXdp, Traffic::MplsTransit) => "OVS netdev AF_XDP, MPLS tr.",
            (Dut::OvsXdp, Traffic::MplsPop) => "OVS netdev AF_XDP, MPLS pop",
        }
    }
}

impl Dut {
    /// Whether this is one of the OVS configurations.
    fn is_ovs(self) -> bool {
        matches!(self, Self::Ovs | Self::OvsXdp)
    }

    /// The name `--only` takes.
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "direct" => Self::Direct,
            "kernel" => Self::Kernel,
            "floor" => Self::TcFloor,
            "ebpf" => Self::Ebpf,
            "ebpf-ingress" => Self::EbpfIngress,
            "ovs" => Self::Ovs,
            "ovs-afxdp" => Self::OvsXdp,
            _ => return None,
        })
    }
}

/// The forwarders of this run, each with the traffic kinds sent through it.
type Plan = Vec<(Dut, Vec<Traffic>)>;

/// The traffic kinds of `dut` in `plan`.
fn traffics(plan: &Plan, dut: Dut) -> &[Traffic] {
    plan.iter()
        .find(|(d, _)| *d == dut)
        .map_or(&[], |(_, traffics)| traffics.as_slice())
}

/// Frame lengths without the FCS: 60 (a 64-byte frame on the wire) and 1514
/// (a 1500-byte IP MTU).
const FRAME_SMALL: usize = 60;
const FRAME_LARGE: usize = 1514;

/// Flows (UDP source ports) per sender.
const FLOWS: u16 = 64;

const LABEL_TRANSIT: u32 = 100;
const LABEL_POP: u32 = 200;

/// The route of the measured traffic (10.80.0.0/16 through the output
/// port) among a few hundred others, so that the LPM trie has some depth.
fn install_routes(fabric: &mut Fabric, egress: u32) -> Result<()> {
    let tables = fabric.tables_mut();
    let next_hop = NextHop {
        egress_ifindex: egress,
        egress_port: FABRIC_OUT_PORT,
        flags: 0,
        dst_mac: mac(ROLE_SINK, 0),
        _pad: [0; 2],
    };
    let mut routes = vec![([10, 80, 0, 0], 16)];
    routes.extend((0..=255u8).map(|i| ([10, 81, i, 0], 24)));
    routes.extend((0..64u8).map(|i| ([172, 16 + (i >> 2), (i & 3) << 6, 0], 26)));
    for (slot, (addr, prefix_len)) in (0u32..).zip(routes) {
        tables.reset_route_hits(slot)?;
        let route = Ipv4Route {
            kind: ROUTE_KIND_NEXT_HOP,
            hit_slot: slot,
            group_id: 0,
            next_hop,
        };
        tables.insert_route(addr, prefix_len, &route)?;
    }
    Ok(())
}

/// One measurement window.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Packets/s counted at the receiver.
    delivered: f64,
    /// Packets/s the senders handed to their sockets.
    offered: f64,
    /// CPU time spent per delivered packet, in nanoseconds: the sender
    /// threads (which also run the softirqs their sends raise: both veth
    /// hops, the forwarding, the receiver's drop), `ksoftirqd`, and the
    /// OVS daemon's threads when OVS forwards.
    cpu_ns: f64,
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

fn run(options: &Options, cpus: &[usize]) -> Result<()> {
    let started = Instant::now();
    let ovs = if options.ovs {
        match ovs_programs() {
            Ok(programs) => Some(programs),
            Err(why) => {
                println!(
                    "Open vSwitch is not available ({why}): comparing kernel and eBPF only \
                     (install openvswitch-switch for the three-way comparison)"
                );
                None
            }
        }
    } else {
        None
    };

    let wanted = |dut: Dut| options.only.as_ref().is_none_or(|only| only.contains(&dut));
    let floor = options.floor && wanted(Dut::TcFloor);
    let ovs_system = options.ovs_system && wanted(Dut::Ovs);
    let ovs = ovs.filter(|_| ovs_system || wanted(Dut::OvsXdp));

    let mut bed = Testbed::create(options.senders)?;
    bed.configure()?;
    if wanted(Dut::Ebpf) || wanted(Dut::EbpfIngress) {
        bed.load_fabric()?;
    }
    if floor {
        bed.load_floor()?;
    }
    if let Some(programs) = ovs {
        match bed.start_ovs(programs) {
            Ok(()) => {}
            Err(e) => {
                check_interrupted()?;
                println!("Open vSwitch did not start ({e:#}): comparing kernel and eBPF only");
                bed.ovs = None;
            }
        }
    }

    let mut ebpf = vec![Traffic::MplsTransit, Traffic::MplsPop];
    if bed.ebpf_ipv4 {
        ebpf.insert(0, Traffic::Ipv4);
    }
    let all = [Traffic::Ipv4, Traffic::MplsTransit, Traffic::MplsPop];
    let mut plan: Plan = vec![
        (Dut::Direct, vec![Traffic::Ipv4]),
        (Dut::Kernel, vec![Traffic::Ipv4]),
    ];
    if floor {
        plan.push((Dut::TcFloor, vec![Traffic::Ipv4]));
    }
    if bed.fabric.is_some() {
        // The ingress stage alone only when asked for by name (analysis).
        if options.only.is_some() {
            plan.push((Dut::EbpfIngress, ebpf.clone()));
        }
        plan.push((Dut::Ebpf, ebpf));
    }
    if bed.ovs.is_some() {
        if ovs_system {
            plan.push((Dut::Ovs, all.to_vec()));
        }
        plan.push((Dut::OvsXdp, all.to_vec()));
    }
    plan.retain(|(dut, _)| wanted(*dut));

    print_header(options, cpus);
    let mut results: BTreeMap<(Case, usize), Vec<Sample>> = BTreeMap::new();
    // OVS port types that failed: left out of the rest of the run (the
    // comparison goes on without them); any other failure ends the run.
    let mut failed: Vec<Dut> = Vec::new();
    for run in 0..options.runs {
        // Forwarders that are set up in milliseconds take turns size by
        // size, so that the kernel's and the eBPF stage's windows of one
        // size are a few seconds apart at most and see the same background
        // load; OVS (port changes take a tenth of a second) runs as a block.
        let mut steps: Vec<(Dut, &[Traffic], &[usize])> = Vec::new();
        for size in options.sizes.chunks(1) {
            for (dut, dut_traffics) in plan.iter().filter(|(dut, _)| !dut.is_ovs()) {
                steps.push((*dut, dut_traffics, size));
            }
        }
        for (dut, dut_traffics) in plan.iter().filter(|(dut, _)| dut.is_ovs()) {
            steps.push((*dut, dut_traffics, &options.sizes));
        }
        for (dut, dut_traffics, sizes) in steps {
            if failed.contains(&dut) {
                continue;
            }
            let measured = bed
                .enter(dut)
                .and_then(|()| measure_dut(&bed, dut, dut_traffics, sizes, run, options, cpus));
            let left = bed.leave(dut);
            match measured.and_then(|samples| left.map(|()| samples)) {
                Ok(samples) => {
                    for (key, sample) in samples {
                        results.entry(key).or_default().push(sample);
                    }
                }
                Err(e) if dut.is_ovs() => {
                    check_interrupted()?;
                    println!("leaving {dut:?} out of the run: {e:#}");
                    failed.push(dut);
                }
                Err(e) => return Err(e),
            }
        }
    }
    plan.retain(|(dut, _)| !failed.contains(dut));

    let profile = if options.profile {
        bed.profile_fabric(options, cpus, traffics(&plan, Dut::Ebpf))?
    } else {
        BTreeMap::new()
    };
    let counters = bed.fabric_counters()?;
    print_report(options, &plan, &results, &profile);
    if !counters.is_empty() {
        println!("{counters}");
    }
    drop(bed);
    println!(
        "\ntotal time {:.0} s, load average {} at the end; testbed removed",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Testbed
// ---------------------------------------------------------------------------

/// One window per traffic kind and frame size in `sizes` through `dut` (set
/// up already): the samples, with a progress line per traffic kind.
fn measure_dut(
    bed: &Testbed,
    dut: Dut,
    dut_traffics: &[Traffic],
    sizes: &[usize],
    run: usize,
    options: &Options,
    cpus: &[usize],
) -> Result<Vec<((Case, usize), Sample)>> {
    let mut samples = Vec::new();
    for &traffic in dut_traffics {
        let case = Case { dut, traffic };
        let mut line = format!("run {}/{}  {:<27}", run + 1, options.runs, case.label());
        for &size in sizes {
            let sample = bed.measure(case, size, options, cpus)?;
            if sample.delivered <= 0.0 {
                bail!(
                    "{} delivered nothing with {size}-byte frames (offered {:.3} Mpps): \
                     the forwarder is not set up",
                    case.label(),
                    sample.offered / 1e6
                );
            }
            let _ = write!(
                line,
                "  {size:>4} B {:>6.3} Mpps (offered {:>6.3})",
                sample.delivered / 1e6,
                sample.offered / 1e6
            );
            samples.push(((case, size), sample));
        }
        println!("{line}");
    }
    Ok(samples)
}

/// Runs `attach` until it does not fail with `EEXIST`, for up to 2 s.
///
/// A detached fabric port's TCX link is pinned, and unpinning releases the
/// link from a kernel work queue, after `detach` has returned: attaching
/// the same program to the same interface right away can still find the
/// old link there (`bpf_mprog_attach`: EEXIST).
fn retry_busy<T, E>(mut attach: impl FnMut() -> Result<T, E>) -> Result<T, E>
where
    E: std::error::Error + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match attach() {
            Err(e) if Instant::now() < deadline && is_eexist(&e) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// Whether `error` or one of its sources is an OS error EEXIST.
fn is_eexist(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::EEXIST)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Open vSwitch programs and the database schema.
#[derive(Debug, Clone)]
struct OvsPrograms {
    ovsdb_tool: PathBuf,
    ovsdb_server: PathBuf,
    vswitchd: PathBuf,
    vsctl: PathBuf,
    ofctl: PathBuf,
    schema: PathBuf,
}

/// Namespaces, veths and forwarders of one run. Dropping it stops the
/// forwarders and deletes the veths and namespaces by name.
struct Testbed {
    prefix: String,
    senders: usize,
    gen: String,
    dut: String,
    sink: String,
    /// Namespaces created so far.
    namespaces: Vec<String>,
    /// (namespace, name) of one end of every veth pair created so far.
    veths: Vec<(String, String)>,
    /// The receiver's TCX drop program and its links.
    drop_program: Option<sys::BpfFd>,
    sink_links: Vec<sys::BpfFd>,
    /// The fabric stage and its pin instance.
    fabric: Option<Fabric>,
    /// Its egress (INT transit) stage.
    int: Option<IntTransit>,
    pin_instance: String,
    /// Whether the fabric stage routes IPv4 (its route stage took the
    /// route).
    ebpf_ipv4: bool,
    /// The redirect-only program.
    floor_program: Option<sys::BpfFd>,
    /// Links of the current phase (floor program, drops before OVS).
    phase_links: Vec<sys::BpfFd>,
    ovs: Option<Ovs>,
}

/// Names of the ports.
impl Testbed {
    fn gen_port(&self, k: usize) -> String {
        format!("{}-g{k}", self.prefix)
    }
    fn dut_in(&self, k: usize) -> String {
        format!("{}-i{k}", self.prefix)
    }
    fn dut_out(&self) -> String {
        format!("{}-o", self.prefix)
    }
    fn sink_port(&self) -> String {
        format!("{}-s", self.prefix)
    }
    fn direct_port(&self, k: usize) -> String {
        format!("{}-d{k}", self.prefix)
    }
    fn direct_sink(&self, k: usize) -> String {
        format!("{}-r{k}", self.prefix)
    }
}

/// Fixed MACs: `02:5b:<role>:00:00:<index>`.
fn mac(role: u8, index: usize) -> [u8; 6] {
    [0x02, 0x5b, role, 0, 0, (index & 0xff) as u8]
}
const ROLE_GEN: u8 = 1;
const ROLE_DUT_IN: u8 = 2;
const ROLE_DUT_OUT: u8 = 3;
const ROLE_SINK: u8 = 4;
const ROLE_DIRECT: u8 = 5;
const ROLE_DIRECT_SINK: u8 = 6;

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// OpenFlow port numbers in the OVS bridge.
fn ovs_in_port(k: usize) -> usize {
    k + 1
}
const OVS_OUT_PORT: usize = 100;
/// Fabric port numbers.
fn fabric_in_port(k: usize) -> u16 {
    (k + 1) as u16
}
const FABRIC_OUT_PORT: u16 = 100;

impl Testbed {
    /// Creates the three namespaces (empty).
    fn create(senders: usize) -> Result<Self> {
        let prefix = format!("sxb{}", std::process::id());
        let mut bed = Self {
            gen: format!("{prefix}-gen"),
            dut: format!("{prefix}-dut"),
            sink: format!("{prefix}-sink"),
            pin_instance: prefix.clone(),
            prefix,
            senders,
            namespaces: Vec::new(),
            veths: Vec::new(),
            drop_program: None,
            sink_links: Vec::new(),
            fabric: None,
            int: None,
            ebpf_ipv4: false,
            floor_program: None,
            phase_links: Vec::new(),
            ovs: None,
        };
        for ns in [bed.gen.clone(), bed.dut.clone(), bed.sink.clone()] {
            // Left over by a killed run with the same PID: start clean.
            let _ = Command::new(tool("ip"))
                .args(["netns", "del", &ns])
                .output();
            ip(&["netns", "add", &ns])?;
            bed.namespaces.push(ns.clone());
            // No IPv6 on the test links (no DAD, no router solicitations).
            for key in [
                "net.ipv6.conf.all.disable_ipv6",
                "net.ipv6.conf.default.disable_ipv6",
            ] {
                sysctl(&ns, key, "1")?;
            }
            for key in [
                "net.ipv4.conf.all.rp_filter",
                "net.ipv4.conf.default.rp_filter",
            ] {
                sysctl(&ns, key, "0")?;
            }
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(bed)
    }

    /// Veths, addresses, routes, offloads and the receiver's drops.
    fn configure(&mut self) -> Result<()> {
        let (gen, dut, sink) = (self.gen.clone(), self.dut.clone(), self.sink.clone());
        for k in 0..self.senders {
            self.add_veth(
                (&gen, &self.gen_port(k), mac(ROLE_GEN, k)),
                (&dut, &self.dut_in(k), mac(ROLE_DUT_IN, k)),
            )?;
            self.add_veth(
                (&gen, &self.direct_port(k), mac(ROLE_DIRECT, k)),
                (&sink, &self.direct_sink(k), mac(ROLE_DIRECT_SINK, k)),
            )?;
        }
        self.add_veth(
            (&dut, &self.dut_out(), mac(ROLE_DUT_OUT, 0)),
            (&sink, &self.sink_port(), mac(ROLE_SINK, 0)),
        )?;

        // Forwarding namespace: one /24 per input port, the receiver behind
        // a gateway with a permanent neighbour entry (no ARP on the path).
        sysctl(&dut, "net.ipv4.ip_forward", "0")?;
        for k in 0..self.senders {
            let port = self.dut_in(k);
            ip(&[
                "-n",
                &dut,
                "addr",
                "add",
                &format!("10.78.{k}.1/24"),
                "dev",
                &port,
            ])?;
        }
        let out = self.dut_out();
        ip(&["-n", &dut, "addr", "add", "10.79.0.1/24", "dev", &out])?;
        ip(&[
            "-n",
            &sink,
            "addr",
            "add",
            "10.79.0.2/24",
            "dev",
            &self.sink_port(),
        ])?;
        ip(&[
            "-n",
            &dut,
            "neigh",
            "replace",
            "10.79.0.2",
            "lladdr",
            &mac_text(mac(ROLE_SINK, 0)),
            "dev",
            &out,
            "nud",
            "permanent",
        ])?;
        ip(&[
            "-n",
            &dut,
            "route",
            "add",
            "10.80.0.0/16",
            "via",
            "10.79.0.2",
            "dev",
            &out,
        ])?;

        // Receiver: drop everything at TC ingress, before any stack runs.
        let drop = sys::BpfFd::load_tc("sxb_drop", &sys::drop_program())
            .context("load the receiver's TCX drop program")?;
        let mut sink_ports = vec![self.sink_port()];
        sink_ports.extend((0..self.senders).map(|k| self.direct_sink(k)));
        for port in &sink_ports {
            let link = attach_tcx_ingress(&sink, &drop, port)
                .with_context(|| format!("attach the TCX drop to {port}"))?;
            self.sink_links.push(link);
        }
        self.drop_program = Some(drop);
        Ok(())
    }

    /// Creates a veth pair with both ends in their namespaces, up, with
    /// offloads off.
    fn add_veth(&mut self, a: (&str, &str, [u8; 6]), b: (&str, &str, [u8; 6])) -> Result<()> {
        let ((ns_a, name_a, mac_a), (ns_b, name_b, mac_b)) = (a, b);
        ip(&[
            "link",
            "add",
            name_a,
            "address",
            &mac_text(mac_a),
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            name_b,
            "address",
            &mac_text(mac_b),
            "netns",
            ns_b,
        ])?;
        self.veths.push((ns_a.to_owned(), name_a.to_owned()));
        for (ns, name) in [(ns_a, name_a), (ns_b, name_b)] {
            // One skb per frame on every path: no GRO, no segmentation.
            run_in(
                ns,
                "ethtool",
                &["-K", name, "gro", "off", "gso", "off", "tso", "off"],
            )?;
            ip(&["-n", ns, "link", "set", name, "up"])?;
        }
        Ok(())
    }

    /// Loads the fabric stage and installs what the agent would for the
    /// MPLS transit and pop entries, the egress port's source MAC and the
    /// IPv4 route (it is attached to the ports only while the eBPF
    /// configuration runs).
    fn load_fabric(&mut self) -> Result<()> {
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.pin_instance);
        let mut fabric = Fabric::load(&self.pin_instance).context("load the fabric stage")?;
        let out = self.dut_out();
        let egress = in_netns(&self.dut, || ifindex(&out))?;
        // As the agent maps `mpls_forward_to` (label kept, MACs left to the
        // egress rewrite) and `mpls_pop_forward_to` (pop, destination MAC).
        let transit = MplsForward {
            egress_ifindex: egress,
            egress_port: FABRIC_OUT_PORT,
            flags: 0,
            dst_mac: [0; 6],
            src_mac: [0; 6],
        };
        fabric
            .insert_mpls_forward(LABEL_TRANSIT, transit)
            .context("insert the MPLS transit entry")?;
        fabric
            .insert_mpls_forward(
                LABEL_POP,
                MplsForward {
                    flags: MPLS_FLAG_POP | MPLS_FLAG_SET_DST_MAC,
                    dst_mac: mac(ROLE_SINK, 0),
                    ..transit
                },
            )
            .context("insert the MPLS pop entry")?;
        fabric
            .tables_mut()
            .set_egress_rewrite(FABRIC_OUT_PORT, Some(mac(ROLE_DUT_OUT, 0)))
            .context("set the egress port's source MAC")?;
        match install_routes(&mut fabric, egress) {
            Ok(()) => self.ebpf_ipv4 = true,
            Err(e) => println!("the fabric stage does not route IPv4 here ({e:#}): MPLS only"),
        }
        // No switch ID, no watch rules: INT is off, the egress stage counts.
        let int = IntTransit::new(&mut fabric).context("load the egress stage")?;
        self.int = Some(int);
        self.fabric = Some(fabric);
        Ok(())
    }

    /// Loads the redirect-only program (to the forwarding element's output).
    fn load_floor(&mut self) -> Result<()> {
        let out = self.dut_out();
        let egress = in_netns(&self.dut, || ifindex(&out))?;
        let program = sys::BpfFd::load_tc("sxb_redirect", &sys::redirect_program(egress))
            .context("load the redirect-only TC program")?;
        self.floor_program = Some(program);
        Ok(())
    }

    /// Starts Open vSwitch in the forwarding namespace with a `netdev`
    /// bridge and the flows of every traffic kind (ports come and go with
    /// the OVS configuration).
    fn start_ovs(&mut self, programs: OvsPrograms) -> Result<()> {
        let ovs = Ovs::start(programs, &self.prefix, &self.dut)?;
        self.ovs = Some(ovs);
        let Some(ovs) = self.ovs.as_ref() else {
            return Ok(());
        };
        let src = mac_text(mac(ROLE_DUT_OUT, 0));
        let dst = mac_text(mac(ROLE_SINK, 0));
        let mut flows = Vec::new();
        for k in 0..self.senders {
            let port = ovs_in_port(k);
            flows.push(format!(
                "priority=10,in_port={port},ip,\
                 actions=mod_dl_src:{src},mod_dl_dst:{dst},dec_ttl,output:{OVS_OUT_PORT}"
            ));
            flows.push(format!(
                "priority=10,in_port={port},mpls,mpls_label={LABEL_TRANSIT},\
                 actions=dec_mpls_ttl,mod_dl_src:{src},output:{OVS_OUT_PORT}"
            ));
            flows.push(format!(
                "priority=10,in_port={port},mpls,mpls_label={LABEL_POP},\
                 actions=pop_mpls:0x0800,mod_dl_src:{src},mod_dl_dst:{dst},\
                 output:{OVS_OUT_PORT}"
            ));
        }
        ovs.ofctl(&["del-flows", &ovs.bridge_target()])?;
        for flow in &flows {
            ovs.ofctl(&["add-flow", &ovs.bridge_target(), flow])?;
        }
        Ok(())
    }

    /// Sets the forwarding element up as `dut`.
    fn enter(&mut self, dut: Dut) -> Result<()> {
        check_interrupted()?;
        match dut {
            Dut::Direct => {}
            Dut::Kernel => sysctl(&self.dut, "net.ipv4.ip_forward", "1")?,
            Dut::TcFloor => {
                let Some(program) = self.floor_program.as_ref() else {
                    bail!("the redirect-only program is not loaded");
                };
                for k in 0..self.senders {
                    let port = self.dut_in(k);
                    let link = attach_tcx_ingress(&self.dut, program, &port)
                        .with_context(|| format!("attach the redirect-only program to {port}"))?;
                    self.phase_links.push(link);
                }
            }
            Dut::Ebpf | Dut::EbpfIngress => {
                let mut ports: Vec<(String, u16)> = (0..self.senders)
                    .map(|k| (self.dut_in(k), fabric_in_port(k)))
                    .collect();
                ports.push((self.dut_out(), FABRIC_OUT_PORT));
                let (Some(fabric), Some(int)) = (self.fabric.as_mut(), self.int.as_mut()) else {
                    bail!("the fabric stage is not loaded");
                };
                let egress = dut == Dut::Ebpf;
                // Like the agent's data plane: the ingress stage on every
                // port, then the egress (INT transit) stage on every port.
                in_netns(&self.dut, || {
                    for (port, number) in &ports {
                        retry_busy(|| fabric.attach(port, *number))
                            .with_context(|| format!("attach the fabric stage to {port}"))?;
                    }
                    for (port, _) in ports.iter().filter(|_| egress) {
                        retry_busy(|| int.attach(fabric, port))
                            .with_context(|| format!("attach the egress stage to {port}"))?;
                    }
                    Ok(())
                })?;
            }
            Dut::Ovs | Dut::OvsXdp => {
                let Some(ovs) = self.ovs.as_ref() else {
                    bail!("Open vSwitch is not running");
                };
                let mut ports: Vec<(String, usize)> = (0..self.senders)
                    .map(|k| (self.dut_in(k), ovs_in_port(k)))
                    .collect();
                ports.push((self.dut_out(), OVS_OUT_PORT));
                // `system` ports are read and written through packet
                // sockets; `afxdp-nonpmd` ports through AF_XDP sockets fed
                // by an XDP program OVS attaches, polled by the main thread
                // like the packet sockets (no busy-polling PMD thread, which
                // would take one of the CPUs whole).
                let port_type = if dut == Dut::OvsXdp {
                    "type=afxdp-nonpmd"
                } else {
                    "type=system"
                };
                let mut args: Vec<String> = Vec::new();
                for (port, number) in &ports {
                    let number = format!("ofport_request={number}");
                    let mut set = vec!["--", "add-port", &ovs.bridge, port];
                    set.extend(["--", "set", "Interface", port, port_type, &number]);
                    if dut == Dut::OvsXdp {
                        set.push("options:xdp-mode=best-effort");
                    }
                    args.extend(set.into_iter().map(String::from));
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ovs.vsctl(&args)?;
                if dut == Dut::Ovs {
                    // OVS reads copies of the frames from its packet
                    // sockets; stop the originals before the forwarding
                    // namespace's own stack.
                    let Some(drop) = self.drop_program.as_ref() else {
                        bail!("the drop program is not loaded");
                    };
                    for k in 0..self.senders {
                        let port = self.dut_in(k);
                        let link = attach_tcx_ingress(&self.dut, drop, &port)
                            .with_context(|| format!("attach the TCX drop to {port}"))?;
                        self.phase_links.push(link);
                    }
                }
            }
        }
        Ok(())
    }

    /// Undoes [`Testbed::enter`].
    fn leave(&mut self, dut: Dut) -> Result<()> {
        self.phase_links.clear();
        match dut {
            Dut::Direct | Dut::TcFloor => {}
            Dut::Kernel => sysctl(&self.dut, "net.ipv4.ip_forward", "0")?,
            Dut::Ebpf | Dut::EbpfIngress => {
                let mut ports: Vec<String> = (0..self.senders).map(|k| self.dut_in(k)).collect();
                ports.push(self.dut_out());
                if let (Some(fabric), Some(int)) = (self.fabric.as_mut(), self.int.as_mut()) {
                    for port in &ports {
                        int.detach(fabric, port)
                            .with_context(|| format!("detach the egress stage from {port}"))?;
                        fabric
                            .detach(port)
                            .with_context(|| format!("detach the fabric stage from {port}"))?;
                    }
                }
            }
            Dut::Ovs | Dut::OvsXdp => {
                if let Some(ovs) = self.ovs.as_ref() {
                    let mut args: Vec<String> = Vec::new();
                    let mut ports: Vec<String> =
                        (0..self.senders).map(|k| self.dut_in(k)).collect();
                    ports.push(self.dut_out());
                    for port in &ports {
                        args.extend(
                            ["--", "--if-exists", "del-port", &ovs.bridge, port].map(String::from),
                        );
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    ovs.vsctl(&args)?;
                }
            }
        }
        Ok(())
    }

    /// One window: senders start, warm up, the receiver's counters are read
    /// before and after the window, senders stop.
    fn measure(
        &self,
        case: Case,
        size: usize,
        options: &Options,
        cpus: &[usize],
    ) -> Result<Sample> {
        let direct = case.dut == Dut::Direct;
        let mut ports = Vec::new();
        let mut frames = Vec::new();
        for k in 0..self.senders {
            let (port, src, dst) = if direct {
                (
                    self.direct_port(k),
                    mac(ROLE_DIRECT, k),
                    mac(ROLE_DIRECT_SINK, k),
                )
            } else {
                (self.gen_port(k), mac(ROLE_GEN, k), mac(ROLE_DUT_IN, k))
            };
            ports.push(port);
            frames.push(
                (0..FLOWS)
                    .map(|flow| build_frame(case.traffic, size, k, flow, src, dst))
                    .collect::<Vec<_>>(),
            );
        }
        let senders = Senders::start(&self.gen, &ports, frames, cpus)?;
        pause(options.warmup)?;
        senders.check()?;
        let mut tasks = senders.tasks();
        tasks.extend(ksoftirqd_tasks());
        if case.dut.is_ovs() {
            if let Some(pid) = self.ovs.as_ref().and_then(Ovs::vswitchd_pid) {
                tasks.extend(process_tasks(pid));
            }
        }
        let cpu0 = cpu_ns(&tasks);
        let (rx0, sent0, t0) = (self.delivered()?, senders.sent(), Instant::now());
        pause(options.window)?;
        let (rx1, sent1, t1) = (self.delivered()?, senders.sent(), Instant::now());
        let cpu1 = cpu_ns(&tasks);
        senders.stop()?;
        let seconds = (t1 - t0).as_secs_f64();
        let delivered = rx1.saturating_sub(rx0);
        Ok(Sample {
            delivered: delivered as f64 / seconds,
            offered: sent1.saturating_sub(sent0) as f64 / seconds,
            cpu_ns: cpu1.saturating_sub(cpu0) as f64 / delivered.max(1) as f64,
        })
    }

    /// Packets received by the sink's ports (every port but `lo`).
    fn delivered(&self) -> Result<u64> {
        in_netns(&self.sink, || {
            let text = fs::read_to_string("/proc/thread-self/net/dev")
                .context("read /proc/thread-self/net/dev")?;
            let mut total = 0u64;
            for line in text.lines().skip(2) {
                let Some((name, counters)) = line.split_once(':') else {
                    continue;
                };
                if name.trim() == "lo" {
                    continue;
                }
                let packets = counters
                    .split_whitespace()
                    .nth(1)
                    .and_then(|field| field.parse::<u64>().ok())
                    .ok_or_else(|| anyhow!("unexpected /proc/net/dev line {line:?}"))?;
                total = total.saturating_add(packets);
            }
            Ok(total)
        })
    }

    /// Nanoseconds the fabric program runs per packet, for each eBPF case
    /// and frame size (one extra window each, with the kernel's BPF run-time
    /// statistics on only for that window). Empty when the kernel refuses.
    fn profile_fabric(
        &mut self,
        options: &Options,
        cpus: &[usize],
        traffics: &[Traffic],
    ) -> Result<BTreeMap<(Traffic, usize), [f64; 2]>> {
        let mut profile = BTreeMap::new();
        if traffics.is_empty() {
            return Ok(profile);
        }
        let stats = match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(fd) => fd,
            Err(e) => {
                println!("(no BPF run-time statistics: {e})");
                return Ok(profile);
            }
        };
        self.enter(Dut::Ebpf)?;
        for &traffic in traffics {
            for &size in &options.sizes {
                let before = self.fabric_runtime()?;
                self.measure(
                    Case {
                        dut: Dut::Ebpf,
                        traffic,
                    },
                    size,
                    options,
                    cpus,
                )?;
                let after = self.fabric_runtime()?;
                let mut per_run = [0.0; 2];
                for (slot, ((t0, n0), (t1, n1))) in
                    per_run.iter_mut().zip(before.into_iter().zip(after))
                {
                    let runs = n1.saturating_sub(n0);
                    if runs > 0 {
                        *slot = t1.saturating_sub(t0).as_nanos() as f64 / runs as f64;
                    }
                }
                profile.insert((traffic, size), per_run);
            }
        }
        self.leave(Dut::Ebpf)?;
        drop(stats);
        Ok(profile)
    }

    /// The accumulated run time and run count of the ingress and of the
    /// egress program.
    fn fabric_runtime(&mut self) -> Result<[(Duration, u64); 2]> {
        let Some(fabric) = self.fabric.as_mut() else {
            bail!("the fabric stage is not loaded");
        };
        let ingress = fabric
            .program()
            .context("fabric program")?
            .info()
            .context("fabric program info")?;
        let egress = IntTransit::program(fabric)
            .context("egress program")?
            .info()
            .context("egress program info")?;
        Ok([
            (ingress.run_time(), ingress.run_count()),
            (egress.run_time(), egress.run_count()),
        ])
    }

    /// The fabric program's size and its hit and drop counters, as text.
    fn fabric_counters(&mut self) -> Result<String> {
        let Some(fabric) = self.fabric.as_mut() else {
            return Ok(String::new());
        };
        let info = fabric
            .program()
            .context("fabric program")?
            .info()
            .context("fabric program info")?;
        let egress = IntTransit::program(fabric)
            .context("egress program")?
            .info()
            .context("egress program info")?;
        let size = format!(
            "programs: fabric_ingress {} BPF instructions after the verifier ({} bytes \
             JIT-compiled), fabric_egress {} ({} bytes)",
            info.size_translated().map_or(0, |bytes| bytes / 8),
            info.size_jitted(),
            egress.size_translated().map_or(0, |bytes| bytes / 8),
            egress.size_jitted()
        );
        let transit = fabric.mpls_hits(LABEL_TRANSIT)?;
        let pop = fabric.mpls_hits(LABEL_POP)?;
        let drops: Vec<String> = fabric
            .drop_counts()?
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(reason, count)| format!("{reason:?} {count}"))
            .collect();
        Ok(format!(
            "{size}\nfabric counters over the run: label {LABEL_TRANSIT} (transit) {} packets, \
             label {LABEL_POP} (pop) {} packets; drop reasons: {}",
            transit.packets,
            pop.packets,
            if drops.is_empty() {
                "none".to_owned()
            } else {
                drops.join(", ")
            }
        ))
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Forwarders first (they hold the ports), then the ports, then the
        // namespaces, then the pins.
        self.phase_links.clear();
        self.sink_links.clear();
        self.drop_program = None;
        self.floor_program = None;
        self.int = None;
        self.fabric = None;
        self.ovs = None;
        for (ns, veth) in &self.veths {
            let _ = Command::new(tool("ip"))
                .args(["-n", ns, "link", "del", veth])
                .output();
        }
        for ns in &self.namespaces {
            if let Ok(output) = Command::new(tool("ip")).args(["netns", "del", ns]).output() {
                if !output.status.success() {
                    eprintln!(
                        "removing namespace {ns}: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    );
                }
            }
        }
        if let Err(e) = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.pin_instance) {
            eprintln!("removing the pins of {}: {e}", self.pin_instance);
        }
    }
}

// ---------------------------------------------------------------------------
// Open vSwitch
// ---------------------------------------------------------------------------

/// `ovsdb-server` and `ovs-vswitchd` started for this run, with their
/// database, sockets, pidfiles and logs in a directory of their own. On drop
/// both are stopped by PID (SIGTERM, then SIGKILL) and the directory removed.
struct Ovs {
    programs: OvsPrograms,
    dir: PathBuf,
    bridge: String,
    ovsdb: Option<Child>,
    vswitchd: Option<Child>,
}

impl Ovs {
    fn start(programs: OvsPrograms, prefix: &str, ns: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("{prefix}-ovs"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut ovs = Self {
            programs,
            bridge: format!("{prefix}-br"),
            dir,
            ovsdb: None,
            vswitchd: None,
        };
        // On failure, dropping `ovs` stops what did start.
        ovs.start_daemons(ns)?;
        Ok(ovs)
    }

    fn start_daemons(&mut self, ns: &str) -> Result<()> {
        let db = self.dir.join("conf.db");
        let output = self
            .command(&self.programs.ovsdb_tool)
            .arg("create")
            .arg(&db)
            .arg(&self.programs.schema)
            .output()
            .context("run ovsdb-tool")?;
        if !output.status.success() {
            bail!(
                "ovsdb-tool create: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let socket = self.dir.join("db.sock");
        let mut server = self.command(&self.programs.ovsdb_server);
        server
            .arg(&db)
            .arg(format!("--remote=punix:{}", socket.display()))
            .arg(format!(
                "--pidfile={}",
                self.dir.join("ovsdb-server.pid").display()
            ))
            .arg(format!(
                "--unixctl={}",
                self.dir.join("ovsdb-server.ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                self.dir.join("ovsdb-server.log").display()
            ))
            .arg("-vconsole:off");
        self.ovsdb = Some(spawn_in(ns, &mut server).context("start ovsdb-server")?);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                bail!("ovsdb-server did not create {}", socket.display());
            }
            self.check_alive()?;
            pause(Duration::from_millis(20))?;
        }
        self.vsctl(&["--no-wait", "init"])?;

        let mut vswitchd = self.command(&self.programs.vswitchd);
        vswitchd
            .arg(format!("unix:{}", socket.display()))
            .arg(format!(
                "--pidfile={}",
                self.dir.join("ovs-vswitchd.pid").display()
            ))
            .arg(format!(
                "--unixctl={}",
                self.dir.join("ovs-vswitchd.ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                self.dir.join("ovs-vswitchd.log").display()
            ))
            .arg("-vconsole:off");
        self.vswitchd = Some(spawn_in(ns, &mut vswitchd).context("start ovs-vswitchd")?);
        // Waits for ovs-vswitchd to apply it: the bridge exists afterwards.
        let bridge = self.bridge.clone();
        self.vsctl(&[
            "add-br",
            &bridge,
            "--",
            "set",
            "Bridge",
            &bridge,
            "datapath_type=netdev",
            "fail_mode=secure",
            "other_config:disable-in-band=true",
        ])
        .context("create the netdev bridge (see ovs-vswitchd.log)")?;
        self.check_alive()
    }

    /// An OVS command with this instance's directories in its environment.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            command.env(var, &self.dir);
        }
        command.stdin(Stdio::null());
        command
    }

    fn check_alive(&mut self) -> Result<()> {
        for (name, child) in [
            ("ovsdb-server", self.ovsdb.as_mut()),
            ("ovs-vswitchd", self.vswitchd.as_mut()),
        ] {
            if let Some(child) = child {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!(
                        "{name} exited ({status}); its log is in {}",
                        self.dir.display()
                    );
                }
            }
        }
        Ok(())
    }

    fn vsctl(&self, args: &[&str]) -> Result<()> {
        let socket = self.dir.join("db.sock");
        let output = self
            .command(&self.programs.vsctl)
            .arg(format!("--db=unix:{}", socket.display()))
            .arg("--timeout=20")
            .args(args)
            .output()
            .context("run ovs-vsctl")?;
        if !output.status.success() {
            bail!(
                "ovs-vsctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    fn ofctl(&self, args: &[&str]) -> Result<()> {
        let output = self
            .command(&self.programs.ofctl)
            .args(["-O", "OpenFlow13"])
            .args(args)
            .output()
            .context("run ovs-ofctl")?;
        if !output.status.success() {
            bail!(
                "ovs-ofctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// The PID of `ovs-vswitchd`.
    fn vswitchd_pid(&self) -> Option<u32> {
        self.vswitchd.as_ref().map(Child::id)
    }

    /// The bridge's OpenFlow management socket.
    fn bridge_target(&self) -> String {
        format!(
            "unix:{}",
            self.dir.join(format!("{}.mgmt", self.bridge)).display()
        )
    }
}

impl Drop for Ovs {
    /// Stops both daemons by PID and removes the directory.
    fn drop(&mut self) {
        for child in [self.vswitchd.take(), self.ovsdb.take()]
            .into_iter()
            .flatten()
        {
            stop_child(child);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM to `child` by PID, SIGKILL after two seconds, and reaped.
fn stop_child(mut child: Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = sys::terminate(child.id());
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------

/// Sender threads, one per port, each in the senders' namespace and pinned
/// to a CPU. Dropping them stops and joins them.
struct Senders {
    stop: Arc<AtomicBool>,
    sent: Vec<Arc<AtomicU64>>,
    /// Thread IDs, 0 until the thread has published it.
    tids: Vec<Arc<AtomicU32>>,
    threads: Vec<JoinHandle<Result<()>>>,
}

impl Senders {
    fn start(
        ns: &str,
        ports: &[String],
        frames: Vec<Vec<Vec<u8>>>,
        cpus: &[usize],
    ) -> Result<Self> {
        let mut senders = Self {
            stop: Arc::new(AtomicBool::new(false)),
            sent: Vec::new(),
            tids: Vec::new(),
            threads: Vec::new(),
        };
        for (k, (port, frames)) in ports.iter().zip(frames).enumerate() {
            let sent = Arc::new(AtomicU64::new(0));
            let tid = Arc::new(AtomicU32::new(0));
            let (stop, counter, tid_slot) = (senders.stop.clone(), sent.clone(), tid.clone());
            let (ns, port) = (ns.to_owned(), port.clone());
            let cpu = (!cpus.is_empty()).then(|| cpus[k % cpus.len()]);
            let thread = std::thread::Builder::new()
                .name(format!("sender-{k}"))
                .spawn(move || {
                    tid_slot.store(own_tid(), Ordering::SeqCst);
                    send_loop(&ns, &port, cpu, frames, &stop, &counter)
                })
                .context("start a sender thread")?;
            senders.sent.push(sent);
            senders.tids.push(tid);
            senders.threads.push(thread);
        }
        Ok(senders)
    }

    /// Packets sent so far by all threads.
    fn sent(&self) -> u64 {
        self.sent
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .fold(0, u64::saturating_add)
    }

    /// The `/proc` directories of the sender threads.
    fn tasks(&self) -> Vec<PathBuf> {
        self.tids
            .iter()
            .map(|tid| tid.load(Ordering::SeqCst))
            .filter(|&tid| tid != 0)
            .map(|tid| PathBuf::from(format!("/proc/self/task/{tid}")))
            .collect()
    }

    /// An error if a sender thread has already failed.
    fn check(&self) -> Result<()> {
        if self.threads.iter().any(JoinHandle::is_finished) {
            // A thread only ends early on an error; `stop` collects it.
            bail!("a sender thread stopped early");
        }
        Ok(())
    }

    /// Stops the threads and returns the first error one of them had.
    fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let mut first = Ok(());
        for thread in self.threads.drain(..) {
            let result = thread
                .join()
                .map_err(|_| anyhow!("a sender thread panicked"))
                .and_then(|r| r);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One sender: enters `ns`, binds a packet socket to `port` and sends
/// `frames` in one `sendmmsg` call after the other until told to stop.
fn send_loop(
    ns: &str,
    port: &str,
    cpu: Option<usize>,
    frames: Vec<Vec<u8>>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> Result<()> {
    enter_netns(ns)?;
    if let Some(cpu) = cpu {
        // Best effort: without pinning the scheduler spreads the threads.
        let mut set = nix::sched::CpuSet::new();
        if set.set(cpu).is_ok() {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
        }
    }
    let socket = sys::PacketSender::bind(ifindex(port)?)
        .with_context(|| format!("packet socket on {port}"))?;
    let mut batch = sys::Batch::new(frames);
    while !stop.load(Ordering::Relaxed) && !STOP.load(Ordering::Relaxed) {
        match socket.send(&mut batch) {
            Ok(n) => {
                sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)
                ) => {}
            Err(e) => return Err(e).with_context(|| format!("sendmmsg on {port}")),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// A UDP-in-IPv4 frame of `len` bytes (without FCS) from sender `k`, flow
/// `flow`, optionally under one MPLS label (same frame length: the IPv4
/// packet is 4 bytes shorter).
fn build_frame(
    traffic: Traffic,
    len: usize,
    k: usize,
    flow: u16,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
) -> Vec<u8> {
    let label = match traffic {
        Traffic::Ipv4 => None,
        Traffic::MplsTransit => Some(LABEL_TRANSIT),
        Traffic::MplsPop => Some(LABEL_POP),
    };
    let mut frame = Vec::with_capacity(len);
    frame.extend_from_slice(&dst_mac);
    frame.extend_from_slice(&src_mac);
    if let Some(label) = label {
        frame.extend_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
        // Bottom of stack, TTL 64.
        let lse = (label << 12) | (1 << 8) | 64;
        frame.extend_from_slice(&lse.to_be_bytes());
    } else {
        frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    }
    let ip_len = len - frame.len();
    let k = (k & 0xff) as u8;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&[10, 78, k, 2]);
    ip[16..20].copy_from_slice(&[10, 80, k, 1]);
    let checksum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&ip);
    let udp_len = (ip_len - 20) as u16;
    frame.extend_from_slice(&(1024 + flow).to_be_bytes());
    frame.extend_from_slice(&9u16.to_be_bytes()); // discard
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0]); // no UDP checksum
    frame.resize(len, 0);
    frame
}

/// The IPv4 header checksum (RFC 1071) of a header whose checksum is 0.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|pair| {
            u32::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn print_header(options: &Options, cpus: &[usize]) {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "forwarding bench: {} sender thread(s) on {} CPU(s), {} run(s) of {:.2} s per \
         configuration (warm-up {:.2} s), kernel {}, load average {}",
        options.senders,
        cpus.len(),
        options.runs,
        options.window.as_secs_f64(),
        options.warmup.as_secs_f64(),
        kernel.trim(),
        load_average()
    );
}

/// The 1-minute load average (other work on the machine skews the figures).
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Median, minimum and maximum.
fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (median, sorted[0], sorted[n - 1])
}

fn print_report(
    options: &Options,
    plan: &Plan,
    results: &BTreeMap<(Case, usize), Vec<Sample>>,
    profile: &BTreeMap<(Traffic, usize), [f64; 2]>,
) {
    let median = |case: Case, size: usize, field: fn(&Sample) -> f64| {
        results
            .get(&(case, size))
            .map(|samples| stats(&samples.iter().map(field).collect::<Vec<_>>()).0)
    };
    let rate = |s: &Sample| s.delivered;
    let cpu = |s: &Sample| s.cpu_ns;
    let kernel = Case {
        dut: Dut::Kernel,
        traffic: Traffic::Ipv4,
    };
    let direct = Case {
        dut: Dut::Direct,
        traffic: Traffic::Ipv4,
    };
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let ratio = |x: Option<f64>| x.map_or("-".to_owned(), |r| format!("{r:.2}x"));
    // This case against kernel forwarding: the median of the per-run ratios
    // (kernel and eBPF windows of one run are seconds apart, so pairing
    // them cancels slow changes of the background load), or the ratio of
    // the medians when the runs do not pair up. `lower_is_better` turns
    // the ratio around (CPU time per packet).
    let vs_kernel = |case: Case, size: usize, field: fn(&Sample) -> f64, lower_is_better: bool| {
        let own = results.get(&(case, size))?;
        let base = results.get(&(kernel, size))?;
        let ratio = |x: f64, k: f64| if lower_is_better { k / x } else { x / k };
        if own.len() == base.len() {
            let ratios: Vec<f64> = own
                .iter()
                .zip(base)
                .map(|(x, k)| ratio(field(x), field(k)))
                .collect();
            Some(stats(&ratios).0)
        } else {
            Some(ratio(
                median(case, size, field)?,
                median(kernel, size, field)?,
            ))
        }
    };
    // The faster of the two OVS port types for this traffic.
    let best_ovs = |traffic: Traffic, size: usize| {
        [Dut::Ovs, Dut::OvsXdp]
            .into_iter()
            .filter_map(|dut| median(Case { dut, traffic }, size, rate))
            .reduce(f64::max)
    };

    for &size in &options.sizes {
        let large = size == FRAME_LARGE;
        println!(
            "\n{}-byte frames ({size} B + FCS) delivered at the receiver: median of {} runs \
             (min-max); {date}",
            size + 4,
            options.runs
        );
        println!(
            "{:<27} {:>7} {:>15} {:>7} {:>9} {:>7} {:>8} {:>8} {:>8}",
            "config",
            if large { "Gbit/s" } else { "Mpps" },
            "(min-max)",
            "Mpps",
            "vs kernel",
            "vs OVS",
            "CPU ns/p",
            "fwd ns/p",
            "CPU eff"
        );
        let scale = |pps: f64| {
            if large {
                pps * size as f64 * 8.0 / 1e9
            } else {
                pps / 1e6
            }
        };
        for (dut, dut_traffics) in plan {
            let dut = *dut;
            for &traffic in dut_traffics {
                let case = Case { dut, traffic };
                let Some(samples) = results.get(&(case, size)) else {
                    continue;
                };
                let (med, min, max) = stats(&samples.iter().map(rate).collect::<Vec<_>>());
                let cost = median(case, size, cpu).unwrap_or(0.0);
                let comparable = dut != Dut::Direct;
                let faster = vs_kernel(case, size, rate, false).filter(|_| comparable);
                let vs_ovs = best_ovs(traffic, size)
                    .filter(|_| comparable && dut != Dut::TcFloor)
                    .map(|o| med / o);
                let forwarding = median(direct, size, cpu)
                    .filter(|_| comparable)
                    .map_or("-".to_owned(), |d| format!("{:.0}", cost - d));
                let efficiency = vs_kernel(case, size, cpu, true).filter(|_| comparable);
                println!(
                    "{:<27} {:>7.3} {:>15} {:>7.3} {:>9} {:>7} {:>8.0} {:>8} {:>8}",
                    case.label(),
                    scale(med),
                    format!("({:.3}-{:.3})", scale(min), scale(max)),
                    med / 1e6,
                    ratio(faster),
                    ratio(vs_ovs),
                    cost,
                    forwarding,
                    ratio(efficiency)
                );
            }
        }

        let direct_rate = median(direct, size, rate);
        for &traffic in traffics(plan, Dut::Ebpf) {
            let case = Case {
                dut: Dut::Ebpf,
                traffic,
            };
            let Some(ebpf) = median(case, size, rate) else {
                continue;
            };
            let mut line = format!("goals {:<27}", case.label());
            if let Some(r) = vs_kernel(case, size, rate, false) {
                let _ = write!(
                    line,
                    " >= 1.3x kernel: {r:.2}x {}",
                    if r >= 1.3 { "met" } else { "NOT met" }
                );
            }
            if let Some(o) = best_ovs(traffic, size) {
                let r = ebpf / o;
                let _ = write!(
                    line,
                    "; >= 1x OVS: {r:.2}x {}",
                    if r >= 1.0 { "met" } else { "NOT met" }
                );
            } else if plan
                .iter()
                .any(|(dut, _)| matches!(dut, Dut::Ovs | Dut::OvsXdp))
            {
                line.push_str("; OVS: not measured");
            } else {
                line.push_str("; OVS: absent");
            }
            if direct_rate.is_some_and(|d| ebpf >= 0.95 * d) {
                line.push_str("; sender-bound (within 5% of the direct rate)");
            }
            println!("{line}");
        }
        let bpf: Vec<String> = traffics(plan, Dut::Ebpf)
            .iter()
            .filter_map(|&traffic| {
                let case = Case {
                    dut: Dut::Ebpf,
                    traffic,
                };
                profile.get(&(traffic, size)).map(|[ingress, egress]| {
                    format!(
                        "{}: ingress {ingress:.0} ns + egress {egress:.0} ns",
                        case.label()
                    )
                })
            })
            .collect();
        if !bpf.is_empty() {
            println!("BPF run time per packet (kernel BPF statistics, one extra window each):");
            for line in bpf {
                println!("  {line}");
            }
        }
    }
    println!(
        "\nCPU ns/p: CPU time per delivered packet (sender threads, which also run the \
         softirqs of both veth hops, the forwarding and the receiver's drop; ksoftirqd; \
         ovs-vswitchd for OVS). vs kernel, CPU eff: median of the per-run ratios. vs OVS: \
         against the faster OVS port type (ratio of medians). fwd ns/p: the same minus the direct path's, i.e. what the \
         forwarder adds. CPU eff: the kernel's CPU ns/p over this row's (above 1: \
         cheaper per packet than kernel forwarding). Throughput shares the CPUs with \
         whatever else runs; CPU per packet does not depend on that share."
    );
}

// ---------------------------------------------------------------------------
// Processes and namespaces
// ---------------------------------------------------------------------------

/// `name` as found by [`find_program`], or as is.
fn tool(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| PathBuf::from(name))
}

/// Runs `ip` with `args`; an error carries its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new(tool("ip"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run ip (iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `program` with `args` in namespace `ns` (forked from a thread that
/// entered it); an error carries its stderr.
fn run_in(ns: &str, program: &str, args: &[&str]) -> Result<()> {
    let output = in_netns(ns, || {
        Command::new(tool(program))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {program}"))
    })?;
    if !output.status.success() {
        bail!(
            "{program} {} (in {ns}): {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Spawns `command` in namespace `ns`; the child is the program itself, so
/// its PID is the one to stop.
fn spawn_in(ns: &str, command: &mut Command) -> Result<Child> {
    in_netns(ns, || {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn")
    })
}

/// Writes sysctl `key` (dotted) in namespace `ns`.
fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    in_netns(ns, || {
        fs::write(&path, value).with_context(|| format!("write {value} to {path} in {ns}"))
    })
}

/// The calling thread's ID (`/proc/thread-self` is `<pid>/task/<tid>`);
/// 0 when unknown.
fn own_tid() -> u32 {
    fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// On-CPU nanoseconds of the tasks (`/proc/.../schedstat`, first field:
/// exact, unlike the tick-sampled utime and stime), summed. A task that is
/// gone counts 0.
fn cpu_ns(tasks: &[PathBuf]) -> u64 {
    tasks
        .iter()
        .filter_map(|task| {
            fs::read_to_string(task.join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .fold(0, u64::saturating_add)
}

/// The `ksoftirqd/<cpu>` kernel threads: softirq work the senders' CPUs
/// could not finish on the way out of a send goes there.
fn ksoftirqd_tasks() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            path.file_name()?.to_str()?.parse::<u32>().ok()?;
            let comm = fs::read_to_string(path.join("comm")).ok()?;
            comm.starts_with("ksoftirqd/").then_some(path)
        })
        .collect()
}

/// The `/proc` directories of every thread of process `pid`.
fn process_tasks(pid: u32) -> Vec<PathBuf> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes the calling thread enter network namespace `ns`.
fn enter_netns(ns: &str) -> Result<()> {
    let handle =
        File::open(format!("/run/netns/{ns}")).with_context(|| format!("open namespace {ns}"))?;
    nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("enter namespace {ns}"))
}

/// Runs `f` on a thread that entered namespace `ns` and returns its result.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_netns(ns)?;
                f()
            })
            .join()
            .map_err(|_| anyhow!("a thread in namespace {ns} panicked"))?
    })
}

/// Attaches `program` to TC ingress of `port` in namespace `ns` (TCX).
fn attach_tcx_ingress(ns: &str, program: &sys::BpfFd, port: &str) -> Result<sys::BpfFd> {
    in_netns(ns, || Ok(program.attach_tcx_ingress(ifindex(port)?)?))
}

/// The interface index of `name` in the calling thread's namespace.
fn ifindex(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).with_context(|| format!("interface {name}"))
}

// ---------------------------------------------------------------------------
// System calls without a safe wrapper
// ---------------------------------------------------------------------------

#[allow(unsafe_code)]
mod sys {
    //! What neither the standard library, nix nor aya offers: a packet
    //! socket sending with `sendmmsg`, two hand-assembled TC programs loaded
    //! and attached (TCX) with the `bpf` system call, and SIGTERM by PID.

    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// `PACKET_QDISC_BYPASS` (`linux/if_packet.h`): hand frames straight to
    /// the driver.
    const PACKET_QDISC_BYPASS: libc::c_int = 20;

    /// A raw packet socket bound to one interface, for sending only (bound
    /// to protocol 0, it receives nothing).
    pub struct PacketSender {
        fd: OwnedFd,
    }

    impl PacketSender {
        pub fn bind(ifindex: u32) -> io::Result<Self> {
            // SAFETY: plain syscall; the result is checked before use.
            let fd =
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh descriptor owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let one: libc::c_int = 1;
            // SAFETY: `one` is a valid c_int of the given size.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    PACKET_QDISC_BYPASS,
                    (&raw const one).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: sockaddr_ll is plain old data; all zeroes is valid.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
            // SAFETY: `addr` is a valid sockaddr_ll and the length is its size.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Self { fd })
        }

        /// Sends the whole batch in one call; returns how many frames went.
        pub fn send(&self, batch: &mut Batch) -> io::Result<usize> {
            let count = libc::c_uint::try_from(batch.headers.len()).map_err(io::Error::other)?;
            // SAFETY: every header points at one iovec of `batch`, which
            // points at a frame of `batch`; all live as long as `batch`.
            let sent = unsafe {
                libc::sendmmsg(self.fd.as_raw_fd(), batch.headers.as_mut_ptr(), count, 0)
            };
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(sent as usize)
        }
    }

    /// Frames and the message headers that point at them. The vectors are
    /// never changed after `new`, so the pointers stay valid while the
    /// batch lives (moving it does not move their heap buffers).
    pub struct Batch {
        _frames: Vec<Vec<u8>>,
        _iovecs: Vec<libc::iovec>,
        headers: Vec<libc::mmsghdr>,
    }

    impl Batch {
        pub fn new(frames: Vec<Vec<u8>>) -> Self {
            let iovecs: Vec<libc::iovec> = frames
                .iter()
                .map(|frame| libc::iovec {
                    iov_base: frame.as_ptr().cast_mut().cast(),
                    iov_len: frame.len(),
                })
                .collect();
            let headers = iovecs
                .iter()
                .map(|iov| {
                    // SAFETY: mmsghdr is plain old data; all zeroes is valid
                    // (no address: the socket's bound interface is used).
                    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    header.msg_hdr.msg_iov = std::ptr::from_ref(iov).cast_mut();
                    header.msg_hdr.msg_iovlen = 1;
                    header
                })
                .collect();
            Self {
                _frames: frames,
                _iovecs: iovecs,
                headers,
            }
        }
    }

    /// `bpf` commands, program and attach types (`linux/bpf.h`).
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_LINK_CREATE: libc::c_long = 28;
    const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
    const BPF_TCX_INGRESS: u32 = 46;

    /// `union bpf_attr` as `BPF_PROG_LOAD` reads it, with a zeroed tail.
    #[repr(C)]
    #[derive(Default)]
    struct ProgLoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
        tail: [u64; 12],
    }

    /// `union bpf_attr` as `BPF_LINK_CREATE` reads it for TCX.
    #[repr(C)]
    #[derive(Default)]
    struct LinkCreateAttr {
        prog_fd: u32,
        target_ifindex: u32,
        attach_type: u32,
        flags: u32,
        relative_fd: u32,
        _pad: u32,
        expected_revision: u64,
        tail: [u64; 8],
    }

    /// One eBPF instruction (`struct bpf_insn`) as a little-endian u64.
    const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
        code as u64
            | ((dst as u64 | ((src as u64) << 4)) << 8)
            | ((off as u16 as u64) << 16)
            | ((imm as u32 as u64) << 32)
    }
    const MOV64_IMM: u8 = 0xb7;
    const CALL: u8 = 0x85;
    const EXIT: u8 = 0x95;
    const TC_ACT_SHOT: i32 = 2;
    const BPF_FUNC_REDIRECT: i32 = 23;

    /// `return TC_ACT_SHOT;`
    pub fn drop_program() -> Vec<u64> {
        vec![
            insn(MOV64_IMM, 0, 0, 0, TC_ACT_SHOT),
            insn(EXIT, 0, 0, 0, 0),
        ]
    }

    /// `return bpf_redirect(ifindex, 0);`
    pub fn redirect_program(ifindex: u32) -> Vec<u64> {
        vec![
            insn(MOV64_IMM, 1, 0, 0, ifindex as i32),
            insn(MOV64_IMM, 2, 0, 0, 0),
            insn(CALL, 0, 0, 0, BPF_FUNC_REDIRECT),
            insn(EXIT, 0, 0, 0, 0),
        ]
    }

    /// A BPF program or link; closing it unloads or detaches.
    pub struct BpfFd(OwnedFd);

    impl BpfFd {
        /// Loads a TC (`sched_cls`) program.
        pub fn load_tc(name: &str, insns: &[u64]) -> io::Result<Self> {
            match Self::load(name, insns, None) {
                Ok(fd) => Ok(fd),
                Err(e) => {
                    // Again with the verifier's log, for the error message.
                    let mut log = vec![0u8; 1 << 16];
                    match Self::load(name, insns, Some(&mut log)) {
                        Ok(fd) => Ok(fd),
                        Err(_) => {
                            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                            Err(io::Error::new(
                                e.kind(),
                                format!("{e}: {}", String::from_utf8_lossy(&log[..end]).trim()),
                            ))
                        }
                    }
                }
            }
        }

        fn load(name: &str, insns: &[u64], log: Option<&mut Vec<u8>>) -> io::Result<Self> {
            let license = b"GPL\0";
            let mut attr = ProgLoadAttr {
                prog_type: BPF_PROG_TYPE_SCHED_CLS,
                insn_cnt: u32::try_from(insns.len()).map_err(io::Error::other)?,
                insns: insns.as_ptr() as u64,
                license: license.as_ptr() as u64,
                ..ProgLoadAttr::default()
            };
            for (slot, byte) in attr.prog_name.iter_mut().zip(name.bytes().take(15)) {
                *slot = byte;
            }
            if let Some(log) = log {
                attr.log_level = 1;
                attr.log_size = u32::try_from(log.len()).map_err(io::Error::other)?;
                attr.log_buf = log.as_mut_ptr() as u64;
            }
            // SAFETY: `attr` is a valid bpf_attr for BPF_PROG_LOAD; the
            // instructions, license and log buffer it points at outlive the
            // call.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_PROG_LOAD,
                    &raw mut attr,
                    size_of::<ProgLoadAttr>(),
                )
            };
            Self::from_result(fd)
        }

        /// Attaches this program to TC ingress of `ifindex` (in the calling
        /// thread's namespace) as a TCX link; closing the link detaches it.
        pub fn attach_tcx_ingress(&self, ifindex: u32) -> io::Result<Self> {
            let mut attr = LinkCreateAttr {
                prog_fd: u32::try_from(self.0.as_raw_fd()).map_err(io::Error::other)?,
                target_ifindex: ifindex,
                attach_type: BPF_TCX_INGRESS,
                ..LinkCreateAttr::default()
            };
            // SAFETY: `attr` is a valid bpf_attr for BPF_LINK_CREATE.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_LINK_CREATE,
                    &raw mut attr,
                    size_of::<LinkCreateAttr>(),
                )
            };
            Self::from_result(fd)
        }

        fn from_result(fd: libc::c_long) -> io::Result<Self> {
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::c_int::try_from(fd).map_err(io::Error::other)?;
            // SAFETY: the kernel returned a fresh descriptor owned by nothing
            // else.
            Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
        }
    }

    /// Sends SIGTERM to process `pid`.
    pub fn terminate(pid: u32) -> io::Result<()> {
        let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
        // SAFETY: plain syscall on a PID this program started and has not
        // reaped yet (so it cannot have been reused).
        if unsafe { libc::kill(pid, libc::SIGTERM) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
