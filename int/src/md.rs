//! INT-MD over TCP/UDP as it appears in a data packet (INT v2.1 sections
//! 5.7 and 5.8): the 4-byte shim, the 12-byte INT-MD metadata header and
//! the metadata stack, right after the TCP/UDP header.
//!
//! ```text
//! shim:    | type=1 |npt|rr|  length (words) |  npt data (16)  |
//! header:  |ver=2|D|E|M| reserved (12) | hop ML (5) | remaining hop cnt |
//!          |  instruction bitmap (16)  |  domain specific ID (16)      |
//!          |  DS instruction (16)      |  DS flags (16)                |
//! stack:   hop ML × 4 bytes per hop, newest hop first
//! ```
//!
//! The shim length counts the INT-MD header and the stack in 4-byte
//! words, not the shim itself (since INT v2.0).
//!
//! [`IntMd`] parses that block from a packet without copying;
//! [`IntMdBuilder`] writes it. Hosts use both: as INT source for their
//! probes, and as sink before they export a report.

use core::iter::Rev;

use bytes::{BufMut, BytesMut};

use crate::bits::{Instructions, Layout};
use crate::error::{BuildError, ParseError};
use crate::hop::{HopMetadata, Hops, UNAVAILABLE_32, UNAVAILABLE_64};
use crate::wire;

/// INT header type of INT-MD in the shim (INT v2.1 section 5.1).
pub const INT_TYPE_MD: u8 = 1;
/// Version of the INT-MD metadata header (INT v2.1 section 5.8).
pub const INT_MD_VERSION: u8 = 2;
/// Bytes of the INT shim header for TCP/UDP.
pub const SHIM_LEN: usize = 4;
/// Bytes of the INT-MD metadata header.
pub const MD_HEADER_LEN: usize = 12;
/// Words of the INT-MD metadata header, the smallest shim length.
const MD_HEADER_WORDS: u8 = 3;

/// Bounds the parser enforces beyond the wire format's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParseLimits {
    /// Most hops accepted in one stack ([`ParseError::TooManyHops`]
    /// past it). The shim length allows up to 252 one-word hops.
    pub max_hops: usize,
}

impl ParseLimits {
    /// The default [`max_hops`](Self::max_hops): far more than any path in
    /// a Solyx fabric, far fewer than a looping probe would collect.
    pub const DEFAULT_MAX_HOPS: usize = 32;
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_hops: Self::DEFAULT_MAX_HOPS,
        }
    }
}

/// The INT shim header for TCP/UDP, without its type (always INT-MD
/// here) and length (derived from what follows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IntShim {
    /// Next protocol type (2 bits): 0 unless a UDP port signals INT;
    /// 1: `npt_data` is the original UDP destination port; 2: the low
    /// byte of `npt_data` is the original IP protocol.
    pub npt: u8,
    /// The two reserved bits after NPT.
    pub reserved: u8,
    /// Meaning depends on `npt`; for NPT 0, bits 7..2 may carry the
    /// original DSCP.
    pub npt_data: u16,
}

/// The INT-MD metadata header, without its version (always 2 here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IntMdHeader {
    /// D: the sink discards the packet after extracting INT.
    pub discard: bool,
    /// E: a hop found the remaining hop count at zero.
    pub hop_count_exceeded: bool,
    /// M: a hop could not add metadata without exceeding the egress MTU.
    pub mtu_exceeded: bool,
    /// The 12 reserved bits.
    pub reserved: u16,
    /// Words each hop adds (5 bits), including domain-specific metadata.
    pub hop_ml: u8,
    /// Hops that may still add metadata.
    pub remaining_hop_count: u8,
    /// Which baseline metadata each hop adds.
    pub instructions: Instructions,
    /// The INT domain.
    pub domain_specific_id: u16,
    /// Domain-specific instruction bitmap.
    pub ds_instruction: u16,
    /// Domain-specific flags.
    pub ds_flags: u16,
}

impl IntMdHeader {
    /// A header asking for `instructions`, with hop ML covering exactly
    /// them, and `remaining_hop_count` hops allowed.
    #[must_use]
    pub fn new(instructions: Instructions, remaining_hop_count: u8) -> Self {
        Self {
            hop_ml: u8::try_from(instructions.metadata_len() / 4).unwrap_or(u8::MAX),
            remaining_hop_count,
            instructions,
            ..Self::default()
        }
    }
}

/// An INT-MD block (shim, metadata header, stack) parsed from a packet,
/// borrowing its stack from the packet bytes.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use solyx_int::{HopMetadata, Instructions, IntMd, IntMdBuilder, Stack};
///
/// let hops = [
///     HopMetadata { switch_id: Some(3), ..Default::default() },
///     HopMetadata { switch_id: Some(1), ..Default::default() },
/// ];
/// let mut pkt = BytesMut::new();
/// IntMdBuilder::new(Instructions::SWITCH_ID, 6, Stack::Hops(&hops)).write(&mut pkt)?;
/// pkt.extend_from_slice(b"payload");
///
/// let md = IntMd::parse(&pkt)?;
/// assert_eq!(md.encoded_len(), 4 + 12 + 8);
/// let path: Vec<_> = md.path().map(|h| h.switch_id()).collect();
/// assert_eq!(path, [Some(1), Some(3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct IntMd<'a> {
    parts: MdParts,
    stack: &'a [u8],
}

/// What parsing an INT-MD block yields besides the stack bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MdParts {
    pub(crate) shim: IntShim,
    pub(crate) header: IntMdHeader,
    pub(crate) hop_len: usize,
    pub(crate) layout: Layout,
}

/// Parses the shim, header and stack at the start of `buf`; returns the
/// parts and the stack's byte range in `buf`.
pub(crate) fn parse_parts(
    buf: &[u8],
    limits: &ParseLimits,
) -> Result<(MdParts, usize, usize), ParseError> {
    let b0 = wire::u8_at(buf, 0).ok_or(ParseError::TruncatedIntShim)?;
    let words = wire::u8_at(buf, 1).ok_or(ParseError::TruncatedIntShim)?;
    let npt_data = wire::u16_at(buf, 2).ok_or(ParseError::TruncatedIntShim)?;
    let int_type = b0 >> 4;
    if int_type != INT_TYPE_MD {
        return Err(ParseError::UnsupportedIntType { found: int_type });
    }
    if words < MD_HEADER_WORDS {
        return Err(ParseError::ShimLengthTooShort { words });
    }
    let w0 = wire::u32_at(buf, SHIM_LEN).ok_or(ParseError::TruncatedIntMdHeader)?;
    let w1 = wire::u32_at(buf, SHIM_LEN + 4).ok_or(ParseError::TruncatedIntMdHeader)?;
    let w2 = wire::u32_at(buf, SHIM_LEN + 8).ok_or(ParseError::TruncatedIntMdHeader)?;
    let version = (w0 >> 28) as u8;
    if version != INT_MD_VERSION {
        return Err(ParseError::BadIntVersion { found: version });
    }
    let declared = usize::from(words) * 4;
    let available = buf.len().saturating_sub(SHIM_LEN);
    if declared > available {
        return Err(ParseError::ShimLengthPastBuffer {
            declared,
            available,
        });
    }
    let instructions = Instructions::from_bits((w1 >> 16) as u16);
    let unknown = instructions.unknown_bits();
    if unknown != 0 {
        return Err(ParseError::UnknownInstructionBits { bits: unknown });
    }
    let hop_ml = ((w0 >> 8) & 0x1f) as u8;
    let hop_len = usize::from(hop_ml) * 4;
    let needed = instructions.metadata_len();
    if hop_len < needed {
        return Err(ParseError::HopMlTooSmall {
            hop_ml,
            needed: needed / 4,
        });
    }
    // TODO-completeness: a source that adds 'source-only' domain-specific
    // metadata makes its hop longer than hop ML; such stacks are rejected
    // as StackLengthMismatch until a Solyx domain defines that metadata.
    let stack_start = SHIM_LEN + MD_HEADER_LEN;
    let stack_end = SHIM_LEN + declared;
    let stack_len = stack_end.saturating_sub(stack_start);
    let hops = match stack_len.checked_div(hop_len) {
        Some(n) if stack_len % hop_len == 0 => n,
        None if stack_len == 0 => 0,
        _ => {
            return Err(ParseError::StackLengthMismatch {
                stack_words: stack_len / 4,
                hop_ml,
            })
        }
    };
    if hops > limits.max_hops {
        return Err(ParseError::TooManyHops {
            hops,
            limit: limits.max_hops,
        });
    }
    let header = IntMdHeader {
        discard: w0 & (1 << 27) != 0,
        hop_count_exceeded: w0 & (1 << 26) != 0,
        mtu_exceeded: w0 & (1 << 25) != 0,
        reserved: ((w0 >> 13) & 0x0fff) as u16,
        hop_ml,
        remaining_hop_count: (w0 & 0xff) as u8,
        instructions,
        domain_specific_id: (w1 & 0xffff) as u16,
        ds_instruction: (w2 >> 16) as u16,
        ds_flags: (w2 & 0xffff) as u16,
    };
    let shim = IntShim {
        npt: (b0 >> 2) & 0x3,
        reserved: b0 & 0x3,
        npt_data,
    };
    let parts = MdParts {
        shim,
        header,
        hop_len,
        layout: Layout::int_hop(instructions, hop_len),
    };
    Ok((parts, stack_start, stack_end))
}

impl<'a> IntMd<'a> {
    /// Parses the INT-MD block at the start of `buf` (the bytes right
    /// after the TCP/UDP header) with the default [`ParseLimits`]. Bytes
    /// after the stack (the original payload) are not looked at.
    ///
    /// # Errors
    ///
    /// [`ParseError`] when the shim or header is truncated, the type is
    /// not INT-MD, the version is not 2, the shim length runs past `buf`,
    /// the instruction bitmap has reserved bits, hop ML is smaller than the
    /// instructions need, the stack is not whole hops, or there are more
    /// hops than the limit.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(buf, &ParseLimits::default())
    }

    /// [`parse`](Self::parse) with explicit limits.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse).
    pub fn parse_with(buf: &'a [u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        let (parts, start, end) = parse_parts(buf, limits)?;
        let stack = wire::range(buf, start, end).unwrap_or(&[]);
        Ok(Self { parts, stack })
    }

    pub(crate) fn from_parts(parts: MdParts, stack: &'a [u8]) -> Self {
        Self { parts, stack }
    }

    /// The shim header.
    #[must_use]
    pub fn shim(&self) -> &IntShim {
        &self.parts.shim
    }

    /// The INT-MD metadata header.
    #[must_use]
    pub fn header(&self) -> &IntMdHeader {
        &self.parts.header
    }

    /// The shim's length field: header plus stack, in words.
    #[must_use]
    pub fn shim_length_words(&self) -> usize {
        usize::from(MD_HEADER_WORDS) + self.stack.len() / 4
    }

    /// Bytes of the whole block: shim, header and stack.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        SHIM_LEN + MD_HEADER_LEN + self.stack.len()
    }

    /// The metadata stack, newest hop first.
    #[must_use]
    pub fn stack(&self) -> &'a [u8] {
        self.stack
    }

    /// Hops in the stack.
    #[must_use]
    pub fn hop_count(&self) -> usize {
        self.hops().len()
    }

    /// The hops in stack order, newest (nearest the sink) first.
    #[must_use]
    pub fn hops(&self) -> Hops<'a> {
        Hops::new(self.stack, self.parts.hop_len, self.parts.layout)
    }

    /// The hops in path order, the first hop after the source first.
    pub fn path(&self) -> Rev<Hops<'a>> {
        self.hops().rev()
    }

    /// A builder that writes this block again, byte for byte.
    #[must_use]
    pub fn to_builder(&self) -> IntMdBuilder<'a> {
        IntMdBuilder {
            shim: self.parts.shim,
            header: self.parts.header,
            stack: Stack::Raw(self.stack),
        }
    }
}

/// The metadata stack a builder writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack<'a> {
    /// Typed hops in stack order (newest first), encoded per the
    /// instruction bitmap; hop ML must be exactly what the bitmap asks for.
    Hops(&'a [HopMetadata]),
    /// Stack bytes as they are, a whole number of hop ML × 4-byte hops
    /// (this is how to carry domain-specific metadata).
    Raw(&'a [u8]),
}

/// Writes an INT-MD block: shim, metadata header and stack.
///
/// # Examples
///
/// An INT source's probe header with room for 8 hops and its own metadata:
///
/// ```
/// use bytes::BytesMut;
/// use solyx_int::{HopMetadata, Instructions, IntMdBuilder, Stack};
///
/// let me = [HopMetadata { switch_id: Some(42), ..Default::default() }];
/// let mut buf = BytesMut::new();
/// let n = IntMdBuilder::new(Instructions::SWITCH_ID, 7, Stack::Hops(&me)).write(&mut buf)?;
/// assert_eq!(n, 20);
/// assert_eq!(&buf[..4], &[0x10, 4, 0, 0]); // type 1, length 4 words
/// # Ok::<(), solyx_int::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntMdBuilder<'a> {
    /// The shim header (its length is computed).
    pub shim: IntShim,
    /// The metadata header.
    pub header: IntMdHeader,
    /// The stack.
    pub stack: Stack<'a>,
}

fn check(field: &'static str, value: u64, max: u64) -> Result<(), BuildError> {
    if value > max {
        Err(BuildError::FieldOutOfRange { field, value, max })
    } else {
        Ok(())
    }
}

fn not_requested(hop: usize, field: &'static str) -> BuildError {
    BuildError::MetadataNotRequested { hop, field }
}

impl<'a> IntMdBuilder<'a> {
    /// A block with a default shim and [`IntMdHeader::new`].
    #[must_use]
    pub fn new(instructions: Instructions, remaining_hop_count: u8, stack: Stack<'a>) -> Self {
        Self {
            shim: IntShim::default(),
            header: IntMdHeader::new(instructions, remaining_hop_count),
            stack,
        }
    }

    /// Checks every field and returns the bytes [`write`](Self::write)
    /// would write.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when a field is out of range, the instructions have
    /// reserved bits, hop ML does not fit the stack, the stack is too long
    /// for the shim length, or a typed hop carries a field the
    /// instructions do not ask for.
    pub fn encoded_len(&self) -> Result<usize, BuildError> {
        let h = &self.header;
        check("INT shim NPT", self.shim.npt.into(), 3)?;
        check("INT shim reserved", self.shim.reserved.into(), 3)?;
        check("INT-MD reserved", h.reserved.into(), 0x0fff)?;
        check("INT-MD hop ML", h.hop_ml.into(), 31)?;
        let unknown = h.instructions.unknown_bits();
        if unknown != 0 {
            return Err(BuildError::UnknownBits {
                what: "instructions",
                bits: unknown,
            });
        }
        let hop_len = usize::from(h.hop_ml) * 4;
        let needed = h.instructions.metadata_len();
        let stack_len = match self.stack {
            Stack::Hops(hops) => {
                // TODO-completeness: typed hops carry no domain-specific
                // metadata; such stacks go through Stack::Raw for now.
                if hop_len != needed {
                    return Err(BuildError::HopMlMismatch {
                        hop_ml: h.hop_ml,
                        needed: needed / 4,
                    });
                }
                if hop_len == 0 && !hops.is_empty() {
                    return Err(BuildError::EmptyHops { hops: hops.len() });
                }
                for (i, hop) in hops.iter().enumerate() {
                    check_hop(i, hop, h.instructions)?;
                }
                hops.len().saturating_mul(hop_len)
            }
            Stack::Raw(raw) => {
                let whole = match raw.len().checked_rem(hop_len) {
                    Some(r) => r == 0,
                    None => raw.is_empty(),
                };
                if hop_len < needed || !whole {
                    return Err(BuildError::BadStack {
                        len: raw.len(),
                        hop_ml: h.hop_ml,
                    });
                }
                raw.len()
            }
        };
        if MD_HEADER_LEN + stack_len > 255 * 4 {
            return Err(BuildError::TooLong {
                what: "INT-MD stack",
                len: stack_len,
            });
        }
        Ok(SHIM_LEN + MD_HEADER_LEN + stack_len)
    }

    /// Appends the block to `out` and returns the bytes written.
    ///
    /// # Errors
    ///
    /// As [`encoded_len`](Self::encoded_len); nothing is written then.
    pub fn write(&self, out: &mut BytesMut) -> Result<usize, BuildError> {
        let len = self.encoded_len()?;
        out.reserve(len);
        self.write_checked(out, len);
        Ok(len)
    }

    /// Writes a block that [`encoded_len`](Self::encoded_len) accepted.
    pub(crate) fn write_checked(&self, out: &mut BytesMut, len: usize) {
        let h = &self.header;
        let words = ((len - SHIM_LEN) / 4) as u8;
        out.put_u8((INT_TYPE_MD << 4) | (self.shim.npt << 2) | self.shim.reserved);
        out.put_u8(words);
        out.put_u16(self.shim.npt_data);
        out.put_u32(
            (u32::from(INT_MD_VERSION) << 28)
                | (u32::from(h.discard) << 27)
                | (u32::from(h.hop_count_exceeded) << 26)
                | (u32::from(h.mtu_exceeded) << 25)
                | (u32::from(h.reserved) << 13)
                | (u32::from(h.hop_ml) << 8)
                | u32::from(h.remaining_hop_count),
        );
        out.put_u16(h.instructions.bits());
        out.put_u16(h.domain_specific_id);
        out.put_u16(h.ds_instruction);
        out.put_u16(h.ds_flags);
        match self.stack {
            Stack::Hops(hops) => {
                for hop in hops {
                    put_hop(out, hop, h.instructions);
                }
            }
            Stack::Raw(raw) => out.put_slice(raw),
        }
    }
}

/// Checks that `hop` carries only what `ins` asks for, in range.
fn check_hop(i: usize, hop: &HopMetadata, ins: Instructions) -> Result<(), BuildError> {
    let extra = Instructions::from_bits(hop.instructions().bits() & !ins.bits());
    let names = [
        (Instructions::SWITCH_ID, "switch ID"),
        (Instructions::LEVEL1_PORT_IDS, "level-1 ports"),
        (Instructions::HOP_LATENCY, "hop latency"),
        (Instructions::QUEUE, "queue"),
        (Instructions::INGRESS_TIMESTAMP, "ingress timestamp"),
        (Instructions::EGRESS_TIMESTAMP, "egress timestamp"),
        (Instructions::LEVEL2_PORT_IDS, "level-2 ports"),
        (Instructions::EGRESS_TX_UTILIZATION, "egress TX utilization"),
        (Instructions::BUFFER, "buffer"),
        (Instructions::CHECKSUM_COMPLEMENT, "checksum complement"),
    ];
    if let Some((_, name)) = names.iter().find(|(bit, _)| extra.contains(*bit)) {
        return Err(not_requested(i, name));
    }
    if let Some(q) = hop.queue {
        check("queue occupancy", q.occupancy.into(), 0x00ff_ffff)?;
    }
    if let Some(b) = hop.buffer {
        check("buffer occupancy", b.occupancy.into(), 0x00ff_ffff)?;
    }
    Ok(())
}

/// Writes one hop's fields in bitmap order, all ones for those missing.
fn put_hop(out: &mut BytesMut, hop: &HopMetadata, ins: Instructions) {
    let occ = |o: crate::hop::Occupancy| (u32::from(o.id) << 24) | (o.occupancy & 0x00ff_ffff);
    if ins.contains(Instructions::SWITCH_ID) {
        out.put_u32(hop.switch_id.unwrap_or(UNAVAILABLE_32));
    }
    if ins.contains(Instructions::LEVEL1_PORT_IDS) {
        match hop.level1_ports {
            Some(p) => {
                out.put_u16(p.ingress);
                out.put_u16(p.egress);
            }
            None => out.put_u32(UNAVAILABLE_32),
        }
    }
    if ins.contains(Instructions::HOP_LATENCY) {
        out.put_u32(hop.hop_latency.unwrap_or(UNAVAILABLE_32));
    }
    if ins.contains(Instructions::QUEUE) {
        out.put_u32(hop.queue.map_or(UNAVAILABLE_32, occ));
    }
    if ins.contains(Instructions::INGRESS_TIMESTAMP) {
        out.put_u64(hop.ingress_timestamp.unwrap_or(UNAVAILABLE_64));
    }
    if ins.contains(Instructions::EGRESS_TIMESTAMP) {
        out.put_u64(hop.egress_timestamp.unwrap_or(UNAVAILABLE_64));
    }
    if ins.contains(Instructions::LEVEL2_PORT_IDS) {
        match hop.level2_ports {
            Some(p) => {
                out.put_u32(p.ingress);
                out.put_u32(p.egress);
            }
            None => out.put_u64(UNAVAILABLE_64),
        }
    }
    if ins.contains(Instructions::EGRESS_TX_UTILIZATION) {
        out.put_u32(hop.egress_tx_utilization.unwrap_or(UNAVAILABLE_32));
    }
    if ins.contains(Instructions::BUFFER) {
        out.put_u32(hop.buffer.map_or(UNAVAILABLE_32, occ));
    }
    if ins.contains(Instructions::CHECKSUM_COMPLEMENT) {
        out.put_u32(hop.checksum_complement.unwrap_or(UNAVAILABLE_32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hop::{Occupancy, Ports};

    #[test]
    fn header_bits_are_where_the_spec_puts_them() {
        let mut header = IntMdHeader::new(Instructions::SWITCH_ID, 0xab);
        header.discard = true;
        header.mtu_exceeded = true;
        header.reserved = 0x0801;
        header.domain_specific_id = 0x1234;
        header.ds_instruction = 0x5678;
        header.ds_flags = 0x9abc;
        let shim = IntShim {
            npt: 2,
            reserved: 1,
            npt_data: 0x0011,
        };
        let b = IntMdBuilder {
            shim,
            header,
            stack: Stack::Raw(&[]),
        };
        let mut out = BytesMut::new();
        assert_eq!(b.write(&mut out), Ok(16));
        // type 1 | npt 2 | rsvd 1 = 0001 10 01; length 3 words.
        assert_eq!(&out[..4], &[0x19, 3, 0x00, 0x11]);
        // ver 2, D=1, E=0, M=1, reserved 0x801, hop ML 1, remaining 0xab:
        // 0010 1 0 1 100000000001 00001 10101011
        assert_eq!(&out[4..8], &[0x2b, 0x00, 0x21, 0xab]);
        assert_eq!(&out[8..16], &[0x80, 0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]);
        let md = IntMd::parse(&out).unwrap();
        assert_eq!(md.header(), &header);
        assert_eq!(md.shim(), &shim);
        assert_eq!(md.hop_count(), 0);
    }

    #[test]
    fn missing_values_are_written_as_all_ones() {
        let ins = Instructions::LEVEL1_PORT_IDS | Instructions::INGRESS_TIMESTAMP;
        let hops = [HopMetadata::default()];
        let mut out = BytesMut::new();
        IntMdBuilder::new(ins, 1, Stack::Hops(&hops))
            .write(&mut out)
            .unwrap();
        assert!(out[16..].iter().all(|&b| b == 0xff));
        let md = IntMd::parse(&out).unwrap();
        let hop = md.hops().next().unwrap();
        assert_eq!(
            hop.level1_ports(),
            Some(Ports {
                ingress: 0xffff,
                egress: 0xffff
            })
        );
        assert_eq!(hop.ingress_timestamp(), Some(UNAVAILABLE_64));
    }

    #[test]
    fn typed_hops_must_match_the_instructions() {
        let hops = [HopMetadata {
            hop_latency: Some(1),
            ..HopMetadata::default()
        }];
        let b = IntMdBuilder::new(Instructions::SWITCH_ID, 1, Stack::Hops(&hops));
        assert_eq!(
            b.encoded_len(),
            Err(BuildError::MetadataNotRequested {
                hop: 0,
                field: "hop latency"
            })
        );
        let hops = [HopMetadata {
            queue: Some(Occupancy {
                id: 1,
                occupancy: 1 << 24,
            }),
            ..HopMetadata::default()
        }];
        let b = IntMdBuilder::new(Instructions::QUEUE, 1, Stack::Hops(&hops));
        assert!(matches!(
            b.encoded_len(),
            Err(BuildError::FieldOutOfRange { .. })
        ));
        let mut out = BytesMut::new();
        assert!(b.write(&mut out).is_err());
        assert!(out.is_empty());

        // A hop of no metadata would vanish on the wire.
        let hops = [HopMetadata::default()];
        let b = IntMdBuilder::new(Instructions::EMPTY, 1, Stack::Hops(&hops));
        assert_eq!(b.encoded_len(), Err(BuildError::EmptyHops { hops: 1 }));
    }
}
