//! `solyx-int`: the In-band Network Telemetry codec that Solyx hosts and
//! the controller share.
//!
//! Solyx steers traffic with INT-MD (INT Dataplane Specification v2.1,
//! P4.org Applications WG, 2020): hosts send probes carrying an INT shim
//! and INT-MD header after their UDP/TCP header, every `solyx_fabric`
//! switch on the path pushes its metadata onto the stack, and the
//! receiving host, the INT sink, exports what it extracted as a Telemetry
//! Report (Telemetry Report Format v2.0, 2020) over UDP to the
//! controller's collector.
//!
//! * [`Report`] parses one report packet from a [`bytes::Bytes`] without
//!   copying: headers are decoded up front, hop metadata is read lazily
//!   from the buffer through [`Hops`] / [`Hop`]. Every length is checked
//!   and every failure is a [`ParseError`] with a metric-friendly
//!   [`reason`](ParseError::reason); no input makes the parser panic.
//! * [`ReportBuilder`] writes reports into a [`bytes::BytesMut`] (the
//!   host sink, tests, benchmarks); its output parses back to the same
//!   values, and a parsed report rebuilds to the same bytes.
//! * [`IntMd`] and [`IntMdBuilder`] read and write the INT-MD block as it
//!   sits in a data packet, for the host agent's INT source and sink.
//!
//! # Examples
//!
//! ```
//! use bytes::BytesMut;
//! use solyx_int::{
//!     GroupHeader, HopMetadata, Instructions, InnerPacket, IntMdBuilder, Report, ReportBuilder,
//!     Stack, UdpHeader,
//! };
//!
//! // What three switches pushed, newest first.
//! let hops: Vec<HopMetadata> = [30, 20, 10]
//!     .into_iter()
//!     .map(|id| HopMetadata { switch_id: Some(id), hop_latency: Some(id * 2), ..Default::default() })
//!     .collect();
//! let ins = Instructions::SWITCH_ID | Instructions::HOP_LATENCY;
//! let mut inner = InnerPacket::udp(UdpHeader::default(), IntMdBuilder::new(ins, 5, Stack::Hops(&hops)), b"");
//! inner.fill_lengths()?;
//! let mut buf = BytesMut::new();
//! ReportBuilder::new(GroupHeader { node_id: 1, ..Default::default() }, inner).write(&mut buf)?;
//!
//! let report = Report::parse(buf.freeze())?;
//! let latencies: Vec<_> = report.path().filter_map(|h| h.hop_latency()).collect();
//! assert_eq!(latencies, [20, 40, 60]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::unreachable
    )
)]

mod bits;
mod build;
mod error;
mod hop;
pub mod md;
pub mod report;
mod wire;

pub use bits::{Instructions, RepMdBits};
pub use build::{InnerPacket, ReportBuilder};
pub use error::{BuildError, ParseError};
pub use hop::{
    Hop, HopMetadata, Hops, NodeMetadata, Occupancy, Ports, UNAVAILABLE_32, UNAVAILABLE_64,
};
pub use md::{IntMd, IntMdBuilder, IntMdHeader, IntShim, ParseLimits, Stack};
pub use report::{
    CoalescedReports, EthernetHeader, GroupHeader, InType, Ipv4Header, MainContents, RepType,
    Report, ReportFlags, ReportHeader, TcpHeader, Transport, UdpHeader,
};
