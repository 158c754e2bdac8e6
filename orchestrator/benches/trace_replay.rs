//! Replays the Alibaba GPU cluster trace 2023 on a simulated leaf-spine
//! whose nodes are the trace's nodes, with the network-aware placer and
//! the spread, pack and random baselines in the same run. Prints the fit
//! rate, cross-leaf traffic and estimated job completion time of each.
//!
//! Run: `cargo bench -p solyx-orchestrator --bench trace_replay [-- --data DIR]`

mod common;

use solyx_orchestrator::cost::Weights;
use solyx_orchestrator::energy::EnergySignals;
use solyx_orchestrator::network::NetworkView;
use solyx_orchestrator::placement::Strategy;
use solyx_orchestrator::sim::{FabricParams, SimFabric};
use solyx_orchestrator::trace::{derive_jobs, load_nodes, load_pods, trace_dir, JobDerivation};

fn main() {
    let dir = trace_dir(&common::data_dir());
    let node_file = dir.join("openb_node_list_all_node.csv");
    let pod_file = dir.join("openb_pod_list_default.csv");
    if !node_file.exists() || !pod_file.exists() {
        println!(
            "trace_replay: skipped: the Alibaba GPU trace 2023 is not at {} \
             (pass --data DIR or set SOLYX_DATA)",
            dir.display()
        );
        return;
    }
    let mut nodes = load_nodes(&node_file, "dc").expect("node list");
    let pods = load_pods(&pod_file).expect("pod list");
    let derivation = JobDerivation::default();
    let mut jobs = derive_jobs(&pods, &derivation);
    if common::quick() {
        jobs.truncate(1500);
    }
    let params = FabricParams::default();
    let fabric = SimFabric::build(
        params.clone(),
        nodes.iter().map(|n| (n.name.clone(), n.site.clone())),
    );
    for n in &mut nodes {
        if let Some(l) = fabric.location(&n.name) {
            n.rack = l.rack.to_string();
        }
    }
    let multi = jobs
        .iter()
        .filter(|j| j.spec.tasks > 1 && !j.spec.traffic_edges().is_empty())
        .count();
    println!(
        "source: Alibaba cluster-trace-gpu-v2023 (Weng et al., USENIX ATC 2023), {}",
        dir.display()
    );
    println!(
        "cluster: {} nodes on {} leaves ({} per leaf, {:.0} Gbit/s NICs, {}:1 leaf oversubscription)",
        nodes.len(),
        fabric.leaf_count(),
        params.nodes_per_leaf,
        params.nic_bps / 1e9,
        params.oversubscription
    );
    println!(
        "workload: {} pods -> {} jobs ({} multi-task GPU jobs with ring all-reduce of {} MiB per {} s step); \
         pods with identical requests created within {} s form one job",
        pods.len(),
        jobs.len(),
        multi,
        derivation.bytes_per_step >> 20,
        derivation.step_time_s,
        derivation.window_s
    );
    let energy = EnergySignals::new();
    let strategies = [
        Strategy::NetworkAware,
        Strategy::Spread,
        Strategy::Pack,
        Strategy::Random(7),
    ];
    let mut goal = true;
    for (title, fill) in [
        (
            "replay in trace time (jobs leave at their deletion time)",
            false,
        ),
        (
            "fill (jobs never leave; the cluster fills up in arrival order)",
            true,
        ),
    ] {
        let results: Vec<_> = strategies
            .iter()
            .map(|&s| {
                common::replay(
                    &nodes,
                    &fabric,
                    &jobs,
                    s,
                    Weights::default(),
                    &energy,
                    0,
                    fill,
                )
            })
            .collect();
        goal &= report(title, &results);
    }
    println!(
        "goal (>= 30% less cross-leaf traffic than spread at equal or better fit rate, both scenarios): {}",
        if goal { "met" } else { "NOT met" }
    );
}

fn report(title: &str, results: &[common::ReplayResult]) -> bool {
    println!();
    println!("== {title}");
    println!(
        "{:<14} {:>8} {:>9} {:>11} {:>14} {:>12} {:>13} {:>12}",
        "strategy",
        "fit",
        "GPU fit",
        "multi fit",
        "cross-leaf PB",
        "cross share",
        "JCT slowdown",
        "place µs/job"
    );
    for r in results {
        println!(
            "{:<14} {:>7.2}% {:>8.2}% {:>10.2}% {:>14.3} {:>11.1}% {:>13.3} {:>12.1}",
            r.strategy,
            100.0 * r.fit_rate(),
            100.0 * r.gpu_fit_rate(),
            100.0 * r.multi_fit_rate(),
            r.cross_leaf_bytes / 1e15,
            100.0 * r.cross_leaf_bytes / r.network_bytes.max(1.0),
            r.mean_slowdown(),
            1e6 * r.place_seconds / r.jobs.max(1) as f64
        );
    }
    let ours = &results[0];
    for base in &results[1..] {
        let less = 1.0 - ours.cross_leaf_bytes / base.cross_leaf_bytes.max(1.0);
        println!(
            "vs {:<7}: cross-leaf traffic {:+.1}%, fit rate {:+.2} points (GPU {:+.2}), multi-task fit {:+.2} points, JCT slowdown x{:.3}",
            base.strategy,
            -100.0 * less,
            100.0 * (ours.fit_rate() - base.fit_rate()),
            100.0 * (ours.gpu_fit_rate() - base.gpu_fit_rate()),
            100.0 * (ours.multi_fit_rate() - base.multi_fit_rate()),
            ours.mean_slowdown() / base.mean_slowdown()
        );
    }
    let spread = &results[1];
    let less = 1.0 - ours.cross_leaf_bytes / spread.cross_leaf_bytes.max(1.0);
    less >= 0.30 && ours.fit_rate() >= spread.fit_rate()
}
