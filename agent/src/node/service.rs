//! The `solyx.node.v1.NodeResources` gRPC service.
//!
//! `Watch` sends the node at once (INITIAL), then every published change
//! (CHANGED; the monitor publishes within one poll period of a change),
//! and the latest sample after each heartbeat interval without a change
//! (HEARTBEAT). A slow reader skips to the latest change; `sequence` shows
//! the gap.
//!
//! `WatchPorts` sends the state of every port, then each change the
//! agent's [`PortWatch`] learns from the kernel; an agent given no ports to
//! watch answers UNIMPLEMENTED.

use std::sync::Arc;
use std::time::Duration;

use solyx_p4runtime::proto::solyx::node::v1 as pb;
use solyx_p4runtime::proto::solyx::node::v1::node_resources_server::{
    NodeResources, NodeResourcesServer,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::debug;

use super::monitor::{Monitor, Snapshot};
use crate::port_events::{PortState, PortWatch};

/// Default interval between heartbeats of a quiet Watch.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// The node resources service. Clones share the monitor and the
/// shutdown signal.
#[derive(Debug, Clone)]
pub struct NodeService {
    monitor: Arc<Monitor>,
    heartbeat: Duration,
    shutdown: Arc<watch::Sender<bool>>,
    ports: Option<PortWatch>,
}

impl NodeService {
    /// Serves what `monitor` samples, with a heartbeat every `heartbeat`.
    #[must_use]
    pub fn new(monitor: Arc<Monitor>, heartbeat: Duration) -> Self {
        Self {
            monitor,
            heartbeat: heartbeat.max(Duration::from_millis(10)),
            shutdown: Arc::new(watch::channel(false).0),
            ports: None,
        }
    }

    /// The same service, also serving `WatchPorts` from `ports` (none:
    /// `WatchPorts` is UNIMPLEMENTED).
    #[must_use]
    pub fn with_ports(mut self, ports: Option<PortWatch>) -> Self {
        self.ports = ports;
        self
    }

    /// The tonic service.
    #[must_use]
    pub fn into_grpc(self) -> NodeResourcesServer<NodeService> {
        NodeResourcesServer::new(self)
    }

    /// Ends every open Watch, and every later one at once (gRPC's
    /// graceful shutdown waits for open streams).
    pub fn close_streams(&self) {
        self.shutdown.send_replace(true);
    }
}

fn update(reason: pb::node_update::Reason, s: &Snapshot) -> pb::NodeUpdate {
    pb::NodeUpdate {
        reason: reason.into(),
        sequence: s.sequence,
        node: Some(s.node.clone()),
    }
}

fn port_event(s: &PortState, initial: bool) -> pb::PortEvent {
    pb::PortEvent {
        port: u32::from(s.port),
        interface: s.interface.clone(),
        oper_up: s.up,
        time: Some(prost_types::Timestamp::from(s.at)),
        initial,
    }
}

#[tonic::async_trait]
impl NodeResources for NodeService {
    async fn get(
        &self,
        _request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        Ok(Response::new(pb::GetResponse {
            node: Some(self.monitor.current().node.clone()),
        }))
    }

    type WatchStream = ReceiverStream<Result<pb::NodeUpdate, Status>>;

    async fn watch(
        &self,
        _request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        use pb::node_update::Reason;
        let (tx, rx) = mpsc::channel(4);
        let mut changes = self.monitor.subscribe();
        changes.mark_unchanged();
        let mut shutdown = self.shutdown.subscribe();
        let monitor = self.monitor.clone();
        let heartbeat = self.heartbeat;
        tokio::spawn(async move {
            if *shutdown.borrow() {
                return;
            }
            if tx
                .send(Ok(update(Reason::Initial, &monitor.current())))
                .await
                .is_err()
            {
                return;
            }
            let mut next_beat = Instant::now() + heartbeat;
            loop {
                let message = tokio::select! {
                    r = changes.changed() => match r {
                        Ok(()) => {
                            let s = changes.borrow_and_update().clone();
                            update(Reason::Changed, &s)
                        }
                        Err(_) => break, // the monitor stopped
                    },
                    () = tokio::time::sleep_until(next_beat) => {
                        update(Reason::Heartbeat, &monitor.current())
                    }
                    _ = shutdown.wait_for(|s| *s) => break,
                    () = tx.closed() => break,
                };
                next_beat = Instant::now() + heartbeat;
                if tx.send(Ok(message)).await.is_err() {
                    break;
                }
            }
            debug!("node watch ended");
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type WatchPortsStream = ReceiverStream<Result<pb::PortEvent, Status>>;

    async fn watch_ports(
        &self,
        _request: Request<pb::WatchPortsRequest>,
    ) -> Result<Response<Self::WatchPortsStream>, Status> {
        let Some(ports) = self.ports.clone() else {
            return Err(Status::unimplemented("this agent watches no ports"));
        };
        let (tx, rx) = mpsc::channel(64);
        let (initial, mut changes) = ports.subscribe();
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            for s in &initial {
                if *shutdown.borrow() || tx.send(Ok(port_event(s, true))).await.is_err() {
                    return;
                }
            }
            loop {
                let events = tokio::select! {
                    r = changes.recv() => match r {
                        Ok(s) => vec![port_event(&s, false)],
                        // Changes were dropped for this slow reader: the
                        // whole state again, so nothing stays wrong.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => ports
                            .current()
                            .iter()
                            .map(|s| port_event(s, false))
                            .collect(),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = shutdown.wait_for(|s| *s) => break,
                    () = tx.closed() => break,
                };
                for e in events {
                    if tx.send(Ok(e)).await.is_err() {
                        return;
                    }
                }
            }
            debug!("port watch ended");
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
