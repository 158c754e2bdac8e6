//! `solyx-agent switch`: a Linux box as a P4Runtime-programmable
//! `solyx_fabric` switch. This module resolves its configuration (command
//! line over a YAML file over defaults) and builds the P4Runtime service
//! with the eBPF data plane, restoring the state a previous run saved; the
//! binary then serves it.
//!
//! ```yaml
//! # solyx-agent switch --config s1.yaml
//! device_id: 1
//! netns: s1                      # network namespace of the ports (optional)
//! instance: s1                   # pin directory name (default dev<device_id>)
//! grpc: 127.0.0.1:9559           # TCP listener
//! unix: /run/solyx/s1.sock       # Unix socket listener
//! state_dir: /var/lib/solyx/s1   # saved P4Runtime state
//! declare: /etc/solyx/node.yaml  # declared node resources (docs/node-resources.md)
//! metrics: 127.0.0.1:9464        # Prometheus /metrics
//! ports:                         # P4 port number: interface
//!   1: s1-eth1
//!   2: s1-eth2
//! ```
//!
//! Hitless restart: the programs' links (TC ingress: forwarding; TC
//! egress: INT transit) and maps are pinned under
//! `/sys/fs/bpf/solyx/<instance>` and stay when the agent stops, so
//! forwarding and INT go on (the INT queue state goes stale until the next
//! agent publishes it again); the P4Runtime state (P4Info, cookie,
//! entities) is saved in `<state_dir>/p4runtime-state.pb` after every
//! change. A new agent swaps its programs into the pinned links, restores
//! the saved state and takes over the maps' entries and counters as they
//! are.
//!
//! Network namespaces: run the agent with `--netns NAME` rather than under
//! `ip netns exec NAME`. The latter also gives the process a mount
//! namespace of its own with a fresh `/sys`, which hides the host's
//! `/sys/fs/bpf`; the agent would then pin into a bpffs of its own that
//! vanishes with it, and a restart would not be hitless. `--netns` only
//! switches the network namespace (`setns`) before any thread starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::ebpf::{EbpfFabricDataplane, PortSpec, SwitchPorts, DEFAULT_PIN_ROOT};
use crate::p4rt::{AgentService, Dataplane, DataplaneError, RestoreError, ServerConfig};
use crate::port_events::PortWatch;

/// Where the state of instance `<instance>` is saved by default.
pub const DEFAULT_STATE_ROOT: &str = "/var/lib/solyx";
/// The file in the state directory.
pub const STATE_FILE: &str = "p4runtime-state.pb";
/// The TCP address served when neither `grpc` nor `unix` is given.
pub const DEFAULT_GRPC: &str = "127.0.0.1:9559";

/// The YAML configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchFile {
    /// P4Runtime device ID.
    pub device_id: Option<u64>,
    /// Network namespace (name under `/run/netns`, or a path).
    pub netns: Option<String>,
    /// Pin directory name.
    pub instance: Option<String>,
    /// TCP address.
    pub grpc: Option<SocketAddr>,
    /// Unix socket path.
    pub unix: Option<PathBuf>,
    /// Saved state directory.
    pub state_dir: Option<PathBuf>,
    /// Declared node resources file.
    pub declare: Option<PathBuf>,
    /// Prometheus metrics address.
    pub metrics: Option<SocketAddr>,
    /// Port number → interface.
    #[serde(default)]
    pub ports: BTreeMap<u16, String>,
}

/// What the command line gives (each overrides the file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchOverrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--port N=IFACE`, repeatable.
    pub ports: Vec<PortSpec>,
    /// `--device-id`.
    pub device_id: Option<u64>,
    /// `--netns`.
    pub netns: Option<String>,
    /// `--instance`.
    pub instance: Option<String>,
    /// `--grpc`.
    pub grpc: Option<SocketAddr>,
    /// `--unix`.
    pub unix: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--pin-root` (a directory on a bpffs).
    pub pin_root: Option<PathBuf>,
    /// `--declare`.
    pub declare: Option<PathBuf>,
    /// `--metrics`.
    pub metrics: Option<SocketAddr>,
}

/// The resolved configuration of a switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchConfig {
    /// P4Runtime device ID.
    pub device_id: u64,
    /// Network namespace to enter first, if any.
    pub netns: Option<String>,
    /// Instance (pin directory) name.
    pub instance: String,
    /// TCP listener, if any.
    pub grpc: Option<SocketAddr>,
    /// Unix socket listener, if any.
    pub unix: Option<PathBuf>,
    /// Saved state directory.
    pub state_dir: PathBuf,
    /// Pin root.
    pub pin_root: PathBuf,
    /// The ports.
    pub ports: Vec<PortSpec>,
    /// Declared node resources file, if any.
    pub declare: Option<PathBuf>,
    /// Prometheus metrics address, if any.
    pub metrics: Option<SocketAddr>,
}

impl SwitchConfig {
    /// Merges the command line over the file (if any) over the defaults.
    ///
    /// # Errors
    /// The file is unreadable or invalid, a port is given twice with
    /// different interfaces, or no port is given.
    pub fn resolve(overrides: SwitchOverrides) -> Result<Self, String> {
        let file = match &overrides.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                serde_norway::from_str::<SwitchFile>(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => SwitchFile::default(),
        };
        Self::merge(file, overrides)
    }

    /// [`SwitchConfig::resolve`] with the file already parsed.
    ///
    /// # Errors
    /// As [`SwitchConfig::resolve`].
    pub fn merge(file: SwitchFile, o: SwitchOverrides) -> Result<Self, String> {
        let mut ports: BTreeMap<u16, String> = BTreeMap::new();
        for (port, interface) in file.ports {
            let spec = PortSpec { port, interface };
            spec.check()?;
            ports.insert(spec.port, spec.interface);
        }
        for spec in o.ports {
            spec.check()?;
            if let Some(other) = ports.get(&spec.port) {
                if *other != spec.interface {
                    return Err(format!(
                        "port {} is {other} in the file and {} on the command line",
                        spec.port, spec.interface
                    ));
                }
            }
            ports.insert(spec.port, spec.interface);
        }
        if ports.is_empty() {
            return Err("no ports: give --port N=INTERFACE or `ports:` in --config".into());
        }
        let mut by_interface = BTreeMap::new();
        for (port, interface) in &ports {
            if let Some(other) = by_interface.insert(interface.clone(), *port) {
                return Err(format!(
                    "interface {interface} is port {other} and port {port}"
                ));
            }
        }
        let device_id = o.device_id.or(file.device_id).unwrap_or(1);
        let instance = o
            .instance
            .or(file.instance)
            .unwrap_or_else(|| format!("dev{device_id}"));
        let unix = o.unix.or(file.unix);
        let grpc = o
            .grpc
            .or(file.grpc)
            .or_else(|| unix.is_none().then(|| DEFAULT_GRPC.parse().ok()).flatten());
        let state_dir = o
            .state_dir
            .or(file.state_dir)
            .unwrap_or_else(|| Path::new(DEFAULT_STATE_ROOT).join(&instance));
        Ok(Self {
            device_id,
            netns: o.netns.or(file.netns),
            instance,
            grpc,
            unix,
            state_dir,
            pin_root: o
                .pin_root
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_ROOT)),
            ports: ports
                .into_iter()
                .map(|(port, interface)| PortSpec { port, interface })
                .collect(),
            declare: o.declare.or(file.declare),
            metrics: o.metrics.or(file.metrics),
        })
    }

    /// The saved state file.
    #[must_use]
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join(STATE_FILE)
    }

    /// The instance and ports, for the data plane.
    #[must_use]
    pub fn switch_ports(&self) -> SwitchPorts {
        SwitchPorts {
            instance: self.instance.clone(),
            ports: self.ports.clone(),
        }
    }
}

/// Moves the calling thread into network namespace `netns` (a name under
/// `/run/netns`, or a path to a namespace file). Threads started afterwards
/// inherit it: call it before starting any (the async runtime included).
///
/// # Errors
/// The namespace cannot be opened or entered.
pub fn enter_netns(netns: &str) -> Result<(), String> {
    let path = if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        Path::new("/run/netns").join(netns)
    };
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("entering network namespace {}: {e}", path.display()))
}

/// Why a switch could not start.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// Another agent runs this instance (it holds the lock file in the
    /// state directory), or the lock file cannot be created.
    #[error("instance lock {path}: {why}")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Why it could not be taken.
        why: String,
    },
    /// The eBPF data plane could not be loaded or attached.
    #[error("eBPF data plane: {0}")]
    Dataplane(#[from] crate::ebpf::Error),
    /// The saved state could not be restored.
    #[error("{0} (remove {1} to start with empty tables)")]
    Restore(RestoreError, PathBuf),
    /// With no saved state, the tables left by a previous agent could not
    /// be emptied.
    #[error("emptying the tables: {0}")]
    Clear(crate::p4rt::DataplaneError),
}

/// A started switch: the service to serve and its data plane.
#[derive(Debug)]
pub struct Switch {
    /// The P4Runtime service.
    pub service: AgentService,
    /// Its data plane.
    pub dataplane: Arc<EbpfFabricDataplane>,
    /// The ports' link state (none when the netlink socket could not be
    /// opened: `WatchPorts` is then UNIMPLEMENTED and the controller's
    /// probes alone find failed links).
    pub ports: Option<PortWatch>,
    /// Held while the switch runs.
    _locks: InstanceLocks,
}

/// Where the lock of a pin directory lives: a regular file cannot be made
/// on bpffs, so one file per pin directory under `/run/solyx/locks`.
fn pin_lock_path(config: &SwitchConfig) -> PathBuf {
    let pins = config.pin_root.join(&config.instance);
    let name: String = pins
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new("/run/solyx/locks").join(format!("{name}.lock"))
}

/// Takes the lock file `path`, so that two agents never program the same
/// pinned maps or share a state directory.
fn lock_instance(
    config: &SwitchConfig,
    path: PathBuf,
) -> Result<nix::fcntl::Flock<std::fs::File>, SwitchError> {
    let locked = |why: String| SwitchError::Locked {
        path: path.clone(),
        why,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| locked(e.to_string()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| locked(e.to_string()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        match e {
            nix::errno::Errno::EWOULDBLOCK => {
                locked(format!("another agent runs instance {:?}", config.instance))
            }
            e => locked(e.to_string()),
        }
    })
}

/// The instance locks (state directory and pin directory): both identify
/// an instance, and a second agent on either would fight over the same
/// maps. Held as long as the value lives.
#[derive(Debug)]
pub struct InstanceLocks {
    _locks: [nix::fcntl::Flock<std::fs::File>; 2],
}

impl InstanceLocks {
    /// Takes both locks of `config`'s instance.
    ///
    /// # Errors
    /// [`SwitchError::Locked`].
    pub fn take(config: &SwitchConfig) -> Result<Self, SwitchError> {
        Ok(Self {
            _locks: [
                lock_instance(config, config.state_dir.join("lock"))?,
                lock_instance(config, pin_lock_path(config))?,
            ],
        })
    }
}

/// Builds the P4Runtime service of a started eBPF data plane (the fabric
/// switch's or the host's) and restores the saved state if there is one;
/// if there is none, `clear` empties the tables (nothing would show what
/// they hold). The data plane refuses any pipeline but its own, naming
/// what it implements.
///
/// # Errors
/// [`SwitchError::Restore`] or [`SwitchError::Clear`].
pub fn serve_dataplane<D: Dataplane>(
    config: &SwitchConfig,
    dataplane: Arc<D>,
    clear: impl FnOnce(&D) -> Result<(), DataplaneError>,
) -> Result<AgentService, SwitchError> {
    let server = ServerConfig {
        device_id: config.device_id,
        state_file: Some(config.state_file()),
        ..ServerConfig::default()
    };
    let service = AgentService::new(server, dataplane.clone());
    let state_file = config.state_file();
    match service.restore(&state_file) {
        Ok(Some(outcome)) => tracing::info!(
            file = %state_file.display(),
            restored = outcome.restored,
            refused = outcome.refused,
            "restored the saved P4Runtime state"
        ),
        Ok(None) => {
            clear(&dataplane).map_err(SwitchError::Clear)?;
            tracing::info!(
                file = %state_file.display(),
                "no saved P4Runtime state: starting with empty tables"
            );
        }
        Err(e) => return Err(SwitchError::Restore(e, state_file)),
    }
    Ok(service)
}

/// Loads and attaches the fabric programs on the configured ports (in the
/// calling thread's network namespace: forwarding at TC ingress, INT
/// transit at TC egress) and starts the INT queue publisher, builds the
/// P4Runtime service with the eBPF data plane, and restores the saved state
/// if there is one (if there is none, the tables are emptied, INT's
/// included: nothing would show what they hold), and starts watching the
/// ports' link state ([`PortWatch`], served as `WatchPorts`).
///
/// # Errors
/// See [`SwitchError`].
pub fn start(config: &SwitchConfig) -> Result<Switch, SwitchError> {
    let locks = InstanceLocks::take(config)?;
    let dataplane = Arc::new(EbpfFabricDataplane::start_with(
        &config.pin_root,
        &config.switch_ports(),
    )?);
    let service = serve_dataplane(config, dataplane.clone(), EbpfFabricDataplane::clear_tables)?;
    let ports = match PortWatch::start(&config.ports) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the ports' link state; WatchPorts is off");
            None
        }
    };
    Ok(Switch {
        service,
        dataplane,
        ports,
        _locks: locks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(port: u16, interface: &str) -> PortSpec {
        PortSpec {
            port,
            interface: interface.into(),
        }
    }

    #[test]
    fn command_line_overrides_the_file() {
        let file: SwitchFile = serde_norway::from_str(
            "device_id: 7\nports:\n  1: eth1\n  2: eth2\nunix: /run/s.sock\n\
             declare: node.yaml\nmetrics: 127.0.0.1:9464\n",
        )
        .expect("yaml");
        let c = SwitchConfig::merge(
            file,
            SwitchOverrides {
                ports: vec![spec(3, "eth3")],
                device_id: Some(9),
                metrics: "127.0.0.1:9100".parse().ok(),
                ..SwitchOverrides::default()
            },
        )
        .expect("config");
        assert_eq!(c.declare.as_deref(), Some(Path::new("node.yaml")));
        assert_eq!(c.metrics, "127.0.0.1:9100".parse().ok());
        assert_eq!(c.device_id, 9);
        assert_eq!(c.instance, "dev9");
        assert_eq!(c.ports.len(), 3);
        assert_eq!(c.grpc, None, "a Unix socket alone");
        assert_eq!(
            c.state_file(),
            Path::new("/var/lib/solyx/dev9/p4runtime-state.pb")
        );
    }

    #[test]
    fn defaults_and_conflicts() {
        let c = SwitchConfig::merge(
            SwitchFile::default(),
            SwitchOverrides {
                ports: vec![spec(1, "a")],
                ..SwitchOverrides::default()
            },
        )
        .expect("config");
        assert_eq!(c.grpc, DEFAULT_GRPC.parse().ok());
        assert_eq!(c.instance, "dev1");
        let no_ports = SwitchConfig::merge(SwitchFile::default(), SwitchOverrides::default());
        assert!(no_ports.expect_err("refused").contains("no ports"));
        let twice = SwitchConfig::merge(
            SwitchFile::default(),
            SwitchOverrides {
                ports: vec![spec(1, "a"), spec(2, "a")],
                ..SwitchOverrides::default()
            },
        );
        assert!(twice.expect_err("refused").contains("interface a"));
        let unknown: Result<SwitchFile, _> = serde_norway::from_str("prots: {}\n");
        assert!(unknown.is_err(), "unknown keys are refused");
    }
}
