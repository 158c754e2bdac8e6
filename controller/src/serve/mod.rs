//! `solyx serve`: the controller's runtime.
//!
//! From a topology file it starts, on one Tokio runtime:
//!
//! 1. one [`DeviceSession`] per device; each time the session becomes
//!    primary, a bring-up step pushes the device's pipeline (P4Info from
//!    `<p4-dir>/<pipeline>/<pipeline>.p4info.txtpb`; skipped when the
//!    device already runs it), sets its INT switch ID and installs the
//!    discovery punt rule;
//! 2. link [`Discovery`] over the fabric devices;
//! 3. the INT [`Collector`], with the topology's switch IDs mapped to
//!    device IDs;
//! 4. the link-state view ([`Controller::links`]) joining both, and a
//!    task that hands link events to path computation.
//!
//! Path computation and the REST API plug in at the two places marked
//! `HOOK` below: `on_link_event` (a link went up or down) and
//! `on_telemetry` (every second, with fresh telemetry).

pub mod topology_file;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use solyx_p4runtime::P4InfoIndex;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn, Instrument};

use crate::discovery::{self, Discovery, DiscoveryConfig};
use crate::linkstate::{self, LinkEvent, LinkView, PortId};
use crate::p4rt::{DeviceSession, Mastership, SessionConfig};
use crate::telemetry::{Collector, CollectorConfig, TelemetrySnapshot, TelemetryStore};
use topology_file::{Device, Role, Topology};

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
    /// Probe period; default: the topology's `probe_interval`, else 100 ms.
    pub probe_interval: Option<Duration>,
    /// Ports probed on every fabric device besides those of declared links.
    pub probe_ports: Vec<PortId>,
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
        }
    }
}

/// The running controller.
pub struct Controller {
    topology: Topology,
    sessions: Vec<DeviceSession>,
    discovery: Discovery,
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

impl Controller {
    /// Reads the topology and starts everything.
    ///
    /// # Errors
    ///
    /// An unreadable topology or P4Info file, a bad device address, or a
    /// collector address that cannot be bound.
    pub async fn start(config: ServeConfig) -> Result<Self> {
        let topology = Topology::load(&config.topology)?;
        info!(name = %topology.name, devices = topology.devices.len(), "topology loaded");
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();

        let mut pipelines: BTreeMap<String, Arc<P4InfoIndex>> = BTreeMap::new();
        let mut sessions = Vec::new();
        let mut fabric = Vec::new();
        for device in &topology.devices {
            let path = p4info_path(&config.p4_dir, &device.pipeline);
            let index = match pipelines.get(&device.pipeline) {
                Some(ix) => ix.clone(),
                None => match load_p4info(&path) {
                    Ok(ix) => {
                        pipelines.insert(device.pipeline.clone(), ix.clone());
                        ix
                    }
                    Err(e) => {
                        // TODO-completeness: the solyx_host pipeline has no
                        // P4Info yet; its devices are left alone until it does.
                        error!(device = %device.name, "{e:#}; device left unmanaged");
                        continue;
                    }
                },
            };
            let session = DeviceSession::start(SessionConfig::new(
                device.address.clone(),
                device.device_id,
                config.election_id,
            ))
            .with_context(|| format!("device {}", device.name))?;
            let span =
                tracing::info_span!("device", name = %device.name, device_id = device.device_id);
            tasks.push(tokio::spawn(
                bring_up(session.clone(), device.clone(), index, shutdown.subscribe())
                    .instrument(span),
            ));
            if device.role == Role::Fabric {
                fabric.push(session.clone());
            }
            sessions.push(session);
        }

        let mut ports: BTreeMap<u64, BTreeSet<PortId>> = BTreeMap::new();
        for s in &fabric {
            ports
                .entry(s.device_id())
                .or_default()
                .extend(config.probe_ports.iter().copied());
        }
        for l in &topology.links {
            if let Some(p) = ports.get_mut(&l.src_device) {
                p.insert(l.src_port);
            }
        }
        let discovery = Discovery::start(
            fabric,
            DiscoveryConfig {
                interval: config
                    .probe_interval
                    .or(topology.probe_interval)
                    .unwrap_or(discovery::DEFAULT_INTERVAL),
                ports,
                declared: topology.links.clone(),
                ..DiscoveryConfig::default()
            },
        );

        let mut store =
            TelemetryStore::new(config.collector.store.clone(), std::time::Instant::now());
        for d in &topology.devices {
            store.map_switch(d.switch_id, d.device_id);
        }
        let collector = Collector::bind_with_store(config.collector.clone(), store)
            .await
            .context("starting the INT collector")?;
        let collector = Arc::new(collector);

        tasks.push(tokio::spawn(route(
            discovery.events(),
            collector.clone(),
            shutdown.subscribe(),
        )));
        let controller = Self {
            topology,
            sessions,
            discovery,
            collector,
            shutdown,
            tasks,
        };
        Ok(controller)
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

    /// The device sessions, in topology order (devices without a pipeline
    /// file left out).
    #[must_use]
    pub fn sessions(&self) -> &[DeviceSession] {
        &self.sessions
    }

    /// The topology as read.
    #[must_use]
    pub fn topology(&self) -> &Topology {
        &self.topology
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
        for s in &self.sessions {
            s.close();
        }
        if let Ok(collector) = Arc::try_unwrap(self.collector) {
            collector.shutdown().await;
        }
        self.discovery.shutdown().await;
    }
}

/// Brings the device up each time this controller becomes its primary:
/// pipeline, INT switch ID, discovery punt rule.
async fn bring_up(
    session: DeviceSession,
    device: Device,
    index: Arc<P4InfoIndex>,
    mut shutdown: watch::Receiver<bool>,
) {
    let forever = Duration::from_secs(24 * 3600);
    loop {
        let primary = tokio::select! {
            r = session.wait_for(forever, "primary", |m| *m == Mastership::Primary) => r.is_ok(),
            _ = shutdown.changed() => return,
        };
        if !primary {
            continue;
        }
        match configure(&session, &device, &index).await {
            Ok(()) => info!("device configured"),
            Err(e) => {
                warn!("bring-up failed, retrying: {e:#}");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        }
        // HOOK(routing): reconcile the device's desired state (routes,
        // groups, paths) here, after every (re)election.
        tokio::select! {
            _ = session.wait_for(forever, "loss of primary", |m| *m != Mastership::Primary) => {}
            _ = shutdown.changed() => return,
        }
        warn!("no longer primary; waiting to be elected again");
    }
}

async fn configure(session: &DeviceSession, device: &Device, index: &P4InfoIndex) -> Result<()> {
    let outcome = session
        .set_pipeline(index.p4info().clone(), Vec::new(), false)
        .await?;
    info!(?outcome, pipeline = %device.pipeline, "pipeline");
    if device.role != Role::Fabric {
        return Ok(());
    }
    let set_id = index
        .action("int_set_switch_id")?
        .param("switch_id", device.switch_id)?
        .build()?;
    let default = index
        .table_entry("int_switch_config")?
        .as_default()
        .action(set_id)?
        .build()?;
    for r in session.modify(vec![default]).await? {
        r.context("setting the INT switch ID")?;
    }
    // TODO-robustness: the punt rule and the switch ID belong in the
    // device's desired state, reconciled after every election, so that a
    // device that lost its entries without a new election gets them back.
    discovery::install_punt_rule(session).await?;
    Ok(())
}

/// Hands link events and, every second, telemetry to path computation.
async fn route(
    mut events: broadcast::Receiver<LinkEvent>,
    collector: Arc<Collector>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tick.tick() => {
                on_telemetry(&collector.snapshot());
                continue;
            }
            _ = shutdown.changed() => return,
        };
        match event {
            Ok(e) => on_link_event(e),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "link events missed; routing recomputes from the table"
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// HOOK(routing): a link went up or down. Path computation recomputes
/// here: a link down is routed around at once.
fn on_link_event(event: LinkEvent) {
    // TODO-completeness: no path computation is wired in yet; the event is
    // only logged.
    info!(?event, "link event for routing");
}

/// HOOK(routing): fresh telemetry, every second, for draining congested
/// links gradually.
fn on_telemetry(snapshot: &TelemetrySnapshot) {
    // TODO-completeness: no traffic engineering is wired in yet; the
    // busiest link is only logged.
    let busiest = snapshot
        .links
        .iter()
        .filter_map(|l| l.queue_bytes.map(|q| (q.ewma, l.link)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((queue, link)) = busiest {
        tracing::debug!(%link, queue_bytes = queue, links = snapshot.links.len(), "telemetry");
    }
}
