//! IPv4 routing (P4 table `FabricIngress.ipv4_route` with the action
//! selector `wcmp_selector`): TTL check, longest-prefix match, WCMP member
//! choice by the 5-tuple hash, TTL decrement with an incremental header
//! checksum update, destination MAC.
//!
//! Verifier notes: the LPM trie returns a map value copied out at once.
//! The slot index comes from multiplies and shifts (`wcmp_slot`), not
//! `hash % slot_count`: the verifier does not bound the result of a
//! modulo ("math between map_value pointer and register with unbounded min
//! value"), while it does bound a product of two bounded values and a
//! shift. LLVM turns the bitwise CRC into a 256-entry table in `.rodata`,
//! indexed by a byte, which the verifier bounds too.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{lpm_trie::Key, HashMap, LpmTrie, PerCpuArray},
    programs::TcContext,
};
use solyx_ebpf_common::route::{
    wcmp_hash, wcmp_slot, Ipv4Route, NextHop, WcmpGroup, IPV4_ROUTE_CAPACITY, ROUTE_KIND_GROUP,
    ROUTE_KIND_NEXT_HOP, WCMP_GROUP_CAPACITY, WCMP_MAX_SLOTS,
};
use solyx_ebpf_common::{Counter, DropReason};

use crate::parse::Ipv4;
use crate::{count, Verdict};

/// `IPV4_ROUTES`: prefix → route. Written by the agent.
#[map(name = "IPV4_ROUTES")]
static IPV4_ROUTES: LpmTrie<[u8; 4], Ipv4Route> = LpmTrie::with_max_entries(IPV4_ROUTE_CAPACITY, 0);

/// `IPV4_ROUTE_HITS`: route hit slot → packets/bytes, per CPU.
#[map(name = "IPV4_ROUTE_HITS")]
static IPV4_ROUTE_HITS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(IPV4_ROUTE_CAPACITY, 0);

/// `WCMP_GROUPS`: group ID → weight-expanded next hops. Written by the
/// agent; not preallocated, so a replaced value outlives its readers.
#[map(name = "WCMP_GROUPS")]
static WCMP_GROUPS: HashMap<u32, WcmpGroup> =
    HashMap::with_max_entries(WCMP_GROUP_CAPACITY, BPF_F_NO_PREALLOC);

/// Offset of the TTL in the IPv4 header.
const TTL_OFFSET: usize = 8;
/// Offset of the header checksum in the IPv4 header.
const CHECKSUM_OFFSET: usize = 10;

/// Routes the IPv4 packet `ip`: a drop verdict, or a redirect after the
/// TTL decrement and the destination MAC rewrite.
#[inline(always)]
pub fn route(ctx: &TcContext, ip: &Ipv4, len: u32) -> Verdict {
    if ip.ttl <= 1 {
        return Verdict::Drop(DropReason::Ipv4TtlExpired);
    }
    // The value is copied out at once; LPM trie values are freed only
    // after every reader has finished (RCU).
    let Some(route) = IPV4_ROUTES.get(Key::new(32, ip.dst)).copied() else {
        return Verdict::Drop(DropReason::Ipv4Miss);
    };
    count(IPV4_ROUTE_HITS.get_ptr_mut(route.hit_slot), len);

    let next_hop = if route.kind == ROUTE_KIND_NEXT_HOP {
        route.next_hop
    } else if route.kind == ROUTE_KIND_GROUP {
        match pick_member(route.group_id, ip) {
            Some(next_hop) => next_hop,
            None => return Verdict::Drop(DropReason::EmptyGroup),
        }
    } else {
        return Verdict::Drop(DropReason::RouteDrop);
    };
    if next_hop.drops() {
        return Verdict::Drop(DropReason::RouteDrop);
    }

    // TTL decrement; the header checksum is fixed incrementally. The TTL
    // is the high byte of its 16-bit word, which is what passing the byte
    // values with size 2 means on a little-endian machine (as Cilium does).
    // The header's one's-complement sum is unchanged, so the skb's
    // CHECKSUM_COMPLETE value stays right: both stores go without
    // BPF_F_RECOMPUTE_CSUM.
    let new_ttl = ip.ttl - 1;
    if ctx.store(ip.offset + TTL_OFFSET, &new_ttl, 0).is_err()
        || ctx
            .l3_csum_replace(
                ip.offset + CHECKSUM_OFFSET,
                u64::from(ip.ttl),
                u64::from(new_ttl),
                2,
            )
            .is_err()
    {
        return Verdict::Drop(DropReason::RewriteFailed);
    }
    // The MACs are outside a CHECKSUM_COMPLETE skb's csum.
    if ctx.store(0, &next_hop.dst_mac, 0).is_err() {
        return Verdict::Drop(DropReason::RewriteFailed);
    }
    Verdict::Redirect {
        ifindex: next_hop.egress_ifindex,
        port: next_hop.egress_port,
    }
}

/// The member of group `group_id` that the packet's 5-tuple hashes to, or
/// `None` for a missing or empty group.
#[inline(always)]
fn pick_member(group_id: u32, ip: &Ipv4) -> Option<NextHop> {
    // SAFETY: read only; the agent replaces group values whole and the map
    // is not preallocated, so the old value outlives this read.
    let group = unsafe { WCMP_GROUPS.get(group_id) }?;
    let slots = group.slot_count;
    if slots == 0 || slots > WCMP_MAX_SLOTS as u32 {
        return None;
    }
    let hash = wcmp_hash(ip.src, ip.dst, ip.proto, ip.l4_src, ip.l4_dst);
    group.slots.get(wcmp_slot(hash, slots) as usize).copied()
}
