//! [`State`]: what the eBPF fabric data plane has installed, and how each
//! validated P4Runtime change becomes map updates: one arm per table,
//! members and groups of `wcmp_selector`, counters.
//!
//! | P4Runtime | maps |
//! | --- | --- |
//! | `acl` entry / default entry | the rules in memory; a new `ACL_TABLE` rule table (swapped whole) once per Write ([`State::end_batch`]); `ACL_HITS` slot zeroed for a new rule |
//! | `mpls_forward` entry | `MPLS_FORWARD[label]`, `MPLS_HITS[label]` |
//! | `ipv4_route` entry | `IPV4_ROUTES[prefix]` (+ a one-shot group in `WCMP_GROUPS`), `IPV4_ROUTE_HITS` slot zeroed for a new route |
//! | `wcmp_selector` member | nothing by itself; every group and route using it is rewritten |
//! | `wcmp_selector` group | `WCMP_GROUPS[id]` |
//! | `egress_rewrite` entry | `EGRESS_REWRITE[port]`, `EGRESS_REWRITE_HITS[port]` zeroed on insert |
//! | `int_switch_config` default entry | `INT_CONFIG` switch ID (`super::int`) |
//! | `int_watchlist` entry | the `INT_WATCHLIST` bank swapped whole, `INT_WATCH_HITS` slot zeroed for a new rule |

use std::collections::{BTreeMap, BTreeSet, HashMap};

use solyx_ebpf_common::{Counter, MplsForward, MAX_PORTS, MPLS_FLAG_POP, MPLS_FLAG_SET_DST_MAC};
use solyx_p4runtime::proto::p4::v1 as p4;

use super::acl::{self, Acl};
use super::decode::{self, invalid};
use super::int::Int;
use super::names::FabricIds;
use super::ports::PortMap;
use super::to_dataplane_error;
use super::wcmp::{decode_hop, Cx, Wcmp};
use crate::ebpf::{Fabric, IntTransit};
use crate::p4rt::{Change, DataplaneError, DataplaneErrorKind, Entry};

/// Everything the data plane has installed, with the fabric's maps.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) fabric: Fabric,
    pub(crate) ports: PortMap,
    /// The running pipeline's IDs; `None` before the first pipeline.
    pub(crate) ids: Option<FabricIds>,
    pub(crate) wcmp: Wcmp,
    pub(crate) acl: Acl,
    pub(crate) mpls: BTreeSet<u32>,
    pub(crate) egress: BTreeMap<u16, [u8; 6]>,
    /// While restoring: the egress rewrites found pinned (their counters
    /// are kept when the same entry is installed again).
    pub(crate) pinned_egress: Option<HashMap<u16, [u8; 6]>>,
    /// The INT transit stage (`int_switch_config`, `int_watchlist`,
    /// `egress_port_counter`).
    pub(crate) int: Int,
}

fn map_err(e: crate::ebpf::Error) -> DataplaneError {
    to_dataplane_error(&e)
}

fn unsupported(message: impl Into<String>) -> DataplaneError {
    DataplaneError::new(DataplaneErrorKind::Unsupported, message)
}

/// A counter as P4Runtime reports it.
pub(crate) fn counter_data(c: Counter) -> p4::CounterData {
    p4::CounterData {
        byte_count: i64::try_from(c.bytes).unwrap_or(i64::MAX),
        packet_count: i64::try_from(c.packets).unwrap_or(i64::MAX),
    }
}

impl State {
    /// A data plane over `fabric` and its INT stage `int`, whose ports are
    /// `ports`.
    pub(crate) fn new(fabric: Fabric, int: IntTransit, ports: PortMap) -> Self {
        Self {
            fabric,
            ports,
            ids: None,
            wcmp: Wcmp::default(),
            acl: Acl::default(),
            mpls: BTreeSet::new(),
            egress: BTreeMap::new(),
            pinned_egress: None,
            int: Int::new(int),
        }
    }

    fn ids(&self) -> Result<FabricIds, DataplaneError> {
        self.ids.ok_or_else(|| {
            DataplaneError::new(DataplaneErrorKind::Unavailable, "no pipeline is running")
        })
    }

    /// Empties every table in the maps and here (ports and port counters
    /// stay).
    pub(crate) fn clear(&mut self) -> Result<(), DataplaneError> {
        for (label, _) in self.fabric.mpls_forward_entries().map_err(map_err)? {
            self.fabric.remove_mpls_forward(label).map_err(map_err)?;
        }
        self.mpls.clear();
        let tables = self.fabric.tables_mut();
        self.wcmp.clear(tables)?;
        self.acl.clear(tables)?;
        for port in 0..MAX_PORTS as u16 {
            if tables.egress_rewrite(port).map_err(map_err)?.is_some() {
                tables.set_egress_rewrite(port, None).map_err(map_err)?;
            }
        }
        self.egress.clear();
        self.int.clear()
    }

    /// Ends a Write: publishes the ACL once for all its changes.
    pub(crate) fn end_batch(&mut self) -> Result<(), DataplaneError> {
        self.acl.flush(self.fabric.tables_mut())
    }

    /// Applies one validated change.
    pub(crate) fn apply(&mut self, change: &Change<'_>) -> Result<(), DataplaneError> {
        let ids = self.ids()?;
        match change {
            Change::Insert(e) => self.write(&ids, Op::Insert, e),
            Change::Modify { new, .. } => self.write(&ids, Op::Modify, new),
            Change::Delete(e) => self.write(&ids, Op::Delete, e),
        }
    }

    fn write(&mut self, ids: &FabricIds, op: Op, entry: &Entry<'_>) -> Result<(), DataplaneError> {
        match entry {
            Entry::Table(t) => self.write_table(ids, op, t),
            Entry::Member(m) => self.write_member(ids, op, m),
            Entry::Group(g) => self.write_group(ids, op, g),
            Entry::MulticastGroup(_) | Entry::CloneSession(_) => Err(unsupported(
                "solyx_fabric replicates no packets: multicast groups and clone sessions \
                 are not implemented by the eBPF data plane",
            )),
        }
    }

    fn write_table(
        &mut self,
        ids: &FabricIds,
        op: Op,
        t: &p4::TableEntry,
    ) -> Result<(), DataplaneError> {
        let table = t.table_id;
        if table == ids.acl.table {
            self.write_acl(ids, op, t)
        } else if table == ids.mpls.table {
            self.write_mpls(ids, op, t)
        } else if table == ids.route.table {
            self.write_route(ids, op, t)
        } else if table == ids.egress.table {
            self.write_egress(ids, op, t)
        } else if table == ids.int.switch_config {
            self.int.write_switch_config(&ids.int, t)
        } else if table == ids.int.watchlist {
            self.int.write_watchlist(&ids.int, op == Op::Delete, t)
        } else {
            Err(unsupported(format!(
                "table {table:#010x} is not implemented by the eBPF fabric data plane"
            )))
        }
    }

    fn write_acl(
        &mut self,
        ids: &FabricIds,
        op: Op,
        t: &p4::TableEntry,
    ) -> Result<(), DataplaneError> {
        // Changes collect in memory; `end_batch` publishes them.
        if t.is_default_action {
            let action = match decode::direct_action(t) {
                None => solyx_ebpf_common::acl::ACL_ACTION_PERMIT,
                Some(a) => acl::decode_action(&ids.acl, a)?,
            };
            self.acl.set_default(action);
            return Ok(());
        }
        let key = acl::decode_key(&ids.acl, t)?;
        match op {
            Op::Delete => {
                self.acl.remove(key);
                Ok(())
            }
            Op::Insert | Op::Modify => {
                let action = decode::direct_action(t)
                    .ok_or_else(|| invalid("acl: the entry has no action"))
                    .and_then(|a| acl::decode_action(&ids.acl, a))?;
                if op == Op::Insert {
                    self.acl.insert(self.fabric.tables_mut(), key, action)
                } else {
                    self.acl.modify(key, action)
                }
            }
        }
    }

    fn mpls_label(ids: &FabricIds, t: &p4::TableEntry) -> Result<u32, DataplaneError> {
        let value = decode::exact(t, ids.mpls.label, "mpls_forward")?;
        decode::uint(value).ok_or_else(|| invalid("mpls_label is wider than 32 bits"))
    }

    fn write_mpls(
        &mut self,
        ids: &FabricIds,
        op: Op,
        t: &p4::TableEntry,
    ) -> Result<(), DataplaneError> {
        let label = Self::mpls_label(ids, t)?;
        if op == Op::Delete {
            self.fabric.remove_mpls_forward(label).map_err(map_err)?;
            self.mpls.remove(&label);
            return Ok(());
        }
        let m = &ids.mpls;
        let action = decode::direct_action(t).ok_or_else(|| invalid("mpls_forward: no action"))?;
        let entry = if action.action_id == m.forward_to {
            let port = decode::port_param(action, m.forward_to_port, "mpls_forward_to")?;
            let (port, p) = self.ports.resolve(port, "mpls_forward_to")?;
            MplsForward {
                egress_ifindex: p.ifindex,
                egress_port: port,
                flags: 0,
                dst_mac: [0; 6],
                src_mac: [0; 6],
            }
        } else if action.action_id == m.pop {
            let port = decode::port_param(action, m.pop_port, "mpls_pop_forward_to")?;
            let (port, p) = self.ports.resolve(port, "mpls_pop_forward_to")?;
            MplsForward {
                egress_ifindex: p.ifindex,
                egress_port: port,
                flags: MPLS_FLAG_POP | MPLS_FLAG_SET_DST_MAC,
                dst_mac: decode::mac_param(action, m.pop_dmac, "mpls_pop_forward_to")?,
                src_mac: [0; 6],
            }
        } else {
            return Err(invalid(format!(
                "mpls_forward: action {:#010x} is not mpls_forward_to or mpls_pop_forward_to",
                action.action_id
            )));
        };
        // The source MAC comes from `EGRESS_REWRITE` (egress_rewrite), as
        // in P4; the entry's own source MAC flag stays off.
        self.fabric
            .insert_mpls_forward(label, entry)
            .map_err(map_err)?;
        self.mpls.insert(label);
        Ok(())
    }

    fn write_route(
        &mut self,
        ids: &FabricIds,
        op: Op,
        t: &p4::TableEntry,
    ) -> Result<(), DataplaneError> {
        let prefix = decode::lpm(t, ids.route.dst)?;
        let mut cx = Cx {
            tables: self.fabric.tables_mut(),
            ports: &self.ports,
            ids: &ids.route,
        };
        match op {
            Op::Delete => self.wcmp.remove_route(&mut cx, prefix),
            Op::Insert => {
                let target = Wcmp::decode_target(&cx, t)?;
                self.wcmp.insert_route(&mut cx, prefix, target)
            }
            Op::Modify => {
                let target = Wcmp::decode_target(&cx, t)?;
                self.wcmp.modify_route(&mut cx, prefix, target)
            }
        }
    }

    fn egress_port(ids: &FabricIds, t: &p4::TableEntry) -> Result<u16, DataplaneError> {
        let value = decode::exact(t, ids.egress.port, "egress_rewrite")?;
        decode::uint(value)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| u32::from(*p) < MAX_PORTS)
            .ok_or_else(|| invalid("egress_rewrite: egress_port is not below 512"))
    }

    fn write_egress(
        &mut self,
        ids: &FabricIds,
        op: Op,
        t: &p4::TableEntry,
    ) -> Result<(), DataplaneError> {
        if t.is_default_action {
            // The only default action is keep_src_mac: nothing to install.
            return Ok(());
        }
        let port = Self::egress_port(ids, t)?;
        let tables = self.fabric.tables_mut();
        if op == Op::Delete {
            tables.set_egress_rewrite(port, None).map_err(map_err)?;
            self.egress.remove(&port);
            return Ok(());
        }
        let action =
            decode::direct_action(t).ok_or_else(|| invalid("egress_rewrite: no action"))?;
        if action.action_id != ids.egress.set_src_mac {
            return Err(invalid("egress_rewrite: entries take set_src_mac"));
        }
        let mac = decode::mac_param(action, ids.egress.smac, "set_src_mac")?;
        let adopted = self
            .pinned_egress
            .as_mut()
            .and_then(|p| p.remove(&port))
            .is_some();
        if op == Op::Insert && !adopted {
            tables.reset_egress_rewrite_hits(port).map_err(map_err)?;
        }
        tables
            .set_egress_rewrite(port, Some(mac))
            .map_err(map_err)?;
        self.egress.insert(port, mac);
        Ok(())
    }

    fn write_member(
        &mut self,
        ids: &FabricIds,
        op: Op,
        m: &p4::ActionProfileMember,
    ) -> Result<(), DataplaneError> {
        if m.action_profile_id != ids.route.selector {
            return Err(unsupported(format!(
                "action profile {:#010x} is not implemented",
                m.action_profile_id
            )));
        }
        if op == Op::Delete {
            self.wcmp.remove_member(m.member_id);
            return Ok(());
        }
        let mut cx = Cx {
            tables: self.fabric.tables_mut(),
            ports: &self.ports,
            ids: &ids.route,
        };
        let action = m
            .action
            .as_ref()
            .ok_or_else(|| invalid("the member has no action"))?;
        let hop = decode_hop(&cx, action)?;
        self.wcmp.set_member(&mut cx, m.member_id, hop)
    }

    fn write_group(
        &mut self,
        ids: &FabricIds,
        op: Op,
        g: &p4::ActionProfileGroup,
    ) -> Result<(), DataplaneError> {
        if g.action_profile_id != ids.route.selector {
            return Err(unsupported(format!(
                "action profile {:#010x} is not implemented",
                g.action_profile_id
            )));
        }
        let mut cx = Cx {
            tables: self.fabric.tables_mut(),
            ports: &self.ports,
            ids: &ids.route,
        };
        if op == Op::Delete {
            return self.wcmp.remove_group(&mut cx, g.group_id);
        }
        let members = g
            .members
            .iter()
            .map(|m| (m.member_id, u32::try_from(m.weight).unwrap_or(0).max(1)))
            .collect();
        self.wcmp.set_group(&mut cx, g.group_id, members)
    }

    /// The direct counter of a stored entry.
    pub(crate) fn direct_counter(
        &self,
        t: &p4::TableEntry,
    ) -> Result<p4::CounterData, DataplaneError> {
        let ids = self.ids()?;
        let tables = self.fabric.tables();
        let counter = if t.table_id == ids.acl.table {
            if t.is_default_action {
                self.acl.hits(tables, None)?
            } else {
                self.acl
                    .hits(tables, Some(&acl::decode_key(&ids.acl, t)?))?
            }
        } else if t.table_id == ids.mpls.table {
            if t.is_default_action {
                Counter::default()
            } else {
                self.fabric
                    .mpls_hits(Self::mpls_label(&ids, t)?)
                    .map_err(map_err)?
            }
        } else if t.table_id == ids.route.table {
            if t.is_default_action {
                Counter::default()
            } else {
                self.wcmp
                    .route_hits(tables, decode::lpm(t, ids.route.dst)?)?
            }
        } else if t.table_id == ids.egress.table && !t.is_default_action {
            let port = Self::egress_port(&ids, t)?;
            if self.egress.contains_key(&port) {
                tables.egress_rewrite_hits(port).map_err(map_err)?
            } else {
                Counter::default()
            }
        } else if t.table_id == ids.int.switch_config {
            self.int.switch_config_hits(t)?
        } else if t.table_id == ids.int.watchlist {
            self.int.watch_hits(&ids.int, t)?
        } else {
            // TODO-completeness: the default entries of mpls_forward,
            // ipv4_route and egress_rewrite have no counter slot in the
            // programs (a miss is counted as a drop reason only), so their
            // direct counters read zero.
            Counter::default()
        };
        Ok(counter_data(counter))
    }

    /// Cells `indices` of an indexed counter.
    pub(crate) fn counter(
        &self,
        counter_id: u32,
        indices: std::ops::Range<i64>,
    ) -> Result<Vec<p4::CounterData>, DataplaneError> {
        let ids = self.ids()?;
        let cells = indices.map(|i| u16::try_from(i).ok().filter(|p| u32::from(*p) < MAX_PORTS));
        if counter_id == ids.ingress_port_counter {
            cells
                .map(|port| match port {
                    Some(port) => self.fabric.port_rx(port).map(counter_data).map_err(map_err),
                    None => Ok(p4::CounterData::default()),
                })
                .collect()
        } else if counter_id == ids.egress_port_counter {
            // Counted by the egress program at TC egress (`PORT_TX`).
            cells
                .map(|port| match port {
                    Some(port) => self
                        .int
                        .transit
                        .port_tx(port)
                        .map(counter_data)
                        .map_err(map_err),
                    None => Ok(p4::CounterData::default()),
                })
                .collect()
        } else {
            Err(unsupported(format!(
                "counter {counter_id:#010x} is not implemented"
            )))
        }
    }
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Insert,
    Modify,
    Delete,
}
