//! [`Fabric`]: the loaded `solyx_fabric` TC ingress stage, its attachments
//! and typed access to its maps.
//!
//! Map writes are plain syscalls on the pinned maps; the program sees them
//! on the next packet. Interface names resolve in the network namespace of
//! the calling thread, and so do attachments: to drive a switch that lives
//! in another namespace, call [`Fabric::attach`] from a thread that entered
//! it (`setns`); maps and the loaded program are not tied to a namespace.

use std::collections::HashMap as StdHashMap;
use std::io;
use std::path::{Path, PathBuf};

use aya::maps::{HashMap, MapData, MapType, PerCpuArray, PerCpuHashMap, PerCpuValues};
use aya::programs::tc::{self, SchedClassifierLinkId, TcAttachType, TcError};
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};
use solyx_ebpf_common::{
    Counter, DropReason, MplsForward, MplsKey, PortConfig, DROP_REASON_SLOTS, MAP_DROP_REASONS,
    MAP_MPLS_FORWARD, MAP_MPLS_HITS, MAP_PORT_OF_IFINDEX, MAP_PORT_RX, MAX_PORTS, MPLS_FLAGS_KNOWN,
    MPLS_FORWARD_CAPACITY, MPLS_LABEL_MAX, PROG_FABRIC_INGRESS,
};

use super::bpffs::{self, MapLayout};
use super::{fabric_object, Error};

/// The maps of the fabric object and the layout each must have; checked
/// against pinned maps before they are reused.
const LAYOUTS: [MapLayout; 5] = [
    MapLayout {
        name: MAP_MPLS_FORWARD,
        map_type: MapType::Hash,
        key_size: size_of::<MplsKey>() as u32,
        value_size: size_of::<MplsForward>() as u32,
        max_entries: MPLS_FORWARD_CAPACITY,
    },
    MapLayout {
        name: MAP_MPLS_HITS,
        map_type: MapType::PerCpuHash,
        key_size: size_of::<MplsKey>() as u32,
        value_size: size_of::<Counter>() as u32,
        max_entries: MPLS_FORWARD_CAPACITY,
    },
    MapLayout {
        name: MAP_PORT_OF_IFINDEX,
        map_type: MapType::Hash,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<PortConfig>() as u32,
        max_entries: MAX_PORTS,
    },
    MapLayout {
        name: MAP_PORT_RX,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<Counter>() as u32,
        max_entries: MAX_PORTS,
    },
    MapLayout {
        name: MAP_DROP_REASONS,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<u64>() as u32,
        max_entries: DROP_REASON_SLOTS,
    },
];

/// The fabric pipeline's TC ingress stage, loaded, with its maps pinned.
///
/// Dropping it detaches the program from every interface it was attached
/// to (ports then hand all traffic to the kernel); the pinned maps stay,
/// and the next [`Fabric::load`] of the same instance picks them up. One
/// `Fabric` per instance at a time: loading forgets the ports of the
/// previous one (they must be attached again).
pub struct Fabric {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    mpls_forward: HashMap<MapData, MplsKey, MplsForward>,
    mpls_hits: PerCpuHashMap<MapData, MplsKey, Counter>,
    port_of_ifindex: HashMap<MapData, u32, PortConfig>,
    port_rx: PerCpuArray<MapData, Counter>,
    drop_reasons: PerCpuArray<MapData, u64>,
    /// Interface name → (ifindex, link) of every attachment made here.
    links: StdHashMap<String, (u32, SchedClassifierLinkId)>,
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fabric")
            .field("pin_dir", &self.pin_dir)
            .field("interfaces", &self.links.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Fabric {
    /// Loads the embedded fabric object for `instance`, pinning (or
    /// reopening) its maps under [`bpffs::DEFAULT_PIN_ROOT`]`/<instance>`.
    pub fn load(instance: &str) -> Result<Self, Error> {
        Self::load_with(Path::new(bpffs::DEFAULT_PIN_ROOT), instance)
    }

    /// [`Fabric::load`] with another pin root (a directory on a bpffs).
    pub fn load_with(pin_root: &Path, instance: &str) -> Result<Self, Error> {
        let object = fabric_object();
        if object.is_empty() {
            return Err(Error::NotBuilt);
        }
        let pin_dir = bpffs::prepare_instance(pin_root, instance, &LAYOUTS)?;

        let mut loader = EbpfLoader::new();
        for layout in &LAYOUTS {
            loader.map_pin_path(layout.name, pin_dir.join(layout.name));
        }
        let mut ebpf = loader.load(object).map_err(|e| Error::Load(Box::new(e)))?;

        program_mut(&mut ebpf)?.load().map_err(program_error)?;

        let mpls_forward = take_map(&mut ebpf, MAP_MPLS_FORWARD, HashMap::try_from)?;
        let mpls_hits = take_map(&mut ebpf, MAP_MPLS_HITS, PerCpuHashMap::try_from)?;
        let port_of_ifindex = take_map(&mut ebpf, MAP_PORT_OF_IFINDEX, HashMap::try_from)?;
        let port_rx = take_map(&mut ebpf, MAP_PORT_RX, PerCpuArray::try_from)?;
        let drop_reasons = take_map(&mut ebpf, MAP_DROP_REASONS, PerCpuArray::try_from)?;
        let mut fabric = Self {
            ebpf,
            pin_dir,
            mpls_forward,
            mpls_hits,
            port_of_ifindex,
            port_rx,
            drop_reasons,
            links: StdHashMap::new(),
        };
        fabric.forget_ports()?;
        tracing::info!(pin_dir = %fabric.pin_dir.display(), "fabric eBPF stage loaded");
        Ok(fabric)
    }

    /// Empties `PORT_OF_IFINDEX`. A reopened map holds the ports of the
    /// previous agent, whose attachments are gone; its interfaces may have
    /// been recreated under other indexes since, and a stale entry would
    /// keep a port number taken.
    fn forget_ports(&mut self) -> Result<(), Error> {
        let stale: Vec<u32> = self
            .port_of_ifindex
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e))?;
        for ifindex in stale {
            match self.port_of_ifindex.remove(&ifindex) {
                Err(e) if !is_not_found(&e) => {
                    return Err(Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The directory holding this instance's pinned maps.
    #[must_use]
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// The loaded TC program, e.g. for `BPF_PROG_TEST_RUN`
    /// (`aya::programs::TestRun`).
    pub fn program(&mut self) -> Result<&mut SchedClassifier, Error> {
        program_mut(&mut self.ebpf)
    }

    /// Makes interface `name` (in the calling thread's network namespace)
    /// fabric port `port`: records the port in `PORT_OF_IFINDEX`, adds the
    /// clsact qdisc if it is missing, and attaches the program to ingress
    /// (as a TCX link on kernels ≥ 6.6, a clsact filter before). Attaching
    /// an interface again replaces the earlier attachment.
    pub fn attach(&mut self, name: &str, port: u16) -> Result<u32, Error> {
        if u32::from(port) >= MAX_PORTS {
            return Err(Error::invalid(
                "port",
                format!("{port} is not below {MAX_PORTS}"),
            ));
        }
        let ifindex = ifindex(name)?;
        for item in self.port_of_ifindex.iter() {
            let (other, config) =
                item.map_err(|e| Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e))?;
            if config.port == port && other != ifindex {
                return Err(Error::invalid(
                    "port",
                    format!("port {port} is already interface index {other}"),
                ));
            }
        }
        self.detach(name)?;

        self.port_of_ifindex
            .insert(ifindex, PortConfig { port, flags: 0 }, 0)
            .map_err(|e| Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e))?;
        let attached = add_clsact(name).and_then(|()| {
            program_mut(&mut self.ebpf)?
                .attach(name, TcAttachType::Ingress)
                .map_err(program_error)
        });
        let link = match attached {
            Ok(link) => link,
            Err(e) => {
                // Not attached: the port entry would only hold the number.
                let _ = self.port_of_ifindex.remove(&ifindex);
                return Err(e);
            }
        };
        self.links.insert(name.to_owned(), (ifindex, link));
        tracing::info!(interface = name, ifindex, port, "fabric stage attached");
        Ok(ifindex)
    }

    /// Detaches the program from interface `name` and forgets its port.
    /// Does nothing for an interface this `Fabric` did not attach.
    pub fn detach(&mut self, name: &str) -> Result<(), Error> {
        let Some((ifindex, link)) = self.links.remove(name) else {
            return Ok(());
        };
        program_mut(&mut self.ebpf)?
            .detach(link)
            .map_err(program_error)?;
        match self.port_of_ifindex.remove(&ifindex) {
            Err(e) if !is_not_found(&e) => Err(Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e)),
            _ => Ok(()),
        }
    }

    /// Interfaces attached through this `Fabric`, with their ifindexes.
    pub fn attached(&self) -> impl Iterator<Item = (&str, u32)> {
        self.links
            .iter()
            .map(|(name, (ifindex, _))| (name.as_str(), *ifindex))
    }

    /// Installs (or replaces) the `MPLS_FORWARD` entry for `label`. A new
    /// entry starts with zeroed hit counters; a replaced one keeps them.
    pub fn insert_mpls_forward(&mut self, label: u32, entry: MplsForward) -> Result<(), Error> {
        check_label(label)?;
        if entry.egress_ifindex == 0 {
            return Err(Error::invalid("egress interface", "interface index 0"));
        }
        if u32::from(entry.egress_port) >= MAX_PORTS {
            return Err(Error::invalid(
                "egress port",
                format!("{} is not below {MAX_PORTS}", entry.egress_port),
            ));
        }
        if entry.flags & !MPLS_FLAGS_KNOWN != 0 {
            return Err(Error::invalid(
                "MPLS forward flags",
                format!("unknown bits {:#06x}", entry.flags & !MPLS_FLAGS_KNOWN),
            ));
        }
        let key = MplsKey { label };
        let existed = self.mpls_forward(label)?.is_some();
        if !existed {
            self.reset_hits(key)?;
        }
        match self.mpls_forward.insert(key, entry, 0) {
            Ok(()) => Ok(()),
            Err(e) => {
                if !existed {
                    // No entry, so no counters either.
                    let _ = self.mpls_hits.remove(&key);
                }
                Err(Error::map(MAP_MPLS_FORWARD, MPLS_FORWARD_CAPACITY, e))
            }
        }
    }

    /// Removes the entry for `label` and its counters. Returns whether there
    /// was one.
    pub fn remove_mpls_forward(&mut self, label: u32) -> Result<bool, Error> {
        check_label(label)?;
        let key = MplsKey { label };
        let existed = match self.mpls_forward.remove(&key) {
            Ok(()) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(Error::map(MAP_MPLS_FORWARD, MPLS_FORWARD_CAPACITY, e)),
        };
        match self.mpls_hits.remove(&key) {
            Err(e) if !is_not_found(&e) => Err(Error::map(MAP_MPLS_HITS, MPLS_FORWARD_CAPACITY, e)),
            _ => Ok(existed),
        }
    }

    /// The entry for `label`, if any.
    pub fn mpls_forward(&self, label: u32) -> Result<Option<MplsForward>, Error> {
        check_label(label)?;
        match self.mpls_forward.get(&MplsKey { label }, 0) {
            Ok(entry) => Ok(Some(entry)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::map(MAP_MPLS_FORWARD, MPLS_FORWARD_CAPACITY, e)),
        }
    }

    /// Every `MPLS_FORWARD` entry as (label, entry), in no particular order.
    pub fn mpls_forward_entries(&self) -> Result<Vec<(u32, MplsForward)>, Error> {
        self.mpls_forward
            .iter()
            .map(|item| {
                item.map(|(key, entry)| (key.label, entry))
                    .map_err(|e| Error::map(MAP_MPLS_FORWARD, MPLS_FORWARD_CAPACITY, e))
            })
            .collect()
    }

    /// Packets and bytes that hit the entry for `label`, summed over CPUs;
    /// zero when the label has no counters.
    pub fn mpls_hits(&self, label: u32) -> Result<Counter, Error> {
        check_label(label)?;
        match self.mpls_hits.get(&MplsKey { label }, 0) {
            Ok(values) => Ok(sum(&values)),
            Err(e) if is_not_found(&e) => Ok(Counter::default()),
            Err(e) => Err(Error::map(MAP_MPLS_HITS, MPLS_FORWARD_CAPACITY, e)),
        }
    }

    /// Packets and bytes received on `port`, summed over CPUs.
    pub fn port_rx(&self, port: u16) -> Result<Counter, Error> {
        if u32::from(port) >= MAX_PORTS {
            return Err(Error::invalid(
                "port",
                format!("{port} is not below {MAX_PORTS}"),
            ));
        }
        self.port_rx
            .get(&u32::from(port), 0)
            .map(|values| sum(&values))
            .map_err(|e| Error::map(MAP_PORT_RX, MAX_PORTS, e))
    }

    /// How many packets were counted for `reason`, summed over CPUs.
    pub fn drop_count(&self, reason: DropReason) -> Result<u64, Error> {
        self.drop_reasons
            .get(&reason.index(), 0)
            .map(|values| values.iter().fold(0u64, |acc, v| acc.saturating_add(*v)))
            .map_err(|e| Error::map(MAP_DROP_REASONS, DROP_REASON_SLOTS, e))
    }

    /// Every drop reason with its count (zeros included), in index order.
    pub fn drop_counts(&self) -> Result<Vec<(DropReason, u64)>, Error> {
        DropReason::ALL
            .iter()
            .map(|&reason| Ok((reason, self.drop_count(reason)?)))
            .collect()
    }

    /// Sets the counters of `key` to zero on every CPU, making room first
    /// when stale counters (of labels removed while packets were in flight)
    /// fill the map.
    fn reset_hits(&mut self, key: MplsKey) -> Result<(), Error> {
        match self.mpls_hits.insert(key, zeroed_per_cpu()?, 0) {
            Ok(()) => Ok(()),
            Err(e) => {
                let error = Error::map(MAP_MPLS_HITS, MPLS_FORWARD_CAPACITY, e);
                if !error.is_table_full() {
                    return Err(error);
                }
                self.remove_stale_hits()?;
                self.mpls_hits
                    .insert(key, zeroed_per_cpu()?, 0)
                    .map_err(|e| Error::map(MAP_MPLS_HITS, MPLS_FORWARD_CAPACITY, e))
            }
        }
    }

    /// Deletes `MPLS_HITS` entries whose label has no `MPLS_FORWARD` entry.
    fn remove_stale_hits(&mut self) -> Result<(), Error> {
        let keys: Vec<MplsKey> = self
            .mpls_hits
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| Error::map(MAP_MPLS_HITS, MPLS_FORWARD_CAPACITY, e))?;
        for key in keys {
            if self.mpls_forward(key.label)?.is_none() {
                match self.mpls_hits.remove(&key) {
                    Err(e) if !is_not_found(&e) => {
                        return Err(Error::map(MAP_MPLS_HITS, MPLS_FORWARD_CAPACITY, e));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Whether a map failure says the key is not there (aya reports a lookup
/// miss as `KeyNotFound`, a delete miss as `ENOENT` from the syscall).
fn is_not_found(error: &aya::maps::MapError) -> bool {
    match error {
        aya::maps::MapError::KeyNotFound | aya::maps::MapError::ElementNotFound => true,
        aya::maps::MapError::SyscallError(e) => {
            e.io_error.raw_os_error() == Some(nix::errno::Errno::ENOENT as i32)
        }
        _ => false,
    }
}

/// Checks a label value (20 bits).
fn check_label(label: u32) -> Result<(), Error> {
    if label > MPLS_LABEL_MAX {
        return Err(Error::invalid(
            "MPLS label",
            format!("{label} is wider than 20 bits"),
        ));
    }
    Ok(())
}

/// The interface index of `name` in the calling thread's namespace.
fn ifindex(name: &str) -> Result<u32, Error> {
    match nix::net::if_::if_nametoindex(name) {
        Ok(index) => Ok(index),
        Err(e) => Err(Error::Interface {
            name: name.to_owned(),
            source: io::Error::from(e),
        }),
    }
}

/// Adds the clsact qdisc to `name`; one that exists already is fine.
fn add_clsact(name: &str) -> Result<(), Error> {
    match tc::qdisc_add_clsact(name) {
        Ok(()) | Err(TcError::AlreadyAttached) => Ok(()),
        Err(TcError::NetlinkError(e))
            if e.raw_os_error() == Some(nix::errno::Errno::EEXIST as i32) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::Qdisc {
            interface: name.to_owned(),
            source: Box::new(e),
        }),
    }
}

/// The TC program of the fabric object.
fn program_mut(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, Error> {
    let program = ebpf
        .program_mut(PROG_FABRIC_INGRESS)
        .ok_or_else(|| Error::invalid("fabric object", "it has no fabric_ingress program"))?;
    program.try_into().map_err(program_error)
}

/// Wraps a failure of the fabric program.
fn program_error(source: aya::programs::ProgramError) -> Error {
    Error::Program {
        program: PROG_FABRIC_INGRESS,
        source: Box::new(source),
    }
}

/// Takes map `name` out of `ebpf` as the typed map `convert` makes of it.
fn take_map<M>(
    ebpf: &mut Ebpf,
    name: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<M, aya::maps::MapError>,
) -> Result<M, Error> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| Error::invalid("fabric object", format!("it has no map {name}")))?;
    convert(map).map_err(|e| Error::map(name, 0, e))
}

/// One zeroed counter per possible CPU.
fn zeroed_per_cpu() -> Result<PerCpuValues<Counter>, Error> {
    let io_error = |e: io::Error| {
        Error::map(
            MAP_MPLS_HITS,
            MPLS_FORWARD_CAPACITY,
            aya::maps::MapError::IoError(e),
        )
    };
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| io_error(e))?;
    PerCpuValues::try_from(vec![Counter::default(); cpus]).map_err(io_error)
}

/// The sum of per-CPU counters.
fn sum(values: &PerCpuValues<Counter>) -> Counter {
    values
        .iter()
        .fold(Counter::default(), |acc, v| acc.saturating_add(*v))
}
