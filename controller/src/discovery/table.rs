//! The discovered links and their status, driven by probe arrivals, the
//! probes sent and the probe clock. Time is passed in, so the rules are
//! tested without waiting.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::linkstate::{DeviceId, DiscoveredLink, LinkEvent, LinkKey, LinkStatus, PortId};

#[derive(Clone, Copy, Debug)]
struct Entry {
    declared: bool,
    status: LinkStatus,
    last_seen: Option<Instant>,
    /// Probes sent out of the link's source port when it was last seen.
    seen_at_round: u64,
    /// A link that was down and carries probes again: since when, while
    /// it waits out the hold time.
    returning_since: Option<Instant>,
}

/// Links, their status and when a probe last crossed them.
///
/// A link is up from the first probe that crosses it. It is down once no
/// probe crossed it for `missed_limit` probe intervals (plus half an
/// interval of slack for the probe in flight) *and* at least
/// `missed_limit` probes were sent out of its source port since the last
/// one that arrived: a controller too busy to probe does not take its own
/// links down. A link that went down comes back only after probes crossed
/// it for `up_hold` without a miss, so a flapping link does not move
/// traffic back and forth.
#[derive(Clone, Debug)]
pub struct LinkTable {
    interval: Duration,
    missed_limit: u32,
    up_hold: Duration,
    links: BTreeMap<LinkKey, Entry>,
    /// Probes sent per (device, port).
    rounds: BTreeMap<(DeviceId, PortId), u64>,
}

impl LinkTable {
    /// A table for probes every `interval`, where `missed_limit` missed
    /// probes take a link down, knowing the `declared` links; a link that
    /// went down is up again after `up_hold` of probes.
    #[must_use]
    pub fn new(
        interval: Duration,
        missed_limit: u32,
        declared: impl IntoIterator<Item = LinkKey>,
    ) -> Self {
        let links = declared
            .into_iter()
            .map(|k| {
                (
                    k,
                    Entry {
                        declared: true,
                        status: LinkStatus::DeclaredNotSeen,
                        last_seen: None,
                        seen_at_round: 0,
                        returning_since: None,
                    },
                )
            })
            .collect();
        Self {
            interval,
            missed_limit: missed_limit.max(1),
            up_hold: Duration::ZERO,
            links,
            rounds: BTreeMap::new(),
        }
    }

    /// The same table with a hold time for links that come back (default
    /// none).
    #[must_use]
    pub fn with_up_hold(mut self, up_hold: Duration) -> Self {
        self.up_hold = up_hold;
        self
    }

    /// How long after the last probe a link is declared down.
    #[must_use]
    pub fn down_after(&self) -> Duration {
        self.interval * self.missed_limit + self.interval / 2
    }

    /// A probe went out of `port` of `device`.
    pub fn sent(&mut self, device: DeviceId, port: PortId) {
        *self.rounds.entry((device, port)).or_insert(0) += 1;
    }

    fn round(&self, link: LinkKey) -> u64 {
        self.rounds
            .get(&(link.src_device, link.src_port))
            .copied()
            .unwrap_or(0)
    }

    /// A probe crossed `link` at `now`; the event if the link came up.
    pub fn seen(&mut self, link: LinkKey, now: Instant) -> Option<LinkEvent> {
        let round = self.round(link);
        let up_hold = self.up_hold;
        let e = self.links.entry(link).or_insert(Entry {
            declared: false,
            status: LinkStatus::DeclaredNotSeen,
            last_seen: None,
            seen_at_round: 0,
            returning_since: None,
        });
        e.last_seen = Some(now);
        e.seen_at_round = round;
        match e.status {
            LinkStatus::Up => None,
            LinkStatus::DeclaredNotSeen => {
                e.status = LinkStatus::Up;
                Some(LinkEvent::Up(link))
            }
            LinkStatus::Down => {
                let since = *e.returning_since.get_or_insert(now);
                if now.saturating_duration_since(since) < up_hold {
                    return None;
                }
                e.status = LinkStatus::Up;
                e.returning_since = None;
                Some(LinkEvent::Up(link))
            }
        }
    }

    /// Takes down the links whose probes stopped; their events.
    pub fn tick(&mut self, now: Instant) -> Vec<LinkEvent> {
        let limit = self.down_after();
        let missed = u64::from(self.missed_limit);
        let mut events = Vec::new();
        let rounds = &self.rounds;
        for (k, e) in &mut self.links {
            let Some(seen) = e.last_seen else { continue };
            let silent = now.saturating_duration_since(seen) > limit;
            if !silent {
                continue;
            }
            // A returning link that misses a probe starts its hold again.
            e.returning_since = None;
            let sent = rounds
                .get(&(k.src_device, k.src_port))
                .copied()
                .unwrap_or(0);
            if e.status == LinkStatus::Up && sent.saturating_sub(e.seen_at_round) >= missed {
                e.status = LinkStatus::Down;
                events.push(LinkEvent::Down(*k));
            }
        }
        events
    }

    /// The device reported `port` down: every up link with an end there
    /// is down now; their events. A link that was returning starts its
    /// hold again when probes cross it once more.
    pub fn port_down(&mut self, device: DeviceId, port: PortId) -> Vec<LinkEvent> {
        let mut events = Vec::new();
        for (k, e) in &mut self.links {
            let src = (k.src_device, k.src_port) == (device, port);
            let dst = (k.dst_device, k.dst_port) == (device, port);
            if !src && !dst {
                continue;
            }
            e.returning_since = None;
            if e.status == LinkStatus::Up {
                e.status = LinkStatus::Down;
                events.push(LinkEvent::Down(*k));
            }
        }
        events
    }

    /// Every link, in key order.
    #[must_use]
    pub fn snapshot(&self, now: Instant) -> Vec<DiscoveredLink> {
        self.links
            .iter()
            .map(|(k, e)| DiscoveredLink {
                link: *k,
                status: e.status,
                declared: e.declared,
                last_seen_ms_ago: e.last_seen.map(|t| {
                    u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX)
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: u64, b: u64) -> LinkKey {
        LinkKey {
            src_device: a,
            src_port: 1,
            dst_device: b,
            dst_port: 2,
        }
    }

    /// A probe out of link (1, 2)'s source port every 100 ms, from
    /// `from` up to `to` (exclusive), arriving when `arrive` says so.
    fn probe_rounds(
        t: &mut LinkTable,
        t0: Instant,
        from_ms: u64,
        to_ms: u64,
        arrive: impl Fn(u64) -> bool,
    ) -> Vec<(u64, LinkEvent)> {
        let mut events = Vec::new();
        let mut at = from_ms;
        while at < to_ms {
            let now = t0 + Duration::from_millis(at);
            events.extend(t.tick(now).into_iter().map(|e| (at, e)));
            t.sent(1, 1);
            if arrive(at) {
                events.extend(t.seen(key(1, 2), now).map(|e| (at, e)));
            }
            at += 100;
        }
        events
    }

    #[test]
    fn up_on_first_probe_down_after_three_missed() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = LinkTable::new(ms(100), 3, [key(1, 2)]);
        assert_eq!(t.snapshot(t0)[0].status, LinkStatus::DeclaredNotSeen);
        // Probes at 0 and 100 ms arrive; those of 200, 300, 400 ms do not.
        let events = probe_rounds(&mut t, t0, 0, 500, |at| at <= 100);
        assert_eq!(events, [(0, LinkEvent::Up(key(1, 2)))]);
        // Three probes sent since the last one seen, and 350 ms passed.
        assert!(t.tick(t0 + ms(450)).is_empty());
        assert_eq!(t.tick(t0 + ms(451)), [LinkEvent::Down(key(1, 2))]);
        assert!(t.tick(t0 + ms(600)).is_empty(), "one event per change");
        let s = t.snapshot(t0 + ms(600));
        assert_eq!(
            (s[0].status, s[0].declared, s[0].last_seen_ms_ago),
            (LinkStatus::Down, true, Some(500))
        );
        // Back (no hold time configured).
        assert_eq!(
            t.seen(key(1, 2), t0 + ms(700)),
            Some(LinkEvent::Up(key(1, 2)))
        );
    }

    #[test]
    fn a_controller_that_sends_no_probes_keeps_its_links() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = LinkTable::new(ms(100), 3, [key(1, 2)]);
        probe_rounds(&mut t, t0, 0, 100, |_| true);
        // A second without a single probe sent: nothing was missed.
        assert!(t.tick(t0 + ms(1000)).is_empty());
        // Two sent and lost: still up; the third lost takes it down.
        t.sent(1, 1);
        t.sent(1, 1);
        assert!(t.tick(t0 + ms(1100)).is_empty());
        t.sent(1, 1);
        assert_eq!(t.tick(t0 + ms(1200)), [LinkEvent::Down(key(1, 2))]);
    }

    #[test]
    fn a_returning_link_waits_out_the_hold_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = LinkTable::new(ms(100), 3, [key(1, 2)]).with_up_hold(ms(1000));
        // Up at 0, lost from 100 ms: down at 400 ms.
        let events = probe_rounds(&mut t, t0, 0, 1000, |at| at == 0);
        assert_eq!(
            events,
            [
                (0, LinkEvent::Up(key(1, 2))),
                (400, LinkEvent::Down(key(1, 2)))
            ]
        );
        // Probes again from 1000 ms, but one lost at 1500 ms: the hold
        // starts over after the miss is noticed.
        let events = probe_rounds(&mut t, t0, 1000, 4000, |at| !(1500..1900).contains(&at));
        assert_eq!(events, [(2900, LinkEvent::Up(key(1, 2)))], "{events:?}");
        // A first discovery needs no hold.
        let mut fresh = LinkTable::new(ms(100), 3, [key(1, 2)]).with_up_hold(ms(1000));
        assert_eq!(fresh.seen(key(1, 2), t0), Some(LinkEvent::Up(key(1, 2))));
    }

    #[test]
    fn undeclared_links_are_learned_and_declared_ones_wait() {
        let t0 = Instant::now();
        let mut t = LinkTable::new(Duration::from_millis(100), 3, [key(1, 2), key(2, 1)]);
        t.seen(key(3, 1), t0);
        for _ in 0..3 {
            t.sent(3, 1);
        }
        t.tick(t0 + Duration::from_secs(10));
        let s = t.snapshot(t0);
        let got: Vec<_> = s.iter().map(|d| (d.link, d.status, d.declared)).collect();
        assert_eq!(
            got,
            [
                (key(1, 2), LinkStatus::DeclaredNotSeen, true),
                (key(2, 1), LinkStatus::DeclaredNotSeen, true),
                (key(3, 1), LinkStatus::Down, false),
            ]
        );
    }

    #[test]
    fn a_port_down_takes_both_directions_down_and_probes_bring_them_back_after_the_hold() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = LinkTable::new(ms(100), 3, []).with_up_hold(ms(1000));
        let back = LinkKey {
            src_device: 2,
            src_port: 2,
            dst_device: 1,
            dst_port: 1,
        };
        let there = key(1, 2);
        assert_eq!(t.seen(there, t0), Some(LinkEvent::Up(there)));
        assert_eq!(t.seen(back, t0), Some(LinkEvent::Up(back)));
        // Port 1 of device 2 is neither end of these links.
        assert!(t.port_down(2, 1).is_empty());
        let down = t.port_down(there.src_device, there.src_port);
        assert_eq!(down.len(), 2, "{down:?}");
        assert!(down.contains(&LinkEvent::Down(there)) && down.contains(&LinkEvent::Down(back)));
        assert!(
            t.port_down(there.src_device, there.src_port).is_empty(),
            "already down"
        );
        // A probe still in flight does not bring it back; probes for the
        // whole hold time do.
        assert_eq!(t.seen(there, t0 + ms(10)), None);
        assert_eq!(t.seen(there, t0 + ms(500)), None);
        assert_eq!(t.seen(there, t0 + ms(1010)), Some(LinkEvent::Up(there)));
    }
}
