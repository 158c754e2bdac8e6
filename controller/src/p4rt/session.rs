//! A device session: the StreamChannel, primary election and reconnection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use solyx_p4runtime::P4InfoIndex;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tracing::{debug, error_span, info, warn, Instrument, Span};

use super::{from_uint128, to_uint128, transport, ClientError, ElectionId, WriteOptions};

/// Capped exponential backoff between reconnection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay. Default 50 ms.
    pub initial: Duration,
    /// Largest delay. Default 5 s.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based): `initial * 2^n`, capped.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// How to reach a device and who we are to it.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `host:port`, `http://host:port` or `unix:/path`.
    pub addr: String,
    /// P4Runtime device ID.
    pub device_id: u64,
    /// Role name; empty for the default (full-access) role.
    pub role: String,
    /// Election ID; the highest one connected is primary. Must not be 0.
    pub election_id: ElectionId,
    /// Reconnection backoff.
    pub backoff: Backoff,
    /// Connection timeout. Default 2 s.
    pub connect_timeout: Duration,
    /// Write batching and atomicity.
    pub write: WriteOptions,
    /// TLS towards the device (TCP only); plain when `None`.
    pub tls: Option<super::ClientTls>,
    /// Where RPC counts, latencies and written updates are recorded; none
    /// by default.
    pub metrics: Option<RpcMetrics>,
}

/// The metrics a session records its RPCs in, under the device's name.
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    /// The controller's metric families.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The `device` label: the device's name in the topology.
    pub device: String,
}

impl RpcMetrics {
    /// Records one RPC that ended with `code` after `started`.
    pub(crate) fn rpc(&self, rpc: &str, code: tonic::Code, started: std::time::Instant) {
        self.metrics
            .observe_p4rt_rpc(&self.device, rpc, code, started.elapsed().as_secs_f64());
    }

    /// Records the updates of one Write: `ok` applied, `refused` not.
    pub(crate) fn updates(&self, ok: usize, refused: usize) {
        for (result, n) in [("ok", ok), ("refused", refused)] {
            if n > 0 {
                self.metrics
                    .p4rt_updates
                    .with_label_values(&[&self.device, result])
                    .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
            }
        }
    }
}

impl SessionConfig {
    /// A configuration with defaults for everything but the address, device
    /// and election ID.
    #[must_use]
    pub fn new(addr: impl Into<String>, device_id: u64, election_id: ElectionId) -> Self {
        Self {
            addr: addr.into(),
            device_id,
            role: String::new(),
            election_id,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(2),
            write: WriteOptions::default(),
            tls: None,
            metrics: None,
        }
    }
}

/// Where this client stands in the election for its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mastership {
    /// Not connected (yet, or any more).
    Disconnected,
    /// Connected and arbitration sent, no answer yet.
    Connecting,
    /// This client is primary and may write.
    Primary,
    /// Another client is primary; `primary` is its election ID if any.
    Backup {
        /// Election ID of the current primary, if there is one.
        primary: Option<ElectionId>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) mastership: Mastership,
    /// Incremented each time this client becomes primary: a new epoch means
    /// the device may have lost or changed state and needs reconciling.
    pub(crate) primary_epoch: u64,
}

pub(crate) struct Inner {
    pub(crate) config: SessionConfig,
    pub(crate) state: watch::Sender<State>,
    pub(crate) client: Mutex<Option<P4RuntimeClient<Channel>>>,
    pub(crate) stream_tx: Mutex<Option<mpsc::Sender<p4::StreamMessageRequest>>>,
    pub(crate) packet_in: broadcast::Sender<p4::PacketIn>,
    pub(crate) digests: broadcast::Sender<p4::DigestList>,
    pub(crate) stream_errors: broadcast::Sender<p4::StreamError>,
    pub(crate) index: Mutex<Option<Arc<P4InfoIndex>>>,
    pub(crate) span: Span,
    /// Why the last connection attempt or stream ended, for error messages.
    pub(crate) last_error: Mutex<Option<String>>,
    shutdown: watch::Sender<bool>,
}

/// One P4Runtime session with one device. Cheap to clone; the background
/// task ends when the last clone is dropped or [`DeviceSession::close`] is
/// called.
#[derive(Clone)]
pub struct DeviceSession {
    pub(crate) inner: Arc<Inner>,
    _guard: Arc<CloseOnDrop>,
}

struct CloseOnDrop(watch::Sender<bool>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

impl std::fmt::Debug for DeviceSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSession")
            .field("addr", &self.inner.config.addr)
            .field("device_id", &self.inner.config.device_id)
            .field("mastership", &self.mastership())
            .finish()
    }
}

impl DeviceSession {
    /// Starts a session: the background task connects, sends arbitration
    /// and keeps reconnecting with backoff until the session is closed.
    /// Returns at once; use [`Self::wait_primary`] to wait for election.
    ///
    /// # Errors
    /// [`ClientError::Address`] when the address cannot be used.
    pub fn start(config: SessionConfig) -> Result<Self, ClientError> {
        transport::check_address(&config.addr)?;
        // The span is enabled at every level, so that even warnings of a
        // quiet CLI carry the device, role and election ID.
        let span = error_span!(
            "p4rt_session",
            device_id = config.device_id,
            role = %config.role,
            election_id = %config.election_id,
        );
        let (state, _) = watch::channel(State {
            mastership: Mastership::Disconnected,
            primary_epoch: 0,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            config,
            state,
            client: Mutex::new(None),
            stream_tx: Mutex::new(None),
            packet_in: broadcast::channel(4096).0,
            digests: broadcast::channel(1024).0,
            stream_errors: broadcast::channel(256).0,
            index: Mutex::new(None),
            span: span.clone(),
            last_error: Mutex::new(None),
            shutdown: shutdown.clone(),
        });
        tokio::spawn(run(Arc::downgrade(&inner), shutdown_rx).instrument(span));
        Ok(Self {
            inner,
            _guard: Arc::new(CloseOnDrop(shutdown)),
        })
    }

    /// Stops the background task and closes the stream.
    pub fn close(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    /// Device ID of this session.
    #[must_use]
    pub fn device_id(&self) -> u64 {
        self.inner.config.device_id
    }

    /// The configuration the session was started with.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Current mastership.
    #[must_use]
    pub fn mastership(&self) -> Mastership {
        self.inner.state.borrow().mastership.clone()
    }

    /// Whether this client is primary right now.
    #[must_use]
    pub fn is_primary(&self) -> bool {
        self.mastership() == Mastership::Primary
    }

    /// How many times this client has become primary. Watch it to reconcile
    /// after every (re)connection.
    #[must_use]
    pub fn primary_epoch(&self) -> u64 {
        self.inner.state.borrow().primary_epoch
    }

    /// Waits until this client is primary.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after `timeout`.
    pub async fn wait_primary(&self, timeout: Duration) -> Result<(), ClientError> {
        let mut rx = self.inner.state.subscribe();
        let wait = rx.wait_for(|s| s.mastership == Mastership::Primary);
        let r = tokio::time::timeout(timeout, wait).await.map(|r| r.is_ok());
        match r {
            Ok(true) => Ok(()),
            _ => Err(self.timeout("primary election")),
        }
    }

    /// Waits until the mastership satisfies `pred`.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &'static str,
        pred: impl Fn(&Mastership) -> bool,
    ) -> Result<Mastership, ClientError> {
        let mut rx = self.inner.state.subscribe();
        let wait = rx.wait_for(|s| pred(&s.mastership));
        let r = tokio::time::timeout(timeout, wait)
            .await
            .map(|r| r.map(|s| s.mastership.clone()));
        match r {
            Ok(Ok(m)) => Ok(m),
            _ => Err(self.timeout(what)),
        }
    }

    fn timeout(&self, what: &'static str) -> ClientError {
        let cause = match self.mastership() {
            Mastership::Backup { primary: Some(p) } => format!(
                "election ID {p} is primary for this role; this client has {}",
                self.inner.config.election_id
            ),
            Mastership::Backup { primary: None } => {
                "the device answered, but no client is primary".into()
            }
            _ => lock(&self.inner.last_error)
                .clone()
                .unwrap_or_else(|| "the device did not answer".into()),
        };
        ClientError::Timeout {
            device_id: self.device_id(),
            what,
            cause,
        }
    }

    /// Packet-ins from the device, as they arrive.
    #[must_use]
    pub fn packet_ins(&self) -> broadcast::Receiver<p4::PacketIn> {
        self.inner.packet_in.subscribe()
    }

    /// Digest lists from the device, as they arrive. Acknowledge each with
    /// [`Self::ack_digest`].
    #[must_use]
    pub fn digests(&self) -> broadcast::Receiver<p4::DigestList> {
        self.inner.digests.subscribe()
    }

    /// Errors the device reports on the stream (failed packet-outs and the like).
    #[must_use]
    pub fn stream_errors(&self) -> broadcast::Receiver<p4::StreamError> {
        self.inner.stream_errors.subscribe()
    }

    /// The P4Info index of the pipeline this client pushed or fetched.
    #[must_use]
    pub fn index(&self) -> Option<Arc<P4InfoIndex>> {
        lock(&self.inner.index).clone()
    }

    /// Uses `index` for name lookups (packet metadata, reconciliation)
    /// without pushing a pipeline.
    pub fn set_index(&self, index: Arc<P4InfoIndex>) {
        *lock(&self.inner.index) = Some(index);
    }

    pub(crate) fn client(&self) -> Result<P4RuntimeClient<Channel>, ClientError> {
        lock(&self.inner.client)
            .clone()
            .ok_or(ClientError::NotConnected {
                device_id: self.device_id(),
            })
    }

    pub(crate) fn require_primary(&self) -> Result<(), ClientError> {
        if self.is_primary() {
            return Ok(());
        }
        Err(ClientError::NotPrimary {
            device_id: self.device_id(),
            role: self.inner.config.role.clone(),
        })
    }

    pub(crate) fn role_name(&self) -> String {
        self.inner.config.role.clone()
    }

    pub(crate) fn election(&self) -> Option<p4::Uint128> {
        Some(to_uint128(self.inner.config.election_id))
    }

    /// Sends a raw stream message (packet-out, digest ack).
    async fn send_stream(&self, msg: p4::StreamMessageRequest) -> Result<(), ClientError> {
        let tx = lock(&self.inner.stream_tx)
            .clone()
            .ok_or(ClientError::NotConnected {
                device_id: self.device_id(),
            })?;
        tx.send(msg).await.map_err(|_| ClientError::NotConnected {
            device_id: self.device_id(),
        })
    }

    /// Sends `payload` to the device as a packet-out with raw metadata.
    ///
    /// # Errors
    /// Not connected or not primary.
    pub async fn packet_out(
        &self,
        payload: Vec<u8>,
        metadata: Vec<p4::PacketMetadata>,
    ) -> Result<(), ClientError> {
        self.require_primary()?;
        let msg = p4::StreamMessageRequest {
            update: Some(p4::stream_message_request::Update::Packet(p4::PacketOut {
                payload,
                metadata,
            })),
        };
        self.send_stream(msg).await
    }

    /// Sends a packet-out whose metadata is given by name, resolved through
    /// the `packet_out` header of the session's P4Info.
    ///
    /// # Errors
    /// No pipeline known, an unknown field or too wide value, not primary.
    pub async fn packet_out_named(
        &self,
        payload: Vec<u8>,
        metadata: &[(&str, &dyn solyx_p4runtime::canonical::ToBytes)],
    ) -> Result<(), ClientError> {
        let index = self.index().ok_or(ClientError::NoPipeline {
            device_id: self.device_id(),
        })?;
        let metadata = index.packet_metadata("packet_out", metadata)?;
        self.packet_out(payload, metadata).await
    }

    /// Acknowledges digest list `list_id` of digest `digest_id`.
    ///
    /// # Errors
    /// Not connected.
    pub async fn ack_digest(&self, digest_id: u32, list_id: u64) -> Result<(), ClientError> {
        let msg = p4::StreamMessageRequest {
            update: Some(p4::stream_message_request::Update::DigestAck(
                p4::DigestListAck { digest_id, list_id },
            )),
        };
        self.send_stream(msg).await
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another task panicked while holding it;
    // the data (a client handle or an index) is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn set_mastership(inner: &Inner, m: Mastership) {
    inner.state.send_if_modified(|s| {
        if s.mastership == m {
            return false;
        }
        if m == Mastership::Primary {
            s.primary_epoch += 1;
        }
        s.mastership = m;
        true
    });
}

/// The background task: connect, arbitrate, serve the stream, reconnect.
async fn run(weak: std::sync::Weak<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut attempt = 0u32;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if *shutdown.borrow() {
            break;
        }
        let outcome = tokio::select! {
            r = serve_once(&inner) => r,
            _ = shutdown.changed() => break,
        };
        *lock(&inner.stream_tx) = None;
        set_mastership(&inner, Mastership::Disconnected);
        match outcome {
            Ok(()) => {
                info!("stream closed by the device; reconnecting");
                attempt = 0;
            }
            Err(e) => {
                warn!(error = %e, attempt, "device session lost; reconnecting");
                *lock(&inner.last_error) = Some(e);
            }
        }
        let delay = inner.config.backoff.delay(attempt);
        attempt = attempt.saturating_add(1);
        drop(inner);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
        }
    }
    if let Some(inner) = weak.upgrade() {
        *lock(&inner.stream_tx) = None;
        *lock(&inner.client) = None;
        set_mastership(&inner, Mastership::Disconnected);
    }
    debug!("device session closed");
}

/// One connection: returns when the stream ends.
async fn serve_once(inner: &Arc<Inner>) -> Result<(), String> {
    let cfg = &inner.config;
    let channel = transport::connect(&cfg.addr, cfg.connect_timeout, cfg.tls.as_ref())
        .await
        .map_err(|e| format!("connect {}: {e}", cfg.addr))?;
    let mut client = P4RuntimeClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    *lock(&inner.client) = Some(client.clone());
    set_mastership(inner, Mastership::Connecting);

    let (tx, rx) = mpsc::channel(1024);
    let arbitration = p4::StreamMessageRequest {
        update: Some(p4::stream_message_request::Update::Arbitration(
            p4::MasterArbitrationUpdate {
                device_id: cfg.device_id,
                role: (!cfg.role.is_empty()).then(|| p4::Role {
                    name: cfg.role.clone(),
                    ..Default::default()
                }),
                election_id: Some(to_uint128(cfg.election_id)),
                status: None,
            },
        )),
    };
    tx.send(arbitration)
        .await
        .map_err(|_| "stream closed before arbitration".to_string())?;
    let mut responses = client
        .stream_channel(ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("StreamChannel refused: {s}"))?
        .into_inner();
    *lock(&inner.stream_tx) = Some(tx);

    while let Some(msg) = responses.next().await {
        let msg =
            msg.map_err(|s| format!("stream closed by the device: {}: {}", s.code(), s.message()))?;
        use p4::stream_message_response::Update;
        match msg.update {
            Some(Update::Arbitration(a)) => on_arbitration(inner, &a),
            Some(Update::Packet(p)) => {
                let _ = inner.packet_in.send(p);
            }
            Some(Update::Digest(d)) => {
                let _ = inner.digests.send(d);
            }
            Some(Update::Error(e)) => {
                warn!(code = e.canonical_code, message = %e.message, "device reported a stream error");
                let _ = inner.stream_errors.send(e);
            }
            Some(other) => debug!(?other, "unhandled stream message"),
            None => {}
        }
    }
    Ok(())
}

fn on_arbitration(inner: &Inner, a: &p4::MasterArbitrationUpdate) {
    let code = a.status.as_ref().map_or(0, |s| s.code);
    let primary = a.election_id.as_ref().map(from_uint128);
    let m = if code == tonic::Code::Ok as i32 {
        Mastership::Primary
    } else {
        Mastership::Backup { primary }
    };
    let was = inner.state.borrow().mastership.clone();
    if was == Mastership::Primary && m != Mastership::Primary {
        warn!(?primary, "lost primary to another client");
    } else if m == Mastership::Primary && was != Mastership::Primary {
        info!("became primary");
    } else if was != m {
        info!(?primary, "backup: another client is primary");
    }
    set_mastership(inner, m);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (0..8).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, vec![50, 100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn bad_addresses_are_refused_before_connecting() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let err = DeviceSession::start(SessionConfig::new("unix:", 1, 1)).unwrap_err();
            assert!(err.to_string().contains("empty socket path"), "{err}");
            let err =
                DeviceSession::start(SessionConfig::new("http://bad host:1", 1, 1)).unwrap_err();
            assert!(err.to_string().contains("bad host"), "{err}");
            let err = DeviceSession::start(SessionConfig::new("127.0.0.1", 1, 1)).unwrap_err();
            assert!(err.to_string().contains("no port"), "{err}");
            let err =
                DeviceSession::start(SessionConfig::new("127.0.0.1:99999", 1, 1)).unwrap_err();
            assert!(err.to_string().contains("99999"), "{err}");
            let err = DeviceSession::start(SessionConfig::new("::1:9559", 1, 1)).unwrap_err();
            assert!(err.to_string().contains("[::1]:9559"), "{err}");
        });
    }

    #[tokio::test(start_paused = true)]
    async fn session_keeps_retrying_with_backoff_while_the_device_is_absent() {
        let dir = std::env::temp_dir().join(format!("solyx-backoff-{}", std::process::id()));
        let addr = format!("unix:{}", dir.join("absent.sock").display());
        let mut cfg = SessionConfig::new(addr, 7, 1);
        cfg.backoff = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(40),
        };
        let s = DeviceSession::start(cfg).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(s.mastership(), Mastership::Disconnected);
        let err = s
            .wait_primary(Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout { device_id: 7, .. }));
        s.close();
    }
}
