//! `solyx_fabric` in eBPF: the TC (clsact) ingress program `fabric_ingress`
//! runs the P4 ingress pipeline on every fabric port.
//!
//! For every packet received on a fabric port:
//!
//! 1. the ingress interface is turned into the P4 port number
//!    (`PORT_OF_IFINDEX`) and counted in `PORT_RX`; an interface the agent
//!    did not register is counted as `UnknownIngressPort` and passed on;
//! 2. `ingress::run` parses it and drops what the P4 program drops before
//!    its controls (malformed headers, bad IPv4 checksum), applies the ACL
//!    (`acl`: punt to the agent through `punt`, drop, permit), then forwards:
//!    MPLS by label (`mpls_stage` below), IPv4 by longest prefix with WCMP
//!    (`route`), anything else dropped;
//! 3. an MPLS packet is checked like the P4 `Forwarding` control does: a
//!    label stack deeper than one label and an expired TTL are dropped, then
//!    the label is looked up in `MPLS_FORWARD` (a miss is dropped); on a hit
//!    the entry's counter (`MPLS_HITS`) is bumped; a transit entry
//!    decrements the MPLS TTL, a last-hop entry pops the label and restores
//!    the IPv4 EtherType (pipe model: the IPv4 TTL is left alone); the MACs
//!    are rewritten as the entry says;
//! 4. the egress port's source MAC is written (`egress`, the P4
//!    `egress_rewrite` table) and the packet is redirected to the egress
//!    interface in the egress direction, so that the qdisc of that
//!    interface (tbf, htb) sees it.
//!
//! Every drop is counted in `DROP_REASONS`. Packet bytes are read through
//! pointers checked against `data_end` right before each read, and written
//! with `bpf_skb_store_bytes`, which checks bounds itself.
#![no_std]
#![no_main]
// Inline assembly on BPF is unstable; used once, in `bounded_len`.
#![feature(asm_experimental_arch)]

/// INT-MD transit: the TC egress program and the ingress stamp.
mod int;

/// The ingress ACL: key, priority-ordered scan, hit counters.
mod acl;
/// Egress rewrite: the egress port's source MAC before the redirect.
mod egress;
/// The ingress pipeline in the P4 order.
mod ingress;
/// The parser and the checks made before the ingress controls.
mod parse;
/// Packet-in through the `PACKET_IN` perf event array.
mod punt;
/// IPv4 routing with WCMP.
mod route;

use aya_ebpf::{
    bindings::{BPF_F_RECOMPUTE_CSUM, BPF_NOEXIST, TC_ACT_OK, TC_ACT_SHOT},
    helpers::{bpf_redirect, bpf_skb_change_tail, bpf_skb_load_bytes, bpf_skb_store_bytes},
    macros::{classifier, map},
    maps::{HashMap, PerCpuArray, PerCpuHashMap},
    programs::TcContext,
};
use solyx_ebpf_common::{
    Counter, DropReason, MplsForward, MplsKey, PortConfig, DROP_REASON_SLOTS, ETHERTYPE_IPV4,
    ETHERTYPE_MPLS, MAX_PORTS, MPLS_FLAG_SET_DST_MAC, MPLS_FLAG_SET_SRC_MAC, MPLS_FORWARD_CAPACITY,
};

/// Ethernet header length. No VLAN tag: the receive path moves an outer
/// 802.1Q tag into the skb metadata (`skb_vlan_untag`) before TC runs.
const ETH_HLEN: usize = 14;
/// Offset of the EtherType in the Ethernet header.
const ETHERTYPE_OFFSET: usize = 12;
/// Offset of the source MAC.
const SRC_MAC_OFFSET: usize = 6;
/// One MPLS label stack entry.
const MPLS_HLEN: usize = 4;

/// `MPLS_FORWARD`: label → forwarding decision. Written by the agent.
#[map(name = "MPLS_FORWARD")]
static MPLS_FORWARD: HashMap<MplsKey, MplsForward> =
    HashMap::with_max_entries(MPLS_FORWARD_CAPACITY, 0);

/// `MPLS_HITS`: label → packets/bytes that hit the entry, per CPU.
#[map(name = "MPLS_HITS")]
static MPLS_HITS: PerCpuHashMap<MplsKey, Counter> =
    PerCpuHashMap::with_max_entries(MPLS_FORWARD_CAPACITY, 0);

/// `PORT_OF_IFINDEX`: ingress ifindex → P4 port. Written by the agent.
#[map(name = "PORT_OF_IFINDEX")]
static PORT_OF_IFINDEX: HashMap<u32, PortConfig> = HashMap::with_max_entries(MAX_PORTS, 0);

/// `PORT_RX`: P4 port → packets/bytes received, per CPU.
#[map(name = "PORT_RX")]
static PORT_RX: PerCpuArray<Counter> = PerCpuArray::with_max_entries(MAX_PORTS, 0);

/// Largest payload (bytes after the label) a pop can move: above the
/// fabric's 9000-byte IP MTU.
const POP_SCRATCH_SIZE: usize = 9216;

/// Scratch space for `pop_label`, one slot per CPU; not pinned (no state).
#[map(name = "POP_SCRATCH")]
static POP_SCRATCH: PerCpuArray<[u8; POP_SCRATCH_SIZE]> = PerCpuArray::with_max_entries(1, 0);

/// `DROP_REASONS`: `DropReason` index → packets, per CPU.
#[map(name = "DROP_REASONS")]
static DROP_REASONS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_REASON_SLOTS, 0);

/// What the MPLS stage decided.
enum Verdict {
    /// Hand the packet to the kernel unchanged.
    Pass,
    /// Drop the packet, counting the reason.
    Drop(DropReason),
    /// The packet went to the agent (packet-in); drop it here.
    Punted,
    /// Send the (rewritten) packet out of interface `ifindex`, fabric port
    /// `port` (whose egress rewrite applies first).
    Redirect { ifindex: u32, port: u16 },
}

/// The TC ingress entry point.
#[classifier]
pub fn fabric_ingress(ctx: TcContext) -> i32 {
    // SAFETY: `ctx.skb.skb` is the `__sk_buff` the kernel passed in; reading
    // a field of it is a context access the verifier checks.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let len = ctx.len();

    // SAFETY: map values are only read here; the agent writes whole values.
    let Some(port) = (unsafe { PORT_OF_IFINDEX.get(ifindex) }).map(|p| u32::from(p.port)) else {
        count_reason(DropReason::UnknownIngressPort);
        return TC_ACT_OK;
    };
    count(PORT_RX.get_ptr_mut(port), len);
    // INT transit: the ingress time, for the egress program (skb->mark),
    // only while a watch rule is installed.
    int::stamp_ingress(&ctx);

    match ingress::run(&ctx, port, len) {
        Verdict::Pass => TC_ACT_OK,
        Verdict::Drop(reason) => {
            count_reason(reason);
            TC_ACT_SHOT
        }
        // Sent to the agent as a packet-in; the data plane drops it.
        Verdict::Punted => TC_ACT_SHOT,
        Verdict::Redirect { ifindex, port } => {
            if !egress::rewrite(&ctx, port) {
                count_reason(DropReason::RewriteFailed);
                return TC_ACT_SHOT;
            }
            // bpf_redirect returns TC_ACT_REDIRECT (or TC_ACT_SHOT for bad
            // flags, which 0 is not); the value fits an i32.
            // SAFETY: a helper call with plain integer arguments.
            (unsafe { bpf_redirect(ifindex, 0) }) as i32
        }
    }
}

/// Parses Ethernet and MPLS, applies `MPLS_FORWARD`, rewrites the packet.
/// `ingress::run` calls it for MPLS frames only, after the parser's checks
/// and the ACL; the `Pass` answers below are for frames it was not meant
/// for.
#[inline(always)]
fn mpls_stage(ctx: &TcContext, len: u32) -> Verdict {
    // Only the Ethernet header has to be in the linear part to decide
    // whether this stage cares.
    if !make_linear(ctx, ETH_HLEN) {
        return Verdict::Pass;
    }
    let Some(ethertype) = read_be16(ctx, ETHERTYPE_OFFSET) else {
        return Verdict::Pass;
    };
    if ethertype != ETHERTYPE_MPLS {
        return Verdict::Pass;
    }

    // Ethernet + one label + the first byte after it (the IP version nibble
    // a pop needs). A labelled frame without the full label is malformed;
    // the payload byte is checked only where a pop needs it.
    let need = ETH_HLEN + MPLS_HLEN + 1;
    if !make_linear(ctx, need) && !make_linear(ctx, ETH_HLEN + MPLS_HLEN) {
        return Verdict::Drop(DropReason::Malformed);
    }
    let Some(lse) = read_be32(ctx, ETH_HLEN) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let label = lse >> 12;
    let bottom_of_stack = (lse >> 8) & 1 == 1;
    let ttl = lse & 0xff;

    // Same order as the P4 `Forwarding` control: stack depth and TTL are
    // checked before the table is applied (and its counter counts).
    if !bottom_of_stack {
        return Verdict::Drop(DropReason::MplsLabelStack);
    }
    if ttl <= 1 {
        return Verdict::Drop(DropReason::MplsTtlExpired);
    }

    let key = MplsKey { label };
    // SAFETY: the value is copied out at once; a concurrent update by the
    // agent replaces the value wholesale (hash maps preallocate elements,
    // so the pointer stays valid for the copy).
    let Some(entry) = (unsafe { MPLS_FORWARD.get(key) }).copied() else {
        return Verdict::Drop(DropReason::MplsMiss);
    };
    count_hit(&key, len);

    if entry.pops() {
        // Pipe model: only IPv4 is carried under the label (the P4 parser
        // recognises IPv4 by its version nibble); anything else would leave
        // with a wrong EtherType.
        match read_u8(ctx, ETH_HLEN + MPLS_HLEN) {
            Some(first) if first >> 4 == 4 => {}
            _ => return Verdict::Drop(DropReason::Malformed),
        }
        if !pop_label(ctx) {
            return Verdict::Drop(DropReason::RewriteFailed);
        }
    } else {
        // Transit: label kept, TTL decremented. The MPLS header is covered
        // by a CHECKSUM_COMPLETE skb's csum, so let the helper fix it.
        let lse = (lse & !0xff) | (ttl - 1);
        if ctx
            .store(
                ETH_HLEN,
                &lse.to_be_bytes(),
                u64::from(BPF_F_RECOMPUTE_CSUM),
            )
            .is_err()
        {
            return Verdict::Drop(DropReason::RewriteFailed);
        }
    }

    // The MACs are before the network header, outside the csum of a
    // CHECKSUM_COMPLETE skb: stored without BPF_F_RECOMPUTE_CSUM.
    if entry.flags & MPLS_FLAG_SET_DST_MAC != 0 && ctx.store(0, &entry.dst_mac, 0).is_err() {
        return Verdict::Drop(DropReason::RewriteFailed);
    }
    if entry.flags & MPLS_FLAG_SET_SRC_MAC != 0
        && ctx.store(SRC_MAC_OFFSET, &entry.src_mac, 0).is_err()
    {
        return Verdict::Drop(DropReason::RewriteFailed);
    }
    Verdict::Redirect {
        ifindex: entry.egress_ifindex,
        port: entry.egress_port,
    }
}

/// Removes the label stack entry after the Ethernet header and makes the
/// frame IPv4.
///
/// `bpf_skb_adjust_room` would do this in one call, but it refuses any skb
/// whose `skb->protocol` is not IPv4 or IPv6 (`-ENOTSUPP`), and an MPLS
/// frame's is `ETH_P_MPLS_UC`; no helper can change that. So the bytes after
/// the label are moved 4 bytes forward through a per-CPU scratch buffer and
/// the last 4 bytes are trimmed off (`bpf_skb_change_tail`). Three helper
/// calls, each a kernel memcpy or trim; `skb->protocol` stays
/// `ETH_P_MPLS_UC` (the receiver derives it again from the EtherType).
#[inline(always)]
fn pop_label(ctx: &TcContext) -> bool {
    let Some(scratch) = POP_SCRATCH.get_ptr_mut(0) else {
        return false;
    };
    let len = ctx.len();
    let payload = (ETH_HLEN + MPLS_HLEN) as u32;
    // The payload must be 1 byte to the scratch size long (frames above the
    // fabric MTU do not exist).
    let Some(moved) = bounded_len(len.wrapping_sub(payload), POP_SCRATCH_SIZE as u32) else {
        return false;
    };
    // SAFETY: helper call on this program's skb; the scratch slot belongs
    // to this CPU while the program runs and has room for `moved` bytes.
    if unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), payload, scratch.cast(), moved) } != 0 {
        return false;
    }
    // The moved bytes are covered by a CHECKSUM_COMPLETE skb's csum.
    // SAFETY: helper call on this program's skb; `scratch` holds `moved`
    // valid bytes.
    let stored = unsafe {
        bpf_skb_store_bytes(
            ctx.skb.skb,
            ETH_HLEN as u32,
            scratch.cast(),
            moved,
            u64::from(BPF_F_RECOMPUTE_CSUM),
        )
    };
    if stored != 0 {
        return false;
    }
    // SAFETY: helper call on this program's skb; it trims the csum too.
    if unsafe { bpf_skb_change_tail(ctx.skb.skb, len - MPLS_HLEN as u32, 0) } != 0 {
        return false;
    }
    ctx.store(ETHERTYPE_OFFSET, &ETHERTYPE_IPV4.to_be_bytes(), 0)
        .is_ok()
}

/// `value` when it is within `1..=max`, as a register the verifier knows
/// to be within those bounds.
///
/// Verifier-only: a helper's size argument must be provably in range. With
/// plain Rust comparisons LLVM checks a zero-extended copy (or folds the two
/// comparisons into one on `value - 1`) and passes the unchecked original
/// to the helper, which the verifier rejects ("R4 min value is negative").
/// The assembly compares the very register that is then returned and used.
#[inline(always)]
fn bounded_len(value: u32, max: u32) -> Option<u32> {
    let mut v = u64::from(value);
    let mut in_bounds = 0u64;
    // SAFETY: two compares and a move on registers; no memory access.
    unsafe {
        core::arch::asm!(
            "if {v} < 1 goto +2",
            "if {v} > {max} goto +1",
            "{ok} = 1",
            v = inout(reg) v,
            max = in(reg) u64::from(max),
            ok = inout(reg) in_bounds,
        );
    }
    (in_bounds == 1).then_some(v as u32)
}

/// Makes sure the first `need` bytes are in the linear part of the skb, so
/// that direct packet access can reach them. False when the packet is
/// shorter or the pull fails.
#[inline(always)]
fn make_linear(ctx: &TcContext, need: usize) -> bool {
    if ctx.data() + need <= ctx.data_end() {
        return true;
    }
    if (ctx.len() as usize) < need {
        return false;
    }
    // The pull invalidates earlier packet pointers; callers re-derive them
    // through `ptr_at`, which checks `data_end` again.
    ctx.pull_data(need as u32).is_ok()
}

/// A pointer to `N` packet bytes at `offset`, or `None` when they are past
/// `data_end`.
#[inline(always)]
fn bytes_at<const N: usize>(ctx: &TcContext, offset: usize) -> Option<*const [u8; N]> {
    let start = ctx.data();
    let end = ctx.data_end();
    // The verifier only allows the dereference below after this comparison
    // of the very pointer (start + offset + N) with data_end.
    if start + offset + N > end {
        return None;
    }
    Some((start + offset) as *const [u8; N])
}

/// The byte at `offset`.
#[inline(always)]
fn read_u8(ctx: &TcContext, offset: usize) -> Option<u8> {
    let p = bytes_at::<1>(ctx, offset)?;
    // SAFETY: `bytes_at` checked that the byte is inside the packet.
    Some(unsafe { (*p)[0] })
}

/// The big-endian 16-bit value at `offset`.
#[inline(always)]
fn read_be16(ctx: &TcContext, offset: usize) -> Option<u16> {
    let p = bytes_at::<2>(ctx, offset)?;
    // SAFETY: `bytes_at` checked that both bytes are inside the packet.
    Some(u16::from_be_bytes(unsafe { *p }))
}

/// The big-endian 32-bit value at `offset`.
#[inline(always)]
fn read_be32(ctx: &TcContext, offset: usize) -> Option<u32> {
    let p = bytes_at::<4>(ctx, offset)?;
    // SAFETY: `bytes_at` checked that all four bytes are inside the packet.
    Some(u32::from_be_bytes(unsafe { *p }))
}

/// Adds one packet of `len` bytes to a per-CPU counter slot.
#[inline(always)]
fn count(slot: Option<*mut Counter>, len: u32) {
    if let Some(c) = slot {
        // SAFETY: a per-CPU slot is only written by this CPU, and BPF
        // programs are not preempted on it while running.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += u64::from(len);
        }
    }
}

/// Counts a hit of `key` in `MPLS_HITS`, creating the slot if the agent's
/// zeroed entry is missing.
#[inline(always)]
fn count_hit(key: &MplsKey, len: u32) {
    match MPLS_HITS.get_ptr_mut(key) {
        Some(c) => count(Some(c), len),
        None => {
            let first = Counter {
                packets: 1,
                bytes: u64::from(len),
            };
            // Fails only when the map is full or another CPU created the
            // entry first; either way losing this one count is acceptable.
            let _ = MPLS_HITS.insert(key, first, u64::from(BPF_NOEXIST));
        }
    }
}

/// Counts one packet for `reason`.
#[inline(always)]
fn count_reason(reason: DropReason) {
    if let Some(c) = DROP_REASONS.get_ptr_mut(reason.index()) {
        // SAFETY: per-CPU slot, see `count`.
        unsafe { *c += 1 };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // No code path above can panic (no indexing, no unwrap, no overflow
    // checks in release); the verifier would reject a reachable loop.
    // SAFETY: unreachable, see above.
    unsafe { core::hint::unreachable_unchecked() }
}

/// Program license, read by the kernel: GPL-only helpers need "GPL".
#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 4] = *b"GPL\0";
