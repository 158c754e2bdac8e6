//! The link-state view that link discovery and the INT collector keep
//! current, and that path computation and the REST API read.
//!
//! A *link* is directed: from a port of one device to a port of another
//! ([`LinkKey`]). Discovery says whether a link exists and is up
//! ([`LinkStatus`]); the collector says how it behaves (latency, queue,
//! utilisation, see [`crate::telemetry`]). [`join`] puts the two side by
//! side, one [`LinkView`] per link that either of them knows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::telemetry::{LinkTelemetry, TelemetrySnapshot};

/// A P4Runtime device ID.
pub type DeviceId = u64;

/// A port number as the device's pipeline sees it (P4Runtime port, INT
/// level-1 port ID).
pub type PortId = u32;

/// A directed link: packets leave `src_device` on `src_port` and arrive
/// at `dst_device` on `dst_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LinkKey {
    /// The sending device.
    pub src_device: DeviceId,
    /// The port it sends from.
    pub src_port: PortId,
    /// The receiving device.
    pub dst_device: DeviceId,
    /// The port it receives on.
    pub dst_port: PortId,
}

impl LinkKey {
    /// The same link in the other direction.
    #[must_use]
    pub fn reversed(&self) -> Self {
        Self {
            src_device: self.dst_device,
            src_port: self.dst_port,
            dst_device: self.src_device,
            dst_port: self.src_port,
        }
    }
}

impl std::fmt::Display for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} -> {}:{}",
            self.src_device, self.src_port, self.dst_device, self.dst_port
        )
    }
}

/// What link discovery knows about a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// Probes cross it.
    Up,
    /// Probes crossed it, then the last three (the configured limit) did
    /// not.
    Down,
    /// The topology file declares it, but no probe has crossed it yet.
    DeclaredNotSeen,
}

/// A change of a link's status, for whoever recomputes paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", content = "link", rename_all = "snake_case")]
pub enum LinkEvent {
    /// The link carries probes (first seen, or back after being down).
    Up(LinkKey),
    /// The link stopped carrying probes.
    Down(LinkKey),
}

/// One link as discovery and telemetry see it.
#[derive(Clone, Debug, Serialize)]
pub struct LinkView {
    /// The link.
    pub link: LinkKey,
    /// Its status; `None` when only telemetry knows it (INT crossed a
    /// link that discovery does not probe).
    pub status: Option<LinkStatus>,
    /// Whether the topology file declares it.
    pub declared: bool,
    /// Its telemetry, when fresh reports crossed it.
    pub telemetry: Option<LinkTelemetry>,
}

/// Discovery's record of one link, as [`join`] takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DiscoveredLink {
    /// The link.
    pub link: LinkKey,
    /// Its status.
    pub status: LinkStatus,
    /// Whether the topology file declares it.
    pub declared: bool,
    /// Milliseconds since a probe last crossed it; `None` if never.
    pub last_seen_ms_ago: Option<u64>,
}

/// One view per link known to discovery or telemetry, in link order.
#[must_use]
pub fn join(discovered: &[DiscoveredLink], telemetry: &TelemetrySnapshot) -> Vec<LinkView> {
    let mut views: BTreeMap<LinkKey, LinkView> = discovered
        .iter()
        .map(|d| {
            (
                d.link,
                LinkView {
                    link: d.link,
                    status: Some(d.status),
                    declared: d.declared,
                    telemetry: None,
                },
            )
        })
        .collect();
    for t in &telemetry.links {
        views
            .entry(t.link)
            .or_insert_with(|| LinkView {
                link: t.link,
                status: None,
                declared: false,
                telemetry: None,
            })
            .telemetry = Some(t.clone());
    }
    views.into_values().collect()
}
