//! CPU, load and memory from `/proc` (through the `procfs` crate), and the
//! host name.

use std::time::{Duration, Instant};

use procfs::{Current, CurrentSI, KernelStats, LoadAverage, Meminfo};

/// CPU utilisation is measured over windows of at least this long: short
/// windows make it jump with every burst, and every jump would be a change
/// to publish.
pub const UTILIZATION_WINDOW: Duration = Duration::from_secs(1);

/// One reading of `/proc`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcSample {
    /// Online logical CPUs.
    pub cores: u32,
    /// Busy share of all CPUs over the last closed window, 0..1.
    pub utilization: f64,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    /// MemTotal, bytes.
    pub memory_total: u64,
    /// MemAvailable (MemFree on kernels before 3.14), bytes.
    pub memory_available: u64,
}

/// Reads `/proc` and keeps the CPU times at the start of the current
/// window, so that each reading gives the utilisation over the last
/// window of at least [`UTILIZATION_WINDOW`] (the first window closes at
/// the second reading, so that a starting agent soon has a figure).
#[derive(Debug, Default)]
pub struct ProcReader {
    /// When the current window opened, and the (busy, total) CPU ticks then.
    window: Option<(Instant, u64, u64)>,
    /// The utilisation over the last closed window.
    utilization: Option<f64>,
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
        let now = Instant::now();
        match self.window {
            Some((opened, b0, t0)) => {
                let closes =
                    self.utilization.is_none() || now.duration_since(opened) >= UTILIZATION_WINDOW;
                if closes && total > t0 {
                    #[allow(clippy::cast_precision_loss)]
                    let u = busy.saturating_sub(b0) as f64 / (total - t0) as f64;
                    self.utilization = Some(u.clamp(0.0, 1.0));
                    self.window = Some((now, busy, total));
                }
            }
            None => self.window = Some((now, busy, total)),
        }
        let utilization = self.utilization.unwrap_or(0.0);
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
        assert_eq!(first.utilization, 0.0, "no window yet");
        assert!(first.cores >= 1);
        assert!(first.memory_total > 0);
        assert!(first.memory_available <= first.memory_total);
        // The process may be limited to fewer CPUs than the node has.
        let usable = std::thread::available_parallelism().map_or(1, usize::from);
        assert!(first.cores as usize >= usable);
        // Burn CPU so that the tick counters move, then close the window.
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            std::hint::black_box(0u64);
        }
        let second = r.read().expect("/proc");
        assert!(
            second.utilization > 0.0 && second.utilization <= 1.0,
            "{second:?}"
        );
        assert!(!hostname().is_empty());
    }
}
