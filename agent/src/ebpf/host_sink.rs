//! The INT sink's agent side: reads the frames `host_ingress` hands over
//! (`INT_SINK` perf rings), turns each into a Telemetry Report v2.0 with
//! `solyx-int` and sends it over UDP to the collector.
//!
//! A report carries the frame as an IPv4 inner packet (InType IPv4): the
//! IPv4 and UDP/TCP headers as received, the INT-MD block with every hop
//! the fabric pushed (newest first), and up to 128 bytes of the payload
//! that followed it (a probe's body). The group header names this node
//! (`node_id`) and numbers the report packets (22 bits, wrapping). Main
//! contents: the sink's own ingress timestamp (CLOCK_TAI, ns) and its
//! ingress port.
//!
//! Coalescing ([`ExportConfig`]): by default every report is a datagram of
//! its own. With `coalesce` N > 1, up to N individual reports share one
//! datagram behind one group header (Telemetry Report v2.0 allows it; the
//! collector parses them all), as long as the datagram stays within the
//! MTU. The first report of a datagram waits at most `max_delay` for
//! others: a timer (`timerfd`, CLOCK_MONOTONIC) wakes the exporter to send
//! what it holds, so a lone report is never held longer. A report too long
//! to be followed by another (0xFF words or more) is sent last in its
//! datagram; a report longer than the MTU allows goes alone, as before.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::MapData;
use bytes::BytesMut;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use solyx_ebpf_common::host::SinkMeta;
use solyx_int::report::{OPEN_REPORT_LENGTH, REPORT_HEADER_LEN};
use solyx_int::{
    GroupHeader, InnerPacket, IntMd, Ipv4Header, MainContents, RepMdBits, ReportBuilder, TcpHeader,
    Transport, UdpHeader,
};

/// Default most reports per datagram: 1, every report sent at once.
pub const DEFAULT_COALESCE: usize = 1;
/// Default longest a report waits for others to share its datagram.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_micros(200);
/// Default MTU towards the collector.
pub const DEFAULT_MTU: usize = 1500;
/// Most reports per datagram accepted.
pub const MAX_COALESCE: usize = 64;
/// Largest coalesced datagram, whatever the MTU: the collector keeps
/// datagrams up to 2048 bytes whole by default and drops longer ones.
pub const MAX_COALESCED_DATAGRAM: usize = 2048;

/// How reports are packed into datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportConfig {
    /// Most individual reports per datagram, 1 to [`MAX_COALESCE`] (1:
    /// every report is a datagram of its own).
    pub coalesce: usize,
    /// Longest the first report of a datagram waits for others (only with
    /// `coalesce` > 1; zero: reports read in one wake-up share datagrams,
    /// none waits).
    pub max_delay: Duration,
    /// MTU of the path to the collector: a datagram of several reports
    /// fits it (IPv4 or IPv6 and UDP headers included), and never exceeds
    /// [`MAX_COALESCED_DATAGRAM`] bytes of payload.
    pub mtu: usize,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            coalesce: DEFAULT_COALESCE,
            max_delay: DEFAULT_MAX_DELAY,
            mtu: DEFAULT_MTU,
        }
    }
}

impl ExportConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// `coalesce` is 0 or above [`MAX_COALESCE`], `max_delay` above one
    /// second, or the MTU too small for an IPv6 minimum (1280).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_COALESCE).contains(&self.coalesce) {
            return Err(format!(
                "report coalescing {} is outside 1..={MAX_COALESCE}",
                self.coalesce
            ));
        }
        if self.max_delay > Duration::from_secs(1) {
            return Err(format!(
                "report max delay {:?} is above 1 s",
                self.max_delay
            ));
        }
        if self.mtu < 1280 {
            return Err(format!("report MTU {} is below 1280", self.mtu));
        }
        Ok(())
    }

    /// Bytes of UDP payload a datagram of several reports may hold towards
    /// an IPv4 (or IPv6) collector.
    #[must_use]
    pub fn payload_limit(&self, ipv6: bool) -> usize {
        let headers = if ipv6 { 40 + 8 } else { 20 + 8 };
        self.mtu.saturating_sub(headers).min(MAX_COALESCED_DATAGRAM)
    }
}

/// Counts of the exporter since it started.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Reports sent.
    pub exported: AtomicU64,
    /// Datagrams sent (fewer than reports when coalescing).
    pub datagrams: AtomicU64,
    /// Samples that did not make a report (unparsable frame).
    pub malformed: AtomicU64,
    /// Reports the socket refused.
    pub send_failed: AtomicU64,
    /// Samples the kernel dropped (ring full).
    pub lost: AtomicU64,
}

/// The exporter thread; stops when dropped.
#[derive(Debug)]
pub struct SinkExporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<SinkStats>,
}

impl Drop for SinkExporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SinkExporter {
    /// Opens the UDP socket reports go out of, connected to `collector`,
    /// in the calling thread's network namespace. A socket keeps the
    /// namespace it was opened in: opened before the agent enters a host's
    /// namespace, it reaches a collector on the machine's loopback.
    ///
    /// # Errors
    /// The socket could not be opened or connected.
    pub fn connect(collector: SocketAddr) -> std::io::Result<UdpSocket> {
        let bind: SocketAddr = if collector.is_ipv4() {
            "0.0.0.0:0".parse().map_err(std::io::Error::other)?
        } else {
            "[::]:0".parse().map_err(std::io::Error::other)?
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(collector)?;
        Ok(socket)
    }

    /// Starts reading `rings` and sending reports from node `node_id` on
    /// `socket` (see [`SinkExporter::connect`]), one report per datagram.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(
        rings: Vec<PerfEventArrayBuffer<MapData>>,
        node_id: u32,
        socket: UdpSocket,
    ) -> std::io::Result<Self> {
        Self::start_with(rings, node_id, socket, ExportConfig::default())
    }

    /// [`start`](Self::start), packing reports into datagrams as `config`
    /// says.
    ///
    /// # Errors
    /// `config` is out of range ([`ExportConfig::validate`]) or the
    /// thread could not be started.
    pub fn start_with(
        rings: Vec<PerfEventArrayBuffer<MapData>>,
        node_id: u32,
        socket: UdpSocket,
        config: ExportConfig,
    ) -> std::io::Result<Self> {
        let mut rings = Rings(rings);
        Self::spawn(
            node_id,
            socket,
            config,
            move |socket, node_id, config, stats, stop| {
                export_loop(&mut rings, socket, node_id, config, stats, stop);
            },
        )
    }

    fn spawn(
        node_id: u32,
        socket: UdpSocket,
        config: ExportConfig,
        run: impl FnOnce(&UdpSocket, u32, ExportConfig, &SinkStats, &AtomicBool) + Send + 'static,
    ) -> std::io::Result<Self> {
        config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SinkStats::default());
        let (flag, counts) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("solyx-int-sink".into())
            .spawn(move || run(&socket, node_id, config, &counts, &flag))?;
        Ok(Self {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// The counts so far.
    #[must_use]
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }
}

/// Where the exporter's samples come from: the perf rings (in tests, a
/// socket).
trait Samples {
    /// Descriptors that become readable when samples wait.
    fn fds(&self) -> Vec<BorrowedFd<'_>>;
    /// Hands every waiting sample to `each`; `ready` says which of
    /// [`fds`](Self::fds) poll found readable.
    fn drain(&mut self, ready: &[bool], stats: &SinkStats, each: &mut dyn FnMut(&[u8]));
}

/// The `INT_SINK` perf rings, one per CPU.
struct Rings(Vec<PerfEventArrayBuffer<MapData>>);

impl Samples for Rings {
    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.0.iter().map(AsFd::as_fd).collect()
    }

    fn drain(&mut self, ready: &[bool], stats: &SinkStats, each: &mut dyn FnMut(&[u8])) {
        let mut sample = Vec::with_capacity(512);
        for (i, ring) in self.0.iter_mut().enumerate() {
            if !(ready.get(i).copied().unwrap_or(false) || ring.readable()) {
                continue;
            }
            ring.for_each(|event| match event {
                PerfEvent::Lost { count } => {
                    stats.lost.fetch_add(count, Ordering::Relaxed);
                }
                PerfEvent::Sample { head, tail } => {
                    sample.clear();
                    sample.extend_from_slice(head);
                    sample.extend_from_slice(tail);
                    each(&sample);
                }
            });
        }
    }
}

/// Reads samples until `stop`, turning each into a report and sending
/// them as `config` packs them.
fn export_loop(
    source: &mut impl Samples,
    socket: &UdpSocket,
    node_id: u32,
    mut config: ExportConfig,
    stats: &SinkStats,
    stop: &AtomicBool,
) {
    let idle = PollTimeout::try_from(Duration::from_millis(100)).unwrap_or(PollTimeout::NONE);
    let timer = if config.coalesce > 1 && !config.max_delay.is_zero() {
        match TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "INT sink: no timer; reports share datagrams only within one wake-up"
                );
                config.max_delay = Duration::ZERO;
                None
            }
        }
    } else {
        None
    };
    let ipv6 = socket.peer_addr().is_ok_and(|a| a.is_ipv6());
    let mut coalescer = Coalescer::new(node_id, config, config.payload_limit(ipv6));
    let mut armed: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = source
                .fds()
                .into_iter()
                .chain(timer.as_ref().map(AsFd::as_fd))
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, idle) {
                Ok(_) => fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                    .collect(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "INT sink: poll failed; reports stop");
                    coalescer.flush(socket, stats);
                    return;
                }
            }
        };
        source.drain(&ready, stats, &mut |sample| {
            if let Err(why) = coalescer.push(sample, socket, stats) {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(why, "INT sink: sample not reported");
            }
        });
        let now = Instant::now();
        if coalescer.deadline().is_some_and(|d| d <= now) {
            coalescer.flush(socket, stats);
        }
        if let Some(timer) = &timer {
            let want = coalescer.deadline();
            if want != armed {
                // Arming or disarming also clears an expiry not yet read.
                let set = match want {
                    Some(d) => {
                        let left = d
                            .saturating_duration_since(now)
                            .max(Duration::from_micros(1));
                        timer.set(
                            Expiration::OneShot(TimeSpec::from_duration(left)),
                            TimerSetTimeFlags::empty(),
                        )
                    }
                    None => timer.unset(),
                };
                if let Err(e) = set {
                    tracing::warn!(error = %e, "INT sink: timer not set; sending what is held");
                    coalescer.flush(socket, stats);
                }
                armed = want.filter(|_| set.is_ok());
            }
        }
    }
    coalescer.flush(socket, stats);
}

/// Packs reports into datagrams: one group header, up to `coalesce`
/// individual reports within `limit` bytes.
struct Coalescer {
    config: ExportConfig,
    node_id: u32,
    /// Most bytes of a datagram of several reports.
    limit: usize,
    /// The group header's sequence number of the next datagram.
    sequence: u32,
    /// The datagram being filled: group header and reports.
    out: BytesMut,
    /// Reports in `out`.
    pending: usize,
    /// When the first of them was added.
    since: Option<Instant>,
}

impl Coalescer {
    fn new(node_id: u32, config: ExportConfig, limit: usize) -> Self {
        Self {
            config,
            node_id,
            limit,
            sequence: 0,
            out: BytesMut::with_capacity(limit.max(2048)),
            pending: 0,
            since: None,
        }
    }

    /// When what is held must be sent.
    fn deadline(&self) -> Option<Instant> {
        self.since.map(|t| t + self.config.max_delay)
    }

    /// Adds the report of one sample, sending the datagram before it when
    /// the report does not fit, and the datagram with it when full.
    ///
    /// # Errors
    /// What is wrong with the sample; nothing is added then.
    fn push(
        &mut self,
        sample: &[u8],
        socket: &UdpSocket,
        stats: &SinkStats,
    ) -> Result<(), &'static str> {
        let node_id = self.node_id;
        with_report(sample, node_id, 0, |report| self.add(report, socket, stats))?
    }

    fn add(
        &mut self,
        report: &ReportBuilder<'_>,
        socket: &UdpSocket,
        stats: &SinkStats,
    ) -> Result<(), &'static str> {
        const UNBUILT: &str = "the report does not build";
        let individual = report
            .encoded_len()
            .map_err(|_| UNBUILT)?
            .saturating_sub(GroupHeader::ENCODED_LEN);
        // 0xFF words or more: only the last report of a datagram may be
        // that long, so the datagram leaves with it.
        let open = individual >= REPORT_HEADER_LEN + usize::from(OPEN_REPORT_LENGTH) * 4;
        if self.pending > 0 && self.out.len() + individual > self.limit {
            self.flush(socket, stats);
        }
        if self.pending == 0 {
            self.out.clear();
            let group = GroupHeader {
                hw_id: 0,
                sequence_number: self.sequence,
                node_id: self.node_id,
            };
            group.write(&mut self.out).map_err(|_| UNBUILT)?;
            self.since = Some(Instant::now());
        }
        if report.write_individual(&mut self.out, open).is_err() {
            if self.pending == 0 {
                self.out.clear();
                self.since = None;
            }
            return Err(UNBUILT);
        }
        self.pending += 1;
        if open || self.pending >= self.config.coalesce || self.out.len() >= self.limit {
            self.flush(socket, stats);
        }
        Ok(())
    }

    /// Sends what is held, if anything.
    fn flush(&mut self, socket: &UdpSocket, stats: &SinkStats) {
        if self.pending == 0 {
            return;
        }
        let reports = self.pending as u64;
        if socket.send(&self.out).is_ok() {
            stats.exported.fetch_add(reports, Ordering::Relaxed);
            stats.datagrams.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.send_failed.fetch_add(reports, Ordering::Relaxed);
        }
        self.sequence = (self.sequence + 1) & 0x003f_ffff;
        self.out.clear();
        self.pending = 0;
        self.since = None;
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Builds the report for one `INT_SINK` sample (a [`SinkMeta`] and the
/// frame's first bytes) into `out`.
///
/// # Errors
/// What is wrong with the sample (the program checked the INT lengths;
/// this parses again, never trusting the bytes).
pub fn build_report(
    sample: &[u8],
    node_id: u32,
    sequence: u32,
    out: &mut BytesMut,
) -> Result<(), &'static str> {
    with_report(sample, node_id, sequence, |report| {
        report
            .write(out)
            .map(|_| ())
            .map_err(|_| "the report does not build")
    })?
}

/// Calls `f` with the report (group header `sequence`) of one `INT_SINK`
/// sample.
///
/// # Errors
/// What is wrong with the sample.
fn with_report<R>(
    sample: &[u8],
    node_id: u32,
    sequence: u32,
    f: impl FnOnce(&ReportBuilder<'_>) -> R,
) -> Result<R, &'static str> {
    let meta_len = size_of::<SinkMeta>();
    let meta = sample
        .get(..meta_len)
        .ok_or("sample shorter than its metadata")?;
    let ingress_port = u16::from_ne_bytes([meta[0], meta[1]]);
    let frame_len = u32::from_ne_bytes([meta[4], meta[5], meta[6], meta[7]]) as usize;
    let tai_ns = u64::from_ne_bytes(meta[8..16].try_into().map_err(|_| "metadata")?);
    let frame = sample
        .get(meta_len..meta_len + frame_len)
        .ok_or("sample shorter than its frame")?;

    let ip = frame.get(14..).ok_or("no IPv4 header")?;
    let ihl = usize::from(ip.first().ok_or("no IPv4 header")? & 0x0f) * 4;
    if ihl < 20 || ip.len() < ihl {
        return Err("IPv4 header cut short");
    }
    let tos = ip[1];
    let ipv4 = Ipv4Header {
        dscp: tos >> 2,
        ecn: tos & 3,
        total_length: be16(ip, 2).ok_or("IPv4")?,
        identification: be16(ip, 4).ok_or("IPv4")?,
        flags: (ip[6] >> 5) & 0x7,
        ttl: ip[8],
        checksum: be16(ip, 10).ok_or("IPv4")?,
        src: std::net::Ipv4Addr::from(be32(ip, 12).ok_or("IPv4")?),
        dst: std::net::Ipv4Addr::from(be32(ip, 16).ok_or("IPv4")?),
    };
    let options = &ip[20..ihl];
    let l4 = &ip[ihl..];
    let (transport, tcp_options, l4_len) = match ip[9] {
        17 => (
            Transport::Udp(UdpHeader {
                src_port: be16(l4, 0).ok_or("UDP")?,
                dst_port: be16(l4, 2).ok_or("UDP")?,
                length: be16(l4, 4).ok_or("UDP")?,
                checksum: be16(l4, 6).ok_or("UDP")?,
            }),
            &[][..],
            8,
        ),
        6 => {
            let off = usize::from(*l4.get(12).ok_or("TCP")? >> 4) * 4;
            if off < 20 || l4.len() < off {
                return Err("TCP header cut short");
            }
            (
                Transport::Tcp(TcpHeader {
                    src_port: be16(l4, 0).ok_or("TCP")?,
                    dst_port: be16(l4, 2).ok_or("TCP")?,
                    seq: be32(l4, 4).ok_or("TCP")?,
                    ack: be32(l4, 8).ok_or("TCP")?,
                    reserved: l4[12] & 0x0f,
                    flags: l4[13],
                    window: be16(l4, 14).ok_or("TCP")?,
                    checksum: be16(l4, 16).ok_or("TCP")?,
                    urgent_ptr: be16(l4, 18).ok_or("TCP")?,
                }),
                &l4[20..off],
                off,
            )
        }
        _ => return Err("neither UDP nor TCP"),
    };
    let block = l4.get(l4_len..).ok_or("no INT block")?;
    let md = IntMd::parse(block).map_err(|_| "INT-MD block does not parse")?;
    let payload = block.get(md.encoded_len()..).unwrap_or(&[]);
    let inner = InnerPacket {
        ethernet: None,
        ipv4,
        ipv4_options: options,
        transport,
        tcp_options,
        int: md.to_builder(),
        payload,
    };
    let mut node = [0u8; 12];
    node[0..4].copy_from_slice(&(u32::from(ingress_port) << 16 | 0xffff).to_be_bytes());
    node[4..12].copy_from_slice(&tai_ns.to_be_bytes());
    let mut report = ReportBuilder::new(
        GroupHeader {
            hw_id: 0,
            sequence_number: sequence,
            node_id,
        },
        inner,
    );
    report.main = Some(MainContents {
        rep_md_bits: RepMdBits::LEVEL1_PORT_IDS | RepMdBits::INGRESS_TIMESTAMP,
        metadata: &node,
        ..Default::default()
    });
    Ok(f(&report))
}

#[cfg(test)]
#[path = "host_sink_tests.rs"]
mod tests;
