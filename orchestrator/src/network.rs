//! What the scheduler needs to know about the network, as one trait.
//!
//! The controller implements `NetworkView` over its live link state (INT
//! series, the routing engine's path groups); `sim::SimFabric` implements
//! it over a simulated leaf-spine fabric for tests and evaluation. The
//! scheduler never sees links or paths, only what matters for placing a
//! pair of tasks: how much bandwidth is left between two nodes, how long
//! a packet takes, how many links it crosses, and where a node sits.

use std::sync::Arc;

/// Where a node sits in the fabric.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeLocation {
    /// Site (MetaPod): the unit of energy price and carbon intensity.
    pub site: Arc<str>,
    /// Rack inside the site.
    pub rack: Arc<str>,
    /// The fabric device the node's NIC connects to (its top-of-rack
    /// leaf). Traffic between nodes on different leaves crosses the spine.
    pub leaf: Arc<str>,
}

/// The network between two nodes, over the paths the controller would use
/// for traffic between them (its group of paths for that pair).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PathMetrics {
    /// Bandwidth still free between the two nodes, in bit/s: for each path
    /// in the group, the smallest free capacity of its links, summed over
    /// the group (capped by the nodes' own links). `f64::INFINITY` for a
    /// node and itself.
    pub headroom_bps: f64,
    /// One-way latency in seconds, weighted over the group's paths.
    pub latency_s: f64,
    /// Links crossed by the longest path in the group (0 for a node and
    /// itself, 2 through one leaf, 4 through a spine).
    pub hops: u32,
}

impl PathMetrics {
    /// The metrics between a node and itself: no network at all.
    pub const LOCAL: PathMetrics = PathMetrics {
        headroom_bps: f64::INFINITY,
        latency_s: 0.0,
        hops: 0,
    };
}

/// Read access to the network, as the scheduler needs it. Implementations
/// answer from a recent snapshot; calls must be cheap (a placement asks
/// for a few hundred pairs).
pub trait NetworkView: Send + Sync {
    /// Where a node sits; `None` for a node the network does not know.
    fn location(&self, node: &str) -> Option<NodeLocation>;

    /// The network between two nodes; `None` when either is unknown or
    /// no path connects them.
    fn path(&self, a: &str, b: &str) -> Option<PathMetrics>;
}
