//! The node's Prometheus gauges, set from every sample (not only from the
//! samples that are published to watchers).

use prometheus::{Gauge, GaugeVec, IntCounter, Opts, Registry};
use solyx_p4runtime::proto::solyx::node::v1 as pb;

/// The node gauges. Clones share the same series.
#[derive(Debug, Clone)]
pub struct NodeMetrics {
    info: GaugeVec,
    cpu_cores: GaugeVec,
    cpu_utilization: Gauge,
    load: GaugeVec,
    memory_total: GaugeVec,
    memory_available: Gauge,
    gpus: Gauge,
    gpu_memory_total: GaugeVec,
    gpu_memory_used: GaugeVec,
    gpu_utilization: GaugeVec,
    gpu_power: GaugeVec,
    accelerators: GaugeVec,
    power: GaugeVec,
    pub(crate) declared_errors: IntCounter,
    pub(crate) updates: IntCounter,
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("valid metric name and labels")
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// Unregistered gauges.
    ///
    /// # Panics
    /// Never: names and labels are constants checked by the tests.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let gpu = &["gpu", "model"];
        Self {
            info: gauge_vec(
                "solyx_node_info",
                "Always 1; the labels name the node and its place",
                &["node", "site", "rack", "pod", "version"],
            ),
            cpu_cores: gauge_vec("solyx_node_cpu_cores", "Logical CPUs", &["source"]),
            cpu_utilization: Gauge::new(
                "solyx_node_cpu_utilization_ratio",
                "Busy share of all CPUs over the last sampling period",
            )
            .expect("valid metric"),
            load: gauge_vec("solyx_node_load_average", "Load average", &["window"]),
            memory_total: gauge_vec("solyx_node_memory_total_bytes", "Memory", &["source"]),
            memory_available: Gauge::new(
                "solyx_node_memory_available_bytes",
                "Memory available for new work",
            )
            .expect("valid metric"),
            gpus: Gauge::new("solyx_node_gpus", "Number of GPUs").expect("valid metric"),
            gpu_memory_total: gauge_vec("solyx_node_gpu_memory_total_bytes", "GPU memory", gpu),
            gpu_memory_used: gauge_vec(
                "solyx_node_gpu_memory_used_bytes",
                "GPU memory in use",
                gpu,
            ),
            gpu_utilization: gauge_vec(
                "solyx_node_gpu_utilization_ratio",
                "GPU busy share over NVML's sample period",
                gpu,
            ),
            gpu_power: gauge_vec("solyx_node_gpu_power_watts", "GPU board power draw", gpu),
            accelerators: gauge_vec(
                "solyx_node_accelerators",
                "Declared accelerators other than GPUs",
                &["kind", "model"],
            ),
            power: gauge_vec(
                "solyx_node_power_watts",
                "Node power draw; absent when unknown",
                &["method"],
            ),
            declared_errors: IntCounter::new(
                "solyx_node_declared_reload_errors_total",
                "Changes of the declared-resources file that were refused (the last valid one stays)",
            )
            .expect("valid metric"),
            updates: IntCounter::new(
                "solyx_node_updates_total",
                "Node changes published to watchers",
            )
            .expect("valid metric"),
        }
    }

    /// Registers every series in `registry`.
    ///
    /// # Errors
    /// A series of the same name is already registered there.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.info.clone()))?;
        registry.register(Box::new(self.cpu_cores.clone()))?;
        registry.register(Box::new(self.cpu_utilization.clone()))?;
        registry.register(Box::new(self.load.clone()))?;
        registry.register(Box::new(self.memory_total.clone()))?;
        registry.register(Box::new(self.memory_available.clone()))?;
        registry.register(Box::new(self.gpus.clone()))?;
        registry.register(Box::new(self.gpu_memory_total.clone()))?;
        registry.register(Box::new(self.gpu_memory_used.clone()))?;
        registry.register(Box::new(self.gpu_utilization.clone()))?;
        registry.register(Box::new(self.gpu_power.clone()))?;
        registry.register(Box::new(self.accelerators.clone()))?;
        registry.register(Box::new(self.power.clone()))?;
        registry.register(Box::new(self.declared_errors.clone()))?;
        registry.register(Box::new(self.updates.clone()))?;
        Ok(())
    }

    /// Sets every gauge from `node`; series of GPUs, accelerators or power
    /// methods that are gone are removed.
    #[allow(clippy::cast_precision_loss)]
    pub fn update(&self, node: &pb::Node) {
        self.info.reset();
        self.info
            .with_label_values(&[
                node.name.as_str(),
                &node.site,
                &node.rack,
                &node.pod,
                &node.agent_version,
            ])
            .set(1.0);
        let cpu = node.cpu.unwrap_or_default();
        self.cpu_cores.reset();
        self.cpu_cores
            .with_label_values(&[source_name(cpu.cores_source)])
            .set(f64::from(cpu.cores));
        self.cpu_utilization.set(cpu.utilization);
        for (window, v) in [("1m", cpu.load1), ("5m", cpu.load5), ("15m", cpu.load15)] {
            self.load.with_label_values(&[window]).set(v);
        }
        let mem = node.memory.unwrap_or_default();
        self.memory_total.reset();
        self.memory_total
            .with_label_values(&[source_name(mem.total_source)])
            .set(mem.total_bytes as f64);
        self.memory_available.set(mem.available_bytes as f64);

        #[allow(clippy::cast_precision_loss)]
        self.gpus.set(node.gpus.len() as f64);
        for v in [
            &self.gpu_memory_total,
            &self.gpu_memory_used,
            &self.gpu_utilization,
            &self.gpu_power,
        ] {
            v.reset();
        }
        for g in &node.gpus {
            let index = g.index.to_string();
            let labels = [index.as_str(), g.model.as_str()];
            self.gpu_memory_total
                .with_label_values(&labels)
                .set(g.memory_bytes as f64);
            if let Some(u) = g.memory_used_bytes {
                self.gpu_memory_used
                    .with_label_values(&labels)
                    .set(u as f64);
            }
            if let Some(u) = g.utilization {
                self.gpu_utilization.with_label_values(&labels).set(u);
            }
            if let Some(w) = g.power_watts {
                self.gpu_power.with_label_values(&labels).set(w);
            }
        }
        self.accelerators.reset();
        for a in &node.accelerators {
            self.accelerators
                .with_label_values(&[a.kind.as_str(), a.model.as_str()])
                .add(f64::from(a.count));
        }
        self.power.reset();
        if let Some(p) = &node.power {
            if let Some(w) = p.watts {
                self.power.with_label_values(&[p.method.as_str()]).set(w);
            }
        }
    }
}

/// `declared` or `discovered`, as metric labels and the CLI write it.
#[must_use]
pub fn source_name(source: i32) -> &'static str {
    match pb::Source::try_from(source) {
        Ok(pb::Source::Declared) => "declared",
        Ok(pb::Source::Discovered) => "discovered",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn text(r: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&r.gather(), &mut out)
            .expect("encode");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn series_of_gone_gpus_and_unknown_power_disappear() {
        let registry = Registry::new();
        let m = NodeMetrics::new();
        m.register(&registry).expect("register");
        let mut node = pb::Node {
            name: "n1".into(),
            gpus: vec![pb::Gpu {
                index: 0,
                model: "T4".into(),
                memory_bytes: 16,
                utilization: Some(0.25),
                source: pb::Source::Discovered.into(),
                ..pb::Gpu::default()
            }],
            power: Some(pb::Power {
                watts: Some(90.0),
                source: pb::Source::Discovered.into(),
                method: "rapl".into(),
            }),
            ..pb::Node::default()
        };
        m.update(&node);
        let t = text(&registry);
        assert!(
            t.contains("solyx_node_gpu_utilization_ratio{gpu=\"0\",model=\"T4\"} 0.25"),
            "{t}"
        );
        assert!(
            t.contains("solyx_node_power_watts{method=\"rapl\"} 90"),
            "{t}"
        );
        assert!(!t.contains("solyx_node_gpu_power_watts{"), "{t}");

        node.gpus.clear();
        node.power = None;
        m.update(&node);
        let t = text(&registry);
        assert!(!t.contains("model=\"T4\""), "{t}");
        assert!(!t.contains("solyx_node_power_watts{"), "{t}");
        assert!(t.contains("solyx_node_info{node=\"n1\""), "{t}");
        assert!(t.contains("solyx_node_gpus 0"), "{t}");
    }
}
