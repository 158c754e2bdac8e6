//! The Write RPC body: one batch of updates under one lock, with the
//! batch's atomicity, and one result per update.
//!
//! - CONTINUE_ON_ERROR applies every valid update and reports each failure.
//! - ROLLBACK_ON_ERROR applies the batch; if any update failed, the applied
//!   ones are undone (in reverse order) and reported as ABORTED.
//! - DATAPLANE_ATOMIC is served like ROLLBACK_ON_ERROR: the data plane is
//!   changed update by update (what a data plane collects until the end of
//!   the batch aside, such as the eBPF ACL), so a packet may see part of a
//!   batch before it is complete or rolled back.
//!   TODO-completeness: true data-plane atomicity needs a data plane that
//!   can stage a batch and switch to it at once (eBPF map-in-map swap).
//!
//! After the updates (and after a rollback's undoing) the data plane's
//! [`Dataplane::end_batch`] runs once, so it can publish what it collected
//! (the eBPF ACL: one table swap per Write). If that fails, nothing of the
//! batch may stay: every applied update is undone, `end_batch` runs again,
//! and every update that had succeeded reports the failure.

use solyx_p4runtime::proto::p4::v1 as p4;
use tracing::{debug, error};

use super::dataplane::Dataplane;
use super::error::{write_failure, StoreError};
use super::pipeline::{DeviceState, Pipeline};
use super::store::{Store, Undo};

/// Undoes `log` (newest first), then ends the batch again.
fn undo_all(store: &mut Store, pipe: &Pipeline, dp: &dyn Dataplane, log: Vec<Undo>) {
    for u in log.into_iter().rev() {
        store.undo(pipe, dp, u);
    }
    // TODO-robustness: if this publish fails too, store and data plane
    // agree on the entities but packets may see an older state until the
    // next Write publishes; only a log line says so.
    if let Err(e) = dp.end_batch() {
        error!(error = %e, "rollback: the data plane could not publish the undone batch");
    }
}

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
    // Kept in every mode: a failed `end_batch` undoes the whole batch.
    let mut undo = Vec::with_capacity(total);
    let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(total);
    let mut failed = 0usize;
    for u in updates {
        let r = store.apply_update(pipe, dp, u, Some(&mut undo));
        if r.is_err() {
            failed += 1;
        }
        results.push(r);
    }
    if rollback && failed > 0 {
        undo_all(store, pipe, dp, undo);
        for r in &mut results {
            if r.is_ok() {
                *r = Err(StoreError::RolledBack);
            }
        }
        debug!(total, failed, rollback, "write partly failed");
        return Err(write_failure(&results));
    }
    if let Err(e) = dp.end_batch() {
        error!(error = %e, total, "the data plane could not publish the batch; undoing it");
        undo_all(store, pipe, dp, undo);
        for r in &mut results {
            if r.is_ok() {
                *r = Err(StoreError::from(e.clone()));
            }
        }
        return Err(write_failure(&results));
    }
    if failed == 0 {
        return Ok(());
    }
    debug!(total, failed, rollback, "write partly failed");
    Err(write_failure(&results))
}
