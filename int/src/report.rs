//! Telemetry Report v2.0 (P4.org Applications WG, 2020): the group header,
//! individual reports, and the packet each report carries, parsed without
//! copying from one UDP payload.
//!
//! ```text
//! group header:      | ver=2 | hw_id (6) | sequence number (22)          |
//!                    | node ID (32)                                      |
//! individual report: |RepType|InType| report length | MD length |D|Q|F|I|rsvd|
//!   main (RepType 1):| RepMdBits (16)       | domain specific ID (16)    |
//!                    | DSMdBits (16)        | DSMdStatus (16)            |
//!                    | node metadata, MD length words                    |
//!   inner contents:  | [Ethernet] IPv4 [options] UDP|TCP [options]       |
//!                    | INT shim | INT-MD header | stack | payload ...    |
//! ```
//!
//! Report length counts the words after the first header word (main and
//! inner contents); 0xFF means "0xFF words or more, up to the end of the
//! UDP payload". A UDP payload may coalesce several individual reports
//! after one group header: [`Report::parse`] takes exactly one,
//! [`Report::parse_coalesced`] iterates over all of them.
//!
//! The inner packet is what the sink received: the INT-MD block (see
//! [`md`]) follows the UDP header, or the TCP header and its options.

use core::iter::Rev;
use std::net::Ipv4Addr;

use bytes::Bytes;

use crate::bits::{Layout, RepMdBits};
use crate::build::{InnerPacket, ReportBuilder};
use crate::error::ParseError;
use crate::hop::{Hops, NodeMetadata};
use crate::md::{self, IntMd, MdParts, ParseLimits};
use crate::wire;

/// Version in the group header (Telemetry Report v2.0).
pub const REPORT_VERSION: u8 = 2;
/// Bytes of the group header.
pub const GROUP_HEADER_LEN: usize = 8;
/// Bytes of the first word of an individual report header.
pub const REPORT_HEADER_LEN: usize = 4;
/// Bytes of the fixed part of the main contents of an INT report.
pub const MAIN_FIXED_LEN: usize = 8;
/// Bytes of an Ethernet II header.
pub const ETHERNET_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Bytes of an IPv4 header without options.
pub const IPV4_MIN_LEN: usize = 20;
/// Bytes of a UDP header.
pub const UDP_LEN: usize = 8;
/// Bytes of a TCP header without options.
pub const TCP_MIN_LEN: usize = 20;
/// IP protocol number of TCP.
pub const IP_PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IP_PROTO_UDP: u8 = 17;
/// The report length value meaning "to the end of the UDP payload".
pub const OPEN_REPORT_LENGTH: u8 = 0xff;

/// The telemetry report group header: who sent the reports that follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupHeader {
    /// Sub-component of the node that generated the reports (6 bits).
    pub hw_id: u8,
    /// Per-(node, hw_id) sequence number of report packets (22 bits,
    /// wrapping).
    pub sequence_number: u32,
    /// The reporting node.
    pub node_id: u32,
}

/// What an individual report's main contents are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RepType {
    /// No main contents: the inner contents only.
    InnerOnly = 0,
    /// INT main contents: RepMdBits, domain-specific fields, node metadata.
    #[default]
    Int = 1,
}

/// What an individual report's inner contents are (InType).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum InType {
    /// No inner contents.
    None = 0,
    /// Type-length-value records.
    Tlv = 1,
    /// Domain-specific extension data.
    DomainSpecificExtension = 2,
    /// A (truncated) Ethernet frame.
    Ethernet = 3,
    /// A (truncated) IPv4 packet.
    Ipv4 = 4,
    /// A (truncated) IPv6 packet.
    Ipv6 = 5,
}

/// The D, Q, F and I bits of an individual report header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReportFlags {
    /// D: at least one packet matching a watchlist was dropped.
    pub dropped: bool,
    /// Q: a monitored queue is congested.
    pub congested_queue: bool,
    /// F: the report is for a tracked flow.
    pub tracked_flow: bool,
    /// I: an intermediate report (a hop exported part of the stack).
    pub intermediate: bool,
}

/// The first word of an individual report header, less the fields derived
/// from the contents (InType, report length, MD length).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReportHeader {
    /// RepType.
    pub rep_type: RepType,
    /// D, Q, F, I.
    pub flags: ReportFlags,
    /// The 4 reserved bits.
    pub reserved: u8,
}

/// The main contents of an INT report: the fixed fields and the reporting
/// node's metadata as bytes (see [`Report::node_metadata`] for a typed
/// view).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MainContents<'a> {
    /// Which baseline metadata of the node follow.
    pub rep_md_bits: RepMdBits,
    /// The INT domain.
    pub domain_specific_id: u16,
    /// Which domain-specific metadata follow the baseline.
    pub ds_md_bits: u16,
    /// Domain-specific status.
    pub ds_md_status: u16,
    /// The node metadata: baseline fields in RepMdBits order, then
    /// domain-specific metadata; MD length × 4 bytes.
    pub metadata: &'a [u8],
}

/// The inner Ethernet header (its EtherType is IPv4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EthernetHeader {
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// Source MAC address.
    pub src: [u8; 6],
}

/// The inner IPv4 header, less version, IHL (derived from the options),
/// fragment offset (always 0 here) and protocol (derived from the
/// transport).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Header {
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Total length of the original packet; the report may hold less.
    pub total_length: u16,
    /// Identification.
    pub identification: u16,
    /// Flags (3 bits: reserved, DF, MF).
    pub flags: u8,
    /// Time to live.
    pub ttl: u8,
    /// Header checksum, as received (not checked).
    pub checksum: u16,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
}

impl Default for Ipv4Header {
    fn default() -> Self {
        Self {
            dscp: 0,
            ecn: 0,
            total_length: 0,
            identification: 0,
            flags: 0,
            ttl: 64,
            checksum: 0,
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// The inner UDP header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UdpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of the original datagram; the report may hold less.
    pub length: u16,
    /// Checksum, as received (not checked).
    pub checksum: u16,
}

/// The inner TCP header, less the data offset (derived from the options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// The 4 reserved bits after the data offset.
    pub reserved: u8,
    /// CWR ECE URG ACK PSH RST SYN FIN.
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Checksum, as received (not checked).
    pub checksum: u16,
    /// Urgent pointer.
    pub urgent_ptr: u16,
}

/// The inner transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp(UdpHeader),
    /// TCP (its options are separate).
    Tcp(TcpHeader),
}

impl Default for Transport {
    fn default() -> Self {
        Self::Udp(UdpHeader::default())
    }
}

/// A byte range of the report's buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn of<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        wire::range(b, self.start, self.end).unwrap_or(&[])
    }
}

/// The fixed fields of INT main contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MainFixed {
    rep_md_bits: RepMdBits,
    domain_specific_id: u16,
    ds_md_bits: u16,
    ds_md_status: u16,
}

/// One parsed individual report with its group header, over the original
/// buffer.
///
/// Headers are decoded when the report is parsed; the node metadata,
/// options, INT stack and payload stay in the buffer and are read through
/// views ([`hops`](Self::hops), [`node_metadata`](Self::node_metadata),
/// [`payload`](Self::payload)). Parsing allocates nothing.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use solyx_int::{
///     GroupHeader, HopMetadata, Instructions, InnerPacket, IntMdBuilder, Report, ReportBuilder,
///     Stack, Transport, UdpHeader,
/// };
///
/// let hops = [
///     HopMetadata { switch_id: Some(2), hop_latency: Some(40), ..Default::default() },
///     HopMetadata { switch_id: Some(1), hop_latency: Some(25), ..Default::default() },
/// ];
/// let ins = Instructions::SWITCH_ID | Instructions::HOP_LATENCY;
/// let mut inner = InnerPacket::udp(
///     UdpHeader { src_port: 40000, dst_port: 4791, ..Default::default() },
///     IntMdBuilder::new(ins, 6, Stack::Hops(&hops)),
///     b"",
/// );
/// inner.fill_lengths()?;
/// let group = GroupHeader { hw_id: 1, sequence_number: 7, node_id: 100 };
/// let mut buf = BytesMut::new();
/// ReportBuilder::new(group, inner).write(&mut buf)?;
///
/// let report = Report::parse(buf.freeze())?;
/// assert_eq!(report.group().node_id, 100);
/// assert_eq!(report.hop_count(), 2);
/// let path: Vec<_> = report.path().map(|h| h.switch_id()).collect();
/// assert_eq!(path, [Some(1), Some(2)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    buf: Bytes,
    group: GroupHeader,
    header: ReportHeader,
    in_type: InType,
    report_length: u8,
    md_length: u8,
    main: Option<MainFixed>,
    node_metadata: Span,
    ethernet: Option<EthernetHeader>,
    ipv4: Ipv4Header,
    ipv4_options: Span,
    transport: Transport,
    tcp_options: Span,
    md: MdParts,
    stack: Span,
    payload: Span,
    bytes: Span,
}

impl Report {
    /// Parses a UDP payload holding one group header and exactly one
    /// individual report, with the default [`ParseLimits`].
    ///
    /// # Errors
    ///
    /// [`ParseError`] naming the first check that failed: truncated or
    /// wrong-version group header, a report header or length that does
    /// not fit, RepType or InType this crate does not parse, main contents
    /// that do not match RepMdBits, an inner packet that is not
    /// (Ethernet,) IPv4, UDP/TCP with an INT-MD block after the L4 header,
    /// any INT-MD error (see [`IntMd::parse`]), or bytes left over after
    /// the report ([`ParseError::TrailingData`]).
    pub fn parse(buf: Bytes) -> Result<Self, ParseError> {
        Self::parse_with(buf, &ParseLimits::default())
    }

    /// [`parse`](Self::parse) with explicit limits.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse).
    pub fn parse_with(buf: Bytes, limits: &ParseLimits) -> Result<Self, ParseError> {
        let group = parse_group(&buf)?;
        let frame = frame(&buf, GROUP_HEADER_LEN)?;
        let extra = buf.len().saturating_sub(frame.end);
        if extra != 0 {
            return Err(ParseError::TrailingData { bytes: extra });
        }
        parse_individual(buf, group, frame, limits)
    }

    /// Parses the group header of a UDP payload and returns an iterator
    /// over its individual reports (a payload may coalesce several).
    ///
    /// The iterator yields one `Result` per report. A report whose
    /// contents are malformed yields its error and iteration goes on with
    /// the next one; when a report's length cannot be trusted (truncated
    /// header, length past the buffer) the error is the last item.
    ///
    /// # Errors
    ///
    /// [`ParseError::TruncatedGroupHeader`] or [`ParseError::BadVersion`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use solyx_int::Report;
    ///
    /// // A group header and no reports.
    /// let reports = Report::parse_coalesced(Bytes::from_static(&[0x20, 0, 0, 1, 0, 0, 0, 9]))?;
    /// assert_eq!(reports.group().node_id, 9);
    /// assert_eq!(reports.count(), 0);
    /// # Ok::<(), solyx_int::ParseError>(())
    /// ```
    pub fn parse_coalesced(buf: Bytes) -> Result<CoalescedReports, ParseError> {
        Self::parse_coalesced_with(buf, &ParseLimits::default())
    }

    /// [`parse_coalesced`](Self::parse_coalesced) with explicit limits.
    ///
    /// # Errors
    ///
    /// As [`parse_coalesced`](Self::parse_coalesced).
    pub fn parse_coalesced_with(
        buf: Bytes,
        limits: &ParseLimits,
    ) -> Result<CoalescedReports, ParseError> {
        let group = parse_group(&buf)?;
        Ok(CoalescedReports {
            buf,
            group,
            pos: GROUP_HEADER_LEN,
            limits: *limits,
            done: false,
        })
    }

    /// The group header.
    #[must_use]
    pub fn group(&self) -> &GroupHeader {
        &self.group
    }

    /// The individual report header.
    #[must_use]
    pub fn header(&self) -> &ReportHeader {
        &self.header
    }

    /// InType: [`InType::Ethernet`] or [`InType::Ipv4`].
    #[must_use]
    pub fn in_type(&self) -> InType {
        self.in_type
    }

    /// The report length field, in words after the first header word
    /// ([`OPEN_REPORT_LENGTH`] for "to the end of the payload").
    #[must_use]
    pub fn report_length_words(&self) -> u8 {
        self.report_length
    }

    /// The MD length field, in words.
    #[must_use]
    pub fn md_length_words(&self) -> u8 {
        self.md_length
    }

    /// The main contents of an INT report; `None` for an inner-only one.
    #[must_use]
    pub fn main(&self) -> Option<MainContents<'_>> {
        let m = self.main?;
        Some(MainContents {
            rep_md_bits: m.rep_md_bits,
            domain_specific_id: m.domain_specific_id,
            ds_md_bits: m.ds_md_bits,
            ds_md_status: m.ds_md_status,
            metadata: self.node_metadata.of(&self.buf),
        })
    }

    /// The reporting node's own metadata, typed per RepMdBits; `None` for
    /// an inner-only report.
    #[must_use]
    pub fn node_metadata(&self) -> Option<NodeMetadata<'_>> {
        let m = self.main?;
        Some(NodeMetadata::new(
            self.node_metadata.of(&self.buf),
            Layout::report(m.rep_md_bits),
        ))
    }

    /// The inner Ethernet header, when InType is Ethernet.
    #[must_use]
    pub fn ethernet(&self) -> Option<&EthernetHeader> {
        self.ethernet.as_ref()
    }

    /// The inner IPv4 header.
    #[must_use]
    pub fn ipv4(&self) -> &Ipv4Header {
        &self.ipv4
    }

    /// The inner IPv4 options (IHL × 4 − 20 bytes).
    #[must_use]
    pub fn ipv4_options(&self) -> &[u8] {
        self.ipv4_options.of(&self.buf)
    }

    /// The inner UDP or TCP header.
    #[must_use]
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The inner TCP options; empty for UDP.
    #[must_use]
    pub fn tcp_options(&self) -> &[u8] {
        self.tcp_options.of(&self.buf)
    }

    /// The INT-MD block of the inner packet.
    #[must_use]
    pub fn int_md(&self) -> IntMd<'_> {
        IntMd::from_parts(self.md, self.stack.of(&self.buf))
    }

    /// Hops in the INT stack.
    #[must_use]
    pub fn hop_count(&self) -> usize {
        self.hops().len()
    }

    /// The hops in stack order: newest (nearest the sink) first.
    #[must_use]
    pub fn hops(&self) -> Hops<'_> {
        self.int_md().hops()
    }

    /// The hops in path order: the first hop after the source first.
    pub fn path(&self) -> Rev<Hops<'_>> {
        self.hops().rev()
    }

    /// What follows the INT stack in the report: the start of the
    /// original payload, possibly truncated, plus any padding.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        self.payload.of(&self.buf)
    }

    /// The bytes of this individual report, from its header to its end.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.of(&self.buf)
    }

    /// The whole buffer the report was parsed from.
    #[must_use]
    pub fn buffer(&self) -> &Bytes {
        &self.buf
    }

    /// A builder that writes this report again, byte for byte (except an
    /// inner-only report's MD length, which is ignored on reception and
    /// written as 0).
    #[must_use]
    pub fn to_builder(&self) -> ReportBuilder<'_> {
        ReportBuilder {
            group: self.group,
            header: self.header,
            main: self.main(),
            inner: InnerPacket {
                ethernet: self.ethernet,
                ipv4: self.ipv4,
                ipv4_options: self.ipv4_options(),
                transport: self.transport,
                tcp_options: self.tcp_options(),
                int: self.int_md().to_builder(),
                payload: self.payload(),
            },
        }
    }
}

/// The individual reports of one coalesced telemetry report packet; see
/// [`Report::parse_coalesced`].
#[derive(Clone, Debug)]
pub struct CoalescedReports {
    buf: Bytes,
    group: GroupHeader,
    pos: usize,
    limits: ParseLimits,
    done: bool,
}

impl CoalescedReports {
    /// The group header all the reports share.
    #[must_use]
    pub fn group(&self) -> &GroupHeader {
        &self.group
    }
}

impl Iterator for CoalescedReports {
    type Item = Result<Report, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        match frame(&self.buf, self.pos) {
            Ok(f) => {
                self.pos = f.end;
                Some(parse_individual(
                    self.buf.clone(),
                    self.group,
                    f,
                    &self.limits,
                ))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for CoalescedReports {}

/// Parses the 8-byte group header.
fn parse_group(b: &[u8]) -> Result<GroupHeader, ParseError> {
    let truncated = ParseError::TruncatedGroupHeader {
        available: b.len().min(GROUP_HEADER_LEN),
    };
    let w0 = wire::u32_at(b, 0).ok_or(truncated)?;
    let node_id = wire::u32_at(b, 4).ok_or(truncated)?;
    let version = (w0 >> 28) as u8;
    if version != REPORT_VERSION {
        return Err(ParseError::BadVersion { found: version });
    }
    Ok(GroupHeader {
        hw_id: ((w0 >> 22) & 0x3f) as u8,
        sequence_number: w0 & 0x003f_ffff,
        node_id,
    })
}

/// Where one individual report lies: its first header word at `start`,
/// its contents up to `end`.
#[derive(Clone, Copy, Debug)]
struct Frame {
    start: usize,
    end: usize,
    word: u32,
}

/// Reads the first header word at `start` and finds the report's end.
fn frame(b: &[u8], start: usize) -> Result<Frame, ParseError> {
    let word = wire::u32_at(b, start).ok_or(ParseError::TruncatedReportHeader {
        available: b.len().saturating_sub(start).min(REPORT_HEADER_LEN),
    })?;
    let contents = start + REPORT_HEADER_LEN;
    let available = b.len().saturating_sub(contents);
    let words = (word >> 16) as u8;
    let end = if words == OPEN_REPORT_LENGTH {
        let min = usize::from(OPEN_REPORT_LENGTH) * 4;
        if available < min {
            return Err(ParseError::ReportLengthPastBuffer {
                declared: min,
                available,
            });
        }
        b.len()
    } else {
        let declared = usize::from(words) * 4;
        if declared > available {
            return Err(ParseError::ReportLengthPastBuffer {
                declared,
                available,
            });
        }
        contents + declared
    };
    Ok(Frame { start, end, word })
}

/// Parses the report framed by `f` in `buf`.
fn parse_individual(
    buf: Bytes,
    group: GroupHeader,
    f: Frame,
    limits: &ParseLimits,
) -> Result<Report, ParseError> {
    let b: &[u8] = wire::range(&buf, 0, f.end).unwrap_or(&[]);
    // TODO-completeness: IOAM reports (RepType 2) and TLV, extension-data
    // and IPv6 inner contents are refused; Solyx sinks send none of them.
    let rep_type = match (f.word >> 28) as u8 {
        0 => RepType::InnerOnly,
        1 => RepType::Int,
        found => return Err(ParseError::UnsupportedRepType { found }),
    };
    let in_type = match ((f.word >> 24) & 0xf) as u8 {
        3 => InType::Ethernet,
        4 => InType::Ipv4,
        found @ (0..=2 | 5) => return Err(ParseError::UnsupportedInType { found }),
        found => return Err(ParseError::UnknownInType { found }),
    };
    let flags_byte = (f.word & 0xff) as u8;
    let header = ReportHeader {
        rep_type,
        flags: ReportFlags {
            dropped: flags_byte & 0x80 != 0,
            congested_queue: flags_byte & 0x40 != 0,
            tracked_flow: flags_byte & 0x20 != 0,
            intermediate: flags_byte & 0x10 != 0,
        },
        reserved: flags_byte & 0x0f,
    };
    let md_length = ((f.word >> 8) & 0xff) as u8;
    let contents = f.start + REPORT_HEADER_LEN;

    let (main, node_metadata, inner_start) = match rep_type {
        RepType::InnerOnly => (None, Span::default(), contents),
        RepType::Int => {
            let md_len = usize::from(md_length) * 4;
            let needed = MAIN_FIXED_LEN + md_len;
            let available = f.end.saturating_sub(contents);
            if needed > available {
                return Err(ParseError::MdLengthPastReport { needed, available });
            }
            let w1 = wire::u32_at(b, contents)
                .ok_or(ParseError::MdLengthPastReport { needed, available })?;
            let w2 = wire::u32_at(b, contents + 4)
                .ok_or(ParseError::MdLengthPastReport { needed, available })?;
            let rep_md_bits = RepMdBits::from_bits((w1 >> 16) as u16);
            let unknown = rep_md_bits.unknown_bits();
            if unknown != 0 {
                return Err(ParseError::UnknownRepMdBits { bits: unknown });
            }
            let ds_md_bits = (w2 >> 16) as u16;
            let baseline = rep_md_bits.metadata_len();
            if md_len < baseline || (ds_md_bits == 0 && md_len != baseline) {
                return Err(ParseError::MdLengthMismatch {
                    md_len,
                    needed: baseline,
                });
            }
            let main = MainFixed {
                rep_md_bits,
                domain_specific_id: (w1 & 0xffff) as u16,
                ds_md_bits,
                ds_md_status: (w2 & 0xffff) as u16,
            };
            let md_start = contents + MAIN_FIXED_LEN;
            let span = Span {
                start: md_start,
                end: md_start + md_len,
            };
            (Some(main), span, span.end)
        }
    };

    let inner = parse_inner(b, inner_start, in_type, limits)?;
    Ok(Report {
        group,
        header,
        in_type,
        report_length: (f.word >> 16) as u8,
        md_length,
        main,
        node_metadata,
        ethernet: inner.ethernet,
        ipv4: inner.ipv4,
        ipv4_options: inner.ipv4_options,
        transport: inner.transport,
        tcp_options: inner.tcp_options,
        md: inner.md,
        stack: inner.stack,
        payload: Span {
            start: inner.int_end,
            end: f.end,
        },
        bytes: Span {
            start: f.start,
            end: f.end,
        },
        buf,
    })
}

/// The headers of an inner packet, as offsets into the report buffer.
struct Inner {
    ethernet: Option<EthernetHeader>,
    ipv4: Ipv4Header,
    ipv4_options: Span,
    transport: Transport,
    tcp_options: Span,
    md: MdParts,
    stack: Span,
    int_end: usize,
}

/// Parses the inner packet starting at `start`; `b` ends where the report
/// ends.
fn parse_inner(
    b: &[u8],
    start: usize,
    in_type: InType,
    limits: &ParseLimits,
) -> Result<Inner, ParseError> {
    let mut off = start;
    let ethernet = if in_type == InType::Ethernet {
        let dst = wire::mac_at(b, off).ok_or(ParseError::TruncatedEthernet)?;
        let src = wire::mac_at(b, off + 6).ok_or(ParseError::TruncatedEthernet)?;
        let ether_type = wire::u16_at(b, off + 12).ok_or(ParseError::TruncatedEthernet)?;
        if ether_type != ETHERTYPE_IPV4 {
            // TODO-completeness: 802.1Q tags and IPv6 inner packets are
            // rejected; the fabric carries untagged IPv4 today.
            return Err(ParseError::UnsupportedEtherType { found: ether_type });
        }
        off += ETHERNET_LEN;
        Some(EthernetHeader { dst, src })
    } else {
        None
    };

    let ip = off;
    let w0 = wire::u32_at(b, ip).ok_or(ParseError::TruncatedIpv4)?;
    let w1 = wire::u32_at(b, ip + 4).ok_or(ParseError::TruncatedIpv4)?;
    let w2 = wire::u32_at(b, ip + 8).ok_or(ParseError::TruncatedIpv4)?;
    let src = wire::u32_at(b, ip + 12).ok_or(ParseError::TruncatedIpv4)?;
    let dst = wire::u32_at(b, ip + 16).ok_or(ParseError::TruncatedIpv4)?;
    let version = (w0 >> 28) as u8;
    let ihl = ((w0 >> 24) & 0xf) as u8;
    if version != 4 || ihl < 5 {
        return Err(ParseError::BadIpv4Header { version, ihl });
    }
    let ip_hdr_len = usize::from(ihl) * 4;
    if ip + ip_hdr_len > b.len() {
        return Err(ParseError::TruncatedIpv4);
    }
    let frag_offset = (w1 & 0x1fff) as u16;
    if frag_offset != 0 {
        return Err(ParseError::Ipv4Fragment {
            offset: frag_offset,
        });
    }
    let protocol = ((w2 >> 16) & 0xff) as u8;
    let tos = ((w0 >> 16) & 0xff) as u8;
    let ipv4 = Ipv4Header {
        dscp: tos >> 2,
        ecn: tos & 0x3,
        total_length: (w0 & 0xffff) as u16,
        identification: (w1 >> 16) as u16,
        flags: ((w1 >> 13) & 0x7) as u8,
        ttl: (w2 >> 24) as u8,
        checksum: (w2 & 0xffff) as u16,
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
    };
    let ipv4_options = Span {
        start: ip + IPV4_MIN_LEN,
        end: ip + ip_hdr_len,
    };

    let l4 = ip + ip_hdr_len;
    let (transport, tcp_options, l4_end) = match protocol {
        IP_PROTO_UDP => {
            let w0 = wire::u32_at(b, l4).ok_or(ParseError::TruncatedL4)?;
            let w1 = wire::u32_at(b, l4 + 4).ok_or(ParseError::TruncatedL4)?;
            let udp = UdpHeader {
                src_port: (w0 >> 16) as u16,
                dst_port: (w0 & 0xffff) as u16,
                length: (w1 >> 16) as u16,
                checksum: (w1 & 0xffff) as u16,
            };
            (Transport::Udp(udp), Span::default(), l4 + UDP_LEN)
        }
        IP_PROTO_TCP => {
            let truncated = ParseError::TruncatedL4;
            let w0 = wire::u32_at(b, l4).ok_or(truncated)?;
            let seq = wire::u32_at(b, l4 + 4).ok_or(truncated)?;
            let ack = wire::u32_at(b, l4 + 8).ok_or(truncated)?;
            let w3 = wire::u32_at(b, l4 + 12).ok_or(truncated)?;
            let w4 = wire::u32_at(b, l4 + 16).ok_or(truncated)?;
            let data_offset = (w3 >> 28) as u8;
            if data_offset < 5 {
                return Err(ParseError::BadTcpDataOffset { found: data_offset });
            }
            let hdr_len = usize::from(data_offset) * 4;
            if l4 + hdr_len > b.len() {
                return Err(truncated);
            }
            let tcp = TcpHeader {
                src_port: (w0 >> 16) as u16,
                dst_port: (w0 & 0xffff) as u16,
                seq,
                ack,
                reserved: ((w3 >> 24) & 0xf) as u8,
                flags: ((w3 >> 16) & 0xff) as u8,
                window: (w3 & 0xffff) as u16,
                checksum: (w4 >> 16) as u16,
                urgent_ptr: (w4 & 0xffff) as u16,
            };
            let options = Span {
                start: l4 + TCP_MIN_LEN,
                end: l4 + hdr_len,
            };
            (Transport::Tcp(tcp), options, l4 + hdr_len)
        }
        found => return Err(ParseError::UnsupportedIpProtocol { found }),
    };

    let rest = b.get(l4_end..).unwrap_or(&[]);
    let (md, stack_start, stack_end) = md::parse_parts(rest, limits)?;
    let int_end = l4_end + stack_end;

    let needed = int_end - ip;
    if usize::from(ipv4.total_length) < needed {
        return Err(ParseError::InnerLengthTooShort {
            what: "IPv4 total",
            declared: ipv4.total_length,
            needed,
        });
    }
    if let Transport::Udp(udp) = transport {
        let needed = int_end - l4;
        if usize::from(udp.length) < needed {
            return Err(ParseError::InnerLengthTooShort {
                what: "UDP",
                declared: udp.length,
                needed,
            });
        }
    }

    Ok(Inner {
        ethernet,
        ipv4,
        ipv4_options,
        transport,
        tcp_options,
        md,
        stack: Span {
            start: l4_end + stack_start,
            end: l4_end + stack_end,
        },
        int_end,
    })
}
