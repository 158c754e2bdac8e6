//! What the collector learned from reports: per hop (a device's egress
//! port), per link and per probed path, as smoothed series that expire
//! when reports stop.
//!
//! How a report becomes samples, with the hops in path order `h1 … hn`:
//!
//! * every hop `hi` with a switch ID updates its egress port
//!   ([`HopKey`]): hop latency (ns), queue occupancy (bytes), egress TX
//!   utilisation (kbit/s), each when present and not "unavailable"
//!   (all ones);
//! * every pair of consecutive hops `hi`, `hi+1` with level-1 port IDs is
//!   the link `hi` egress port → `hi+1` ingress port; its latency is
//!   `hi+1` ingress timestamp − `hi` egress timestamp when both are there
//!   (a negative difference, clocks out of step, is counted and dropped);
//! * a probe (see [`super::probe`]) updates its path: sequence-number
//!   loss, the path latency `hn` egress − `h1` ingress timestamp, and the
//!   links it crossed.
//!
//! Units are those of the `solyx_fabric` eBPF switch (ns, bytes, kbit/s).
//
// TODO-completeness: a BMv2 hop reports hop latency in µs, occupancy in
// packets and 48-bit µs timestamps; the store reads every hop in eBPF
// units, so BMv2 figures are off by 1000 until units follow the device's
// pipeline kind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use solyx_int::{Report, UNAVAILABLE_32, UNAVAILABLE_64};

use super::probe::{LossCounter, LossSummary, ProbePayload};
use super::stats::{MetricSummary, Series};
use crate::linkstate::{DeviceId, LinkKey, PortId};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The 24-bit all-ones queue occupancy: unavailable.
const UNAVAILABLE_24: u32 = 0x00ff_ffff;

/// How the store smooths and expires.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Weight of a new sample in the moving averages. Default 0.2.
    pub ewma_alpha: f64,
    /// Length of the percentile and loss window. Default 10 s.
    pub window: Duration,
    /// Slices the window moves by. Default 10 (1 s each by default).
    pub window_slices: usize,
    /// A hop, link or path with no report for this long is dropped.
    /// Default 5 s.
    pub expire_after: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            ewma_alpha: 0.2,
            window: Duration::from_secs(10),
            window_slices: 10,
            expire_after: Duration::from_secs(5),
        }
    }
}

impl StoreConfig {
    fn slice_ns(&self) -> u64 {
        let slices = u32::try_from(self.window_slices.max(1)).unwrap_or(u32::MAX);
        duration_ns(self.window / slices).max(1)
    }

    fn series(&self) -> Series {
        Series::new(self.ewma_alpha, self.window_slices, self.slice_ns())
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A device's egress port, as INT hops describe it: the queue and the
/// transmitter behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HopKey {
    /// The device.
    pub device: DeviceId,
    /// Its egress port (0 when the hop carried no port IDs).
    pub egress_port: PortId,
}

struct HopState {
    latency: Series,
    queue: Series,
    tx_util: Series,
    updated_ns: u64,
}

struct LinkState {
    latency: Series,
    updated_ns: u64,
}

struct PathState {
    sink: u32,
    links: Vec<LinkKey>,
    loss: LossCounter,
    latency: Series,
    updated_ns: u64,
}

/// Counts of what the store did with the reports it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApplyCounters {
    /// Reports applied.
    pub reports: u64,
    /// Hops read.
    pub hops: u64,
    /// Hops without a switch ID (or an unavailable one): skipped, and the
    /// link chain is broken there.
    pub hops_without_switch_id: u64,
    /// Links whose egress → ingress time was negative.
    pub negative_link_latency: u64,
    /// Reports carrying a probe payload.
    pub probes: u64,
}

/// One egress port in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HopTelemetry {
    /// The port.
    pub hop: HopKey,
    /// Hop latency, ns.
    pub hop_latency_ns: Option<MetricSummary>,
    /// Queue occupancy, bytes.
    pub queue_bytes: Option<MetricSummary>,
    /// Egress TX utilisation, kbit/s.
    pub tx_utilization_kbps: Option<MetricSummary>,
    /// Milliseconds since a report last described it.
    pub age_ms: u64,
}

/// One link in a snapshot: its own latency, and the egress port it leaves
/// from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkTelemetry {
    /// The link.
    pub link: LinkKey,
    /// Egress timestamp at the source → ingress timestamp at the
    /// destination, ns.
    pub latency_ns: Option<MetricSummary>,
    /// Hop latency at the source device, ns.
    pub hop_latency_ns: Option<MetricSummary>,
    /// Queue occupancy of the source's egress port, bytes.
    pub queue_bytes: Option<MetricSummary>,
    /// TX utilisation of the source's egress port, kbit/s.
    pub tx_utilization_kbps: Option<MetricSummary>,
    /// Milliseconds since a report last crossed it.
    pub age_ms: u64,
}

/// One probed path in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathTelemetry {
    /// The path's label.
    pub label: u32,
    /// Node ID of the sink that reported it last.
    pub sink: u32,
    /// The links the last probe crossed, in path order.
    pub links: Vec<LinkKey>,
    /// Probe loss.
    pub loss: LossSummary,
    /// First hop's ingress → last hop's egress timestamp, ns.
    pub latency_ns: Option<MetricSummary>,
    /// Milliseconds since its last probe.
    pub age_ms: u64,
}

/// Everything fresh the store holds, in key order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreSnapshot {
    /// Egress ports.
    pub hops: Vec<HopTelemetry>,
    /// Links.
    pub links: Vec<LinkTelemetry>,
    /// Probed paths.
    pub paths: Vec<PathTelemetry>,
    /// What the store did with reports.
    pub applied: ApplyCounters,
}

/// Per-hop, per-link and per-path telemetry, fed with parsed reports.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use solyx::telemetry::{StoreConfig, TelemetryStore};
///
/// let start = Instant::now();
/// let mut store = TelemetryStore::new(StoreConfig::default(), start);
/// store.map_switch(11, 1); // INT switch 11 is P4Runtime device 1
/// // store.apply(&report, Instant::now()) for every parsed report, then:
/// let snapshot = store.snapshot(Instant::now());
/// assert!(snapshot.links.is_empty());
/// ```
pub struct TelemetryStore {
    config: StoreConfig,
    epoch: Instant,
    switch_devices: FastMap<u32, DeviceId>,
    hops: FastMap<HopKey, HopState>,
    links: FastMap<LinkKey, LinkState>,
    paths: FastMap<u32, PathState>,
    counters: ApplyCounters,
    scratch: Vec<LinkKey>,
}

impl TelemetryStore {
    /// An empty store; times are measured from `epoch`.
    #[must_use]
    pub fn new(config: StoreConfig, epoch: Instant) -> Self {
        Self {
            config,
            epoch,
            switch_devices: FastMap::default(),
            hops: FastMap::default(),
            links: FastMap::default(),
            paths: FastMap::default(),
            counters: ApplyCounters::default(),
            scratch: Vec::new(),
        }
    }

    /// Reads INT switch ID `switch_id` as device `device`. Unmapped switch
    /// IDs are taken as device IDs (the topology's default).
    pub fn map_switch(&mut self, switch_id: u32, device: DeviceId) {
        self.switch_devices.insert(switch_id, device);
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn ns(&self, at: Instant) -> u64 {
        duration_ns(at.saturating_duration_since(self.epoch))
    }

    fn device_of(&self, switch_id: u32) -> DeviceId {
        if self.switch_devices.is_empty() {
            return DeviceId::from(switch_id);
        }
        self.switch_devices
            .get(&switch_id)
            .copied()
            .unwrap_or(DeviceId::from(switch_id))
    }

    /// Applies one report received at `at`.
    pub fn apply(&mut self, report: &Report, at: Instant) {
        let now = self.ns(at);
        self.apply_at(report, now);
    }

    /// Applies one report received `now_ns` after the epoch.
    pub fn apply_at(&mut self, report: &Report, now_ns: u64) {
        self.counters.reports += 1;
        let probe = ProbePayload::parse(report.payload());
        self.scratch.clear();
        // (device, egress port, egress timestamp) of the previous hop, when
        // it can start a link.
        let mut prev: Option<(DeviceId, PortId, Option<u64>)> = None;
        let mut first_ingress: Option<Option<u64>> = None;
        let mut last_egress: Option<u64> = None;

        for hop in report.path() {
            self.counters.hops += 1;
            let Some(switch_id) = hop.switch_id().filter(|&s| s != UNAVAILABLE_32) else {
                self.counters.hops_without_switch_id += 1;
                prev = None;
                continue;
            };
            let device = self.device_of(switch_id);
            let ports = hop.level1_ports();
            let (in_port, out_port) = ports.map_or((0, 0), |p| {
                (PortId::from(p.ingress), PortId::from(p.egress))
            });
            let ingress_ts = hop.ingress_timestamp().filter(|&t| t != UNAVAILABLE_64);
            let egress_ts = hop.egress_timestamp().filter(|&t| t != UNAVAILABLE_64);
            first_ingress.get_or_insert(ingress_ts);
            last_egress = egress_ts;

            let config = &self.config;
            let state = self
                .hops
                .entry(HopKey {
                    device,
                    egress_port: out_port,
                })
                .or_insert_with(|| HopState {
                    latency: config.series(),
                    queue: config.series(),
                    tx_util: config.series(),
                    updated_ns: now_ns,
                });
            state.updated_ns = now_ns;
            if let Some(l) = hop.hop_latency().filter(|&l| l != UNAVAILABLE_32) {
                state.latency.record(now_ns, u64::from(l));
            }
            if let Some(q) = hop.queue_occupancy().filter(|&q| q != UNAVAILABLE_24) {
                state.queue.record(now_ns, u64::from(q));
            }
            if let Some(u) = hop.egress_tx_utilization().filter(|&u| u != UNAVAILABLE_32) {
                state.tx_util.record(now_ns, u64::from(u));
            }

            if let (Some((src_device, src_port, src_egress)), Some(_)) = (prev, ports) {
                let key = LinkKey {
                    src_device,
                    src_port,
                    dst_device: device,
                    dst_port: in_port,
                };
                let link = self.links.entry(key).or_insert_with(|| LinkState {
                    latency: config.series(),
                    updated_ns: now_ns,
                });
                link.updated_ns = now_ns;
                if let (Some(e), Some(i)) = (src_egress, ingress_ts) {
                    match i.checked_sub(e) {
                        Some(d) => link.latency.record(now_ns, d),
                        None => self.counters.negative_link_latency += 1,
                    }
                }
                if probe.is_some() {
                    self.scratch.push(key);
                }
            }
            prev = ports.map(|_| (device, out_port, egress_ts));
        }

        if let Some(p) = probe {
            self.counters.probes += 1;
            let config = &self.config;
            let path = self.paths.entry(p.label).or_insert_with(|| PathState {
                sink: 0,
                links: Vec::new(),
                loss: LossCounter::new(config.window_slices, config.slice_ns()),
                latency: config.series(),
                updated_ns: now_ns,
            });
            path.sink = report.group().node_id;
            path.updated_ns = now_ns;
            path.loss.observe(now_ns, p.sequence);
            if path.links != self.scratch {
                path.links.clone_from(&self.scratch);
            }
            if let (Some(Some(i)), Some(e)) = (first_ingress, last_egress) {
                if let Some(d) = e.checked_sub(i) {
                    path.latency.record(now_ns, d);
                }
            }
        }
    }

    fn fresh(&self, updated_ns: u64, now_ns: u64) -> bool {
        now_ns.saturating_sub(updated_ns) <= duration_ns(self.config.expire_after)
    }

    /// Drops what no report described for longer than `expire_after`.
    pub fn expire(&mut self, at: Instant) {
        let now = self.ns(at);
        let limit = duration_ns(self.config.expire_after);
        let fresh = |updated: u64| now.saturating_sub(updated) <= limit;
        self.hops.retain(|_, s| fresh(s.updated_ns));
        self.links.retain(|_, s| fresh(s.updated_ns));
        self.paths.retain(|_, s| fresh(s.updated_ns));
    }

    /// Counts of what the store did.
    #[must_use]
    pub fn counters(&self) -> ApplyCounters {
        self.counters
    }

    /// Everything fresh at `at`, in key order.
    #[must_use]
    pub fn snapshot(&self, at: Instant) -> StoreSnapshot {
        let now = self.ns(at);
        let age = |updated: u64| now.saturating_sub(updated) / 1_000_000;
        let mut hops: Vec<HopTelemetry> = self
            .hops
            .iter()
            .filter(|(_, s)| self.fresh(s.updated_ns, now))
            .map(|(k, s)| HopTelemetry {
                hop: *k,
                hop_latency_ns: s.latency.summary(now),
                queue_bytes: s.queue.summary(now),
                tx_utilization_kbps: s.tx_util.summary(now),
                age_ms: age(s.updated_ns),
            })
            .collect();
        hops.sort_by_key(|h| h.hop);
        let mut links: Vec<LinkTelemetry> = self
            .links
            .iter()
            .filter(|(_, s)| self.fresh(s.updated_ns, now))
            .map(|(k, s)| {
                let src = self
                    .hops
                    .get(&HopKey {
                        device: k.src_device,
                        egress_port: k.src_port,
                    })
                    .filter(|h| self.fresh(h.updated_ns, now));
                LinkTelemetry {
                    link: *k,
                    latency_ns: s.latency.summary(now),
                    hop_latency_ns: src.and_then(|h| h.latency.summary(now)),
                    queue_bytes: src.and_then(|h| h.queue.summary(now)),
                    tx_utilization_kbps: src.and_then(|h| h.tx_util.summary(now)),
                    age_ms: age(s.updated_ns),
                }
            })
            .collect();
        links.sort_by_key(|l| l.link);
        let mut paths: Vec<PathTelemetry> = self
            .paths
            .iter()
            .filter(|(_, s)| self.fresh(s.updated_ns, now))
            .map(|(label, s)| PathTelemetry {
                label: *label,
                sink: s.sink,
                links: s.links.clone(),
                loss: s.loss.summary(now),
                latency_ns: s.latency.summary(now),
                age_ms: age(s.updated_ns),
            })
            .collect();
        paths.sort_by_key(|p| p.label);
        StoreSnapshot {
            hops,
            links,
            paths,
            applied: self.counters,
        }
    }
}
