//! Routing: K diverse labelled paths per pair of edge devices, weights
//! that keep the worst link utilisation low, failover, intents, and the
//! entries that make devices forward along the paths.
//!
//! The functions here read a [`crate::topology::Topology`] and never
//! change it; [`Routes`] holds the paths, labels and weights. The usual
//! loop:
//!
//! 1. [`Routes::recompute`] after a topology change (paths, labels kept
//!    where the path is unchanged);
//! 2. [`Routes::failover`] as soon as a link or device fails (immediate);
//! 3. [`Routes::balance`] every telemetry period (gradual, with hysteresis
//!    and a hold time);
//! 4. [`Routes::apply`] the updates, then [`p4::fabric_entries`] and
//!    [`p4::host_groups`] give what every device should hold.
//!
//! See `docs/routing.md` for the algorithms and what they guarantee.
//!
//! ```
//! use solyx::routing::{Routes, RoutingConfig, Failure};
//! use solyx::topology::Topology;
//! let topo = Topology::load(std::path::Path::new(concat!(
//!     env!("CARGO_MANIFEST_DIR"), "/../topologies/leaf-spine.yaml"))).unwrap();
//! let mut routes = Routes::new(RoutingConfig::default());
//! routes.recompute(&topo, &topo.edge_devices()).unwrap();
//! let spine1 = topo.device_ix("spine1").unwrap();
//! let updates = routes.failover(&topo, Failure::Device(spine1));
//! assert!(updates.iter().all(|u| !u.unreachable()));
//! ```

pub mod intent;
pub mod labels;
pub mod p4;
pub mod paths;
mod routes;
pub mod te;

pub use intent::{Intent, IntentError, Shortfall};
pub use labels::{LabelAllocator, LabelsExhausted};
pub use paths::{all_pairs, k_paths, paths_to, LinkPath, PathGraph, Workspace, DEFAULT_K};
pub use routes::{Failure, Group, Path, Reason, Routes, RoutingConfig, WeightUpdate};
pub use te::{consolidate, optimise, quantise, TeConfig, TeGroup, TeProblem};
