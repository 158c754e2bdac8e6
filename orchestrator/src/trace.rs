//! Reading the Alibaba GPU cluster trace 2023 (`cluster-trace-gpu-v2023`:
//! `openb_node_list_*.csv`, `openb_pod_list_*.csv`) and turning its pods
//! into jobs for replay.
//!
//! The trace lists pods, not jobs. Replicas of one training job are
//! submitted together with identical requests, so pods with the same
//! request (CPU, memory, GPU count and share, GPU models) created within
//! `window_s` of the previous such pod form one job, up to `max_tasks`.
//! Jobs of two or more GPU tasks get ring all-reduce traffic; the trace
//! has no traffic, so its size per step is a parameter of the replay.

use std::path::Path;

use crate::inventory::{Node, NodeSource};
use crate::job::{Constraints, JobSpec, Traffic, TrafficPattern};
use crate::resources::{Demand, GpuGroup};

/// Error from reading the trace.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TraceError {
    /// The file.
    pub path: String,
    /// What is wrong, with the line when known.
    pub reason: String,
}

/// One pod of the trace.
#[derive(Debug, Clone)]
pub struct TracePod {
    /// Pod name.
    pub name: String,
    /// CPU millicores.
    pub cpu_milli: u64,
    /// Memory MiB.
    pub memory_mib: u64,
    /// GPUs.
    pub num_gpu: u32,
    /// Share of each GPU, 1000 = whole.
    pub gpu_milli: u64,
    /// Acceptable GPU models (empty: any).
    pub gpu_spec: Vec<String>,
    /// Creation time, seconds from the trace start.
    pub creation_s: i64,
    /// Deletion time, seconds from the trace start.
    pub deletion_s: i64,
}

/// A job built from pods.
#[derive(Debug, Clone)]
pub struct TraceJob {
    /// The job.
    pub spec: JobSpec,
    /// Arrival, seconds from the trace start.
    pub arrival_s: i64,
    /// Departure, seconds from the trace start.
    pub departure_s: i64,
}

fn read(path: &Path) -> Result<csv::Reader<std::fs::File>, TraceError> {
    csv::Reader::from_path(path).map_err(|e| TraceError {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Reads a node list (`sn,cpu_milli,memory_mib,gpu,model`) as nodes of
/// site `site`.
pub fn load_nodes(path: &Path, site: &str) -> Result<Vec<Node>, TraceError> {
    let mut rdr = read(path)?;
    let mut nodes = Vec::new();
    for rec in rdr.records() {
        let bad = |reason: String| TraceError {
            path: path.display().to_string(),
            reason,
        };
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let num = |i: usize, what: &str| -> Result<u64, TraceError> {
            rec.get(i)
                .unwrap_or("")
                .trim()
                .parse()
                .map_err(|_| bad(format!("line {line}: {what} is not a whole number")))
        };
        let gpus = num(3, "gpu")? as u32;
        let model = rec.get(4).unwrap_or("").trim().to_string();
        nodes.push(Node {
            name: rec.get(0).unwrap_or("").trim().to_string(),
            site: site.to_string(),
            rack: String::new(),
            cpu_milli: num(1, "cpu_milli")?,
            memory_mib: num(2, "memory_mib")?,
            gpus: if gpus > 0 {
                vec![GpuGroup {
                    model: if model.is_empty() {
                        "unknown".into()
                    } else {
                        model
                    },
                    count: gpus,
                    memory_mib: 0,
                }]
            } else {
                Vec::new()
            },
            accelerators: Vec::new(),
            power_watts: 0,
            source: NodeSource::Declared,
        });
    }
    Ok(nodes)
}

/// Reads a pod list with creation and deletion times.
pub fn load_pods(path: &Path) -> Result<Vec<TracePod>, TraceError> {
    let mut rdr = read(path)?;
    let bad = |reason: String| TraceError {
        path: path.display().to_string(),
        reason,
    };
    let headers = rdr.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            bad(format!(
                "no `{name}` column (this replay needs a pod list with times)"
            ))
        })
    };
    let (c_name, c_cpu, c_mem, c_ngpu, c_gmilli) = (
        col("name")?,
        col("cpu_milli")?,
        col("memory_mib")?,
        col("num_gpu")?,
        col("gpu_milli")?,
    );
    let (c_create, c_delete) = (col("creation_time")?, col("deletion_time")?);
    let c_spec = headers.iter().position(|h| h == "gpu_spec");
    let mut pods = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let num = |i: usize| -> Result<i64, TraceError> {
            rec.get(i).unwrap_or("").trim().parse().map_err(|_| {
                bad(format!(
                    "line {line}: column {} is not a whole number",
                    headers.get(i).unwrap_or("?")
                ))
            })
        };
        let spec = c_spec
            .and_then(|c| rec.get(c))
            .map(|s| {
                s.split('|')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        pods.push(TracePod {
            name: rec.get(c_name).unwrap_or("").to_string(),
            cpu_milli: num(c_cpu)?.max(0) as u64,
            memory_mib: num(c_mem)?.max(0) as u64,
            num_gpu: num(c_ngpu)?.max(0) as u32,
            gpu_milli: num(c_gmilli)?.max(0) as u64,
            gpu_spec: spec,
            creation_s: num(c_create)?,
            deletion_s: num(c_delete)?,
        });
    }
    Ok(pods)
}

/// How pods become jobs.
#[derive(Debug, Clone)]
pub struct JobDerivation {
    /// Pods with the same request created within this many seconds of the
    /// previous one join its job.
    pub window_s: i64,
    /// Largest job.
    pub max_tasks: u32,
    /// Traffic per step of multi-task GPU jobs (ring all-reduce).
    pub bytes_per_step: u64,
    /// Compute time per step.
    pub step_time_s: f64,
}

impl Default for JobDerivation {
    /// 60 s window, at most 32 tasks, 1 GiB per step every second.
    fn default() -> Self {
        JobDerivation {
            window_s: 60,
            max_tasks: 32,
            bytes_per_step: 1 << 30,
            step_time_s: 1.0,
        }
    }
}

/// Groups pods into jobs, in arrival order.
pub fn derive_jobs(pods: &[TracePod], d: &JobDerivation) -> Vec<TraceJob> {
    let mut order: Vec<&TracePod> = pods.iter().collect();
    order.sort_by_key(|p| (p.creation_s, p.name.clone()));
    type Key = (u64, u64, u32, u64, Vec<String>);
    let mut open: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(Vec<&TracePod>, i64)> = Vec::new();
    for p in order {
        let key = (
            p.cpu_milli,
            p.memory_mib,
            p.num_gpu,
            p.gpu_milli,
            p.gpu_spec.clone(),
        );
        if let Some(&g) = open.get(&key) {
            let (members, last) = &mut groups[g];
            if p.creation_s - *last <= d.window_s && (members.len() as u32) < d.max_tasks {
                members.push(p);
                *last = p.creation_s;
                continue;
            }
        }
        open.insert(key, groups.len());
        groups.push((vec![p], p.creation_s));
    }
    groups
        .into_iter()
        .enumerate()
        .filter_map(|(i, (members, _))| {
            let first = members[0];
            let tasks = members.len() as u32;
            let departure = members.iter().map(|p| p.deletion_s).max()?;
            let talks = tasks > 1 && first.num_gpu > 0;
            let spec = JobSpec {
                name: format!("job-{i:05}"),
                tenant: "trace".into(),
                tasks,
                gang: true,
                resources: Demand {
                    cpu_milli: first.cpu_milli,
                    memory_mib: first.memory_mib,
                    gpu_milli: u64::from(first.num_gpu) * first.gpu_milli,
                    gpu_models: first.gpu_spec.clone(),
                    accelerators: Default::default(),
                },
                traffic: Traffic {
                    pattern: if talks {
                        TrafficPattern::RingAllreduce
                    } else {
                        TrafficPattern::None
                    },
                    bytes_per_step: if talks { d.bytes_per_step } else { 0 },
                    step_time_s: d.step_time_s,
                    servers: 1,
                },
                constraints: Constraints::default(),
                duration_s: (departure - first.creation_s).max(1) as f64,
            };
            if spec.resources.is_empty() {
                return None;
            }
            Some(TraceJob {
                spec,
                arrival_s: first.creation_s,
                departure_s: departure,
            })
        })
        .collect()
}

/// The trace folder under a data folder.
pub fn trace_dir(data: &Path) -> std::path::PathBuf {
    data.join("clusters/alibaba-gpu-2023")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, gpus: u32, created: i64, deleted: i64) -> TracePod {
        TracePod {
            name: name.into(),
            cpu_milli: 8000,
            memory_mib: 16384,
            num_gpu: gpus,
            gpu_milli: 1000,
            gpu_spec: vec![],
            creation_s: created,
            deletion_s: deleted,
        }
    }

    #[test]
    fn replicas_submitted_together_form_one_job() {
        let pods = vec![
            pod("a0", 1, 0, 100),
            pod("a1", 1, 30, 200),
            pod("a2", 1, 80, 150),
            // Too late for the first job: a new one.
            pod("a3", 1, 200, 300),
            // A different request at the same time: its own job.
            pod("b0", 2, 10, 50),
            pod("c0", 0, 20, 60),
            pod("c1", 0, 25, 60),
        ];
        let jobs = derive_jobs(&pods, &JobDerivation::default());
        let shape: Vec<(u32, i64, i64, TrafficPattern)> = jobs
            .iter()
            .map(|j| {
                (
                    j.spec.tasks,
                    j.arrival_s,
                    j.departure_s,
                    j.spec.traffic.pattern,
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (3, 0, 200, TrafficPattern::RingAllreduce),
                (1, 10, 50, TrafficPattern::None),
                (2, 20, 60, TrafficPattern::None),
                (1, 200, 300, TrafficPattern::None),
            ]
        );
        assert_eq!(jobs[0].spec.resources.gpu_milli, 1000);
        assert_eq!(jobs[1].spec.resources.gpu_milli, 2000);
    }
}
