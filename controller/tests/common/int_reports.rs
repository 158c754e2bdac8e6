//! Telemetry Reports as a Solyx host sink exports them (Ethernet, IPv4,
//! UDP, INT-MD with the common instructions, the probe payload), built
//! with `solyx-int`'s builder. Shared by the collector tests and the
//! telemetry benchmark.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};
use solyx::telemetry::probe::ProbePayload;
use solyx_int::{
    EthernetHeader, GroupHeader, HopMetadata, InnerPacket, Instructions, IntMdBuilder, Ipv4Header,
    Occupancy, Ports, ReportBuilder, Stack, UdpHeader,
};

/// One hop, as the test describes it (path order).
#[derive(Clone, Copy, Debug, Default)]
pub struct Hop {
    pub switch: u32,
    pub ingress: u16,
    pub egress: u16,
    pub latency: u32,
    pub queue: u32,
    pub util: u32,
    pub ingress_ts: u64,
    pub egress_ts: u64,
}

impl Hop {
    fn metadata(&self) -> HopMetadata {
        HopMetadata {
            switch_id: Some(self.switch),
            level1_ports: Some(Ports {
                ingress: self.ingress,
                egress: self.egress,
            }),
            hop_latency: Some(self.latency),
            queue: Some(Occupancy {
                id: 0,
                occupancy: self.queue,
            }),
            ingress_timestamp: Some(self.ingress_ts),
            egress_timestamp: Some(self.egress_ts),
            egress_tx_utilization: Some(self.util),
            ..HopMetadata::default()
        }
    }
}

/// A report from sink `sink` of a probe that crossed `path` (path order),
/// carrying `probe` (label, sequence) when given.
pub fn report(sink: u32, sequence: u32, path: &[Hop], probe: Option<(u32, u32)>) -> Bytes {
    let stack: Vec<HopMetadata> = path.iter().rev().map(Hop::metadata).collect();
    let payload: Vec<u8> = match probe {
        Some((label, sequence)) => ProbePayload { label, sequence }.to_bytes().to_vec(),
        None => b"not a probe".to_vec(),
    };
    let mut inner = InnerPacket::udp(
        UdpHeader {
            src_port: 49152,
            dst_port: 6101,
            length: 0,
            checksum: 0,
        },
        IntMdBuilder::new(Instructions::COMMON, 8, Stack::Hops(&stack)),
        &payload,
    );
    inner.ethernet = Some(EthernetHeader {
        dst: [0x02, 0, 0, 0, 0, 2],
        src: [0x02, 0, 0, 0, 0, 1],
    });
    inner.ipv4 = Ipv4Header {
        dscp: 0x17,
        ttl: 60,
        src: Ipv4Addr::new(10, 0, 0, 1),
        dst: Ipv4Addr::new(10, 0, 0, 2),
        ..Ipv4Header::default()
    };
    inner.fill_lengths().expect("lengths");
    let group = GroupHeader {
        hw_id: 0,
        sequence_number: sequence & 0x3f_ffff,
        node_id: sink,
    };
    let mut buf = BytesMut::new();
    ReportBuilder::new(group, inner)
        .write(&mut buf)
        .expect("report");
    buf.freeze()
}

/// A three-hop path s1 → s2 → s3 (switch IDs 1, 2, 3; each enters on port
/// 1 and leaves on port 2) with `latency` ns in each device, `wire` ns on
/// each link, starting at `t0`.
pub fn three_hops(t0: u64, latency: u32, wire: u64, queue: u32, util: u32) -> Vec<Hop> {
    let mut t = t0;
    (1..=3)
        .map(|switch| {
            let hop = Hop {
                switch,
                ingress: 1,
                egress: 2,
                latency,
                queue,
                util,
                ingress_ts: t,
                egress_ts: t + u64::from(latency),
            };
            t = hop.egress_ts + wire;
            hop
        })
        .collect()
}

/// Bytes of a UDP payload that fits a 1500-byte IPv4 MTU (less the IPv4
/// and UDP headers).
pub const MTU_1500_PAYLOAD: usize = 1500 - 20 - 8;

/// One UDP payload coalescing `reports` (each as [`report`] builds it)
/// behind one group header `group`, the way an exporter coalescing N
/// reports per datagram sends them: [`GroupHeader::write`], then
/// [`ReportBuilder::write_individual`] for each.
pub fn coalesce(group: GroupHeader, reports: &[Bytes]) -> Bytes {
    let mut buf = BytesMut::new();
    group.write(&mut buf).expect("group header");
    for (i, r) in reports.iter().enumerate() {
        let parsed = solyx_int::Report::parse(r.clone()).expect("report");
        parsed
            .to_builder()
            .write_individual(&mut buf, i + 1 == reports.len())
            .expect("individual report");
    }
    buf.freeze()
}

/// How many individual reports shaped like `report` (a whole report
/// packet: group header and one report) fit in `payload` bytes behind one
/// group header.
pub fn fit(report: &Bytes, payload: usize) -> usize {
    let individual = report.len() - GroupHeader::ENCODED_LEN;
    payload.saturating_sub(GroupHeader::ENCODED_LEN) / individual
}
