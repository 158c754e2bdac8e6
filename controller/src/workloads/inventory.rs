//! The inventory's two sources: the `node:` blocks of the topology's host
//! devices, and what each host's agent reports on its node resources
//! Watch stream. Per value, the topology file wins; the agent fills in
//! what the file does not declare. A host with neither is not a node.

use std::collections::BTreeMap;

use solyx_orchestrator::inventory::{AcceleratorGroup, Node, NodeSource};
use solyx_orchestrator::resources::{AcceleratorKind, GpuGroup};

use super::network::DEFAULT_SITE;
use crate::node::Node as Reported;
use crate::topology::{NodeSpec, Role, Topology};

const MIB: u64 = 1 << 20;

/// A host device of the topology, as the inventory needs it.
#[derive(Debug, Clone)]
pub struct Host {
    /// Device name: the node's name.
    pub name: String,
    /// The agent's address (node resources service), when the file gives one.
    pub address: Option<String>,
    /// Declared site and rack.
    pub site: Option<String>,
    /// Rack.
    pub rack: Option<String>,
    /// The `node:` block.
    pub declared: Option<NodeSpec>,
}

/// The host devices of `topo`, by name.
#[must_use]
pub fn hosts(topo: &Topology) -> BTreeMap<String, Host> {
    topo.devices()
        .filter(|(_, d)| d.role == Role::Host)
        .map(|(_, d)| {
            (
                d.name.clone(),
                Host {
                    name: d.name.clone(),
                    address: d.address.clone(),
                    site: d.site.clone(),
                    rack: d.rack.clone(),
                    declared: d.node.clone(),
                },
            )
        })
        .collect()
}

fn accelerator_kind(host: &str, kind: &str) -> Option<AcceleratorKind> {
    match kind {
        "tpu" => Some(AcceleratorKind::Tpu),
        "fpga" => Some(AcceleratorKind::Fpga),
        other => {
            // TODO-completeness: the scheduler knows TPUs and FPGAs only; other
            // accelerator kinds are left out of the inventory.
            tracing::warn!(
                node = host,
                kind = other,
                "accelerator kind not schedulable; left out"
            );
            None
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The node `host` describes, with the agent's report (when there is
/// one) filling what the topology does not declare. `None` when neither
/// says anything.
#[must_use]
pub fn merge(host: &Host, reported: Option<&Reported>) -> Option<Node> {
    let spec = host.declared.as_ref();
    if spec.is_none() && reported.is_none() {
        return None;
    }
    let declared_gpus = spec.map_or(&[][..], |s| s.gpus.as_slice());
    let gpus = if declared_gpus.is_empty() {
        let mut by_model: BTreeMap<&str, (u32, u64)> = BTreeMap::new();
        for g in reported.map_or(&[][..], |r| r.gpus.as_slice()) {
            let e = by_model.entry(g.model.as_str()).or_default();
            e.0 += 1;
            e.1 = e.1.max(g.memory_bytes / MIB);
        }
        by_model
            .into_iter()
            .map(|(model, (count, memory_mib))| GpuGroup {
                model: model.to_string(),
                count,
                memory_mib,
            })
            .collect()
    } else {
        declared_gpus
            .iter()
            .map(|g| GpuGroup {
                model: g.model.clone(),
                count: g.count,
                memory_mib: g.memory.map_or(0, |m| m.0 / MIB),
            })
            .collect()
    };
    let declared_acc = spec.map_or(&[][..], |s| s.accelerators.as_slice());
    let accelerators = if declared_acc.is_empty() {
        reported
            .map_or(&[][..], |r| r.accelerators.as_slice())
            .iter()
            .filter_map(|a| {
                Some(AcceleratorGroup {
                    kind: accelerator_kind(&host.name, &a.kind)?,
                    model: a.model.clone(),
                    count: a.count,
                })
            })
            .collect()
    } else {
        declared_acc
            .iter()
            .filter_map(|a| {
                Some(AcceleratorGroup {
                    kind: accelerator_kind(&host.name, &a.kind)?,
                    model: a.model.clone(),
                    count: a.count,
                })
            })
            .collect()
    };
    let cpus = spec
        .and_then(|s| s.cpus)
        .or_else(|| reported.and_then(|r| r.cpu.as_ref().map(|c| c.cores)))
        .unwrap_or(0);
    let memory_mib = spec
        .and_then(|s| s.memory.map(|m| m.0 / MIB))
        .or_else(|| reported.and_then(|r| r.memory.as_ref().map(|m| m.total_bytes / MIB)))
        .unwrap_or(0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let power_watts = spec
        .and_then(|s| s.power_watts)
        .or_else(|| {
            reported
                .and_then(|r| r.power.as_ref())
                .and_then(|p| p.watts)
                .map(|w| w.max(0.0).round() as u32)
        })
        .unwrap_or(0);
    Some(Node {
        name: host.name.clone(),
        site: host
            .site
            .clone()
            .or_else(|| reported.and_then(|r| non_empty(&r.site)))
            .unwrap_or_else(|| DEFAULT_SITE.to_string()),
        rack: host
            .rack
            .clone()
            .or_else(|| reported.and_then(|r| non_empty(&r.rack)))
            .unwrap_or_default(),
        cpu_milli: u64::from(cpus) * 1000,
        memory_mib,
        gpus,
        accelerators,
        power_watts,
        // A node the file declares stays declared whatever its agent adds,
        // so that an agent report never replaces the file's values.
        source: if spec.is_some() {
            NodeSource::Declared
        } else {
            NodeSource::Agent
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use solyx_p4runtime::proto::solyx::node::v1 as pb;

    const TOPO: &str = "name: t\ndefaults: { link: { bandwidth: 1Gbit, delay: 1ms } }\n\
devices:\n  - { name: s1, role: fabric, device_id: 1 }\n  \
- { name: h1, role: host, device_id: 2, ip: 10.0.0.1/24, address: '127.0.0.1:1', site: site-a,\n      \
node: { cpus: 16, gpus: [{ model: A100, count: 2, memory: 80GiB }] } }\n  \
- { name: h2, role: host, device_id: 3, ip: 10.0.0.2/24 }\n\
links:\n  - [s1:1, h1:1]\n  - [s1:2, h2:1]\n";

    fn reported(cores: u32, memory_gib: u64) -> pb::Node {
        pb::Node {
            name: "machine".into(),
            site: "site-z".into(),
            rack: "r9".into(),
            cpu: Some(pb::Cpu {
                cores,
                ..Default::default()
            }),
            memory: Some(pb::Memory {
                total_bytes: memory_gib << 30,
                ..Default::default()
            }),
            gpus: vec![pb::Gpu {
                model: "T4".into(),
                memory_bytes: 16 << 30,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn declared_values_win_and_the_agent_fills_the_rest() {
        let topo = Topology::parse(TOPO, "t.yaml").unwrap();
        let hosts = hosts(&topo);
        let h1 = merge(&hosts["h1"], Some(&reported(4, 8))).unwrap();
        assert_eq!(h1.cpu_milli, 16_000, "declared");
        assert_eq!(h1.memory_mib, 8 * 1024, "reported: the file declares none");
        assert_eq!(h1.gpus[0].model, "A100");
        assert_eq!(h1.site, "site-a");
        assert_eq!(h1.rack, "r9");
        assert_eq!(h1.source, NodeSource::Declared);
        assert!(merge(&hosts["h2"], None).is_none());
        let h2 = merge(&hosts["h2"], Some(&reported(4, 8))).unwrap();
        assert_eq!((h2.cpu_milli, h2.source), (4000, NodeSource::Agent));
        assert_eq!((h2.gpus[0].model.as_str(), h2.gpus[0].count), ("T4", 1));
        assert_eq!(h2.site, "site-z");
    }
}
