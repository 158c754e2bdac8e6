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

use std::fs::File;
use std::io::Write as _;
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

// ---------------------------------------------------------------------------
// Preconditions and guards
// ---------------------------------------------------------------------------

/// Whether the test can run; prints why not (or fails when
/// `SOLYX_REQUIRE_ROOT=1`).
fn can_run(test: &str) -> bool {
    let reason = if !nix::unistd::Uid::effective().is_root() {
        Some("needs root (BPF programs, network namespaces)")
    } else if !solyx_agent::ebpf::is_built() {
        Some(
            "the agent was built without eBPF programs \
             (nightly rust-src or bpf-linker missing, or SOLYX_EBPF_BUILD=skip)",
        )
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) => {
            assert!(
                std::env::var("SOLYX_REQUIRE_ROOT").as_deref() != Ok("1"),
                "{test}: SOLYX_REQUIRE_ROOT=1 but {reason}"
            );
            let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
            false
        }
    }
}

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

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

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

/// Runs `f` on a thread that entered network namespace `ns`.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let handle = File::open(format!("/run/netns/{ns}")).expect("open netns");
                nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("netns thread panicked")
    })
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

// ---------------------------------------------------------------------------
// Packets: a builder and a parser
// ---------------------------------------------------------------------------

const MAC_A: [u8; 6] = [0x02, 0x5e, 0x00, 0x00, 0x0a, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x5e, 0x00, 0x00, 0x0b, 0x01];

/// The INT shim + INT-MD header (and upstream stack) to put after L4.
#[derive(Clone, Debug)]
struct Int {
    shim_type: u8,
    /// `None`: 3 + the stack's words.
    shim_len: Option<u8>,
    version: u8,
    /// D/E/M bits as in the first byte of the INT-MD header.
    flags: u8,
    hop_ml: u8,
    remaining_hop_cnt: u8,
    bitmap: u16,
    stack: Vec<u32>,
}

impl Int {
    /// A valid INT-MD v2 header for `bitmap` with `hops` remaining.
    fn md(bitmap: u16, hops: u8) -> Self {
        Self {
            shim_type: 1,
            shim_len: None,
            version: 2,
            flags: 0,
            hop_ml: words_of(bitmap),
            remaining_hop_cnt: hops,
            bitmap,
            stack: Vec::new(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let len = self
            .shim_len
            .unwrap_or(3 + u8::try_from(self.stack.len()).expect("stack fits"));
        let mut b = vec![self.shim_type << 4, len, 0, 0];
        b.push((self.version << 4) | self.flags);
        b.push(0);
        b.push(self.hop_ml & 0x1f);
        b.push(self.remaining_hop_cnt);
        b.extend_from_slice(&self.bitmap.to_be_bytes());
        b.extend_from_slice(&[0; 6]); // domain-specific ID, instruction, flags
        for word in &self.stack {
            b.extend_from_slice(&word.to_be_bytes());
        }
        b
    }
}

/// Words per hop of `bitmap` (the program computes the same).
fn words_of(bitmap: u16) -> u8 {
    solyx_agent::ebpf::common::int::instruction_words(bitmap).unwrap_or(0)
}

#[derive(Clone, Debug)]
enum L4 {
    /// UDP; `checksum: false` sends 0 (none).
    Udp { checksum: bool },
    /// TCP with `options` (a multiple of 4 bytes).
    Tcp { options: Vec<u8> },
}

/// An Ethernet frame: optional MPLS label, IPv4, TCP/UDP, INT, payload.
#[derive(Clone, Debug)]
struct Frame {
    label: Option<u32>,
    dscp: u8,
    ip_options: Vec<u8>,
    /// IPv4 flags + fragment offset field.
    frag: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    l4: L4,
    dst_port: u16,
    int: Option<Int>,
    payload: Vec<u8>,
}

impl Frame {
    fn udp(dst_port: u16, int: Option<Int>, payload: &[u8]) -> Self {
        Self {
            label: None,
            dscp: 0,
            ip_options: Vec::new(),
            frag: 0x4000,
            src: Ipv4Addr::new(10, 78, 1, 1),
            dst: Ipv4Addr::new(10, 78, 2, 2),
            l4: L4::Udp { checksum: true },
            dst_port,
            int,
            payload: payload.to_vec(),
        }
    }

    fn build(&self) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&MAC_B);
        frame.extend_from_slice(&MAC_A);
        match self.label {
            Some(label) => {
                frame.extend_from_slice(&0x8847u16.to_be_bytes());
                frame.extend_from_slice(&((label << 12) | (1 << 8) | 64).to_be_bytes());
            }
            None => frame.extend_from_slice(&0x0800u16.to_be_bytes()),
        }
        let mut data = self.int.as_ref().map(Int::bytes).unwrap_or_default();
        data.extend_from_slice(&self.payload);
        let l4 = match &self.l4 {
            L4::Udp { checksum } => {
                let len = u16::try_from(8 + data.len()).expect("fits");
                let mut h = Vec::new();
                h.extend_from_slice(&40000u16.to_be_bytes());
                h.extend_from_slice(&self.dst_port.to_be_bytes());
                h.extend_from_slice(&len.to_be_bytes());
                h.extend_from_slice(&[0, 0]);
                h.extend_from_slice(&data);
                if *checksum {
                    let c = l4_checksum(self.src, self.dst, 17, &h);
                    h[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
                }
                h
            }
            L4::Tcp { options } => {
                let doff = u8::try_from((20 + options.len()) / 4).expect("fits");
                let mut h = Vec::new();
                h.extend_from_slice(&40000u16.to_be_bytes());
                h.extend_from_slice(&self.dst_port.to_be_bytes());
                h.extend_from_slice(&1u32.to_be_bytes());
                h.extend_from_slice(&2u32.to_be_bytes());
                h.push(doff << 4);
                h.push(0x18); // PSH ACK
                h.extend_from_slice(&1000u16.to_be_bytes());
                h.extend_from_slice(&[0, 0, 0, 0]);
                h.extend_from_slice(options);
                h.extend_from_slice(&data);
                let c = l4_checksum(self.src, self.dst, 6, &h);
                h[16..18].copy_from_slice(&c.to_be_bytes());
                h
            }
        };
        let ihl = 5 + self.ip_options.len() / 4;
        let total = u16::try_from(ihl * 4 + l4.len()).expect("fits");
        let mut ip = vec![0u8; 20];
        ip[0] = 0x40 | u8::try_from(ihl).expect("fits");
        ip[1] = self.dscp << 2;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6..8].copy_from_slice(&self.frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = if matches!(self.l4, L4::Udp { .. }) {
            17
        } else {
            6
        };
        ip[12..16].copy_from_slice(&self.src.octets());
        ip[16..20].copy_from_slice(&self.dst.octets());
        ip.extend_from_slice(&self.ip_options);
        let c = !fold(sum16(&ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&l4);
        frame
    }
}

/// One's-complement sum of 16-bit words (odd length padded), unfolded.
fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The TCP/UDP checksum of `segment` (its checksum field 0).
fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.push(0);
    pseudo.push(proto);
    pseudo.extend_from_slice(&u16::try_from(segment.len()).expect("fits").to_be_bytes());
    !fold(sum16(&pseudo) + sum16(segment))
}

/// Where the headers of a built (or rewritten) frame are.
#[derive(Debug)]
struct Parsed {
    l3: usize,
    ihl: usize,
    total_len: usize,
    udp: bool,
    l4: usize,
    int_off: usize,
}

fn parse(frame: &[u8]) -> Parsed {
    let l3 = if u16::from_be_bytes([frame[12], frame[13]]) == 0x8847 {
        18
    } else {
        14
    };
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
    let udp = frame[l3 + 9] == 17;
    let l4 = l3 + ihl;
    let l4_len = if udp {
        8
    } else {
        usize::from(frame[l4 + 12] >> 4) * 4
    };
    Parsed {
        l3,
        ihl,
        total_len,
        udp,
        l4,
        int_off: l4 + l4_len,
    }
}

impl Parsed {
    /// The IPv4 header checksum verifies.
    fn ipv4_ok(&self, frame: &[u8]) -> bool {
        fold(sum16(&frame[self.l3..self.l3 + self.ihl])) == 0xffff
    }

    /// The TCP/UDP checksum verifies (a UDP checksum of 0 means none).
    fn l4_ok(&self, frame: &[u8]) -> bool {
        let segment = &frame[self.l4..self.l3 + self.total_len];
        let at = if self.udp { 6 } else { 16 };
        let field = u16::from_be_bytes([segment[at], segment[at + 1]]);
        if self.udp && field == 0 {
            return true;
        }
        let mut zeroed = segment.to_vec();
        zeroed[at] = 0;
        zeroed[at + 1] = 0;
        let src = Ipv4Addr::new(
            frame[self.l3 + 12],
            frame[self.l3 + 13],
            frame[self.l3 + 14],
            frame[self.l3 + 15],
        );
        let dst = Ipv4Addr::new(
            frame[self.l3 + 16],
            frame[self.l3 + 17],
            frame[self.l3 + 18],
            frame[self.l3 + 19],
        );
        let expected = l4_checksum(src, dst, if self.udp { 17 } else { 6 }, &zeroed);
        field == expected || (self.udp && expected == 0 && field == 0xffff)
    }

    fn udp_len(&self, frame: &[u8]) -> usize {
        usize::from(u16::from_be_bytes([frame[self.l4 + 4], frame[self.l4 + 5]]))
    }

    fn udp_checksum(&self, frame: &[u8]) -> u16 {
        u16::from_be_bytes([frame[self.l4 + 6], frame[self.l4 + 7]])
    }

    /// The INT headers and stack of the frame.
    fn int(&self, frame: &[u8]) -> IntView {
        let o = self.int_off;
        let shim_len = frame[o + 1];
        let stack_words = usize::from(shim_len).saturating_sub(3);
        let stack = (0..stack_words)
            .map(|i| {
                let at = o + 16 + i * 4;
                u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]])
            })
            .collect();
        IntView {
            shim_len,
            flags: frame[o + 4] & 0x0f,
            hop_ml: frame[o + 6] & 0x1f,
            remaining_hop_cnt: frame[o + 7],
            stack,
            payload: frame[o + 16 + stack_words * 4..self.l3 + self.total_len].to_vec(),
        }
    }
}

#[derive(Debug)]
struct IntView {
    shim_len: u8,
    flags: u8,
    hop_ml: u8,
    remaining_hop_cnt: u8,
    stack: Vec<u32>,
    payload: Vec<u8>,
}

/// One hop's metadata, decoded per the instruction bitmap.
#[derive(Debug, Default, Clone, Copy)]
struct HopView {
    switch_id: Option<u32>,
    ports: Option<(u16, u16)>,
    latency: Option<u32>,
    queue: Option<(u8, u32)>,
    ingress_ts: Option<u64>,
    egress_ts: Option<u64>,
    tx_util: Option<u32>,
}

/// Decodes the first hop of `words` for `bitmap` (bits 0–5 and 7; other
/// bits are skipped by their size).
fn decode_hop(bitmap: u16, words: &[u32]) -> HopView {
    let mut it = words.iter().copied();
    let mut next = || it.next().expect("metadata word");
    let mut hop = HopView::default();
    if bitmap & INSTR_SWITCH_ID != 0 {
        hop.switch_id = Some(next());
    }
    if bitmap & INSTR_L1_PORTS != 0 {
        let w = next();
        hop.ports = Some(((w >> 16) as u16, w as u16));
    }
    if bitmap & INSTR_HOP_LATENCY != 0 {
        hop.latency = Some(next());
    }
    if bitmap & INSTR_QUEUE != 0 {
        let w = next();
        hop.queue = Some(((w >> 24) as u8, w & 0x00ff_ffff));
    }
    if bitmap & INSTR_INGRESS_TSTAMP != 0 {
        hop.ingress_ts = Some((u64::from(next()) << 32) | u64::from(next()));
    }
    if bitmap & INSTR_EGRESS_TSTAMP != 0 {
        hop.egress_ts = Some((u64::from(next()) << 32) | u64::from(next()));
    }
    if bitmap & (1 << 9) != 0 {
        next();
        next();
    }
    if bitmap & INSTR_TX_UTIL != 0 {
        hop.tx_util = Some(next());
    }
    hop
}

#[test]
fn packet_builder_makes_valid_frames() {
    for l4 in [
        L4::Udp { checksum: true },
        L4::Tcp {
            options: vec![1, 1, 1, 1],
        },
    ] {
        let frame = Frame {
            l4,
            ip_options: vec![1, 1, 1, 0],
            ..Frame::udp(5000, Some(Int::md(0xc000, 3)), b"abc")
        }
        .build();
        let p = parse(&frame);
        assert!(p.ipv4_ok(&frame) && p.l4_ok(&frame), "{p:?}");
        let int = p.int(&frame);
        assert_eq!((int.shim_len, int.hop_ml, int.remaining_hop_cnt), (3, 2, 3));
        assert_eq!(int.payload, b"abc");
    }
}

// ---------------------------------------------------------------------------
// BPF_PROG_TEST_RUN
// ---------------------------------------------------------------------------

/// `struct __sk_buff` as `ctx_in`/`ctx_out` of a test run (offsets from
/// `linux/bpf.h`).
#[derive(Clone, Copy, Debug, Default)]
struct SkbCtx {
    mark: u32,
    ingress_ifindex: u32,
    gso_segs: u32,
    gso_size: u32,
}

const SKB_CTX_LEN: usize = 192;

impl SkbCtx {
    fn bytes(&self) -> [u8; SKB_CTX_LEN] {
        let mut b = [0u8; SKB_CTX_LEN];
        b[8..12].copy_from_slice(&self.mark.to_ne_bytes());
        b[36..40].copy_from_slice(&self.ingress_ifindex.to_ne_bytes());
        b[164..168].copy_from_slice(&self.gso_segs.to_ne_bytes());
        b[176..180].copy_from_slice(&self.gso_size.to_ne_bytes());
        b
    }

    fn mark_of(bytes: &[u8]) -> u32 {
        u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]])
    }
}

/// Runs the egress program once; returns verdict, output frame, the mark
/// after the run and the kernel-measured run time.
fn egress_run(fabric: &mut Fabric, frame: &[u8], ctx: SkbCtx) -> (u32, Vec<u8>, u32, Duration) {
    let mut out = vec![0u8; frame.len() + 256];
    let ctx_in = ctx.bytes();
    let mut ctx_out = [0u8; SKB_CTX_LEN];
    let result = IntTransit::program(fabric)
        .expect("egress program")
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx_in),
            ctx_out: Some(&mut ctx_out),
            ..TestRunOptions::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(result.data_size_out as usize);
    (
        result.return_value,
        out,
        SkbCtx::mark_of(&ctx_out),
        result.duration,
    )
}

/// Runs the ingress program once on `frame` with `mark` in the skb; returns
/// the mark after the run (the verdict does not matter here).
fn ingress_mark(fabric: &mut Fabric, frame: &[u8], mark: u32) -> u32 {
    let mut out = vec![0u8; frame.len() + 256];
    let ctx_in = SkbCtx {
        mark,
        ..SkbCtx::default()
    }
    .bytes();
    let mut ctx_out = [0u8; SKB_CTX_LEN];
    fabric
        .program()
        .expect("ingress program")
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx_in),
            ctx_out: Some(&mut ctx_out),
            ..TestRunOptions::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    SkbCtx::mark_of(&ctx_out)
}

/// What a case expects of the program.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// This hop's metadata pushed.
    Inserted,
    /// Only the first INT-MD byte (and the L4 checksum) changed: E or M set.
    Flag(u8),
    /// Byte for byte the input.
    Untouched,
}

/// One test-run case.
struct Case {
    name: &'static str,
    frame: Frame,
    expect: Expect,
    /// The event the case adds to (besides `Inserted`).
    event: Option<IntEvent>,
    /// Truncate the built frame to this many bytes.
    cut: Option<usize>,
    /// Carries an ingress stamp `STAMP_AGE_NS` old.
    stamped: bool,
    /// Run as a GSO skb.
    gso: bool,
}

impl Case {
    fn new(name: &'static str, frame: Frame, expect: Expect) -> Self {
        Self {
            name,
            frame,
            expect,
            event: None,
            cut: None,
            stamped: true,
            gso: false,
        }
    }

    fn event(self, event: IntEvent) -> Self {
        Self {
            event: Some(event),
            ..self
        }
    }

    fn cut(self, len: usize) -> Self {
        Self {
            cut: Some(len),
            ..self
        }
    }

    fn unstamped(self) -> Self {
        Self {
            stamped: false,
            ..self
        }
    }

    fn gso(self) -> Self {
        Self { gso: true, ..self }
    }

    /// The skb context of a run: the stamp is taken now.
    fn ctx(&self, ingress_ifindex: u32) -> SkbCtx {
        SkbCtx {
            mark: if self.stamped {
                ingress_stamp(monotonic_ns() - STAMP_AGE_NS)
            } else {
                0
            },
            ingress_ifindex,
            gso_segs: if self.gso { 2 } else { 0 },
            gso_size: if self.gso { 1000 } else { 0 },
        }
    }
}

const SWITCH_ID: u32 = 0x5111;
const FULL_BITMAP: u16 = 0xff81;
const BASE_BITMAP: u16 = INSTR_SWITCH_ID | INSTR_L1_PORTS;
const WATCHED_PORT: u16 = 5000;
const INGRESS_PORT: u16 = 7;
const EGRESS_PORT: u16 = 3;
const E_BIT: u8 = 0x04;
const M_BIT: u8 = 0x02;
/// Queue state published for the egress port in the test run: 3000 bytes
/// at 1 MB/s is 3 ms of expected queueing delay.
const BACKLOG: u32 = 3000;
const DRAIN_RATE: u64 = 1_000_000;
const QUEUE_DELAY_NS: u64 = 3_000_000;
const TX_UTIL: u32 = 12_345;
/// The ingress stamp the cases carry: this long before the run.
const STAMP_AGE_NS: u64 = 2_000_000;

/// The queue state of the test runs, sampled at `now`.
fn fresh_state(now: u64) -> PortQueueState {
    PortQueueState {
        backlog_bytes: BACKLOG,
        backlog_packets: 2,
        drain_rate: DRAIN_RATE,
        tx_util_kbps: TX_UTIL,
        _reserved: 0,
        updated_ns: now,
    }
}

/// A watched UDP frame with `int`.
fn watched(int: Int) -> Frame {
    Frame::udp(WATCHED_PORT, Some(int), b"hello-int")
}

/// `Int::md` with an upstream stack.
fn with_stack(bitmap: u16, hops: u8, stack: Vec<u32>) -> Int {
    Int {
        stack,
        ..Int::md(bitmap, hops)
    }
}

/// The table of test-run cases (the stale-state case runs apart).
fn cases() -> Vec<Case> {
    use Expect::{Flag, Inserted, Untouched};
    let upstream: Vec<u32> = (0..13).map(|i| 0xab00_0000 | i).collect();
    let base = || Int::md(BASE_BITMAP, 2);
    vec![
        Case::new(
            "udp, every instruction, one upstream hop",
            watched(with_stack(FULL_BITMAP, 4, upstream)),
            Inserted,
        ),
        Case::new(
            "udp without checksum, switch ID and ports",
            Frame {
                l4: L4::Udp { checksum: false },
                ..watched(Int::md(BASE_BITMAP, 1))
            },
            Inserted,
        ),
        Case::new(
            "tcp with options",
            Frame {
                l4: L4::Tcp {
                    options: vec![1, 1, 4, 2],
                },
                ..watched(Int::md(FULL_BITMAP, 2))
            },
            Inserted,
        ),
        Case::new(
            "under an MPLS label",
            Frame {
                label: Some(100),
                ..watched(with_stack(BASE_BITMAP, 3, vec![1, 2]))
            },
            Inserted,
        )
        .event(IntEvent::UnderMplsLabel),
        Case::new(
            "ipv4 options",
            Frame {
                ip_options: vec![1, 1, 1, 0],
                ..watched(Int::md(FULL_BITMAP, 2))
            },
            Inserted,
        ),
        Case::new(
            "watched by DSCP",
            Frame {
                dscp: 0x22,
                dst_port: 7000,
                ..watched(base())
            },
            Inserted,
        ),
        Case::new(
            "no ingress stamp",
            watched(Int::md(FULL_BITMAP, 2)),
            Inserted,
        )
        .unstamped()
        .event(IntEvent::NoIngressStamp),
        Case::new(
            "excluded by a higher-priority no_mark",
            Frame {
                dscp: 0x0a,
                ..watched(base())
            },
            Untouched,
        ),
        Case::new(
            "not watched",
            Frame::udp(6000, Some(base()), b"x"),
            Untouched,
        ),
        Case::new(
            "payload too short for INT",
            Frame::udp(WATCHED_PORT, None, b"0123456789"),
            Untouched,
        ),
        Case::new(
            "remaining hop count 0",
            watched(Int::md(FULL_BITMAP, 0)),
            Flag(E_BIT),
        )
        .event(IntEvent::HopCountExceeded),
        Case::new(
            "MTU of the egress device",
            Frame::udp(WATCHED_PORT, Some(Int::md(FULL_BITMAP, 2)), &[7u8; 1430]),
            Flag(M_BIT),
        )
        .event(IntEvent::MtuExceeded),
        Case::new(
            "INT version 1",
            watched(Int {
                version: 1,
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::NotIntMd),
        Case::new(
            "shim type INT-MX",
            watched(Int {
                shim_type: 3,
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::NotIntMd),
        Case::new(
            "hop_ml does not match the bitmap",
            watched(Int {
                hop_ml: 3,
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::Unsupported),
        Case::new(
            "reserved instruction bit",
            watched(Int {
                hop_ml: 2,
                ..Int::md(BASE_BITMAP | 0x0040, 2)
            }),
            Untouched,
        )
        .event(IntEvent::Unsupported),
        Case::new(
            "shim length past the packet",
            watched(Int {
                shim_len: Some(60),
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::LengthInvalid),
        Case::new(
            "shim length below the INT-MD header",
            watched(Int {
                shim_len: Some(2),
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::LengthInvalid),
        // The lengths claim 4 stack words; the frame ends after 2
        // (Ethernet 14 + IPv4 20 + UDP 8 + INT 16 + 8).
        Case::new(
            "stack cut short",
            watched(with_stack(BASE_BITMAP, 2, vec![1, 2, 3, 4])),
            Untouched,
        )
        .cut(14 + 20 + 8 + 16 + 8)
        .event(IntEvent::LengthInvalid),
        Case::new("INT header cut short", watched(base()), Untouched)
            .cut(14 + 20 + 8 + 10)
            .event(IntEvent::Truncated),
        Case::new(
            "first fragment",
            Frame {
                frag: 0x2000,
                ..watched(base())
            },
            Untouched,
        )
        .event(IntEvent::Fragment),
        Case::new("GSO packet", watched(base()), Untouched)
            .gso()
            .event(IntEvent::Gso),
    ]
}

/// Checks a frame whose E or M bit the program set.
fn check_flag(name: &str, input: &[u8], out: &[u8], bit: u8) {
    assert_eq!(out.len(), input.len(), "{name}: length");
    let p = parse(out);
    let (i, o) = (p.int(input), p.int(out));
    assert_eq!(o.flags, i.flags | bit, "{name}: flag");
    assert_eq!(o.shim_len, i.shim_len, "{name}");
    let differing: Vec<usize> = (0..out.len()).filter(|&k| out[k] != input[k]).collect();
    let flag_byte = p.int_off + 4;
    let csum = p.l4 + if p.udp { 6 } else { 16 };
    assert!(
        differing
            .iter()
            .all(|&k| k == flag_byte || k == csum || k == csum + 1),
        "{name}: only the flag and the checksum change: {differing:?}"
    );
    assert!(p.l4_ok(out), "{name}: L4 checksum");
}

/// Checks a frame the program pushed its metadata into; `tai` is the
/// CLOCK_TAI window of the run. Returns the bytes added.
fn check_inserted(case: &Case, input: &[u8], out: &[u8], tai: (u64, u64)) -> usize {
    let name = case.name;
    let pi = parse(input);
    let i = pi.int(input);
    let bitmap = case.frame.int.as_ref().map_or(0, |x| x.bitmap);
    let words = usize::from(words_of(bitmap));
    let bytes = words * 4;
    assert_eq!(out.len(), input.len() + bytes, "{name}: grown");
    let p = parse(out);
    let o = p.int(out);
    assert!(p.ipv4_ok(out), "{name}: IPv4 checksum");
    assert!(p.l4_ok(out), "{name}: L4 checksum");
    assert_eq!(p.total_len, pi.total_len + bytes, "{name}: total length");
    if p.udp {
        assert_eq!(
            p.udp_len(out),
            pi.udp_len(input) + bytes,
            "{name}: UDP length"
        );
        if pi.udp_checksum(input) == 0 {
            assert_eq!(p.udp_checksum(out), 0, "{name}: no checksum stays none");
        }
    }
    assert_eq!(
        usize::from(o.shim_len),
        usize::from(i.shim_len) + words,
        "{name}"
    );
    assert_eq!(o.remaining_hop_cnt, i.remaining_hop_cnt - 1, "{name}");
    assert_eq!(o.hop_ml, i.hop_ml, "{name}");
    assert_eq!(
        &o.stack[words..],
        &i.stack[..],
        "{name}: upstream stack after ours"
    );
    assert_eq!(o.payload, i.payload, "{name}: payload");
    assert_eq!(&out[..pi.l3], &input[..pi.l3], "{name}: L2 (and label)");

    let hop = decode_hop(bitmap, &o.stack[..words]);
    assert_eq!(hop.switch_id, Some(SWITCH_ID), "{name}");
    assert_eq!(hop.ports, Some((INGRESS_PORT, EGRESS_PORT)), "{name}");
    if bitmap != FULL_BITMAP {
        return bytes;
    }
    let (ingress, egress) = (hop.ingress_ts.unwrap_or(0), hop.egress_ts.unwrap_or(0));
    assert!(
        tai.0 <= egress && egress <= tai.1,
        "{name}: egress timestamp {egress} is CLOCK_TAI now ({tai:?})"
    );
    let latency = u64::from(hop.latency.unwrap_or(0));
    if case.stamped {
        let between = egress - ingress;
        assert!(
            (STAMP_AGE_NS..STAMP_AGE_NS + 1_000_000_000).contains(&between),
            "{name}: ingress {ingress} egress {egress}"
        );
        // Hop latency = time between the hooks + expected queueing delay.
        assert_eq!(latency, between + QUEUE_DELAY_NS, "{name}: hop latency");
    } else {
        assert_eq!(ingress, egress, "{name}: no stamp");
        assert_eq!(latency, QUEUE_DELAY_NS, "{name}: queueing delay only");
    }
    assert_eq!(hop.queue, Some((0, BACKLOG)), "{name}: queue");
    assert_eq!(hop.tx_util, Some(TX_UTIL), "{name}: TX utilisation");
    // Level-2 ports, buffer, checksum complement: all ones.
    assert_eq!(&o.stack[8..10], &[u32::MAX, u32::MAX], "{name}");
    assert_eq!(&o.stack[11..13], &[u32::MAX, u32::MAX], "{name}");
    eprintln!(
        "{name}: +{bytes} bytes, hop latency {latency} ns, \
         ingress {ingress}, egress {egress} (TAI ns)"
    );
    bytes
}

/// The watchlist of the test runs: by port, by DSCP, and an exclusion
/// with a higher priority.
const BY_PORT: WatchMatch = WatchMatch {
    priority: 10,
    dscp: 0,
    dscp_mask: 0,
    l4_dst_port: WATCHED_PORT,
    l4_dst_port_mask: 0xffff,
};
const BY_DSCP: WatchMatch = WatchMatch {
    priority: 10,
    dscp: 0x20,
    dscp_mask: 0x20,
    l4_dst_port: 0,
    l4_dst_port_mask: 0,
};
const EXCLUDED: WatchMatch = WatchMatch {
    priority: 50,
    dscp: 0x0a,
    dscp_mask: 0x3f,
    l4_dst_port: WATCHED_PORT,
    l4_dst_port_mask: 0xffff,
};

#[test]
fn test_run_int_transit() {
    if !can_run("test_run_int_transit") {
        return;
    }
    let mut namespaces = Namespaces::create("tr", &["s1"]);
    let pins = Pins::new("tr");
    let s1 = namespaces.get("s1");
    let spare = format!("sxi{}d", std::process::id());
    namespaces.add_spare(&s1, &spare);
    // Test runs enter through the namespace's lo (egress port 3); its MTU is
    // the device MTU the M bit checks against.
    ip(&["-n", &s1, "link", "set", "lo", "up", "mtu", "1500"]);

    in_netns(&s1, || {
        let mut fabric = Fabric::load(&pins.instance).expect("load");
        fabric.attach("lo", EGRESS_PORT).expect("attach lo");
        fabric.attach(&spare, INGRESS_PORT).expect("attach spare");
        let ingress_ifindex = ifindex(&spare);
        let mut int = IntTransit::new(&mut fabric).expect("INT transit");
        int.attach(&mut fabric, "lo").expect("attach egress");
        assert!(
            int.attach(&mut fabric, "sxi-none").is_err(),
            "not a fabric port"
        );

        assert_eq!(int.switch_id().expect("switch id"), None);
        int.set_switch_id(SWITCH_ID).expect("switch id");

        // No watch rule yet: the ingress program leaves no stamp (and
        // resets the mark), and the egress program only counts the port and
        // clears a stamp left from before; the packet leaves untouched.
        let input = watched(Int::md(FULL_BITMAP, 2)).build();
        assert_eq!(ingress_mark(&mut fabric, &input, 0x1234), 0, "no stamp");
        let ctx = SkbCtx {
            mark: ingress_stamp(monotonic_ns()),
            ingress_ifindex,
            ..SkbCtx::default()
        };
        let (verdict, out, mark, _) = egress_run(&mut fabric, &input, ctx);
        assert_eq!(verdict, TC_ACT_OK, "no rule: verdict");
        assert_eq!(out, input, "no rule: untouched");
        assert_eq!(mark, 0, "no rule: the stamp is cleared");
        let tx = int.port_tx(EGRESS_PORT).expect("tx");
        assert_eq!(
            (tx.packets, tx.bytes),
            (1, input.len() as u64),
            "no rule: TX counted"
        );
        assert!(
            int.event_counts()
                .expect("events")
                .iter()
                .all(|&(_, count)| count == 0),
            "no rule: no INT event"
        );
        assert_eq!(int.switch_config_hits().expect("switch hits").packets, 0);

        int.insert_watch_rule(BY_PORT, WatchAction::Mark)
            .expect("rule");
        let stamp = ingress_mark(&mut fabric, &input, 0x1234);
        assert_eq!(
            stamp & INT_MARK_MAGIC_MASK,
            INT_MARK_MAGIC,
            "stamped: {stamp:#x}"
        );
        int.insert_watch_rule(BY_DSCP, WatchAction::NoMark)
            .expect("rule");
        // Modify: the DSCP rule marks after all (keeps its counter).
        int.insert_watch_rule(BY_DSCP, WatchAction::Mark)
            .expect("modify");
        int.insert_watch_rule(EXCLUDED, WatchAction::NoMark)
            .expect("rule");
        assert_eq!(
            int.watch_rules(),
            vec![
                (EXCLUDED, WatchAction::NoMark),
                (BY_PORT, WatchAction::Mark),
                (BY_DSCP, WatchAction::Mark),
            ],
            "highest priority first"
        );

        let mut expected_events = std::collections::HashMap::<IntEvent, u64>::new();
        // The run without rules above.
        let mut runs = 1u64;
        let mut inserted_bytes = Vec::new();
        for case in cases() {
            int.set_port_state(EGRESS_PORT, fresh_state(monotonic_ns()))
                .expect("port state");
            let mut input = case.frame.build();
            if let Some(cut) = case.cut {
                input.truncate(cut);
            }
            let ctx = case.ctx(ingress_ifindex);
            let before = tai_ns();
            let (verdict, out, mark, _) = egress_run(&mut fabric, &input, ctx);
            let after = tai_ns();
            runs += 1;
            assert_eq!(verdict, TC_ACT_OK, "{}: verdict", case.name);
            assert_eq!(mark, 0, "{}: the stamp is cleared", case.name);
            if let Some(event) = case.event {
                *expected_events.entry(event).or_default() += 1;
            }
            match case.expect {
                Expect::Untouched => assert_eq!(out, input, "{}: untouched", case.name),
                Expect::Flag(bit) => check_flag(case.name, &input, &out, bit),
                Expect::Inserted => {
                    *expected_events.entry(IntEvent::Inserted).or_default() += 1;
                    inserted_bytes.push(check_inserted(&case, &input, &out, (before, after)));
                }
            }
        }

        // A stale queue state: occupancy and utilisation are "not
        // available", no queueing delay is added.
        int.set_port_state(
            EGRESS_PORT,
            PortQueueState {
                updated_ns: monotonic_ns() - 5_000_000_000,
                ..fresh_state(0)
            },
        )
        .expect("stale state");
        let stale = Case::new("stale", watched(Int::md(FULL_BITMAP, 2)), Expect::Inserted);
        let input = stale.frame.build();
        let (_, out, _, _) = egress_run(&mut fabric, &input, stale.ctx(ingress_ifindex));
        runs += 1;
        *expected_events.entry(IntEvent::Inserted).or_default() += 1;
        *expected_events
            .entry(IntEvent::StaleQueueState)
            .or_default() += 1;
        let o = parse(&out).int(&out);
        let hop = decode_hop(FULL_BITMAP, &o.stack);
        assert_eq!(hop.queue, Some((0, 0x00ff_ffff)), "stale occupancy");
        assert_eq!(hop.tx_util, Some(u32::MAX), "stale utilisation");
        let between = hop.egress_ts.unwrap_or(0) - hop.ingress_ts.unwrap_or(0);
        assert_eq!(
            u64::from(hop.latency.unwrap_or(0)),
            between,
            "no queueing delay"
        );

        // Counters.
        for (event, count) in int.event_counts().expect("events") {
            let expected = expected_events.get(&event).copied().unwrap_or(0);
            assert_eq!(count, expected, "event {}", event.name());
        }
        assert_eq!(int.port_tx(EGRESS_PORT).expect("tx").packets, runs);
        let inserted = expected_events
            .get(&IntEvent::Inserted)
            .copied()
            .unwrap_or(0);
        assert_eq!(
            int.switch_config_hits().expect("switch hits").packets,
            inserted
        );
        for (rule, hits) in [(EXCLUDED, 1), (BY_DSCP, 1)] {
            let counter = int.watch_rule_hits(&rule).expect("hits").expect("rule");
            assert_eq!(counter.packets, hits, "{rule:?}");
        }
        eprintln!(
            "test runs: {runs}; bytes added per inserted hop: {inserted_bytes:?}; events {:?}",
            int.event_counts().expect("events")
        );

        // Removing a rule: the packet it marked is left alone.
        assert!(int.remove_watch_rule(&BY_DSCP).expect("remove"));
        assert!(!int.remove_watch_rule(&BY_DSCP).expect("remove again"));
        let input = Frame {
            dscp: 0x22,
            dst_port: 7000,
            ..watched(Int::md(BASE_BITMAP, 2))
        }
        .build();
        let ctx = SkbCtx {
            mark: ingress_stamp(monotonic_ns()),
            ingress_ifindex,
            ..SkbCtx::default()
        };
        let (_, out, _, _) = egress_run(&mut fabric, &input, ctx);
        assert_eq!(out, input, "rule removed");

        // A reloaded agent finds the switch ID and the rules again.
        drop(int);
        drop(fabric);
        let mut fabric = Fabric::load(&pins.instance).expect("reload");
        let int = IntTransit::new(&mut fabric).expect("INT transit again");
        assert_eq!(int.switch_id().expect("switch id"), Some(SWITCH_ID));
        assert_eq!(int.watch_rules().len(), 2);
        assert_eq!(
            int.watch_rule_hits(&EXCLUDED)
                .expect("hits")
                .map(|c| c.packets),
            Some(1)
        );
    });
}

#[test]
fn insert_cost() {
    if !can_run("insert_cost") {
        return;
    }
    let namespaces = Namespaces::create("cost", &["s1"]);
    let pins = Pins::new("cost");
    let s1 = namespaces.get("s1");
    ip(&["-n", &s1, "link", "set", "lo", "up"]);
    in_netns(&s1, || {
        let mut fabric = Fabric::load(&pins.instance).expect("load");
        fabric.attach("lo", EGRESS_PORT).expect("attach lo");
        let mut int = IntTransit::new(&mut fabric).expect("INT transit");
        int.set_switch_id(1).expect("switch id");
        int.insert_watch_rule(
            WatchMatch {
                priority: 1,
                dscp: 0,
                dscp_mask: 0,
                l4_dst_port: WATCHED_PORT,
                l4_dst_port_mask: 0xffff,
            },
            WatchAction::Mark,
        )
        .expect("rule");
        let ctx = SkbCtx {
            mark: ingress_stamp(monotonic_ns()),
            ..SkbCtx::default()
        };
        const RUNS: u32 = 2000;
        for payload in [64usize, 1400, 3000] {
            let data = vec![5u8; payload];
            let mut measure = |frame: &[u8]| {
                let mut total = Duration::ZERO;
                for _ in 0..RUNS {
                    total += egress_run(&mut fabric, frame, ctx).3;
                }
                total / RUNS
            };
            let plain = measure(&Frame::udp(6000, Some(Int::md(FULL_BITMAP, 5)), &data).build());
            let base =
                measure(&Frame::udp(WATCHED_PORT, Some(Int::md(BASE_BITMAP, 5)), &data).build());
            let full =
                measure(&Frame::udp(WATCHED_PORT, Some(Int::md(FULL_BITMAP, 5)), &data).build());
            eprintln!(
                "payload {payload} B: not watched {plain:?}, +8 B (switch ID, ports) {base:?}, \
                 +52 B (every instruction) {full:?} per packet"
            );
        }
    });
}

// ---------------------------------------------------------------------------
// Two hops over veths
// ---------------------------------------------------------------------------

const MAC_H1: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x01, 0x01];
const MAC_S1_P1: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x01, 0xfe];
const MAC_S1_P2: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x12, 0x01];
const MAC_S2_P1: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x12, 0x02];
const MAC_S2_P2: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x02, 0xfe];
const MAC_H2: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x02, 0x02];
const LABEL: u32 = 100;
const INT_PORT: u16 = 5555;
const PATH_BITMAP: u16 = INSTR_SWITCH_ID
    | INSTR_L1_PORTS
    | INSTR_HOP_LATENCY
    | INSTR_QUEUE
    | INSTR_INGRESS_TSTAMP
    | INSTR_EGRESS_TSTAMP
    | INSTR_TX_UTIL;

/// Interface names of the path topology (unique per test process).
struct PathNames {
    h1: String,
    s1p1: String,
    s1p2: String,
    s2p1: String,
    s2p2: String,
    h2: String,
}

impl PathNames {
    fn new(tag: char) -> Self {
        let pid = std::process::id();
        let name = |role: &str| format!("sxi{pid}{tag}{role}");
        Self {
            h1: name("h1"),
            s1p1: name("a1"),
            s1p2: name("a2"),
            s2p1: name("b1"),
            s2p2: name("b2"),
            h2: name("h2"),
        }
    }
}

/// A switch of the path: its fabric, INT stage and queue publisher.
struct Switch {
    fabric: Fabric,
    int: IntTransit,
    publisher: Option<QueuePublisher>,
}

/// h1 — s1 — s2 — h2; label 100 is forwarded by s1 and popped by s2; INT
/// transit on every switch port with switch IDs 1 and 2; the queue
/// publisher runs on both switches.
fn build_path(
    namespaces: &mut Namespaces,
    names: &PathNames,
    pins: [&Pins; 2],
    period: Duration,
) -> [Switch; 2] {
    let (h1, s1, s2, h2) = (
        namespaces.get("h1"),
        namespaces.get("s1"),
        namespaces.get("s2"),
        namespaces.get("h2"),
    );
    namespaces.add_veth((&h1, &names.h1, MAC_H1), (&s1, &names.s1p1, MAC_S1_P1));
    namespaces.add_veth((&s1, &names.s1p2, MAC_S1_P2), (&s2, &names.s2p1, MAC_S2_P1));
    namespaces.add_veth((&s2, &names.s2p2, MAC_S2_P2), (&h2, &names.h2, MAC_H2));
    for ns in [&h1, &s1, &s2, &h2] {
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    ip(&["-n", &h2, "addr", "add", "10.78.2.2/24", "dev", &names.h2]);
    ip(&["-n", &h2, "route", "add", "10.78.1.0/24", "dev", &names.h2]);

    // (destination MAC, source MAC, pop) of the label's next hop.
    let switch =
        |ns: &str, pins: &Pins, ports: [&str; 2], id: u32, next: ([u8; 6], [u8; 6], bool)| {
            in_netns(ns, || {
                let mut fabric = Fabric::load(&pins.instance).expect("load");
                fabric.attach(ports[0], 1).expect("attach port 1");
                let egress = fabric.attach(ports[1], 2).expect("attach port 2");
                let (dst_mac, src_mac, pop) = next;
                let flags = MPLS_FLAG_SET_DST_MAC
                    | MPLS_FLAG_SET_SRC_MAC
                    | if pop { MPLS_FLAG_POP } else { 0 };
                fabric
                    .insert_mpls_forward(
                        LABEL,
                        MplsForward {
                            egress_ifindex: egress,
                            egress_port: 2,
                            flags,
                            dst_mac,
                            src_mac,
                        },
                    )
                    .expect("label");
                let mut int = IntTransit::new(&mut fabric).expect("INT transit");
                for port in ports {
                    int.attach(&mut fabric, port).expect("attach egress");
                }
                int.set_switch_id(id).expect("switch id");
                int.insert_watch_rule(
                    WatchMatch {
                        priority: 1,
                        dscp: 0,
                        dscp_mask: 0,
                        l4_dst_port: INT_PORT,
                        l4_dst_port_mask: 0xffff,
                    },
                    WatchAction::Mark,
                )
                .expect("watch rule");
                let publisher = QueuePublisher::start(fabric.pin_dir(), period).expect("publisher");
                Switch {
                    fabric,
                    int,
                    publisher: Some(publisher),
                }
            })
        };
    let s1_switch = switch(
        &s1,
        pins[0],
        [&names.s1p1, &names.s1p2],
        1,
        (MAC_S2_P1, MAC_S1_P2, false),
    );
    let s2_switch = switch(
        &s2,
        pins[1],
        [&names.s2p1, &names.s2p2],
        2,
        (MAC_H2, MAC_S2_P2, true),
    );
    [s1_switch, s2_switch]
}

/// A labelled INT frame from h1 to h2's UDP port.
fn path_frame(hops: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Frame {
        label: Some(LABEL),
        ..Frame::udp(INT_PORT, Some(Int::md(PATH_BITMAP, hops)), payload)
    }
    .build();
    frame[..6].copy_from_slice(&MAC_S1_P1);
    frame[6..12].copy_from_slice(&MAC_H1);
    frame
}

/// Sends `frames` from h1's port with a packet socket.
fn send_from_h1(h1: &str, name: &str, frames: &[Vec<u8>]) {
    in_netns(h1, || {
        let ifindex = ifindex(name);
        let socket = packet::PacketSocket::bind(ifindex).expect("packet socket");
        for frame in frames {
            socket.send(frame).expect("send");
        }
    });
}

/// Waits until both publishers have completed a few rounds.
fn wait_for_publishers(switches: &[Switch; 2]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while switches
        .iter()
        .any(|s| s.publisher.as_ref().is_some_and(|p| p.rounds() < 3))
    {
        assert!(Instant::now() < deadline, "publishers did not run");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Receives `count` datagrams on `socket` (payload = INT headers + stack +
/// application payload).
fn receive(socket: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut out = Vec::new();
    while out.len() < count {
        let mut buf = [0u8; 4096];
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => out.push(buf[..n].to_vec()),
            Err(e) => panic!("h2 received {} of {count} datagrams: {e}", out.len()),
        }
    }
    out
}

/// The INT part of a received datagram: (shim len, rhc, hops newest first).
fn hops_of(datagram: &[u8]) -> (u8, u8, Vec<HopView>) {
    let shim_len = datagram[1];
    let rhc = datagram[7];
    let words = usize::from(words_of(PATH_BITMAP));
    let stack: Vec<u32> = datagram[16..4 + usize::from(shim_len) * 4]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let hops = stack
        .chunks(words)
        .map(|h| decode_hop(PATH_BITMAP, h))
        .collect();
    (shim_len, rhc, hops)
}

#[test]
fn two_hops_over_veths() {
    if !can_run("two_hops_over_veths") {
        return;
    }
    let mut namespaces = Namespaces::create("path", &["h1", "s1", "s2", "h2"]);
    let pins = [Pins::new("path-s1"), Pins::new("path-s2")];
    let names = PathNames::new('p');
    let switches = build_path(
        &mut namespaces,
        &names,
        [&pins[0], &pins[1]],
        Duration::from_millis(5),
    );
    wait_for_publishers(&switches);
    let (h1, h2) = (namespaces.get("h1"), namespaces.get("h2"));

    let (udp, capture) = in_netns(&h2, || {
        let udp = UdpSocket::bind(("10.78.2.2", INT_PORT)).expect("bind");
        let capture = packet::PacketSocket::bind(ifindex(&names.h2)).expect("capture");
        (udp, capture)
    });
    const PACKETS: usize = 5;
    let sent_at = tai_ns();
    let frames: Vec<Vec<u8>> = (0..PACKETS)
        .map(|i| path_frame(8, format!("int-path-{i}").as_bytes()))
        .collect();
    send_from_h1(&h1, &names.h1, &frames);

    // h2's UDP socket got them: its kernel checked the UDP checksum.
    let datagrams = receive(&udp, PACKETS);
    let received_at = tai_ns();
    let words = words_of(PATH_BITMAP);
    for (i, datagram) in datagrams.iter().enumerate() {
        let (shim_len, rhc, hops) = hops_of(datagram);
        assert_eq!(shim_len, 3 + 2 * words, "two hops of {words} words");
        assert_eq!(rhc, 6, "remaining hop count 8 - 2");
        assert_eq!(hops.len(), 2);
        let (s2, s1) = (hops[0], hops[1]);
        assert_eq!(s2.switch_id, Some(2), "newest hop first");
        assert_eq!(s1.switch_id, Some(1));
        assert_eq!(s1.ports, Some((1, 2)));
        assert_eq!(s2.ports, Some((1, 2)));
        let ts = [
            s1.ingress_ts.unwrap_or(0),
            s1.egress_ts.unwrap_or(0),
            s2.ingress_ts.unwrap_or(0),
            s2.egress_ts.unwrap_or(0),
        ];
        assert!(
            sent_at <= ts[0] && ts.windows(2).all(|w| w[0] <= w[1]) && ts[3] <= received_at,
            "timestamps in path order within the send/receive window: {ts:?} ({sent_at}..{received_at})"
        );
        // veths have no queue: occupancy 0, latency = time between hooks.
        for hop in [s1, s2] {
            assert_eq!(hop.queue, Some((0, 0)), "noqueue veth");
            let between = hop.egress_ts.unwrap_or(0) - hop.ingress_ts.unwrap_or(0);
            assert_eq!(u64::from(hop.latency.unwrap_or(0)), between);
        }
        let app = &datagram[4 + usize::from(shim_len) * 4..];
        assert!(app.starts_with(b"int-path-"), "payload {app:?}");
        if i == 0 {
            eprintln!(
                "h2 got {} B datagrams; s1 hop {s1:?}; s2 hop {s2:?}; s1 egress → s2 ingress {} ns",
                datagram.len(),
                ts[2] - ts[1]
            );
        }
    }

    // On the wire at h2: IPv4 and UDP checksums recomputed by the test.
    let frames = capture
        .receive_all(Duration::from_millis(300))
        .expect("capture");
    let ours: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f.len() > 42 && f[12..14] == [0x08, 0x00] && f[23] == 17)
        .collect();
    assert_eq!(ours.len(), PACKETS, "IPv4/UDP frames at h2");
    for frame in ours {
        let p = parse(frame);
        assert!(p.ipv4_ok(frame), "IPv4 checksum at h2");
        assert!(p.l4_ok(frame), "UDP checksum at h2");
        assert_ne!(
            p.udp_checksum(frame),
            0,
            "the checksum was kept, not dropped"
        );
    }

    // A sender on switch s2 itself: no ingress port, no stamp, and (on a
    // veth) a CHECKSUM_PARTIAL skb whose UDP checksum field holds only the
    // pseudo-header sum, which must follow the new length.
    let s2 = namespaces.get("s2");
    ip(&["-n", &s2, "addr", "add", "10.78.2.1/24", "dev", &names.s2p2]);
    // Static: the fabric ingress program does not pass ARP to the kernel.
    ip(&[
        "-n",
        &s2,
        "neigh",
        "add",
        "10.78.2.2",
        "lladdr",
        &mac_text(MAC_H2),
        "dev",
        &names.s2p2,
    ]);
    in_netns(&s2, || {
        let socket = UdpSocket::bind("10.78.2.1:0").expect("bind in s2");
        let mut datagram = Int::md(PATH_BITMAP, 8).bytes();
        datagram.extend_from_slice(b"from-s2");
        socket
            .send_to(&datagram, ("10.78.2.2", INT_PORT))
            .expect("send from s2");
    });
    let local = receive(&udp, 1);
    let (_, rhc, hops) = hops_of(&local[0]);
    assert_eq!((rhc, hops.len()), (7, 1), "one hop");
    assert_eq!(hops[0].switch_id, Some(2));
    assert_eq!(hops[0].ports, Some((0xffff, 2)), "no ingress port");
    assert_eq!(hops[0].ingress_ts, hops[0].egress_ts, "no ingress stamp");
    let frames = capture
        .receive_all(Duration::from_millis(300))
        .expect("capture");
    let frame = frames
        .iter()
        .find(|f| f.len() > 42 && f[12..14] == [0x08, 0x00] && f[26..30] == [10, 78, 2, 1])
        .expect("s2's datagram on the wire");
    let p = parse(frame);
    assert!(p.ipv4_ok(frame), "IPv4 checksum of s2's datagram");
    let field = p.udp_checksum(frame);
    let pseudo_only = {
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&frame[p.l3 + 12..p.l3 + 20]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&u16::try_from(p.udp_len(frame)).expect("fits").to_be_bytes());
        fold(sum16(&pseudo))
    };
    let how = if p.l4_ok(frame) {
        "a full UDP checksum"
    } else if field == pseudo_only {
        "CHECKSUM_PARTIAL: the pseudo-header sum of the grown length"
    } else {
        panic!("UDP checksum {field:#06x} of s2's datagram is neither complete nor the new pseudo-header sum {pseudo_only:#06x}");
    };
    eprintln!("s2's own datagram: {how}");
    assert_eq!(
        switches[1]
            .int
            .event_count(IntEvent::NoIngressStamp)
            .expect("events"),
        1
    );

    let bytes = 4 * u64::from(words);
    for ((name, switch), local) in ["s1", "s2"].iter().zip(&switches).zip([0, 1]) {
        let inserted = switch.int.event_count(IntEvent::Inserted).expect("events");
        assert_eq!(inserted, PACKETS as u64 + local, "{name} inserted");
        assert_eq!(
            switch.int.port_tx(2).expect("tx").packets,
            PACKETS as u64 + local,
            "{name} tx"
        );
        eprintln!(
            "{name}: +{bytes} B per packet; events {:?}; port 2 tx {:?}; rx {:?}",
            switch.int.event_counts().expect("events"),
            switch.int.port_tx(2).expect("tx"),
            switch.fabric.port_rx(1).expect("rx")
        );
    }
    assert_eq!(
        switches[0]
            .int
            .event_count(IntEvent::UnderMplsLabel)
            .expect("events"),
        PACKETS as u64,
        "s1 updated INT under the label"
    );
    for switch in switches {
        if let Some(p) = switch.publisher {
            p.stop();
        }
    }
}

#[test]
fn queue_occupancy_under_tbf() {
    if !can_run("queue_occupancy_under_tbf") {
        return;
    }
    let mut namespaces = Namespaces::create("tbf", &["h1", "s1", "s2", "h2"]);
    let pins = [Pins::new("tbf-s1"), Pins::new("tbf-s2")];
    let names = PathNames::new('q');
    let switches = build_path(
        &mut namespaces,
        &names,
        [&pins[0], &pins[1]],
        Duration::from_millis(2),
    );
    let (h1, s1, h2) = (
        namespaces.get("h1"),
        namespaces.get("s1"),
        namespaces.get("h2"),
    );
    // 8 Mbit/s = 1 MB/s out of s1 towards s2.
    run(
        "tc",
        &[
            "-n",
            &s1,
            "qdisc",
            "add",
            "dev",
            &names.s1p2,
            "root",
            "tbf",
            "rate",
            "8mbit",
            "burst",
            "4kb",
            "limit",
            "300kb",
        ],
    );
    wait_for_publishers(&switches);
    let udp = in_netns(&h2, || {
        UdpSocket::bind(("10.78.2.2", INT_PORT)).expect("bind")
    });

    // A burst of 150 kB (150 ms at the tbf rate; INT packets too), then,
    // while it drains, a few probes.
    const BURST: usize = 150;
    const PROBES: usize = 5;
    // Received while sending: 155 datagrams overflow a default socket
    // buffer.
    let receiver = std::thread::spawn(move || receive(&udp, BURST + PROBES));
    let burst: Vec<Vec<u8>> = (0..BURST).map(|_| path_frame(8, &[9u8; 1000])).collect();
    send_from_h1(&h1, &names.h1, &burst);
    // h1's socket buffer keeps about 45 of those in flight (queued at s1),
    // so the send returns while the tbf still holds ~48 kB; 10 ms later
    // ~38 kB are left and published.
    std::thread::sleep(Duration::from_millis(10));
    let probes: Vec<Vec<u8>> = (0..PROBES)
        .map(|i| path_frame(8, format!("probe-{i}").as_bytes()))
        .collect();
    send_from_h1(&h1, &names.h1, &probes);

    let datagrams = receiver.join().expect("receiver thread");
    let probe_hops: Vec<HopView> = datagrams
        .iter()
        .filter(|d| d.windows(6).any(|w| w == b"probe-"))
        .map(|d| hops_of(d).2[1])
        .collect();
    assert_eq!(probe_hops.len(), PROBES, "probes at h2");
    let state = switches[0].int.port_state(2).expect("state");
    eprintln!("s1 port 2 state after the run: {state:?}");
    for hop in &probe_hops {
        let (q_id, occupancy) = hop.queue.unwrap_or((0, 0));
        let latency = u64::from(hop.latency.unwrap_or(0));
        let between = hop.egress_ts.unwrap_or(0) - hop.ingress_ts.unwrap_or(0);
        eprintln!(
            "probe at s1: queue {q_id}/{occupancy} B, hop latency {latency} ns \
             ({between} ns between the hooks), tx {} kbit/s",
            hop.tx_util.unwrap_or(0)
        );
        assert!(occupancy < 300_000, "backlog seen: {occupancy}");
        // Expected queueing delay at the tbf rate (1 MB/s): 1 µs per byte.
        let queueing = latency - between;
        assert!(
            queueing.abs_diff(u64::from(occupancy) * 1000)
                <= u64::from(occupancy) * 1000 / 100 + 1000,
            "queueing {queueing} ns for {occupancy} B at 1 MB/s"
        );
        assert!(
            hop.tx_util.unwrap_or(0) < 40_000,
            "at most the tbf rate (8000 kbit/s) plus its 4 kB burst in a window"
        );
    }
    assert!(
        probe_hops
            .iter()
            .any(|h| h.queue.unwrap_or((0, 0)).1 > 5_000),
        "a probe saw the burst's backlog"
    );
    assert!(
        probe_hops.iter().any(|h| h.tx_util.unwrap_or(0) > 1000),
        "the port was busy"
    );
    for switch in switches {
        if let Some(p) = switch.publisher {
            p.stop();
        }
    }
}

// ---------------------------------------------------------------------------
// AF_PACKET sockets
// ---------------------------------------------------------------------------

#[allow(unsafe_code)]
mod packet {
    //! A raw `AF_PACKET` socket bound to one interface (libc directly: the
    //! standard library and nix offer no safe `sockaddr_ll`).

    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    /// `PACKET_OUTGOING`: a frame this host sent.
    const PACKET_OUTGOING: u8 = 4;

    pub struct PacketSocket {
        fd: OwnedFd,
        ifindex: i32,
    }

    impl PacketSocket {
        /// A socket bound to `ifindex` of the calling thread's namespace.
        pub fn bind(ifindex: u32) -> io::Result<Self> {
            let protocol = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain syscall; the result is checked before use.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh descriptor owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
            let socket = Self { fd, ifindex };
            let addr = socket.address(protocol);
            // SAFETY: `addr` is a valid sockaddr_ll and the length its size.
            let rc = unsafe {
                libc::bind(
                    socket.fd.as_raw_fd(),
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(socket)
        }

        fn address(&self, protocol: u16) -> libc::sockaddr_ll {
            // SAFETY: sockaddr_ll is plain old data; all zeroes is valid.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = protocol;
            addr.sll_ifindex = self.ifindex;
            addr
        }

        /// Sends one complete Ethernet frame.
        pub fn send(&self, frame: &[u8]) -> io::Result<()> {
            let protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be();
            let mut addr = self.address(protocol);
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&frame[..6]);
            // SAFETY: `frame` is valid for its length; `addr` is a valid
            // sockaddr_ll of the given size.
            let sent = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            if sent as usize != frame.len() {
                return Err(io::Error::other("short send"));
            }
            Ok(())
        }

        /// Every frame received (not sent) until `timeout` passes without one.
        pub fn receive_all(&self, timeout: Duration) -> io::Result<Vec<Vec<u8>>> {
            let tv = libc::timeval {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
            };
            // SAFETY: `tv` is a valid timeval of the given size.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const tv).cast(),
                    size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut frames = Vec::new();
            loop {
                let mut buf = vec![0u8; 65536];
                // SAFETY: sockaddr_ll is plain old data; all zeroes is valid.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut from_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: `buf` and `from` are valid for the lengths given.
                let n = unsafe {
                    libc::recvfrom(
                        self.fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        (&raw mut from).cast(),
                        &raw mut from_len,
                    )
                };
                if n < 0 {
                    let error = io::Error::last_os_error();
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) {
                        return Ok(frames);
                    }
                    return Err(error);
                }
                if from.sll_pkttype == PACKET_OUTGOING {
                    continue;
                }
                buf.truncate(n as usize);
                frames.push(buf);
            }
        }
    }
}
