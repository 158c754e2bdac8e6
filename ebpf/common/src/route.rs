//! IPv4 routing with WCMP: the values of `IPV4_ROUTES` (an LPM trie),
//! `WCMP_GROUPS` and the next hops both of them carry.
//!
//! The P4 table `FabricIngress.ipv4_route` is implemented by the action
//! selector `wcmp_selector`: an entry points at one member (a next hop) or
//! at a group of weighted members. Members exist only in the agent: their
//! next hop is copied into every route and group that uses it, so that the
//! program needs one trie lookup for a route to a member and one more hash
//! lookup for a route to a group. A member change therefore rewrites every
//! route and group value that uses it (each value is replaced whole).

/// Name of the IPv4 routing table: `aya` LPM key (`prefix_len: u32`, then
/// the address as `[u8; 4]` in network order) → [`Ipv4Route`].
///
/// A `BPF_MAP_TYPE_LPM_TRIE` (`BPF_F_NO_PREALLOC`, as the kernel requires)
/// with [`IPV4_ROUTE_CAPACITY`] entries. Written by the agent (P4Runtime
/// table `FabricIngress.ipv4_route`), read by the fabric ingress program.
pub const MAP_IPV4_ROUTES: &str = "IPV4_ROUTES";
/// Name of the per-route hit counters: [`Ipv4Route::hit_slot`] (`u32`
/// index) → [`crate::Counter`].
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` with [`IPV4_ROUTE_CAPACITY`] slots (the P4
/// direct counter `FabricIngress.ipv4_route_counter`). The agent gives every
/// route a free slot and zeroes it; the program adds to it on every hit.
pub const MAP_IPV4_ROUTE_HITS: &str = "IPV4_ROUTE_HITS";
/// Name of the WCMP groups: group ID (`u32`) → [`WcmpGroup`].
///
/// A `BPF_MAP_TYPE_HASH` (`BPF_F_NO_PREALLOC`, so that a replaced value is
/// freed only after every program that may read it has finished) with
/// [`WCMP_GROUP_CAPACITY`] entries. Written by the agent (P4Runtime
/// `wcmp_selector` groups, and one-shot action sets of routes), read by the
/// program.
pub const MAP_WCMP_GROUPS: &str = "WCMP_GROUPS";

/// Entries of `IPV4_ROUTES` and slots of `IPV4_ROUTE_HITS` (P4
/// `IPV4_ROUTE_TABLE_SIZE`).
pub const IPV4_ROUTE_CAPACITY: u32 = 4096;
/// Entries of `WCMP_GROUPS`: the P4 selector holds 1024 units of member
/// weight, so at most 1024 non-empty groups; one-shot action sets of routes
/// share the map (see [`ONE_SHOT_GROUP_BASE`]).
pub const WCMP_GROUP_CAPACITY: u32 = 1024 + IPV4_ROUTE_CAPACITY;
/// Slots of a [`WcmpGroup`]: the P4 `WCMP_MAX_GROUP_SIZE` (sum of the
/// members' weights in one group).
pub const WCMP_MAX_SLOTS: usize = 16;
/// Group IDs from here on are the agent's own: the one-shot action set of
/// the route with hit slot `s` is group `ONE_SHOT_GROUP_BASE + s`. P4Runtime
/// group IDs of `wcmp_selector` must stay below it.
pub const ONE_SHOT_GROUP_BASE: u32 = 0x8000_0000;

/// `NextHop::flags`: drop the packet (the member's action is `route_drop`);
/// the other fields are unused.
pub const NEXT_HOP_FLAG_DROP: u16 = 1 << 0;
/// Every next-hop flag the program understands.
pub const NEXT_HOP_FLAGS_KNOWN: u16 = NEXT_HOP_FLAG_DROP;

/// `Ipv4Route::kind`: forward to [`Ipv4Route::next_hop`] (a route to one
/// member).
pub const ROUTE_KIND_NEXT_HOP: u32 = 1;
/// `Ipv4Route::kind`: pick a next hop of group [`Ipv4Route::group_id`] by
/// the hash of the 5-tuple.
pub const ROUTE_KIND_GROUP: u32 = 2;

/// Where a packet leaves: the P4 action `set_next_hop(port, dmac)` of a
/// `wcmp_selector` member, resolved to an interface by the agent; or, with
/// [`NEXT_HOP_FLAG_DROP`], the action `route_drop()`.
///
/// Part of [`Ipv4Route`] and [`WcmpGroup`]. The IPv4 TTL is decremented
/// and the destination MAC set to `dst_mac`; the source MAC is the egress
/// port's (`EGRESS_REWRITE`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// Interface index the packet is redirected to; 0 only with
    /// [`NEXT_HOP_FLAG_DROP`].
    pub egress_ifindex: u32,
    /// P4 port number of that interface (`0..MAX_PORTS`).
    pub egress_port: u16,
    /// `NEXT_HOP_FLAG_*` bits.
    pub flags: u16,
    /// The next hop's MAC, written as the Ethernet destination.
    pub dst_mac: [u8; 6],
    /// Zero.
    pub _pad: [u8; 2],
}

impl NextHop {
    /// A next hop that drops (`route_drop`).
    #[must_use]
    pub const fn drop() -> Self {
        Self {
            egress_ifindex: 0,
            egress_port: 0,
            flags: NEXT_HOP_FLAG_DROP,
            dst_mac: [0; 6],
            _pad: [0; 2],
        }
    }

    /// Whether this next hop drops.
    #[must_use]
    pub const fn drops(&self) -> bool {
        self.flags & NEXT_HOP_FLAG_DROP != 0
    }
}

/// Value of `IPV4_ROUTES`: what a prefix leads to.
///
/// Written by the agent, read by the program. `kind` is
/// [`ROUTE_KIND_NEXT_HOP`] (use `next_hop`) or [`ROUTE_KIND_GROUP`] (look
/// `group_id` up in `WCMP_GROUPS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ipv4Route {
    /// `ROUTE_KIND_*`.
    pub kind: u32,
    /// Index of this route's counter in `IPV4_ROUTE_HITS`
    /// (`0..IPV4_ROUTE_CAPACITY`).
    pub hit_slot: u32,
    /// The group, for [`ROUTE_KIND_GROUP`]; else 0.
    pub group_id: u32,
    /// The next hop, for [`ROUTE_KIND_NEXT_HOP`]; else zero.
    pub next_hop: NextHop,
}

/// Value of `WCMP_GROUPS`: a group's members expanded by weight.
///
/// A member of weight `w` fills `w` consecutive slots (members in ID order),
/// so the program picks `slots[wcmp_slot(hash, slot_count)]` and each member
/// gets a share of flows proportional to its weight. `slot_count` 0 is an empty
/// group: its packets are dropped (`DropReason::EmptyGroup`). Written whole
/// by the agent on every change of the group or of one of its members.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WcmpGroup {
    /// Used slots, `0..=WCMP_MAX_SLOTS`.
    pub slot_count: u32,
    /// The next hops; slots from `slot_count` on are zero.
    pub slots: [NextHop; WCMP_MAX_SLOTS],
}

impl Default for WcmpGroup {
    fn default() -> Self {
        Self {
            slot_count: 0,
            slots: [NextHop::default(); WCMP_MAX_SLOTS],
        }
    }
}

/// The WCMP hash of a 5-tuple: CRC-16/ARC (the P4 selector's
/// `HashAlgorithm.crc16`: polynomial 0x8005, reflected, initial value 0)
/// over source address, destination address, protocol, source port and
/// destination port, in network byte order (13 bytes).
///
/// Both the program and the agent's tests use it.
#[inline(always)]
#[must_use]
pub fn wcmp_hash(src: [u8; 4], dst: [u8; 4], proto: u8, l4_src: u16, l4_dst: u16) -> u16 {
    let s = l4_src.to_be_bytes();
    let d = l4_dst.to_be_bytes();
    let bytes = [
        src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3], proto, s[0], s[1], d[0],
        d[1],
    ];
    let mut crc: u16 = 0;
    let mut i = 0;
    while i < bytes.len() {
        crc ^= bytes[i] as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xa001
            } else {
                crc >> 1
            };
            bit += 1;
        }
        i += 1;
    }
    crc
}

/// The slot of a `slot_count`-slot group (`1..=WCMP_MAX_SLOTS`) that the
/// CRC `hash` selects.
///
/// CRC is linear: flows that differ in a few bits only (consecutive source
/// ports) get CRCs whose top bits take as few as two values, which left a
/// 4-slot group using 2 slots. So the CRC is first scrambled by Fibonacci
/// hashing (multiply by 2^32/φ, keep bits 16–31), then mapped onto the
/// slots by `(mixed * slot_count) >> 16`, which splits the 16-bit range in
/// equal parts. Multiplies and shifts only: the eBPF verifier bounds them,
/// where it cannot bound a modulo.
#[inline(always)]
#[must_use]
pub const fn wcmp_slot(hash: u16, slot_count: u32) -> u32 {
    let mixed = (hash as u32).wrapping_mul(0x9e37_79b1) >> 16;
    (mixed * slot_count) >> 16
}

// Layout pins: a change here changes the maps' value sizes.
const _: () = assert!(core::mem::size_of::<NextHop>() == 16);
const _: () = assert!(core::mem::size_of::<Ipv4Route>() == 28);
const _: () = assert!(core::mem::size_of::<WcmpGroup>() == 4 + 16 * WCMP_MAX_SLOTS);

#[cfg(feature = "user")]
#[allow(unsafe_code)]
mod pod {
    //! `aya::Pod` for the routing map types.

    use super::{Ipv4Route, NextHop, WcmpGroup};

    // SAFETY: `#[repr(C)]`, `Copy`, only integers and integer arrays (every
    // bit pattern valid), no implicit padding (sizes pinned above: 16 =
    // 4+2+2+6+2, 28 = 4+4+4+16, 260 = 4+16*16 with 4-byte alignment).
    unsafe impl aya::Pod for NextHop {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Ipv4Route {}
    // SAFETY: see above.
    unsafe impl aya::Pod for WcmpGroup {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_arc_check_value() {
        // The standard check input "123456789" has CRC-16/ARC 0xbb3d; feed
        // it through the same loop by reusing the function's byte order.
        let mut crc: u16 = 0;
        for b in b"123456789" {
            crc ^= u16::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xa001
                } else {
                    crc >> 1
                };
            }
        }
        assert_eq!(crc, 0xbb3d);
    }

    #[test]
    fn consecutive_source_ports_use_every_slot() {
        let mut per_slot = [0u32; 4];
        for port in 20000..20400u16 {
            let hash = wcmp_hash([10, 77, 1, 1], [10, 77, 9, 9], 17, port, 7000);
            per_slot[wcmp_slot(hash, 4) as usize] += 1;
        }
        assert!(
            per_slot.iter().all(|&n| (80..=120).contains(&n)),
            "{per_slot:?}"
        );
        for count in 1..=WCMP_MAX_SLOTS as u32 {
            assert!(wcmp_slot(u16::MAX, count) < count);
        }
    }

    #[test]
    fn hash_depends_on_every_field() {
        let base = wcmp_hash([10, 0, 0, 1], [10, 0, 0, 2], 17, 1000, 2000);
        assert_ne!(
            base,
            wcmp_hash([10, 0, 0, 9], [10, 0, 0, 2], 17, 1000, 2000)
        );
        assert_ne!(
            base,
            wcmp_hash([10, 0, 0, 1], [10, 0, 0, 9], 17, 1000, 2000)
        );
        assert_ne!(base, wcmp_hash([10, 0, 0, 1], [10, 0, 0, 2], 6, 1000, 2000));
        assert_ne!(
            base,
            wcmp_hash([10, 0, 0, 1], [10, 0, 0, 2], 17, 1001, 2000)
        );
        assert_ne!(
            base,
            wcmp_hash([10, 0, 0, 1], [10, 0, 0, 2], 17, 1000, 2001)
        );
    }
}
