//! `solyx_host` in eBPF: the programs of a host attached to the fabric.
//!
//! - `host_egress` (TC egress of every host port): an IPv4 packet whose
//!   destination hits `HOST_ROUTES` takes one path of the route's group.
//!   The path is chosen per flowlet: the flow's bucket in `FLOWLETS`
//!   keeps its path while packets follow each other closer than the
//!   flowlet gap; after a longer pause (or a change of the group) a new
//!   path is drawn at random in proportion to the members' weights. The
//!   path's MPLS label is pushed, the next hop's MAC written, and the
//!   packet redirected when the path leaves by another port. Counted per
//!   destination, per path and per flow bucket (elephants, with the
//!   5-tuple of the flow that last counted in the bucket in `FLOW_KEYS`).
//! - `host_ingress` (TC ingress of every host port): pops an MPLS label;
//!   a TCP/UDP packet to a port of `INT_SINK_PORTS` is an INT sink
//!   packet: its INT-MD shim, header and stack are handed to the agent
//!   through `INT_SINK` (the agent sends the Telemetry Report) and removed
//!   before delivery, or the packet ends here (probes).
//!
//! Every decision is counted in `HOST_EVENTS` (see
//! `solyx_ebpf_common::host::HostEvent` for the rules on malformed INT).
#![no_std]
#![no_main]
// Inline assembly on BPF is unstable; used once, in `bounded_len`.
#![feature(asm_experimental_arch)]

/// The INT sink and the label pop (TC ingress).
mod sink;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, TC_ACT_OK, TC_ACT_SHOT},
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns, bpf_redirect},
    macros::{classifier, map},
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, PerCpuArray},
    programs::TcContext,
};
use solyx_ebpf_common::host::{
    flow_bucket, pick_slot, FlowKey, Flowlet, HostConfig, HostEvent, HostGroup, HostRoute,
    FLOW_BUCKETS, HOST_EVENT_SLOTS, HOST_GROUP_CAPACITY, HOST_MAX_SLOTS, HOST_PATH_SLOTS,
    HOST_ROUTE_CAPACITY, PUSHED_LABEL_TTL,
};
use solyx_ebpf_common::{Counter, PortConfig, ETHERTYPE_IPV4, ETHERTYPE_MPLS, MAX_PORTS};

/// Ethernet header length (no VLAN tag in the data).
const ETH_HLEN: u32 = 14;
/// An MPLS label stack entry.
const MPLS_HLEN: u32 = 4;
/// `bpf_skb_adjust_room` mode: insert after the MAC header.
const BPF_ADJ_ROOM_MAC: u32 = 1;
/// IP protocol numbers.
const IP_PROTO_TCP: u8 = 6;
const IP_PROTO_UDP: u8 = 17;

/// `HOST_ROUTES`: destination prefix → group and counter slot.
#[map(name = "HOST_ROUTES")]
static HOST_ROUTES: LpmTrie<[u8; 4], HostRoute> =
    LpmTrie::with_max_entries(HOST_ROUTE_CAPACITY, BPF_F_NO_PREALLOC);

/// `HOST_ROUTE_HITS`: per-destination counters.
#[map(name = "HOST_ROUTE_HITS")]
static HOST_ROUTE_HITS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(HOST_ROUTE_CAPACITY, 0);

/// `HOST_GROUPS`: group → weighted paths.
#[map(name = "HOST_GROUPS")]
static HOST_GROUPS: HashMap<u32, HostGroup> =
    HashMap::with_max_entries(HOST_GROUP_CAPACITY, BPF_F_NO_PREALLOC);

/// `HOST_PATH_HITS`: per-path counters.
#[map(name = "HOST_PATH_HITS")]
static HOST_PATH_HITS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(HOST_PATH_SLOTS, 0);

/// `FLOWLETS`: flow bucket → the path of its current flowlet.
#[map(name = "FLOWLETS")]
static FLOWLETS: Array<Flowlet> = Array::with_max_entries(FLOW_BUCKETS, 0);

/// `FLOW_BYTES`: flow bucket → bytes sent (elephant detection).
#[map(name = "FLOW_BYTES")]
static FLOW_BYTES: PerCpuArray<Counter> = PerCpuArray::with_max_entries(FLOW_BUCKETS, 0);

/// `FLOW_KEYS`: flow bucket → the 5-tuple of the flow that last counted
/// in `FLOW_BYTES` there.
#[map(name = "FLOW_KEYS")]
static FLOW_KEYS: Array<FlowKey> = Array::with_max_entries(FLOW_BUCKETS, 0);

/// `HOST_CONFIG`: the flowlet gap.
#[map(name = "HOST_CONFIG")]
static HOST_CONFIG: Array<HostConfig> = Array::with_max_entries(1, 0);

/// `HOST_PORTS`: ifindex → P4 port of the host.
#[map(name = "HOST_PORTS")]
static HOST_PORTS: HashMap<u32, PortConfig> = HashMap::with_max_entries(MAX_PORTS, 0);

/// `HOST_EVENTS`: what happened, per CPU.
#[map(name = "HOST_EVENTS")]
static HOST_EVENTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(HOST_EVENT_SLOTS, 0);

/// The TC egress entry point.
#[classifier]
pub fn host_egress(ctx: TcContext) -> i32 {
    egress(&ctx)
}

/// The flow of an IPv4 packet: what the flow bucket hashes.
struct Flow {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    sport: u16,
    dport: u16,
}

/// Reads the 5-tuple of an IPv4 packet at `l3` (ports 0 for fragments
/// after the first and for other protocols).
#[inline(always)]
fn flow_of(ctx: &TcContext, l3: u32) -> Option<Flow> {
    let ip = ctx.load::<[u8; 20]>(l3 as usize).ok()?;
    if ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = u32::from(ip[0] & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let frag_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    let proto = ip[9];
    let (sport, dport) = if frag_offset == 0 && (proto == IP_PROTO_TCP || proto == IP_PROTO_UDP) {
        match ctx.load::<[u8; 4]>((l3 + (ihl & 0x3c)) as usize) {
            Ok(p) => (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ),
            Err(_) => (0, 0),
        }
    } else {
        (0, 0)
    };
    Some(Flow {
        src: [ip[12], ip[13], ip[14], ip[15]],
        dst: [ip[16], ip[17], ip[18], ip[19]],
        proto,
        sport,
        dport,
    })
}

#[inline(always)]
fn egress(ctx: &TcContext) -> i32 {
    let Ok(ethertype) = ctx.load::<[u8; 2]>(12) else {
        return TC_ACT_OK;
    };
    // Labelled frames (probes sent by the agent) and non-IPv4 leave as
    // they are.
    if u16::from_be_bytes(ethertype) != ETHERTYPE_IPV4 {
        return TC_ACT_OK;
    }
    let Some(flow) = flow_of(ctx, ETH_HLEN) else {
        return TC_ACT_OK;
    };
    let Some(route) = HOST_ROUTES.get(Key::new(32, flow.dst)).copied() else {
        // No labelled path for this destination: the kernel's route.
        return TC_ACT_OK;
    };
    let len = ctx.len();
    count(HOST_ROUTE_HITS.get_ptr_mut(route.hit_slot), len);

    // SAFETY: the value is copied out; the agent replaces values whole
    // and the map frees a replaced value only after an RCU grace period.
    let Some(group) = (unsafe { HOST_GROUPS.get(route.group_id) }) else {
        count_event(HostEvent::EmptyGroup);
        return TC_ACT_OK;
    };
    let slot_count = group.slot_count;
    if slot_count == 0 || slot_count > HOST_MAX_SLOTS as u32 {
        count_event(HostEvent::EmptyGroup);
        return TC_ACT_OK;
    }

    let bucket = flow_bucket(flow.src, flow.dst, flow.proto, flow.sport, flow.dport);
    let gap = HOST_CONFIG.get(0).map_or(0, |c| c.flowlet_gap_ns);
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(flowlet) = FLOWLETS.get_ptr_mut(bucket) else {
        return TC_ACT_OK;
    };
    // Two CPUs may update one bucket at once (two flows in a bucket, or
    // one flow sent from two CPUs): the worst outcome is a new path one
    // packet early, never a bad slot (checked against `slot_count` below).
    // SAFETY: an array value, valid for the program's run.
    let f = unsafe { &mut *flowlet };
    let slot = if f.group_id == route.group_id
        && f.version == group.version
        && now.wrapping_sub(f.last_ns) <= gap
        && f.slot < slot_count
    {
        f.slot
    } else {
        // SAFETY: helper without arguments.
        let draw = unsafe { bpf_get_prandom_u32() };
        count_event(HostEvent::FlowletNew);
        let s = pick_slot(draw, slot_count);
        f.group_id = route.group_id;
        f.version = group.version;
        f.slot = s;
        s
    };
    f.last_ns = now;
    count(FLOW_BYTES.get_ptr_mut(bucket), len);
    record_key(bucket, &flow);

    let path = group.slots[(slot as usize) & (HOST_MAX_SLOTS - 1)];
    count(HOST_PATH_HITS.get_ptr_mut(u32::from(path.path_id)), len);

    // SAFETY: a context field read of the `__sk_buff` the kernel passed in.
    let (gso_size, ifindex) = unsafe { ((*ctx.skb.skb).gso_size, (*ctx.skb.skb).ifindex) };
    // TODO-completeness: GSO packets (several TCP segments in one skb) leave
    // unlabelled on the kernel's route: segmenting an MPLS GSO skb needs
    // `mpls_gso` and an inner protocol the helpers cannot set. The agent
    // sets its ports' gso_max_segs to 1 so that TCP sends none; where the
    // kernel refuses that (older ones), TCP bursts skip their path.
    if gso_size != 0 {
        count_event(HostEvent::Gso);
        return TC_ACT_OK;
    }
    if push_label(ctx, path.label, path.dst_mac, path.src_mac).is_err() {
        count_event(HostEvent::PushFailed);
        return TC_ACT_SHOT;
    }
    count_event(HostEvent::LabelPushed);
    if path.egress_ifindex != 0 && path.egress_ifindex != ifindex {
        // SAFETY: a helper call with plain integer arguments.
        return (unsafe { bpf_redirect(path.egress_ifindex, 0) }) as i32;
    }
    TC_ACT_OK
}

/// Inserts one label (bottom of stack) after the Ethernet header and
/// writes the MACs. `bpf_skb_adjust_room` accepts it: the skb is IPv4.
#[inline(always)]
fn push_label(ctx: &TcContext, label: u32, dst: [u8; 6], src: [u8; 6]) -> Result<(), ()> {
    ctx.adjust_room(MPLS_HLEN as i32, BPF_ADJ_ROOM_MAC, 0)
        .map_err(|_| ())?;
    let lse = (label << 12) | (1 << 8) | u32::from(PUSHED_LABEL_TTL);
    let e = ETHERTYPE_MPLS.to_be_bytes();
    let l = lse.to_be_bytes();
    let header: [u8; 18] = [
        dst[0], dst[1], dst[2], dst[3], dst[4], dst[5], src[0], src[1], src[2], src[3], src[4],
        src[5], e[0], e[1], l[0], l[1], l[2], l[3],
    ];
    ctx.store(0, &header, 0).map_err(|_| ())
}

/// `value` when it is within `1..=max`, as a register the verifier knows
/// to be within those bounds (see the fabric's `bounded_len`: plain Rust
/// comparisons let LLVM pass an unchecked copy to the helper).
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

/// Makes `flow` the key of `bucket` in `FLOW_KEYS`. The bucket usually
/// holds this flow already: it is compared first, so that the cache line
/// all CPUs share is written only when another flow takes the bucket.
#[inline(always)]
fn record_key(bucket: u32, flow: &Flow) {
    let Some(slot) = FLOW_KEYS.get_ptr_mut(bucket) else {
        return;
    };
    // The `FlowKey` layout as two words (no memcmp in BPF): addresses,
    // then ports, protocol and padding.
    let (s, d, sp, dp) = (
        flow.src,
        flow.dst,
        flow.sport.to_ne_bytes(),
        flow.dport.to_ne_bytes(),
    );
    let addrs = u64::from_ne_bytes([s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3]]);
    let rest = u64::from_ne_bytes([sp[0], sp[1], dp[0], dp[1], flow.proto, 0, 0, 0]);
    let words = slot.cast::<[u64; 2]>();
    // SAFETY: an array value of 16 bytes, 8-byte aligned (map values are),
    // valid for the program's run. Two CPUs may write one bucket at once
    // (two flows in it): a reader may then see a mix of both keys for that
    // instant, which the agent detects (the key no longer hashes to its
    // bucket) and reads again.
    unsafe {
        if (*words)[0] != addrs || (*words)[1] != rest {
            (*words)[0] = addrs;
            (*words)[1] = rest;
        }
    }
}

/// Adds one packet of `len` bytes to a per-CPU counter slot.
#[inline(always)]
fn count(slot: Option<*mut Counter>, len: u32) {
    if let Some(c) = slot {
        // SAFETY: a per-CPU slot is only written by this CPU while the
        // program runs.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += u64::from(len);
        }
    }
}

/// Counts one packet for `event`.
#[inline(always)]
fn count_event(event: HostEvent) {
    if let Some(c) = HOST_EVENTS.get_ptr_mut(event.index()) {
        // SAFETY: per-CPU slot, see `count`.
        unsafe { *c += 1 };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // No code path above can panic (no indexing out of masks, no unwrap).
    // SAFETY: unreachable, see above.
    unsafe { core::hint::unreachable_unchecked() }
}

/// Program license, read by the kernel: GPL-only helpers need "GPL".
#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 4] = *b"GPL\0";
