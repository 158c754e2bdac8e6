//! The cost of a placement: network, energy, carbon and fragmentation
//! terms, each measured in its own unit, normalised, and weighted.
//!
//! | term | measured | normalised as |
//! | --- | --- | --- |
//! | comm | per-step transfer time: the slowest traffic pair's bytes over the path's free bandwidth, plus the path latency times the pattern's exchange rounds | divided by the job's step time (1.0 = communication as long as compute) |
//! | hops | links crossed, weighted by the bytes crossing them | mean hops per byte / 5 (5 = between sites) |
//! | price | energy price of the tasks' sites, weighted by their power | / 100 USD/MWh |
//! | carbon | carbon intensity of the tasks' sites, weighted by power | / 500 gCO₂/kWh |
//! | pack | share of each used node's dominant resource left idle after placement, plus the share of its GPUs a CPU-only task strands | mean over used nodes (0 = nodes filled) |

use serde::Serialize;

use crate::energy::EnergySignals;
use crate::job::JobSpec;
use crate::network::NetworkView;
use crate::placement::NodeFree;

/// Weights of the cost terms. All terms are dimensionless after
/// normalisation, so the weights say how much each matters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Communication slowdown.
    pub comm: f64,
    /// Byte-weighted hops.
    pub hops: f64,
    /// Energy price.
    pub price: f64,
    /// Carbon intensity.
    pub carbon: f64,
    /// Idle share of used nodes.
    pub pack: f64,
}

impl Default for Weights {
    /// comm 1.0, hops 0.2, price 0.2, carbon 0.2, pack 0.05: the network
    /// decides for jobs that talk, energy picks the site for those that
    /// do not, and packing breaks the remaining ties.
    fn default() -> Self {
        Weights {
            comm: 1.0,
            hops: 0.2,
            price: 0.2,
            carbon: 0.2,
            pack: 0.05,
        }
    }
}

impl Weights {
    /// The same weights with price and carbon ignored.
    pub fn energy_blind(self) -> Self {
        Weights {
            price: 0.0,
            carbon: 0.0,
            ..self
        }
    }
}

/// One weighted term.
#[derive(Debug, Clone, Serialize)]
pub struct CostTerm {
    /// Term name (`comm`, `hops`, `price`, `carbon`, `pack`).
    pub name: &'static str,
    /// Value in its unit.
    pub value: f64,
    /// The unit of `value`.
    pub unit: &'static str,
    /// Normalised value.
    pub normalised: f64,
    /// Weight applied.
    pub weight: f64,
    /// `normalised * weight`.
    pub contribution: f64,
}

/// The cost of one placement.
#[derive(Debug, Clone, Serialize)]
pub struct CostBreakdown {
    /// Weighted sum of the terms.
    pub total: f64,
    /// The terms.
    pub terms: Vec<CostTerm>,
    /// Estimated communication time per step, seconds.
    pub comm_s_per_step: f64,
    /// Bytes per step between tasks on different nodes.
    pub network_bytes: f64,
    /// Bytes per step that cross a spine (tasks on different leaves).
    pub cross_leaf_bytes: f64,
    /// Bytes per step between sites.
    pub cross_site_bytes: f64,
    /// Highest latency between two communicating tasks, seconds.
    pub max_latency_s: f64,
    /// Power of the placed tasks, kW.
    pub power_kw: f64,
    /// Energy cost now, USD per hour.
    pub usd_per_hour: f64,
    /// Emissions now, kg CO₂eq per hour.
    pub kg_co2_per_hour: f64,
}

impl CostBreakdown {
    /// The cost of a placement whose tasks cannot reach each other.
    pub fn unreachable() -> Self {
        CostBreakdown {
            total: f64::INFINITY,
            terms: Vec::new(),
            comm_s_per_step: f64::INFINITY,
            network_bytes: 0.0,
            cross_leaf_bytes: 0.0,
            cross_site_bytes: 0.0,
            max_latency_s: f64::INFINITY,
            power_kw: 0.0,
            usd_per_hour: 0.0,
            kg_co2_per_hour: 0.0,
        }
    }

    /// A term by name.
    pub fn term(&self, name: &str) -> Option<&CostTerm> {
        self.terms.iter().find(|t| t.name == name)
    }
}

/// Reference price that normalises to 1.0, USD/MWh.
pub const PRICE_REF: f64 = 100.0;
/// Reference carbon intensity that normalises to 1.0, gCO₂/kWh.
pub const CARBON_REF: f64 = 500.0;
/// Bandwidth floor used for a saturated path, bit/s, so that costs stay
/// finite and still order placements by how saturated they are.
pub const MIN_BPS: f64 = 1e8;

/// Power one task draws on a node, kW: the node's power times the task's
/// share of the node's GPUs (or CPUs for CPU-only tasks).
pub fn task_kw(job: &JobSpec, nf: &NodeFree<'_>) -> f64 {
    let d = &job.resources;
    let share = if d.gpu_milli > 0 && nf.node.gpu_count() > 0 {
        d.gpu_milli as f64 / (f64::from(nf.node.gpu_count()) * 1000.0)
    } else if nf.node.cpu_milli > 0 {
        d.cpu_milli as f64 / nf.node.cpu_milli as f64
    } else {
        0.0
    };
    f64::from(nf.node.watts()) / 1000.0 * share.min(1.0)
}

/// Costs the placement `tasks` (node index per task into `nodes`).
/// `None` when two communicating tasks have no path.
pub fn evaluate(
    view: &dyn NetworkView,
    energy: &EnergySignals,
    w: &Weights,
    job: &JobSpec,
    nodes: &[NodeFree<'_>],
    tasks: &[usize],
    at: i64,
) -> Option<CostBreakdown> {
    let mut slowest = 0.0f64;
    let mut max_latency = 0.0f64;
    let (mut network_bytes, mut byte_hops, mut total_bytes) = (0.0, 0.0, 0.0);
    let (mut cross_leaf, mut cross_site) = (0.0, 0.0);
    for (a, b, bytes) in job.traffic_edges() {
        let (Some(&na), Some(&nb)) = (tasks.get(a as usize), tasks.get(b as usize)) else {
            continue;
        };
        total_bytes += bytes;
        if na == nb {
            continue;
        }
        let (ea, eb) = (&nodes[na].node.name, &nodes[nb].node.name);
        let p = view.path(ea, eb)?;
        network_bytes += bytes;
        byte_hops += bytes * f64::from(p.hops);
        slowest = slowest.max(bytes * 8.0 / p.headroom_bps.max(MIN_BPS));
        max_latency = max_latency.max(p.latency_s);
        let leaf = |n: &str| view.location(n).map(|l| l.leaf);
        if leaf(ea) != leaf(eb) {
            cross_leaf += bytes;
        }
        if nodes[na].node.site != nodes[nb].node.site {
            cross_site += bytes;
        }
    }
    let comm_s = slowest + max_latency * job.latency_rounds();

    // TODO-completeness: price and carbon are read at `at` only; a job that
    // runs for days should be weighed by a forecast over its duration, or
    // long jobs follow the hour they arrived in.
    let (mut kw_total, mut usd_h, mut kg_h) = (0.0, 0.0, 0.0);
    let (mut price_w, mut carbon_w) = (0.0, 0.0);
    let mut used: Vec<(usize, u64)> = Vec::new();
    for &i in tasks {
        match used.iter_mut().find(|(n, _)| *n == i) {
            Some((_, k)) => *k += 1,
            None => used.push((i, 1)),
        }
        let kw = task_kw(job, &nodes[i]);
        kw_total += kw;
        let e = energy.at(&nodes[i].node.site, at);
        if let Some(p) = e.price_usd_per_mwh {
            usd_h += kw * p / 1000.0;
            price_w += kw * p;
        }
        if let Some(c) = e.carbon_g_per_kwh {
            kg_h += kw * c / 1000.0;
            carbon_w += kw * c;
        }
    }
    let mean_price = if kw_total > 0.0 {
        price_w / kw_total
    } else {
        0.0
    };
    let mean_carbon = if kw_total > 0.0 {
        carbon_w / kw_total
    } else {
        0.0
    };
    let pack = if used.is_empty() {
        0.0
    } else {
        used.iter()
            .map(|&(i, k)| crate::placement::fit_score(job, &nodes[i], k))
            .sum::<f64>()
            / used.len() as f64
    };
    let mean_hops = if total_bytes > 0.0 {
        byte_hops / total_bytes
    } else {
        0.0
    };

    let mut terms = Vec::with_capacity(5);
    let mut push = |name, value: f64, unit, normalised: f64, weight: f64| {
        terms.push(CostTerm {
            name,
            value,
            unit,
            normalised,
            weight,
            contribution: normalised * weight,
        });
    };
    push(
        "comm",
        comm_s,
        "s/step",
        comm_s / job.traffic.step_time_s,
        w.comm,
    );
    push("hops", mean_hops, "hops/byte", mean_hops / 5.0, w.hops);
    push(
        "price",
        mean_price,
        "USD/MWh",
        mean_price / PRICE_REF,
        w.price,
    );
    push(
        "carbon",
        mean_carbon,
        "gCO2/kWh",
        mean_carbon / CARBON_REF,
        w.carbon,
    );
    push("pack", pack, "fit score", pack, w.pack);
    let total = terms.iter().map(|t| t.contribution).sum();
    Some(CostBreakdown {
        total,
        terms,
        comm_s_per_step: comm_s,
        network_bytes,
        cross_leaf_bytes: cross_leaf,
        cross_site_bytes: cross_site,
        max_latency_s: max_latency,
        power_kw: kw_total,
        usd_per_hour: usd_h,
        kg_co2_per_hour: kg_h,
    })
}
