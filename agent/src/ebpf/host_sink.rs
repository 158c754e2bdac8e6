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

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::MapData;
use bytes::BytesMut;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use solyx_ebpf_common::host::SinkMeta;
use solyx_int::{
    GroupHeader, InnerPacket, IntMd, Ipv4Header, MainContents, RepMdBits, ReportBuilder, TcpHeader,
    Transport, UdpHeader,
};

/// Counts of the exporter since it started.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Reports sent.
    pub exported: AtomicU64,
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
    /// `socket` (see [`SinkExporter::connect`]).
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(
        rings: Vec<PerfEventArrayBuffer<MapData>>,
        node_id: u32,
        socket: UdpSocket,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SinkStats::default());
        let (flag, counts) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("solyx-int-sink".into())
            .spawn(move || read_loop(rings, &socket, node_id, &counts, &flag))?;
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

fn read_loop(
    mut rings: Vec<PerfEventArrayBuffer<MapData>>,
    socket: &UdpSocket,
    node_id: u32,
    stats: &SinkStats,
    stop: &AtomicBool,
) {
    let timeout = PollTimeout::try_from(Duration::from_millis(100)).unwrap_or(PollTimeout::NONE);
    let mut sequence = 0u32;
    let mut out = BytesMut::with_capacity(2048);
    while !stop.load(Ordering::Relaxed) {
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = rings
                .iter()
                .map(|r| PollFd::new(r.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, timeout) {
                Ok(0) => continue,
                Ok(_) => fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                    .collect(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "INT sink: poll failed; reports stop");
                    return;
                }
            }
        };
        for (ring, ready) in rings.iter_mut().zip(ready) {
            if !(ready || ring.readable()) {
                continue;
            }
            ring.for_each(|event| match event {
                PerfEvent::Lost { count } => {
                    stats.lost.fetch_add(count, Ordering::Relaxed);
                }
                PerfEvent::Sample { head, tail } => {
                    let mut sample = Vec::with_capacity(head.len() + tail.len());
                    sample.extend_from_slice(head);
                    sample.extend_from_slice(tail);
                    out.clear();
                    match build_report(&sample, node_id, sequence, &mut out) {
                        Ok(()) => {
                            sequence = (sequence + 1) & 0x003f_ffff;
                            if socket.send(&out).is_ok() {
                                stats.exported.fetch_add(1, Ordering::Relaxed);
                            } else {
                                stats.send_failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(why) => {
                            stats.malformed.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(why, "INT sink: sample not reported");
                        }
                    }
                }
            });
        }
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
    report.write(out).map_err(|_| "the report does not build")?;
    Ok(())
}
