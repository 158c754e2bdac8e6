//! Placement: the chosen node for each task of a job, with its cost and
//! its explanation.
//!
//! The network-aware strategy first keeps the nodes where a task fits
//! (resources, GPU model, allowed sites), then builds candidate
//! placements at each level of locality (one node, one leaf, one site,
//! several sites), each filled with the fewest nodes and the tightest fit,
//! and keeps the candidate with the lowest weighted cost. The cost terms
//! are defined in `cost`. Spread, pack and random are here too, as the
//! baselines the evaluation compares against; they share the cost
//! evaluation so their numbers are comparable.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::cost::{evaluate, CostBreakdown, Weights};
use crate::drm::{AllocationRequest, ResourceManager};
use crate::energy::EnergySignals;
use crate::inventory::Node;
use crate::job::JobSpec;
use crate::network::NetworkView;
use crate::resources::{Capacity, Shortfall};

/// A node offered to the placer with what is free on it.
#[derive(Debug, Clone)]
pub struct NodeFree<'a> {
    /// The node.
    pub node: &'a Node,
    /// Its free resources.
    pub free: Cow<'a, Capacity>,
}

/// All nodes of a resource manager, with their free resources.
pub fn offer(drm: &ResourceManager) -> Vec<NodeFree<'_>> {
    drm.nodes()
        .map(|ns| NodeFree {
            node: &ns.node,
            free: Cow::Borrowed(&ns.free),
        })
        .collect()
}

/// How to choose nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// Fit compute first, then minimise the weighted network, energy and
    /// fragmentation cost.
    NetworkAware,
    /// Each task on the node with the most free resources (Kubernetes'
    /// LeastAllocated).
    Spread,
    /// Each task on the fullest node that still fits it (MostAllocated),
    /// ties in node order.
    Pack,
    /// Each task on a random node that fits it.
    Random(u64),
}

impl Strategy {
    /// Name used in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::NetworkAware => "network-aware",
            Strategy::Spread => "spread",
            Strategy::Pack => "pack",
            Strategy::Random(_) => "random",
        }
    }
}

/// Why one task went where it did.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReason {
    /// Task index.
    pub task: u32,
    /// Node chosen.
    pub node: String,
    /// Its leaf.
    pub leaf: String,
    /// Its site.
    pub site: String,
    /// One sentence.
    pub reason: String,
}

/// A candidate that lost, and by how much.
#[derive(Debug, Clone, Serialize)]
pub struct Alternative {
    /// Which candidate (`leaf site-a-leaf03`, `site site-b`).
    pub candidate: String,
    /// Its total cost.
    pub total: f64,
    /// Total minus the chosen one's.
    pub worse_by: f64,
}

/// The explanation that comes with every placement.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// One line: what was chosen and why.
    pub summary: String,
    /// Per task.
    pub tasks: Vec<TaskReason>,
    /// The runners-up (at most three), cheapest first.
    pub alternatives: Vec<Alternative>,
    /// Nodes left out before costing, by reason.
    pub excluded: BTreeMap<String, u32>,
    /// Candidates evaluated.
    pub candidates: usize,
}

/// A placement.
#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    /// Job name.
    pub job: String,
    /// Strategy used.
    pub strategy: &'static str,
    /// Node of each placed task, by task index. Shorter than the job's
    /// task count only for a non-gang job that did not fit whole.
    pub nodes: Vec<String>,
    /// Cost terms.
    pub cost: CostBreakdown,
    /// Why.
    pub explanation: Explanation,
}

impl Placement {
    /// The allocation request that grants this placement.
    pub fn allocation_request(&self, job: &JobSpec, id: &str) -> AllocationRequest {
        AllocationRequest {
            id: id.to_string(),
            tenant: job.tenant.clone(),
            job: job.name.clone(),
            tasks: self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (i as u32, n.clone(), job.resources.clone()))
                .collect(),
        }
    }
}

/// Why a job cannot be placed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlacementError {
    /// Not enough capacity for all tasks (gang) or for any (non-gang).
    #[error(
        "job `{job}`: {fit} of {asked} tasks fit on {nodes} nodes; excluded nodes by reason: {excluded:?}"
    )]
    NoCapacity {
        /// Job.
        job: String,
        /// Tasks asked.
        asked: u32,
        /// Tasks that would fit.
        fit: u64,
        /// Nodes with room for at least one task.
        nodes: usize,
        /// Nodes left out, by reason.
        excluded: BTreeMap<String, u32>,
    },
    /// Capacity exists but no candidate meets the latency bound.
    #[error("job `{job}`: no placement keeps every pair of tasks within {max_latency_us} µs")]
    Latency {
        /// Job.
        job: String,
        /// The bound.
        max_latency_us: f64,
    },
    /// The job spec is invalid.
    #[error("job `{job}`: {reason}")]
    InvalidJob {
        /// Job.
        job: String,
        /// Why.
        reason: String,
    },
}

/// A node that can take at least one task.
struct Fit {
    idx: usize,
    copies: u64,
    leaf: Arc<str>,
}

/// Places jobs against a network view and energy signals.
pub struct Placer<'a> {
    view: &'a dyn NetworkView,
    energy: &'a EnergySignals,
    weights: Weights,
}

impl<'a> Placer<'a> {
    /// A placer with the given cost weights.
    pub fn new(view: &'a dyn NetworkView, energy: &'a EnergySignals, weights: Weights) -> Self {
        Placer {
            view,
            energy,
            weights,
        }
    }

    /// The weights in use.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Places `job` on `nodes` at instant `at` (Unix seconds, for energy
    /// prices) with `strategy`.
    pub fn place(
        &self,
        job: &JobSpec,
        nodes: &[NodeFree<'_>],
        at: i64,
        strategy: Strategy,
    ) -> Result<Placement, PlacementError> {
        job.validate()
            .map_err(|reason| PlacementError::InvalidJob {
                job: job.name.clone(),
                reason,
            })?;
        let n = job.tasks;
        let (fits, excluded) = self.feasible(job, nodes);
        let total: u64 = fits.iter().map(|f| f.copies).sum();
        let want = if total >= u64::from(n) {
            n
        } else if !job.gang && total > 0 {
            total as u32
        } else {
            return Err(PlacementError::NoCapacity {
                job: job.name.clone(),
                asked: n,
                fit: total,
                nodes: fits.len(),
                excluded,
            });
        };
        let (assign, label, alternatives, candidates) = match strategy {
            Strategy::NetworkAware => self.network_aware(job, nodes, &fits, want, at)?,
            Strategy::Spread => (
                greedy(job, nodes, &fits, want, Pick::Spread),
                "spread".into(),
                vec![],
                1,
            ),
            Strategy::Pack => (
                greedy(job, nodes, &fits, want, Pick::Pack),
                "pack".into(),
                vec![],
                1,
            ),
            Strategy::Random(seed) => (
                greedy(job, nodes, &fits, want, Pick::Random(seed)),
                "random".into(),
                vec![],
                1,
            ),
        };
        let task_nodes: Vec<usize> = expand(&assign);
        let cost = evaluate(
            self.view,
            self.energy,
            &self.weights,
            job,
            nodes,
            &task_nodes,
            at,
        )
        .unwrap_or_else(CostBreakdown::unreachable);
        let explanation = self.explain(
            job,
            nodes,
            &task_nodes,
            &cost,
            label,
            alternatives,
            excluded,
            candidates,
            at,
        );
        Ok(Placement {
            job: job.name.clone(),
            strategy: strategy.name(),
            nodes: task_nodes
                .iter()
                .map(|&i| nodes[i].node.name.clone())
                .collect(),
            cost,
            explanation,
        })
    }

    fn feasible(&self, job: &JobSpec, nodes: &[NodeFree<'_>]) -> (Vec<Fit>, BTreeMap<String, u32>) {
        let mut fits = Vec::new();
        let mut excluded: BTreeMap<String, u32> = BTreeMap::new();
        let sites = &job.constraints.sites;
        let unknown: Arc<str> = Arc::from("");
        for (idx, nf) in nodes.iter().enumerate() {
            if !sites.is_empty() && !sites.contains(&nf.node.site) {
                *excluded.entry("site not allowed".into()).or_default() += 1;
                continue;
            }
            let copies = job.resources.copies_in(&nf.free).min(u64::from(job.tasks));
            if copies == 0 {
                let why = match job.resources.grant_from(&nf.free) {
                    Err(Shortfall::Cpu { .. }) => "not enough cpu",
                    Err(Shortfall::Memory { .. }) => "not enough memory",
                    Err(Shortfall::Gpu { .. }) => "no acceptable GPU free",
                    Err(Shortfall::Accelerator { .. }) => "no accelerator free",
                    Ok(_) => "fits no whole task",
                };
                *excluded.entry(why.into()).or_default() += 1;
                continue;
            }
            let leaf = match self.view.location(&nf.node.name) {
                Some(l) => l.leaf,
                None => {
                    if job.tasks > 1 && !job.traffic_edges().is_empty() {
                        *excluded.entry("unknown to the network".into()).or_default() += 1;
                        continue;
                    }
                    unknown.clone()
                }
            };
            fits.push(Fit { idx, copies, leaf });
        }
        (fits, excluded)
    }

    #[allow(clippy::type_complexity)]
    fn network_aware(
        &self,
        job: &JobSpec,
        nodes: &[NodeFree<'_>],
        fits: &[Fit],
        want: u32,
        at: i64,
    ) -> Result<(Vec<(usize, u64)>, String, Vec<Alternative>, usize), PlacementError> {
        let need = u64::from(want);
        let mut by_leaf: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
        for (i, f) in fits.iter().enumerate() {
            by_leaf.entry(f.leaf.clone()).or_default().push(i);
        }
        let mut leaves: Vec<(Arc<str>, u64, Vec<usize>)> = by_leaf
            .into_iter()
            .map(|(leaf, members)| {
                let cap = members.iter().map(|&i| fits[i].copies).sum();
                (leaf, cap, members)
            })
            .collect();
        leaves.sort_by(|a, b| a.0.cmp(&b.0));

        let mut candidates: Vec<(String, Vec<(usize, u64)>)> = Vec::new();
        // One leaf.
        for (leaf, cap, members) in &leaves {
            if *cap >= need {
                candidates.push((
                    format!("leaf {leaf}"),
                    fill_nodes(fits, nodes, job, members, need),
                ));
            }
        }
        // One site, several leaves; or several sites when no site holds
        // the job alone.
        let mut sites: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (li, (_, _, members)) in leaves.iter().enumerate() {
            let site = nodes[fits[members[0]].idx].node.site.as_str();
            sites.entry(site).or_default().push(li);
        }
        let single_leaf = leaves.iter().any(|l| l.1 >= need);
        let headroom = if single_leaf {
            Vec::new()
        } else {
            leaf_headroom(self.view, nodes, fits, &leaves)
        };
        let mut any_site = false;
        for (site, lis) in &sites {
            let cap: u64 = lis.iter().map(|&li| leaves[li].1).sum();
            any_site |= cap >= need;
            if cap >= need && !lis.iter().any(|&li| leaves[li].1 >= need) {
                candidates.push((
                    format!("site {site}, fewest leaves"),
                    fill_leaves(fits, nodes, job, &leaves, lis, None, need),
                ));
                candidates.push((
                    format!("site {site}, leaves with most uplink headroom"),
                    fill_leaves(fits, nodes, job, &leaves, lis, Some(&headroom), need),
                ));
            }
        }
        if !any_site {
            let all: Vec<usize> = (0..leaves.len()).collect();
            candidates.push((
                "several sites, fewest leaves".into(),
                fill_leaves(fits, nodes, job, &leaves, &all, None, need),
            ));
            candidates.push((
                "several sites, leaves with most uplink headroom".into(),
                fill_leaves(fits, nodes, job, &leaves, &all, Some(&headroom), need),
            ));
        }

        let mut scored: Vec<(f64, usize)> = Vec::with_capacity(candidates.len());
        for (ci, (_, assign)) in candidates.iter().enumerate() {
            let tasks = expand(assign);
            if let Some(max) = job.constraints.max_latency_s {
                if !self.within_latency(nodes, assign, max) {
                    continue;
                }
            }
            if let Some(c) = evaluate(
                self.view,
                self.energy,
                &self.weights,
                job,
                nodes,
                &tasks,
                at,
            ) {
                scored.push((c.total, ci));
            }
        }
        if scored.is_empty() {
            return Err(match job.constraints.max_latency_s {
                Some(max) => PlacementError::Latency {
                    job: job.name.clone(),
                    max_latency_us: max * 1e6,
                },
                None => PlacementError::NoCapacity {
                    job: job.name.clone(),
                    asked: job.tasks,
                    fit: 0,
                    nodes: fits.len(),
                    excluded: [("no path between the nodes".to_string(), 1)]
                        .into_iter()
                        .collect(),
                },
            });
        }
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (best_total, best) = scored[0];
        let alternatives = scored
            .iter()
            .skip(1)
            .take(3)
            .map(|&(t, ci)| Alternative {
                candidate: candidates[ci].0.clone(),
                total: t,
                worse_by: t - best_total,
            })
            .collect();
        let count = candidates.len();
        let (label, assign) = candidates.swap_remove(best);
        Ok((assign, label, alternatives, count))
    }

    fn within_latency(&self, nodes: &[NodeFree<'_>], assign: &[(usize, u64)], max: f64) -> bool {
        for (i, &(a, _)) in assign.iter().enumerate() {
            for &(b, _) in &assign[i + 1..] {
                match self.view.path(&nodes[a].node.name, &nodes[b].node.name) {
                    Some(p) if p.latency_s <= max => {}
                    _ => return false,
                }
            }
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        job: &JobSpec,
        nodes: &[NodeFree<'_>],
        tasks: &[usize],
        cost: &CostBreakdown,
        label: String,
        alternatives: Vec<Alternative>,
        excluded: BTreeMap<String, u32>,
        candidates: usize,
        at: i64,
    ) -> Explanation {
        let mut per_node: BTreeMap<usize, u32> = BTreeMap::new();
        for &t in tasks {
            *per_node.entry(t).or_default() += 1;
        }
        let distinct = per_node.len();
        let summary = format!(
            "{} of {} tasks on {} node(s), chosen as {} ({}); total cost {:.4}, lowest of {} candidate(s)",
            tasks.len(),
            job.tasks,
            distinct,
            label,
            if job.traffic_edges().is_empty() {
                "no traffic between tasks: energy and fit decide".to_string()
            } else {
                format!(
                    "{:.1} MB/step cross the spine, {:.1} MB/step between sites",
                    cost.cross_leaf_bytes / 1e6,
                    cost.cross_site_bytes / 1e6
                )
            },
            cost.total,
            candidates
        );
        let tasks = tasks
            .iter()
            .enumerate()
            .map(|(t, &i)| {
                let node = nodes[i].node;
                let loc = self.view.location(&node.name);
                let e = self.energy.at(&node.site, at);
                let share = per_node[&i];
                let mut left = nodes[i].free.clone().into_owned();
                for _ in 0..share {
                    if let Ok(g) = job.resources.grant_from(&left) {
                        g.take_from(&mut left);
                    }
                }
                let energy = match (e.price_usd_per_mwh, e.carbon_g_per_kwh) {
                    (Some(p), Some(c)) => format!("{p:.1} USD/MWh, {c:.0} gCO2/kWh"),
                    (Some(p), None) => format!("{p:.1} USD/MWh, carbon unknown"),
                    (None, Some(c)) => format!("price unknown, {c:.0} gCO2/kWh"),
                    (None, None) => "no energy data".into(),
                };
                TaskReason {
                    task: t as u32,
                    node: node.name.clone(),
                    leaf: loc.as_ref().map(|l| l.leaf.to_string()).unwrap_or_default(),
                    site: node.site.clone(),
                    reason: format!(
                        "{share} task(s) of this job share the node; site {} ({energy}); \
                         left free after placement: {} milli-GPU, {}m cpu",
                        node.site,
                        left.gpu_milli_total(),
                        left.cpu_milli
                    ),
                }
            })
            .collect();
        Explanation {
            summary,
            tasks,
            alternatives,
            excluded,
            candidates,
        }
    }
}

/// Task list (node index per task) from (node index, count) pairs.
fn expand(assign: &[(usize, u64)]) -> Vec<usize> {
    assign
        .iter()
        .flat_map(|&(i, k)| std::iter::repeat_n(i, k as usize))
        .collect()
}

/// Fraction of the node's dominant resource left free after taking `k`
/// more copies: GPUs for GPU tasks, else CPU.
pub(crate) fn leftover_after(job: &JobSpec, nf: &NodeFree<'_>, k: u64) -> f64 {
    let d = &job.resources;
    if d.gpu_milli > 0 {
        let cap = (u64::from(nf.node.gpu_count()) * 1000).max(1) as f64;
        (nf.free.gpu_milli_total().saturating_sub(k * d.gpu_milli)) as f64 / cap
    } else {
        let cap = nf.node.cpu_milli.max(1) as f64;
        (nf.free.cpu_milli.saturating_sub(k * d.cpu_milli)) as f64 / cap
    }
}

/// How much of a node's accelerator capacity a task strands: a task that
/// needs no GPU but lands on a node with free GPUs takes CPU and memory
/// those GPUs will need, so it counts the share of the node's GPUs still
/// free. Zero for GPU tasks and for nodes without GPUs.
pub(crate) fn stranding(job: &JobSpec, nf: &NodeFree<'_>) -> f64 {
    let gpus = u64::from(nf.node.gpu_count()) * 1000;
    if job.resources.gpu_milli > 0 || gpus == 0 {
        return 0.0;
    }
    nf.free.gpu_milli_total() as f64 / gpus as f64
}

/// The network-aware placer's fit score of taking `k` copies on a node
/// (lower is tighter): the idle share left, plus the imbalance between
/// the GPU and CPU shares left (a node with free GPUs and no CPU left
/// strands those GPUs), plus accelerators a CPU-only task strands.
pub(crate) fn fit_score(job: &JobSpec, nf: &NodeFree<'_>, k: u64) -> f64 {
    let d = &job.resources;
    let left = leftover_after(job, nf, k);
    let imbalance = if d.gpu_milli > 0 {
        let cpu_cap = nf.node.cpu_milli.max(1) as f64;
        let cpu_left = nf.free.cpu_milli.saturating_sub(k * d.cpu_milli) as f64 / cpu_cap;
        (cpu_left - left).abs()
    } else {
        0.0
    };
    left + imbalance + stranding(job, nf)
}

/// Fills `need` tasks into `members` (indices into `fits`) with the fewest
/// nodes: while no single node holds the rest, take the node holding the
/// most; then take the node that holds the rest most tightly.
fn fill_nodes(
    fits: &[Fit],
    nodes: &[NodeFree<'_>],
    job: &JobSpec,
    members: &[usize],
    mut need: u64,
) -> Vec<(usize, u64)> {
    let mut pool: Vec<usize> = members.to_vec();
    let mut out = Vec::new();
    while need > 0 && !pool.is_empty() {
        let tight = pool
            .iter()
            .enumerate()
            .filter(|(_, &i)| fits[i].copies >= need)
            .min_by(|(_, &a), (_, &b)| {
                let la = fit_score(job, &nodes[fits[a].idx], need);
                let lb = fit_score(job, &nodes[fits[b].idx], need);
                la.total_cmp(&lb).then(fits[a].idx.cmp(&fits[b].idx))
            })
            .map(|(p, _)| p);
        let p = match tight {
            Some(p) => p,
            None => pool
                .iter()
                .enumerate()
                .max_by(|(_, &a), (_, &b)| {
                    fits[a]
                        .copies
                        .cmp(&fits[b].copies)
                        .then(fits[b].idx.cmp(&fits[a].idx))
                })
                .map(|(p, _)| p)
                .unwrap_or(0),
        };
        let i = pool.swap_remove(p);
        let take = fits[i].copies.min(need);
        out.push((fits[i].idx, take));
        need -= take;
    }
    out
}

/// Fills `need` tasks over the leaves `lis` the same way `fill_nodes`
/// does over nodes: the fewest leaves, the last one the tightest. With
/// `headroom` (free uplink bandwidth per leaf), leaves with more headroom
/// come first instead, and the last one is the roomiest that holds the
/// rest.
fn fill_leaves(
    fits: &[Fit],
    nodes: &[NodeFree<'_>],
    job: &JobSpec,
    leaves: &[(Arc<str>, u64, Vec<usize>)],
    lis: &[usize],
    headroom: Option<&[f64]>,
    mut need: u64,
) -> Vec<(usize, u64)> {
    let mut pool: Vec<usize> = lis.to_vec();
    let mut out = Vec::new();
    let room = |li: usize| headroom.map_or(0.0, |h| h[li]);
    while need > 0 && !pool.is_empty() {
        let holding = pool
            .iter()
            .enumerate()
            .filter(|(_, &li)| leaves[li].1 >= need);
        let tight = match headroom {
            None => holding
                .min_by_key(|(_, &li)| (leaves[li].1, li))
                .map(|(p, _)| p),
            Some(_) => holding
                .max_by(|(_, &a), (_, &b)| room(a).total_cmp(&room(b)).then(b.cmp(&a)))
                .map(|(p, _)| p),
        };
        let p = tight.unwrap_or_else(|| {
            pool.iter()
                .enumerate()
                .max_by(|(_, &a), (_, &b)| {
                    room(a)
                        .total_cmp(&room(b))
                        .then(leaves[a].1.cmp(&leaves[b].1))
                        .then(b.cmp(&a))
                })
                .map(|(p, _)| p)
                .unwrap_or(0)
        });
        let li = pool.swap_remove(p);
        let take = leaves[li].1.min(need);
        out.extend(fill_nodes(fits, nodes, job, &leaves[li].2, take));
        need -= take;
    }
    out
}

/// Free bandwidth out of each leaf, as the network view reports it: the
/// best headroom from one of its nodes to a node on each of two other
/// leaves (two probes per leaf, so the cost stays linear).
fn leaf_headroom(
    view: &dyn NetworkView,
    nodes: &[NodeFree<'_>],
    fits: &[Fit],
    leaves: &[(Arc<str>, u64, Vec<usize>)],
) -> Vec<f64> {
    let name = |li: usize| nodes[fits[leaves[li].2[0]].idx].node.name.as_str();
    let n = leaves.len();
    (0..n)
        .map(|li| {
            [(li + 1) % n, (li + n / 2 + 1) % n]
                .into_iter()
                .filter(|&o| o != li)
                .filter_map(|o| view.path(name(li), name(o)).map(|p| p.headroom_bps))
                .fold(0.0, f64::max)
        })
        .collect()
}

enum Pick {
    Spread,
    Pack,
    Random(u64),
}

/// One task at a time, each on the node the rule picks among those that
/// still fit it. Spread and pack break ties at random among the
/// best-scored nodes, as kube-scheduler does (seeded by the job name, so
/// runs repeat).
fn greedy(
    job: &JobSpec,
    nodes: &[NodeFree<'_>],
    fits: &[Fit],
    want: u32,
    pick: Pick,
) -> Vec<(usize, u64)> {
    let mut left: Vec<u64> = fits.iter().map(|f| f.copies).collect();
    let mut taken: Vec<u64> = vec![0; fits.len()];
    let seed = match pick {
        Pick::Random(seed) => seed,
        _ => job.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut best: Vec<usize> = Vec::new();
    for _ in 0..want {
        best.clear();
        let mut best_score = f64::NEG_INFINITY;
        for i in (0..fits.len()).filter(|&i| left[i] > 0) {
            let free = leftover_after(job, &nodes[fits[i].idx], taken[i]);
            let score = match pick {
                Pick::Spread => free,
                Pick::Pack => -free,
                Pick::Random(_) => 0.0,
            };
            if score > best_score + 1e-12 {
                best_score = score;
                best.clear();
            }
            if (score - best_score).abs() <= 1e-12 {
                best.push(i);
            }
        }
        if best.is_empty() {
            break;
        }
        let i = best[rng.random_range(0..best.len())];
        left[i] -= 1;
        taken[i] += 1;
    }
    (0..fits.len())
        .filter(|&i| taken[i] > 0)
        .map(|i| (fits[i].idx, taken[i]))
        .collect()
}
