//! [`AgentService`]: the P4Runtime gRPC service of the agent, its
//! configuration ([`ServerConfig`]) and the state its RPCs share.
//!
//! Locks: `device` (pipeline and entity store) is taken once per Write,
//! Read or SetForwardingPipelineConfig; `sessions` (arbitration and the
//! streams' senders) is taken briefly per arbitration, packet and
//! permission check. Neither is held across an `.await`, and `device` is
//! never taken while `sessions` is held.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::proto::p4::v1::p4_runtime_server::{P4Runtime, P4RuntimeServer};
use solyx_p4runtime::P4InfoIndex;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{field, info_span, Instrument};

use super::arbitration::{Arbiter, StreamId};
use super::dataplane::{Dataplane, PacketInSink};
use super::error::StoreError;
use super::metrics::P4rtMetrics;
use super::persist::{self, LoadError};
use super::pipeline::{self, DeviceState, PipelinePolicy, RestoreOutcome};
use super::stream::{self, election_of};
use super::{read, write};

/// Why [`AgentService::restore`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The state file could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The saved pipeline was refused.
    #[error("the saved pipeline was refused: {0}")]
    Pipeline(StoreError),
}

/// Largest gRPC message the server accepts or sends: 64 MiB.
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// The P4Runtime version this server implements.
pub const P4RUNTIME_API_VERSION: &str = "1.4.1";

/// How the P4Runtime server behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The P4Runtime device ID served; requests for others get NOT_FOUND.
    pub device_id: u64,
    /// Which pipelines SetForwardingPipelineConfig accepts.
    pub pipelines: PipelinePolicy,
    /// Entities per ReadResponse. Default 1000.
    pub read_chunk: usize,
    /// Messages queued per StreamChannel before packet-ins are dropped.
    /// Default 1024.
    pub stream_queue: usize,
    /// Where the pipeline and the entities are saved after every Write
    /// that changed something and every pipeline commit, for
    /// [`AgentService::restore`] after a restart. `None`: nothing is saved.
    pub state_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            device_id: 1,
            pipelines: PipelinePolicy::Any,
            read_chunk: 1000,
            stream_queue: 1024,
            state_file: None,
        }
    }
}

impl ServerConfig {
    /// Defaults for everything but the device ID.
    #[must_use]
    pub fn new(device_id: u64) -> Self {
        Self {
            device_id,
            ..Self::default()
        }
    }
}

pub(crate) type StreamTx = mpsc::Sender<Result<p4::StreamMessageResponse, Status>>;

/// Arbitration and the senders of the open streams.
pub(crate) struct Sessions {
    pub(crate) arbiter: Arbiter,
    pub(crate) senders: HashMap<StreamId, StreamTx>,
}

/// State shared by every RPC.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) dataplane: Arc<dyn Dataplane>,
    pub(crate) device: Mutex<DeviceState>,
    pub(crate) sessions: Mutex<Sessions>,
    /// The running pipeline's index, for packet I/O without the device lock.
    pub(crate) packet_index: Mutex<Option<Arc<P4InfoIndex>>>,
    /// Set to `true` to end every StreamChannel (server shutdown).
    pub(crate) shutdown: watch::Sender<bool>,
    next_stream: AtomicU64,
    metrics: P4rtMetrics,
}

/// Locks `m`, ignoring poisoning: every critical section leaves its data
/// consistent before anything that could panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The agent's P4Runtime service. Cheap to clone; all clones share one
/// device state. Serve it with [`super::serve_tcp`], [`super::serve_unix`]
/// or [`super::spawn_tcp`], or add [`AgentService::into_grpc`] to a tonic
/// router.
#[derive(Clone)]
pub struct AgentService {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AgentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentService")
            .field("device_id", &self.shared.config.device_id)
            .field("dataplane", &self.shared.dataplane.name())
            .finish()
    }
}

impl AgentService {
    /// A service for `config`, programming `dataplane`, which is handed
    /// the sink for its packet-ins at once.
    #[must_use]
    pub fn new(config: ServerConfig, dataplane: Arc<dyn Dataplane>) -> Self {
        let shared = Arc::new(Shared {
            sessions: Mutex::new(Sessions {
                arbiter: Arbiter::new(config.device_id),
                senders: HashMap::new(),
            }),
            config,
            dataplane,
            device: Mutex::new(DeviceState::default()),
            packet_index: Mutex::new(None),
            shutdown: watch::channel(false).0,
            next_stream: AtomicU64::new(1),
            metrics: P4rtMetrics::new(),
        });
        let weak = Arc::downgrade(&shared);
        shared.dataplane.attach(PacketInSink::new(move |packet| {
            weak.upgrade()
                .map_or(0, |s| stream::deliver_packet_in(&s, packet))
        }));
        Self { shared }
    }

    /// The configuration the service was made with.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// The service's Prometheus series (calls, latency, errors, writes);
    /// [`P4rtMetrics::register`] exposes them.
    #[must_use]
    pub fn metrics(&self) -> &P4rtMetrics {
        &self.shared.metrics
    }

    /// The name of the data plane it programs.
    #[must_use]
    pub fn dataplane_name(&self) -> &str {
        self.shared.dataplane.name()
    }

    /// The tonic service, with message size limits of [`MAX_MESSAGE_SIZE`].
    #[must_use]
    pub fn into_grpc(self) -> P4RuntimeServer<AgentService> {
        P4RuntimeServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Ends every open StreamChannel, and every later one at once; used at
    /// shutdown, since gRPC's graceful shutdown waits for open streams.
    pub fn close_streams(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Number of table entries held (default entries excluded).
    #[must_use]
    pub fn table_entry_count(&self) -> usize {
        lock(&self.shared.device).store.table_entry_count()
    }

    /// Saves the pipeline and entities to the state file, if configured.
    /// A failure is logged, not reported to the client: the write itself
    /// succeeded.
    // TODO-robustness: a failed save is only logged; a restart then
    // restores the last state that was saved and drops later changes.
    // TODO-perf: the whole store is encoded and synced after every Write
    // that changed it (about 1 ms per thousand entities).
    fn save(&self, device: &DeviceState) {
        let Some(path) = &self.shared.config.state_file else {
            return;
        };
        let Some(saved) = persist::snapshot(device) else {
            return;
        };
        if let Err(e) = persist::save(path, &saved) {
            tracing::error!(path = %path.display(), error = %e, "saving the P4Runtime state failed");
        }
    }

    /// Restores the pipeline and entities saved in `path` by an earlier
    /// run (see [`ServerConfig::state_file`]): the data plane takes over
    /// what it still holds ([`super::Dataplane::restore_pipeline`]) and
    /// every saved entity is written again. `Ok(None)` when there is no
    /// saved state. Call it before serving.
    ///
    /// # Errors
    /// The file is unreadable or of another format ([`RestoreError::Load`]),
    /// or the saved pipeline is refused ([`RestoreError::Pipeline`]).
    pub fn restore(&self, path: &Path) -> Result<Option<RestoreOutcome>, RestoreError> {
        let Some(saved) = persist::load(path)? else {
            return Ok(None);
        };
        let config = saved.config.unwrap_or_default();
        let mut device = lock(&self.shared.device);
        let (index, outcome) = pipeline::restore(
            &mut device,
            self.shared.dataplane.as_ref(),
            &self.shared.config.pipelines,
            config,
            saved.updates,
        )
        .map_err(RestoreError::Pipeline)?;
        *lock(&self.shared.packet_index) = Some(index);
        Ok(Some(outcome))
    }

    fn check_device(&self, device_id: u64) -> Result<(), StoreError> {
        let served = self.shared.config.device_id;
        if device_id != served {
            return Err(StoreError::WrongDevice {
                given: device_id,
                served,
            });
        }
        Ok(())
    }

    fn check_primary(
        &self,
        device_id: u64,
        role: &str,
        election_id: Option<&p4::Uint128>,
    ) -> Result<(), StoreError> {
        let election = election_of(election_id);
        let sessions = lock(&self.shared.sessions);
        if sessions.arbiter.is_primary(device_id, role, election) {
            return Ok(());
        }
        let primary = sessions.arbiter.primary_election(device_id, role);
        let given = election.map_or_else(|| "none".to_string(), |e| e.to_string());
        let detail = match primary {
            Some(p) => format!("election ID {given} is not the primary's ({p})"),
            None => format!("election ID {given}: the role has no primary stream"),
        };
        Err(StoreError::NotPrimary {
            role: role.to_string(),
            detail,
        })
    }
}

/// The RPC bodies; the [`P4Runtime`] methods below time and count them.
impl AgentService {
    fn do_write(&self, req: p4::WriteRequest) -> Result<p4::WriteResponse, Status> {
        self.check_device(req.device_id)?;
        self.check_primary(req.device_id, &req.role, req.election_id.as_ref())?;
        let mut device = lock(&self.shared.device);
        let before = device.store.generation;
        let result = write::write(
            &mut device,
            self.shared.dataplane.as_ref(),
            req.updates,
            req.atomicity,
        );
        if device.store.generation != before {
            self.save(&device);
        }
        result?;
        Ok(p4::WriteResponse {})
    }

    fn do_read(&self, req: p4::ReadRequest) -> Result<Vec<p4::ReadResponse>, Status> {
        self.check_device(req.device_id)?;
        // TODO-security: roles are not enforced; every role reads and
        // writes every entity (role configs are ignored).
        let device = lock(&self.shared.device);
        Ok(read::read(
            &device,
            self.shared.dataplane.as_ref(),
            req.entities,
            self.shared.config.read_chunk,
        )?)
    }

    fn do_set_pipeline(
        &self,
        req: p4::SetForwardingPipelineConfigRequest,
    ) -> Result<p4::SetForwardingPipelineConfigResponse, Status> {
        self.check_device(req.device_id)?;
        self.check_primary(req.device_id, &req.role, req.election_id.as_ref())?;
        let committed = {
            let mut device = lock(&self.shared.device);
            let committed = pipeline::set_pipeline(
                &mut device,
                self.shared.dataplane.as_ref(),
                &self.shared.config.pipelines,
                req.action,
                req.config,
            )?;
            if committed.is_some() {
                self.save(&device);
            }
            committed
        };
        if let Some(index) = committed {
            *lock(&self.shared.packet_index) = Some(index);
        }
        Ok(p4::SetForwardingPipelineConfigResponse {})
    }

    fn do_get_pipeline(
        &self,
        req: p4::GetForwardingPipelineConfigRequest,
    ) -> Result<p4::GetForwardingPipelineConfigResponse, Status> {
        self.check_device(req.device_id)?;
        let device = lock(&self.shared.device);
        let config = pipeline::get_pipeline(&device, req.response_type)?;
        Ok(p4::GetForwardingPipelineConfigResponse {
            config: Some(config),
        })
    }

    /// The device label of the metrics for a request naming `device_id`.
    fn device_label(&self, device_id: u64) -> String {
        if device_id == self.shared.config.device_id {
            device_id.to_string()
        } else {
            "other".to_string()
        }
    }

    /// Counts and times a unary call.
    fn answer<T>(
        &self,
        rpc: &str,
        started: Instant,
        result: Result<T, Status>,
    ) -> Result<Response<T>, Status> {
        self.shared.metrics.observe(rpc, started, &result);
        result.map(Response::new)
    }
}

#[tonic::async_trait]
impl P4Runtime for AgentService {
    async fn write(
        &self,
        request: Request<p4::WriteRequest>,
    ) -> Result<Response<p4::WriteResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let device = self.device_label(req.device_id);
        self.shared.metrics.write_received(&device, &req.updates);
        let result = self.do_write(req);
        if let Err(status) = &result {
            self.shared.metrics.write_failed(&device, status);
        }
        self.answer("Write", started, result)
    }

    type ReadStream = tokio_stream::Iter<std::vec::IntoIter<Result<p4::ReadResponse, Status>>>;

    async fn read(
        &self,
        request: Request<p4::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let started = Instant::now();
        let result = self.do_read(request.into_inner()).map(|responses| {
            let items: Vec<Result<p4::ReadResponse, Status>> =
                responses.into_iter().map(Ok).collect();
            tokio_stream::iter(items)
        });
        self.answer("Read", started, result)
    }

    async fn set_forwarding_pipeline_config(
        &self,
        request: Request<p4::SetForwardingPipelineConfigRequest>,
    ) -> Result<Response<p4::SetForwardingPipelineConfigResponse>, Status> {
        let started = Instant::now();
        let result = self.do_set_pipeline(request.into_inner());
        self.answer("SetForwardingPipelineConfig", started, result)
    }

    async fn get_forwarding_pipeline_config(
        &self,
        request: Request<p4::GetForwardingPipelineConfigRequest>,
    ) -> Result<Response<p4::GetForwardingPipelineConfigResponse>, Status> {
        let started = Instant::now();
        let result = self.do_get_pipeline(request.into_inner());
        self.answer("GetForwardingPipelineConfig", started, result)
    }

    type StreamChannelStream = ReceiverStream<Result<p4::StreamMessageResponse, Status>>;

    async fn stream_channel(
        &self,
        request: Request<tonic::Streaming<p4::StreamMessageRequest>>,
    ) -> Result<Response<Self::StreamChannelStream>, Status> {
        self.shared.metrics.stream_opened("StreamChannel");
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(self.shared.config.stream_queue.max(16));
        let id = self.shared.next_stream.fetch_add(1, Ordering::Relaxed);
        let span = info_span!(
            "p4rt_stream",
            stream = id,
            device_id = field::Empty,
            role = field::Empty,
            election_id = field::Empty,
        );
        tokio::spawn(stream::run(self.shared.clone(), id, inbound, tx).instrument(span));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn capabilities(
        &self,
        _request: Request<p4::CapabilitiesRequest>,
    ) -> Result<Response<p4::CapabilitiesResponse>, Status> {
        let started = Instant::now();
        let result = Ok(p4::CapabilitiesResponse {
            p4runtime_api_version: P4RUNTIME_API_VERSION.to_string(),
            experimental: None,
        });
        self.answer("Capabilities", started, result)
    }
}
