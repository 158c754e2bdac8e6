//! One malformed report per parse-error reason, each made by breaking one
//! field of a report the builder wrote; the table covers every label in
//! `ParseError::REASONS`.

mod common;

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use common::{common_hops, group, report_bytes};
use solyx_int::md::ParseLimits;
use solyx_int::{
    InnerPacket, Instructions, IntMdBuilder, ParseError, Report, ReportBuilder, Stack, TcpHeader,
};

// Offsets in the fixture report: Ethernet, IPv4, UDP, common instructions,
// 5 hops, no node metadata.
const REPORT_HEADER: usize = 8;
const REPORT_LENGTH: usize = 9;
const MD_LENGTH: usize = 10;
const REP_MD_BITS: usize = 12;
const ETHERTYPE: usize = 32;
const IPV4: usize = 34;
const UDP_LENGTH: usize = 58;
const SHIM: usize = 62;
const MD_HEADER: usize = 66;
const HOP_ML: usize = MD_HEADER + 2;
const INSTRUCTIONS: usize = MD_HEADER + 4;

fn fixture() -> Vec<u8> {
    report_bytes(&common_hops(5), &[]).to_vec()
}

fn tcp_fixture() -> Vec<u8> {
    let hops = common_hops(1);
    let mut inner = InnerPacket::tcp(
        TcpHeader::default(),
        IntMdBuilder::new(Instructions::COMMON, 4, Stack::Hops(&hops)),
        &[],
    );
    inner.fill_lengths().expect("lengths");
    let mut buf = BytesMut::new();
    ReportBuilder::new(group(), inner)
        .write(&mut buf)
        .expect("build");
    buf.to_vec()
}

/// Sets the report length to `words` and cuts the buffer there.
fn cut_report(b: &mut Vec<u8>, words: u8) {
    b[REPORT_LENGTH] = words;
    b.truncate(12 + usize::from(words) * 4);
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

type Mutation = fn(&mut Vec<u8>);

/// A reason, the report to start from, and how to break it.
type Case = (&'static str, fn() -> Vec<u8>, Mutation);

fn cases() -> Vec<Case> {
    vec![
        ("truncated_group_header", fixture, |b| b.truncate(7)),
        ("bad_version", fixture, |b| b[0] = (b[0] & 0x0f) | 0x10),
        ("truncated_report_header", fixture, |b| b.truncate(10)),
        ("unsupported_rep_type", fixture, |b| b[REPORT_HEADER] = 0x23),
        ("unknown_in_type", fixture, |b| b[REPORT_HEADER] = 0x19),
        ("unsupported_in_type", fixture, |b| b[REPORT_HEADER] = 0x15),
        ("report_length_past_buffer", fixture, |b| {
            b[REPORT_LENGTH] += 1
        }),
        ("md_length_past_report", fixture, |b| b[MD_LENGTH] = 0xfe),
        ("unknown_rep_md_bits", fixture, |b| b[REP_MD_BITS] = 0x80),
        ("md_length_mismatch", fixture, |b| b[REP_MD_BITS] = 0x20),
        ("trailing_data", fixture, |b| b.extend_from_slice(&[0; 4])),
        ("truncated_ethernet", fixture, |b| cut_report(b, 2 + 3)),
        ("unsupported_ether_type", fixture, |b| {
            put_u16(b, ETHERTYPE, 0x86dd)
        }),
        ("truncated_ipv4", fixture, |b| cut_report(b, 2 + 8)),
        ("bad_ipv4_header", fixture, |b| b[IPV4] = 0x44),
        ("ipv4_fragment", fixture, |b| b[IPV4 + 7] = 1),
        ("unsupported_ip_protocol", fixture, |b| b[IPV4 + 9] = 1),
        ("truncated_l4", fixture, |b| cut_report(b, 2 + 10)),
        ("bad_tcp_data_offset", tcp_fixture, |b| {
            // No Ethernet: IPv4 at 20, TCP at 40, data offset at 52.
            b[52] = 0x40
        }),
        ("inner_length_too_short", fixture, |b| {
            put_u16(b, IPV4 + 2, 20)
        }),
        ("truncated_int_shim", fixture, |b| cut_report(b, 2 + 11)),
        ("unsupported_int_type", fixture, |b| b[SHIM] = 0x30),
        ("shim_length_too_short", fixture, |b| b[SHIM + 1] = 2),
        ("truncated_int_md_header", fixture, |b| {
            cut_report(b, 2 + 13)
        }),
        ("shim_length_past_buffer", fixture, |b| b[SHIM + 1] += 1),
        ("bad_int_version", fixture, |b| {
            b[MD_HEADER] = (b[MD_HEADER] & 0x0f) | 0x10
        }),
        ("unknown_instruction_bits", fixture, |b| {
            b[INSTRUCTIONS + 1] |= 0x02
        }),
        ("hop_ml_too_small", fixture, |b| {
            b[HOP_ML] = (b[HOP_ML] & 0xe0) | 1
        }),
        ("stack_length_mismatch", fixture, |b| {
            b[HOP_ML] = (b[HOP_ML] & 0xe0) | 10
        }),
    ]
}

#[test]
fn fixtures_are_valid() {
    assert!(Report::parse(Bytes::from(fixture())).is_ok());
    assert!(Report::parse(Bytes::from(tcp_fixture())).is_ok());
}

#[test]
fn each_malformation_gives_its_reason() {
    for (reason, base, mutate) in cases() {
        let mut b = base();
        mutate(&mut b);
        let err = Report::parse(Bytes::from(b)).expect_err(reason);
        assert_eq!(err.reason(), reason, "{err}");
        // The message names what was wrong.
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn a_short_udp_length_is_caught_too() {
    let mut b = fixture();
    put_u16(&mut b, UDP_LENGTH, 8);
    let err = Report::parse(Bytes::from(b)).expect_err("udp length");
    assert!(matches!(
        err,
        ParseError::InnerLengthTooShort { what: "UDP", .. }
    ));
}

#[test]
fn too_many_hops() {
    let err = Report::parse_with(Bytes::from(fixture()), &ParseLimits { max_hops: 4 })
        .expect_err("limit");
    assert_eq!(err.reason(), "too_many_hops");
}

#[test]
fn the_table_covers_every_reason() {
    let mut covered: BTreeSet<&str> = cases().into_iter().map(|(r, _, _)| r).collect();
    covered.insert("too_many_hops");
    let all: BTreeSet<&str> = ParseError::REASONS.iter().copied().collect();
    assert_eq!(covered, all);
}
