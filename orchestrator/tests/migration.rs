//! Migration advice when prices or congestion change, and none when they
//! do not change enough.

use solyx_orchestrator::cost::Weights;
use solyx_orchestrator::drm::{Allocation, ResourceManager};
use solyx_orchestrator::energy::EnergySignals;
use solyx_orchestrator::inventory::{Node, NodeSource};
use solyx_orchestrator::job::JobSpec;
use solyx_orchestrator::migration::{advise, MigrationPolicy, RunningJob, Trigger};
use solyx_orchestrator::network::NetworkView;
use solyx_orchestrator::placement::{offer, Placer, Strategy};
use solyx_orchestrator::resources::GpuGroup;
use solyx_orchestrator::sim::{FabricParams, SimFabric};

fn cluster(sites: &[&str], leaves: usize) -> (ResourceManager, SimFabric) {
    let mut nodes = Vec::new();
    for site in sites {
        for i in 0..leaves * 4 {
            nodes.push(Node {
                name: format!("{site}-n{i:02}"),
                site: site.to_string(),
                rack: String::new(),
                cpu_milli: 64_000,
                memory_mib: 512 * 1024,
                gpus: vec![GpuGroup {
                    model: "A100".into(),
                    count: 4,
                    memory_mib: 0,
                }],
                accelerators: vec![],
                power_watts: 2000,
                source: NodeSource::Declared,
            });
        }
    }
    let fabric = SimFabric::build(
        FabricParams {
            nodes_per_leaf: 4,
            ..FabricParams::default()
        },
        nodes.iter().map(|n| (n.name.clone(), n.site.clone())),
    );
    let mut drm = ResourceManager::in_memory().expect("memory store");
    for n in nodes {
        drm.upsert_node(n).expect("valid node");
    }
    (drm, fabric)
}

fn place_and_hold(
    drm: &mut ResourceManager,
    fabric: &SimFabric,
    energy: &EnergySignals,
    job: &JobSpec,
    at: i64,
) -> Allocation {
    let p = Placer::new(fabric, energy, Weights::default())
        .place(job, &offer(drm), at, Strategy::NetworkAware)
        .expect("fits");
    drm.allocate(p.allocation_request(job, &format!("{}-1", job.name)))
        .expect("grantable")
}

fn zones(energy: &mut EnergySignals) {
    energy.map_site("east", "Z-EAST");
    energy.map_site("west", "Z-WEST");
}

#[test]
fn a_price_swing_moves_a_batch_job_with_its_saving() {
    let (mut drm, fabric) = cluster(&["east", "west"], 1);
    let job = JobSpec::parse(
        "name: batch\ntasks: 4\nresources: { cpus: 8, memory: 32GiB, gpus: 1 }\nduration: 10h\n",
        "job",
    )
    .expect("valid");
    let mut energy = EnergySignals::new();
    zones(&mut energy);
    energy.set("Z-EAST", 0, Some(30.0), Some(200.0));
    energy.set("Z-WEST", 0, Some(90.0), Some(200.0));
    let alloc = place_and_hold(&mut drm, &fabric, &energy, &job, 0);
    assert!(alloc.tasks.iter().all(|t| t.node.starts_with("east")));
    let running = [RunningJob {
        spec: &job,
        allocation: &alloc,
        remaining_s: 8.0 * 3600.0,
    }];
    let policy = MigrationPolicy::default();

    // Same prices an hour later: stay.
    energy.set("Z-EAST", 3600, Some(31.0), Some(200.0));
    energy.set("Z-WEST", 3600, Some(89.0), Some(200.0));
    assert!(advise(
        &drm,
        &fabric,
        &energy,
        Weights::default(),
        3600,
        &running,
        &policy
    )
    .is_empty());

    // East's price triples: move west, saving money over the 8 h left.
    energy.set("Z-EAST", 7200, Some(180.0), Some(200.0));
    energy.set("Z-WEST", 7200, Some(40.0), Some(200.0));
    let advice = advise(
        &drm,
        &fabric,
        &energy,
        Weights::default(),
        7200,
        &running,
        &policy,
    );
    assert_eq!(advice.len(), 1);
    let a = &advice[0];
    assert!(a.to.iter().all(|n| n.starts_with("west")), "{:?}", a.to);
    assert_eq!(a.moved_tasks, 4);
    assert_eq!(a.triggers, vec![Trigger::Price]);
    // 4 tasks x (2 kW / 4 GPUs) = 2 kW; (180 - 40) USD/MWh * 2 kW * 8 h
    // = 2.24 USD, minus 2 minutes at the old price.
    let expected = (180.0 - 40.0) * 2.0 / 1000.0 * 8.0 - 180.0 * 2.0 / 1000.0 * (120.0 / 3600.0);
    assert!(
        (a.saving.usd - expected).abs() < 1e-6,
        "{} vs {expected}",
        a.saving.usd
    );
    assert!(a.explanation.contains("USD"));
}

#[test]
fn congestion_moves_a_ring_off_a_hot_leaf_but_noise_does_not() {
    let (mut drm, mut fabric) = cluster(&["dc"], 3);
    let job = JobSpec::parse(
        "name: ring\ntasks: 20\nresources: { cpus: 4, memory: 16GiB, gpus: 1 }\n\
         traffic: { pattern: ring_allreduce, bytes_per_step: 4GiB }\nduration: 24h\n",
        "job",
    )
    .expect("valid");
    let energy = EnergySignals::new();
    let alloc = place_and_hold(&mut drm, &fabric, &energy, &job, 0);
    let layout = fabric.clone();
    let leaf = |n: &str| {
        layout
            .location(n)
            .map(|l| l.leaf.to_string())
            .unwrap_or_default()
    };
    let mut used: Vec<String> = alloc.tasks.iter().map(|t| leaf(&t.node)).collect();
    used.sort();
    used.dedup();
    assert_eq!(used.len(), 2, "20 tasks span two 16-GPU leaves");
    let running = [RunningJob {
        spec: &job,
        allocation: &alloc,
        remaining_s: 20.0 * 3600.0,
    }];
    let policy = MigrationPolicy::default();

    // A little background traffic: below the thresholds.
    fabric.set_leaf_background(&used[1], 2e9);
    assert!(advise(
        &drm,
        &fabric,
        &energy,
        Weights::default(),
        0,
        &running,
        &policy
    )
    .is_empty());

    // One of the two leaves becomes nearly saturated.
    fabric.set_leaf_background(&used[1], 99e9);
    let advice = advise(
        &drm,
        &fabric,
        &energy,
        Weights::default(),
        0,
        &running,
        &policy,
    );
    assert_eq!(advice.len(), 1);
    let a = &advice[0];
    assert!(
        a.triggers.contains(&Trigger::Congestion),
        "{:?}",
        a.triggers
    );
    assert!(a.to.iter().all(|n| leaf(n) != used[1]), "{:?}", a.to);
    assert!(a.saving.time_s > policy.min_time_s);
    assert!(a.proposed.comm_s_per_step < a.current.comm_s_per_step);
}
