//! Writes a seed corpus for the `parse_report` fuzz target: reports built
//! with the builder (Ethernet or not, UDP or TCP, 0 to 8 hops, node
//! metadata, domain-specific metadata, an open-length report and a
//! coalesced packet), one file each.
//!
//! Run: `cargo run -p solyx-int --example fuzz_seeds -- int/fuzz/corpus/parse_report`

use std::net::Ipv4Addr;
use std::path::PathBuf;

use bytes::BytesMut;
use solyx_int::{
    EthernetHeader, GroupHeader, HopMetadata, InnerPacket, Instructions, IntMdBuilder, IntMdHeader,
    IntShim, MainContents, Occupancy, Ports, RepMdBits, RepType, ReportBuilder, Stack, TcpHeader,
    UdpHeader,
};

fn hops(n: u32, ins: Instructions) -> Vec<HopMetadata> {
    (0..n)
        .map(|i| {
            let id = n - i;
            let all = HopMetadata {
                switch_id: Some(id),
                level1_ports: Some(Ports {
                    ingress: id as u16,
                    egress: 1,
                }),
                hop_latency: Some(100 * id),
                queue: Some(Occupancy {
                    id: 0,
                    occupancy: id,
                }),
                ingress_timestamp: Some(u64::from(id) << 20),
                egress_timestamp: Some((u64::from(id) << 20) + 7),
                level2_ports: Some(Ports {
                    ingress: id,
                    egress: 2,
                }),
                egress_tx_utilization: Some(10),
                buffer: Some(Occupancy {
                    id: 1,
                    occupancy: 3,
                }),
                checksum_complement: Some(0xffff_ffff),
            };
            let on = |bit| ins.contains(bit);
            HopMetadata {
                switch_id: all.switch_id.filter(|_| on(Instructions::SWITCH_ID)),
                level1_ports: all
                    .level1_ports
                    .filter(|_| on(Instructions::LEVEL1_PORT_IDS)),
                hop_latency: all.hop_latency.filter(|_| on(Instructions::HOP_LATENCY)),
                queue: all.queue.filter(|_| on(Instructions::QUEUE)),
                ingress_timestamp: all
                    .ingress_timestamp
                    .filter(|_| on(Instructions::INGRESS_TIMESTAMP)),
                egress_timestamp: all
                    .egress_timestamp
                    .filter(|_| on(Instructions::EGRESS_TIMESTAMP)),
                level2_ports: all
                    .level2_ports
                    .filter(|_| on(Instructions::LEVEL2_PORT_IDS)),
                egress_tx_utilization: all
                    .egress_tx_utilization
                    .filter(|_| on(Instructions::EGRESS_TX_UTILIZATION)),
                buffer: all.buffer.filter(|_| on(Instructions::BUFFER)),
                checksum_complement: all
                    .checksum_complement
                    .filter(|_| on(Instructions::CHECKSUM_COMPLEMENT)),
            }
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds <corpus directory>")?,
    );
    std::fs::create_dir_all(&dir)?;
    let group = GroupHeader {
        hw_id: 1,
        sequence_number: 1,
        node_id: 7,
    };
    let all = Instructions::from_bits(Instructions::KNOWN);
    let node_md = [0u8, 1, 0, 2, 0, 0, 0, 9];
    let ds_stack = [0u8, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd];
    let big = vec![0x55u8; 1100];
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();

    for (ins_name, ins) in [("common", Instructions::COMMON), ("all", all)] {
        for n in [0u32, 1, 3, 5, 8] {
            let hops = hops(n, ins);
            for tcp in [false, true] {
                for eth in [false, true] {
                    let int = IntMdBuilder::new(ins, 8, Stack::Hops(&hops));
                    let mut inner = if tcp {
                        InnerPacket::tcp(TcpHeader::default(), int, b"data")
                    } else {
                        InnerPacket::udp(UdpHeader::default(), int, b"data")
                    };
                    inner.ipv4.src = Ipv4Addr::new(10, 0, 0, 1);
                    if eth {
                        inner.ethernet = Some(EthernetHeader::default());
                    }
                    inner.fill_lengths()?;
                    let mut b = ReportBuilder::new(group, inner);
                    if n == 3 {
                        b.main = Some(MainContents {
                            rep_md_bits: RepMdBits::LEVEL1_PORT_IDS | RepMdBits::HOP_LATENCY,
                            metadata: &node_md,
                            ..MainContents::default()
                        });
                    }
                    if n == 1 {
                        b.header.rep_type = RepType::InnerOnly;
                        b.main = None;
                    }
                    let mut buf = BytesMut::new();
                    b.write(&mut buf)?;
                    seeds.push((format!("{ins_name}-{n}-tcp{tcp}-eth{eth}"), buf.to_vec()));
                }
            }
        }
    }

    // Domain-specific metadata in a raw stack.
    let mut header = IntMdHeader::new(Instructions::SWITCH_ID, 4);
    header.hop_ml = 2;
    header.ds_instruction = 0x8000;
    let int = IntMdBuilder {
        shim: IntShim::default(),
        header,
        stack: Stack::Raw(&ds_stack),
    };
    let mut inner = InnerPacket::udp(UdpHeader::default(), int, &[]);
    inner.fill_lengths()?;
    let mut buf = BytesMut::new();
    ReportBuilder::new(group, inner).write(&mut buf)?;
    seeds.push(("domain-specific".into(), buf.to_vec()));

    // Open report length, and two coalesced reports.
    let three = hops(3, Instructions::COMMON);
    let mut inner = InnerPacket::udp(
        UdpHeader::default(),
        IntMdBuilder::new(Instructions::COMMON, 8, Stack::Hops(&three)),
        &big,
    );
    inner.fill_lengths()?;
    let mut buf = BytesMut::new();
    ReportBuilder::new(group, inner).write(&mut buf)?;
    seeds.push(("open-length".into(), buf.to_vec()));
    inner.payload = &[];
    inner.fill_lengths()?;
    let mut buf = BytesMut::new();
    group.write(&mut buf)?;
    ReportBuilder::new(group, inner).write_individual(&mut buf, false)?;
    ReportBuilder::new(group, inner).write_individual(&mut buf, true)?;
    seeds.push(("coalesced".into(), buf.to_vec()));

    for (name, bytes) in &seeds {
        std::fs::write(dir.join(name), bytes)?;
    }
    println!("wrote {} seeds to {}", seeds.len(), dir.display());
    Ok(())
}
