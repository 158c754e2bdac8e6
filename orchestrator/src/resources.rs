//! Resource quantities: what a node offers and what a task asks for, and
//! the parsing of the human units used in YAML files (`64GiB`, `500m`).
//!
//! Everything is kept in integer units so that allocation arithmetic is
//! exact: CPU in millicores, memory in MiB, GPUs in milli-GPUs (1000 = one
//! whole device, so a task may ask for a share of a GPU as the Alibaba and
//! Kubernetes GPU-sharing schedulers do), accelerators in whole devices.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Kind of a non-GPU accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceleratorKind {
    /// Tensor processing unit.
    Tpu,
    /// Field-programmable gate array.
    Fpga,
}

impl fmt::Display for AcceleratorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceleratorKind::Tpu => f.write_str("tpu"),
            AcceleratorKind::Fpga => f.write_str("fpga"),
        }
    }
}

/// Key of an accelerator pool on a node: kind and model, written
/// `fpga/U250` (also as a JSON map key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct AcceleratorKey {
    /// TPU or FPGA.
    pub kind: AcceleratorKind,
    /// Vendor model name, compared exactly.
    pub model: String,
}

impl From<AcceleratorKey> for String {
    fn from(k: AcceleratorKey) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for AcceleratorKey {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let (kind, model) = s
            .split_once('/')
            .ok_or_else(|| format!("accelerator `{s}`: expected kind/model"))?;
        let kind = match kind {
            "tpu" => AcceleratorKind::Tpu,
            "fpga" => AcceleratorKind::Fpga,
            other => return Err(format!("accelerator kind `{other}`: expected tpu or fpga")),
        };
        if model.is_empty() {
            return Err(format!("accelerator `{s}`: empty model"));
        }
        Ok(AcceleratorKey {
            kind,
            model: model.to_string(),
        })
    }
}

impl fmt::Display for AcceleratorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.model)
    }
}

/// A group of identical GPUs on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuGroup {
    /// Model name (`A100`, `V100M32`), compared exactly.
    pub model: String,
    /// Number of devices.
    pub count: u32,
    /// Memory per device in MiB (0 when unknown).
    #[serde(default)]
    pub memory_mib: u64,
}

/// What one node offers (its capacity) or what is still free on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Milli-GPUs per GPU model.
    pub gpu_milli: BTreeMap<String, u64>,
    /// Whole accelerators per kind and model.
    pub accelerators: BTreeMap<AcceleratorKey, u64>,
}

impl Capacity {
    /// Total milli-GPUs over all models.
    pub fn gpu_milli_total(&self) -> u64 {
        self.gpu_milli.values().sum()
    }

    /// Total accelerators over all kinds.
    pub fn accelerators_total(&self) -> u64 {
        self.accelerators.values().sum()
    }
}

/// What one task asks for. GPUs may be restricted to a set of models.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Milli-GPUs (1000 = one device), all taken from one GPU model.
    pub gpu_milli: u64,
    /// Acceptable GPU models; empty means any.
    pub gpu_models: Vec<String>,
    /// Whole accelerators per kind and model.
    pub accelerators: BTreeMap<AcceleratorKey, u64>,
}

/// The amounts one grant took from one node: the demand with the GPU
/// model resolved. This is what an allocation stores and what a release
/// gives back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// GPU model the milli-GPUs came from (None when no GPU was asked).
    pub gpu_model: Option<String>,
    /// Milli-GPUs taken.
    pub gpu_milli: u64,
    /// Accelerators taken.
    pub accelerators: BTreeMap<AcceleratorKey, u64>,
}

/// The first dimension in which a demand does not fit, for refusals and
/// explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    /// Not enough CPU.
    Cpu {
        /// Millicores asked.
        asked: u64,
        /// Millicores free.
        free: u64,
    },
    /// Not enough memory.
    Memory {
        /// MiB asked.
        asked: u64,
        /// MiB free.
        free: u64,
    },
    /// No acceptable GPU model has enough free milli-GPUs.
    Gpu {
        /// Milli-GPUs asked.
        asked: u64,
        /// Most milli-GPUs free in one acceptable model.
        free: u64,
    },
    /// Not enough accelerators of one kind and model.
    Accelerator {
        /// Which pool.
        key: AcceleratorKey,
        /// Devices asked.
        asked: u64,
        /// Devices free.
        free: u64,
    },
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::Cpu { asked, free } => {
                write!(f, "cpu: asked {asked}m, {free}m free")
            }
            Shortfall::Memory { asked, free } => {
                write!(f, "memory: asked {asked}MiB, {free}MiB free")
            }
            Shortfall::Gpu { asked, free } => {
                write!(
                    f,
                    "gpu: asked {asked} milli-GPU, {free} free in an acceptable model"
                )
            }
            Shortfall::Accelerator { key, asked, free } => {
                write!(f, "{key}: asked {asked}, {free} free")
            }
        }
    }
}

impl Demand {
    /// True when the demand asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        self.cpu_milli == 0
            && self.memory_mib == 0
            && self.gpu_milli == 0
            && self.accelerators.values().all(|&n| n == 0)
    }

    fn model_ok(&self, model: &str) -> bool {
        self.gpu_models.is_empty() || self.gpu_models.iter().any(|m| m == model)
    }

    // TODO-correctness: milli-GPUs are pooled per model and node, not per
    // device, so two 0.6-GPU tasks fit on one free GPU plus 0.2 of another;
    // per-device accounting needs the agent to report devices.
    /// Resolves the demand against `free`: which GPU model it would take
    /// (the acceptable one with the least free milli-GPUs that still fits,
    /// so larger pools stay whole), or the first shortfall.
    pub fn grant_from(&self, free: &Capacity) -> Result<Grant, Shortfall> {
        if self.cpu_milli > free.cpu_milli {
            return Err(Shortfall::Cpu {
                asked: self.cpu_milli,
                free: free.cpu_milli,
            });
        }
        if self.memory_mib > free.memory_mib {
            return Err(Shortfall::Memory {
                asked: self.memory_mib,
                free: free.memory_mib,
            });
        }
        let mut gpu_model = None;
        if self.gpu_milli > 0 {
            let best = free
                .gpu_milli
                .iter()
                .filter(|(m, &f)| self.model_ok(m) && f >= self.gpu_milli)
                .min_by_key(|(_, &f)| f);
            match best {
                Some((m, _)) => gpu_model = Some(m.clone()),
                None => {
                    let most = free
                        .gpu_milli
                        .iter()
                        .filter(|(m, _)| self.model_ok(m))
                        .map(|(_, &f)| f)
                        .max()
                        .unwrap_or(0);
                    return Err(Shortfall::Gpu {
                        asked: self.gpu_milli,
                        free: most,
                    });
                }
            }
        }
        for (key, &asked) in &self.accelerators {
            let have = free.accelerators.get(key).copied().unwrap_or(0);
            if asked > have {
                return Err(Shortfall::Accelerator {
                    key: key.clone(),
                    asked,
                    free: have,
                });
            }
        }
        Ok(Grant {
            cpu_milli: self.cpu_milli,
            memory_mib: self.memory_mib,
            gpu_model,
            gpu_milli: self.gpu_milli,
            accelerators: self.accelerators.clone(),
        })
    }

    /// How many copies of this demand fit into `free` at once.
    pub fn copies_in(&self, free: &Capacity) -> u64 {
        let mut n = u64::MAX;
        if let Some(k) = free.cpu_milli.checked_div(self.cpu_milli) {
            n = n.min(k);
        }
        if let Some(k) = free.memory_mib.checked_div(self.memory_mib) {
            n = n.min(k);
        }
        if self.gpu_milli > 0 {
            // Copies may come from different acceptable models.
            let g: u64 = free
                .gpu_milli
                .iter()
                .filter(|(m, _)| self.model_ok(m))
                .map(|(_, &f)| f / self.gpu_milli)
                .sum();
            n = n.min(g);
        }
        for (key, &asked) in &self.accelerators {
            if let Some(k) = free
                .accelerators
                .get(key)
                .copied()
                .unwrap_or(0)
                .checked_div(asked)
            {
                n = n.min(k);
            }
        }
        if n == u64::MAX {
            // An empty demand fits any number of times; cap it.
            n = 1 << 20;
        }
        n
    }
}

impl Grant {
    /// Takes this grant out of `free`. The caller has checked that it fits
    /// (`Demand::grant_from`); saturating arithmetic keeps a stale check
    /// from wrapping around.
    pub fn take_from(&self, free: &mut Capacity) {
        free.cpu_milli = free.cpu_milli.saturating_sub(self.cpu_milli);
        free.memory_mib = free.memory_mib.saturating_sub(self.memory_mib);
        if let Some(m) = &self.gpu_model {
            if let Some(f) = free.gpu_milli.get_mut(m) {
                *f = f.saturating_sub(self.gpu_milli);
            }
        }
        for (k, &n) in &self.accelerators {
            if let Some(f) = free.accelerators.get_mut(k) {
                *f = f.saturating_sub(n);
            }
        }
    }

    /// Adds this grant to a usage tally (the opposite of `take_from`).
    pub fn add_to(&self, used: &mut Capacity) {
        used.cpu_milli += self.cpu_milli;
        used.memory_mib += self.memory_mib;
        if let Some(m) = &self.gpu_model {
            *used.gpu_milli.entry(m.clone()).or_default() += self.gpu_milli;
        }
        for (k, &n) in &self.accelerators {
            *used.accelerators.entry(k.clone()).or_default() += n;
        }
    }
}

/// Error from parsing a quantity such as `64GiB` or `500m`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{text}`: {why}")]
pub struct QuantityError {
    /// What was being parsed (`memory`, `cpus`).
    pub what: &'static str,
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// A memory size: a plain number of bytes, or a number with `KiB`, `MiB`,
/// `GiB`, `TiB` (also the Kubernetes spellings `Ki`, `Mi`, `Gi`, `Ti`, and
/// decimal `K`/`M`/`G`/`T`). Returns MiB, rounded up.
pub fn parse_memory_mib(text: &str) -> Result<u64, QuantityError> {
    let err = |why| QuantityError {
        what: "memory",
        text: text.to_string(),
        why,
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| err("expected a number followed by a unit"))?;
    let bytes_per_unit: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" | "Ki" => 1024.0,
        "MiB" | "Mi" => 1024.0 * 1024.0,
        "GiB" | "Gi" => 1024.0 * 1024.0 * 1024.0,
        "TiB" | "Ti" => 1024.0f64.powi(4),
        "K" | "k" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        _ => {
            return Err(err(
                "unit must be one of B, KiB, MiB, GiB, TiB (or Ki, Mi, Gi, Ti, K, M, G, T)",
            ))
        }
    };
    if !value.is_finite() || value < 0.0 {
        return Err(err("must be a non-negative number"));
    }
    Ok((value * bytes_per_unit / (1024.0 * 1024.0)).ceil() as u64)
}

/// A CPU amount: cores as a number (`16`, `0.5`) or millicores (`500m`).
/// Returns millicores.
pub fn parse_cpu_milli(text: &str) -> Result<u64, QuantityError> {
    let err = |why| QuantityError {
        what: "cpus",
        text: text.to_string(),
        why,
    };
    let t = text.trim();
    if let Some(m) = t.strip_suffix('m') {
        return m
            .parse::<u64>()
            .map_err(|_| err("millicores must be a whole number, e.g. 500m"));
    }
    let cores: f64 = t
        .parse()
        .map_err(|_| err("expected cores (e.g. 4, 0.5) or millicores (500m)"))?;
    if !cores.is_finite() || cores < 0.0 {
        return Err(err("must be a non-negative number"));
    }
    Ok((cores * 1000.0).round() as u64)
}

/// A GPU amount as whole or fractional devices (`2`, `0.25`). Returns
/// milli-GPUs.
pub fn gpus_to_milli(gpus: f64) -> Result<u64, QuantityError> {
    if !gpus.is_finite() || gpus < 0.0 {
        return Err(QuantityError {
            what: "gpus",
            text: gpus.to_string(),
            why: "must be a non-negative number of devices",
        });
    }
    Ok((gpus * 1000.0).round() as u64)
}

/// A YAML scalar that may be written as a number or a string (`cpus: 16`,
/// `cpus: 500m`, `memory: 64GiB`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    /// A bare number.
    Number(f64),
    /// A number with a unit.
    Text(String),
}

impl Quantity {
    /// CPU millicores.
    pub fn cpu_milli(&self) -> Result<u64, QuantityError> {
        match self {
            Quantity::Number(n) => parse_cpu_milli(&n.to_string()),
            Quantity::Text(t) => parse_cpu_milli(t),
        }
    }

    /// Memory in MiB; a bare number means bytes.
    pub fn memory_mib(&self) -> Result<u64, QuantityError> {
        match self {
            Quantity::Number(n) => parse_memory_mib(&n.to_string()),
            Quantity::Text(t) => parse_memory_mib(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory_mib("64GiB"), Ok(65536));
        assert_eq!(parse_memory_mib("80Gi"), Ok(81920));
        assert_eq!(parse_memory_mib("512MiB"), Ok(512));
        assert_eq!(parse_memory_mib("1.5GiB"), Ok(1536));
        assert!(parse_memory_mib("64 parsecs").is_err());
        assert!(parse_memory_mib("GiB").is_err());
    }

    #[test]
    fn cpu_units() {
        assert_eq!(parse_cpu_milli("16"), Ok(16000));
        assert_eq!(parse_cpu_milli("500m"), Ok(500));
        assert_eq!(parse_cpu_milli("0.25"), Ok(250));
        assert!(parse_cpu_milli("-1").is_err());
        assert!(parse_cpu_milli("lots").is_err());
    }

    fn gpu_node(model: &str, milli: u64) -> Capacity {
        Capacity {
            cpu_milli: 64000,
            memory_mib: 262144,
            gpu_milli: [(model.to_string(), milli)].into_iter().collect(),
            accelerators: BTreeMap::new(),
        }
    }

    #[test]
    fn demand_respects_gpu_model_and_counts_copies() {
        let free = gpu_node("V100M32", 8000);
        let d = Demand {
            cpu_milli: 8000,
            memory_mib: 16384,
            gpu_milli: 2000,
            gpu_models: vec!["A100".into()],
            ..Demand::default()
        };
        assert!(matches!(
            d.grant_from(&free),
            Err(Shortfall::Gpu {
                asked: 2000,
                free: 0
            })
        ));
        let d = Demand {
            gpu_models: vec!["A100".into(), "V100M32".into()],
            ..d
        };
        let g = d.grant_from(&free).expect("fits");
        assert_eq!(g.gpu_model.as_deref(), Some("V100M32"));
        assert_eq!(d.copies_in(&free), 4);
        let mut left = free.clone();
        g.take_from(&mut left);
        assert_eq!(left.gpu_milli["V100M32"], 6000);
        assert_eq!(left.cpu_milli, 56000);
    }
}
