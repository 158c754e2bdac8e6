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

mod dut;
mod measure;
mod options;
mod ovs;
mod plan;
mod process;
mod report;
mod senders;
mod testbed;

// ---------------------------------------------------------------------------
// System calls without a safe wrapper
// ---------------------------------------------------------------------------

#[allow(unsafe_code)]
mod sys;

use measure::*;
use options::*;
use ovs::*;
use plan::*;
use process::*;
use report::*;
use senders::*;
use testbed::*;

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
