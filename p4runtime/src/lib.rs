//! P4Runtime v1 for Solyx: the generated protobuf messages and gRPC service,
//! plus the vocabulary both sides of the protocol share.
#![deny(missing_docs)]

pub mod canonical;
pub mod entity;
pub mod p4info;

pub use entity::EntityError;
pub use p4info::{P4InfoError, P4InfoIndex};

/// The code protoc and prost generate from `proto/`. The module nesting
/// mirrors the protobuf package names, because the generated code names
/// sibling packages by relative paths (`super::super::config::v1`).
/// `google.rpc` is not generated here: it maps to [`tonic_types::pb`].
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod proto {
    /// Package `p4`.
    pub mod p4 {
        /// Package `p4.v1`: the P4Runtime service and its messages.
        pub mod v1 {
            tonic::include_proto!("p4.v1");
        }
        /// Package `p4.config`.
        pub mod config {
            /// Package `p4.config.v1`: P4Info and its type information.
            pub mod v1 {
                tonic::include_proto!("p4.config.v1");
            }
        }
    }
    /// Package `solyx`: Solyx's own services.
    pub mod solyx {
        /// Package `solyx.node`.
        pub mod node {
            /// Package `solyx.node.v1`: node resources (CPU, memory, GPUs,
            /// accelerators, power, placement labels) served by the agent.
            pub mod v1 {
                tonic::include_proto!("solyx.node.v1");
            }
        }
    }
}

/// The encoded `google.protobuf.FileDescriptorSet` of the P4Runtime protos
/// (with their imports), for reflection and for checks against other
/// implementations.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/p4runtime_descriptor.bin"));
