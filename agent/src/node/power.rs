//! Power draw from the Linux powercap RAPL energy counters
//! (`/sys/class/powercap/intel-rapl:N/energy_uj`, also used for AMD
//! packages): watts are the energy used between two readings over the time
//! between them.
//!
//! The top-level zones are summed (one per CPU package); when a `psys`
//! zone (the whole platform) exists, it is used alone, since it already
//! contains the packages. Counters wrap at `max_energy_range_uj`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{debug, info};

/// Where the kernel exposes powercap zones.
pub const POWERCAP_ROOT: &str = "/sys/class/powercap";

/// Shortest time between the two readings of a power value: shorter
/// windows make the counters' update granularity visible as noise.
pub const MIN_WINDOW: Duration = Duration::from_millis(900);

#[derive(Debug, Clone)]
struct Zone {
    energy: PathBuf,
    /// The counter wraps to 0 past this value, µJ.
    range: u64,
}

/// Reads RAPL energy counters and turns them into watts.
#[derive(Debug)]
pub struct PowerReader {
    zones: Vec<Zone>,
    last: Option<(Instant, Vec<u64>)>,
    watts: Option<f64>,
}

impl PowerReader {
    /// Finds the RAPL zones under `root` (normally [`POWERCAP_ROOT`]). No
    /// zone (no RAPL, or counters unreadable, as for non-root users on
    /// recent kernels): power is unknown.
    #[must_use]
    pub fn open(root: &Path) -> Self {
        let zones = find_zones(root);
        if zones.is_empty() {
            info!(root = %root.display(), "no readable RAPL energy counters: power draw unknown unless declared");
        } else {
            info!(zones = zones.len(), "power draw from RAPL energy counters");
        }
        Self {
            zones,
            last: None,
            watts: None,
        }
    }

    /// Whether any counter was found.
    #[must_use]
    pub fn available(&self) -> bool {
        !self.zones.is_empty()
    }

    /// Reads the counters at `now`; returns the power over the last window
    /// of at least [`MIN_WINDOW`](super::POWER_WINDOW) (the previous value in between, `None`
    /// until the first window closes or when a counter cannot be read).
    pub fn read(&mut self, now: Instant) -> Option<f64> {
        if self.zones.is_empty() {
            return None;
        }
        if let Some((at, _)) = &self.last {
            if now.duration_since(*at) < MIN_WINDOW {
                return self.watts;
            }
        }
        let mut energy = Vec::with_capacity(self.zones.len());
        for z in &self.zones {
            match read_u64(&z.energy) {
                Some(e) => energy.push(e),
                None => {
                    debug!(file = %z.energy.display(), "RAPL counter unreadable");
                    self.last = None;
                    self.watts = None;
                    return None;
                }
            }
        }
        if let Some((at, before)) = self.last.replace((now, energy.clone())) {
            let seconds = now.duration_since(at).as_secs_f64();
            let used: u64 = self
                .zones
                .iter()
                .zip(before.iter().zip(&energy))
                .map(|(z, (&b, &e))| {
                    if e >= b {
                        e - b
                    } else {
                        // Wrapped once (windows are far shorter than a wrap).
                        z.range.saturating_sub(b) + e
                    }
                })
                .sum();
            #[allow(clippy::cast_precision_loss)]
            let watts = used as f64 / 1e6 / seconds;
            self.watts = Some(watts);
        }
        self.watts
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The top-level RAPL zones (`intel-rapl:N`, not subzones `intel-rapl:N:M`)
/// whose counters can be read; only `psys` when present.
fn find_zones(root: &Path) -> Vec<Zone> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut packages = Vec::new();
    let mut psys = None;
    let mut names: Vec<_> = dir
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix("intel-rapl:")
                .is_some_and(|r| !r.contains(':'))
        })
        .collect();
    names.sort();
    for name in names {
        let zone = root.join(&name);
        let energy = zone.join("energy_uj");
        let (Some(_), Some(range)) = (
            read_u64(&energy),
            read_u64(&zone.join("max_energy_range_uj")),
        ) else {
            continue;
        };
        let z = Zone { energy, range };
        let label = std::fs::read_to_string(zone.join("name")).unwrap_or_default();
        if label.trim() == "psys" {
            psys = Some(z);
        } else {
            packages.push(z);
        }
    }
    psys.map_or(packages, |p| vec![p])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `/sys/class/powercap` (this machine has no RAPL):
    /// the same files, written by the test.
    struct FakePowercap {
        dir: PathBuf,
    }

    impl FakePowercap {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("solyx-powercap-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self { dir }
        }
        fn zone(&self, zone: &str, name: &str, energy: u64, range: u64) {
            let z = self.dir.join(zone);
            std::fs::create_dir_all(&z).expect("zone");
            std::fs::write(z.join("name"), format!("{name}\n")).expect("name");
            std::fs::write(z.join("max_energy_range_uj"), format!("{range}\n")).expect("range");
            self.set(zone, energy);
        }
        fn set(&self, zone: &str, energy: u64) {
            std::fs::write(self.dir.join(zone).join("energy_uj"), format!("{energy}\n"))
                .expect("energy");
        }
    }

    impl Drop for FakePowercap {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn packages_are_summed_over_a_window_and_wraps_are_handled() {
        let fake = FakePowercap::new("sum");
        fake.zone("intel-rapl:0", "package-0", 1_000_000, 10_000_000);
        fake.zone("intel-rapl:1", "package-1", 9_500_000, 10_000_000);
        fake.zone("intel-rapl:0:0", "core", 0, 10_000_000); // a subzone: ignored
        let mut r = PowerReader::open(&fake.dir);
        assert!(r.available());
        let t0 = Instant::now();
        assert_eq!(r.read(t0), None, "one reading is not a window");
        // Package 0 uses 30 J, package 1 wraps and uses 1 J, over 2 s.
        fake.set("intel-rapl:0", 31_000_000);
        fake.set("intel-rapl:1", 500_000);
        assert_eq!(
            r.read(t0 + Duration::from_millis(100)),
            None,
            "window too short"
        );
        let w = r.read(t0 + Duration::from_secs(2)).expect("watts");
        assert!((w - 15.5).abs() < 1e-9, "{w}");
    }

    #[test]
    fn psys_alone_when_present_and_nothing_without_zones() {
        let fake = FakePowercap::new("psys");
        fake.zone("intel-rapl:0", "package-0", 0, 1 << 40);
        fake.zone("intel-rapl:1", "psys", 0, 1 << 40);
        let mut r = PowerReader::open(&fake.dir);
        let t0 = Instant::now();
        r.read(t0);
        fake.set("intel-rapl:0", 50_000_000);
        fake.set("intel-rapl:1", 80_000_000);
        assert_eq!(r.read(t0 + Duration::from_secs(1)), Some(80.0));

        let empty = FakePowercap::new("empty");
        let mut r = PowerReader::open(&empty.dir);
        assert!(!r.available());
        assert_eq!(r.read(Instant::now()), None);
    }
}
