//! `solyx serve`: the controller's runtime.
//!
//! From a topology file (read by [`crate::topology`]) it starts, on one
//! Tokio runtime:
//!
//! 1. one [`DeviceSession`] per device with an address; each time the
//!    session becomes primary, a bring-up step pushes the device's
//!    pipeline (P4Info from `<p4-dir>/<pipeline>/<pipeline>.p4info.txtpb`;
//!    skipped when the device already runs it) and reconciles everything
//!    the device should hold ([`program::desired`]): read, diff, write only
//!    the difference;
//! 2. link [`Discovery`] over the fabric devices;
//! 3. the INT [`Collector`], with the topology's switch IDs mapped to
//!    device IDs;
//! 4. the control loop ([`control`]): routes from [`crate::routing`] over
//!    the topology, failover on a link down or a lost device, a balancing
//!    round every telemetry period;
//! 5. when a [`StateStore`] is given, the live network published into it
//!    for the REST API, and intents read back from it.
//!
//! `docs/control-loop.md` describes the loop and what it measures.

pub mod control;
pub mod program;
mod publish;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use solyx_p4runtime::P4InfoIndex;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn, Instrument};

use crate::discovery::{port_events, Discovery, DiscoveryConfig};
use crate::linkstate::{self, LinkEvent, LinkKey, LinkView, PortId};
use crate::metrics::Metrics;
use crate::p4rt::{DeviceSession, Mastership, RpcMetrics, SessionConfig};
use crate::routing::RoutingConfig;
use crate::state::StateStore;
use crate::telemetry::{Collector, CollectorConfig, TelemetryStore};
use crate::topology::{Role, Topology};
use control::{lock, Managed, Network, Programmed, RerouteRecord, Shared};

/// How `serve` runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The topology file.
    pub topology: PathBuf,
    /// Where the pipelines' P4Info files are (`<dir>/<pipeline>/<pipeline>.p4info.txtpb`).
    pub p4_dir: PathBuf,
    /// This controller's election ID.
    pub election_id: u128,
    /// The INT collector.
    pub collector: CollectorConfig,
    /// Probe period; default: the topology's `probe_interval`.
    pub probe_interval: Option<Duration>,
    /// Ports probed on every fabric device besides those of declared links.
    pub probe_ports: Vec<PortId>,
    /// How often telemetry feeds a balancing round. Default 1 s.
    pub telemetry_period: Duration,
    /// How often the devices' per-port counters are read into the store
    /// (with a store only). Default 1 s.
    pub port_counter_period: Duration,
    /// Routing settings (K, hysteresis, hold time, step).
    pub routing: RoutingConfig,
    /// Metrics the loop records (reroutes and their duration).
    pub metrics: Arc<Metrics>,
    /// Where the live network is published for the API (none: not
    /// published).
    pub store: Option<Arc<StateStore>>,
    /// The orchestrator's view of the network, refreshed from the live
    /// link state every telemetry period (none: no orchestrator).
    pub network_feed: Option<crate::workloads::NetworkFeed>,
    /// TLS (or mutual TLS) towards every device with a TCP address; plain
    /// when `None`.
    pub device_tls: Option<crate::p4rt::ClientTls>,
}

impl ServeConfig {
    /// Defaults for everything but the topology file.
    #[must_use]
    pub fn new(topology: impl Into<PathBuf>) -> Self {
        Self {
            topology: topology.into(),
            p4_dir: PathBuf::from("p4"),
            election_id: 1,
            collector: CollectorConfig::default(),
            probe_interval: None,
            probe_ports: Vec::new(),
            telemetry_period: Duration::from_secs(1),
            port_counter_period: Duration::from_secs(1),
            routing: RoutingConfig::default(),
            metrics: Arc::new(Metrics::new()),
            store: None,
            network_feed: None,
            device_tls: None,
        }
    }
}

/// The running controller.
pub struct Controller {
    shared: Arc<Shared>,
    discovery: Arc<Discovery>,
    collector: Arc<Collector>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn p4info_path(dir: &Path, pipeline: &str) -> PathBuf {
    dir.join(pipeline).join(format!("{pipeline}.p4info.txtpb"))
}

fn load_p4info(path: &Path) -> Result<Arc<P4InfoIndex>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let index =
        P4InfoIndex::from_text(&text).with_context(|| format!("P4Info {}", path.display()))?;
    Ok(Arc::new(index))
}

/// What bring-up tells the loop.
#[derive(Debug, Clone, Copy)]
enum DeviceEvent {
    /// Primary and programmed (position in `Shared::devices`).
    Ready(usize),
    /// No longer primary after having been.
    Lost(usize),
}

impl Controller {
    /// Reads the topology and starts everything.
    ///
    /// # Errors
    ///
    /// An unreadable or invalid topology file (each problem with the file,
    /// line and field), an unreadable P4Info file, a bad device address, or
    /// a collector address that cannot be bound.
    pub async fn start(config: ServeConfig) -> Result<Self> {
        let topo = Topology::load(&config.topology)?;
        info!(name = %topo.name, devices = topo.devices().count(), "topology loaded");
        let probe_interval = config.probe_interval.unwrap_or(topo.probe_interval);
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();

        let mut pipelines: BTreeMap<String, Arc<P4InfoIndex>> = BTreeMap::new();
        let mut devices = Vec::new();
        let mut fabric = Vec::new();
        let mut watched = Vec::new();
        for (ix, device) in topo.devices() {
            let Some(address) = device.address.clone() else {
                warn!(device = %device.name, "no address in the topology; device left unmanaged");
                continue;
            };
            let index = match pipelines.get(&device.pipeline) {
                Some(ix) => ix.clone(),
                None => {
                    let path = p4info_path(&config.p4_dir, &device.pipeline);
                    let ix = load_p4info(&path).with_context(|| {
                        format!("device {}: pipeline {}", device.name, device.pipeline)
                    })?;
                    pipelines.insert(device.pipeline.clone(), ix.clone());
                    ix
                }
            };
            let mut session_config =
                SessionConfig::new(address, device.device_id, config.election_id);
            if !session_config.addr.starts_with("unix:") {
                session_config.tls.clone_from(&config.device_tls);
            }
            session_config.metrics = Some(RpcMetrics {
                metrics: config.metrics.clone(),
                device: device.name.clone(),
            });
            let agent = port_events::WatchedDevice {
                name: device.name.clone(),
                device_id: device.device_id,
                addr: session_config.addr.clone(),
                tls: session_config.tls.clone(),
            };
            let session = DeviceSession::start(session_config)
                .with_context(|| format!("device {}", device.name))?;
            if device.role == Role::Fabric {
                fabric.push(session.clone());
                watched.push(agent);
            }
            let device_config = match topo.device_config(&device.pipeline) {
                Some(c) => {
                    let (file, bytes) = (c.path.display(), c.bytes.len());
                    info!(device = %device.name, %file, bytes, "device config");
                    c.bytes.clone()
                }
                None => Arc::from(Vec::new()),
            };
            devices.push(Managed {
                ix,
                name: device.name.clone(),
                role: device.role,
                session,
                index,
                device_config,
            });
        }

        // Discovery probes the fabric: ports of declared fabric links and
        // the extra probe ports.
        let mut ports: BTreeMap<u64, BTreeSet<PortId>> = BTreeMap::new();
        for s in &fabric {
            ports
                .entry(s.device_id())
                .or_default()
                .extend(config.probe_ports.iter().copied());
        }
        let mut declared = Vec::new();
        for (_, l) in topo.links() {
            let (Some(a), Some(b)) = (topo.device(l.src), topo.device(l.dst)) else {
                continue;
            };
            if a.role != Role::Fabric || b.role != Role::Fabric || !l.declared {
                continue;
            }
            let key = LinkKey {
                src_device: a.device_id,
                src_port: l.src_port,
                dst_device: b.device_id,
                dst_port: l.dst_port,
            };
            declared.push(key);
            if let Some(p) = ports.get_mut(&a.device_id) {
                p.insert(l.src_port);
            }
        }
        let discovery = Arc::new(Discovery::start(
            fabric,
            DiscoveryConfig {
                interval: probe_interval,
                ports,
                declared,
                ..DiscoveryConfig::default()
            },
        ));
        // Port-status events take links down before the probes notice.
        let port_metrics = port_events::PortEventMetrics::new(config.metrics.registry());
        for device in watched {
            let span = tracing::info_span!("port_events", device_id = device.device_id);
            tasks.push(tokio::spawn(
                port_events::watch(
                    device,
                    discovery.clone(),
                    port_metrics.clone(),
                    shutdown.subscribe(),
                )
                .instrument(span),
            ));
        }

        let mut store =
            TelemetryStore::new(config.collector.store.clone(), std::time::Instant::now());
        for (_, d) in topo.devices() {
            store.map_switch(d.switch_id, d.device_id);
        }
        let collector = Collector::bind_with_store(config.collector.clone(), store)
            .await
            .context("starting the INT collector")?;
        let collector = Arc::new(collector);

        // A host's selector expands weights into slots: the weights of a
        // group must sum to at most its maximum group size.
        let mut routing = config.routing.clone();
        let limit = pipelines
            .values()
            .filter_map(|ix| ix.action_profiles.by_name("path_selector"))
            .filter_map(|p| u32::try_from(p.max_group_size).ok())
            .filter(|n| *n > 0)
            .min();
        if let Some(limit) = limit.filter(|l| *l < routing.total_weight) {
            routing.max_step = (routing.max_step * limit / routing.total_weight).max(1);
            routing.total_weight = limit;
            info!(
                total_weight = limit,
                max_step = routing.max_step,
                "group weights scaled to the host selector's size"
            );
        }
        let network = Network::new(topo, routing)?;
        let shared = Arc::new(Shared {
            net: Mutex::new(network),
            devices,
            metrics: config.metrics.clone(),
            programmed: Mutex::new(BTreeMap::new()),
            reroutes: Mutex::new(Vec::new()),
        });
        if let Some(store) = &config.store {
            publish::devices(&shared, store);
            tasks.push(tokio::spawn(publish::port_counters(
                shared.clone(),
                store.clone(),
                config.port_counter_period.max(Duration::from_millis(10)),
                shutdown.subscribe(),
            )));
        }

        let (device_tx, device_rx) = mpsc::unbounded_channel();
        for (pos, m) in shared.devices.iter().enumerate() {
            let span =
                tracing::info_span!("device", name = %m.name, device_id = m.session.device_id());
            tasks.push(tokio::spawn(
                bring_up(
                    shared.clone(),
                    pos,
                    device_tx.clone(),
                    config.store.clone(),
                    shutdown.subscribe(),
                )
                .instrument(span),
            ));
        }
        tasks.push(tokio::spawn(run(
            shared.clone(),
            discovery.clone(),
            collector.clone(),
            device_rx,
            Settings {
                period: config.telemetry_period,
                grace: probe_interval * 30,
                store: config.store.clone(),
                network_feed: config.network_feed.clone(),
            },
            shutdown.subscribe(),
        )));
        Ok(Self {
            shared,
            discovery,
            collector,
            shutdown,
            tasks,
        })
    }

    /// Every link known to discovery or telemetry, with both views.
    #[must_use]
    pub fn links(&self) -> Vec<LinkView> {
        linkstate::join(&self.discovery.links(), &self.collector.snapshot())
    }

    /// Link discovery.
    #[must_use]
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The INT collector.
    #[must_use]
    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    /// The device sessions, in topology order (devices without an
    /// address left out).
    #[must_use]
    pub fn sessions(&self) -> Vec<DeviceSession> {
        self.shared
            .devices
            .iter()
            .map(|m| m.session.clone())
            .collect()
    }

    /// The topology with its live link state, and the routes.
    pub fn network(&self) -> std::sync::MutexGuard<'_, Network> {
        lock(&self.shared.net)
    }

    /// The last reconciliation of every device, by name.
    #[must_use]
    pub fn programmed(&self) -> BTreeMap<String, Programmed> {
        lock(&self.shared.programmed).clone()
    }

    /// The reroutes so far, oldest first.
    #[must_use]
    pub fn reroutes(&self) -> Vec<RerouteRecord> {
        lock(&self.shared.reroutes).clone()
    }

    /// Link ups and downs from now on.
    #[must_use]
    pub fn link_events(&self) -> broadcast::Receiver<LinkEvent> {
        self.discovery.events()
    }

    /// Stops every task and closes the sessions.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        for m in &self.shared.devices {
            m.session.close();
        }
        if let Ok(collector) = Arc::try_unwrap(self.collector) {
            collector.shutdown().await;
        }
        if let Ok(discovery) = Arc::try_unwrap(self.discovery) {
            discovery.shutdown().await;
        }
    }
}

/// Brings the device up each time this controller becomes its primary:
/// pipeline, then everything it should hold (reconciled).
async fn bring_up(
    shared: Arc<Shared>,
    pos: usize,
    events: mpsc::UnboundedSender<DeviceEvent>,
    store: Option<Arc<StateStore>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let forever = Duration::from_secs(24 * 3600);
    let m = &shared.devices[pos];
    let mut was_up = false;
    loop {
        let primary = tokio::select! {
            r = m.session.wait_for(forever, "primary", |m| *m == Mastership::Primary) => r.is_ok(),
            _ = shutdown.changed() => return,
        };
        if !primary {
            continue;
        }
        let configured = async {
            let outcome = m
                .session
                .set_pipeline(m.index.p4info().clone(), m.device_config.to_vec(), false)
                .await?;
            info!(?outcome, "pipeline");
            if let Some(store) = &store {
                let pipeline = m.index.p4info().pkg_info.as_ref().map(|p| p.name.clone());
                let _ = store.set_device_pipeline(&m.name, pipeline);
            }
            let report = shared.reconcile(m).await?;
            anyhow::Ok(report)
        };
        match configured.await {
            Ok(report) => info!(
                inserted = report.inserted,
                modified = report.modified,
                deleted = report.deleted,
                failed = report.failed.len(),
                "device configured"
            ),
            Err(e) => {
                warn!("bring-up failed, retrying: {e:#}");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        }
        if was_up {
            let _ = events.send(DeviceEvent::Ready(pos));
        }
        was_up = true;
        tokio::select! {
            _ = m.session.wait_for(forever, "loss of primary", |m| *m != Mastership::Primary) => {}
            _ = shutdown.changed() => return,
        }
        warn!("no longer primary; waiting to be elected again");
        let _ = events.send(DeviceEvent::Lost(pos));
    }
}

/// How the loop runs.
struct Settings {
    /// Telemetry period.
    period: Duration,
    /// A declared fabric link discovery has not seen after this long is
    /// treated as down.
    grace: Duration,
    /// Where the live network is published.
    store: Option<Arc<StateStore>>,
    /// The orchestrator's network view.
    network_feed: Option<crate::workloads::NetworkFeed>,
}

/// Hands link events, device events and, every period, telemetry to the
/// routing state.
async fn run(
    shared: Arc<Shared>,
    discovery: Arc<Discovery>,
    collector: Arc<Collector>,
    mut devices: mpsc::UnboundedReceiver<DeviceEvent>,
    settings: Settings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut events = discovery.events();
    let started = Instant::now();
    let mut tick = tokio::time::interval(settings.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Ok(LinkEvent::Down(key)) => shared.link_down(key).await,
                Ok(LinkEvent::Up(key)) => shared.link_up(key).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "link events missed; taking link state from discovery");
                    for d in discovery.links() {
                        match d.status {
                            linkstate::LinkStatus::Down => shared.link_down(d.link).await,
                            linkstate::LinkStatus::Up => shared.link_up(d.link).await,
                            linkstate::LinkStatus::DeclaredNotSeen => {}
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            d = devices.recv() => match d {
                Some(DeviceEvent::Lost(pos)) => shared.device_lost(shared.devices[pos].ix).await,
                Some(DeviceEvent::Ready(pos)) => {
                    let seen: Vec<_> = discovery.links().iter().map(|d| (d.link, d.status)).collect();
                    shared.device_back(shared.devices[pos].ix, &seen).await;
                }
                None => return,
            },
            _ = tick.tick() => {
                let taken = Instant::now();
                let snapshot = collector.snapshot();
                if started.elapsed() > settings.grace {
                    // Declared links no probe ever crossed do not carry
                    // paths.
                    for d in discovery.links() {
                        if d.status == linkstate::LinkStatus::DeclaredNotSeen {
                            shared.link_down(d.link).await;
                        }
                    }
                }
                shared.metrics.observe_reports(&snapshot.received);
                shared.observe_sessions();
                shared.telemetry_round(&snapshot, taken).await;
                if let Some(store) = &settings.store {
                    publish::all(&shared, store, &discovery.links(), &snapshot);
                    publish::intents(&shared, store).await;
                }
                if let Some(feed) = &settings.network_feed {
                    // Placement reads the same link state the routes use.
                    let topo = control::lock(&shared.net).topo.clone();
                    feed.update_topology(&topo);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_balance_every_second() {
        let c = ServeConfig::new("t.yaml");
        assert_eq!(c.telemetry_period, Duration::from_secs(1));
        assert!(c.store.is_none());
    }
}
