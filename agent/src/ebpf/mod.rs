//! The eBPF data path of a `solyx_fabric` switch: loading the programs built
//! from `ebpf/` (embedded in the agent at build time), attaching them to
//! interfaces, pinning their maps, and typed access to those maps.
//!
//! # What runs where
//!
//! The fabric pipeline's ingress is a TC program (`fabric_ingress`, crate
//! `ebpf/fabric`) on every fabric port. It counts the packet on its port,
//! parses it, applies the ACL (punting to the agent, dropping or
//! permitting), forwards MPLS-labelled packets by their label
//! (`MPLS_FORWARD`) and IPv4 packets by longest prefix with WCMP
//! (`IPV4_ROUTES`, `WCMP_GROUPS`), rewrites the MACs and redirects the
//! packet to the egress interface. The map layout is documented in
//! `ebpf/README.md` and on the types of [`common`].
//!
//! INT transit is a TC egress program (`fabric_egress`) of the same object
//! on the same ports: [`IntTransit`] loads and attaches it through a
//! [`Fabric`] and holds its tables (`int_switch_config`, `int_watchlist`)
//! and counters (`PORT_TX` among them); [`QueuePublisher`] feeds it the
//! ports' qdisc backlog and TX utilisation.
//!
//! # Why TC and not XDP
//!
//! XDP would run earlier and faster, but a fabric switch must queue: links
//! are shaped with tbf or htb on the egress port so that the controller's
//! traffic engineering meets real queues and real congestion. A packet that
//! XDP redirects (`XDP_REDIRECT`) goes straight to the egress driver's
//! `ndo_xdp_xmit` and never passes the egress interface's qdisc, so shaping
//! would see none of the forwarded traffic. `bpf_redirect` from TC ingress
//! (without `BPF_F_INGRESS`) hands the skb to `dev_queue_xmit` on the egress
//! interface: its qdisc enqueues, shapes and drops it like any other packet.
//! There is a second, practical reason: on veth pairs (the test topologies
//! and container links) an `XDP_REDIRECT` into a veth is dropped silently
//! unless the peer runs an XDP program of its own or has GRO enabled, while
//! a TC redirect works on any interface. TC also works on the skb, whose
//! helpers can grow and shrink a packet (`bpf_skb_change_tail`,
//! `bpf_skb_adjust_room`), which the pop and later INT need.
//!
//! # Lifetime and state
//!
//! Maps are pinned under `/sys/fs/bpf/solyx/<instance>/` (bpffs is mounted
//! there if nothing is): a restarted agent reopens them and keeps its
//! forwarding entries and counters; a pinned map whose layout differs from
//! this agent's is recreated, losing its state, with a warning. The TC
//! ingress and egress links are pinned there too (TCX, kernels ≥ 6.6), so
//! the programs keep forwarding and adding INT when the agent stops; the
//! next agent swaps its own programs into them atomically. Removing the pin
//! directory ([`remove_instance`]) detaches the programs.
//!
//! # The P4Runtime data plane
//!
//! [`EbpfFabricDataplane`] (`dataplane/`) implements the server's
//! `Dataplane` for `solyx_fabric` over a [`Fabric`] and its
//! [`IntTransit`]: routes, groups, ACL (one table swap per Write), egress
//! rewrite ([`Tables`]), MPLS, the INT tables, counters and packet I/O; it
//! runs the [`QueuePublisher`] of its switch.
//!
//! # Built without the eBPF toolchain
//!
//! `agent/build.rs` builds `ebpf/` with nightly and bpf-linker. When they
//! are missing the agent still builds, with an empty object, and
//! [`Fabric::load`] answers [`Error::NotBuilt`]; [`is_built`] tells in
//! advance.

mod bpffs;
mod dataplane;
mod error;
mod fabric;
mod gso;
mod host;
mod host_dataplane;
mod host_probe;
mod host_sink;
mod int;
mod int_publisher;
mod tables;

pub use bpffs::{remove_instance, DEFAULT_PIN_ROOT};
pub use dataplane::{
    EbpfFabricDataplane, PacketInCounts, Port, PortMap, PortSpec, RestoreReport, SwitchPorts,
    IMPLEMENTS, PIPELINE,
};
pub use error::Error;
pub use fabric::Fabric;
pub use gso::set_gso_max_segs;
pub use host::Host;
pub use host_dataplane::{
    EbpfHostDataplane, PathSpec, ProbeTarget, HOST_IMPLEMENTS, HOST_PIPELINE,
};
pub use host_probe::{probe_frame, ProbeBody, Prober, PROBE_MAGIC};
pub use host_sink::{
    build_report, ExportConfig, SinkExporter, SinkStats, DEFAULT_COALESCE, DEFAULT_MAX_DELAY,
    DEFAULT_MTU, MAX_COALESCE, MAX_COALESCED_DATAGRAM,
};
pub use int::{IntTransit, WatchAction, WatchMatch};
pub use int_publisher::{QueuePublisher, DEFAULT_PUBLISH_PERIOD};
/// The map keys and values shared with the eBPF programs.
pub use solyx_ebpf_common as common;
pub use tables::Tables;

/// The fabric object (`ebpf/fabric`, ELF for bpfel), embedded at build time;
/// empty when the agent was built without the eBPF toolchain.
fn fabric_object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/solyx-fabric.o"))
}

/// The host object (`ebpf/host`), embedded at build time; empty when the
/// agent was built without the eBPF toolchain.
fn host_object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/solyx-host.o"))
}

/// Whether this agent binary carries the eBPF programs.
#[must_use]
pub fn is_built() -> bool {
    !fabric_object().is_empty()
}
