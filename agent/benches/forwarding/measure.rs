//! Measurement windows: packets delivered per window, CPU time per packet
//! and the eBPF stage's kernel-measured run time and counters.

use super::*;

/// One window per traffic kind and frame size in `sizes` through `dut` (set
/// up already): the samples, with a progress line per traffic kind.
pub(crate) fn measure_dut(
    bed: &Testbed,
    dut: Dut,
    dut_traffics: &[Traffic],
    sizes: &[usize],
    run: usize,
    options: &Options,
    cpus: &[usize],
) -> Result<Vec<((Case, usize), Sample)>> {
    let mut samples = Vec::new();
    for &traffic in dut_traffics {
        let case = Case { dut, traffic };
        let mut line = format!("run {}/{}  {:<27}", run + 1, options.runs, case.label());
        for &size in sizes {
            let sample = bed.measure(case, size, options, cpus)?;
            if sample.delivered <= 0.0 {
                bail!(
                    "{} delivered nothing with {size}-byte frames (offered {:.3} Mpps): \
                     the forwarder is not set up",
                    case.label(),
                    sample.offered / 1e6
                );
            }
            let _ = write!(
                line,
                "  {size:>4} B {:>6.3} Mpps (offered {:>6.3})",
                sample.delivered / 1e6,
                sample.offered / 1e6
            );
            samples.push(((case, size), sample));
        }
        println!("{line}");
    }
    Ok(samples)
}

impl Testbed {
    /// One window: senders start, warm up, the receiver's counters are read
    /// before and after the window, senders stop.
    pub(crate) fn measure(
        &self,
        case: Case,
        size: usize,
        options: &Options,
        cpus: &[usize],
    ) -> Result<Sample> {
        let direct = case.dut == Dut::Direct;
        let mut ports = Vec::new();
        let mut frames = Vec::new();
        for k in 0..self.senders {
            let (port, src, dst) = if direct {
                (
                    self.direct_port(k),
                    mac(ROLE_DIRECT, k),
                    mac(ROLE_DIRECT_SINK, k),
                )
            } else {
                (self.gen_port(k), mac(ROLE_GEN, k), mac(ROLE_DUT_IN, k))
            };
            ports.push(port);
            frames.push(
                (0..FLOWS)
                    .map(|flow| build_frame(case.traffic, size, k, flow, src, dst))
                    .collect::<Vec<_>>(),
            );
        }
        let senders = Senders::start(&self.gen, &ports, frames, cpus)?;
        pause(options.warmup)?;
        senders.check()?;
        let mut tasks = senders.tasks();
        tasks.extend(ksoftirqd_tasks());
        if case.dut.is_ovs() {
            if let Some(pid) = self.ovs.as_ref().and_then(Ovs::vswitchd_pid) {
                tasks.extend(process_tasks(pid));
            }
        }
        let cpu0 = cpu_ns(&tasks);
        let (rx0, sent0, t0) = (self.delivered()?, senders.sent(), Instant::now());
        pause(options.window)?;
        let (rx1, sent1, t1) = (self.delivered()?, senders.sent(), Instant::now());
        let cpu1 = cpu_ns(&tasks);
        senders.stop()?;
        let seconds = (t1 - t0).as_secs_f64();
        let delivered = rx1.saturating_sub(rx0);
        Ok(Sample {
            delivered: delivered as f64 / seconds,
            offered: sent1.saturating_sub(sent0) as f64 / seconds,
            cpu_ns: cpu1.saturating_sub(cpu0) as f64 / delivered.max(1) as f64,
        })
    }

    /// Packets received by the sink's ports (every port but `lo`).
    pub(crate) fn delivered(&self) -> Result<u64> {
        in_netns(&self.sink, || {
            let text = fs::read_to_string("/proc/thread-self/net/dev")
                .context("read /proc/thread-self/net/dev")?;
            let mut total = 0u64;
            for line in text.lines().skip(2) {
                let Some((name, counters)) = line.split_once(':') else {
                    continue;
                };
                if name.trim() == "lo" {
                    continue;
                }
                let packets = counters
                    .split_whitespace()
                    .nth(1)
                    .and_then(|field| field.parse::<u64>().ok())
                    .ok_or_else(|| anyhow!("unexpected /proc/net/dev line {line:?}"))?;
                total = total.saturating_add(packets);
            }
            Ok(total)
        })
    }

    /// Nanoseconds the fabric program runs per packet, for each eBPF case
    /// and frame size (one extra window each, with the kernel's BPF run-time
    /// statistics on only for that window). Empty when the kernel refuses.
    pub(crate) fn profile_fabric(
        &mut self,
        options: &Options,
        cpus: &[usize],
        traffics: &[Traffic],
    ) -> Result<BTreeMap<(Traffic, usize), [f64; 2]>> {
        let mut profile = BTreeMap::new();
        if traffics.is_empty() {
            return Ok(profile);
        }
        let stats = match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(fd) => fd,
            Err(e) => {
                println!("(no BPF run-time statistics: {e})");
                return Ok(profile);
            }
        };
        self.enter(Dut::Ebpf)?;
        for &traffic in traffics {
            for &size in &options.sizes {
                let before = self.fabric_runtime()?;
                self.measure(
                    Case {
                        dut: Dut::Ebpf,
                        traffic,
                    },
                    size,
                    options,
                    cpus,
                )?;
                let after = self.fabric_runtime()?;
                let mut per_run = [0.0; 2];
                for (slot, ((t0, n0), (t1, n1))) in
                    per_run.iter_mut().zip(before.into_iter().zip(after))
                {
                    let runs = n1.saturating_sub(n0);
                    if runs > 0 {
                        *slot = t1.saturating_sub(t0).as_nanos() as f64 / runs as f64;
                    }
                }
                profile.insert((traffic, size), per_run);
            }
        }
        self.leave(Dut::Ebpf)?;
        drop(stats);
        Ok(profile)
    }

    /// The accumulated run time and run count of the ingress and of the
    /// egress program.
    pub(crate) fn fabric_runtime(&mut self) -> Result<[(Duration, u64); 2]> {
        let Some(fabric) = self.fabric.as_mut() else {
            bail!("the fabric stage is not loaded");
        };
        let ingress = fabric
            .program()
            .context("fabric program")?
            .info()
            .context("fabric program info")?;
        let egress = IntTransit::program(fabric)
            .context("egress program")?
            .info()
            .context("egress program info")?;
        Ok([
            (ingress.run_time(), ingress.run_count()),
            (egress.run_time(), egress.run_count()),
        ])
    }

    /// The fabric program's size and its hit and drop counters, as text.
    pub(crate) fn fabric_counters(&mut self) -> Result<String> {
        let Some(fabric) = self.fabric.as_mut() else {
            return Ok(String::new());
        };
        let info = fabric
            .program()
            .context("fabric program")?
            .info()
            .context("fabric program info")?;
        let egress = IntTransit::program(fabric)
            .context("egress program")?
            .info()
            .context("egress program info")?;
        let size = format!(
            "programs: fabric_ingress {} BPF instructions after the verifier ({} bytes \
             JIT-compiled), fabric_egress {} ({} bytes)",
            info.size_translated().map_or(0, |bytes| bytes / 8),
            info.size_jitted(),
            egress.size_translated().map_or(0, |bytes| bytes / 8),
            egress.size_jitted()
        );
        let transit = fabric.mpls_hits(LABEL_TRANSIT)?;
        let pop = fabric.mpls_hits(LABEL_POP)?;
        let drops: Vec<String> = fabric
            .drop_counts()?
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(reason, count)| format!("{reason:?} {count}"))
            .collect();
        Ok(format!(
            "{size}\nfabric counters over the run: label {LABEL_TRANSIT} (transit) {} packets, \
             label {LABEL_POP} (pop) {} packets; drop reasons: {}",
            transit.packets,
            pop.packets,
            if drops.is_empty() {
                "none".to_owned()
            } else {
                drops.join(", ")
            }
        ))
    }
}
