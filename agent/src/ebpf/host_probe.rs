//! Path probes: the host sends small INT-MD probes along every path of
//! every route (each member of each group, and single-member routes) at a
//! fixed rate, so that the latency and loss of idle paths are known.
//!
//! # Probe format
//!
//! ```text
//! Ethernet  dst = the path's next hop (set_path dmac), src = the port's MAC
//! MPLS      the path's label, bottom of stack, TTL 64
//! IPv4      src = the port's first IPv4 address, dst = the route's prefix
//!           (a /32) or its first host address, TTL 64, DSCP 0, UDP
//! UDP       7776 -> 7777 (PROBE_UDP_PORT), checksum 0
//! INT-MD    shim (type 1, length 3 words) + INT-MD v2 header: instructions
//!           switch ID, level-1 ports, hop latency, ingress and egress
//!           timestamps (hop ML 7), remaining hop count 16, empty stack
//! body      32 bytes, network order:
//!           "SXPB" | version 1 | path_id | 0 0 | label (u32) |
//!           sequence (u64, per path, from 0) | sent (u64, CLOCK_TAI ns) |
//!           node ID (u32)
//! ```
//!
//! The frame is written to the port's interface by an `AF_PACKET` socket
//! (it passes the qdisc; `host_egress` leaves labelled frames alone). The
//! fabric switches push their hop metadata (their watchlist must mark UDP
//! port 7777); the receiving host's sink exports the stack with the body
//! in a Telemetry Report and drops the probe (`int_sink_consume`). The
//! collector gets latency from the timestamps and loss from gaps in the
//! sequence numbers of a (node ID, path ID, label).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use solyx_ebpf_common::host::{PROBE_UDP_PORT, PROBE_UDP_SRC_PORT};
use solyx_ebpf_common::{ETHERTYPE_MPLS, MPLS_LABEL_MAX};
use solyx_int::{InnerPacket, Instructions, IntMdBuilder, Stack, UdpHeader};

use super::dataplane::packet_io::PacketSender;
use super::host_dataplane::{EbpfHostDataplane, ProbeTarget};

/// First bytes of a probe body.
pub const PROBE_MAGIC: [u8; 4] = *b"SXPB";
/// Hops a probe accepts.
const PROBE_HOPS: u8 = 16;

/// A probe's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeBody {
    /// The path counter index of the path.
    pub path_id: u8,
    /// The label pushed.
    pub label: u32,
    /// Per path, from 0.
    pub sequence: u64,
    /// CLOCK_TAI when sent, ns.
    pub sent_ns: u64,
    /// The sending node.
    pub node_id: u32,
}

impl ProbeBody {
    /// Encoded length.
    pub const LEN: usize = 32;

    /// The 32 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&PROBE_MAGIC);
        b[4] = 1;
        b[5] = self.path_id;
        b[8..12].copy_from_slice(&self.label.to_be_bytes());
        b[12..20].copy_from_slice(&self.sequence.to_be_bytes());
        b[20..28].copy_from_slice(&self.sent_ns.to_be_bytes());
        b[28..32].copy_from_slice(&self.node_id.to_be_bytes());
        b
    }

    /// Decodes a body; `None` unless it starts with the magic and version 1.
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<Self> {
        let b = b.get(..Self::LEN)?;
        if b[0..4] != PROBE_MAGIC || b[4] != 1 {
            return None;
        }
        let u32_at = |i: usize| b[i..i + 4].try_into().ok().map(u32::from_be_bytes);
        let u64_at = |i: usize| b[i..i + 8].try_into().ok().map(u64::from_be_bytes);
        Some(Self {
            path_id: b[5],
            label: u32_at(8)?,
            sequence: u64_at(12)?,
            sent_ns: u64_at(20)?,
            node_id: u32_at(28)?,
        })
    }
}

/// The instructions of a probe: who and where (switch ID, ports), how long
/// (hop latency, timestamps) and how busy (queue occupancy, egress TX
/// utilisation), so that every link of a path reports its load whether or
/// not data crosses it.
#[must_use]
pub fn probe_instructions() -> Instructions {
    Instructions::SWITCH_ID
        | Instructions::LEVEL1_PORT_IDS
        | Instructions::HOP_LATENCY
        | Instructions::QUEUE
        | Instructions::INGRESS_TIMESTAMP
        | Instructions::EGRESS_TIMESTAMP
        | Instructions::EGRESS_TX_UTILIZATION
}

/// The probe destination of a route prefix: the address of a /32, else
/// the first host address.
#[must_use]
pub fn probe_destination(prefix: ([u8; 4], u32)) -> Ipv4Addr {
    let addr = u32::from_be_bytes(prefix.0);
    if prefix.1 >= 31 {
        Ipv4Addr::from(addr)
    } else {
        Ipv4Addr::from(addr | 1)
    }
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in header.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The probe frame for `target` from `src` (the whole Ethernet frame).
///
/// # Errors
/// The label does not fit 20 bits or the INT block does not build.
pub fn probe_frame(
    target: &ProbeTarget,
    src: Ipv4Addr,
    body: &ProbeBody,
) -> Result<Vec<u8>, String> {
    if target.path.label > MPLS_LABEL_MAX {
        return Err(format!("label {} is wider than 20 bits", target.path.label));
    }
    let payload = body.encode();
    let mut inner = InnerPacket::udp(
        UdpHeader {
            src_port: PROBE_UDP_SRC_PORT,
            dst_port: PROBE_UDP_PORT,
            length: 0,
            checksum: 0,
        },
        IntMdBuilder::new(probe_instructions(), PROBE_HOPS, Stack::Hops(&[])),
        &payload,
    );
    inner.ipv4.ttl = 64;
    inner.ipv4.src = src;
    inner.ipv4.dst = probe_destination(target.prefix);
    inner.fill_lengths().map_err(|e| e.to_string())?;
    let mut ip = BytesMut::new();
    inner.write(&mut ip).map_err(|e| e.to_string())?;
    let checksum = ipv4_checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = Vec::with_capacity(18 + ip.len());
    frame.extend_from_slice(&target.path.dmac);
    frame.extend_from_slice(&target.src_mac);
    frame.extend_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
    let lse = (target.path.label << 12) | (1 << 8) | 64;
    frame.extend_from_slice(&lse.to_be_bytes());
    frame.extend_from_slice(&ip);
    Ok(frame)
}

/// The first IPv4 address of interface `name`.
fn interface_ipv4(name: &str) -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        if a.interface_name != name {
            return None;
        }
        a.address
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .map(|s| s.ip())
    })
}

fn tai_now() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_TAI)
        .map(|t| (t.tv_sec() as u64) * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The probe sender thread; stops when dropped.
#[derive(Debug)]
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    sent: Arc<AtomicU64>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Prober {
    /// Starts sending `rate` probes per second along every path of
    /// `dataplane` (the socket opens in the calling thread's network
    /// namespace), from node `node_id`.
    ///
    /// # Errors
    /// The packet socket or the thread could not be made.
    pub fn start(
        dataplane: Arc<EbpfHostDataplane>,
        rate: u32,
        node_id: u32,
    ) -> std::io::Result<Self> {
        let sender = PacketSender::open()?;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), sent.clone());
        let period = Duration::from_secs(1) / rate.max(1);
        let thread = std::thread::Builder::new()
            .name("solyx-probes".into())
            .spawn(move || run(&dataplane, &sender, period, node_id, &count, &flag))?;
        Ok(Self {
            stop,
            thread: Some(thread),
            sent,
        })
    }

    /// Probes sent so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// A route prefix, a path ID and a label: one probed path.
type PathKey = (([u8; 4], u32), u8, u32);

fn run(
    dataplane: &EbpfHostDataplane,
    sender: &PacketSender,
    period: Duration,
    node_id: u32,
    sent: &AtomicU64,
    stop: &AtomicBool,
) {
    // Per (route prefix, path ID, label).
    let mut sequences: HashMap<PathKey, u64> = HashMap::new();
    let mut sources: HashMap<String, Option<Ipv4Addr>> = HashMap::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for target in dataplane.probe_targets() {
            let src = *sources
                .entry(target.interface.clone())
                .or_insert_with(|| interface_ipv4(&target.interface));
            let Some(src) = src else {
                continue;
            };
            let key = (target.prefix, target.path.path_id, target.path.label);
            let seq = sequences.entry(key).or_insert(0);
            let body = ProbeBody {
                path_id: target.path.path_id,
                label: target.path.label,
                sequence: *seq,
                sent_ns: tai_now(),
                node_id,
            };
            *seq += 1;
            match probe_frame(&target, src, &body) {
                Ok(frame) => match sender.send(target.ifindex, &frame) {
                    Ok(()) => {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, interface = %target.interface, "probe not sent")
                    }
                },
                Err(e) => tracing::warn!(error = %e, "probe not built"),
            }
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Behind (a slow tick): start again from now, no burst.
            next = now;
        }
        // Addresses may be added after start.
        if sources.values().any(Option::is_none) {
            sources.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ebpf::PathSpec;

    #[test]
    fn a_probe_body_round_trips() {
        let body = ProbeBody {
            path_id: 3,
            label: 0xabcde,
            sequence: 77,
            sent_ns: 1_700_000_000_000_000_000,
            node_id: 9,
        };
        assert_eq!(ProbeBody::decode(&body.encode()), Some(body));
        assert_eq!(ProbeBody::decode(&[0; 31]), None);
        assert_eq!(ProbeBody::decode(&[0; 32]), None);
    }

    #[test]
    fn a_probe_frame_is_labelled_int_md_to_the_probe_port() {
        let target = ProbeTarget {
            prefix: ([10, 0, 2, 0], 24),
            path: PathSpec {
                port: 1,
                label: 100,
                dmac: [2, 0, 0, 0, 0, 1],
                path_id: 4,
            },
            ifindex: 1,
            interface: "eth0".into(),
            src_mac: [2, 0, 0, 0, 0, 2],
        };
        let body = ProbeBody {
            path_id: 4,
            label: 100,
            sequence: 1,
            sent_ns: 5,
            node_id: 1,
        };
        let frame = probe_frame(&target, Ipv4Addr::new(10, 0, 1, 1), &body).expect("frame");
        assert_eq!(&frame[12..14], &[0x88, 0x47]);
        assert_eq!(
            u32::from_be_bytes(frame[14..18].try_into().unwrap()) >> 12,
            100
        );
        let ip = &frame[18..];
        assert_eq!(ipv4_checksum(&ip[..20]), 0, "valid IPv4 checksum");
        assert_eq!(&ip[16..20], &[10, 0, 2, 1]);
        assert_eq!(u16::from_be_bytes([ip[22], ip[23]]), PROBE_UDP_PORT);
        let md = solyx_int::IntMd::parse(&ip[28..]).expect("INT-MD");
        assert_eq!(md.hop_count(), 0);
        let rest = &ip[28 + md.encoded_len()..];
        assert_eq!(ProbeBody::decode(rest), Some(body));
    }
}
