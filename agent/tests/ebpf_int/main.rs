//! Kernel tests of INT-MD transit (TC egress program `fabric_egress`).
//!
//! * `test_run_int_transit`: table-driven `BPF_PROG_TEST_RUN` cases on
//!   frames built here (UDP, TCP with options, IPv4 options, under an MPLS
//!   label; E bit, M bit, every skip reason, malformed INT): the output is
//!   parsed and checked field by field, lengths and checksums recomputed,
//!   and the event counters compared with what the cases expect.
//! * `insert_cost`: the program's run time per packet, INT or not, as the
//!   kernel measures it (printed, not asserted).
//! * `two_hops_over_veths`: h1 — s1 — s2 — h2 in namespaces; MPLS label
//!   forwarding (transit on s1, pop on s2) by the ingress program, INT
//!   transit on every switch port; h2 receives the UDP datagram with two
//!   hops of metadata, newest first, and valid checksums.
//! * `queue_occupancy_under_tbf`: the same topology with a tbf on s1's
//!   port towards s2 and the queue publisher running: packets sent behind
//!   a burst report the backlog and its expected queueing delay.
//!
//! They need root and an agent built with the eBPF toolchain; without
//! either they print why and pass, unless `SOLYX_REQUIRE_ROOT=1`.
//! Namespaces, interfaces and pin directories carry the prefix `sxi` and
//! the test process ID and are deleted by name by guards, also on failure.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aya::programs::{TestRun, TestRunOptions};
use solyx_agent::ebpf::common::int::{
    ingress_stamp, IntEvent, PortQueueState, INSTR_EGRESS_TSTAMP, INSTR_HOP_LATENCY,
    INSTR_INGRESS_TSTAMP, INSTR_L1_PORTS, INSTR_QUEUE, INSTR_SWITCH_ID, INSTR_TX_UTIL,
    INT_MARK_MAGIC, INT_MARK_MAGIC_MASK,
};
use solyx_agent::ebpf::common::{
    MplsForward, MPLS_FLAG_POP, MPLS_FLAG_SET_DST_MAC, MPLS_FLAG_SET_SRC_MAC,
};
use solyx_agent::ebpf::{
    remove_instance, Fabric, IntTransit, QueuePublisher, WatchAction, WatchMatch, DEFAULT_PIN_ROOT,
};

/// TC verdict `TC_ACT_OK` (`linux/pkt_cls.h`).
const TC_ACT_OK: u32 = 0;

#[path = "../switch/mod.rs"]
mod switch;

mod cases;
mod frame;
mod test_run;
mod two_hops;

// ---------------------------------------------------------------------------
// AF_PACKET sockets
// ---------------------------------------------------------------------------

#[allow(unsafe_code)]
mod packet;

use switch::{can_run, in_netns, mac_text};

use cases::*;
use frame::*;
use test_run::*;

// ---------------------------------------------------------------------------
// Preconditions and guards
// ---------------------------------------------------------------------------

/// Namespaces and interfaces created by a test, deleted by name on drop.
struct Namespaces {
    names: Vec<String>,
    /// (namespace, interface) of one end of every veth pair.
    links: Vec<(String, String)>,
}

impl Namespaces {
    /// Creates `sxi-<pid>-<test>-<role>` for every role.
    fn create(test: &str, roles: &[&str]) -> Self {
        let mut namespaces = Self {
            names: Vec::new(),
            links: Vec::new(),
        };
        for role in roles {
            let name = format!("sxi-{}-{test}-{role}", std::process::id());
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
            // Pushed before creation so that a failure still deletes it.
            namespaces.names.push(name.clone());
            ip(&["netns", "add", &name]);
        }
        namespaces
    }

    /// The namespace of `role`.
    fn get(&self, role: &str) -> String {
        self.names
            .iter()
            .find(|name| name.ends_with(&format!("-{role}")))
            .cloned()
            .unwrap_or_else(|| panic!("no namespace for {role}"))
    }

    /// The veth pair `a` (in `ns_a`, MAC `mac_a`) — `b` (in `ns_b`).
    fn add_veth(&mut self, (ns_a, a, mac_a): End<'_>, (ns_b, b, mac_b): End<'_>) {
        self.links.push((ns_a.to_owned(), a.to_owned()));
        ip(&[
            "link",
            "add",
            a,
            "address",
            &mac_text(mac_a),
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            b,
            "address",
            &mac_text(mac_b),
            "netns",
            ns_b,
        ]);
        for (ns, dev) in [(ns_a, a), (ns_b, b)] {
            let sysctl = format!("net.ipv6.conf.{dev}.disable_ipv6=1");
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-q", "-w", &sysctl])
                .output();
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }

    /// An interface `name` in `ns`, up: one end of a veth pair whose other
    /// end (`name` + "p") stays in `ns` too (the kernel may lack `dummy`).
    fn add_spare(&mut self, ns: &str, name: &str) {
        self.links.push((ns.to_owned(), name.to_owned()));
        let peer = format!("{name}p");
        ip(&[
            "-n", ns, "link", "add", name, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["-n", ns, "link", "set", name, "up"]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for (ns, link) in &self.links {
            let _ = Command::new("ip")
                .args(["-n", ns, "link", "del", link])
                .output();
        }
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// One end of a veth pair: namespace, interface name, MAC.
type End<'a> = (&'a str, &'a str, [u8; 6]);

/// A pinned fabric instance; its pins are removed on drop.
struct Pins {
    instance: String,
}

impl Pins {
    fn new(test: &str) -> Self {
        let instance = format!("sxi-{}-{test}", std::process::id());
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &instance);
        Self { instance }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if let Err(e) = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.instance) {
            eprintln!("removing pins of {}: {e}", self.instance);
        }
    }
}

/// Runs `ip` with `args`; panics with its stderr on failure.
fn ip(args: &[&str]) {
    run("ip", args);
}

/// Runs `program` with `args`; panics with its stderr on failure.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Interface index of `name` in the calling thread's namespace.
fn ifindex(name: &str) -> u32 {
    nix::net::if_::if_nametoindex(name).expect("if_nametoindex")
}

/// A clock in ns.
fn clock_ns(clock: nix::time::ClockId) -> u64 {
    let ts = nix::time::clock_gettime(clock).expect("clock_gettime");
    u64::try_from(ts.tv_sec()).expect("secs") * 1_000_000_000
        + u64::try_from(ts.tv_nsec()).expect("nanos")
}

fn monotonic_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_MONOTONIC)
}

fn tai_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_TAI)
}
