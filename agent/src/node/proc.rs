//! CPU, load and memory from `/proc` (through the `procfs` crate), and the
//! host name.

use procfs::{Current, CurrentSI, KernelStats, LoadAverage, Meminfo};

/// One reading of `/proc`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcSample {
    /// Online logical CPUs.
    pub cores: u32,
    /// Busy share of all CPUs since the previous reading, 0..1.
    pub utilization: f64,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    /// MemTotal, bytes.
    pub memory_total: u64,
    /// MemAvailable (MemFree on kernels before 3.14), bytes.
    pub memory_available: u64,
}

/// Reads `/proc` and keeps the previous CPU times, so that each reading
/// gives the utilisation since the one before.
#[derive(Debug, Default)]
pub struct ProcReader {
    /// (busy, total) CPU ticks at the previous reading.
    last_ticks: Option<(u64, u64)>,
}

impl ProcReader {
    /// A reader with no previous reading (the first utilisation is 0).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `/proc/stat`, `/proc/loadavg` and `/proc/meminfo`.
    ///
    /// # Errors
    /// A file is missing or malformed (not a Linux `/proc`).
    pub fn read(&mut self) -> Result<ProcSample, procfs::ProcError> {
        let stat = KernelStats::current()?;
        let t = &stat.total;
        let idle = t.idle + t.iowait.unwrap_or(0);
        let total = t.user
            + t.nice
            + t.system
            + idle
            + t.irq.unwrap_or(0)
            + t.softirq.unwrap_or(0)
            + t.steal.unwrap_or(0);
        let busy = total - idle;
        let utilization = match self.last_ticks.replace((busy, total)) {
            Some((b0, t0)) if total > t0 => {
                #[allow(clippy::cast_precision_loss)]
                let u = busy.saturating_sub(b0) as f64 / (total - t0) as f64;
                u.clamp(0.0, 1.0)
            }
            _ => 0.0,
        };
        let load = LoadAverage::current()?;
        let mem = Meminfo::current()?;
        Ok(ProcSample {
            cores: u32::try_from(stat.cpu_time.len()).unwrap_or(u32::MAX),
            utilization,
            // The kernel keeps two decimals; f32 would add digits of its own.
            load: [load.one, load.five, load.fifteen]
                .map(|l| (f64::from(l) * 100.0).round() / 100.0),
            memory_total: mem.mem_total,
            memory_available: mem.mem_available.unwrap_or(mem.mem_free),
        })
    }
}

/// The host name (`/proc/sys/kernel/hostname`), or `localhost`.
#[must_use]
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let mut r = ProcReader::new();
        let first = r.read().expect("/proc");
        assert!(first.cores >= 1);
        assert!(first.memory_total > 0);
        assert!(first.memory_available <= first.memory_total);
        // The process may be limited to fewer CPUs than the node has.
        let usable = std::thread::available_parallelism().map_or(1, usize::from);
        assert!(first.cores as usize >= usable);
        let second = r.read().expect("/proc");
        assert!((0.0..=1.0).contains(&second.utilization));
        assert!(!hostname().is_empty());
    }
}
