//! NVIDIA GPUs through NVML. `libnvidia-ml` is loaded at run time, so the
//! agent runs (without GPUs) on nodes that have no NVIDIA driver.
//!
//! TODO-completeness: only NVIDIA GPUs are discovered (AMD through ROCm
//! SMI, Intel through Level Zero are not); others must be declared.

use std::ffi::OsStr;

use nvml_wrapper::Nvml;
use tracing::{info, warn};

/// One GPU as NVML reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSample {
    /// NVML index.
    pub index: u32,
    /// Product name.
    pub model: String,
    /// UUID (`GPU-...`).
    pub uuid: String,
    /// Frame-buffer memory, bytes.
    pub memory_total: u64,
    /// Frame-buffer memory in use, bytes.
    pub memory_used: Option<u64>,
    /// Busy share over NVML's last sample period, 0..1.
    pub utilization: Option<f64>,
    /// Board power draw, watts.
    pub power_watts: Option<f64>,
}

/// The GPUs of this node, or none when NVML cannot be loaded.
pub struct GpuReader {
    nvml: Option<Nvml>,
}

impl std::fmt::Debug for GpuReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuReader")
            .field("nvml", &self.nvml.is_some())
            .finish()
    }
}

/// Library names tried in order: the runtime package ships the versioned
/// name; the unversioned one comes with development packages.
const NVML_LIBRARIES: [&str; 2] = ["libnvidia-ml.so.1", "libnvidia-ml.so"];

impl GpuReader {
    /// Loads NVML. Without an NVIDIA driver this says so once in the log
    /// and the reader reports no GPUs.
    #[must_use]
    pub fn open() -> Self {
        let mut last_error = None;
        for lib in NVML_LIBRARIES {
            match Nvml::builder().lib_path(OsStr::new(lib)).init() {
                Ok(nvml) => {
                    let driver = nvml.sys_driver_version().unwrap_or_default();
                    let count = nvml.device_count().unwrap_or(0);
                    info!(library = lib, driver, gpus = count, "NVML loaded");
                    return Self { nvml: Some(nvml) };
                }
                Err(e) => last_error = Some(e),
            }
        }
        info!(
            reason = %last_error.map_or_else(String::new, |e| e.to_string()),
            "no NVIDIA driver (NVML not loadable): no GPUs discovered"
        );
        Self { nvml: None }
    }

    /// A reader that reports no GPUs, without touching NVML.
    #[must_use]
    pub fn none() -> Self {
        Self { nvml: None }
    }

    /// Whether NVML is loaded.
    #[must_use]
    pub fn available(&self) -> bool {
        self.nvml.is_some()
    }

    /// Reads every GPU. A GPU NVML cannot open is left out (and logged);
    /// a value it cannot read is `None`.
    #[must_use]
    pub fn read(&self) -> Vec<GpuSample> {
        let Some(nvml) = &self.nvml else {
            return Vec::new();
        };
        let count = match nvml.device_count() {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "NVML: cannot count GPUs");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for index in 0..count {
            let dev = match nvml.device_by_index(index) {
                Ok(d) => d,
                Err(e) => {
                    warn!(index, error = %e, "NVML: cannot open GPU");
                    continue;
                }
            };
            let memory = dev.memory_info().ok();
            out.push(GpuSample {
                index,
                model: dev.name().unwrap_or_else(|_| "unknown".into()),
                uuid: dev.uuid().unwrap_or_default(),
                memory_total: memory.as_ref().map_or(0, |m| m.total),
                memory_used: memory.map(|m| m.used),
                utilization: dev
                    .utilization_rates()
                    .ok()
                    .map(|u| f64::from(u.gpu) / 100.0),
                power_watts: dev.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
            });
        }
        out
    }
}
