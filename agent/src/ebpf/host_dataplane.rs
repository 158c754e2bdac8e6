//! [`EbpfHostDataplane`]: the P4Runtime data plane of a `solyx_host` node.
//! Validated P4Runtime changes become writes of the host programs' maps
//! ([`Host`]); counters are read from their per-CPU maps.
//!
//! Register `HostEgress.flow_key_register` is read from `FLOW_KEYS`: each
//! cell the 104-bit concatenation of the 5-tuple that last counted in the
//! flow bucket (see [`FlowKey::to_p4_bytes`]), canonical (shortest
//! big-endian bytes, zero as one `0x00` byte). Writes of it are refused by
//! the server (UNIMPLEMENTED): the program owns the cells.
//!
//! Members of `HostEgress.path_selector` (`set_path`) exist only here:
//! their resolved path is copied into every group that uses them, and a
//! route to a single member gets a one-slot group of its own
//! (`HOST_ONE_SHOT_BASE + hit slot`), so the program always does one trie
//! and one hash lookup. Every group write bumps the group's version, so
//! flowlets of the old value pick again (a weight change takes effect at
//! the next flowlet of every flow, never inside a burst).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use solyx_ebpf_common::host::{
    FlowKey, HostGroup, HostPath, HostRoute, SinkPort, FLOW_BUCKETS, HOST_MAX_SLOTS,
    HOST_ONE_SHOT_BASE, HOST_PATH_SLOTS, HOST_ROUTE_CAPACITY, SINK_FLAG_CONSUME,
};
use solyx_ebpf_common::Counter;
use solyx_p4runtime::p4info::MatchKind;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

use super::dataplane::decode::{self, invalid};
use super::dataplane::names::Resolver;
use super::dataplane::slots::Slots;
use super::dataplane::state::counter_data;
use super::dataplane::{to_dataplane_error, PortMap, SwitchPorts};
use super::{bpffs, Error, Host};
use crate::p4rt::{
    Change, Dataplane, DataplaneError, DataplaneErrorKind, Entry, PacketInSink, PacketOut,
};

/// The P4Info package name this data plane runs.
pub const HOST_PIPELINE: &str = "solyx_host";

/// What this data plane implements, for the message refusing a P4Info.
pub const HOST_IMPLEMENTS: &str = "tables HostEgress.host_route (set_path, no_path) with action \
     selector HostEgress.path_selector, HostIngress.int_sink_port (int_sink_strip, \
     int_sink_consume, int_sink_none); counters HostEgress.path_counter, \
     HostEgress.flow_bytes_counter; direct counter HostEgress.host_route_counter; register \
     HostEgress.flow_key_register (bit<104>, read only)";

/// The P4Runtime IDs the host data plane dispatches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostIds {
    route: u32,
    dst: u32,
    selector: u32,
    set_path: u32,
    p_port: u32,
    p_label: u32,
    p_dmac: u32,
    p_path_id: u32,
    sink: u32,
    sink_port: u32,
    strip: u32,
    consume: u32,
    path_counter: u32,
    flow_counter: u32,
    flow_key_register: u32,
}

impl HostIds {
    fn resolve(index: &P4InfoIndex) -> Result<Self, String> {
        let (_, package) = index.package();
        if package != HOST_PIPELINE {
            return Err(format!(
                "the eBPF host data plane runs pipeline {HOST_PIPELINE:?} only, not \
                 {package:?}; it implements {HOST_IMPLEMENTS}"
            ));
        }
        let mut r = Resolver::new(index);
        let route = r.table("HostEgress.host_route");
        let dst = r.field(route, "ipv4_dst", MatchKind::Lpm, 32);
        let (set_path, [p_port, p_label, p_dmac, p_path_id]) = r.action(
            "HostEgress.set_path",
            [("port", 9), ("label", 20), ("dmac", 48), ("path_id", 8)],
        );
        let _ = r.action("HostEgress.no_path", []);
        let selector = match index.action_profiles.by_name("HostEgress.path_selector") {
            Some(p) if p.with_selector && route.is_some_and(|t| p.table_ids.contains(&t.id)) => {
                p.id
            }
            _ => {
                r.problems.push(
                    "HostEgress.path_selector is missing or not an action selector of host_route"
                        .into(),
                );
                0
            }
        };
        let sink = r.table("HostIngress.int_sink_port");
        let ids = Self {
            route: route.map_or(0, |t| t.id),
            dst,
            selector,
            set_path,
            p_port,
            p_label,
            p_dmac,
            p_path_id,
            sink: sink.map_or(0, |t| t.id),
            sink_port: r.field(sink, "l4_dst_port", MatchKind::Exact, 16),
            strip: r.action("HostIngress.int_sink_strip", []).0,
            consume: r.action("HostIngress.int_sink_consume", []).0,
            path_counter: r.counter("HostEgress.path_counter"),
            flow_counter: r.counter("HostEgress.flow_bytes_counter"),
            flow_key_register: flow_key_register(index, &mut r.problems),
        };
        let _ = r.action("HostIngress.int_sink_none", []);
        if r.problems.is_empty() {
            Ok(ids)
        } else {
            Err(format!(
                "this {HOST_PIPELINE} P4Info does not match the eBPF host data plane ({}); \
                 it implements {HOST_IMPLEMENTS}",
                r.problems.join("; ")
            ))
        }
    }
}

/// The ID of `HostEgress.flow_key_register`, checked: 104-bit cells, one per
/// flow bucket.
fn flow_key_register(index: &P4InfoIndex, problems: &mut Vec<String>) -> u32 {
    use solyx_p4runtime::proto::p4::config::v1::{p4_bitstring_like_type_spec, p4_data_type_spec};
    const NAME: &str = "HostEgress.flow_key_register";
    let Some(info) = index.registers.by_name(NAME) else {
        problems.push(format!("register {NAME} is missing"));
        return 0;
    };
    let width = index
        .p4info()
        .registers
        .iter()
        .find(|r| r.preamble.as_ref().is_some_and(|p| p.id == info.id))
        .and_then(|r| r.type_spec.as_ref()?.type_spec.as_ref())
        .and_then(|t| match t {
            p4_data_type_spec::TypeSpec::Bitstring(b) => match b.type_spec.as_ref()? {
                p4_bitstring_like_type_spec::TypeSpec::Bit(bit) => Some(bit.bitwidth),
                _ => None,
            },
            _ => None,
        });
    if width != Some(FLOW_KEY_BITS) {
        problems.push(format!(
            "register {NAME} must hold bit<{FLOW_KEY_BITS}> cells, the P4Info says {}",
            width.map_or_else(|| "another type".to_string(), |w| format!("bit<{w}>"))
        ));
    }
    if info.size != i64::from(FLOW_BUCKETS) {
        problems.push(format!(
            "register {NAME} must have {FLOW_BUCKETS} cells, the P4Info says {}",
            info.size
        ));
    }
    info.id
}

/// Bits of a `flow_key_register` cell: addresses, protocol, ports.
const FLOW_KEY_BITS: i32 = 104;

/// One path as the controller gave it (`set_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathSpec {
    /// Host port.
    pub port: u16,
    /// MPLS label.
    pub label: u32,
    /// Next-hop MAC.
    pub dmac: [u8; 6],
    /// Path counter index.
    pub path_id: u8,
}

/// A path the prober sends along: a route's destination and one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The route's prefix and length.
    pub prefix: ([u8; 4], u32),
    /// The member's path.
    pub path: PathSpec,
    /// Interface index of the path's port.
    pub ifindex: u32,
    /// Interface name of the path's port.
    pub interface: String,
    /// MAC of the port's interface.
    pub src_mac: [u8; 6],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Member(u32),
    Group(u32),
}

#[derive(Debug, Clone, Copy)]
struct RouteState {
    target: Target,
    hit_slot: u32,
}

/// Reads one cell of an indexed counter.
type CellReader = fn(&Host, u32) -> Result<Counter, Error>;

struct State {
    host: Host,
    ports: PortMap,
    macs: BTreeMap<u16, [u8; 6]>,
    ids: Option<HostIds>,
    members: BTreeMap<u32, PathSpec>,
    groups: BTreeMap<u32, Vec<(u32, u32)>>,
    routes: BTreeMap<([u8; 4], u32), RouteState>,
    slots: Slots,
    version: u32,
    /// Sink ports installed.
    sinks: BTreeMap<u16, u32>,
    /// During a restore: the routes a previous agent left in the map, whose
    /// counter slots the replayed routes take over.
    pinned_routes: Option<BTreeMap<([u8; 4], u32), HostRoute>>,
}

fn map_err(e: Error) -> DataplaneError {
    to_dataplane_error(&e)
}

impl State {
    fn ids(&self) -> Result<HostIds, DataplaneError> {
        self.ids.ok_or_else(|| {
            DataplaneError::new(DataplaneErrorKind::Unavailable, "no pipeline is committed")
        })
    }

    fn clear(&mut self) -> Result<(), DataplaneError> {
        self.host.clear().map_err(map_err)?;
        self.forget();
        Ok(())
    }

    fn forget(&mut self) {
        self.members.clear();
        self.groups.clear();
        self.routes.clear();
        self.sinks.clear();
        self.slots = Slots::new(HOST_ROUTE_CAPACITY);
        self.pinned_routes = None;
    }

    /// Starts a restore: the maps keep forwarding as they are while the
    /// saved entities are replayed over them.
    fn begin_restore(&mut self, ids: HostIds) -> Result<(), DataplaneError> {
        self.forget();
        let pinned = self.host.route_entries().map_err(map_err)?;
        self.pinned_routes = Some(pinned.into_iter().collect());
        self.ids = Some(ids);
        Ok(())
    }

    /// Ends a restore: what the replay did not claim goes.
    fn finish_restore(&mut self) -> Result<usize, DataplaneError> {
        let mut removed = 0;
        if let Some(pinned) = self.pinned_routes.take() {
            for (key, _) in pinned {
                if !self.routes.contains_key(&key) {
                    self.host.remove_route(key.0, key.1).map_err(map_err)?;
                    removed += 1;
                }
            }
        }
        let one_shot: Vec<u32> = self
            .routes
            .values()
            .filter(|r| matches!(r.target, Target::Member(_)))
            .map(|r| HOST_ONE_SHOT_BASE + r.hit_slot)
            .collect();
        for id in self.host.group_ids().map_err(map_err)? {
            if !self.groups.contains_key(&id) && !one_shot.contains(&id) {
                self.host.remove_group(id).map_err(map_err)?;
                removed += 1;
            }
        }
        for port in self.host.sink_port_entries().map_err(map_err)? {
            if !self.sinks.contains_key(&port) {
                self.host.remove_sink_port(port).map_err(map_err)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn resolve_path(&self, spec: PathSpec) -> Result<HostPath, DataplaneError> {
        let (port, p) = self.ports.resolve(u32::from(spec.port), "set_path")?;
        Ok(HostPath {
            label: spec.label,
            egress_ifindex: p.ifindex,
            egress_port: port,
            path_id: u16::from(spec.path_id),
            dst_mac: spec.dmac,
            src_mac: self.macs.get(&port).copied().unwrap_or_default(),
        })
    }

    fn expand(&mut self, members: &[(u32, u32)]) -> Result<HostGroup, DataplaneError> {
        let mut group = HostGroup::default();
        let mut n = 0usize;
        for (member, weight) in members {
            let spec = *self
                .members
                .get(member)
                .ok_or_else(|| invalid(format!("member {member} does not exist")))?;
            let path = self.resolve_path(spec)?;
            for _ in 0..*weight {
                if n >= HOST_MAX_SLOTS {
                    return Err(DataplaneError::new(
                        DataplaneErrorKind::Full,
                        format!("the weights of a group add up to more than {HOST_MAX_SLOTS}"),
                    ));
                }
                group.slots[n] = path;
                n += 1;
            }
        }
        group.slot_count = n as u32;
        self.version = self.version.wrapping_add(1);
        group.version = self.version;
        Ok(group)
    }

    fn write_group_value(&mut self, id: u32, members: &[(u32, u32)]) -> Result<(), DataplaneError> {
        let value = self.expand(members)?;
        self.host.set_group(id, &value).map_err(map_err)
    }

    fn route_group(&mut self, route: RouteState) -> Result<u32, DataplaneError> {
        match route.target {
            Target::Group(g) => Ok(g),
            Target::Member(m) => {
                let id = HOST_ONE_SHOT_BASE + route.hit_slot;
                self.write_group_value(id, &[(m, 1)])?;
                Ok(id)
            }
        }
    }

    fn decode_target(ids: &HostIds, t: &p4::TableEntry) -> Result<Target, DataplaneError> {
        match t.action.as_ref().and_then(|a| a.r#type.as_ref()) {
            Some(p4::table_action::Type::ActionProfileMemberId(m)) => Ok(Target::Member(*m)),
            Some(p4::table_action::Type::ActionProfileGroupId(g)) => Ok(Target::Group(*g)),
            _ => Err(invalid(format!(
                "host_route ({:#010x}) entries name a member or a group of path_selector",
                ids.route
            ))),
        }
    }

    fn apply(&mut self, change: &Change<'_>) -> Result<(), DataplaneError> {
        let ids = self.ids()?;
        match change {
            Change::Insert(e) => self.write(&ids, e, false),
            Change::Modify { new, .. } => self.write(&ids, new, false),
            Change::Delete(e) => self.write(&ids, e, true),
        }
    }

    fn write(&mut self, ids: &HostIds, e: &Entry<'_>, delete: bool) -> Result<(), DataplaneError> {
        match e {
            Entry::Table(t) if t.table_id == ids.route && !t.is_default_action => {
                self.write_route(ids, t, delete)
            }
            Entry::Table(t) if t.table_id == ids.sink && !t.is_default_action => {
                self.write_sink(ids, t, delete)
            }
            // The default entries are constant (no_path, int_sink_none).
            Entry::Table(t) if t.is_default_action => Ok(()),
            Entry::Member(m) if m.action_profile_id == ids.selector => {
                self.write_member(ids, m, delete)
            }
            Entry::Group(g) if g.action_profile_id == ids.selector => self.write_group(g, delete),
            _ => Err(DataplaneError::new(
                DataplaneErrorKind::Unsupported,
                format!("the eBPF host data plane implements {HOST_IMPLEMENTS}"),
            )),
        }
    }

    fn write_route(
        &mut self,
        ids: &HostIds,
        t: &p4::TableEntry,
        delete: bool,
    ) -> Result<(), DataplaneError> {
        let key = decode::lpm(t, ids.dst)?;
        if delete {
            if let Some(old) = self.routes.remove(&key) {
                self.host.remove_route(key.0, key.1).map_err(map_err)?;
                if let Target::Member(_) = old.target {
                    let _ = self.host.remove_group(HOST_ONE_SHOT_BASE + old.hit_slot);
                }
                self.slots.free(old.hit_slot);
            }
            return Ok(());
        }
        let target = Self::decode_target(ids, t)?;
        // At a restore, a route a previous agent left keeps its counter.
        let adopted = self
            .pinned_routes
            .as_mut()
            .and_then(|p| p.remove(&key))
            .map(|r| r.hit_slot)
            .filter(|slot| !self.routes.contains_key(&key) && self.slots.reserve(*slot));
        let (hit_slot, fresh) = match (self.routes.get(&key), adopted) {
            (Some(old), _) => (old.hit_slot, false),
            (None, Some(slot)) => (slot, false),
            (None, None) => (
                self.slots.take().ok_or_else(|| {
                    DataplaneError::new(
                        DataplaneErrorKind::Full,
                        format!("host_route holds {HOST_ROUTE_CAPACITY} entries"),
                    )
                })?,
                true,
            ),
        };
        let route = RouteState { target, hit_slot };
        let written = self.route_group(route).and_then(|group_id| {
            if fresh {
                self.host.reset_route_hits(hit_slot).map_err(map_err)?;
            }
            self.host
                .insert_route(key.0, key.1, HostRoute { group_id, hit_slot })
                .map_err(map_err)
        });
        if let Err(e) = written {
            if fresh || adopted.is_some() {
                self.slots.free(hit_slot);
            }
            return Err(e);
        }
        if let Some(old) = self.routes.insert(key, route) {
            if matches!(old.target, Target::Member(_)) && matches!(target, Target::Group(_)) {
                let _ = self.host.remove_group(HOST_ONE_SHOT_BASE + hit_slot);
            }
        }
        Ok(())
    }

    fn write_sink(
        &mut self,
        ids: &HostIds,
        t: &p4::TableEntry,
        delete: bool,
    ) -> Result<(), DataplaneError> {
        let value = decode::exact(t, ids.sink_port, "int_sink_port")?;
        let port = decode::uint(value)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| invalid("l4_dst_port: wider than 16 bits"))?;
        if delete {
            self.host.remove_sink_port(port).map_err(map_err)?;
            self.sinks.remove(&port);
            return Ok(());
        }
        let action = decode::direct_action(t).ok_or_else(|| invalid("int_sink_port: no action"))?;
        let flags = if action.action_id == ids.consume {
            SINK_FLAG_CONSUME
        } else if action.action_id == ids.strip {
            0
        } else {
            return Err(invalid(
                "int_sink_port entries take int_sink_strip or int_sink_consume",
            ));
        };
        self.host
            .insert_sink_port(port, SinkPort { flags })
            .map_err(map_err)?;
        self.sinks.insert(port, flags);
        Ok(())
    }

    fn write_member(
        &mut self,
        ids: &HostIds,
        m: &p4::ActionProfileMember,
        delete: bool,
    ) -> Result<(), DataplaneError> {
        if delete {
            self.members.remove(&m.member_id);
            return Ok(());
        }
        let action = m
            .action
            .as_ref()
            .ok_or_else(|| invalid("the member has no action"))?;
        if action.action_id != ids.set_path {
            return Err(invalid("path_selector members take set_path"));
        }
        let port = decode::port_param(action, ids.p_port, "set_path port")?;
        let label = decode::uint(decode::param(action, ids.p_label, "set_path label")?)
            .filter(|l| *l < (1 << 20))
            .ok_or_else(|| invalid("set_path label: wider than 20 bits"))?;
        let dmac = decode::mac_param(action, ids.p_dmac, "set_path dmac")?;
        let path_id = decode::uint(decode::param(action, ids.p_path_id, "set_path path_id")?)
            .and_then(|p| u8::try_from(p).ok())
            .filter(|p| u32::from(*p) < HOST_PATH_SLOTS)
            .ok_or_else(|| invalid("set_path path_id: wider than 8 bits"))?;
        let spec = PathSpec {
            port: u16::try_from(port).map_err(|_| invalid("set_path port: too large"))?,
            label,
            dmac,
            path_id,
        };
        self.resolve_path(spec)?;
        let old = self.members.insert(m.member_id, spec);
        // Every group and one-shot route that uses the member.
        let users: Vec<(u32, Vec<(u32, u32)>)> = self
            .groups
            .iter()
            .filter(|(_, ms)| ms.iter().any(|(id, _)| *id == m.member_id))
            .map(|(g, ms)| (*g, ms.clone()))
            .collect();
        let routes: Vec<RouteState> = self
            .routes
            .values()
            .filter(|r| r.target == Target::Member(m.member_id))
            .copied()
            .collect();
        let rewritten = users
            .iter()
            .try_for_each(|(g, ms)| self.write_group_value(*g, ms))
            .and_then(|()| {
                routes
                    .iter()
                    .try_for_each(|r| self.route_group(*r).map(|_| ()))
            });
        if let Err(e) = rewritten {
            match old {
                Some(old) => self.members.insert(m.member_id, old),
                None => self.members.remove(&m.member_id),
            };
            return Err(e);
        }
        Ok(())
    }

    fn write_group(
        &mut self,
        g: &p4::ActionProfileGroup,
        delete: bool,
    ) -> Result<(), DataplaneError> {
        if g.group_id >= HOST_ONE_SHOT_BASE {
            return Err(invalid(format!(
                "group IDs from {HOST_ONE_SHOT_BASE:#x} on are reserved"
            )));
        }
        if delete {
            self.groups.remove(&g.group_id);
            self.host.remove_group(g.group_id).map_err(map_err)?;
            return Ok(());
        }
        let members: Vec<(u32, u32)> = g
            .members
            .iter()
            .map(|m| (m.member_id, u32::try_from(m.weight).unwrap_or(0).max(1)))
            .collect();
        self.write_group_value(g.group_id, &members)?;
        self.groups.insert(g.group_id, members);
        Ok(())
    }

    fn direct_counter(&self, t: &p4::TableEntry) -> Result<p4::CounterData, DataplaneError> {
        let ids = self.ids()?;
        if t.table_id != ids.route || t.is_default_action {
            // TODO-completeness: the default entry (no_path) is not counted.
            return Ok(counter_data(Counter::default()));
        }
        let key = decode::lpm(t, ids.dst)?;
        match self.routes.get(&key) {
            Some(r) => self
                .host
                .route_hits(r.hit_slot)
                .map(counter_data)
                .map_err(map_err),
            None => Ok(counter_data(Counter::default())),
        }
    }

    fn counter(
        &self,
        id: u32,
        indices: Range<i64>,
    ) -> Result<Vec<p4::CounterData>, DataplaneError> {
        let ids = self.ids()?;
        let (size, read): (u32, CellReader) = if id == ids.path_counter {
            (HOST_PATH_SLOTS, Host::path_hits)
        } else if id == ids.flow_counter {
            (FLOW_BUCKETS, Host::flow_bytes)
        } else {
            return Err(DataplaneError::new(
                DataplaneErrorKind::Unsupported,
                format!("counter {id:#010x} is not implemented"),
            ));
        };
        indices
            .map(|i| match u32::try_from(i).ok().filter(|i| *i < size) {
                Some(i) => read(&self.host, i).map(counter_data).map_err(map_err),
                None => Ok(p4::CounterData::default()),
            })
            .collect()
    }

    fn register(&self, id: u32, indices: Range<i64>) -> Result<Vec<p4::P4Data>, DataplaneError> {
        let ids = self.ids()?;
        if id != ids.flow_key_register {
            return Err(DataplaneError::new(
                DataplaneErrorKind::Unsupported,
                format!("register {id:#010x} is not implemented"),
            ));
        }
        indices
            .map(|i| {
                let bucket = u32::try_from(i)
                    .ok()
                    .filter(|b| *b < FLOW_BUCKETS)
                    .ok_or_else(|| {
                        invalid(format!(
                            "flow_key_register: index {i} is outside 0..{FLOW_BUCKETS}"
                        ))
                    })?;
                let key = self.host.flow_key(bucket).map_err(map_err)?;
                Ok(flow_key_data(&key))
            })
            .collect()
    }

    fn probe_targets(&self) -> Vec<ProbeTarget> {
        let mut out = Vec::new();
        for (prefix, route) in &self.routes {
            let members: Vec<u32> = match route.target {
                Target::Member(m) => vec![m],
                Target::Group(g) => self
                    .groups
                    .get(&g)
                    .map(|ms| ms.iter().map(|(m, _)| *m).collect())
                    .unwrap_or_default(),
            };
            for m in members {
                let Some(spec) = self.members.get(&m) else {
                    continue;
                };
                let Some(port) = self.ports.get(spec.port) else {
                    continue;
                };
                out.push(ProbeTarget {
                    prefix: *prefix,
                    path: *spec,
                    ifindex: port.ifindex,
                    interface: port.interface.clone(),
                    src_mac: self.macs.get(&spec.port).copied().unwrap_or_default(),
                });
            }
        }
        out
    }
}

/// A `flow_key_register` cell as P4Runtime sends it: a canonical
/// bitstring (leading zero bytes dropped, zero as one byte).
fn flow_key_data(key: &FlowKey) -> p4::P4Data {
    let bytes = key.to_p4_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    p4::P4Data {
        data: Some(p4::p4_data::Data::Bitstring(bytes[first..].to_vec())),
    }
}

/// The eBPF data plane of a `solyx_host` node.
pub struct EbpfHostDataplane {
    state: Mutex<State>,
    ports: PortMap,
}

impl std::fmt::Debug for EbpfHostDataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EbpfHostDataplane")
            .field("ports", &self.ports.to_string())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The MAC address of interface `name` (calling thread's namespace).
fn interface_mac(name: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    bytes.try_into().ok()
}

impl EbpfHostDataplane {
    /// Loads the host programs for `host.instance` under `pin_root`,
    /// attaches them to every port (calling thread's namespace) and sets
    /// the flowlet gap.
    ///
    /// # Errors
    /// A port is invalid, an interface is missing, or loading failed.
    pub fn start_with(
        pin_root: &Path,
        host: &SwitchPorts,
        flowlet_gap_ns: u64,
    ) -> Result<Self, Error> {
        for spec in &host.ports {
            spec.check().map_err(|e| Error::invalid("port", e))?;
            if let Err(e) = nix::net::if_::if_nametoindex(spec.interface.as_str()) {
                return Err(Error::invalid(
                    "port",
                    format!("port {}: interface {:?}: {e}", spec.port, spec.interface),
                ));
            }
        }
        let mut programs = Host::load_with(pin_root, &host.instance)?;
        let mut ports = PortMap::default();
        let mut macs = BTreeMap::new();
        for spec in &host.ports {
            let ifindex = programs.attach(&spec.interface, spec.port)?;
            ports.insert(spec.port, &spec.interface, ifindex);
            if let Some(mac) = interface_mac(&spec.interface) {
                macs.insert(spec.port, mac);
            }
        }
        programs.retain_ports()?;
        programs.set_flowlet_gap(flowlet_gap_ns)?;
        tracing::info!(instance = %host.instance, ports = %ports, flowlet_gap_ns, "eBPF host data plane ready");
        Ok(Self {
            state: Mutex::new(State {
                host: programs,
                ports: ports.clone(),
                macs,
                ids: None,
                members: BTreeMap::new(),
                groups: BTreeMap::new(),
                routes: BTreeMap::new(),
                slots: Slots::new(HOST_ROUTE_CAPACITY),
                version: 0,
                sinks: BTreeMap::new(),
                pinned_routes: None,
            }),
            ports,
        })
    }

    /// [`EbpfHostDataplane::start_with`] under the default pin root.
    ///
    /// # Errors
    /// As [`EbpfHostDataplane::start_with`].
    pub fn start(host: &SwitchPorts, flowlet_gap_ns: u64) -> Result<Self, Error> {
        Self::start_with(Path::new(bpffs::DEFAULT_PIN_ROOT), host, flowlet_gap_ns)
    }

    /// The ports.
    #[must_use]
    pub fn ports(&self) -> &PortMap {
        &self.ports
    }

    /// Runs `f` on the loaded programs and maps (diagnostics and tests).
    pub fn with_host<R>(&self, f: impl FnOnce(&mut Host) -> R) -> R {
        f(&mut lock(&self.state).host)
    }

    /// Every (route, member) path, for the prober.
    #[must_use]
    pub fn probe_targets(&self) -> Vec<ProbeTarget> {
        lock(&self.state).probe_targets()
    }

    /// Empties the tables (a start without saved state).
    ///
    /// # Errors
    /// A map could not be emptied.
    pub fn clear_tables(&self) -> Result<(), DataplaneError> {
        lock(&self.state).clear()
    }
}

fn resolve(p4info: &P4InfoIndex) -> Result<HostIds, DataplaneError> {
    HostIds::resolve(p4info).map_err(|e| DataplaneError::new(DataplaneErrorKind::Invalid, e))
}

impl Dataplane for EbpfHostDataplane {
    fn name(&self) -> &str {
        "ebpf-host"
    }

    fn attach(&self, _packet_ins: PacketInSink) {
        // solyx_host has no packet-in.
    }

    fn verify_pipeline(
        &self,
        p4info: &P4InfoIndex,
        _device_config: &[u8],
    ) -> Result<(), DataplaneError> {
        resolve(p4info).map(|_| ())
    }

    fn commit_pipeline(
        &self,
        p4info: &Arc<P4InfoIndex>,
        _device_config: &[u8],
    ) -> Result<(), DataplaneError> {
        let ids = resolve(p4info)?;
        let mut state = lock(&self.state);
        state.clear()?;
        state.ids = Some(ids);
        Ok(())
    }

    fn restore_pipeline(
        &self,
        p4info: &Arc<P4InfoIndex>,
        _device_config: &[u8],
    ) -> Result<(), DataplaneError> {
        let ids = resolve(p4info)?;
        lock(&self.state).begin_restore(ids)
    }

    fn restore_finished(&self) -> Result<(), DataplaneError> {
        let removed = lock(&self.state).finish_restore()?;
        tracing::info!(
            stale_removed = removed,
            "eBPF host: pinned state taken over"
        );
        Ok(())
    }

    fn apply(&self, change: &Change<'_>) -> Result<(), DataplaneError> {
        lock(&self.state).apply(change)
    }

    fn read_counter(
        &self,
        counter_id: u32,
        indices: Range<i64>,
    ) -> Result<Vec<p4::CounterData>, DataplaneError> {
        lock(&self.state).counter(counter_id, indices)
    }

    fn read_direct_counter(
        &self,
        entry: &p4::TableEntry,
    ) -> Result<p4::CounterData, DataplaneError> {
        lock(&self.state).direct_counter(entry)
    }

    fn read_register(
        &self,
        register_id: u32,
        indices: Range<i64>,
    ) -> Result<Vec<p4::P4Data>, DataplaneError> {
        lock(&self.state).register(register_id, indices)
    }

    fn packet_out(&self, _packet: PacketOut) -> Result<(), DataplaneError> {
        Err(DataplaneError::new(
            DataplaneErrorKind::Unsupported,
            "solyx_host has no packet-out",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = include_str!("../../../p4/solyx_host/solyx_host.p4info.txtpb");
    const FABRIC: &str = include_str!("../../../p4/solyx_fabric/solyx_fabric.p4info.txtpb");

    #[test]
    fn the_committed_p4info_resolves() {
        let index = P4InfoIndex::from_text(HOST).expect("host P4Info");
        let ids = HostIds::resolve(&index).expect("resolves");
        assert_eq!(ids.route, 0x0200_0401);
        assert_eq!(ids.selector, 0x1100_0401);
        assert!(
            [ids.p_label, ids.p_path_id, ids.sink_port, ids.flow_counter]
                .iter()
                .all(|id| *id != 0)
        );
        assert_eq!(ids.flow_key_register, 0x1600_0401);
    }

    #[test]
    fn a_flow_key_register_of_another_width_is_refused() {
        let text = HOST.replacen("bitwidth: 104", "bitwidth: 96", 1);
        let index = P4InfoIndex::from_text(&text).expect("P4Info");
        let e = HostIds::resolve(&index).expect_err("refused");
        assert!(
            e.contains("flow_key_register") && e.contains("bit<96>"),
            "{e}"
        );
    }

    #[test]
    fn flow_key_cells_are_canonical_bitstrings() {
        let key = FlowKey {
            src: [10, 0, 1, 1],
            dst: [10, 0, 2, 2],
            sport: 40_000,
            dport: 5000,
            proto: 17,
            _pad: [0; 3],
        };
        let data = |k: &FlowKey| match flow_key_data(k).data {
            Some(p4::p4_data::Data::Bitstring(b)) => b,
            other => panic!("{other:?}"),
        };
        assert_eq!(data(&key), key.to_p4_bytes().to_vec());
        assert_eq!(data(&FlowKey::default()), vec![0]);
        let low = FlowKey {
            src: [0; 4],
            dst: [0, 0, 0, 1],
            ..FlowKey::default()
        };
        assert_eq!(data(&low), vec![1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn the_fabric_pipeline_is_refused_with_what_is_implemented() {
        let index = P4InfoIndex::from_text(FABRIC).expect("fabric P4Info");
        let e = HostIds::resolve(&index).expect_err("refused");
        assert!(
            e.contains("solyx_host") && e.contains("HostEgress.host_route"),
            "{e}"
        );
    }

    #[test]
    fn a_changed_width_is_named() {
        let text = HOST.replacen("bitwidth: 20", "bitwidth: 24", 1);
        let index = P4InfoIndex::from_text(&text).expect("P4Info");
        let e = HostIds::resolve(&index).expect_err("refused");
        assert!(e.contains("label") && e.contains("bit<24>"), "{e}");
    }
}
