//! The live network written into the [`StateStore`] that the REST API
//! serves, and intents read back from it.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use tracing::warn;

use super::control::{lock, Shared};
use crate::linkstate::{DiscoveredLink, LinkStatus};
use crate::p4rt::Mastership;
use crate::routing::{Intent, IntentError};
use crate::state::{
    ConnectionState, Device, DeviceRole, Endpoint, Host, IntentState, IntentStatus, Link,
    LinkState, LinkTelemetry, NextHop, Path, Route, RouteMatch, StateStore, TelemetrySummary,
};
use crate::telemetry::TelemetrySnapshot;
use crate::topology::{Bandwidth, Role, Topology};

fn role(r: Role) -> DeviceRole {
    match r {
        Role::Fabric => DeviceRole::Fabric,
        Role::Host => DeviceRole::Host,
    }
}

/// Every device and host of the topology (once, at start).
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
}

fn endpoint(topo: &Topology, ix: crate::topology::DeviceIx, port: u32) -> Endpoint {
    Endpoint::new(
        topo.device(ix).map_or_else(String::new, |d| d.name.clone()),
        port,
    )
}

/// Sessions, links with telemetry, paths with weights, routes, the
/// telemetry summary.
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
