//! The topology file as written: serde types that mirror the YAML of
//! `docs/topology-format.md` one to one. [`super::load`] checks them and
//! builds a [`super::Topology`]; the converters in [`super::convert`]
//! produce them and write them out.

use std::collections::BTreeMap;
use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::units::{Bandwidth, Delay, Size};

/// A whole topology file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// Free text, shown in logs and the API.
    pub name: String,
    /// Values applied where a link or device says nothing.
    #[serde(default, skip_serializing_if = "Defaults::is_empty")]
    pub defaults: Defaults,
    /// The devices.
    pub devices: Vec<DeviceSpec>,
    /// Undirected links; each becomes two directed links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkSpec>,
}

/// The `defaults` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Link bandwidth and delay.
    #[serde(default, skip_serializing_if = "LinkDefaults::is_empty")]
    pub link: LinkDefaults,
    /// Link-discovery probe period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_interval: Option<Delay>,
    /// Per pipeline name: a file with the target's compiled pipeline (a
    /// BMv2 JSON), sent as `p4_device_config` with that pipeline's P4Info
    /// to every device running it. Paths are relative to the topology
    /// file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub device_config: BTreeMap<String, String>,
}

impl Defaults {
    fn is_empty(&self) -> bool {
        self.link.is_empty() && self.probe_interval.is_none() && self.device_config.is_empty()
    }
}

/// `defaults.link`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDefaults {
    /// Capacity in routing, shaped rate in the testbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// One-way propagation delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
}

impl LinkDefaults {
    fn is_empty(&self) -> bool {
        self.bandwidth.is_none() && self.delay.is_none()
    }
}

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A switch running `solyx_fabric` (or another fabric pipeline).
    Fabric,
    /// A Linux node whose agent runs `solyx_host`.
    Host,
}

/// The longest device name: the testbed builds interface names from device
/// names plus a port suffix, and Linux allows 15 characters in one.
pub const MAX_NAME_LEN: usize = 9;

/// One entry of `devices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Unique; `[a-z0-9_-]+`, at most [`MAX_NAME_LEN`] characters.
    pub name: String,
    /// fabric or host.
    pub role: Role,
    /// Default `solyx_fabric` for fabric devices, `solyx_host` for hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// P4Runtime device_id: unique, non-zero.
    pub device_id: u64,
    /// INT switch id; default the device_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_id: Option<u32>,
    /// P4Runtime endpoint: `host:port` or `unix:/path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Site (the unit of energy price and carbon intensity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Rack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Host address with its prefix length: `10.0.1.1/24`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Host MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Declared resources of the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeSpec>,
}

/// Declared resources of a node (`devices[].node`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    /// GPUs by model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuSpec>,
    /// Other accelerators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accelerators: Vec<AcceleratorSpec>,
    /// Power draw at full load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_watts: Option<u32>,
}

/// `node.gpus[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Model name, e.g. A100.
    pub model: String,
    /// How many.
    pub count: u32,
    /// Memory of one GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
}

/// `node.accelerators[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorSpec {
    /// fpga, tpu, ...
    pub kind: String,
    /// Model name.
    pub model: String,
    /// How many.
    pub count: u32,
}

/// `device:port`, one end of a link.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointSpec {
    /// Device name.
    pub device: String,
    /// Port number (from 1).
    pub port: u32,
}

impl std::str::FromStr for EndpointSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (device, port) = text.rsplit_once(':').ok_or_else(|| {
            format!("{text:?} is not a link end: write device:port, e.g. leaf1:3")
        })?;
        let port = port
            .parse()
            .map_err(|_| format!("{text:?}: the port {port:?} is not a number"))?;
        Ok(Self {
            device: device.to_string(),
            port,
        })
    }
}

impl fmt::Display for EndpointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.device, self.port)
    }
}

impl<'de> Deserialize<'de> for EndpointSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl Serialize for EndpointSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One entry of `links`: `[a, b]` or `{ a, b, bandwidth, delay }`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSpec {
    /// One end.
    pub a: EndpointSpec,
    /// The other end.
    pub b: EndpointSpec,
    /// Capacity; `defaults.link.bandwidth` when absent.
    pub bandwidth: Option<Bandwidth>,
    /// Delay; `defaults.link.delay` when absent.
    pub delay: Option<Delay>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkMap {
    a: EndpointSpec,
    b: EndpointSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bandwidth: Option<Bandwidth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay: Option<Delay>,
}

impl<'de> Deserialize<'de> for LinkSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = LinkSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a link: [dev:port, dev:port] or { a: dev:port, b: dev:port, bandwidth, delay }")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<LinkSpec, A::Error> {
                let a = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let b = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(LinkSpec {
                    a,
                    b,
                    bandwidth: None,
                    delay: None,
                })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<LinkSpec, A::Error> {
                let m = LinkMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(LinkSpec {
                    a: m.a,
                    b: m.b,
                    bandwidth: m.bandwidth,
                    delay: m.delay,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for LinkSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.bandwidth.is_none() && self.delay.is_none() {
            (&self.a, &self.b).serialize(s)
        } else {
            LinkMap {
                a: self.a.clone(),
                b: self.b.clone(),
                bandwidth: self.bandwidth,
                delay: self.delay,
            }
            .serialize(s)
        }
    }
}
