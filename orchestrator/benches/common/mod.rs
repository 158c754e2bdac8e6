//! Shared by the benchmarks: where the data is, and a replay of derived
//! trace jobs through the resource manager on a simulated fabric.

// Each benchmark uses a different part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;

use solyx_orchestrator::cost::{task_kw, Weights};
use solyx_orchestrator::drm::ResourceManager;
use solyx_orchestrator::energy::EnergySignals;
use solyx_orchestrator::inventory::Node;
use solyx_orchestrator::placement::{offer, Placer, Strategy};
use solyx_orchestrator::sim::SimFabric;
use solyx_orchestrator::trace::TraceJob;

/// The data folder: `--data DIR`, else `SOLYX_DATA`, else the default
/// data folder beside the repository.
pub fn data_dir() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--data") {
        if let Some(d) = args.get(i + 1) {
            return PathBuf::from(d);
        }
    }
    solyx_orchestrator::energy::default_data_dir()
}

/// True when `--quick` was passed (a shorter run for smoke checks).
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// Outcome of one strategy over the whole replay.
#[derive(Debug, Default, Clone)]
pub struct ReplayResult {
    pub strategy: String,
    pub jobs: usize,
    pub placed: usize,
    pub multi_jobs: usize,
    pub multi_placed: usize,
    /// Milli-GPUs asked by all jobs, and by the placed ones.
    pub gpu_asked: f64,
    pub gpu_placed: f64,
    /// Bytes over the whole replay (per-step bytes times steps run).
    pub network_bytes: f64,
    pub cross_leaf_bytes: f64,
    pub cross_site_bytes: f64,
    /// Sum over placed multi-task jobs of estimated JCT / compute time.
    pub jct_slowdown_sum: f64,
    pub usd: f64,
    pub kg_co2: f64,
    /// kWh per site.
    pub site_kwh: BTreeMap<String, f64>,
    pub place_seconds: f64,
}

impl ReplayResult {
    pub fn fit_rate(&self) -> f64 {
        self.placed as f64 / self.jobs.max(1) as f64
    }
    pub fn gpu_fit_rate(&self) -> f64 {
        self.gpu_placed / self.gpu_asked.max(1.0)
    }
    pub fn multi_fit_rate(&self) -> f64 {
        self.multi_placed as f64 / self.multi_jobs.max(1) as f64
    }
    pub fn mean_slowdown(&self) -> f64 {
        self.jct_slowdown_sum / self.multi_placed.max(1) as f64
    }
}

struct Departure {
    at: i64,
    id: String,
    flows: Vec<(String, String, f64)>,
}

impl PartialEq for Departure {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.id == o.id
    }
}
impl Eq for Departure {}
impl PartialOrd for Departure {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Departure {
    // Earliest first out of a max-heap.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.at.cmp(&self.at).then_with(|| o.id.cmp(&self.id))
    }
}

/// Replays `jobs` (arrival order) on `nodes` wired as `fabric`: each job
/// is placed at arrival or counted as not fitting (no queue), holds its
/// resources and offers its traffic until departure. `t0` maps trace
/// second 0 to a Unix time for energy prices. With `fill`, jobs never
/// leave: the cluster fills up in arrival order (the trace's own packing
/// scenario), which is where placement choices decide what still fits.
#[allow(clippy::too_many_arguments)]
pub fn replay(
    nodes: &[Node],
    fabric: &SimFabric,
    jobs: &[TraceJob],
    strategy: Strategy,
    weights: Weights,
    energy: &EnergySignals,
    t0: i64,
    fill: bool,
) -> ReplayResult {
    let mut drm = ResourceManager::in_memory().expect("in-memory store");
    for n in nodes {
        drm.upsert_node(n.clone()).expect("trace node is valid");
    }
    let mut fabric = fabric.clone();
    let mut out = ReplayResult {
        strategy: strategy.name().to_string(),
        ..Default::default()
    };
    let mut departures: BinaryHeap<Departure> = BinaryHeap::new();
    for (j, job) in jobs.iter().enumerate() {
        while departures.peek().is_some_and(|d| d.at <= job.arrival_s) {
            let Some(d) = departures.pop() else { break };
            drm.release(&d.id).expect("release a held allocation");
            for (a, b, bps) in d.flows {
                fabric.remove_flow(&a, &b, bps);
            }
        }
        let spec = &job.spec;
        let multi = spec.tasks > 1 && !spec.traffic_edges().is_empty();
        out.jobs += 1;
        out.multi_jobs += usize::from(multi);
        let gpus = spec.resources.gpu_milli as f64 * f64::from(spec.tasks);
        out.gpu_asked += gpus;
        let at = t0 + job.arrival_s;
        let strategy = match strategy {
            Strategy::Random(seed) => Strategy::Random(seed.wrapping_add(j as u64)),
            s => s,
        };
        let started = std::time::Instant::now();
        let placed = {
            let offered = offer(&drm);
            let placer = Placer::new(&fabric, energy, weights);
            placer.place(spec, &offered, at, strategy)
        };
        out.place_seconds += started.elapsed().as_secs_f64();
        let Ok(p) = placed else { continue };
        let id = format!("{}-{j}", spec.name);
        if drm.allocate(p.allocation_request(spec, &id)).is_err() {
            continue;
        }
        out.placed += 1;
        out.multi_placed += usize::from(multi);
        out.gpu_placed += gpus;
        let steps = spec.duration_s / spec.traffic.step_time_s;
        out.network_bytes += p.cost.network_bytes * steps;
        out.cross_leaf_bytes += p.cost.cross_leaf_bytes * steps;
        out.cross_site_bytes += p.cost.cross_site_bytes * steps;

        // Estimated completion time: every step computes for step_time and
        // then waits for its slowest transfer at the bandwidth each flow
        // would get with every link shared equally among its flows.
        let mut flows = Vec::new();
        let mut slowest = 0.0f64;
        let mut latency = 0.0f64;
        for (a, b, bytes) in spec.traffic_edges() {
            let (na, nb) = (&p.nodes[a as usize], &p.nodes[b as usize]);
            if na == nb {
                continue;
            }
            let share = fabric.fair_share_bps(na, nb).unwrap_or(f64::INFINITY);
            slowest = slowest.max(bytes * 8.0 / share.max(1e6));
            latency = latency.max(fabric_latency(&fabric, na, nb));
            flows.push((
                na.clone(),
                nb.clone(),
                bytes * 8.0 / spec.traffic.step_time_s,
            ));
        }
        for (a, b, bps) in &flows {
            fabric.add_flow(a, b, *bps);
        }
        if multi {
            let comm = slowest + latency * spec.latency_rounds();
            out.jct_slowdown_sum += 1.0 + comm / spec.traffic.step_time_s;
        }

        // Energy over the job's life at the hourly prices of its sites.
        let offered = offer(&drm);
        for name in &p.nodes {
            let Some(nf) = offered.iter().find(|o| &o.node.name == name) else {
                continue;
            };
            let kw = task_kw(spec, nf);
            let hours = spec.duration_s / 3600.0;
            let zone = energy.zone_of(&nf.node.site);
            if let Some(z) = energy.zone(zone) {
                let (from, to) = (at, at + spec.duration_s as i64);
                if let Some(p) = z.price_usd_per_mwh.mean(from, to) {
                    out.usd += kw * hours * p / 1000.0;
                }
                if let Some(c) = z.carbon_g_per_kwh.mean(from, to) {
                    out.kg_co2 += kw * hours * c / 1000.0;
                }
            }
            *out.site_kwh.entry(nf.node.site.clone()).or_default() += kw * hours;
        }
        if !fill {
            departures.push(Departure {
                at: job.departure_s,
                id,
                flows,
            });
        }
    }
    out
}

fn fabric_latency(f: &SimFabric, a: &str, b: &str) -> f64 {
    use solyx_orchestrator::network::NetworkView;
    f.path(a, b).map_or(0.0, |p| p.latency_s)
}

/// Percentile of a sorted slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}
