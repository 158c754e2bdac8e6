//! Every Prometheus metric family the controller exports, defined in one
//! place so that names, labels and buckets stay consistent with the
//! dashboard in `docs/grafana/solyx.json`.
//!
//! Label values come from fixed sets (route templates, RPC names, result
//! reasons) or from the topology (device names, link IDs), never from
//! request data, so the number of series stays bounded.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::state::{Link, LinkState};

/// Latency buckets for API requests and P4Runtime RPCs, in seconds
/// (100 µs to 10 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The controller's metrics and the registry that exports them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `solyx_api_requests_total{method, route, status}`.
    pub api_requests: IntCounterVec,
    /// `solyx_api_request_duration_seconds{method, route, status}`.
    pub api_latency: HistogramVec,
    /// `solyx_p4rt_rpcs_total{device, rpc, code}`: P4Runtime calls by gRPC
    /// status code name (`ok`, `unavailable`, ...).
    pub p4rt_rpcs: IntCounterVec,
    /// `solyx_p4rt_rpc_duration_seconds{rpc}`.
    pub p4rt_latency: HistogramVec,
    /// `solyx_p4rt_updates_total{device, result}`: updates in Write
    /// requests, `result` is `ok` or `refused`.
    pub p4rt_updates: IntCounterVec,
    /// `solyx_int_reports_total{result}`: `accepted` or a rejection reason.
    pub int_reports: IntCounterVec,
    /// `solyx_link_up{link}`: 1 when up.
    pub link_up: IntGaugeVec,
    /// `solyx_link_latency_seconds{link}`.
    pub link_latency: GaugeVec,
    /// `solyx_link_utilisation_ratio{link}`, 0 to 1.
    pub link_utilisation: GaugeVec,
    /// `solyx_link_queue_packets{link}`.
    pub link_queue: GaugeVec,
    /// `solyx_link_loss_ratio{link}`, 0 to 1.
    pub link_loss: GaugeVec,
    /// `solyx_reroute_events_total{reason}`: `link_down`, `congestion`,
    /// `intent` or `topology`.
    pub reroutes: IntCounterVec,
    /// `solyx_reroute_duration_seconds{reason}`: from the event (link down,
    /// telemetry snapshot, topology change) to the device acknowledging
    /// the last write of the reroute.
    pub reroute_duration: HistogramVec,
    /// `solyx_devices_connected{role}`: devices whose session is up.
    pub devices_connected: IntGaugeVec,
}

/// Reasons a reroute happens (the `reason` label of
/// `solyx_reroute_events_total`).
pub const REROUTE_REASONS: &[&str] = &["link_down", "congestion", "intent", "topology"];

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    let h = HistogramVec::new(opts, labels).expect("valid histogram definition");
    registry
        .register(Box::new(h.clone()))
        .expect("metric names are unique");
    h
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family, registered in a fresh registry.
    ///
    /// # Panics
    /// Never for these constant definitions (any test would catch it).
    #[must_use]
    pub fn new() -> Self {
        let r = Registry::new();
        let devices_connected = IntGaugeVec::new(
            Opts::new(
                "solyx_devices_connected",
                "Devices with an open P4Runtime session, by role.",
            ),
            &["role"],
        )
        .expect("valid gauge definition");
        r.register(Box::new(devices_connected.clone()))
            .expect("metric names are unique");
        let link_up = IntGaugeVec::new(
            Opts::new("solyx_link_up", "1 when the link is up, 0 when down."),
            &["link"],
        )
        .expect("valid gauge definition");
        r.register(Box::new(link_up.clone()))
            .expect("metric names are unique");
        let metrics = Self {
            api_requests: counter(
                &r,
                "solyx_api_requests_total",
                "REST API requests, by route template and status.",
                &["method", "route", "status"],
            ),
            api_latency: histogram(
                &r,
                "solyx_api_request_duration_seconds",
                "REST API request latency, by route template and status.",
                &["method", "route", "status"],
            ),
            p4rt_rpcs: counter(
                &r,
                "solyx_p4rt_rpcs_total",
                "P4Runtime RPCs sent, by device, RPC and gRPC status code.",
                &["device", "rpc", "code"],
            ),
            p4rt_latency: histogram(
                &r,
                "solyx_p4rt_rpc_duration_seconds",
                "P4Runtime RPC latency, by RPC.",
                &["rpc"],
            ),
            p4rt_updates: counter(
                &r,
                "solyx_p4rt_updates_total",
                "Updates sent in P4Runtime Write requests, by device and result.",
                &["device", "result"],
            ),
            int_reports: counter(
                &r,
                "solyx_int_reports_total",
                "INT telemetry reports received, by result (accepted or the rejection reason).",
                &["result"],
            ),
            link_up,
            link_latency: gauge(
                &r,
                "solyx_link_latency_seconds",
                "Smoothed one-way latency of a link.",
                &["link"],
            ),
            link_utilisation: gauge(
                &r,
                "solyx_link_utilisation_ratio",
                "Share of a link's capacity in use, 0 to 1.",
                &["link"],
            ),
            link_queue: gauge(
                &r,
                "solyx_link_queue_packets",
                "Egress queue occupancy at the sending port of a link, in packets.",
                &["link"],
            ),
            link_loss: gauge(
                &r,
                "solyx_link_loss_ratio",
                "Share of probes lost on a link, 0 to 1.",
                &["link"],
            ),
            reroutes: counter(
                &r,
                "solyx_reroute_events_total",
                "Times the routing engine changed paths or weights, by reason.",
                &["reason"],
            ),
            reroute_duration: histogram(
                &r,
                "solyx_reroute_duration_seconds",
                "Time from a routing event to the devices acknowledging the new weights, by reason.",
                &["reason"],
            ),
            devices_connected,
            registry: r,
        };
        // Known label values start at zero, so that rates and dashboards
        // have a series before the first event.
        for reason in REROUTE_REASONS {
            metrics.reroutes.with_label_values(&[reason]);
        }
        metrics.int_reports.with_label_values(&["accepted"]);
        metrics
    }

    /// Sets the link gauges from a link's state and measurements.
    pub fn observe_link(&self, link: &Link) {
        let id = link.id.as_str();
        self.link_up
            .with_label_values(&[id])
            .set(i64::from(link.state == LinkState::Up));
        let t = &link.telemetry;
        if let Some(us) = t.latency_us {
            self.link_latency.with_label_values(&[id]).set(us / 1e6);
        }
        self.link_utilisation
            .with_label_values(&[id])
            .set(t.utilisation);
        if let Some(q) = t.queue_depth {
            #[expect(
                clippy::cast_precision_loss,
                reason = "queue depths are far below 2^52"
            )]
            self.link_queue.with_label_values(&[id]).set(q as f64);
        }
        self.link_loss.with_label_values(&[id]).set(t.loss);
    }

    /// Brings `solyx_int_reports_total` up to the collector's counts:
    /// `accepted` reports and every rejection reason. Counts only grow, so
    /// each call adds what arrived since the last one.
    pub fn observe_reports(&self, counts: &crate::telemetry::ReportCounters) {
        let catch_up = |result: &str, total: u64| {
            let c = self.int_reports.with_label_values(&[result]);
            let seen = c.get();
            if total > seen {
                c.inc_by(total - seen);
            }
        };
        catch_up("accepted", counts.reports);
        for (reason, n) in &counts.rejected {
            catch_up(reason, *n);
        }
    }

    /// Records one P4Runtime RPC.
    pub fn observe_p4rt_rpc(&self, device: &str, rpc: &str, code: tonic::Code, seconds: f64) {
        let code = if code == tonic::Code::Ok {
            "ok".to_string()
        } else {
            format!("{code:?}").to_lowercase()
        };
        self.p4rt_rpcs
            .with_label_values(&[device, rpc, &code])
            .inc();
        self.p4rt_latency.with_label_values(&[rpc]).observe(seconds);
    }

    /// The registry, to register further families.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every family in the Prometheus text format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec fails only on invalid metric definitions,
        // which `new` rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family name, with one series each so that the registry shows it.
    fn family_names() -> std::collections::BTreeSet<String> {
        let m = Metrics::new();
        m.api_requests
            .with_label_values(&["GET", "/x", "200"])
            .inc();
        m.api_latency
            .with_label_values(&["GET", "/x", "200"])
            .observe(0.1);
        m.observe_p4rt_rpc("d", "Write", tonic::Code::Ok, 0.1);
        m.p4rt_updates.with_label_values(&["d", "ok"]).inc();
        m.devices_connected.with_label_values(&["fabric"]).set(1);
        m.observe_link(&Link {
            id: "a:1->b:1".into(),
            src: crate::state::Endpoint::new("a", 1),
            dst: crate::state::Endpoint::new("b", 1),
            state: LinkState::Up,
            declared: true,
            discovered: true,
            bandwidth_bps: None,
            telemetry: crate::state::LinkTelemetry {
                latency_us: Some(1.0),
                utilisation: 0.1,
                queue_depth: Some(1),
                loss: 0.0,
            },
        });
        m.render()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect()
    }

    #[test]
    fn the_dashboard_uses_only_metrics_that_exist() {
        let names = family_names();
        assert_eq!(names.len(), 13, "{names:?}");
        let dashboard = include_str!("../../docs/grafana/solyx.json");
        let mut used = 0;
        for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.starts_with("solyx_") {
                continue;
            }
            let family = word
                .strip_suffix("_bucket")
                .or_else(|| word.strip_suffix("_sum"))
                .or_else(|| word.strip_suffix("_count"))
                .unwrap_or(word);
            assert!(
                names.contains(family),
                "the dashboard uses {word}, which is not exported"
            );
            used += 1;
        }
        assert!(used >= 13, "only {used} metric references in the dashboard");
    }

    #[test]
    fn rpc_codes_are_lowercase_names() {
        let m = Metrics::new();
        m.observe_p4rt_rpc("s1", "Write", tonic::Code::Unavailable, 0.01);
        assert!(m
            .render()
            .contains(r#"solyx_p4rt_rpcs_total{code="unavailable",device="s1",rpc="Write"} 1"#));
    }
}
