//! Kubernetes scheduler extender: the `filter` and `prioritize` verbs over
//! HTTP, scoring nodes with the same network cost as the placer.
//!
//! kube-scheduler posts `ExtenderArgs` and expects `ExtenderFilterResult`
//! or a `HostPriorityList` back; the types below carry the upstream field
//! names (`Pod`, `Nodes`, `NodeNames`, `FailedNodes`, `Host`, `Score`...).
//! Pods describe their job with annotations (docs/orchestrator.md,
//! "Kubernetes"); a pod without them is a one-task job.
//!
//! The first pod of a multi-task job triggers a placement of the whole
//! job over the candidate nodes; the plan is kept, and every pod of the
//! job is then scored by the cost of the plan with its own task moved to
//! each candidate node. Nodes of the plan therefore score highest, and
//! the others by how much worse they would make the job's network,
//! energy and fit.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::cost::{evaluate, Weights};
use crate::drm::ResourceManager;
use crate::energy::EnergySignals;
use crate::job::{parse_bytes, Constraints, JobSpec, Traffic, TrafficPattern};
use crate::network::NetworkView;
use crate::placement::{NodeFree, Placer, Strategy};
use crate::resources::{parse_cpu_milli, parse_memory_mib, Demand};

/// Highest score an extender may give (upstream `MaxExtenderPriority`).
pub const MAX_EXTENDER_PRIORITY: i64 = 10;

/// Annotation prefix for job descriptions on pods.
pub const ANNOTATION_PREFIX: &str = "solyx.io/";

/// What kube-scheduler sends to `filter` and `prioritize`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtenderArgs {
    /// The pod being scheduled (a `v1.Pod`, kept as JSON).
    #[serde(rename = "Pod", alias = "pod", default)]
    pub pod: Option<serde_json::Value>,
    /// Candidate nodes, when the extender is not `nodeCacheCapable`.
    #[serde(rename = "Nodes", alias = "nodes", default)]
    pub nodes: Option<NodeList>,
    /// Candidate node names, when the extender is `nodeCacheCapable`.
    #[serde(
        rename = "NodeNames",
        alias = "nodenames",
        alias = "nodeNames",
        default
    )]
    pub node_names: Option<Vec<String>>,
}

/// A `v1.NodeList`; items are kept as JSON so that they go back to the
/// scheduler unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeList {
    /// Other fields of the list (`apiVersion`, `kind`, `metadata`).
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
    /// The nodes.
    #[serde(default)]
    pub items: Vec<serde_json::Value>,
}

/// Reply to `filter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtenderFilterResult {
    /// Nodes that passed, when the request carried `Nodes`.
    #[serde(rename = "Nodes")]
    pub nodes: Option<NodeList>,
    /// Names that passed, when the request carried `NodeNames`.
    #[serde(rename = "NodeNames")]
    pub node_names: Option<Vec<String>>,
    /// Nodes that failed, with the reason; preemption may free them.
    #[serde(rename = "FailedNodes", default)]
    pub failed_nodes: BTreeMap<String, String>,
    /// Nodes that failed for reasons preemption cannot change.
    #[serde(rename = "FailedAndUnresolvableNodes", default)]
    pub failed_and_unresolvable_nodes: BTreeMap<String, String>,
    /// A non-empty error fails the scheduling attempt.
    #[serde(rename = "Error", default)]
    pub error: String,
}

/// One node's score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPriority {
    /// Node name.
    #[serde(rename = "Host")]
    pub host: String,
    /// 0..=10.
    #[serde(rename = "Score")]
    pub score: i64,
}

/// Reply to `prioritize`.
pub type HostPriorityList = Vec<HostPriority>;

/// Where the extender reads nodes and their free capacity: a resource
/// manager of its own behind a mutex, or a running orchestrator's.
pub trait DrmSource: Send + Sync {
    /// Runs `f` over the resource manager; does not run it when the
    /// manager is unavailable (a poisoned lock).
    fn with_drm(&self, f: &mut dyn FnMut(&ResourceManager));
}

impl DrmSource for Mutex<ResourceManager> {
    fn with_drm(&self, f: &mut dyn FnMut(&ResourceManager)) {
        if let Ok(drm) = self.lock() {
            f(&drm);
        }
    }
}

/// `f` over `source`'s resource manager, `None` when it is unavailable.
fn read_drm<R>(source: &dyn DrmSource, f: impl FnOnce(&ResourceManager) -> R) -> Option<R> {
    let mut f = Some(f);
    let mut out = None;
    source.with_drm(&mut |drm| {
        if let Some(f) = f.take() {
            out = Some(f(drm));
        }
    });
    out
}

/// The extender's state: the resource manager, the network and energy
/// it scores with, and the plans of the jobs it has seen.
pub struct Extender {
    drm: Arc<dyn DrmSource>,
    view: Arc<dyn NetworkView>,
    energy: Arc<EnergySignals>,
    weights: Weights,
    clock: fn() -> i64,
    // TODO-robustness: plans are never dropped; a long-running scheduler
    // should forget a job's plan once all its pods are bound or deleted.
    plans: Mutex<HashMap<String, Vec<String>>>,
}

/// A pod's job as its annotations and requests describe it.
struct PodJob {
    key: String,
    spec: JobSpec,
    task: usize,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Extender {
    /// An extender over shared state; energy prices are taken at the
    /// current time.
    pub fn new(
        drm: Arc<dyn DrmSource>,
        view: Arc<dyn NetworkView>,
        energy: Arc<EnergySignals>,
        weights: Weights,
    ) -> Self {
        Extender {
            drm,
            view,
            energy,
            weights,
            clock: unix_now,
            plans: Mutex::new(HashMap::new()),
        }
    }

    /// The same extender with energy prices taken at `clock()` instead of
    /// now (replays of past data, tests).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// The HTTP routes: `POST /scheduler/filter`, `POST
    /// /scheduler/prioritize`, `GET /scheduler/healthz`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/scheduler/filter", post(filter_handler))
            .route("/scheduler/prioritize", post(prioritize_handler))
            .route("/scheduler/healthz", get(|| async { "ok" }))
            .with_state(self)
    }

    /// The filter verb.
    pub fn filter(&self, args: &ExtenderArgs) -> ExtenderFilterResult {
        let (names, items) = candidates(args);
        let job = match pod_job(args.pod.as_ref()) {
            Ok(j) => j,
            Err(error) => {
                return ExtenderFilterResult {
                    error,
                    ..Default::default()
                }
            }
        };
        read_drm(&*self.drm, |drm| Self::filter_in(drm, &names, items, &job)).unwrap_or_else(|| {
            ExtenderFilterResult {
                error: "resource manager unavailable".into(),
                ..Default::default()
            }
        })
    }

    fn filter_in(
        drm: &ResourceManager,
        names: &[String],
        items: Option<&NodeList>,
        job: &PodJob,
    ) -> ExtenderFilterResult {
        let mut result = ExtenderFilterResult::default();
        let mut passed = Vec::new();
        for name in names {
            let Some(ns) = drm.node(name) else {
                result
                    .failed_and_unresolvable_nodes
                    .insert(name.clone(), "node is not in the Solyx inventory".into());
                continue;
            };
            let sites = &job.spec.constraints.sites;
            if !sites.is_empty() && !sites.contains(&ns.node.site) {
                result.failed_and_unresolvable_nodes.insert(
                    name.clone(),
                    format!(
                        "site {} is not among the job's sites {sites:?}",
                        ns.node.site
                    ),
                );
                continue;
            }
            match job.spec.resources.grant_from(&ns.free) {
                Ok(_) => passed.push(name.clone()),
                Err(short) => {
                    result
                        .failed_nodes
                        .insert(name.clone(), format!("Solyx: {short}"));
                }
            }
        }
        match items {
            Some(list) => {
                let mut out = list.clone();
                out.items
                    .retain(|item| node_name(item).is_some_and(|n| passed.contains(&n)));
                result.nodes = Some(out);
            }
            None => result.node_names = Some(passed),
        }
        result
    }

    /// The prioritize verb.
    pub fn prioritize(&self, args: &ExtenderArgs) -> Result<HostPriorityList, String> {
        let (names, _) = candidates(args);
        let job = pod_job(args.pod.as_ref())?;
        read_drm(&*self.drm, |drm| self.prioritize_in(drm, &names, &job))
            .unwrap_or_else(|| Err("resource manager unavailable".to_string()))
    }

    fn prioritize_in(
        &self,
        drm: &ResourceManager,
        names: &[String],
        job: &PodJob,
    ) -> Result<HostPriorityList, String> {
        let at = (self.clock)();
        let offered: Vec<NodeFree<'_>> = drm
            .nodes()
            .map(|ns| NodeFree {
                node: &ns.node,
                free: Cow::Borrowed(&ns.free),
            })
            .collect();
        let index: HashMap<&str, usize> = offered
            .iter()
            .enumerate()
            .map(|(i, nf)| (nf.node.name.as_str(), i))
            .collect();

        // The job's plan: placed once, over the nodes offered now.
        let plan: Vec<usize> = if job.spec.tasks > 1 {
            let mut plans = self
                .plans
                .lock()
                .map_err(|_| "plan table unavailable".to_string())?;
            let nodes = match plans.get(&job.key) {
                Some(p) => p.clone(),
                None => {
                    let allowed: Vec<NodeFree<'_>> = offered
                        .iter()
                        .filter(|nf| names.contains(&nf.node.name))
                        .cloned()
                        .collect();
                    let placer = Placer::new(&*self.view, &self.energy, self.weights);
                    let p = placer
                        .place(&job.spec, &allowed, at, Strategy::NetworkAware)
                        .map_err(|e| e.to_string())?;
                    plans.insert(job.key.clone(), p.nodes.clone());
                    p.nodes
                }
            };
            nodes
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        } else {
            Vec::new()
        };

        let mut costs: Vec<(String, Option<f64>)> = Vec::with_capacity(names.len());
        for name in names {
            let cost = index.get(name.as_str()).and_then(|&i| {
                let mut tasks = if plan.len() == job.spec.tasks as usize {
                    plan.clone()
                } else {
                    vec![i]
                };
                let slot = job.task.min(tasks.len() - 1);
                tasks[slot] = i;
                let single = JobSpec {
                    tasks: tasks.len() as u32,
                    ..job.spec.clone()
                };
                evaluate(
                    &*self.view,
                    &self.energy,
                    &self.weights,
                    &single,
                    &offered,
                    &tasks,
                    at,
                )
                .map(|c| c.total)
                .filter(|t| t.is_finite())
            });
            costs.push((name.clone(), cost));
        }
        let finite = costs.iter().filter_map(|c| c.1);
        let lo = finite.clone().fold(f64::INFINITY, f64::min);
        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
        Ok(costs
            .into_iter()
            .map(|(host, c)| {
                let score = match c {
                    None => 0,
                    Some(_) if hi - lo < 1e-12 => MAX_EXTENDER_PRIORITY,
                    Some(c) => (MAX_EXTENDER_PRIORITY as f64 * (hi - c) / (hi - lo)).round() as i64,
                };
                HostPriority { host, score }
            })
            .collect())
    }
}

async fn filter_handler(
    State(ext): State<Arc<Extender>>,
    Json(args): Json<ExtenderArgs>,
) -> Json<ExtenderFilterResult> {
    Json(ext.filter(&args))
}

async fn prioritize_handler(
    State(ext): State<Arc<Extender>>,
    Json(args): Json<ExtenderArgs>,
) -> Result<Json<HostPriorityList>, (axum::http::StatusCode, String)> {
    ext.prioritize(&args)
        .map(Json)
        .map_err(|e| (axum::http::StatusCode::UNPROCESSABLE_ENTITY, e))
}

fn node_name(item: &serde_json::Value) -> Option<String> {
    item.pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn candidates(args: &ExtenderArgs) -> (Vec<String>, Option<&NodeList>) {
    match (&args.node_names, &args.nodes) {
        (Some(names), _) => (names.clone(), None),
        (None, Some(list)) => (
            list.items.iter().filter_map(node_name).collect(),
            Some(list),
        ),
        (None, None) => (Vec::new(), None),
    }
}

/// Reads the pod's job: requests summed over its containers, the job
/// described by `solyx.io/*` annotations.
fn pod_job(pod: Option<&serde_json::Value>) -> Result<PodJob, String> {
    let pod = pod.ok_or("ExtenderArgs.Pod is missing")?;
    let meta = |f: &str| {
        pod.pointer(&format!("/metadata/{f}"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
    };
    let (name, namespace) = (meta("name"), meta("namespace"));
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(format!("{ANNOTATION_PREFIX}{k}")))
            .and_then(|v| v.as_str())
    };
    let place = format!("pod {namespace}/{name}");
    let mut demand = Demand::default();
    let containers = pod
        .pointer("/spec/containers")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    for (i, c) in containers.iter().enumerate() {
        let Some(req) = c.pointer("/resources/requests").and_then(|r| r.as_object()) else {
            continue;
        };
        for (res, q) in req {
            let q = match q {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let field = format!("{place}: spec.containers[{i}].resources.requests.{res}");
            match res.as_str() {
                "cpu" => {
                    demand.cpu_milli += parse_cpu_milli(&q).map_err(|e| format!("{field}: {e}"))?
                }
                "memory" => {
                    demand.memory_mib +=
                        parse_memory_mib(&q).map_err(|e| format!("{field}: {e}"))?
                }
                "nvidia.com/gpu" | "amd.com/gpu" => {
                    let n: u64 = q
                        .parse()
                        .map_err(|_| format!("{field}: `{q}` is not a whole number"))?;
                    demand.gpu_milli += n * 1000;
                }
                _ => {}
            }
        }
    }
    if let Some(models) = ann("gpu-models") {
        demand.gpu_models = models
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
    }
    let bad =
        |key: &str, why: String| format!("{place}: annotation {ANNOTATION_PREFIX}{key}: {why}");
    let tasks: u32 = match ann("tasks") {
        Some(t) => t
            .parse()
            .map_err(|_| bad("tasks", format!("`{t}` is not a whole number")))?,
        None => 1,
    };
    let task: usize = match ann("task-index") {
        Some(t) => t
            .parse()
            .map_err(|_| bad("task-index", format!("`{t}` is not a whole number")))?,
        None => 0,
    };
    let pattern = match ann("traffic").unwrap_or("none") {
        "none" => TrafficPattern::None,
        "ring_allreduce" => TrafficPattern::RingAllreduce,
        "parameter_server" => TrafficPattern::ParameterServer,
        "pipeline" => TrafficPattern::Pipeline,
        other => {
            return Err(bad(
                "traffic",
                format!("`{other}`: expected none, ring_allreduce, parameter_server or pipeline"),
            ))
        }
    };
    let bytes = match ann("bytes-per-step") {
        Some(b) => parse_bytes(b).map_err(|e| bad("bytes-per-step", e))?,
        None => 0,
    };
    let sites = ann("sites")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let job_name = ann("job")
        .map(str::to_string)
        .unwrap_or_else(|| name.to_string());
    let spec = JobSpec {
        name: job_name.clone(),
        tenant: ann("tenant").unwrap_or(namespace).to_string(),
        tasks: tasks.max(1),
        gang: true,
        resources: demand,
        traffic: Traffic {
            pattern,
            bytes_per_step: bytes,
            ..Traffic::default()
        },
        constraints: Constraints {
            sites,
            max_latency_s: None,
        },
        duration_s: 3600.0,
    };
    if spec.resources.is_empty() {
        // A pod without requests still gets scored by energy and network.
        let mut s = spec;
        s.resources.cpu_milli = 1;
        return Ok(PodJob {
            key: format!("{namespace}/{job_name}"),
            spec: s,
            task,
        });
    }
    spec.validate().map_err(|e| format!("{place}: {e}"))?;
    Ok(PodJob {
        key: format!("{namespace}/{job_name}"),
        spec,
        task,
    })
}
