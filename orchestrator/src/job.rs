//! Job specifications: N tasks with the same per-task resources, optional
//! gang scheduling, the traffic between tasks and placement constraints.
//! Read from YAML (docs/orchestrator.md, "Job file").

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::resources::{gpus_to_milli, AcceleratorKey, AcceleratorKind, Demand, Quantity};

/// How the tasks of a job talk to each other on every training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrafficPattern {
    /// No traffic between tasks (independent replicas, batch work).
    None,
    /// Ring all-reduce: task i sends to task i+1 (mod N) the bytes of
    /// `2 (N-1) / N * bytes_per_step` per step.
    RingAllreduce,
    /// Parameter servers: the first `servers` tasks hold the model; every
    /// worker pushes gradients to and pulls weights from each server,
    /// `2 * bytes_per_step / servers` per worker-server pair per step.
    ParameterServer,
    /// Pipeline: task i sends activations to task i+1 and gets gradients
    /// back, `bytes_per_step` per neighbouring pair per step.
    Pipeline,
}

/// Traffic between the tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Pattern.
    pub pattern: TrafficPattern,
    /// Model or activation size moved per step, bytes (YAML takes units:
    /// `2GiB`).
    #[serde(default, deserialize_with = "de_bytes")]
    pub bytes_per_step: u64,
    /// Compute time of one step, seconds (YAML: `800ms`, `1s`); sets the
    /// rate the traffic is offered at. Default 1 s.
    #[serde(
        rename = "step_time",
        default = "one_second",
        deserialize_with = "de_seconds"
    )]
    pub step_time_s: f64,
    /// Parameter servers (parameter_server only). Default 1.
    #[serde(default = "one")]
    pub servers: u32,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            pattern: TrafficPattern::None,
            bytes_per_step: 0,
            step_time_s: 1.0,
            servers: 1,
        }
    }
}

fn one() -> u32 {
    1
}

fn one_second() -> f64 {
    1.0
}

/// Placement constraints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Sites the tasks may run in; empty means any.
    #[serde(default)]
    pub sites: Vec<String>,
    /// Highest one-way latency allowed between any two tasks' nodes,
    /// seconds (YAML: `50us`, `2ms`).
    #[serde(rename = "max_latency", default, deserialize_with = "de_opt_seconds")]
    pub max_latency_s: Option<f64>,
}

/// A job to place.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name, unique per tenant.
    pub name: String,
    /// Tenant charged (quotas).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Number of tasks.
    pub tasks: u32,
    /// All tasks or none (gang scheduling). Default true.
    #[serde(default = "yes")]
    pub gang: bool,
    /// Resources of each task.
    #[serde(deserialize_with = "de_demand")]
    pub resources: Demand,
    /// Traffic between tasks. Default: none.
    #[serde(default)]
    pub traffic: Traffic,
    /// Where the tasks may go.
    #[serde(default)]
    pub constraints: Constraints,
    /// Expected run time, seconds (YAML: `3h`); prices energy and carbon
    /// and bounds migration savings. Default 1 h.
    #[serde(
        rename = "duration",
        default = "one_hour",
        deserialize_with = "de_seconds"
    )]
    pub duration_s: f64,
}

fn default_tenant() -> String {
    "default".into()
}

fn yes() -> bool {
    true
}

fn one_hour() -> f64 {
    3600.0
}

/// Error from reading a job file.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or a value is invalid.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Field, line and reason.
        message: String,
    },
}

impl JobSpec {
    /// Reads a job file.
    pub fn load(path: &Path) -> Result<Self, JobFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses job YAML; `origin` names the input in errors.
    pub fn parse(yaml: &str, origin: &str) -> Result<Self, JobFileError> {
        let invalid = |message: String| JobFileError::Invalid {
            path: origin.into(),
            message,
        };
        let job: JobSpec = serde_norway::from_str(yaml).map_err(|e| invalid(e.to_string()))?;
        job.validate().map_err(invalid)?;
        Ok(job)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("name: must not be empty".into());
        }
        if self.tasks == 0 {
            return Err("tasks: must be at least 1".into());
        }
        if self.resources.is_empty() {
            return Err("resources: a task must ask for cpus, memory, gpus or accelerators".into());
        }
        if self.traffic.pattern == TrafficPattern::ParameterServer
            && (self.traffic.servers == 0 || self.traffic.servers >= self.tasks)
        {
            return Err(format!(
                "traffic.servers: {} servers need at least one worker among {} tasks",
                self.traffic.servers, self.tasks
            ));
        }
        if self.traffic.pattern != TrafficPattern::None && self.traffic.bytes_per_step == 0 {
            return Err("traffic.bytes_per_step: must be set for a traffic pattern".into());
        }
        if self.traffic.step_time_s <= 0.0 {
            return Err("traffic.step_time: must be positive".into());
        }
        if self.duration_s <= 0.0 {
            return Err("duration: must be positive".into());
        }
        Ok(())
    }

    /// The traffic of one step as (from task, to task, bytes). Pairs are
    /// listed once; the bytes count both directions.
    pub fn traffic_edges(&self) -> Vec<(u32, u32, f64)> {
        let n = self.tasks;
        let s = self.traffic.bytes_per_step as f64;
        match self.traffic.pattern {
            TrafficPattern::None => Vec::new(),
            TrafficPattern::RingAllreduce if n < 2 => Vec::new(),
            TrafficPattern::RingAllreduce => {
                let per = 2.0 * f64::from(n - 1) / f64::from(n) * s;
                if n == 2 {
                    return vec![(0, 1, 2.0 * per)];
                }
                (0..n).map(|i| (i, (i + 1) % n, per)).collect()
            }
            TrafficPattern::ParameterServer => {
                let k = self.traffic.servers.min(n);
                let per = 2.0 * s / f64::from(k.max(1));
                (k..n)
                    .flat_map(|w| (0..k).map(move |p| (w, p, per)))
                    .collect()
            }
            TrafficPattern::Pipeline => (0..n.saturating_sub(1)).map(|i| (i, i + 1, s)).collect(),
        }
    }

    /// Rounds of latency-bound exchanges per step (ring all-reduce passes
    /// its chunks 2 (N-1) times; the others exchange once each way).
    pub fn latency_rounds(&self) -> f64 {
        match self.traffic.pattern {
            TrafficPattern::None => 0.0,
            TrafficPattern::RingAllreduce => 2.0 * f64::from(self.tasks.saturating_sub(1)),
            TrafficPattern::ParameterServer => 2.0,
            TrafficPattern::Pipeline => 2.0 * f64::from(self.tasks.saturating_sub(1)),
        }
    }
}

/// Per-task resources as written in YAML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemandYaml {
    #[serde(default)]
    cpus: Option<Quantity>,
    #[serde(default)]
    memory: Option<Quantity>,
    #[serde(default)]
    gpus: f64,
    #[serde(default)]
    gpu_models: Vec<String>,
    #[serde(default)]
    accelerators: Vec<AcceleratorYaml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceleratorYaml {
    kind: AcceleratorKind,
    model: String,
    count: u64,
}

fn de_demand<'de, D: Deserializer<'de>>(d: D) -> Result<Demand, D::Error> {
    use serde::de::Error;
    let y = DemandYaml::deserialize(d)?;
    let mut accelerators = BTreeMap::new();
    for a in y.accelerators {
        *accelerators
            .entry(AcceleratorKey {
                kind: a.kind,
                model: a.model,
            })
            .or_insert(0) += a.count;
    }
    Ok(Demand {
        cpu_milli: y
            .cpus
            .map(|q| q.cpu_milli())
            .transpose()
            .map_err(D::Error::custom)?
            .unwrap_or(0),
        memory_mib: y
            .memory
            .map(|q| q.memory_mib())
            .transpose()
            .map_err(D::Error::custom)?
            .unwrap_or(0),
        gpu_milli: gpus_to_milli(y.gpus).map_err(D::Error::custom)?,
        gpu_models: y.gpu_models,
        accelerators,
    })
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let q = Quantity::deserialize(d)?;
    let text = match q {
        Quantity::Number(n) => n.to_string(),
        Quantity::Text(t) => t,
    };
    parse_bytes(&text).map_err(serde::de::Error::custom)
}

/// A byte size with the units of `parse_memory_mib`, in bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid size `{text}`: expected e.g. 512MiB"))?;
    let mul = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" | "Ki" => 1024.0,
        "MiB" | "Mi" => 1024f64.powi(2),
        "GiB" | "Gi" => 1024f64.powi(3),
        "TiB" | "Ti" => 1024f64.powi(4),
        "KB" | "K" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "TB" | "T" => 1e12,
        _ => {
            return Err(format!(
                "invalid size `{text}`: unit must be B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
            ))
        }
    };
    Ok((v * mul).round() as u64)
}

/// A duration: `250us`, `5ms`, `2s`, `10m`, `3h`, or a number of seconds.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: expected e.g. 5ms"))?;
    let mul = match unit.trim() {
        "" | "s" => 1.0,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration `{text}`: unit must be us, ms, s, m or h"
            ))
        }
    };
    Ok(v * mul)
}

fn de_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let text = match Quantity::deserialize(d)? {
        Quantity::Number(n) => n.to_string(),
        Quantity::Text(t) => t,
    };
    parse_seconds(&text).map_err(serde::de::Error::custom)
}

fn de_opt_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    de_seconds(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "
name: llm-finetune
tenant: team-a
tasks: 4
gang: true
resources:
  cpus: 8
  memory: 64GiB
  gpus: 1
  gpu_models: [A100]
traffic:
  pattern: ring_allreduce
  bytes_per_step: 1GiB
  step_time: 500ms
constraints:
  sites: [site-a]
  max_latency: 50us
duration: 3h
";

    #[test]
    fn parses_a_documented_job() {
        let j = JobSpec::parse(JOB, "job.yaml").expect("valid");
        assert_eq!(j.tasks, 4);
        assert_eq!(j.resources.gpu_milli, 1000);
        assert_eq!(j.resources.memory_mib, 65536);
        assert_eq!(j.traffic.bytes_per_step, 1 << 30);
        assert_eq!(j.traffic.step_time_s, 0.5);
        assert!((j.constraints.max_latency_s.unwrap_or(0.0) - 50e-6).abs() < 1e-12);
        assert_eq!(j.duration_s, 10800.0);
        let edges = j.traffic_edges();
        assert_eq!(edges.len(), 4);
        assert!((edges[0].2 - 1.5 * f64::from(1u32 << 30)).abs() < 1.0);
    }

    #[test]
    fn errors_name_the_field_and_line() {
        let bad = JOB.replace("bytes_per_step: 1GiB", "bytes_per_step: 1 gigaflop");
        let e = JobSpec::parse(&bad, "job.yaml")
            .expect_err("bad size")
            .to_string();
        assert!(
            e.contains("job.yaml") && e.contains("traffic") && e.contains("line 12"),
            "{e}"
        );
        let bad = JOB.replace("pattern: ring_allreduce", "pattern: mesh");
        let e = JobSpec::parse(&bad, "job.yaml")
            .expect_err("bad pattern")
            .to_string();
        assert!(e.contains("traffic.pattern") || e.contains("mesh"), "{e}");
        let bad = JOB.replace("tasks: 4", "tasks: 0");
        let e = JobSpec::parse(&bad, "job.yaml")
            .expect_err("no tasks")
            .to_string();
        assert!(e.contains("tasks"), "{e}");
    }

    #[test]
    fn parameter_server_edges_connect_workers_to_servers() {
        let mut j = JobSpec::parse(JOB, "job.yaml").expect("valid");
        j.traffic.pattern = TrafficPattern::ParameterServer;
        j.traffic.servers = 1;
        let e = j.traffic_edges();
        assert_eq!(
            e.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            vec![(1, 0), (2, 0), (3, 0)]
        );
    }
}
