//! Encoding Telemetry Reports: [`ReportBuilder`] writes a group header and
//! an individual report, [`InnerPacket`] the packet inside it, into a
//! [`BytesMut`].
//!
//! Derived fields are computed, never taken from the caller: report length,
//! MD length, InType, IPv4 IHL and protocol, TCP data offset, INT shim
//! length. Everything else is written as given, so that
//! `Report::parse(bytes)?.to_builder().write(..)` gives back `bytes`.
//!
//! Every builder checks all its fields before writing: on error nothing
//! is appended to the output.

use bytes::{BufMut, BytesMut};

use crate::error::BuildError;
use crate::md::IntMdBuilder;
use crate::report::{
    EthernetHeader, GroupHeader, InType, Ipv4Header, MainContents, RepType, ReportFlags,
    ReportHeader, TcpHeader, Transport, UdpHeader, ETHERNET_LEN, ETHERTYPE_IPV4, GROUP_HEADER_LEN,
    IPV4_MIN_LEN, IP_PROTO_TCP, IP_PROTO_UDP, MAIN_FIXED_LEN, OPEN_REPORT_LENGTH,
    REPORT_HEADER_LEN, REPORT_VERSION, TCP_MIN_LEN, UDP_LEN,
};

/// Most bytes of IPv4 or TCP options.
const MAX_OPTIONS: usize = 40;

fn check(field: &'static str, value: u64, max: u64) -> Result<(), BuildError> {
    if value > max {
        Err(BuildError::FieldOutOfRange { field, value, max })
    } else {
        Ok(())
    }
}

fn check_options(what: &'static str, options: &[u8]) -> Result<(), BuildError> {
    if options.len() > MAX_OPTIONS {
        return Err(BuildError::TooLong {
            what,
            len: options.len(),
        });
    }
    if options.len() % 4 != 0 {
        return Err(BuildError::Unaligned {
            what,
            len: options.len(),
        });
    }
    Ok(())
}

impl GroupHeader {
    /// Bytes [`write`](Self::write) appends.
    pub const ENCODED_LEN: usize = GROUP_HEADER_LEN;

    fn validate(&self) -> Result<(), BuildError> {
        check("hw_id", self.hw_id.into(), 0x3f)?;
        check("sequence number", self.sequence_number.into(), 0x003f_ffff)
    }

    /// Appends the group header (version 2) to `out`; individual reports
    /// follow it ([`ReportBuilder::write_individual`]).
    ///
    /// # Errors
    ///
    /// [`BuildError::FieldOutOfRange`] when `hw_id` exceeds 6 bits or the
    /// sequence number 22 bits.
    pub fn write(&self, out: &mut BytesMut) -> Result<usize, BuildError> {
        self.validate()?;
        out.put_u32(
            (u32::from(REPORT_VERSION) << 28)
                | (u32::from(self.hw_id) << 22)
                | self.sequence_number,
        );
        out.put_u32(self.node_id);
        Ok(Self::ENCODED_LEN)
    }
}

/// The packet an individual report carries: (Ethernet,) IPv4, UDP/TCP, the
/// INT-MD block and what follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnerPacket<'a> {
    /// The Ethernet header; present makes InType Ethernet, absent IPv4.
    pub ethernet: Option<EthernetHeader>,
    /// The IPv4 header.
    pub ipv4: Ipv4Header,
    /// IPv4 options, a whole number of words, at most 40 bytes.
    pub ipv4_options: &'a [u8],
    /// The UDP or TCP header.
    pub transport: Transport,
    /// TCP options, a whole number of words, at most 40 bytes; must be
    /// empty for UDP.
    pub tcp_options: &'a [u8],
    /// The INT-MD block after the L4 header (and TCP options).
    pub int: IntMdBuilder<'a>,
    /// What follows the INT block: the start of the original payload.
    pub payload: &'a [u8],
}

impl<'a> InnerPacket<'a> {
    /// An IPv4/UDP packet with a default IPv4 header (addresses and
    /// lengths to fill in).
    #[must_use]
    pub fn udp(udp: UdpHeader, int: IntMdBuilder<'a>, payload: &'a [u8]) -> Self {
        Self {
            ethernet: None,
            ipv4: Ipv4Header::default(),
            ipv4_options: &[],
            transport: Transport::Udp(udp),
            tcp_options: &[],
            int,
            payload,
        }
    }

    /// An IPv4/TCP packet with a default IPv4 header.
    #[must_use]
    pub fn tcp(tcp: TcpHeader, int: IntMdBuilder<'a>, payload: &'a [u8]) -> Self {
        Self {
            transport: Transport::Tcp(tcp),
            ..Self::udp(UdpHeader::default(), int, payload)
        }
    }

    /// InType of a report carrying this packet.
    #[must_use]
    pub fn in_type(&self) -> InType {
        if self.ethernet.is_some() {
            InType::Ethernet
        } else {
            InType::Ipv4
        }
    }

    /// Sets the IPv4 total length (and UDP length) to what this packet
    /// holds, as for a packet the report carries whole.
    ///
    /// # Errors
    ///
    /// As [`encoded_len`](Self::encoded_len), or
    /// [`BuildError::TooLong`] when the packet exceeds 65535 bytes.
    pub fn fill_lengths(&mut self) -> Result<(), BuildError> {
        let len = self.encoded_len_unchecked_lengths()?;
        let ip_len = len - self.ethernet.map_or(0, |_| ETHERNET_LEN);
        let total = u16::try_from(ip_len).map_err(|_| BuildError::TooLong {
            what: "inner IPv4 packet",
            len: ip_len,
        })?;
        self.ipv4.total_length = total;
        let l4_len = ip_len - IPV4_MIN_LEN - self.ipv4_options.len();
        if let Transport::Udp(udp) = &mut self.transport {
            udp.length = u16::try_from(l4_len).unwrap_or(u16::MAX);
        }
        Ok(())
    }

    /// Checks every field and returns the bytes [`write`](Self::write)
    /// would write.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when a field is out of range, options are too long or
    /// unaligned (or TCP options are given for UDP), the INT block is
    /// invalid (see [`IntMdBuilder::encoded_len`]), or the IPv4 total length
    /// or UDP length is shorter than the headers and INT block.
    pub fn encoded_len(&self) -> Result<usize, BuildError> {
        let len = self.encoded_len_unchecked_lengths()?;
        let int_end = len - self.payload.len();
        let ip = self.ethernet.map_or(0, |_| ETHERNET_LEN);
        let needed = int_end - ip;
        if usize::from(self.ipv4.total_length) < needed {
            return Err(BuildError::InnerLengthTooShort {
                what: "IPv4 total",
                declared: self.ipv4.total_length,
                needed,
            });
        }
        if let Transport::Udp(udp) = self.transport {
            let needed = needed - IPV4_MIN_LEN - self.ipv4_options.len();
            if usize::from(udp.length) < needed {
                return Err(BuildError::InnerLengthTooShort {
                    what: "UDP",
                    declared: udp.length,
                    needed,
                });
            }
        }
        Ok(len)
    }

    /// [`encoded_len`](Self::encoded_len) without the length-field checks.
    fn encoded_len_unchecked_lengths(&self) -> Result<usize, BuildError> {
        let ip = &self.ipv4;
        check("IPv4 DSCP", ip.dscp.into(), 0x3f)?;
        check("IPv4 ECN", ip.ecn.into(), 0x3)?;
        check("IPv4 flags", ip.flags.into(), 0x7)?;
        check_options("IPv4 options", self.ipv4_options)?;
        let l4 = match self.transport {
            Transport::Udp(_) => {
                if !self.tcp_options.is_empty() {
                    return Err(BuildError::TooLong {
                        what: "TCP options of a UDP packet",
                        len: self.tcp_options.len(),
                    });
                }
                UDP_LEN
            }
            Transport::Tcp(tcp) => {
                check("TCP reserved", tcp.reserved.into(), 0xf)?;
                check_options("TCP options", self.tcp_options)?;
                TCP_MIN_LEN + self.tcp_options.len()
            }
        };
        let int = self.int.encoded_len()?;
        Ok(self.ethernet.map_or(0, |_| ETHERNET_LEN)
            + IPV4_MIN_LEN
            + self.ipv4_options.len()
            + l4
            + int
            + self.payload.len())
    }

    /// Appends the packet to `out` and returns the bytes written.
    ///
    /// # Errors
    ///
    /// As [`encoded_len`](Self::encoded_len); nothing is written then.
    pub fn write(&self, out: &mut BytesMut) -> Result<usize, BuildError> {
        let len = self.encoded_len()?;
        out.reserve(len);
        self.write_checked(out);
        Ok(len)
    }

    /// Writes a packet that [`encoded_len`](Self::encoded_len) accepted.
    fn write_checked(&self, out: &mut BytesMut) {
        if let Some(eth) = &self.ethernet {
            out.put_slice(&eth.dst);
            out.put_slice(&eth.src);
            out.put_u16(ETHERTYPE_IPV4);
        }
        let ip = &self.ipv4;
        let ihl = ((IPV4_MIN_LEN + self.ipv4_options.len()) / 4) as u8;
        let protocol = match self.transport {
            Transport::Udp(_) => IP_PROTO_UDP,
            Transport::Tcp(_) => IP_PROTO_TCP,
        };
        out.put_u8(0x40 | ihl);
        out.put_u8((ip.dscp << 2) | ip.ecn);
        out.put_u16(ip.total_length);
        out.put_u16(ip.identification);
        out.put_u16(u16::from(ip.flags) << 13);
        out.put_u8(ip.ttl);
        out.put_u8(protocol);
        out.put_u16(ip.checksum);
        out.put_slice(&ip.src.octets());
        out.put_slice(&ip.dst.octets());
        out.put_slice(self.ipv4_options);
        match self.transport {
            Transport::Udp(udp) => {
                out.put_u16(udp.src_port);
                out.put_u16(udp.dst_port);
                out.put_u16(udp.length);
                out.put_u16(udp.checksum);
            }
            Transport::Tcp(tcp) => {
                let data_offset = ((TCP_MIN_LEN + self.tcp_options.len()) / 4) as u8;
                out.put_u16(tcp.src_port);
                out.put_u16(tcp.dst_port);
                out.put_u32(tcp.seq);
                out.put_u32(tcp.ack);
                out.put_u8((data_offset << 4) | tcp.reserved);
                out.put_u8(tcp.flags);
                out.put_u16(tcp.window);
                out.put_u16(tcp.checksum);
                out.put_u16(tcp.urgent_ptr);
                out.put_slice(self.tcp_options);
            }
        }
        // The INT block was checked by encoded_len.
        if let Ok(len) = self.int.encoded_len() {
            self.int.write_checked(out, len);
        }
        out.put_slice(self.payload);
    }
}

/// Writes a telemetry report: a group header and one individual report
/// (or, with [`write_individual`](Self::write_individual), one report of a
/// coalesced packet).
///
/// # Examples
///
/// A host sink exporting what it extracted from a probe, with its own
/// hop latency in the report's node metadata:
///
/// ```
/// use bytes::BytesMut;
/// use solyx_int::{
///     GroupHeader, HopMetadata, Instructions, InnerPacket, IntMdBuilder, MainContents, RepMdBits,
///     Report, ReportBuilder, Stack, UdpHeader,
/// };
///
/// let hops = [HopMetadata { switch_id: Some(5), ..Default::default() }];
/// let mut inner = InnerPacket::udp(
///     UdpHeader { src_port: 1, dst_port: 2, ..Default::default() },
///     IntMdBuilder::new(Instructions::SWITCH_ID, 3, Stack::Hops(&hops)),
///     &[],
/// );
/// inner.fill_lengths()?;
/// let mut report = ReportBuilder::new(GroupHeader { node_id: 9, ..Default::default() }, inner);
/// let latency = 1500u32.to_be_bytes();
/// report.main = Some(MainContents {
///     rep_md_bits: RepMdBits::HOP_LATENCY,
///     metadata: &latency,
///     ..Default::default()
/// });
/// let mut buf = BytesMut::new();
/// report.write(&mut buf)?;
///
/// let parsed = Report::parse(buf.freeze())?;
/// assert_eq!(parsed.node_metadata().and_then(|m| m.hop_latency()), Some(1500));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBuilder<'a> {
    /// The group header.
    pub group: GroupHeader,
    /// RepType, flags and reserved bits.
    pub header: ReportHeader,
    /// Main contents: `Some` exactly when RepType is INT.
    pub main: Option<MainContents<'a>>,
    /// The packet the report carries.
    pub inner: InnerPacket<'a>,
}

/// The sizes of one encoded individual report.
struct Sizes {
    /// Header word plus contents plus padding.
    total: usize,
    /// The report length field.
    report_length: u8,
    /// The MD length field.
    md_length: u8,
    /// Zero bytes after the inner packet.
    pad: usize,
}

impl<'a> ReportBuilder<'a> {
    /// An INT report (RepType 1, F set: a tracked flow) with empty main
    /// contents, carrying `inner`.
    #[must_use]
    pub fn new(group: GroupHeader, inner: InnerPacket<'a>) -> Self {
        Self {
            group,
            header: ReportHeader {
                rep_type: RepType::Int,
                flags: ReportFlags {
                    tracked_flow: true,
                    ..ReportFlags::default()
                },
                reserved: 0,
            },
            main: Some(MainContents::default()),
            inner,
        }
    }

    fn sizes(&self, last: bool) -> Result<Sizes, BuildError> {
        check("report reserved bits", self.header.reserved.into(), 0xf)?;
        let main_len = match (self.header.rep_type, &self.main) {
            (RepType::Int, Some(m)) => {
                let unknown = m.rep_md_bits.unknown_bits();
                if unknown != 0 {
                    return Err(BuildError::UnknownBits {
                        what: "RepMdBits",
                        bits: unknown,
                    });
                }
                let len = m.metadata.len();
                let needed = m.rep_md_bits.metadata_len();
                if len % 4 != 0 || len < needed || (m.ds_md_bits == 0 && len != needed) {
                    return Err(BuildError::ReportMetadataMismatch { len, needed });
                }
                if len > 255 * 4 {
                    return Err(BuildError::TooLong {
                        what: "report metadata",
                        len,
                    });
                }
                MAIN_FIXED_LEN + len
            }
            (RepType::InnerOnly, None) => 0,
            (rep_type, _) => {
                return Err(BuildError::MainContentsMismatch {
                    rep_type: rep_type as u8,
                })
            }
        };
        let contents = main_len + self.inner.encoded_len()?;
        let words = contents.div_ceil(4);
        let open_min = usize::from(OPEN_REPORT_LENGTH) * 4;
        let (report_length, pad) = if words < usize::from(OPEN_REPORT_LENGTH) {
            (words as u8, words * 4 - contents)
        } else if last {
            // Open length: no padding needed, but at least 0xFF words.
            (OPEN_REPORT_LENGTH, open_min.saturating_sub(contents))
        } else {
            return Err(BuildError::TooLong {
                what: "individual report before another",
                len: contents,
            });
        };
        Ok(Sizes {
            total: REPORT_HEADER_LEN + contents + pad,
            report_length,
            md_length: self.main.map_or(0, |m| (m.metadata.len() / 4) as u8),
            pad,
        })
    }

    /// Checks every field and returns the bytes [`write`](Self::write)
    /// would write.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when a header field is out of range, main contents do
    /// not match RepType or RepMdBits, or the inner packet is invalid (see
    /// [`InnerPacket::encoded_len`]).
    pub fn encoded_len(&self) -> Result<usize, BuildError> {
        self.group.validate()?;
        Ok(GroupHeader::ENCODED_LEN + self.sizes(true)?.total)
    }

    /// Appends the group header and the individual report to `out` and
    /// returns the bytes written.
    ///
    /// # Errors
    ///
    /// As [`encoded_len`](Self::encoded_len); nothing is written then.
    pub fn write(&self, out: &mut BytesMut) -> Result<usize, BuildError> {
        self.group.validate()?;
        let sizes = self.sizes(true)?;
        out.reserve(GroupHeader::ENCODED_LEN + sizes.total);
        self.group.write(out)?;
        self.write_sizes(out, &sizes);
        Ok(GroupHeader::ENCODED_LEN + sizes.total)
    }

    /// Appends only the individual report (no group header: write that
    /// once with [`GroupHeader::write`]) for a coalesced packet. Only the
    /// `last` report of a packet may use the open length (0xFF words or
    /// more).
    ///
    /// # Errors
    ///
    /// As [`encoded_len`](Self::encoded_len), and [`BuildError::TooLong`]
    /// for a report of 0xFF words or more that is not `last`.
    pub fn write_individual(&self, out: &mut BytesMut, last: bool) -> Result<usize, BuildError> {
        let sizes = self.sizes(last)?;
        out.reserve(sizes.total);
        self.write_sizes(out, &sizes);
        Ok(sizes.total)
    }

    fn write_sizes(&self, out: &mut BytesMut, sizes: &Sizes) {
        let h = &self.header;
        let f = h.flags;
        let flags = (u8::from(f.dropped) << 7)
            | (u8::from(f.congested_queue) << 6)
            | (u8::from(f.tracked_flow) << 5)
            | (u8::from(f.intermediate) << 4)
            | h.reserved;
        out.put_u8(((h.rep_type as u8) << 4) | self.inner.in_type() as u8);
        out.put_u8(sizes.report_length);
        out.put_u8(sizes.md_length);
        out.put_u8(flags);
        if let Some(m) = &self.main {
            out.put_u16(m.rep_md_bits.bits());
            out.put_u16(m.domain_specific_id);
            out.put_u16(m.ds_md_bits);
            out.put_u16(m.ds_md_status);
            out.put_slice(m.metadata);
        }
        self.inner.write_checked(out);
        out.put_bytes(0, sizes.pad);
    }
}
