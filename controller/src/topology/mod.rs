//! The network as the controller sees it: devices, directed links and the
//! live state of every link.
//!
//! A [`Topology`] is loaded from a topology file (`docs/topology-format.md`)
//! with [`Topology::load`], or built from a [`TopologyFile`] made by one of
//! the [`convert`] functions. It is a petgraph [`StableDiGraph`]: one node per
//! device, one edge per *directed* link, so a declared link `[a:1, b:2]` is
//! two edges, `a:1 → b:2` and `b:2 → a:1`, each with its own
//! [`LinkState`]. Edge and node indices stay valid when links are added or
//! removed, so a [`LinkId`] can be held across updates.
//!
//! Link state is written by whoever measures it (link discovery sets `up`,
//! the INT collector sets utilisation, latency, queue and loss) and read by
//! the routing functions in [`crate::routing`], which never change it.
//!
//! ```
//! use solyx::topology::Topology;
//! let yaml = "name: two\ndefaults: { link: { bandwidth: 1Gbit, delay: 1ms } }\n\
//!             devices:\n  - { name: s1, role: fabric, device_id: 1 }\n  \
//!             - { name: s2, role: fabric, device_id: 2 }\nlinks:\n  - [s1:1, s2:1]\n";
//! let mut topo = Topology::parse(yaml, "two.yaml").unwrap();
//! let s1 = topo.device_ix("s1").unwrap();
//! let link = topo.link_from(s1, 1).unwrap();
//! topo.link_state_mut(link).unwrap().utilisation = 0.4;
//! assert_eq!(topo.links().count(), 2);
//! ```

pub mod convert;
pub mod file;
pub mod generate;
mod load;
pub mod locate;
pub mod units;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

pub use file::{NodeSpec, Role, TopologyFile, MAX_NAME_LEN};
pub use load::{Problem, TopologyError};
pub use units::{Bandwidth, Delay, Size};

/// A device in the graph.
pub type DeviceIx = NodeIndex<u32>;
/// A directed link in the graph.
pub type LinkId = EdgeIndex<u32>;

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Mac {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("{text:?} is not a MAC address: write six hex bytes, 02:00:00:00:01:01");
        let mut out = [0u8; 6];
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        for (o, p) in out.iter_mut().zip(parts) {
            if p.len() != 2 {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

impl Mac {
    /// The MAC a host gets when its file entry has none: locally
    /// administered `02:53:00` followed by the low 24 bits of the
    /// device_id. The testbed assigns the same one.
    #[must_use]
    pub fn for_device(device_id: u64) -> Self {
        let id = device_id.to_be_bytes();
        Self([0x02, 0x53, 0x00, id[5], id[6], id[7]])
    }

    /// The MAC of a fabric device's port: `02:53:` + 16 bits of the
    /// device_id + 16 bits of the port. Hosts address their first hop with
    /// it; the testbed sets it on the switch interface.
    #[must_use]
    pub fn for_port(device_id: u64, port: u32) -> Self {
        let id = device_id.to_be_bytes();
        let p = port.to_be_bytes();
        Self([0x02, 0x53, id[6], id[7], p[2], p[3]])
    }
}

/// A device: a switch or a host agent the controller programs.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Unique name.
    pub name: String,
    /// Fabric switch or host.
    pub role: Role,
    /// The pipeline (P4Info name) it runs.
    pub pipeline: String,
    /// P4Runtime device_id.
    pub device_id: u64,
    /// INT switch id.
    pub switch_id: u32,
    /// P4Runtime endpoint, when the file gives one.
    pub address: Option<String>,
    /// Site, rack, pod.
    pub site: Option<String>,
    /// Rack.
    pub rack: Option<String>,
    /// Pod.
    pub pod: Option<String>,
    /// Host address and prefix length (hosts only).
    pub ip: Option<(Ipv4Addr, u8)>,
    /// Host MAC: declared, or [`Mac::for_device`].
    pub mac: Mac,
    /// Declared resources.
    pub node: Option<NodeSpec>,
}

/// Live state of one directed link. Starts from what the file declares
/// (capacity, delay, up); discovery and telemetry overwrite it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkState {
    /// Usable capacity.
    pub capacity: Bandwidth,
    /// False once discovery or a port event says the link is down.
    pub up: bool,
    /// Carried load as a fraction of capacity (smoothed; may exceed 1
    /// briefly when the measurement window and the shaper disagree).
    pub utilisation: f64,
    /// One-way latency: the declared delay until measured.
    pub latency: Duration,
    /// Egress queue occupancy as INT reports it (device units).
    pub queue_depth: u32,
    /// Fraction of packets lost on the link (0..=1).
    pub loss: f64,
}

impl LinkState {
    /// Capacity not used by measured traffic, in bits per second.
    #[must_use]
    pub fn headroom_bps(&self) -> f64 {
        (self.capacity.bps_f64() * (1.0 - self.utilisation)).max(0.0)
    }
}

/// A directed link: from a port of one device to a port of another.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Source device.
    pub src: DeviceIx,
    /// Source port.
    pub src_port: u32,
    /// Destination device.
    pub dst: DeviceIx,
    /// Destination port.
    pub dst_port: u32,
    /// Declared delay (the state keeps the measured one).
    pub delay: Duration,
    /// Present in the file (false: found by discovery).
    pub declared: bool,
    /// Live state.
    pub state: LinkState,
}

/// A target's compiled pipeline (for BMv2, the JSON p4c writes), read
/// from the file `defaults.device_config` names for a pipeline. The
/// controller sends the bytes as `p4_device_config` with the pipeline's
/// P4Info.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The file it was read from (resolved against the topology file's
    /// folder).
    pub path: PathBuf,
    /// Its bytes, as read.
    pub bytes: Arc<[u8]>,
}

impl fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes run to megabytes: name the file and the size only.
        f.debug_struct("DeviceConfig")
            .field("path", &self.path)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The network: devices and directed links with their state.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The file's `name`.
    pub name: String,
    /// Link-discovery probe period.
    pub probe_interval: Duration,
    graph: StableDiGraph<Device, Link>,
    by_name: HashMap<String, DeviceIx>,
    device_configs: BTreeMap<String, DeviceConfig>,
}

impl Topology {
    /// An empty network (devices and links are added by discovery).
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            probe_interval: Duration::from_millis(100),
            graph: StableDiGraph::default(),
            by_name: HashMap::new(),
            device_configs: BTreeMap::new(),
        }
    }

    /// The device config sent with pipeline `pipeline`, when the file
    /// gives one (`defaults.device_config`).
    #[must_use]
    pub fn device_config(&self, pipeline: &str) -> Option<&DeviceConfig> {
        self.device_configs.get(pipeline)
    }

    /// Sets the device config sent with pipeline `pipeline`.
    pub fn set_device_config(&mut self, pipeline: &str, config: DeviceConfig) {
        self.device_configs.insert(pipeline.to_string(), config);
    }

    /// Reads and checks a topology file.
    ///
    /// # Errors
    /// [`TopologyError`] with every problem found, each with its line and
    /// field.
    pub fn load(path: &std::path::Path) -> Result<Self, TopologyError> {
        load::load(path)
    }

    /// Parses and checks topology YAML; `source` names it in errors.
    ///
    /// # Errors
    /// [`TopologyError`] with every problem found.
    pub fn parse(yaml: &str, source: &str) -> Result<Self, TopologyError> {
        load::parse(yaml, source)
    }

    /// Checks a file model (e.g. one made by a converter) and builds the
    /// network from it. Problems carry field paths but no lines.
    ///
    /// # Errors
    /// [`TopologyError`] with every problem found.
    pub fn from_file(file: &TopologyFile, source: &str) -> Result<Self, TopologyError> {
        load::build(file, source, None, None)
    }

    /// The graph, for algorithms.
    #[must_use]
    pub fn graph(&self) -> &StableDiGraph<Device, Link> {
        &self.graph
    }

    /// Adds a device; its name must be new.
    ///
    /// # Errors
    /// The name is taken.
    pub fn add_device(&mut self, device: Device) -> Result<DeviceIx, String> {
        if self.by_name.contains_key(&device.name) {
            return Err(format!("device {:?} exists", device.name));
        }
        let name = device.name.clone();
        let ix = self.graph.add_node(device);
        self.by_name.insert(name, ix);
        Ok(ix)
    }

    /// Adds one directed link (discovery adds each direction as it sees
    /// it). The source port must not already carry a link.
    ///
    /// # Errors
    /// An unknown device, or the source port is in use.
    pub fn add_link(&mut self, link: Link) -> Result<LinkId, String> {
        for d in [link.src, link.dst] {
            if self.graph.node_weight(d).is_none() {
                return Err(format!("no device {}", d.index()));
            }
        }
        if self.link_from(link.src, link.src_port).is_some() {
            return Err(format!(
                "{}:{} already has a link",
                self.graph[link.src].name, link.src_port
            ));
        }
        Ok(self.graph.add_edge(link.src, link.dst, link))
    }

    /// Removes a directed link; its id is never reused for another link
    /// while others remain.
    pub fn remove_link(&mut self, id: LinkId) -> Option<Link> {
        self.graph.remove_edge(id)
    }

    /// A device by index.
    #[must_use]
    pub fn device(&self, ix: DeviceIx) -> Option<&Device> {
        self.graph.node_weight(ix)
    }

    /// A device's index by name.
    #[must_use]
    pub fn device_ix(&self, name: &str) -> Option<DeviceIx> {
        self.by_name.get(name).copied()
    }

    /// Every device, in the order of the file.
    pub fn devices(&self) -> impl Iterator<Item = (DeviceIx, &Device)> {
        self.graph.node_indices().map(|i| (i, &self.graph[i]))
    }

    /// Every directed link.
    pub fn links(&self) -> impl Iterator<Item = (LinkId, &Link)> {
        self.graph.edge_indices().map(|e| (e, &self.graph[e]))
    }

    /// A link by id.
    #[must_use]
    pub fn link(&self, id: LinkId) -> Option<&Link> {
        self.graph.edge_weight(id)
    }

    /// The link leaving `device` through `port`.
    #[must_use]
    pub fn link_from(&self, device: DeviceIx, port: u32) -> Option<LinkId> {
        self.graph
            .edges_directed(device, Direction::Outgoing)
            .find(|e| e.weight().src_port == port)
            .map(|e| e.id())
    }

    /// The opposite direction of a link, if it exists.
    #[must_use]
    pub fn reverse(&self, id: LinkId) -> Option<LinkId> {
        let l = self.graph.edge_weight(id)?;
        self.link_from(l.dst, l.dst_port)
            .filter(|r| self.graph[*r].dst == l.src && self.graph[*r].dst_port == l.src_port)
    }

    /// A link's live state.
    #[must_use]
    pub fn link_state(&self, id: LinkId) -> Option<&LinkState> {
        self.graph.edge_weight(id).map(|l| &l.state)
    }

    /// A link's live state, to update.
    pub fn link_state_mut(&mut self, id: LinkId) -> Option<&mut LinkState> {
        self.graph.edge_weight_mut(id).map(|l| &mut l.state)
    }

    /// Marks every link of a device up or down (a device failure is the
    /// failure of all its links).
    pub fn set_device_up(&mut self, device: DeviceIx, up: bool) {
        let ids: Vec<LinkId> = self
            .graph
            .edges_directed(device, Direction::Outgoing)
            .chain(self.graph.edges_directed(device, Direction::Incoming))
            .map(|e| e.id())
            .collect();
        for id in ids {
            self.graph[id].state.up = up;
        }
    }

    /// The devices between which paths are computed: the hosts, or every
    /// device when the network has no hosts (a WAN of routers).
    #[must_use]
    pub fn edge_devices(&self) -> Vec<DeviceIx> {
        let hosts: Vec<DeviceIx> = self
            .devices()
            .filter(|(_, d)| d.role == Role::Host)
            .map(|(i, _)| i)
            .collect();
        if hosts.is_empty() {
            self.graph.node_indices().collect()
        } else {
            hosts
        }
    }

    /// `name:port` of a link's source, for messages.
    #[must_use]
    pub fn describe_link(&self, id: LinkId) -> String {
        match self.graph.edge_weight(id) {
            Some(l) => format!(
                "{}:{} -> {}:{}",
                self.graph[l.src].name, l.src_port, self.graph[l.dst].name, l.dst_port
            ),
            None => format!("link #{}", id.index()),
        }
    }
}
