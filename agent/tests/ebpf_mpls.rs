//! Kernel tests of the fabric eBPF stage (MPLS forwarding, TC ingress).
//!
//! * `test_run_*`: the program runs on frames built here through
//!   `BPF_PROG_TEST_RUN`; the output frame, verdict and counters are
//!   checked byte for byte. Runs in a private network namespace whose `lo`
//!   is the fabric port (test runs use the namespace's loopback device).
//! * `mpls_over_veths`: three namespaces h1 — s1 — h2 joined by veth pairs;
//!   the program is attached to s1's two ports, h1 sends MPLS-labelled UDP
//!   packets from an `AF_PACKET` socket, and h2 must receive them (popped
//!   and delivered to a UDP socket, or forwarded with the label kept), with
//!   MACs rewritten and counters increased; an unknown label is dropped and
//!   counted as a miss.
//! * `pinned_state_survives_a_reload` and `full_mpls_table_is_table_full`:
//!   map pinning and the "map full" error.
//!
//! They need root (BPF, namespaces) and an agent built with the eBPF
//! toolchain. Without either they print why and pass, unless
//! `SOLYX_REQUIRE_ROOT=1`, which turns a skip into a failure. Namespaces,
//! veths and pin directories carry the prefix `sxe-` and the test process
//! ID, and guards delete exactly those, also when a test fails. Traffic
//! stays inside the namespaces (10.77.x.0/24 test subnets).

use std::fs::File;
use std::io::Write as _;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aya::programs::{TestRun, TestRunOptions};
use solyx_agent::ebpf::common::{
    Counter, DropReason, MplsForward, ETHERTYPE_IPV4, ETHERTYPE_MPLS, MPLS_FLAG_POP,
    MPLS_FLAG_SET_DST_MAC, MPLS_FLAG_SET_SRC_MAC, MPLS_FORWARD_CAPACITY,
};
use solyx_agent::ebpf::{remove_instance, Error, Fabric, DEFAULT_PIN_ROOT};

/// TC verdicts (`linux/pkt_cls.h`).
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

// ---------------------------------------------------------------------------
// Preconditions
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
            // Straight to stderr, past the test harness's capture, so that
            // a skip is visible in a normal run.
            let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
            false
        }
    }
}

#[test]
fn load_without_object_says_how_to_fix_it() {
    if solyx_agent::ebpf::is_built() {
        return;
    }
    // No root needed: the missing object is reported before anything else.
    let error = Fabric::load("sxe-not-built").expect_err("nothing to load");
    assert!(matches!(error, Error::NotBuilt), "{error}");
    assert!(error.to_string().contains("scripts/setup.sh"), "{error}");
}

// ---------------------------------------------------------------------------
// Guards: namespaces and pins are removed, by name, whatever happens
// ---------------------------------------------------------------------------

/// Network namespaces and veth pairs created by a test; on drop the veths
/// and then the namespaces are deleted by name.
struct Namespaces {
    names: Vec<String>,
    /// (namespace, name) of one end of every veth pair.
    veths: Vec<(String, String)>,
}

impl Namespaces {
    /// Creates `sxe-<pid>-<test>-<role>` for every role.
    fn create(test: &str, roles: &[&str]) -> Self {
        let mut namespaces = Self {
            names: Vec::new(),
            veths: Vec::new(),
        };
        for role in roles {
            let name = format!("sxe-{}-{test}-{role}", std::process::id());
            // Left over from a crashed run of the same PID: start clean.
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
            ip(&["netns", "add", &name]);
            namespaces.names.push(name);
        }
        namespaces
    }

    /// The namespace of `role`.
    fn get(&self, role: &str) -> &str {
        self.names
            .iter()
            .find(|name| name.ends_with(&format!("-{role}")))
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no namespace for {role}"))
    }

    /// Creates the veth pair `a` (in namespace `ns_a`, MAC `mac_a`) — `b`
    /// (in `ns_b`, MAC `mac_b`), both ends directly in their namespaces.
    fn add_veth(&mut self, (ns_a, a, mac_a): End<'_>, (ns_b, b, mac_b): End<'_>) {
        let (mac_a, mac_b) = (mac_text(mac_a), mac_text(mac_b));
        ip(&[
            "link", "add", a, "address", &mac_a, "netns", ns_a, "type", "veth", "peer", "name", b,
            "address", &mac_b, "netns", ns_b,
        ]);
        self.veths.push((ns_a.to_owned(), a.to_owned()));
    }
}

/// One end of a veth pair: namespace, interface name, MAC.
type End<'a> = (&'a str, &'a str, [u8; 6]);

/// `02:5e:...` notation.
fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for (ns, veth) in &self.veths {
            let _ = Command::new("ip")
                .args(["-n", ns, "link", "del", veth])
                .output();
        }
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A pinned fabric instance; its pins are removed on drop.
struct Pins {
    instance: String,
}

impl Pins {
    fn new(test: &str) -> Self {
        let instance = format!("sxe-{}-{test}", std::process::id());
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
    let output = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `f` on a new thread that entered network namespace `ns`, and
/// returns what it returns. Sockets and attachments made there stay in
/// `ns`; BPF maps and programs are not tied to a namespace.
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

/// Interface index of `name` in namespace `ns`.
fn ifindex_in(ns: &str, name: &str) -> u32 {
    in_netns(ns, || {
        nix::net::if_::if_nametoindex(name).expect("if_nametoindex")
    })
}

// ---------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------

/// An MPLS label stack entry to put after the Ethernet header.
#[derive(Clone, Copy)]
struct Label {
    label: u32,
    ttl: u8,
    bottom_of_stack: bool,
}

/// A UDP-in-IPv4 frame, optionally labelled.
struct UdpFrame<'a> {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    labels: &'a [Label],
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    payload: &'a [u8],
}

impl UdpFrame<'_> {
    /// The frame's bytes: Ethernet, the labels, IPv4 (valid header
    /// checksum, TTL 64), UDP (checksum 0: none), payload.
    fn build(&self) -> Vec<u8> {
        let ethertype = if self.labels.is_empty() {
            ETHERTYPE_IPV4
        } else {
            ETHERTYPE_MPLS
        };
        let mut frame = Vec::new();
        frame.extend_from_slice(&self.dst_mac);
        frame.extend_from_slice(&self.src_mac);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        for l in self.labels {
            let lse = (l.label << 12) | (u32::from(l.bottom_of_stack) << 8) | u32::from(l.ttl);
            frame.extend_from_slice(&lse.to_be_bytes());
        }
        let udp_len = u16::try_from(8 + self.payload.len()).expect("payload fits UDP");
        let total_len = 20 + udp_len;
        let mut ip = [0u8; 20];
        ip[0] = 0x45; // version 4, IHL 5
        ip[2..4].copy_from_slice(&total_len.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64; // TTL
        ip[9] = 17; // UDP
        ip[12..16].copy_from_slice(&self.src_ip.octets());
        ip[16..20].copy_from_slice(&self.dst_ip.octets());
        let checksum = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&self.src_port.to_be_bytes());
        frame.extend_from_slice(&self.dst_port.to_be_bytes());
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(self.payload);
        frame
    }
}

/// The IPv4 header checksum (RFC 1071) of a header whose checksum field is 0.
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

/// A frame's EtherType.
fn ethertype(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

/// The (label, TTL) of a frame's first label stack entry.
fn first_label(frame: &[u8]) -> (u32, u8) {
    let lse = u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]);
    (lse >> 12, (lse & 0xff) as u8)
}

#[test]
fn packet_builder_makes_valid_headers() {
    let frame = UdpFrame {
        dst_mac: [1; 6],
        src_mac: [2; 6],
        labels: &[Label {
            label: 0xabcde,
            ttl: 9,
            bottom_of_stack: true,
        }],
        src_ip: Ipv4Addr::new(10, 77, 1, 1),
        dst_ip: Ipv4Addr::new(10, 77, 2, 2),
        src_port: 1,
        dst_port: 2,
        payload: b"xyz",
    }
    .build();
    assert_eq!(frame.len(), 14 + 4 + 20 + 8 + 3);
    assert_eq!(ethertype(&frame), ETHERTYPE_MPLS);
    assert_eq!(first_label(&frame), (0xabcde, 9));
    assert_eq!(frame[16] & 1, 1, "bottom of stack");
    // A header with a correct checksum sums to 0xffff, i.e. checks as 0.
    assert_eq!(ipv4_checksum(&frame[18..38]), 0);
}

// ---------------------------------------------------------------------------
// AF_PACKET sockets
// ---------------------------------------------------------------------------

#[allow(unsafe_code)]
mod packet {
    //! A raw `AF_PACKET` socket bound to one interface: the standard library
    //! and nix offer no safe way to build a `sockaddr_ll`, so this module
    //! calls libc directly.

    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    /// `PACKET_OUTGOING`: a frame this host sent.
    const PACKET_OUTGOING: u8 = 4;

    /// A raw packet socket bound to one interface, all EtherTypes.
    pub struct PacketSocket {
        fd: OwnedFd,
        ifindex: i32,
    }

    impl PacketSocket {
        /// Opens a socket bound to `ifindex` in the calling thread's network
        /// namespace.
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
            // SAFETY: `addr` is a valid sockaddr_ll and the length is its size.
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
            // SAFETY: `frame` is a valid buffer of its length; `addr` a valid
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

        /// Every frame received (not sent) on the interface until `timeout`
        /// passes without one.
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

use packet::PacketSocket;

// ---------------------------------------------------------------------------
// BPF_PROG_TEST_RUN
// ---------------------------------------------------------------------------

const MAC_H2: [u8; 6] = [0x02, 0x5e, 0x00, 0x00, 0x02, 0x02];
const MAC_S1_ETH2: [u8; 6] = [0x02, 0x5e, 0x00, 0x00, 0x02, 0xfe];
const MAC_S1_ETH1: [u8; 6] = [0x02, 0x5e, 0x00, 0x00, 0x01, 0xfe];
const MAC_H1: [u8; 6] = [0x02, 0x5e, 0x00, 0x00, 0x01, 0x01];

/// A labelled test frame from h1 to h2.
fn labelled(label: u32, ttl: u8, payload: &[u8]) -> Vec<u8> {
    UdpFrame {
        dst_mac: MAC_S1_ETH1,
        src_mac: MAC_H1,
        labels: &[Label {
            label,
            ttl,
            bottom_of_stack: true,
        }],
        src_ip: Ipv4Addr::new(10, 77, 1, 1),
        dst_ip: Ipv4Addr::new(10, 77, 2, 2),
        src_port: 40000,
        dst_port: 5555,
        payload,
    }
    .build()
}

/// Runs the program once on `frame`; returns the verdict and output frame.
fn test_run(fabric: &mut Fabric, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; frame.len() + 64];
    let result = fabric
        .program()
        .expect("program")
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(result.data_size_out as usize);
    (result.return_value, out)
}

#[test]
fn test_run_forwards_pops_and_drops() {
    if !can_run("test_run_forwards_pops_and_drops") {
        return;
    }
    let namespaces = Namespaces::create("tr", &["s1"]);
    let pins = Pins::new("tr");
    let s1 = namespaces.get("s1");

    // The namespace's lo is port 3; test runs enter through lo.
    let mut fabric = in_netns(s1, || {
        let mut fabric = Fabric::load(&pins.instance).expect("load");
        fabric.attach("lo", 3).expect("attach lo");
        fabric
    });
    let egress = 42; // not looked at by a test run
    fabric
        .insert_mpls_forward(
            100,
            MplsForward {
                egress_ifindex: egress,
                egress_port: 2,
                flags: MPLS_FLAG_POP | MPLS_FLAG_SET_DST_MAC | MPLS_FLAG_SET_SRC_MAC,
                dst_mac: MAC_H2,
                src_mac: MAC_S1_ETH2,
            },
        )
        .expect("insert pop entry");
    fabric
        .insert_mpls_forward(
            200,
            MplsForward {
                egress_ifindex: egress,
                egress_port: 2,
                flags: 0,
                dst_mac: [0; 6],
                src_mac: [0; 6],
            },
        )
        .expect("insert transit entry");

    // Pop: label gone, EtherType IPv4, MACs rewritten, IPv4 untouched.
    let input = labelled(100, 64, b"pop me");
    let (verdict, out) = test_run(&mut fabric, &input);
    assert_eq!(verdict, TC_ACT_REDIRECT, "pop verdict");
    assert_eq!(out.len(), input.len() - 4, "label removed");
    assert_eq!(&out[0..6], &MAC_H2);
    assert_eq!(&out[6..12], &MAC_S1_ETH2);
    assert_eq!(ethertype(&out), ETHERTYPE_IPV4);
    assert_eq!(
        &out[14..],
        &input[18..],
        "IPv4 packet unchanged (pipe model)"
    );

    // Transit: label kept, TTL decremented, MACs unchanged.
    let input = labelled(200, 64, b"transit");
    let (verdict, out) = test_run(&mut fabric, &input);
    assert_eq!(verdict, TC_ACT_REDIRECT, "transit verdict");
    assert_eq!(out.len(), input.len());
    assert_eq!(&out[..14], &input[..14]);
    assert_eq!(first_label(&out), (200, 63));
    assert_eq!(&out[18..], &input[18..]);

    // Drops, each with its reason.
    let (verdict, _) = test_run(&mut fabric, &labelled(999, 64, b"miss"));
    assert_eq!(verdict, TC_ACT_SHOT, "unknown label");
    let (verdict, _) = test_run(&mut fabric, &labelled(100, 1, b"ttl"));
    assert_eq!(verdict, TC_ACT_SHOT, "TTL 1");
    let stacked = UdpFrame {
        dst_mac: MAC_S1_ETH1,
        src_mac: MAC_H1,
        labels: &[
            Label {
                label: 100,
                ttl: 64,
                bottom_of_stack: false,
            },
            Label {
                label: 7,
                ttl: 64,
                bottom_of_stack: true,
            },
        ],
        src_ip: Ipv4Addr::new(10, 77, 1, 1),
        dst_ip: Ipv4Addr::new(10, 77, 2, 2),
        src_port: 1,
        dst_port: 2,
        payload: b"stack",
    }
    .build();
    let (verdict, _) = test_run(&mut fabric, &stacked);
    assert_eq!(verdict, TC_ACT_SHOT, "two labels");
    let mut truncated = labelled(100, 64, b"");
    truncated.truncate(16);
    let (verdict, _) = test_run(&mut fabric, &truncated);
    assert_eq!(verdict, TC_ACT_SHOT, "label cut short");

    // Unlabelled IPv4 is routed; with no route it is dropped as a miss.
    let plain = UdpFrame {
        dst_mac: MAC_S1_ETH1,
        src_mac: MAC_H1,
        labels: &[],
        src_ip: Ipv4Addr::new(10, 77, 1, 1),
        dst_ip: Ipv4Addr::new(10, 77, 2, 2),
        src_port: 1,
        dst_port: 2,
        payload: b"plain",
    }
    .build();
    let (verdict, _) = test_run(&mut fabric, &plain);
    assert_eq!(verdict, TC_ACT_SHOT, "unlabelled, no route");

    let pop_len = labelled(100, 64, b"pop me").len() as u64;
    assert_eq!(
        fabric.mpls_hits(100).expect("hits"),
        Counter {
            packets: 1,
            bytes: pop_len
        },
        "pop entry hit once (TTL and stack drops happen before the lookup)"
    );
    assert_eq!(fabric.mpls_hits(200).expect("hits").packets, 1);
    assert_eq!(fabric.port_rx(3).expect("port rx").packets, 7);
    assert_eq!(fabric.drop_count(DropReason::MplsMiss).expect("miss"), 1);
    assert_eq!(
        fabric.drop_count(DropReason::MplsTtlExpired).expect("ttl"),
        1
    );
    assert_eq!(
        fabric
            .drop_count(DropReason::MplsLabelStack)
            .expect("stack"),
        1
    );
    assert_eq!(
        fabric.drop_count(DropReason::Malformed).expect("malformed"),
        1
    );
    assert_eq!(fabric.drop_count(DropReason::Ipv4Miss).expect("miss"), 1);
    assert_eq!(
        fabric
            .drop_count(DropReason::RewriteFailed)
            .expect("rewrite"),
        0
    );
    drop(fabric);
}

#[test]
fn pinned_state_survives_a_reload() {
    if !can_run("pinned_state_survives_a_reload") {
        return;
    }
    let namespaces = Namespaces::create("pin", &["s1"]);
    let pins = Pins::new("pin");
    let s1 = namespaces.get("s1");
    let entry = MplsForward {
        egress_ifindex: 5,
        egress_port: 9,
        flags: MPLS_FLAG_POP | MPLS_FLAG_SET_DST_MAC,
        dst_mac: MAC_H2,
        src_mac: [0; 6],
    };

    let mut fabric = in_netns(s1, || {
        let mut fabric = Fabric::load(&pins.instance).expect("load");
        fabric.attach("lo", 1).expect("attach lo");
        fabric
    });
    fabric.insert_mpls_forward(300, entry).expect("insert");
    let (verdict, _) = test_run(&mut fabric, &labelled(300, 64, b"count me"));
    assert_eq!(verdict, TC_ACT_REDIRECT);
    let hits = fabric.mpls_hits(300).expect("hits");
    assert_eq!(hits.packets, 1);
    drop(fabric);

    // A new agent: same instance, same maps.
    let mut fabric = Fabric::load(&pins.instance).expect("reload");
    assert_eq!(fabric.mpls_forward(300).expect("get"), Some(entry));
    assert_eq!(fabric.mpls_hits(300).expect("hits"), hits);
    assert_eq!(fabric.port_rx(1).expect("port rx").packets, 1);

    // Replacing keeps the counters; removing drops entry and counters.
    fabric
        .insert_mpls_forward(
            300,
            MplsForward {
                egress_port: 8,
                ..entry
            },
        )
        .expect("replace");
    assert_eq!(fabric.mpls_hits(300).expect("hits"), hits);
    assert!(fabric.remove_mpls_forward(300).expect("remove"));
    assert!(!fabric.remove_mpls_forward(300).expect("remove again"));
    assert_eq!(fabric.mpls_forward(300).expect("get"), None);
    assert_eq!(fabric.mpls_hits(300).expect("hits"), Counter::default());

    // Values the data path cannot hold are refused, not written.
    for (label, bad) in [
        (1 << 20, entry),
        (
            1,
            MplsForward {
                egress_ifindex: 0,
                ..entry
            },
        ),
        (
            1,
            MplsForward {
                egress_port: 512,
                ..entry
            },
        ),
        (
            1,
            MplsForward {
                flags: 0x80,
                ..entry
            },
        ),
    ] {
        let error = fabric.insert_mpls_forward(label, bad).expect_err("refused");
        assert!(matches!(error, Error::Invalid { .. }), "{error}");
    }
    assert!(fabric.mpls_forward_entries().expect("entries").is_empty());
}

#[test]
fn full_mpls_table_is_table_full() {
    if !can_run("full_mpls_table_is_table_full") {
        return;
    }
    let pins = Pins::new("full");
    let mut fabric = Fabric::load(&pins.instance).expect("load");
    let entry = MplsForward {
        egress_ifindex: 1,
        egress_port: 1,
        flags: 0,
        dst_mac: [0; 6],
        src_mac: [0; 6],
    };
    for label in 0..MPLS_FORWARD_CAPACITY {
        fabric
            .insert_mpls_forward(label, entry)
            .expect("insert within capacity");
    }
    let error = fabric
        .insert_mpls_forward(MPLS_FORWARD_CAPACITY, entry)
        .expect_err("one entry too many");
    assert!(error.is_table_full(), "{error}");
    // Replacing an existing entry needs no room.
    fabric
        .insert_mpls_forward(7, entry)
        .expect("replace when full");
    assert_eq!(
        fabric.mpls_forward_entries().expect("entries").len(),
        MPLS_FORWARD_CAPACITY as usize
    );
}

// ---------------------------------------------------------------------------
// Real traffic over veths
// ---------------------------------------------------------------------------

/// Interface names, all with the test prefix.
const H1_ETH0: &str = "sxe-h1-eth0";
const S1_ETH1: &str = "sxe-s1-eth1";
const S1_ETH2: &str = "sxe-s1-eth2";
const H2_ETH0: &str = "sxe-h2-eth0";

/// h1 — s1 — h2 with fixed MACs and addresses.
fn build_topology(namespaces: &mut Namespaces) {
    let h1 = namespaces.get("h1").to_owned();
    let s1 = namespaces.get("s1").to_owned();
    let h2 = namespaces.get("h2").to_owned();
    let (h1, s1, h2) = (h1.as_str(), s1.as_str(), h2.as_str());
    namespaces.add_veth((h1, H1_ETH0, MAC_H1), (s1, S1_ETH1, MAC_S1_ETH1));
    namespaces.add_veth((h2, H2_ETH0, MAC_H2), (s1, S1_ETH2, MAC_S1_ETH2));
    for (ns, dev) in [(h1, H1_ETH0), (s1, S1_ETH1), (s1, S1_ETH2), (h2, H2_ETH0)] {
        // No IPv6 chatter (DAD, router solicitations) on the test links.
        let sysctl = format!("net.ipv6.conf.{dev}.disable_ipv6=1");
        let _ = Command::new("ip")
            .args(["netns", "exec", ns, "sysctl", "-q", "-w", &sysctl])
            .output();
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    for ns in [h1, s1, h2] {
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    ip(&["-n", h1, "addr", "add", "10.77.1.1/24", "dev", H1_ETH0]);
    ip(&["-n", h2, "addr", "add", "10.77.2.2/24", "dev", H2_ETH0]);
    // So that h2 accepts (reverse-path) and could answer h1's packets.
    ip(&["-n", h2, "route", "add", "10.77.1.0/24", "dev", H2_ETH0]);
}

#[test]
fn mpls_over_veths() {
    if !can_run("mpls_over_veths") {
        return;
    }
    let mut namespaces = Namespaces::create("veth", &["h1", "s1", "h2"]);
    let pins = Pins::new("veth");
    build_topology(&mut namespaces);
    let (h1, s1, h2) = (
        namespaces.get("h1"),
        namespaces.get("s1"),
        namespaces.get("h2"),
    );

    let (mut fabric, s1_eth2) = in_netns(s1, || {
        let mut fabric = Fabric::load(&pins.instance).expect("load");
        fabric.attach(S1_ETH1, 1).expect("attach s1-eth1");
        let s1_eth2 = fabric.attach(S1_ETH2, 2).expect("attach s1-eth2");
        (fabric, s1_eth2)
    });
    let pop = MplsForward {
        egress_ifindex: s1_eth2,
        egress_port: 2,
        flags: MPLS_FLAG_POP | MPLS_FLAG_SET_DST_MAC | MPLS_FLAG_SET_SRC_MAC,
        dst_mac: MAC_H2,
        src_mac: MAC_S1_ETH2,
    };
    fabric.insert_mpls_forward(100, pop).expect("insert pop");
    fabric
        .insert_mpls_forward(
            200,
            MplsForward {
                flags: MPLS_FLAG_SET_DST_MAC | MPLS_FLAG_SET_SRC_MAC,
                ..pop
            },
        )
        .expect("insert transit");

    // h2 listens: a UDP socket for the popped packets, a packet socket for
    // every frame that arrives.
    let h2_ifindex = ifindex_in(h2, H2_ETH0);
    let (udp, capture) = in_netns(h2, || {
        let udp = UdpSocket::bind("10.77.2.2:5555").expect("bind UDP in h2");
        let capture = PacketSocket::bind(h2_ifindex).expect("packet socket in h2");
        (udp, capture)
    });

    // h1 sends 5 packets for label 100, 3 for label 200, 2 for label 999.
    const POPPED: u64 = 5;
    const TRANSIT: u64 = 3;
    const UNKNOWN: u64 = 2;
    let h1_ifindex = ifindex_in(h1, H1_ETH0);
    let pop_frame_len = labelled(100, 64, b"popped-0").len() as u64;
    let transit_frame_len = labelled(200, 64, b"transit-0").len() as u64;
    in_netns(h1, || {
        let socket = PacketSocket::bind(h1_ifindex).expect("packet socket in h1");
        for i in 0..POPPED {
            socket
                .send(&labelled(100, 64, format!("popped-{i}").as_bytes()))
                .expect("send");
        }
        for i in 0..TRANSIT {
            socket
                .send(&labelled(200, 64, format!("transit-{i}").as_bytes()))
                .expect("send");
        }
        for i in 0..UNKNOWN {
            socket
                .send(&labelled(999, 64, format!("unknown-{i}").as_bytes()))
                .expect("send");
        }
    });

    // Popped packets reach h2's UDP socket.
    udp.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (received.len() as u64) < POPPED && Instant::now() < deadline {
        let mut buf = [0u8; 256];
        match udp.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(from.ip(), Ipv4Addr::new(10, 77, 1, 1));
                received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            Err(e) => panic!(
                "h2 received {} of {POPPED} popped packets: {e}",
                received.len()
            ),
        }
    }
    received.sort();
    let expected: Vec<String> = (0..POPPED).map(|i| format!("popped-{i}")).collect();
    assert_eq!(received, expected, "popped payloads at h2");

    // On the wire at h2: popped frames are IPv4, transit frames keep the
    // label with TTL 63; both carry the rewritten MACs; nothing unknown.
    let frames = capture
        .receive_all(Duration::from_millis(500))
        .expect("capture");
    let ours: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f.len() >= 14 && matches!(ethertype(f), ETHERTYPE_IPV4 | ETHERTYPE_MPLS))
        .collect();
    let popped: Vec<_> = ours
        .iter()
        .filter(|f| ethertype(f) == ETHERTYPE_IPV4)
        .collect();
    let transit: Vec<_> = ours
        .iter()
        .filter(|f| ethertype(f) == ETHERTYPE_MPLS)
        .collect();
    assert_eq!(popped.len() as u64, POPPED, "IPv4 frames at h2");
    assert_eq!(transit.len() as u64, TRANSIT, "MPLS frames at h2");
    for frame in popped.iter().chain(transit.iter()) {
        assert_eq!(&frame[0..6], &MAC_H2, "destination MAC");
        assert_eq!(&frame[6..12], &MAC_S1_ETH2, "source MAC");
    }
    for frame in &transit {
        assert_eq!(first_label(frame), (200, 63));
        let payload = String::from_utf8_lossy(&frame[14 + 4 + 28..]);
        assert!(payload.starts_with("transit-"), "{payload}");
    }
    assert!(
        !ours
            .iter()
            .any(|f| String::from_utf8_lossy(f).contains("unknown-")),
        "a packet with an unknown label got through"
    );

    let hits_pop = fabric.mpls_hits(100).expect("hits");
    let hits_transit = fabric.mpls_hits(200).expect("hits");
    let rx1 = fabric.port_rx(1).expect("rx");
    let misses = fabric.drop_count(DropReason::MplsMiss).expect("misses");
    eprintln!(
        "forwarded {} popped + {} transit packets; hits label 100 {hits_pop:?}, \
         label 200 {hits_transit:?}; port 1 rx {rx1:?}; MPLS misses {misses}; \
         drop reasons {:?}",
        popped.len(),
        transit.len(),
        fabric.drop_counts().expect("drop counts")
    );
    assert_eq!(
        hits_pop,
        Counter {
            packets: POPPED,
            bytes: POPPED * pop_frame_len
        }
    );
    assert_eq!(
        hits_transit,
        Counter {
            packets: TRANSIT,
            bytes: TRANSIT * transit_frame_len
        }
    );
    assert!(
        rx1.packets >= POPPED + TRANSIT + UNKNOWN,
        "port 1 rx {rx1:?}"
    );
    assert!(
        rx1.bytes >= POPPED * pop_frame_len + TRANSIT * transit_frame_len,
        "port 1 rx {rx1:?}"
    );
    assert_eq!(misses, UNKNOWN);
    assert_eq!(
        fabric
            .drop_count(DropReason::RewriteFailed)
            .expect("rewrite"),
        0
    );
    drop(fabric);
}
