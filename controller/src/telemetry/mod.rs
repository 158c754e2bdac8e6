//! The INT collector: Telemetry Reports (v2.0, carrying INT-MD v2.1 hop
//! stacks) received over UDP and turned into per-hop, per-link and
//! per-path series that path computation and the API read.
//!
//! * [`Collector`] listens on UDP, parses every report with
//!   [`solyx_int`] without copying, counts rejected ones by the parser's
//!   reason ([`solyx_int::ParseError::reason`]) and never panics on input;
//! * [`TelemetryStore`] keeps, per egress port ([`HopKey`]), per link
//!   ([`crate::linkstate::LinkKey`]) and per probed path, the last value,
//!   a moving average ([`Ewma`]) and p50/p90/p99 over a sliding window
//!   ([`WindowedPercentiles`]) of latency, queue occupancy, TX utilisation
//!   and probe loss, and drops what has not been reported for a while;
//! * [`probe`] is the contract of the probe payload (path label and
//!   sequence number) the host agents send.
//!
//! The wire formats, the units and the defaults are described in
//! `docs/telemetry.md`.

mod collector;
pub mod probe;
mod stats;
mod store;

pub use collector::{
    Collector, CollectorConfig, ReportCounters, TelemetrySnapshot, DEFAULT_PORT, TOO_LONG,
};
pub use stats::{Ewma, MetricSummary, Percentiles, Series, WindowedPercentiles};
pub use store::{
    ApplyCounters, HopKey, HopTelemetry, LinkTelemetry, PathTelemetry, StoreConfig, StoreSnapshot,
    TelemetryStore,
};
