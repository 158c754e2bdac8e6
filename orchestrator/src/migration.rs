//! Migration advice: when energy prices, carbon intensity or congestion
//! have moved since a job was placed, propose moving it where it would
//! cost less, with the expected saving over its remaining run time net of
//! the cost of the move.
//!
//! Each running job is placed again as if its own resources were free;
//! the new placement is compared with the current one under today's
//! prices and network. Advice is given only when the saving passes the
//! policy's thresholds, so small fluctuations do not make jobs move.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

use crate::cost::{evaluate, CostBreakdown, Weights};
use crate::drm::{Allocation, ResourceManager};
use crate::energy::EnergySignals;
use crate::job::JobSpec;
use crate::network::NetworkView;
use crate::placement::{NodeFree, Placer, Strategy};

/// When a move is worth proposing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MigrationPolicy {
    /// The new placement's total cost must be at least this much lower,
    /// as a share of the current one.
    pub min_relative_saving: f64,
    /// Energy cost saved over the remaining run, net of the move, USD.
    pub min_usd: f64,
    /// Emissions saved over the remaining run, net of the move, kg CO₂eq.
    pub min_kg_co2: f64,
    /// Run time saved by faster communication, net of the move, seconds.
    pub min_time_s: f64,
    /// Time a move stops the job (checkpoint, transfer, restore), seconds.
    pub move_time_s: f64,
}

impl Default for MigrationPolicy {
    /// 10% lower cost, and at least 1 USD, 5 kg CO₂eq or 10 minutes saved
    /// net of a 2-minute move.
    fn default() -> Self {
        MigrationPolicy {
            min_relative_saving: 0.10,
            min_usd: 1.0,
            min_kg_co2: 5.0,
            min_time_s: 600.0,
            move_time_s: 120.0,
        }
    }
}

/// A job that runs now.
#[derive(Debug, Clone, Copy)]
pub struct RunningJob<'a> {
    /// Its specification.
    pub spec: &'a JobSpec,
    /// What it holds.
    pub allocation: &'a Allocation,
    /// Expected run time left, seconds.
    pub remaining_s: f64,
}

/// What changed enough to propose a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Energy price.
    Price,
    /// Carbon intensity.
    Carbon,
    /// Network congestion between the tasks.
    Congestion,
}

/// Expected savings over the remaining run, net of the move.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Saving {
    /// USD.
    pub usd: f64,
    /// kg CO₂eq.
    pub kg_co2: f64,
    /// Seconds of run time.
    pub time_s: f64,
    /// Drop of the weighted total cost, as a share of the current one.
    pub relative_cost: f64,
}

/// A proposed move.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationAdvice {
    /// Job name.
    pub job: String,
    /// Allocation to replace.
    pub allocation: String,
    /// Node of each task now.
    pub from: Vec<String>,
    /// Node of each task after the move.
    pub to: Vec<String>,
    /// Tasks whose node changes.
    pub moved_tasks: usize,
    /// What justifies the move.
    pub triggers: Vec<Trigger>,
    /// Expected saving.
    pub saving: Saving,
    /// Cost of the current placement now.
    pub current: CostBreakdown,
    /// Cost of the proposed placement.
    pub proposed: CostBreakdown,
    /// One sentence.
    pub explanation: String,
}

/// Proposes moves for `jobs` under the prices at `at` and the network as
/// `view` sees it now.
// TODO-correctness: the network view still carries the job's own traffic
// on its current paths, which makes the current placement look slightly
// worse than it is; the thresholds absorb this for now.
#[allow(clippy::too_many_arguments)]
pub fn advise(
    drm: &ResourceManager,
    view: &dyn NetworkView,
    energy: &EnergySignals,
    weights: Weights,
    at: i64,
    jobs: &[RunningJob<'_>],
    policy: &MigrationPolicy,
) -> Vec<MigrationAdvice> {
    let mut out = Vec::new();
    for job in jobs {
        // The job's own grants count as free: it may stay where it is.
        let mut own: HashMap<&str, Vec<&crate::resources::Grant>> = HashMap::new();
        for t in &job.allocation.tasks {
            own.entry(t.node.as_str()).or_default().push(&t.grant);
        }
        let offered: Vec<NodeFree<'_>> = drm
            .nodes()
            .map(|ns| match own.get(ns.node.name.as_str()) {
                None => NodeFree {
                    node: &ns.node,
                    free: Cow::Borrowed(&ns.free),
                },
                Some(grants) => {
                    let mut free = ns.free.clone();
                    for g in grants {
                        g.add_to(&mut free);
                    }
                    NodeFree {
                        node: &ns.node,
                        free: Cow::Owned(free),
                    }
                }
            })
            .collect();
        let index: HashMap<&str, usize> = offered
            .iter()
            .enumerate()
            .map(|(i, nf)| (nf.node.name.as_str(), i))
            .collect();
        let mut tasks: Vec<&crate::drm::TaskGrant> = job.allocation.tasks.iter().collect();
        tasks.sort_by_key(|t| t.task);
        let Some(current_idx) = tasks
            .iter()
            .map(|t| index.get(t.node.as_str()).copied())
            .collect::<Option<Vec<usize>>>()
        else {
            continue;
        };
        let Some(current) = evaluate(view, energy, &weights, job.spec, &offered, &current_idx, at)
        else {
            continue;
        };
        let Ok(proposed) = Placer::new(view, energy, weights).place(
            job.spec,
            &offered,
            at,
            Strategy::NetworkAware,
        ) else {
            continue;
        };
        let from: Vec<String> = tasks.iter().map(|t| t.node.clone()).collect();
        if proposed.nodes.len() != from.len() {
            continue;
        }
        let moved = from
            .iter()
            .zip(&proposed.nodes)
            .filter(|(a, b)| a != b)
            .count();
        let mut a = from.clone();
        let mut b = proposed.nodes.clone();
        a.sort();
        b.sort();
        if moved == 0 || a == b {
            continue;
        }
        let new = proposed.cost;
        let hours = job.remaining_s / 3600.0;
        let pause_h = policy.move_time_s / 3600.0;
        // While it moves the job burns energy without progress.
        let usd =
            (current.usd_per_hour - new.usd_per_hour) * hours - current.usd_per_hour * pause_h;
        let kg = (current.kg_co2_per_hour - new.kg_co2_per_hour) * hours
            - current.kg_co2_per_hour * pause_h;
        let step = job.spec.traffic.step_time_s;
        let steps_left = job.remaining_s / (step + current.comm_s_per_step.min(1e9));
        let time_s =
            (current.comm_s_per_step - new.comm_s_per_step) * steps_left - policy.move_time_s;
        let relative = if current.total > 0.0 {
            (current.total - new.total) / current.total
        } else {
            0.0
        };
        let mut triggers = Vec::new();
        if relative >= policy.min_relative_saving {
            if usd >= policy.min_usd {
                triggers.push(Trigger::Price);
            }
            if kg >= policy.min_kg_co2 {
                triggers.push(Trigger::Carbon);
            }
            if time_s >= policy.min_time_s {
                triggers.push(Trigger::Congestion);
            }
        }
        if triggers.is_empty() {
            continue;
        }
        let explanation = format!(
            "move {moved} of {} task(s): cost {:.4} -> {:.4} ({:.0}% lower); over the remaining {:.1} h \
             saves {usd:.2} USD, {kg:.1} kg CO2eq and {time_s:.0} s of run time after a {:.0} s move",
            from.len(),
            current.total,
            new.total,
            100.0 * relative,
            hours,
            policy.move_time_s
        );
        out.push(MigrationAdvice {
            job: job.spec.name.clone(),
            allocation: job.allocation.id.clone(),
            from,
            to: proposed.nodes,
            moved_tasks: moved,
            triggers,
            saving: Saving {
                usd,
                kg_co2: kg,
                time_s,
                relative_cost: relative,
            },
            current,
            proposed: new,
            explanation,
        });
    }
    out
}
