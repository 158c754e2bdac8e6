//! The live network written into the [`StateStore`] that the REST API
//! serves, and intents read back from it; the devices' per-port counters
//! read over P4Runtime ([`port_counters`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use solyx_p4runtime::proto::p4::v1 as p4;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::control::{lock, Managed, Shared};
use super::program;
use crate::linkstate::{DiscoveredLink, LinkStatus};
use crate::p4rt::Mastership;
use crate::routing::{Intent, IntentError};
use crate::state::{
    ConnectionState, Device, DeviceRole, Endpoint, Host, IntentState, IntentStatus, Link,
    LinkState, LinkTelemetry, NextHop, Path, Port, PortCounters, Route, RouteMatch, StateStore,
    TelemetrySummary,
};
use crate::telemetry::TelemetrySnapshot;
use crate::topology::{Bandwidth, Role, Topology};

fn role(r: Role) -> DeviceRole {
    match r {
        Role::Fabric => DeviceRole::Fabric,
        Role::Host => DeviceRole::Host,
    }
}

/// Every device, host and port of the topology (once, at start).
pub fn devices(shared: &Shared, store: &StateStore) {
    let net = lock(&shared.net);
    for (ix, d) in net.topo.devices() {
        store.upsert_device(Device {
            name: d.name.clone(),
            device_id: d.device_id,
            address: d.address.clone().unwrap_or_default(),
            role: role(d.role),
            pipeline: None,
            connection: ConnectionState::Disconnected,
            primary: false,
            election_id: 0,
            site: d.site.clone(),
        });
        if d.role == Role::Host {
            let attached_to = net
                .topo
                .links()
                .find(|(_, l)| l.src == ix)
                .and_then(|(_, l)| {
                    Some(Endpoint::new(
                        net.topo.device(l.dst)?.name.clone(),
                        l.dst_port,
                    ))
                });
            store.upsert_host(Host {
                name: d.name.clone(),
                ip: d
                    .ip
                    .map_or_else(String::new, |(ip, len)| format!("{ip}/{len}")),
                mac: Some(d.mac.to_string()),
                attached_to,
                site: d.site.clone(),
            });
        }
    }
    drop(net);
    ports(shared, store);
}

/// Every port of the topology: both ends of every link (declared, or found
/// by discovery since). `up` is the state of the link leaving the port (what
/// discovery saw for fabric links; for host links, whether the device's
/// session holds), the speed is that link's capacity. Counters already read
/// are kept.
pub fn ports(shared: &Shared, store: &StateStore) {
    let found: BTreeMap<(String, u32), (bool, u64)> = {
        let net = lock(&shared.net);
        let topo = &net.topo;
        let mut found = BTreeMap::new();
        for (_, l) in topo.links() {
            if let Some(d) = topo.device(l.src) {
                let state = (l.state.up, l.state.capacity.0);
                found.insert((d.name.clone(), l.src_port), state);
            }
        }
        // A port that only receives (discovery has seen one direction so
        // far) takes the state of the link into it.
        for (_, l) in topo.links() {
            if let Some(d) = topo.device(l.dst) {
                found
                    .entry((d.name.clone(), l.dst_port))
                    .or_insert((l.state.up, l.state.capacity.0));
            }
        }
        found
    };
    for ((device, port), (up, speed)) in found {
        // TODO-completeness: the agents do not tell the controller their
        // interface names (`--port N=IF`), so `interface` stays empty; the
        // peer of a port is in /v1/links.
        let _ = store.refresh_port(Port {
            device,
            port,
            interface: None,
            up,
            speed_bps: Some(speed),
            counters: PortCounters::default(),
        });
    }
}

/// `solyx_fabric`'s per-port counters (P4Info aliases): every packet
/// received on a port, counted before any drop, and every packet sent.
pub const PORT_RX_COUNTER: &str = "ingress_port_counter";
/// See [`PORT_RX_COUNTER`].
pub const PORT_TX_COUNTER: &str = "egress_port_counter";
/// `solyx_host`'s per-path counter: what the host sent on each labelled
/// path (the index is the path ID, [`program::path_ids`]).
pub const PATH_COUNTER: &str = "path_counter";

/// How one device's port counters are read.
enum Plan {
    /// `ingress_port_counter` and `egress_port_counter` cells of each port.
    Fabric { rx: u32, tx: u32, ports: Vec<u32> },
    /// Every `path_counter` cell, summed per port: the port each path ID
    /// leaves by, or the host's only port.
    Host {
        counter: u32,
        by_path: BTreeMap<i64, u32>,
        only_port: Option<u32>,
        ports: Vec<u32>,
    },
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn counter_read(counter_id: u32, index: Option<i64>) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::CounterEntry(p4::CounterEntry {
            counter_id,
            index: index.map(|index| p4::Index { index }),
            data: None,
        })),
    }
}

/// What to read from each device this round: the primary, programmed
/// devices whose pipeline has port or path counters, with the ports the
/// store lists for them.
fn plans(shared: &Shared, store: &StateStore) -> Vec<(usize, Plan)> {
    let mut ports: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for p in store.ports(None) {
        ports.entry(p.device).or_default().push(p.port);
    }
    let programmed = lock(&shared.programmed).clone();
    // The paths of hosts with several ports, computed once and only when
    // there is such a host (it takes the loop's lock).
    let mut groups = None;
    let mut out = Vec::new();
    for (pos, m) in shared.devices.iter().enumerate() {
        if !m.session.is_primary() || !programmed.contains_key(&m.name) {
            continue;
        }
        let Some(mine) = ports.get(&m.name).filter(|p| !p.is_empty()) else {
            continue;
        };
        let counters = &m.index.counters;
        if let (Some(rx), Some(tx)) = (
            counters.by_name(PORT_RX_COUNTER),
            counters.by_name(PORT_TX_COUNTER),
        ) {
            let size = rx.size.min(tx.size);
            let ports = mine
                .iter()
                .copied()
                .filter(|p| i64::from(*p) < size)
                .collect();
            out.push((
                pos,
                Plan::Fabric {
                    rx: rx.id,
                    tx: tx.id,
                    ports,
                },
            ));
        } else if let Some(c) = counters.by_name(PATH_COUNTER) {
            let mut by_path = BTreeMap::new();
            if mine.len() > 1 && groups.is_none() {
                let net = lock(&shared.net);
                groups = Some(crate::routing::p4::host_groups(&net.topo, &net.routes));
            }
            let mine_groups = groups.as_ref().filter(|_| mine.len() > 1);
            if let Some(gs) = mine_groups.and_then(|g| g.get(&m.ix)) {
                let ids = program::path_ids(gs);
                for member in gs.iter().flat_map(|g| &g.members) {
                    if let Some(id) = ids.get(&member.label) {
                        by_path.insert(i64::from(*id), member.port);
                    }
                }
            }
            out.push((
                pos,
                Plan::Host {
                    counter: c.id,
                    by_path,
                    only_port: mine.first().copied().filter(|_| mine.len() == 1),
                    ports: mine.clone(),
                },
            ));
        }
    }
    out
}

/// One Read of the counters `plan` names; the counters of each port.
async fn read_ports(
    m: &Managed,
    plan: &Plan,
) -> Result<Vec<(u32, PortCounters)>, crate::p4rt::ClientError> {
    let cells = |entities: Vec<p4::Entity>| async move {
        let answer = m.session.read(entities).await?;
        let mut cells = HashMap::new();
        for e in answer {
            if let Some(p4::entity::Entity::CounterEntry(c)) = e.entity {
                if let (Some(i), Some(d)) = (c.index, c.data) {
                    cells.insert((c.counter_id, i.index), d);
                }
            }
        }
        Ok::<_, crate::p4rt::ClientError>(cells)
    };
    match plan {
        Plan::Fabric { rx, tx, ports } => {
            let entities = ports
                .iter()
                .flat_map(|p| {
                    [
                        counter_read(*rx, Some(i64::from(*p))),
                        counter_read(*tx, Some(i64::from(*p))),
                    ]
                })
                .collect();
            let cells = cells(entities).await?;
            Ok(ports
                .iter()
                .map(|p| {
                    let at = |id: u32| cells.get(&(id, i64::from(*p))).cloned().unwrap_or_default();
                    let (r, t) = (at(*rx), at(*tx));
                    let counters = PortCounters {
                        rx_packets: count(r.packet_count),
                        rx_bytes: count(r.byte_count),
                        tx_packets: count(t.packet_count),
                        tx_bytes: count(t.byte_count),
                        drops: 0,
                    };
                    (*p, counters)
                })
                .collect())
        }
        Plan::Host {
            counter,
            by_path,
            only_port,
            ports,
        } => {
            let cells = cells(vec![counter_read(*counter, None)]).await?;
            let mut sums: BTreeMap<u32, PortCounters> = ports
                .iter()
                .map(|p| (*p, PortCounters::default()))
                .collect();
            for ((_, index), d) in cells {
                // TODO-correctness: on a host with several ports, a path ID
                // no group uses any more (its cell keeps what it counted) is
                // left out, so that port's tx can step back after the paths
                // are renumbered.
                let Some(port) = by_path.get(&index).copied().or(*only_port) else {
                    continue;
                };
                if let Some(s) = sums.get_mut(&port) {
                    s.tx_packets += count(d.packet_count);
                    s.tx_bytes += count(d.byte_count);
                }
            }
            Ok(sums.into_iter().collect())
        }
    }
}

/// Every `period`, reads the per-port counters of every device this
/// controller is primary of and has programmed, and records them in the
/// store, until `shutdown`.
///
/// The reads stay out of the way of the control loop's writes: they run in
/// their own task, take no lock of the loop while a Read is in flight, ask
/// each device for the cells of its own ports only, in one Read per device
/// (all devices at once), and give up on a device after one period; a round
/// that overruns the period skips the ticks it missed rather than
/// bunching reads together.
pub async fn port_counters(
    shared: Arc<Shared>,
    store: Arc<StateStore>,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut failing: HashMap<usize, bool> = HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let plans = plans(&shared, &store);
        let reads = plans.iter().map(|(pos, plan)| {
            let m = &shared.devices[*pos];
            async move {
                let r = tokio::time::timeout(period, read_ports(m, plan)).await;
                (*pos, r)
            }
        });
        for (pos, r) in futures::future::join_all(reads).await {
            let m = &shared.devices[pos];
            let was_failing = failing.get(&pos).copied().unwrap_or(false);
            let counters = match r {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    if !was_failing {
                        warn!(device = %m.name, "port counters not read: {e}; kept");
                    }
                    failing.insert(pos, true);
                    continue;
                }
                Err(_) => {
                    if !was_failing {
                        let name = &m.name;
                        warn!(device = %name, "port counters not read in {period:?}; kept");
                    }
                    failing.insert(pos, true);
                    continue;
                }
            };
            if was_failing {
                info!(device = %m.name, "port counters read again");
            }
            failing.insert(pos, false);
            for (port, c) in counters {
                if let Err(e) = store.set_port_counters(&m.name, port, c) {
                    debug!(device = %m.name, "{e}");
                }
            }
        }
    }
}

fn endpoint(topo: &Topology, ix: crate::topology::DeviceIx, port: u32) -> Endpoint {
    Endpoint::new(
        topo.device(ix).map_or_else(String::new, |d| d.name.clone()),
        port,
    )
}

/// Sessions, ports (their state; [`port_counters`] reads their counters),
/// links with telemetry, paths with weights, routes, the telemetry
/// summary.
pub fn all(
    shared: &Shared,
    store: &StateStore,
    discovered: &[DiscoveredLink],
    snapshot: &TelemetrySnapshot,
) {
    for m in &shared.devices {
        let (connection, primary) = match m.session.mastership() {
            Mastership::Disconnected => (ConnectionState::Disconnected, false),
            Mastership::Connecting => (ConnectionState::Connecting, false),
            Mastership::Primary => (ConnectionState::Connected, true),
            Mastership::Backup { .. } => (ConnectionState::Connected, false),
        };
        let _ =
            store.set_device_session(&m.name, connection, primary, m.session.config().election_id);
    }
    ports(shared, store);
    let net = lock(&shared.net);
    let topo = &net.topo;
    let seen: HashMap<_, _> = discovered.iter().map(|d| (d.link, d.status)).collect();
    let measured: HashMap<_, _> = snapshot.links.iter().map(|t| (t.link, t)).collect();
    let mut ids = HashMap::new();
    for (id, l) in topo.links() {
        let (src, dst) = (
            endpoint(topo, l.src, l.src_port),
            endpoint(topo, l.dst, l.dst_port),
        );
        let link_id = Link::id_of(&src, &dst);
        ids.insert(id, link_id.clone());
        let key = crate::linkstate::LinkKey {
            src_device: topo.device(l.src).map_or(0, |d| d.device_id),
            src_port: l.src_port,
            dst_device: topo.device(l.dst).map_or(0, |d| d.device_id),
            dst_port: l.dst_port,
        };
        let t = measured.get(&key);
        store.upsert_link(Link {
            id: link_id,
            src,
            dst,
            state: if l.state.up {
                LinkState::Up
            } else {
                LinkState::Down
            },
            declared: l.declared,
            discovered: seen
                .get(&key)
                .is_some_and(|s| *s != LinkStatus::DeclaredNotSeen),
            bandwidth_bps: Some(l.state.capacity.0),
            telemetry: LinkTelemetry {
                latency_us: t
                    .and_then(|t| t.latency_ns.as_ref())
                    .map(|s| s.ewma / 1000.0),
                utilisation: l.state.utilisation,
                queue_depth: t.and_then(|t| t.queue_bytes.as_ref()).map(|q| q.last),
                loss: l.state.loss,
            },
        });
    }
    // Paths with weights, per pair of hosts.
    for g in net.routes.groups() {
        let (Some(s), Some(d)) = (topo.device(g.src), topo.device(g.dst)) else {
            continue;
        };
        if s.role != Role::Host || d.role != Role::Host {
            continue;
        }
        let paths = g
            .paths
            .iter()
            .zip(&g.weights)
            .map(|(p, w)| {
                let mut devices = vec![s.name.clone()];
                let mut latency = 0.0;
                let mut worst: f64 = 0.0;
                let mut usable = true;
                for l in &p.links {
                    if let Some(link) = topo.link(*l) {
                        devices.push(
                            topo.device(link.dst)
                                .map_or_else(String::new, |d| d.name.clone()),
                        );
                        latency += link.state.latency.as_secs_f64() * 1e6;
                        worst = worst.max(link.state.utilisation);
                        usable &= link.state.up;
                    }
                }
                Path {
                    label: p.label,
                    devices,
                    links: p.links.iter().filter_map(|l| ids.get(l).cloned()).collect(),
                    weight: *w,
                    latency_us: Some(latency),
                    bottleneck_utilisation: worst,
                    usable,
                }
            })
            .collect();
        let _ = store.set_paths(&s.name, &d.name, paths);
    }
    // Routes: label entries on the fabric, weighted groups on hosts.
    let mut routes: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    for (ix, entries) in crate::routing::p4::fabric_entries(topo, &net.routes) {
        let Some(d) = topo.device(ix) else { continue };
        for e in entries {
            let port = match e.action {
                crate::routing::p4::FabricAction::Forward { port }
                | crate::routing::p4::FabricAction::PopForward { port, .. } => port,
            };
            routes.entry(d.name.clone()).or_default().push(Route {
                device: d.name.clone(),
                matches: RouteMatch::Label { label: e.label },
                next_hops: vec![NextHop {
                    port,
                    push_label: None,
                    weight: 1,
                }],
            });
        }
    }
    for (ix, groups) in crate::routing::p4::host_groups(topo, &net.routes) {
        let Some(d) = topo.device(ix) else { continue };
        for g in groups {
            routes.entry(d.name.clone()).or_default().push(Route {
                device: d.name.clone(),
                matches: RouteMatch::Prefix {
                    prefix: format!("{}/32", g.destination),
                },
                next_hops: g
                    .members
                    .iter()
                    .map(|m| NextHop {
                        port: m.port,
                        push_label: Some(m.label),
                        weight: m.weight,
                    })
                    .collect(),
            });
        }
    }
    drop(net);
    for (device, r) in routes {
        let _ = store.set_routes(&device, r);
    }
    let received = &snapshot.received;
    let previous = store.telemetry();
    store.set_telemetry(TelemetrySummary {
        #[allow(clippy::cast_precision_loss, reason = "report counts fit f64")]
        reports_per_second: received.reports.saturating_sub(previous.reports_total) as f64,
        reports_total: received.reports,
        rejected: received
            .rejected
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect(),
        last_report_age_ms: snapshot.links.iter().map(|l| l.age_ms).min(),
    });
}

/// Plans every stored intent: the pair's traffic goes only on paths that
/// meet it, and its status says whether any does.
pub async fn intents(shared: &Shared, store: &StateStore) {
    let started = Instant::now();
    let mut updates = Vec::new();
    let mut names = Vec::new();
    for intent in store.intents().list() {
        let spec = &intent.spec;
        let verdict = {
            let mut net = lock(&shared.net);
            let (Some(src), Some(dst)) =
                (net.topo.device_ix(&spec.src), net.topo.device_ix(&spec.dst))
            else {
                let _ = store.set_intent_status(
                    &spec.name,
                    IntentStatus {
                        state: IntentState::Unsatisfiable,
                        reason: Some(format!(
                            "{} or {} is not a device of the topology",
                            spec.src, spec.dst
                        )),
                    },
                );
                continue;
            };
            let planned = Intent {
                src,
                dst,
                min_bandwidth: spec.min_bandwidth_mbps.map(|m| Bandwidth(m * 1_000_000)),
                max_latency: spec.max_latency_us.map(std::time::Duration::from_micros),
            };
            // TODO-completeness: `avoid` and `objective` are stored but not
            // planned; routing intents know bandwidth and latency only.
            net.routes.set_intent(planned.clone());
            match net.routes.plan_intent(&net.topo, &planned) {
                Ok(u) => {
                    let changed = net
                        .routes
                        .group(src, dst)
                        .is_some_and(|g| g.weights != u.weights);
                    if changed {
                        net.routes.apply(std::slice::from_ref(&u), started);
                        updates.push(u);
                        names.push(spec.name.clone());
                    }
                    IntentStatus {
                        state: IntentState::Satisfied,
                        reason: None,
                    }
                }
                Err(e @ (IntentError::NoPath | IntentError::Unsatisfied(_))) => IntentStatus {
                    state: IntentState::Unsatisfiable,
                    reason: Some(e.to_string()),
                },
            }
        };
        if intent.status != verdict {
            if let Err(e) = store.set_intent_status(&spec.name, verdict) {
                warn!(intent = %spec.name, "status not stored: {e}");
            }
        }
    }
    shared
        .write_weights(&updates, "intent", &names.join(","), started)
        .await;
}
