//! The controller's view of the network as plain data: what the runtime
//! writes into the [`StateStore`](super::StateStore) and what the REST API
//! returns. Every type serialises to the JSON the API documents.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a device is in the fabric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRole {
    /// A switch of the fabric (pipeline `solyx_fabric`).
    Fabric,
    /// A Linux host programmed through its agent (pipeline `solyx_host`).
    Host,
}

/// The state of the controller's P4Runtime session with a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// No session, or the session was lost and is backing off.
    Disconnected,
    /// The stream is opening or arbitration is in progress.
    Connecting,
    /// The stream is open and arbitration answered.
    Connected,
}

/// A device the controller programs over P4Runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// Unique name, as in the topology file.
    pub name: String,
    /// P4Runtime device ID.
    pub device_id: u64,
    /// P4Runtime endpoint: `host:port` or `unix:/path`.
    pub address: String,
    /// Fabric switch or host.
    pub role: DeviceRole,
    /// Name of the pipeline (P4Info package) the device runs, once known.
    pub pipeline: Option<String>,
    /// State of the P4Runtime session.
    pub connection: ConnectionState,
    /// Whether this controller is the primary client of the device.
    pub primary: bool,
    /// The election ID this controller uses, as a decimal string (128 bits
    /// do not fit a JSON number).
    #[serde(with = "u128_decimal")]
    #[schema(value_type = String, example = "1")]
    pub election_id: u128,
    /// Site (micro data centre) the device belongs to.
    pub site: Option<String>,
}

/// Packet and byte counters of one port, as read from the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped on the port.
    pub drops: u64,
}

/// A numbered interface of a device, as its pipeline sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Port {
    /// Device name.
    pub device: String,
    /// P4Runtime port number (from 1).
    pub port: u32,
    /// Operating-system interface name, when known.
    pub interface: Option<String>,
    /// Whether the port is up.
    pub up: bool,
    /// Line rate in bits per second, when known.
    pub speed_bps: Option<u64>,
    /// Counters at the last read.
    pub counters: PortCounters,
}

/// One end of a link: a port of a device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    /// Device name.
    pub device: String,
    /// Port number on that device.
    pub port: u32,
}

impl Endpoint {
    /// An endpoint from a device name and a port number.
    #[must_use]
    pub fn new(device: impl Into<String>, port: u32) -> Self {
        Self {
            device: device.into(),
            port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.device, self.port)
    }
}

/// Whether a link carries traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Probes cross it.
    Up,
    /// Probes are lost or a port is down.
    Down,
}

/// Live measurements of a link, smoothed by the telemetry collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkTelemetry {
    /// One-way latency in microseconds, when measured.
    pub latency_us: Option<f64>,
    /// Share of the link's capacity in use, 0 to 1.
    pub utilisation: f64,
    /// Egress queue occupancy at the sending port, in packets.
    pub queue_depth: Option<u64>,
    /// Share of probes lost, 0 to 1.
    pub loss: f64,
}

/// A directed connection from one port to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// `src-device:port->dst-device:port`.
    pub id: String,
    /// Sending end.
    pub src: Endpoint,
    /// Receiving end.
    pub dst: Endpoint,
    /// Up or down.
    pub state: LinkState,
    /// Listed in the topology file.
    pub declared: bool,
    /// Seen by discovery probes.
    pub discovered: bool,
    /// Capacity in bits per second, when known.
    pub bandwidth_bps: Option<u64>,
    /// Live measurements.
    pub telemetry: LinkTelemetry,
}

impl Link {
    /// The identifier of the link from `src` to `dst`.
    #[must_use]
    pub fn id_of(src: &Endpoint, dst: &Endpoint) -> String {
        format!("{src}->{dst}")
    }
}

/// A machine attached to the fabric, addressed by IP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Host {
    /// Host name (the name of its device).
    pub name: String,
    /// Address with prefix length, e.g. `10.0.1.1/24`.
    pub ip: String,
    /// MAC address, when known.
    pub mac: Option<String>,
    /// The fabric port the host is attached to, when known.
    pub attached_to: Option<Endpoint>,
    /// Site of the host.
    pub site: Option<String>,
}

/// One of the paths the routing engine keeps between two hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Path {
    /// MPLS label that identifies the path in the fabric.
    pub label: u32,
    /// Devices in order, from the source host to the destination host.
    pub devices: Vec<String>,
    /// Link IDs in order.
    pub links: Vec<String>,
    /// Weight of the path in the source's group (share of new flowlets).
    pub weight: u32,
    /// Sum of the measured link latencies, in microseconds.
    pub latency_us: Option<f64>,
    /// Highest utilisation of any link on the path, 0 to 1.
    pub bottleneck_utilisation: f64,
    /// Whether every link of the path is up.
    pub usable: bool,
}

/// The paths between two hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PathSet {
    /// Source host.
    pub src: String,
    /// Destination host.
    pub dst: String,
    /// The paths, empty until the routing engine has computed them.
    pub paths: Vec<Path>,
}

/// What an installed route matches on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RouteMatch {
    /// Exact match on an MPLS label (one path, hop by hop).
    Label {
        /// The label.
        label: u32,
    },
    /// Longest-prefix match on the IPv4 destination.
    Prefix {
        /// `a.b.c.d/len`.
        prefix: String,
    },
}

/// One way out of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NextHop {
    /// Egress port.
    pub port: u32,
    /// Label pushed, when the hop starts a labelled path.
    pub push_label: Option<u32>,
    /// Weight in the group (1 when the route has one next hop).
    pub weight: u32,
}

/// A forwarding rule the controller installed on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Route {
    /// Device holding the rule.
    pub device: String,
    /// What the rule matches.
    #[serde(rename = "match")]
    pub matches: RouteMatch,
    /// Where matching packets go.
    pub next_hops: Vec<NextHop>,
}

/// Summary of the INT telemetry collector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TelemetrySummary {
    /// Reports accepted per second, over the collector's last window.
    pub reports_per_second: f64,
    /// Reports accepted since start.
    pub reports_total: u64,
    /// Reports rejected since start, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Milliseconds since the last accepted report, when one arrived.
    pub last_report_age_ms: Option<u64>,
}

/// `u128` as a decimal string in JSON.
mod u128_decimal {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}
