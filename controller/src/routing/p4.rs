//! From paths to what devices hold.
//!
//! Fabric switches get one `mpls_forward` entry per path through them,
//! keyed by the path's label: `mpls_forward_to(port)` at a transit hop,
//! `mpls_pop_forward_to(port, dmac)` at the last switch, which pops the
//! label and delivers to the destination host's MAC. Hosts get one group
//! per destination: the members are the paths (label to push, the first
//! switch's port MAC as next hop, the host port, the weight). The host
//! pipeline's tables are described elsewhere; [`HostGroup`] is what the
//! host side needs, independent of how its P4Info spells it.
//!
//! Paths whose destination is a fabric device (a network without hosts)
//! produce no entries: nothing pushes a label there.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::{EntityError, P4InfoIndex};

use super::routes::Routes;
use crate::topology::{DeviceIx, Mac, Role, Topology};

/// What a fabric switch does with one label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FabricAction {
    /// Transit: out of `port`, label kept.
    Forward {
        /// Egress port.
        port: u32,
    },
    /// Last hop: pop the label, out of `port` to the host at `dmac`.
    PopForward {
        /// Egress port.
        port: u32,
        /// Destination host MAC.
        dmac: Mac,
    },
}

/// One `mpls_forward` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FabricEntry {
    /// The path's label.
    pub label: u32,
    /// What to do.
    pub action: FabricAction,
}

/// One path a host can send on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMember {
    /// Label to push.
    pub label: u32,
    /// MAC of the first switch's ingress port.
    pub next_hop_mac: Mac,
    /// The host's egress port.
    pub port: u32,
    /// Weight in the group.
    pub weight: u32,
}

/// A host's weighted choice of paths towards one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGroup {
    /// Destination host address (routed as a /32).
    pub destination: Ipv4Addr,
    /// Destination device.
    pub dst: DeviceIx,
    /// One member per path of the pair.
    pub members: Vec<HostMember>,
}

/// The `mpls_forward` entries of every fabric switch, by device, in
/// label order.
#[must_use]
pub fn fabric_entries(topo: &Topology, routes: &Routes) -> BTreeMap<DeviceIx, Vec<FabricEntry>> {
    let mut out: BTreeMap<DeviceIx, Vec<FabricEntry>> = BTreeMap::new();
    for g in routes.groups() {
        let Some(dst) = topo.device(g.dst).filter(|d| d.role == Role::Host) else {
            continue;
        };
        for p in &g.paths {
            for l in &p.links {
                let Some(link) = topo.link(*l) else { continue };
                if topo.device(link.src).is_none_or(|d| d.role != Role::Fabric) {
                    continue;
                }
                let action = if link.dst == g.dst {
                    FabricAction::PopForward {
                        port: link.src_port,
                        dmac: dst.mac,
                    }
                } else {
                    FabricAction::Forward {
                        port: link.src_port,
                    }
                };
                out.entry(link.src).or_default().push(FabricEntry {
                    label: p.label,
                    action,
                });
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// The host groups of every host, by device, in destination order.
#[must_use]
pub fn host_groups(topo: &Topology, routes: &Routes) -> BTreeMap<DeviceIx, Vec<HostGroup>> {
    let mut out: BTreeMap<DeviceIx, Vec<HostGroup>> = BTreeMap::new();
    for g in routes.groups() {
        let (Some(src), Some(dst)) = (topo.device(g.src), topo.device(g.dst)) else {
            continue;
        };
        let (Role::Host, Some((ip, _))) = (src.role, dst.ip) else {
            continue;
        };
        let members = g
            .paths
            .iter()
            .zip(&g.weights)
            .filter_map(|(p, w)| {
                let first = topo.link(*p.links.first()?)?;
                let next = topo.device(first.dst)?;
                Some(HostMember {
                    label: p.label,
                    next_hop_mac: Mac::for_port(next.device_id, first.dst_port),
                    port: first.src_port,
                    weight: *w,
                })
            })
            .collect();
        out.entry(g.src).or_default().push(HostGroup {
            destination: ip,
            dst: g.dst,
            members,
        });
    }
    for v in out.values_mut() {
        v.sort_by_key(|h| h.destination);
    }
    out
}

/// The entries as P4Runtime entities, checked against the fabric P4Info;
/// ready to be part of a switch's desired state.
///
/// # Errors
/// The P4Info lacks the table, actions or parameters, or a value does not
/// fit (a label beyond 20 bits, a port beyond 9).
pub fn fabric_entities(
    index: &P4InfoIndex,
    entries: &[FabricEntry],
) -> Result<Vec<p4::Entity>, EntityError> {
    entries
        .iter()
        .map(|e| {
            let action = match e.action {
                FabricAction::Forward { port } => index
                    .action("mpls_forward_to")?
                    .param("port", port)?
                    .build()?,
                FabricAction::PopForward { port, dmac } => index
                    .action("mpls_pop_forward_to")?
                    .param("port", port)?
                    .param("dmac", dmac.0)?
                    .build()?,
            };
            index
                .table_entry("mpls_forward")?
                .exact("mpls_label", e.label)?
                .action(action)?
                .build()
        })
        .collect()
}
