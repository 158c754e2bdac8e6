//! The part of a topology file (`docs/topology-format.md`) that `solyx
//! serve` needs today: devices with their P4Runtime endpoints, the probe
//! interval and the declared links.
//!
//! This is a stand-in read with a private struct; the full loader, with
//! every rule of the format checked, is `solyx::topology`'s job, and
//! `serve` will take its graph instead. Unknown keys are ignored here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::linkstate::{DeviceId, LinkKey, PortId};

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    defaults: Option<Defaults>,
    devices: Vec<DeviceEntry>,
    #[serde(default)]
    links: Vec<LinkEntry>,
}

#[derive(Deserialize)]
struct Defaults {
    #[serde(default)]
    probe_interval: Option<String>,
}

#[derive(Deserialize)]
struct DeviceEntry {
    name: String,
    role: String,
    #[serde(default)]
    pipeline: Option<String>,
    device_id: u64,
    #[serde(default)]
    switch_id: Option<u32>,
    address: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LinkEntry {
    Short([String; 2]),
    Long { a: String, b: String },
}

/// Whether a device forwards (a switch) or ends paths (a host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A fabric switch.
    Fabric,
    /// A host agent.
    Host,
}

/// One device of the file.
#[derive(Clone, Debug)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Fabric or host.
    pub role: Role,
    /// Pipeline name (`p4/<pipeline>/<pipeline>.p4info.txtpb`).
    pub pipeline: String,
    /// P4Runtime device ID.
    pub device_id: DeviceId,
    /// INT switch ID.
    pub switch_id: u32,
    /// P4Runtime endpoint.
    pub address: String,
}

/// What `serve` reads from a topology file.
#[derive(Clone, Debug)]
pub struct Topology {
    /// The network's name.
    pub name: String,
    /// Link-discovery probe period, when the file sets one.
    pub probe_interval: Option<Duration>,
    /// Devices in file order.
    pub devices: Vec<Device>,
    /// Declared links, both directions of each.
    pub links: Vec<LinkKey>,
}

impl Topology {
    /// Reads `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not valid YAML of this shape (the
    /// message names the line), or names an unknown device, a bad port,
    /// a bad duration or a duplicate device.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading topology {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("topology {}", path.display()))
    }

    /// Parses the text of a topology file.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn parse(text: &str) -> Result<Self> {
        let file: File = serde_norway::from_str(text)?;
        let mut devices = Vec::new();
        let mut ids = BTreeMap::new();
        for (i, d) in file.devices.into_iter().enumerate() {
            let role = match d.role.as_str() {
                "fabric" => Role::Fabric,
                "host" => Role::Host,
                other => bail!(
                    "devices[{i}] ({}): role {other:?}: expected fabric or host",
                    d.name
                ),
            };
            if d.device_id == 0 {
                bail!("devices[{i}] ({}): device_id must not be 0", d.name);
            }
            if ids.insert(d.name.clone(), d.device_id).is_some() {
                bail!("devices[{i}]: device name {:?} appears twice", d.name);
            }
            let default_pipeline = match role {
                Role::Fabric => "solyx_fabric",
                Role::Host => "solyx_host",
            };
            let switch_id = match d.switch_id {
                Some(s) => s,
                None => u32::try_from(d.device_id).with_context(|| {
                    format!(
                        "devices[{i}] ({}): device_id {} does not fit an INT switch ID; set switch_id",
                        d.name, d.device_id
                    )
                })?,
            };
            devices.push(Device {
                name: d.name,
                role,
                pipeline: d.pipeline.unwrap_or_else(|| default_pipeline.to_owned()),
                device_id: d.device_id,
                switch_id,
                address: d.address,
            });
        }
        let mut links = Vec::new();
        let mut used = BTreeSet::new();
        for (i, l) in file.links.iter().enumerate() {
            let (a, b) = match l {
                LinkEntry::Short([a, b]) | LinkEntry::Long { a, b } => (a, b),
            };
            let mut end = |s: &str| -> Result<(DeviceId, PortId)> {
                let (name, port) = s
                    .rsplit_once(':')
                    .with_context(|| format!("links[{i}]: {s:?} is not device:port"))?;
                let device = *ids
                    .get(name)
                    .with_context(|| format!("links[{i}]: no device named {name:?}"))?;
                let port: PortId = port.parse().ok().filter(|p| *p >= 1).with_context(|| {
                    format!("links[{i}]: port {port:?} of {name} is not a number from 1")
                })?;
                if !used.insert((device, port)) {
                    bail!("links[{i}]: port {name}:{port} is in another link already");
                }
                Ok((device, port))
            };
            let (ad, ap) = end(a)?;
            let (bd, bp) = end(b)?;
            let key = LinkKey {
                src_device: ad,
                src_port: ap,
                dst_device: bd,
                dst_port: bp,
            };
            links.push(key);
            links.push(key.reversed());
        }
        let probe_interval = file
            .defaults
            .and_then(|d| d.probe_interval)
            .map(|s| parse_duration(&s).with_context(|| format!("defaults.probe_interval {s:?}")))
            .transpose()?;
        Ok(Self {
            name: file.name.unwrap_or_default(),
            probe_interval,
            devices,
            links,
        })
    }
}

/// `100ms`, `1s`, `250us`.
fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .context("a number and a unit (us, ms, s)")?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().context("a number and a unit (us, ms, s)")?;
    Ok(match unit {
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        other => bail!("unit {other:?}: expected us, ms or s"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name: two
defaults:
  link: { bandwidth: 100Mbit }
  probe_interval: 50ms
devices:
  - { name: s1, role: fabric, device_id: 1, address: "127.0.0.1:50001" }
  - { name: s2, role: fabric, device_id: 2, switch_id: 12, address: "unix:/run/s2.sock" }
  - { name: h1, role: host, device_id: 101, address: "unix:/run/h1.sock", ip: 10.0.0.1/24 }
links:
  - [s1:1, s2:3]
  - { a: s1:2, b: h1:1, bandwidth: 1Gbit }
"#;

    #[test]
    fn reads_devices_links_and_interval() {
        let t = Topology::parse(EXAMPLE).unwrap();
        assert_eq!(t.name, "two");
        assert_eq!(t.probe_interval, Some(Duration::from_millis(50)));
        let d: Vec<_> = t
            .devices
            .iter()
            .map(|d| (d.name.as_str(), d.role, d.pipeline.as_str(), d.switch_id))
            .collect();
        assert_eq!(
            d,
            [
                ("s1", Role::Fabric, "solyx_fabric", 1),
                ("s2", Role::Fabric, "solyx_fabric", 12),
                ("h1", Role::Host, "solyx_host", 101),
            ]
        );
        let k = |a, ap, b, bp| LinkKey {
            src_device: a,
            src_port: ap,
            dst_device: b,
            dst_port: bp,
        };
        assert_eq!(
            t.links,
            [
                k(1, 1, 2, 3),
                k(2, 3, 1, 1),
                k(1, 2, 101, 1),
                k(101, 1, 1, 2)
            ]
        );
    }

    #[test]
    fn errors_name_the_place() {
        let bad = EXAMPLE.replace("[s1:1, s2:3]", "[s1:1, s9:3]");
        let e = format!("{:#}", Topology::parse(&bad).unwrap_err());
        assert!(e.contains("links[0]: no device named \"s9\""), "{e}");
        let bad = EXAMPLE.replace("[s1:1, s2:3]", "[s1:1, s2:x]");
        let e = format!("{:#}", Topology::parse(&bad).unwrap_err());
        assert!(e.contains("links[0]: port \"x\""), "{e}");
        let bad = EXAMPLE.replace("50ms", "50 parsecs");
        let e = format!("{:#}", Topology::parse(&bad).unwrap_err());
        assert!(e.contains("probe_interval"), "{e}");
        let bad = EXAMPLE.replace("device_id: 2,", "device_id: [2],");
        let e = format!("{:#}", Topology::parse(&bad).unwrap_err());
        assert!(e.contains("line"), "YAML errors carry the line: {e}");
    }
}
