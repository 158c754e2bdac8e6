//! INT-MD transit (INT v2.1, "INT over TCP/UDP"): the maps of the fabric
//! egress program, their keys and values, the wire constants of the INT
//! headers, and the few computations that the program and the agent must do
//! alike (the instruction bitmap's word count, the ingress stamp carried in
//! `skb->mark`).
//!
//! The P4 specification is `p4/solyx_fabric/include/control/int_transit.p4`
//! (tables `FabricEgress.int_switch_config` and `FabricEgress.int_watchlist`)
//! with the headers of `include/header.p4`; `ebpf/README.md` ("INT transit")
//! documents the eBPF implementation, its clocks and approximations.
//!
//! Every type is `#[repr(C)]`, `Copy` and without implicit padding (see the
//! crate documentation); the sizes are pinned at the bottom of this file.

use crate::MAX_PORTS;

/// Name of the INT configuration: index 0 → [`IntConfig`].
///
/// A `BPF_MAP_TYPE_ARRAY` of one slot. Written by the agent (the default
/// action of the P4 table `int_switch_config`, and the active watchlist
/// bank and its rule count); read by both programs on every packet.
pub const MAP_INT_CONFIG: &str = "INT_CONFIG";
/// Name of the INT watchlist: slot → [`WatchRule`].
///
/// A `BPF_MAP_TYPE_ARRAY` of [`INT_WATCHLIST_SLOTS`] slots: two banks of
/// [`INT_WATCHLIST_CAPACITY`] rules (the P4 table `int_watchlist`), sorted
/// by descending priority, the first slot without [`WATCH_FLAG_VALID`]
/// ending a bank. The agent rewrites the inactive bank and then flips
/// [`IntConfig::watch_bank`], so that the program never sees a half-written
/// rule set.
pub const MAP_INT_WATCHLIST: &str = "INT_WATCHLIST";
/// Name of the watchlist hit counters: [`WatchRule::counter`] → [`Counter`].
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` of [`INT_WATCHLIST_CAPACITY`] slots (the P4
/// direct counter `int_watchlist_counter`). The agent gives every rule a slot
/// that stays its own while the rule exists, and zeroes it when a new rule
/// takes it.
///
/// [`Counter`]: crate::Counter
pub const MAP_INT_WATCH_HITS: &str = "INT_WATCH_HITS";
/// Name of the `int_switch_config` hit counter: index 0 → [`Counter`]:
/// packets this hop added its metadata to (the P4 table is applied exactly
/// then).
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` of one slot (the P4 direct counter
/// `int_switch_config_counter`).
///
/// [`Counter`]: crate::Counter
pub const MAP_INT_SWITCH_HITS: &str = "INT_SWITCH_HITS";
/// Name of the per-port queue state: P4 port number → [`PortQueueState`].
///
/// A `BPF_MAP_TYPE_ARRAY` of [`MAX_PORTS`] slots. Written by the agent's
/// queue publisher every few milliseconds (qdisc backlog and rate, TX
/// utilisation); read by the egress program for the queue occupancy, hop
/// latency and TX utilisation metadata.
pub const MAP_INT_PORT_STATE: &str = "INT_PORT_STATE";
/// Name of the per-port transmit counters: P4 port number → [`Counter`].
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` of [`MAX_PORTS`] slots (the P4 counter
/// `FabricEgress.egress_port_counter`). Written by the egress program for
/// every packet leaving a known port, before INT changes it; read by the
/// agent.
///
/// [`Counter`]: crate::Counter
pub const MAP_PORT_TX: &str = "PORT_TX";
/// Name of the INT event counters: [`IntEvent`] as `u32` index → packets
/// (`u64`).
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` of [`INT_EVENT_SLOTS`] slots. Written by
/// the egress program, read by the agent.
pub const MAP_INT_EVENTS: &str = "INT_EVENTS";

/// Every pinned map of the egress program, in the order the agent pins
/// them.
pub const INT_MAPS: [&str; 7] = [
    MAP_INT_CONFIG,
    MAP_INT_WATCHLIST,
    MAP_INT_WATCH_HITS,
    MAP_INT_SWITCH_HITS,
    MAP_INT_PORT_STATE,
    MAP_PORT_TX,
    MAP_INT_EVENTS,
];

/// Name of the TC egress program (the ELF function) in the fabric object.
pub const PROG_FABRIC_EGRESS: &str = "fabric_egress";

/// Rules of one watchlist bank (P4 `INT_WATCHLIST_TABLE_SIZE`).
pub const INT_WATCHLIST_CAPACITY: u32 = 64;
/// Slots of `INT_WATCHLIST`: two banks.
pub const INT_WATCHLIST_SLOTS: u32 = 2 * INT_WATCHLIST_CAPACITY;
/// Slots of `INT_EVENTS`.
pub const INT_EVENT_SLOTS: u32 = 32;
/// Port slots of `INT_PORT_STATE` and `PORT_TX`.
pub const INT_PORT_SLOTS: u32 = MAX_PORTS;

/// INT shim `type` of INT-MD (P4 `INT_TYPE_MD`).
pub const INT_TYPE_MD: u8 = 1;
/// INT-MD header version (P4 `INT_VERSION`).
pub const INT_VERSION: u8 = 2;
/// Length of the INT shim header for TCP/UDP, bytes.
pub const INT_SHIM_LEN: usize = 4;
/// Length of the INT-MD metadata header, bytes.
pub const INT_MD_HEADER_LEN: usize = 12;
/// Length of the INT-MD metadata header in 4-byte words; the shim's length
/// field counts this header plus the metadata stack, not the shim itself.
pub const INT_MD_HEADER_WORDS: u8 = 3;
/// Longest upstream metadata stack this hop accepts, in words (P4
/// `INT_MAX_STACK_WORDS`).
pub const INT_MAX_STACK_WORDS: u8 = 96;
/// IP MTU of the fabric links (P4 `FABRIC_IP_MTU`); the egress device's MTU
/// applies too, whichever is smaller.
pub const FABRIC_IP_MTU: u16 = 9000;
/// The most words one hop can add: bits 0–3, 7, 8 and 15 one word each,
/// bits 4–6 two.
pub const INT_MAX_HOP_WORDS: u8 = 13;
/// Switch ID reported until the control plane sets one (P4
/// `INT_UNKNOWN_SWITCH_ID`).
pub const INT_UNKNOWN_SWITCH_ID: u32 = 0xffff_ffff;
/// The reserved "not available" value of a 32-bit metadata word.
pub const INT_ALL_ONES_32: u32 = 0xffff_ffff;
/// The largest queue occupancy the 24-bit field carries; also the reserved
/// "not available" value when the queue state is stale.
pub const INT_Q_OCCUPANCY_MAX: u32 = 0x00ff_ffff;

/// Instruction bitmap bits (bit 0 is the most significant bit of the 16-bit
/// field): switch ID.
pub const INSTR_SWITCH_ID: u16 = 1 << 15;
/// Level-1 ingress and egress port IDs (16 + 16 bits).
pub const INSTR_L1_PORTS: u16 = 1 << 14;
/// Hop latency (32 bits).
pub const INSTR_HOP_LATENCY: u16 = 1 << 13;
/// Queue ID (8 bits) and occupancy (24 bits).
pub const INSTR_QUEUE: u16 = 1 << 12;
/// Ingress timestamp (64 bits).
pub const INSTR_INGRESS_TSTAMP: u16 = 1 << 11;
/// Egress timestamp (64 bits).
pub const INSTR_EGRESS_TSTAMP: u16 = 1 << 10;
/// Level-2 ingress and egress port IDs (32 + 32 bits).
pub const INSTR_L2_PORTS: u16 = 1 << 9;
/// Egress port TX utilisation (32 bits).
pub const INSTR_TX_UTIL: u16 = 1 << 8;
/// Buffer ID (8 bits) and occupancy (24 bits).
pub const INSTR_BUFFER: u16 = 1 << 7;
/// Bits 9–14: reserved; a hop that sees one set adds nothing.
pub const INSTR_RESERVED: u16 = 0x007e;
/// Checksum complement (32 bits), always the hop's last word.
pub const INSTR_CHECKSUM_COMPLEMENT: u16 = 1 << 0;

/// Words a hop adds for instruction `bitmap`, or `None` when a reserved
/// bit (9–14) is set (P4: `can_insert` is false then).
#[must_use]
pub const fn instruction_words(bitmap: u16) -> Option<u8> {
    if bitmap & INSTR_RESERVED != 0 {
        return None;
    }
    let one_word = INSTR_SWITCH_ID
        | INSTR_L1_PORTS
        | INSTR_HOP_LATENCY
        | INSTR_QUEUE
        | INSTR_TX_UTIL
        | INSTR_BUFFER
        | INSTR_CHECKSUM_COMPLEMENT;
    let two_words = INSTR_INGRESS_TSTAMP | INSTR_EGRESS_TSTAMP | INSTR_L2_PORTS;
    Some(((bitmap & one_word).count_ones() + 2 * (bitmap & two_words).count_ones()) as u8)
}

/// `skb->mark` layout of the ingress stamp: bits 31–28 hold this magic...
pub const INT_MARK_MAGIC: u32 = 0xa000_0000;
/// ...selected by this mask...
pub const INT_MARK_MAGIC_MASK: u32 = 0xf000_0000;
/// ...and bits 27–0 the ingress time (`bpf_ktime_get_ns`, CLOCK_MONOTONIC)
/// in units of `1 << INT_MARK_TIME_SHIFT` ns, modulo 2^28: 16 ns resolution,
/// a range of 2^32 ns (4.29 s) before the difference wraps.
pub const INT_MARK_TIME_MASK: u32 = 0x0fff_ffff;
/// Nanoseconds per stamp unit, as a shift.
pub const INT_MARK_TIME_SHIFT: u32 = 4;

/// The `skb->mark` value the ingress program writes at monotonic time
/// `mono_ns`.
#[must_use]
pub const fn ingress_stamp(mono_ns: u64) -> u32 {
    INT_MARK_MAGIC | ((mono_ns >> INT_MARK_TIME_SHIFT) as u32 & INT_MARK_TIME_MASK)
}

/// Nanoseconds between the ingress stamp in `mark` and monotonic time
/// `now_ns`, or `None` when `mark` is not a stamp. Exact to one stamp unit
/// (16 ns) for packets that spent less than 4.29 s between the hooks.
#[must_use]
pub const fn stamp_elapsed(mark: u32, now_ns: u64) -> Option<u64> {
    if mark & INT_MARK_MAGIC_MASK != INT_MARK_MAGIC {
        return None;
    }
    let now_units = (now_ns >> INT_MARK_TIME_SHIFT) as u32;
    let units = now_units.wrapping_sub(mark) & INT_MARK_TIME_MASK;
    Some((units as u64) << INT_MARK_TIME_SHIFT)
}

/// [`IntConfig::flags`]: `switch_id` was set by the control plane; without
/// it the program reports [`INT_UNKNOWN_SWITCH_ID`] (a fresh map is zeroed,
/// and 0 is a valid switch ID).
pub const INT_CONFIG_SWITCH_ID_SET: u32 = 1 << 0;

/// Value of `INT_CONFIG[0]`.
///
/// Written by the agent, read by the egress program (and by the ingress
/// program for [`IntConfig::int_active`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IntConfig {
    /// This hop's switch ID (P4 action `int_set_switch_id(switch_id)`),
    /// valid with [`INT_CONFIG_SWITCH_ID_SET`].
    pub switch_id: u32,
    /// `INT_CONFIG_*` bits.
    pub flags: u32,
    /// The watchlist bank the program reads: 0 or 1 (only bit 0 counts).
    pub watch_bank: u32,
    /// Number of rules in the active bank, written with `watch_bank` in the
    /// same value. 0: no packet can be INT, so the ingress program leaves
    /// no stamp and the egress program only counts `PORT_TX` (see
    /// [`IntConfig::int_active`]).
    pub watch_rules: u32,
}

impl IntConfig {
    /// Whether INT can apply to a packet: the active watchlist bank holds at
    /// least one rule. Without one nothing is stamped, parsed or scanned.
    #[must_use]
    pub const fn int_active(&self) -> bool {
        self.watch_rules != 0
    }
}

/// [`WatchRule::flags`]: the slot holds a rule; the first slot without it
/// ends the bank.
pub const WATCH_FLAG_VALID: u8 = 1 << 0;
/// [`WatchRule::flags`]: the rule's action is `int_mark_int` (without it,
/// `int_no_mark`).
pub const WATCH_FLAG_MARK: u8 = 1 << 1;

/// One `int_watchlist` entry (ternary on DSCP and L4 destination port).
///
/// A packet matches when `dscp & dscp_mask == dscp` of the rule and likewise
/// for the port; values are stored masked. Written by the agent, read by the
/// egress program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WatchRule {
    /// `WATCH_FLAG_*` bits.
    pub flags: u8,
    /// DSCP value (6 bits), already masked.
    pub dscp: u8,
    /// DSCP mask (6 bits); 0 matches any DSCP.
    pub dscp_mask: u8,
    /// Slot of the rule's hit counter in `INT_WATCH_HITS`.
    pub counter: u8,
    /// L4 destination port, already masked (host byte order).
    pub l4_dst_port: u16,
    /// L4 destination port mask; 0 matches any port.
    pub l4_dst_port_mask: u16,
    /// P4Runtime priority (higher wins); the bank is sorted by it already,
    /// the program does not read it.
    pub priority: u32,
    /// Reserved, 0.
    pub _reserved: u32,
}

impl WatchRule {
    /// Whether a packet with `dscp` and L4 destination port `port` matches.
    #[must_use]
    pub const fn matches(&self, dscp: u8, port: u16) -> bool {
        dscp & self.dscp_mask == self.dscp && port & self.l4_dst_port_mask == self.l4_dst_port
    }
}

/// Value of `INT_PORT_STATE[port]`: what the agent last saw of the port's
/// egress queue and transmit rate.
///
/// Written by the agent's queue publisher, read by the egress program. A
/// state whose `updated_ns` is 0 or more than [`PORT_STATE_MAX_AGE_NS`] old
/// is stale: the program then reports the reserved values for queue
/// occupancy and TX utilisation and adds no queueing delay.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortQueueState {
    /// Bytes in the port's root qdisc (`tc -s qdisc`: backlog).
    pub backlog_bytes: u32,
    /// Packets in the port's root qdisc.
    pub backlog_packets: u32,
    /// Bytes per second the queue drains at (the tbf rate, or the rate the
    /// qdisc sent at over the last window); 0 when unknown.
    pub drain_rate: u64,
    /// Transmit utilisation over the last window, in kbit/s.
    pub tx_util_kbps: u32,
    /// Reserved, 0.
    pub _reserved: u32,
    /// CLOCK_MONOTONIC time of the sample, ns (the clock of
    /// `bpf_ktime_get_ns`); 0: never published.
    pub updated_ns: u64,
}

/// Age past which a [`PortQueueState`] is stale: 1 s.
pub const PORT_STATE_MAX_AGE_NS: u64 = 1_000_000_000;

/// Index into `INT_EVENTS`: what the egress program did with an INT packet
/// (one that `int_watchlist` marked), or why it left it alone.
///
/// Packets that carry no INT candidate, or that the watchlist does not
/// mark, are not counted.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntEvent {
    /// This hop pushed its metadata.
    Inserted = 1,
    /// `remaining_hop_cnt` was 0: the E bit was set, nothing added.
    HopCountExceeded = 2,
    /// The metadata would have exceeded the IP MTU (fabric or egress
    /// device): the M bit was set, nothing added.
    MtuExceeded = 3,
    /// The shim's type is not INT-MD or the version is not 2: untouched.
    NotIntMd = 4,
    /// The shim length is outside `3..=99` words or reaches past the L4
    /// payload or the packet: untouched.
    LengthInvalid = 5,
    /// The packet ends inside the shim or INT-MD header: untouched.
    Truncated = 6,
    /// Instructions this hop cannot honour (a reserved bit, `hop_ml`
    /// different from the instructions' word count, no instruction, a shim
    /// length that would overflow, a payload too long to move): untouched.
    Unsupported = 7,
    /// A GSO packet (several segments in one skb; each segment would need
    /// its own metadata): untouched.
    Gso = 8,
    /// A first fragment (MF set): growing it would break reassembly;
    /// untouched.
    Fragment = 9,
    /// Metadata was added, but the packet had no ingress stamp (it did not
    /// pass the fabric ingress program): ingress timestamp = egress
    /// timestamp, hop latency = expected queueing delay only.
    NoIngressStamp = 10,
    /// Metadata was added with a stale or missing `INT_PORT_STATE`: queue
    /// occupancy and TX utilisation sent as the reserved all-ones value.
    StaleQueueState = 11,
    /// A packet helper failed after the packet was grown: the packet was
    /// dropped (also counted as `DropReason::RewriteFailed`). A failure
    /// before any change leaves the packet untouched and is counted here
    /// too.
    RewriteFailed = 12,
    /// The egress interface has no `PORT_OF_IFINDEX` entry: not counted on
    /// a port, untouched (counted for every packet, INT or not).
    UnknownEgressPort = 13,
    /// INT was updated under an MPLS label (informational).
    UnderMplsLabel = 14,
}

impl IntEvent {
    /// Every event, in index order.
    pub const ALL: [Self; 14] = [
        Self::Inserted,
        Self::HopCountExceeded,
        Self::MtuExceeded,
        Self::NotIntMd,
        Self::LengthInvalid,
        Self::Truncated,
        Self::Unsupported,
        Self::Gso,
        Self::Fragment,
        Self::NoIngressStamp,
        Self::StaleQueueState,
        Self::RewriteFailed,
        Self::UnknownEgressPort,
        Self::UnderMplsLabel,
    ];

    /// The index into `INT_EVENTS`.
    #[must_use]
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// A stable snake_case name, for metrics and logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Inserted => "inserted",
            Self::HopCountExceeded => "hop_count_exceeded",
            Self::MtuExceeded => "mtu_exceeded",
            Self::NotIntMd => "not_int_md",
            Self::LengthInvalid => "length_invalid",
            Self::Truncated => "truncated",
            Self::Unsupported => "unsupported",
            Self::Gso => "gso",
            Self::Fragment => "fragment",
            Self::NoIngressStamp => "no_ingress_stamp",
            Self::StaleQueueState => "stale_queue_state",
            Self::RewriteFailed => "rewrite_failed",
            Self::UnknownEgressPort => "unknown_egress_port",
            Self::UnderMplsLabel => "under_mpls_label",
        }
    }
}

// Layout pins: a change here changes the maps' value sizes.
const _: () = assert!(core::mem::size_of::<IntConfig>() == 16);
const _: () = assert!(core::mem::size_of::<WatchRule>() == 16);
const _: () = assert!(core::mem::size_of::<PortQueueState>() == 32);
const _: () = assert!(INT_WATCHLIST_CAPACITY <= 256, "WatchRule::counter is a u8");
const _: () = {
    let mut i = 0;
    while i < IntEvent::ALL.len() {
        assert!(IntEvent::ALL[i].index() < INT_EVENT_SLOTS);
        i += 1;
    }
};
const _: () = assert!(match instruction_words(0xff81) {
    Some(words) => words == INT_MAX_HOP_WORDS,
    None => false,
});

#[cfg(feature = "user")]
#[allow(unsafe_code)]
mod pod {
    //! `aya::Pod` for the INT map values.

    use super::{IntConfig, PortQueueState, WatchRule};

    // SAFETY: `aya::Pod` requires a type that can be copied byte for byte
    // and for which every bit pattern is valid. Each type is `#[repr(C)]`,
    // `Copy`, made only of integers, and has no implicit padding (sizes
    // pinned above: 16, 16 and 32 bytes are the sums of the fields).
    unsafe impl aya::Pod for IntConfig {}
    // SAFETY: see above.
    unsafe impl aya::Pod for WatchRule {}
    // SAFETY: see above.
    unsafe impl aya::Pod for PortQueueState {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_words_follow_the_p4_count() {
        assert_eq!(instruction_words(0), Some(0));
        assert_eq!(instruction_words(INSTR_SWITCH_ID), Some(1));
        assert_eq!(instruction_words(INSTR_INGRESS_TSTAMP), Some(2));
        // Bits 0-5 and 7: 4 + 2 + 2 + 1.
        assert_eq!(instruction_words(0xfd00), Some(9));
        // Every implemented bit.
        assert_eq!(instruction_words(0xff81), Some(INT_MAX_HOP_WORDS));
        for reserved in 9..=14 {
            assert_eq!(
                instruction_words(1 << (15 - reserved)),
                None,
                "bit {reserved}"
            );
        }
    }

    #[test]
    fn stamps_measure_elapsed_time() {
        let t0 = 123_456_789_012_345u64;
        let mark = ingress_stamp(t0);
        assert_eq!(mark & INT_MARK_MAGIC_MASK, INT_MARK_MAGIC);
        assert_eq!(stamp_elapsed(mark, t0), Some(0));
        // Exact to one 16 ns unit.
        let elapsed = stamp_elapsed(mark, t0 + 1_000_000).unwrap_or(0);
        assert!(elapsed.abs_diff(1_000_000) < 16, "{elapsed}");
        // Across a wrap of the 28-bit field.
        let near_wrap = (u64::from(INT_MARK_TIME_MASK) << INT_MARK_TIME_SHIFT) + 5;
        let mark = ingress_stamp(near_wrap);
        let elapsed = stamp_elapsed(mark, near_wrap + 3_000).unwrap_or(0);
        assert!(elapsed.abs_diff(3_000) < 16, "{elapsed}");
        // Not a stamp.
        assert_eq!(stamp_elapsed(0, t0), None);
        assert_eq!(stamp_elapsed(0x1234_5678, t0), None);
    }

    #[test]
    fn watch_rules_match_ternary() {
        let rule = WatchRule {
            flags: WATCH_FLAG_VALID | WATCH_FLAG_MARK,
            dscp: 0x20,
            dscp_mask: 0x20,
            l4_dst_port: 4791,
            l4_dst_port_mask: 0xffff,
            ..WatchRule::default()
        };
        assert!(rule.matches(0x2e, 4791));
        assert!(!rule.matches(0x0e, 4791));
        assert!(!rule.matches(0x2e, 4792));
        assert!(WatchRule::default().matches(0x3f, 1), "all-wildcard rule");
    }
}
