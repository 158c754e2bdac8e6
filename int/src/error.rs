//! Why a report or an INT-MD block could not be parsed ([`ParseError`]) or
//! built ([`BuildError`]).
//!
//! Every parse failure has a stable snake_case label, [`ParseError::reason`],
//! meant for a metric label (`solyx_int_reports_rejected_total{reason=...}`);
//! [`ParseError::REASONS`] lists them all so that a collector can register
//! every series up front.

use thiserror::Error;

/// Why bytes are not a well-formed Telemetry Report or INT-MD block.
///
/// Each variant names one check; the fields say what was found. Lengths
/// are in bytes unless the field name says words (4 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer than the 8 bytes of the telemetry report group header.
    #[error("truncated group header: {available} of 8 bytes")]
    TruncatedGroupHeader {
        /// Bytes there were.
        available: usize,
    },
    /// The group header's version is not 2 (Telemetry Report v2.0).
    #[error("group header version {found}, expected 2")]
    BadVersion {
        /// The version found.
        found: u8,
    },
    /// Fewer than the 4 bytes of an individual report header.
    #[error("truncated individual report header: {available} of 4 bytes")]
    TruncatedReportHeader {
        /// Bytes there were.
        available: usize,
    },
    /// RepType other than 0 (inner only) and 1 (INT), e.g. 2 (IOAM).
    #[error("unsupported RepType {found}")]
    UnsupportedRepType {
        /// The RepType found.
        found: u8,
    },
    /// InType reserved by the specification (6-15).
    #[error("unknown InType {found}")]
    UnknownInType {
        /// The InType found.
        found: u8,
    },
    /// InType defined by the specification but not carrying what this
    /// crate parses (0 none, 1 TLV, 2 domain-specific extension data,
    /// 5 IPv6).
    #[error("unsupported InType {found}")]
    UnsupportedInType {
        /// The InType found.
        found: u8,
    },
    /// The report length runs past the end of the buffer (or, for the
    /// open length 0xFF, the rest of the buffer is shorter than 0xFF words).
    #[error("report length {declared} bytes past the buffer ({available} bytes left)")]
    ReportLengthPastBuffer {
        /// Bytes the report length declares after the first header word.
        declared: usize,
        /// Bytes left in the buffer after the first header word.
        available: usize,
    },
    /// The fixed main contents (8 bytes) and the MD length do not fit in
    /// the report length.
    #[error("main contents of {needed} bytes past the report's {available} bytes")]
    MdLengthPastReport {
        /// Bytes the main contents need.
        needed: usize,
        /// Bytes the report length leaves for them.
        available: usize,
    },
    /// RepMdBits has a bit this crate does not know (bit 0, bits 9-14).
    #[error("unknown RepMdBits {bits:#06x}")]
    UnknownRepMdBits {
        /// The unknown bits.
        bits: u16,
    },
    /// The MD length does not match the metadata RepMdBits asks for.
    #[error("MD length {md_len} bytes, RepMdBits need {needed}")]
    MdLengthMismatch {
        /// Bytes the MD length declares.
        md_len: usize,
        /// Bytes RepMdBits ask for.
        needed: usize,
    },
    /// Bytes follow the report (a coalesced report given to
    /// [`Report::parse`](crate::Report::parse); use
    /// [`Report::parse_coalesced`](crate::Report::parse_coalesced)).
    #[error("{bytes} bytes after the report")]
    TrailingData {
        /// Bytes left over.
        bytes: usize,
    },
    /// The inner contents end inside the Ethernet header.
    #[error("truncated inner Ethernet header")]
    TruncatedEthernet,
    /// The inner Ethernet frame does not carry IPv4.
    #[error("unsupported inner EtherType {found:#06x}")]
    UnsupportedEtherType {
        /// The EtherType found.
        found: u16,
    },
    /// The inner contents end inside the IPv4 header.
    #[error("truncated inner IPv4 header")]
    TruncatedIpv4,
    /// Inner IPv4 version is not 4, or IHL is below 5.
    #[error("bad inner IPv4 header: version {version}, IHL {ihl}")]
    BadIpv4Header {
        /// The version found.
        version: u8,
        /// The IHL found.
        ihl: u8,
    },
    /// The inner packet is a non-first IPv4 fragment: no L4 header.
    #[error("inner IPv4 fragment at offset {offset}")]
    Ipv4Fragment {
        /// Fragment offset, in 8-byte units.
        offset: u16,
    },
    /// The inner packet is neither UDP nor TCP.
    #[error("unsupported inner IP protocol {found}")]
    UnsupportedIpProtocol {
        /// The protocol found.
        found: u8,
    },
    /// The inner contents end inside the UDP or TCP header.
    #[error("truncated inner UDP/TCP header")]
    TruncatedL4,
    /// Inner TCP data offset below 5.
    #[error("bad inner TCP data offset {found}")]
    BadTcpDataOffset {
        /// The data offset found.
        found: u8,
    },
    /// The IPv4 total length or UDP length of the inner packet is too short
    /// to hold the INT headers found after its L4 header.
    #[error("inner {what} length {declared} shorter than its headers ({needed})")]
    InnerLengthTooShort {
        /// `"IPv4 total"` or `"UDP"`.
        what: &'static str,
        /// The length field.
        declared: u16,
        /// What the headers up to the end of the INT stack take.
        needed: usize,
    },
    /// The bytes end inside the INT shim header.
    #[error("truncated INT shim header")]
    TruncatedIntShim,
    /// The INT shim type is not 1 (INT-MD).
    #[error("unsupported INT type {found}")]
    UnsupportedIntType {
        /// The type found.
        found: u8,
    },
    /// The shim length is below 3 words, the INT-MD header alone.
    #[error("INT shim length {words} words, below the INT-MD header's 3")]
    ShimLengthTooShort {
        /// The shim length found.
        words: u8,
    },
    /// The bytes end inside the INT-MD metadata header.
    #[error("truncated INT-MD metadata header")]
    TruncatedIntMdHeader,
    /// The shim length runs past the end of the bytes.
    #[error("INT shim length {declared} bytes past the {available} bytes there")]
    ShimLengthPastBuffer {
        /// Bytes the shim length covers (without the shim).
        declared: usize,
        /// Bytes there are after the shim.
        available: usize,
    },
    /// The INT-MD header version is not 2.
    #[error("INT-MD version {found}, expected 2")]
    BadIntVersion {
        /// The version found.
        found: u8,
    },
    /// The instruction bitmap has reserved bits (9-14) set.
    #[error("unknown INT instruction bits {bits:#06x}")]
    UnknownInstructionBits {
        /// The unknown bits.
        bits: u16,
    },
    /// Hop ML is smaller than the metadata the instruction bitmap asks for.
    #[error("hop ML {hop_ml} words, instructions need {needed}")]
    HopMlTooSmall {
        /// Hop ML found.
        hop_ml: u8,
        /// Words the instruction bitmap asks for.
        needed: usize,
    },
    /// The metadata stack is not a whole number of hops of hop ML words.
    #[error("INT stack of {stack_words} words is not a whole number of {hop_ml}-word hops")]
    StackLengthMismatch {
        /// Words in the stack (shim length minus 3).
        stack_words: usize,
        /// Hop ML.
        hop_ml: u8,
    },
    /// More hops than the parser's limit.
    #[error("{hops} hops, limit {limit}")]
    TooManyHops {
        /// Hops in the stack.
        hops: usize,
        /// The limit in force.
        limit: usize,
    },
}

impl ParseError {
    /// Every label [`reason`](Self::reason) can return, in declaration
    /// order.
    pub const REASONS: &'static [&'static str] = &[
        "truncated_group_header",
        "bad_version",
        "truncated_report_header",
        "unsupported_rep_type",
        "unknown_in_type",
        "unsupported_in_type",
        "report_length_past_buffer",
        "md_length_past_report",
        "unknown_rep_md_bits",
        "md_length_mismatch",
        "trailing_data",
        "truncated_ethernet",
        "unsupported_ether_type",
        "truncated_ipv4",
        "bad_ipv4_header",
        "ipv4_fragment",
        "unsupported_ip_protocol",
        "truncated_l4",
        "bad_tcp_data_offset",
        "inner_length_too_short",
        "truncated_int_shim",
        "unsupported_int_type",
        "shim_length_too_short",
        "truncated_int_md_header",
        "shim_length_past_buffer",
        "bad_int_version",
        "unknown_instruction_bits",
        "hop_ml_too_small",
        "stack_length_mismatch",
        "too_many_hops",
    ];

    /// A stable snake_case label for the check that failed, fit for a
    /// Prometheus label value.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use solyx_int::{ParseError, Report};
    ///
    /// let err = Report::parse(Bytes::from_static(&[0x20, 0, 0])).unwrap_err();
    /// assert_eq!(err.reason(), "truncated_group_header");
    /// assert!(ParseError::REASONS.contains(&err.reason()));
    /// ```
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::TruncatedGroupHeader { .. } => "truncated_group_header",
            Self::BadVersion { .. } => "bad_version",
            Self::TruncatedReportHeader { .. } => "truncated_report_header",
            Self::UnsupportedRepType { .. } => "unsupported_rep_type",
            Self::UnknownInType { .. } => "unknown_in_type",
            Self::UnsupportedInType { .. } => "unsupported_in_type",
            Self::ReportLengthPastBuffer { .. } => "report_length_past_buffer",
            Self::MdLengthPastReport { .. } => "md_length_past_report",
            Self::UnknownRepMdBits { .. } => "unknown_rep_md_bits",
            Self::MdLengthMismatch { .. } => "md_length_mismatch",
            Self::TrailingData { .. } => "trailing_data",
            Self::TruncatedEthernet => "truncated_ethernet",
            Self::UnsupportedEtherType { .. } => "unsupported_ether_type",
            Self::TruncatedIpv4 => "truncated_ipv4",
            Self::BadIpv4Header { .. } => "bad_ipv4_header",
            Self::Ipv4Fragment { .. } => "ipv4_fragment",
            Self::UnsupportedIpProtocol { .. } => "unsupported_ip_protocol",
            Self::TruncatedL4 => "truncated_l4",
            Self::BadTcpDataOffset { .. } => "bad_tcp_data_offset",
            Self::InnerLengthTooShort { .. } => "inner_length_too_short",
            Self::TruncatedIntShim => "truncated_int_shim",
            Self::UnsupportedIntType { .. } => "unsupported_int_type",
            Self::ShimLengthTooShort { .. } => "shim_length_too_short",
            Self::TruncatedIntMdHeader => "truncated_int_md_header",
            Self::ShimLengthPastBuffer { .. } => "shim_length_past_buffer",
            Self::BadIntVersion { .. } => "bad_int_version",
            Self::UnknownInstructionBits { .. } => "unknown_instruction_bits",
            Self::HopMlTooSmall { .. } => "hop_ml_too_small",
            Self::StackLengthMismatch { .. } => "stack_length_mismatch",
            Self::TooManyHops { .. } => "too_many_hops",
        }
    }
}

/// Why a builder could not encode what it was given. Nothing is written to
/// the output when a build fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A value does not fit its field.
    #[error("{field} = {value} does not fit its field (max {max})")]
    FieldOutOfRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest value the field holds.
        max: u64,
    },
    /// A bitmap has bits this crate cannot encode.
    #[error("{what} has unknown bits {bits:#06x}")]
    UnknownBits {
        /// `"instructions"` or `"RepMdBits"`.
        what: &'static str,
        /// The unknown bits.
        bits: u16,
    },
    /// A hop carries a value the instruction bitmap does not ask for.
    #[error("hop {hop} has {field}, which the instructions do not ask for")]
    MetadataNotRequested {
        /// Index of the hop in stack order.
        hop: usize,
        /// The field.
        field: &'static str,
    },
    /// Hop ML does not match the metadata typed hops carry (typed hops
    /// carry no domain-specific metadata: give a raw stack for that).
    #[error("hop ML {hop_ml} words, typed hops take {needed}")]
    HopMlMismatch {
        /// Hop ML given.
        hop_ml: u8,
        /// Words the instructions ask for.
        needed: usize,
    },
    /// Typed hops given with no instruction set: a hop of no metadata
    /// cannot be told apart from no hop on the wire.
    #[error("{hops} typed hops but no instructions")]
    EmptyHops {
        /// Hops given.
        hops: usize,
    },
    /// A raw stack is not a whole number of hops, or hop ML is too small
    /// for the instructions.
    #[error("raw stack of {len} bytes does not fit hop ML {hop_ml}")]
    BadStack {
        /// Bytes in the stack.
        len: usize,
        /// Hop ML given.
        hop_ml: u8,
    },
    /// A variable-length part does not fit its length field.
    #[error("{what} of {len} bytes is too long")]
    TooLong {
        /// The part.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// IPv4 or TCP options are not a whole number of 4-byte words.
    #[error("{what} of {len} bytes is not a whole number of words")]
    Unaligned {
        /// The part.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// Main contents given for an inner-only report, or missing for an
    /// INT report.
    #[error("RepType {rep_type} does not match the main contents given")]
    MainContentsMismatch {
        /// The RepType.
        rep_type: u8,
    },
    /// The report's node metadata does not have the length RepMdBits ask
    /// for.
    #[error("report metadata of {len} bytes, RepMdBits need {needed}")]
    ReportMetadataMismatch {
        /// Bytes given.
        len: usize,
        /// Bytes RepMdBits ask for (at least, with domain-specific bits).
        needed: usize,
    },
    /// The inner IPv4 total length or UDP length is shorter than the
    /// headers written.
    #[error("inner {what} length {declared} shorter than its headers ({needed})")]
    InnerLengthTooShort {
        /// `"IPv4 total"` or `"UDP"`.
        what: &'static str,
        /// The length field.
        declared: u16,
        /// What the headers up to the end of the INT stack take.
        needed: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in ParseError::REASONS {
            assert!(seen.insert(*r), "duplicate {r}");
            assert!(
                r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{r}"
            );
        }
    }
}
