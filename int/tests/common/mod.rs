//! Reports built with the crate's own builder, shared by the tests and the
//! benchmark: the realistic shape a Solyx host sink exports (Ethernet,
//! IPv4, UDP to the RoCEv2 port, INT-MD with the common instructions).

#![allow(dead_code)]

use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};
use solyx_int::{
    EthernetHeader, GroupHeader, HopMetadata, InnerPacket, Instructions, IntMdBuilder, Ipv4Header,
    Occupancy, Ports, ReportBuilder, Stack, UdpHeader,
};

/// `n` hops with every common instruction, newest (switch `n`) first.
pub fn common_hops(n: usize) -> Vec<HopMetadata> {
    (0..n)
        .map(|i| {
            let id = (n - i) as u32;
            HopMetadata {
                switch_id: Some(id),
                level1_ports: Some(Ports {
                    ingress: id as u16,
                    egress: id as u16 + 100,
                }),
                hop_latency: Some(1000 + id),
                queue: Some(Occupancy {
                    id: id as u8,
                    occupancy: 10 * id,
                }),
                ingress_timestamp: Some(1_000_000 * u64::from(id)),
                egress_timestamp: Some(1_000_000 * u64::from(id) + 1000 + u64::from(id)),
                egress_tx_utilization: Some(50 + id),
                ..HopMetadata::default()
            }
        })
        .collect()
}

/// The group header of the fixtures.
pub fn group() -> GroupHeader {
    GroupHeader {
        hw_id: 1,
        sequence_number: 42,
        node_id: 0x0a00_0002,
    }
}

/// An Ethernet/IPv4/UDP probe carrying `hops` (common instructions) and
/// `payload`, lengths filled in.
pub fn probe<'a>(hops: &'a [HopMetadata], payload: &'a [u8]) -> InnerPacket<'a> {
    let mut inner = InnerPacket::udp(
        UdpHeader {
            src_port: 49152,
            dst_port: 4791,
            length: 0,
            checksum: 0,
        },
        IntMdBuilder::new(Instructions::COMMON, 8, Stack::Hops(hops)),
        payload,
    );
    inner.ethernet = Some(EthernetHeader {
        dst: [0x02, 0, 0, 0, 0, 2],
        src: [0x02, 0, 0, 0, 0, 1],
    });
    inner.ipv4 = Ipv4Header {
        dscp: 0x17,
        identification: 7,
        flags: 0b010,
        ttl: 60,
        checksum: 0xbeef,
        src: Ipv4Addr::new(10, 0, 0, 1),
        dst: Ipv4Addr::new(10, 0, 0, 2),
        ..Ipv4Header::default()
    };
    inner.fill_lengths().expect("fixture lengths");
    inner
}

/// The bytes of a report of `probe(hops, payload)`.
pub fn report_bytes(hops: &[HopMetadata], payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    ReportBuilder::new(group(), probe(hops, payload))
        .write(&mut buf)
        .expect("fixture report");
    buf.freeze()
}
