//! The discovered links and their status, driven by probe arrivals and
//! the probe clock. Time is passed in, so the rules are tested without
//! waiting.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::linkstate::{DiscoveredLink, LinkEvent, LinkKey, LinkStatus};

#[derive(Clone, Copy, Debug)]
struct Entry {
    declared: bool,
    status: LinkStatus,
    last_seen: Option<Instant>,
}

/// Links, their status and when a probe last crossed them.
///
/// A link is up from the first probe that crosses it, and down once no
/// probe crossed it for `missed_limit` probe intervals (plus half an
/// interval of slack for the probe in flight).
#[derive(Clone, Debug)]
pub struct LinkTable {
    interval: Duration,
    missed_limit: u32,
    links: BTreeMap<LinkKey, Entry>,
}

impl LinkTable {
    /// A table for probes every `interval`, where `missed_limit` missed
    /// probes take a link down, knowing the `declared` links.
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
                    },
                )
            })
            .collect();
        Self {
            interval,
            missed_limit: missed_limit.max(1),
            links,
        }
    }

    /// How long after the last probe a link is declared down.
    #[must_use]
    pub fn down_after(&self) -> Duration {
        self.interval * self.missed_limit + self.interval / 2
    }

    /// A probe crossed `link` at `now`; the event if the link came up.
    pub fn seen(&mut self, link: LinkKey, now: Instant) -> Option<LinkEvent> {
        let e = self.links.entry(link).or_insert(Entry {
            declared: false,
            status: LinkStatus::DeclaredNotSeen,
            last_seen: None,
        });
        e.last_seen = Some(now);
        if e.status == LinkStatus::Up {
            return None;
        }
        e.status = LinkStatus::Up;
        Some(LinkEvent::Up(link))
    }

    /// Takes down the links whose probes stopped; their events.
    pub fn tick(&mut self, now: Instant) -> Vec<LinkEvent> {
        let limit = self.down_after();
        let mut events = Vec::new();
        for (k, e) in &mut self.links {
            let Some(seen) = e.last_seen else { continue };
            if e.status == LinkStatus::Up && now.saturating_duration_since(seen) > limit {
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

    #[test]
    fn up_on_first_probe_down_after_three_missed() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = LinkTable::new(ms(100), 3, [key(1, 2)]);
        assert_eq!(t.snapshot(t0)[0].status, LinkStatus::DeclaredNotSeen);
        assert_eq!(t.seen(key(1, 2), t0), Some(LinkEvent::Up(key(1, 2))));
        assert_eq!(t.seen(key(1, 2), t0 + ms(100)), None);
        // Last probe at 100 ms; probes of 200, 300, 400 ms missing: down
        // once 350 ms have passed since it.
        assert!(t.tick(t0 + ms(450)).is_empty());
        assert_eq!(t.tick(t0 + ms(451)), [LinkEvent::Down(key(1, 2))]);
        assert!(t.tick(t0 + ms(600)).is_empty(), "one event per change");
        let s = t.snapshot(t0 + ms(600));
        assert_eq!(
            (s[0].status, s[0].declared, s[0].last_seen_ms_ago),
            (LinkStatus::Down, true, Some(500))
        );
        // Back.
        assert_eq!(
            t.seen(key(1, 2), t0 + ms(700)),
            Some(LinkEvent::Up(key(1, 2)))
        );
    }

    #[test]
    fn undeclared_links_are_learned_and_declared_ones_wait() {
        let t0 = Instant::now();
        let mut t = LinkTable::new(Duration::from_millis(100), 3, [key(1, 2), key(2, 1)]);
        t.seen(key(3, 1), t0);
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
}
