//! Per-hop INT metadata: zero-copy views ([`Hop`], [`Hops`],
//! [`NodeMetadata`]) and the owned values a builder writes
//! ([`HopMetadata`]).
//!
//! A view reads its fields straight from the packet bytes on each call;
//! a field is `Some` exactly when the bitmap asks for it. The specification
//! lets a hop write all ones ([`UNAVAILABLE_32`], [`UNAVAILABLE_64`]) for a
//! value it cannot provide; the views return that value as it is.
//!
//! Units are the device's (INT v2.1 leaves them to an out-of-band
//! metadata-semantics model). Solyx hosts write nanoseconds; the
//! `solyx_fabric` BMv2 pipeline writes microseconds for hop latency and
//! timestamps and packets for queue occupancy.

use core::iter::{FusedIterator, Rev};

use crate::bits::{Instructions, Layout};

/// The all-ones value a hop writes for a 4-byte field it cannot provide.
pub const UNAVAILABLE_32: u32 = u32::MAX;
/// The all-ones value a hop writes for an 8-byte field it cannot provide.
pub const UNAVAILABLE_64: u64 = u64::MAX;

/// An ingress and an egress port ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ports<T> {
    /// The port the packet came in on.
    pub ingress: T,
    /// The port the packet went out of.
    pub egress: T,
}

/// A queue or buffer ID and its occupancy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Occupancy {
    /// Queue or buffer ID.
    pub id: u8,
    /// Occupancy; 24 bits on the wire.
    pub occupancy: u32,
}

impl Occupancy {
    /// Splits the wire word: ID in the top byte, occupancy in the rest.
    fn from_word(w: u32) -> Self {
        Self {
            id: w.to_be_bytes()[0],
            occupancy: w & 0x00ff_ffff,
        }
    }
}

/// Reads the fields of one block of metadata through a [`Layout`].
#[derive(Clone, Copy)]
struct Fields<'a> {
    bytes: &'a [u8],
    layout: Layout,
}

impl Fields<'_> {
    fn u32(&self, bit: usize) -> Option<u32> {
        self.layout.u32(self.bytes, bit)
    }

    fn u64(&self, bit: usize) -> Option<u64> {
        self.layout.u64(self.bytes, bit)
    }

    fn ports16(&self, bit: usize) -> Option<Ports<u16>> {
        let w = self.u32(bit)?;
        Some(Ports {
            ingress: (w >> 16) as u16,
            egress: (w & 0xffff) as u16,
        })
    }

    fn ports32(&self, bit: usize) -> Option<Ports<u32>> {
        let w = self.u64(bit)?;
        Some(Ports {
            ingress: (w >> 32) as u32,
            egress: (w & 0xffff_ffff) as u32,
        })
    }
}

/// One hop's metadata in an INT-MD stack, borrowed from the packet.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use solyx_int::{HopMetadata, Instructions, IntMd, IntMdBuilder, Stack};
///
/// let ins = Instructions::SWITCH_ID | Instructions::HOP_LATENCY;
/// let hops = [HopMetadata { switch_id: Some(7), hop_latency: Some(120), ..Default::default() }];
/// let mut buf = BytesMut::new();
/// IntMdBuilder::new(ins, 8, Stack::Hops(&hops)).write(&mut buf)?;
/// let md = IntMd::parse(&buf)?;
/// let hop = md.hops().next().unwrap();
/// assert_eq!(hop.switch_id(), Some(7));
/// assert_eq!(hop.hop_latency(), Some(120));
/// assert_eq!(hop.egress_timestamp(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Hop<'a> {
    f: Fields<'a>,
}

impl<'a> Hop<'a> {
    /// The hop's switch ID (bit 0).
    #[must_use]
    pub fn switch_id(&self) -> Option<u32> {
        self.f.u32(0)
    }

    /// Level-1 ingress and egress port IDs (bit 1).
    #[must_use]
    pub fn level1_ports(&self) -> Option<Ports<u16>> {
        self.f.ports16(1)
    }

    /// Level-1 ingress port ID (bit 1).
    #[must_use]
    pub fn ingress_port(&self) -> Option<u16> {
        self.level1_ports().map(|p| p.ingress)
    }

    /// Level-1 egress port ID (bit 1).
    #[must_use]
    pub fn egress_port(&self) -> Option<u16> {
        self.level1_ports().map(|p| p.egress)
    }

    /// Time the packet spent in the device (bit 2).
    #[must_use]
    pub fn hop_latency(&self) -> Option<u32> {
        self.f.u32(2)
    }

    /// Queue ID and occupancy (bit 3).
    #[must_use]
    pub fn queue(&self) -> Option<Occupancy> {
        self.f.u32(3).map(Occupancy::from_word)
    }

    /// Queue ID (bit 3).
    #[must_use]
    pub fn queue_id(&self) -> Option<u8> {
        self.queue().map(|q| q.id)
    }

    /// Queue occupancy, 24 bits (bit 3).
    #[must_use]
    pub fn queue_occupancy(&self) -> Option<u32> {
        self.queue().map(|q| q.occupancy)
    }

    /// Device-local time the packet came in (bit 4).
    #[must_use]
    pub fn ingress_timestamp(&self) -> Option<u64> {
        self.f.u64(4)
    }

    /// Device-local time the packet went out (bit 5).
    #[must_use]
    pub fn egress_timestamp(&self) -> Option<u64> {
        self.f.u64(5)
    }

    /// Level-2 ingress and egress port IDs (bit 6).
    #[must_use]
    pub fn level2_ports(&self) -> Option<Ports<u32>> {
        self.f.ports32(6)
    }

    /// Egress port TX utilization (bit 7).
    #[must_use]
    pub fn egress_tx_utilization(&self) -> Option<u32> {
        self.f.u32(7)
    }

    /// Buffer ID and occupancy (bit 8).
    #[must_use]
    pub fn buffer(&self) -> Option<Occupancy> {
        self.f.u32(8).map(Occupancy::from_word)
    }

    /// Checksum complement (bit 15).
    #[must_use]
    pub fn checksum_complement(&self) -> Option<u32> {
        self.f.u32(15)
    }

    /// The domain-specific metadata between the baseline fields and the
    /// checksum complement; empty when hop ML covers only the baseline.
    #[must_use]
    pub fn domain_specific(&self) -> &'a [u8] {
        self.f.layout.domain_specific(self.f.bytes)
    }

    /// The hop's bytes, hop ML × 4 of them.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.f.bytes
    }

    /// The hop's baseline fields as owned values (the domain-specific
    /// metadata is not included).
    #[must_use]
    pub fn to_metadata(&self) -> HopMetadata {
        HopMetadata {
            switch_id: self.switch_id(),
            level1_ports: self.level1_ports(),
            hop_latency: self.hop_latency(),
            queue: self.queue(),
            ingress_timestamp: self.ingress_timestamp(),
            egress_timestamp: self.egress_timestamp(),
            level2_ports: self.level2_ports(),
            egress_tx_utilization: self.egress_tx_utilization(),
            buffer: self.buffer(),
            checksum_complement: self.checksum_complement(),
        }
    }
}

impl core::fmt::Debug for Hop<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hop")
            .field("metadata", &self.to_metadata())
            .field("domain_specific", &self.domain_specific())
            .finish()
    }
}

/// The hops of an INT-MD stack in stack order: the newest hop (the one
/// nearest the sink) first. `.rev()` (or [`Hops::path`]) gives path order,
/// source first.
///
/// Each step slices the original buffer; nothing is allocated.
#[derive(Clone)]
pub struct Hops<'a> {
    rest: &'a [u8],
    hop_len: usize,
    layout: Layout,
}

impl<'a> Hops<'a> {
    /// Hops over `stack`, each `hop_len` bytes (a whole number of them:
    /// the parser checked).
    pub(crate) fn new(stack: &'a [u8], hop_len: usize, layout: Layout) -> Self {
        Self {
            rest: if hop_len == 0 { &[] } else { stack },
            hop_len,
            layout,
        }
    }

    /// The same hops in path order: the first hop after the source first.
    pub fn path(self) -> Rev<Self> {
        self.rev()
    }

    fn hop(&self, bytes: &'a [u8]) -> Hop<'a> {
        Hop {
            f: Fields {
                bytes,
                layout: self.layout,
            },
        }
    }
}

impl<'a> Iterator for Hops<'a> {
    type Item = Hop<'a>;

    #[inline]
    fn next(&mut self) -> Option<Hop<'a>> {
        let (hop, rest) = self.rest.split_at_checked(self.hop_len)?;
        if hop.is_empty() {
            return None;
        }
        self.rest = rest;
        Some(self.hop(hop))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len();
        (n, Some(n))
    }
}

impl<'a> DoubleEndedIterator for Hops<'a> {
    #[inline]
    fn next_back(&mut self) -> Option<Hop<'a>> {
        let split = self.rest.len().checked_sub(self.hop_len)?;
        let (rest, hop) = self.rest.split_at_checked(split)?;
        if hop.is_empty() {
            return None;
        }
        self.rest = rest;
        Some(self.hop(hop))
    }
}

impl ExactSizeIterator for Hops<'_> {
    fn len(&self) -> usize {
        self.rest.len().checked_div(self.hop_len).unwrap_or(0)
    }
}

impl FusedIterator for Hops<'_> {}

impl core::fmt::Debug for Hops<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// The reporting node's own metadata in a Telemetry Report (the variable
/// optional metadata after RepMdBits), borrowed from the report.
///
/// The node ID is the group header's; fields follow RepMdBits.
#[derive(Clone, Copy)]
pub struct NodeMetadata<'a> {
    f: Fields<'a>,
}

impl<'a> NodeMetadata<'a> {
    pub(crate) fn new(bytes: &'a [u8], layout: Layout) -> Self {
        Self {
            f: Fields { bytes, layout },
        }
    }

    /// Level-1 ingress and egress port IDs (bit 1).
    #[must_use]
    pub fn level1_ports(&self) -> Option<Ports<u16>> {
        self.f.ports16(1)
    }

    /// Hop latency (bit 2).
    #[must_use]
    pub fn hop_latency(&self) -> Option<u32> {
        self.f.u32(2)
    }

    /// Queue ID and occupancy (bit 3).
    #[must_use]
    pub fn queue(&self) -> Option<Occupancy> {
        self.f.u32(3).map(Occupancy::from_word)
    }

    /// Ingress timestamp (bit 4).
    #[must_use]
    pub fn ingress_timestamp(&self) -> Option<u64> {
        self.f.u64(4)
    }

    /// Egress timestamp (bit 5).
    #[must_use]
    pub fn egress_timestamp(&self) -> Option<u64> {
        self.f.u64(5)
    }

    /// Level-2 ingress and egress port IDs (bit 6).
    #[must_use]
    pub fn level2_ports(&self) -> Option<Ports<u32>> {
        self.f.ports32(6)
    }

    /// Egress port TX utilization (bit 7).
    #[must_use]
    pub fn egress_tx_utilization(&self) -> Option<u32> {
        self.f.u32(7)
    }

    /// Buffer ID and occupancy (bit 8).
    #[must_use]
    pub fn buffer(&self) -> Option<Occupancy> {
        self.f.u32(8).map(Occupancy::from_word)
    }

    /// Queue ID and drop reason of a dropped packet (bit 15).
    #[must_use]
    pub fn queue_drop_reason(&self) -> Option<(u8, u8)> {
        let [queue, reason, _, _] = self.f.u32(15)?.to_be_bytes();
        Some((queue, reason))
    }

    /// The domain-specific metadata after the baseline fields.
    #[must_use]
    pub fn domain_specific(&self) -> &'a [u8] {
        self.f.layout.domain_specific(self.f.bytes)
    }

    /// All the metadata bytes (MD length × 4).
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.f.bytes
    }
}

impl core::fmt::Debug for NodeMetadata<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeMetadata")
            .field("level1_ports", &self.level1_ports())
            .field("hop_latency", &self.hop_latency())
            .field("queue", &self.queue())
            .field("ingress_timestamp", &self.ingress_timestamp())
            .field("egress_timestamp", &self.egress_timestamp())
            .field("level2_ports", &self.level2_ports())
            .field("egress_tx_utilization", &self.egress_tx_utilization())
            .field("buffer", &self.buffer())
            .field("queue_drop_reason", &self.queue_drop_reason())
            .field("domain_specific", &self.domain_specific())
            .finish()
    }
}

/// One hop's baseline metadata as owned values, for building a stack.
///
/// When the instruction bitmap asks for a field left `None`, the builder
/// writes the all-ones "unavailable" value; a `Some` field the bitmap does
/// not ask for is an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HopMetadata {
    /// Switch ID (bit 0).
    pub switch_id: Option<u32>,
    /// Level-1 ingress and egress port IDs (bit 1).
    pub level1_ports: Option<Ports<u16>>,
    /// Hop latency (bit 2).
    pub hop_latency: Option<u32>,
    /// Queue ID and occupancy, 24 bits (bit 3).
    pub queue: Option<Occupancy>,
    /// Ingress timestamp (bit 4).
    pub ingress_timestamp: Option<u64>,
    /// Egress timestamp (bit 5).
    pub egress_timestamp: Option<u64>,
    /// Level-2 ingress and egress port IDs (bit 6).
    pub level2_ports: Option<Ports<u32>>,
    /// Egress port TX utilization (bit 7).
    pub egress_tx_utilization: Option<u32>,
    /// Buffer ID and occupancy, 24 bits (bit 8).
    pub buffer: Option<Occupancy>,
    /// Checksum complement (bit 15).
    pub checksum_complement: Option<u32>,
}

impl HopMetadata {
    /// The instructions whose fields are `Some`.
    #[must_use]
    pub fn instructions(&self) -> Instructions {
        let mut ins = Instructions::EMPTY;
        let fields = [
            (self.switch_id.is_some(), Instructions::SWITCH_ID),
            (self.level1_ports.is_some(), Instructions::LEVEL1_PORT_IDS),
            (self.hop_latency.is_some(), Instructions::HOP_LATENCY),
            (self.queue.is_some(), Instructions::QUEUE),
            (
                self.ingress_timestamp.is_some(),
                Instructions::INGRESS_TIMESTAMP,
            ),
            (
                self.egress_timestamp.is_some(),
                Instructions::EGRESS_TIMESTAMP,
            ),
            (self.level2_ports.is_some(), Instructions::LEVEL2_PORT_IDS),
            (
                self.egress_tx_utilization.is_some(),
                Instructions::EGRESS_TX_UTILIZATION,
            ),
            (self.buffer.is_some(), Instructions::BUFFER),
            (
                self.checksum_complement.is_some(),
                Instructions::CHECKSUM_COMPLEMENT,
            ),
        ];
        for (present, bit) in fields {
            if present {
                ins |= bit;
            }
        }
        ins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hops_yield_nothing() {
        let layout = Layout::int_hop(Instructions::EMPTY, 0);
        let mut hops = Hops::new(&[1, 2, 3, 4], 0, layout);
        assert_eq!(hops.len(), 0);
        assert!(hops.next().is_none());
        assert!(hops.next_back().is_none());
    }

    #[test]
    fn both_ends_meet() {
        let ins = Instructions::SWITCH_ID;
        let stack = [0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1];
        let hops = Hops::new(&stack, 4, Layout::int_hop(ins, 4));
        let ids: Vec<_> = hops.clone().map(|h| h.switch_id()).collect();
        assert_eq!(ids, [Some(3), Some(2), Some(1)]);
        let path: Vec<_> = hops.clone().path().map(|h| h.switch_id()).collect();
        assert_eq!(path, [Some(1), Some(2), Some(3)]);
        let mut h = hops;
        assert_eq!(h.next().and_then(|h| h.switch_id()), Some(3));
        assert_eq!(h.next_back().and_then(|h| h.switch_id()), Some(1));
        assert_eq!(h.len(), 1);
        assert_eq!(h.next().and_then(|h| h.switch_id()), Some(2));
        assert!(h.next_back().is_none());
    }

    #[test]
    fn occupancy_is_24_bits() {
        let q = Occupancy::from_word(0xab12_3456);
        assert_eq!((q.id, q.occupancy), (0xab, 0x12_3456));
    }
}
