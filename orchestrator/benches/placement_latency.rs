//! Placement latency of the network-aware placer at 1,000 and 10,000
//! nodes, with the spread baseline timed in the same run.
//!
//! Each cluster is a leaf-spine of 8-GPU nodes (32 per leaf, 4 sites),
//! half full with random allocations and with background load on some
//! leaves, so placements see uneven free capacity and headroom. Jobs mix
//! single tasks and rings of 2 to 64 one-GPU tasks. Each timing covers
//! building the offer from the resource manager and placing the job.
//!
//! Run: `cargo bench -p solyx-orchestrator --bench placement_latency`

mod common;

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use solyx_orchestrator::cost::Weights;
use solyx_orchestrator::drm::{AllocationRequest, ResourceManager};
use solyx_orchestrator::energy::EnergySignals;
use solyx_orchestrator::inventory::{Node, NodeSource};
use solyx_orchestrator::job::{Constraints, JobSpec, Traffic, TrafficPattern};
use solyx_orchestrator::placement::{offer, Placer, Strategy};
use solyx_orchestrator::resources::{Demand, GpuGroup};
use solyx_orchestrator::sim::{FabricParams, SimFabric};

fn cluster(n: usize, rng: &mut rand::rngs::StdRng) -> (ResourceManager, SimFabric) {
    let nodes: Vec<Node> = (0..n)
        .map(|i| Node {
            name: format!("node-{i:05}"),
            site: format!("site-{}", i * 4 / n),
            rack: String::new(),
            cpu_milli: 96_000,
            memory_mib: 1024 * 1024,
            gpus: vec![GpuGroup {
                model: "A100".into(),
                count: 8,
                memory_mib: 81920,
            }],
            accelerators: vec![],
            power_watts: 0,
            source: NodeSource::Declared,
        })
        .collect();
    let params = FabricParams {
        nodes_per_leaf: 32,
        ..FabricParams::default()
    };
    let mut fabric = SimFabric::build(
        params,
        nodes.iter().map(|n| (n.name.clone(), n.site.clone())),
    );
    let mut drm = ResourceManager::in_memory().expect("memory store");
    for node in &nodes {
        drm.upsert_node(node.clone()).expect("valid node");
    }
    // Half the GPUs taken, unevenly.
    for (i, node) in nodes.iter().enumerate() {
        let gpus: u64 = rng.random_range(0..=8);
        if gpus > 0 {
            drm.allocate(AllocationRequest {
                id: format!("bg-{i}"),
                tenant: "bg".into(),
                job: "bg".into(),
                tasks: vec![(
                    0,
                    node.name.clone(),
                    Demand {
                        cpu_milli: 1000,
                        gpu_milli: gpus * 1000,
                        ..Demand::default()
                    },
                )],
            })
            .expect("fits an empty node");
        }
    }
    for i in 0..fabric.leaf_count() {
        if rng.random_range(0..4) == 0 {
            let site = format!("site-{}", i * 4 / fabric.leaf_count());
            fabric.set_leaf_background(
                &format!("{site}-leaf{:02}", i % (fabric.leaf_count() / 4).max(1)),
                rng.random_range(0.0..100e9),
            );
        }
    }
    (drm, fabric)
}

fn job(i: usize, tasks: u32) -> JobSpec {
    JobSpec {
        name: format!("bench-{i}"),
        tenant: "bench".into(),
        tasks,
        gang: true,
        resources: Demand {
            cpu_milli: 8000,
            memory_mib: 65536,
            gpu_milli: 1000,
            ..Demand::default()
        },
        traffic: if tasks > 1 {
            Traffic {
                pattern: TrafficPattern::RingAllreduce,
                bytes_per_step: 1 << 30,
                ..Traffic::default()
            }
        } else {
            Traffic::default()
        },
        constraints: Constraints::default(),
        duration_s: 3600.0,
    }
}

fn main() {
    let runs = if common::quick() { 200 } else { 2000 };
    let sizes = [1u32, 1, 1, 2, 4, 8, 16, 32, 64];
    println!("placement latency: {runs} placements per cluster, job sizes {sizes:?} one-GPU tasks (rings above 1)");
    println!(
        "{:>7} {:<14} {:>9} {:>9} {:>9} {:>10}",
        "nodes", "strategy", "p50 ms", "p99 ms", "max ms", "p99 ratio"
    );
    for n in [1_000usize, 10_000] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let (drm, fabric) = cluster(n, &mut rng);
        let energy = EnergySignals::new();
        let placer = Placer::new(&fabric, &energy, Weights::default());
        let mut p99s = Vec::new();
        for strategy in [Strategy::Spread, Strategy::NetworkAware] {
            let mut times = Vec::with_capacity(runs);
            let mut placed = 0;
            for i in 0..runs {
                let j = job(i, sizes[i % sizes.len()]);
                let start = Instant::now();
                let offered = offer(&drm);
                let r = placer.place(&j, &offered, 0, strategy);
                times.push(start.elapsed().as_secs_f64() * 1e3);
                placed += usize::from(r.is_ok());
            }
            assert_eq!(
                placed, runs,
                "every benchmark job fits the half-empty cluster"
            );
            times.sort_by(f64::total_cmp);
            let p99 = common::percentile(&times, 0.99);
            p99s.push(p99);
            println!(
                "{:>7} {:<14} {:>9.3} {:>9.3} {:>9.3} {:>9.2}x",
                n,
                strategy.name(),
                common::percentile(&times, 0.50),
                p99,
                times.last().copied().unwrap_or(f64::NAN),
                p99 / p99s[0]
            );
        }
        if n == 1_000 {
            println!(
                "goal (p99 under 10 ms at 1,000 nodes): {}",
                if p99s[1] < 10.0 { "met" } else { "NOT met" }
            );
        }
    }
}
