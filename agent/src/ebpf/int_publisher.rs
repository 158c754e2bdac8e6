//! [`QueuePublisher`]: the task that tells the INT egress program what the
//! ports' queues look like.
//!
//! TC egress runs before the qdisc, so the program cannot see the queue a
//! packet is about to wait in. Every period (a few milliseconds) this task
//! reads, over rtnetlink, the root qdisc of every fabric port (backlog in
//! bytes and packets, bytes sent, the rate of a `tbf`) and the interface's
//! transmit byte counter, and writes one [`PortQueueState`] per port into
//! `INT_PORT_STATE`:
//!
//! - `backlog_bytes`, `backlog_packets`: the root qdisc's backlog (htb and
//!   tbf count their inner queues in it);
//! - `drain_rate` (bytes/s): the `tbf` rate when the root is a tbf, else the
//!   rate the qdisc sent at over the last window (while backlogged, that is
//!   the rate the queue drains at), else the last known value;
//! - `tx_util_kbps`: interface TX bytes over the last window, in kbit/s
//!   (the link counter counts what left, unlike `PORT_TX`, which counts at
//!   the hook, before the qdisc drops anything, and unlike the qdisc
//!   counter, which stays 0 on a `noqueue` veth);
//! - `updated_ns`: CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`, so the
//!   program can tell a stale state (older than 1 s: reported as "not
//!   available").
//!
//! The ports are the entries of the pinned `PORT_OF_IFINDEX`, read again
//! every period. The netlink socket is opened in the network namespace of
//! the thread that calls [`QueuePublisher::start`] (the switch's), like the
//! attachments.

use std::collections::HashMap as StdHashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aya::maps::{Array, HashMap, Map, MapData};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption, TcStats2};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use solyx_ebpf_common::int::{PortQueueState, MAP_INT_PORT_STATE};
use solyx_ebpf_common::{PortConfig, MAP_PORT_OF_IFINDEX};

/// The default period: every 5 ms.
pub const DEFAULT_PUBLISH_PERIOD: Duration = Duration::from_millis(5);

/// A running publisher; stops (and joins its thread) on drop.
#[derive(Debug)]
pub struct QueuePublisher {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl QueuePublisher {
    /// Starts publishing for the fabric instance pinned in `pin_dir` (see
    /// `Fabric::pin_dir`) every `period`. The netlink socket belongs to the
    /// calling thread's network namespace.
    pub fn start(pin_dir: &Path, period: Duration) -> io::Result<Self> {
        let ports = open_map(pin_dir, MAP_PORT_OF_IFINDEX).and_then(|m| {
            HashMap::<MapData, u32, PortConfig>::try_from(m).map_err(io::Error::other)
        })?;
        let states = open_map(pin_dir, MAP_INT_PORT_STATE).and_then(|m| {
            Array::<MapData, PortQueueState>::try_from(m).map_err(io::Error::other)
        })?;
        let mut sampler = Sampler::open()?;
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let thread = {
            let stop = Arc::clone(&stop);
            let rounds = Arc::clone(&rounds);
            std::thread::Builder::new()
                .name("int-queue-publisher".into())
                .spawn(move || {
                    let mut publisher = Publisher {
                        ports,
                        states,
                        history: StdHashMap::new(),
                        failures: 0,
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        publisher.round(&mut sampler);
                        rounds.fetch_add(1, Ordering::Relaxed);
                        if let Some(rest) = period.checked_sub(started.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                })?
        };
        tracing::info!(pin_dir = %pin_dir.display(), ?period, "INT queue publisher started");
        Ok(Self {
            stop,
            rounds,
            thread: Some(thread),
        })
    }

    /// Rounds completed so far (each one sampled and published every port).
    #[must_use]
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Stops the task and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("INT queue publisher thread panicked");
            }
        }
    }
}

impl Drop for QueuePublisher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Opens a pinned map of the instance.
fn open_map(pin_dir: &Path, name: &str) -> io::Result<Map> {
    let path = pin_dir.join(name);
    let data = MapData::from_pin(&path)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    let map = match name {
        MAP_PORT_OF_IFINDEX => Map::HashMap(data),
        _ => Map::Array(data),
    };
    Ok(map)
}

/// The publisher thread's state.
struct Publisher {
    ports: HashMap<MapData, u32, PortConfig>,
    states: Array<MapData, PortQueueState>,
    /// ifindex → the previous sample, for rates.
    history: StdHashMap<u32, History>,
    /// Consecutive failed rounds (logged at 1, 10, 100, ...).
    failures: u64,
}

impl Publisher {
    /// One round: sample every port and publish its state.
    fn round(&mut self, sampler: &mut Sampler) {
        match self.try_round(sampler) {
            Ok(()) => self.failures = 0,
            Err(e) => {
                self.failures += 1;
                if self.failures.is_power_of_two() || self.failures % 1000 == 0 {
                    tracing::warn!(error = %e, failures = self.failures, "INT queue publisher round failed");
                }
            }
        }
    }

    fn try_round(&mut self, sampler: &mut Sampler) -> io::Result<()> {
        let ports: Vec<(u32, PortConfig)> = self
            .ports
            .iter()
            .collect::<Result<_, _>>()
            .map_err(io::Error::other)?;
        if ports.is_empty() {
            return Ok(());
        }
        let qdiscs = sampler.root_qdiscs()?;
        let tx = sampler.tx_bytes()?;
        let now = monotonic_ns()?;
        for (ifindex, config) in ports {
            let sample = Sample {
                at_ns: now,
                qdisc: qdiscs.get(&ifindex).copied().unwrap_or_default(),
                tx_bytes: tx.get(&ifindex).copied().unwrap_or(0),
            };
            let (state, history) = next_state(self.history.get(&ifindex), &sample);
            self.history.insert(ifindex, history);
            self.states
                .set(u32::from(config.port), state, 0)
                .map_err(io::Error::other)?;
        }
        Ok(())
    }
}

/// CLOCK_MONOTONIC in ns (the clock of `bpf_ktime_get_ns`).
fn monotonic_ns() -> io::Result<u64> {
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_err(io::Error::from)?;
    let secs = u64::try_from(ts.tv_sec()).map_err(io::Error::other)?;
    let nanos = u64::try_from(ts.tv_nsec()).map_err(io::Error::other)?;
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The root qdisc of one interface, as one dump saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QdiscSample {
    /// Bytes queued.
    pub(crate) backlog_bytes: u32,
    /// Packets queued.
    pub(crate) backlog_packets: u32,
    /// Bytes the qdisc has sent since it was created.
    pub(crate) sent_bytes: u64,
    /// The configured rate of a `tbf` root, bytes/s.
    pub(crate) rate: Option<u64>,
}

/// What one round saw of one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sample {
    /// CLOCK_MONOTONIC ns.
    pub(crate) at_ns: u64,
    pub(crate) qdisc: QdiscSample,
    /// The interface's TX byte counter.
    pub(crate) tx_bytes: u64,
}

/// What the next round needs of this one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct History {
    sample: Sample,
    /// The last drain rate published (kept through idle windows).
    drain_rate: u64,
}

/// Bytes/s of `bytes` over `ns` nanoseconds (0 for an empty window).
fn rate_per_s(bytes: u64, ns: u64) -> u64 {
    if ns == 0 {
        return 0;
    }
    u64::try_from(u128::from(bytes) * 1_000_000_000 / u128::from(ns)).unwrap_or(u64::MAX)
}

/// The state to publish for `sample`, given the previous round's history
/// (none on the first round: utilisation 0, drain rate from a tbf only).
/// Counters that went backwards (a qdisc replaced, an interface recreated)
/// count as a fresh start.
pub(crate) fn next_state(prev: Option<&History>, sample: &Sample) -> (PortQueueState, History) {
    let (window, tx_delta, sent_delta, last_rate) = match prev {
        Some(h) if sample.at_ns > h.sample.at_ns => (
            sample.at_ns - h.sample.at_ns,
            sample.tx_bytes.saturating_sub(h.sample.tx_bytes),
            sample
                .qdisc
                .sent_bytes
                .saturating_sub(h.sample.qdisc.sent_bytes),
            h.drain_rate,
        ),
        Some(h) => (0, 0, 0, h.drain_rate),
        None => (0, 0, 0, 0),
    };
    let measured = rate_per_s(sent_delta, window);
    // TODO-completeness: htb class rates (RTM_GETTCLASS) are not read; an
    // htb root drains at the measured rate, which lags a queue that has just
    // started to build. Cost: the expected queueing delay of the first
    // packets of a burst is too high.
    let drain_rate = match sample.qdisc.rate {
        Some(rate) if rate > 0 => rate,
        _ if measured > 0 => measured,
        _ => last_rate,
    };
    let tx_bps = rate_per_s(tx_delta, window).saturating_mul(8);
    let state = PortQueueState {
        backlog_bytes: sample.qdisc.backlog_bytes,
        backlog_packets: sample.qdisc.backlog_packets,
        drain_rate,
        tx_util_kbps: u32::try_from(tx_bps / 1000).unwrap_or(u32::MAX),
        _reserved: 0,
        updated_ns: sample.at_ns,
    };
    (
        state,
        History {
            sample: *sample,
            drain_rate,
        },
    )
}

/// `TCA_TBF_PARMS`: `struct tc_tbf_qopt`, whose first member is the rate
/// (`struct tc_ratespec`, rate in bytes/s at offset 8).
const TCA_TBF_PARMS: u16 = 1;
/// `TCA_TBF_RATE64`: the rate when it does not fit 32 bits.
const TCA_TBF_RATE64: u16 = 4;
/// Netlink attribute type bits that are flags, not the type.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The rate (bytes/s) in a tbf's nested `TCA_OPTIONS` payload.
pub(crate) fn tbf_rate(options: &[u8]) -> Option<u64> {
    let mut rate32 = None;
    let mut rate64 = None;
    let mut rest = options;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > rest.len() {
            break;
        }
        let value = &rest[4..len];
        match kind {
            TCA_TBF_PARMS if value.len() >= 12 => {
                rate32 = Some(u64::from(u32::from_ne_bytes([
                    value[8], value[9], value[10], value[11],
                ])));
            }
            TCA_TBF_RATE64 if value.len() >= 8 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&value[..8]);
                rate64 = Some(u64::from_ne_bytes(bytes));
            }
            _ => {}
        }
        let advance = (len + 3) & !3;
        rest = rest.get(advance..).unwrap_or(&[]);
    }
    rate64.or(rate32).filter(|rate| *rate > 0)
}

/// An rtnetlink socket that dumps qdiscs and links.
struct Sampler {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

impl Sampler {
    fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self {
            socket,
            sequence: 0,
            buffer: vec![0; 64 * 1024],
        })
    }

    /// ifindex → root qdisc sample.
    fn root_qdiscs(&mut self) -> io::Result<StdHashMap<u32, QdiscSample>> {
        let mut out = StdHashMap::new();
        let request = RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default());
        self.dump(request, |message| {
            let RouteNetlinkMessage::NewQueueDiscipline(tc) = message else {
                return;
            };
            if tc.header.parent != TcHandle::ROOT {
                return;
            }
            let Ok(ifindex) = u32::try_from(tc.header.index) else {
                return;
            };
            let mut sample = QdiscSample::default();
            let mut kind = String::new();
            for attribute in &tc.attributes {
                match attribute {
                    TcAttribute::Kind(k) => kind.clone_from(k),
                    TcAttribute::Stats2(stats) => {
                        for stat in stats {
                            match stat {
                                TcStats2::Queue(q) => {
                                    sample.backlog_bytes = q.backlog;
                                    sample.backlog_packets = q.qlen;
                                }
                                TcStats2::Basic(b) => sample.sent_bytes = b.bytes,
                                _ => {}
                            }
                        }
                    }
                    TcAttribute::Options(options) if kind == "tbf" => {
                        for option in options {
                            if let TcOption::Other(nla) = option {
                                let mut value = vec![0u8; nla.value_len()];
                                nla.emit_value(&mut value);
                                sample.rate = tbf_rate(&value).or(sample.rate);
                            }
                        }
                    }
                    _ => {}
                }
            }
            out.insert(ifindex, sample);
        })?;
        Ok(out)
    }

    /// ifindex → TX bytes.
    ///
    /// TODO-perf: dumps every link of the namespace each round (a few µs
    /// per link); on a host with hundreds of interfaces, ask for the ports'
    /// indexes one by one instead.
    fn tx_bytes(&mut self) -> io::Result<StdHashMap<u32, u64>> {
        let mut out = StdHashMap::new();
        let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
        self.dump(request, |message| {
            let RouteNetlinkMessage::NewLink(link) = message else {
                return;
            };
            for attribute in &link.attributes {
                if let LinkAttribute::Stats64(stats) = attribute {
                    out.insert(link.header.index, stats.tx_bytes);
                }
            }
        })?;
        Ok(out)
    }

    /// Sends a dump request and hands every answer to `each` until the dump
    /// is done.
    fn dump(
        &mut self,
        request: RouteNetlinkMessage,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> io::Result<()> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let mut packet =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(request));
        packet.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
        packet.header.sequence_number = sequence;
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;

        loop {
            let size = self.socket.recv(&mut &mut self.buffer[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let bytes = &self.buffer[offset..size];
                let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| io::Error::other(format!("rtnetlink answer: {e}")))?;
                let length = message.header.length as usize;
                let ours = message.header.sequence_number == sequence;
                match message.payload {
                    NetlinkPayload::Done(_) if ours => return Ok(()),
                    NetlinkPayload::Error(e) if ours => {
                        return Err(io::Error::other(format!("rtnetlink dump: {e:?}")));
                    }
                    NetlinkPayload::InnerMessage(inner) if ours => each(inner),
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += (length + 3) & !3;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ns: u64, backlog: u32, sent: u64, tx: u64, rate: Option<u64>) -> Sample {
        Sample {
            at_ns,
            qdisc: QdiscSample {
                backlog_bytes: backlog,
                backlog_packets: backlog / 1000,
                sent_bytes: sent,
                rate,
            },
            tx_bytes: tx,
        }
    }

    #[test]
    fn utilisation_and_drain_rate_come_from_deltas() {
        let (first, history) = next_state(None, &sample(1_000_000, 0, 0, 0, None));
        assert_eq!(first.tx_util_kbps, 0);
        assert_eq!(first.drain_rate, 0);
        assert_eq!(first.updated_ns, 1_000_000);
        // 5 ms later: 6250 bytes sent = 10 Mbit/s; 6250 bytes drained.
        let (second, history) =
            next_state(Some(&history), &sample(6_000_000, 3000, 6250, 6250, None));
        assert_eq!(second.tx_util_kbps, 10_000);
        assert_eq!(second.drain_rate, 1_250_000);
        assert_eq!(second.backlog_bytes, 3000);
        // An idle window keeps the last drain rate.
        let (third, history) = next_state(Some(&history), &sample(11_000_000, 0, 6250, 6250, None));
        assert_eq!(third.drain_rate, 1_250_000);
        assert_eq!(third.tx_util_kbps, 0);
        // A tbf's configured rate wins; counters going back are a restart.
        let (fourth, _) = next_state(
            Some(&history),
            &sample(16_000_000, 100, 0, 0, Some(125_000)),
        );
        assert_eq!(fourth.drain_rate, 125_000);
        assert_eq!(fourth.tx_util_kbps, 0);
    }

    #[test]
    fn tbf_options_give_the_rate() {
        // TCA_TBF_PARMS with a 36-byte tc_tbf_qopt, rate 1_250_000 B/s.
        let mut qopt = vec![0u8; 36];
        qopt[8..12].copy_from_slice(&1_250_000u32.to_ne_bytes());
        let mut nla = Vec::new();
        nla.extend_from_slice(&(4u16 + 36).to_ne_bytes());
        nla.extend_from_slice(&TCA_TBF_PARMS.to_ne_bytes());
        nla.extend_from_slice(&qopt);
        assert_eq!(tbf_rate(&nla), Some(1_250_000));
        // RATE64 wins over the 32-bit field.
        nla.extend_from_slice(&12u16.to_ne_bytes());
        nla.extend_from_slice(&TCA_TBF_RATE64.to_ne_bytes());
        nla.extend_from_slice(&10_000_000_000u64.to_ne_bytes());
        assert_eq!(tbf_rate(&nla), Some(10_000_000_000));
        // Garbage does not panic.
        assert_eq!(tbf_rate(&[0xff, 0xff, 1, 0, 9]), None);
        assert_eq!(tbf_rate(&[]), None);
    }
}
