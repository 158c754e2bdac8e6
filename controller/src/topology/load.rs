//! Reading a topology file: YAML syntax and types through serde, then the
//! rules of `docs/topology-format.md`, each problem with its line and field.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{DeviceSpec, Role, TopologyFile, MAX_NAME_LEN};
use super::{locate, Bandwidth, Delay, Device, DeviceConfig, Link, LinkState, Mac, Topology};

/// Capacity of a link that neither the link nor `defaults` gives.
pub const DEFAULT_BANDWIDTH: Bandwidth = Bandwidth(1_000_000_000);
/// The P4 port numbers a device can use: 1..=511, without 255 (CPU).
pub const MAX_PORT: u32 = 511;
/// The CPU port of the pipelines.
pub const CPU_PORT: u32 = 255;

/// One thing wrong in a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field: `devices[2].device_id`, `links[0].a`.
    pub field: String,
    /// Line and column (from 1), when the input was text.
    pub line: Option<(usize, usize)>,
    /// What is wrong.
    pub reason: String,
}

/// A topology file that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TopologyError {
    /// The file (or source name).
    pub file: String,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.line {
                Some((l, c)) => write!(f, "{}:{l}:{c}: {}: {}", self.file, p.field, p.reason)?,
                None => write!(f, "{}: {}: {}", self.file, p.field, p.reason)?,
            }
        }
        Ok(())
    }
}

pub(super) fn load(path: &Path) -> Result<Topology, TopologyError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TopologyError {
        file: source.clone(),
        problems: vec![Problem {
            field: "file".into(),
            line: None,
            reason: format!("cannot read: {e}"),
        }],
    })?;
    parse_in(&text, &source, path.parent())
}

pub(super) fn parse(yaml: &str, source: &str) -> Result<Topology, TopologyError> {
    parse_in(yaml, source, None)
}

/// Parses `yaml`; relative paths in it are taken from `base` (the
/// topology file's folder), else from the current directory.
fn parse_in(yaml: &str, source: &str, base: Option<&Path>) -> Result<Topology, TopologyError> {
    let file: TopologyFile = serde_norway::from_str(yaml).map_err(|e| {
        // serde_norway's message is "path: reason at line L column C".
        let text = e.to_string();
        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
        let (field, reason) = match text.split_once(": ") {
            Some((f, r)) if !f.contains(' ') => (f.to_string(), r.to_string()),
            _ => ("file".to_string(), text),
        };
        TopologyError {
            file: source.to_string(),
            problems: vec![Problem {
                field,
                line: e.location().map(|l| (l.line(), l.column())),
                reason,
            }],
        }
    })?;
    build(&file, source, Some(yaml), base)
}

struct Checker<'a> {
    yaml: Option<&'a str>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, field: String, reason: String) {
        let line = self.yaml.and_then(|y| locate::locate(y, &field));
        self.problems.push(Problem {
            field,
            line,
            reason,
        });
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn parse_ip(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("{text:?} is not an address with its prefix: write 10.0.1.1/24");
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    Ok((addr, len))
}

fn valid_address(text: &str) -> bool {
    if let Some(path) = text.strip_prefix("unix:") {
        return path.starts_with('/');
    }
    text.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

fn device(c: &mut Checker<'_>, i: usize, d: &DeviceSpec) -> Device {
    let at = |f: &str| format!("devices[{i}].{f}");
    if !valid_name(&d.name) {
        c.problem(
            at("name"),
            format!(
                "{:?}: a name is [a-z0-9_-]+, at most {MAX_NAME_LEN} characters",
                d.name
            ),
        );
    }
    if d.device_id == 0 {
        c.problem(
            at("device_id"),
            "device_id 0 is reserved: use a non-zero id".into(),
        );
    }
    let ip = match (&d.ip, d.role) {
        (Some(text), _) => match parse_ip(text) {
            Ok(ip) => Some(ip),
            Err(e) => {
                c.problem(at("ip"), e);
                None
            }
        },
        (None, Role::Host) => {
            c.problem(at("ip"), "a host needs an ip (e.g. 10.0.1.1/24)".into());
            None
        }
        (None, Role::Fabric) => None,
    };
    let mac = match &d.mac {
        Some(text) => text.parse().unwrap_or_else(|e| {
            c.problem(at("mac"), e);
            Mac::for_device(d.device_id)
        }),
        None => Mac::for_device(d.device_id),
    };
    if let Some(a) = &d.address {
        if !valid_address(a) {
            c.problem(
                at("address"),
                format!("{a:?}: write host:port or unix:/path"),
            );
        }
    }
    let switch_id = match d.switch_id {
        Some(s) => s,
        None => u32::try_from(d.device_id).unwrap_or_else(|_| {
            c.problem(
                at("device_id"),
                "this device_id does not fit an INT switch id: give switch_id".into(),
            );
            0
        }),
    };
    Device {
        name: d.name.clone(),
        role: d.role,
        pipeline: d.pipeline.clone().unwrap_or_else(|| {
            match d.role {
                Role::Fabric => "solyx_fabric",
                Role::Host => "solyx_host",
            }
            .to_string()
        }),
        device_id: d.device_id,
        switch_id,
        address: d.address.clone(),
        site: d.site.clone(),
        rack: d.rack.clone(),
        pod: d.pod.clone(),
        ip,
        mac,
        node: d.node.clone(),
    }
}

/// Reads the files of `defaults.device_config`, one per pipeline; a file
/// that cannot be read is a problem naming the devices that would run
/// without it.
fn device_configs(
    c: &mut Checker<'_>,
    topo: &mut Topology,
    file: &TopologyFile,
    base: Option<&Path>,
) {
    for (pipeline, name) in &file.defaults.device_config {
        let field = format!("defaults.device_config.{pipeline}");
        let users: Vec<&str> = topo
            .devices()
            .filter(|(_, d)| d.pipeline == *pipeline)
            .map(|(_, d)| d.name.as_str())
            .collect();
        if users.is_empty() {
            c.problem(
                field,
                format!(
                    "no device runs pipeline {pipeline:?}: \
                     key the config by the pipeline of the devices it is for"
                ),
            );
            continue;
        }
        let path = match base {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        };
        let devices = users.join(", ");
        if name.is_empty() {
            c.problem(
                field,
                format!("an empty path: name the device config file of {devices}"),
            );
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => topo.set_device_config(
                pipeline,
                DeviceConfig {
                    path,
                    bytes: bytes.into(),
                },
            ),
            Err(e) => c.problem(
                field,
                format!(
                    "cannot read {} (the device config of {devices}): {e}",
                    path.display()
                ),
            ),
        }
    }
}

/// Checks `file` and builds the network. `yaml` is the text it came from,
/// used to put lines on problems; `base` is the folder relative paths start
/// from (the current directory when `None`).
pub(super) fn build(
    file: &TopologyFile,
    source: &str,
    yaml: Option<&str>,
    base: Option<&Path>,
) -> Result<Topology, TopologyError> {
    let mut c = Checker {
        yaml,
        problems: Vec::new(),
    };
    let mut topo = Topology::new(&file.name);
    topo.probe_interval = file
        .defaults
        .probe_interval
        .map_or(Duration::from_millis(100), |d| d.0);
    if topo.probe_interval.is_zero() {
        c.problem(
            "defaults.probe_interval".into(),
            "must be more than 0".into(),
        );
    }

    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ids: HashMap<u64, usize> = HashMap::new();
    let mut switch_ids: HashMap<u32, usize> = HashMap::new();
    for (i, spec) in file.devices.iter().enumerate() {
        let dev = device(&mut c, i, spec);
        if let Some(first) = names.insert(&spec.name, i) {
            c.problem(
                format!("devices[{i}].name"),
                format!("{:?} is already the name of devices[{first}]", spec.name),
            );
            continue;
        }
        if let Some(first) = ids.insert(spec.device_id, i) {
            c.problem(
                format!("devices[{i}].device_id"),
                format!(
                    "{} is already the device_id of devices[{first}]",
                    spec.device_id
                ),
            );
        } else if let Some(first) = switch_ids.insert(dev.switch_id, i) {
            c.problem(
                format!("devices[{i}].switch_id"),
                format!(
                    "INT switch id {} is already used by devices[{first}] (it defaults to the device_id)",
                    dev.switch_id
                ),
            );
        }
        if let Err(e) = topo.add_device(dev) {
            c.problem(format!("devices[{i}].name"), e);
        }
    }

    let default_bw = file.defaults.link.bandwidth.unwrap_or(DEFAULT_BANDWIDTH);
    let default_delay = file.defaults.link.delay.unwrap_or(Delay(Duration::ZERO));
    let mut ports: HashMap<(&str, u32), String> = HashMap::new();
    let mut pending = Vec::new();
    for (i, l) in file.links.iter().enumerate() {
        let mut ok = true;
        let mut ends = Vec::new();
        for (side, end) in [("a", &l.a), ("b", &l.b)] {
            let field = format!("links[{i}].{side}");
            let Some(ix) = topo.device_ix(&end.device) else {
                c.problem(field, format!("no device named {:?}", end.device));
                ok = false;
                continue;
            };
            if end.port == 0 || end.port > MAX_PORT || end.port == CPU_PORT {
                c.problem(
                    field.clone(),
                    format!(
                        "port {} is not usable: ports are 1..={MAX_PORT}, and {CPU_PORT} is the CPU port",
                        end.port
                    ),
                );
                ok = false;
            }
            if let Some(first) = ports.insert((&end.device, end.port), field.clone()) {
                c.problem(field, format!("{end} is already linked by {first}"));
                ok = false;
            }
            ends.push(ix);
        }
        if ends.len() == 2 {
            let (a, b) = (&topo.graph[ends[0]], &topo.graph[ends[1]]);
            if ends[0] == ends[1] {
                c.problem(
                    format!("links[{i}]"),
                    "a link joins two different devices".into(),
                );
                ok = false;
            } else if a.role == Role::Host && b.role == Role::Host {
                c.problem(
                    format!("links[{i}]"),
                    format!(
                        "{} and {} are both hosts: hosts connect only to fabric devices",
                        a.name, b.name
                    ),
                );
                ok = false;
            }
        }
        if ok && ends.len() == 2 {
            let capacity = l.bandwidth.unwrap_or(default_bw);
            let delay = l.delay.unwrap_or(default_delay).0;
            for (s, sp, d, dp) in [
                (ends[0], l.a.port, ends[1], l.b.port),
                (ends[1], l.b.port, ends[0], l.a.port),
            ] {
                pending.push(Link {
                    src: s,
                    src_port: sp,
                    dst: d,
                    dst_port: dp,
                    delay,
                    declared: true,
                    state: LinkState {
                        capacity,
                        up: true,
                        utilisation: 0.0,
                        latency: delay,
                        queue_depth: 0,
                        loss: 0.0,
                    },
                });
            }
        }
    }
    for link in pending {
        if let Err(e) = topo.add_link(link) {
            c.problem("links".into(), e);
        }
    }

    device_configs(&mut c, &mut topo, file, base);

    // A name seen twice may hide the first device's links: keep the order
    // stable so the report reads top to bottom.
    let mut seen = HashSet::new();
    c.problems
        .retain(|p| seen.insert((p.field.clone(), p.reason.clone())));
    c.problems
        .sort_by_key(|p| p.line.unwrap_or((usize::MAX, 0)));
    if c.problems.is_empty() {
        Ok(topo)
    } else {
        Err(TopologyError {
            file: source.to_string(),
            problems: c.problems,
        })
    }
}
