//! The same workload placed with and without energy price and carbon
//! intensity, on a five-site cluster whose sites follow the real 2023
//! hourly data of five grid zones. Reports the energy cost and emissions
//! of each run and the saving against carbon-blind placement.
//!
//! Workload: the Alibaba GPU trace 2023 jobs (as in trace_replay), in
//! trace time from 2023-01-01 00:00 UTC. Cluster: the trace's nodes, one
//! leaf of 16 nodes after another dealt to the five sites.
//!
//! Run: `cargo bench -p solyx-orchestrator --bench energy_shift [-- --data DIR]`

mod common;

use solyx_orchestrator::cost::Weights;
use solyx_orchestrator::energy::{parse_utc, EnergySignals};
use solyx_orchestrator::network::NetworkView;
use solyx_orchestrator::placement::Strategy;
use solyx_orchestrator::sim::{FabricParams, SimFabric};
use solyx_orchestrator::trace::{derive_jobs, load_nodes, load_pods, trace_dir, JobDerivation};

const SITES: [(&str, &str); 5] = [
    ("site-1", "US-CAL-CISO"),
    ("site-2", "US-TEX-ERCO"),
    ("site-3", "DE-LU"),
    ("site-4", "CA-ON"),
    ("site-5", "SG"),
];

/// The second scenario: three sites none of which is cheapest and
/// cleanest all year, so the hour-by-hour signal decides.
const CLOSE_SITES: [(&str, &str); 3] = [
    ("site-1", "US-CAL-CISO"),
    ("site-2", "US-TEX-ERCO"),
    ("site-3", "DE-LU"),
];

fn main() {
    let data = common::data_dir();
    let energy_dir = data.join("energy");
    let dir = trace_dir(&data);
    let node_file = dir.join("openb_node_list_all_node.csv");
    let pod_file = dir.join("openb_pod_list_default.csv");
    if !energy_dir.is_dir() || !node_file.exists() || !pod_file.exists() {
        println!(
            "energy_shift: skipped: needs {} and {} (pass --data DIR or set SOLYX_DATA)",
            energy_dir.display(),
            dir.display()
        );
        return;
    }
    let mut energy = EnergySignals::load_dir(&energy_dir).expect("energy data loads");
    // Both scenarios name their sites site-1.. in the same zone order.
    for (site, zone) in SITES {
        energy.map_site(site, zone);
        assert!(
            energy.zone(zone).is_some(),
            "zone {zone} missing from {}",
            energy_dir.display()
        );
    }
    println!(
        "source: Electricity Maps 2023 hourly carbon intensity (LCA) and 2023 hourly wholesale prices \
         (via HewlettPackard/green-dcc), {}; Alibaba cluster-trace-gpu-v2023, {}",
        energy_dir.display(),
        dir.display()
    );
    let t0 = parse_utc("2023-01-01 00:00:00").expect("valid time");
    for (site, zone) in SITES {
        let z = energy.zone(zone).expect("zone");
        let (a, b) = z.price_usd_per_mwh.span().unwrap_or((t0, t0));
        println!(
            "  {site} = {zone:<12} mean price {:>6.1} USD/MWh, mean carbon {:>5.0} gCO2/kWh (2023, {} h)",
            z.price_usd_per_mwh.mean(a, b).unwrap_or(f64::NAN),
            z.carbon_g_per_kwh.mean(a, b).unwrap_or(f64::NAN),
            z.price_usd_per_mwh.len()
        );
    }

    let pods = load_pods(&pod_file).expect("pod list");
    let mut jobs = derive_jobs(&pods, &JobDerivation::default());
    if common::quick() {
        jobs.truncate(1500);
    }
    println!(
        "workload: {} jobs over {} days of 2023",
        jobs.len(),
        jobs.last().map_or(0, |j| j.arrival_s) / 86400
    );
    let base_nodes = load_nodes(&node_file, "unassigned").expect("node list");
    run(&base_nodes, &jobs, &energy, t0, &SITES, "five sites");
    run(
        &base_nodes,
        &jobs,
        &energy,
        t0,
        &CLOSE_SITES,
        "three sites without CA-ON and SG",
    );
}

fn run(
    base_nodes: &[solyx_orchestrator::inventory::Node],
    jobs: &[solyx_orchestrator::trace::TraceJob],
    energy: &EnergySignals,
    t0: i64,
    sites: &[(&str, &str)],
    title: &str,
) {
    let mut nodes = base_nodes.to_vec();
    let per_leaf = FabricParams::default().nodes_per_leaf;
    for (i, n) in nodes.iter_mut().enumerate() {
        n.site = sites[(i / per_leaf) % sites.len()].0.to_string();
    }
    let fabric = SimFabric::build(
        FabricParams::default(),
        nodes.iter().map(|n| (n.name.clone(), n.site.clone())),
    );
    for n in &mut nodes {
        if let Some(l) = fabric.location(&n.name) {
            n.rack = l.rack.to_string();
        }
    }
    let aware = Weights::default();
    let runs = [
        ("carbon-blind", Strategy::NetworkAware, aware.energy_blind()),
        ("energy-aware", Strategy::NetworkAware, aware),
        (
            "price-first",
            Strategy::NetworkAware,
            Weights {
                carbon: 0.0,
                price: 0.4,
                ..aware
            },
        ),
        (
            "carbon-first",
            Strategy::NetworkAware,
            Weights {
                price: 0.0,
                carbon: 0.4,
                ..aware
            },
        ),
        ("random", Strategy::Random(11), aware.energy_blind()),
    ];
    let results: Vec<_> = runs
        .iter()
        .map(|(_, s, w)| common::replay(&nodes, &fabric, jobs, *s, *w, energy, t0, false))
        .collect();
    println!();
    println!("== {title}");
    println!(
        "{:<14} {:>7} {:>12} {:>12} {:>14}   share of energy by site",
        "placement", "fit", "energy USD", "t CO2eq", "cross-site TB"
    );
    for ((name, _, _), r) in runs.iter().zip(&results) {
        let total: f64 = r.site_kwh.values().sum();
        let shares: Vec<String> = r
            .site_kwh
            .iter()
            .map(|(s, k)| format!("{s} {:.0}%", 100.0 * k / total.max(1e-9)))
            .collect();
        println!(
            "{:<14} {:>6.2}% {:>12.0} {:>12.1} {:>14.3}   {}",
            name,
            100.0 * r.fit_rate(),
            r.usd,
            r.kg_co2 / 1000.0,
            r.cross_site_bytes / 1e12,
            shares.join(", ")
        );
    }
    let blind = &results[0];
    for (i, r) in results.iter().enumerate().skip(1) {
        println!(
            "{} vs carbon-blind: energy cost {:+.1}%, CO2eq {:+.1}%",
            runs[i].0,
            100.0 * (r.usd / blind.usd - 1.0),
            100.0 * (r.kg_co2 / blind.kg_co2 - 1.0)
        );
    }
}
