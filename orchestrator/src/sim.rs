//! A simulated multi-site leaf-spine fabric that implements
//! `NetworkView`, for tests and the evaluation.
//!
//! Each site is a two-tier leaf-spine: nodes hang off leaves
//! (`nodes_per_leaf` each, in the order given), every leaf reaches every
//! spine, and the spines of all sites meet over a WAN. Capacity is
//! modelled where it runs out in such fabrics: each node's NIC, each
//! leaf's uplinks taken together (ECMP spreads over all spines; the
//! aggregate is `nodes_per_leaf * nic_bps / oversubscription`), and each
//! site's WAN attachment. Loads are offered rates added and removed by
//! the caller (`add_flow`), pooled over both directions.

use std::collections::HashMap;
use std::sync::Arc;

use crate::network::{NetworkView, NodeLocation, PathMetrics};

/// Shape and speeds of the simulated fabric.
#[derive(Debug, Clone)]
pub struct FabricParams {
    /// Nodes per leaf (rack).
    pub nodes_per_leaf: usize,
    /// Spines per site (hop and path count only; capacity is per leaf).
    pub spines: u32,
    /// NIC speed of every node, bit/s.
    pub nic_bps: f64,
    /// Downlink to uplink ratio of a leaf (1 = non-blocking).
    pub oversubscription: f64,
    /// Latency of one link including the switch behind it, seconds.
    pub link_latency_s: f64,
    /// WAN capacity of each site, bit/s.
    pub wan_bps: f64,
    /// One-way WAN latency between two sites, seconds.
    pub wan_latency_s: f64,
}

impl Default for FabricParams {
    /// 16 nodes per leaf, 4 spines, 100 Gbit/s NICs, 4:1 oversubscribed
    /// leaves, 2 µs per link, 400 Gbit/s and 10 ms between sites.
    fn default() -> Self {
        FabricParams {
            nodes_per_leaf: 16,
            spines: 4,
            nic_bps: 100e9,
            oversubscription: 4.0,
            link_latency_s: 2e-6,
            wan_bps: 400e9,
            wan_latency_s: 10e-3,
        }
    }
}

/// Per-resource load of the simulated fabric.
#[derive(Debug, Clone, Default)]
struct Load {
    bps: f64,
    flows: u32,
}

/// The simulated fabric.
#[derive(Debug, Clone)]
pub struct SimFabric {
    params: FabricParams,
    index: HashMap<String, usize>,
    locations: Vec<NodeLocation>,
    leaf_of: Vec<usize>,
    site_of_leaf: Vec<usize>,
    leaf_names: Vec<Arc<str>>,
    nic: Vec<Load>,
    uplink: Vec<Load>,
    wan: Vec<Load>,
    /// Background load per leaf uplink, bit/s (congestion injected by
    /// tests and scenarios).
    background: Vec<f64>,
}

/// Which capacity-limited resources a path between two nodes crosses.
struct Route {
    nics: [usize; 2],
    uplinks: Option<[usize; 2]>,
    wans: Option<[usize; 2]>,
}

impl SimFabric {
    /// Builds a fabric over `nodes` (name, site), filling the leaves of
    /// each site in the order the nodes come. Leaves are named
    /// `<site>-leaf<k>`, racks `<site>-r<k>`.
    pub fn build<I, S1, S2>(params: FabricParams, nodes: I) -> SimFabric
    where
        I: IntoIterator<Item = (S1, S2)>,
        S1: Into<String>,
        S2: Into<String>,
    {
        let per_leaf = params.nodes_per_leaf.max(1);
        let mut fabric = SimFabric {
            params,
            index: HashMap::new(),
            locations: Vec::new(),
            leaf_of: Vec::new(),
            site_of_leaf: Vec::new(),
            leaf_names: Vec::new(),
            nic: Vec::new(),
            uplink: Vec::new(),
            wan: Vec::new(),
            background: Vec::new(),
        };
        let mut site_ids: HashMap<String, usize> = HashMap::new();
        let mut site_names: Vec<Arc<str>> = Vec::new();
        // Per site: (current leaf index, nodes on it so far).
        let mut filling: HashMap<usize, (usize, usize, usize)> = HashMap::new();
        for (name, site) in nodes {
            let name: String = name.into();
            let site: String = site.into();
            let sid = *site_ids.entry(site.clone()).or_insert_with(|| {
                site_names.push(Arc::from(site.as_str()));
                fabric.wan.push(Load::default());
                site_names.len() - 1
            });
            let entry = filling.entry(sid).or_insert((usize::MAX, per_leaf, 0));
            if entry.1 >= per_leaf {
                let k = entry.2;
                entry.2 += 1;
                fabric.site_of_leaf.push(sid);
                fabric
                    .leaf_names
                    .push(Arc::from(format!("{site}-leaf{k:02}").as_str()));
                fabric.uplink.push(Load::default());
                fabric.background.push(0.0);
                entry.0 = fabric.site_of_leaf.len() - 1;
                entry.1 = 0;
            }
            entry.1 += 1;
            let leaf = entry.0;
            let k = entry.2 - 1;
            fabric.index.insert(name, fabric.locations.len());
            fabric.locations.push(NodeLocation {
                site: site_names[sid].clone(),
                rack: Arc::from(format!("{site}-r{k:02}").as_str()),
                leaf: fabric.leaf_names[leaf].clone(),
            });
            fabric.leaf_of.push(leaf);
            fabric.nic.push(Load::default());
        }
        fabric
    }

    /// The parameters the fabric was built with.
    pub fn params(&self) -> &FabricParams {
        &self.params
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.locations.len()
    }

    /// Number of leaves over all sites.
    pub fn leaf_count(&self) -> usize {
        self.leaf_names.len()
    }

    fn uplink_capacity(&self) -> f64 {
        self.params.nodes_per_leaf.max(1) as f64 * self.params.nic_bps
            / self.params.oversubscription.max(1e-9)
    }

    fn route(&self, a: usize, b: usize) -> Route {
        let (la, lb) = (self.leaf_of[a], self.leaf_of[b]);
        let (sa, sb) = (self.site_of_leaf[la], self.site_of_leaf[lb]);
        Route {
            nics: [a, b],
            uplinks: (la != lb).then_some([la, lb]),
            wans: (sa != sb).then_some([sa, sb]),
        }
    }

    fn ids(&self, a: &str, b: &str) -> Option<(usize, usize)> {
        Some((*self.index.get(a)?, *self.index.get(b)?))
    }

    /// Adds an offered load of `bps` between two nodes (one flow). Returns
    /// false when either node is unknown; a node and itself is a no-op.
    pub fn add_flow(&mut self, a: &str, b: &str, bps: f64) -> bool {
        self.change_flow(a, b, bps, 1)
    }

    /// Removes a load added with `add_flow`.
    pub fn remove_flow(&mut self, a: &str, b: &str, bps: f64) -> bool {
        self.change_flow(a, b, -bps, -1)
    }

    fn change_flow(&mut self, a: &str, b: &str, bps: f64, flows: i32) -> bool {
        let Some((a, b)) = self.ids(a, b) else {
            return false;
        };
        if a == b {
            return true;
        }
        let route = self.route(a, b);
        let bump = |l: &mut Load| {
            l.bps = (l.bps + bps).max(0.0);
            l.flows = l.flows.saturating_add_signed(flows);
        };
        for n in route.nics {
            bump(&mut self.nic[n]);
        }
        if let Some(ups) = route.uplinks {
            for l in ups {
                bump(&mut self.uplink[l]);
            }
        }
        if let Some(wans) = route.wans {
            for s in wans {
                bump(&mut self.wan[s]);
            }
        }
        true
    }

    /// Sets a background load on a leaf's uplinks (congestion from
    /// traffic the scheduler did not place). Unknown leaves are ignored.
    pub fn set_leaf_background(&mut self, leaf: &str, bps: f64) {
        if let Some(i) = self.leaf_names.iter().position(|l| &**l == leaf) {
            self.background[i] = bps.max(0.0);
        }
    }

    /// Bandwidth one more flow between `a` and `b` would get if every link
    /// were shared equally among its flows (this flow included): the
    /// smallest `capacity / flows` on the way. Used to estimate transfer
    /// times; `None` for unknown nodes, infinity for a node and itself.
    pub fn fair_share_bps(&self, a: &str, b: &str) -> Option<f64> {
        let (a, b) = self.ids(a, b)?;
        if a == b {
            return Some(f64::INFINITY);
        }
        let route = self.route(a, b);
        let mut share = f64::INFINITY;
        for n in route.nics {
            share = share.min(self.params.nic_bps / f64::from(self.nic[n].flows + 1));
        }
        if let Some(ups) = route.uplinks {
            for l in ups {
                let cap = (self.uplink_capacity() - self.background[l]).max(0.0);
                share = share.min(cap / f64::from(self.uplink[l].flows + 1));
            }
        }
        if let Some(wans) = route.wans {
            for s in wans {
                share = share.min(self.params.wan_bps / f64::from(self.wan[s].flows + 1));
            }
        }
        Some(share)
    }

    /// Highest utilisation (offered / capacity) over all leaf uplinks.
    pub fn max_uplink_utilisation(&self) -> f64 {
        let cap = self.uplink_capacity();
        self.uplink
            .iter()
            .zip(&self.background)
            .map(|(l, bg)| (l.bps + bg) / cap)
            .fold(0.0, f64::max)
    }
}

impl NetworkView for SimFabric {
    fn location(&self, node: &str) -> Option<NodeLocation> {
        self.index.get(node).map(|&i| self.locations[i].clone())
    }

    fn path(&self, a: &str, b: &str) -> Option<PathMetrics> {
        let (a, b) = self.ids(a, b)?;
        if a == b {
            return Some(PathMetrics::LOCAL);
        }
        let p = &self.params;
        let route = self.route(a, b);
        let mut headroom = f64::INFINITY;
        for n in route.nics {
            headroom = headroom.min(p.nic_bps - self.nic[n].bps);
        }
        let mut hops = 2;
        let mut latency = 2.0 * p.link_latency_s;
        if let Some(ups) = route.uplinks {
            for l in ups {
                headroom =
                    headroom.min(self.uplink_capacity() - self.uplink[l].bps - self.background[l]);
            }
            hops = 4;
            latency = 4.0 * p.link_latency_s;
        }
        if let Some(wans) = route.wans {
            for s in wans {
                headroom = headroom.min(p.wan_bps - self.wan[s].bps);
            }
            hops = 5;
            latency += p.wan_latency_s;
        }
        Some(PathMetrics {
            headroom_bps: headroom.max(0.0),
            latency_s: latency,
            hops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fabric() -> SimFabric {
        let params = FabricParams {
            nodes_per_leaf: 2,
            ..FabricParams::default()
        };
        SimFabric::build(params, [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")])
    }

    #[test]
    fn paths_grow_with_distance() {
        let f = fabric();
        assert_eq!(f.leaf_count(), 3);
        let same_leaf = f.path("a1", "a2").expect("known");
        let cross_leaf = f.path("a1", "a3").expect("known");
        let cross_site = f.path("a1", "b1").expect("known");
        assert_eq!(
            (same_leaf.hops, cross_leaf.hops, cross_site.hops),
            (2, 4, 5)
        );
        assert!(same_leaf.latency_s < cross_leaf.latency_s);
        assert!(cross_leaf.latency_s < cross_site.latency_s);
        assert_eq!(f.path("a1", "a1"), Some(PathMetrics::LOCAL));
        assert_eq!(f.path("a1", "zz"), None);
    }

    #[test]
    fn load_shrinks_headroom_and_fair_share() {
        let mut f = fabric();
        // Leaf uplinks: 2 nodes * 100G / 4 = 50G.
        assert_eq!(f.path("a1", "a3").map(|p| p.headroom_bps), Some(50e9));
        assert!(f.add_flow("a2", "a3", 30e9));
        assert_eq!(f.path("a1", "a3").map(|p| p.headroom_bps), Some(20e9));
        assert_eq!(f.fair_share_bps("a1", "a3"), Some(25e9));
        f.set_leaf_background("A-leaf00", 20e9);
        assert_eq!(f.path("a1", "a3").map(|p| p.headroom_bps), Some(0.0));
        assert!(f.remove_flow("a2", "a3", 30e9));
        assert_eq!(f.path("a1", "a2").map(|p| p.headroom_bps), Some(100e9));
    }
}
