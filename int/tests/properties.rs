//! Property tests: arbitrary valid reports round-trip through the builder
//! and the parser byte for byte and value for value; arbitrary and mutated
//! bytes never make the parser panic; cutting a valid report anywhere
//! gives an error.

mod common;

use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use solyx_int::{
    EthernetHeader, GroupHeader, HopMetadata, InnerPacket, Instructions, IntMdBuilder, IntMdHeader,
    IntShim, Ipv4Header, MainContents, Occupancy, Ports, RepMdBits, RepType, Report, ReportBuilder,
    ReportFlags, ReportHeader, Stack, TcpHeader, Transport, UdpHeader,
};

/// Everything a report holds, owned, so that a builder can borrow it.
#[derive(Clone, Debug)]
struct Model {
    group: GroupHeader,
    header: ReportHeader,
    main: Option<(RepMdBits, u16, u16, u16, Vec<u8>)>,
    ethernet: Option<EthernetHeader>,
    ipv4: Ipv4Header,
    ipv4_options: Vec<u8>,
    transport: Transport,
    tcp_options: Vec<u8>,
    shim: IntShim,
    md: IntMdHeader,
    stack: StackModel,
    payload: Vec<u8>,
    ip_slack: u16,
    udp_slack: u16,
}

#[derive(Clone, Debug)]
enum StackModel {
    Hops(Vec<HopMetadata>),
    Raw(Vec<u8>),
}

impl Model {
    fn builder(&self) -> ReportBuilder<'_> {
        let stack = match &self.stack {
            StackModel::Hops(h) => Stack::Hops(h),
            StackModel::Raw(r) => Stack::Raw(r),
        };
        let mut inner = InnerPacket {
            ethernet: self.ethernet,
            ipv4: self.ipv4,
            ipv4_options: &self.ipv4_options,
            transport: self.transport,
            tcp_options: &self.tcp_options,
            int: IntMdBuilder {
                shim: self.shim,
                header: self.md,
                stack,
            },
            payload: &self.payload,
        };
        // A model the builder rejects is filtered out by its encoded_len.
        let _ = inner.fill_lengths();
        inner.ipv4.total_length = inner.ipv4.total_length.saturating_add(self.ip_slack);
        if let Transport::Udp(udp) = &mut inner.transport {
            udp.length = udp.length.saturating_add(self.udp_slack);
        }
        ReportBuilder {
            group: self.group,
            header: self.header,
            main: self
                .main
                .as_ref()
                .map(|(bits, id, ds, st, md)| MainContents {
                    rep_md_bits: *bits,
                    domain_specific_id: *id,
                    ds_md_bits: *ds,
                    ds_md_status: *st,
                    metadata: md,
                }),
            inner,
        }
    }

    fn bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.builder().write(&mut buf).expect("valid model");
        buf.freeze()
    }
}

fn occupancy() -> impl Strategy<Value = Occupancy> {
    (any::<u8>(), 0u32..=0x00ff_ffff).prop_map(|(id, occupancy)| Occupancy { id, occupancy })
}

/// A hop with a value for exactly the fields `ins` asks for.
fn hop(ins: Instructions) -> impl Strategy<Value = HopMetadata> {
    (
        any::<u32>(),
        any::<(u16, u16)>(),
        any::<u32>(),
        occupancy(),
        any::<u64>(),
        any::<u64>(),
        any::<(u32, u32)>(),
        any::<u32>(),
        occupancy(),
        any::<u32>(),
    )
        .prop_map(move |(sw, l1, lat, q, it, et, l2, tx, buf, cc)| {
            let on = |bit: Instructions| ins.contains(bit);
            HopMetadata {
                switch_id: on(Instructions::SWITCH_ID).then_some(sw),
                level1_ports: on(Instructions::LEVEL1_PORT_IDS).then_some(Ports {
                    ingress: l1.0,
                    egress: l1.1,
                }),
                hop_latency: on(Instructions::HOP_LATENCY).then_some(lat),
                queue: on(Instructions::QUEUE).then_some(q),
                ingress_timestamp: on(Instructions::INGRESS_TIMESTAMP).then_some(it),
                egress_timestamp: on(Instructions::EGRESS_TIMESTAMP).then_some(et),
                level2_ports: on(Instructions::LEVEL2_PORT_IDS).then_some(Ports {
                    ingress: l2.0,
                    egress: l2.1,
                }),
                egress_tx_utilization: on(Instructions::EGRESS_TX_UTILIZATION).then_some(tx),
                buffer: on(Instructions::BUFFER).then_some(buf),
                checksum_complement: on(Instructions::CHECKSUM_COMPLEMENT).then_some(cc),
            }
        })
}

/// The INT-MD header and stack: typed hops, or raw hops whose hop ML
/// adds up to 3 words of domain-specific metadata to the baseline.
fn int_block() -> impl Strategy<Value = (IntShim, IntMdHeader, StackModel)> {
    let shim = (0u8..4, 0u8..4, any::<u16>()).prop_map(|(npt, reserved, npt_data)| IntShim {
        npt,
        reserved,
        npt_data,
    });
    let ins = any::<u16>().prop_map(|b| Instructions::from_bits(b & Instructions::KNOWN));
    let flags = (
        any::<[bool; 3]>(),
        0u16..0x1000,
        any::<[u16; 3]>(),
        any::<u8>(),
    );
    (shim, ins, flags, any::<bool>()).prop_flat_map(
        |(shim, ins, ([d, e, m], reserved, [id, dsi, dsf], rhc), typed)| {
            let mut md = IntMdHeader::new(ins, rhc);
            md.discard = d;
            md.hop_count_exceeded = e;
            md.mtu_exceeded = m;
            md.reserved = reserved;
            md.domain_specific_id = id;
            md.ds_instruction = dsi;
            md.ds_flags = dsf;
            let block = if typed {
                (Just(md), vec(hop(ins), 0..8).prop_map(StackModel::Hops)).boxed()
            } else {
                (0u8..4, 0usize..7)
                    .prop_flat_map(move |(ds_words, hops)| {
                        let mut md = md;
                        md.hop_ml += ds_words;
                        let len = usize::from(md.hop_ml) * 4 * hops;
                        (
                            Just(md),
                            vec(any::<u8>(), len..=len).prop_map(StackModel::Raw),
                        )
                    })
                    .boxed()
            };
            (Just(shim), block).prop_map(|(shim, (md, stack))| (shim, md, stack))
        },
    )
}

fn main_contents() -> impl Strategy<Value = Option<(RepMdBits, u16, u16, u16, Vec<u8>)>> {
    let bits = any::<u16>().prop_map(|b| RepMdBits::from_bits(b & RepMdBits::KNOWN));
    let some = (
        bits,
        any::<u16>(),
        any::<bool>(),
        any::<u16>(),
        any::<u16>(),
        0usize..4,
    )
        .prop_flat_map(|(bits, id, with_ds, ds, status, ds_words)| {
            let ds = if with_ds { ds | 1 } else { 0 };
            let len = bits.metadata_len() + if ds != 0 { ds_words * 4 } else { 0 };
            (
                Just(bits),
                Just(id),
                Just(ds),
                Just(status),
                vec(any::<u8>(), len..=len),
            )
        });
    prop_oneof![Just(None), some.prop_map(Some)]
}

fn options() -> impl Strategy<Value = Vec<u8>> {
    (0usize..=10).prop_flat_map(|words| vec(any::<u8>(), words * 4..=words * 4))
}

fn transport() -> impl Strategy<Value = (Transport, Vec<u8>)> {
    let udp = any::<[u16; 3]>().prop_map(|[s, d, c]| {
        (
            Transport::Udp(UdpHeader {
                src_port: s,
                dst_port: d,
                length: 0,
                checksum: c,
            }),
            Vec::new(),
        )
    });
    let tcp = (
        any::<[u16; 5]>(),
        any::<[u32; 2]>(),
        0u8..16,
        any::<u8>(),
        options(),
    )
        .prop_map(|([s, d, w, c, u], [seq, ack], reserved, flags, opts)| {
            (
                Transport::Tcp(TcpHeader {
                    src_port: s,
                    dst_port: d,
                    seq,
                    ack,
                    reserved,
                    flags,
                    window: w,
                    checksum: c,
                    urgent_ptr: u,
                }),
                opts,
            )
        });
    prop_oneof![udp, tcp]
}

fn ipv4() -> impl Strategy<Value = Ipv4Header> {
    (
        0u8..64,
        0u8..4,
        any::<u16>(),
        0u8..8,
        any::<u8>(),
        any::<u16>(),
        any::<[u32; 2]>(),
    )
        .prop_map(
            |(dscp, ecn, identification, flags, ttl, checksum, [src, dst])| Ipv4Header {
                dscp,
                ecn,
                total_length: 0,
                identification,
                flags,
                ttl,
                checksum,
                src: Ipv4Addr::from(src),
                dst: Ipv4Addr::from(dst),
            },
        )
}

fn header() -> impl Strategy<Value = ReportHeader> {
    (any::<[bool; 4]>(), 0u8..16).prop_map(|([d, q, f, i], reserved)| ReportHeader {
        rep_type: RepType::Int,
        flags: ReportFlags {
            dropped: d,
            congested_queue: q,
            tracked_flow: f,
            intermediate: i,
        },
        reserved,
    })
}

fn model(max_payload: usize) -> impl Strategy<Value = Model> {
    let group =
        (0u8..64, 0u32..0x40_0000, any::<u32>()).prop_map(|(hw_id, seq, node)| GroupHeader {
            hw_id,
            sequence_number: seq,
            node_id: node,
        });
    let ethernet = proptest::option::of(any::<([u8; 6], [u8; 6])>())
        .prop_map(|e| e.map(|(dst, src)| EthernetHeader { dst, src }));
    let payload = prop_oneof![
        4 => vec(any::<u8>(), 0..64),
        1 => vec(any::<u8>(), 0..=max_payload),
    ];
    (
        (group, header(), main_contents(), ethernet),
        (ipv4(), options(), transport(), int_block()),
        (payload, 0u16..200, 0u16..200),
    )
        .prop_map(
            |(
                (group, mut header, main, ethernet),
                (ipv4, ipv4_options, (transport, tcp_options), (shim, md, stack)),
                (payload, ip_slack, udp_slack),
            )| {
                if main.is_none() {
                    header.rep_type = RepType::InnerOnly;
                }
                Model {
                    group,
                    header,
                    main,
                    ethernet,
                    ipv4,
                    ipv4_options,
                    transport,
                    tcp_options,
                    shim,
                    md,
                    stack,
                    payload,
                    ip_slack,
                    udp_slack,
                }
            },
        )
        .prop_filter("builder accepts the model", |m| {
            m.builder().encoded_len().is_ok()
        })
}

proptest! {
    // 512 cases by default; PROPTEST_CASES overrides (e.g. for a long run).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn valid_reports_round_trip(m in model(1200)) {
        let bytes = m.bytes();
        let r = Report::parse(bytes.clone()).expect("builder output parses");

        // Values.
        prop_assert_eq!(r.group(), &m.group);
        prop_assert_eq!(r.header(), &m.header);
        let b = m.builder();
        prop_assert_eq!(r.main(), b.main);
        prop_assert_eq!(r.ethernet(), m.ethernet.as_ref());
        prop_assert_eq!(r.ipv4(), &b.inner.ipv4);
        prop_assert_eq!(r.ipv4_options(), &m.ipv4_options[..]);
        prop_assert_eq!(r.transport(), &b.inner.transport);
        prop_assert_eq!(r.tcp_options(), &m.tcp_options[..]);
        let md = r.int_md();
        prop_assert_eq!(md.shim(), &m.shim);
        prop_assert_eq!(md.header(), &m.md);
        match &m.stack {
            StackModel::Hops(hops) => {
                let parsed: Vec<_> = r.hops().map(|h| h.to_metadata()).collect();
                prop_assert_eq!(&parsed, hops);
                let path: Vec<_> = r.path().map(|h| h.to_metadata()).collect();
                let mut rev = hops.clone();
                rev.reverse();
                prop_assert_eq!(path, rev);
            }
            StackModel::Raw(raw) => prop_assert_eq!(md.stack(), &raw[..]),
        }
        prop_assert!(r.payload().starts_with(&m.payload));
        prop_assert!(r.payload()[m.payload.len()..].iter().all(|&x| x == 0));

        // Bytes.
        let mut again = BytesMut::new();
        r.to_builder().write(&mut again).expect("rebuild");
        prop_assert_eq!(&again[..], &bytes[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..1600)) {
        exercise(Bytes::from(bytes));
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(
        tail in vec(any::<u8>(), 0..400),
        cut in 0usize..200,
    ) {
        // A real group and report header followed by noise reaches the
        // inner parsers far more often than uniform noise does.
        let mut b = common::report_bytes(&common::common_hops(3), &[]).to_vec();
        b.truncate(cut.min(b.len()));
        b.extend_from_slice(&tail);
        exercise(Bytes::from(b));
    }

    #[test]
    fn mutated_reports_never_panic_and_rebuild_exactly(
        m in model(64),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut b = m.bytes().to_vec();
        for (i, x) in flips {
            let i = i.index(b.len());
            b[i] ^= x;
        }
        let bytes = Bytes::from(b);
        if let Ok(r) = Report::parse(bytes.clone()) {
            touch(&r);
            // An inner-only report's MD length is ignored and rebuilt as 0;
            // anything else the parser accepts rebuilds byte for byte.
            if r.header().rep_type == RepType::Int || r.md_length_words() == 0 {
                let mut again = BytesMut::new();
                r.to_builder().write(&mut again).expect("rebuild");
                prop_assert_eq!(&again[..], &bytes[..]);
            }
        }
    }

    #[test]
    fn truncated_reports_are_errors(m in model(64)) {
        let bytes = m.bytes();
        // The open length (0xFF) would make some cuts valid: the model
        // stays below it.
        prop_assume!(bytes.len() < 8 + 4 + 255 * 4);
        for cut in 0..bytes.len() {
            prop_assert!(Report::parse(bytes.slice(..cut)).is_err(), "cut at {}", cut);
        }
    }
}

/// Parses `bytes` every way there is and reads everything.
fn exercise(bytes: Bytes) {
    if let Ok(r) = Report::parse(bytes.clone()) {
        touch(&r);
    }
    if let Ok(reports) = Report::parse_coalesced(bytes.clone()) {
        for r in reports.flatten() {
            touch(&r);
        }
    }
    if let Ok(md) = solyx_int::IntMd::parse(&bytes) {
        md.hops().for_each(|h| {
            let _ = h.to_metadata();
        });
        let _ = md.path().map(|h| h.domain_specific().len()).sum::<usize>();
    }
}

/// Reads every view of a parsed report.
fn touch(r: &Report) {
    let _ = (r.group(), r.header(), r.in_type(), r.main());
    if let Some(n) = r.node_metadata() {
        let _ = (
            n.level1_ports(),
            n.hop_latency(),
            n.queue(),
            n.ingress_timestamp(),
            n.egress_timestamp(),
            n.level2_ports(),
            n.egress_tx_utilization(),
            n.buffer(),
            n.queue_drop_reason(),
            n.domain_specific(),
            format!("{n:?}"),
        );
    }
    for h in r.hops().chain(r.path()) {
        let _ = (h.to_metadata(), h.domain_specific(), h.as_bytes());
    }
    let _ = (r.payload(), r.as_bytes(), r.ipv4_options(), r.tcp_options());
    let _ = format!("{r:?} {:?}", r.hops());
}
