//! Traffic-engineering quality and speed on real networks and matrices.
//!
//! For every instance: K = 4 diverse paths per demand pair, then the worst
//! link utilisation (MLU) reached by
//! - our weights (`solyx::routing::optimise`, then quantised to integer
//!   weights summing to 100, as a host would get them),
//! - the optimum of the multicommodity-flow LP over the same paths
//!   (min MLU; HiGHS; only with `--features lp`),
//! - plain ECMP over shortest paths (hop-by-hop equal split),
//!
//! with the time each takes. Prints ratios to the LP optimum.
//!
//! `cargo bench -p solyx --bench te --features lp [-- --data DIR]`.
//! `SOLYX_TE_ONLY=a,b` keeps the instances whose name or source (as
//! printed in each instance's first line) contains one of the words, case
//! aside: `abilene` keeps both Abilene instances, `yates` or `sndlib
//! abilene` one of them; `SOLYX_TE_MATRICES=n` uses at most n matrices of
//! each.

#[path = "data_dir.rs"]
mod data_dir;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use solyx::routing::te::{ecmp_loads, quantise, solve, TeConfig, TeGroup, TeProblem};
use solyx::routing::{k_paths, PathGraph, Workspace, DEFAULT_K};
use solyx::topology::convert::{self, Demand, Options, RawNetwork};
use solyx::topology::{DeviceIx, Topology};

struct Instance {
    name: String,
    source: String,
    topo: Topology,
    matrices: Vec<Vec<Demand>>,
}

fn instance(
    raw: &RawNetwork,
    opts: &Options,
    matrices: Vec<Vec<Demand>>,
    note: &str,
) -> Option<Instance> {
    let file = raw.to_file(opts);
    match Topology::from_file(&file, &raw.name) {
        Ok(topo) => Some(Instance {
            name: raw.name.clone(),
            source: format!("{}, {note}", raw.source),
            topo,
            matrices,
        }),
        Err(e) => {
            println!("{}: not usable: {e}", raw.name);
            None
        }
    }
}

/// Gravity-model demands between `pairs` random node pairs: demand
/// proportional to the product of the two nodes' total link capacity.
fn gravity(raw: &RawNetwork, pairs: usize, seed: u64) -> Vec<Demand> {
    let mut weight = vec![0.0; raw.nodes.len()];
    for e in &raw.edges {
        let c = e.capacity.map_or(1e9, |c| c.bps_f64());
        weight[e.a] += c;
        weight[e.b] += c;
    }
    let total: f64 = weight.iter().sum();
    let mut state = seed;
    let mut next = || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let n = raw.nodes.len() as u64;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    while out.len() < pairs && seen.len() < (n * (n - 1)) as usize {
        let (a, b) = ((next() % n) as usize, (next() % n) as usize);
        if a == b || !seen.insert((a, b)) {
            continue;
        }
        out.push(Demand {
            src: raw.nodes[a].name.clone(),
            dst: raw.nodes[b].name.clone(),
            rate_bps: weight[a] * weight[b] / total,
        });
    }
    out
}

fn load_instances(data: &Path) -> Vec<Instance> {
    let mut out = Vec::new();
    let plain = Options::default();
    let teal = data.join("topologies/teal");
    // Teal B4 with its 36 real matrices.
    match convert::teal_json(&teal.join("B4.json")) {
        Ok(raw) => {
            let mut files: Vec<_> = std::fs::read_dir(data.join("traffic/b4-teal"))
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            files.sort();
            let ms: Vec<Vec<Demand>> = files
                .iter()
                .filter_map(|f| {
                    convert::teal_matrix(f, &raw)
                        .map_err(|e| println!("{e}"))
                        .ok()
                })
                .collect();
            let note = format!("{} real matrices (Teal)", ms.len());
            out.extend(instance(&raw, &plain, ms, &note));
        }
        Err(e) => println!("B4: {e}"),
    }
    // Abilene (YATES) with measured matrices.
    let yates = data.join("traffic/abilene-yates");
    match convert::graphviz(&yates.join("abilene.dot")) {
        Ok(raw) => {
            let hosts: Vec<String> = std::fs::read_to_string(yates.join("abilene.hosts"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            match convert::yates_matrices(&yates.join("abilene.txt"), &hosts) {
                Ok(ms) => {
                    let note = format!("{} measured matrices (YATES)", ms.len());
                    out.extend(instance(&raw, &plain, ms, &note));
                }
                Err(e) => println!("{e}"),
            }
        }
        Err(e) => println!("Abilene: {e}"),
    }
    // Every SNDlib network with its demand matrix.
    let mut sndlib: Vec<String> = std::fs::read_dir(data.join("traffic/sndlib"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    sndlib.sort();
    for name in sndlib {
        match convert::sndlib_json(&data.join(format!("traffic/sndlib/{name}/{name}.json"))) {
            Ok((raw, demands)) => {
                out.extend(instance(&raw, &plain, vec![demands], "SNDlib demands"))
            }
            Err(e) => println!("{e}"),
        }
    }
    // Large Teal topologies: no matrices ship with them; gravity demands.
    for (name, pairs) in [("Kdl", 4000), ("ASN2k", 8000)] {
        match convert::teal_json(&teal.join(format!("{name}.json"))) {
            Ok(raw) => {
                let d = gravity(&raw, pairs, 7);
                let note = format!("{pairs} gravity-model demands between random pairs");
                out.extend(instance(&raw, &plain, vec![d], &note));
            }
            Err(e) => println!("{name}: {e}"),
        }
    }
    let only: Vec<String> = std::env::var("SOLYX_TE_ONLY")
        .map(|v| v.split(',').map(str::to_lowercase).collect())
        .unwrap_or_default();
    let most: usize = std::env::var("SOLYX_TE_MATRICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    out.retain(|i| {
        let label = format!("{} {}", i.name, i.source).to_lowercase();
        only.is_empty() || only.iter().any(|w| label.contains(w.trim()))
    });
    for i in &mut out {
        i.matrices.truncate(most);
    }
    out
}

struct Paths {
    by_pair: HashMap<(DeviceIx, DeviceIx), Vec<Vec<u32>>>,
    took: Duration,
}

fn paths_for(inst: &Instance) -> Paths {
    let t0 = Instant::now();
    let g = PathGraph::new(&inst.topo);
    let mut w = Workspace::new(&g);
    let mut pairs: BTreeMap<DeviceIx, Vec<DeviceIx>> = BTreeMap::new();
    for m in &inst.matrices {
        for d in m {
            if let (Some(s), Some(t)) = (inst.topo.device_ix(&d.src), inst.topo.device_ix(&d.dst)) {
                pairs.entry(s).or_default().push(t);
            }
        }
    }
    let mut by_pair = HashMap::new();
    for (s, ts) in pairs {
        for t in ts {
            by_pair.entry((s, t)).or_insert_with(|| {
                k_paths(&g, &mut w, s, t, DEFAULT_K)
                    .into_iter()
                    .map(|p| p.iter().map(|l| l.index() as u32).collect())
                    .collect()
            });
        }
    }
    Paths {
        by_pair,
        took: t0.elapsed(),
    }
}

fn problem(inst: &Instance, paths: &Paths, m: &[Demand]) -> TeProblem {
    let n = petgraph::visit::EdgeIndexable::edge_bound(inst.topo.graph());
    let mut capacity = vec![0.0; n];
    let mut latency = vec![0.0; n];
    for (id, l) in inst.topo.links() {
        capacity[id.index()] = l.state.capacity.bps_f64();
        latency[id.index()] = l.delay.as_secs_f64();
    }
    let mut groups = Vec::new();
    for d in m {
        let (Some(s), Some(t)) = (inst.topo.device_ix(&d.src), inst.topo.device_ix(&d.dst)) else {
            continue;
        };
        let Some(ps) = paths.by_pair.get(&(s, t)).filter(|p| !p.is_empty()) else {
            continue;
        };
        groups.push(TeGroup {
            demand: d.rate_bps,
            latency: ps
                .iter()
                .map(|p| p.iter().map(|e| latency[*e as usize]).sum())
                .collect(),
            paths: ps.clone(),
        });
    }
    TeProblem {
        capacity,
        background: vec![0.0; n],
        groups,
    }
}

fn ecmp_mlu(inst: &Instance, m: &[Demand]) -> f64 {
    let g = inst.topo.graph();
    let n = petgraph::visit::NodeIndexable::node_bound(g);
    let mut arcs = Vec::new();
    let mut caps = Vec::new();
    for (_, l) in inst.topo.links() {
        arcs.push((
            l.src.index() as u32,
            l.dst.index() as u32,
            1 + l.delay.as_micros() as u64,
        ));
        caps.push(l.state.capacity.bps_f64());
    }
    let demands: Vec<(u32, u32, f64)> = m
        .iter()
        .filter_map(|d| {
            Some((
                inst.topo.device_ix(&d.src)?.index() as u32,
                inst.topo.device_ix(&d.dst)?.index() as u32,
                d.rate_bps,
            ))
        })
        .collect();
    ecmp_loads(n, &arcs, &demands)
        .iter()
        .zip(&caps)
        .map(|(l, c)| l / c)
        .fold(0.0, f64::max)
}

#[cfg(feature = "lp")]
fn lp_mlu(p: &TeProblem) -> Option<f64> {
    use highs::{ColProblem, HighsModelStatus, Sense};
    // Variables: x_gp (share of group g on path p), U. Rows: per link,
    // Σ d_g x_gp / c_e - U <= -bg_e / c_e; per group, Σ_p x_gp = 1.
    let mut pb = ColProblem::new();
    let mut link_row = HashMap::new();
    for g in &p.groups {
        for path in &g.paths {
            for &e in path {
                link_row.entry(e).or_insert_with(|| {
                    let c = p.capacity[e as usize];
                    pb.add_row(..=-p.background[e as usize] / c)
                });
            }
        }
    }
    let group_rows: Vec<_> = p.groups.iter().map(|_| pb.add_row(1.0..=1.0)).collect();
    for (g, row) in p.groups.iter().zip(&group_rows) {
        for path in &g.paths {
            let mut coef: Vec<(highs::Row, f64)> = path
                .iter()
                .map(|e| (link_row[e], g.demand / p.capacity[*e as usize]))
                .collect();
            coef.push((*row, 1.0));
            pb.add_column(0.0, 0.0..=1.0, coef);
        }
    }
    let all: Vec<(highs::Row, f64)> = link_row.values().map(|r| (*r, -1.0)).collect();
    pb.add_column(1.0, 0.0.., all);
    let mut model = pb.optimise(Sense::Minimise);
    model.make_quiet();
    let solved = model.solve();
    (solved.status() == HighsModelStatus::Optimal).then(|| solved.objective_value())
}

#[cfg(not(feature = "lp"))]
fn lp_mlu(_: &TeProblem) -> Option<f64> {
    None
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let Some(data) = data_dir::data_dir() else {
        return;
    };
    println!("Traffic engineering: MLU of our weights vs the multicommodity-flow LP optimum over");
    println!(
        "the same K={DEFAULT_K} paths vs plain ECMP over shortest paths. Data: {}",
        data.display()
    );
    if cfg!(not(feature = "lp")) {
        println!("(LP comparison skipped: build with `--features lp` for HiGHS)");
    }
    println!();
    let cfg = TeConfig::default();
    let mut summary = Vec::new();
    for inst in load_instances(&data) {
        let paths = paths_for(&inst);
        let (mut r_ours, mut r_ecmp, mut worst) = (Vec::new(), Vec::new(), 0.0f64);
        let (mut t_ours, mut t_lp, mut t_ecmp) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let (mut mlu_o, mut mlu_l, mut mlu_e) = (0.0, 0.0, 0.0);
        let (mut bound_gap, mut bound_over_lp, mut rounds) = (0.0f64, 0.0f64, 0);
        let mut groups = 0;
        for m in &inst.matrices {
            let p = problem(&inst, &paths, m);
            groups = p.groups.len();
            let t0 = Instant::now();
            let sol = solve(&p, None, &cfg);
            let shares: Vec<Vec<f64>> = sol
                .shares
                .iter()
                .map(|s| {
                    quantise(s, 100)
                        .iter()
                        .map(|w| f64::from(*w) / 100.0)
                        .collect()
                })
                .collect();
            t_ours += t0.elapsed();
            let ours = p.max_utilisation(&shares);
            bound_gap = bound_gap.max(ours / sol.lower_bound);
            rounds = rounds.max(sol.rounds);
            let t0 = Instant::now();
            let ecmp = ecmp_mlu(&inst, m);
            t_ecmp += t0.elapsed();
            let t0 = Instant::now();
            let lp = lp_mlu(&p);
            t_lp += t0.elapsed();
            mlu_o += ours;
            mlu_e += ecmp;
            if let Some(lp) = lp {
                mlu_l += lp;
                r_ours.push(ours / lp);
                r_ecmp.push(ecmp / lp);
                worst = worst.max(ours / lp);
                bound_over_lp = bound_over_lp.max(sol.lower_bound / lp);
            }
        }
        let n = inst.matrices.len().max(1) as f64;
        println!(
            "{} — {} ({} nodes, {} links, {} groups, paths in {})",
            inst.name,
            inst.source,
            inst.topo.devices().count(),
            inst.topo.links().count() / 2,
            groups,
            ms(paths.took)
        );
        println!(
            "  mean MLU: ours {:.4}  ECMP {:.4}{}",
            mlu_o / n,
            mlu_e / n,
            if r_ours.is_empty() {
                String::new()
            } else {
                format!("  LP {:.4}", mlu_l / n)
            }
        );
        println!(
            "  time per matrix: ours {}  ECMP {}{}",
            ms(t_ours / n as u32),
            ms(t_ecmp / n as u32),
            if r_ours.is_empty() {
                String::new()
            } else {
                format!(
                    "  LP {}  (LP/ours {:.2}x)",
                    ms(t_lp / n as u32),
                    t_lp.as_secs_f64() / t_ours.as_secs_f64()
                )
            }
        );
        println!(
            "  ours / our certified lower bound: worst {bound_gap:.3} (at most {rounds} round{}){}",
            if rounds == 1 { "" } else { "s" },
            if r_ours.is_empty() {
                String::new()
            } else {
                format!("; bound / LP at most {bound_over_lp:.4}")
            }
        );
        if !r_ours.is_empty() {
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            println!(
                "  ours/LP mean {:.3} worst {:.3}   ECMP/LP mean {:.3}",
                mean(&r_ours),
                worst,
                mean(&r_ecmp)
            );
            summary.push((
                inst.name.clone(),
                worst,
                t_lp.as_secs_f64() / t_ours.as_secs_f64(),
                inst.topo.links().count(),
            ));
        }
        println!();
    }
    if !summary.is_empty() {
        let within = summary.iter().filter(|s| s.1 <= 1.10).count();
        println!(
            "goal: within 10% of the LP optimum: {within}/{} instances (worst matrix of each)",
            summary.len()
        );
        if let Some(big) = summary.iter().max_by_key(|s| s.3) {
            println!(
                "goal: >= 100x faster than the LP on the largest instance ({}): {:.2}x — {}",
                big.0,
                big.2,
                if big.2 >= 100.0 { "met" } else { "not met" }
            );
        }
    }
}
