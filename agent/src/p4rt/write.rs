//! The Write RPC body: one batch of updates under one lock, with the
//! batch's atomicity, and one result per update.
//!
//! - CONTINUE_ON_ERROR applies every valid update and reports each failure.
//! - ROLLBACK_ON_ERROR applies the batch; if any update failed, the applied
//!   ones are undone (in reverse order) and reported as ABORTED.
//! - DATAPLANE_ATOMIC is served like ROLLBACK_ON_ERROR: the data plane is
//!   changed update by update, so a packet may see part of a batch before
//!   it is complete or rolled back.
//!   TODO-completeness: true data-plane atomicity needs a data plane that
//!   can stage a batch and switch to it at once (eBPF map-in-map swap).

use solyx_p4runtime::proto::p4::v1 as p4;
use tracing::debug;

use super::dataplane::Dataplane;
use super::error::{write_failure, StoreError};
use super::pipeline::DeviceState;

/// Applies `updates` to the device. `Ok` when every update was applied;
/// otherwise the status carries one `p4.v1.Error` per update.
pub(crate) fn write(
    state: &mut DeviceState,
    dp: &dyn Dataplane,
    updates: Vec<p4::Update>,
    atomicity: i32,
) -> Result<(), tonic::Status> {
    use p4::write_request::Atomicity;
    let rollback = match Atomicity::try_from(atomicity) {
        Ok(Atomicity::ContinueOnError) => false,
        Ok(Atomicity::RollbackOnError | Atomicity::DataplaneAtomic) => true,
        Err(_) => {
            return Err(StoreError::Invalid(format!("unknown atomicity {atomicity}")).into());
        }
    };
    let pipe = state.pipeline.as_ref().ok_or(StoreError::NoPipeline)?;
    let store = &mut state.store;
    let total = updates.len();
    let mut undo = rollback.then(|| Vec::with_capacity(total));
    let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(total);
    let mut failed = 0usize;
    for u in updates {
        let r = store.apply_update(pipe, dp, u, undo.as_mut());
        if r.is_err() {
            failed += 1;
        }
        results.push(r);
    }
    if failed == 0 {
        return Ok(());
    }
    if let Some(log) = undo {
        for u in log.into_iter().rev() {
            store.undo(pipe, dp, u);
        }
        for r in &mut results {
            if r.is_ok() {
                *r = Err(StoreError::RolledBack);
            }
        }
    }
    debug!(total, failed, rollback, "write partly failed");
    Err(write_failure(&results))
}
