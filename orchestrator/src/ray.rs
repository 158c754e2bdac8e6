//! Submitting a placed job to Ray through the Ray Jobs REST API of the
//! head node's dashboard (`POST /api/jobs/`, `GET /api/jobs/{id}`,
//! `GET /api/jobs/{id}/logs`, `POST /api/jobs/{id}/stop`).
//!
//! Ray places work by resources, so pinning uses custom node resources:
//! every Ray node is started with `--resources '{"solyx_node:<name>": 1}'`
//! (its Solyx node name). The submission pins the driver to the node of
//! task 0 through `entrypoint_resources`, and hands the whole placement to
//! the driver in the `SOLYX_PLACEMENT` environment variable (JSON), so the
//! driver starts task i with `resources={"solyx_node:<node i>": 0.01}`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::placement::Placement;

/// Custom Ray resource that marks a Solyx node.
pub fn node_resource(node: &str) -> String {
    format!("solyx_node:{node}")
}

/// Share of a node's marker resource one pinned task takes (any amount
/// above zero pins; small keeps room for many tasks per node).
pub const PIN_AMOUNT: f64 = 0.01;

/// Body of `POST /api/jobs/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JobSubmitRequest {
    /// Shell command the driver runs.
    pub entrypoint: String,
    /// Caller-chosen id; Ray makes one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    /// Ray runtime environment (`env_vars`, `working_dir`, `pip`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_env: Option<serde_json::Value>,
    /// Free-form labels shown by `ray job list`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// CPUs reserved for the driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint_num_cpus: Option<f64>,
    /// GPUs reserved for the driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint_num_gpus: Option<f64>,
    /// Custom resources reserved for the driver.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entrypoint_resources: BTreeMap<String, f64>,
}

/// Reply to a submission.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct JobSubmitResponse {
    /// The submission id to poll.
    pub submission_id: String,
    /// Ray's job id, when already known.
    #[serde(default)]
    pub job_id: Option<String>,
}

/// State of a submitted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    /// Waiting for resources or the runtime environment.
    Pending,
    /// The driver runs.
    Running,
    /// Stopped on request.
    Stopped,
    /// The driver exited with 0.
    Succeeded,
    /// The driver failed.
    Failed,
}

impl JobStatus {
    /// True once the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Stopped | JobStatus::Succeeded | JobStatus::Failed
        )
    }
}

/// What `GET /api/jobs/{id}` returns (the fields Solyx reads).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JobDetails {
    /// Current state.
    pub status: JobStatus,
    /// Ray's explanation of the state.
    #[serde(default)]
    pub message: Option<String>,
    /// The submission id.
    #[serde(default)]
    pub submission_id: Option<String>,
    /// The driver command.
    #[serde(default)]
    pub entrypoint: String,
    /// Labels given at submission.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Error from the Ray Jobs API.
#[derive(Debug, thiserror::Error)]
pub enum RayError {
    /// The request did not complete.
    #[error("Ray Jobs API {url}: request failed")]
    Http {
        /// URL called.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// Ray answered with an error status.
    #[error("Ray Jobs API {url}: HTTP {status}: {body}")]
    Status {
        /// URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// Ray's error text.
        body: String,
    },
    /// The job did not finish in time.
    #[error("Ray job {id} still {status:?} after {waited:?}")]
    Timeout {
        /// Submission id.
        id: String,
        /// Last state seen.
        status: JobStatus,
        /// How long we waited.
        waited: Duration,
    },
}

/// Client of one Ray head's Jobs API.
#[derive(Debug, Clone)]
pub struct RayJobsClient {
    base: String,
    http: reqwest::Client,
}

/// The placement as the driver reads it from `SOLYX_PLACEMENT`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriverPlacement {
    /// Job name.
    pub job: String,
    /// One entry per task.
    pub tasks: Vec<DriverTask>,
}

/// One task of `DriverPlacement`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriverTask {
    /// Task index.
    pub task: u32,
    /// Solyx node.
    pub node: String,
    /// Ray resource that pins to it.
    pub resource: String,
}

/// The submission that runs `entrypoint` as the driver of a placed job.
pub fn submission_for(placement: &Placement, entrypoint: &str) -> JobSubmitRequest {
    let tasks: Vec<DriverTask> = placement
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| DriverTask {
            task: i as u32,
            node: n.clone(),
            resource: node_resource(n),
        })
        .collect();
    let driver = DriverPlacement {
        job: placement.job.clone(),
        tasks,
    };
    let env = serde_json::to_string(&driver).unwrap_or_default();
    let mut entrypoint_resources = BTreeMap::new();
    if let Some(first) = placement.nodes.first() {
        entrypoint_resources.insert(node_resource(first), PIN_AMOUNT);
    }
    JobSubmitRequest {
        entrypoint: entrypoint.to_string(),
        submission_id: None,
        runtime_env: Some(serde_json::json!({ "env_vars": { "SOLYX_PLACEMENT": env } })),
        metadata: [("solyx_job".to_string(), placement.job.clone())]
            .into_iter()
            .collect(),
        entrypoint_num_cpus: None,
        entrypoint_num_gpus: None,
        entrypoint_resources,
    }
}

impl RayJobsClient {
    /// A client for the dashboard at `base` (e.g. `http://127.0.0.1:8265`).
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        RayJobsClient {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    async fn check(url: &str, resp: reqwest::Response) -> Result<reqwest::Response, RayError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(RayError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            body,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: String) -> Result<T, RayError> {
        let http = |source| RayError::Http {
            url: url.clone(),
            source,
        };
        let resp = self.http.get(&url).send().await.map_err(http)?;
        Self::check(&url, resp).await?.json().await.map_err(http)
    }

    /// Submits a job.
    pub async fn submit(&self, req: &JobSubmitRequest) -> Result<JobSubmitResponse, RayError> {
        let url = format!("{}/api/jobs/", self.base);
        let http = |source| RayError::Http {
            url: url.clone(),
            source,
        };
        let resp = self.http.post(&url).json(req).send().await.map_err(http)?;
        Self::check(&url, resp).await?.json().await.map_err(http)
    }

    /// A job's state.
    pub async fn status(&self, id: &str) -> Result<JobDetails, RayError> {
        self.get_json(format!("{}/api/jobs/{id}", self.base)).await
    }

    /// A job's driver output so far.
    pub async fn logs(&self, id: &str) -> Result<String, RayError> {
        #[derive(Deserialize)]
        struct Logs {
            logs: String,
        }
        let l: Logs = self
            .get_json(format!("{}/api/jobs/{id}/logs", self.base))
            .await?;
        Ok(l.logs)
    }

    /// Asks Ray to stop a job; true when it was running.
    pub async fn stop(&self, id: &str) -> Result<bool, RayError> {
        #[derive(Deserialize)]
        struct Stopped {
            stopped: bool,
        }
        let url = format!("{}/api/jobs/{id}/stop", self.base);
        let http = |source| RayError::Http {
            url: url.clone(),
            source,
        };
        let resp = self.http.post(&url).send().await.map_err(http)?;
        let s: Stopped = Self::check(&url, resp).await?.json().await.map_err(http)?;
        Ok(s.stopped)
    }

    /// Polls a job every `every` until it ends or `timeout` passes.
    pub async fn wait(
        &self,
        id: &str,
        every: Duration,
        timeout: Duration,
    ) -> Result<JobDetails, RayError> {
        let start = tokio::time::Instant::now();
        loop {
            let d = self.status(id).await?;
            if d.status.is_terminal() {
                return Ok(d);
            }
            if start.elapsed() >= timeout {
                return Err(RayError::Timeout {
                    id: id.to_string(),
                    status: d.status,
                    waited: timeout,
                });
            }
            tokio::time::sleep(every).await;
        }
    }
}
