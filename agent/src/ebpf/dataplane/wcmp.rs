//! IPv4 routes, `wcmp_selector` members and groups, turned into
//! `IPV4_ROUTES` and `WCMP_GROUPS` values.
//!
//! Members exist only here: each is a next hop (`set_next_hop(port, dmac)`)
//! or a drop (`route_drop()`), copied into every group slot and every route
//! that uses it. So:
//!
//! - a group value is its members expanded by weight (member ID order) and
//!   is rewritten whole when the group or one of its members changes;
//! - a route to a member carries the member's next hop and is rewritten
//!   when the member changes;
//! - a route with a one-shot action set gets a group of its own, ID
//!   `ONE_SHOT_GROUP_BASE + hit slot`.
//!
//! Every operation either completes or leaves the maps as they were
//! (writes already made are undone when a later one fails).

use std::collections::{BTreeMap, HashMap};

use solyx_ebpf_common::route::{
    Ipv4Route, NextHop, WcmpGroup, IPV4_ROUTE_CAPACITY, ONE_SHOT_GROUP_BASE, ROUTE_KIND_GROUP,
    ROUTE_KIND_NEXT_HOP, WCMP_MAX_SLOTS,
};
use solyx_ebpf_common::Counter;
use solyx_p4runtime::proto::p4::v1 as p4;

use super::decode::{self, invalid};
use super::names::RouteIds;
use super::ports::PortMap;
use super::slots::Slots;
use super::to_dataplane_error;
use crate::ebpf::Tables;
use crate::p4rt::{DataplaneError, DataplaneErrorKind};

/// What a member (or one action of a one-shot set) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hop {
    /// `route_drop()`.
    Drop,
    /// `set_next_hop(port, dmac)`.
    Forward {
        /// Egress port.
        port: u16,
        /// Next hop MAC.
        dmac: [u8; 6],
    },
}

/// What a route points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One member.
    Member(u32),
    /// A group.
    Group(u32),
    /// A one-shot action set: (hop, weight) in the entry's order.
    OneShot(Vec<(Hop, u32)>),
}

/// An installed route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) target: Target,
    pub(crate) hit_slot: u32,
}

/// A route key: masked address and prefix length.
pub(crate) type Prefix = ([u8; 4], u32);

/// Routes, members and groups as installed.
#[derive(Debug)]
pub(crate) struct Wcmp {
    pub(crate) members: BTreeMap<u32, Hop>,
    pub(crate) groups: BTreeMap<u32, Vec<(u32, u32)>>,
    pub(crate) routes: BTreeMap<Prefix, Route>,
    pub(crate) slots: Slots,
    /// While restoring: routes found in the pinned map, not yet claimed.
    pub(crate) pinned: Option<HashMap<Prefix, Ipv4Route>>,
}

/// What the operations need besides the state.
pub(crate) struct Cx<'a> {
    pub(crate) tables: &'a mut Tables,
    pub(crate) ports: &'a PortMap,
    pub(crate) ids: &'a RouteIds,
}

impl Default for Wcmp {
    fn default() -> Self {
        Self {
            members: BTreeMap::new(),
            groups: BTreeMap::new(),
            routes: BTreeMap::new(),
            slots: Slots::new(IPV4_ROUTE_CAPACITY),
            pinned: None,
        }
    }
}

/// The hop of a member action (`set_next_hop` or `route_drop`), with its
/// port checked against the switch's interfaces.
pub(crate) fn decode_hop(cx: &Cx<'_>, action: &p4::Action) -> Result<Hop, DataplaneError> {
    let ids = cx.ids;
    if action.action_id == ids.route_drop {
        return Ok(Hop::Drop);
    }
    if action.action_id != ids.set_next_hop {
        return Err(invalid(format!(
            "action {:#010x} is not set_next_hop or route_drop",
            action.action_id
        )));
    }
    let port = decode::port_param(action, ids.next_hop_port, "set_next_hop")?;
    let (port, _) = cx.ports.resolve(port, "set_next_hop")?;
    let dmac = decode::mac_param(action, ids.next_hop_dmac, "set_next_hop")?;
    Ok(Hop::Forward { port, dmac })
}

/// The `NextHop` value of a hop.
fn next_hop(ports: &PortMap, hop: Hop) -> Result<NextHop, DataplaneError> {
    match hop {
        Hop::Drop => Ok(NextHop::drop()),
        Hop::Forward { port, dmac } => {
            let (_, p) = ports.resolve(u32::from(port), "next hop")?;
            Ok(NextHop {
                egress_ifindex: p.ifindex,
                egress_port: port,
                flags: 0,
                dst_mac: dmac,
                _pad: [0; 2],
            })
        }
    }
}

/// A group value: `hops` (with weights) expanded into slots.
fn expand(ports: &PortMap, hops: &[(Hop, u32)]) -> Result<WcmpGroup, DataplaneError> {
    let total: u64 = hops.iter().map(|(_, w)| u64::from(*w)).sum();
    if total > WCMP_MAX_SLOTS as u64 {
        return Err(DataplaneError::new(
            DataplaneErrorKind::Full,
            format!("the weights add up to {total}; a WCMP group holds {WCMP_MAX_SLOTS}"),
        ));
    }
    let mut group = WcmpGroup::default();
    let mut n = 0usize;
    for (hop, weight) in hops {
        let nh = next_hop(ports, *hop)?;
        for _ in 0..*weight {
            if let Some(slot) = group.slots.get_mut(n) {
                *slot = nh;
                n += 1;
            }
        }
    }
    group.slot_count = n as u32;
    Ok(group)
}

fn map_err(e: crate::ebpf::Error) -> DataplaneError {
    to_dataplane_error(&e)
}

impl Wcmp {
    /// The hops of group `members` ((member, weight), member ID order).
    fn group_hops(&self, members: &[(u32, u32)]) -> Result<Vec<(Hop, u32)>, DataplaneError> {
        members
            .iter()
            .map(|(m, w)| {
                self.members
                    .get(m)
                    .map(|hop| (*hop, *w))
                    .ok_or_else(|| invalid(format!("member {m} is not installed")))
            })
            .collect()
    }

    /// The `IPV4_ROUTES` value of a route.
    fn route_value(&self, ports: &PortMap, route: &Route) -> Result<Ipv4Route, DataplaneError> {
        let mut value = Ipv4Route {
            kind: ROUTE_KIND_GROUP,
            hit_slot: route.hit_slot,
            group_id: 0,
            next_hop: NextHop::default(),
        };
        match &route.target {
            Target::Member(m) => {
                let hop = self
                    .members
                    .get(m)
                    .ok_or_else(|| invalid(format!("member {m} is not installed")))?;
                value.kind = ROUTE_KIND_NEXT_HOP;
                value.next_hop = next_hop(ports, *hop)?;
            }
            Target::Group(g) => value.group_id = *g,
            Target::OneShot(_) => value.group_id = ONE_SHOT_GROUP_BASE + route.hit_slot,
        }
        Ok(value)
    }

    // ----- members ------------------------------------------------------

    /// Installs or changes member `id`; a change rewrites every group and
    /// route that uses the member.
    pub(crate) fn set_member(
        &mut self,
        cx: &mut Cx<'_>,
        id: u32,
        hop: Hop,
    ) -> Result<(), DataplaneError> {
        let Some(old) = self.members.insert(id, hop) else {
            return Ok(());
        };
        if let Err(e) = self.rewrite_users(cx, id) {
            self.members.insert(id, old);
            // Put back what was rewritten before the failure.
            let _ = self.rewrite_users(cx, id);
            return Err(e);
        }
        Ok(())
    }

    /// Forgets member `id` (the server checked that nothing uses it).
    pub(crate) fn remove_member(&mut self, id: u32) {
        self.members.remove(&id);
    }

    /// Rewrites the groups and routes that use member `id`.
    // TODO-correctness: the values are replaced one syscall at a time, so
    // for the microseconds between two of them a packet may reach the old
    // next hop through one group and the new one through another. Routes
    // referring to members by ID (one more lookup per packet) would make a
    // member change a single write.
    fn rewrite_users(&self, cx: &mut Cx<'_>, id: u32) -> Result<(), DataplaneError> {
        for (gid, members) in &self.groups {
            if members.iter().any(|(m, _)| *m == id) {
                let group = expand(cx.ports, &self.group_hops(members)?)?;
                cx.tables.set_group(*gid, &group).map_err(map_err)?;
            }
        }
        for ((addr, len), route) in &self.routes {
            if route.target == Target::Member(id) {
                let value = self.route_value(cx.ports, route)?;
                cx.tables
                    .insert_route(*addr, *len, &value)
                    .map_err(map_err)?;
            }
        }
        Ok(())
    }

    // ----- groups -------------------------------------------------------

    /// Installs or replaces group `id` with `members` ((member, weight)).
    pub(crate) fn set_group(
        &mut self,
        cx: &mut Cx<'_>,
        id: u32,
        mut members: Vec<(u32, u32)>,
    ) -> Result<(), DataplaneError> {
        if id >= ONE_SHOT_GROUP_BASE {
            return Err(invalid(format!(
                "group ID {id:#x}: IDs from {ONE_SHOT_GROUP_BASE:#x} on are reserved by the \
                 eBPF data plane (one-shot action sets)"
            )));
        }
        members.sort_unstable();
        let group = expand(cx.ports, &self.group_hops(&members)?)?;
        cx.tables.set_group(id, &group).map_err(map_err)?;
        self.groups.insert(id, members);
        Ok(())
    }

    /// Removes group `id` (the server checked that no route uses it).
    pub(crate) fn remove_group(&mut self, cx: &mut Cx<'_>, id: u32) -> Result<(), DataplaneError> {
        cx.tables.remove_group(id).map_err(map_err)?;
        self.groups.remove(&id);
        Ok(())
    }

    // ----- routes -------------------------------------------------------

    /// The target of a route entry's action.
    pub(crate) fn decode_target(
        cx: &Cx<'_>,
        entry: &p4::TableEntry,
    ) -> Result<Target, DataplaneError> {
        use p4::table_action::Type;
        match entry.action.as_ref().and_then(|a| a.r#type.as_ref()) {
            Some(Type::ActionProfileMemberId(m)) => Ok(Target::Member(*m)),
            Some(Type::ActionProfileGroupId(g)) => Ok(Target::Group(*g)),
            Some(Type::ActionProfileActionSet(set)) => {
                let mut hops = Vec::with_capacity(set.action_profile_actions.len());
                for a in &set.action_profile_actions {
                    let action = a
                        .action
                        .as_ref()
                        .ok_or_else(|| invalid("an action of the action set is empty"))?;
                    let weight = u32::try_from(a.weight)
                        .ok()
                        .filter(|w| *w >= 1)
                        .ok_or_else(|| invalid(format!("action set weight {}", a.weight)))?;
                    hops.push((decode_hop(cx, action)?, weight));
                }
                Ok(Target::OneShot(hops))
            }
            _ => Err(invalid(
                "ipv4_route entries name a member, a group or an action set",
            )),
        }
    }

    /// Installs the route `prefix` → `target`.
    pub(crate) fn insert_route(
        &mut self,
        cx: &mut Cx<'_>,
        prefix: Prefix,
        target: Target,
    ) -> Result<(), DataplaneError> {
        // A route the previous agent installed keeps its counter slot.
        let adopted = self
            .pinned
            .as_mut()
            .and_then(|p| p.remove(&prefix))
            .map(|old| old.hit_slot);
        let (hit_slot, fresh) = match adopted {
            Some(slot) => (slot, false),
            None => {
                let slot = self.slots.take().ok_or_else(|| {
                    DataplaneError::new(
                        DataplaneErrorKind::Full,
                        format!("IPV4_ROUTES is full ({IPV4_ROUTE_CAPACITY} routes)"),
                    )
                })?;
                (slot, true)
            }
        };
        let route = Route { target, hit_slot };
        let written = self.write_route(cx, prefix, &route, None, fresh);
        match written {
            Ok(()) => {
                self.routes.insert(prefix, route);
                Ok(())
            }
            Err(e) => {
                if fresh {
                    self.slots.free(hit_slot);
                }
                Err(e)
            }
        }
    }

    /// Changes the target of the route `prefix`, keeping its counter.
    pub(crate) fn modify_route(
        &mut self,
        cx: &mut Cx<'_>,
        prefix: Prefix,
        target: Target,
    ) -> Result<(), DataplaneError> {
        let old = self
            .routes
            .get(&prefix)
            .cloned()
            .ok_or_else(|| invalid("the route is not installed"))?;
        let route = Route {
            target,
            hit_slot: old.hit_slot,
        };
        self.write_route(cx, prefix, &route, Some(&old), false)?;
        self.routes.insert(prefix, route);
        Ok(())
    }

    /// Writes `route` (replacing `old`, if any): its one-shot group first,
    /// then the route; undoes the group write when the route write fails,
    /// and drops a one-shot group the route no longer uses.
    fn write_route(
        &self,
        cx: &mut Cx<'_>,
        (addr, len): Prefix,
        route: &Route,
        old: Option<&Route>,
        zero_counter: bool,
    ) -> Result<(), DataplaneError> {
        let value = self.route_value(cx.ports, route)?;
        let one_shot = ONE_SHOT_GROUP_BASE + route.hit_slot;
        if let Target::OneShot(hops) = &route.target {
            let group = expand(cx.ports, hops)?;
            cx.tables.set_group(one_shot, &group).map_err(map_err)?;
        }
        if zero_counter {
            cx.tables
                .reset_route_hits(route.hit_slot)
                .map_err(map_err)?;
        }
        if let Err(e) = cx.tables.insert_route(addr, len, &value) {
            // Put the old one-shot group back, or drop the new one.
            match old.map(|o| &o.target) {
                Some(Target::OneShot(hops)) => {
                    if let Ok(group) = expand(cx.ports, hops) {
                        let _ = cx.tables.set_group(one_shot, &group);
                    }
                }
                _ if matches!(route.target, Target::OneShot(_)) => {
                    let _ = cx.tables.remove_group(one_shot);
                }
                _ => {}
            }
            return Err(map_err(e));
        }
        let was_one_shot = matches!(old.map(|o| &o.target), Some(Target::OneShot(_)));
        if was_one_shot && !matches!(route.target, Target::OneShot(_)) {
            let _ = cx.tables.remove_group(one_shot);
        }
        Ok(())
    }

    /// Removes the route `prefix`.
    pub(crate) fn remove_route(
        &mut self,
        cx: &mut Cx<'_>,
        prefix: Prefix,
    ) -> Result<(), DataplaneError> {
        cx.tables
            .remove_route(prefix.0, prefix.1)
            .map_err(map_err)?;
        if let Some(route) = self.routes.remove(&prefix) {
            if matches!(route.target, Target::OneShot(_)) {
                let _ = cx.tables.remove_group(ONE_SHOT_GROUP_BASE + route.hit_slot);
            }
            self.slots.free(route.hit_slot);
        }
        Ok(())
    }

    /// The counter of route `prefix` (zero when it is not installed).
    pub(crate) fn route_hits(
        &self,
        tables: &Tables,
        prefix: Prefix,
    ) -> Result<Counter, DataplaneError> {
        match self.routes.get(&prefix) {
            Some(route) => tables.route_hits(route.hit_slot).map_err(map_err),
            None => Ok(Counter::default()),
        }
    }

    /// Removes every route and group from the maps and forgets everything.
    pub(crate) fn clear(&mut self, tables: &mut Tables) -> Result<(), DataplaneError> {
        for ((addr, len), _) in tables.routes().map_err(map_err)? {
            tables.remove_route(addr, len).map_err(map_err)?;
        }
        for (id, _) in tables.groups().map_err(map_err)? {
            tables.remove_group(id).map_err(map_err)?;
        }
        *self = Self::default();
        Ok(())
    }
}
