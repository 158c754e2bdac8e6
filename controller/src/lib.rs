//! Solyx controller: programs P4Runtime devices (switches and host agents)
//! ([`p4rt`]) and reads the nodes' resources from their agents ([`node`]),
//! and will grow the topology, telemetry and routing loop on top of that.
#![deny(missing_docs)]

pub mod node;
pub mod discovery;
pub mod linkstate;
pub mod p4rt;
pub mod serve;
pub mod telemetry;
