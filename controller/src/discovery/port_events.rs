//! Port-status events from the fabric devices' agents.
//!
//! For each fabric device, [`watch`] opens the agent's `WatchPorts` stream
//! (`solyx.node.v1.NodeResources`, served at the device's P4Runtime
//! address) and hands every port reported down to
//! [`Discovery::port_down`], which takes the links on it down at once, so
//! failover starts as soon as the device knows instead of after three
//! missed probes. A port that comes back is left to the probes (and their
//! hold time). An agent without the rpc (UNIMPLEMENTED) is left to the
//! probes alone; a stream that breaks (the agent restarts) is opened again
//! after a growing delay.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Discovery;
use crate::linkstate::{DeviceId, PortId};
use crate::node::{NodeClient, NodeClientError};
use crate::p4rt::ClientTls;

/// First delay before opening a broken stream again; it doubles up to
/// [`MAX_BACKOFF`] and starts over once a stream delivered its state.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `solyx_port_events_total{device, state}`: port-status events received
/// from the agents, `state` `up` or `down`, initial states excluded.
#[derive(Clone, Debug)]
pub struct PortEventMetrics {
    events: IntCounterVec,
}

impl PortEventMetrics {
    /// The counter, registered in `registry` when it is not there yet.
    #[must_use]
    pub fn new(registry: &Registry) -> Self {
        let events = IntCounterVec::new(
            Opts::new(
                "solyx_port_events_total",
                "Port-status events reported by the fabric agents, by device and new state.",
            ),
            &["device", "state"],
        )
        .expect("valid counter definition");
        // Registered already (a second controller on the same metrics):
        // this copy still counts, unexported.
        let _ = registry.register(Box::new(events.clone()));
        Self { events }
    }
}

/// One fabric device to watch.
#[derive(Clone, Debug)]
pub struct WatchedDevice {
    /// Its name, for logs and metrics.
    pub name: String,
    /// Its P4Runtime device ID (the discovery key).
    pub device_id: DeviceId,
    /// The agent's address (`host:port` or `unix:/path`).
    pub addr: String,
    /// TLS towards it, as for P4Runtime.
    pub tls: Option<ClientTls>,
}

/// Follows `device`'s port-status events until `shutdown`, taking links
/// down through `discovery`.
pub async fn watch(
    device: WatchedDevice,
    discovery: Arc<Discovery>,
    metrics: PortEventMetrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let ended = tokio::select! {
            r = follow(&device, &discovery, &metrics) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match ended {
            Followed::Unimplemented => {
                info!(
                    device = %device.name,
                    "the agent serves no port-status events; probes alone find failed links"
                );
                return;
            }
            Followed::Delivered(e) => {
                backoff = MIN_BACKOFF;
                debug!(device = %device.name, error = %e, "port-status stream ended");
            }
            Followed::Failed(e) => {
                debug!(device = %device.name, error = %e, "no port-status stream");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Followed {
    /// The agent does not serve `WatchPorts`.
    Unimplemented,
    /// The stream delivered the ports' state, then ended.
    Delivered(String),
    /// No stream, or one that ended before its state.
    Failed(String),
}

async fn follow(
    device: &WatchedDevice,
    discovery: &Discovery,
    metrics: &PortEventMetrics,
) -> Followed {
    let opened = async {
        let mut client = NodeClient::connect_with(&device.addr, device.tls.as_ref()).await?;
        client.watch_ports().await
    };
    let mut stream = match opened.await {
        Ok(s) => s,
        Err(NodeClientError::Rpc { status, .. }) if status.code() == tonic::Code::Unimplemented => {
            return Followed::Unimplemented;
        }
        Err(e) => return Followed::Failed(e.to_string()),
    };
    let mut delivered = false;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) if delivered => return Followed::Delivered(e.to_string()),
            Err(e) => return Followed::Failed(e.to_string()),
        };
        if !delivered {
            delivered = true;
            info!(device = %device.name, "following the agent's port-status events");
        }
        let port: PortId = event.port;
        if !event.initial {
            let state = if event.oper_up { "up" } else { "down" };
            metrics
                .events
                .with_label_values(&[device.name.as_str(), state])
                .inc();
        }
        if event.oper_up {
            debug!(device = %device.name, port, interface = %event.interface, "port up");
            continue;
        }
        // Down, as a change or in the state sent when the stream opens
        // (it may have gone down while the stream was broken).
        let links = discovery.port_down(device.device_id, port);
        if !event.initial || links > 0 {
            warn!(
                device = %device.name,
                port,
                interface = %event.interface,
                links,
                "port down reported by the device"
            );
        }
    }
    if delivered {
        Followed::Delivered("the agent closed the stream".into())
    } else {
        Followed::Failed("the agent closed the stream before the ports' state".into())
    }
}
