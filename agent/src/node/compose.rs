//! The node as served: what was discovered, with what was declared laid
//! over it, and whether two such views differ enough to tell watchers.

use solyx_p4runtime::proto::solyx::node::v1 as pb;

use super::declared::Declared;
use super::gpu::GpuSample;
use super::proc::ProcSample;

/// Everything discovered at one sampling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    /// Host name.
    pub hostname: String,
    /// `/proc` reading.
    pub proc: ProcSample,
    /// NVML GPUs.
    pub gpus: Vec<GpuSample>,
    /// RAPL power, watts.
    pub rapl_watts: Option<f64>,
}

/// The agent's version, reported in every node.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Lays `declared` over `discovered`. `sampled_at` is left unset.
#[must_use]
pub fn compose(discovered: &Discovered, declared: &Declared) -> pb::Node {
    let label = |l: &Option<super::declared::Label>| {
        l.as_ref()
            .map(|l| l.as_str().to_string())
            .unwrap_or_default()
    };
    let p = &discovered.proc;
    let cpu = pb::Cpu {
        cores: declared.cpus.map_or(p.cores, std::num::NonZeroU32::get),
        cores_source: source(declared.cpus.is_some()),
        utilization: p.utilization,
        load1: p.load[0],
        load5: p.load[1],
        load15: p.load[2],
    };
    let total = declared.memory.map_or(p.memory_total, |s| s.0);
    let memory = pb::Memory {
        total_bytes: total,
        total_source: source(declared.memory.is_some()),
        available_bytes: p.memory_available.min(total),
    };
    let gpus = match &declared.gpus {
        Some(groups) => {
            let mut out = Vec::new();
            for g in groups {
                for _ in 0..g.count.get() {
                    out.push(pb::Gpu {
                        index: u32::try_from(out.len()).unwrap_or(u32::MAX),
                        model: g.model.as_str().to_string(),
                        memory_bytes: g.memory.map_or(0, |s| s.0),
                        source: pb::Source::Declared.into(),
                        ..pb::Gpu::default()
                    });
                }
            }
            out
        }
        None => discovered
            .gpus
            .iter()
            .map(|g| pb::Gpu {
                index: g.index,
                model: g.model.clone(),
                memory_bytes: g.memory_total,
                memory_used_bytes: g.memory_used,
                utilization: g.utilization,
                power_watts: g.power_watts,
                uuid: g.uuid.clone(),
                source: pb::Source::Discovered.into(),
            })
            .collect(),
    };
    let accelerators = declared
        .accelerators
        .iter()
        .map(|a| pb::Accelerator {
            kind: a.kind.as_str().to_string(),
            model: a.model.as_str().to_string(),
            count: a.count.get(),
            memory_bytes: a.memory.map_or(0, |s| s.0),
        })
        .collect();
    pb::Node {
        name: declared
            .name
            .as_ref()
            .map_or_else(|| discovered.hostname.clone(), |n| n.as_str().to_string()),
        site: label(&declared.site),
        rack: label(&declared.rack),
        pod: label(&declared.pod),
        cpu: Some(cpu),
        memory: Some(memory),
        gpus,
        accelerators,
        power: Some(power(discovered, declared)),
        sampled_at: None,
        agent_version: AGENT_VERSION.to_string(),
    }
}

fn source(declared: bool) -> i32 {
    if declared {
        pb::Source::Declared.into()
    } else {
        pb::Source::Discovered.into()
    }
}

/// Declared power, else RAPL plus the GPUs' boards (when the GPUs are
/// the discovered ones), else unknown.
fn power(discovered: &Discovered, declared: &Declared) -> pb::Power {
    if let Some(w) = declared.power_watts {
        return pb::Power {
            watts: Some(w.0),
            source: pb::Source::Declared.into(),
            method: "declared".into(),
        };
    }
    let gpu_watts: Option<f64> = if declared.gpus.is_some() {
        None
    } else {
        discovered
            .gpus
            .iter()
            .filter_map(|g| g.power_watts)
            .reduce(|a, b| a + b)
    };
    let (watts, method) = match (discovered.rapl_watts, gpu_watts) {
        (Some(r), Some(g)) => (Some(r + g), "rapl+nvml"),
        (Some(r), None) => (Some(r), "rapl"),
        (None, Some(g)) => (Some(g), "nvml"),
        (None, None) => (None, ""),
    };
    pb::Power {
        watts,
        source: if watts.is_some() {
            pb::Source::Discovered.into()
        } else {
            pb::Source::Unspecified.into()
        },
        method: method.into(),
    }
}

/// Dead bands: a gauge that moves less than this is not a change worth an
/// update (the heartbeat carries it).
pub mod dead_band {
    /// CPU or GPU utilisation, as a share (5 points).
    pub const UTILIZATION: f64 = 0.05;
    /// Load average.
    pub const LOAD: f64 = 0.25;
    /// Memory available or used, as a share of the total.
    pub const MEMORY_SHARE: f64 = 0.01;
    /// Power, as a share of the larger value, ...
    pub const POWER_SHARE: f64 = 0.05;
    /// ... but at least this many watts.
    pub const POWER_WATTS: f64 = 5.0;
}

/// Whether `a` and `b` differ by more than the dead bands: any change of
/// an inventory value (name, labels, cores, totals, GPU list,
/// accelerators, power source), or a gauge moving past its dead band.
#[must_use]
pub fn differs(a: &pb::Node, b: &pb::Node) -> bool {
    use dead_band as d;
    if inventory(a) != inventory(b) {
        return true;
    }
    let moved = |x: f64, y: f64, band: f64| (x - y).abs() >= band;
    let (ca, cb) = (a.cpu.unwrap_or_default(), b.cpu.unwrap_or_default());
    if moved(ca.utilization, cb.utilization, d::UTILIZATION)
        || moved(ca.load1, cb.load1, d::LOAD)
        || moved(ca.load5, cb.load5, d::LOAD)
        || moved(ca.load15, cb.load15, d::LOAD)
    {
        return true;
    }
    let (ma, mb) = (a.memory.unwrap_or_default(), b.memory.unwrap_or_default());
    if share_moved(ma.available_bytes, mb.available_bytes, ma.total_bytes) {
        return true;
    }
    let power_moved = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => moved(x, y, (x.max(y) * d::POWER_SHARE).max(d::POWER_WATTS)),
        (x, y) => x.is_some() != y.is_some(),
    };
    // Same length and presence of each value: `inventory` matched.
    for (ga, gb) in a.gpus.iter().zip(&b.gpus) {
        let used = |g: &pb::Gpu| g.memory_used_bytes.unwrap_or(0);
        if share_moved(used(ga), used(gb), ga.memory_bytes)
            || moved(
                ga.utilization.unwrap_or(0.0),
                gb.utilization.unwrap_or(0.0),
                d::UTILIZATION,
            )
            || power_moved(ga.power_watts, gb.power_watts)
        {
            return true;
        }
    }
    power_moved(
        a.power.as_ref().and_then(|p| p.watts),
        b.power.as_ref().and_then(|p| p.watts),
    )
}

fn share_moved(x: u64, y: u64, total: u64) -> bool {
    #[allow(clippy::cast_precision_loss)]
    let band = (total as f64 * dead_band::MEMORY_SHARE).max(1.0);
    #[allow(clippy::cast_precision_loss)]
    let delta = x.abs_diff(y) as f64;
    delta >= band
}

/// `n` without its gauges and sampling time: what must match exactly.
fn inventory(n: &pb::Node) -> pb::Node {
    let mut n = n.clone();
    n.sampled_at = None;
    if let Some(c) = &mut n.cpu {
        c.utilization = 0.0;
        c.load1 = 0.0;
        c.load5 = 0.0;
        c.load15 = 0.0;
    }
    if let Some(m) = &mut n.memory {
        m.available_bytes = 0;
    }
    for g in &mut n.gpus {
        g.memory_used_bytes = g.memory_used_bytes.map(|_| 0);
        g.utilization = g.utilization.map(|_| 0.0);
        g.power_watts = g.power_watts.map(|_| 0.0);
    }
    if let Some(p) = &mut n.power {
        p.watts = p.watts.map(|_| 0.0);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn discovered() -> Discovered {
        Discovered {
            hostname: "host".into(),
            proc: ProcSample {
                cores: 2,
                utilization: 0.5,
                load: [1.0, 1.0, 1.0],
                memory_total: 8 << 30,
                memory_available: 6 << 30,
            },
            gpus: vec![GpuSample {
                index: 0,
                model: "T4".into(),
                uuid: "GPU-1".into(),
                memory_total: 16 << 30,
                memory_used: Some(1 << 30),
                utilization: Some(0.1),
                power_watts: Some(30.0),
            }],
            rapl_watts: Some(50.0),
        }
    }

    fn declared(text: &str) -> Declared {
        Declared::parse(Path::new("t.yaml"), text).expect("valid")
    }

    #[test]
    fn discovered_values_stand_where_nothing_is_declared() {
        let n = compose(&discovered(), &Declared::default());
        assert_eq!(n.name, "host");
        assert_eq!(n.cpu.expect("cpu").cores, 2);
        assert_eq!(n.gpus.len(), 1);
        assert_eq!(n.gpus[0].source(), pb::Source::Discovered);
        let p = n.power.expect("power");
        assert_eq!((p.watts, p.method.as_str()), (Some(80.0), "rapl+nvml"));
    }

    #[test]
    fn declared_values_override_and_available_memory_is_capped() {
        let d = declared("cpus: 16\nmemory: 4GiB\ngpus: []\n");
        let n = compose(&discovered(), &d);
        let cpu = n.cpu.expect("cpu");
        assert_eq!((cpu.cores, cpu.cores_source()), (16, pb::Source::Declared));
        assert_eq!(cpu.utilization, 0.5, "gauges stay discovered");
        let m = n.memory.expect("memory");
        assert_eq!((m.total_bytes, m.available_bytes), (4 << 30, 4 << 30));
        assert!(n.gpus.is_empty(), "an empty list declares no GPUs");
        // Declared GPUs: the boards' power no longer counts.
        assert_eq!(n.power.expect("power").method, "rapl");
    }

    #[test]
    fn gauges_inside_their_dead_bands_are_no_change() {
        let a = compose(&discovered(), &Declared::default());
        let mut d = discovered();
        d.proc.utilization += 0.01;
        d.proc.load[0] += 0.1;
        d.proc.memory_available -= 16 << 20; // 0.2% of the total
        d.rapl_watts = Some(52.0);
        assert!(!differs(&a, &compose(&d, &Declared::default())));

        for change in [
            |d: &mut Discovered| d.proc.utilization += 0.2,
            |d: &mut Discovered| d.proc.load[2] += 1.0,
            |d: &mut Discovered| d.proc.memory_available -= 1 << 30,
            |d: &mut Discovered| d.rapl_watts = Some(150.0),
            |d: &mut Discovered| d.rapl_watts = None,
            |d: &mut Discovered| d.gpus[0].utilization = Some(0.9),
            |d: &mut Discovered| d.gpus.clear(),
            |d: &mut Discovered| d.hostname = "other".into(),
        ] {
            let mut d = discovered();
            change(&mut d);
            assert!(differs(&a, &compose(&d, &Declared::default())), "{d:?}");
        }
        let relabelled = compose(&discovered(), &declared("rack: r2\n"));
        assert!(differs(&a, &relabelled));
    }
}
