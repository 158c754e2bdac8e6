//! Link discovery: probes sent as packet-outs on every port of every
//! fabric device, punted back by the neighbour's ACL as packet-ins, turned
//! into directed links that go down when probes stop.
//!
//! Every `interval` (100 ms by default) the prober sends one probe
//! ([`frame`]: LLDP carrying the device ID and the port) out of each known
//! port of each device whose session is primary. A device that receives
//! it on port P punts it (the ACL rule of [`punt_rule`]: EtherType 0x88cc
//! → `punt_to_cpu`) and the packet-in names P in its `ingress_port`
//! metadata, so the controller learns the link
//! `sender:port → receiver:P`. A link is down after `missed_limit` (3)
//! probe intervals without a probe, counted in probes actually sent out of
//! its source port (a controller that could not send for a while does not
//! take its own links down); a link that went down is up again after
//! `up_hold` (1 s) of probes without a miss, so a flapping cable does not
//! move traffic back and forth. Declared links never seen stay
//! [`LinkStatus::DeclaredNotSeen`].
//!
//! Probes find every failure, but only after `missed_limit` intervals. A
//! device whose agent serves port-status events (`WatchPorts`,
//! [`port_events`]) reports a port that goes down at once, and the links
//! on it go down without waiting for the probes; probes still find the
//! failures that leave the port up, and bring links back.
//!
//! Ports to probe are the configured ones (the ports of declared links,
//! plus any given explicitly) and every port a probe arrived on.

pub mod frame;
pub mod port_events;
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::{EntityError, P4InfoIndex};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn, Instrument};

pub use table::LinkTable;

use crate::linkstate::{DeviceId, DiscoveredLink, LinkEvent, LinkKey, LinkStatus, PortId};
use crate::p4rt::{ClientError, DeviceSession};
use frame::ProbeOrigin;

/// Default probe period.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// Default number of missed probes that take a link down.
pub const DEFAULT_MISSED_LIMIT: u32 = 3;
/// Priority of the ACL rule that punts probes: above any rule a user is
/// likely to write, so that a broad drop rule does not hide the links.
pub const PUNT_PRIORITY: i32 = 1_000_000;

/// What discovery probes and what it expects.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Probe period. Default 100 ms.
    pub interval: Duration,
    /// Probe intervals without a probe before a link is down. Default 3.
    pub missed_limit: u32,
    /// Ports to probe, per device; ports probes arrive on are added.
    pub ports: BTreeMap<DeviceId, BTreeSet<PortId>>,
    /// Links the topology declares (both directions of each).
    pub declared: Vec<LinkKey>,
    /// A link that went down is reported up again only after probes
    /// crossed it for this long without a miss. Default 1 s.
    pub up_hold: Duration,
}

/// Default hold time of a link that comes back.
pub const DEFAULT_UP_HOLD: Duration = Duration::from_secs(1);

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            missed_limit: DEFAULT_MISSED_LIMIT,
            ports: BTreeMap::new(),
            declared: Vec::new(),
            up_hold: DEFAULT_UP_HOLD,
        }
    }
}

/// The ACL entry that punts discovery probes to the controller.
///
/// # Errors
///
/// The P4Info has no `acl` table with an `eth_type` ternary field and a
/// `punt_to_cpu` action.
pub fn punt_rule(index: &P4InfoIndex) -> Result<p4::Entity, EntityError> {
    let punt = index.action("punt_to_cpu")?.build()?;
    index
        .table_entry("acl")?
        .ternary("eth_type", frame::ETHERTYPE_LLDP, 0xffffu16)?
        .priority(PUNT_PRIORITY)
        .action(punt)?
        .build()
}

/// Installs [`punt_rule`] on `session`'s device (its pipeline must be
/// set); an identical rule already there is fine.
///
/// # Errors
///
/// No pipeline, not primary, or the device refused the rule.
pub async fn install_punt_rule(session: &DeviceSession) -> Result<(), ClientError> {
    let index = session.index().ok_or(ClientError::NoPipeline {
        device_id: session.device_id(),
    })?;
    let rule = punt_rule(&index)?;
    let results = session.insert(vec![rule.clone()]).await?;
    for r in results {
        match r {
            Ok(()) => {}
            Err(e) if e.code == tonic::Code::AlreadyExists => {
                // Someone (an earlier run) put it there: make it ours.
                for r in session.modify(vec![rule.clone()]).await? {
                    r.map_err(|e| refused(session, &e))?;
                }
            }
            Err(e) => return Err(refused(session, &e)),
        }
    }
    Ok(())
}

fn refused(session: &DeviceSession, e: &crate::p4rt::UpdateError) -> ClientError {
    ClientError::Desired {
        device_id: session.device_id(),
        problem: format!("the discovery punt rule was refused: {e}"),
    }
}

/// Discovery's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiscoveryCounters {
    /// Probes sent.
    pub probes_sent: u64,
    /// Probe packet-outs that failed (device not connected, not primary).
    pub send_failures: u64,
    /// Probes received back as packet-ins.
    pub probes_received: u64,
    /// Packet-ins that were not Solyx probes (or were malformed).
    pub not_probes: u64,
    /// Probes from a device this controller does not manage.
    pub unknown_sender: u64,
    /// Packet-ins lost because the reader fell behind.
    pub lagged: u64,
}

#[derive(Default)]
struct Counters {
    probes_sent: AtomicU64,
    send_failures: AtomicU64,
    probes_received: AtomicU64,
    not_probes: AtomicU64,
    unknown_sender: AtomicU64,
    lagged: AtomicU64,
}

struct Shared {
    table: Mutex<LinkTable>,
    ports: Mutex<BTreeMap<DeviceId, BTreeSet<PortId>>>,
    events: broadcast::Sender<LinkEvent>,
    counters: Counters,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, LinkTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ports(&self) -> MutexGuard<'_, BTreeMap<DeviceId, BTreeSet<PortId>>> {
        self.ports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, event: LinkEvent) {
        match event {
            LinkEvent::Up(k) => info!(link = %k, "link up"),
            LinkEvent::Down(k) => warn!(link = %k, "link down: probes stopped"),
        }
        self.send(event);
    }

    fn send(&self, event: LinkEvent) {
        // No subscriber is fine: the table holds the state.
        let _ = self.events.send(event);
    }
}

/// Running link discovery. Dropping it stops the tasks.
pub struct Discovery {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Discovery {
    /// Starts probing through `sessions` (one per fabric device) and
    /// listening to their packet-ins. The devices must hold the punt rule
    /// ([`install_punt_rule`]) for probes to come back.
    #[must_use]
    pub fn start(sessions: Vec<DeviceSession>, config: DiscoveryConfig) -> Self {
        let mut ports = config.ports.clone();
        for s in &sessions {
            ports.entry(s.device_id()).or_default();
        }
        let shared = Arc::new(Shared {
            table: Mutex::new(
                LinkTable::new(
                    config.interval,
                    config.missed_limit,
                    config.declared.iter().copied(),
                )
                .with_up_hold(config.up_hold),
            ),
            ports: Mutex::new(ports),
            events: broadcast::channel(1024).0,
            counters: Counters::default(),
        });
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();
        for s in &sessions {
            let span = tracing::info_span!("discovery", device_id = s.device_id());
            tasks.push(tokio::spawn(
                listen(s.clone(), shared.clone(), shutdown.subscribe()).instrument(span),
            ));
        }
        tasks.push(tokio::spawn(probe(
            sessions,
            shared.clone(),
            config,
            shutdown.subscribe(),
        )));
        Self {
            shared,
            shutdown,
            tasks,
        }
    }

    /// Every known link with its status, in key order.
    #[must_use]
    pub fn links(&self) -> Vec<DiscoveredLink> {
        self.shared.table().snapshot(Instant::now())
    }

    /// Link ups and downs from now on.
    #[must_use]
    pub fn events(&self) -> broadcast::Receiver<LinkEvent> {
        self.shared.events.subscribe()
    }

    /// The device `device` reported its port `port` down (a port-status
    /// event, [`port_events`]): the links with an end there go down now,
    /// through the same events as a probe timeout. Coming back is left to
    /// the probes and the hold time. Returns how many links went down.
    pub fn port_down(&self, device: DeviceId, port: PortId) -> usize {
        let events = self.shared.table().port_down(device, port);
        for e in &events {
            if let LinkEvent::Down(k) = e {
                warn!(link = %k, device_id = device, port, "link down: the device reported the port down");
            }
            self.shared.send(*e);
        }
        events.len()
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> DiscoveryCounters {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DiscoveryCounters {
            probes_sent: get(&c.probes_sent),
            send_failures: get(&c.send_failures),
            probes_received: get(&c.probes_received),
            not_probes: get(&c.not_probes),
            unknown_sender: get(&c.unknown_sender),
            lagged: get(&c.lagged),
        }
    }

    /// Stops probing and waits for the tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// The port a packet-in arrived on, from its `ingress_port` metadata.
fn ingress_port(index: &P4InfoIndex, packet: &p4::PacketIn) -> Option<PortId> {
    index
        .decode_packet_metadata("packet_in", &packet.metadata)
        .into_iter()
        .find(|(name, _)| name == "ingress_port")
        .and_then(|(_, v)| {
            if v.len() > 4 {
                return None;
            }
            Some(v.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        })
}

/// Turns one device's packet-ins into link sightings.
async fn listen(session: DeviceSession, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut packets = session.packet_ins();
    let device = session.device_id();
    loop {
        let packet = tokio::select! {
            p = packets.recv() => p,
            _ = shutdown.changed() => return,
        };
        let packet = match packet {
            Ok(p) => p,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                shared.counters.lagged.fetch_add(n, Ordering::Relaxed);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let origin = match frame::decode(&packet.payload) {
            Ok(o) => o,
            Err(e) => {
                shared.counters.not_probes.fetch_add(1, Ordering::Relaxed);
                debug!(
                    reason = e.reason(),
                    "packet-in is not a discovery probe: {e}"
                );
                continue;
            }
        };
        let Some(port) = session.index().and_then(|ix| ingress_port(&ix, &packet)) else {
            shared.counters.not_probes.fetch_add(1, Ordering::Relaxed);
            debug!("probe packet-in without an ingress_port");
            continue;
        };
        if !shared.ports().contains_key(&origin.device) {
            shared
                .counters
                .unknown_sender
                .fetch_add(1, Ordering::Relaxed);
            debug!(
                sender = origin.device,
                "probe from a device not managed here"
            );
            continue;
        }
        shared
            .counters
            .probes_received
            .fetch_add(1, Ordering::Relaxed);
        shared.ports().entry(device).or_default().insert(port);
        let link = LinkKey {
            src_device: origin.device,
            src_port: origin.port,
            dst_device: device,
            dst_port: port,
        };
        let event = shared.table().seen(link, Instant::now());
        if let Some(e) = event {
            shared.publish(e);
        }
    }
}

/// Every interval: takes silent links down, then sends a probe out of
/// every known port of every primary device.
async fn probe(
    sessions: Vec<DeviceSession>,
    shared: Arc<Shared>,
    config: DiscoveryConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Receivers drop probes whose TTL ran out; ours never rely on it.
    let ttl = u16::try_from((config.interval * config.missed_limit.max(1)).as_secs())
        .unwrap_or(u16::MAX)
        .max(1);
    let started = Instant::now();
    let mut reported_unseen = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = Instant::now();
        let events = shared.table().tick(now);
        for e in events {
            shared.publish(e);
        }
        if !reported_unseen && now.duration_since(started) > shared.table().down_after() * 2 {
            reported_unseen = true;
            for d in shared.table().snapshot(now) {
                if d.status == LinkStatus::DeclaredNotSeen {
                    warn!(link = %d.link, "declared, not seen: no probe crossed this link");
                }
            }
        }
        for s in &sessions {
            let Some(index) = s.index().filter(|_| s.is_primary()) else {
                continue;
            };
            let ports: Vec<PortId> = shared
                .ports()
                .get(&s.device_id())
                .map(|p| p.iter().copied().collect())
                .unwrap_or_default();
            for port in ports {
                let origin = ProbeOrigin {
                    device: s.device_id(),
                    port,
                };
                let metadata = index.packet_metadata("packet_out", &[("egress_port", &port)]);
                let sent = match metadata {
                    Ok(m) => s.packet_out(frame::encode(origin, ttl), m).await,
                    Err(e) => Err(e.into()),
                };
                match sent {
                    Ok(()) => {
                        shared.table().sent(s.device_id(), port);
                        shared.counters.probes_sent.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        debug!(device_id = s.device_id(), port, error = %e, "probe not sent");
                        shared
                            .counters
                            .send_failures
                            .fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }
    }
}
