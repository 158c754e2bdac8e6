//! Solyx controller: programs P4Runtime devices (switches and host agents),
//! and will grow the topology, telemetry and routing loop on top of that.
#![deny(missing_docs)]

pub mod p4rt;
pub mod routing;
pub mod topology;
