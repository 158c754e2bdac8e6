//! Client of the agents' node resources service (`solyx.node.v1`): what a
//! node offers to workloads (CPU, memory, GPUs, accelerators, power) and
//! where it stands (site, rack, pod), with the source of every value
//! (discovered or declared).
//!
//! ```no_run
//! # async fn demo() -> Result<(), solyx::node::NodeClientError> {
//! use futures::StreamExt;
//! let mut client = solyx::node::NodeClient::connect("127.0.0.1:9559").await?;
//! let node = client.get().await?;
//! println!("{}", solyx::node::table(&node));
//! let mut updates = client.watch().await?;
//! while let Some(update) = updates.next().await {
//!     let update = update?; // INITIAL, then CHANGED or HEARTBEAT
//! #   let _ = update;
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use solyx_p4runtime::proto::solyx::node::v1 as pb;
use solyx_p4runtime::proto::solyx::node::v1::node_resources_client::NodeResourcesClient;
use tonic::transport::Channel;

use crate::p4rt::transport;

pub use pb::{Node, NodeUpdate, PortEvent};

/// How long [`NodeClient::connect`] waits for the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a node request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeClientError {
    /// No connection to the agent.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The agent answered with an error.
    #[error("{addr}: {status}")]
    Rpc {
        /// The address.
        addr: String,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// The agent answered without a node.
    #[error("{addr}: the answer carries no node")]
    Empty {
        /// The address.
        addr: String,
    },
}

/// A connection to one agent's node resources service.
#[derive(Debug, Clone)]
pub struct NodeClient {
    addr: String,
    inner: NodeResourcesClient<Channel>,
}

impl NodeClient {
    /// Connects to `addr` (`host:port` or `unix:/path`).
    ///
    /// # Errors
    /// [`NodeClientError::Connect`].
    pub async fn connect(addr: &str) -> Result<Self, NodeClientError> {
        Self::connect_with(addr, None).await
    }

    /// Connects to `addr` over TLS when `tls` is given (TCP addresses
    /// only), as the P4Runtime session to the same agent does.
    ///
    /// # Errors
    /// [`NodeClientError::Connect`].
    pub async fn connect_with(
        addr: &str,
        tls: Option<&crate::p4rt::ClientTls>,
    ) -> Result<Self, NodeClientError> {
        let channel = transport::connect(addr, CONNECT_TIMEOUT, tls)
            .await
            .map_err(|reason| NodeClientError::Connect {
                addr: addr.to_string(),
                reason,
            })?;
        Ok(Self {
            addr: addr.to_string(),
            inner: NodeResourcesClient::new(channel),
        })
    }

    /// The node as it is now.
    ///
    /// # Errors
    /// [`NodeClientError::Rpc`] or [`NodeClientError::Empty`].
    pub async fn get(&mut self) -> Result<Node, NodeClientError> {
        let r = self
            .inner
            .get(pb::GetRequest {})
            .await
            .map_err(|status| self.rpc(status))?;
        r.into_inner().node.ok_or_else(|| NodeClientError::Empty {
            addr: self.addr.clone(),
        })
    }

    /// The node now, then at every change and heartbeat, until the agent
    /// stops.
    ///
    /// # Errors
    /// [`NodeClientError::Rpc`], at the start or as an item.
    pub async fn watch(
        &mut self,
    ) -> Result<impl Stream<Item = Result<NodeUpdate, NodeClientError>> + use<>, NodeClientError>
    {
        let addr = self.addr.clone();
        let stream = self
            .inner
            .watch(pb::WatchRequest {})
            .await
            .map_err(|status| self.rpc(status))?
            .into_inner();
        Ok(stream.map(move |r| {
            r.map_err(|status| NodeClientError::Rpc {
                addr: addr.clone(),
                status,
            })
        }))
    }

    /// The link state of every port the agent watches, then each change,
    /// until the agent stops. An agent that watches no ports answers
    /// UNIMPLEMENTED.
    ///
    /// # Errors
    /// [`NodeClientError::Rpc`], at the start or as an item.
    pub async fn watch_ports(
        &mut self,
    ) -> Result<impl Stream<Item = Result<pb::PortEvent, NodeClientError>> + use<>, NodeClientError>
    {
        let addr = self.addr.clone();
        let stream = self
            .inner
            .watch_ports(pb::WatchPortsRequest {})
            .await
            .map_err(|status| self.rpc(status))?
            .into_inner();
        Ok(stream.map(move |r| {
            r.map_err(|status| NodeClientError::Rpc {
                addr: addr.clone(),
                status,
            })
        }))
    }

    fn rpc(&self, status: tonic::Status) -> NodeClientError {
        NodeClientError::Rpc {
            addr: self.addr.clone(),
            status,
        }
    }
}

fn source(s: i32) -> &'static str {
    match pb::Source::try_from(s) {
        Ok(pb::Source::Declared) => "declared",
        Ok(pb::Source::Discovered) => "discovered",
        _ => "unknown",
    }
}

#[allow(clippy::cast_precision_loss)]
fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// The node as a two-column table, one resource per line.
#[must_use]
pub fn table(n: &Node) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    rows.push(("node".into(), n.name.clone()));
    rows.push((
        "site/rack/pod".into(),
        format!("{} / {} / {}", dash(&n.site), dash(&n.rack), dash(&n.pod)),
    ));
    if let Some(c) = &n.cpu {
        rows.push((
            "cpu".into(),
            format!("{} cores ({})", c.cores, source(c.cores_source)),
        ));
        rows.push((
            "cpu use".into(),
            format!(
                "{:.0}%, load {:.2} {:.2} {:.2}",
                c.utilization * 100.0,
                c.load1,
                c.load5,
                c.load15
            ),
        ));
    }
    if let Some(m) = &n.memory {
        rows.push((
            "memory".into(),
            format!(
                "{} ({}), {} available",
                gib(m.total_bytes),
                source(m.total_source),
                gib(m.available_bytes)
            ),
        ));
    }
    if n.gpus.is_empty() {
        rows.push(("gpus".into(), "none".into()));
    }
    for g in &n.gpus {
        let mut v = format!("{} {} ({})", g.model, gib(g.memory_bytes), source(g.source));
        if let Some(u) = g.utilization {
            let _ = write!(v, ", {:.0}% busy", u * 100.0);
        }
        if let Some(used) = g.memory_used_bytes {
            let _ = write!(v, ", {} used", gib(used));
        }
        if let Some(w) = g.power_watts {
            let _ = write!(v, ", {w:.0} W");
        }
        rows.push((format!("gpu {}", g.index), v));
    }
    for a in &n.accelerators {
        let mut v = format!("{} x {}", a.count, a.model);
        if a.memory_bytes > 0 {
            let _ = write!(v, ", {} each", gib(a.memory_bytes));
        }
        rows.push((a.kind.clone(), v));
    }
    let power = n.power.clone().unwrap_or_default();
    rows.push((
        "power".into(),
        match power.watts {
            Some(w) => format!("{w:.0} W ({})", power.method),
            None => "unknown".into(),
        },
    ));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    out
}

/// Several nodes, one line each: name, place, CPUs, memory, GPUs,
/// accelerators, power. A node that could not be read shows its error.
#[must_use]
pub fn summary(nodes: &[(String, Result<Node, NodeClientError>)]) -> String {
    let header = [
        "ADDRESS",
        "NODE",
        "SITE",
        "RACK",
        "POD",
        "CPUS",
        "CPU USE",
        "MEMORY",
        "AVAILABLE",
        "GPUS",
        "ACCELERATORS",
        "POWER",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(ToString::to_string).collect()];
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    for (addr, node) in nodes {
        let n = match node {
            Ok(n) => n,
            Err(e) => {
                rows.push(vec![addr.clone(), format!("unreachable: {e}")]);
                continue;
            }
        };
        let cpu = n.cpu.unwrap_or_default();
        let mem = n.memory.unwrap_or_default();
        let mut gpus: Vec<(String, usize)> = Vec::new();
        for g in &n.gpus {
            match gpus.iter_mut().find(|(m, _)| *m == g.model) {
                Some((_, c)) => *c += 1,
                None => gpus.push((g.model.clone(), 1)),
            }
        }
        let gpus = gpus
            .iter()
            .map(|(m, c)| format!("{c}x{m}"))
            .collect::<Vec<_>>()
            .join(",");
        let accelerators = n
            .accelerators
            .iter()
            .map(|a| format!("{}x{} {}", a.count, a.model, a.kind))
            .collect::<Vec<_>>()
            .join(",");
        let power = n.power.clone().unwrap_or_default();
        rows.push(vec![
            addr.clone(),
            n.name.clone(),
            dash(&n.site),
            dash(&n.rack),
            dash(&n.pod),
            cpu.cores.to_string(),
            format!("{:.0}%", cpu.utilization * 100.0),
            gib(mem.total_bytes),
            gib(mem.available_bytes),
            dash(&gpus),
            dash(&accelerators),
            power
                .watts
                .map_or_else(|| "-".to_string(), |w| format!("{w:.0} W")),
        ]);
    }
    let mut widths = vec![0usize; header.len()];
    for r in &rows {
        if r.len() == header.len() {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The node as JSON (field names as in the protobuf message, sources as
/// words, sizes in bytes).
#[must_use]
pub fn to_json(n: &Node) -> Value {
    let cpu = n.cpu.unwrap_or_default();
    let memory = n.memory.unwrap_or_default();
    let power = n.power.clone().unwrap_or_default();
    json!({
        "name": n.name,
        "site": n.site,
        "rack": n.rack,
        "pod": n.pod,
        "cpu": {
            "cores": cpu.cores,
            "cores_source": source(cpu.cores_source),
            "utilization": cpu.utilization,
            "load": [cpu.load1, cpu.load5, cpu.load15],
        },
        "memory": {
            "total_bytes": memory.total_bytes,
            "total_source": source(memory.total_source),
            "available_bytes": memory.available_bytes,
        },
        "gpus": n.gpus.iter().map(|g| json!({
            "index": g.index,
            "model": g.model,
            "uuid": g.uuid,
            "memory_bytes": g.memory_bytes,
            "memory_used_bytes": g.memory_used_bytes,
            "utilization": g.utilization,
            "power_watts": g.power_watts,
            "source": source(g.source),
        })).collect::<Vec<_>>(),
        "accelerators": n.accelerators.iter().map(|a| json!({
            "kind": a.kind,
            "model": a.model,
            "count": a.count,
            "memory_bytes": a.memory_bytes,
        })).collect::<Vec<_>>(),
        "power": {
            "watts": power.watts,
            "source": source(power.source),
            "method": power.method,
        },
        "sampled_at": n.sampled_at.as_ref().map(ToString::to_string),
        "agent_version": n.agent_version,
    })
}
