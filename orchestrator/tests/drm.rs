//! The resource manager against a real SQLite file: state survives a
//! reopen, and refused requests change nothing, in memory or on disk.

use std::collections::BTreeMap;
use std::path::Path;

use solyx_orchestrator::drm::{
    AllocationRequest, DrmError, Quota, Refusal, ResourceManager, Upsert,
};
use solyx_orchestrator::inventory::{Node, NodeSource};
use solyx_orchestrator::resources::{Demand, GpuGroup};

fn gpu_node(name: &str, gpus: u32, source: NodeSource) -> Node {
    Node {
        name: name.into(),
        site: "site-a".into(),
        rack: "r1".into(),
        cpu_milli: 64_000,
        memory_mib: 256 * 1024,
        gpus: vec![GpuGroup {
            model: "A100".into(),
            count: gpus,
            memory_mib: 80 * 1024,
        }],
        accelerators: vec![],
        power_watts: 0,
        source,
    }
}

fn one_gpu() -> Demand {
    Demand {
        cpu_milli: 8000,
        memory_mib: 32 * 1024,
        gpu_milli: 1000,
        ..Demand::default()
    }
}

fn request(id: &str, tenant: &str, tasks: &[(&str, Demand)]) -> AllocationRequest {
    AllocationRequest {
        id: id.into(),
        tenant: tenant.into(),
        job: format!("job-{id}"),
        tasks: tasks
            .iter()
            .enumerate()
            .map(|(i, (n, d))| (i as u32, n.to_string(), d.clone()))
            .collect(),
    }
}

/// Everything observable about the manager, to compare before and after.
fn snapshot(drm: &ResourceManager) -> String {
    let nodes: Vec<String> = drm
        .nodes()
        .map(|n| format!("{:?} free={:?}", n.node, n.free))
        .collect();
    let allocs: Vec<String> = drm.allocations().map(|a| format!("{a:?}")).collect();
    let quotas: BTreeMap<&str, Option<&Quota>> = ["team-a", "team-b"]
        .into_iter()
        .map(|t| (t, drm.quota(t)))
        .collect();
    format!(
        "{nodes:#?}\n{allocs:#?}\n{quotas:?}\n{:?}",
        drm.usage("team-a")
    )
}

fn open(path: &Path) -> ResourceManager {
    ResourceManager::open(path).expect("open the state file")
}

#[test]
fn allocations_quotas_and_nodes_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("drm.sqlite");
    let before = {
        let mut drm = open(&path);
        drm.upsert_node(gpu_node("n1", 8, NodeSource::Declared))
            .expect("add n1");
        drm.upsert_node(gpu_node("n2", 4, NodeSource::Agent))
            .expect("add n2");
        drm.set_quota(
            "team-a",
            Some(Quota {
                gpu_milli: Some(6000),
                ..Quota::default()
            }),
        )
        .expect("quota");
        drm.allocate(request(
            "a1",
            "team-a",
            &[("n1", one_gpu()), ("n1", one_gpu()), ("n2", one_gpu())],
        ))
        .expect("fits");
        drm.allocate(request("a2", "team-b", &[("n2", one_gpu())]))
            .expect("fits");
        drm.release("a2").expect("release");
        drm.allocate(request("a3", "team-b", &[("n2", one_gpu())]))
            .expect("fits");
        assert_eq!(drm.node("n1").map(|n| n.free.gpu_milli_total()), Some(6000));
        snapshot(&drm)
    };
    let mut drm = open(&path);
    assert_eq!(snapshot(&drm), before, "reopened state differs");
    assert_eq!(drm.usage("team-a").gpu_milli, 3000);
    assert_eq!(drm.node("n2").map(|n| n.free.gpu_milli_total()), Some(2000));
    // The reopened manager keeps working on the same books.
    drm.release("a1").expect("release after reopen");
    assert_eq!(drm.node("n1").map(|n| n.free.gpu_milli_total()), Some(8000));
    drop(drm);
    let drm = open(&path);
    assert!(drm.allocation("a1").is_none());
    assert_eq!(drm.usage("team-a").gpu_milli, 0);
}

#[test]
fn refused_requests_change_nothing_in_memory_or_on_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("drm.sqlite");
    let mut drm = open(&path);
    drm.upsert_node(gpu_node("n1", 2, NodeSource::Declared))
        .expect("add n1");
    drm.upsert_node(gpu_node("n2", 2, NodeSource::Declared))
        .expect("add n2");
    drm.set_quota(
        "team-a",
        Some(Quota {
            gpu_milli: Some(3000),
            ..Quota::default()
        }),
    )
    .expect("quota");
    drm.allocate(request("held", "team-a", &[("n1", one_gpu())]))
        .expect("fits");
    let before = snapshot(&drm);

    type Expect = fn(&Refusal) -> bool;
    let refusals: Vec<(AllocationRequest, Expect)> = vec![
        (
            request("x1", "team-a", &[("nope", one_gpu())]),
            |r| matches!(r, Refusal::UnknownNode(n) if n == "nope"),
        ),
        // Gang: the second task does not fit; the first must not stay.
        (
            request(
                "x2",
                "team-b",
                &[
                    ("n2", one_gpu()),
                    (
                        "n1",
                        Demand {
                            gpu_milli: 2000,
                            ..one_gpu()
                        },
                    ),
                ],
            ),
            |r| matches!(r, Refusal::NoFit { task: 1, node, .. } if node == "n1"),
        ),
        // Two tasks of one request on one node are checked together.
        (
            request(
                "x3",
                "team-b",
                &[("n2", one_gpu()), ("n2", one_gpu()), ("n2", one_gpu())],
            ),
            |r| matches!(r, Refusal::NoFit { task: 2, .. }),
        ),
        (
            request(
                "x4",
                "team-a",
                &[("n2", one_gpu()), ("n2", one_gpu()), ("n1", one_gpu())],
            ),
            |r| {
                matches!(
                    r,
                    Refusal::Quota {
                        dimension: "gpu_milli",
                        limit: 3000,
                        used: 1000,
                        asked: 3000,
                        ..
                    }
                )
            },
        ),
        (request("held", "team-a", &[("n2", one_gpu())]), |r| {
            matches!(r, Refusal::DuplicateAllocation(_))
        }),
        (request("x5", "team-a", &[]), |r| {
            matches!(r, Refusal::InvalidRequest(_))
        }),
        (request("x6", "team-a", &[("n2", Demand::default())]), |r| {
            matches!(r, Refusal::InvalidRequest(_))
        }),
        (
            request(
                "x7",
                "team-a",
                &[(
                    "n2",
                    Demand {
                        gpu_models: vec!["H100".into()],
                        ..one_gpu()
                    },
                )],
            ),
            |r| matches!(r, Refusal::NoFit { .. }),
        ),
    ];
    for (req, expected) in refusals {
        let id = req.id.clone();
        match drm.allocate(req) {
            Err(DrmError::Refused(r)) => {
                assert!(expected(&r), "{id}: unexpected refusal: {r}");
                assert!(!r.to_string().is_empty());
            }
            other => panic!("{id}: expected a refusal, got {other:?}"),
        }
        assert_eq!(snapshot(&drm), before, "{id} changed the state");
    }
    assert!(matches!(
        drm.release("missing"),
        Err(DrmError::Refused(Refusal::UnknownAllocation(_)))
    ));
    assert!(matches!(
        drm.remove_node("n1"),
        Err(DrmError::Refused(Refusal::NodeBusy { ref allocations, .. })) if allocations == &["held"]
    ));
    let mut bad = gpu_node("", 1, NodeSource::Agent);
    assert!(matches!(
        drm.upsert_node(bad.clone()),
        Err(DrmError::Refused(Refusal::InvalidNode(_)))
    ));
    bad.name = "n9".into();
    bad.site = String::new();
    assert!(matches!(
        drm.upsert_node(bad),
        Err(DrmError::Refused(Refusal::InvalidNode(_)))
    ));
    assert_eq!(snapshot(&drm), before);
    drop(drm);
    assert_eq!(snapshot(&open(&path)), before, "refusals reached the file");
}

#[test]
fn declared_nodes_override_agent_reports() {
    let mut drm = ResourceManager::in_memory().expect("memory store");
    assert_eq!(
        drm.upsert_node(gpu_node("n1", 8, NodeSource::Declared))
            .ok(),
        Some(Upsert::Added)
    );
    assert_eq!(
        drm.upsert_node(gpu_node("n1", 2, NodeSource::Agent)).ok(),
        Some(Upsert::KeptDeclared)
    );
    assert_eq!(drm.node("n1").map(|n| n.node.gpu_count()), Some(8));
    assert_eq!(
        drm.upsert_node(gpu_node("n2", 2, NodeSource::Agent)).ok(),
        Some(Upsert::Added)
    );
    assert_eq!(
        drm.upsert_node(gpu_node("n2", 2, NodeSource::Agent)).ok(),
        Some(Upsert::Unchanged)
    );
    assert_eq!(
        drm.upsert_node(gpu_node("n2", 4, NodeSource::Agent)).ok(),
        Some(Upsert::Updated)
    );
    assert_eq!(drm.node("n2").map(|n| n.free.gpu_milli_total()), Some(4000));
}

#[test]
fn a_shrunk_node_keeps_its_allocations_and_offers_nothing() {
    let mut drm = ResourceManager::in_memory().expect("memory store");
    drm.upsert_node(gpu_node("n1", 4, NodeSource::Agent))
        .expect("add");
    drm.allocate(request(
        "a",
        "t",
        &[("n1", one_gpu()), ("n1", one_gpu()), ("n1", one_gpu())],
    ))
    .expect("fits");
    // The agent now reports two GPUs (one failed): the books keep the
    // three granted, nothing is free, and releasing restores the rest.
    drm.upsert_node(gpu_node("n1", 2, NodeSource::Agent))
        .expect("update");
    assert_eq!(drm.node("n1").map(|n| n.free.gpu_milli_total()), Some(0));
    assert!(drm
        .allocate(request("b", "t", &[("n1", one_gpu())]))
        .is_err());
    drm.release("a").expect("release");
    assert_eq!(drm.node("n1").map(|n| n.free.gpu_milli_total()), Some(2000));
}
