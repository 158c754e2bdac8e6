//! Solyx orchestrator: the distributed resource manager (inventory,
//! allocations, per-tenant quotas, kept in a SQLite file) and the
//! network-aware scheduler (placement of jobs where compute fits and the
//! network between their tasks is best, weighed against energy price and
//! carbon intensity), with a Kubernetes scheduler extender and Ray job
//! submission.
//!
//! The scheduler reads the network through the `NetworkView` trait; the
//! controller implements it over live link state, and `sim::SimFabric`
//! over a simulated leaf-spine fabric.

#![deny(missing_docs)]

pub mod cost;
pub mod drm;
pub mod energy;
pub mod extender;
pub mod inventory;
pub mod job;
pub mod migration;
pub mod network;
pub mod placement;
pub mod ray;
pub mod resources;
pub mod sim;
pub mod store;
pub mod trace;
