//! Placement on a simulated fabric: locality, congestion, energy, the
//! constraints, gang scheduling and the explanation.

use solyx_orchestrator::cost::Weights;
use solyx_orchestrator::drm::ResourceManager;
use solyx_orchestrator::energy::EnergySignals;
use solyx_orchestrator::inventory::{Node, NodeSource};
use solyx_orchestrator::job::JobSpec;
use solyx_orchestrator::network::NetworkView;
use solyx_orchestrator::placement::{offer, PlacementError, Placer, Strategy};
use solyx_orchestrator::resources::GpuGroup;
use solyx_orchestrator::sim::{FabricParams, SimFabric};

/// `sites` sites of `leaves` leaves of 4 nodes with 4 GPUs each.
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
                power_watts: 1500,
                source: NodeSource::Declared,
            });
        }
    }
    let params = FabricParams {
        nodes_per_leaf: 4,
        ..FabricParams::default()
    };
    let fabric = SimFabric::build(
        params,
        nodes.iter().map(|n| (n.name.clone(), n.site.clone())),
    );
    let mut drm = ResourceManager::in_memory().expect("memory store");
    for n in nodes {
        drm.upsert_node(n).expect("valid node");
    }
    (drm, fabric)
}

fn job(yaml: &str) -> JobSpec {
    JobSpec::parse(yaml, "test job").expect("valid job")
}

const RING8: &str = "
name: ring8
tasks: 8
resources: { cpus: 4, memory: 16GiB, gpus: 1 }
traffic: { pattern: ring_allreduce, bytes_per_step: 1GiB }
";

fn leaves_of(fabric: &SimFabric, nodes: &[String]) -> std::collections::BTreeSet<String> {
    nodes
        .iter()
        .filter_map(|n| fabric.location(n))
        .map(|l| l.leaf.to_string())
        .collect()
}

#[test]
fn a_ring_stays_on_one_leaf_where_spread_crosses_the_spine() {
    let (drm, fabric) = cluster(&["a"], 3);
    let energy = EnergySignals::new();
    let placer = Placer::new(&fabric, &energy, Weights::default());
    let j = job(RING8);
    let ours = placer
        .place(&j, &offer(&drm), 0, Strategy::NetworkAware)
        .expect("fits");
    assert_eq!(ours.nodes.len(), 8);
    assert_eq!(leaves_of(&fabric, &ours.nodes).len(), 1, "{:?}", ours.nodes);
    let distinct: std::collections::BTreeSet<_> = ours.nodes.iter().collect();
    assert_eq!(distinct.len(), 2, "8 one-GPU tasks fill two 4-GPU nodes");
    assert_eq!(ours.cost.cross_leaf_bytes, 0.0);

    let spread = placer
        .place(&j, &offer(&drm), 0, Strategy::Spread)
        .expect("fits");
    assert!(leaves_of(&fabric, &spread.nodes).len() > 1);
    assert!(spread.cost.cross_leaf_bytes > 0.0);
    assert!(spread.cost.total > ours.cost.total);

    // The explanation names every task's node and the losing candidates.
    let e = &ours.explanation;
    assert_eq!(e.tasks.len(), 8);
    assert!(e
        .tasks
        .iter()
        .all(|t| !t.reason.is_empty() && t.site == "a"));
    assert!(e.summary.contains("leaf"), "{}", e.summary);
    assert!(!e.alternatives.is_empty());
    assert!(e.alternatives.iter().all(|a| a.worse_by >= 0.0));
    let names: Vec<&str> = ours.cost.terms.iter().map(|t| t.name).collect();
    assert_eq!(names, ["comm", "hops", "price", "carbon", "pack"]);
    let json = serde_json::to_value(&ours).expect("placement serialises");
    assert!(json["explanation"]["tasks"][0]["reason"].is_string());
}

#[test]
fn a_job_larger_than_a_leaf_avoids_the_congested_leaf() {
    let (mut drm, mut fabric) = cluster(&["a"], 3);
    // Leaf 0 is busy with traffic the scheduler did not place; 20 tasks
    // need two of the three 16-GPU leaves.
    fabric.set_leaf_background("a-leaf00", 95e9);
    let energy = EnergySignals::new();
    let j = job(&RING8.replace("tasks: 8", "tasks: 20"));
    let placed = {
        let placer = Placer::new(&fabric, &energy, Weights::default());
        placer
            .place(&j, &offer(&drm), 0, Strategy::NetworkAware)
            .expect("fits")
    };
    let leaves = leaves_of(&fabric, &placed.nodes);
    assert_eq!(leaves.len(), 2, "{leaves:?}");
    assert!(!leaves.contains("a-leaf00"), "{leaves:?}");
    drm.allocate(placed.allocation_request(&j, "big"))
        .expect("the placement is grantable");
}

#[test]
fn energy_picks_the_site_for_a_job_without_traffic() {
    let (drm, fabric) = cluster(&["cheap", "dear"], 1);
    let mut energy = EnergySignals::new();
    energy.map_site("cheap", "ZONE-C");
    energy.map_site("dear", "ZONE-D");
    energy.set("ZONE-C", 0, Some(20.0), Some(50.0));
    energy.set("ZONE-D", 0, Some(150.0), Some(600.0));
    let j = job("
name: batch
tasks: 2
resources: { cpus: 4, memory: 8GiB, gpus: 1 }
");
    let placer = Placer::new(&fabric, &energy, Weights::default());
    let p = placer
        .place(&j, &offer(&drm), 1800, Strategy::NetworkAware)
        .expect("fits");
    assert!(
        p.nodes.iter().all(|n| n.starts_with("cheap-")),
        "{:?}",
        p.nodes
    );
    assert!(p.cost.usd_per_hour > 0.0 && p.cost.kg_co2_per_hour > 0.0);
    assert!(
        p.explanation.tasks[0].reason.contains("20.0 USD/MWh"),
        "{}",
        p.explanation.tasks[0].reason
    );

    // Prices flip an hour later.
    energy_flip(&drm, &fabric);
}

fn energy_flip(drm: &ResourceManager, fabric: &SimFabric) {
    let mut energy = EnergySignals::new();
    energy.map_site("cheap", "ZONE-C");
    energy.map_site("dear", "ZONE-D");
    energy.set("ZONE-C", 3600, Some(200.0), Some(700.0));
    energy.set("ZONE-D", 3600, Some(10.0), Some(30.0));
    let j = job("
name: batch
tasks: 2
resources: { cpus: 4, memory: 8GiB, gpus: 1 }
");
    let placer = Placer::new(fabric, &energy, Weights::default());
    let p = placer
        .place(&j, &offer(drm), 3600, Strategy::NetworkAware)
        .expect("fits");
    assert!(
        p.nodes.iter().all(|n| n.starts_with("dear-")),
        "{:?}",
        p.nodes
    );
}

#[test]
fn constraints_sites_and_latency_are_hard() {
    let (mut drm, fabric) = cluster(&["a", "b"], 1);
    let energy = EnergySignals::new();
    let placer = Placer::new(&fabric, &energy, Weights::default());
    let j = job(&format!("{RING8}constraints: {{ sites: [b] }}\n"));
    let p = placer
        .place(&j, &offer(&drm), 0, Strategy::NetworkAware)
        .expect("fits in b");
    assert!(p.nodes.iter().all(|n| n.starts_with("b-")));
    assert_eq!(p.explanation.excluded.get("site not allowed"), Some(&4));

    // Fill three nodes of each site so that 8 tasks need both sites, then
    // bound latency.
    let whole_node = solyx_orchestrator::resources::Demand {
        gpu_milli: 4000,
        ..j.resources.clone()
    };
    let hold = solyx_orchestrator::drm::AllocationRequest {
        id: "hold".into(),
        tenant: "t".into(),
        job: "hold".into(),
        tasks: ["a-n00", "a-n01", "a-n02", "b-n00", "b-n01", "b-n02"]
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u32, n.to_string(), whole_node.clone()))
            .collect(),
    };
    drm.allocate(hold).expect("hold most of both sites");
    let j = job(&format!("{RING8}constraints: {{ max_latency: 100us }}\n"));
    let placer = Placer::new(&fabric, &energy, Weights::default());
    match placer.place(&j, &offer(&drm), 0, Strategy::NetworkAware) {
        Err(PlacementError::Latency { max_latency_us, .. }) => {
            assert!((max_latency_us - 100.0).abs() < 1e-6)
        }
        other => panic!("expected a latency refusal, got {other:?}"),
    }
    let j = job(RING8);
    let p = placer
        .place(&j, &offer(&drm), 0, Strategy::NetworkAware)
        .expect("fits over two sites");
    assert!(p.cost.cross_site_bytes > 0.0);
}

#[test]
fn gang_jobs_are_all_or_nothing_and_others_take_what_fits() {
    let (drm, fabric) = cluster(&["a"], 1);
    let energy = EnergySignals::new();
    let placer = Placer::new(&fabric, &energy, Weights::default());
    let big = job(&RING8.replace("tasks: 8", "tasks: 20"));
    match placer.place(&big, &offer(&drm), 0, Strategy::NetworkAware) {
        Err(
            e @ PlacementError::NoCapacity {
                asked: 20, fit: 16, ..
            },
        ) => {
            assert!(e.to_string().contains("16 of 20"), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let loose = job(&format!(
        "{}gang: false\n",
        RING8.replace("tasks: 8", "tasks: 20")
    ));
    let p = placer
        .place(&loose, &offer(&drm), 0, Strategy::NetworkAware)
        .expect("partial");
    assert_eq!(p.nodes.len(), 16);
    assert!(
        p.explanation.summary.starts_with("16 of 20"),
        "{}",
        p.explanation.summary
    );
}
