//! Restoring after an agent restart: the maps (pinned) still hold what the
//! previous agent installed, and the program kept forwarding with them.
//! The server replays its saved entities as inserts; this data plane takes
//! each over instead of starting afresh:
//!
//! - a route, ACL rule, MPLS entry, egress rewrite or INT watchlist rule
//!   found in the maps keeps its counter (and counter slot); its value is
//!   written again, which changes nothing unless it differs (an interface
//!   index changed, say); so is the INT switch ID;
//! - an entity missing from the maps is installed;
//! - at the end, whatever the maps hold that no saved entity claimed is
//!   removed, and the ACL table is published once.
//!
//! So forwarding never stops, counters carry on, and after the restore the
//! maps hold exactly what a Read returns.

use std::collections::HashMap;

use solyx_ebpf_common::route::ONE_SHOT_GROUP_BASE;
use solyx_ebpf_common::MAX_PORTS;

use super::names::FabricIds;
use super::state::State;
use super::to_dataplane_error;
use crate::p4rt::DataplaneError;

fn map_err(e: crate::ebpf::Error) -> DataplaneError {
    to_dataplane_error(&e)
}

/// What a restore found and changed, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RestoreReport {
    /// Routes found pinned that were claimed (counters kept).
    pub routes_kept: usize,
    /// Entries the maps held that no saved entity claimed, removed.
    pub stale_removed: usize,
}

impl State {
    /// Starts a restore for the pipeline `ids`: remembers what the maps
    /// hold so that replayed inserts take it over.
    pub(crate) fn begin_restore(&mut self, ids: FabricIds) -> Result<(), DataplaneError> {
        self.ids = Some(ids);
        self.wcmp = Default::default();
        self.acl.reset();
        self.mpls.clear();
        self.egress.clear();

        let tables = self.fabric.tables();
        let mut pinned = HashMap::new();
        for (prefix, route) in tables.routes().map_err(map_err)? {
            // A slot that is out of range or taken twice cannot be kept;
            // such a route gets a fresh one if it is replayed.
            if self.wcmp.slots.reserve(route.hit_slot) {
                pinned.insert(prefix, route);
            }
        }
        self.wcmp.pinned = Some(pinned);
        let acl = tables.acl_table().map_err(map_err)?;
        self.acl.begin_restore(acl.as_deref());
        let mut egress = HashMap::new();
        for port in 0..MAX_PORTS as u16 {
            if let Some(mac) = tables.egress_rewrite(port).map_err(map_err)? {
                egress.insert(port, mac);
            }
        }
        self.pinned_egress = Some(egress);
        self.int.begin_restore()
    }

    /// Ends a restore: removes what no replayed entity claimed and
    /// publishes the ACL.
    pub(crate) fn finish_restore(&mut self) -> Result<RestoreReport, DataplaneError> {
        let mut report = RestoreReport::default();
        let unclaimed = self.wcmp.pinned.take().unwrap_or_default();
        for route in unclaimed.values() {
            self.wcmp.slots.free(route.hit_slot);
        }
        report.routes_kept = self.wcmp.routes.len();

        let tables = self.fabric.tables_mut();
        for ((addr, len), _) in tables.routes().map_err(map_err)? {
            if !self.wcmp.routes.contains_key(&(addr, len)) {
                tables.remove_route(addr, len).map_err(map_err)?;
                report.stale_removed += 1;
            }
        }
        for (id, _) in tables.groups().map_err(map_err)? {
            let live = if id >= ONE_SHOT_GROUP_BASE {
                self.wcmp.routes.values().any(|r| {
                    ONE_SHOT_GROUP_BASE + r.hit_slot == id
                        && matches!(r.target, super::wcmp::Target::OneShot(_))
                })
            } else {
                self.wcmp.groups.contains_key(&id)
            };
            if !live {
                tables.remove_group(id).map_err(map_err)?;
                report.stale_removed += 1;
            }
        }
        for (port, _) in self.pinned_egress.take().unwrap_or_default() {
            tables.set_egress_rewrite(port, None).map_err(map_err)?;
            report.stale_removed += 1;
        }
        self.acl.publish_now(tables)?;
        report.stale_removed += self.int.finish_restore()?;
        for (label, _) in self.fabric.mpls_forward_entries().map_err(map_err)? {
            if !self.mpls.contains(&label) {
                self.fabric.remove_mpls_forward(label).map_err(map_err)?;
                report.stale_removed += 1;
            }
        }
        Ok(report)
    }
}
