//! The UDP listener: receives Telemetry Reports in batches, parses them
//! without copying, counts what it rejects by reason, and applies the rest
//! to the [`TelemetryStore`].
//!
//! Each socket (several with `SO_REUSEPORT` when `sockets > 1`; the kernel
//! spreads senders over them) runs one Tokio task that, when the socket is
//! readable, drains it with `recvmmsg` into one buffer of `batch` slots.
//! The buffer is frozen into a [`Bytes`], every datagram is a slice of it
//! (no copy), the batch is parsed outside any lock, then applied under one
//! lock of the store, and the buffer is reused once the reports are gone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nix::sys::socket::{self as nsock, MsgFlags, MultiHeaders};
use serde::Serialize;
use solyx_int::{ParseError, Report};
use tokio::io::Interest;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::store::{StoreConfig, StoreSnapshot, TelemetryStore};

/// The UDP port the collector listens on by default.
pub const DEFAULT_PORT: u16 = 9555;

/// How the collector listens.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// Address to bind. Default `0.0.0.0:9555`.
    pub listen: SocketAddr,
    /// Sockets bound to the address with `SO_REUSEPORT`, one task each.
    /// Default 1.
    pub sockets: usize,
    /// Datagrams taken per `recvmmsg`. Default 64.
    pub batch: usize,
    /// Largest datagram kept whole; longer ones are counted as
    /// `datagram_too_long` and dropped. Default 2048 bytes.
    pub max_datagram: usize,
    /// Socket receive buffer asked for (`SO_RCVBUF`; the kernel caps it at
    /// `net.core.rmem_max`). Default 8 MiB.
    pub recv_buffer: usize,
    /// Smoothing and expiry.
    pub store: StoreConfig,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            sockets: 1,
            batch: 64,
            max_datagram: 2048,
            recv_buffer: 8 << 20,
            store: StoreConfig::default(),
        }
    }
}

/// Reason label of datagrams longer than `max_datagram`.
pub const TOO_LONG: &str = "datagram_too_long";

/// Counters shared by the receive tasks.
struct Counters {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    reports: AtomicU64,
    too_long: AtomicU64,
    /// One per [`ParseError::REASONS`] entry, then one for a reason the
    /// list lacks.
    rejected: Box<[AtomicU64]>,
}

impl Counters {
    fn new() -> Self {
        Self {
            datagrams: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            reports: AtomicU64::new(0),
            too_long: AtomicU64::new(0),
            rejected: (0..=ParseError::REASONS.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    fn reject(&self, e: &ParseError) {
        let reason = e.reason();
        let i = ParseError::REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(ParseError::REASONS.len());
        if let Some(c) = self.rejected.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the collector received and rejected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReportCounters {
    /// Datagrams received.
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Reports parsed and applied.
    pub reports: u64,
    /// Rejected reports by reason: every parser reason
    /// ([`ParseError::REASONS`]) and `datagram_too_long`, zeros included.
    pub rejected: BTreeMap<&'static str, u64>,
}

impl ReportCounters {
    /// Reports rejected for `reason`.
    #[must_use]
    pub fn rejected_for(&self, reason: &str) -> u64 {
        self.rejected.get(reason).copied().unwrap_or(0)
    }

    /// Reports rejected for any reason.
    #[must_use]
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// A snapshot of the collector: the store's fresh contents and the
/// counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TelemetrySnapshot {
    /// Egress ports, links and paths.
    #[serde(flatten)]
    pub store: StoreSnapshot,
    /// Datagrams, reports and rejections.
    pub received: ReportCounters,
}

impl std::ops::Deref for TelemetrySnapshot {
    type Target = StoreSnapshot;
    fn deref(&self) -> &StoreSnapshot {
        &self.store
    }
}

// TODO-perf: one store behind one lock; with several sockets the receive
// tasks contend for it once per batch. Sharding by link would let them
// apply in parallel.
struct Shared {
    store: Mutex<TelemetryStore>,
    counters: Counters,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, TelemetryStore> {
        // A panic while holding the lock leaves the series consistent
        // enough to keep serving: every update is a few field writes.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running INT collector. Dropping it (or [`Collector::shutdown`]) stops
/// the receive tasks.
///
/// # Examples
///
/// ```no_run
/// use solyx::telemetry::{Collector, CollectorConfig};
///
/// # async fn demo() -> std::io::Result<()> {
/// let collector = Collector::bind(CollectorConfig::default()).await?;
/// println!("INT reports to {}", collector.local_addr());
/// let snapshot = collector.snapshot();
/// for link in &snapshot.links {
///     println!("{}: {:?}", link.link, link.latency_ns);
/// }
/// # Ok(()) }
/// ```
pub struct Collector {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Collector {
    /// Binds the sockets and starts receiving.
    ///
    /// # Errors
    ///
    /// The socket could not be created or bound (address in use, no
    /// permission), naming the address.
    pub async fn bind(config: CollectorConfig) -> std::io::Result<Self> {
        let store = TelemetryStore::new(config.store.clone(), Instant::now());
        Self::bind_with_store(config, store).await
    }

    /// [`bind`](Self::bind) with a store set up beforehand (switch ID
    /// mapping).
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub async fn bind_with_store(
        config: CollectorConfig,
        store: TelemetryStore,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            counters: Counters::new(),
        });
        let (shutdown, _) = watch::channel(false);
        let first = bind_socket(config.listen, config.sockets > 1, config.recv_buffer)?;
        // With port 0 the kernel picks one; the other sockets join it.
        let local_addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..config.sockets.max(1) {
            sockets.push(bind_socket(local_addr, true, config.recv_buffer)?);
        }
        let mut tasks = Vec::new();
        for socket in sockets {
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            tasks.push(tokio::spawn(receive(
                socket,
                shared.clone(),
                config.batch.max(1),
                config.max_datagram.max(64),
                shutdown.subscribe(),
            )));
        }
        let expire_every = (config.store.expire_after / 4).max(Duration::from_millis(10));
        tasks.push(tokio::spawn(expire(
            shared.clone(),
            expire_every,
            shutdown.subscribe(),
        )));
        info!(%local_addr, sockets = config.sockets.max(1), "INT collector listening");
        Ok(Self {
            shared,
            local_addr,
            shutdown,
            tasks,
        })
    }

    /// The address the sockets are bound to.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reads INT switch ID `switch_id` as device `device`.
    pub fn map_switch(&self, switch_id: u32, device: crate::linkstate::DeviceId) {
        self.shared.store().map_switch(switch_id, device);
    }

    /// Everything fresh now.
    #[must_use]
    pub fn snapshot(&self) -> TelemetrySnapshot {
        self.snapshot_at(Instant::now())
    }

    /// Everything fresh at `at` (a later instant shows what will have
    /// expired by then).
    #[must_use]
    pub fn snapshot_at(&self, at: Instant) -> TelemetrySnapshot {
        let store = self.shared.store().snapshot(at);
        TelemetrySnapshot {
            store,
            received: self.counters(),
        }
    }

    /// The receive counters.
    #[must_use]
    pub fn counters(&self) -> ReportCounters {
        let c = &self.shared.counters;
        let mut rejected: BTreeMap<&'static str, u64> = ParseError::REASONS
            .iter()
            .zip(c.rejected.iter())
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
            .collect();
        rejected.insert(TOO_LONG, c.too_long.load(Ordering::Relaxed));
        let other = c
            .rejected
            .get(ParseError::REASONS.len())
            .map_or(0, |n| n.load(Ordering::Relaxed));
        if other > 0 {
            rejected.insert("other", other);
        }
        ReportCounters {
            datagrams: c.datagrams.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            reports: c.reports.load(Ordering::Relaxed),
            rejected,
        }
    }

    /// Stops receiving and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// A non-blocking UDP socket bound to `addr`.
fn bind_socket(
    addr: SocketAddr,
    reuse_port: bool,
    recv_buffer: usize,
) -> std::io::Result<std::net::UdpSocket> {
    use nsock::{AddressFamily, SockFlag, SockType, SockaddrStorage};
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let context = |what: &str, e: nix::Error| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("INT collector socket {addr}: {what}: {e}"),
        )
    };
    let fd = nsock::socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| context("socket", e))?;
    if reuse_port {
        nsock::setsockopt(&fd, nsock::sockopt::ReusePort, &true)
            .map_err(|e| context("SO_REUSEPORT", e))?;
    }
    if recv_buffer > 0 {
        // Capped by net.core.rmem_max; a smaller buffer is not an error.
        if let Err(e) = nsock::setsockopt(&fd, nsock::sockopt::RcvBuf, &recv_buffer) {
            debug!(error = %e, "SO_RCVBUF refused");
        }
    }
    nsock::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(|e| context("bind", e))?;
    Ok(std::net::UdpSocket::from(fd))
}

/// One batch buffer: `slots` datagrams of `size` bytes.
struct Batch {
    buf: BytesMut,
    size: usize,
    slots: usize,
    /// (length, truncated) of each datagram of the last receive.
    lens: Vec<(usize, bool)>,
}

impl Batch {
    fn new(slots: usize, size: usize) -> Self {
        Self {
            buf: BytesMut::zeroed(slots * size),
            size,
            slots,
            lens: Vec::with_capacity(slots),
        }
    }

    /// Receives up to `slots` datagrams without blocking.
    fn recv(&mut self, fd: std::os::fd::RawFd) -> std::io::Result<usize> {
        let Self {
            buf,
            size,
            slots,
            lens,
        } = self;
        // Built per call: the headers hold raw pointers, which would keep
        // the receive task off Tokio's other threads; it costs two small
        // allocations per batch.
        let mut headers = MultiHeaders::<()>::preallocate(*slots, None);
        let mut iovs: Vec<[std::io::IoSliceMut<'_>; 1]> = buf
            .chunks_mut(*size)
            .map(|c| [std::io::IoSliceMut::new(c)])
            .collect();
        let results = nsock::recvmmsg(
            fd,
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(std::io::Error::from)?;
        lens.clear();
        for m in results {
            lens.push((m.bytes, m.flags.contains(MsgFlags::MSG_TRUNC)));
        }
        Ok(lens.len())
    }
}

/// The receive loop of one socket.
async fn receive(
    socket: tokio::net::UdpSocket,
    shared: Arc<Shared>,
    slots: usize,
    size: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new(slots, size);
    let mut reports: Vec<Report> = Vec::with_capacity(slots);
    loop {
        tokio::select! {
            r = socket.readable() => {
                if let Err(e) = r {
                    warn!(error = %e, "INT collector socket failed; receiving stops");
                    return;
                }
            }
            _ = shutdown.changed() => return,
        }
        loop {
            match socket.try_io(Interest::READABLE, || batch.recv(fd)) {
                Ok(0) => break,
                // Go on until the socket is drained (WouldBlock).
                Ok(n) => process(&mut batch, n, &shared, &mut reports),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!(error = %e, "INT collector receive failed");
                    break;
                }
            }
        }
    }
}

/// Parses the `n` datagrams of the last receive, applies the good reports
/// under one lock, and takes the buffer back.
fn process(batch: &mut Batch, n: usize, shared: &Shared, reports: &mut Vec<Report>) {
    let c = &shared.counters;
    let frozen: Bytes = std::mem::take(&mut batch.buf).freeze();
    let mut bytes = 0u64;
    for (i, &(len, truncated)) in batch.lens.iter().enumerate().take(n) {
        bytes += len as u64;
        if truncated || len > batch.size {
            c.too_long.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let start = i * batch.size;
        let datagram = frozen.slice(start..start + len);
        match Report::parse_coalesced(datagram) {
            Ok(each) => {
                for r in each {
                    match r {
                        Ok(report) => reports.push(report),
                        Err(e) => c.reject(&e),
                    }
                }
            }
            Err(e) => c.reject(&e),
        }
    }
    c.datagrams.fetch_add(n as u64, Ordering::Relaxed);
    c.bytes.fetch_add(bytes, Ordering::Relaxed);
    if !reports.is_empty() {
        c.reports.fetch_add(reports.len() as u64, Ordering::Relaxed);
        let now = Instant::now();
        let mut store = shared.store();
        for r in reports.iter() {
            store.apply(r, now);
        }
    }
    reports.clear();
    batch.buf = match frozen.try_into_mut() {
        Ok(buf) => buf,
        Err(_) => BytesMut::zeroed(batch.slots * batch.size),
    };
}

/// Drops stale entries every `every`.
async fn expire(shared: Arc<Shared>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => shared.store().expire(Instant::now()),
            _ = shutdown.changed() => return,
        }
    }
}
