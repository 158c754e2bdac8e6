//! Errors of the P4Runtime client, and decoding of per-update errors from
//! `google.rpc.Status` details.

use prost::Message;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::EntityError;

/// A failure of a client call as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address could not be used.
    #[error("bad P4Runtime address {addr:?}: {reason}")]
    Address {
        /// The address given.
        addr: String,
        /// Why it is unusable.
        reason: String,
    },
    /// No connection to the device right now.
    #[error("device {device_id} is not connected")]
    NotConnected {
        /// Device ID.
        device_id: u64,
    },
    /// This client is not the primary, so it may not write.
    #[error("device {device_id}: this client is not primary for role {role:?}")]
    NotPrimary {
        /// Device ID.
        device_id: u64,
        /// Role name ("" is the default role).
        role: String,
    },
    /// The device answered with an error status.
    #[error("device {device_id}: {rpc} failed: {status}")]
    Rpc {
        /// Device ID.
        device_id: u64,
        /// RPC name.
        rpc: &'static str,
        /// The status.
        status: tonic::Status,
    },
    /// An entity was refused before it was sent.
    #[error(transparent)]
    Entity(#[from] EntityError),
    /// No P4Info is known for this device yet.
    #[error("device {device_id} has no pipeline set by this client")]
    NoPipeline {
        /// Device ID.
        device_id: u64,
    },
    /// A desired state that cannot be applied as a whole; nothing was written.
    #[error("device {device_id}: desired state refused before writing: {problem}")]
    Desired {
        /// Device ID.
        device_id: u64,
        /// What is wrong.
        problem: String,
    },
    /// Waiting for something took too long.
    #[error("device {device_id}: timed out waiting for {what}: {cause}")]
    Timeout {
        /// Device ID.
        device_id: u64,
        /// What was awaited.
        what: &'static str,
        /// The last reason the device gave, or what was seen instead.
        cause: String,
    },
}

/// Why one update of a write failed, as the device reported it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct UpdateError {
    /// Canonical gRPC code.
    pub code: tonic::Code,
    /// The device's message.
    pub message: String,
    /// Error space, for target-specific codes.
    pub space: String,
    /// Target-specific code.
    pub target_code: i32,
}

impl UpdateError {
    /// The same error for every update of a batch that failed as a whole.
    pub(crate) fn from_status(status: &tonic::Status) -> Self {
        Self {
            code: status.code(),
            message: status.message().to_string(),
            space: String::new(),
            target_code: 0,
        }
    }
}

/// Decodes the per-update results of a failed Write: `google.rpc.Status`
/// details carry one `p4.v1.Error` per update, in order, with code OK for
/// the updates that were applied. Returns `None` when the status carries no
/// such details (the write failed as a whole).
pub(crate) fn per_update_errors(
    status: &tonic::Status,
    updates: usize,
) -> Option<Vec<Result<(), UpdateError>>> {
    let rpc = tonic_types::pb::Status::decode(status.details()).ok()?;
    if rpc.details.len() != updates {
        return None;
    }
    let mut out = Vec::with_capacity(updates);
    for any in &rpc.details {
        if !any.type_url.ends_with("p4.v1.Error") {
            return None;
        }
        let e = p4::Error::decode(any.value.as_slice()).ok()?;
        if e.canonical_code == tonic::Code::Ok as i32 {
            out.push(Ok(()));
        } else {
            let message = if e.message.is_empty() {
                "(no detail from the device: see the first failed updates of the batch)".into()
            } else {
                e.message
            };
            out.push(Err(UpdateError {
                code: tonic::Code::from_i32(e.canonical_code),
                message,
                space: e.space,
                target_code: e.code,
            }));
        }
    }
    Some(out)
}
