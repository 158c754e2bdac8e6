//! Packet I/O of the eBPF switch.
//!
//! - Packet-in: a thread polls the `PACKET_IN` perf rings (one per CPU) and
//!   hands each punted frame, with the port it arrived on, to the server's
//!   [`PacketInSink`].
//! - Packet-out: the frame is sent out of the egress port's interface
//!   through one `AF_PACKET` raw socket (opened in the switch's network
//!   namespace). It passes that interface's qdisc like forwarded traffic,
//!   but not the fabric program (which runs on ingress), so the egress
//!   rewrite does not touch it, as in P4 for packet-outs.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::MapData;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use solyx_ebpf_common::packet_io::PacketInMeta;

use crate::p4rt::{PacketIn, PacketInSink};

/// How long the reader waits before it looks at the stop flag again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Where packet-ins go: the server's sink once it is attached.
pub(crate) type SharedSink = Arc<Mutex<Option<PacketInSink>>>;

/// Counts of the packet-in path, for logs and tests.
#[derive(Debug, Default)]
pub(crate) struct PacketInStats {
    /// Frames delivered to at least one client.
    pub(crate) delivered: AtomicU64,
    /// Frames read but queued to no client (none connected, queue full).
    pub(crate) unclaimed: AtomicU64,
    /// Samples the kernel dropped because a ring was full.
    pub(crate) lost: AtomicU64,
}

/// The thread reading the perf rings; stops when dropped.
#[derive(Debug)]
pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the reader over `rings`.
pub(crate) fn spawn_reader(
    rings: Vec<PerfEventArrayBuffer<MapData>>,
    sink: SharedSink,
    stats: Arc<PacketInStats>,
) -> io::Result<Reader> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("solyx-packet-in".into())
        .spawn(move || read_loop(rings, &sink, &stats, &flag))?;
    Ok(Reader {
        stop,
        thread: Some(thread),
    })
}

fn read_loop(
    mut rings: Vec<PerfEventArrayBuffer<MapData>>,
    sink: &SharedSink,
    stats: &PacketInStats,
    stop: &AtomicBool,
) {
    let timeout = PollTimeout::try_from(POLL_INTERVAL).unwrap_or(PollTimeout::NONE);
    while !stop.load(Ordering::Relaxed) {
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = rings
                .iter()
                .map(|r| PollFd::new(std::os::fd::AsFd::as_fd(r), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, timeout) {
                Ok(0) => continue,
                Ok(_) => fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                    .collect(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "packet-in: poll failed; packet-ins stop");
                    return;
                }
            }
        };
        let current = lock(sink).clone();
        for (ring, ready) in rings.iter_mut().zip(ready) {
            if ready || ring.readable() {
                ring.for_each(|event| handle(event, current.as_ref(), stats));
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One perf event: a punted frame, or the kernel's count of lost ones.
fn handle(event: PerfEvent<'_>, sink: Option<&PacketInSink>, stats: &PacketInStats) {
    match event {
        PerfEvent::Lost { count } => {
            stats.lost.fetch_add(count, Ordering::Relaxed);
            tracing::warn!(count, "packet-in: the kernel dropped samples (ring full)");
        }
        PerfEvent::Sample { head, tail } => {
            let mut sample = Vec::with_capacity(head.len() + tail.len());
            sample.extend_from_slice(head);
            sample.extend_from_slice(tail);
            let Some(packet) = decode_sample(&sample) else {
                tracing::debug!(len = sample.len(), "packet-in: sample too short; ignored");
                return;
            };
            let queued = sink.map_or(0, |s| s.deliver(packet));
            let counter = if queued > 0 {
                &stats.delivered
            } else {
                &stats.unclaimed
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A sample's `PacketInMeta` and frame (the kernel pads samples; the
/// frame is `frame_len` bytes after the metadata).
pub(crate) fn decode_sample(sample: &[u8]) -> Option<PacketIn> {
    let meta_len = size_of::<PacketInMeta>();
    let meta = sample.get(..meta_len)?;
    let ingress_port = u16::from_ne_bytes([meta[0], meta[1]]);
    let frame_len = u32::from_ne_bytes([meta[4], meta[5], meta[6], meta[7]]) as usize;
    let frame = sample.get(meta_len..meta_len.checked_add(frame_len)?)?;
    Some(PacketIn {
        ingress_port: u32::from(ingress_port),
        payload: frame.to_vec(),
    })
}

pub(crate) use raw::PacketSender;

#[allow(unsafe_code)]
mod raw {
    //! An `AF_PACKET` raw socket for sending frames out of an interface:
    //! nix has no safe `sockaddr_ll` constructor, so this module calls
    //! libc (through nix's re-export) directly.

    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use nix::libc;

    /// A send-only packet socket (protocol 0: it receives nothing).
    #[derive(Debug)]
    pub(crate) struct PacketSender {
        fd: OwnedFd,
    }

    impl PacketSender {
        /// Opens the socket in the calling thread's network namespace.
        pub(crate) fn open() -> io::Result<Self> {
            // SAFETY: plain syscall; the result is checked before use.
            let fd =
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh descriptor owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            Ok(Self { fd })
        }

        /// Sends one complete Ethernet frame out of interface `ifindex`,
        /// without blocking (a full socket buffer is an error).
        pub(crate) fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
            if frame.len() < 14 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a frame is at least an Ethernet header (14 bytes)",
                ));
            }
            // SAFETY: sockaddr_ll is plain old data; all zeroes is valid.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            // The EtherType as it is on the wire (network order).
            addr.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
            addr.sll_ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&frame[..6]);
            // SAFETY: `frame` is a valid buffer of its length; `addr` a
            // valid sockaddr_ll of the given size.
            let sent = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    libc::MSG_DONTWAIT,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            if sent as usize != frame.len() {
                return Err(io::Error::other("short send"));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_decode_with_padding() {
        let mut sample = Vec::new();
        sample.extend_from_slice(&3u16.to_ne_bytes());
        sample.extend_from_slice(&1u16.to_ne_bytes());
        sample.extend_from_slice(&5u32.to_ne_bytes());
        sample.extend_from_slice(b"hello\0\0\0");
        let p = decode_sample(&sample).expect("decodes");
        assert_eq!(p.ingress_port, 3);
        assert_eq!(p.payload, b"hello");
        assert!(decode_sample(&sample[..10]).is_none());
    }
}
