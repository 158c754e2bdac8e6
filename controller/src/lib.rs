//! Solyx controller: programs P4Runtime devices (switches and host agents),
//! keeps the controller's state ([`state`]) and serves it over a REST API
//! ([`api`]) with Prometheus metrics ([`metrics`]).
#![deny(missing_docs)]

pub mod api;
pub mod metrics;
pub mod orchestrator;
pub mod p4rt;
pub mod state;
