//! The controller's P4Runtime client set up for `solyx_fabric`, and the
//! entities the switch tests install, built by name through the P4Info.

use std::net::Ipv4Addr;
use std::time::Duration;

use solyx::p4rt::{DeviceSession, SessionConfig, UpdateError};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

/// The committed `solyx_fabric` P4Info.
pub const P4INFO: &str = include_str!("../../../p4/solyx_fabric/solyx_fabric.p4info.txtpb");

/// How long session steps may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// The fabric P4Info, indexed.
pub fn index() -> P4InfoIndex {
    P4InfoIndex::from_text(P4INFO).expect("fabric P4Info")
}

/// A primary session to `endpoint` (device `device_id`) with the fabric
/// pipeline pushed.
pub async fn session(endpoint: &str, device_id: u64) -> DeviceSession {
    let s = DeviceSession::start(SessionConfig::new(endpoint, device_id, 10)).expect("session");
    s.wait_primary(WAIT).await.expect("primary");
    s.set_pipeline(index().p4info().clone(), Vec::new(), false)
        .await
        .expect("pipeline");
    s
}

/// Fails the test on the first failed update.
pub fn all_ok(results: Vec<Result<(), UpdateError>>) {
    for (i, r) in results.into_iter().enumerate() {
        if let Err(e) = r {
            panic!("update {i} failed: {e}");
        }
    }
}

/// Inserts `entities`, all of which must succeed.
pub async fn install(s: &DeviceSession, entities: Vec<p4::Entity>) {
    all_ok(s.insert(entities).await.expect("write"));
}

fn entity(e: p4::entity::Entity) -> p4::Entity {
    p4::Entity { entity: Some(e) }
}

/// `wcmp_selector` member `id`: `set_next_hop(port, dmac)`.
pub fn member(ix: &P4InfoIndex, id: u32, port: u16, dmac: [u8; 6]) -> p4::Entity {
    let a = ix
        .action("set_next_hop")
        .unwrap()
        .param("port", port)
        .unwrap()
        .param("dmac", dmac)
        .unwrap()
        .build()
        .unwrap();
    entity(p4::entity::Entity::ActionProfileMember(
        ix.profile_member("wcmp_selector", id, a).unwrap(),
    ))
}

/// `wcmp_selector` member `id`: `route_drop()`.
pub fn drop_member(ix: &P4InfoIndex, id: u32) -> p4::Entity {
    let a = ix.action("route_drop").unwrap().build().unwrap();
    entity(p4::entity::Entity::ActionProfileMember(
        ix.profile_member("wcmp_selector", id, a).unwrap(),
    ))
}

/// `wcmp_selector` group `id` of (member, weight).
pub fn group(ix: &P4InfoIndex, id: u32, members: &[(u32, i32)]) -> p4::Entity {
    entity(p4::entity::Entity::ActionProfileGroup(
        ix.profile_group("wcmp_selector", id, members).unwrap(),
    ))
}

/// `ipv4_route` `addr/len` → member `member`.
pub fn route_to_member(ix: &P4InfoIndex, addr: Ipv4Addr, len: i32, member: u32) -> p4::Entity {
    ix.table_entry("ipv4_route")
        .unwrap()
        .lpm("ipv4_dst", addr, len)
        .unwrap()
        .member(member)
        .unwrap()
        .build()
        .unwrap()
}

/// `ipv4_route` `addr/len` → group `group`.
pub fn route_to_group(ix: &P4InfoIndex, addr: Ipv4Addr, len: i32, group: u32) -> p4::Entity {
    ix.table_entry("ipv4_route")
        .unwrap()
        .lpm("ipv4_dst", addr, len)
        .unwrap()
        .group(group)
        .unwrap()
        .build()
        .unwrap()
}

/// `egress_rewrite`: packets out of `port` get source MAC `smac`.
pub fn egress_rewrite(ix: &P4InfoIndex, port: u16, smac: [u8; 6]) -> p4::Entity {
    let a = ix
        .action("set_src_mac")
        .unwrap()
        .param("smac", smac)
        .unwrap()
        .build()
        .unwrap();
    ix.table_entry("egress_rewrite")
        .unwrap()
        .exact("egress_port", port)
        .unwrap()
        .action(a)
        .unwrap()
        .build()
        .unwrap()
}

/// `mpls_forward`: transit `label` out of `port`.
pub fn mpls_transit(ix: &P4InfoIndex, label: u32, port: u16) -> p4::Entity {
    let a = ix
        .action("mpls_forward_to")
        .unwrap()
        .param("port", port)
        .unwrap()
        .build()
        .unwrap();
    ix.table_entry("mpls_forward")
        .unwrap()
        .exact("mpls_label", label)
        .unwrap()
        .action(a)
        .unwrap()
        .build()
        .unwrap()
}

/// `mpls_forward`: pop `label` and deliver out of `port` to `dmac`.
pub fn mpls_pop(ix: &P4InfoIndex, label: u32, port: u16, dmac: [u8; 6]) -> p4::Entity {
    let a = ix
        .action("mpls_pop_forward_to")
        .unwrap()
        .param("port", port)
        .unwrap()
        .param("dmac", dmac)
        .unwrap()
        .build()
        .unwrap();
    ix.table_entry("mpls_forward")
        .unwrap()
        .exact("mpls_label", label)
        .unwrap()
        .action(a)
        .unwrap()
        .build()
        .unwrap()
}

/// `acl` entry of `priority` matching UDP to `l4_dst_port` (under
/// `port_mask`), running `action` (`punt_to_cpu`, `drop`, `permit`).
pub fn acl_udp(
    ix: &P4InfoIndex,
    priority: i32,
    l4_dst_port: u16,
    port_mask: u16,
    action: &str,
) -> p4::Entity {
    let a = ix.action(action).unwrap().build().unwrap();
    ix.table_entry("acl")
        .unwrap()
        .ternary("ip_proto", 17u8, 0xffu8)
        .unwrap()
        .ternary("l4_dst_port", l4_dst_port, port_mask)
        .unwrap()
        .priority(priority)
        .action(a)
        .unwrap()
        .build()
        .unwrap()
}

/// The ID of table `name`.
pub fn table_id(ix: &P4InfoIndex, name: &str) -> u32 {
    ix.tables.by_name(name).unwrap().id
}

/// The ID of counter `name`.
pub fn counter_id(ix: &P4InfoIndex, name: &str) -> u32 {
    ix.counters.by_name(name).unwrap().id
}

/// Packets of cell `index` of counter `name`, read over P4Runtime.
pub async fn counter_packets(s: &DeviceSession, ix: &P4InfoIndex, name: &str, index: i64) -> i64 {
    let cells = s
        .read_counter(counter_id(ix, name), Some(index))
        .await
        .expect("read counter");
    cells
        .first()
        .and_then(|c| c.data.as_ref())
        .map_or(0, |d| d.packet_count)
}

/// Packets of the direct counters of every entry of table `name`, read
/// over P4Runtime, summed.
pub async fn table_hits(s: &DeviceSession, ix: &P4InfoIndex, name: &str) -> i64 {
    s.read_direct_counters(table_id(ix, name))
        .await
        .expect("read direct counters")
        .iter()
        .filter_map(|c| c.data.as_ref())
        .map(|d| d.packet_count)
        .sum()
}

/// `int_switch_config` default entry: this switch's INT ID.
pub fn int_switch_id(ix: &P4InfoIndex, switch_id: u32) -> p4::Entity {
    let a = ix
        .action("int_set_switch_id")
        .unwrap()
        .param("switch_id", switch_id)
        .unwrap()
        .build()
        .unwrap();
    ix.table_entry("int_switch_config")
        .unwrap()
        .as_default()
        .action(a)
        .unwrap()
        .build()
        .unwrap()
}

/// `int_watchlist` entry of `priority`: packets with DSCP `dscp` (all six
/// bits) run `action` (`int_mark_int` or `int_no_mark`).
pub fn int_watch_dscp(ix: &P4InfoIndex, priority: i32, dscp: u8, action: &str) -> p4::Entity {
    let a = ix.action(action).unwrap().build().unwrap();
    ix.table_entry("int_watchlist")
        .unwrap()
        .ternary("ipv4_dscp", dscp, 0x3fu8)
        .unwrap()
        .priority(priority)
        .action(a)
        .unwrap()
        .build()
        .unwrap()
}

/// The direct counter of table `name`'s default entry, read over
/// P4Runtime: (packets, bytes).
pub async fn default_entry_hits(s: &DeviceSession, ix: &P4InfoIndex, name: &str) -> (i64, i64) {
    let query = p4::Entity {
        entity: Some(p4::entity::Entity::DirectCounterEntry(
            p4::DirectCounterEntry {
                table_entry: Some(p4::TableEntry {
                    table_id: table_id(ix, name),
                    is_default_action: true,
                    ..Default::default()
                }),
                data: None,
            },
        )),
    };
    let found = s.read(vec![query]).await.expect("read default counter");
    found
        .iter()
        .find_map(|e| match &e.entity {
            Some(p4::entity::Entity::DirectCounterEntry(d)) => d.data.as_ref(),
            _ => None,
        })
        .map_or((0, 0), |d| (d.packet_count, d.byte_count))
}
