//! Reports built with the builder and read back: every field of every
//! header and hop, path order, node metadata, domain-specific metadata,
//! TCP and IPv4 options, inner-only reports, coalesced packets, the open
//! report length, parse limits, and the builder's own checks.

mod common;

use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};
use common::{common_hops, group, probe, report_bytes};
use solyx_int::md::ParseLimits;
use solyx_int::report::OPEN_REPORT_LENGTH;
use solyx_int::{
    BuildError, GroupHeader, HopMetadata, InType, InnerPacket, Instructions, IntMd, IntMdBuilder,
    IntMdHeader, IntShim, Ipv4Header, MainContents, Occupancy, ParseError, Ports, RepMdBits,
    RepType, Report, ReportBuilder, ReportFlags, ReportHeader, Stack, TcpHeader, Transport,
    UdpHeader,
};

fn write(b: &ReportBuilder<'_>) -> Bytes {
    let mut buf = BytesMut::new();
    let n = b.write(&mut buf).expect("build");
    assert_eq!(n, buf.len());
    assert_eq!(b.encoded_len(), Ok(n));
    buf.freeze()
}

fn rebuild(r: &Report) -> Bytes {
    write(&r.to_builder())
}

#[test]
fn common_report_reads_back_every_field() {
    let hops = common_hops(5);
    let payload = [0xabu8; 32];
    let bytes = report_bytes(&hops, &payload);
    let r = Report::parse(bytes.clone()).expect("parse");

    assert_eq!(r.group(), &group());
    assert_eq!(r.header().rep_type, RepType::Int);
    assert!(r.header().flags.tracked_flow);
    assert_eq!(r.in_type(), InType::Ethernet);
    let eth = r.ethernet().expect("ethernet");
    assert_eq!(eth.dst, [0x02, 0, 0, 0, 0, 2]);
    assert_eq!(r.ipv4().src, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(r.ipv4().dscp, 0x17);
    assert_eq!(r.ipv4().checksum, 0xbeef);
    // 20 IPv4 + 8 UDP + 4 shim + 12 header + 5 × 36 stack + 32 payload.
    assert_eq!(r.ipv4().total_length, 256);
    let Transport::Udp(udp) = r.transport() else {
        panic!("not UDP")
    };
    assert_eq!((udp.src_port, udp.dst_port, udp.length), (49152, 4791, 236));
    assert!(r.ipv4_options().is_empty() && r.tcp_options().is_empty());

    let md = r.int_md();
    assert_eq!(md.header().instructions, Instructions::COMMON);
    assert_eq!(md.header().hop_ml, 9);
    assert_eq!(md.header().remaining_hop_count, 8);
    assert_eq!(md.shim_length_words(), 3 + 45);
    assert_eq!(r.hop_count(), 5);
    let parsed: Vec<HopMetadata> = r.hops().map(|h| h.to_metadata()).collect();
    assert_eq!(parsed, hops);
    for hop in r.hops() {
        assert_eq!(hop.as_bytes().len(), 36);
        assert!(hop.domain_specific().is_empty());
        assert_eq!(hop.level2_ports(), None);
        assert_eq!(hop.buffer(), None);
        assert_eq!(hop.checksum_complement(), None);
        let id = hop.switch_id().expect("switch id");
        assert_eq!(hop.ingress_port(), Some(id as u16));
        assert_eq!(hop.egress_port(), Some(id as u16 + 100));
        assert_eq!(hop.queue_id(), Some(id as u8));
        assert_eq!(hop.queue_occupancy(), Some(10 * id));
    }
    let stack_order: Vec<_> = r.hops().filter_map(|h| h.switch_id()).collect();
    assert_eq!(stack_order, [5, 4, 3, 2, 1]);
    let path: Vec<_> = r.path().filter_map(|h| h.switch_id()).collect();
    assert_eq!(path, [1, 2, 3, 4, 5]);

    // The Ethernet header leaves the report 2 bytes short of a word: the
    // builder pads with zeros, which read back as part of the payload.
    assert_eq!(r.payload(), [&payload[..], &[0, 0]].concat());
    assert_eq!(r.main().map(|m| m.metadata.len()), Some(0));
    assert_eq!(r.md_length_words(), 0);
    assert_eq!(r.as_bytes().len() + 8, bytes.len());
    assert_eq!(rebuild(&r), bytes);
}

#[test]
fn header_words_are_where_the_spec_puts_them() {
    let hops = common_hops(1);
    let mut b = ReportBuilder::new(
        GroupHeader {
            hw_id: 0x2a,
            sequence_number: 0x2b_cdef,
            node_id: 0x0102_0304,
        },
        probe(&hops, &[]),
    );
    b.header.flags = ReportFlags {
        dropped: true,
        congested_queue: false,
        tracked_flow: true,
        intermediate: true,
    };
    b.header.reserved = 0x5;
    let bytes = write(&b);
    // ver 2 | hw_id 101010 | seq 10_1011_1100_1101_1110_1111
    assert_eq!(&bytes[..4], &[0x2a, 0xab, 0xcd, 0xef]);
    assert_eq!(&bytes[4..8], &[1, 2, 3, 4]);
    // RepType 1 | InType 3; 8 main + 14 + 20 + 8 + 16 + 36 = 102 -> 26 words
    // (2 bytes of padding); MD length 0; D=1 Q=0 F=1 I=1 rsvd 0101.
    assert_eq!(&bytes[8..12], &[0x13, 26, 0, 0xb5]);
    assert_eq!(bytes.len(), 8 + 4 + 26 * 4);
    let r = Report::parse(bytes.clone()).expect("parse");
    assert_eq!(r.header(), &b.header);
    assert_eq!(r.group(), &b.group);
    assert_eq!(r.report_length_words(), 26);
    assert_eq!(r.payload(), &[0, 0]);
    assert_eq!(rebuild(&r), bytes);
}

#[test]
fn tcp_with_options_and_ipv4_options() {
    let hops = common_hops(3);
    let ip_opts = [1u8, 1, 1, 1, 7, 3, 4, 0];
    let tcp_opts = [2u8, 4, 0x05, 0xb4, 1, 1, 1, 0];
    let mut inner = InnerPacket::tcp(
        TcpHeader {
            src_port: 5000,
            dst_port: 6000,
            seq: 0xdead_beef,
            ack: 0x0102_0304,
            reserved: 0b1010,
            flags: 0x18,
            window: 512,
            checksum: 0x1234,
            urgent_ptr: 9,
        },
        IntMdBuilder::new(Instructions::COMMON, 4, Stack::Hops(&hops)),
        b"GET /",
    );
    inner.ipv4_options = &ip_opts;
    inner.tcp_options = &tcp_opts;
    inner.ipv4.src = Ipv4Addr::new(192, 0, 2, 1);
    inner.fill_lengths().expect("lengths");
    let b = ReportBuilder::new(group(), inner);
    let bytes = write(&b);
    let r = Report::parse(bytes.clone()).expect("parse");
    assert_eq!(r.in_type(), InType::Ipv4);
    assert!(r.ethernet().is_none());
    assert_eq!(r.ipv4_options(), &ip_opts);
    assert_eq!(r.tcp_options(), &tcp_opts);
    assert_eq!(r.transport(), &inner.transport);
    assert_eq!(r.ipv4(), &inner.ipv4);
    assert_eq!(r.hops().map(|h| h.to_metadata()).collect::<Vec<_>>(), hops);
    assert_eq!(&r.payload()[..5], b"GET /");
    assert_eq!(rebuild(&r), bytes);
}

#[test]
fn inner_only_report_has_no_main_contents() {
    let hops = common_hops(2);
    let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
    b.header.rep_type = RepType::InnerOnly;
    b.main = None;
    let bytes = write(&b);
    let r = Report::parse(bytes.clone()).expect("parse");
    assert_eq!(r.header().rep_type, RepType::InnerOnly);
    assert!(r.main().is_none() && r.node_metadata().is_none());
    assert_eq!(r.hop_count(), 2);
    assert_eq!(rebuild(&r), bytes);

    b.main = Some(MainContents::default());
    assert_eq!(
        b.encoded_len(),
        Err(BuildError::MainContentsMismatch { rep_type: 0 })
    );
}

#[test]
fn node_metadata_follows_rep_md_bits() {
    let hops = common_hops(1);
    let bits = RepMdBits::LEVEL1_PORT_IDS
        | RepMdBits::HOP_LATENCY
        | RepMdBits::QUEUE
        | RepMdBits::INGRESS_TIMESTAMP
        | RepMdBits::EGRESS_TIMESTAMP
        | RepMdBits::LEVEL2_PORT_IDS
        | RepMdBits::EGRESS_TX_UTILIZATION
        | RepMdBits::BUFFER
        | RepMdBits::QUEUE_DROP_REASON;
    let mut md = Vec::new();
    md.extend_from_slice(&[0, 3, 0, 4]); // ports 3 -> 4
    md.extend_from_slice(&77u32.to_be_bytes()); // hop latency
    md.extend_from_slice(&[9, 0, 1, 0]); // queue 9, occupancy 256
    md.extend_from_slice(&11u64.to_be_bytes());
    md.extend_from_slice(&22u64.to_be_bytes());
    md.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 6]); // level-2 5 -> 6
    md.extend_from_slice(&33u32.to_be_bytes());
    md.extend_from_slice(&[1, 0, 0, 2]); // buffer 1, occupancy 2
    md.extend_from_slice(&[9, 14, 0, 0]); // queue 9, drop reason 14
    md.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // domain-specific
    let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
    b.main = Some(MainContents {
        rep_md_bits: bits,
        domain_specific_id: 0x5453,
        ds_md_bits: 0x8000,
        ds_md_status: 0x0001,
        metadata: &md,
    });
    let bytes = write(&b);
    let r = Report::parse(bytes.clone()).expect("parse");
    assert_eq!(r.md_length_words(), 13);
    assert_eq!(r.main(), b.main);
    let n = r.node_metadata().expect("node metadata");
    assert_eq!(
        n.level1_ports(),
        Some(Ports {
            ingress: 3,
            egress: 4
        })
    );
    assert_eq!(n.hop_latency(), Some(77));
    assert_eq!(
        n.queue(),
        Some(Occupancy {
            id: 9,
            occupancy: 256
        })
    );
    assert_eq!(n.ingress_timestamp(), Some(11));
    assert_eq!(n.egress_timestamp(), Some(22));
    assert_eq!(
        n.level2_ports(),
        Some(Ports {
            ingress: 5,
            egress: 6
        })
    );
    assert_eq!(n.egress_tx_utilization(), Some(33));
    assert_eq!(
        n.buffer(),
        Some(Occupancy {
            id: 1,
            occupancy: 2
        })
    );
    assert_eq!(n.queue_drop_reason(), Some((9, 14)));
    assert_eq!(n.domain_specific(), &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(rebuild(&r), bytes);

    // Without domain-specific bits the metadata must be exactly the baseline.
    let mut b2 = b;
    if let Some(m) = &mut b2.main {
        m.ds_md_bits = 0;
    }
    assert_eq!(
        b2.encoded_len(),
        Err(BuildError::ReportMetadataMismatch {
            len: 52,
            needed: 48
        })
    );
}

#[test]
fn raw_stack_carries_domain_specific_metadata_before_the_checksum_complement() {
    let ins = Instructions::SWITCH_ID | Instructions::CHECKSUM_COMPLEMENT;
    // Hop ML 4: switch ID, 2 words of domain-specific metadata, checksum
    // complement.
    let mut stack = Vec::new();
    for id in [2u32, 1] {
        stack.extend_from_slice(&id.to_be_bytes());
        stack.extend_from_slice(&[id as u8; 8]);
        stack.extend_from_slice(&(0xc0de_0000 + id).to_be_bytes());
    }
    let mut header = IntMdHeader::new(ins, 3);
    header.hop_ml = 4;
    header.domain_specific_id = 7;
    header.ds_instruction = 0x8000;
    let int = IntMdBuilder {
        shim: IntShim::default(),
        header,
        stack: Stack::Raw(&stack),
    };
    let mut inner = InnerPacket::udp(UdpHeader::default(), int, &[]);
    inner.fill_lengths().expect("lengths");
    let bytes = write(&ReportBuilder::new(group(), inner));
    let r = Report::parse(bytes.clone()).expect("parse");
    let hops: Vec<_> = r.hops().collect();
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[0].switch_id(), Some(2));
    assert_eq!(hops[0].domain_specific(), &[2; 8]);
    assert_eq!(hops[0].checksum_complement(), Some(0xc0de_0002));
    assert_eq!(hops[1].checksum_complement(), Some(0xc0de_0001));
    assert_eq!(r.int_md().header(), &header);
    assert_eq!(rebuild(&r), bytes);

    // Typed hops cannot fill domain-specific words.
    let typed = [HopMetadata::default()];
    let int = IntMdBuilder {
        shim: IntShim::default(),
        header,
        stack: Stack::Hops(&typed),
    };
    assert_eq!(
        int.encoded_len(),
        Err(BuildError::HopMlMismatch {
            hop_ml: 4,
            needed: 2
        })
    );
}

#[test]
fn a_source_header_without_hops() {
    let mut inner = InnerPacket::udp(
        UdpHeader::default(),
        IntMdBuilder::new(Instructions::COMMON, 8, Stack::Hops(&[])),
        b"x",
    );
    inner.fill_lengths().expect("lengths");
    let r = Report::parse(write(&ReportBuilder::new(group(), inner))).expect("parse");
    assert_eq!(r.hop_count(), 0);
    assert!(r.hops().next().is_none() && r.path().next().is_none());

    // No instructions at all: hop ML 0 and an empty stack.
    let mut inner = InnerPacket::udp(
        UdpHeader::default(),
        IntMdBuilder::new(Instructions::EMPTY, 8, Stack::Raw(&[])),
        &[],
    );
    inner.fill_lengths().expect("lengths");
    let r = Report::parse(write(&ReportBuilder::new(group(), inner))).expect("parse");
    assert_eq!(r.int_md().header().hop_ml, 0);
    assert_eq!(r.hop_count(), 0);
}

#[test]
fn coalesced_reports_share_a_group_header() {
    let three = common_hops(3);
    let one = common_hops(1);
    let mut buf = BytesMut::new();
    group().write(&mut buf).expect("group");
    ReportBuilder::new(group(), probe(&three, &[]))
        .write_individual(&mut buf, false)
        .expect("first");
    ReportBuilder::new(group(), probe(&one, b"tail"))
        .write_individual(&mut buf, true)
        .expect("second");
    let bytes = buf.freeze();

    let reports = Report::parse_coalesced(bytes.clone()).expect("group");
    assert_eq!(reports.group(), &group());
    let counts: Vec<_> = reports
        .map(|r| r.map(|r| r.hop_count()))
        .collect::<Result<_, _>>()
        .expect("reports");
    assert_eq!(counts, [3, 1]);

    let err = Report::parse(bytes).expect_err("two reports");
    assert_eq!(err.reason(), "trailing_data");
}

#[test]
fn coalescing_goes_on_past_a_malformed_report() {
    let hops = common_hops(2);
    let mut buf = BytesMut::new();
    group().write(&mut buf).expect("group");
    let first = buf.len();
    ReportBuilder::new(group(), probe(&hops, &[]))
        .write_individual(&mut buf, false)
        .expect("first");
    ReportBuilder::new(group(), probe(&hops, &[]))
        .write_individual(&mut buf, true)
        .expect("second");
    // Break the first report's IPv4 version; its length still frames it.
    let ip = first + 4 + 8 + 14;
    buf[ip] = 0x65;
    let results: Vec<_> = Report::parse_coalesced(buf.freeze())
        .expect("group")
        .map(|r| r.map(|r| r.hop_count()).map_err(|e| e.reason()))
        .collect();
    assert_eq!(results, [Err("bad_ipv4_header"), Ok(2)]);
}

#[test]
fn open_report_length_runs_to_the_end() {
    let hops = common_hops(5);
    let payload = vec![7u8; 1000];
    let bytes = report_bytes(&hops, &payload);
    let r = Report::parse(bytes.clone()).expect("parse");
    assert_eq!(r.report_length_words(), OPEN_REPORT_LENGTH);
    assert_eq!(r.payload(), &payload[..]);
    assert_eq!(rebuild(&r), bytes);

    // Not as the first of two reports.
    let mut buf = BytesMut::new();
    let err = ReportBuilder::new(group(), probe(&hops, &payload))
        .write_individual(&mut buf, false)
        .expect_err("open length in the middle");
    assert!(matches!(err, BuildError::TooLong { .. }));
    assert!(buf.is_empty());

    // Just above 254 words the builder pads up to the 0xFF words the open
    // length promises.
    let small = common_hops(1);
    let fixed = 8 + 14 + 20 + 8 + 16 + 36;
    let payload = vec![1u8; 1017 - fixed];
    let bytes = report_bytes(&small, &payload);
    assert_eq!(bytes.len(), 8 + 4 + 1020);
    let r = Report::parse(bytes.clone()).expect("parse");
    assert_eq!(r.report_length_words(), OPEN_REPORT_LENGTH);
    assert_eq!(rebuild(&r), bytes);
}

#[test]
fn hop_limit_is_enforced() {
    let hops = common_hops(5);
    let bytes = report_bytes(&hops, &[]);
    let err = Report::parse_with(bytes.clone(), &ParseLimits { max_hops: 4 }).expect_err("limit");
    assert_eq!(err, ParseError::TooManyHops { hops: 5, limit: 4 });
    assert!(Report::parse_with(bytes, &ParseLimits { max_hops: 5 }).is_ok());
}

#[test]
fn int_md_block_in_a_data_packet() {
    let hops = common_hops(4);
    let mut pkt = BytesMut::new();
    let n = IntMdBuilder::new(Instructions::COMMON, 4, Stack::Hops(&hops))
        .write(&mut pkt)
        .expect("block");
    pkt.extend_from_slice(b"application data");
    let md = IntMd::parse(&pkt).expect("parse");
    assert_eq!(md.encoded_len(), n);
    assert_eq!(&pkt[md.encoded_len()..], b"application data");
    assert_eq!(md.hops().map(|h| h.to_metadata()).collect::<Vec<_>>(), hops);
    let mut again = BytesMut::new();
    md.to_builder().write(&mut again).expect("rebuild");
    assert_eq!(&again[..], &pkt[..n]);
}

#[test]
fn builder_checks_fields_and_writes_nothing_on_error() {
    let hops = common_hops(1);
    let cases: Vec<(ReportBuilder<'_>, &str)> = vec![
        {
            let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
            b.group.hw_id = 64;
            (b, "hw_id")
        },
        {
            let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
            b.group.sequence_number = 1 << 22;
            (b, "sequence number")
        },
        {
            let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
            b.inner.ipv4.dscp = 64;
            (b, "IPv4 DSCP")
        },
        {
            let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
            b.header.reserved = 16;
            (b, "report reserved bits")
        },
    ];
    for (b, field) in cases {
        let mut buf = BytesMut::new();
        match b.write(&mut buf) {
            Err(BuildError::FieldOutOfRange { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
        assert!(buf.is_empty(), "{field}");
    }

    let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
    b.inner.ipv4_options = &[1, 1, 1];
    assert!(matches!(b.encoded_len(), Err(BuildError::Unaligned { .. })));

    let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
    b.inner.ipv4.total_length = 20;
    assert_eq!(
        b.encoded_len(),
        Err(BuildError::InnerLengthTooShort {
            what: "IPv4 total",
            declared: 20,
            needed: 20 + 8 + 16 + 36
        })
    );

    let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
    b.main = Some(MainContents {
        rep_md_bits: RepMdBits::from_bits(0x8000),
        ..MainContents::default()
    });
    assert_eq!(
        b.encoded_len(),
        Err(BuildError::UnknownBits {
            what: "RepMdBits",
            bits: 0x8000
        })
    );

    let mut b = ReportBuilder::new(group(), probe(&hops, &[]));
    b.main = None;
    assert_eq!(
        b.encoded_len(),
        Err(BuildError::MainContentsMismatch { rep_type: 1 })
    );
}

#[test]
fn default_headers_are_usable() {
    let header = ReportHeader::default();
    assert_eq!(header.rep_type, RepType::Int);
    assert_eq!(Ipv4Header::default().ttl, 64);
    let empty = IntMdBuilder::new(Instructions::EMPTY, 0, Stack::Raw(&[]));
    let inner = InnerPacket::udp(UdpHeader::default(), empty, &[]);
    assert_eq!(inner.in_type(), InType::Ipv4);
}
