//! What every device should hold, as P4Runtime entities, computed from
//! the topology and the routes.
//!
//! A fabric switch (`solyx_fabric`) holds:
//! - the discovery punt rule (`acl`);
//! - its INT switch ID (`int_switch_config` default entry) and a watch
//!   rule that makes it add INT metadata to host probes (UDP port 7777);
//! - one `egress_rewrite` per port with a link: the port's MAC
//!   ([`Mac::for_port`]) as source;
//! - one `mpls_forward` entry per path through it
//!   ([`routing::p4::fabric_entries`]).
//!
//! A host (`solyx_host`) holds, per destination host:
//! - one `path_selector` member per path (member ID = the path's label):
//!   `set_path(port, label, dmac, path_id)`, where `path_id` numbers the
//!   host's paths from 1 in label order (it indexes `path_counter`);
//! - one group (group ID = the destination's device_id) with the members
//!   of non-zero weight;
//! - a `host_route` for the destination's /32 pointing at the group;
//!
//! and one `int_sink_port` entry that consumes arriving probes so that
//! its exporter reports them.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

use crate::discovery;
use crate::routing::{self, p4::HostGroup, Routes};
use crate::topology::{DeviceIx, Mac, Role, Topology};

/// UDP destination port of host probes (the agent's `PROBE_UDP_PORT`).
pub const PROBE_UDP_PORT: u16 = 7777;
/// Priority of the fabric watch rule for probes.
const PROBE_WATCH_PRIORITY: i32 = 100;

/// The path counter index of each label a host sends on: 1, 2, ... in
/// label order.
#[must_use]
pub fn path_ids(groups: &[HostGroup]) -> BTreeMap<u32, u8> {
    let mut labels: Vec<u32> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.label))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    labels
        .into_iter()
        .zip(1..=u8::MAX)
        .collect::<BTreeMap<u32, u8>>()
}

/// Everything device `ix` should hold.
///
/// # Errors
/// The device's P4Info lacks a table, action or parameter used here, or a
/// value does not fit it.
pub fn desired(
    topo: &Topology,
    routes: &Routes,
    ix: DeviceIx,
    index: &P4InfoIndex,
) -> Result<Vec<p4::Entity>> {
    let Some(device) = topo.device(ix) else {
        bail!("no device #{}", ix.index());
    };
    match device.role {
        Role::Fabric => fabric(topo, routes, ix, index),
        Role::Host => host(topo, routes, ix, index),
    }
}

fn fabric(
    topo: &Topology,
    routes: &Routes,
    ix: DeviceIx,
    index: &P4InfoIndex,
) -> Result<Vec<p4::Entity>> {
    let device = &topo.graph()[ix];
    let mut out = vec![discovery::punt_rule(index).context("the discovery punt rule")?];
    let set_id = index
        .action("int_set_switch_id")?
        .param("switch_id", device.switch_id)?
        .build()?;
    out.push(
        index
            .table_entry("int_switch_config")?
            .as_default()
            .action(set_id)?
            .build()?,
    );
    let mark = index.action("int_mark_int")?.build()?;
    out.push(
        index
            .table_entry("int_watchlist")?
            .ternary("l4_dst_port", PROBE_UDP_PORT, 0xffffu16)?
            .priority(PROBE_WATCH_PRIORITY)
            .action(mark)?
            .build()?,
    );
    let mut ports: Vec<u32> = topo
        .links()
        .filter(|(_, l)| l.src == ix)
        .map(|(_, l)| l.src_port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    for port in ports {
        let smac = Mac::for_port(device.device_id, port);
        let a = index
            .action("set_src_mac")?
            .param("smac", smac.0)?
            .build()?;
        out.push(
            index
                .table_entry("egress_rewrite")?
                .exact("egress_port", port)?
                .action(a)?
                .build()?,
        );
    }
    let entries = routing::p4::fabric_entries(topo, routes);
    if let Some(mine) = entries.get(&ix) {
        out.extend(routing::p4::fabric_entities(index, mine).context("the label entries")?);
    }
    Ok(out)
}

fn host(
    topo: &Topology,
    routes: &Routes,
    ix: DeviceIx,
    index: &P4InfoIndex,
) -> Result<Vec<p4::Entity>> {
    let consume = index.action("int_sink_consume")?.build()?;
    let mut out = vec![index
        .table_entry("int_sink_port")?
        .exact("l4_dst_port", PROBE_UDP_PORT)?
        .action(consume)?
        .build()?];
    let all = routing::p4::host_groups(topo, routes);
    let Some(groups) = all.get(&ix) else {
        return Ok(out);
    };
    let ids = path_ids(groups);
    let mut members = Vec::new();
    let mut selectors = Vec::new();
    let mut routes_out = Vec::new();
    for g in groups {
        for m in &g.members {
            let Some(path_id) = ids.get(&m.label) else {
                // TODO-completeness: a host with more than 255 paths has
                // no counter index for the rest; they are not installed.
                continue;
            };
            let a = index
                .action("set_path")?
                .param("port", m.port)?
                .param("label", m.label)?
                .param("dmac", m.next_hop_mac.0)?
                .param("path_id", *path_id)?
                .build()?;
            members.push(p4::Entity {
                entity: Some(p4::entity::Entity::ActionProfileMember(
                    index.profile_member("path_selector", m.label, a)?,
                )),
            });
        }
        selectors.push(group_entity(topo, index, g)?);
        let group_id = group_id(topo, g)?;
        routes_out.push(
            index
                .table_entry("host_route")?
                .lpm("ipv4_dst", g.destination, 32)?
                .group(group_id)?
                .build()?,
        );
    }
    out.extend(members);
    out.extend(selectors);
    out.extend(routes_out);
    Ok(out)
}

fn group_id(topo: &Topology, g: &HostGroup) -> Result<u32> {
    let dst = topo.device(g.dst).context("destination device")?;
    u32::try_from(dst.device_id).with_context(|| {
        format!(
            "device {}: device_id {} does not fit a 32-bit group ID",
            dst.name, dst.device_id
        )
    })
}

/// The `path_selector` group of one destination: the members of non-zero
/// weight (P4Runtime weights are at least 1; a path without weight is
/// left out of the group, its member stays).
///
/// # Errors
/// The P4Info has no `path_selector`, or the destination's device_id does
/// not fit a group ID.
pub fn group_entity(topo: &Topology, index: &P4InfoIndex, g: &HostGroup) -> Result<p4::Entity> {
    let members: Vec<(u32, i32)> = g
        .members
        .iter()
        .filter(|m| m.weight > 0)
        .map(|m| (m.label, i32::try_from(m.weight).unwrap_or(i32::MAX)))
        .collect();
    // TODO-robustness: a zero-weight path gets no probes from the host
    // (the prober follows group members); its links are measured only by
    // other groups' probes until balancing gives it weight again.
    Ok(p4::Entity {
        entity: Some(p4::entity::Entity::ActionProfileGroup(
            index.profile_group("path_selector", group_id(topo, g)?, &members)?,
        )),
    })
}
