//! Map keys and values shared by the Solyx eBPF programs (`solyx-fabric-ebpf`)
//! and the agent that loads them (`solyx-agent`, with the `user` feature).
//!
//! Every type here is `#[repr(C)]`, `Copy`, and laid out without implicit
//! padding: where alignment would leave a hole, a named `_pad` field fills it
//! and must be zero. The kernel compares keys byte for byte, so a key with
//! uninitialised padding would miss; values are copied as raw bytes between
//! the agent and the programs, so both sides must agree on every byte. The
//! `const` assertions at the bottom pin the sizes: changing a layout changes
//! the pinned maps' key or value size, which the agent detects on start and
//! answers by recreating the map (see `agent/src/ebpf`).
//!
//! Map names are given as constants so that the programs and the agent use
//! the same strings; the map layout table lives in `ebpf/README.md`.
#![cfg_attr(not(test), no_std)]

/// The `solyx_host` pipeline: the host programs' maps.
pub mod host;
/// INT-MD transit: the egress program's maps and the INT wire constants.
pub mod int;

/// The ingress ACL: rule layout, the swapped rule table, hit slots.
pub mod acl;
/// Egress rewrite: the source MAC per egress port.
pub mod egress;
/// Packet-in: the metadata in front of a punted frame.
pub mod packet_io;
/// IPv4 routing with WCMP: routes, next hops, groups, the hash.
pub mod route;

/// Name of the MPLS forwarding table: [`MplsKey`] → [`MplsForward`].
///
/// A `BPF_MAP_TYPE_HASH` with [`MPLS_FORWARD_CAPACITY`] entries. Written by
/// the agent (P4Runtime table `FabricIngress.mpls_forward`), read by the
/// fabric ingress program.
pub const MAP_MPLS_FORWARD: &str = "MPLS_FORWARD";
/// Name of the per-entry hit counters of `MPLS_FORWARD`: [`MplsKey`] →
/// [`Counter`].
///
/// A `BPF_MAP_TYPE_PERCPU_HASH` with [`MPLS_FORWARD_CAPACITY`] entries (the
/// P4 direct counter `FabricIngress.mpls_forward_counter`). The agent
/// creates a zeroed entry with every forwarding entry and deletes it with
/// the entry; the program adds to the current CPU's slot on every hit (and
/// creates the slot if the agent's zeroed entry is missing).
pub const MAP_MPLS_HITS: &str = "MPLS_HITS";
/// Name of the ingress port map: interface index (`u32`) → [`PortConfig`].
///
/// A `BPF_MAP_TYPE_HASH` with [`MAX_PORTS`] entries. Written by the agent
/// when it attaches the program to an interface; read by the program to
/// turn the skb's ingress ifindex into the P4 port number.
pub const MAP_PORT_OF_IFINDEX: &str = "PORT_OF_IFINDEX";
/// Name of the per-port receive counters: port number (`u32` index) →
/// [`Counter`].
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` with [`MAX_PORTS`] slots (the P4 counter
/// `FabricIngress.ingress_port_counter`). Written by the program for every
/// packet received on a known port, before any decision; read by the agent.
pub const MAP_PORT_RX: &str = "PORT_RX";
/// Name of the drop and exception counters: [`DropReason`] as `u32` index →
/// packet count (`u64`).
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` with [`DROP_REASON_SLOTS`] slots. Written by
/// the program, read by the agent.
pub const MAP_DROP_REASONS: &str = "DROP_REASONS";

/// Every map of the ingress program that the agent pins, in the order it
/// pins them (`PACKET_IN` and the scratch map hold no state and are not
/// pinned).
pub const FABRIC_MAPS: [&str; 12] = [
    MAP_MPLS_FORWARD,
    MAP_MPLS_HITS,
    MAP_PORT_OF_IFINDEX,
    MAP_PORT_RX,
    MAP_DROP_REASONS,
    route::MAP_IPV4_ROUTES,
    route::MAP_IPV4_ROUTE_HITS,
    route::MAP_WCMP_GROUPS,
    acl::MAP_ACL_TABLE,
    acl::MAP_ACL_HITS,
    egress::MAP_EGRESS_REWRITE,
    egress::MAP_EGRESS_REWRITE_HITS,
];

/// Name of the TC ingress program (the ELF function) in the fabric object.
pub const PROG_FABRIC_INGRESS: &str = "fabric_ingress";

/// Entries of `MPLS_FORWARD` and `MPLS_HITS` (P4 `MPLS_FORWARD_TABLE_SIZE`).
pub const MPLS_FORWARD_CAPACITY: u32 = 4096;
/// Port numbers are 9 bits wide in the P4 program: `PORT_RX` has one slot
/// per port number, `PORT_OF_IFINDEX` one entry per attached interface.
pub const MAX_PORTS: u32 = 512;
/// Slots of `DROP_REASONS`: room for the P4 reasons (0–31) and the ones only
/// the eBPF stage has (32 and up).
pub const DROP_REASON_SLOTS: u32 = 64;

/// EtherType of MPLS unicast (RFC 5332).
pub const ETHERTYPE_MPLS: u16 = 0x8847;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Largest MPLS label value (labels are 20 bits wide).
pub const MPLS_LABEL_MAX: u32 = (1 << 20) - 1;

/// Key of `MPLS_FORWARD` and `MPLS_HITS`: one MPLS label.
///
/// `label` is the 20-bit label value in host byte order (not the raw label
/// stack entry): the program shifts it out of the header before looking it
/// up. Written by the agent, read by the program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MplsKey {
    /// The label, `0..=MPLS_LABEL_MAX`.
    pub label: u32,
}

/// `MplsForward::flags`: pop the label (last hop) and restore the IPv4
/// EtherType; without it the label is kept and the MPLS TTL decremented.
pub const MPLS_FLAG_POP: u16 = 1 << 0;
/// `MplsForward::flags`: write `dst_mac` as the Ethernet destination.
pub const MPLS_FLAG_SET_DST_MAC: u16 = 1 << 1;
/// `MplsForward::flags`: write `src_mac` as the Ethernet source (the egress
/// port's MAC, P4 table `FabricEgress.egress_rewrite`, folded into the entry
/// by the agent).
pub const MPLS_FLAG_SET_SRC_MAC: u16 = 1 << 2;
/// Every flag bit the program understands; the agent refuses others.
pub const MPLS_FLAGS_KNOWN: u16 = MPLS_FLAG_POP | MPLS_FLAG_SET_DST_MAC | MPLS_FLAG_SET_SRC_MAC;

/// Value of `MPLS_FORWARD`: what to do with a packet whose label hit.
///
/// Written by the agent, read by the fabric ingress program. The P4 action
/// `mpls_forward_to(port)` is `flags = 0` (label kept, TTL decremented,
/// destination MAC unchanged); `mpls_pop_forward_to(port, dmac)` is
/// `MPLS_FLAG_POP | MPLS_FLAG_SET_DST_MAC` with `dst_mac = dmac`. Either may
/// add `MPLS_FLAG_SET_SRC_MAC` with the egress port's MAC.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MplsForward {
    /// Interface index the packet is redirected to (`bpf_redirect`, egress
    /// direction, so the interface's qdisc sees it). Never 0.
    pub egress_ifindex: u32,
    /// P4 port number of that interface (`0..MAX_PORTS`), kept for the
    /// later stages (egress counters, INT) that report ports, not ifindexes.
    pub egress_port: u16,
    /// `MPLS_FLAG_*` bits.
    pub flags: u16,
    /// Destination MAC written when `MPLS_FLAG_SET_DST_MAC` is set.
    pub dst_mac: [u8; 6],
    /// Source MAC written when `MPLS_FLAG_SET_SRC_MAC` is set.
    pub src_mac: [u8; 6],
}

impl MplsForward {
    /// Whether the entry pops the label.
    #[must_use]
    pub const fn pops(&self) -> bool {
        self.flags & MPLS_FLAG_POP != 0
    }
}

/// A packet and byte counter; the value of `PORT_RX` and `MPLS_HITS` (one
/// per CPU: the agent sums the CPUs' values).
///
/// Written by the program (each CPU its own copy, so plain adds suffice),
/// read by the agent. `bytes` counts the frame as the TC hook sees it:
/// Ethernet header included, FCS excluded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

impl Counter {
    /// The sum of two counters (saturating, so a reader never panics).
    #[must_use]
    pub const fn saturating_add(self, other: Self) -> Self {
        Self {
            packets: self.packets.saturating_add(other.packets),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// Value of `PORT_OF_IFINDEX` (key: the interface index as `u32`): which P4
/// port an interface is.
///
/// Written by the agent before it attaches the program to the interface;
/// read by the program on every packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortConfig {
    /// P4 port number, `0..MAX_PORTS`: the index into `PORT_RX`.
    pub port: u16,
    /// Reserved for per-port behaviour of later stages (ACL trust, INT
    /// source); must be 0.
    pub flags: u16,
}

/// Index into `DROP_REASONS`: why the fabric stage did not forward a packet
/// it was responsible for.
///
/// Reasons 0–31 have the numbers of the P4 program's `DROP_REASON_*`
/// constants (`p4/solyx_fabric/include/define.p4`), so the agent exports one
/// set of numbers for BMv2 and eBPF alike. Reasons from 32 on are
/// particular to the eBPF implementation; `UnknownIngressPort` counts
/// packets handed to the kernel (not dropped), `PuntLost` punted packets the
/// agent did not get.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// `DROP_REASON_ACL_DENY`: an ACL entry (or the ACL default) drops.
    AclDeny = 1,
    /// `DROP_REASON_MPLS_MISS`: the label has no `MPLS_FORWARD` entry.
    MplsMiss = 2,
    /// `DROP_REASON_MPLS_TTL_EXPIRED`: MPLS TTL was 0 or 1.
    MplsTtlExpired = 3,
    /// `DROP_REASON_MPLS_LABEL_STACK`: more than one label (bottom-of-stack
    /// bit clear); the fabric carries exactly one.
    MplsLabelStack = 4,
    /// `DROP_REASON_IPV4_MISS`: no `IPV4_ROUTES` prefix covers the
    /// destination.
    Ipv4Miss = 5,
    /// `DROP_REASON_IPV4_TTL_EXPIRED`: IPv4 TTL was 0 or 1.
    Ipv4TtlExpired = 6,
    /// `DROP_REASON_IPV4_CHECKSUM`: the IPv4 header checksum is wrong.
    Ipv4Checksum = 7,
    /// `DROP_REASON_ROUTE_DROP`: the route (or the WCMP member the hash
    /// chose) is `route_drop`.
    RouteDrop = 8,
    /// `DROP_REASON_MALFORMED`: a header is cut short, the IPv4 IHL or the
    /// TCP data offset is below 5, or a popped label does not carry IPv4.
    Malformed = 9,
    /// `DROP_REASON_UNSUPPORTED_ETHERTYPE`: neither MPLS nor IPv4 (and the
    /// ACL did not punt it).
    UnsupportedEthertype = 10,
    /// eBPF only: the ingress interface has no `PORT_OF_IFINDEX` entry. The
    /// packet is passed to the kernel, not dropped.
    UnknownIngressPort = 32,
    /// eBPF only: a packet helper (pull, header removal, store) failed;
    /// the packet is dropped.
    RewriteFailed = 33,
    /// eBPF only: the route's WCMP group has no members (or is missing);
    /// the packet is dropped.
    EmptyGroup = 34,
    /// eBPF only: a punted packet could not be queued to the agent (no
    /// agent reading `PACKET_IN`, or its ring is full); it is dropped.
    PuntLost = 35,
}

impl DropReason {
    /// Every reason, in index order.
    pub const ALL: [Self; 14] = [
        Self::AclDeny,
        Self::MplsMiss,
        Self::MplsTtlExpired,
        Self::MplsLabelStack,
        Self::Ipv4Miss,
        Self::Ipv4TtlExpired,
        Self::Ipv4Checksum,
        Self::RouteDrop,
        Self::Malformed,
        Self::UnsupportedEthertype,
        Self::UnknownIngressPort,
        Self::RewriteFailed,
        Self::EmptyGroup,
        Self::PuntLost,
    ];

    /// The index into `DROP_REASONS`.
    #[must_use]
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The reason stored at `index`, if any.
    #[must_use]
    pub const fn from_index(index: u32) -> Option<Self> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i] as u32 == index {
                return Some(Self::ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// A stable snake_case name, for metrics and logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::AclDeny => "acl_deny",
            Self::MplsMiss => "mpls_miss",
            Self::MplsTtlExpired => "mpls_ttl_expired",
            Self::MplsLabelStack => "mpls_label_stack",
            Self::Ipv4Miss => "ipv4_miss",
            Self::Ipv4TtlExpired => "ipv4_ttl_expired",
            Self::Ipv4Checksum => "ipv4_checksum",
            Self::RouteDrop => "route_drop",
            Self::Malformed => "malformed",
            Self::UnsupportedEthertype => "unsupported_ethertype",
            Self::UnknownIngressPort => "unknown_ingress_port",
            Self::RewriteFailed => "rewrite_failed",
            Self::EmptyGroup => "empty_group",
            Self::PuntLost => "punt_lost",
        }
    }
}

// Layout pins: a change here changes the maps' key or value sizes.
const _: () = assert!(core::mem::size_of::<MplsKey>() == 4);
const _: () = assert!(core::mem::size_of::<MplsForward>() == 20);
const _: () = assert!(core::mem::size_of::<Counter>() == 16);
const _: () = assert!(core::mem::size_of::<PortConfig>() == 4);
const _: () = {
    let mut i = 0;
    while i < DropReason::ALL.len() {
        assert!(DropReason::ALL[i].index() < DROP_REASON_SLOTS);
        i += 1;
    }
};

#[cfg(feature = "user")]
#[allow(unsafe_code)]
mod pod {
    //! `aya::Pod` for the map types, so that the agent can use them as aya
    //! map keys and values.

    use super::{Counter, MplsForward, MplsKey, PortConfig};

    // SAFETY: `aya::Pod` requires a type that can be copied byte for byte
    // and for which every bit pattern is valid. Each type below is
    // `#[repr(C)]`, `Copy`, made only of integers and integer arrays (every
    // bit pattern valid), and has no implicit padding (the sizes are pinned
    // by the const assertions above: 4, 20, 16 and 4 bytes are exactly the
    // sums of their fields).
    unsafe impl aya::Pod for MplsKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for MplsForward {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Counter {}
    // SAFETY: see above.
    unsafe impl aya::Pod for PortConfig {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_indexes_round_trip() {
        for reason in DropReason::ALL {
            assert_eq!(DropReason::from_index(reason.index()), Some(reason));
        }
        assert_eq!(DropReason::from_index(0), None);
        assert_eq!(DropReason::from_index(DROP_REASON_SLOTS), None);
    }

    #[test]
    fn drop_reason_numbers_follow_the_p4_program() {
        assert_eq!(DropReason::MplsMiss.index(), 2);
        assert_eq!(DropReason::MplsTtlExpired.index(), 3);
        assert_eq!(DropReason::MplsLabelStack.index(), 4);
        assert_eq!(DropReason::Malformed.index(), 9);
    }

    #[test]
    fn counter_add_saturates() {
        let max = Counter {
            packets: u64::MAX,
            bytes: 1,
        };
        let sum = max.saturating_add(Counter {
            packets: 1,
            bytes: 2,
        });
        assert_eq!(sum.packets, u64::MAX);
        assert_eq!(sum.bytes, 3);
    }
}
