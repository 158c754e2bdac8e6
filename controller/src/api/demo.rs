//! A small leaf-spine network written into a [`StateStore`] through the
//! same update methods the runtime uses: two spines, two leaves, four
//! hosts, every link measured, two paths per host pair. `solyx api serve
//! --demo` serves it, so the API and the CLI can be tried (and fuzzed)
//! without switches.

use crate::state::{
    ConnectionState, Device, DeviceRole, Endpoint, Host, Link, LinkState, LinkTelemetry, NextHop,
    Path, Port, PortCounters, Route, RouteMatch, StateError, StateStore, TelemetrySummary,
};

const SPINES: [&str; 2] = ["spine1", "spine2"];
const LEAVES: [&str; 2] = ["leaf1", "leaf2"];
/// Hosts and the leaf each is attached to (port 3 or 4 of the leaf).
const HOSTS: [(&str, &str, u32); 4] = [
    ("h1", "leaf1", 3),
    ("h2", "leaf1", 4),
    ("h3", "leaf2", 3),
    ("h4", "leaf2", 4),
];

fn device(name: &str, id: u64, role: DeviceRole) -> Device {
    Device {
        name: name.into(),
        device_id: id,
        address: format!("127.0.0.1:{}", 50000 + id),
        role,
        pipeline: Some(match role {
            DeviceRole::Fabric => "solyx_fabric".into(),
            DeviceRole::Host => "solyx_host".into(),
        }),
        connection: ConnectionState::Connected,
        primary: true,
        election_id: 1,
        site: Some("site-a".into()),
    }
}

/// The port of `from` that faces `to` in the demo wiring.
fn port_towards(from: &str, to: &str) -> u32 {
    let index = |list: &[&str], name: &str| list.iter().position(|n| *n == name);
    if let Some((_, _, port)) = HOSTS.iter().find(|(h, leaf, _)| *h == to && *leaf == from) {
        return *port;
    }
    if HOSTS.iter().any(|(h, _, _)| *h == from) {
        return 1;
    }
    match (index(&LEAVES, from), index(&SPINES, to)) {
        (Some(_), Some(si)) => si as u32 + 1,
        _ => index(&LEAVES, to).map_or(0, |li| li as u32 + 1),
    }
}

fn link(store: &StateStore, a: Endpoint, b: Endpoint, utilisation: f64) {
    for (src, dst) in [(a.clone(), b.clone()), (b, a)] {
        store.upsert_link(Link {
            id: Link::id_of(&src, &dst),
            src,
            dst,
            state: LinkState::Up,
            declared: true,
            discovered: true,
            bandwidth_bps: Some(100_000_000),
            telemetry: LinkTelemetry {
                latency_us: Some(1000.0 + utilisation * 400.0),
                utilisation,
                queue_depth: Some((utilisation * 50.0) as u64),
                loss: 0.0,
            },
        });
    }
}

/// Writes the demo network into `store`.
///
/// # Errors
/// Never in practice: every name it refers to, it has just written.
pub fn fill(store: &StateStore) -> Result<(), StateError> {
    for (id, name) in (1..).zip(SPINES.iter().chain(LEAVES.iter())) {
        store.upsert_device(device(name, id, DeviceRole::Fabric));
    }
    for (i, (name, leaf, leaf_port)) in HOSTS.iter().enumerate() {
        store.upsert_device(device(name, 101 + i as u64, DeviceRole::Host));
        store.upsert_host(Host {
            name: (*name).into(),
            ip: format!("10.0.{}.1/24", i + 1),
            mac: Some(format!("02:00:00:00:0{}:01", i + 1)),
            attached_to: Some(Endpoint::new(*leaf, *leaf_port)),
            site: Some("site-a".into()),
        });
        link(
            store,
            Endpoint::new(*name, 1),
            Endpoint::new(*leaf, *leaf_port),
            0.05,
        );
    }
    for (li, leaf) in LEAVES.iter().enumerate() {
        for (si, spine) in SPINES.iter().enumerate() {
            let util = 0.2 + 0.3 * (li + si) as f64 / 2.0;
            link(
                store,
                Endpoint::new(*leaf, si as u32 + 1),
                Endpoint::new(*spine, li as u32 + 1),
                util,
            );
        }
    }
    for d in store.devices() {
        let ports: u32 = if d.role == DeviceRole::Host { 1 } else { 4 };
        for p in 1..=ports {
            store.upsert_port(Port {
                device: d.name.clone(),
                port: p,
                interface: Some(format!("{}-eth{p}", d.name)),
                up: true,
                speed_bps: Some(100_000_000),
                counters: PortCounters {
                    rx_packets: 1000 * u64::from(p),
                    rx_bytes: 1_200_000 * u64::from(p),
                    tx_packets: 900 * u64::from(p),
                    tx_bytes: 1_100_000 * u64::from(p),
                    drops: 0,
                },
            })?;
        }
    }
    let mut label = 1000;
    for (src, src_leaf, _) in HOSTS {
        for (dst, dst_leaf, _) in HOSTS {
            if src == dst {
                continue;
            }
            let mut paths = Vec::new();
            let spines: &[&str] = if src_leaf == dst_leaf { &[""] } else { &SPINES };
            for spine in spines {
                label += 1;
                let devices: Vec<String> = if spine.is_empty() {
                    vec![src.into(), src_leaf.into(), dst.into()]
                } else {
                    vec![
                        src.into(),
                        src_leaf.into(),
                        (*spine).into(),
                        dst_leaf.into(),
                        dst.into(),
                    ]
                };
                let links: Vec<String> = devices
                    .windows(2)
                    .map(|w| {
                        let (a, b) = (&w[0], &w[1]);
                        Link::id_of(
                            &Endpoint::new(a, port_towards(a, b)),
                            &Endpoint::new(b, port_towards(b, a)),
                        )
                    })
                    .collect();
                paths.push(Path {
                    label,
                    weight: if spine.is_empty() { 100 } else { 50 },
                    latency_us: Some(1000.0 * (devices.len() - 1) as f64),
                    bottleneck_utilisation: 0.35,
                    usable: true,
                    devices,
                    links,
                });
            }
            store.set_paths(src, dst, paths)?;
        }
    }
    for (i, (_, leaf, port)) in HOSTS.iter().enumerate() {
        store.set_routes(
            leaf,
            vec![Route {
                device: (*leaf).into(),
                matches: RouteMatch::Prefix {
                    prefix: format!("10.0.{}.1/32", i + 1),
                },
                next_hops: vec![NextHop {
                    port: *port,
                    push_label: None,
                    weight: 1,
                }],
            }],
        )?;
    }
    store.set_telemetry(TelemetrySummary {
        reports_per_second: 240.0,
        reports_total: 86_400,
        rejected: [
            ("truncated".to_string(), 3),
            ("unknown_switch".to_string(), 1),
        ]
        .into_iter()
        .collect(),
        last_report_age_ms: Some(4),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_path_is_made_of_demo_links() {
        let store = StateStore::ephemeral().unwrap();
        fill(&store).unwrap();
        let links: std::collections::BTreeSet<String> =
            store.links().into_iter().map(|l| l.id).collect();
        let set = store.paths("h1", "h4").unwrap();
        assert_eq!(set.paths.len(), 2);
        for p in &set.paths {
            for l in &p.links {
                assert!(links.contains(l), "{l} is not a link");
            }
        }
    }
}
