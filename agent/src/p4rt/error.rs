//! Every error the P4Runtime server reports, and the one place where each is
//! given its gRPC code: as a per-update `p4.v1.Error`, as the status of a
//! whole call, or as a `StreamError` on the StreamChannel.
//!
//! Code choices, in one list:
//! - an ID the P4Info does not define for the entity addressed (table,
//!   action profile, counter), a device this agent does not serve, a missing
//!   entry on MODIFY/DELETE, a member or group referenced but not written:
//!   `NOT_FOUND`;
//! - anything malformed inside an entity (unknown field, parameter or action
//!   ID, wrong match kind, value wider than its field, bits past an LPM
//!   prefix, ...), a pipeline the P4Info index refuses or the policy does not
//!   accept: `INVALID_ARGUMENT`;
//! - INSERT of an existing key: `ALREADY_EXISTS`;
//! - deleting a member or group still in use, no pipeline, COMMIT with
//!   nothing saved: `FAILED_PRECONDITION`;
//! - a full table, profile or group: `RESOURCE_EXHAUSTED`;
//! - a write by a client that is not primary, a write to a const table:
//!   `PERMISSION_DENIED`;
//! - entity kinds this agent does not implement: `UNIMPLEMENTED`;
//! - an update undone because another of its batch failed: `ABORTED`.

use bytes::Bytes;
use prost::Message;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoError;
use tonic::Code;

use super::arbitration::{ArbitrationError, Standing};
use super::dataplane::{DataplaneError, DataplaneErrorKind};

/// Why a request, or one update of it, was refused. Messages name the
/// table (by its P4Info name) and the field concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The request names a device this agent does not serve.
    #[error("device {given} is not served here (this agent serves device {served})")]
    WrongDevice {
        /// Device ID in the request.
        given: u64,
        /// Device ID this agent serves.
        served: u64,
    },
    /// No pipeline has been committed yet.
    #[error("no forwarding pipeline is set: push one with SetForwardingPipelineConfig")]
    NoPipeline,
    /// The caller's election ID is not that of the primary of its role.
    #[error("not the primary client for role {role:?}: {detail}")]
    NotPrimary {
        /// Role name ("" is the default role).
        role: String,
        /// What the server knows about the election.
        detail: String,
    },
    /// A malformed request or entity.
    #[error("{0}")]
    Invalid(String),
    /// The entity addressed has an ID the P4Info does not define.
    #[error("no {kind} with ID {id:#010x} in the P4Info")]
    UnknownId {
        /// Entity kind ("table", "action profile", "counter", ...).
        kind: &'static str,
        /// The ID given.
        id: u32,
    },
    /// The entity to modify or delete, or one referenced, does not exist.
    #[error("{0}")]
    NotFound(String),
    /// INSERT of a key that is already present.
    #[error("{0}")]
    AlreadyExists(String),
    /// Deleting something other entities still use.
    #[error("{0}")]
    InUse(String),
    /// A table, profile or group is full.
    #[error("{0}")]
    Full(String),
    /// A const table or const default action.
    #[error("{0}")]
    Const(String),
    /// Something this agent does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// The pipeline is not one this agent accepts.
    #[error("pipeline {name:?} is not implemented by this agent; it accepts: {}", accepted.join(", "))]
    PipelineRefused {
        /// `pkg_info.name` of the refused P4Info.
        name: String,
        /// The package names the agent accepts.
        accepted: Vec<String>,
    },
    /// The P4Info cannot be indexed.
    #[error("invalid P4Info: {0}")]
    BadP4Info(P4InfoError),
    /// COMMIT without a pipeline saved by VERIFY_AND_SAVE.
    #[error("COMMIT: no pipeline was saved with VERIFY_AND_SAVE")]
    NothingSaved,
    /// The data plane refused or failed.
    #[error("data plane: {0}")]
    Dataplane(DataplaneError),
    /// Undone because another update of the same ROLLBACK_ON_ERROR batch failed.
    #[error("rolled back: another update of this batch failed")]
    RolledBack,
    /// RECONCILE_AND_COMMIT refused: some installed entities would not
    /// survive the new pipeline.
    #[error("RECONCILE_AND_COMMIT refused, nothing changed: {0}")]
    CannotReconcile(String),
    /// A stream message other than arbitration before arbitration.
    #[error("the first message on a stream must be a MasterArbitrationUpdate")]
    NotArbitrated,
}

impl StoreError {
    /// The canonical gRPC code of this error.
    #[must_use]
    pub fn code(&self) -> Code {
        match self {
            StoreError::WrongDevice { .. }
            | StoreError::UnknownId { .. }
            | StoreError::NotFound(_) => Code::NotFound,
            StoreError::NoPipeline
            | StoreError::InUse(_)
            | StoreError::NothingSaved
            | StoreError::CannotReconcile(_)
            | StoreError::NotArbitrated => Code::FailedPrecondition,
            StoreError::NotPrimary { .. } | StoreError::Const(_) => Code::PermissionDenied,
            StoreError::Invalid(_)
            | StoreError::PipelineRefused { .. }
            | StoreError::BadP4Info(_) => Code::InvalidArgument,
            StoreError::AlreadyExists(_) => Code::AlreadyExists,
            StoreError::Full(_) => Code::ResourceExhausted,
            StoreError::Unsupported(_) => Code::Unimplemented,
            StoreError::RolledBack => Code::Aborted,
            StoreError::Dataplane(e) => match e.kind {
                DataplaneErrorKind::Full => Code::ResourceExhausted,
                DataplaneErrorKind::Unsupported => Code::Unimplemented,
                DataplaneErrorKind::Invalid => Code::InvalidArgument,
                DataplaneErrorKind::Unavailable => Code::Unavailable,
                DataplaneErrorKind::Failed => Code::Internal,
            },
        }
    }
}

impl From<DataplaneError> for StoreError {
    fn from(e: DataplaneError) -> Self {
        StoreError::Dataplane(e)
    }
}

impl From<P4InfoError> for StoreError {
    fn from(e: P4InfoError) -> Self {
        StoreError::BadP4Info(e)
    }
}

impl From<&StoreError> for p4::Error {
    fn from(e: &StoreError) -> Self {
        p4::Error {
            canonical_code: e.code() as i32,
            message: e.to_string(),
            ..Default::default()
        }
    }
}

impl From<StoreError> for tonic::Status {
    fn from(e: StoreError) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

impl From<&StoreError> for p4::StreamError {
    fn from(e: &StoreError) -> Self {
        p4::StreamError {
            canonical_code: e.code() as i32,
            message: e.to_string(),
            ..Default::default()
        }
    }
}

impl ArbitrationError {
    /// The canonical gRPC code with which the stream is closed.
    #[must_use]
    pub fn code(&self) -> Code {
        match self {
            ArbitrationError::WrongDevice { .. } => Code::NotFound,
            ArbitrationError::DuplicateElectionId { .. } => Code::InvalidArgument,
            ArbitrationError::Rebind { .. } => Code::FailedPrecondition,
        }
    }
}

impl Standing {
    /// The status code and message an arbitration update carries.
    #[must_use]
    pub fn status(self) -> (Code, &'static str) {
        match self {
            Standing::Primary => (Code::Ok, "this stream is the primary"),
            Standing::Backup => (Code::AlreadyExists, "another stream is the primary"),
            Standing::NoPrimary => (Code::NotFound, "no stream of this role is the primary"),
        }
    }
}

impl From<ArbitrationError> for tonic::Status {
    fn from(e: ArbitrationError) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

/// The type URL of a packed `p4.v1.Error`.
pub const P4_ERROR_TYPE_URL: &str = "type.googleapis.com/p4.v1.Error";

/// Failed updates whose error carries its full message; later ones carry
/// only their code (and a pointer to the first). One `p4.v1.Error` per
/// update must fit in the gRPC trailers, and common clients refuse
/// trailers above 16 KiB: a batch of 1000 failures with full messages
/// would not arrive at all.
pub const DETAILED_ERRORS: usize = 32;

/// Longest message carried in one `p4.v1.Error`, in bytes.
pub const ERROR_MESSAGE_MAX: usize = 160;

/// The status of a Write in which some updates failed: code UNKNOWN, and
/// `google.rpc.Status` details with one `p4.v1.Error` per update, in order,
/// OK for the updates that were applied. Messages are cut to
/// [`ERROR_MESSAGE_MAX`] bytes and given for the first
/// [`DETAILED_ERRORS`] failures only, so the trailers stay small.
#[must_use]
pub fn write_failure(results: &[Result<(), StoreError>]) -> tonic::Status {
    let failed = results
        .iter()
        .filter(|r| matches!(r, Err(e) if *e != StoreError::RolledBack))
        .count();
    let message = format!("Write failed: {failed} of {} updates", results.len());
    let mut detailed = 0usize;
    let details = results
        .iter()
        .map(|r| {
            let e = match r {
                Ok(()) => p4::Error {
                    canonical_code: Code::Ok as i32,
                    ..Default::default()
                },
                Err(e) => {
                    let mut e = p4::Error::from(e);
                    detailed += 1;
                    if detailed > DETAILED_ERRORS {
                        e.message = String::new();
                    } else if e.message.len() > ERROR_MESSAGE_MAX {
                        let mut cut = ERROR_MESSAGE_MAX;
                        while !e.message.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        e.message.truncate(cut);
                        e.message.push('…');
                    }
                    e
                }
            };
            prost_types::Any {
                type_url: P4_ERROR_TYPE_URL.to_string(),
                value: e.encode_to_vec(),
            }
        })
        .collect();
    let status = tonic_types::pb::Status {
        code: Code::Unknown as i32,
        message: message.clone(),
        details,
    };
    tonic::Status::with_details(Code::Unknown, message, Bytes::from(status.encode_to_vec()))
}

/// A `google.rpc.Status` with `code` and `message`, as carried in
/// arbitration updates.
#[must_use]
pub fn rpc_status(code: Code, message: impl Into<String>) -> tonic_types::pb::Status {
    tonic_types::pb::Status {
        code: code as i32,
        message: message.into(),
        details: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_failure_carries_one_error_per_update() {
        let results = vec![
            Ok(()),
            Err(StoreError::AlreadyExists("table \"t\": key exists".into())),
            Err(StoreError::RolledBack),
        ];
        let status = write_failure(&results);
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(status.message(), "Write failed: 1 of 3 updates");
        let rpc = tonic_types::pb::Status::decode(status.details()).unwrap();
        assert_eq!(rpc.details.len(), 3);
        let codes: Vec<i32> = rpc
            .details
            .iter()
            .map(|a| {
                assert_eq!(a.type_url, P4_ERROR_TYPE_URL);
                p4::Error::decode(a.value.as_slice())
                    .unwrap()
                    .canonical_code
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                Code::Ok as i32,
                Code::AlreadyExists as i32,
                Code::Aborted as i32
            ]
        );
    }

    #[test]
    fn dataplane_errors_keep_their_kind() {
        let e = StoreError::from(DataplaneError::new(DataplaneErrorKind::Full, "map full"));
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert!(e.to_string().contains("map full"));
    }
}
