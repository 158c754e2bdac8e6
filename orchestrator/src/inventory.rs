//! Nodes as the resource manager knows them, and the loading of declared
//! nodes from a topology file (the `node:` block of `role: host` devices,
//! see docs/topology-format.md).
//!
//! Values are checked while the YAML is read, so a bad quantity is
//! reported with the file, the line and the field that holds it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::resources::{AcceleratorKey, AcceleratorKind, Capacity, GpuGroup};

/// Where a node's description came from. A node reported by its host
/// agent replaces the declared one only when the file does not pin it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeSource {
    /// From a topology file's `node:` block.
    Declared,
    /// From the resource stream of the node's host agent.
    Agent,
}

/// One machine that runs tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Unique name (the device name of its host agent, the Kubernetes node
    /// name, the Ray node label).
    pub name: String,
    /// Site (MetaPod) the node sits in: the unit of energy price and carbon.
    pub site: String,
    /// Rack inside the site; empty when unknown.
    #[serde(default)]
    pub rack: String,
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// GPUs by model.
    #[serde(default)]
    pub gpus: Vec<GpuGroup>,
    /// TPUs and FPGAs by model.
    #[serde(default)]
    pub accelerators: Vec<AcceleratorGroup>,
    /// Power draw at full load in watts; 0 when unknown.
    #[serde(default)]
    pub power_watts: u32,
    /// Where this description came from.
    pub source: NodeSource,
}

/// A group of identical TPUs or FPGAs on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceleratorGroup {
    /// TPU or FPGA.
    pub kind: AcceleratorKind,
    /// Model name.
    pub model: String,
    /// Number of devices.
    pub count: u32,
}

/// Power assumed per GPU and per node when a node does not declare its
/// draw: a data-centre GPU at load and the host around it.
pub const DEFAULT_WATTS_PER_GPU: u32 = 300;
/// Host power (CPUs, memory, NICs) when undeclared.
pub const DEFAULT_HOST_WATTS: u32 = 250;

impl Node {
    /// Everything the node offers.
    pub fn capacity(&self) -> Capacity {
        let mut gpu_milli = BTreeMap::new();
        for g in &self.gpus {
            *gpu_milli.entry(g.model.clone()).or_insert(0) += u64::from(g.count) * 1000;
        }
        let mut accelerators = BTreeMap::new();
        for a in &self.accelerators {
            let key = AcceleratorKey {
                kind: a.kind,
                model: a.model.clone(),
            };
            *accelerators.entry(key).or_insert(0) += u64::from(a.count);
        }
        Capacity {
            cpu_milli: self.cpu_milli,
            memory_mib: self.memory_mib,
            gpu_milli,
            accelerators,
        }
    }

    /// Whole GPUs on the node.
    pub fn gpu_count(&self) -> u32 {
        self.gpus.iter().map(|g| g.count).sum()
    }

    /// Power at full load: the declared value, else an estimate from the
    /// GPU count.
    pub fn watts(&self) -> u32 {
        if self.power_watts > 0 {
            self.power_watts
        } else {
            DEFAULT_HOST_WATTS + DEFAULT_WATTS_PER_GPU * self.gpu_count()
        }
    }

    /// Checks what a node description must hold before it is stored.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("node name is empty".into());
        }
        if self.name.len() > 253
            || self
                .name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "node name `{}` must be at most 253 characters, no spaces",
                self.name
            ));
        }
        if self.site.is_empty() {
            return Err(format!("node `{}` has no site", self.name));
        }
        if self.cpu_milli == 0 && self.memory_mib == 0 && self.gpus.is_empty() {
            return Err(format!(
                "node `{}` declares no cpus, memory or gpus",
                self.name
            ));
        }
        for g in &self.gpus {
            if g.model.is_empty() {
                return Err(format!(
                    "node `{}` has a GPU group without a model",
                    self.name
                ));
            }
        }
        for a in &self.accelerators {
            if a.model.is_empty() {
                return Err(format!(
                    "node `{}` has an accelerator group without a model",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// Error from reading declared nodes.
#[derive(Debug, thiserror::Error)]
pub enum InventoryFileError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or a value is invalid; the message names the
    /// field and the line.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Field, line and reason.
        message: String,
    },
}

#[derive(Deserialize)]
struct TopologyFile {
    #[serde(default)]
    devices: Vec<DeviceEntry>,
}

#[derive(Deserialize)]
struct DeviceEntry {
    name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    rack: Option<String>,
    #[serde(default)]
    node: Option<NodeBlock>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeBlock {
    #[serde(default, deserialize_with = "de_cpus")]
    cpus: u64,
    #[serde(default, deserialize_with = "de_memory")]
    memory: u64,
    #[serde(default)]
    gpus: Vec<GpuEntry>,
    #[serde(default)]
    accelerators: Vec<AcceleratorEntry>,
    #[serde(default)]
    power_watts: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuEntry {
    model: String,
    count: u32,
    #[serde(default, deserialize_with = "de_memory")]
    memory: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceleratorEntry {
    kind: AcceleratorKind,
    model: String,
    count: u32,
}

fn de_cpus<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    crate::resources::Quantity::deserialize(d)?
        .cpu_milli()
        .map_err(serde::de::Error::custom)
}

fn de_memory<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    crate::resources::Quantity::deserialize(d)?
        .memory_mib()
        .map_err(serde::de::Error::custom)
}

/// Reads the declared nodes of a topology file: every device with a
/// `node:` block. A device without `site` is put in site `default`.
pub fn load_declared_nodes(path: &Path) -> Result<Vec<Node>, InventoryFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_declared_nodes(&text, &path.display().to_string())
}

/// Parses declared nodes from topology YAML; `origin` names the input in
/// errors.
pub fn parse_declared_nodes(yaml: &str, origin: &str) -> Result<Vec<Node>, InventoryFileError> {
    let invalid = |message: String| InventoryFileError::Invalid {
        path: origin.into(),
        message,
    };
    let file: TopologyFile = serde_norway::from_str(yaml).map_err(|e| invalid(e.to_string()))?;
    let mut nodes = Vec::new();
    for (i, dev) in file.devices.into_iter().enumerate() {
        let Some(block) = dev.node else { continue };
        if dev.role.as_deref() == Some("fabric") {
            return Err(invalid(format!(
                "devices[{i}] `{}`: a `node:` block belongs to a `role: host` device",
                dev.name
            )));
        }
        let node = Node {
            name: dev.name,
            site: dev.site.unwrap_or_else(|| "default".into()),
            rack: dev.rack.unwrap_or_default(),
            cpu_milli: block.cpus,
            memory_mib: block.memory,
            gpus: block
                .gpus
                .into_iter()
                .map(|g| GpuGroup {
                    model: g.model,
                    count: g.count,
                    memory_mib: g.memory,
                })
                .collect(),
            accelerators: block
                .accelerators
                .into_iter()
                .map(|a| AcceleratorGroup {
                    kind: a.kind,
                    model: a.model,
                    count: a.count,
                })
                .collect(),
            power_watts: block.power_watts,
            source: NodeSource::Declared,
        };
        node.validate()
            .map_err(|why| invalid(format!("devices[{i}].node: {why}")))?;
        nodes.push(node);
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPO: &str = r#"
name: two-hosts
devices:
  - name: leaf1
    role: fabric
    device_id: 1
    address: 127.0.0.1:50001
  - name: h1
    role: host
    device_id: 101
    address: unix:/run/solyx/h1.sock
    ip: 10.0.1.1/24
    site: site-a
    rack: r1
    node:
      cpus: 16
      memory: 64GiB
      gpus: [{ model: A100, count: 4, memory: 80GiB }]
      accelerators: [{ kind: fpga, model: U250, count: 1 }]
      power_watts: 1200
  - name: h2
    role: host
    device_id: 102
    address: unix:/run/solyx/h2.sock
    ip: 10.0.1.2/24
"#;

    #[test]
    fn reads_the_node_block_of_the_topology_format() {
        let nodes = parse_declared_nodes(TOPO, "topo.yaml").expect("valid file");
        assert_eq!(nodes.len(), 1, "h2 has no node block");
        let h1 = &nodes[0];
        assert_eq!(h1.name, "h1");
        assert_eq!(h1.site, "site-a");
        assert_eq!(h1.cpu_milli, 16000);
        assert_eq!(h1.memory_mib, 65536);
        assert_eq!(h1.gpus[0].memory_mib, 81920);
        assert_eq!(h1.capacity().gpu_milli["A100"], 4000);
        assert_eq!(h1.accelerators[0].kind, AcceleratorKind::Fpga);
        assert_eq!(h1.watts(), 1200);
    }

    #[test]
    fn a_bad_quantity_names_the_field_and_line() {
        let bad = TOPO.replace("memory: 64GiB", "memory: 64 parsecs");
        let err = parse_declared_nodes(&bad, "topo.yaml")
            .expect_err("bad unit")
            .to_string();
        assert!(err.contains("topo.yaml"), "{err}");
        assert!(
            err.contains("devices[1].node") && err.contains("memory"),
            "{err}"
        );
        assert!(err.contains("line 16"), "{err}");
    }
}
