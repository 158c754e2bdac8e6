//! INT-MD probes for the switch tests: a UDP payload that starts with an
//! INT shim and INT-MD header (built with `solyx-int`'s `IntMdBuilder`),
//! sent from a socket whose DSCP is set, and parsed back at the receiver
//! with `IntMd::parse`.

use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nix::sys::socket::{setsockopt, sockopt};
use solyx_int::{HopMetadata, Instructions, IntMd, IntMdBuilder, Stack};

/// What the probes ask every hop for: switch ID, level-1 ports, hop
/// latency, queue, both timestamps, TX utilisation (9 words a hop).
pub const INSTRUCTIONS: Instructions = Instructions::COMMON;

/// A probe's UDP payload: an empty INT-MD stack allowing `hops` more hops,
/// then `body`.
pub fn probe(hops: u8, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    IntMdBuilder::new(INSTRUCTIONS, hops, Stack::Hops(&[]))
        .write(&mut buf)
        .expect("INT-MD block");
    buf.extend_from_slice(body);
    buf.to_vec()
}

/// A UDP socket bound to `from` (in the calling thread's namespace) whose
/// datagrams carry DSCP `dscp`.
pub fn sender(from: SocketAddrV4, dscp: u8) -> UdpSocket {
    let socket = UdpSocket::bind(from).expect("bind the probe sender");
    setsockopt(&socket, sockopt::Ipv4Tos, &(i32::from(dscp) << 2)).expect("IP_TOS");
    socket
}

/// A received probe, parsed.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The INT-MD header's remaining hop count.
    pub remaining: u8,
    /// The shim length in words (header + stack).
    pub shim_words: usize,
    /// The hops' metadata, newest (nearest the receiver) first.
    pub hops: Vec<HopMetadata>,
    /// What followed the INT-MD block.
    pub body: Vec<u8>,
}

/// Parses a received datagram's payload.
pub fn parse(datagram: &[u8]) -> Probe {
    let md = IntMd::parse(datagram).expect("an INT-MD block");
    Probe {
        remaining: md.header().remaining_hop_count,
        shim_words: md.shim_length_words(),
        hops: md.hops().map(|h| h.to_metadata()).collect(),
        body: datagram[md.encoded_len()..].to_vec(),
    }
}

/// Receives datagrams on `socket` until `count` arrived or `timeout`
/// passed; returns them parsed.
pub fn receive(socket: &UdpSocket, count: usize, timeout: Duration) -> Vec<Probe> {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            out.push(parse(&buf[..n]));
        }
    }
    out
}
