//! Topology files from public network data: Internet Topology Zoo GraphML,
//! Teal's networkx JSON, SNDlib JSON and Graphviz `.dot` (the YATES
//! Abilene file), plus the traffic matrices that come with them.
//!
//! Each reader returns a [`RawNetwork`]: nodes, undirected edges with the
//! capacity the data gives, and, where the data has them, ports, MACs and
//! coordinates. [`RawNetwork::to_file`] turns it into a [`TopologyFile`]
//! (optionally with hosts hung off every switch); ports are numbered in
//! edge order where the data has none, and a delay is derived from the
//! great-circle distance where coordinates exist (light in fibre, about
//! 5 µs per km). Demand readers name devices the way `to_file` does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use super::file::{
    DeviceSpec, EndpointSpec, LinkDefaults, LinkSpec, Role, TopologyFile, MAX_NAME_LEN,
};
use super::units::{Bandwidth, Delay};

/// Data that cannot be converted, with the file it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ConvertError {
    /// The input file.
    pub file: String,
    /// What is wrong.
    pub reason: String,
}

fn err(file: &Path, reason: impl Into<String>) -> ConvertError {
    ConvertError {
        file: file.display().to_string(),
        reason: reason.into(),
    }
}

fn read(path: &Path) -> Result<String, ConvertError> {
    std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))
}

/// A node of the source data.
#[derive(Debug, Clone, PartialEq)]
pub struct RawNode {
    /// The device name it gets (unique, valid in a topology file).
    pub name: String,
    /// The source's own label or id.
    pub label: String,
    /// Switch or host.
    pub role: Role,
    /// Latitude and longitude in degrees.
    pub position: Option<(f64, f64)>,
    /// Device id the data gives.
    pub device_id: Option<u64>,
    /// Host address (with prefix) the data gives.
    pub ip: Option<String>,
    /// MAC the data gives.
    pub mac: Option<String>,
}

/// An undirected edge of the source data.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEdge {
    /// Index into [`RawNetwork::nodes`].
    pub a: usize,
    /// Index into [`RawNetwork::nodes`].
    pub b: usize,
    /// Port on `a`, when the data gives one.
    pub a_port: Option<u32>,
    /// Port on `b`.
    pub b_port: Option<u32>,
    /// Capacity the data gives.
    pub capacity: Option<Bandwidth>,
}

/// A network read from public data, before it becomes a topology file.
#[derive(Debug, Clone, PartialEq)]
pub struct RawNetwork {
    /// Short name (`geant2010`).
    pub name: String,
    /// Where the data comes from, for output and the file's name field.
    pub source: String,
    /// Nodes.
    pub nodes: Vec<RawNode>,
    /// Undirected edges, self-loops removed.
    pub edges: Vec<RawEdge>,
}

/// How [`RawNetwork::to_file`] fills what the data does not say.
#[derive(Debug, Clone)]
pub struct Options {
    /// Hosts added behind every switch (0: the switches are the edge).
    pub hosts_per_switch: usize,
    /// Capacity of an edge without one.
    pub default_bandwidth: Bandwidth,
    /// Capacity of host links.
    pub host_bandwidth: Bandwidth,
    /// Delay of an edge without coordinates.
    pub default_delay: Delay,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hosts_per_switch: 0,
            default_bandwidth: Bandwidth(1_000_000_000),
            host_bandwidth: Bandwidth(10_000_000_000),
            default_delay: Delay(Duration::from_millis(1)),
        }
    }
}

/// One demand of a traffic matrix, between two devices by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// Source device.
    pub src: String,
    /// Destination device.
    pub dst: String,
    /// Rate in bits per second (in the unit the source states, converted).
    pub rate_bps: f64,
}

/// Gives every node a unique device name made from its label.
fn name_nodes(labels: &[String]) -> Vec<String> {
    let mut used = HashSet::new();
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let mut base: String = label
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
                .split('-')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            if base.is_empty() {
                base = format!("n{i}");
            }
            base.truncate(MAX_NAME_LEN);
            let mut name = base.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                let suffix = format!("-{n}");
                let mut b = base.clone();
                b.truncate(MAX_NAME_LEN.saturating_sub(suffix.len()));
                name = format!("{}{suffix}", b.trim_end_matches('-'));
                n += 1;
            }
            name
        })
        .collect()
}

fn raw_nodes(labels: Vec<String>) -> Vec<RawNode> {
    name_nodes(&labels)
        .into_iter()
        .zip(labels)
        .map(|(name, label)| RawNode {
            name,
            label,
            role: Role::Fabric,
            position: None,
            device_id: None,
            ip: None,
            mac: None,
        })
        .collect()
}

/// Great-circle distance in km.
fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// The next free port on a device: from 1, skipping 255 (the CPU port).
fn next_port(next: &mut HashMap<usize, u32>, used: &HashSet<(usize, u32)>, node: usize) -> u32 {
    let p = next.entry(node).or_insert(1);
    while *p == 255 || used.contains(&(node, *p)) {
        *p += 1;
    }
    let port = *p;
    *p += 1;
    port
}

impl RawNetwork {
    /// The topology file: switches (and hosts) with ids from 1 in node
    /// order, links with the data's capacity and a delay from coordinates.
    #[must_use]
    pub fn to_file(&self, opts: &Options) -> TopologyFile {
        let mut devices = Vec::new();
        let mut taken: HashSet<u64> = self.nodes.iter().filter_map(|n| n.device_id).collect();
        let mut next_id = 1u64;
        let mut fresh_id = |taken: &mut HashSet<u64>| {
            while taken.contains(&next_id) {
                next_id += 1;
            }
            taken.insert(next_id);
            next_id
        };
        for n in &self.nodes {
            let device_id = n.device_id.unwrap_or_else(|| fresh_id(&mut taken));
            devices.push(DeviceSpec {
                name: n.name.clone(),
                role: n.role,
                pipeline: None,
                device_id,
                switch_id: None,
                address: None,
                site: None,
                rack: None,
                pod: None,
                ip: n.ip.clone(),
                mac: n.mac.clone(),
                node: None,
            });
        }

        let used: HashSet<(usize, u32)> = self
            .edges
            .iter()
            .flat_map(|e| [e.a_port.map(|p| (e.a, p)), e.b_port.map(|p| (e.b, p))])
            .flatten()
            .collect();
        let mut next = HashMap::new();
        let mut links = Vec::new();
        for e in &self.edges {
            let a_port = e.a_port.unwrap_or_else(|| next_port(&mut next, &used, e.a));
            let b_port = e.b_port.unwrap_or_else(|| next_port(&mut next, &used, e.b));
            let delay = match (self.nodes[e.a].position, self.nodes[e.b].position) {
                (Some(pa), Some(pb)) => Delay(Duration::from_micros(
                    (distance_km(pa, pb) * 5.0).round().max(1.0) as u64,
                )),
                _ => opts.default_delay,
            };
            links.push(LinkSpec {
                a: EndpointSpec {
                    device: self.nodes[e.a].name.clone(),
                    port: a_port,
                },
                b: EndpointSpec {
                    device: self.nodes[e.b].name.clone(),
                    port: b_port,
                },
                bandwidth: Some(e.capacity.unwrap_or(opts.default_bandwidth)),
                delay: Some(delay),
            });
        }

        let switches: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].role == Role::Fabric)
            .collect();
        let mut host_no = 0u32;
        for &s in &switches {
            for h in 0..opts.hosts_per_switch {
                host_no += 1;
                let name = format!("h{host_no}");
                let device_id = fresh_id(&mut taken);
                let (hi, lo) = ((host_no >> 8) & 0xff, host_no & 0xff);
                devices.push(DeviceSpec {
                    name: name.clone(),
                    role: Role::Host,
                    pipeline: None,
                    device_id,
                    switch_id: None,
                    address: None,
                    site: None,
                    rack: None,
                    pod: None,
                    ip: Some(format!("10.{hi}.{lo}.1/24")),
                    mac: None,
                    node: None,
                });
                let _ = h;
                links.push(LinkSpec {
                    a: EndpointSpec {
                        device: self.nodes[s].name.clone(),
                        port: next_port(&mut next, &used, s),
                    },
                    b: EndpointSpec {
                        device: name,
                        port: 1,
                    },
                    bandwidth: Some(opts.host_bandwidth),
                    delay: Some(Delay(Duration::ZERO)),
                });
            }
        }

        TopologyFile {
            name: format!("{} ({})", self.name, self.source),
            defaults: super::file::Defaults {
                link: LinkDefaults::default(),
                probe_interval: None,
                device_config: std::collections::BTreeMap::new(),
            },
            devices,
            links,
        }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

/// The device names of the hosts [`RawNetwork::to_file`] adds behind each
/// switch, by switch name.
#[must_use]
pub fn hosts_of(net: &RawNetwork, hosts_per_switch: usize) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut n = 0;
    for node in net.nodes.iter().filter(|n| n.role == Role::Fabric) {
        let hs = (0..hosts_per_switch)
            .map(|_| {
                n += 1;
                format!("h{n}")
            })
            .collect();
        out.insert(node.name.clone(), hs);
    }
    out
}

/// Parses a capacity written as `2.5 Gbps`, `100 Mbps`, `155 Mb/s`.
fn capacity_text(text: &str) -> Option<Bandwidth> {
    let t = text.trim().to_lowercase().replace(' ', "");
    let end = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let v: f64 = t[..end].parse().ok()?;
    let f = match t[end..].chars().next()? {
        't' => 1e12,
        'g' => 1e9,
        'm' => 1e6,
        'k' => 1e3,
        _ => return None,
    };
    (v > 0.0).then(|| Bandwidth((v * f).round() as u64))
}

/// Reads an Internet Topology Zoo GraphML file (the yEd sources: labels
/// in `y:NodeLabel`, edge capacity in the edge `label`, e.g. `10 Gbps`).
///
/// # Errors
/// The file is not GraphML or has edges to unknown nodes.
pub fn zoo_graphml(path: &Path) -> Result<RawNetwork, ConvertError> {
    let text = read(path)?;
    let doc = roxmltree::Document::parse(&text).map_err(|e| err(path, format!("not XML: {e}")))?;
    let mut keys = HashMap::new();
    for k in doc.descendants().filter(|n| n.has_tag_name("key")) {
        if let (Some(id), Some(name)) = (k.attribute("id"), k.attribute("attr.name")) {
            keys.insert(
                id.to_string(),
                (k.attribute("for").unwrap_or(""), name.to_string()),
            );
        }
    }
    let data = |n: roxmltree::Node<'_, '_>, kind: &str, want: &str| -> Option<String> {
        n.children()
            .filter(|c| c.has_tag_name("data"))
            .find(|c| {
                c.attribute("key")
                    .and_then(|k| keys.get(k))
                    .is_some_and(|(f, name)| *f == kind && name == want)
            })
            .and_then(|c| c.text())
            .map(str::to_string)
    };
    let graph = doc
        .descendants()
        .find(|n| n.has_tag_name("graph"))
        .ok_or_else(|| err(path, "no <graph> element"))?;
    let mut ids = HashMap::new();
    let mut labels = Vec::new();
    let mut positions = Vec::new();
    for n in graph.children().filter(|n| n.has_tag_name("node")) {
        let id = n
            .attribute("id")
            .ok_or_else(|| err(path, "a <node> has no id"))?;
        let label = n
            .descendants()
            .find(|d| d.tag_name().name() == "NodeLabel")
            .and_then(|d| d.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(|| data(n, "node", "label"))
            .unwrap_or_else(|| id.to_string());
        let lat = data(n, "node", "Latitude").and_then(|v| v.parse().ok());
        let lon = data(n, "node", "Longitude").and_then(|v| v.parse().ok());
        ids.insert(id.to_string(), labels.len());
        labels.push(label);
        positions.push(lat.zip(lon));
    }
    let mut nodes = raw_nodes(labels);
    for (n, p) in nodes.iter_mut().zip(positions) {
        n.position = p;
    }
    let mut edges = Vec::new();
    for e in graph.children().filter(|n| n.has_tag_name("edge")) {
        let end = |attr: &str| -> Result<usize, ConvertError> {
            let id = e.attribute(attr).unwrap_or("");
            ids.get(id).copied().ok_or_else(|| {
                err(
                    path,
                    format!("edge {:?}: no node {id:?}", e.attribute("id").unwrap_or("")),
                )
            })
        };
        let (a, b) = (end("source")?, end("target")?);
        if a == b {
            continue;
        }
        let capacity = data(e, "edge", "LinkSpeedRaw")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .map(|v| Bandwidth(v as u64))
            .or_else(|| data(e, "edge", "label").and_then(|l| capacity_text(&l)))
            .or_else(|| data(e, "edge", "LinkLabel").and_then(|l| capacity_text(&l)));
        edges.push(RawEdge {
            a,
            b,
            a_port: None,
            b_port: None,
            capacity,
        });
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("zoo");
    Ok(RawNetwork {
        name: stem.to_lowercase(),
        source: format!("Internet Topology Zoo, {stem}"),
        nodes,
        edges,
    })
}

#[derive(serde::Deserialize)]
struct TealJson {
    nodes: Vec<TealNode>,
    links: Vec<TealLink>,
}

#[derive(serde::Deserialize)]
struct TealNode {
    id: u64,
}

#[derive(serde::Deserialize)]
struct TealLink {
    source: u64,
    target: u64,
    capacity: f64,
}

/// Reads a Teal topology (networkx node-link JSON with directed links and
/// a `capacity` in Mbit/s). The two directions of a pair become one link
/// with the smaller of their capacities. Nodes are named `n<id>`.
///
/// # Errors
/// Not the expected JSON, or a link to an unknown node.
pub fn teal_json(path: &Path) -> Result<RawNetwork, ConvertError> {
    let text = read(path)?;
    let t: TealJson = serde_json::from_str(&text).map_err(|e| err(path, e.to_string()))?;
    let mut ids: Vec<u64> = t.nodes.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    let index: HashMap<u64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut nodes = raw_nodes(ids.iter().map(|id| format!("n{id}")).collect());
    for (n, id) in nodes.iter_mut().zip(&ids) {
        n.device_id = Some(id + 1);
    }
    let mut pairs: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    for (i, l) in t.links.iter().enumerate() {
        let (Some(&a), Some(&b)) = (index.get(&l.source), index.get(&l.target)) else {
            return Err(err(path, format!("links[{i}]: unknown node")));
        };
        if a == b || l.capacity.is_nan() || l.capacity <= 0.0 {
            continue;
        }
        let cap = pairs.entry((a.min(b), a.max(b))).or_insert(f64::INFINITY);
        *cap = cap.min(l.capacity);
    }
    let edges = pairs
        .into_iter()
        .map(|((a, b), cap)| RawEdge {
            a,
            b,
            a_port: None,
            b_port: None,
            capacity: Some(Bandwidth((cap * 1e6).round() as u64)),
        })
        .collect();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("teal");
    Ok(RawNetwork {
        name: stem.to_lowercase(),
        source: format!("Teal topology {stem}"),
        nodes,
        edges,
    })
}

/// Reads one Teal traffic matrix (CSV, row = source node id, column =
/// destination node id, Mbit/s) for a network read by [`teal_json`].
///
/// # Errors
/// Not a square matrix of numbers the size of the network.
pub fn teal_matrix(path: &Path, net: &RawNetwork) -> Result<Vec<Demand>, ConvertError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (r, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        for (c, v) in line.split(',').enumerate() {
            let v: f64 = v.trim().parse().map_err(|_| {
                err(
                    path,
                    format!("row {} column {}: {v:?} is not a number", r + 1, c + 1),
                )
            })?;
            if r == c || v <= 0.0 {
                continue;
            }
            let name = |id: usize| {
                net.index_of(&format!("n{id}"))
                    .map(|i| net.nodes[i].name.clone())
            };
            let (Some(src), Some(dst)) = (name(r), name(c)) else {
                return Err(err(
                    path,
                    format!("row {} column {}: no node with that id", r + 1, c + 1),
                ));
            };
            out.push(Demand {
                src,
                dst,
                rate_bps: v * 1e6,
            });
        }
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
struct SndJson {
    #[serde(default)]
    meta: Option<SndMeta>,
    nodes: Vec<SndNode>,
    links: Vec<SndLink>,
    demands: Vec<SndDemand>,
}

#[derive(serde::Deserialize)]
struct SndMeta {
    #[serde(default)]
    unit: Option<String>,
}

#[derive(serde::Deserialize)]
struct SndNode {
    id: String,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    latitude: Option<f64>,
}

#[derive(serde::Deserialize)]
struct SndLink {
    source: String,
    target: String,
    #[serde(default)]
    pre_installed_capacity: f64,
    #[serde(default)]
    modules: Vec<SndModule>,
}

#[derive(serde::Deserialize)]
struct SndModule {
    module_capacity: f64,
}

#[derive(serde::Deserialize)]
struct SndDemand {
    source: String,
    target: String,
    demand_value: f64,
}

/// Reads an SNDlib network with its demands. A link's capacity is its
/// pre-installed capacity, or else its largest installable module (the
/// networks without installed capacity are design problems). The unit is
/// `meta.unit` (BITSPERSEC or MBITPERSEC); networks without `meta` are
/// taken as Mbit/s.
///
/// # Errors
/// Not the expected JSON, or references to unknown nodes.
pub fn sndlib_json(path: &Path) -> Result<(RawNetwork, Vec<Demand>), ConvertError> {
    let text = read(path)?;
    let s: SndJson = serde_json::from_str(&text).map_err(|e| err(path, e.to_string()))?;
    let unit = match s.meta.and_then(|m| m.unit).as_deref() {
        Some("BITSPERSEC") => 1.0,
        Some("MBITPERSEC") | None => 1e6,
        Some(u) => return Err(err(path, format!("unknown unit {u:?}"))),
    };
    let index: HashMap<&str, usize> = s
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut nodes = raw_nodes(s.nodes.iter().map(|n| n.id.clone()).collect());
    for (n, sn) in nodes.iter_mut().zip(&s.nodes) {
        n.position = sn.latitude.zip(sn.longitude);
    }
    let mut edges = Vec::new();
    for (i, l) in s.links.iter().enumerate() {
        let (Some(&a), Some(&b)) = (index.get(l.source.as_str()), index.get(l.target.as_str()))
        else {
            return Err(err(path, format!("links[{i}]: unknown node")));
        };
        let cap = if l.pre_installed_capacity > 0.0 {
            l.pre_installed_capacity
        } else {
            l.modules
                .iter()
                .map(|m| m.module_capacity)
                .fold(0.0, f64::max)
        };
        if a == b || cap <= 0.0 {
            continue;
        }
        edges.push(RawEdge {
            a,
            b,
            a_port: None,
            b_port: None,
            capacity: Some(Bandwidth((cap * unit).round() as u64)),
        });
    }
    let mut demands = Vec::new();
    for (i, d) in s.demands.iter().enumerate() {
        let (Some(&a), Some(&b)) = (index.get(d.source.as_str()), index.get(d.target.as_str()))
        else {
            return Err(err(path, format!("demands[{i}]: unknown node")));
        };
        if a != b && d.demand_value > 0.0 {
            demands.push(Demand {
                src: nodes[a].name.clone(),
                dst: nodes[b].name.clone(),
                rate_bps: d.demand_value * unit,
            });
        }
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sndlib");
    Ok((
        RawNetwork {
            name: stem.to_lowercase(),
            source: format!("SNDlib {stem}"),
            nodes,
            edges,
        },
        demands,
    ))
}

fn id_text(id: &dot_structures::Id) -> String {
    match id {
        dot_structures::Id::Html(s)
        | dot_structures::Id::Escaped(s)
        | dot_structures::Id::Plain(s)
        | dot_structures::Id::Anonymous(s) => s.trim_matches('"').to_string(),
    }
}

fn attrs(list: &[dot_structures::Attribute]) -> HashMap<String, String> {
    list.iter()
        .map(|a| (id_text(&a.0), id_text(&a.1)))
        .collect()
}

/// Reads a Graphviz topology in the YATES style: nodes with `type`
/// (switch or host), `id`, `mac`, `ip`; directed edges with `src_port`,
/// `dst_port` and `capacity` (`1Gbps`). The two directions of a pair
/// become one link; hosts keep their MAC and get their IP with a /24.
///
/// # Errors
/// Not parseable Graphviz, or edges between unknown nodes.
pub fn graphviz(path: &Path) -> Result<RawNetwork, ConvertError> {
    use dot_structures::{EdgeTy, Graph, Stmt, Vertex};
    let text = read(path)?;
    let graph = graphviz_rust::parse(&text).map_err(|e| err(path, format!("not Graphviz: {e}")))?;
    let stmts = match graph {
        Graph::Graph { stmts, .. } | Graph::DiGraph { stmts, .. } => stmts,
    };
    let mut labels = Vec::new();
    let mut node_attrs = Vec::new();
    let mut index = HashMap::new();
    for s in &stmts {
        if let Stmt::Node(n) = s {
            index.insert(id_text(&n.id.0), labels.len());
            labels.push(id_text(&n.id.0));
            node_attrs.push(attrs(&n.attributes));
        }
    }
    let mut nodes = raw_nodes(labels);
    for (n, a) in nodes.iter_mut().zip(&node_attrs) {
        if a.get("type").map(String::as_str) == Some("host") {
            n.role = Role::Host;
            n.ip = a.get("ip").map(|ip| format!("{ip}/24"));
            n.mac = a.get("mac").cloned();
        } else {
            n.device_id = a.get("id").and_then(|v| v.parse().ok());
        }
    }
    let mut seen: HashMap<(usize, u32, usize, u32), usize> = HashMap::new();
    let mut edges = Vec::new();
    for s in &stmts {
        let Stmt::Edge(e) = s else { continue };
        let EdgeTy::Pair(Vertex::N(a), Vertex::N(b)) = &e.ty else {
            return Err(err(path, "only plain a -> b edges are supported"));
        };
        let (an, bn) = (id_text(&a.0), id_text(&b.0));
        let (Some(&a), Some(&b)) = (index.get(&an), index.get(&bn)) else {
            return Err(err(path, format!("edge {an} -> {bn}: undeclared node")));
        };
        let at = attrs(&e.attributes);
        let port = |k: &str| -> Result<u32, ConvertError> {
            at.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| err(path, format!("edge {an} -> {bn}: no numeric {k}")))
        };
        let (ap, bp) = (port("src_port")?, port("dst_port")?);
        if seen.contains_key(&(b, bp, a, ap)) {
            continue;
        }
        seen.insert((a, ap, b, bp), edges.len());
        edges.push(RawEdge {
            a,
            b,
            a_port: Some(ap),
            b_port: Some(bp),
            capacity: at.get("capacity").and_then(|c| capacity_text(c)),
        });
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("dot");
    Ok(RawNetwork {
        name: stem.to_lowercase(),
        source: format!("Graphviz {stem}"),
        nodes,
        edges,
    })
}

/// Reads the YATES Abilene traffic matrices: one matrix per line, n×n
/// values row-major between `hosts` (in the order of `abilene.hosts`).
/// The values are taken as the file's rates in bit/s scale-free: only
/// their ratios matter for utilisation comparisons.
///
/// # Errors
/// A line that is not n×n numbers.
pub fn yates_matrices(path: &Path, hosts: &[String]) -> Result<Vec<Vec<Demand>>, ConvertError> {
    let text = read(path)?;
    let n = hosts.len();
    let mut out = Vec::new();
    for (li, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let values: Vec<f64> = line
            .split_whitespace()
            .map(|v| {
                v.parse()
                    .map_err(|_| err(path, format!("line {}: {v:?} is not a number", li + 1)))
            })
            .collect::<Result<_, _>>()?;
        if values.len() != n * n {
            return Err(err(
                path,
                format!(
                    "line {}: {} values, expected {}",
                    li + 1,
                    values.len(),
                    n * n
                ),
            ));
        }
        let mut m = Vec::new();
        for (k, v) in values.into_iter().enumerate() {
            let (r, c) = (k / n, k % n);
            if r != c && v > 0.0 {
                m.push(Demand {
                    src: hosts[r].clone(),
                    dst: hosts[c].clone(),
                    rate_bps: v,
                });
            }
        }
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_unique() {
        let names = name_nodes(&[
            "New York".into(),
            "New York".into(),
            "".into(),
            "Frankfurt am Main (DE)".into(),
            "Frankfurt am Main (DE)".into(),
        ]);
        assert_eq!(names[0], "new-york");
        assert_eq!(names[1], "new-yor-2");
        assert_eq!(names[2], "n2");
        assert_eq!(names[3], "frankfurt");
        assert_eq!(names[4], "frankfu-2");
        assert!(names.iter().all(|n| n.len() <= MAX_NAME_LEN));
    }

    #[test]
    fn capacities_in_text_parse() {
        assert_eq!(capacity_text("2.5 Gbps"), Some(Bandwidth(2_500_000_000)));
        assert_eq!(capacity_text("1Gbps"), Some(Bandwidth(1_000_000_000)));
        assert_eq!(capacity_text("155 Mb/s"), Some(Bandwidth(155_000_000)));
        assert_eq!(capacity_text("fibre"), None);
    }

    #[test]
    fn ports_skip_the_cpu_port() {
        let used = HashSet::new();
        let mut next = HashMap::new();
        let ports: Vec<u32> = (0..300).map(|_| next_port(&mut next, &used, 0)).collect();
        assert!(!ports.contains(&255));
        assert_eq!(ports.len(), ports.iter().collect::<HashSet<_>>().len());
    }
}
