//! `solyx-agent host`: a Linux host attached to the fabric, running the
//! `solyx_host` pipeline (`p4/solyx_host`, eBPF in `ebpf/host`) on its
//! ports and serving P4Runtime for it. The controller gives each
//! destination a group of labelled paths with weights; the host spreads
//! its flows over them per flowlet, pops labels, strips INT from what it
//! receives and exports it to the collector, and probes every path.
//!
//! The device options (ports, device ID, network namespace, instance,
//! gRPC/Unix listeners, state directory, pin root, YAML file) and their
//! handling (instance locks, saved state, hitless restart through pinned
//! links) are the switch's: see [`crate::switch`]. The host adds:
//!
//! | option | default | what |
//! | --- | --- | --- |
//! | `--collector ADDR:PORT` | none | where Telemetry Reports go; without it the sink still strips INT but reports nothing |
//! | `--report-coalesce N` | 1 | up to N reports (1–64) share one datagram behind one group header |
//! | `--report-max-delay DUR` | 200us | longest a report waits for others to share its datagram (with N > 1) |
//! | `--report-mtu BYTES` | 1500 | a datagram of several reports fits this MTU (and 2048 bytes of payload) |
//! | `--probe-rate N` | 100 | probes per second per path; 0: none |
//! | `--flowlet-gap DUR` | 500us | a flow idle this long may change path (`ns`, `us`, `ms`, `s`) |
//!
//! The device ID is the node ID of reports and probes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::ebpf::{EbpfHostDataplane, ExportConfig, Prober, SinkExporter};
use crate::p4rt::AgentService;
use crate::switch::{serve_dataplane, InstanceLocks, SwitchConfig, SwitchError};

/// Default probes per second per path.
pub const DEFAULT_PROBE_RATE: u32 = 100;
/// Default flowlet gap.
pub const DEFAULT_FLOWLET_GAP: Duration = Duration::from_micros(500);
/// Pages per CPU of each INT sink ring.
const SINK_PAGES: usize = 64;

/// What a host runs beyond a switch's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOptions {
    /// The collector of Telemetry Reports.
    pub collector: Option<SocketAddr>,
    /// Probes per second per path (0: none).
    pub probe_rate: u32,
    /// The flowlet gap.
    pub flowlet_gap: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            collector: None,
            probe_rate: DEFAULT_PROBE_RATE,
            flowlet_gap: DEFAULT_FLOWLET_GAP,
        }
    }
}

/// A started host: the service to serve, its data plane and its threads.
#[derive(Debug)]
pub struct HostNode {
    /// The P4Runtime service.
    pub service: AgentService,
    /// The data plane.
    pub dataplane: Arc<EbpfHostDataplane>,
    /// The INT report exporter (with a collector).
    pub exporter: Option<SinkExporter>,
    /// The path prober (with a rate above 0).
    pub prober: Option<Prober>,
    _locks: InstanceLocks,
}

/// Parses a duration such as `500us`, `2ms`, `1s` or `750ns`.
///
/// # Errors
/// No number, or no known unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (ns, us, ms, s)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: no number before the unit"))?;
    match unit {
        "ns" => Ok(Duration::from_nanos(n)),
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        other => Err(format!("{text:?}: unknown unit {other:?} (ns, us, ms, s)")),
    }
}

/// Loads and attaches the host programs on the configured ports (calling
/// thread's network namespace), builds the P4Runtime service (restoring
/// the saved state, or emptying the tables), and starts the INT report
/// exporter and the prober.
///
/// # Errors
/// See [`SwitchError`].
pub fn start(config: &SwitchConfig, options: &HostOptions) -> Result<HostNode, SwitchError> {
    start_with_report_socket(config, options, None)
}

/// [`start`], sending the Telemetry Reports out of `report_socket` when
/// given (opened with [`SinkExporter::connect`], possibly in another
/// network namespace) instead of a socket opened here.
///
/// # Errors
/// See [`SwitchError`].
pub fn start_with_report_socket(
    config: &SwitchConfig,
    options: &HostOptions,
    report_socket: Option<std::net::UdpSocket>,
) -> Result<HostNode, SwitchError> {
    start_with_export(config, options, report_socket, ExportConfig::default())
}

/// [`start_with_report_socket`], packing the Telemetry Reports into
/// datagrams as `export` says (coalescing, hold time, MTU).
///
/// # Errors
/// See [`SwitchError`]; an `export` out of range
/// ([`ExportConfig::validate`]) fails the exporter's start.
pub fn start_with_export(
    config: &SwitchConfig,
    options: &HostOptions,
    report_socket: Option<std::net::UdpSocket>,
    export: ExportConfig,
) -> Result<HostNode, SwitchError> {
    let locks = InstanceLocks::take(config)?;
    // Every TCP segment must reach host_egress as a packet of its own to
    // take its labelled path (see `ebpf::set_gso_max_segs`).
    for p in &config.ports {
        let set = nix::net::if_::if_nametoindex(p.interface.as_str())
            .map_err(std::io::Error::from)
            .and_then(|ifindex| crate::ebpf::set_gso_max_segs(ifindex, 1));
        if let Err(e) = set {
            tracing::warn!(
                interface = %p.interface,
                error = %e,
                "cannot set gso_max_segs 1: TCP bursts of several segments will leave unlabelled"
            );
        }
    }
    let gap = u64::try_from(options.flowlet_gap.as_nanos()).unwrap_or(u64::MAX);
    let dataplane = Arc::new(EbpfHostDataplane::start_with(
        &config.pin_root,
        &config.switch_ports(),
        gap,
    )?);
    let service = serve_dataplane(config, dataplane.clone(), EbpfHostDataplane::clear_tables)?;
    let node_id = u32::try_from(config.device_id).unwrap_or(u32::MAX);
    let io = |name: &str, source: std::io::Error| {
        SwitchError::Dataplane(crate::ebpf::Error::Interface {
            name: name.into(),
            source,
        })
    };
    let exporter = match options.collector {
        Some(collector) => {
            let rings = dataplane.with_host(|h| h.open_sink(SINK_PAGES))?;
            let socket = match report_socket {
                Some(s) => s,
                None => {
                    SinkExporter::connect(collector).map_err(|e| io("INT report exporter", e))?
                }
            };
            Some(
                SinkExporter::start_with(rings, node_id, socket, export)
                    .map_err(|e| io("INT report exporter", e))?,
            )
        }
        None => None,
    };
    let prober = if options.probe_rate > 0 {
        Some(
            Prober::start(dataplane.clone(), options.probe_rate, node_id)
                .map_err(|e| io("path prober", e))?,
        )
    } else {
        None
    };
    Ok(HostNode {
        service,
        dataplane,
        exporter,
        prober,
        _locks: locks,
    })
}

/// `solyx_host_events_total{event}`: the host programs' counters
/// (`HOST_EVENTS`, summed over CPUs), read from the map at every scrape:
/// labels pushed and popped, flowlets started, and every outcome of the
/// INT sink, malformed INT by its reason.
pub struct HostEventMetrics {
    dataplane: Arc<EbpfHostDataplane>,
    desc: prometheus::core::Desc,
}

impl HostEventMetrics {
    /// The counters of `dataplane`.
    ///
    /// # Errors
    /// Never for this constant definition.
    pub fn new(dataplane: Arc<EbpfHostDataplane>) -> prometheus::Result<Self> {
        let desc = prometheus::core::Desc::new(
            "solyx_host_events_total".into(),
            "Events counted by the host programs: labels, flowlets, INT sink outcomes.".into(),
            vec!["event".into()],
            std::collections::HashMap::new(),
        )?;
        Ok(Self { dataplane, desc })
    }
}

impl prometheus::core::Collector for HostEventMetrics {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let Ok(counts) = self.dataplane.with_host(|h| h.events()) else {
            // A scrape while the map cannot be read shows no series rather
            // than zeros that would look like a counter reset.
            return Vec::new();
        };
        let Ok(vec) = prometheus::IntCounterVec::new(
            prometheus::Opts::new("solyx_host_events_total", self.desc.help.clone()),
            &["event"],
        ) else {
            return Vec::new();
        };
        for (event, n) in counts {
            vec.with_label_values(&[event.name()]).inc_by(n);
        }
        prometheus::core::Collector::collect(&vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("2ms"), Ok(Duration::from_millis(2)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_duration("500").expect_err("no unit").contains("unit"));
        assert!(parse_duration("5h")
            .expect_err("hours")
            .contains("unknown unit"));
        assert!(parse_duration("us").is_err());
    }
}
