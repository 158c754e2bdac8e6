//! The controller's P4Runtime client.
//!
//! One [`DeviceSession`] per device keeps the StreamChannel open, takes part
//! in primary election, reconnects with capped exponential backoff and
//! carries writes, reads, pipeline pushes, packet I/O and digests. Entities
//! are built and checked with [`solyx_p4runtime::P4InfoIndex`] before they are
//! sent; [`reconcile`] turns "what the device should hold" into the minimal
//! set of writes.
//!
//! Many sessions share one Tokio runtime; each runs one background task.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use solyx::p4rt::{DeviceSession, SessionConfig};
//! use solyx_p4runtime::P4InfoIndex;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let index = P4InfoIndex::from_text(&std::fs::read_to_string("app.p4info.txtpb")?)?;
//! let session = DeviceSession::start(SessionConfig::new("127.0.0.1:9559", 1, 10))?;
//! session.wait_primary(Duration::from_secs(5)).await?;
//! session.set_pipeline(index.p4info().clone(), Vec::new(), false).await?;
//!
//! let route = index
//!     .table_entry("ipv4_route")?
//!     .lpm("ipv4_dst", std::net::Ipv4Addr::new(10, 0, 2, 0), 24)?
//!     .group(7)?
//!     .build()?;
//! for result in session.insert(vec![route.clone()]).await? {
//!     result?; // one result per update, in order
//! }
//! let report = session.reconcile(&[route]).await?; // nothing left to write
//! assert_eq!(report.inserted + report.modified + report.deleted, 0);
//! # Ok(())
//! # }
//! ```

pub mod desired;
mod error;
mod pipeline;
mod read;
pub mod reconcile;
mod session;
pub mod show;
pub mod spec;
pub(crate) mod transport;
mod write;

pub use error::{ClientError, UpdateError};
pub use pipeline::{cookie_of, PipelineOutcome};
pub use read::{Elephant, FiveTuple, FLOW_BYTES_COUNTER, FLOW_KEY_REGISTER};
pub use reconcile::{diff, Diff, ReconcileReport};
pub use session::{Backoff, DeviceSession, Mastership, RpcMetrics, SessionConfig};
pub use transport::ClientTls;
pub use write::{update, Atomicity, WriteOptions};

/// Election IDs are 128-bit in P4Runtime.
pub type ElectionId = u128;

pub(crate) fn to_uint128(v: ElectionId) -> solyx_p4runtime::proto::p4::v1::Uint128 {
    solyx_p4runtime::proto::p4::v1::Uint128 {
        high: (v >> 64) as u64,
        low: v as u64,
    }
}

pub(crate) fn from_uint128(v: &solyx_p4runtime::proto::p4::v1::Uint128) -> ElectionId {
    (u128::from(v.high) << 64) | u128::from(v.low)
}
