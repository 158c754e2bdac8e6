//! The parser: Ethernet, one MPLS label, IPv4 (with options), TCP/UDP
//! ports, and the checks the P4 program makes before its ingress controls
//! run (IPv4 IHL and TCP data offset below 5 → malformed, wrong IPv4 header
//! checksum → dropped).
//!
//! Follows `FabricParser` and `FabricVerifyChecksum`
//! (`p4/solyx_fabric/include/parser.p4`): IPv4 is parsed after the Ethernet
//! header (EtherType 0x0800) or after one bottom-of-stack label whose
//! payload starts with version nibble 4; L4 ports only for the first
//! fragment of a datagram; a TCP or UDP header cut short leaves the ports 0
//! (the P4 parser stops there without dropping).
//!
//! Verifier notes: every read goes through `crate::bytes_at`, which checks
//! `data + offset + N` against `data_end` right before the read; offsets
//! are sums of constants and of values masked to small ranges (IHL ≤ 15),
//! so the verifier knows their bounds. The checksum loop has a constant
//! bound (15 words) and the fold is two unrolled steps, so no loop depends
//! on packet data.

use solyx_ebpf_common::{ETHERTYPE_IPV4, ETHERTYPE_MPLS};

use crate::{bytes_at, make_linear, read_be16, read_be32, read_u8, ETH_HLEN, MPLS_HLEN};

/// Bytes the parser may look at: Ethernet, a label, IPv4 with the longest
/// options (60 bytes), a TCP header (20 bytes).
const PARSE_DEPTH: u32 = (ETH_HLEN + MPLS_HLEN + 60 + 20) as u32;
/// IP protocol numbers.
const IP_PROTO_TCP: u8 = 6;
const IP_PROTO_UDP: u8 = 17;

/// The IPv4 header of a packet (the one after the Ethernet header or under
/// the label) and its L4 ports.
#[derive(Clone, Copy)]
pub struct Ipv4 {
    /// Offset of the IPv4 header in the frame (14, or 18 under a label).
    pub offset: usize,
    /// Time to live.
    pub ttl: u8,
    /// Protocol.
    pub proto: u8,
    /// Source address, network order.
    pub src: [u8; 4],
    /// Destination address, network order.
    pub dst: [u8; 4],
    /// TCP/UDP source port, 0 for other packets and later fragments.
    pub l4_src: u16,
    /// TCP/UDP destination port, likewise.
    pub l4_dst: u16,
}

/// The parsed headers of a frame.
#[derive(Clone, Copy)]
pub struct Headers {
    /// The Ethernet EtherType.
    pub eth_type: u16,
    /// The IPv4 header, when the parser reached one.
    pub ipv4: Option<Ipv4>,
}

/// Why a frame is dropped before the ACL.
pub enum ParseError {
    /// Cut short, or IPv4 IHL / TCP data offset below 5.
    Malformed,
    /// The IPv4 header checksum is wrong.
    Checksum,
}

/// Parses the frame's headers.
#[inline(always)]
pub fn parse(ctx: &aya_ebpf::programs::TcContext, len: u32) -> Result<Headers, ParseError> {
    // Headers within PARSE_DEPTH must be in the linear part for direct
    // access; a shorter frame is pulled whole.
    let want = if len < PARSE_DEPTH { len } else { PARSE_DEPTH };
    if (len as usize) < ETH_HLEN || !make_linear(ctx, want as usize) {
        return Err(ParseError::Malformed);
    }
    let eth_type = read_be16(ctx, crate::ETHERTYPE_OFFSET).ok_or(ParseError::Malformed)?;
    let l3 = if eth_type == ETHERTYPE_IPV4 {
        Some(ETH_HLEN)
    } else if eth_type == ETHERTYPE_MPLS {
        let lse = read_be32(ctx, ETH_HLEN).ok_or(ParseError::Malformed)?;
        let bottom_of_stack = (lse >> 8) & 1 == 1;
        // IPv4 under the label is recognised by its version nibble; a
        // label without payload is the MPLS stage's concern.
        match read_u8(ctx, ETH_HLEN + MPLS_HLEN) {
            Some(first) if bottom_of_stack && first >> 4 == 4 => Some(ETH_HLEN + MPLS_HLEN),
            _ => None,
        }
    } else {
        None
    };
    let ipv4 = match l3 {
        Some(offset) => Some(parse_ipv4(ctx, offset)?),
        None => None,
    };
    Ok(Headers { eth_type, ipv4 })
}

/// Parses and checks the IPv4 header at `offset` (14 or 18) and the L4
/// ports after it.
#[inline(always)]
fn parse_ipv4(ctx: &aya_ebpf::programs::TcContext, offset: usize) -> Result<Ipv4, ParseError> {
    // Two possible offsets; the mask tells the verifier the bound.
    let offset = offset & 0x1f;
    let base = bytes_at::<20>(ctx, offset).ok_or(ParseError::Malformed)?;
    // SAFETY: `bytes_at` checked that the 20 bytes are inside the packet.
    let h = unsafe { *base };
    let ihl = usize::from(h[0] & 0x0f);
    if ihl < 5 {
        return Err(ParseError::Malformed);
    }
    if !checksum_ok(ctx, offset, ihl)? {
        return Err(ParseError::Checksum);
    }
    let mut ipv4 = Ipv4 {
        offset,
        ttl: h[8],
        proto: h[9],
        src: [h[12], h[13], h[14], h[15]],
        dst: [h[16], h[17], h[18], h[19]],
        l4_src: 0,
        l4_dst: 0,
    };
    let first_fragment = u16::from_be_bytes([h[6], h[7]]) & 0x1fff == 0;
    if !first_fragment {
        return Ok(ipv4);
    }
    let l4 = offset + ihl * 4;
    if ipv4.proto == IP_PROTO_TCP {
        if let Some(tcp) = bytes_at::<20>(ctx, l4) {
            // SAFETY: `bytes_at` checked that the 20 bytes are inside the packet.
            let t = unsafe { *tcp };
            if t[12] >> 4 < 5 {
                return Err(ParseError::Malformed);
            }
            ipv4.l4_src = u16::from_be_bytes([t[0], t[1]]);
            ipv4.l4_dst = u16::from_be_bytes([t[2], t[3]]);
        }
    } else if ipv4.proto == IP_PROTO_UDP {
        if let Some(udp) = bytes_at::<4>(ctx, l4) {
            // SAFETY: `bytes_at` checked that the 4 bytes are inside the packet.
            let u = unsafe { *udp };
            ipv4.l4_src = u16::from_be_bytes([u[0], u[1]]);
            ipv4.l4_dst = u16::from_be_bytes([u[2], u[3]]);
        }
    }
    Ok(ipv4)
}

/// Whether the IPv4 header at `offset`, `ihl` words long (5–15), has a
/// correct checksum (RFC 1071: the one's-complement sum of the header,
/// checksum included, is 0xffff). A header cut short is malformed.
#[inline(always)]
fn checksum_ok(
    ctx: &aya_ebpf::programs::TcContext,
    offset: usize,
    ihl: usize,
) -> Result<bool, ParseError> {
    let mut sum: u32 = 0;
    let mut word = 0usize;
    while word < 15 {
        if word >= ihl {
            break;
        }
        let v = read_be32(ctx, offset + word * 4).ok_or(ParseError::Malformed)?;
        sum += (v >> 16) + (v & 0xffff);
        word += 1;
    }
    // At most 30 16-bit words: the sum fits 21 bits, two folds suffice.
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    Ok(sum == 0xffff)
}
