//! [`FabricIds`]: the P4Runtime IDs of everything the eBPF fabric data
//! plane implements, resolved by name from the P4Info the controller
//! pushes, and the check that a P4Info is one this data plane can run.
//!
//! Nothing here hard-codes an ID: a `solyx_fabric` P4Info with other IDs
//! (a recompiled program) works as long as the names, match kinds and
//! widths are the ones the eBPF programs implement.

use solyx_p4runtime::p4info::{MatchKind, TableInfo};
use solyx_p4runtime::P4InfoIndex;

/// The P4Info package name this data plane runs.
pub const PIPELINE: &str = "solyx_fabric";

/// What this data plane implements, for the message refusing a P4Info.
pub const IMPLEMENTS: &str = "tables FabricIngress.acl (punt_to_cpu, drop, permit), \
     FabricIngress.mpls_forward (mpls_forward_to, mpls_pop_forward_to), \
     FabricIngress.ipv4_route (set_next_hop, route_drop) with action selector \
     FabricIngress.wcmp_selector, FabricEgress.egress_rewrite (set_src_mac, keep_src_mac), \
     FabricEgress.int_switch_config (int_set_switch_id), FabricEgress.int_watchlist \
     (int_mark_int, int_no_mark); counters \
     FabricIngress.ingress_port_counter, FabricEgress.egress_port_counter";

/// IDs of the ACL table, its match fields and actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AclIds {
    pub(crate) table: u32,
    /// Match field IDs, in [`ACL_FIELDS`] order.
    pub(crate) fields: [u32; 9],
    pub(crate) punt: u32,
    pub(crate) drop: u32,
    pub(crate) permit: u32,
}

/// ACL match fields: P4Info name, width in bits, offset in the eBPF key
/// (`solyx_ebpf_common::acl::key`), bytes in the key.
pub(crate) const ACL_FIELDS: [(&str, u32, usize, usize); 9] = {
    use solyx_ebpf_common::acl::key;
    [
        ("ingress_port", 9, key::INGRESS_PORT, 2),
        ("eth_src", 48, key::ETH_SRC, 6),
        ("eth_dst", 48, key::ETH_DST, 6),
        ("eth_type", 16, key::ETH_TYPE, 2),
        ("ipv4_src", 32, key::IPV4_SRC, 4),
        ("ipv4_dst", 32, key::IPV4_DST, 4),
        ("ip_proto", 8, key::IP_PROTO, 1),
        ("l4_src_port", 16, key::L4_SRC, 2),
        ("l4_dst_port", 16, key::L4_DST, 2),
    ]
};

/// IDs of the MPLS table, its key and actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MplsIds {
    pub(crate) table: u32,
    pub(crate) label: u32,
    pub(crate) forward_to: u32,
    pub(crate) forward_to_port: u32,
    pub(crate) pop: u32,
    pub(crate) pop_port: u32,
    pub(crate) pop_dmac: u32,
}

/// IDs of the IPv4 route table, its key, its selector and the member
/// actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteIds {
    pub(crate) table: u32,
    pub(crate) dst: u32,
    pub(crate) selector: u32,
    pub(crate) set_next_hop: u32,
    pub(crate) next_hop_port: u32,
    pub(crate) next_hop_dmac: u32,
    pub(crate) route_drop: u32,
}

/// IDs of the egress rewrite table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EgressIds {
    pub(crate) table: u32,
    pub(crate) port: u32,
    pub(crate) set_src_mac: u32,
    pub(crate) smac: u32,
}

/// IDs of the INT transit tables, their key fields and actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntIds {
    /// Keyless `int_switch_config`: only its default action is written.
    pub(crate) switch_config: u32,
    pub(crate) set_switch_id: u32,
    pub(crate) switch_id: u32,
    pub(crate) watchlist: u32,
    /// `ipv4_dscp`, ternary bit<6>.
    pub(crate) dscp: u32,
    /// `l4_dst_port`, ternary bit<16>.
    pub(crate) l4_dst_port: u32,
    pub(crate) mark: u32,
    pub(crate) no_mark: u32,
}

/// Every ID the data plane dispatches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FabricIds {
    pub(crate) acl: AclIds,
    pub(crate) mpls: MplsIds,
    pub(crate) route: RouteIds,
    pub(crate) egress: EgressIds,
    pub(crate) int: IntIds,
    pub(crate) ingress_port_counter: u32,
    pub(crate) egress_port_counter: u32,
}

/// Looks names up and remembers what is missing or different.
pub(crate) struct Resolver<'a> {
    index: &'a P4InfoIndex,
    pub(crate) problems: Vec<String>,
}

impl<'a> Resolver<'a> {
    /// A resolver over `index` with no problem found yet.
    pub(crate) fn new(index: &'a P4InfoIndex) -> Self {
        Self {
            index,
            problems: Vec::new(),
        }
    }

    pub(crate) fn table(&mut self, name: &str) -> Option<&'a TableInfo> {
        let found = self.index.tables.by_name(name);
        if found.is_none() {
            self.problems.push(format!("table {name} is missing"));
        }
        found
    }

    pub(crate) fn field(
        &mut self,
        table: Option<&TableInfo>,
        name: &str,
        kind: MatchKind,
        bits: u32,
    ) -> u32 {
        let Some(table) = table else { return 0 };
        match table.field(name) {
            Some(f) if f.kind == kind && f.bitwidth == bits => f.id,
            Some(f) => {
                self.problems.push(format!(
                    "match field {}.{name} is {} bit<{}>, not {} bit<{bits}>",
                    table.name,
                    f.kind.as_str(),
                    f.bitwidth,
                    kind.as_str()
                ));
                0
            }
            None => {
                self.problems
                    .push(format!("match field {}.{name} is missing", table.name));
                0
            }
        }
    }

    /// The action's ID and its parameters' IDs, checked by name and width.
    pub(crate) fn action<const N: usize>(
        &mut self,
        name: &str,
        params: [(&str, u32); N],
    ) -> (u32, [u32; N]) {
        let mut ids = [0u32; N];
        let Some(action) = self.index.actions.by_name(name) else {
            self.problems.push(format!("action {name} is missing"));
            return (0, ids);
        };
        if action.params.len() != N {
            self.problems.push(format!(
                "action {name} has {} parameters, not {N}",
                action.params.len()
            ));
        }
        for (i, (param, bits)) in params.into_iter().enumerate() {
            match action.param(param) {
                Some(p) if p.bitwidth == bits => ids[i] = p.id,
                Some(p) => self.problems.push(format!(
                    "parameter {name}.{param} is bit<{}>, not bit<{bits}>",
                    p.bitwidth
                )),
                None => self
                    .problems
                    .push(format!("parameter {name}.{param} is missing")),
            }
        }
        (action.id, ids)
    }

    pub(crate) fn counter(&mut self, name: &str) -> u32 {
        match self.index.counters.by_name(name) {
            Some(c) => c.id,
            None => {
                self.problems.push(format!("counter {name} is missing"));
                0
            }
        }
    }
}

impl FabricIds {
    /// Resolves every name of a `solyx_fabric` P4Info.
    ///
    /// # Errors
    /// A message naming what this data plane implements and what the
    /// P4Info lacks or declares differently.
    pub(crate) fn resolve(index: &P4InfoIndex) -> Result<Self, String> {
        let (_, package) = index.package();
        if package != PIPELINE {
            return Err(format!(
                "the eBPF fabric data plane runs pipeline {PIPELINE:?} only, not {package:?}; \
                 it implements {IMPLEMENTS}"
            ));
        }
        let mut r = Resolver {
            index,
            problems: Vec::new(),
        };

        let acl_table = r.table("FabricIngress.acl");
        let mut fields = [0u32; 9];
        for (i, (name, bits, _, _)) in ACL_FIELDS.iter().enumerate() {
            fields[i] = r.field(acl_table, name, MatchKind::Ternary, *bits);
        }
        let acl = AclIds {
            table: acl_table.map_or(0, |t| t.id),
            fields,
            punt: r.action("FabricIngress.punt_to_cpu", []).0,
            drop: r.action("FabricIngress.drop", []).0,
            permit: r.action("FabricIngress.permit", []).0,
        };

        let mpls_table = r.table("FabricIngress.mpls_forward");
        let (forward_to, [forward_to_port]) =
            r.action("FabricIngress.mpls_forward_to", [("port", 9)]);
        let (pop, [pop_port, pop_dmac]) = r.action(
            "FabricIngress.mpls_pop_forward_to",
            [("port", 9), ("dmac", 48)],
        );
        let mpls = MplsIds {
            table: mpls_table.map_or(0, |t| t.id),
            label: r.field(mpls_table, "mpls_label", MatchKind::Exact, 20),
            forward_to,
            forward_to_port,
            pop,
            pop_port,
            pop_dmac,
        };

        let route_table = r.table("FabricIngress.ipv4_route");
        let (set_next_hop, [next_hop_port, next_hop_dmac]) =
            r.action("FabricIngress.set_next_hop", [("port", 9), ("dmac", 48)]);
        let selector = match index.action_profiles.by_name("FabricIngress.wcmp_selector") {
            Some(p)
                if p.with_selector && route_table.is_some_and(|t| p.table_ids.contains(&t.id)) =>
            {
                p.id
            }
            Some(_) => {
                r.problems.push(
                    "FabricIngress.wcmp_selector is not an action selector of ipv4_route".into(),
                );
                0
            }
            None => {
                r.problems
                    .push("action selector FabricIngress.wcmp_selector is missing".into());
                0
            }
        };
        let route = RouteIds {
            table: route_table.map_or(0, |t| t.id),
            dst: r.field(route_table, "ipv4_dst", MatchKind::Lpm, 32),
            selector,
            set_next_hop,
            next_hop_port,
            next_hop_dmac,
            route_drop: r.action("FabricIngress.route_drop", []).0,
        };

        let egress_table = r.table("FabricEgress.egress_rewrite");
        let (set_src_mac, [smac]) = r.action("FabricEgress.set_src_mac", [("smac", 48)]);
        let egress = EgressIds {
            table: egress_table.map_or(0, |t| t.id),
            port: r.field(egress_table, "egress_port", MatchKind::Exact, 9),
            set_src_mac,
            smac,
        };
        let _ = r.action("FabricEgress.keep_src_mac", []);

        let switch_config = r.table("FabricEgress.int_switch_config");
        let (set_switch_id, [switch_id]) =
            r.action("FabricEgress.int_set_switch_id", [("switch_id", 32)]);
        let watchlist = r.table("FabricEgress.int_watchlist");
        let int = IntIds {
            switch_config: switch_config.map_or(0, |t| t.id),
            set_switch_id,
            switch_id,
            watchlist: watchlist.map_or(0, |t| t.id),
            dscp: r.field(watchlist, "ipv4_dscp", MatchKind::Ternary, 6),
            l4_dst_port: r.field(watchlist, "l4_dst_port", MatchKind::Ternary, 16),
            mark: r.action("FabricEgress.int_mark_int", []).0,
            no_mark: r.action("FabricEgress.int_no_mark", []).0,
        };

        let ids = FabricIds {
            acl,
            mpls,
            route,
            egress,
            int,
            ingress_port_counter: r.counter("FabricIngress.ingress_port_counter"),
            egress_port_counter: r.counter("FabricEgress.egress_port_counter"),
        };
        if r.problems.is_empty() {
            Ok(ids)
        } else {
            Err(format!(
                "this {PIPELINE} P4Info does not match the eBPF fabric data plane ({}); \
                 it implements {IMPLEMENTS}",
                r.problems.join("; ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FABRIC: &str = include_str!("../../../../p4/solyx_fabric/solyx_fabric.p4info.txtpb");
    const TEST: &str = include_str!("../../../../p4runtime/testdata/test.p4info.txtpb");

    #[test]
    fn the_committed_p4info_resolves() {
        let index = P4InfoIndex::from_text(FABRIC).expect("fabric P4Info");
        let ids = FabricIds::resolve(&index).expect("resolves");
        assert_eq!(ids.acl.table, 0x0200_0201);
        assert_eq!(ids.route.selector, 0x1100_0301);
        assert!(ids.acl.fields.iter().all(|&f| f != 0));
        assert_eq!(ids.int.watchlist, 0x0200_0502);
        assert!([
            ids.int.dscp,
            ids.int.l4_dst_port,
            ids.int.switch_id,
            ids.int.mark
        ]
        .iter()
        .all(|&id| id != 0));
    }

    #[test]
    fn another_pipeline_is_refused_with_what_is_implemented() {
        let index = P4InfoIndex::from_text(TEST).expect("test P4Info");
        let e = FabricIds::resolve(&index).expect_err("refused");
        assert!(
            e.contains("solyx_fabric") && e.contains("FabricIngress.acl"),
            "{e}"
        );
    }

    #[test]
    fn a_changed_width_is_named() {
        let text = FABRIC.replacen("bitwidth: 20", "bitwidth: 24", 1);
        let index = P4InfoIndex::from_text(&text).expect("P4Info");
        let e = FabricIds::resolve(&index).expect_err("refused");
        assert!(e.contains("mpls_label") && e.contains("bit<24>"), "{e}");
    }
}
