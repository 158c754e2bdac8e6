//! Groups of labelled paths with weights, and the three ways weights
//! change: recomputation after a topology change, failover, and the
//! gradual traffic-engineering round.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::intent::Intent;
use super::labels::{LabelAllocator, LabelsExhausted};
use super::paths::{all_pairs, LinkPath, DEFAULT_K};
use super::te::{consolidate, optimise, quantise, TeConfig, TeGroup, TeProblem};
use crate::topology::{DeviceIx, LinkId, Topology};

/// Routing settings.
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    /// Paths per pair.
    pub k: usize,
    /// What a group's weights sum to.
    pub total_weight: u32,
    /// A balancing round changes nothing unless it lowers the predicted
    /// worst utilisation by at least this much (absolute, 0.05 = 5 points).
    pub hysteresis: f64,
    /// A group's weights stay at least this long between two balancing
    /// changes (failover ignores it).
    pub hold: Duration,
    /// At most this much weight moves between a group's paths per round
    /// (failover ignores it).
    pub max_step: u32,
    /// The optimiser.
    pub te: TeConfig,
    /// Balancing acts only once rounds have kept finding an improvement
    /// for this long: a burst shorter than it moves nothing. Zero (the
    /// default) acts at the first such round.
    pub sustain: Duration,
    /// A new group puts all its weight on its first path instead of
    /// spreading it evenly: every pair starts on one path, as flows do
    /// when a static ECMP hash lands them together. For demonstrations
    /// and tests of balancing; failover and balancing work as usual.
    pub start_on_first_path: bool,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            k: DEFAULT_K,
            total_weight: 100,
            hysteresis: 0.05,
            hold: Duration::from_secs(5),
            max_step: 20,
            te: TeConfig::default(),
            sustain: Duration::ZERO,
            start_on_first_path: false,
        }
    }
}

/// One labelled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Its MPLS label, network-wide.
    pub label: u32,
    /// Its links, in order.
    pub links: LinkPath,
}

/// The paths from one edge device to another and their weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Source edge device.
    pub src: DeviceIx,
    /// Destination edge device.
    pub dst: DeviceIx,
    /// The paths, shortest first.
    pub paths: Vec<Path>,
    /// One weight per path; they sum to the configured total, or are all
    /// zero when no path works.
    pub weights: Vec<u32>,
    /// When a balancing round last changed the weights.
    pub changed_at: Option<Instant>,
}

/// A group of a [`TeProblem`]: its pair and the indices of the paths it
/// kept (working, and satisfying the pair's intent).
pub type ProblemGroup = ((DeviceIx, DeviceIx), Vec<usize>);

/// Why weights change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Paths were recomputed.
    Recompute,
    /// A link or device failed.
    Failover,
    /// A traffic-engineering round.
    Balance,
    /// An intent restricted the usable paths.
    Intent,
}

/// New weights for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightUpdate {
    /// Source.
    pub src: DeviceIx,
    /// Destination.
    pub dst: DeviceIx,
    /// New weights, one per path of the group.
    pub weights: Vec<u32>,
    /// Why.
    pub reason: Reason,
}

impl WeightUpdate {
    /// No path of the group carries traffic: the pair is cut off until
    /// paths are recomputed.
    #[must_use]
    pub fn unreachable(&self) -> bool {
        self.weights.iter().all(|w| *w == 0)
    }
}

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A link (both directions fail: a cable has two).
    Link(LinkId),
    /// A device and every link it has.
    Device(DeviceIx),
}

/// Every group, with its labels.
#[derive(Debug, Clone)]
pub struct Routes {
    /// Settings.
    pub config: RoutingConfig,
    groups: BTreeMap<(DeviceIx, DeviceIx), Group>,
    labels: LabelAllocator,
    intents: HashMap<(DeviceIx, DeviceIx), Intent>,
    /// Since when balancing rounds have found an improvement worth the
    /// hysteresis, without a round in between that found none.
    improvable_since: Option<Instant>,
    /// The traffic measured on each path of a group (bit/s by label), when
    /// the hosts' path counters were read.
    measured: HashMap<(DeviceIx, DeviceIx), HashMap<u32, f64>>,
}

fn dead(topo: &Topology, path: &Path, failed: &dyn Fn(LinkId) -> bool) -> bool {
    path.links
        .iter()
        .any(|l| failed(*l) || topo.link_state(*l).is_none_or(|s| !s.up))
}

impl Routes {
    /// No groups yet.
    #[must_use]
    pub fn new(config: RoutingConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            labels: LabelAllocator::new(),
            intents: HashMap::new(),
            improvable_since: None,
            measured: HashMap::new(),
        }
    }

    /// Every group.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// One group.
    #[must_use]
    pub fn group(&self, src: DeviceIx, dst: DeviceIx) -> Option<&Group> {
        self.groups.get(&(src, dst))
    }

    /// Recomputes the K paths of every pair of `edges` on the links that
    /// are up. A path found again keeps its label and its weight; new
    /// paths start at weight 0 unless the group has no working weight
    /// left, in which case its paths are weighted evenly.
    ///
    /// # Errors
    /// More distinct paths than labels; nothing changes then.
    pub fn recompute(
        &mut self,
        topo: &Topology,
        edges: &[DeviceIx],
    ) -> Result<Vec<WeightUpdate>, LabelsExhausted> {
        let found = all_pairs(topo, edges, self.config.k);
        self.labels.sync(found.values().flatten())?;
        let mut updates = Vec::new();
        let mut groups = BTreeMap::new();
        for ((s, d), paths) in found {
            let old = self.groups.get(&(s, d));
            let kept: Vec<f64> = paths
                .iter()
                .map(|p| {
                    old.and_then(|g| {
                        g.paths
                            .iter()
                            .position(|o| &o.links == p)
                            .map(|i| f64::from(g.weights[i]))
                    })
                    .unwrap_or(0.0)
                })
                .collect();
            let shares = if kept.iter().sum::<f64>() > 0.0 {
                kept
            } else if self.config.start_on_first_path {
                (0..paths.len())
                    .map(|i| if i == 0 { 1.0 } else { 0.0 })
                    .collect()
            } else {
                vec![1.0; paths.len()]
            };
            let weights = quantise(&shares, self.config.total_weight);
            let paths: Vec<Path> = paths
                .into_iter()
                .map(|links| Path {
                    label: self.labels.get(&links).unwrap_or(0),
                    links,
                })
                .collect();
            let changed = old.is_none_or(|g| g.paths != paths || g.weights != weights);
            if changed {
                updates.push(WeightUpdate {
                    src: s,
                    dst: d,
                    weights: weights.clone(),
                    reason: Reason::Recompute,
                });
            }
            groups.insert(
                (s, d),
                Group {
                    src: s,
                    dst: d,
                    paths,
                    weights,
                    changed_at: old.and_then(|g| g.changed_at),
                },
            );
        }
        self.groups = groups;
        Ok(updates)
    }

    /// The new weights of every group that had a path over the failed
    /// element (or over any link already down): those paths get 0, the
    /// others keep their relative weights, scaled up to the total (evenly
    /// if they had none). Nothing is held back or stepped: this is the
    /// immediate reaction. A group left with no path is returned with all
    /// weights 0 ([`WeightUpdate::unreachable`]).
    #[must_use]
    pub fn failover(&self, topo: &Topology, failure: Failure) -> Vec<WeightUpdate> {
        let failed: Box<dyn Fn(LinkId) -> bool> = match failure {
            Failure::Link(id) => {
                let rev = topo.reverse(id);
                Box::new(move |l| l == id || Some(l) == rev)
            }
            Failure::Device(d) => {
                Box::new(move |l| topo.link(l).is_none_or(|x| x.src == d || x.dst == d))
            }
        };
        let mut out = Vec::new();
        for g in self.groups.values() {
            let alive: Vec<bool> = g.paths.iter().map(|p| !dead(topo, p, &*failed)).collect();
            if alive.iter().all(|a| *a) {
                continue;
            }
            let mut shares: Vec<f64> = g
                .weights
                .iter()
                .zip(&alive)
                .map(|(w, a)| if *a { f64::from(*w) } else { 0.0 })
                .collect();
            if shares.iter().sum::<f64>() == 0.0 {
                shares = alive.iter().map(|a| if *a { 1.0 } else { 0.0 }).collect();
            }
            let weights = quantise(&shares, self.config.total_weight);
            if weights != g.weights {
                out.push(WeightUpdate {
                    src: g.src,
                    dst: g.dst,
                    weights,
                    reason: Reason::Failover,
                });
            }
        }
        out
    }

    /// Applies updates (from any planner) to the groups; balancing updates
    /// start the group's hold time.
    pub fn apply(&mut self, updates: &[WeightUpdate], now: Instant) {
        for u in updates {
            if let Some(g) = self.groups.get_mut(&(u.src, u.dst)) {
                if u.weights.len() == g.weights.len() {
                    g.weights.clone_from(&u.weights);
                    if u.reason == Reason::Balance {
                        g.changed_at = Some(now);
                    }
                }
            }
        }
    }

    /// Records an intent for its pair; balancing keeps its weight on the
    /// paths that satisfy it.
    pub fn set_intent(&mut self, intent: Intent) {
        self.intents.insert((intent.src, intent.dst), intent);
    }

    /// The intent of a pair.
    #[must_use]
    pub fn intent(&self, src: DeviceIx, dst: DeviceIx) -> Option<&Intent> {
        self.intents.get(&(src, dst))
    }

    /// The optimisation problem for the current state: links that are up
    /// with their capacity, measured traffic not explained by the groups
    /// as background, and for every group the demand measured for it and
    /// its usable paths. Returns the problem and, per problem group, the
    /// group key and the indices of the paths it kept.
    #[must_use]
    pub fn problem(
        &self,
        topo: &Topology,
        demands: &HashMap<(DeviceIx, DeviceIx), f64>,
    ) -> (TeProblem, Vec<ProblemGroup>) {
        let n = petgraph::visit::EdgeIndexable::edge_bound(topo.graph());
        let mut capacity = vec![0.0; n];
        let mut measured = vec![0.0; n];
        let mut latency = vec![0.0; n];
        for (id, l) in topo.links() {
            if l.state.up {
                capacity[id.index()] = l.state.capacity.bps_f64();
                measured[id.index()] = l.state.utilisation.max(0.0) * l.state.capacity.bps_f64();
            }
            latency[id.index()] = l.state.latency.as_secs_f64();
        }
        let mut predicted = vec![0.0; n];
        let mut groups = Vec::new();
        let mut keys = Vec::new();
        for (key, g) in &self.groups {
            let demand = demands.get(key).copied().unwrap_or(0.0);
            for (p, share) in g.paths.iter().zip(self.shares(key, g)) {
                for l in &p.links {
                    predicted[l.index()] += demand * share;
                }
            }
            let intent = self.intents.get(key);
            let usable: Vec<usize> = (0..g.paths.len())
                .filter(|&i| !dead(topo, &g.paths[i], &|_| false))
                .filter(|&i| {
                    intent.is_none_or(|it| it.satisfied_by(topo, &g.paths[i].links).is_ok())
                })
                .collect();
            if usable.is_empty() || demand <= 0.0 {
                continue;
            }
            groups.push(TeGroup {
                demand,
                paths: usable
                    .iter()
                    .map(|&i| g.paths[i].links.iter().map(|l| l.index() as u32).collect())
                    .collect(),
                latency: usable
                    .iter()
                    .map(|&i| g.paths[i].links.iter().map(|l| latency[l.index()]).sum())
                    .collect(),
            });
            keys.push((*key, usable));
        }
        let background = measured
            .iter()
            .zip(&predicted)
            .map(|(m, p)| (m - p).max(0.0))
            .collect();
        (
            TeProblem {
                capacity,
                background,
                groups,
            },
            keys,
        )
    }

    /// Sets the traffic each group's paths carry now (bit/s by label), as
    /// the hosts' path counters measured it. Balancing then starts from
    /// where the traffic is rather than from where the weights would put
    /// it: a group of a few elephant flows follows its weights only
    /// roughly, flowlet draw by flowlet draw.
    pub fn set_measured(&mut self, measured: HashMap<(DeviceIx, DeviceIx), HashMap<u32, f64>>) {
        self.measured = measured;
    }

    /// The shares of a group's demand on each of its paths: as measured
    /// when there is a measurement with traffic, else as the weights say.
    fn shares(&self, key: &(DeviceIx, DeviceIx), g: &Group) -> Vec<f64> {
        if let Some(m) = self.measured.get(key) {
            let per: Vec<f64> = g
                .paths
                .iter()
                .map(|p| m.get(&p.label).copied().unwrap_or(0.0).max(0.0))
                .collect();
            let sum: f64 = per.iter().sum();
            if sum > 0.0 {
                return per.iter().map(|v| v / sum).collect();
            }
        }
        let total: u32 = g.weights.iter().sum();
        if total == 0 {
            return vec![0.0; g.paths.len()];
        }
        g.weights
            .iter()
            .map(|w| f64::from(*w) / f64::from(total))
            .collect()
    }

    /// One traffic-engineering round: the weights that lower the worst
    /// utilisation, given measured link state and per-group demand (bit/s),
    /// moved gradually. Nothing changes unless the predicted worst
    /// utilisation drops by at least `hysteresis`; a group changed less
    /// than `hold` ago stays; no group moves more than `max_step` of
    /// weight. Call [`Routes::apply`] with the result.
    #[must_use]
    pub fn balance(
        &self,
        topo: &Topology,
        demands: &HashMap<(DeviceIx, DeviceIx), f64>,
        now: Instant,
    ) -> Vec<WeightUpdate> {
        self.plan(topo, demands, now).unwrap_or_default()
    }

    /// [`Routes::balance`] for a loop that runs it every period: the
    /// updates only once rounds have found an improvement worth the
    /// hysteresis for `sustain` (see [`RoutingConfig::sustain`]).
    pub fn balance_sustained(
        &mut self,
        topo: &Topology,
        demands: &HashMap<(DeviceIx, DeviceIx), f64>,
        now: Instant,
    ) -> Vec<WeightUpdate> {
        let Some(updates) = self.plan(topo, demands, now) else {
            self.improvable_since = None;
            return Vec::new();
        };
        let since = *self.improvable_since.get_or_insert(now);
        if now.saturating_duration_since(since) < self.config.sustain {
            return Vec::new();
        }
        updates
    }

    /// The balancing updates, or `None` when no split is better than the
    /// current one by the hysteresis (held groups give an empty list).
    fn plan(
        &self,
        topo: &Topology,
        demands: &HashMap<(DeviceIx, DeviceIx), f64>,
        now: Instant,
    ) -> Option<Vec<WeightUpdate>> {
        let (problem, keys) = self.problem(topo, demands);
        if problem.groups.is_empty() {
            return None;
        }
        let current: Vec<Vec<f64>> = keys
            .iter()
            .map(|(key, usable)| {
                let g = &self.groups[key];
                let all = self.shares(key, g);
                let w: Vec<f64> = usable.iter().map(|&i| all[i]).collect();
                let s: f64 = w.iter().sum();
                if s > 0.0 {
                    w.iter().map(|v| v / s).collect()
                } else {
                    vec![1.0 / w.len() as f64; w.len()]
                }
            })
            .collect();
        let split = optimise(&problem, Some(&current), &self.config.te);
        // Whole groups where that is about as good: fewer flows drawn at
        // random between paths.
        // Measured demands move by several percent from round to round, and
        // whole groups cannot even them out: allow the hysteresis, or a
        // tenth of the split's worst utilisation when that is more.
        let slack = self
            .config
            .hysteresis
            .max(0.1 * problem.max_utilisation(&split));
        let whole = consolidate(&problem, &current, &split, slack);
        if tracing::enabled!(tracing::Level::DEBUG) {
            // What whole groups would reach, accepted or not.
            let greedy = super::te::whole_groups(&problem, &current, slack);
            tracing::debug!(
                now = problem.max_utilisation(&current),
                split = problem.max_utilisation(&split),
                whole = problem.max_utilisation(&greedy),
                accepted = whole.is_some(),
                demands = ?problem.groups.iter().map(|g| g.demand).collect::<Vec<_>>(),
                "balancing round"
            );
        }
        let target = whole.unwrap_or(split);
        let (now_u, target_u) = (
            problem.max_utilisation(&current),
            problem.max_utilisation(&target),
        );
        if now_u - target_u < self.config.hysteresis {
            return None;
        }
        let total = f64::from(self.config.total_weight);
        let max_step = f64::from(self.config.max_step);
        let mut out = Vec::new();
        for ((key, usable), tgt) in keys.iter().zip(&target) {
            let g = &self.groups[key];
            if g.changed_at
                .is_some_and(|t| now.saturating_duration_since(t) < self.config.hold)
            {
                continue;
            }
            // The move starts from the weights in force (the measured
            // shares said where the traffic is; the weights are what the
            // device holds).
            let w: Vec<f64> = usable.iter().map(|&i| f64::from(g.weights[i])).collect();
            let sum: f64 = w.iter().sum();
            let cur: Vec<f64> = if sum > 0.0 {
                w.iter().map(|v| v / sum).collect()
            } else {
                vec![1.0 / w.len() as f64; w.len()]
            };
            let moved: f64 =
                cur.iter().zip(tgt).map(|(c, t)| (t - c).abs()).sum::<f64>() / 2.0 * total;
            let theta = if moved > max_step {
                max_step / moved
            } else {
                1.0
            };
            let mut shares = vec![0.0; g.paths.len()];
            for ((&i, c), t) in usable.iter().zip(&cur).zip(tgt) {
                shares[i] = c + theta * (t - c);
            }
            let weights = quantise(&shares, self.config.total_weight);
            if weights != g.weights {
                out.push(WeightUpdate {
                    src: key.0,
                    dst: key.1,
                    weights,
                    reason: Reason::Balance,
                });
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_spine() -> Topology {
        Topology::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../topologies/leaf-spine.yaml"
        )))
        .unwrap()
    }

    #[test]
    fn start_on_first_path_puts_every_group_on_one_path() {
        let topo = leaf_spine();
        let edges = topo.edge_devices();
        let mut even = Routes::new(RoutingConfig::default());
        even.recompute(&topo, &edges).unwrap();
        let config = RoutingConfig {
            start_on_first_path: true,
            ..RoutingConfig::default()
        };
        let mut first = Routes::new(config);
        first.recompute(&topo, &edges).unwrap();
        let h1 = topo.device_ix("h1").unwrap();
        let h3 = topo.device_ix("h3").unwrap();
        let g = even.group(h1, h3).unwrap();
        assert!(g.paths.len() >= 2, "two spines give two paths");
        assert!(g.weights.iter().all(|w| *w > 0), "{:?}", g.weights);
        for g in first.groups() {
            assert_eq!(g.weights[0], 100, "{:?}", g.weights);
            assert!(g.weights[1..].iter().all(|w| *w == 0));
        }
        // Failover still moves the weight off a failed first path.
        let g = first.group(h1, h3).unwrap();
        let updates = first.failover(&topo, Failure::Link(g.paths[0].links[1]));
        let u = updates.iter().find(|u| u.src == h1 && u.dst == h3).unwrap();
        assert_eq!(u.weights[0], 0);
        assert_eq!(u.weights.iter().sum::<u32>(), 100);
    }
}
