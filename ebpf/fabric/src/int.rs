//! INT-MD transit (INT v2.1, INT over TCP/UDP) at TC egress: the
//! `fabric_egress` program, and the ingress stamp that `fabric_ingress`
//! leaves in `skb->mark` for it.
//!
//! The P4 specification is `p4/solyx_fabric/include/control/int_transit.p4`.
//! For every packet leaving a fabric port the program
//!
//! 1. clears the ingress stamp in `skb->mark`, turns the egress interface
//!    into its P4 port (`PORT_OF_IFINDEX`) and counts the packet in
//!    `PORT_TX`; when the active watchlist bank is empty
//!    (`IntConfig::watch_rules` is 0) no packet can be INT and it stops
//!    here;
//! 2. parses Ethernet, at most one MPLS label (bottom of stack, IPv4 under
//!    it), IPv4 with options and TCP (with options) or UDP; a packet with at
//!    least 16 bytes of L4 payload has a *candidate* INT shim + INT-MD
//!    header right after the L4 header;
//! 3. applies `int_watchlist` (ternary on DSCP and L4 destination port,
//!    highest priority first); an unmarked packet leaves untouched;
//! 4. for a marked INT-MD v2 packet: `remaining_hop_cnt == 0` sets the E
//!    bit; lengths that do not fit leave the packet untouched; a packet the
//!    metadata would push past the MTU gets the M bit; otherwise this hop's
//!    metadata goes in front of the upstream stack, `remaining_hop_cnt` is
//!    decremented, and the shim, IPv4 and UDP lengths and the IPv4 and
//!    TCP/UDP checksums are updated.
//!
//! Inserting in the middle of the packet: the packet is grown at the tail
//! (`bpf_skb_change_tail`) and everything after the INT-MD header (upstream
//! stack and payload) is moved back by the metadata's length through a
//! per-CPU scratch buffer, like the MPLS pop does. The headers stay where
//! they are, so a `CHECKSUM_PARTIAL` skb's `csum_start` stays right, and the
//! same code works under an MPLS label (`bpf_skb_adjust_room` refuses
//! non-IP skbs). `ebpf/README.md` ("INT transit") compares this with
//! `bpf_skb_adjust_room` and gives the measured cost.
//!
//! Every packet whose INT is left alone for a reason, and every change, is
//! counted in `INT_EVENTS`; nothing here drops a packet except a helper
//! failing after the packet was grown (a half-rewritten packet must not
//! leave).

use aya_ebpf::{
    bindings::{BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, TC_ACT_OK, TC_ACT_SHOT},
    helpers::{
        bpf_check_mtu, bpf_csum_diff, bpf_ktime_get_ns, bpf_ktime_get_tai_ns, bpf_skb_change_tail,
        bpf_skb_load_bytes, bpf_skb_store_bytes,
    },
    macros::{classifier, map},
    maps::{Array, PerCpuArray},
    programs::TcContext,
};
use solyx_ebpf_common::int::{
    ingress_stamp, instruction_words, stamp_elapsed, IntConfig, IntEvent, PortQueueState,
    WatchRule, FABRIC_IP_MTU, INSTR_BUFFER, INSTR_CHECKSUM_COMPLEMENT, INSTR_EGRESS_TSTAMP,
    INSTR_HOP_LATENCY, INSTR_INGRESS_TSTAMP, INSTR_L1_PORTS, INSTR_L2_PORTS, INSTR_QUEUE,
    INSTR_SWITCH_ID, INSTR_TX_UTIL, INT_ALL_ONES_32, INT_CONFIG_SWITCH_ID_SET, INT_EVENT_SLOTS,
    INT_MARK_MAGIC, INT_MARK_MAGIC_MASK, INT_MAX_HOP_WORDS, INT_MAX_STACK_WORDS, INT_MD_HEADER_LEN,
    INT_MD_HEADER_WORDS, INT_PORT_SLOTS, INT_Q_OCCUPANCY_MAX, INT_SHIM_LEN, INT_TYPE_MD,
    INT_UNKNOWN_SWITCH_ID, INT_VERSION, INT_WATCHLIST_CAPACITY, INT_WATCHLIST_SLOTS,
    PORT_STATE_MAX_AGE_NS, WATCH_FLAG_MARK, WATCH_FLAG_VALID,
};
use solyx_ebpf_common::packet_io::CPU_PORT;
use solyx_ebpf_common::{Counter, DropReason, ETHERTYPE_IPV4, ETHERTYPE_MPLS};

use crate::{bounded_len, count, count_reason, PORT_OF_IFINDEX};

/// `INT_CONFIG`: switch ID and the active watchlist bank. Written by the
/// agent.
#[map(name = "INT_CONFIG")]
static INT_CONFIG: Array<IntConfig> = Array::with_max_entries(1, 0);

/// `INT_WATCHLIST`: two banks of rules sorted by priority. Written by the
/// agent.
#[map(name = "INT_WATCHLIST")]
static INT_WATCHLIST: Array<WatchRule> = Array::with_max_entries(INT_WATCHLIST_SLOTS, 0);

/// `INT_WATCH_HITS`: rule counter slot → packets/bytes, per CPU.
#[map(name = "INT_WATCH_HITS")]
static INT_WATCH_HITS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(INT_WATCHLIST_CAPACITY, 0);

/// `INT_SWITCH_HITS`: packets this hop added metadata to, per CPU.
#[map(name = "INT_SWITCH_HITS")]
static INT_SWITCH_HITS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(1, 0);

/// `INT_PORT_STATE`: P4 port → queue backlog, drain rate, TX utilisation.
/// Written by the agent's publisher.
#[map(name = "INT_PORT_STATE")]
static INT_PORT_STATE: Array<PortQueueState> = Array::with_max_entries(INT_PORT_SLOTS, 0);

/// `PORT_TX`: P4 port → packets/bytes sent, per CPU.
#[map(name = "PORT_TX")]
static PORT_TX: PerCpuArray<Counter> = PerCpuArray::with_max_entries(INT_PORT_SLOTS, 0);

/// `INT_EVENTS`: `IntEvent` index → packets, per CPU.
#[map(name = "INT_EVENTS")]
static INT_EVENTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(INT_EVENT_SLOTS, 0);

/// Largest number of bytes after the INT-MD header that an insertion can
/// move: above the fabric's 9000-byte IP MTU.
const SCRATCH_SIZE: usize = 9216;

/// Scratch space for the move, one slot per CPU; not pinned (no state).
#[map(name = "INT_SCRATCH")]
static INT_SCRATCH: PerCpuArray<[u8; SCRATCH_SIZE]> = PerCpuArray::with_max_entries(1, 0);

/// Ethernet header length (no VLAN tag in the frame, as in `main.rs`).
const ETH_HLEN: u32 = 14;
/// One MPLS label stack entry.
const MPLS_HLEN: u32 = 4;
/// IP protocol numbers.
const IP_PROTO_TCP: u8 = 6;
const IP_PROTO_UDP: u8 = 17;
/// Shim + INT-MD header, bytes.
const INT_HEADERS_LEN: u32 = (INT_SHIM_LEN + INT_MD_HEADER_LEN) as u32;
/// INT-MD header, first byte: the E (remaining hop count exceeded) bit...
const MD_E_BIT: u8 = 0x04;
/// ...and the M (MTU exceeded) bit.
const MD_M_BIT: u8 = 0x02;

/// Whether INT can apply to a packet now: `INT_CONFIG` says the active
/// watchlist bank holds a rule. One array lookup, no helper call.
#[inline(always)]
fn int_active() -> bool {
    INT_CONFIG.get(0).is_some_and(IntConfig::int_active)
}

/// Records the ingress time in `skb->mark` (layout in
/// `solyx_ebpf_common::int`) when INT can apply, else sets the mark to 0.
/// Called by `fabric_ingress` for every packet of a known port; the egress
/// program reads and clears it.
///
/// Without a watch rule no packet can be INT, so the clock is not read (the
/// mark is still reset: the fabric owns it on its ports either way). A rule
/// installed while a packet is between the hooks makes the egress program
/// see a marked packet without a stamp: it gets the "no ingress stamp"
/// values (hop latency = expected queueing delay only, ingress timestamp =
/// egress timestamp) and counts `NoIngressStamp`. A packet stamped before
/// the last rule went away has its stamp cleared at egress as usual.
#[inline(always)]
pub(crate) fn stamp_ingress(ctx: &TcContext) {
    if !int_active() {
        ctx.set_mark(0);
        return;
    }
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    ctx.set_mark(ingress_stamp(now));
}

/// What the egress program does with the packet.
enum Outcome {
    /// Send it on (changed or not).
    Pass,
    /// Drop it: a helper failed half-way through a rewrite.
    Drop,
}

/// The TC egress entry point.
#[classifier]
pub fn fabric_egress(ctx: TcContext) -> i32 {
    // SAFETY: context field reads of the `__sk_buff` the kernel passed in.
    let (ifindex, mark, ingress_ifindex, gso_size) = unsafe {
        let skb = ctx.skb.skb;
        (
            (*skb).ifindex,
            (*skb).mark,
            (*skb).ingress_ifindex,
            (*skb).gso_size,
        )
    };
    if mark & INT_MARK_MAGIC_MASK == INT_MARK_MAGIC {
        // The stamp is ours: it must not reach qdisc filters or the next
        // hop in the same namespace. Cleared whether or not INT still
        // applies (the last rule may have gone since ingress).
        ctx.set_mark(0);
    }

    // SAFETY: map values are only read; the agent writes whole values.
    let Some(port) = (unsafe { PORT_OF_IFINDEX.get(ifindex) }).map(|p| p.port) else {
        count_event(IntEvent::UnknownEgressPort);
        return TC_ACT_OK;
    };
    let len = ctx.len();
    count(PORT_TX.get_ptr_mut(u32::from(port)), len);
    // P4 `FabricEgress`: packets to the controller get no INT.
    if port == CPU_PORT {
        return TC_ACT_OK;
    }
    // The config is read once: the bank and its rule count come from the
    // same value.
    let Some(config) = INT_CONFIG.get(0).copied() else {
        return TC_ACT_OK;
    };
    // No watch rule: every packet would be `int_no_mark`, and no counter
    // but `PORT_TX` would change. Skip parsing, the scan and the clocks.
    if !config.int_active() {
        return TC_ACT_OK;
    }

    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let hop = Hop {
        egress_port: port,
        ingress_ifindex,
        watch_bank: config.watch_bank & 1,
        now,
        elapsed: stamp_elapsed(mark, now),
        gso: gso_size != 0,
        len,
    };
    match transit(&ctx, &hop) {
        Outcome::Pass => TC_ACT_OK,
        Outcome::Drop => {
            count_event(IntEvent::RewriteFailed);
            count_reason(DropReason::RewriteFailed);
            TC_ACT_SHOT
        }
    }
}

/// What the egress program knows about the packet before parsing it.
struct Hop {
    /// P4 port the packet leaves on.
    egress_port: u16,
    /// Interface the packet was received on (`skb->skb_iif`); 0 for
    /// locally generated packets.
    ingress_ifindex: u32,
    /// The active watchlist bank (0 or 1).
    watch_bank: u32,
    /// CLOCK_MONOTONIC now, ns.
    now: u64,
    /// Nanoseconds since the ingress stamp, if there was one.
    elapsed: Option<u64>,
    /// The skb is a GSO packet.
    gso: bool,
    /// The packet's length before any change.
    len: u32,
}

/// Offsets and fields of a TCP/UDP-in-IPv4 packet with an INT candidate.
struct Packet {
    /// Offset of the IPv4 header.
    l3: u32,
    /// IPv4 header length, bytes.
    ihl_bytes: u32,
    /// IPv4 total length.
    total_len: u16,
    /// More-fragments flag.
    more_fragments: bool,
    /// DSCP (6 bits).
    dscp: u8,
    /// Offset of the TCP/UDP header.
    l4: u32,
    /// UDP (else TCP).
    udp: bool,
    /// The UDP length field (UDP only).
    udp_len: u16,
    /// L4 destination port.
    dst_port: u16,
    /// Offset of the L4 checksum field.
    csum_off: u32,
    /// Offset of the INT shim (the first byte after the L4 header).
    int_off: u32,
    /// Bytes after the L4 header, from the IPv4 (TCP) or UDP length.
    payload_len: u32,
    /// The packet carries an MPLS label above IPv4.
    mpls: bool,
}

/// Parses the headers up to the INT candidate; `None` for anything that is
/// not (first-fragment) TCP or UDP in IPv4 with consistent lengths.
#[inline(always)]
fn parse(ctx: &TcContext) -> Option<Packet> {
    // TODO-completeness: frames with a VLAN tag in the data (QinQ, or a
    // tag the egress device does not offload) and label stacks deeper than
    // one are not parsed: such INT packets leave untouched. Cost: no INT
    // behind a tagged trunk.
    let ethertype = u16::from_be_bytes(ctx.load::<[u8; 2]>(12).ok()?);
    let (l3, mpls) = if ethertype == ETHERTYPE_IPV4 {
        (ETH_HLEN, false)
    } else if ethertype == ETHERTYPE_MPLS {
        let lse = u32::from_be_bytes(ctx.load::<[u8; 4]>(ETH_HLEN as usize).ok()?);
        // One label, bottom of stack (deeper stacks are dropped at ingress).
        if (lse >> 8) & 1 == 0 {
            return None;
        }
        (ETH_HLEN + MPLS_HLEN, true)
    } else {
        return None;
    };

    let ip = ctx.load::<[u8; 20]>(l3 as usize).ok()?;
    if ip[0] >> 4 != 4 {
        return None;
    }
    let ihl_bytes = u32::from(ip[0] & 0x0f) * 4;
    let total_len = u16::from_be_bytes([ip[2], ip[3]]);
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    // Only a first fragment (or an unfragmented packet) has an L4 header.
    if ihl_bytes < 20 || u32::from(total_len) < ihl_bytes || frag & 0x1fff != 0 {
        return None;
    }
    let ip_payload = u32::from(total_len) - ihl_bytes;
    let l4 = l3 + ihl_bytes;

    let (udp, udp_len, dst_port, l4_hdr_len, payload_len, csum_off) = match ip[9] {
        IP_PROTO_UDP => {
            let h = ctx.load::<[u8; 8]>(l4 as usize).ok()?;
            let udp_len = u16::from_be_bytes([h[4], h[5]]);
            if udp_len < 8 || u32::from(udp_len) > ip_payload {
                return None;
            }
            let port = u16::from_be_bytes([h[2], h[3]]);
            (true, udp_len, port, 8, u32::from(udp_len) - 8, l4 + 6)
        }
        IP_PROTO_TCP => {
            let h = ctx.load::<[u8; 14]>(l4 as usize).ok()?;
            let hdr_len = u32::from(h[12] >> 4) * 4;
            if hdr_len < 20 || hdr_len > ip_payload {
                return None;
            }
            let port = u16::from_be_bytes([h[2], h[3]]);
            (false, 0, port, hdr_len, ip_payload - hdr_len, l4 + 16)
        }
        _ => return None,
    };
    Some(Packet {
        l3,
        ihl_bytes,
        total_len,
        more_fragments: frag & 0x2000 != 0,
        dscp: ip[1] >> 2,
        l4,
        udp,
        udp_len,
        dst_port,
        csum_off,
        int_off: l4 + l4_hdr_len,
        payload_len,
        mpls,
    })
}

/// The INT transit hop: the P4 `IntTransit` control's `apply` block.
#[inline(always)]
fn transit(ctx: &TcContext, hop: &Hop) -> Outcome {
    let Some(p) = parse(ctx) else {
        return Outcome::Pass;
    };
    // Fewer than 16 bytes of payload: no room for a shim + INT-MD header,
    // so no candidate (P4 parser).
    if p.payload_len < INT_HEADERS_LEN {
        return Outcome::Pass;
    }
    if !watchlist_marks(hop.watch_bank, p.dscp, p.dst_port, hop.len) {
        return Outcome::Pass;
    }
    if p.more_fragments {
        count_event(IntEvent::Fragment);
        return Outcome::Pass;
    }
    let Ok(hdr) = ctx.load::<[u8; 16]>(p.int_off as usize) else {
        count_event(IntEvent::Truncated);
        return Outcome::Pass;
    };
    if hdr[0] >> 4 != INT_TYPE_MD || hdr[4] >> 4 != INT_VERSION {
        count_event(IntEvent::NotIntMd);
        return Outcome::Pass;
    }
    if hdr[7] == 0 {
        return set_md_flag(ctx, &p, &hdr, MD_E_BIT, IntEvent::HopCountExceeded);
    }

    // The P4 parser's length checks: header + stack within the bound, the
    // shim within the L4 payload; and the bytes must really be there.
    let shim_words = hdr[1];
    let int_len = u32::from(shim_words) * 4 + INT_SHIM_LEN as u32;
    if !(INT_MD_HEADER_WORDS..=INT_MD_HEADER_WORDS + INT_MAX_STACK_WORDS).contains(&shim_words)
        || int_len > p.payload_len
        || p.int_off + int_len > ctx.len()
    {
        count_event(IntEvent::LengthInvalid);
        return Outcome::Pass;
    }

    let bitmap = u16::from_be_bytes([hdr[8], hdr[9]]);
    let hop_ml = hdr[6] & 0x1f;
    let words = match instruction_words(bitmap) {
        Some(w) if w != 0 && w == hop_ml && u16::from(shim_words) + u16::from(w) <= 255 => w,
        _ => {
            count_event(IntEvent::Unsupported);
            return Outcome::Pass;
        }
    };
    // Each segment of a GSO packet would need its own metadata.
    // TODO-completeness: GSO packets (TSO/USO from a sender on the switch
    // itself, GRO-merged forwards) leave without this hop's metadata; they
    // would need BPF_F_ADJ_ROOM_FIXED_GSO and per-segment metadata, which
    // the qdisc-side segmentation cannot add. Cost: no INT for those flows.
    if hop.gso {
        count_event(IntEvent::Gso);
        return Outcome::Pass;
    }
    let bytes = u32::from(words) * 4;
    if u32::from(p.total_len) + bytes > u32::from(FABRIC_IP_MTU) || !fits_device_mtu(ctx, bytes) {
        return set_md_flag(ctx, &p, &hdr, MD_M_BIT, IntEvent::MtuExceeded);
    }
    insert(ctx, hop, &p, &hdr, bitmap, words)
}

/// Applies bank `bank` of `int_watchlist` to a packet with `dscp` and L4
/// destination port `port`: the first (highest priority) rule that matches decides; no match
/// is `int_no_mark`. Counts the rule's hit.
///
/// TODO-perf: while any rule is installed, a linear scan of up to 64 rules
/// for every TCP/UDP packet with 16 bytes of payload (measured: about 0.3 µs
/// per packet for the whole program with 1 rule); a hash on the exact-port
/// rules would skip it for most packets. Without rules the program stops
/// before parsing.
#[inline(always)]
fn watchlist_marks(bank: u32, dscp: u8, port: u16, len: u32) -> bool {
    let base = bank * INT_WATCHLIST_CAPACITY;
    let mut i = 0;
    while i < INT_WATCHLIST_CAPACITY {
        let Some(rule) = INT_WATCHLIST.get(base + i) else {
            return false;
        };
        let rule = *rule;
        if rule.flags & WATCH_FLAG_VALID == 0 {
            return false;
        }
        if rule.matches(dscp, port) {
            count(INT_WATCH_HITS.get_ptr_mut(u32::from(rule.counter)), len);
            return rule.flags & WATCH_FLAG_MARK != 0;
        }
        i += 1;
    }
    false
}

/// Whether the packet, `bytes` longer, still fits the egress device's MTU.
/// A failing helper (no device) counts as fitting: `FABRIC_IP_MTU` still
/// bounds the packet.
#[inline(always)]
fn fits_device_mtu(ctx: &TcContext, bytes: u32) -> bool {
    // 0: check the skb's own length (plus `bytes`) against the device of
    // the skb (ifindex 0), the egress interface here.
    let mut mtu_len: u32 = 0;
    // SAFETY: helper call on this program's skb with a pointer to a local.
    let ret = unsafe { bpf_check_mtu(ctx.skb.skb.cast(), 0, &mut mtu_len, bytes as i32, 0) };
    ret <= 0
}

/// Sets `flag` (E or M) in the INT-MD header and fixes the L4 checksum; the
/// packet keeps its length.
#[inline(always)]
fn set_md_flag(ctx: &TcContext, p: &Packet, hdr: &[u8; 16], flag: u8, event: IntEvent) -> Outcome {
    count_event(event);
    let old = [hdr[4], hdr[5], hdr[6], hdr[7]];
    let new = [hdr[4] | flag, hdr[5], hdr[6], hdr[7]];
    if old == new {
        return Outcome::Pass;
    }
    // The L4 checksum first: should it fail, the packet is still unchanged
    // and consistent.
    let replaced = ctx.l4_csum_replace(
        p.csum_off as usize,
        u64::from(u32::from_ne_bytes(old)),
        u64::from(u32::from_ne_bytes(new)),
        l4_flags(p) | 4,
    );
    if replaced.is_err() {
        count_event(IntEvent::RewriteFailed);
        return Outcome::Pass;
    }
    match ctx.store(p.int_off as usize + INT_SHIM_LEN, &new, 0) {
        Ok(()) => Outcome::Pass,
        // The checksum was changed for bytes that were not: drop.
        Err(_) => Outcome::Drop,
    }
}

/// `bpf_l4_csum_replace` flags for this packet's L4 protocol: a UDP
/// checksum of 0 means "none" and must stay 0 (and a computed 0 becomes
/// 0xffff).
#[inline(always)]
fn l4_flags(p: &Packet) -> u64 {
    if p.udp {
        u64::from(BPF_F_MARK_MANGLED_0)
    } else {
        0
    }
}

/// This hop's metadata words, in instruction-bit order, in network byte
/// order.
struct HopMetadata {
    words: [u32; INT_MAX_HOP_WORDS as usize],
    len: usize,
}

impl HopMetadata {
    /// Appends one word (host order in, network order stored).
    #[inline(always)]
    fn push(&mut self, word: u32) {
        if let Some(slot) = self.words.get_mut(self.len) {
            *slot = word.to_be();
            self.len += 1;
        }
    }

    /// Appends a 64-bit value as two words, most significant first.
    #[inline(always)]
    fn push64(&mut self, value: u64) {
        self.push((value >> 32) as u32);
        self.push(value as u32);
    }
}

/// Builds this hop's metadata for `bitmap` (the P4 `IntTransit` values, with
/// the eBPF sources documented in `ebpf/README.md`).
#[inline(always)]
fn hop_metadata(hop: &Hop, bitmap: u16) -> HopMetadata {
    let mut m = HopMetadata {
        words: [0; INT_MAX_HOP_WORDS as usize],
        len: 0,
    };
    let elapsed = match hop.elapsed {
        Some(ns) => ns,
        None => {
            count_event(IntEvent::NoIngressStamp);
            0
        }
    };
    let state = INT_PORT_STATE
        .get(u32::from(hop.egress_port))
        .copied()
        .filter(|s| {
            s.updated_ns != 0 && hop.now.saturating_sub(s.updated_ns) <= PORT_STATE_MAX_AGE_NS
        });
    if state.is_none() && bitmap & (INSTR_QUEUE | INSTR_TX_UTIL | INSTR_HOP_LATENCY) != 0 {
        count_event(IntEvent::StaleQueueState);
    }

    if bitmap & INSTR_SWITCH_ID != 0 {
        let switch_id = match INT_CONFIG.get(0) {
            Some(c) if c.flags & INT_CONFIG_SWITCH_ID_SET != 0 => c.switch_id,
            _ => INT_UNKNOWN_SWITCH_ID,
        };
        m.push(switch_id);
    }
    if bitmap & INSTR_L1_PORTS != 0 {
        // SAFETY: map values are only read.
        let ingress = (unsafe { PORT_OF_IFINDEX.get(hop.ingress_ifindex) })
            .map_or(0xffff, |p| u32::from(p.port));
        m.push((ingress << 16) | u32::from(hop.egress_port));
    }
    if bitmap & INSTR_HOP_LATENCY != 0 {
        // Time between the hooks plus the queueing delay the packet is about
        // to see: backlog / drain rate (the qdisc runs after this hook).
        let queueing = match state {
            Some(s) if s.drain_rate != 0 => {
                u64::from(s.backlog_bytes) * 1_000_000_000 / s.drain_rate
            }
            _ => 0,
        };
        let latency = elapsed.saturating_add(queueing);
        m.push(if latency > u64::from(u32::MAX) {
            u32::MAX
        } else {
            latency as u32
        });
    }
    if bitmap & INSTR_QUEUE != 0 {
        // Queue ID 0: one queue (the root qdisc) per port; occupancy in
        // bytes.
        // TODO-completeness: with an htb (or mq) root the occupancy is the
        // sum of all classes, not the class this packet will join, and the
        // queue ID is always 0. Cost: a flow in an idle class reports the
        // backlog of a busy one.
        let occupancy = match state {
            Some(s) if s.backlog_bytes < INT_Q_OCCUPANCY_MAX => s.backlog_bytes,
            _ => INT_Q_OCCUPANCY_MAX,
        };
        m.push(occupancy);
    }
    // SAFETY: helper without arguments.
    let egress_ts = unsafe { bpf_ktime_get_tai_ns() };
    if bitmap & INSTR_INGRESS_TSTAMP != 0 {
        m.push64(egress_ts.wrapping_sub(elapsed));
    }
    if bitmap & INSTR_EGRESS_TSTAMP != 0 {
        m.push64(egress_ts);
    }
    if bitmap & INSTR_L2_PORTS != 0 {
        // No logical (level-2) ports on this switch.
        m.push(INT_ALL_ONES_32);
        m.push(INT_ALL_ONES_32);
    }
    if bitmap & INSTR_TX_UTIL != 0 {
        m.push(state.map_or(INT_ALL_ONES_32, |s| s.tx_util_kbps));
    }
    if bitmap & INSTR_BUFFER != 0 {
        // No shared buffer statistics: buffer ID and occupancy all ones.
        m.push(INT_ALL_ONES_32);
    }
    if bitmap & INSTR_CHECKSUM_COMPLEMENT != 0 {
        // The L4 checksum is updated instead (as in the P4 program).
        m.push(INT_ALL_ONES_32);
    }
    m
}

/// Pushes this hop's metadata after the INT-MD header and updates lengths
/// and checksums.
#[inline(always)]
fn insert(
    ctx: &TcContext,
    hop: &Hop,
    p: &Packet,
    hdr: &[u8; 16],
    bitmap: u16,
    words: u8,
) -> Outcome {
    let mut meta = hop_metadata(hop, bitmap);
    let bytes = u32::from(words) * 4;
    // `words` is the bitmap's word count and the metadata has exactly that
    // many; the bound makes the helper sizes provable.
    let Some(bytes) = bounded_len(bytes, u32::from(INT_MAX_HOP_WORDS) * 4) else {
        count_event(IntEvent::Unsupported);
        return Outcome::Pass;
    };
    if meta.len * 4 != bytes as usize {
        count_event(IntEvent::Unsupported);
        return Outcome::Pass;
    }

    // Checksum of the inserted words; the moved bytes keep their sum (they
    // move by a multiple of 4 bytes, so their 16-bit alignment is the same).
    // SAFETY: `meta.words` holds `bytes` (<= its size) initialised bytes.
    let inserted_sum =
        unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, meta.words.as_mut_ptr(), bytes, 0) };
    if inserted_sum < 0 {
        count_event(IntEvent::RewriteFailed);
        return Outcome::Pass;
    }

    // New shim length and remaining hop count, and their checksum effect.
    let mut old_hdr = [0u32; 4];
    let mut new_hdr = [0u32; 4];
    let mut grown = *hdr;
    grown[1] = hdr[1].wrapping_add(words);
    grown[7] = hdr[7].wrapping_sub(1);
    let mut i = 0;
    while i < 4 {
        let o = i * 4;
        old_hdr[i] = u32::from_ne_bytes([hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]]);
        new_hdr[i] = u32::from_ne_bytes([grown[o], grown[o + 1], grown[o + 2], grown[o + 3]]);
        i += 1;
    }
    // SAFETY: both arrays are 16 initialised bytes on the stack.
    let l4_diff = unsafe {
        bpf_csum_diff(
            old_hdr.as_mut_ptr(),
            16,
            new_hdr.as_mut_ptr(),
            16,
            inserted_sum as u32,
        )
    };
    if l4_diff < 0 {
        count_event(IntEvent::RewriteFailed);
        return Outcome::Pass;
    }

    // Everything after the INT-MD header moves back by `bytes`: copy it out
    // before the packet changes, so that a failure here leaves it intact.
    let insert_off = p.int_off + INT_HEADERS_LEN;
    let old_len = ctx.len();
    let tail = old_len.wrapping_sub(insert_off);
    let Some(scratch) = INT_SCRATCH.get_ptr_mut(0) else {
        count_event(IntEvent::RewriteFailed);
        return Outcome::Pass;
    };
    let moved = if tail == 0 {
        None
    } else {
        let Some(moved) = bounded_len(tail, SCRATCH_SIZE as u32) else {
            count_event(IntEvent::Unsupported);
            return Outcome::Pass;
        };
        // SAFETY: helper call on this program's skb; the scratch slot
        // belongs to this CPU while the program runs and holds `moved`
        // bytes.
        if unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), insert_off, scratch.cast(), moved) } != 0
        {
            count_event(IntEvent::RewriteFailed);
            return Outcome::Pass;
        }
        Some(moved)
    };
    // SAFETY: helper call on this program's skb.
    if unsafe { bpf_skb_change_tail(ctx.skb.skb, old_len + bytes, 0) } != 0 {
        // Not grown: the packet is as it was.
        count_event(IntEvent::RewriteFailed);
        return Outcome::Pass;
    }

    // From here on a failure leaves a broken packet: drop it.
    if let Some(moved) = moved {
        // SAFETY: helper call on this program's skb; `scratch` holds `moved`
        // valid bytes.
        let stored = unsafe {
            bpf_skb_store_bytes(ctx.skb.skb, insert_off + bytes, scratch.cast(), moved, 0)
        };
        if stored != 0 {
            return Outcome::Drop;
        }
    }
    // SAFETY: helper call on this program's skb; `meta.words` holds `bytes`
    // valid bytes.
    let stored = unsafe {
        bpf_skb_store_bytes(
            ctx.skb.skb,
            insert_off,
            meta.words.as_mut_ptr().cast(),
            bytes,
            0,
        )
    };
    if stored != 0 {
        return Outcome::Drop;
    }
    if update_headers(ctx, p, &grown, bytes, l4_diff as u32).is_err() {
        return Outcome::Drop;
    }

    count(INT_SWITCH_HITS.get_ptr_mut(0), hop.len);
    count_event(IntEvent::Inserted);
    if p.mpls {
        count_event(IntEvent::UnderMplsLabel);
    }
    Outcome::Pass
}

/// Writes the grown shim/INT-MD header and the new lengths, and fixes the
/// L4 and IPv4 checksums. `l4_diff` is the checksum difference of the
/// inserted words and the shim/INT-MD header change.
#[inline(always)]
fn update_headers(
    ctx: &TcContext,
    p: &Packet,
    grown: &[u8; 16],
    bytes: u32,
    l4_diff: u32,
) -> Result<(), ()> {
    let flags = l4_flags(p);
    // Size 0: `to` is a checksum difference (`bpf_csum_diff`).
    ctx.l4_csum_replace(p.csum_off as usize, 0, u64::from(l4_diff), flags)
        .map_err(|_| ())?;
    ctx.store(p.int_off as usize, grown, 0).map_err(|_| ())?;

    let grow = bytes as u16;
    if p.udp {
        // The UDP length is in the header and in the pseudo-header: both
        // enter the checksum.
        let old = u64::from(p.udp_len.to_be());
        let new_len = p.udp_len.wrapping_add(grow);
        let new = u64::from(new_len.to_be());
        ctx.l4_csum_replace(p.csum_off as usize, old, new, flags | 2)
            .map_err(|_| ())?;
        ctx.l4_csum_replace(
            p.csum_off as usize,
            old,
            new,
            flags | u64::from(BPF_F_PSEUDO_HDR) | 2,
        )
        .map_err(|_| ())?;
        ctx.store(p.l4 as usize + 4, &new_len.to_be_bytes(), 0)
            .map_err(|_| ())?;
    } else {
        // TCP has no length field; the pseudo-header's length is the IPv4
        // payload length.
        let old_len = (p.total_len as u32).wrapping_sub(p.ihl_bytes) as u16;
        let old = u64::from(old_len.to_be());
        let new = u64::from(old_len.wrapping_add(grow).to_be());
        ctx.l4_csum_replace(
            p.csum_off as usize,
            old,
            new,
            flags | u64::from(BPF_F_PSEUDO_HDR) | 2,
        )
        .map_err(|_| ())?;
    }

    let new_total = p.total_len.wrapping_add(grow);
    ctx.l3_csum_replace(
        p.l3 as usize + 10,
        u64::from(p.total_len.to_be()),
        u64::from(new_total.to_be()),
        2,
    )
    .map_err(|_| ())?;
    ctx.store(p.l3 as usize + 2, &new_total.to_be_bytes(), 0)
        .map_err(|_| ())
}

/// Counts one packet for `event`.
#[inline(always)]
fn count_event(event: IntEvent) {
    if let Some(c) = INT_EVENTS.get_ptr_mut(event.index()) {
        // SAFETY: per-CPU slot, written only by this CPU while the program
        // runs.
        unsafe { *c += 1 };
    }
}
