//! Migration advice as the API serves it: for each running job, whether
//! moving one of its tasks would pay off under the energy prices, carbon
//! and network of now (`solyx_orchestrator::migration::advise`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::orchestrator::OrchestratorError;

/// What changed enough to propose a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdviceTrigger {
    /// The energy price where the task runs, against the target.
    Price,
    /// The carbon intensity.
    Carbon,
    /// Congestion between the task's copies.
    Congestion,
}

/// Expected saving of a move over the remaining run time, net of the
/// move itself (during which the job burns energy without progress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdviceSaving {
    /// Energy cost saved, USD.
    pub usd: f64,
    /// Emissions saved, kg CO2eq.
    pub kg_co2: f64,
    /// Run time saved by faster communication, seconds.
    pub time_s: f64,
    /// Drop of the placement's weighted cost, as a share of the current one.
    pub relative_cost: f64,
}

/// A proposed move of one task (all its copies) of a running job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MoveAdvice {
    /// Job ID.
    pub job: String,
    /// Job name.
    pub name: String,
    /// Task name.
    pub task: String,
    /// Node of each copy now.
    pub from: Vec<String>,
    /// Node of each copy after the move.
    pub to: Vec<String>,
    /// Sites of `from`, each once.
    pub from_sites: Vec<String>,
    /// Sites of `to`, each once.
    pub to_sites: Vec<String>,
    /// Copies whose node changes.
    pub moved: u32,
    /// What justifies the move.
    pub triggers: Vec<AdviceTrigger>,
    /// Expected saving.
    pub saving: AdviceSaving,
    /// Run time left the saving is counted over, seconds.
    pub remaining_s: f64,
    /// Weighted cost of the current placement now (lower is better).
    pub cost_now: f64,
    /// Weighted cost after the move.
    pub cost_after: f64,
    /// Cost by term now (`comm`, `hops`, `price`, `carbon`, `pack`).
    pub cost_breakdown_now: BTreeMap<String, f64>,
    /// Cost by term after the move.
    pub cost_breakdown_after: BTreeMap<String, f64>,
    /// Energy cost now and after, USD per hour.
    pub usd_per_hour: [f64; 2],
    /// Emissions now and after, kg CO2eq per hour.
    pub kg_co2_per_hour: [f64; 2],
    /// The reasons in one sentence.
    pub explanation: String,
}

/// What the API needs to give migration advice.
pub trait Advisor: Send + Sync + 'static {
    /// Proposed moves for one running job, or for every running job,
    /// with savings counted over `remaining_s` seconds of run time left
    /// (`None`: the default horizon). An empty list when no move pays off.
    ///
    /// # Errors
    /// [`OrchestratorError::NotFound`] for an unknown job,
    /// [`OrchestratorError::Internal`].
    fn advice(
        &self,
        job: Option<&str>,
        remaining_s: Option<f64>,
    ) -> Result<Vec<MoveAdvice>, OrchestratorError>;
}
