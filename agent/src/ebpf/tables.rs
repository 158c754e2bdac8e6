//! [`Tables`]: typed access to the maps of the fabric ingress program
//! beyond MPLS: IPv4 routes and their counters, WCMP groups, the ACL rule
//! table (swapped whole) and its counters, the egress rewrite table and its
//! counters, and the packet-in perf rings.
//!
//! Every write is one map syscall that replaces a whole value, so the
//! program never sees half of one. The ACL is different: its rules are one
//! value of an inner map that is swapped in as a whole (see
//! [`Tables::publish_acl`]).

use std::io;
use std::path::Path;

use aya::maps::lpm_trie::Key;
use aya::maps::perf::PerfEventArrayBuffer;
use aya::maps::{
    Array, ArrayOfMaps, HashMap, LpmTrie, Map, MapData, MapType, PerCpuArray, PerfEventArray,
};
use aya::Ebpf;
use solyx_ebpf_common::acl::{AclTable, ACL_HIT_SLOTS, MAP_ACL_HITS, MAP_ACL_TABLE};
use solyx_ebpf_common::egress::{
    EgressRewrite, EGRESS_FLAG_SET_SRC_MAC, MAP_EGRESS_REWRITE, MAP_EGRESS_REWRITE_HITS,
};
use solyx_ebpf_common::packet_io::MAP_PACKET_IN;
use solyx_ebpf_common::route::{
    Ipv4Route, WcmpGroup, IPV4_ROUTE_CAPACITY, MAP_IPV4_ROUTES, MAP_IPV4_ROUTE_HITS,
    MAP_WCMP_GROUPS, WCMP_GROUP_CAPACITY,
};
use solyx_ebpf_common::{Counter, MAX_PORTS};

use super::bpffs::MapLayout;
use super::fabric::{is_not_found, sum, take_map, zeroed_per_cpu};
use super::Error;

/// The layouts of the maps this file covers, checked against pins before
/// reuse (the ACL inner map's value size is checked separately, see
/// [`check_acl_pin`]).
pub(crate) const TABLE_LAYOUTS: [MapLayout; 7] = [
    MapLayout {
        name: MAP_IPV4_ROUTES,
        map_type: MapType::LpmTrie,
        key_size: size_of::<Key<[u8; 4]>>() as u32,
        value_size: size_of::<Ipv4Route>() as u32,
        max_entries: IPV4_ROUTE_CAPACITY,
    },
    MapLayout {
        name: MAP_IPV4_ROUTE_HITS,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<Counter>() as u32,
        max_entries: IPV4_ROUTE_CAPACITY,
    },
    MapLayout {
        name: MAP_WCMP_GROUPS,
        map_type: MapType::Hash,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<WcmpGroup>() as u32,
        max_entries: WCMP_GROUP_CAPACITY,
    },
    MapLayout {
        name: MAP_ACL_TABLE,
        map_type: MapType::ArrayOfMaps,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<u32>() as u32,
        max_entries: 1,
    },
    MapLayout {
        name: MAP_ACL_HITS,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<Counter>() as u32,
        max_entries: ACL_HIT_SLOTS,
    },
    MapLayout {
        name: MAP_EGRESS_REWRITE,
        map_type: MapType::Array,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<EgressRewrite>() as u32,
        max_entries: MAX_PORTS,
    },
    MapLayout {
        name: MAP_EGRESS_REWRITE_HITS,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<Counter>() as u32,
        max_entries: MAX_PORTS,
    },
];

/// An IPv4 prefix: the address (masked, network order) and its length.
pub type RoutePrefix = ([u8; 4], u32);

/// Removes a pinned `ACL_TABLE` whose current inner map does not hold an
/// [`AclTable`] of this agent's size: the kernel would refuse to swap in an
/// inner map of another layout. Nothing happens when there is no pin or no
/// inner map yet.
pub(crate) fn check_acl_pin(pin_dir: &Path) -> Result<(), Error> {
    let pin = pin_dir.join(MAP_ACL_TABLE);
    if !pin.exists() {
        return Ok(());
    }
    let inner_size = MapData::from_pin(&pin)
        .and_then(Map::from_map_data)
        .and_then(ArrayOfMaps::<MapData, MapData>::try_from)
        .and_then(|outer| outer.get(&0, 0))
        .map(|inner| inner.info().map(|info| info.value_size()));
    let compatible = match inner_size {
        Ok(Ok(size)) => size as usize == size_of::<AclTable>(),
        // No inner map installed yet: the pin is usable.
        Err(e) if is_not_found(&e) => true,
        _ => false,
    };
    if !compatible {
        tracing::warn!(
            pin = %pin.display(),
            "pinned ACL table has another rule layout than this agent's; its rules are dropped"
        );
        std::fs::remove_file(&pin).map_err(|source| Error::Bpffs { path: pin, source })?;
    }
    Ok(())
}

/// The maps of routes, groups, ACL and egress rewrite, taken out of the
/// loaded object.
pub struct Tables {
    routes: LpmTrie<MapData, [u8; 4], Ipv4Route>,
    route_hits: PerCpuArray<MapData, Counter>,
    groups: HashMap<MapData, u32, WcmpGroup>,
    acl: ArrayOfMaps<MapData, Array<MapData, AclTable>>,
    acl_hits: PerCpuArray<MapData, Counter>,
    egress_rewrite: Array<MapData, EgressRewrite>,
    egress_hits: PerCpuArray<MapData, Counter>,
    packet_in: Option<PerfEventArray<MapData>>,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables").finish_non_exhaustive()
    }
}

/// A per-CPU counter cell.
fn counter_at(
    map: &PerCpuArray<MapData, Counter>,
    name: &'static str,
    capacity: u32,
    index: u32,
) -> Result<Counter, Error> {
    if index >= capacity {
        return Err(Error::invalid(
            "counter index",
            format!("{index} is not below {capacity}"),
        ));
    }
    map.get(&index, 0)
        .map(|values| sum(&values))
        .map_err(|e| Error::map(name, capacity, e))
}

/// Zeroes a per-CPU counter cell.
fn zero_at(
    map: &mut PerCpuArray<MapData, Counter>,
    name: &'static str,
    capacity: u32,
    index: u32,
) -> Result<(), Error> {
    map.set(index, zeroed_per_cpu()?, 0)
        .map_err(|e| Error::map(name, capacity, e))
}

impl Tables {
    /// Takes the maps out of the loaded object.
    pub(crate) fn take(ebpf: &mut Ebpf) -> Result<Self, Error> {
        Ok(Self {
            routes: take_map(ebpf, MAP_IPV4_ROUTES, LpmTrie::try_from)?,
            route_hits: take_map(ebpf, MAP_IPV4_ROUTE_HITS, PerCpuArray::try_from)?,
            groups: take_map(ebpf, MAP_WCMP_GROUPS, HashMap::try_from)?,
            acl: take_map(ebpf, MAP_ACL_TABLE, ArrayOfMaps::try_from)?,
            acl_hits: take_map(ebpf, MAP_ACL_HITS, PerCpuArray::try_from)?,
            egress_rewrite: take_map(ebpf, MAP_EGRESS_REWRITE, Array::try_from)?,
            egress_hits: take_map(ebpf, MAP_EGRESS_REWRITE_HITS, PerCpuArray::try_from)?,
            packet_in: Some(take_map(ebpf, MAP_PACKET_IN, PerfEventArray::try_from)?),
        })
    }

    // ----- IPv4 routes --------------------------------------------------

    /// Installs or replaces the route for `addr/prefix_len` (`addr` masked
    /// to the prefix by the caller).
    pub fn insert_route(
        &mut self,
        addr: [u8; 4],
        prefix_len: u32,
        route: &Ipv4Route,
    ) -> Result<(), Error> {
        check_prefix(prefix_len)?;
        self.routes
            .insert(&Key::new(prefix_len, addr), route, 0)
            .map_err(|e| Error::map(MAP_IPV4_ROUTES, IPV4_ROUTE_CAPACITY, e))
    }

    /// Removes the route for `addr/prefix_len`; whether there was one.
    pub fn remove_route(&mut self, addr: [u8; 4], prefix_len: u32) -> Result<bool, Error> {
        check_prefix(prefix_len)?;
        match self.routes.remove(&Key::new(prefix_len, addr)) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::map(MAP_IPV4_ROUTES, IPV4_ROUTE_CAPACITY, e)),
        }
    }

    /// Every route as ((address, prefix length), route).
    pub fn routes(&self) -> Result<Vec<(RoutePrefix, Ipv4Route)>, Error> {
        self.routes
            .iter()
            .map(|item| {
                item.map(|(key, route)| ((key.data(), key.prefix_len()), route))
                    .map_err(|e| Error::map(MAP_IPV4_ROUTES, IPV4_ROUTE_CAPACITY, e))
            })
            .collect()
    }

    /// Packets and bytes that hit the route with hit slot `slot`.
    pub fn route_hits(&self, slot: u32) -> Result<Counter, Error> {
        counter_at(
            &self.route_hits,
            MAP_IPV4_ROUTE_HITS,
            IPV4_ROUTE_CAPACITY,
            slot,
        )
    }

    /// Zeroes the route counter `slot` (before a new route takes it).
    pub fn reset_route_hits(&mut self, slot: u32) -> Result<(), Error> {
        zero_at(
            &mut self.route_hits,
            MAP_IPV4_ROUTE_HITS,
            IPV4_ROUTE_CAPACITY,
            slot,
        )
    }

    // ----- WCMP groups --------------------------------------------------

    /// Installs or replaces group `id`.
    pub fn set_group(&mut self, id: u32, group: &WcmpGroup) -> Result<(), Error> {
        self.groups
            .insert(id, group, 0)
            .map_err(|e| Error::map(MAP_WCMP_GROUPS, WCMP_GROUP_CAPACITY, e))
    }

    /// Removes group `id`; whether there was one.
    pub fn remove_group(&mut self, id: u32) -> Result<bool, Error> {
        match self.groups.remove(&id) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::map(MAP_WCMP_GROUPS, WCMP_GROUP_CAPACITY, e)),
        }
    }

    /// Every group as (ID, group).
    pub fn groups(&self) -> Result<Vec<(u32, WcmpGroup)>, Error> {
        self.groups
            .iter()
            .map(|item| item.map_err(|e| Error::map(MAP_WCMP_GROUPS, WCMP_GROUP_CAPACITY, e)))
            .collect()
    }

    // ----- ACL ----------------------------------------------------------

    /// Makes `table` the ACL: fills a new inner map with it and swaps it
    /// into `ACL_TABLE`. The kernel returns from the swap only after every
    /// program that may still read the old table has finished
    /// (`synchronize_rcu`), so a packet sees either table whole; the old
    /// inner map is freed when its last reference goes.
    pub fn publish_acl(&mut self, table: &AclTable) -> Result<(), Error> {
        let mut inner = Array::<MapData, AclTable>::create(1, 0)
            .map_err(|e| Error::map(MAP_ACL_TABLE, 1, e))?;
        inner
            .set(0, table, 0)
            .map_err(|e| Error::map(MAP_ACL_TABLE, 1, e))?;
        self.acl
            .set(0, &inner, 0)
            .map_err(|e| Error::map(MAP_ACL_TABLE, 1, e))
    }

    /// The ACL table in use, if one was published.
    pub fn acl_table(&self) -> Result<Option<Box<AclTable>>, Error> {
        let inner = match self.acl.get(&0, 0) {
            Ok(inner) => inner,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(Error::map(MAP_ACL_TABLE, 1, e)),
        };
        inner
            .get(&0, 0)
            .map(|table| Some(Box::new(table)))
            .map_err(|e| Error::map(MAP_ACL_TABLE, 1, e))
    }

    /// Packets and bytes counted in ACL hit slot `slot`.
    pub fn acl_hits(&self, slot: u32) -> Result<Counter, Error> {
        counter_at(&self.acl_hits, MAP_ACL_HITS, ACL_HIT_SLOTS, slot)
    }

    /// Zeroes ACL hit slot `slot`.
    pub fn reset_acl_hits(&mut self, slot: u32) -> Result<(), Error> {
        zero_at(&mut self.acl_hits, MAP_ACL_HITS, ACL_HIT_SLOTS, slot)
    }

    // ----- egress rewrite -----------------------------------------------

    /// Sets (`Some(mac)`) or clears (`None`) the source MAC of `port`.
    pub fn set_egress_rewrite(&mut self, port: u16, mac: Option<[u8; 6]>) -> Result<(), Error> {
        check_port(port)?;
        let value = match mac {
            Some(src_mac) => EgressRewrite {
                flags: EGRESS_FLAG_SET_SRC_MAC,
                src_mac,
            },
            None => EgressRewrite::default(),
        };
        self.egress_rewrite
            .set(u32::from(port), value, 0)
            .map_err(|e| Error::map(MAP_EGRESS_REWRITE, MAX_PORTS, e))
    }

    /// The source MAC `port` rewrites to, if any.
    pub fn egress_rewrite(&self, port: u16) -> Result<Option<[u8; 6]>, Error> {
        check_port(port)?;
        let value = self
            .egress_rewrite
            .get(&u32::from(port), 0)
            .map_err(|e| Error::map(MAP_EGRESS_REWRITE, MAX_PORTS, e))?;
        Ok((value.flags & EGRESS_FLAG_SET_SRC_MAC != 0).then_some(value.src_mac))
    }

    /// Packets and bytes the egress rewrite of `port` rewrote.
    pub fn egress_rewrite_hits(&self, port: u16) -> Result<Counter, Error> {
        counter_at(
            &self.egress_hits,
            MAP_EGRESS_REWRITE_HITS,
            MAX_PORTS,
            u32::from(port),
        )
    }

    /// Zeroes the egress rewrite counter of `port`.
    pub fn reset_egress_rewrite_hits(&mut self, port: u16) -> Result<(), Error> {
        zero_at(
            &mut self.egress_hits,
            MAP_EGRESS_REWRITE_HITS,
            MAX_PORTS,
            u32::from(port),
        )
    }

    // ----- packet-in ----------------------------------------------------

    /// Opens one perf ring of `pages` pages (a power of two) per online
    /// CPU on `PACKET_IN`. Once only: the map is handed to the rings.
    pub fn open_packet_in(
        &mut self,
        pages: usize,
    ) -> Result<Vec<PerfEventArrayBuffer<MapData>>, Error> {
        let Some(mut array) = self.packet_in.take() else {
            return Err(Error::invalid("packet-in rings", "already opened"));
        };
        let io_error = |e: io::Error| Error::map(MAP_PACKET_IN, 0, aya::maps::MapError::IoError(e));
        let cpus = aya::util::online_cpus().map_err(|(_, e)| io_error(e))?;
        cpus.into_iter()
            .map(|cpu| {
                array
                    .open(cpu, Some(pages))
                    .map_err(|e| io_error(io::Error::other(e)))
            })
            .collect()
    }
}

/// Checks an IPv4 prefix length.
fn check_prefix(prefix_len: u32) -> Result<(), Error> {
    if prefix_len > 32 {
        return Err(Error::invalid(
            "IPv4 prefix length",
            format!("{prefix_len} is above 32"),
        ));
    }
    Ok(())
}

/// Checks a port number.
fn check_port(port: u16) -> Result<(), Error> {
    if u32::from(port) >= MAX_PORTS {
        return Err(Error::invalid(
            "port",
            format!("{port} is not below {MAX_PORTS}"),
        ));
    }
    Ok(())
}
