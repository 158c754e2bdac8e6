//! The Kubernetes scheduler extender over real HTTP, with ExtenderArgs as
//! kube-scheduler sends them.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use solyx_orchestrator::cost::Weights;
use solyx_orchestrator::drm::{AllocationRequest, ResourceManager};
use solyx_orchestrator::energy::EnergySignals;
use solyx_orchestrator::extender::{Extender, ExtenderFilterResult, HostPriority};
use solyx_orchestrator::inventory::{Node, NodeSource};
use solyx_orchestrator::network::NetworkView;
use solyx_orchestrator::resources::{Demand, GpuGroup};
use solyx_orchestrator::sim::{FabricParams, SimFabric};

/// Two leaves of four 4-GPU nodes; `n0` is fully allocated.
async fn serve() -> (String, Arc<SimFabric>) {
    let names: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
    let fabric = Arc::new(SimFabric::build(
        FabricParams {
            nodes_per_leaf: 4,
            ..FabricParams::default()
        },
        names.iter().map(|n| (n.clone(), "site-a".to_string())),
    ));
    let mut drm = ResourceManager::in_memory().expect("memory store");
    for n in &names {
        drm.upsert_node(Node {
            name: n.clone(),
            site: "site-a".into(),
            rack: String::new(),
            cpu_milli: 64_000,
            memory_mib: 256 * 1024,
            gpus: vec![GpuGroup {
                model: "A100".into(),
                count: 4,
                memory_mib: 81920,
            }],
            accelerators: vec![],
            power_watts: 0,
            source: NodeSource::Agent,
        })
        .expect("valid node");
    }
    drm.allocate(AllocationRequest {
        id: "busy".into(),
        tenant: "other".into(),
        job: "busy".into(),
        tasks: vec![(
            0,
            "n0".into(),
            Demand {
                cpu_milli: 1000,
                gpu_milli: 4000,
                ..Demand::default()
            },
        )],
    })
    .expect("fill n0");
    let ext = Arc::new(Extender::new(
        Arc::new(Mutex::new(drm)),
        fabric.clone(),
        Arc::new(EnergySignals::new()),
        Weights::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, ext.router()).await });
    (format!("http://{addr}/scheduler"), fabric)
}

/// A pod as kube-scheduler posts it (trimmed of status noise).
fn pod(name: &str, annotations: Value) -> Value {
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": "4f1e6f0a-3c55-4c1e-9a55-2a0d5cbb2c11",
            "labels": { "app": "trainer" },
            "annotations": annotations
        },
        "spec": {
            "schedulerName": "solyx-scheduler",
            "containers": [{
                "name": "worker",
                "image": "registry.example/trainer:1.4",
                "resources": {
                    "requests": { "cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1" },
                    "limits": { "nvidia.com/gpu": "1" }
                }
            }, {
                "name": "sidecar",
                "image": "registry.example/logs:2",
                "resources": { "requests": { "cpu": "250m", "memory": "128Mi" } }
            }],
            "restartPolicy": "Never"
        },
        "status": { "phase": "Pending", "qosClass": "Burstable" }
    })
}

fn ring_annotations(task: u32) -> Value {
    json!({
        "solyx.io/job": "llm",
        "solyx.io/tasks": "8",
        "solyx.io/task-index": task.to_string(),
        "solyx.io/traffic": "ring_allreduce",
        "solyx.io/bytes-per-step": "1GiB"
    })
}

async fn post(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("extender answers")
}

#[tokio::test]
async fn filter_by_names_reports_why_nodes_fail() {
    let (base, _) = serve().await;
    let args = json!({
        "Pod": pod("llm-0", ring_annotations(0)),
        "Nodes": null,
        "NodeNames": ["n0", "n1", "n5", "ghost"]
    });
    let resp = post(&format!("{base}/filter"), &args).await;
    assert_eq!(resp.status(), 200);
    let r: ExtenderFilterResult = resp.json().await.expect("ExtenderFilterResult");
    assert_eq!(r.node_names, Some(vec!["n1".to_string(), "n5".to_string()]));
    assert!(r.failed_nodes["n0"].contains("gpu"), "{:?}", r.failed_nodes);
    assert!(r.failed_and_unresolvable_nodes["ghost"].contains("inventory"));
    assert!(r.error.is_empty());
    assert!(r.nodes.is_none());
}

#[tokio::test]
async fn filter_by_node_objects_returns_them_unchanged() {
    let (base, _) = serve().await;
    let node = |name: &str| {
        json!({
            "metadata": { "name": name, "labels": { "kubernetes.io/hostname": name } },
            "status": { "allocatable": { "cpu": "64", "memory": "256Gi", "nvidia.com/gpu": "4" } }
        })
    };
    let args = json!({
        "Pod": pod("solo", json!({})),
        "Nodes": { "kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": [node("n0"), node("n3")] },
        "NodeNames": null
    });
    let raw: Value = post(&format!("{base}/filter"), &args)
        .await
        .json()
        .await
        .expect("json");
    // Upstream field names on the wire.
    for key in [
        "Nodes",
        "NodeNames",
        "FailedNodes",
        "FailedAndUnresolvableNodes",
        "Error",
    ] {
        assert!(raw.get(key).is_some(), "missing {key} in {raw}");
    }
    assert_eq!(raw["Nodes"]["items"], json!([node("n3")]));
    assert_eq!(raw["Nodes"]["kind"], "NodeList");
    assert!(raw["FailedNodes"]["n0"].is_string());
}

#[tokio::test]
async fn prioritize_scores_the_planned_leaf_highest() {
    let (base, fabric) = serve().await;
    let names: Vec<String> = (1..8).map(|i| format!("n{i}")).collect();
    let mut plan_leaf = None;
    for task in [0u32, 5] {
        let args = json!({ "Pod": pod(&format!("llm-{task}"), ring_annotations(task)), "NodeNames": names });
        let resp = post(&format!("{base}/prioritize"), &args).await;
        assert_eq!(resp.status(), 200);
        let scores: Vec<HostPriority> = resp.json().await.expect("HostPriorityList");
        assert_eq!(scores.len(), names.len());
        assert!(scores.iter().all(|s| (0..=10).contains(&s.score)));
        let best = scores.iter().max_by_key(|s| s.score).expect("scores");
        assert_eq!(best.score, 10);
        // 8 tasks of 1 GPU: leaf 0 has 12 GPUs free (n0 is full), leaf 1
        // has 16. Whatever leaf the plan picked, every node of it must
        // outscore every node of the other leaf.
        let leaf = |n: &str| fabric.location(n).map(|l| l.leaf.to_string());
        let top_leaf = leaf(&best.host);
        if let Some(prev) = &plan_leaf {
            assert_eq!(&top_leaf, prev, "the job's pods share one plan");
        }
        let (inside, outside): (Vec<_>, Vec<_>) =
            scores.iter().partition(|s| leaf(&s.host) == top_leaf);
        let worst_inside = inside.iter().map(|s| s.score).min().unwrap_or(0);
        let best_outside = outside.iter().map(|s| s.score).max().unwrap_or(0);
        assert!(worst_inside > best_outside, "{scores:?}");
        plan_leaf = Some(top_leaf);
    }
}

#[tokio::test]
async fn bad_annotations_are_reported_not_guessed() {
    let (base, _) = serve().await;
    let mut ann = ring_annotations(0);
    ann["solyx.io/traffic"] = json!("mesh");
    let args = json!({ "Pod": pod("llm-0", ann), "NodeNames": ["n1"] });
    let r: ExtenderFilterResult = post(&format!("{base}/filter"), &args)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        r.error.contains("solyx.io/traffic") && r.error.contains("ml/llm-0"),
        "{}",
        r.error
    );
    let resp = post(&format!("{base}/prioritize"), &args).await;
    assert_eq!(resp.status(), 422);
    let resp = reqwest::Client::new()
        .post(format!("{base}/filter"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert!(resp.status().is_client_error());
}
