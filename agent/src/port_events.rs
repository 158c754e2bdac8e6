//! The link state of the agent's ports, as the kernel reports it.
//!
//! [`PortWatch::start`] opens an rtnetlink socket subscribed to link events
//! (`RTNLGRP_LINK`) in the calling thread's network namespace (the agent
//! enters `--netns` before anything starts, so that is the ports'), reads
//! the state of every port with one dump, and then follows the kernel's
//! notifications in a thread of its own: a port that goes down (`ip link
//! set ... down`, carrier lost, interface deleted) is known as soon as the
//! kernel says so, with no polling period. The node service serves it as
//! `WatchPorts` (`solyx.node.v1`), which the controller uses to take a
//! link down before its probes notice.
//!
//! A port is up when its operational state is `UP`, or when the driver
//! reports no operational state (`UNKNOWN`) and the interface is
//! administratively up with its lower layer up.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::ebpf::PortSpec;

/// `RTMGRP_LINK`: the multicast group mask of link notifications.
const RTMGRP_LINK: u32 = 1;

/// The state of one port at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortState {
    /// The P4Runtime port number.
    pub port: u16,
    /// The interface.
    pub interface: String,
    /// Operationally up.
    pub up: bool,
    /// When the agent learnt this state.
    pub at: SystemTime,
}

#[derive(Debug)]
struct Inner {
    /// Port → its last state (ports whose interface is missing are down).
    state: Mutex<BTreeMap<u16, PortState>>,
    /// Interface → port.
    by_name: BTreeMap<String, u16>,
    changes: broadcast::Sender<PortState>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, BTreeMap<u16, PortState>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what the kernel said about `interface`; publishes a change.
    fn apply(&self, interface: &str, up: bool) {
        let Some(&port) = self.by_name.get(interface) else {
            return;
        };
        let mut state = self.state();
        let Some(current) = state.get_mut(&port) else {
            return;
        };
        if current.up == up {
            return;
        }
        current.up = up;
        current.at = SystemTime::now();
        info!(port, interface, up, "port link state changed");
        // No subscriber is fine: the state is kept.
        let _ = self.changes.send(current.clone());
    }
}

/// The ports' link state, followed in a thread. Clones share it.
#[derive(Debug, Clone)]
pub struct PortWatch {
    inner: Arc<Inner>,
}

impl PortWatch {
    /// Opens the netlink socket in the calling thread's network namespace,
    /// reads the current state of `ports` and starts following changes.
    /// The thread lives as long as the process.
    ///
    /// # Errors
    /// The socket cannot be opened, bound or subscribed, or the first dump
    /// fails.
    pub fn start(ports: &[PortSpec]) -> io::Result<Self> {
        let now = SystemTime::now();
        let state = ports
            .iter()
            .map(|p| {
                let s = PortState {
                    port: p.port,
                    interface: p.interface.clone(),
                    up: false,
                    at: now,
                };
                (p.port, s)
            })
            .collect();
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            by_name: ports
                .iter()
                .map(|p| (p.interface.clone(), p.port))
                .collect(),
            changes: broadcast::channel(256).0,
        });
        let mut reader = Reader::open()?;
        reader.request_dump()?;
        // The dump's answers, and any notification that comes meanwhile.
        while !reader.read(&inner)? {}
        std::thread::Builder::new()
            .name("port-events".into())
            .spawn({
                let inner = inner.clone();
                move || reader.follow(&inner)
            })?;
        Ok(Self { inner })
    }

    /// The state of every port now, and the changes from that moment on
    /// (none is missed between the two).
    #[must_use]
    pub fn subscribe(&self) -> (Vec<PortState>, broadcast::Receiver<PortState>) {
        let state = self.inner.state();
        let changes = self.inner.changes.subscribe();
        (state.values().cloned().collect(), changes)
    }

    /// The state of every port now.
    #[must_use]
    pub fn current(&self) -> Vec<PortState> {
        self.inner.state().values().cloned().collect()
    }
}

/// Whether the kernel's description of a link says it is up.
fn is_up(link: &LinkMessage) -> bool {
    let oper = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::OperState(s) => Some(s),
        _ => None,
    });
    match oper {
        Some(State::Up) => true,
        Some(State::Unknown) | None => link
            .header
            .flags
            .contains(LinkFlags::Up | LinkFlags::LowerUp),
        Some(_) => false,
    }
}

fn name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

struct Reader {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

impl Reader {
    fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        Ok(Self {
            socket,
            sequence: 0,
            buffer: vec![0; 64 * 1024],
        })
    }

    fn request_dump(&mut self) -> io::Result<()> {
        self.sequence = self.sequence.wrapping_add(1);
        let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
        let mut packet =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(request));
        packet.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
        packet.header.sequence_number = self.sequence;
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket
            .send_to(&out, &SocketAddr::new(0, 0), 0)
            .map(|_| ())
    }

    /// Reads one datagram and applies the links it describes; whether it
    /// ended the dump in progress.
    fn read(&mut self, inner: &Inner) -> io::Result<bool> {
        let size = self.socket.recv(&mut &mut self.buffer[..], 0)?;
        let mut offset = 0;
        let mut done = false;
        while offset < size {
            let bytes = &self.buffer[offset..size];
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                .map_err(|e| io::Error::other(format!("rtnetlink message: {e}")))?;
            let length = message.header.length as usize;
            let ours = message.header.sequence_number == self.sequence;
            match message.payload {
                NetlinkPayload::Done(_) if ours => done = true,
                NetlinkPayload::Error(e) if ours => {
                    return Err(io::Error::other(format!("rtnetlink link dump: {e:?}")));
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    if let Some(n) = name(&link) {
                        inner.apply(n, is_up(&link));
                    }
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    if let Some(n) = name(&link) {
                        inner.apply(n, false);
                    }
                }
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += (length + 3) & !3;
        }
        Ok(done)
    }

    /// Follows notifications for ever. When the kernel dropped some (the
    /// socket's buffer overflowed), the state is read again in full.
    fn follow(mut self, inner: &Inner) {
        loop {
            match self.read(inner) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOBUFS as i32) => {
                    warn!("link notifications lost; reading every port again");
                    if let Err(e) = self.request_dump() {
                        warn!(error = %e, "cannot read the ports again");
                    }
                }
                Err(e) => {
                    // A malformed message: skip it rather than stop.
                    debug!(error = %e, "unreadable link notification");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, oper: Option<State>, flags: LinkFlags) -> LinkMessage {
        let mut l = LinkMessage::default();
        l.header.flags = flags;
        l.attributes.push(LinkAttribute::IfName(name.into()));
        if let Some(s) = oper {
            l.attributes.push(LinkAttribute::OperState(s));
        }
        l
    }

    #[test]
    fn operational_state_decides_and_unknown_falls_back_to_flags() {
        let both = LinkFlags::Up | LinkFlags::LowerUp;
        assert!(is_up(&link("a", Some(State::Up), LinkFlags::empty())));
        assert!(!is_up(&link("a", Some(State::Down), both)));
        assert!(!is_up(&link("a", Some(State::LowerLayerDown), both)));
        assert!(is_up(&link("a", Some(State::Unknown), both)));
        assert!(!is_up(&link("a", Some(State::Unknown), LinkFlags::Up)));
        assert!(is_up(&link("a", None, both)));
    }

    #[test]
    fn only_changes_of_known_ports_are_published() {
        let inner = Inner {
            state: Mutex::new(BTreeMap::from([(
                3,
                PortState {
                    port: 3,
                    interface: "e3".into(),
                    up: true,
                    at: SystemTime::UNIX_EPOCH,
                },
            )])),
            by_name: BTreeMap::from([("e3".to_string(), 3)]),
            changes: broadcast::channel(8).0,
        };
        let mut rx = inner.changes.subscribe();
        inner.apply("e3", true);
        inner.apply("other", false);
        assert!(rx.try_recv().is_err(), "no change, nothing sent");
        inner.apply("e3", false);
        let change = rx.try_recv().expect("the change");
        assert_eq!((change.port, change.up), (3, false));
        assert!(change.at > SystemTime::UNIX_EPOCH);
    }
}
