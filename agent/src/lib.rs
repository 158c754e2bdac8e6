//! Solyx agent: runs on every Linux node of the cluster and serves
//! P4Runtime, so that the controller programs the node like any other
//! device. See [`p4rt`] for the server and its data plane seam, [`ebpf`]
//! for the eBPF data planes, [`switch`] for `solyx-agent switch`, [`host`]
//! for `solyx-agent host`, [`node`] for the node's resources (gRPC and
//! Prometheus) and [`metrics`] for the `/metrics` endpoint.

#![deny(missing_docs)]

pub mod ebpf;
pub mod host;
pub mod metrics;
pub mod node;
pub mod p4rt;
pub mod port_events;
pub mod switch;
