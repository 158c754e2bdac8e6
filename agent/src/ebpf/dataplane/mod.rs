//! [`EbpfFabricDataplane`]: the P4Runtime data plane of a `solyx_fabric`
//! switch on Linux. Validated P4Runtime changes become updates of the
//! fabric programs' maps (TC ingress: forwarding and ACL; TC egress: INT
//! transit); counters are read from their per-CPU maps; packet-ins come
//! from the perf rings and packet-outs leave through a raw socket; a
//! [`QueuePublisher`] thread feeds the egress program the ports' queue
//! state.
//!
//! Files: `names` (P4Info names → IDs, the pipeline check), `ports` (P4
//! port ↔ interface), `decode` (values out of P4Runtime entities), `state`
//! (one arm per table), `acl` (rule order, slots, one swap per Write),
//! `wcmp` (routes, members, groups), `int` (the INT transit tables),
//! `slots` (counter slots), `restore` (taking over the pinned maps after a
//! restart), `packet_io` (packet-in reader, packet-out socket).
//!
//! Everything the data plane does runs under one mutex, taken by the
//! server while it holds its device lock; the packet-in thread shares only
//! the sink with it, packet-outs only the read-only port map and the
//! socket, and the queue publisher only the pinned maps it writes.

mod acl;
pub(crate) mod decode;
mod int;
pub(crate) mod names;
pub(crate) mod packet_io;
mod ports;
mod restore;
pub(crate) mod slots;
pub(crate) mod state;
mod wcmp;

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use solyx_ebpf_common::packet_io::CPU_PORT;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

pub use names::{IMPLEMENTS, PIPELINE};
pub use ports::{Port, PortMap, PortSpec};
pub use restore::RestoreReport;

use self::packet_io::{PacketInStats, PacketSender, Reader, SharedSink};
use self::state::State;
use super::{bpffs, Error, Fabric, IntTransit, QueuePublisher, DEFAULT_PUBLISH_PERIOD};
use crate::p4rt::{Change, Dataplane, DataplaneError, DataplaneErrorKind, PacketInSink, PacketOut};

/// Pages per CPU of each packet-in perf ring (a power of two): 64 pages of
/// 4 KiB hold several dozen full-size frames per CPU.
const PACKET_IN_PAGES: usize = 64;

/// The data plane error for an eBPF data path error: a full map is
/// `Full` (RESOURCE_EXHAUSTED), a refused value `Invalid`.
pub(crate) fn to_dataplane_error(e: &Error) -> DataplaneError {
    let kind = match e {
        Error::TableFull { .. } => DataplaneErrorKind::Full,
        Error::Invalid { .. } | Error::Interface { .. } => DataplaneErrorKind::Invalid,
        Error::NotBuilt => DataplaneErrorKind::Unavailable,
        _ => DataplaneErrorKind::Failed,
    };
    DataplaneError::new(kind, e.to_string())
}

/// What a switch runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchPorts {
    /// The pin directory's name under the pin root (`dev<device-id>` by
    /// default).
    pub instance: String,
    /// The ports, each a P4 port number and an interface.
    pub ports: Vec<PortSpec>,
}

/// Packet-in counts since the data plane started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketInCounts {
    /// Frames handed to at least one P4Runtime client.
    pub delivered: u64,
    /// Frames read with no client to take them.
    pub unclaimed: u64,
    /// Samples the kernel dropped (ring full).
    pub lost: u64,
}

/// The eBPF data plane of a `solyx_fabric` switch.
pub struct EbpfFabricDataplane {
    /// Stopped (and joined) when the data plane is dropped.
    _publisher: QueuePublisher,
    state: Mutex<State>,
    ports: PortMap,
    sender: PacketSender,
    sink: SharedSink,
    stats: Arc<PacketInStats>,
    _reader: Reader,
}

impl std::fmt::Debug for EbpfFabricDataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EbpfFabricDataplane")
            .field("ports", &self.ports.to_string())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EbpfFabricDataplane {
    /// Loads the fabric programs for `switch.instance` (maps and links
    /// pinned under [`bpffs::DEFAULT_PIN_ROOT`]), attaches the ingress and
    /// the INT egress program to every port, starts the INT queue
    /// publisher and opens packet I/O. Interfaces resolve, and the
    /// packet-out and netlink sockets are opened, in the calling thread's
    /// network namespace.
    ///
    /// A previous agent's program keeps forwarding until this one is
    /// swapped into its links; its entries stay in the maps until the
    /// server restores its saved state or a pipeline is committed (see
    /// [`EbpfFabricDataplane::clear_tables`] to start empty).
    ///
    /// # Errors
    /// Loading, attaching, starting the publisher or opening packet I/O
    /// failed.
    pub fn start(switch: &SwitchPorts) -> Result<Self, Error> {
        Self::start_with(Path::new(bpffs::DEFAULT_PIN_ROOT), switch)
    }

    /// [`EbpfFabricDataplane::start`] with another pin root.
    ///
    /// # Errors
    /// As [`EbpfFabricDataplane::start`].
    pub fn start_with(pin_root: &Path, switch: &SwitchPorts) -> Result<Self, Error> {
        let mut seen = std::collections::BTreeSet::new();
        for spec in &switch.ports {
            spec.check().map_err(|e| Error::invalid("port", e))?;
            if !seen.insert(spec.port) {
                return Err(Error::invalid(
                    "port",
                    format!("port {} is configured twice", spec.port),
                ));
            }
        }
        // Every interface must exist before anything is loaded or attached,
        // so a typo in the last port leaves no program on the first ones.
        for spec in &switch.ports {
            if let Err(e) = nix::net::if_::if_nametoindex(spec.interface.as_str()) {
                return Err(Error::invalid(
                    "port",
                    format!("port {}: interface {:?}: {e}", spec.port, spec.interface),
                ));
            }
        }
        let mut fabric = Fabric::load_with(pin_root, &switch.instance)?;
        let mut ports = PortMap::default();
        for spec in &switch.ports {
            let ifindex = fabric.attach(&spec.interface, spec.port)?;
            ports.insert(spec.port, &spec.interface, ifindex);
        }
        fabric.retain_ports()?;
        let mut int = IntTransit::new(&mut fabric)?;
        for spec in &switch.ports {
            int.attach(&mut fabric, &spec.interface)?;
        }
        int.retain_ports(&fabric)?;
        let publisher =
            QueuePublisher::start(fabric.pin_dir(), DEFAULT_PUBLISH_PERIOD).map_err(|source| {
                Error::Interface {
                    name: "INT queue publisher (rtnetlink)".into(),
                    source,
                }
            })?;
        let sender = PacketSender::open().map_err(|source| Error::Interface {
            name: "AF_PACKET socket".into(),
            source,
        })?;
        let rings = fabric.tables_mut().open_packet_in(PACKET_IN_PAGES)?;
        let sink: SharedSink = Arc::new(Mutex::new(None));
        let stats = Arc::new(PacketInStats::default());
        let reader =
            packet_io::spawn_reader(rings, sink.clone(), stats.clone()).map_err(|source| {
                Error::Interface {
                    name: "packet-in reader thread".into(),
                    source,
                }
            })?;
        tracing::info!(instance = %switch.instance, ports = %ports, "eBPF fabric data plane ready");
        Ok(Self {
            _publisher: publisher,
            state: Mutex::new(State::new(fabric, int, ports.clone())),
            ports,
            sender,
            sink,
            stats,
            _reader: reader,
        })
    }

    /// The ports the data plane runs on.
    #[must_use]
    pub fn ports(&self) -> &PortMap {
        &self.ports
    }

    /// Runs `f` on the loaded fabric (its maps and counters), under the
    /// data plane's lock. For diagnostics and tests: writing its maps
    /// behind the data plane's back makes a Read lie.
    pub fn with_fabric<R>(&self, f: impl FnOnce(&mut Fabric) -> R) -> R {
        f(&mut lock(&self.state).fabric)
    }

    /// Runs `f` on the INT transit stage (its tables, counters and event
    /// counts), under the data plane's lock. For diagnostics and tests, as
    /// [`EbpfFabricDataplane::with_fabric`].
    pub fn with_int<R>(&self, f: impl FnOnce(&mut IntTransit) -> R) -> R {
        f(&mut lock(&self.state).int.transit)
    }

    /// How many ACL tables this data plane has swapped in since it started
    /// (one per Write that changed the ACL, see `Dataplane::end_batch`).
    #[must_use]
    pub fn acl_publishes(&self) -> u64 {
        lock(&self.state).acl.publishes
    }

    /// Empties every table (what a previous agent left included); ports
    /// and port counters stay. For a start without saved state.
    ///
    /// # Errors
    /// A map could not be emptied.
    pub fn clear_tables(&self) -> Result<(), DataplaneError> {
        lock(&self.state).clear()
    }

    /// Packet-in counts since start.
    #[must_use]
    pub fn packet_in_counts(&self) -> PacketInCounts {
        PacketInCounts {
            delivered: self.stats.delivered.load(Ordering::Relaxed),
            unclaimed: self.stats.unclaimed.load(Ordering::Relaxed),
            lost: self.stats.lost.load(Ordering::Relaxed),
        }
    }
}

fn resolve(p4info: &P4InfoIndex) -> Result<names::FabricIds, DataplaneError> {
    names::FabricIds::resolve(p4info)
        .map_err(|e| DataplaneError::new(DataplaneErrorKind::Invalid, e))
}

impl Dataplane for EbpfFabricDataplane {
    fn name(&self) -> &str {
        "ebpf-fabric"
    }

    fn attach(&self, packet_ins: PacketInSink) {
        *lock(&self.sink) = Some(packet_ins);
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
        let report = lock(&self.state).finish_restore()?;
        tracing::info!(
            routes_kept = report.routes_kept,
            stale_removed = report.stale_removed,
            "eBPF fabric: pinned state taken over"
        );
        Ok(())
    }

    fn apply(&self, change: &Change<'_>) -> Result<(), DataplaneError> {
        lock(&self.state).apply(change)
    }

    fn end_batch(&self) -> Result<(), DataplaneError> {
        lock(&self.state).end_batch()
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

    fn packet_out(&self, packet: PacketOut) -> Result<(), DataplaneError> {
        if packet.egress_port == u32::from(CPU_PORT) {
            return Err(DataplaneError::new(
                DataplaneErrorKind::Invalid,
                format!("packet-out to port {CPU_PORT}, the CPU port: it would come back to the controller"),
            ));
        }
        let (_, port) = self.ports.resolve(packet.egress_port, "packet-out")?;
        self.sender
            .send(port.ifindex, &packet.payload)
            .map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::InvalidInput {
                    DataplaneErrorKind::Invalid
                } else {
                    DataplaneErrorKind::Failed
                };
                DataplaneError::new(
                    kind,
                    format!(
                        "packet-out on {} (port {}): {e}",
                        port.interface, packet.egress_port
                    ),
                )
            })
    }
}
