//! Packets: a builder for the frames the tests send and a parser for
//! what the program returns (headers, INT shim and metadata, checksums).

use super::*;

// ---------------------------------------------------------------------------
// Packets: a builder and a parser
// ---------------------------------------------------------------------------

pub(crate) const MAC_A: [u8; 6] = [0x02, 0x5e, 0x00, 0x00, 0x0a, 0x01];
pub(crate) const MAC_B: [u8; 6] = [0x02, 0x5e, 0x00, 0x00, 0x0b, 0x01];

/// The INT shim + INT-MD header (and upstream stack) to put after L4.
#[derive(Clone, Debug)]
pub(crate) struct Int {
    pub(crate) shim_type: u8,
    /// `None`: 3 + the stack's words.
    pub(crate) shim_len: Option<u8>,
    pub(crate) version: u8,
    /// D/E/M bits as in the first byte of the INT-MD header.
    pub(crate) flags: u8,
    pub(crate) hop_ml: u8,
    pub(crate) remaining_hop_cnt: u8,
    pub(crate) bitmap: u16,
    pub(crate) stack: Vec<u32>,
}

impl Int {
    /// A valid INT-MD v2 header for `bitmap` with `hops` remaining.
    pub(crate) fn md(bitmap: u16, hops: u8) -> Self {
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

    pub(crate) fn bytes(&self) -> Vec<u8> {
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
pub(crate) fn words_of(bitmap: u16) -> u8 {
    solyx_agent::ebpf::common::int::instruction_words(bitmap).unwrap_or(0)
}

#[derive(Clone, Debug)]
pub(crate) enum L4 {
    /// UDP; `checksum: false` sends 0 (none).
    Udp { checksum: bool },
    /// TCP with `options` (a multiple of 4 bytes).
    Tcp { options: Vec<u8> },
}

/// An Ethernet frame: optional MPLS label, IPv4, TCP/UDP, INT, payload.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    pub(crate) label: Option<u32>,
    pub(crate) dscp: u8,
    pub(crate) ip_options: Vec<u8>,
    /// IPv4 flags + fragment offset field.
    pub(crate) frag: u16,
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    pub(crate) l4: L4,
    pub(crate) dst_port: u16,
    pub(crate) int: Option<Int>,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    pub(crate) fn udp(dst_port: u16, int: Option<Int>, payload: &[u8]) -> Self {
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

    pub(crate) fn build(&self) -> Vec<u8> {
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
pub(crate) fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum()
}

pub(crate) fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The TCP/UDP checksum of `segment` (its checksum field 0).
pub(crate) fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]) -> u16 {
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
pub(crate) struct Parsed {
    pub(crate) l3: usize,
    pub(crate) ihl: usize,
    pub(crate) total_len: usize,
    pub(crate) udp: bool,
    pub(crate) l4: usize,
    pub(crate) int_off: usize,
}

pub(crate) fn parse(frame: &[u8]) -> Parsed {
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
    pub(crate) fn ipv4_ok(&self, frame: &[u8]) -> bool {
        fold(sum16(&frame[self.l3..self.l3 + self.ihl])) == 0xffff
    }

    /// The TCP/UDP checksum verifies (a UDP checksum of 0 means none).
    pub(crate) fn l4_ok(&self, frame: &[u8]) -> bool {
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

    pub(crate) fn udp_len(&self, frame: &[u8]) -> usize {
        usize::from(u16::from_be_bytes([frame[self.l4 + 4], frame[self.l4 + 5]]))
    }

    pub(crate) fn udp_checksum(&self, frame: &[u8]) -> u16 {
        u16::from_be_bytes([frame[self.l4 + 6], frame[self.l4 + 7]])
    }

    /// The INT headers and stack of the frame.
    pub(crate) fn int(&self, frame: &[u8]) -> IntView {
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
pub(crate) struct IntView {
    pub(crate) shim_len: u8,
    pub(crate) flags: u8,
    pub(crate) hop_ml: u8,
    pub(crate) remaining_hop_cnt: u8,
    pub(crate) stack: Vec<u32>,
    pub(crate) payload: Vec<u8>,
}

/// One hop's metadata, decoded per the instruction bitmap.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HopView {
    pub(crate) switch_id: Option<u32>,
    pub(crate) ports: Option<(u16, u16)>,
    pub(crate) latency: Option<u32>,
    pub(crate) queue: Option<(u8, u32)>,
    pub(crate) ingress_ts: Option<u64>,
    pub(crate) egress_ts: Option<u64>,
    pub(crate) tx_util: Option<u32>,
}

/// Decodes the first hop of `words` for `bitmap` (bits 0–5 and 7; other
/// bits are skipped by their size).
pub(crate) fn decode_hop(bitmap: u16, words: &[u32]) -> HopView {
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
