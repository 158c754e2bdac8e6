//! The controller's state store: the one place where the runtime (device
//! sessions, link discovery, the telemetry collector, the routing engine)
//! writes what it knows, and where the REST API reads it.
//!
//! Writers call the `set_*`/`upsert_*`/`remove_*` methods; each write bumps
//! a change version that readers can wait on ([`StateStore::subscribe`]).
//! Reads return copies, so no lock is held while a response is serialised.
//!
//! TODO-perf: every read copies its list under the read lock; with tens of
//! thousands of links and frequent telemetry writes, readers and the
//! collector contend. Immutable snapshots swapped per write batch
//! (arc-swap) would make reads free.
//! Intents are the exception to "the runtime writes": the API writes them
//! and the routing loop reads them; they persist in SQLite
//! ([`IntentStore`]).

pub mod intents;
pub mod model;

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::watch;

pub use intents::{
    Intent, IntentError, IntentSpec, IntentState, IntentStatus, IntentStore, InvalidField,
    Objective,
};
pub use model::{
    ConnectionState, Device, DeviceRole, Endpoint, Host, Link, LinkState, LinkTelemetry, NextHop,
    Path, PathSet, Port, PortCounters, Route, RouteMatch, TelemetrySummary,
};

use crate::metrics::Metrics;

/// A write named something the store does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// No device with that name.
    #[error("no device named {0:?}")]
    UnknownDevice(String),
    /// No host with that name.
    #[error("no host named {0:?}")]
    UnknownHost(String),
    /// No link with that ID.
    #[error("no link {0:?}")]
    UnknownLink(String),
    /// No port with that number on the device.
    #[error("device {device:?} has no port {port}")]
    UnknownPort {
        /// Device name.
        device: String,
        /// Port number.
        port: u32,
    },
}

#[derive(Debug, Default)]
struct Network {
    devices: BTreeMap<String, Device>,
    ports: BTreeMap<(String, u32), Port>,
    links: BTreeMap<String, Link>,
    hosts: BTreeMap<String, Host>,
    paths: BTreeMap<(String, String), Vec<Path>>,
    routes: BTreeMap<String, Vec<Route>>,
    telemetry: TelemetrySummary,
}

/// The controller's state: the network view and the intents.
#[derive(Debug)]
pub struct StateStore {
    network: RwLock<Network>,
    intents: IntentStore,
    version: watch::Sender<u64>,
    metrics: Option<Arc<Metrics>>,
}

impl StateStore {
    /// A store whose intents persist in the SQLite file at `path`.
    ///
    /// # Errors
    /// When the intent database cannot be opened ([`IntentError`]).
    pub fn open(path: &FsPath) -> Result<Self, IntentError> {
        Ok(Self::with_intents(IntentStore::open(path)?))
    }

    /// A store whose intents live in memory only.
    ///
    /// # Errors
    /// When SQLite cannot start.
    pub fn ephemeral() -> Result<Self, IntentError> {
        Ok(Self::with_intents(IntentStore::ephemeral()?))
    }

    fn with_intents(intents: IntentStore) -> Self {
        Self {
            network: RwLock::new(Network::default()),
            intents,
            version: watch::Sender::new(0),
            metrics: None,
        }
    }

    /// Also mirrors link measurements into the link gauges of `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn read(&self) -> RwLockReadGuard<'_, Network> {
        // Every write leaves the maps consistent (one insert or replace), so
        // a writer's panic does not make the data unusable.
        self.network
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Network> {
        self.network
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// The change version: it grows by one with every write.
    #[must_use]
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// A receiver that sees the change version move (for loops that react
    /// to changes, such as the routing loop watching intents).
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    // --- devices and ports -------------------------------------------------

    /// Adds a device or replaces the one with the same name.
    pub fn upsert_device(&self, device: Device) {
        self.write().devices.insert(device.name.clone(), device);
        self.changed();
    }

    /// Records the state of the P4Runtime session with a device.
    ///
    /// # Errors
    /// [`StateError::UnknownDevice`].
    pub fn set_device_session(
        &self,
        name: &str,
        connection: ConnectionState,
        primary: bool,
        election_id: u128,
    ) -> Result<(), StateError> {
        {
            let mut net = self.write();
            let d = net
                .devices
                .get_mut(name)
                .ok_or_else(|| StateError::UnknownDevice(name.into()))?;
            d.connection = connection;
            d.primary = primary;
            d.election_id = election_id;
        }
        self.changed();
        Ok(())
    }

    /// Records the pipeline a device runs.
    ///
    /// # Errors
    /// [`StateError::UnknownDevice`].
    pub fn set_device_pipeline(
        &self,
        name: &str,
        pipeline: Option<String>,
    ) -> Result<(), StateError> {
        {
            let mut net = self.write();
            let d = net
                .devices
                .get_mut(name)
                .ok_or_else(|| StateError::UnknownDevice(name.into()))?;
            d.pipeline = pipeline;
        }
        self.changed();
        Ok(())
    }

    /// Removes a device with its ports and routes; answers whether it was there.
    pub fn remove_device(&self, name: &str) -> bool {
        let removed = {
            let mut net = self.write();
            net.ports.retain(|(d, _), _| d != name);
            net.routes.remove(name);
            net.devices.remove(name).is_some()
        };
        self.changed();
        removed
    }

    /// Every device, by name.
    #[must_use]
    pub fn devices(&self) -> Vec<Device> {
        self.read().devices.values().cloned().collect()
    }

    /// One device.
    #[must_use]
    pub fn device(&self, name: &str) -> Option<Device> {
        self.read().devices.get(name).cloned()
    }

    /// Adds a port or replaces the one with the same device and number.
    ///
    /// # Errors
    /// [`StateError::UnknownDevice`] when the device is not in the store.
    pub fn upsert_port(&self, port: Port) -> Result<(), StateError> {
        {
            let mut net = self.write();
            if !net.devices.contains_key(&port.device) {
                return Err(StateError::UnknownDevice(port.device));
            }
            net.ports.insert((port.device.clone(), port.port), port);
        }
        self.changed();
        Ok(())
    }

    /// Adds a port, or updates the interface, state and speed of the one
    /// with the same device and number and keeps the counters it has (the
    /// runtime refreshes what it knows of a port more often than it reads
    /// the counters). A write that changes nothing leaves the version as
    /// it is.
    ///
    /// # Errors
    /// [`StateError::UnknownDevice`] when the device is not in the store.
    pub fn refresh_port(&self, port: Port) -> Result<(), StateError> {
        {
            let mut net = self.write();
            if !net.devices.contains_key(&port.device) {
                return Err(StateError::UnknownDevice(port.device));
            }
            let key = (port.device.clone(), port.port);
            match net.ports.get_mut(&key) {
                Some(p)
                    if p.interface == port.interface
                        && p.up == port.up
                        && p.speed_bps == port.speed_bps =>
                {
                    return Ok(());
                }
                Some(p) => {
                    p.interface = port.interface;
                    p.up = port.up;
                    p.speed_bps = port.speed_bps;
                }
                None => {
                    net.ports.insert(key, port);
                }
            }
        }
        self.changed();
        Ok(())
    }

    /// Records the counters of a port read from its device.
    ///
    /// # Errors
    /// [`StateError::UnknownPort`].
    pub fn set_port_counters(
        &self,
        device: &str,
        port: u32,
        counters: PortCounters,
    ) -> Result<(), StateError> {
        {
            let mut net = self.write();
            let p = net
                .ports
                .get_mut(&(device.to_string(), port))
                .ok_or_else(|| StateError::UnknownPort {
                    device: device.into(),
                    port,
                })?;
            p.counters = counters;
        }
        self.changed();
        Ok(())
    }

    /// Ports of one device, or of all devices.
    #[must_use]
    pub fn ports(&self, device: Option<&str>) -> Vec<Port> {
        self.read()
            .ports
            .values()
            .filter(|p| device.is_none_or(|d| p.device == d))
            .cloned()
            .collect()
    }

    // --- links ---------------------------------------------------------------

    /// Adds a link or replaces the one with the same ID.
    pub fn upsert_link(&self, link: Link) {
        self.mirror_link(&link);
        self.write().links.insert(link.id.clone(), link);
        self.changed();
    }

    /// Marks a link up or down.
    ///
    /// # Errors
    /// [`StateError::UnknownLink`].
    pub fn set_link_state(&self, id: &str, state: LinkState) -> Result<(), StateError> {
        let link = {
            let mut net = self.write();
            let l = net
                .links
                .get_mut(id)
                .ok_or_else(|| StateError::UnknownLink(id.into()))?;
            l.state = state;
            if state == LinkState::Up {
                l.discovered = true;
            }
            l.clone()
        };
        self.mirror_link(&link);
        self.changed();
        Ok(())
    }

    /// Records the latest measurements of a link.
    ///
    /// # Errors
    /// [`StateError::UnknownLink`].
    pub fn set_link_telemetry(&self, id: &str, telemetry: LinkTelemetry) -> Result<(), StateError> {
        let link = {
            let mut net = self.write();
            let l = net
                .links
                .get_mut(id)
                .ok_or_else(|| StateError::UnknownLink(id.into()))?;
            l.telemetry = telemetry;
            l.clone()
        };
        self.mirror_link(&link);
        self.changed();
        Ok(())
    }

    fn mirror_link(&self, link: &Link) {
        if let Some(m) = &self.metrics {
            m.observe_link(link);
        }
    }

    /// Removes a link (its gauges stay at their last value); answers
    /// whether it was there.
    pub fn remove_link(&self, id: &str) -> bool {
        let removed = self.write().links.remove(id).is_some();
        self.changed();
        removed
    }

    /// Every link, by ID.
    #[must_use]
    pub fn links(&self) -> Vec<Link> {
        self.read().links.values().cloned().collect()
    }

    // --- hosts, paths, routes -------------------------------------------------

    /// Adds a host or replaces the one with the same name.
    pub fn upsert_host(&self, host: Host) {
        self.write().hosts.insert(host.name.clone(), host);
        self.changed();
    }

    /// Removes a host with the paths from and to it; answers whether it
    /// was there.
    pub fn remove_host(&self, name: &str) -> bool {
        let removed = {
            let mut net = self.write();
            net.paths.retain(|(s, d), _| s != name && d != name);
            net.hosts.remove(name).is_some()
        };
        self.changed();
        removed
    }

    /// Every host, by name.
    #[must_use]
    pub fn hosts(&self) -> Vec<Host> {
        self.read().hosts.values().cloned().collect()
    }

    /// Whether a host of that name exists.
    #[must_use]
    pub fn has_host(&self, name: &str) -> bool {
        self.read().hosts.contains_key(name)
    }

    /// Whether a device of that name exists.
    #[must_use]
    pub fn has_device(&self, name: &str) -> bool {
        self.read().devices.contains_key(name)
    }

    /// Replaces the paths the routing engine keeps from `src` to `dst`.
    ///
    /// # Errors
    /// [`StateError::UnknownHost`] for either end.
    pub fn set_paths(&self, src: &str, dst: &str, paths: Vec<Path>) -> Result<(), StateError> {
        {
            let mut net = self.write();
            for h in [src, dst] {
                if !net.hosts.contains_key(h) {
                    return Err(StateError::UnknownHost(h.into()));
                }
            }
            net.paths.insert((src.into(), dst.into()), paths);
        }
        self.changed();
        Ok(())
    }

    /// The paths from `src` to `dst` (empty until computed).
    ///
    /// # Errors
    /// [`StateError::UnknownHost`] for either end.
    pub fn paths(&self, src: &str, dst: &str) -> Result<PathSet, StateError> {
        let net = self.read();
        for h in [src, dst] {
            if !net.hosts.contains_key(h) {
                return Err(StateError::UnknownHost(h.into()));
            }
        }
        Ok(PathSet {
            src: src.into(),
            dst: dst.into(),
            paths: net
                .paths
                .get(&(src.to_string(), dst.to_string()))
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// Replaces the routes installed on a device.
    ///
    /// # Errors
    /// [`StateError::UnknownDevice`].
    pub fn set_routes(&self, device: &str, routes: Vec<Route>) -> Result<(), StateError> {
        {
            let mut net = self.write();
            if !net.devices.contains_key(device) {
                return Err(StateError::UnknownDevice(device.into()));
            }
            net.routes.insert(device.into(), routes);
        }
        self.changed();
        Ok(())
    }

    /// Routes of one device, or of all devices.
    #[must_use]
    pub fn routes(&self, device: Option<&str>) -> Vec<Route> {
        self.read()
            .routes
            .iter()
            .filter(|(d, _)| device.is_none_or(|want| *d == want))
            .flat_map(|(_, r)| r.iter().cloned())
            .collect()
    }

    // --- telemetry --------------------------------------------------------------

    /// Replaces the telemetry collector's summary.
    pub fn set_telemetry(&self, summary: TelemetrySummary) {
        self.write().telemetry = summary;
        self.changed();
    }

    /// The telemetry collector's summary.
    #[must_use]
    pub fn telemetry(&self) -> TelemetrySummary {
        self.read().telemetry.clone()
    }

    // --- intents ----------------------------------------------------------------

    /// Validates and stores a new intent; nothing is stored when it is
    /// refused.
    ///
    /// # Errors
    /// [`IntentError::Invalid`] naming the field, [`IntentError::Exists`],
    /// [`IntentError::Database`].
    pub fn create_intent(&self, spec: IntentSpec) -> Result<Intent, IntentError> {
        spec.validate(|h| self.has_host(h), |d| self.has_device(d))?;
        let intent = self.intents.create(spec)?;
        self.changed();
        Ok(intent)
    }

    /// Deletes an intent.
    ///
    /// # Errors
    /// [`IntentError::NotFound`], [`IntentError::Database`].
    pub fn delete_intent(&self, name: &str) -> Result<Intent, IntentError> {
        let intent = self.intents.delete(name)?;
        self.changed();
        Ok(intent)
    }

    /// Records the routing loop's verdict on an intent.
    ///
    /// # Errors
    /// [`IntentError::NotFound`].
    pub fn set_intent_status(&self, name: &str, status: IntentStatus) -> Result<(), IntentError> {
        self.intents.set_status(name, status)?;
        self.changed();
        Ok(())
    }

    /// The intent store (list, get).
    #[must_use]
    pub fn intents(&self) -> &IntentStore {
        &self.intents
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str) -> Device {
        Device {
            name: name.into(),
            device_id: 1,
            address: "127.0.0.1:9559".into(),
            role: DeviceRole::Fabric,
            pipeline: None,
            connection: ConnectionState::Connecting,
            primary: false,
            election_id: 1,
            site: None,
        }
    }

    fn link(a: &str, b: &str) -> Link {
        let (src, dst) = (Endpoint::new(a, 1), Endpoint::new(b, 1));
        Link {
            id: Link::id_of(&src, &dst),
            src,
            dst,
            state: LinkState::Down,
            declared: true,
            discovered: false,
            bandwidth_bps: None,
            telemetry: LinkTelemetry::default(),
        }
    }

    #[tokio::test]
    async fn every_write_moves_the_version_and_wakes_subscribers() {
        let store = StateStore::ephemeral().unwrap();
        let mut rx = store.subscribe();
        store.upsert_device(device("s1"));
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), 1);
        store
            .set_device_session("s1", ConnectionState::Connected, true, u128::MAX)
            .unwrap();
        assert_eq!(store.version(), 2);
        let d = store.device("s1").unwrap();
        assert!(d.primary && d.election_id == u128::MAX);
        // The election ID survives JSON as a decimal string.
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["election_id"], u128::MAX.to_string());
        assert_eq!(serde_json::from_value::<Device>(json).unwrap(), d);
    }

    #[test]
    fn writes_about_unknown_things_are_refused_and_change_nothing() {
        let store = StateStore::ephemeral().unwrap();
        let v = store.version();
        assert_eq!(
            store.set_device_pipeline("ghost", None),
            Err(StateError::UnknownDevice("ghost".into()))
        );
        assert!(matches!(
            store.set_port_counters("ghost", 1, PortCounters::default()),
            Err(StateError::UnknownPort { .. })
        ));
        assert!(store.set_link_state("a:1->b:1", LinkState::Up).is_err());
        assert!(store.set_paths("h1", "h2", Vec::new()).is_err());
        assert!(store.set_routes("ghost", Vec::new()).is_err());
        assert_eq!(store.version(), v);
        assert!(store.devices().is_empty() && store.links().is_empty());
    }

    #[test]
    fn a_link_seen_up_counts_as_discovered_and_feeds_the_gauges() {
        let metrics = Arc::new(Metrics::new());
        let store = StateStore::ephemeral()
            .unwrap()
            .with_metrics(metrics.clone());
        let l = link("a", "b");
        store.upsert_link(l.clone());
        store.set_link_state(&l.id, LinkState::Up).unwrap();
        store
            .set_link_telemetry(
                &l.id,
                LinkTelemetry {
                    latency_us: Some(250.0),
                    utilisation: 0.5,
                    queue_depth: Some(7),
                    loss: 0.01,
                },
            )
            .unwrap();
        let got = &store.links()[0];
        assert!(got.discovered && got.declared && got.state == LinkState::Up);
        let text = metrics.render();
        for line in [
            r#"solyx_link_up{link="a:1->b:1"} 1"#,
            r#"solyx_link_latency_seconds{link="a:1->b:1"} 0.00025"#,
            r#"solyx_link_utilisation_ratio{link="a:1->b:1"} 0.5"#,
            r#"solyx_link_queue_packets{link="a:1->b:1"} 7"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn refreshing_a_port_keeps_its_counters_and_a_no_op_keeps_the_version() {
        let store = StateStore::ephemeral().unwrap();
        let port = |up| Port {
            device: "s1".into(),
            port: 2,
            interface: None,
            up,
            speed_bps: Some(1_000_000_000),
            counters: PortCounters::default(),
        };
        assert_eq!(
            store.refresh_port(port(true)),
            Err(StateError::UnknownDevice("s1".into()))
        );
        store.upsert_device(device("s1"));
        store.refresh_port(port(true)).unwrap();
        let read = PortCounters {
            rx_packets: 3,
            rx_bytes: 300,
            tx_packets: 4,
            tx_bytes: 400,
            drops: 0,
        };
        store.set_port_counters("s1", 2, read).unwrap();
        let v = store.version();
        store.refresh_port(port(true)).unwrap();
        assert_eq!(store.version(), v, "nothing changed, nothing announced");
        store.refresh_port(port(false)).unwrap();
        assert_eq!(store.version(), v + 1);
        let got = store.ports(Some("s1"));
        assert_eq!(got.len(), 1);
        assert!(!got[0].up);
        assert_eq!(got[0].counters, read, "the counters survive a refresh");
    }

    #[test]
    fn an_invalid_intent_leaves_nothing_behind() {
        let store = StateStore::ephemeral().unwrap();
        let spec = IntentSpec {
            name: "x".into(),
            src: "h1".into(),
            dst: "h2".into(),
            objective: Objective::Balanced,
            max_latency_us: None,
            min_bandwidth_mbps: None,
            avoid: Vec::new(),
            priority: 0,
        };
        let e = store.create_intent(spec).unwrap_err();
        assert!(
            matches!(&e, IntentError::Invalid(f) if f.field == "src"),
            "{e}"
        );
        assert!(store.intents().list().is_empty());
        assert!(!store.intents().is_stored("x").unwrap());
        assert_eq!(store.version(), 0);
    }
}
