//! The two 16-bit metadata bitmaps and where each field sits in a block
//! of metadata.
//!
//! * [`Instructions`]: the INT-MD instruction bitmap (INT v2.1 section
//!   5.8). Bit 0 is the most significant bit. Each set bit asks every hop
//!   for one metadata field, 4 bytes except bits 4-6 (8 bytes); bits 9-14
//!   are reserved; bit 15 (checksum complement) is always the last word of
//!   a hop, after any domain-specific metadata.
//! * [`RepMdBits`]: the RepMdBits of a Telemetry Report v2.0 individual
//!   report (section 3.3.1). The same numbering for bits 1-8; bit 0 (node
//!   ID) is never set because the group header carries the node ID; bit 15
//!   is a 4-byte queue ID + drop reason word. The fields come in bit order
//!   and domain-specific metadata follows them.
//!
//! [`Layout`] turns a bitmap into byte offsets once per packet so that the
//! per-hop accessors are a table lookup and a checked read.

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

use crate::wire;

/// The mask of bit `i` of a 16-bit bitmap whose bit 0 is the most
/// significant bit (the numbering both specifications use).
const fn bit(i: u8) -> u16 {
    1 << (15 - i)
}

/// Bytes of metadata that bit `i` stands for in the INT numbering (4 or 8),
/// or 0 for a reserved bit.
const fn field_len(i: u8) -> u8 {
    match i {
        0..=3 | 7 | 8 | 15 => 4,
        4..=6 => 8,
        _ => 0,
    }
}

macro_rules! bitmap_common {
    ($t:ident) => {
        impl $t {
            /// No bit set.
            pub const EMPTY: Self = Self(0);

            /// The bitmap with exactly these wire bits, known or not.
            #[must_use]
            pub const fn from_bits(bits: u16) -> Self {
                Self(bits)
            }

            /// The bitmap as it is on the wire.
            #[must_use]
            pub const fn bits(self) -> u16 {
                self.0
            }

            /// Whether every bit of `other` is set in `self`.
            #[must_use]
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether no bit is set.
            #[must_use]
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// The set bits that this crate does not know how to parse.
            #[must_use]
            pub const fn unknown_bits(self) -> u16 {
                self.0 & !Self::KNOWN
            }

            /// The bitmap with bit `index` (0 = most significant) set.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use solyx_int::", stringify!($t), ";")]
            #[doc = concat!("assert_eq!(", stringify!($t), "::EMPTY.with_bit(1).bits(), 0x4000);")]
            /// ```
            #[must_use]
            pub const fn with_bit(self, index: u8) -> Self {
                if index > 15 {
                    self
                } else {
                    Self(self.0 | bit(index))
                }
            }

            /// Whether bit `index` (0 = most significant) is set.
            #[must_use]
            pub const fn has_bit(self, index: u8) -> bool {
                index <= 15 && self.0 & bit(index) != 0
            }

            /// Bytes of metadata that the known set bits stand for.
            #[must_use]
            pub const fn metadata_len(self) -> usize {
                let mut len = 0usize;
                let mut i = 0u8;
                while i < 16 {
                    if self.0 & Self::KNOWN & bit(i) != 0 {
                        len += field_len(i) as usize;
                    }
                    i += 1;
                }
                len
            }
        }

        impl BitOr for $t {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl BitOrAssign for $t {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({:#06x})"), self.0)
            }
        }
    };
}

/// The INT-MD instruction bitmap (INT v2.1 section 5.8): which metadata
/// every hop pushes.
///
/// # Examples
///
/// ```
/// use solyx_int::Instructions;
///
/// let ins = Instructions::SWITCH_ID | Instructions::HOP_LATENCY | Instructions::INGRESS_TIMESTAMP;
/// assert_eq!(ins.bits(), 0xa800);
/// assert_eq!(ins.metadata_len(), 16);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Instructions(u16);

impl Instructions {
    /// Bit 0: switch ID (4 bytes).
    pub const SWITCH_ID: Self = Self(bit(0));
    /// Bit 1: level-1 ingress and egress port IDs (2 + 2 bytes).
    pub const LEVEL1_PORT_IDS: Self = Self(bit(1));
    /// Bit 2: hop latency (4 bytes).
    pub const HOP_LATENCY: Self = Self(bit(2));
    /// Bit 3: queue ID (1 byte) and queue occupancy (3 bytes).
    pub const QUEUE: Self = Self(bit(3));
    /// Bit 4: ingress timestamp (8 bytes).
    pub const INGRESS_TIMESTAMP: Self = Self(bit(4));
    /// Bit 5: egress timestamp (8 bytes).
    pub const EGRESS_TIMESTAMP: Self = Self(bit(5));
    /// Bit 6: level-2 ingress and egress port IDs (4 + 4 bytes).
    pub const LEVEL2_PORT_IDS: Self = Self(bit(6));
    /// Bit 7: egress port TX utilization (4 bytes).
    pub const EGRESS_TX_UTILIZATION: Self = Self(bit(7));
    /// Bit 8: buffer ID (1 byte) and buffer occupancy (3 bytes).
    pub const BUFFER: Self = Self(bit(8));
    /// Bit 15: checksum complement (4 bytes), the last word of a hop.
    pub const CHECKSUM_COMPLEMENT: Self = Self(bit(15));
    /// Bits 9-14, reserved by INT v2.1.
    pub const RESERVED: u16 = 0x007e;
    /// Every bit this crate parses: bits 0-8 and 15.
    pub const KNOWN: u16 = !Self::RESERVED;

    /// The instructions Solyx hosts put in their probes: switch ID,
    /// level-1 ports, hop latency, queue, both timestamps and egress TX
    /// utilization (9 words a hop).
    pub const COMMON: Self = Self(bit(0) | bit(1) | bit(2) | bit(3) | bit(4) | bit(5) | bit(7));
}

bitmap_common!(Instructions);

/// The RepMdBits of a Telemetry Report v2.0 individual report of type INT
/// (section 3.3.1): which metadata of the reporting node follow the fixed
/// part of the report's main contents.
///
/// # Examples
///
/// ```
/// use solyx_int::RepMdBits;
///
/// let bits = RepMdBits::LEVEL1_PORT_IDS | RepMdBits::EGRESS_TIMESTAMP;
/// assert_eq!(bits.metadata_len(), 12);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RepMdBits(u16);

impl RepMdBits {
    /// Bit 1: level-1 ingress and egress port IDs (2 + 2 bytes).
    pub const LEVEL1_PORT_IDS: Self = Self(bit(1));
    /// Bit 2: hop latency (4 bytes).
    pub const HOP_LATENCY: Self = Self(bit(2));
    /// Bit 3: queue ID (1 byte) and queue occupancy (3 bytes).
    pub const QUEUE: Self = Self(bit(3));
    /// Bit 4: ingress timestamp (8 bytes).
    pub const INGRESS_TIMESTAMP: Self = Self(bit(4));
    /// Bit 5: egress timestamp (8 bytes).
    pub const EGRESS_TIMESTAMP: Self = Self(bit(5));
    /// Bit 6: level-2 ingress and egress port IDs (4 + 4 bytes).
    pub const LEVEL2_PORT_IDS: Self = Self(bit(6));
    /// Bit 7: egress port TX utilization (4 bytes).
    pub const EGRESS_TX_UTILIZATION: Self = Self(bit(7));
    /// Bit 8: buffer ID (1 byte) and buffer occupancy (3 bytes).
    pub const BUFFER: Self = Self(bit(8));
    /// Bit 15: queue ID (1 byte), drop reason (1 byte) and 2 bytes of
    /// padding.
    // TODO-correctness: this reading of RepMdBits bit 15 could not be
    // checked against the published v2.0 text; every reading makes it one
    // 4-byte word, so lengths stay right, only the field names could be.
    pub const QUEUE_DROP_REASON: Self = Self(bit(15));
    /// Every bit this crate parses: bits 1-8 and 15. Bit 0 (node ID) is
    /// carried by the group header and must be clear here.
    pub const KNOWN: u16 = 0x7f81;
}

bitmap_common!(RepMdBits);

/// Marks a field that the bitmap does not ask for.
const ABSENT: u8 = u8::MAX;

/// Byte offsets of each metadata field within one block of metadata (one
/// hop of an INT-MD stack, or the reporting node's metadata in a report),
/// computed once from a bitmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Offset of the field of bit `i`, or `ABSENT`.
    offsets: [u8; 16],
    /// Where the domain-specific metadata starts.
    ds_start: u8,
    /// Bytes after the domain-specific metadata (the checksum complement of
    /// an INT hop).
    tail: u8,
}

impl Layout {
    /// The layout of an INT-MD hop: bits 0-8 in order, domain-specific
    /// metadata, then the checksum complement (bit 15) as the last word.
    pub(crate) fn int_hop(ins: Instructions, hop_len: usize) -> Self {
        let mut offsets = [ABSENT; 16];
        let mut off = 0u8;
        for i in 0..=8u8 {
            if ins.has_bit(i) {
                if let Some(slot) = offsets.get_mut(usize::from(i)) {
                    *slot = off;
                }
                off = off.saturating_add(field_len(i));
            }
        }
        let mut tail = 0;
        if ins.contains(Instructions::CHECKSUM_COMPLEMENT) {
            tail = 4;
            if let Some(slot) = offsets.get_mut(15) {
                *slot = u8::try_from(hop_len.saturating_sub(4)).unwrap_or(ABSENT);
            }
        }
        Self {
            offsets,
            ds_start: off,
            tail,
        }
    }

    /// The layout of a report's node metadata: bits 1-8 and 15 in order,
    /// then domain-specific metadata.
    pub(crate) fn report(bits: RepMdBits) -> Self {
        let mut offsets = [ABSENT; 16];
        let mut off = 0u8;
        for i in (1..=8u8).chain([15]) {
            if bits.has_bit(i) {
                if let Some(slot) = offsets.get_mut(usize::from(i)) {
                    *slot = off;
                }
                off = off.saturating_add(field_len(i));
            }
        }
        Self {
            offsets,
            ds_start: off,
            tail: 0,
        }
    }

    /// Where the field of bit `i` starts, if the bitmap asks for it.
    #[inline]
    fn offset(&self, i: usize) -> Option<usize> {
        match self.offsets.get(i) {
            Some(&o) if o != ABSENT => Some(usize::from(o)),
            _ => None,
        }
    }

    /// The 4-byte field of bit `i` in `block`.
    #[inline]
    pub(crate) fn u32(&self, block: &[u8], i: usize) -> Option<u32> {
        wire::u32_at(block, self.offset(i)?)
    }

    /// The 8-byte field (or pair of 4-byte fields) of bit `i` in `block`.
    #[inline]
    pub(crate) fn u64(&self, block: &[u8], i: usize) -> Option<u64> {
        wire::u64_at(block, self.offset(i)?)
    }

    /// The domain-specific metadata of `block`.
    #[inline]
    pub(crate) fn domain_specific<'a>(&self, block: &'a [u8]) -> &'a [u8] {
        let end = block.len().saturating_sub(usize::from(self.tail));
        block.get(usize::from(self.ds_start)..end).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_zero_is_the_most_significant() {
        assert_eq!(Instructions::SWITCH_ID.bits(), 0x8000);
        assert_eq!(Instructions::BUFFER.bits(), 0x0080);
        assert_eq!(Instructions::CHECKSUM_COMPLEMENT.bits(), 0x0001);
        assert_eq!(Instructions::RESERVED, 0b0000_0000_0111_1110);
        assert_eq!(RepMdBits::KNOWN, 0b0111_1111_1000_0001);
    }

    #[test]
    fn lengths_follow_the_field_sizes() {
        let all = Instructions::from_bits(Instructions::KNOWN);
        // 0-3: 4 x 4, 4-6: 3 x 8, 7, 8, 15: 3 x 4.
        assert_eq!(all.metadata_len(), 52);
        assert_eq!(Instructions::COMMON.metadata_len(), 36);
        assert_eq!(Instructions::from_bits(0x0002).metadata_len(), 0);
        assert_eq!(RepMdBits::from_bits(0xffff).metadata_len(), 48);
    }

    #[test]
    fn checksum_complement_is_last_in_a_hop() {
        let ins = Instructions::SWITCH_ID | Instructions::CHECKSUM_COMPLEMENT;
        let layout = Layout::int_hop(ins, 16);
        let block = [0, 0, 0, 1, 9, 9, 9, 9, 8, 8, 8, 8, 0, 0, 0, 2];
        assert_eq!(layout.u32(&block, 0), Some(1));
        assert_eq!(layout.u32(&block, 15), Some(2));
        assert_eq!(layout.domain_specific(&block), &[9, 9, 9, 9, 8, 8, 8, 8]);
        assert_eq!(layout.u32(&block, 2), None);
    }

    #[test]
    fn drop_reason_precedes_domain_specific_in_a_report() {
        let bits = RepMdBits::HOP_LATENCY | RepMdBits::QUEUE_DROP_REASON;
        let layout = Layout::report(bits);
        let block = [0, 0, 0, 7, 3, 4, 0, 0, 5, 5, 5, 5];
        assert_eq!(layout.u32(&block, 2), Some(7));
        assert_eq!(layout.u32(&block, 15), Some(0x0304_0000));
        assert_eq!(layout.domain_specific(&block), &[5, 5, 5, 5]);
    }
}
