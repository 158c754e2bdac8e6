//! The report: header, statistics and the result tables.

use super::*;

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

pub(crate) fn print_header(options: &Options, cpus: &[usize]) {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "forwarding bench: {} sender thread(s) on {} CPU(s), {} run(s) of {:.2} s per \
         configuration (warm-up {:.2} s), kernel {}, load average {}",
        options.senders,
        cpus.len(),
        options.runs,
        options.window.as_secs_f64(),
        options.warmup.as_secs_f64(),
        kernel.trim(),
        load_average()
    );
}

/// The 1-minute load average (other work on the machine skews the figures).
pub(crate) fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Median, minimum and maximum.
pub(crate) fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (median, sorted[0], sorted[n - 1])
}

pub(crate) fn print_report(
    options: &Options,
    plan: &Plan,
    results: &BTreeMap<(Case, usize), Vec<Sample>>,
    profile: &BTreeMap<(Traffic, usize), [f64; 2]>,
) {
    let median = |case: Case, size: usize, field: fn(&Sample) -> f64| {
        results
            .get(&(case, size))
            .map(|samples| stats(&samples.iter().map(field).collect::<Vec<_>>()).0)
    };
    let rate = |s: &Sample| s.delivered;
    let cpu = |s: &Sample| s.cpu_ns;
    let kernel = Case {
        dut: Dut::Kernel,
        traffic: Traffic::Ipv4,
    };
    let direct = Case {
        dut: Dut::Direct,
        traffic: Traffic::Ipv4,
    };
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let ratio = |x: Option<f64>| x.map_or("-".to_owned(), |r| format!("{r:.2}x"));
    // This case against kernel forwarding: the median of the per-run ratios
    // (kernel and eBPF windows of one run are seconds apart, so pairing
    // them cancels slow changes of the background load), or the ratio of
    // the medians when the runs do not pair up. `lower_is_better` turns
    // the ratio around (CPU time per packet).
    let vs_kernel = |case: Case, size: usize, field: fn(&Sample) -> f64, lower_is_better: bool| {
        let own = results.get(&(case, size))?;
        let base = results.get(&(kernel, size))?;
        let ratio = |x: f64, k: f64| if lower_is_better { k / x } else { x / k };
        if own.len() == base.len() {
            let ratios: Vec<f64> = own
                .iter()
                .zip(base)
                .map(|(x, k)| ratio(field(x), field(k)))
                .collect();
            Some(stats(&ratios).0)
        } else {
            Some(ratio(
                median(case, size, field)?,
                median(kernel, size, field)?,
            ))
        }
    };
    // The faster of the two OVS port types for this traffic.
    let best_ovs = |traffic: Traffic, size: usize| {
        [Dut::Ovs, Dut::OvsXdp]
            .into_iter()
            .filter_map(|dut| median(Case { dut, traffic }, size, rate))
            .reduce(f64::max)
    };

    for &size in &options.sizes {
        let large = size == FRAME_LARGE;
        println!(
            "\n{}-byte frames ({size} B + FCS) delivered at the receiver: median of {} runs \
             (min-max); {date}",
            size + 4,
            options.runs
        );
        println!(
            "{:<27} {:>7} {:>15} {:>7} {:>9} {:>7} {:>8} {:>8} {:>8}",
            "config",
            if large { "Gbit/s" } else { "Mpps" },
            "(min-max)",
            "Mpps",
            "vs kernel",
            "vs OVS",
            "CPU ns/p",
            "fwd ns/p",
            "CPU eff"
        );
        let scale = |pps: f64| {
            if large {
                pps * size as f64 * 8.0 / 1e9
            } else {
                pps / 1e6
            }
        };
        for (dut, dut_traffics) in plan {
            let dut = *dut;
            for &traffic in dut_traffics {
                let case = Case { dut, traffic };
                let Some(samples) = results.get(&(case, size)) else {
                    continue;
                };
                let (med, min, max) = stats(&samples.iter().map(rate).collect::<Vec<_>>());
                let cost = median(case, size, cpu).unwrap_or(0.0);
                let comparable = dut != Dut::Direct;
                let faster = vs_kernel(case, size, rate, false).filter(|_| comparable);
                let vs_ovs = best_ovs(traffic, size)
                    .filter(|_| comparable && dut != Dut::TcFloor)
                    .map(|o| med / o);
                let forwarding = median(direct, size, cpu)
                    .filter(|_| comparable)
                    .map_or("-".to_owned(), |d| format!("{:.0}", cost - d));
                let efficiency = vs_kernel(case, size, cpu, true).filter(|_| comparable);
                println!(
                    "{:<27} {:>7.3} {:>15} {:>7.3} {:>9} {:>7} {:>8.0} {:>8} {:>8}",
                    case.label(),
                    scale(med),
                    format!("({:.3}-{:.3})", scale(min), scale(max)),
                    med / 1e6,
                    ratio(faster),
                    ratio(vs_ovs),
                    cost,
                    forwarding,
                    ratio(efficiency)
                );
            }
        }

        let direct_rate = median(direct, size, rate);
        for &traffic in traffics(plan, Dut::Ebpf) {
            let case = Case {
                dut: Dut::Ebpf,
                traffic,
            };
            let Some(ebpf) = median(case, size, rate) else {
                continue;
            };
            let mut line = format!("goals {:<27}", case.label());
            if let Some(r) = vs_kernel(case, size, rate, false) {
                let _ = write!(
                    line,
                    " >= 1.3x kernel: {r:.2}x {}",
                    if r >= 1.3 { "met" } else { "NOT met" }
                );
            }
            if let Some(o) = best_ovs(traffic, size) {
                let r = ebpf / o;
                let _ = write!(
                    line,
                    "; >= 1x OVS: {r:.2}x {}",
                    if r >= 1.0 { "met" } else { "NOT met" }
                );
            } else if plan
                .iter()
                .any(|(dut, _)| matches!(dut, Dut::Ovs | Dut::OvsXdp))
            {
                line.push_str("; OVS: not measured");
            } else {
                line.push_str("; OVS: absent");
            }
            if direct_rate.is_some_and(|d| ebpf >= 0.95 * d) {
                line.push_str("; sender-bound (within 5% of the direct rate)");
            }
            println!("{line}");
        }
        let bpf: Vec<String> = traffics(plan, Dut::Ebpf)
            .iter()
            .filter_map(|&traffic| {
                let case = Case {
                    dut: Dut::Ebpf,
                    traffic,
                };
                profile.get(&(traffic, size)).map(|[ingress, egress]| {
                    format!(
                        "{}: ingress {ingress:.0} ns + egress {egress:.0} ns",
                        case.label()
                    )
                })
            })
            .collect();
        if !bpf.is_empty() {
            println!("BPF run time per packet (kernel BPF statistics, one extra window each):");
            for line in bpf {
                println!("  {line}");
            }
        }
    }
    println!(
        "\nCPU ns/p: CPU time per delivered packet (sender threads, which also run the \
         softirqs of both veth hops, the forwarding and the receiver's drop; ksoftirqd; \
         ovs-vswitchd for OVS). vs kernel, CPU eff: median of the per-run ratios. vs OVS: \
         against the faster OVS port type (ratio of medians). fwd ns/p: the same minus the direct path's, i.e. what the \
         forwarder adds. CPU eff: the kernel's CPU ns/p over this row's (above 1: \
         cheaper per packet than kernel forwarding). Throughput shares the CPUs with \
         whatever else runs; CPU per packet does not depend on that share."
    );
}
