//! Solyx controller: programs P4Runtime devices (switches and host agents)
//! ([`p4rt`]), reads the nodes' resources from their agents ([`node`]),
//! collects INT telemetry ([`telemetry`]), discovers links ([`discovery`]),
//! runs over a network ([`serve`]), keeps the controller's state
//! ([`state`]) and serves it over a REST API ([`api`]) with Prometheus
//! metrics ([`metrics`]).
#![deny(missing_docs)]

pub mod api;
pub mod discovery;
pub mod linkstate;
pub mod metrics;
pub mod node;
pub mod orchestrator;
pub mod p4rt;
pub mod routing;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod topology;
pub mod workloads;
