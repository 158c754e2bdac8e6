//! K diverse paths between edge devices.
//!
//! For one pair (s, t) we look for K link-disjoint paths of least total
//! cost: a min-cost flow of K units from s to t on unit link capacities,
//! found by successive shortest paths (Suurballe's idea generalised to K):
//! each round runs Dijkstra on the residual graph with reduced costs
//! (Johnson potentials), so costs stay non-negative and each round is one
//! Dijkstra. Because every link cost is positive, the flow has no cycle
//! and decomposes into simple (loop-free) paths. When the graph has fewer
//! than K disjoint paths, the remaining ones are added greedily: Dijkstra
//! where a link costs its own cost plus a penalty larger than any path for
//! every chosen path already on it, so each new path shares as few links
//! as possible with the chosen ones, and among those is the shortest.
//!
//! A link's cost is `1 + its declared delay in µs`: hop count in a data
//! centre, propagation delay on a WAN. The measured latency is not used,
//! so congestion never changes the path set (weights react to it instead).
//! Links that are down are not used; hosts are never transit devices.
//!
//! The initial potentials are the shortest distances *to* the target, so
//! every round's Dijkstra heads straight for it; those distances are the
//! same for every source, so [`paths_to`] and [`all_pairs`] compute them
//! once per destination.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};

use crate::topology::{DeviceIx, LinkId, Role, Topology};

/// Paths wanted per pair unless configured otherwise.
pub const DEFAULT_K: usize = 4;

const INF: u64 = u64::MAX / 4;

/// An ordered list of directed links from one edge device to another.
pub type LinkPath = Vec<LinkId>;

/// A compact copy of the usable graph, for many shortest-path runs.
pub struct PathGraph {
    /// Out-arcs of node `v`: `arcs[start[v]..start[v + 1]]`.
    start: Vec<usize>,
    /// (head node, cost, link id index into `links`).
    arcs: Vec<(u32, u64, u32)>,
    /// Reverse adjacency for residual arcs: into-arcs of node v, as arc ids.
    in_start: Vec<usize>,
    in_arcs: Vec<u32>,
    tail: Vec<u32>,
    links: Vec<LinkId>,
    transit: Vec<bool>,
    /// Larger than any simple path's cost.
    big: u64,
}

impl PathGraph {
    /// The links that are up, with their path cost; hosts do not transit.
    #[must_use]
    pub fn new(topo: &Topology) -> Self {
        let g = topo.graph();
        let n = g.node_bound();
        let mut transit = vec![false; n];
        for (ix, d) in topo.devices() {
            transit[ix.index()] = d.role == Role::Fabric;
        }
        let mut edges: Vec<(u32, u32, u64, LinkId)> = g
            .edge_references()
            .filter(|e| e.weight().state.up)
            .map(|e| {
                let cost = 1 + e.weight().delay.as_micros() as u64;
                (
                    e.source().index() as u32,
                    e.target().index() as u32,
                    cost,
                    e.id(),
                )
            })
            .collect();
        edges.sort_by_key(|e| (e.0, e.3));
        let mut start = vec![0; n + 1];
        for e in &edges {
            start[e.0 as usize + 1] += 1;
        }
        for v in 0..n {
            start[v + 1] += start[v];
        }
        let arcs: Vec<(u32, u64, u32)> = edges
            .iter()
            .enumerate()
            .map(|(i, e)| (e.1, e.2, i as u32))
            .collect();
        let tail: Vec<u32> = edges.iter().map(|e| e.0).collect();
        let mut in_start = vec![0; n + 1];
        for e in &edges {
            in_start[e.1 as usize + 1] += 1;
        }
        for v in 0..n {
            in_start[v + 1] += in_start[v];
        }
        let mut fill = in_start.clone();
        let mut in_arcs = vec![0u32; edges.len()];
        for (i, e) in edges.iter().enumerate() {
            in_arcs[fill[e.1 as usize]] = i as u32;
            fill[e.1 as usize] += 1;
        }
        let big = edges.iter().map(|e| e.2).sum::<u64>() + 1;
        Self {
            start,
            arcs,
            in_start,
            in_arcs,
            tail,
            links: edges.iter().map(|e| e.3).collect(),
            transit,
            big,
        }
    }

    fn nodes(&self) -> usize {
        self.start.len() - 1
    }
}

/// Reusable buffers for one thread of path computation.
pub struct Workspace {
    dist: Vec<u64>,
    done: Vec<bool>,
    /// Arc used to reach a node: `arc << 1 | backward`.
    via: Vec<u64>,
    pot: Vec<u64>,
    flow: Vec<bool>,
    uses: Vec<u32>,
    touched: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Workspace {
    /// Buffers sized for `g`.
    #[must_use]
    pub fn new(g: &PathGraph) -> Self {
        let n = g.nodes();
        Self {
            dist: vec![INF; n],
            done: vec![false; n],
            via: vec![u64::MAX; n],
            pot: vec![0; n],
            flow: vec![false; g.arcs.len()],
            uses: vec![0; g.arcs.len()],
            touched: Vec::new(),
            heap: BinaryHeap::new(),
        }
    }
}

/// Dijkstra from `s` over forward arcs without flow (reduced by `pot`)
/// and backward arcs with flow. Stops at `t` when given. Returns whether
/// `t` (or anything, without `t`) was reached.
// TODO-perf: every round resets all devices' entries, even when the search
// settles a few; on the Zoo's Kdl (754 devices) all pairs cost 389 µs each.
// Resetting only the entries a round touched would avoid that.
fn dijkstra(g: &PathGraph, w: &mut Workspace, s: usize, t: Option<usize>, penalised: bool) -> bool {
    w.dist.fill(INF);
    w.done.fill(false);
    w.via.fill(u64::MAX);
    w.heap.clear();
    w.dist[s] = 0;
    w.heap.push(Reverse((0, s as u32)));
    while let Some(Reverse((d, v))) = w.heap.pop() {
        let v = v as usize;
        if w.done[v] {
            continue;
        }
        w.done[v] = true;
        if Some(v) == t {
            return true;
        }
        if v != s && !g.transit[v] {
            continue;
        }
        for a in g.start[v]..g.start[v + 1] {
            if w.flow[a] {
                continue;
            }
            let (h, cost, _) = g.arcs[a];
            let h = h as usize;
            if w.done[h] {
                // Settled already (s among them): no shorter way in.
                continue;
            }
            let c = if penalised {
                cost + g.big * u64::from(w.uses[a])
            } else {
                cost + w.pot[v] - w.pot[h]
            };
            let nd = d + c;
            if nd < w.dist[h] {
                w.dist[h] = nd;
                w.via[h] = (a as u64) << 1;
                w.heap.push(Reverse((nd, h as u32)));
            }
        }
        if !penalised {
            // Residual arcs: undo flow on a link that enters v.
            for &a in &g.in_arcs[g.in_start[v]..g.in_start[v + 1]] {
                let a = a as usize;
                if !w.flow[a] {
                    continue;
                }
                let h = g.tail[a] as usize;
                let c = w.pot[v].saturating_sub(w.pot[h] + g.arcs[a].1);
                let nd = d + c;
                if nd < w.dist[h] {
                    w.dist[h] = nd;
                    w.via[h] = ((a as u64) << 1) | 1;
                    w.heap.push(Reverse((nd, h as u32)));
                }
            }
        }
    }
    t.is_none()
}

/// Follows `via` back from `t` to `s`; returns the arcs in order, with
/// the backward flag.
fn trace(g: &PathGraph, w: &Workspace, s: usize, t: usize) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    let mut v = t;
    while v != s {
        let code = w.via[v];
        let (a, back) = ((code >> 1) as usize, code & 1 == 1);
        out.push((a, back));
        v = if back {
            g.arcs[a].0 as usize
        } else {
            g.tail[a] as usize
        };
    }
    out.reverse();
    out
}

impl PathGraph {
    /// A device with a single working link out (a single-homed host):
    /// that arc, which every path from it must take.
    fn only_out(&self, v: usize) -> Option<usize> {
        (self.start[v + 1] - self.start[v] == 1 && !self.transit[v]).then_some(self.start[v])
    }

    /// A device with a single working link in (a single-homed host).
    fn only_in(&self, v: usize) -> Option<usize> {
        (self.in_start[v + 1] - self.in_start[v] == 1 && !self.transit[v])
            .then(|| self.in_arcs[self.in_start[v]] as usize)
    }
}

/// Up to `k` diverse paths from `s` to `t` (see the module docs), shortest
/// first. Empty when `t` cannot be reached.
#[must_use]
pub fn k_paths(
    g: &PathGraph,
    w: &mut Workspace,
    s: DeviceIx,
    t: DeviceIx,
    k: usize,
) -> Vec<LinkPath> {
    let (s, t) = (s.index(), t.index());
    if s == t || k == 0 || s >= g.nodes() || t >= g.nodes() {
        return Vec::new();
    }
    let t_inner = g.only_in(t).map_or(t, |a| g.tail[a] as usize);
    let to_t = distances_to(g, w, t_inner);
    pair_paths(g, w, s, t, k, &to_t)
}

/// Shortest distances from every device to `t` (INF where it cannot
/// reach t), over working links, hosts not transiting.
fn distances_to(g: &PathGraph, w: &mut Workspace, t: usize) -> Vec<u64> {
    let mut dist = vec![INF; g.nodes()];
    w.done.fill(false);
    w.heap.clear();
    dist[t] = 0;
    w.heap.push(Reverse((0, t as u32)));
    while let Some(Reverse((d, v))) = w.heap.pop() {
        let v = v as usize;
        if w.done[v] {
            continue;
        }
        w.done[v] = true;
        if v != t && !g.transit[v] {
            continue;
        }
        for &a in &g.in_arcs[g.in_start[v]..g.in_start[v + 1]] {
            let u = g.tail[a as usize] as usize;
            let nd = d + g.arcs[a as usize].1;
            if nd < dist[u] {
                dist[u] = nd;
                w.heap.push(Reverse((nd, u as u32)));
            }
        }
    }
    dist
}

/// Diverse paths from each of `sources` to `t`; the distances to t are
/// computed once for all of them.
#[must_use]
pub fn paths_to(
    g: &PathGraph,
    w: &mut Workspace,
    t: DeviceIx,
    sources: &[DeviceIx],
    k: usize,
) -> Vec<Vec<LinkPath>> {
    let t = t.index();
    if t >= g.nodes() {
        return vec![Vec::new(); sources.len()];
    }
    let t_inner = g.only_in(t).map_or(t, |a| g.tail[a] as usize);
    let to_t = distances_to(g, w, t_inner);
    sources
        .iter()
        .map(|s| {
            let s = s.index();
            if s == t || s >= g.nodes() || k == 0 {
                Vec::new()
            } else {
                pair_paths(g, w, s, t, k, &to_t)
            }
        })
        .collect()
}

/// Paths for one pair given the shortest distances to the destination's
/// last switch. A single-homed host's access link is on every path
/// anyway, so diversity is sought between its switch and the other end's.
fn pair_paths(
    g: &PathGraph,
    w: &mut Workspace,
    s: usize,
    t: usize,
    k: usize,
    to_t: &[u64],
) -> Vec<LinkPath> {
    let head = g.only_out(s);
    let tail = g.only_in(t);
    let s_inner = head.map_or(s, |a| g.arcs[a].0 as usize);
    let t_inner = tail.map_or(t, |a| g.tail[a] as usize);
    let wrap = |inner: Vec<LinkPath>| -> Vec<LinkPath> {
        inner
            .into_iter()
            .map(|p| {
                let mut out = Vec::with_capacity(p.len() + 2);
                out.extend(head.map(|a| g.links[a]));
                out.extend(p);
                out.extend(tail.map(|a| g.links[a]));
                out
            })
            .collect()
    };
    if s_inner == t_inner {
        // Two hosts on one switch, or a host and its own switch: the access
        // links are the one path (s != t, so at least one exists).
        return wrap(vec![Vec::new()]);
    }
    if (head.is_some() && s_inner == t) || (tail.is_some() && t_inner == s) {
        return Vec::new();
    }
    wrap(paths_from_potentials(g, w, s_inner, t_inner, k, to_t))
}

fn paths_from_potentials(
    g: &PathGraph,
    w: &mut Workspace,
    s: usize,
    t: usize,
    k: usize,
    to_t: &[u64],
) -> Vec<LinkPath> {
    if to_t[s] >= INF {
        return Vec::new();
    }
    for a in w.touched.drain(..) {
        w.flow[a as usize] = false;
        w.uses[a as usize] = 0;
    }
    // Potentials from the distances to t: reduced costs are zero exactly
    // on arcs of shortest paths to t, so each Dijkstra below heads
    // straight for t (like A* with an exact estimate). Devices that
    // cannot reach t get 0, which keeps every reduced cost non-negative.
    // Only s and transit devices are ever expanded, so only their out-arcs
    // need non-negative reduced costs; a device that is only ever a dead
    // end (a host other than s and t) gets 0, which keeps every arc into
    // it non-negative too.
    let far = to_t.iter().copied().filter(|d| *d < INF).max().unwrap_or(0);
    for (v, (p, d)) in w.pot.iter_mut().zip(to_t).enumerate() {
        let anchored = g.transit[v] || v == s || v == t;
        *p = if anchored && *d < INF { far - d } else { 0 };
    }
    // Round 1 is the shortest path itself.
    // With these potentials every arc on a shortest path costs 0, so each
    // round below explores little more than the paths it finds.
    let mut flows = 0;
    while flows < k {
        if !dijkstra(g, w, s, Some(t), false) {
            break;
        }
        for (a, back) in trace(g, w, s, t) {
            if back {
                w.flow[a] = false;
            } else {
                w.flow[a] = true;
                w.touched.push(a as u32);
            }
        }
        update_potentials(w, t);
        flows += 1;
    }
    let mut paths = decompose(g, w, s, t, flows);
    paths.sort_by_key(|p| (cost(g, p), p.len()));

    if paths.len() < k && !paths.is_empty() {
        for p in &paths {
            for &a in p {
                w.uses[a] += 1;
            }
        }
        for &a in &w.touched {
            w.flow[a as usize] = false;
        }
        while paths.len() < k {
            if !dijkstra(g, w, s, Some(t), true) {
                break;
            }
            let p: Vec<usize> = trace(g, w, s, t).into_iter().map(|(a, _)| a).collect();
            if paths.contains(&p) {
                break;
            }
            for &a in &p {
                w.uses[a] += 1;
                w.touched.push(a as u32);
            }
            paths.push(p);
        }
    }
    paths
        .into_iter()
        .map(|p| p.into_iter().map(|a| g.links[a]).collect())
        .collect()
}

fn update_potentials(w: &mut Workspace, t: usize) {
    let dt = w.dist[t];
    for (p, (d, done)) in w.pot.iter_mut().zip(w.dist.iter().zip(&w.done)) {
        *p += if *done { *d } else { dt };
    }
}

fn cost(g: &PathGraph, p: &[usize]) -> u64 {
    p.iter().map(|a| g.arcs[*a].1).sum()
}

/// Splits the unit flow into paths: from s, follow links carrying flow.
fn decompose(
    g: &PathGraph,
    w: &mut Workspace,
    s: usize,
    t: usize,
    flows: usize,
) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for _ in 0..flows {
        let mut p = Vec::new();
        let mut v = s;
        while v != t {
            let Some(a) = (g.start[v]..g.start[v + 1]).find(|a| w.flow[*a]) else {
                break;
            };
            w.flow[a] = false;
            p.push(a);
            v = g.arcs[a].0 as usize;
            if p.len() > g.nodes() {
                break;
            }
        }
        if v == t && !p.is_empty() {
            out.push(p);
        }
    }
    out
}

/// Diverse paths for every ordered pair of `edges`.
#[must_use]
pub fn all_pairs(
    topo: &Topology,
    edges: &[DeviceIx],
    k: usize,
) -> BTreeMap<(DeviceIx, DeviceIx), Vec<LinkPath>> {
    let g = PathGraph::new(topo);
    let mut w = Workspace::new(&g);
    let mut out = BTreeMap::new();
    for &t in edges {
        for (s, paths) in edges.iter().zip(paths_to(&g, &mut w, t, edges, k)) {
            if *s != t {
                out.insert((*s, t), paths);
            }
        }
    }
    out
}
