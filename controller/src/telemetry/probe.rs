//! The probe contract between the host agent and the collector, and the
//! loss count built on it.
//!
//! A probe is a UDP datagram carrying the INT shim and INT-MD header,
//! then this payload (big-endian, 12 bytes):
//!
//! ```text
//! | magic "SXPB" (0x53585042)   |
//! | path label (u32)            |  the MPLS label of the path it follows
//! | sequence number (u32)       |  per path, +1 per probe, wrapping
//! ```
//!
//! The sink exports the probe as a Telemetry Report whose inner packet
//! keeps at least these 12 bytes after the INT stack; the collector reads
//! them from [`solyx_int::Report::payload`]. A report whose payload does
//! not start with the magic is not a probe: its hops still count, its
//! loss does not.

use serde::Serialize;

/// The first four payload bytes of a probe: "SXPB".
pub const PROBE_MAGIC: u32 = 0x5358_5042;

/// Bytes of the probe payload.
pub const PROBE_PAYLOAD_LEN: usize = 12;

/// A sequence number further ahead than this is taken for a restarted
/// sender, not for loss.
pub const MAX_GAP: u32 = 1 << 16;

/// A sequence number up to this far behind the highest one is a late
/// (reordered) probe; further behind, a restarted sender.
pub const REORDER_WINDOW: u32 = 1024;

/// What a probe carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbePayload {
    /// The path's MPLS label.
    pub label: u32,
    /// The probe's sequence number on that path.
    pub sequence: u32,
}

impl ProbePayload {
    /// Reads a probe payload from the start of `payload`; `None` when it
    /// is shorter than 12 bytes or lacks the magic.
    #[must_use]
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<u32> {
            let b = payload.get(i..i + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        if word(0)? != PROBE_MAGIC {
            return None;
        }
        Some(Self {
            label: word(4)?,
            sequence: word(8)?,
        })
    }

    /// The 12 payload bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; PROBE_PAYLOAD_LEN] {
        let mut b = [0u8; PROBE_PAYLOAD_LEN];
        b[..4].copy_from_slice(&PROBE_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&self.label.to_be_bytes());
        b[8..].copy_from_slice(&self.sequence.to_be_bytes());
        b
    }
}

/// What one probe's sequence number says, relative to the probes before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceOutcome {
    /// The first probe, or the next after the highest so far, possibly
    /// after `lost` missing ones.
    InOrder {
        /// Probes skipped between the highest so far and this one.
        lost: u32,
    },
    /// A probe behind the highest so far: it was counted lost and is not.
    Late,
    /// The same number as the highest so far.
    Duplicate,
    /// A jump too large to be loss or reordering: the sender restarted.
    Restart,
}

/// Follows the sequence numbers of one path.
#[derive(Clone, Copy, Debug, Default)]
pub struct SequenceTracker {
    highest: Option<u32>,
}

impl SequenceTracker {
    /// Takes probe `seq`.
    pub fn observe(&mut self, seq: u32) -> SequenceOutcome {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return SequenceOutcome::InOrder { lost: 0 };
        };
        let ahead = seq.wrapping_sub(highest);
        let behind = highest.wrapping_sub(seq);
        if ahead == 0 {
            SequenceOutcome::Duplicate
        } else if ahead <= MAX_GAP {
            self.highest = Some(seq);
            SequenceOutcome::InOrder { lost: ahead - 1 }
        } else if behind <= REORDER_WINDOW {
            SequenceOutcome::Late
        } else {
            self.highest = Some(seq);
            SequenceOutcome::Restart
        }
    }
}

/// Probe counts of one path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LossSummary {
    /// Probes received since the path was first seen.
    pub received: u64,
    /// Probes missing since then (late arrivals taken back).
    pub lost: u64,
    /// Probes that came after a higher sequence number.
    pub late: u64,
    /// Repeated sequence numbers.
    pub duplicates: u64,
    /// Sender restarts (jumps in the sequence).
    pub restarts: u64,
    /// Lost / (received + lost) over the window, 0 when no probe is in it.
    pub window_loss: f64,
    /// Received probes in the window.
    pub window_received: u64,
    /// Lost probes in the window.
    pub window_lost: u64,
}

/// Probe loss of one path over all time and over the sliding window.
#[derive(Clone, Debug)]
pub struct LossCounter {
    tracker: SequenceTracker,
    totals: LossSummary,
    bucket_ns: u64,
    /// `(slice, received, lost)`, one per slice of the window.
    ring: Box<[(u64, u64, i64)]>,
}

impl LossCounter {
    /// A counter over a window of `buckets` slices of `bucket_ns`.
    #[must_use]
    pub fn new(buckets: usize, bucket_ns: u64) -> Self {
        Self {
            tracker: SequenceTracker::default(),
            totals: LossSummary::default(),
            bucket_ns: bucket_ns.max(1),
            ring: vec![(u64::MAX, 0, 0); buckets.max(1)].into_boxed_slice(),
        }
    }

    fn bucket(&mut self, now_ns: u64) -> Option<&mut (u64, u64, i64)> {
        let slice = now_ns / self.bucket_ns;
        let len = self.ring.len() as u64;
        // The remainder is below the ring's length.
        let b = self.ring.get_mut((slice % len) as usize)?;
        if b.0 != slice {
            *b = (slice, 0, 0);
        }
        Some(b)
    }

    /// Takes probe `seq` received at `now_ns`.
    pub fn observe(&mut self, now_ns: u64, seq: u32) -> SequenceOutcome {
        let outcome = self.tracker.observe(seq);
        let (received, lost): (u64, i64) = match outcome {
            SequenceOutcome::InOrder { lost } => {
                self.totals.lost += u64::from(lost);
                (1, i64::from(lost))
            }
            SequenceOutcome::Late => {
                self.totals.late += 1;
                self.totals.lost = self.totals.lost.saturating_sub(1);
                (1, -1)
            }
            SequenceOutcome::Duplicate => {
                self.totals.duplicates += 1;
                (0, 0)
            }
            SequenceOutcome::Restart => {
                self.totals.restarts += 1;
                (1, 0)
            }
        };
        self.totals.received += received;
        if let Some(b) = self.bucket(now_ns) {
            b.1 += received;
            b.2 += lost;
        }
        outcome
    }

    /// The counts at `now_ns`.
    #[must_use]
    pub fn summary(&self, now_ns: u64) -> LossSummary {
        let current = now_ns / self.bucket_ns;
        let oldest = current.saturating_sub(self.ring.len() as u64 - 1);
        let (mut received, mut lost) = (0u64, 0i64);
        for (slice, r, l) in self.ring.iter() {
            if *slice >= oldest && *slice <= current {
                received += r;
                lost += l;
            }
        }
        let lost = u64::try_from(lost).unwrap_or(0);
        let total = received + lost;
        #[allow(clippy::cast_precision_loss)]
        let window_loss = if total == 0 {
            0.0
        } else {
            lost as f64 / total as f64
        };
        LossSummary {
            window_loss,
            window_received: received,
            window_lost: lost,
            ..self.totals
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_needs_the_magic() {
        let p = ProbePayload {
            label: 1001,
            sequence: 7,
        };
        let b = p.to_bytes();
        assert_eq!(ProbePayload::parse(&b), Some(p));
        assert_eq!(ProbePayload::parse(&b[..11]), None);
        let mut other = b;
        other[0] = b'X';
        assert_eq!(ProbePayload::parse(&other), None);
    }

    #[test]
    fn gaps_late_probes_duplicates_and_restarts() {
        let mut t = SequenceTracker::default();
        use SequenceOutcome::*;
        let outcomes: Vec<_> = [u32::MAX - 1, u32::MAX, 2, 1, 2, 500_000, 500_001]
            .into_iter()
            .map(|s| t.observe(s))
            .collect();
        assert_eq!(
            outcomes,
            [
                InOrder { lost: 0 },
                InOrder { lost: 0 },
                InOrder { lost: 2 }, // 0 and 1 missing, across the wrap
                Late,                // 1 after all
                Duplicate,
                Restart,
                InOrder { lost: 0 },
            ]
        );
    }

    #[test]
    fn loss_over_the_window_matches_hand_counts() {
        // 10 slices of 100 ns: a 1000 ns window.
        let mut c = LossCounter::new(10, 100);
        for (t, seq) in [(0, 0), (100, 1), (200, 2), (300, 5), (400, 6)] {
            c.observe(t, seq);
        }
        let s = c.summary(400);
        assert_eq!(
            (s.received, s.lost, s.window_received, s.window_lost),
            (5, 2, 5, 2)
        );
        assert!((s.window_loss - 2.0 / 7.0).abs() < 1e-12, "{s:?}");
        // 4 arrives late: one loss taken back.
        c.observe(500, 4);
        let s = c.summary(500);
        assert_eq!((s.received, s.lost, s.late), (6, 1, 1));
        assert!((s.window_loss - 1.0 / 7.0).abs() < 1e-12, "{s:?}");
        // At 1250 the slices of 0..=200 have left the window: 5, 6, 4 remain
        // with the 3 → 5 gap (2 lost) and the late 4 (−1).
        let s = c.summary(1250);
        assert_eq!((s.window_received, s.window_lost), (3, 1));
        assert_eq!(s.received, 6, "totals stay");
    }
}
