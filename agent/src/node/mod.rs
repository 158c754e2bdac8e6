//! Node resources: what this node offers to workloads, for the resource
//! manager.
//!
//! The agent discovers CPU cores, utilisation and load, and memory from
//! `/proc`; NVIDIA GPUs through NVML when the driver is installed; power
//! draw from the RAPL energy counters under `/sys/class/powercap` (plus
//! the GPUs' boards). The operator may declare any of these, and TPUs,
//! FPGAs, the site, rack and pod, in a YAML file ([`declared`]); declared
//! values override discovered ones, and every value says which it is.
//!
//! The node is served over gRPC (`solyx.node.v1.NodeResources`: `Get` and a
//! server-streaming `Watch`, [`NodeService`]) and as Prometheus gauges
//! ([`NodeMetrics`]) on the agent's `/metrics` endpoint
//! ([`crate::metrics`]), next to the P4Runtime server's counters.
//!
//! A subcommand attaches all of it with one call:
//!
//! ```no_run
//! # async fn demo(p4rt: solyx_agent::p4rt::AgentService) -> Result<(), solyx_agent::node::NodeError> {
//! use solyx_agent::node::{self, NodeArgs};
//! let args = NodeArgs::default(); // or #[command(flatten)] in a clap command
//! let node = node::spawn(&args, Some(&p4rt)).await?;
//! // serve node.service().into_grpc() next to P4Runtime (see
//! // p4rt::serve_tcp_listener_with), call node.service().close_streams()
//! // when stopping.
//! # Ok(())
//! # }
//! ```
//!
//! Files: `proc` (`/proc`), `gpu` (NVML), `power` (RAPL), [`declared`] (the
//! file), `compose` (declared over discovered, and what counts as a
//! change), `monitor` (the sampling loop), `service` (gRPC), `metrics`
//! (gauges).

mod compose;
pub mod declared;
mod gpu;
mod metrics;
mod monitor;
mod power;
mod proc;
mod service;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;

pub use compose::{compose, dead_band, differs, Discovered, AGENT_VERSION};
pub use declared::{Declared, DeclaredError};
pub use gpu::{GpuReader, GpuSample};
pub use metrics::{source_name, NodeMetrics};
pub use monitor::{Monitor, MonitorConfig, Snapshot};
pub use power::{PowerReader, MIN_WINDOW as POWER_WINDOW, POWERCAP_ROOT};
pub use proc::{hostname, ProcReader, ProcSample, UTILIZATION_WINDOW};
pub use service::{NodeService, DEFAULT_HEARTBEAT};

use crate::metrics::MetricsServer;
use crate::p4rt::AgentService;

/// The node options every agent subcommand takes (`#[command(flatten)]`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct NodeArgs {
    /// YAML file of declared node resources (cpus, memory, gpus,
    /// accelerators, power_watts, site, rack, pod, name), overriding what
    /// is discovered; re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub declare: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// How often /proc and the declared file are read (ms or s).
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration)]
    pub node_poll: Duration,
    /// Longest time a node Watch stays silent (ms or s).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub node_heartbeat: Duration,
}

impl Default for NodeArgs {
    fn default() -> Self {
        Self {
            declare: None,
            metrics: None,
            node_poll: MonitorConfig::default().poll,
            node_heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

/// Parses `250ms`, `2s`, `1.5s`.
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: write 250ms or 2s");
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(bad());
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    let d = Duration::try_from_secs_f64(n * scale).map_err(|_| bad())?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
        return Err(format!("duration {text:?} out of range: 10ms to 3600s"));
    }
    Ok(d)
}

/// Why the node reporting could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The declared-resources file is unreadable or invalid.
    #[error(transparent)]
    Declared(#[from] DeclaredError),
    /// Metric series clash in the registry.
    #[error("metrics: {0}")]
    Registry(#[from] prometheus::Error),
    /// The sampling thread could not be started.
    #[error("cannot start the node monitor: {0}")]
    Start(String),
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Node reporting, running: the sampling loop, the gRPC service to serve,
/// the metrics registry and endpoint.
#[derive(Debug)]
pub struct NodeAgent {
    service: NodeService,
    registry: Registry,
    metrics: Option<MetricsServer>,
}

impl NodeAgent {
    /// The gRPC service (serve `service().into_grpc()`).
    #[must_use]
    pub fn service(&self) -> NodeService {
        self.service.clone()
    }

    /// The registry behind `/metrics`; other parts of the agent may add
    /// their series.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Where `/metrics` is served, if it is.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// Ends the Watch streams and the metrics endpoint.
    pub async fn stop(self) {
        self.service.close_streams();
        if let Some(m) = self.metrics {
            m.stop().await;
        }
    }
}

/// Starts node reporting as `args` say: loads the declared file, starts
/// sampling, registers the node gauges (and `p4rt`'s series, when given)
/// and serves `/metrics` when `--metrics` is set. Must run inside a Tokio
/// runtime.
///
/// # Errors
/// [`NodeError`]: the declared file is invalid (naming file, line and
/// field), or the metrics address cannot be bound.
pub async fn spawn(args: &NodeArgs, p4rt: Option<&AgentService>) -> Result<NodeAgent, NodeError> {
    let config = MonitorConfig {
        declare: args.declare.clone(),
        poll: args.node_poll,
        ..MonitorConfig::default()
    };
    spawn_with(config, args.node_heartbeat, args.metrics, p4rt).await
}

/// [`spawn`] with every sampling setting given (tests: another powercap
/// root, no NVML).
///
/// # Errors
/// As [`spawn`].
pub async fn spawn_with(
    config: MonitorConfig,
    heartbeat: Duration,
    metrics_addr: Option<SocketAddr>,
    p4rt: Option<&AgentService>,
) -> Result<NodeAgent, NodeError> {
    let registry = Registry::new();
    let node_metrics = NodeMetrics::new();
    node_metrics.register(&registry)?;
    if let Some(p4rt) = p4rt {
        p4rt.metrics().register(&registry)?;
    }
    let monitor = tokio::task::spawn_blocking(move || Monitor::start(config, node_metrics))
        .await
        .map_err(|e| NodeError::Start(e.to_string()))??;
    let metrics = match metrics_addr {
        Some(addr) => Some(
            MetricsServer::spawn(addr, registry.clone())
                .await
                .map_err(|source| NodeError::Metrics { addr, source })?,
        ),
        None => None,
    };
    Ok(NodeAgent {
        service: NodeService::new(Arc::new(monitor), heartbeat),
        registry,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["250", "1m", "0ms", "-1s", "2h", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
