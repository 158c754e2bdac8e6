//! The scheduler's view of the network ([`NetworkView`]) over the
//! controller's topology and live link state.
//!
//! A snapshot holds, for every ordered pair of hosts, the metrics of the
//! paths the controller would use between them: up to K diverse paths
//! from [`routing::paths`](crate::routing::paths), as the routing engine
//! computes them, over the links that are up. For each path the headroom
//! is what its tightest link has left (capacity times one minus the
//! measured utilisation); the pair's headroom is the sum over its
//! distinct paths, each link's headroom shared by the paths on it (the hosts' own links cap it); latency is the mean over the paths
//! of the sum of measured (else declared) link latencies; hops is the
//! length of the longest path. Where a host sits (site, rack, the leaf its
//! first link reaches) comes from the topology.
//!
//! The control loop feeds it through a [`NetworkFeed`]: each
//! [`NetworkFeed::update`] recomputes the snapshot and swaps it in; the
//! scheduler reads whichever snapshot is current, without waiting.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use solyx_orchestrator::network::{NetworkView, NodeLocation, PathMetrics};

use crate::linkstate::{LinkStatus, LinkView};
use crate::routing::paths::{paths_to, PathGraph, Workspace, DEFAULT_K};
use crate::topology::{LinkId, Role, Topology};

/// One computed state of the network.
#[derive(Debug, Default)]
struct Snapshot {
    /// Host name to its index in `locations` and in the pair matrix.
    index: HashMap<String, usize>,
    locations: Vec<NodeLocation>,
    /// `pairs[a * n + b]`: the metrics from host a to host b.
    pairs: Vec<Option<PathMetrics>>,
}

impl Snapshot {
    /// Computes the snapshot of `topo` with its link state as it is.
    fn compute(topo: &Topology, k: usize) -> Self {
        let hosts: Vec<_> = topo
            .devices()
            .filter(|(_, d)| d.role == Role::Host)
            .map(|(ix, _)| ix)
            .collect();
        let n = hosts.len();
        let mut index = HashMap::with_capacity(n);
        let mut locations = Vec::with_capacity(n);
        for (i, &ix) in hosts.iter().enumerate() {
            let Some(d) = topo.device(ix) else { continue };
            index.insert(d.name.clone(), i);
            let leaf = topo
                .links()
                .filter(|(_, l)| l.src == ix)
                .min_by_key(|(_, l)| (!l.state.up, l.src_port))
                .and_then(|(_, l)| topo.device(l.dst))
                .map_or_else(|| d.name.clone(), |leaf| leaf.name.clone());
            locations.push(NodeLocation {
                site: Arc::from(d.site.as_deref().unwrap_or(DEFAULT_SITE)),
                rack: Arc::from(d.rack.as_deref().unwrap_or("")),
                leaf: Arc::from(leaf.as_str()),
            });
        }
        let mut pairs = vec![None; n * n];
        if n > 0 {
            let g = PathGraph::new(topo);
            let mut w = Workspace::new(&g);
            for (b, &t) in hosts.iter().enumerate() {
                let groups = paths_to(&g, &mut w, t, &hosts, k);
                for (a, paths) in groups.into_iter().enumerate() {
                    pairs[a * n + b] = if a == b {
                        Some(PathMetrics::LOCAL)
                    } else {
                        group_metrics(topo, paths)
                    };
                }
            }
        }
        Snapshot {
            index,
            locations,
            pairs,
        }
    }
}

/// The site of a host whose device names none, as the inventory reads
/// the topology file.
pub const DEFAULT_SITE: &str = "default";

fn group_metrics(topo: &Topology, mut paths: Vec<Vec<LinkId>>) -> Option<PathMetrics> {
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        return None;
    }
    let headroom_of = |id: LinkId| topo.link_state(id).map_or(0.0, |s| s.headroom_bps());
    let latency_of = |id: LinkId| {
        topo.link_state(id)
            .map_or(Duration::ZERO, |s| s.latency)
            .as_secs_f64()
    };
    // Each path takes what its tightest link has left after the paths
    // before it: links shared by several paths (the hosts' own links
    // always are) count once.
    let mut left: HashMap<LinkId, f64> = HashMap::new();
    let mut headroom = 0.0;
    let mut latency = 0.0;
    let mut hops = 0usize;
    for p in &paths {
        let take = p
            .iter()
            .map(|&id| *left.entry(id).or_insert_with(|| headroom_of(id)))
            .fold(f64::INFINITY, f64::min);
        for &id in p {
            if let Some(l) = left.get_mut(&id) {
                *l -= take;
            }
        }
        headroom += take;
        latency += p.iter().map(|&id| latency_of(id)).sum::<f64>();
        hops = hops.max(p.len());
    }
    #[allow(clippy::cast_precision_loss)]
    let count = paths.len() as f64;
    Some(PathMetrics {
        headroom_bps: headroom,
        latency_s: latency / count,
        hops: u32::try_from(hops).unwrap_or(u32::MAX),
    })
}

/// Copies what discovery and telemetry know about each link into the
/// topology's link state: a link discovery saw go down is down, one it
/// sees is up; the measured latency (moving average) and TX utilisation
/// replace the declared ones. Links the topology does not hold are
/// skipped.
pub fn apply_links(topo: &mut Topology, links: &[LinkView]) {
    let by_id: HashMap<u64, _> = topo.devices().map(|(ix, d)| (d.device_id, ix)).collect();
    for v in links {
        let Some(&src) = by_id.get(&v.link.src_device) else {
            continue;
        };
        let Some(id) = topo.link_from(src, v.link.src_port) else {
            continue;
        };
        let dst_matches = topo
            .link(id)
            .and_then(|l| topo.device(l.dst))
            .is_some_and(|d| d.device_id == v.link.dst_device);
        if !dst_matches {
            continue;
        }
        let Some(state) = topo.link_state_mut(id) else {
            continue;
        };
        match v.status {
            Some(LinkStatus::Up) => state.up = true,
            Some(LinkStatus::Down) => state.up = false,
            Some(LinkStatus::DeclaredNotSeen) | None => {}
        }
        if let Some(t) = &v.telemetry {
            if let Some(l) = t.latency_ns.filter(|m| m.samples > 0) {
                state.latency = Duration::from_secs_f64(l.ewma.max(0.0) / 1e9);
            }
            if let Some(u) = t.tx_utilization_kbps.filter(|m| m.samples > 0) {
                let cap = state.capacity.bps_f64();
                if cap > 0.0 {
                    state.utilisation = (u.ewma * 1e3 / cap).max(0.0);
                }
            }
        }
    }
}

/// [`NetworkView`] over the controller's topology; see the module docs.
#[derive(Debug)]
pub struct TopologyNetwork {
    k: usize,
    current: RwLock<Arc<Snapshot>>,
}

impl TopologyNetwork {
    /// The view of `topo` as declared (every declared link up, declared
    /// delays, no load), with `k` paths per pair (`DEFAULT_K` when 0).
    #[must_use]
    pub fn new(topo: &Topology, k: usize) -> Self {
        let k = if k == 0 { DEFAULT_K } else { k };
        Self {
            k,
            current: RwLock::new(Arc::new(Snapshot::compute(topo, k))),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, s: Snapshot) {
        let s = Arc::new(s);
        match self.current.write() {
            Ok(mut g) => *g = s,
            Err(poisoned) => *poisoned.into_inner() = s,
        }
    }
}

impl NetworkView for TopologyNetwork {
    fn location(&self, node: &str) -> Option<NodeLocation> {
        let s = self.snapshot();
        s.index.get(node).map(|&i| s.locations[i].clone())
    }

    fn path(&self, a: &str, b: &str) -> Option<PathMetrics> {
        let s = self.snapshot();
        let (&i, &j) = (s.index.get(a)?, s.index.get(b)?);
        s.pairs[i * s.locations.len() + j]
    }
}

/// The handle through which the running controller keeps the scheduler's
/// network view current. Cheap to clone; every clone feeds the same view.
#[derive(Debug, Clone)]
pub struct NetworkFeed(Arc<TopologyNetwork>);

impl NetworkFeed {
    /// A feed of `view`.
    #[must_use]
    pub fn new(view: Arc<TopologyNetwork>) -> Self {
        Self(view)
    }

    /// Recomputes the view from `topo` with the link state of `links`
    /// (as [`crate::linkstate::join`] makes it) applied over it. `topo`
    /// itself is not changed.
    ///
    /// TODO-perf: recomputes the paths of every host pair (one
    /// shortest-path pass per host); a fabric of thousands of hosts wants
    /// it incremental, or called at most every few seconds.
    pub fn update(&self, topo: &Topology, links: &[LinkView]) {
        let mut t = topo.clone();
        apply_links(&mut t, links);
        self.update_topology(&t);
    }

    /// Recomputes the view from `topo` whose link state is already
    /// current.
    pub fn update_topology(&self, topo: &Topology) {
        self.0.replace(Snapshot::compute(topo, self.0.k));
    }

    /// The view the scheduler reads.
    #[must_use]
    pub fn view(&self) -> Arc<TopologyNetwork> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linkstate::LinkKey;

    fn leaf_spine() -> Topology {
        Topology::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../topologies/leaf-spine.yaml"
        )))
        .unwrap()
    }

    #[test]
    fn pairs_under_one_leaf_cross_two_links_and_others_four() {
        let topo = leaf_spine();
        let view = TopologyNetwork::new(&topo, 0);
        let same = view.path("h1", "h2").unwrap();
        let far = view.path("h1", "h8").unwrap();
        assert_eq!((same.hops, far.hops), (2, 4));
        assert!(same.latency_s < far.latency_s);
        assert_eq!(view.location("h1").unwrap().leaf.as_ref(), "leaf1");
        assert_eq!(view.location("h8").unwrap().leaf.as_ref(), "leaf4");
        assert_eq!(view.path("h1", "h1"), Some(PathMetrics::LOCAL));
        assert!(view.path("h1", "spine1").is_none());
        // 100 Mbit/s access links cap the two spine paths' 200.
        assert!((far.headroom_bps - 100e6).abs() < 1.0, "{far:?}");
    }

    #[test]
    fn measured_load_and_a_failed_uplink_reach_the_view() {
        let topo = leaf_spine();
        let feed = NetworkFeed::new(Arc::new(TopologyNetwork::new(&topo, 0)));
        let ix = |n: &str| topo.device_ix(n).unwrap();
        let id = |n: &str| topo.device(ix(n)).unwrap().device_id;
        // Every uplink of leaf1 but one down: h1 to h8 has one path left,
        // and the load of the uplink left caps it.
        let uplinks: Vec<LinkKey> = topo
            .links()
            .filter(|(_, l)| l.src == ix("leaf1") && l.dst != ix("h1") && l.dst != ix("h2"))
            .map(|(_, l)| LinkKey {
                src_device: id("leaf1"),
                src_port: l.src_port,
                dst_device: topo.device(l.dst).unwrap().device_id,
                dst_port: l.dst_port,
            })
            .collect();
        assert_eq!(uplinks.len(), 2);
        let down = LinkView {
            link: uplinks[0],
            status: Some(LinkStatus::Down),
            declared: true,
            telemetry: None,
        };
        feed.update(&topo, std::slice::from_ref(&down));
        let far = feed.view().path("h1", "h8").unwrap();
        // Every path now leaves leaf1 through spine2; the longest may
        // detour through another leaf.
        assert!(far.hops >= 4, "{far:?}");
        assert!((far.headroom_bps - 100e6).abs() < 1.0, "{far:?}");
        // The uplink left carries 90 %: 10 Mbit/s remain between them.
        let mut loaded = topo.clone();
        apply_links(&mut loaded, &[down]);
        let left = loaded.link_from(ix("leaf1"), uplinks[1].src_port).unwrap();
        loaded.link_state_mut(left).unwrap().utilisation = 0.9;
        feed.update_topology(&loaded);
        let far = feed.view().path("h1", "h8").unwrap();
        assert!((far.headroom_bps - 10e6).abs() < 1.0, "{far:?}");
        // The same pair under one leaf is untouched.
        assert_eq!(feed.view().path("h1", "h2").unwrap().hops, 2);
    }
}
