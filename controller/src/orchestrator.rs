//! What the REST API needs from the orchestrator (inventory, jobs,
//! placements), as a trait the orchestrator implements. The API passes
//! requests through and answers 503 when no orchestrator is attached.
//!
//! Calls are synchronous and must return quickly (they run on the API's
//! blocking pool): an implementation that places a job in the background
//! returns the job as `pending` and updates it later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::state::intents::valid_name;
use crate::state::InvalidField;

/// Accelerators of one model on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Accelerators {
    /// `gpu`, `tpu`, `fpga`...
    pub kind: String,
    /// Model name, e.g. `A100`.
    pub model: String,
    /// How many.
    pub count: u32,
    /// How many are not allocated (GPUs shared by fractions count as
    /// taken).
    pub free: u32,
    /// Memory of each, in MiB, when known.
    pub memory_mib: Option<u64>,
}

/// A machine that runs workloads, with what it has and what is free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    /// Node name (the host's name in the topology).
    pub name: String,
    /// Site (micro data centre).
    pub site: Option<String>,
    /// CPU cores.
    pub cpus: u32,
    /// CPU cores not allocated.
    pub cpus_free: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Memory not allocated, in MiB.
    pub memory_free_mib: u64,
    /// Accelerators by model.
    pub accelerators: Vec<Accelerators>,
    /// Allocations holding resources on the node (job IDs).
    pub allocations: Vec<String>,
    /// Whether the node's agent reported recently.
    pub ready: bool,
}

/// One part of a job: `replicas` identical tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Task name, unique in the job.
    #[schema(pattern = "^[a-z0-9_-]{1,63}$")]
    pub name: String,
    /// Identical copies (gang-scheduled together).
    #[serde(default = "one")]
    #[schema(minimum = 1)]
    pub replicas: u32,
    /// CPU cores per copy.
    #[serde(default)]
    pub cpus: u32,
    /// Memory per copy, in MiB.
    #[serde(default)]
    pub memory_mib: u64,
    /// GPUs per copy.
    #[serde(default)]
    pub gpus: u32,
    /// GPU model required, any when absent.
    #[serde(default)]
    pub gpu_model: Option<String>,
    /// Traffic between the copies of this task on every step (the
    /// scheduler keeps talkative copies close); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
}

/// How the copies of a task talk to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrafficPattern {
    /// No traffic between copies.
    None,
    /// Ring all-reduce: copy i sends to copy i+1 (mod N).
    RingAllreduce,
    /// The first `servers` copies hold the model; every other copy pushes
    /// gradients to and pulls weights from each of them.
    ParameterServer,
    /// Copy i sends activations to copy i+1 and gets gradients back.
    Pipeline,
}

/// Traffic between the copies of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// The pattern.
    pub pattern: TrafficPattern,
    /// Model or activation bytes moved per step.
    #[serde(default)]
    pub bytes_per_step: u64,
    /// Compute time of one step, in milliseconds (the rate the traffic is
    /// offered at).
    #[serde(default = "one_second_ms")]
    #[schema(minimum = 1)]
    pub step_time_ms: u64,
    /// Parameter servers among the copies (`parameter_server` only).
    #[serde(default = "one")]
    pub servers: u32,
}

fn one_second_ms() -> u64 {
    1000
}

fn one() -> u32 {
    1
}

/// A job as a client submits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name: lowercase letters, digits, `-` and `_`, at most 63.
    #[schema(example = "llama-finetune", pattern = "^[a-z0-9_-]{1,63}$")]
    pub name: String,
    /// Tenant the job is charged to (quotas).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The tasks; all are placed or none (gang scheduling).
    pub tasks: Vec<TaskSpec>,
    /// Free-form labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl JobSpec {
    /// Checks the fields that need no inventory.
    ///
    /// # Errors
    /// The first invalid field, named as in the JSON document.
    pub fn validate(&self) -> Result<(), InvalidField> {
        if !valid_name(&self.name, 63) {
            return Err(InvalidField::new(
                "name",
                "must be 1 to 63 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        if self.tasks.is_empty() {
            return Err(InvalidField::new("tasks", "must list at least one task"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.tasks.iter().enumerate() {
            if !valid_name(&t.name, 63) {
                return Err(InvalidField::new(
                    format!("tasks[{i}].name"),
                    "must be 1 to 63 characters of a-z, 0-9, '-' and '_'",
                ));
            }
            if !seen.insert(&t.name) {
                return Err(InvalidField::new(
                    format!("tasks[{i}].name"),
                    format!("{:?} appears twice", t.name),
                ));
            }
            if t.replicas == 0 {
                return Err(InvalidField::new(
                    format!("tasks[{i}].replicas"),
                    "must be at least 1",
                ));
            }
            if t.cpus == 0 && t.gpus == 0 {
                return Err(InvalidField::new(
                    format!("tasks[{i}].cpus"),
                    "a task needs at least one CPU or one GPU",
                ));
            }
            if let Some(tr) = &t.traffic {
                let at = |f: &str| format!("tasks[{i}].traffic.{f}");
                if tr.pattern != TrafficPattern::None && tr.bytes_per_step == 0 {
                    return Err(InvalidField::new(
                        at("bytes_per_step"),
                        "must be set for a traffic pattern",
                    ));
                }
                if tr.step_time_ms == 0 {
                    return Err(InvalidField::new(at("step_time_ms"), "must be at least 1"));
                }
                if tr.pattern == TrafficPattern::ParameterServer
                    && (tr.servers == 0 || tr.servers >= t.replicas)
                {
                    return Err(InvalidField::new(
                        at("servers"),
                        format!(
                            "{} servers need at least one worker among {} replicas",
                            tr.servers, t.replicas
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a placement.
    Pending,
    /// Placed; tasks started on their nodes.
    Running,
    /// Every task ended well.
    Succeeded,
    /// A task failed or no placement fits.
    Failed,
}

/// A submitted job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Identifier given by the orchestrator.
    pub id: String,
    /// What was submitted.
    pub spec: JobSpec,
    /// Where it stands.
    pub state: JobState,
    /// Why, in words, when pending or failed.
    pub reason: Option<String>,
}

/// The node chosen for one task copy, with the cost and its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Placement {
    /// Job ID.
    pub job: String,
    /// Task name.
    pub task: String,
    /// Copy number, from 0.
    pub replica: u32,
    /// Chosen node.
    pub node: String,
    /// Total cost the scheduler minimised (lower is better).
    pub cost: f64,
    /// Cost by component (network, energy, carbon...).
    pub cost_breakdown: BTreeMap<String, f64>,
    /// Why this node, in words.
    pub explanation: String,
}

/// Why the orchestrator refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// The request is not acceptable as given (names the field).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// A job with that name exists.
    #[error("a job named {0:?} exists")]
    Exists(String),
    /// No such job.
    #[error("no job {0:?}")]
    NotFound(String),
    /// The orchestrator itself failed.
    #[error("orchestrator failure")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The orchestrator as the API sees it.
pub trait Orchestrator: Send + Sync + 'static {
    /// The inventory.
    ///
    /// # Errors
    /// [`OrchestratorError::Internal`].
    fn nodes(&self) -> Result<Vec<Node>, OrchestratorError>;

    /// Accepts a job (already checked with [`JobSpec::validate`]).
    ///
    /// # Errors
    /// [`OrchestratorError::Invalid`] (e.g. a GPU model no node has),
    /// [`OrchestratorError::Exists`], [`OrchestratorError::Internal`].
    fn submit(&self, spec: JobSpec) -> Result<Job, OrchestratorError>;

    /// Every job.
    ///
    /// # Errors
    /// [`OrchestratorError::Internal`].
    fn jobs(&self) -> Result<Vec<Job>, OrchestratorError>;

    /// One job.
    ///
    /// # Errors
    /// [`OrchestratorError::NotFound`], [`OrchestratorError::Internal`].
    fn job(&self, id: &str) -> Result<Job, OrchestratorError>;

    /// The placements of one job, or of every job.
    ///
    /// # Errors
    /// [`OrchestratorError::NotFound`] for an unknown job,
    /// [`OrchestratorError::Internal`].
    fn placements(&self, job: Option<&str>) -> Result<Vec<Placement>, OrchestratorError>;
}
