//! [`Host`]: the loaded `solyx_host` programs (`ebpf/host`), their
//! attachments to the host's ports and typed access to their maps.
//!
//! The same lifetime rules as [`super::Fabric`]: maps are pinned under
//! `<pin root>/<instance>/`, the TC links (TCX, kernels ≥ 6.6) too
//! (`link-ingress-<interface>`, `link-egress-<interface>`), so the
//! programs keep labelling and sinking while no agent runs and the next
//! agent swaps its programs into the links.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::perf::PerfEventArrayBuffer;
use aya::maps::{Array, HashMap, MapData, MapType, PerCpuArray, PerfEventArray};
use aya::programs::tc::TcAttachType;
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};
use solyx_ebpf_common::host::{
    FlowKey, Flowlet, HostConfig, HostEvent, HostGroup, HostRoute, SinkPort, FLOW_BUCKETS,
    HOST_EVENT_SLOTS, HOST_GROUP_CAPACITY, HOST_PATH_SLOTS, HOST_ROUTE_CAPACITY,
    INT_SINK_PORT_CAPACITY, MAP_FLOWLETS, MAP_FLOW_BYTES, MAP_FLOW_KEYS, MAP_HOST_CONFIG,
    MAP_HOST_EVENTS, MAP_HOST_GROUPS, MAP_HOST_PATH_HITS, MAP_HOST_PORTS, MAP_HOST_ROUTES,
    MAP_HOST_ROUTE_HITS, MAP_INT_SINK, MAP_INT_SINK_PORTS, PROG_HOST_EGRESS, PROG_HOST_INGRESS,
};
use solyx_ebpf_common::{Counter, PortConfig, MAX_PORTS};

use super::bpffs::{self, MapLayout};
use super::fabric::{
    add_clsact, attach_tc, ifindex, is_not_found, sum, zeroed_per_cpu, IngressLink,
};
use super::{host_object, Error};

/// An IPv4 prefix: address (network order) and length.
pub type RoutePrefix = ([u8; 4], u32);

/// Reads of a flow key that does not hash to its bucket before it is
/// returned as it is.
const FLOW_KEY_READS: usize = 4;

/// Pinned link file name prefixes.
const INGRESS_PIN: &str = "link-ingress-";
const EGRESS_PIN: &str = "link-egress-";

const fn layout(
    name: &'static str,
    map_type: MapType,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
) -> MapLayout {
    MapLayout {
        name,
        map_type,
        key_size: key_size as u32,
        value_size: value_size as u32,
        max_entries,
    }
}

/// The pinned maps and the layout each must have.
const LAYOUTS: [MapLayout; 11] = [
    layout(
        MAP_HOST_ROUTES,
        MapType::LpmTrie,
        8,
        size_of::<HostRoute>(),
        HOST_ROUTE_CAPACITY,
    ),
    layout(
        MAP_HOST_ROUTE_HITS,
        MapType::PerCpuArray,
        4,
        size_of::<Counter>(),
        HOST_ROUTE_CAPACITY,
    ),
    layout(
        MAP_HOST_GROUPS,
        MapType::Hash,
        4,
        size_of::<HostGroup>(),
        HOST_GROUP_CAPACITY,
    ),
    layout(
        MAP_HOST_PATH_HITS,
        MapType::PerCpuArray,
        4,
        size_of::<Counter>(),
        HOST_PATH_SLOTS,
    ),
    layout(
        MAP_FLOWLETS,
        MapType::Array,
        4,
        size_of::<Flowlet>(),
        FLOW_BUCKETS,
    ),
    layout(
        MAP_FLOW_BYTES,
        MapType::PerCpuArray,
        4,
        size_of::<Counter>(),
        FLOW_BUCKETS,
    ),
    layout(
        MAP_FLOW_KEYS,
        MapType::Array,
        4,
        size_of::<FlowKey>(),
        FLOW_BUCKETS,
    ),
    layout(
        MAP_HOST_CONFIG,
        MapType::Array,
        4,
        size_of::<HostConfig>(),
        1,
    ),
    layout(
        MAP_HOST_PORTS,
        MapType::Hash,
        4,
        size_of::<PortConfig>(),
        MAX_PORTS,
    ),
    layout(
        MAP_INT_SINK_PORTS,
        MapType::Hash,
        4,
        size_of::<SinkPort>(),
        INT_SINK_PORT_CAPACITY,
    ),
    layout(
        MAP_HOST_EVENTS,
        MapType::PerCpuArray,
        4,
        8,
        HOST_EVENT_SLOTS,
    ),
];

/// The `solyx_host` programs, loaded, with their maps pinned. One per
/// instance at a time; dropping it leaves the pinned links running.
pub struct Host {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    routes: LpmTrie<MapData, [u8; 4], HostRoute>,
    route_hits: PerCpuArray<MapData, Counter>,
    groups: HashMap<MapData, u32, HostGroup>,
    path_hits: PerCpuArray<MapData, Counter>,
    flowlets: Array<MapData, Flowlet>,
    flow_bytes: PerCpuArray<MapData, Counter>,
    flow_keys: Array<MapData, FlowKey>,
    config: Array<MapData, HostConfig>,
    ports: HashMap<MapData, u32, PortConfig>,
    sink_ports: HashMap<MapData, u32, SinkPort>,
    events: PerCpuArray<MapData, u64>,
    sink: Option<PerfEventArray<MapData>>,
    /// Interface → (ifindex, ingress link, egress link).
    links: BTreeMap<String, (u32, IngressLink, IngressLink)>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("pin_dir", &self.pin_dir)
            .field("interfaces", &self.links.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn program_error(source: aya::programs::ProgramError) -> Error {
    Error::Program {
        program: PROG_HOST_EGRESS,
        source: Box::new(source),
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut SchedClassifier, Error> {
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| Error::invalid("host object", format!("it has no program {name}")))?;
    program.try_into().map_err(program_error)
}

fn take<M>(
    ebpf: &mut Ebpf,
    name: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<M, aya::maps::MapError>,
) -> Result<M, Error> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| Error::invalid("host object", format!("it has no map {name}")))?;
    convert(map).map_err(|e| Error::map(name, 0, e))
}

impl Host {
    /// Loads the embedded host object for `instance` under `pin_root`,
    /// pinning (or reopening) its maps.
    ///
    /// # Errors
    /// Built without eBPF, bpffs unusable, or the kernel refused a program.
    pub fn load_with(pin_root: &Path, instance: &str) -> Result<Self, Error> {
        let object = host_object();
        if object.is_empty() {
            return Err(Error::NotBuilt);
        }
        let pin_dir = bpffs::prepare_instance(pin_root, instance, &LAYOUTS)?;
        let mut loader = EbpfLoader::new();
        for l in &LAYOUTS {
            loader.map_pin_path(l.name, pin_dir.join(l.name));
        }
        let mut ebpf = loader.load(object).map_err(|e| Error::Load(Box::new(e)))?;
        for name in [PROG_HOST_EGRESS, PROG_HOST_INGRESS] {
            program(&mut ebpf, name)?.load().map_err(program_error)?;
        }
        let host = Self {
            routes: take(&mut ebpf, MAP_HOST_ROUTES, LpmTrie::try_from)?,
            route_hits: take(&mut ebpf, MAP_HOST_ROUTE_HITS, PerCpuArray::try_from)?,
            groups: take(&mut ebpf, MAP_HOST_GROUPS, HashMap::try_from)?,
            path_hits: take(&mut ebpf, MAP_HOST_PATH_HITS, PerCpuArray::try_from)?,
            flowlets: take(&mut ebpf, MAP_FLOWLETS, Array::try_from)?,
            flow_bytes: take(&mut ebpf, MAP_FLOW_BYTES, PerCpuArray::try_from)?,
            flow_keys: take(&mut ebpf, MAP_FLOW_KEYS, Array::try_from)?,
            config: take(&mut ebpf, MAP_HOST_CONFIG, Array::try_from)?,
            ports: take(&mut ebpf, MAP_HOST_PORTS, HashMap::try_from)?,
            sink_ports: take(&mut ebpf, MAP_INT_SINK_PORTS, HashMap::try_from)?,
            events: take(&mut ebpf, MAP_HOST_EVENTS, PerCpuArray::try_from)?,
            sink: Some(take(&mut ebpf, MAP_INT_SINK, PerfEventArray::try_from)?),
            ebpf,
            pin_dir,
            links: BTreeMap::new(),
        };
        tracing::info!(pin_dir = %host.pin_dir.display(), "host eBPF programs loaded");
        Ok(host)
    }

    /// The pin directory.
    #[must_use]
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// A loaded program (`host_egress` or `host_ingress`), e.g. for
    /// `BPF_PROG_TEST_RUN`.
    ///
    /// # Errors
    /// No such program.
    pub fn program(&mut self, name: &str) -> Result<&mut SchedClassifier, Error> {
        program(&mut self.ebpf, name)
    }

    /// Makes interface `name` (calling thread's namespace) host port
    /// `port`: `HOST_PORTS` entry, clsact, both programs attached. Returns
    /// its ifindex.
    ///
    /// # Errors
    /// No such interface, or attaching failed.
    pub fn attach(&mut self, name: &str, port: u16) -> Result<u32, Error> {
        if u32::from(port) >= MAX_PORTS {
            return Err(Error::invalid(
                "port",
                format!("{port} is not below {MAX_PORTS}"),
            ));
        }
        let ifindex = ifindex(name)?;
        self.ports
            .insert(ifindex, PortConfig { port, flags: 0 }, 0)
            .map_err(|e| Error::map(MAP_HOST_PORTS, MAX_PORTS, e))?;
        add_clsact(name)?;
        let pin = |prefix: &str| self.pin_dir.join(format!("{prefix}{name}"));
        let (ingress_pin, egress_pin) = (pin(INGRESS_PIN), pin(EGRESS_PIN));
        let ingress = attach_tc(
            program(&mut self.ebpf, PROG_HOST_INGRESS)?,
            ingress_pin,
            name,
            TcAttachType::Ingress,
            program_error,
        )?;
        let egress = attach_tc(
            program(&mut self.ebpf, PROG_HOST_EGRESS)?,
            egress_pin,
            name,
            TcAttachType::Egress,
            program_error,
        )?;
        tracing::info!(interface = name, ifindex, port, "host programs attached");
        self.links
            .insert(name.to_owned(), (ifindex, ingress, egress));
        Ok(ifindex)
    }

    /// Forgets the ports and unpins the links a previous agent left for
    /// interfaces this one did not attach.
    ///
    /// # Errors
    /// A map or the pin directory could not be read or changed.
    pub fn retain_ports(&mut self) -> Result<(), Error> {
        let ours: Vec<u32> = self.links.values().map(|(i, _, _)| *i).collect();
        let stale: Vec<u32> = self
            .ports
            .keys()
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|e| Error::map(MAP_HOST_PORTS, MAX_PORTS, e))?
            .into_iter()
            .filter(|i| !ours.contains(i))
            .collect();
        for ifindex in stale {
            let _ = self.ports.remove(&ifindex);
        }
        let entries = std::fs::read_dir(&self.pin_dir).map_err(|source| Error::Bpffs {
            path: self.pin_dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            let name = file
                .strip_prefix(INGRESS_PIN)
                .or_else(|| file.strip_prefix(EGRESS_PIN));
            if let Some(name) = name {
                if !self.links.contains_key(name) {
                    std::fs::remove_file(entry.path()).map_err(|source| Error::Bpffs {
                        path: entry.path(),
                        source,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Sets the flowlet gap.
    ///
    /// # Errors
    /// The map write failed.
    pub fn set_flowlet_gap(&mut self, gap_ns: u64) -> Result<(), Error> {
        self.config
            .set(
                0,
                HostConfig {
                    flowlet_gap_ns: gap_ns,
                },
                0,
            )
            .map_err(|e| Error::map(MAP_HOST_CONFIG, 1, e))
    }

    /// Installs (or replaces) the route to `addr/prefix_len`.
    ///
    /// # Errors
    /// The table is full.
    pub fn insert_route(
        &mut self,
        addr: [u8; 4],
        prefix_len: u32,
        route: HostRoute,
    ) -> Result<(), Error> {
        self.routes
            .insert(&Key::new(prefix_len, addr), route, 0)
            .map_err(|e| Error::map(MAP_HOST_ROUTES, HOST_ROUTE_CAPACITY, e))
    }

    /// Removes a route; false when it was not there.
    ///
    /// # Errors
    /// The map failed.
    pub fn remove_route(&mut self, addr: [u8; 4], prefix_len: u32) -> Result<bool, Error> {
        match self.routes.remove(&Key::new(prefix_len, addr)) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::map(MAP_HOST_ROUTES, HOST_ROUTE_CAPACITY, e)),
        }
    }

    /// Writes group `id` whole.
    ///
    /// # Errors
    /// The map is full.
    pub fn set_group(&mut self, id: u32, group: &HostGroup) -> Result<(), Error> {
        self.groups
            .insert(id, group, 0)
            .map_err(|e| Error::map(MAP_HOST_GROUPS, HOST_GROUP_CAPACITY, e))
    }

    /// Removes group `id`.
    ///
    /// # Errors
    /// The map failed.
    pub fn remove_group(&mut self, id: u32) -> Result<bool, Error> {
        match self.groups.remove(&id) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::map(MAP_HOST_GROUPS, HOST_GROUP_CAPACITY, e)),
        }
    }

    /// Installs (or replaces) an INT sink port.
    ///
    /// # Errors
    /// The map is full.
    pub fn insert_sink_port(&mut self, l4_port: u16, sink: SinkPort) -> Result<(), Error> {
        self.sink_ports
            .insert(u32::from(l4_port), sink, 0)
            .map_err(|e| Error::map(MAP_INT_SINK_PORTS, INT_SINK_PORT_CAPACITY, e))
    }

    /// Removes an INT sink port.
    ///
    /// # Errors
    /// The map failed.
    pub fn remove_sink_port(&mut self, l4_port: u16) -> Result<bool, Error> {
        match self.sink_ports.remove(&u32::from(l4_port)) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::map(MAP_INT_SINK_PORTS, INT_SINK_PORT_CAPACITY, e)),
        }
    }

    /// Every route in the map (a previous agent's, at restart).
    ///
    /// # Errors
    /// The map failed.
    pub fn route_entries(&self) -> Result<Vec<(RoutePrefix, HostRoute)>, Error> {
        self.routes
            .iter()
            .map(|item| {
                item.map(|(k, v)| ((k.data(), k.prefix_len()), v))
                    .map_err(|e| Error::map(MAP_HOST_ROUTES, HOST_ROUTE_CAPACITY, e))
            })
            .collect()
    }

    /// Every group ID in the map.
    ///
    /// # Errors
    /// The map failed.
    pub fn group_ids(&self) -> Result<Vec<u32>, Error> {
        self.groups
            .keys()
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|e| Error::map(MAP_HOST_GROUPS, HOST_GROUP_CAPACITY, e))
    }

    /// Every INT sink port in the map.
    ///
    /// # Errors
    /// The map failed.
    pub fn sink_port_entries(&self) -> Result<Vec<u16>, Error> {
        self.sink_ports
            .keys()
            .map(|k| {
                k.map(|p| p as u16)
                    .map_err(|e| Error::map(MAP_INT_SINK_PORTS, INT_SINK_PORT_CAPACITY, e))
            })
            .collect()
    }

    /// Empties routes, groups and sink ports (counters stay).
    ///
    /// # Errors
    /// A map failed.
    pub fn clear(&mut self) -> Result<(), Error> {
        let routes: Vec<_> = self.routes.keys().filter_map(Result::ok).collect();
        for key in routes {
            let _ = self.routes.remove(&key);
        }
        let groups: Vec<u32> = self.groups.keys().filter_map(Result::ok).collect();
        for id in groups {
            let _ = self.groups.remove(&id);
        }
        let ports: Vec<u32> = self.sink_ports.keys().filter_map(Result::ok).collect();
        for p in ports {
            let _ = self.sink_ports.remove(&p);
        }
        Ok(())
    }

    fn per_cpu(
        map: &PerCpuArray<MapData, Counter>,
        name: &'static str,
        slot: u32,
    ) -> Result<Counter, Error> {
        map.get(&slot, 0)
            .map(|v| sum(&v))
            .map_err(|e| Error::map(name, 0, e))
    }

    fn zero(
        map: &mut PerCpuArray<MapData, Counter>,
        name: &'static str,
        slot: u32,
    ) -> Result<(), Error> {
        map.set(slot, zeroed_per_cpu()?, 0)
            .map_err(|e| Error::map(name, 0, e))
    }

    /// The counter of route hit slot `slot`.
    ///
    /// # Errors
    /// Out of range or the map failed.
    pub fn route_hits(&self, slot: u32) -> Result<Counter, Error> {
        Self::per_cpu(&self.route_hits, MAP_HOST_ROUTE_HITS, slot)
    }

    /// Zeroes route hit slot `slot`.
    ///
    /// # Errors
    /// Out of range or the map failed.
    pub fn reset_route_hits(&mut self, slot: u32) -> Result<(), Error> {
        Self::zero(&mut self.route_hits, MAP_HOST_ROUTE_HITS, slot)
    }

    /// The counter of path `path_id`.
    ///
    /// # Errors
    /// Out of range or the map failed.
    pub fn path_hits(&self, path_id: u32) -> Result<Counter, Error> {
        Self::per_cpu(&self.path_hits, MAP_HOST_PATH_HITS, path_id)
    }

    /// The bytes of flow bucket `bucket` (elephant counter).
    ///
    /// # Errors
    /// Out of range or the map failed.
    pub fn flow_bytes(&self, bucket: u32) -> Result<Counter, Error> {
        Self::per_cpu(&self.flow_bytes, MAP_FLOW_BYTES, bucket)
    }

    /// The 5-tuple of the flow that last counted in flow bucket `bucket`
    /// (zeros when none has). A key being rewritten while it is read (two
    /// flows in one bucket, on two CPUs) can come out as a mix of both: a
    /// key that does not hash to its bucket is read again, a few times.
    ///
    /// # Errors
    /// Out of range or the map failed.
    pub fn flow_key(&self, bucket: u32) -> Result<FlowKey, Error> {
        let mut key = FlowKey::default();
        for _ in 0..FLOW_KEY_READS {
            key = self
                .flow_keys
                .get(&bucket, 0)
                .map_err(|e| Error::map(MAP_FLOW_KEYS, FLOW_BUCKETS, e))?;
            if key == FlowKey::default() || key.bucket() == bucket {
                break;
            }
        }
        Ok(key)
    }

    /// The flowlet state of flow bucket `bucket`.
    ///
    /// # Errors
    /// Out of range or the map failed.
    pub fn flowlet(&self, bucket: u32) -> Result<Flowlet, Error> {
        self.flowlets
            .get(&bucket, 0)
            .map_err(|e| Error::map(MAP_FLOWLETS, FLOW_BUCKETS, e))
    }

    /// The count of `event`, summed over CPUs.
    ///
    /// # Errors
    /// The map failed.
    pub fn event(&self, event: HostEvent) -> Result<u64, Error> {
        self.events
            .get(&event.index(), 0)
            .map(|v| v.iter().fold(0u64, |a, b| a.saturating_add(*b)))
            .map_err(|e| Error::map(MAP_HOST_EVENTS, HOST_EVENT_SLOTS, e))
    }

    /// Every event with its count.
    ///
    /// # Errors
    /// The map failed.
    pub fn events(&self) -> Result<Vec<(HostEvent, u64)>, Error> {
        HostEvent::ALL
            .iter()
            .map(|e| Ok((*e, self.event(*e)?)))
            .collect()
    }

    /// Opens one perf ring of `pages` pages per online CPU on `INT_SINK`.
    /// Once only.
    ///
    /// # Errors
    /// Already opened, or the rings could not be mapped.
    pub fn open_sink(&mut self, pages: usize) -> Result<Vec<PerfEventArrayBuffer<MapData>>, Error> {
        let Some(mut array) = self.sink.take() else {
            return Err(Error::invalid("INT sink rings", "already opened"));
        };
        let io_error = |e: io::Error| Error::map(MAP_INT_SINK, 0, aya::maps::MapError::IoError(e));
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
