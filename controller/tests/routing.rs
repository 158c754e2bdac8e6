//! Routing behaviour: paths, labels, weights, failover, balancing with
//! hysteresis, intents and the fabric entries, on the shipped topology
//! files and on random graphs.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use solyx::routing::p4::{fabric_entities, fabric_entries, host_groups, FabricAction};
use solyx::routing::{
    all_pairs, Failure, Intent, IntentError, LinkPath, Reason, Routes, RoutingConfig, Shortfall,
};
use solyx::topology::file::{DeviceSpec, EndpointSpec, LinkSpec, Role, TopologyFile};
use solyx::topology::{Bandwidth, DeviceIx, LinkId, Topology};
use solyx_p4runtime::P4InfoIndex;

fn load(name: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../topologies")
        .join(name);
    Topology::load(&path).unwrap()
}

fn routes_for(topo: &Topology) -> Routes {
    let mut r = Routes::new(RoutingConfig::default());
    r.recompute(topo, &topo.edge_devices()).unwrap();
    r
}

/// Checks that a path is a loop-free walk from s to t over links that exist.
fn check_walk(topo: &Topology, s: DeviceIx, t: DeviceIx, p: &LinkPath) {
    assert!(!p.is_empty());
    let mut at = s;
    let mut seen = HashSet::from([s]);
    for l in p {
        let link = topo.link(*l).expect("path over a missing link");
        assert_eq!(link.src, at, "links do not join");
        at = link.dst;
        assert!(seen.insert(at), "the path visits a device twice");
    }
    assert_eq!(at, t);
}

fn ix(topo: &Topology, name: &str) -> DeviceIx {
    topo.device_ix(name).unwrap()
}

#[test]
fn leaf_spine_pairs_get_one_path_per_spine_with_distinct_stable_labels() {
    let topo = load("leaf-spine.yaml");
    let mut routes = routes_for(&topo);
    let hosts = topo.edge_devices();
    assert_eq!(routes.groups().count(), hosts.len() * (hosts.len() - 1));
    let mut labels = HashSet::new();
    for g in routes.groups() {
        let same_leaf = topo.link(g.paths[0].links[0]).unwrap().dst
            == topo.link(*g.paths[0].links.last().unwrap()).unwrap().src;
        assert_eq!(g.paths.len(), if same_leaf { 1 } else { 2 });
        for p in &g.paths {
            check_walk(&topo, g.src, g.dst, &p.links);
            assert!(labels.insert(p.label), "label {} used twice", p.label);
            assert!((16..1 << 20).contains(&p.label));
        }
        if g.paths.len() == 2 {
            // The fabric parts (without the access links) share nothing.
            let a: HashSet<_> = g.paths[0].links[1..g.paths[0].links.len() - 1]
                .iter()
                .collect();
            assert!(g.paths[1].links[1..g.paths[1].links.len() - 1]
                .iter()
                .all(|l| !a.contains(l)));
        }
        assert_eq!(g.weights.iter().sum::<u32>(), 100);
    }
    // Recomputing an unchanged network changes nothing, labels included.
    let before: Vec<_> = routes.groups().cloned().collect();
    assert!(routes.recompute(&topo, &hosts).unwrap().is_empty());
    assert_eq!(before, routes.groups().cloned().collect::<Vec<_>>());
}

#[test]
fn fat_tree_pairs_across_pods_get_k_disjoint_paths() {
    let topo = load("fat-tree-k4.yaml");
    let routes = routes_for(&topo);
    let g = routes
        .group(ix(&topo, "h1-1-1"), ix(&topo, "h3-2-1"))
        .unwrap();
    // k=4: two aggregation switches × two cores, but only 2 disjoint
    // uplinks from an edge switch: 2 disjoint paths, then 2 overlapping.
    assert_eq!(g.paths.len(), 4);
    let inner = |i: usize| -> HashSet<LinkId> {
        let l = &g.paths[i].links;
        l[1..l.len() - 1].iter().copied().collect()
    };
    assert!(inner(0).is_disjoint(&inner(1)));
    for p in &g.paths {
        check_walk(&topo, g.src, g.dst, &p.links);
    }
    let distinct: HashSet<_> = g.paths.iter().map(|p| p.links.clone()).collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn failover_moves_all_weight_off_a_failed_spine_at_once() {
    let mut topo = load("leaf-spine.yaml");
    let mut routes = routes_for(&topo);
    let spine1 = ix(&topo, "spine1");
    let updates = routes.failover(&topo, Failure::Device(spine1));
    assert!(!updates.is_empty());
    for u in &updates {
        assert_eq!(u.reason, Reason::Failover);
        assert_eq!(u.weights.iter().sum::<u32>(), 100, "{u:?}");
        let g = routes.group(u.src, u.dst).unwrap();
        for (p, w) in g.paths.iter().zip(&u.weights) {
            let via = p.links.iter().any(|l| {
                let l = topo.link(*l).unwrap();
                l.src == spine1 || l.dst == spine1
            });
            if via {
                assert_eq!(*w, 0);
            }
        }
    }
    // Every group that used spine1 is in the answer.
    let touched: HashSet<_> = updates.iter().map(|u| (u.src, u.dst)).collect();
    for g in routes.groups() {
        let uses =
            g.paths.iter().zip(&g.weights).any(|(p, w)| {
                *w > 0 && p.links.iter().any(|l| topo.link(*l).unwrap().src == spine1)
            });
        assert_eq!(uses, touched.contains(&(g.src, g.dst)));
    }
    routes.apply(&updates, Instant::now());
    // Recomputation after the failure keeps the surviving paths' labels.
    let kept: HashMap<LinkPath, u32> = routes
        .groups()
        .flat_map(|g| g.paths.iter().map(|p| (p.links.clone(), p.label)))
        .collect();
    topo.set_device_up(spine1, false);
    routes.recompute(&topo, &topo.edge_devices()).unwrap();
    for g in routes.groups() {
        for p in &g.paths {
            assert_eq!(kept.get(&p.links), Some(&p.label));
            assert!(p.links.iter().all(|l| topo.link(*l).unwrap().dst != spine1));
        }
        assert_eq!(g.weights.iter().sum::<u32>(), 100);
    }
}

#[test]
fn a_cut_off_host_is_reported_unreachable() {
    let topo = load("leaf-spine.yaml");
    let routes = routes_for(&topo);
    let h1 = ix(&topo, "h1");
    let access = topo.link_from(h1, 1).unwrap();
    let updates = routes.failover(&topo, Failure::Link(access));
    // Both directions of the cable fail: h1 can neither send nor receive.
    let cut: Vec<_> = updates.iter().filter(|u| u.unreachable()).collect();
    assert_eq!(cut.len(), 2 * 7);
    assert!(cut.iter().all(|u| u.src == h1 || u.dst == h1));
}

fn demands(topo: &Topology, pairs: &[(&str, &str, f64)]) -> HashMap<(DeviceIx, DeviceIx), f64> {
    pairs
        .iter()
        .map(|(a, b, r)| ((ix(topo, a), ix(topo, b)), *r))
        .collect()
}

/// Puts every group of the pairs on its first path and sets the link
/// utilisation that this would measure.
fn all_on_first_path(
    topo: &mut Topology,
    routes: &mut Routes,
    d: &HashMap<(DeviceIx, DeviceIx), f64>,
) {
    let mut ups = Vec::new();
    for key in d.keys() {
        let g = routes.group(key.0, key.1).unwrap();
        let mut w = vec![0; g.paths.len()];
        w[0] = 100;
        ups.push(solyx::routing::WeightUpdate {
            src: key.0,
            dst: key.1,
            weights: w,
            reason: Reason::Recompute,
        });
    }
    routes.apply(&ups, Instant::now());
    measure(topo, routes, d);
}

fn measure(topo: &mut Topology, routes: &Routes, d: &HashMap<(DeviceIx, DeviceIx), f64>) {
    let mut load: HashMap<LinkId, f64> = HashMap::new();
    for (key, rate) in d {
        let g = routes.group(key.0, key.1).unwrap();
        for (p, w) in g.paths.iter().zip(&g.weights) {
            for l in &p.links {
                *load.entry(*l).or_default() += rate * f64::from(*w) / 100.0;
            }
        }
    }
    let ids: Vec<LinkId> = topo.links().map(|(i, _)| i).collect();
    for id in ids {
        let s = topo.link_state_mut(id).unwrap();
        s.utilisation = load.get(&id).copied().unwrap_or(0.0) / s.capacity.bps_f64();
    }
}

#[test]
fn balancing_spreads_a_hot_spine_gradually_then_holds_still() {
    let mut topo = load("leaf-spine.yaml");
    let mut routes = routes_for(&topo);
    let d = demands(&topo, &[("h1", "h3", 60e6), ("h2", "h4", 60e6)]);
    all_on_first_path(&mut topo, &mut routes, &d);
    let mut now = Instant::now();
    let mut rounds = 0;
    let start_mlu = topo
        .links()
        .map(|(_, l)| l.state.utilisation)
        .fold(0.0, f64::max);
    assert!(start_mlu > 1.0, "{start_mlu}");
    loop {
        let ups = routes.balance(&topo, &d, now);
        if ups.is_empty() {
            break;
        }
        for u in &ups {
            let g = routes.group(u.src, u.dst).unwrap();
            let moved: u32 = g
                .weights
                .iter()
                .zip(&u.weights)
                .map(|(a, b)| a.abs_diff(*b))
                .sum::<u32>()
                / 2;
            assert!(moved <= routes.config.max_step + 1, "moved {moved}");
            assert_eq!(u.weights.iter().sum::<u32>(), 100);
        }
        routes.apply(&ups, now);
        measure(&mut topo, &routes, &d);
        now += routes.config.hold;
        rounds += 1;
        assert!(rounds < 20, "does not settle");
    }
    let end_mlu = topo
        .links()
        .map(|(_, l)| l.state.utilisation)
        .fold(0.0, f64::max);
    // 120 Mbit/s over two 100 Mbit/s spines: 0.6 is the best.
    assert!(end_mlu < 0.66, "{end_mlu}");
    assert!(
        rounds >= 2,
        "the move must be gradual, took {rounds} rounds"
    );
}

#[test]
fn two_colliding_elephants_are_separated_by_moving_one_group() {
    let mut topo = load("leaf-spine.yaml");
    let mut routes = routes_for(&topo);
    let d = demands(&topo, &[("h1", "h3", 50e6), ("h2", "h4", 50e6)]);
    all_on_first_path(&mut topo, &mut routes, &d);
    let later = Instant::now() + routes.config.hold * 2;
    let ups = routes.balance(&topo, &d, later);
    assert_eq!(ups.len(), 1, "one group moves, the other stays: {ups:?}");
}

#[test]
fn balancing_starts_from_where_the_traffic_is_not_where_the_weights_say() {
    let mut topo = load("leaf-spine.yaml");
    let mut routes = routes_for(&topo);
    routes.config.max_step = 50;
    let d = demands(&topo, &[("h1", "h3", 50e6), ("h2", "h4", 50e6)]);
    // Both elephants on spine 1, as measured ...
    all_on_first_path(&mut topo, &mut routes, &d);
    let (h1, h3, h2, h4) = (
        ix(&topo, "h1"),
        ix(&topo, "h3"),
        ix(&topo, "h2"),
        ix(&topo, "h4"),
    );
    let first = |a, b| routes.group(a, b).unwrap().paths[0].label;
    let (l13, l24) = (first(h1, h3), first(h2, h4));
    // ... although h2 -> h4 is weighted half and half: its one flow drew
    // spine 1.
    let half = solyx::routing::WeightUpdate {
        src: h2,
        dst: h4,
        weights: vec![50, 50],
        reason: Reason::Balance,
    };
    let t0 = Instant::now();
    routes.apply(&[half], t0);
    routes.set_measured(HashMap::from([
        ((h1, h3), HashMap::from([(l13, 50e6)])),
        ((h2, h4), HashMap::from([(l24, 50e6)])),
    ]));
    let ups = routes.balance(&topo, &d, t0 + routes.config.hold);
    // One whole group moves to spine 2, from its weights in force.
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(ups[0].weights, vec![0, 100], "{ups:?}");
}

#[test]
fn balancing_waits_until_congestion_has_lasted_the_sustain_time() {
    let mut topo = load("leaf-spine.yaml");
    let mut routes = routes_for(&topo);
    routes.config.sustain = Duration::from_secs(3);
    let d = demands(&topo, &[("h1", "h3", 60e6), ("h2", "h4", 60e6)]);
    all_on_first_path(&mut topo, &mut routes, &d);
    let t0 = Instant::now();
    let s = Duration::from_secs;
    // Congested from t0: nothing moves for 3 s.
    assert!(routes.balance_sustained(&topo, &d, t0).is_empty());
    assert!(routes.balance_sustained(&topo, &d, t0 + s(2)).is_empty());
    // A quiet round in between starts the wait over.
    let quiet = demands(&topo, &[("h1", "h3", 1e6)]);
    let mut calm = topo.clone();
    measure(&mut calm, &routes, &quiet);
    assert!(routes
        .balance_sustained(&calm, &quiet, t0 + s(3))
        .is_empty());
    assert!(routes.balance_sustained(&topo, &d, t0 + s(4)).is_empty());
    assert!(routes.balance_sustained(&topo, &d, t0 + s(6)).is_empty());
    // Three seconds of congestion since t0 + 4 s: balancing acts.
    let ups = routes.balance_sustained(&topo, &d, t0 + s(7));
    assert!(!ups.is_empty(), "sustained congestion moves weight");
    assert_eq!(
        ups,
        routes.balance(&topo, &d, t0 + s(7)),
        "the same plan as balance"
    );
}

#[test]
fn hysteresis_and_hold_time_stop_flapping_under_oscillating_load() {
    let mut topo = load("leaf-spine.yaml");
    let mut routes = routes_for(&topo);
    let h1 = ix(&topo, "h1");
    let h3 = ix(&topo, "h3");
    let d = demands(&topo, &[("h1", "h3", 40e6)]);
    measure(&mut topo, &routes, &d);
    let spine_links: Vec<LinkId> = routes
        .group(h1, h3)
        .unwrap()
        .paths
        .iter()
        .map(|p| p.links[1])
        .collect();
    let mut now = Instant::now();
    let mut changes = 0;
    // Background traffic alternates between the two spines every second,
    // within what hysteresis absorbs, then well beyond it.
    for round in 0..60 {
        measure(&mut topo, &routes, &d);
        let (hot, amount) = (spine_links[round % 2], if round < 30 { 0.03 } else { 0.5 });
        topo.link_state_mut(hot).unwrap().utilisation += amount;
        let ups = routes.balance(&topo, &d, now);
        if round < 30 {
            assert!(
                ups.is_empty(),
                "round {round}: small swings must not move traffic"
            );
        }
        changes += ups.len();
        routes.apply(&ups, now);
        now += Duration::from_secs(1);
    }
    // 30 s of a flapping hot spot with a 5 s hold: at most one change per hold.
    assert!(changes >= 1, "a large hot spot must move traffic");
    assert!(changes <= 30 / 5 + 1, "{changes} changes");
}

#[test]
fn intents_keep_the_paths_that_satisfy_them_or_say_why_none_does() {
    let mut topo = load("leaf-spine.yaml");
    let routes = routes_for(&topo);
    let (h1, h3) = (ix(&topo, "h1"), ix(&topo, "h3"));
    let g = routes.group(h1, h3).unwrap().clone();
    // Load the first path's spine link to 90 %: 10 Mbit/s spare.
    let hot = g.paths[0].links[1];
    topo.link_state_mut(hot).unwrap().utilisation = 0.9;
    let intent = Intent {
        src: h1,
        dst: h3,
        min_bandwidth: Some(Bandwidth(50_000_000)),
        max_latency: None,
    };
    let u = routes.plan_intent(&topo, &intent).unwrap();
    assert_eq!(u.weights, vec![0, 100]);
    // 4 links of 1 ms each: 3 ms is too little for any path.
    let strict = Intent {
        max_latency: Some(Duration::from_millis(3)),
        min_bandwidth: None,
        ..intent.clone()
    };
    match routes.plan_intent(&topo, &strict) {
        Err(IntentError::Unsatisfied(why)) => {
            assert_eq!(why.len(), 2);
            assert!(why.iter().all(
                |(_, s)| matches!(s, Shortfall::Latency(d) if *d == Duration::from_millis(4))
            ));
        }
        other => panic!("{other:?}"),
    }
    let loose = Intent {
        max_latency: Some(Duration::from_millis(4)),
        ..intent.clone()
    };
    assert!(routes.plan_intent(&topo, &loose).is_ok());
    // Balancing respects a recorded intent: the hot path gets nothing.
    let mut routes = routes;
    routes.set_intent(intent);
    let d = demands(&topo, &[("h1", "h3", 10e6)]);
    let (problem, keys) = routes.problem(&topo, &d);
    assert_eq!(problem.groups.len(), 1);
    assert_eq!(keys[0].1, vec![1]);
}

#[test]
fn fabric_entries_forward_hop_by_hop_and_pop_at_the_last_switch() {
    let topo = load("leaf-spine.yaml");
    let routes = routes_for(&topo);
    let entries = fabric_entries(&topo, &routes);
    let g = routes.group(ix(&topo, "h1"), ix(&topo, "h3")).unwrap();
    let h3 = topo.device(ix(&topo, "h3")).unwrap();
    for p in &g.paths {
        let hops: Vec<_> = p.links[1..]
            .iter()
            .map(|l| topo.link(*l).unwrap())
            .collect();
        for (i, link) in hops.iter().enumerate() {
            let e = entries[&link.src]
                .iter()
                .find(|e| e.label == p.label)
                .unwrap();
            let want = if i + 1 == hops.len() {
                FabricAction::PopForward {
                    port: link.src_port,
                    dmac: h3.mac,
                }
            } else {
                FabricAction::Forward {
                    port: link.src_port,
                }
            };
            assert_eq!(e.action, want);
        }
    }
    // Hosts hold nothing in the fabric table; every switch's labels are unique.
    for (dev, list) in &entries {
        assert_eq!(topo.device(*dev).unwrap().role, Role::Fabric);
        let labels: HashSet<_> = list.iter().map(|e| e.label).collect();
        assert_eq!(labels.len(), list.len());
    }
    // They build into entities the fabric P4Info accepts.
    let p4info =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../p4/solyx_fabric/solyx_fabric.p4info.txtpb");
    let index = P4InfoIndex::from_text(&std::fs::read_to_string(p4info).unwrap()).unwrap();
    for list in entries.values() {
        assert_eq!(fabric_entities(&index, list).unwrap().len(), list.len());
    }
    // Host groups: one per destination, members carry label, port, weight.
    let hg = host_groups(&topo, &routes);
    let h1_groups = &hg[&ix(&topo, "h1")];
    assert_eq!(h1_groups.len(), 7);
    let to_h3 = h1_groups
        .iter()
        .find(|x| x.destination == h3.ip.unwrap().0)
        .unwrap();
    assert_eq!(to_h3.members.len(), 2);
    assert_eq!(to_h3.members.iter().map(|m| m.weight).sum::<u32>(), 100);
    assert!(to_h3.members.iter().all(|m| m.port == 1));
}

// ---------------------------------------------------------------------
// Properties on random networks
// ---------------------------------------------------------------------

/// A random network: a spanning tree plus extra links. Device i is a host
/// (never transit, possibly multi-homed) when bit i of `hosts` is set;
/// links between two hosts are left out, so it may be disconnected.
fn random_net(n: usize, extra: &[(usize, usize)], tree: &[usize], hosts: u32) -> Topology {
    let is_host = |i: usize| hosts & (1 << i) != 0;
    let devices = (0..n)
        .map(|i| DeviceSpec {
            name: format!("s{i}"),
            role: if is_host(i) { Role::Host } else { Role::Fabric },
            pipeline: None,
            device_id: i as u64 + 1,
            switch_id: None,
            address: None,
            site: None,
            rack: None,
            pod: None,
            ip: is_host(i).then(|| format!("10.0.0.{}/24", i + 1)),
            mac: None,
            node: None,
        })
        .collect();
    let mut port = vec![0u32; n];
    let mut links = Vec::new();
    let mut add = |a: usize, b: usize, links: &mut Vec<LinkSpec>| {
        if a == b || port[a] >= 250 || port[b] >= 250 || (is_host(a) && is_host(b)) {
            return;
        }
        port[a] += 1;
        port[b] += 1;
        links.push(LinkSpec {
            a: EndpointSpec {
                device: format!("s{a}"),
                port: port[a],
            },
            b: EndpointSpec {
                device: format!("s{b}"),
                port: port[b],
            },
            bandwidth: None,
            delay: None,
        });
    };
    for i in 1..n {
        add(i, tree[i - 1] % i, &mut links);
    }
    for &(a, b) in extra {
        add(a % n, b % n, &mut links);
    }
    let file = TopologyFile {
        name: "random".into(),
        defaults: Default::default(),
        devices,
        links,
    };
    Topology::from_file(&file, "random").unwrap()
}

/// Number of link-disjoint paths (max flow with unit capacities, hosts
/// not transiting), by plain augmenting paths: an independent check of
/// the path search.
fn max_disjoint(topo: &Topology, s: DeviceIx, t: DeviceIx) -> usize {
    let host = |v: DeviceIx| topo.device(v).is_some_and(|d| d.role == Role::Host);
    let mut cap: HashMap<(DeviceIx, DeviceIx), i32> = HashMap::new();
    for (_, l) in topo.links() {
        if l.state.up {
            *cap.entry((l.src, l.dst)).or_default() += 1;
        }
    }
    let mut flow = 0;
    loop {
        let mut prev: HashMap<DeviceIx, DeviceIx> = HashMap::new();
        let mut q = VecDeque::from([s]);
        while let Some(v) = q.pop_front() {
            if v == t {
                break;
            }
            if v != s && host(v) {
                continue;
            }
            for (&(a, b), &c) in &cap {
                if a == v && c > 0 && b != s && !prev.contains_key(&b) {
                    prev.insert(b, v);
                    q.push_back(b);
                }
            }
        }
        if !prev.contains_key(&t) {
            return flow;
        }
        let mut v = t;
        while v != s {
            let u = prev[&v];
            *cap.get_mut(&(u, v)).unwrap() -= 1;
            *cap.entry((v, u)).or_default() += 1;
            v = u;
        }
        flow += 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn paths_are_loop_free_and_as_disjoint_as_the_graph_allows(
        n in 3usize..14,
        tree in prop::collection::vec(0usize..100, 13),
        extra in prop::collection::vec((0usize..100, 0usize..100), 0..30),
        k in 1usize..6,
        down in prop::collection::vec(0usize..200, 0..3),
        hosts in any::<u32>(),
    ) {
        let mut topo = random_net(n, &extra, &tree, hosts & 0x5555);
        let ids: Vec<LinkId> = topo.links().map(|(i, _)| i).collect();
        for d in down {
            let id = ids[d % ids.len()];
            topo.link_state_mut(id).unwrap().up = false;
        }
        let edges: Vec<DeviceIx> = topo.devices().map(|(i, _)| i).collect();
        let all = all_pairs(&topo, &edges, k);
        for ((s, t), paths) in &all {
            prop_assert!(paths.len() <= k);
            let flow = max_disjoint(&topo, *s, *t);
            prop_assert_eq!(paths.is_empty(), flow == 0);
            let mut distinct = HashSet::new();
            for p in paths {
                check_walk(&topo, *s, *t, p);
                prop_assert!(p.iter().all(|l| topo.link_state(*l).unwrap().up));
                prop_assert!(distinct.insert(p.clone()), "a path appears twice");
            }
            // The first min(k, flow) paths are pairwise link-disjoint.
            let want = k.min(flow);
            prop_assert!(paths.len() >= want);
            let mut used = HashSet::new();
            for p in &paths[..want] {
                for l in p {
                    prop_assert!(used.insert(*l), "paths share a link although {} disjoint exist", flow);
                }
            }
        }
    }

    #[test]
    fn failover_never_leaves_weight_on_a_failed_element(
        n in 3usize..12,
        tree in prop::collection::vec(0usize..100, 11),
        extra in prop::collection::vec((0usize..100, 0usize..100), 0..20),
        pick in 0usize..1000,
        device in any::<bool>(),
    ) {
        let topo = random_net(n, &extra, &tree, 0);
        let routes = routes_for(&topo);
        let ids: Vec<LinkId> = topo.links().map(|(i, _)| i).collect();
        let failure = if device {
            Failure::Device(DeviceIx::new(pick % n))
        } else {
            Failure::Link(ids[pick % ids.len()])
        };
        let hit = |l: LinkId| -> bool {
            let link = topo.link(l).unwrap();
            match failure {
                Failure::Device(d) => link.src == d || link.dst == d,
                Failure::Link(f) => l == f || Some(l) == topo.reverse(f),
            }
        };
        let updates = routes.failover(&topo, failure);
        let by_pair: HashMap<_, _> = updates.iter().map(|u| ((u.src, u.dst), u)).collect();
        for g in routes.groups() {
            let weights = by_pair.get(&(g.src, g.dst)).map_or(&g.weights, |u| &u.weights);
            let sum: u32 = weights.iter().sum();
            prop_assert!(sum == 100 || sum == 0);
            let alive = g.paths.iter().filter(|p| !p.links.iter().any(|l| hit(*l))).count();
            prop_assert_eq!(sum == 0, alive == 0);
            for (p, w) in g.paths.iter().zip(weights) {
                if p.links.iter().any(|l| hit(*l)) {
                    prop_assert_eq!(*w, 0, "weight left on a failed path");
                }
            }
        }
    }
}
