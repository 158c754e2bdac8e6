//! [`Fabric`]: the loaded `solyx_fabric` TC ingress stage, its attachments
//! and typed access to its maps.
//!
//! Map writes are plain syscalls on the pinned maps; the program sees them
//! on the next packet. Interface names resolve in the network namespace of
//! the calling thread, and so do attachments: to drive a switch that lives
//! in another namespace, call [`Fabric::attach`] from a thread that entered
//! it (`setns`); maps and the loaded program are not tied to a namespace.
//!
//! Attachments outlive the agent: on kernels with TCX (≥ 6.6) each ingress
//! link is pinned next to the maps (`link-ingress-<interface>`), so the
//! program keeps forwarding while no agent runs; the next agent swaps its
//! own program into the pinned link atomically (`bpf_link_update`) instead
//! of detaching and attaching ([`super::IntTransit`] does the same for the
//! egress links, `link-egress-<interface>`). The maps beyond MPLS are in
//! [`Tables`].

use std::collections::HashMap as StdHashMap;
use std::io;
use std::path::{Path, PathBuf};

use aya::maps::{HashMap, MapData, MapType, PerCpuArray, PerCpuHashMap, PerCpuValues};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::tc::{self, SchedClassifierLink, SchedClassifierLinkId, TcAttachType, TcError};
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};
use solyx_ebpf_common::{
    Counter, DropReason, MplsForward, MplsKey, PortConfig, DROP_REASON_SLOTS, MAP_DROP_REASONS,
    MAP_MPLS_FORWARD, MAP_MPLS_HITS, MAP_PORT_OF_IFINDEX, MAP_PORT_RX, MAX_PORTS, MPLS_FLAGS_KNOWN,
    MPLS_FORWARD_CAPACITY, MPLS_LABEL_MAX, PROG_FABRIC_INGRESS,
};

use super::bpffs::{self, MapLayout};
use super::tables::{check_acl_pin, Tables, TABLE_LAYOUTS};
use super::{fabric_object, Error};

/// File name prefix of a pinned ingress link in the instance directory.
const LINK_PIN_PREFIX: &str = "link-ingress-";

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
/// Dropping it leaves the program attached through its pinned links (on
/// kernels with TCX; without TCX the ports are detached and hand all
/// traffic to the kernel); the pinned maps stay, and the next
/// [`Fabric::load`] of the same instance picks them up and swaps its
/// program into the links as it attaches the ports. One `Fabric` per
/// instance at a time. [`Fabric::detach`], or removing the pin directory,
/// detaches for good.
pub struct Fabric {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    mpls_forward: HashMap<MapData, MplsKey, MplsForward>,
    mpls_hits: PerCpuHashMap<MapData, MplsKey, Counter>,
    port_of_ifindex: HashMap<MapData, u32, PortConfig>,
    port_rx: PerCpuArray<MapData, Counter>,
    drop_reasons: PerCpuArray<MapData, u64>,
    tables: Tables,
    /// Interface name → (ifindex, link) of every attachment made here.
    links: StdHashMap<String, (u32, IngressLink)>,
}

/// How a TC attachment is held.
#[derive(Debug)]
pub(crate) enum IngressLink {
    /// A TCX link pinned at this path: it outlives the agent; removing the
    /// pin detaches it.
    Pinned(PathBuf),
    /// A link the loaded program owns (a netlink filter, on kernels
    /// without TCX); it is detached with the `Fabric`.
    Owned(SchedClassifierLinkId),
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
        // The INT transit stage's maps live in the same object and are
        // pinned with the fabric's (`super::int`).
        let layouts: Vec<MapLayout> = LAYOUTS
            .iter()
            .chain(&TABLE_LAYOUTS)
            .chain(&super::int::INT_LAYOUTS)
            .copied()
            .collect();
        let pin_dir = bpffs::prepare_instance(pin_root, instance, &layouts)?;
        check_acl_pin(&pin_dir)?;

        let mut loader = EbpfLoader::new();
        for layout in &layouts {
            loader.map_pin_path(layout.name, pin_dir.join(layout.name));
        }
        let mut ebpf = loader.load(object).map_err(|e| Error::Load(Box::new(e)))?;

        program_mut(&mut ebpf)?.load().map_err(program_error)?;

        let mpls_forward = take_map(&mut ebpf, MAP_MPLS_FORWARD, HashMap::try_from)?;
        let mpls_hits = take_map(&mut ebpf, MAP_MPLS_HITS, PerCpuHashMap::try_from)?;
        let port_of_ifindex = take_map(&mut ebpf, MAP_PORT_OF_IFINDEX, HashMap::try_from)?;
        let port_rx = take_map(&mut ebpf, MAP_PORT_RX, PerCpuArray::try_from)?;
        let drop_reasons = take_map(&mut ebpf, MAP_DROP_REASONS, PerCpuArray::try_from)?;
        let tables = Tables::take(&mut ebpf)?;
        let fabric = Self {
            ebpf,
            pin_dir,
            mpls_forward,
            mpls_hits,
            port_of_ifindex,
            port_rx,
            drop_reasons,
            tables,
            links: StdHashMap::new(),
        };
        // `PORT_OF_IFINDEX` and the pinned links of a previous agent stay:
        // its program keeps forwarding until `attach` swaps this one in,
        // and `retain_ports` then drops what is no longer configured.
        tracing::info!(pin_dir = %fabric.pin_dir.display(), "fabric eBPF stage loaded");
        Ok(fabric)
    }

    /// Detaches and forgets every port this `Fabric` did not attach: the
    /// `PORT_OF_IFINDEX` entries and pinned links a previous agent left for
    /// interfaces that are no longer configured (or no longer exist). Call
    /// it after attaching every configured port.
    pub fn retain_ports(&mut self) -> Result<(), Error> {
        let ours: Vec<u32> = self.links.values().map(|(ifindex, _)| *ifindex).collect();
        let stale: Vec<u32> = self
            .port_of_ifindex
            .keys()
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|e| Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e))?
            .into_iter()
            .filter(|ifindex| !ours.contains(ifindex))
            .collect();
        for ifindex in stale {
            match self.port_of_ifindex.remove(&ifindex) {
                Err(e) if !is_not_found(&e) => {
                    return Err(Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e));
                }
                _ => tracing::info!(ifindex, "forgot a port of the previous agent"),
            }
        }
        let entries = std::fs::read_dir(&self.pin_dir).map_err(|source| Error::Bpffs {
            path: self.pin_dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_prefix(LINK_PIN_PREFIX)) else {
                continue;
            };
            if !self.links.contains_key(name) {
                tracing::info!(interface = name, "detached a port of the previous agent");
                std::fs::remove_file(entry.path()).map_err(|source| Error::Bpffs {
                    path: entry.path(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// The route, group, ACL and egress rewrite maps.
    #[must_use]
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The same, for writing.
    pub fn tables_mut(&mut self) -> &mut Tables {
        &mut self.tables
    }

    /// The P4 port of interface index `ifindex`, if it is a fabric port.
    pub fn port_of(&self, ifindex: u32) -> Result<Option<u16>, Error> {
        match self.port_of_ifindex.get(&ifindex, 0) {
            Ok(config) => Ok(Some(config.port)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e)),
        }
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

    /// The loaded object, for the stages that share it: INT transit loads
    /// its egress program and takes its maps from here (`super::int`).
    pub(crate) fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Makes interface `name` (in the calling thread's network namespace)
    /// fabric port `port`: records the port in `PORT_OF_IFINDEX`, adds the
    /// clsact qdisc if it is missing, and attaches the program to ingress.
    ///
    /// On kernels with TCX the link is pinned (`link-ingress-<name>` in the
    /// pin directory) so that it outlives the agent; when a previous agent
    /// left such a pin, this program is swapped into that link atomically
    /// and forwarding never stops. Without TCX a clsact filter is used,
    /// which the `Fabric` detaches when dropped. Attaching an interface
    /// again replaces the program in place.
    pub fn attach(&mut self, name: &str, port: u16) -> Result<u32, Error> {
        if u32::from(port) >= MAX_PORTS {
            return Err(Error::invalid(
                "port",
                format!("{port} is not below {MAX_PORTS}"),
            ));
        }
        let ifindex = ifindex(name)?;
        let mut stale = Vec::new();
        for item in self.port_of_ifindex.iter() {
            let (other, config) =
                item.map_err(|e| Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e))?;
            if config.port != port || other == ifindex {
                continue;
            }
            let attached_here = self
                .links
                .iter()
                .any(|(n, (i, _))| *i == other && n.as_str() != name);
            if attached_here {
                return Err(Error::invalid(
                    "port",
                    format!("port {port} is already interface index {other}"),
                ));
            }
            // Left by a previous agent, or this name's old interface.
            stale.push(other);
        }
        for other in stale {
            let _ = self.port_of_ifindex.remove(&other);
        }
        if let Some((old, IngressLink::Owned(link))) = self.links.remove(name) {
            program_mut(&mut self.ebpf)?
                .detach(link)
                .map_err(program_error)?;
            if old != ifindex {
                let _ = self.port_of_ifindex.remove(&old);
            }
        }

        self.port_of_ifindex
            .insert(ifindex, PortConfig { port, flags: 0 }, 0)
            .map_err(|e| Error::map(MAP_PORT_OF_IFINDEX, MAX_PORTS, e))?;
        let attached = add_clsact(name).and_then(|()| self.attach_link(name));
        let link = match attached {
            Ok(link) => link,
            Err(e) => {
                // Not attached: the port entry would only hold the number.
                let _ = self.port_of_ifindex.remove(&ifindex);
                return Err(e);
            }
        };
        tracing::info!(interface = name, ifindex, port, link = ?link, "fabric stage attached");
        self.links.insert(name.to_owned(), (ifindex, link));
        Ok(ifindex)
    }

    /// Attaches the program to `name`'s ingress (see [`attach_tc`]).
    fn attach_link(&mut self, name: &str) -> Result<IngressLink, Error> {
        let pin = self.pin_dir.join(format!("{LINK_PIN_PREFIX}{name}"));
        let program = program_mut(&mut self.ebpf)?;
        attach_tc(program, pin, name, TcAttachType::Ingress, program_error)
    }

    /// Detaches the program from interface `name` and forgets its port.
    /// Does nothing for an interface this `Fabric` did not attach.
    pub fn detach(&mut self, name: &str) -> Result<(), Error> {
        let Some((ifindex, link)) = self.links.remove(name) else {
            return Ok(());
        };
        match link {
            IngressLink::Owned(link) => program_mut(&mut self.ebpf)?
                .detach(link)
                .map_err(program_error)?,
            IngressLink::Pinned(pin) => match std::fs::remove_file(&pin) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::Bpffs {
                        path: pin,
                        source: e,
                    })
                }
                _ => {}
            },
        }
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

/// Attaches `program` to `name`'s TC `hook`: into the pinned link at `pin`
/// of a previous agent when there is a usable one, else as a new link,
/// pinned at `pin` when it is a TCX link (kernels ≥ 6.6); without TCX a
/// clsact filter the program owns. Shared by every TC stage (fabric
/// ingress, INT transit, the host programs).
pub(crate) fn attach_tc(
    program: &mut SchedClassifier,
    pin: PathBuf,
    name: &str,
    hook: TcAttachType,
    program_error: fn(aya::programs::ProgramError) -> Error,
) -> Result<IngressLink, Error> {
    if pin.exists() {
        if replace_in_pinned_link(program, &pin, name, hook) {
            return Ok(IngressLink::Pinned(pin));
        }
        // Dead (its interface is gone) or someone else's: unpinning
        // releases it.
        std::fs::remove_file(&pin).map_err(|source| Error::Bpffs {
            path: pin.clone(),
            source,
        })?;
    }
    let id = program.attach(name, hook).map_err(program_error)?;
    let link = program.take_link(id).map_err(program_error)?;
    match FdLink::try_from(link) {
        Ok(fd_link) => {
            fd_link.pin(&pin).map_err(|e| Error::Bpffs {
                path: pin.clone(),
                source: io::Error::other(e),
            })?;
            Ok(IngressLink::Pinned(pin))
        }
        // TODO-robustness: without TCX (kernels before 6.6) the clsact
        // filter persists without a handle once taken out of the
        // program; a restarted agent then adds a second filter instead
        // of replacing the first, and hitless restart is not supported.
        Err(_) => {
            let id = program.attach(name, hook).map_err(program_error)?;
            Ok(IngressLink::Owned(id))
        }
    }
}

/// Swaps `program` into the TCX link pinned at `pin`. True when the link
/// now runs `program` on `interface`'s `hook` (ingress or egress); false
/// when the pin is not a usable TCX link (its interface was deleted, or it
/// belongs to another interface or hook), which the caller then removes.
pub(crate) fn replace_in_pinned_link(
    program: &mut SchedClassifier,
    pin: &Path,
    interface: &str,
    hook: TcAttachType,
) -> bool {
    let replaced = PinnedLink::from_pin(pin)
        .map_err(|e| e.to_string())
        .map(FdLink::from)
        .and_then(|fd| SchedClassifierLink::try_from(fd).map_err(|e| e.to_string()))
        .and_then(|link| program.attach_to_link(link).map_err(|e| e.to_string()));
    let id = match replaced {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(pin = %pin.display(), error = %e, "pinned link unusable; attaching anew");
            return false;
        }
    };
    // The link is the pin's; the program only needs to let go of its fd.
    let taken = program.take_link(id);
    let ours = program.info().map(|info| info.id()).ok();
    let running = SchedClassifier::query_tcx(interface, hook)
        .map(|(_, programs)| programs.iter().any(|p| Some(p.id()) == ours))
        .unwrap_or(false);
    drop(taken);
    if running {
        tracing::info!(
            interface,
            ?hook,
            "swapped the new program into the pinned link"
        );
    }
    running
}

/// Whether a map failure says the key is not there (aya reports a lookup
/// miss as `KeyNotFound`, a delete miss as `ENOENT` from the syscall).
pub(crate) fn is_not_found(error: &aya::maps::MapError) -> bool {
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
pub(crate) fn ifindex(name: &str) -> Result<u32, Error> {
    match nix::net::if_::if_nametoindex(name) {
        Ok(index) => Ok(index),
        Err(e) => Err(Error::Interface {
            name: name.to_owned(),
            source: io::Error::from(e),
        }),
    }
}

/// Adds the clsact qdisc to `name`; one that exists already is fine.
pub(crate) fn add_clsact(name: &str) -> Result<(), Error> {
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
pub(crate) fn take_map<M>(
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
pub(crate) fn zeroed_per_cpu() -> Result<PerCpuValues<Counter>, Error> {
    let io_error = |e: io::Error| Error::map("per-CPU counter", 0, aya::maps::MapError::IoError(e));
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| io_error(e))?;
    PerCpuValues::try_from(vec![Counter::default(); cpus]).map_err(io_error)
}

/// The sum of per-CPU counters.
pub(crate) fn sum(values: &PerCpuValues<Counter>) -> Counter {
    values
        .iter()
        .fold(Counter::default(), |acc, v| acc.saturating_add(*v))
}
