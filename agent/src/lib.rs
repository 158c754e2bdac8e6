//! Solyx agent: runs on every Linux node of the cluster and serves
//! P4Runtime, so that the controller programs the node like any other
//! device. See [`p4rt`] for the server and its data plane seam.

#![deny(missing_docs)]

pub mod ebpf;
pub mod p4rt;
