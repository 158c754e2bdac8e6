//! The `solyx_host` pipeline: maps of the host programs (`ebpf/host`,
//! TC egress `host_egress` and TC ingress `host_ingress`) shared with the
//! agent (`agent/src/ebpf/host`).
//!
//! Egress: a packet to a destination of `HOST_ROUTES` (longest prefix)
//! takes one path of the route's group, chosen per flowlet
//! (`FLOWLETS`, gap `HostConfig::flowlet_gap_ns`), gets the path's MPLS
//! label and next-hop MAC, and is counted per destination
//! (`HOST_ROUTE_HITS`), per path (`HOST_PATH_HITS`) and per flow bucket
//! (`FLOW_BYTES`, the elephant counter). Ingress: an MPLS label is popped;
//! an INT-MD packet to a port of `INT_SINK_PORTS` is handed to the agent
//! through `INT_SINK` and delivered without its INT stack.

/// Name of the host route table: LPM key (`prefix_len: u32`, address
/// `[u8; 4]` in network order) → [`HostRoute`]. A `BPF_MAP_TYPE_LPM_TRIE`
/// (`BPF_F_NO_PREALLOC`) of [`HOST_ROUTE_CAPACITY`] entries (P4
/// `HostEgress.host_route`).
pub const MAP_HOST_ROUTES: &str = "HOST_ROUTES";
/// Name of the per-route counters: [`HostRoute::hit_slot`] →
/// [`crate::Counter`], a per-CPU array of [`HOST_ROUTE_CAPACITY`] (P4
/// direct counter `HostEgress.host_route_counter`).
pub const MAP_HOST_ROUTE_HITS: &str = "HOST_ROUTE_HITS";
/// Name of the path groups: group ID `u32` → [`HostGroup`], a hash
/// (`BPF_F_NO_PREALLOC`: a replaced value outlives its readers) of
/// [`HOST_GROUP_CAPACITY`] (P4 selector `HostEgress.path_selector`).
pub const MAP_HOST_GROUPS: &str = "HOST_GROUPS";
/// Name of the per-path counters: [`HostPath::path_id`] →
/// [`crate::Counter`], a per-CPU array of [`HOST_PATH_SLOTS`] (P4 counter
/// `HostEgress.path_counter`).
pub const MAP_HOST_PATH_HITS: &str = "HOST_PATH_HITS";
/// Name of the flowlet table: flow bucket ([`flow_bucket`]) → [`Flowlet`],
/// an array of [`FLOW_BUCKETS`] shared by all CPUs (a flow's packets may be
/// sent from any CPU).
pub const MAP_FLOWLETS: &str = "FLOWLETS";
/// Name of the elephant counter: flow bucket → [`crate::Counter`], a
/// per-CPU array of [`FLOW_BUCKETS`] (P4 counter
/// `HostEgress.flow_bytes_counter`).
pub const MAP_FLOW_BYTES: &str = "FLOW_BYTES";
/// Name of the flow keys: flow bucket → [`FlowKey`] of the flow that last
/// counted in `FLOW_BYTES` there, an array of [`FLOW_BUCKETS`] shared by all
/// CPUs (P4 register `HostEgress.flow_key_register`).
pub const MAP_FLOW_KEYS: &str = "FLOW_KEYS";
/// Name of the configuration: 0 → [`HostConfig`], an array of 1.
pub const MAP_HOST_CONFIG: &str = "HOST_CONFIG";
/// Name of the host ports: ifindex `u32` → [`crate::PortConfig`], a hash of
/// [`crate::MAX_PORTS`].
pub const MAP_HOST_PORTS: &str = "HOST_PORTS";
/// Name of the INT sink ports: L4 destination port `u32` (host order) →
/// [`SinkPort`], a hash of [`INT_SINK_PORT_CAPACITY`] (P4
/// `HostIngress.int_sink_port`).
pub const MAP_INT_SINK_PORTS: &str = "INT_SINK_PORTS";
/// Name of the per-CPU event counts: [`HostEvent`] index → packets `u64`,
/// a per-CPU array of [`HOST_EVENT_SLOTS`].
pub const MAP_HOST_EVENTS: &str = "HOST_EVENTS";
/// Name of the INT sink perf event array (one ring per CPU, not pinned):
/// [`SinkMeta`] followed by the frame's first [`SinkMeta::frame_len`]
/// bytes as received (INT stack included, label popped).
pub const MAP_INT_SINK: &str = "INT_SINK";
/// Name of the scratch buffer of the strip and the pop (not pinned).
pub const MAP_HOST_SCRATCH: &str = "HOST_SCRATCH";

/// The TC egress program.
pub const PROG_HOST_EGRESS: &str = "host_egress";
/// The TC ingress program.
pub const PROG_HOST_INGRESS: &str = "host_ingress";

/// Entries of `HOST_ROUTES` and slots of `HOST_ROUTE_HITS`.
pub const HOST_ROUTE_CAPACITY: u32 = 1024;
/// Group IDs from here are the one-shot groups of routes to one member:
/// route with hit slot `s` uses group `HOST_ONE_SHOT_BASE + s`.
pub const HOST_ONE_SHOT_BASE: u32 = 0x8000_0000;
/// Entries of `HOST_GROUPS`: P4 groups and one-shot groups.
pub const HOST_GROUP_CAPACITY: u32 = 256 + HOST_ROUTE_CAPACITY;
/// Slots of a group: the sum of its members' weights (P4
/// `HOST_MAX_GROUP_SIZE`).
pub const HOST_MAX_SLOTS: usize = 16;
/// Slots of `HOST_PATH_HITS`: path IDs are `0..HOST_PATH_SLOTS`.
pub const HOST_PATH_SLOTS: u32 = 256;
/// Buckets of `FLOWLETS` and `FLOW_BYTES` (a power of two).
pub const FLOW_BUCKETS: u32 = 4096;
/// Entries of `INT_SINK_PORTS`.
pub const INT_SINK_PORT_CAPACITY: u32 = 64;
/// Slots of `HOST_EVENTS`.
pub const HOST_EVENT_SLOTS: u32 = 32;
/// Default flowlet gap: a flow idle this long may change path.
pub const DEFAULT_FLOWLET_GAP_NS: u64 = 500_000;
/// Most INT hops the sink accepts in a stack (the fabric inserts at most
/// one per switch; a longer stack is a loop or a forgery).
pub const SINK_MAX_HOPS: u32 = 16;
/// Most bytes of a frame handed to the agent by the sink: Ethernet, IPv4
/// with options, TCP with options, the largest INT-MD stack
/// (4 + 4 × (3 + 96) bytes) and 128 bytes of payload.
pub const SINK_SNAP_LEN: u32 = 14 + 60 + 60 + 400 + 128;
/// The IPv4 destination port of Solyx path probes (UDP).
pub const PROBE_UDP_PORT: u16 = 7777;
/// The source port of Solyx path probes.
pub const PROBE_UDP_SRC_PORT: u16 = 7776;

/// An MPLS label stack entry's TTL for pushed labels.
pub const PUSHED_LABEL_TTL: u8 = 64;

/// One path of a group: the P4 action `set_path(port, label, dmac,
/// path_id)`, resolved to an interface by the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostPath {
    /// The MPLS label pushed (20 bits, host order).
    pub label: u32,
    /// Interface the packet leaves (redirected when it is not the one
    /// the kernel chose).
    pub egress_ifindex: u32,
    /// P4 port of that interface.
    pub egress_port: u16,
    /// Index into `HOST_PATH_HITS`.
    pub path_id: u16,
    /// Next-hop MAC (Ethernet destination).
    pub dst_mac: [u8; 6],
    /// The egress interface's MAC (Ethernet source).
    pub src_mac: [u8; 6],
}

/// Value of `HOST_GROUPS`: a member of weight w fills w consecutive slots
/// (member ID order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostGroup {
    /// Filled slots, `0..=HOST_MAX_SLOTS`; 0: the route is not labelled.
    pub slot_count: u32,
    /// Bumped by the agent on every change: flowlets of an older version
    /// pick again.
    pub version: u32,
    /// The slots.
    pub slots: [HostPath; HOST_MAX_SLOTS],
}

/// Value of `HOST_ROUTES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostRoute {
    /// The group whose paths the destination uses.
    pub group_id: u32,
    /// Index into `HOST_ROUTE_HITS`.
    pub hit_slot: u32,
}

/// Value of `FLOWLETS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flowlet {
    /// CLOCK_MONOTONIC of the flow's last packet, ns.
    pub last_ns: u64,
    /// The group the slot belongs to.
    pub group_id: u32,
    /// The group's version when the slot was chosen.
    pub version: u32,
    /// The chosen slot.
    pub slot: u32,
    /// Zero.
    pub _pad: u32,
}

/// Value of `FLOW_KEYS`: a flow's 5-tuple. A bucket no flow has counted
/// in yet holds zeros.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// IPv4 source address, network order.
    pub src: [u8; 4],
    /// IPv4 destination address, network order.
    pub dst: [u8; 4],
    /// L4 source port, host order (0 for protocols other than TCP and UDP,
    /// and for fragments after the first).
    pub sport: u16,
    /// L4 destination port, host order (0 as `sport`).
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// Zero.
    pub _pad: [u8; 3],
}

impl FlowKey {
    /// The flow bucket this key hashes to ([`flow_bucket`]).
    #[must_use]
    pub const fn bucket(&self) -> u32 {
        flow_bucket(self.src, self.dst, self.proto, self.sport, self.dport)
    }

    /// The P4 register cell `src ++ dst ++ proto ++ sport ++ dport`
    /// (104 bits, big-endian: the source address first).
    #[must_use]
    pub const fn to_p4_bytes(&self) -> [u8; 13] {
        let s = self.sport.to_be_bytes();
        let d = self.dport.to_be_bytes();
        [
            self.src[0],
            self.src[1],
            self.src[2],
            self.src[3],
            self.dst[0],
            self.dst[1],
            self.dst[2],
            self.dst[3],
            self.proto,
            s[0],
            s[1],
            d[0],
            d[1],
        ]
    }
}

/// Value of `HOST_CONFIG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostConfig {
    /// Flowlet gap in ns (0: every packet picks a path).
    pub flowlet_gap_ns: u64,
}

/// Value of `INT_SINK_PORTS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SinkPort {
    /// [`SINK_FLAG_CONSUME`]: the packet ends at the sink (probes).
    pub flags: u32,
}

/// `SinkPort::flags`: export and drop (probes are for the collector, not
/// for an application); without it the stripped packet is delivered.
pub const SINK_FLAG_CONSUME: u32 = 1 << 0;

/// What precedes each `INT_SINK` sample.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SinkMeta {
    /// P4 port the frame arrived on.
    pub ingress_port: u16,
    /// Reserved, 0.
    pub flags: u16,
    /// Bytes of frame after this header.
    pub frame_len: u32,
    /// CLOCK_TAI when the sink saw it, ns.
    pub tai_ns: u64,
    /// The frame's length before the strip.
    pub orig_len: u32,
    /// Zero.
    pub _pad: u32,
}

/// Index into `HOST_EVENTS`: what the host programs did, counted per CPU.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostEvent {
    /// Egress: a label was pushed.
    LabelPushed = 1,
    /// Egress: the route's group is missing or empty: sent unlabelled.
    EmptyGroup = 2,
    /// Egress: a GSO packet cannot take a label (sent unlabelled).
    Gso = 3,
    /// Egress: a helper failed; the packet was dropped.
    PushFailed = 4,
    /// Egress: a flowlet changed path (or started).
    FlowletNew = 5,
    /// Ingress: a label was popped.
    LabelPopped = 6,
    /// Ingress: a label stack deeper than one, or no IPv4 under it:
    /// dropped.
    LabelUnsupported = 7,
    /// Sink: INT exported (and stripped or consumed).
    IntExported = 8,
    /// Sink: on a sink port but not INT-MD v2 (shim type or version):
    /// delivered unchanged.
    NotIntMd = 9,
    /// Sink: shim length below the header, above the payload or the
    /// stack not a whole number of hops: dropped.
    LengthInvalid = 10,
    /// Sink: more hops than `SINK_MAX_HOPS`: dropped.
    HopCountExceeded = 11,
    /// Sink: fewer bytes than the shim claims (or than a shim needs):
    /// dropped.
    Truncated = 12,
    /// Sink: the agent's ring was full (or no agent reads): the stack is
    /// still stripped.
    ExportLost = 13,
    /// Sink: a helper failed while stripping: dropped.
    StripFailed = 14,
    /// Sink: a probe consumed (not delivered).
    ProbeConsumed = 15,
    /// Sink: a fragment or a GSO packet on a sink port: delivered
    /// unchanged.
    Unsupported = 16,
}

impl HostEvent {
    /// Every event.
    pub const ALL: [Self; 16] = [
        Self::LabelPushed,
        Self::EmptyGroup,
        Self::Gso,
        Self::PushFailed,
        Self::FlowletNew,
        Self::LabelPopped,
        Self::LabelUnsupported,
        Self::IntExported,
        Self::NotIntMd,
        Self::LengthInvalid,
        Self::HopCountExceeded,
        Self::Truncated,
        Self::ExportLost,
        Self::StripFailed,
        Self::ProbeConsumed,
        Self::Unsupported,
    ];

    /// The `HOST_EVENTS` index.
    #[must_use]
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The name used in logs and tests.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::LabelPushed => "label_pushed",
            Self::EmptyGroup => "empty_group",
            Self::Gso => "gso",
            Self::PushFailed => "push_failed",
            Self::FlowletNew => "flowlet_new",
            Self::LabelPopped => "label_popped",
            Self::LabelUnsupported => "label_unsupported",
            Self::IntExported => "int_exported",
            Self::NotIntMd => "not_int_md",
            Self::LengthInvalid => "length_invalid",
            Self::HopCountExceeded => "hop_count_exceeded",
            Self::Truncated => "truncated",
            Self::ExportLost => "export_lost",
            Self::StripFailed => "strip_failed",
            Self::ProbeConsumed => "probe_consumed",
            Self::Unsupported => "unsupported",
        }
    }
}

/// The flow bucket of a 5-tuple: FNV-1a over source, destination,
/// protocol and ports (network byte order, as on the wire), folded to
/// [`FLOW_BUCKETS`]. The controller computes the same to map an elephant
/// counter cell back to the flows it placed.
#[must_use]
pub const fn flow_bucket(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> u32 {
    let s = sport.to_be_bytes();
    let d = dport.to_be_bytes();
    let bytes = [
        src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3], proto, s[0], s[1], d[0],
        d[1],
    ];
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    (h ^ (h >> 16)) & (FLOW_BUCKETS - 1)
}

/// The slot for a random `draw` in a group of `slot_count` slots (as
/// WCMP: a product and a shift, which the verifier can bound).
#[must_use]
pub const fn pick_slot(draw: u32, slot_count: u32) -> u32 {
    (((draw >> 16) * slot_count) >> 16) & (HOST_MAX_SLOTS as u32 - 1)
}

const _: () = assert!(core::mem::size_of::<HostPath>() == 24);
const _: () = assert!(core::mem::size_of::<HostGroup>() == 8 + 24 * HOST_MAX_SLOTS);
const _: () = assert!(core::mem::size_of::<HostRoute>() == 8);
const _: () = assert!(core::mem::size_of::<Flowlet>() == 24);
const _: () = assert!(core::mem::size_of::<HostConfig>() == 8);
const _: () = assert!(core::mem::size_of::<FlowKey>() == 16);
const _: () = assert!(core::mem::size_of::<SinkMeta>() == 24);
const _: () = assert!(FLOW_BUCKETS.is_power_of_two());

#[cfg(feature = "user")]
#[allow(unsafe_code)]
mod pod {
    use super::{FlowKey, Flowlet, HostConfig, HostGroup, HostPath, HostRoute, SinkPort};

    // SAFETY: `#[repr(C)]`, `Copy`, integers and integer arrays only (any
    // bit pattern valid), no implicit padding (sizes pinned above).
    unsafe impl aya::Pod for HostPath {}
    // SAFETY: see above.
    unsafe impl aya::Pod for HostGroup {}
    // SAFETY: see above.
    unsafe impl aya::Pod for HostRoute {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Flowlet {}
    // SAFETY: see above.
    unsafe impl aya::Pod for HostConfig {}
    // SAFETY: see above.
    unsafe impl aya::Pod for FlowKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for SinkPort {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_slot_follows_the_weights() {
        let mut hits = [0u32; 4];
        for i in 0..65_536u32 {
            hits[pick_slot(i << 16, 4) as usize] += 1;
        }
        assert!(hits.iter().all(|h| *h == 16_384), "{hits:?}");
        assert_eq!(pick_slot(u32::MAX, 16), 15);
    }

    #[test]
    fn flow_key_is_the_p4_concatenation() {
        let key = FlowKey {
            src: [10, 0, 1, 1],
            dst: [10, 0, 2, 2],
            sport: 0x1234,
            dport: 5000,
            proto: 17,
            _pad: [0; 3],
        };
        assert_eq!(
            key.to_p4_bytes(),
            [10, 0, 1, 1, 10, 0, 2, 2, 17, 0x12, 0x34, 0x13, 0x88]
        );
        assert_eq!(
            key.bucket(),
            flow_bucket([10, 0, 1, 1], [10, 0, 2, 2], 17, 0x1234, 5000)
        );
    }

    #[test]
    fn flow_bucket_spreads_ports() {
        let mut seen = std::collections::BTreeSet::new();
        for port in 0..1000u16 {
            seen.insert(flow_bucket(
                [10, 0, 0, 1],
                [10, 0, 1, 1],
                17,
                40_000 + port,
                9,
            ));
        }
        assert!(seen.len() > 850, "{} buckets for 1000 flows", seen.len());
        assert!(seen.iter().all(|b| *b < FLOW_BUCKETS));
    }
}
