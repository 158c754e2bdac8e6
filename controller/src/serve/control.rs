//! The control loop: link events, device loss and telemetry turned into
//! routes, weights and P4Runtime writes.
//!
//! Two speeds:
//! - a link down (or a lost device) is routed around at once:
//!   [`Routes::failover`], then one MODIFY batch of the changed
//!   `path_selector` groups per host, all hosts at the same time;
//! - every telemetry period, measured link state and per-group demand go
//!   into [`Routes::balance`], which moves weight gradually (hysteresis,
//!   hold time, step limit); the changed groups are written the same way.
//!
//! A link that comes back, or a topology change, recomputes the paths
//! ([`Routes::recompute`]), restores the weights that failover took away,
//! and reconciles every device (read, diff, write only the difference).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;
use tracing::{debug, info, warn};

use super::program;
use crate::linkstate::{DeviceId, LinkKey, LinkStatus};
use crate::metrics::Metrics;
use crate::p4rt::{DeviceSession, ReconcileReport};
use crate::routing::{Failure, LinkPath, Reason, Routes, RoutingConfig, WeightUpdate};
use crate::telemetry::TelemetrySnapshot;
use crate::topology::{Bandwidth, DeviceIx, Link, LinkId, LinkState, Role, Topology};

/// Capacity given to a link that discovery found and the file does not
/// declare.
const DISCOVERED_CAPACITY: Bandwidth = Bandwidth(1_000_000_000);

/// The network model: topology with live link state, and the routes.
#[derive(Debug)]
pub struct Network {
    /// Devices and links with their state.
    pub topo: Topology,
    /// Paths, labels and weights.
    pub routes: Routes,
    /// Weights of groups as they were before failover changed them, by
    /// path, to put back when the failed links return.
    saved: HashMap<(DeviceIx, DeviceIx), Vec<(LinkPath, u32)>>,
    by_id: HashMap<DeviceId, DeviceIx>,
    /// Last path counter reading per host: when, bytes per path ID.
    counters: HashMap<DeviceIx, (Instant, BTreeMap<u8, i64>)>,
}

impl Network {
    /// Routes over `topo` (links declared up).
    ///
    /// # Errors
    /// More distinct paths than MPLS labels.
    pub fn new(topo: Topology, config: RoutingConfig) -> Result<Self> {
        let by_id = topo.devices().map(|(ix, d)| (d.device_id, ix)).collect();
        let mut routes = Routes::new(config);
        routes
            .recompute(&topo, &topo.edge_devices())
            .context("computing the first routes")?;
        Ok(Self {
            topo,
            routes,
            saved: HashMap::new(),
            by_id,
            counters: HashMap::new(),
        })
    }

    /// The topology link of a discovery key.
    #[must_use]
    pub fn link_id(&self, key: &LinkKey) -> Option<LinkId> {
        let src = *self.by_id.get(&key.src_device)?;
        let id = self.topo.link_from(src, key.src_port)?;
        let l = self.topo.link(id)?;
        let dst = self.topo.device(l.dst)?;
        (dst.device_id == key.dst_device && l.dst_port == key.dst_port).then_some(id)
    }

    /// A device's index by P4Runtime device ID.
    #[must_use]
    pub fn device_ix(&self, device_id: DeviceId) -> Option<DeviceIx> {
        self.by_id.get(&device_id).copied()
    }

    /// Recomputes the paths on the links that are up and puts back the
    /// weights failover took from groups whose paths all work again.
    fn recompute(&mut self, now: Instant) -> Result<Vec<WeightUpdate>> {
        let mut updates = self
            .routes
            .recompute(&self.topo, &self.topo.edge_devices())
            .context("recomputing the routes")?;
        let mut restored = Vec::new();
        for (key, saved) in &self.saved {
            let Some(g) = self.routes.group(key.0, key.1) else {
                continue;
            };
            let alive = |links: &LinkPath| {
                links
                    .iter()
                    .all(|l| self.topo.link_state(*l).is_some_and(|s| s.up))
            };
            if !saved.iter().all(|(p, _)| alive(p)) {
                continue;
            }
            let weights: Vec<u32> = g
                .paths
                .iter()
                .map(|p| {
                    saved
                        .iter()
                        .find(|(links, _)| *links == p.links)
                        .map_or(0, |(_, w)| *w)
                })
                .collect();
            if weights.iter().sum::<u32>() == self.routes.config.total_weight
                && weights != g.weights
            {
                restored.push(WeightUpdate {
                    src: key.0,
                    dst: key.1,
                    weights,
                    reason: Reason::Recompute,
                });
            }
        }
        for u in &restored {
            self.saved.remove(&(u.src, u.dst));
        }
        self.saved.retain(|_, saved| {
            saved
                .iter()
                .any(|(p, _)| p.iter().any(|l| self.topo.link(*l).is_some()))
        });
        self.routes.apply(&restored, now);
        updates.extend(restored);
        Ok(updates)
    }

    /// Failover for `failure`: the new weights, applied, with the old ones
    /// saved for when the failure ends.
    fn fail(&mut self, failure: Failure, now: Instant) -> Vec<WeightUpdate> {
        let updates = self.routes.failover(&self.topo, failure);
        for u in &updates {
            if let Some(g) = self.routes.group(u.src, u.dst) {
                self.saved.entry((u.src, u.dst)).or_insert_with(|| {
                    g.paths
                        .iter()
                        .zip(&g.weights)
                        .map(|(p, w)| (p.links.clone(), *w))
                        .collect()
                });
            }
        }
        self.routes.apply(&updates, now);
        updates
    }
}

/// A device the controller programs.
#[derive(Clone)]
pub struct Managed {
    /// Its index in the topology.
    pub ix: DeviceIx,
    /// Its name.
    pub name: String,
    /// Fabric or host.
    pub role: Role,
    /// Its session.
    pub session: DeviceSession,
    /// Its pipeline's P4Info.
    pub index: Arc<P4InfoIndex>,
    /// The target's device config sent with the P4Info (the topology's
    /// `defaults.device_config` for its pipeline; empty when none).
    pub device_config: Arc<[u8]>,
}

/// What the last reconciliation of a device wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Programmed {
    /// Entities the device should hold.
    pub desired: usize,
    /// Inserted.
    pub inserted: usize,
    /// Modified.
    pub modified: usize,
    /// Deleted.
    pub deleted: usize,
    /// Refused by the device.
    pub failed: usize,
}

/// One measured reroute.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RerouteRecord {
    /// `link_down`, `congestion`, `intent` or `topology`.
    pub reason: &'static str,
    /// What caused it, in words.
    pub cause: String,
    /// Groups whose weights changed.
    pub groups: usize,
    /// Hosts written to.
    pub hosts: usize,
    /// From the event to the last write acknowledged, in milliseconds.
    pub millis: f64,
}

/// What the loop's tasks share.
pub struct Shared {
    /// The model.
    pub net: Mutex<Network>,
    /// Every programmed device.
    pub devices: Vec<Managed>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Last reconciliation per device name.
    pub programmed: Mutex<BTreeMap<String, Programmed>>,
    /// Every reroute so far (the last 1000).
    pub reroutes: Mutex<Vec<RerouteRecord>>,
}

/// Locks a mutex, also after a panic elsewhere (the data stays usable).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Sets `solyx_devices_connected` from the sessions: a device counts
    /// while its session is up, as primary or as backup.
    pub fn observe_sessions(&self) {
        for (role, label) in [(Role::Fabric, "fabric"), (Role::Host, "host")] {
            let up = self
                .devices
                .iter()
                .filter(|m| m.role == role)
                .filter(|m| {
                    matches!(
                        m.session.mastership(),
                        crate::p4rt::Mastership::Primary | crate::p4rt::Mastership::Backup { .. }
                    )
                })
                .count();
            self.metrics
                .devices_connected
                .with_label_values(&[label])
                .set(i64::try_from(up).unwrap_or(i64::MAX));
        }
    }

    /// The managed device at `ix`.
    #[must_use]
    pub fn managed(&self, ix: DeviceIx) -> Option<&Managed> {
        self.devices.iter().find(|m| m.ix == ix)
    }

    /// Reads what `m` holds and writes only what differs from its desired
    /// state.
    ///
    /// # Errors
    /// The desired state cannot be built, or the device cannot be read.
    pub async fn reconcile(&self, m: &Managed) -> Result<ReconcileReport> {
        let desired = {
            let net = lock(&self.net);
            program::desired(&net.topo, &net.routes, m.ix, &m.index)?
        };
        let report = m.session.reconcile(&desired).await?;
        for (u, e) in &report.failed {
            warn!(device = %m.name, "update refused: {e}; {u:?}");
        }
        lock(&self.programmed).insert(
            m.name.clone(),
            Programmed {
                desired: desired.len(),
                inserted: report.inserted,
                modified: report.modified,
                deleted: report.deleted,
                failed: report.failed.len(),
            },
        );
        Ok(report)
    }

    /// Reconciles every device that is primary, all at once.
    pub async fn reconcile_all(&self) {
        let jobs = self
            .devices
            .iter()
            .filter(|m| m.session.is_primary())
            .map(|m| async move {
                if let Err(e) = self.reconcile(m).await {
                    warn!(device = %m.name, "reconcile failed: {e:#}");
                }
            });
        futures::future::join_all(jobs).await;
    }

    /// Writes the groups `updates` changed: one MODIFY batch per host, all
    /// hosts concurrently; records the time since `started`.
    pub async fn write_weights(
        &self,
        updates: &[WeightUpdate],
        reason: &'static str,
        cause: &str,
        started: Instant,
    ) {
        if updates.is_empty() {
            return;
        }
        let mut batches: BTreeMap<DeviceIx, Vec<p4::Entity>> = BTreeMap::new();
        {
            let net = lock(&self.net);
            let groups = crate::routing::p4::host_groups(&net.topo, &net.routes);
            for u in updates {
                let Some(m) = self.managed(u.src) else {
                    continue;
                };
                let Some(g) = groups
                    .get(&u.src)
                    .and_then(|gs| gs.iter().find(|g| g.dst == u.dst))
                else {
                    continue;
                };
                match program::group_entity(&net.topo, &m.index, g) {
                    Ok(e) => batches.entry(u.src).or_default().push(e),
                    Err(e) => warn!(device = %m.name, "group for {:?}: {e:#}", u.dst),
                }
            }
        }
        let hosts = batches.len();
        let jobs = batches.into_iter().filter_map(|(ix, batch)| {
            let m = self.managed(ix)?;
            Some(async move {
                match m.session.modify(batch).await {
                    Ok(results) => {
                        for r in results {
                            if let Err(e) = r {
                                warn!(device = %m.name, "weight update refused: {e}");
                            }
                        }
                    }
                    Err(e) => warn!(device = %m.name, "weight update failed: {e}"),
                }
            })
        });
        futures::future::join_all(jobs).await;
        let elapsed = started.elapsed();
        let millis = elapsed.as_secs_f64() * 1e3;
        self.metrics.reroutes.with_label_values(&[reason]).inc();
        self.metrics
            .reroute_duration
            .with_label_values(&[reason])
            .observe(elapsed.as_secs_f64());
        let unreachable = updates.iter().filter(|u| u.unreachable()).count();
        info!(
            reason,
            cause,
            groups = updates.len(),
            hosts,
            unreachable,
            "reroute {reason} {cause}: {} groups on {hosts} hosts in {millis:.2} ms",
            updates.len()
        );
        let mut log = lock(&self.reroutes);
        if log.len() >= 1000 {
            log.remove(0);
        }
        log.push(RerouteRecord {
            reason,
            cause: cause.to_string(),
            groups: updates.len(),
            hosts,
            millis,
        });
    }

    /// A link went down: route around it at once.
    pub async fn link_down(&self, key: LinkKey) {
        let started = Instant::now();
        let (updates, cut, cause) = {
            let mut net = lock(&self.net);
            let Some(id) = net.link_id(&key) else {
                debug!(%key, "down: not a link of the topology");
                return;
            };
            let Some(state) = net.topo.link_state_mut(id) else {
                return;
            };
            if !state.up {
                return;
            }
            state.up = false;
            let cause = net.topo.describe_link(id);
            let updates = net.fail(Failure::Link(id), started);
            let cut = updates.iter().any(WeightUpdate::unreachable);
            (updates, cut, cause)
        };
        self.write_weights(&updates, "link_down", &cause, started)
            .await;
        if cut {
            // Some pair lost every path: look for new ones.
            self.topology_changed(&format!("{cause} cut a pair off"))
                .await;
        }
    }

    /// A link came up (back, or newly discovered).
    pub async fn link_up(&self, key: LinkKey) {
        let cause = {
            let mut net = lock(&self.net);
            match net.link_id(&key) {
                Some(id) => {
                    let Some(state) = net.topo.link_state_mut(id) else {
                        return;
                    };
                    if state.up {
                        return;
                    }
                    state.up = true;
                    net.topo.describe_link(id)
                }
                None => {
                    let (Some(src), Some(dst)) =
                        (net.device_ix(key.src_device), net.device_ix(key.dst_device))
                    else {
                        return;
                    };
                    let link = Link {
                        src,
                        src_port: key.src_port,
                        dst,
                        dst_port: key.dst_port,
                        delay: Duration::ZERO,
                        declared: false,
                        state: LinkState {
                            capacity: DISCOVERED_CAPACITY,
                            up: true,
                            utilisation: 0.0,
                            latency: Duration::ZERO,
                            queue_depth: 0,
                            loss: 0.0,
                        },
                    };
                    match net.topo.add_link(link) {
                        Ok(id) => format!("discovered {}", net.topo.describe_link(id)),
                        Err(e) => {
                            warn!(%key, "discovered link not added: {e}");
                            return;
                        }
                    }
                }
            }
        };
        self.topology_changed(&cause).await;
    }

    /// A device's session was lost: route around the device.
    pub async fn device_lost(&self, ix: DeviceIx) {
        let started = Instant::now();
        let (updates, name) = {
            let mut net = lock(&self.net);
            let name = net
                .topo
                .device(ix)
                .map_or_else(String::new, |d| d.name.clone());
            net.topo.set_device_up(ix, false);
            (net.fail(Failure::Device(ix), started), name)
        };
        self.write_weights(
            &updates,
            "link_down",
            &format!("device {name} lost"),
            started,
        )
        .await;
    }

    /// A device is back (primary again, configured): its links take the
    /// state discovery sees, and routes are recomputed.
    pub async fn device_back(&self, ix: DeviceIx, seen: &[(LinkKey, LinkStatus)]) {
        let name = {
            let mut net = lock(&self.net);
            let keys: Vec<(LinkId, bool)> = seen
                .iter()
                .filter_map(|(k, s)| {
                    let id = net.link_id(k)?;
                    let l = net.topo.link(id)?;
                    (l.src == ix || l.dst == ix).then_some((id, *s != LinkStatus::Down))
                })
                .collect();
            let any_down = net
                .topo
                .links()
                .any(|(_, l)| (l.src == ix || l.dst == ix) && !l.state.up);
            if !any_down {
                return;
            }
            net.topo.set_device_up(ix, true);
            for (id, up) in keys {
                if let Some(s) = net.topo.link_state_mut(id) {
                    s.up = up;
                }
            }
            net.topo
                .device(ix)
                .map_or_else(String::new, |d| d.name.clone())
        };
        self.topology_changed(&format!("device {name} back")).await;
    }

    /// Recomputes the paths and reconciles every device.
    pub async fn topology_changed(&self, cause: &str) {
        let started = Instant::now();
        let updates = {
            let mut net = lock(&self.net);
            match net.recompute(started) {
                Ok(u) => u,
                Err(e) => {
                    warn!("{cause}: {e:#}");
                    return;
                }
            }
        };
        self.reconcile_all().await;
        if !updates.is_empty() {
            let elapsed = started.elapsed();
            self.metrics.reroutes.with_label_values(&["topology"]).inc();
            self.metrics
                .reroute_duration
                .with_label_values(&["topology"])
                .observe(elapsed.as_secs_f64());
            let millis = elapsed.as_secs_f64() * 1e3;
            info!(
                cause,
                groups = updates.len(),
                "reroute topology {cause}: {} groups recomputed and reconciled in {millis:.2} ms",
                updates.len()
            );
            let mut log = lock(&self.reroutes);
            log.push(RerouteRecord {
                reason: "topology",
                cause: cause.to_string(),
                groups: updates.len(),
                hosts: self.devices.iter().filter(|m| m.role == Role::Host).count(),
                millis,
            });
        }
    }

    /// Per-group demand in bit/s, from the hosts' path counters (the rate
    /// since the last reading).
    pub async fn demands(&self) -> HashMap<(DeviceIx, DeviceIx), f64> {
        self.measure_groups().await.0
    }

    /// Per group: its demand (bit/s, all paths) and the rate on each of its
    /// paths by label, from two readings of every host's `path_counter`.
    pub async fn measure_groups(
        &self,
    ) -> (
        HashMap<(DeviceIx, DeviceIx), f64>,
        HashMap<(DeviceIx, DeviceIx), HashMap<u32, f64>>,
    ) {
        let hosts: Vec<&Managed> = self
            .devices
            .iter()
            .filter(|m| m.role == Role::Host && m.session.is_primary())
            .collect();
        let reads = hosts.iter().map(|m| async move {
            let Some(counter) = m.index.counters.by_name("path_counter") else {
                return (m.ix, None);
            };
            let cells = m.session.read_counter(counter.id, None).await.ok();
            (m.ix, cells)
        });
        let readings = futures::future::join_all(reads).await;
        let now = Instant::now();
        let mut out = HashMap::new();
        let mut per_path = HashMap::new();
        let mut net = lock(&self.net);
        let groups = crate::routing::p4::host_groups(&net.topo, &net.routes);
        for (ix, cells) in readings {
            let Some(cells) = cells else { continue };
            let bytes: BTreeMap<u8, i64> = cells
                .iter()
                .filter_map(|c| {
                    let i = u8::try_from(c.index.as_ref()?.index).ok()?;
                    Some((i, c.data.as_ref()?.byte_count))
                })
                .collect();
            let previous = net.counters.insert(ix, (now, bytes.clone()));
            let Some((then, before)) = previous else {
                continue;
            };
            let dt = now.saturating_duration_since(then).as_secs_f64();
            let Some(mine) = groups.get(&ix) else {
                continue;
            };
            if dt <= 0.0 {
                continue;
            }
            let ids = program::path_ids(mine);
            for g in mine {
                let mut rates = HashMap::new();
                for m in &g.members {
                    let Some(id) = ids.get(&m.label) else {
                        continue;
                    };
                    let now_b = bytes.get(id).copied().unwrap_or(0);
                    let then_b = before.get(id).copied().unwrap_or(0);
                    #[expect(clippy::cast_precision_loss, reason = "byte counts fit f64")]
                    let bps = (now_b - then_b).max(0) as f64 * 8.0 / dt;
                    rates.insert(m.label, bps);
                }
                out.insert((ix, g.dst), rates.values().sum());
                per_path.insert((ix, g.dst), rates);
            }
        }
        (out, per_path)
    }

    /// One telemetry period: link state from the collector's snapshot,
    /// demand from the hosts, a balancing round, the changed weights.
    pub async fn telemetry_round(&self, snapshot: &TelemetrySnapshot, taken: Instant) {
        let (demands, per_path) = self.measure_groups().await;
        let updates = {
            let mut net = lock(&self.net);
            for t in &snapshot.links {
                let Some(id) = net.link_id(&t.link) else {
                    continue;
                };
                let Some(state) = net.topo.link_state_mut(id) else {
                    continue;
                };
                if let Some(u) = &t.tx_utilization_kbps {
                    let cap = state.capacity.bps_f64();
                    if cap > 0.0 {
                        // What a port sent cannot exceed what the link
                        // carries: a burst counted over a short window
                        // would otherwise read as a link many times over
                        // its capacity and pin every round on it.
                        state.utilisation = (u.ewma * 1000.0 / cap).min(1.0);
                    }
                }
                if let Some(l) = &t.latency_ns {
                    state.latency = Duration::from_nanos(l.ewma.max(0.0) as u64);
                }
                if let Some(q) = &t.queue_bytes {
                    state.queue_depth = u32::try_from(q.last).unwrap_or(u32::MAX);
                }
            }
            let now = Instant::now();
            let Network { topo, routes, .. } = &mut *net;
            routes.set_measured(per_path);
            let updates = routes.balance_sustained(topo, &demands, now);
            net.routes.apply(&updates, now);
            updates
        };
        if !updates.is_empty() {
            let busiest = snapshot
                .links
                .iter()
                .filter_map(|l| l.tx_utilization_kbps.as_ref().map(|u| (u.ewma, l.link)))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map_or_else(String::new, |(kbps, l)| {
                    format!("busiest {l} at {:.1} Mbit/s", kbps / 1000.0)
                });
            self.write_weights(&updates, "congestion", &busiest, taken)
                .await;
        }
    }
}
