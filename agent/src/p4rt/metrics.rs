//! Prometheus metrics of the P4Runtime server: calls and their latency by
//! RPC, failures by RPC and gRPC code, Write batches and updates by device,
//! failed updates by code. The series live in the service from its start;
//! [`P4rtMetrics::register`] exposes them in a registry.

use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use prost::Message;
use solyx_p4runtime::proto::p4::v1 as p4;
use tonic::{Code, Status};

use super::error::P4_ERROR_TYPE_URL;

/// The P4Runtime server's series. Clones share them.
#[derive(Debug, Clone)]
pub struct P4rtMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    errors: IntCounterVec,
    writes: IntCounterVec,
    updates: IntCounterVec,
    update_errors: IntCounterVec,
}

/// Latency buckets, seconds: 50 µs to 5 s.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name and labels")
}

impl Default for P4rtMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl P4rtMetrics {
    /// Unregistered series.
    ///
    /// # Panics
    /// Never: names and labels are constants.
    #[must_use]
    pub fn new() -> Self {
        Self {
            requests: counter(
                "solyx_agent_p4rt_requests_total",
                "P4Runtime calls received (StreamChannel: streams opened)",
                &["rpc"],
            ),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "solyx_agent_p4rt_request_duration_seconds",
                    "Time to answer a unary P4Runtime call",
                )
                .buckets(BUCKETS.to_vec()),
                &["rpc"],
            )
            .expect("valid metric"),
            errors: counter(
                "solyx_agent_p4rt_errors_total",
                "P4Runtime calls that failed, by gRPC status code",
                &["rpc", "code"],
            ),
            writes: counter(
                "solyx_agent_p4rt_writes_total",
                "Write calls, by device ID",
                &["device_id"],
            ),
            updates: counter(
                "solyx_agent_p4rt_write_updates_total",
                "Updates received in Write calls, by device ID and type",
                &["device_id", "type"],
            ),
            update_errors: counter(
                "solyx_agent_p4rt_write_update_errors_total",
                "Updates refused or undone, by device ID and gRPC code of their p4.v1.Error",
                &["device_id", "code"],
            ),
        }
    }

    /// Registers every series in `registry`.
    ///
    /// # Errors
    /// A series of the same name is already registered there.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.requests.clone()))?;
        registry.register(Box::new(self.duration.clone()))?;
        registry.register(Box::new(self.errors.clone()))?;
        registry.register(Box::new(self.writes.clone()))?;
        registry.register(Box::new(self.updates.clone()))?;
        registry.register(Box::new(self.update_errors.clone()))?;
        Ok(())
    }

    /// Counts a call of `rpc` that started at `started` and ended with
    /// `result` (for StreamChannel: the opening of the stream).
    pub(crate) fn observe<T>(&self, rpc: &str, started: Instant, result: &Result<T, Status>) {
        self.requests.with_label_values(&[rpc]).inc();
        self.duration
            .with_label_values(&[rpc])
            .observe(started.elapsed().as_secs_f64());
        if let Err(status) = result {
            self.errors
                .with_label_values(&[rpc, code_name(status.code())])
                .inc();
        }
    }

    /// Counts a stream opened.
    pub(crate) fn stream_opened(&self, rpc: &str) {
        self.requests.with_label_values(&[rpc]).inc();
    }

    /// Counts a Write of `updates` to `device` (the served device ID, or
    /// `other` for a request that names another: such requests must not
    /// create series at will).
    pub(crate) fn write_received(&self, device: &str, updates: &[p4::Update]) {
        self.writes.with_label_values(&[device]).inc();
        for u in updates {
            let kind = match p4::update::Type::try_from(u.r#type) {
                Ok(p4::update::Type::Insert) => "INSERT",
                Ok(p4::update::Type::Modify) => "MODIFY",
                Ok(p4::update::Type::Delete) => "DELETE",
                _ => "UNSPECIFIED",
            };
            self.updates.with_label_values(&[device, kind]).inc();
        }
    }

    /// Counts the failed updates of a Write from the per-update errors
    /// its status carries.
    pub(crate) fn write_failed(&self, device: &str, status: &Status) {
        let Ok(details) = tonic_types::pb::Status::decode(status.details()) else {
            return;
        };
        for any in details.details {
            if any.type_url != P4_ERROR_TYPE_URL {
                continue;
            }
            let Ok(e) = p4::Error::decode(any.value.as_slice()) else {
                continue;
            };
            let code = Code::from_i32(e.canonical_code);
            if code != Code::Ok {
                self.update_errors
                    .with_label_values(&[device, code_name(code)])
                    .inc();
            }
        }
    }
}

/// The canonical name of a gRPC code, as in the gRPC specification.
#[must_use]
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
