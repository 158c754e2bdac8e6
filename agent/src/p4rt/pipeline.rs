//! The forwarding pipeline: which pipelines the agent accepts
//! ([`PipelinePolicy`]), SetForwardingPipelineConfig with its five actions,
//! GetForwardingPipelineConfig with its four response types, and the state
//! of the device (committed pipeline, saved pipeline, entity store).

use std::collections::HashSet;
use std::sync::Arc;

use solyx_p4runtime::proto::p4::config::v1 as cfg;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;
use tracing::{info, warn};

use super::dataplane::Dataplane;
use super::error::StoreError;
use super::store::Store;

/// Which pipelines the agent accepts, by P4Info package name
/// (`pkg_info.name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PipelinePolicy {
    /// Any pipeline whose P4Info is valid.
    #[default]
    Any,
    /// Only pipelines with one of these package names.
    Only(Vec<String>),
}

impl PipelinePolicy {
    /// `Any` for an empty list, else `Only(names)`.
    #[must_use]
    pub fn from_names(names: Vec<String>) -> Self {
        if names.is_empty() {
            PipelinePolicy::Any
        } else {
            PipelinePolicy::Only(names)
        }
    }

    /// Whether a pipeline with package name `name` is accepted.
    ///
    /// # Errors
    /// [`StoreError::PipelineRefused`] naming the accepted pipelines.
    pub fn check(&self, name: &str) -> Result<(), StoreError> {
        match self {
            PipelinePolicy::Any => Ok(()),
            PipelinePolicy::Only(names) if names.iter().any(|n| n == name) => Ok(()),
            PipelinePolicy::Only(names) => Err(StoreError::PipelineRefused {
                name: name.to_string(),
                accepted: names.clone(),
            }),
        }
    }
}

/// A verified pipeline: its P4Info index, device config and cookie.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) index: Arc<P4InfoIndex>,
    pub(crate) device_config: Vec<u8>,
    pub(crate) cookie: Option<u64>,
    /// Selectors whose group size counts members, not weights.
    sum_of_members: HashSet<u32>,
}

impl Pipeline {
    fn new(index: P4InfoIndex, device_config: Vec<u8>, cookie: Option<u64>) -> Self {
        let sum_of_members = index
            .p4info()
            .action_profiles
            .iter()
            .filter(|p| {
                matches!(
                    p.selector_size_semantics,
                    Some(cfg::action_profile::SelectorSizeSemantics::SumOfMembers(_))
                )
            })
            .filter_map(|p| p.preamble.as_ref().map(|p| p.id))
            .collect();
        Self {
            index: Arc::new(index),
            device_config,
            cookie,
            sum_of_members,
        }
    }

    /// Whether groups of selector `profile_id` are sized by member count
    /// (else by the sum of weights, the P4Runtime default).
    pub(crate) fn sum_of_members(&self, profile_id: u32) -> bool {
        self.sum_of_members.contains(&profile_id)
    }

    fn name(&self) -> &str {
        self.index.package().1
    }
}

/// Everything the device holds: the running pipeline, one saved by
/// VERIFY_AND_SAVE, and the entities written for the running pipeline.
#[derive(Debug, Default)]
pub(crate) struct DeviceState {
    pub(crate) pipeline: Option<Pipeline>,
    pub(crate) saved: Option<Pipeline>,
    pub(crate) store: Store,
}

fn verify(
    dp: &dyn Dataplane,
    policy: &PipelinePolicy,
    config: Option<p4::ForwardingPipelineConfig>,
) -> Result<Pipeline, StoreError> {
    let config = config.ok_or_else(|| {
        StoreError::Invalid("SetForwardingPipelineConfig: the request has no config".into())
    })?;
    let p4info = config.p4info.ok_or_else(|| {
        StoreError::Invalid("SetForwardingPipelineConfig: the config has no P4Info".into())
    })?;
    let index = P4InfoIndex::new(p4info)?;
    policy.check(index.package().1)?;
    dp.verify_pipeline(&index, &config.p4_device_config)?;
    Ok(Pipeline::new(
        index,
        config.p4_device_config,
        config.cookie.map(|c| c.cookie),
    ))
}

/// Makes `pipe` the running pipeline. The store starts empty, except with
/// `reconcile`: then every entity of the old store is written again under
/// the new P4Info, and if any of them would not be accepted (other IDs,
/// kinds, widths, actions or parameters, or a broken reference) the commit
/// is refused with FAILED_PRECONDITION and nothing changes, as P4Runtime
/// asks of RECONCILE_AND_COMMIT.
fn commit(
    state: &mut DeviceState,
    dp: &dyn Dataplane,
    pipe: Pipeline,
    reconcile: bool,
) -> Result<(), StoreError> {
    let mut kept = None;
    if reconcile {
        let updates = std::mem::take(&mut state.store).into_updates();
        // Try every entity on a scratch store first; the memory data plane
        // forwards nothing, so the real data plane is not touched.
        let probe = crate::p4rt::MemoryDataplane::new();
        let mut scratch = Store::default();
        let refused: Vec<String> = updates
            .iter()
            .filter_map(|u| scratch.apply_update(&pipe, &probe, u.clone(), None).err())
            .map(|e| e.to_string())
            .collect();
        if let Some(first) = refused.first() {
            let total = updates.len();
            // Put the store back as it was.
            if let Some(old) = state.pipeline.as_ref() {
                for u in updates {
                    let _ = state.store.apply_update(old, &probe, u, None);
                }
            }
            return Err(StoreError::CannotReconcile(format!(
                "{} of {total} installed entities do not fit the new pipeline; the first: {first}",
                refused.len()
            )));
        }
        kept = Some(updates);
    }
    // Reconciling, the data plane keeps what it holds while the entities
    // are written again (and drops what they do not claim), so traffic
    // the kept entities carry is not interrupted.
    if kept.is_some() {
        dp.restore_pipeline(&pipe.index, &pipe.device_config)?;
    } else {
        dp.commit_pipeline(&pipe.index, &pipe.device_config)?;
    }
    state.store = Store::default();
    let name = pipe.name().to_string();
    let cookie = pipe.cookie;
    let pipe = state.pipeline.insert(pipe);
    if let Some(updates) = kept {
        let total = updates.len();
        let mut dropped = 0usize;
        for u in updates {
            if let Err(e) = state.store.apply_update(pipe, dp, u, None) {
                dropped += 1;
                warn!(error = %e, "reconcile: dropped an entity the new pipeline does not accept");
            }
        }
        if let Err(e) = dp.restore_finished() {
            warn!(error = %e, "reconcile: the data plane could not drop what no entity claimed");
        }
        info!(pipeline = %name, ?cookie, kept = total - dropped, dropped, "pipeline committed (reconciled)");
    } else {
        info!(pipeline = %name, ?cookie, "pipeline committed");
    }
    Ok(())
}

/// Handles SetForwardingPipelineConfig (the caller has checked device and
/// primary). Returns the index of the running pipeline when it changed.
pub(crate) fn set_pipeline(
    state: &mut DeviceState,
    dp: &dyn Dataplane,
    policy: &PipelinePolicy,
    action: i32,
    config: Option<p4::ForwardingPipelineConfig>,
) -> Result<Option<Arc<P4InfoIndex>>, StoreError> {
    use p4::set_forwarding_pipeline_config_request::Action;
    let action = Action::try_from(action)
        .map_err(|_| StoreError::Invalid(format!("unknown pipeline action {action}")))?;
    match action {
        Action::Unspecified => Err(StoreError::Invalid(
            "SetForwardingPipelineConfig: action is UNSPECIFIED".into(),
        )),
        Action::Verify => verify(dp, policy, config).map(|_| None),
        Action::VerifyAndSave => {
            state.saved = Some(verify(dp, policy, config)?);
            Ok(None)
        }
        Action::VerifyAndCommit | Action::ReconcileAndCommit => {
            let pipe = verify(dp, policy, config)?;
            let index = pipe.index.clone();
            commit(state, dp, pipe, action == Action::ReconcileAndCommit)?;
            state.saved = None;
            Ok(Some(index))
        }
        Action::Commit => {
            let pipe = state.saved.take().ok_or(StoreError::NothingSaved)?;
            let index = pipe.index.clone();
            commit(state, dp, pipe, false)?;
            Ok(Some(index))
        }
    }
}

/// Handles GetForwardingPipelineConfig (the caller has checked the device).
pub(crate) fn get_pipeline(
    state: &DeviceState,
    response_type: i32,
) -> Result<p4::ForwardingPipelineConfig, StoreError> {
    use p4::get_forwarding_pipeline_config_request::ResponseType;
    let kind = ResponseType::try_from(response_type)
        .map_err(|_| StoreError::Invalid(format!("unknown response type {response_type}")))?;
    let pipe = state.pipeline.as_ref().ok_or(StoreError::NoPipeline)?;
    let cookie = pipe
        .cookie
        .map(|cookie| p4::forwarding_pipeline_config::Cookie { cookie });
    let with_p4info = matches!(kind, ResponseType::All | ResponseType::P4infoAndCookie);
    let with_device_config = matches!(
        kind,
        ResponseType::All | ResponseType::DeviceConfigAndCookie
    );
    Ok(p4::ForwardingPipelineConfig {
        p4info: with_p4info.then(|| pipe.index.p4info().clone()),
        p4_device_config: if with_device_config {
            pipe.device_config.clone()
        } else {
            Vec::new()
        },
        cookie,
    })
}

/// How a restore went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// Entities written again.
    pub restored: usize,
    /// Saved entities the pipeline or the data plane refused (logged).
    pub refused: usize,
}

/// Makes a saved pipeline the running one again, without starting the
/// data plane empty ([`Dataplane::restore_pipeline`]), and replays the
/// saved entities (the caller has read them from the state file).
pub(crate) fn restore(
    state: &mut DeviceState,
    dp: &dyn Dataplane,
    policy: &PipelinePolicy,
    config: p4::ForwardingPipelineConfig,
    updates: Vec<p4::Update>,
) -> Result<(Arc<P4InfoIndex>, RestoreOutcome), StoreError> {
    let p4info = config
        .p4info
        .ok_or_else(|| StoreError::Invalid("the saved state has no P4Info".into()))?;
    let index = P4InfoIndex::new(p4info)?;
    policy.check(index.package().1)?;
    dp.verify_pipeline(&index, &config.p4_device_config)?;
    let pipe = Pipeline::new(
        index,
        config.p4_device_config,
        config.cookie.map(|c| c.cookie),
    );
    dp.restore_pipeline(&pipe.index, &pipe.device_config)?;
    state.store = Store::default();
    state.saved = None;
    let pipe = state.pipeline.insert(pipe);
    let mut outcome = RestoreOutcome::default();
    for u in updates {
        match state.store.apply_update(pipe, dp, u, None) {
            Ok(()) => outcome.restored += 1,
            Err(e) => {
                outcome.refused += 1;
                warn!(error = %e, "restore: a saved entity was refused");
            }
        }
    }
    if let Err(e) = dp.restore_finished() {
        warn!(error = %e, "restore: the data plane could not finish taking over its state");
    }
    info!(
        pipeline = %pipe.name(),
        cookie = ?pipe.cookie,
        restored = outcome.restored,
        refused = outcome.refused,
        "pipeline restored from the saved state"
    );
    Ok((pipe.index.clone(), outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_what_it_accepts() {
        assert_eq!(PipelinePolicy::from_names(vec![]), PipelinePolicy::Any);
        let p = PipelinePolicy::from_names(vec!["fabric".into(), "host".into()]);
        assert!(p.check("fabric").is_ok());
        let e = p.check("other").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let msg = e.to_string();
        assert!(
            msg.contains("\"other\"") && msg.contains("fabric, host"),
            "{msg}"
        );
    }
}
