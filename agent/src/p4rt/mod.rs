//! The agent's P4Runtime v1 server, with a pluggable data plane.
//!
//! The controller programs the node through this server as it would any
//! P4Runtime device: it arbitrates for primary on a StreamChannel, pushes
//! a pipeline (P4Info), writes and reads entities, exchanges packets. The
//! server validates every update against the P4Info, keeps what was
//! written in normal form, and hands each validated change to a
//! [`Dataplane`]: [`MemoryDataplane`] (which forwards nothing), or the
//! eBPF fabric switch (`crate::ebpf::EbpfFabricDataplane`).
//!
//! Starting a server in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), solyx_agent::p4rt::ServeError> {
//! use std::sync::Arc;
//! use solyx_agent::p4rt::{spawn_tcp, AgentService, MemoryDataplane, ServerConfig};
//!
//! let dataplane = Arc::new(MemoryDataplane::new());
//! let service = AgentService::new(ServerConfig::new(1), dataplane.clone());
//! let server = spawn_tcp(service, "127.0.0.1:0".parse().expect("address")).await?;
//! // connect a P4Runtime client to `server.endpoint()` ...
//! server.stop().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Files: [`arbitration`] (primary election, no I/O), `dataplane` (the
//! seam), `memory` (the data plane that forwards nothing), `validate`
//! (checks against the P4Info), `store` (entities in normal form),
//! `write`, `read`, `pipeline`, `stream` (StreamChannel and packet I/O),
//! `error` (every error and its gRPC code), `service` (the gRPC service),
//! `serve` (TCP and Unix listeners), `persist` (the state saved across
//! agent restarts), `metrics` (Prometheus series of the calls).

pub mod arbitration;
mod dataplane;
mod error;
mod memory;
mod metrics;
mod persist;
mod pipeline;
mod read;
mod serve;
mod service;
mod store;
mod stream;
mod validate;
mod write;

pub use dataplane::{
    Change, Dataplane, DataplaneError, DataplaneErrorKind, Entry, PacketIn, PacketInSink, PacketOut,
};
pub use error::{StoreError, P4_ERROR_TYPE_URL};
pub use memory::MemoryDataplane;
pub use metrics::{code_name, P4rtMetrics};
pub use persist::LoadError;
pub use pipeline::{PipelinePolicy, RestoreOutcome};
pub use serve::{
    bind_tcp, bind_unix, serve_tcp, serve_tcp_listener, serve_tcp_listener_tls,
    serve_tcp_listener_with, serve_unix, serve_unix_listener, serve_unix_listener_with, spawn_tcp,
    spawn_tcp_tls, spawn_unix, RunningServer, ServeError, ServerTls, UNIX_SOCKET_MODE,
};
pub use service::{
    AgentService, RestoreError, ServerConfig, MAX_MESSAGE_SIZE, P4RUNTIME_API_VERSION,
};
pub use stream::{EGRESS_PORT_FIELD, INGRESS_PORT_FIELD, PACKET_IN_HEADER, PACKET_OUT_HEADER};
