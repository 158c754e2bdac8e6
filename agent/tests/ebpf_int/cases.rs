//! The test-run cases: what each expects, the frames they carry, the
//! queue state and watchlist of the runs, and the checks of the output.

use super::*;

/// What a case expects of the program.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Expect {
    /// This hop's metadata pushed.
    Inserted,
    /// Only the first INT-MD byte (and the L4 checksum) changed: E or M set.
    Flag(u8),
    /// Byte for byte the input.
    Untouched,
}

/// One test-run case.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) frame: Frame,
    pub(crate) expect: Expect,
    /// The event the case adds to (besides `Inserted`).
    pub(crate) event: Option<IntEvent>,
    /// Truncate the built frame to this many bytes.
    pub(crate) cut: Option<usize>,
    /// Carries an ingress stamp `STAMP_AGE_NS` old.
    pub(crate) stamped: bool,
    /// Run as a GSO skb.
    pub(crate) gso: bool,
}

impl Case {
    pub(crate) fn new(name: &'static str, frame: Frame, expect: Expect) -> Self {
        Self {
            name,
            frame,
            expect,
            event: None,
            cut: None,
            stamped: true,
            gso: false,
        }
    }

    pub(crate) fn event(self, event: IntEvent) -> Self {
        Self {
            event: Some(event),
            ..self
        }
    }

    pub(crate) fn cut(self, len: usize) -> Self {
        Self {
            cut: Some(len),
            ..self
        }
    }

    pub(crate) fn unstamped(self) -> Self {
        Self {
            stamped: false,
            ..self
        }
    }

    pub(crate) fn gso(self) -> Self {
        Self { gso: true, ..self }
    }

    /// The skb context of a run: the stamp is taken now.
    pub(crate) fn ctx(&self, ingress_ifindex: u32) -> SkbCtx {
        SkbCtx {
            mark: if self.stamped {
                ingress_stamp(monotonic_ns() - STAMP_AGE_NS)
            } else {
                0
            },
            ingress_ifindex,
            gso_segs: if self.gso { 2 } else { 0 },
            gso_size: if self.gso { 1000 } else { 0 },
        }
    }
}

pub(crate) const SWITCH_ID: u32 = 0x5111;
pub(crate) const FULL_BITMAP: u16 = 0xff81;
pub(crate) const BASE_BITMAP: u16 = INSTR_SWITCH_ID | INSTR_L1_PORTS;
pub(crate) const WATCHED_PORT: u16 = 5000;
pub(crate) const INGRESS_PORT: u16 = 7;
pub(crate) const EGRESS_PORT: u16 = 3;
pub(crate) const E_BIT: u8 = 0x04;
pub(crate) const M_BIT: u8 = 0x02;
/// Queue state published for the egress port in the test run: 3000 bytes
/// at 1 MB/s is 3 ms of expected queueing delay.
pub(crate) const BACKLOG: u32 = 3000;
pub(crate) const DRAIN_RATE: u64 = 1_000_000;
pub(crate) const QUEUE_DELAY_NS: u64 = 3_000_000;
pub(crate) const TX_UTIL: u32 = 12_345;
/// The ingress stamp the cases carry: this long before the run.
pub(crate) const STAMP_AGE_NS: u64 = 2_000_000;

/// The queue state of the test runs, sampled at `now`.
pub(crate) fn fresh_state(now: u64) -> PortQueueState {
    PortQueueState {
        backlog_bytes: BACKLOG,
        backlog_packets: 2,
        drain_rate: DRAIN_RATE,
        tx_util_kbps: TX_UTIL,
        _reserved: 0,
        updated_ns: now,
    }
}

/// A watched UDP frame with `int`.
pub(crate) fn watched(int: Int) -> Frame {
    Frame::udp(WATCHED_PORT, Some(int), b"hello-int")
}

/// `Int::md` with an upstream stack.
pub(crate) fn with_stack(bitmap: u16, hops: u8, stack: Vec<u32>) -> Int {
    Int {
        stack,
        ..Int::md(bitmap, hops)
    }
}

/// The table of test-run cases (the stale-state case runs apart).
pub(crate) fn cases() -> Vec<Case> {
    use Expect::{Flag, Inserted, Untouched};
    let upstream: Vec<u32> = (0..13).map(|i| 0xab00_0000 | i).collect();
    let base = || Int::md(BASE_BITMAP, 2);
    vec![
        Case::new(
            "udp, every instruction, one upstream hop",
            watched(with_stack(FULL_BITMAP, 4, upstream)),
            Inserted,
        ),
        Case::new(
            "udp without checksum, switch ID and ports",
            Frame {
                l4: L4::Udp { checksum: false },
                ..watched(Int::md(BASE_BITMAP, 1))
            },
            Inserted,
        ),
        Case::new(
            "tcp with options",
            Frame {
                l4: L4::Tcp {
                    options: vec![1, 1, 4, 2],
                },
                ..watched(Int::md(FULL_BITMAP, 2))
            },
            Inserted,
        ),
        Case::new(
            "under an MPLS label",
            Frame {
                label: Some(100),
                ..watched(with_stack(BASE_BITMAP, 3, vec![1, 2]))
            },
            Inserted,
        )
        .event(IntEvent::UnderMplsLabel),
        Case::new(
            "ipv4 options",
            Frame {
                ip_options: vec![1, 1, 1, 0],
                ..watched(Int::md(FULL_BITMAP, 2))
            },
            Inserted,
        ),
        Case::new(
            "watched by DSCP",
            Frame {
                dscp: 0x22,
                dst_port: 7000,
                ..watched(base())
            },
            Inserted,
        ),
        Case::new(
            "no ingress stamp",
            watched(Int::md(FULL_BITMAP, 2)),
            Inserted,
        )
        .unstamped()
        .event(IntEvent::NoIngressStamp),
        Case::new(
            "excluded by a higher-priority no_mark",
            Frame {
                dscp: 0x0a,
                ..watched(base())
            },
            Untouched,
        ),
        Case::new(
            "not watched",
            Frame::udp(6000, Some(base()), b"x"),
            Untouched,
        ),
        Case::new(
            "payload too short for INT",
            Frame::udp(WATCHED_PORT, None, b"0123456789"),
            Untouched,
        ),
        Case::new(
            "remaining hop count 0",
            watched(Int::md(FULL_BITMAP, 0)),
            Flag(E_BIT),
        )
        .event(IntEvent::HopCountExceeded),
        Case::new(
            "MTU of the egress device",
            Frame::udp(WATCHED_PORT, Some(Int::md(FULL_BITMAP, 2)), &[7u8; 1430]),
            Flag(M_BIT),
        )
        .event(IntEvent::MtuExceeded),
        Case::new(
            "INT version 1",
            watched(Int {
                version: 1,
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::NotIntMd),
        Case::new(
            "shim type INT-MX",
            watched(Int {
                shim_type: 3,
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::NotIntMd),
        Case::new(
            "hop_ml does not match the bitmap",
            watched(Int {
                hop_ml: 3,
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::Unsupported),
        Case::new(
            "reserved instruction bit",
            watched(Int {
                hop_ml: 2,
                ..Int::md(BASE_BITMAP | 0x0040, 2)
            }),
            Untouched,
        )
        .event(IntEvent::Unsupported),
        Case::new(
            "shim length past the packet",
            watched(Int {
                shim_len: Some(60),
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::LengthInvalid),
        Case::new(
            "shim length below the INT-MD header",
            watched(Int {
                shim_len: Some(2),
                ..base()
            }),
            Untouched,
        )
        .event(IntEvent::LengthInvalid),
        // The lengths claim 4 stack words; the frame ends after 2
        // (Ethernet 14 + IPv4 20 + UDP 8 + INT 16 + 8).
        Case::new(
            "stack cut short",
            watched(with_stack(BASE_BITMAP, 2, vec![1, 2, 3, 4])),
            Untouched,
        )
        .cut(14 + 20 + 8 + 16 + 8)
        .event(IntEvent::LengthInvalid),
        Case::new("INT header cut short", watched(base()), Untouched)
            .cut(14 + 20 + 8 + 10)
            .event(IntEvent::Truncated),
        Case::new(
            "first fragment",
            Frame {
                frag: 0x2000,
                ..watched(base())
            },
            Untouched,
        )
        .event(IntEvent::Fragment),
        Case::new("GSO packet", watched(base()), Untouched)
            .gso()
            .event(IntEvent::Gso),
    ]
}

/// Checks a frame whose E or M bit the program set.
pub(crate) fn check_flag(name: &str, input: &[u8], out: &[u8], bit: u8) {
    assert_eq!(out.len(), input.len(), "{name}: length");
    let p = parse(out);
    let (i, o) = (p.int(input), p.int(out));
    assert_eq!(o.flags, i.flags | bit, "{name}: flag");
    assert_eq!(o.shim_len, i.shim_len, "{name}");
    let differing: Vec<usize> = (0..out.len()).filter(|&k| out[k] != input[k]).collect();
    let flag_byte = p.int_off + 4;
    let csum = p.l4 + if p.udp { 6 } else { 16 };
    assert!(
        differing
            .iter()
            .all(|&k| k == flag_byte || k == csum || k == csum + 1),
        "{name}: only the flag and the checksum change: {differing:?}"
    );
    assert!(p.l4_ok(out), "{name}: L4 checksum");
}

/// Checks a frame the program pushed its metadata into; `tai` is the
/// CLOCK_TAI window of the run. Returns the bytes added.
pub(crate) fn check_inserted(case: &Case, input: &[u8], out: &[u8], tai: (u64, u64)) -> usize {
    let name = case.name;
    let pi = parse(input);
    let i = pi.int(input);
    let bitmap = case.frame.int.as_ref().map_or(0, |x| x.bitmap);
    let words = usize::from(words_of(bitmap));
    let bytes = words * 4;
    assert_eq!(out.len(), input.len() + bytes, "{name}: grown");
    let p = parse(out);
    let o = p.int(out);
    assert!(p.ipv4_ok(out), "{name}: IPv4 checksum");
    assert!(p.l4_ok(out), "{name}: L4 checksum");
    assert_eq!(p.total_len, pi.total_len + bytes, "{name}: total length");
    if p.udp {
        assert_eq!(
            p.udp_len(out),
            pi.udp_len(input) + bytes,
            "{name}: UDP length"
        );
        if pi.udp_checksum(input) == 0 {
            assert_eq!(p.udp_checksum(out), 0, "{name}: no checksum stays none");
        }
    }
    assert_eq!(
        usize::from(o.shim_len),
        usize::from(i.shim_len) + words,
        "{name}"
    );
    assert_eq!(o.remaining_hop_cnt, i.remaining_hop_cnt - 1, "{name}");
    assert_eq!(o.hop_ml, i.hop_ml, "{name}");
    assert_eq!(
        &o.stack[words..],
        &i.stack[..],
        "{name}: upstream stack after ours"
    );
    assert_eq!(o.payload, i.payload, "{name}: payload");
    assert_eq!(&out[..pi.l3], &input[..pi.l3], "{name}: L2 (and label)");

    let hop = decode_hop(bitmap, &o.stack[..words]);
    assert_eq!(hop.switch_id, Some(SWITCH_ID), "{name}");
    assert_eq!(hop.ports, Some((INGRESS_PORT, EGRESS_PORT)), "{name}");
    if bitmap != FULL_BITMAP {
        return bytes;
    }
    let (ingress, egress) = (hop.ingress_ts.unwrap_or(0), hop.egress_ts.unwrap_or(0));
    assert!(
        tai.0 <= egress && egress <= tai.1,
        "{name}: egress timestamp {egress} is CLOCK_TAI now ({tai:?})"
    );
    let latency = u64::from(hop.latency.unwrap_or(0));
    if case.stamped {
        let between = egress - ingress;
        assert!(
            (STAMP_AGE_NS..STAMP_AGE_NS + 1_000_000_000).contains(&between),
            "{name}: ingress {ingress} egress {egress}"
        );
        // Hop latency = time between the hooks + expected queueing delay.
        assert_eq!(latency, between + QUEUE_DELAY_NS, "{name}: hop latency");
    } else {
        assert_eq!(ingress, egress, "{name}: no stamp");
        assert_eq!(latency, QUEUE_DELAY_NS, "{name}: queueing delay only");
    }
    assert_eq!(hop.queue, Some((0, BACKLOG)), "{name}: queue");
    assert_eq!(hop.tx_util, Some(TX_UTIL), "{name}: TX utilisation");
    // Level-2 ports, buffer, checksum complement: all ones.
    assert_eq!(&o.stack[8..10], &[u32::MAX, u32::MAX], "{name}");
    assert_eq!(&o.stack[11..13], &[u32::MAX, u32::MAX], "{name}");
    eprintln!(
        "{name}: +{bytes} bytes, hop latency {latency} ns, \
         ingress {ingress}, egress {egress} (TAI ns)"
    );
    bytes
}

/// The watchlist of the test runs: by port, by DSCP, and an exclusion
/// with a higher priority.
pub(crate) const BY_PORT: WatchMatch = WatchMatch {
    priority: 10,
    dscp: 0,
    dscp_mask: 0,
    l4_dst_port: WATCHED_PORT,
    l4_dst_port_mask: 0xffff,
};
pub(crate) const BY_DSCP: WatchMatch = WatchMatch {
    priority: 10,
    dscp: 0x20,
    dscp_mask: 0x20,
    l4_dst_port: 0,
    l4_dst_port_mask: 0,
};
pub(crate) const EXCLUDED: WatchMatch = WatchMatch {
    priority: 50,
    dscp: 0x0a,
    dscp_mask: 0x3f,
    l4_dst_port: WATCHED_PORT,
    l4_dst_port_mask: 0xffff,
};
