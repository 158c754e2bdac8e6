//! The orchestrator inside the controller: the API's [`Orchestrator`]
//! backed by the `solyx-orchestrator` resource manager and network-aware
//! placer, over one SQLite file.
//!
//! - **Inventory**: the `node:` blocks of the topology's host devices,
//!   merged with what each host's agent reports on its node resources
//!   Watch stream (the address is the device's `address`); declared
//!   values win ([`inventory::merge`]). A report reaches `GET /v1/nodes`
//!   as soon as it arrives.
//! - **Network**: [`network::TopologyNetwork`], fed by the running
//!   controller through the [`NetworkFeed`] that [`start`] returns.
//! - **Energy**: with [`WorkloadsConfig::energy`], the price and carbon
//!   series of a folder of files ([`energy::EnergyFeed`]), read again when
//!   they change; without, the energy terms are 0.
//! - **Advice**: [`advice::Advisor`] proposes moves of running jobs when
//!   prices, carbon or congestion changed enough since they were placed.
//! - **Jobs**: each task of a submitted job is placed by the network-aware
//!   strategy (its copies as one gang, with the task's traffic pattern)
//!   on what the previous tasks left free; the whole job is then granted
//!   as one allocation, or refused with nothing changed. Jobs, their
//!   placements and the allocations live in the SQLite file and survive a
//!   restart.
//!
//! ```no_run
//! # async fn demo(topo: &solyx::topology::Topology) -> Result<(), solyx::workloads::WorkloadsError> {
//! let config = solyx::workloads::WorkloadsConfig::new("orchestrator.db");
//! let (orchestrator, feed) = solyx::workloads::start(&config, topo)?;
//! // orchestrator.attach(api::ApiState::new(..)); then, from the control
//! // loop: feed.update(&topology, &controller.links());
//! # let _ = (orchestrator, feed); Ok(()) }
//! ```

pub mod advice;
pub mod energy;
pub mod inventory;
pub mod network;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use solyx_orchestrator::cost::Weights;
use solyx_orchestrator::drm::{
    Allocation, AllocationRequest, DrmError, Refusal, ResourceManager, TaskGrant, Upsert,
};
use solyx_orchestrator::energy::EnergySignals;
use solyx_orchestrator::job as ojob;
use solyx_orchestrator::migration::{self, MigrationPolicy, RunningJob, Trigger};
use solyx_orchestrator::placement::{NodeFree, Placer, Strategy};
use solyx_orchestrator::resources::{Capacity, Demand};

use crate::api::ApiState;
use crate::node::NodeClient;
use crate::orchestrator::{
    Accelerators, Job, JobSpec, JobState, Node, Orchestrator, OrchestratorError, Placement,
    TaskSpec, TrafficPattern,
};
use crate::state::InvalidField;
use crate::topology::Topology;
use advice::{AdviceSaving, AdviceTrigger, Advisor, MoveAdvice};
use energy::{EnergyConfig, EnergyFeed};
pub use network::NetworkFeed;
use network::TopologyNetwork;

/// How the orchestrator runs.
#[derive(Debug, Clone)]
pub struct WorkloadsConfig {
    /// The SQLite file of nodes, allocations and jobs (created if absent).
    pub db: PathBuf,
    /// Paths per host pair in the network view (0: the routing default).
    pub paths_per_pair: usize,
    /// Cost weights of the placer.
    pub weights: Weights,
    /// Read the agents' node resources streams.
    pub watch_agents: bool,
    /// Wait between two attempts to reach an agent.
    pub agent_retry: Duration,
    /// A node whose agent has said nothing for this long is not ready
    /// (agents send a heartbeat every 10 s by default).
    pub agent_stale_after: Duration,
    /// Energy price and carbon series with the site-to-zone map; `None`:
    /// no energy data, the price and carbon terms are 0.
    pub energy: Option<EnergyConfig>,
    /// When migration advice proposes a move.
    pub advice_policy: MigrationPolicy,
    /// Run time left that advice counts savings over when the caller does
    /// not say (the API's jobs carry no expected duration).
    // TODO-completeness: the API's job spec has no expected run time, so
    // advice cannot count savings over what is really left of a job; the
    // caller's `remaining_s` or this horizon stands in for it.
    pub advice_horizon: Duration,
}

impl WorkloadsConfig {
    /// The defaults, with the state in `db`.
    #[must_use]
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            paths_per_pair: 0,
            weights: Weights::default(),
            watch_agents: true,
            agent_retry: Duration::from_secs(1),
            agent_stale_after: Duration::from_secs(35),
            energy: None,
            advice_policy: MigrationPolicy::default(),
            advice_horizon: Duration::from_secs(3600),
        }
    }
}

/// Why the orchestrator could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadsError {
    /// The resource manager's state could not be opened.
    #[error("orchestrator state {path}")]
    Drm {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: DrmError,
    },
    /// The jobs table could not be opened or read.
    #[error("orchestrator jobs in {path}: {what}")]
    Jobs {
        /// The file.
        path: String,
        /// What failed.
        what: String,
    },
    /// The energy files or the site map are unusable.
    #[error("{0}")]
    Energy(String),
    /// No Tokio runtime to run the agent streams on.
    #[error("the orchestrator must start inside a Tokio runtime (it watches the agents)")]
    NoRuntime,
}

/// A job as stored: the job, its placements, its order of submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobRecord {
    seq: i64,
    job: Job,
    placements: Vec<Placement>,
}

/// The jobs table, in the same file as the resource manager's state.
struct JobStore {
    conn: Connection,
}

impl JobStore {
    fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS controller_jobs (
                 seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);",
        )?;
        Ok(Self { conn })
    }

    fn load(&self) -> Result<Vec<JobRecord>, String> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, body FROM controller_jobs ORDER BY seq")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row.map_err(|e| e.to_string())?;
            let rec: JobRecord = serde_json::from_str(&body)
                .map_err(|e| format!("job {id:?} does not decode: {e}"))?;
            out.push(rec);
        }
        Ok(out)
    }

    fn put(&self, rec: &JobRecord) -> Result<(), String> {
        let body = serde_json::to_string(rec).map_err(|e| e.to_string())?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO controller_jobs (seq, id, body) VALUES (?1, ?2, ?3)",
                params![rec.seq, rec.job.id, body],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

struct State {
    drm: ResourceManager,
    jobs: JobStore,
    records: Vec<JobRecord>,
}

/// What the agent streams say about readiness.
#[derive(Default)]
struct Agents {
    connected: HashSet<String>,
    last_report: HashMap<String, Instant>,
    /// The latest report of each host, merged again when it changes.
    reports: HashMap<String, crate::node::Node>,
}

struct Inner {
    state: Mutex<State>,
    network: Arc<TopologyNetwork>,
    /// The energy files, when configured.
    energy: Option<EnergyFeed>,
    /// What placement reads without energy files.
    no_energy: Arc<EnergySignals>,
    weights: Weights,
    policy: MigrationPolicy,
    horizon_s: f64,
    hosts: BTreeMap<String, inventory::Host>,
    agents: Mutex<Agents>,
    stale_after: Duration,
    /// Dropped with the orchestrator: the agent tasks see it and end.
    _stop: tokio::sync::watch::Sender<()>,
}

/// The API's [`Orchestrator`] and [`Advisor`] over the resource manager
/// and the placer.
pub struct Workloads {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn internal(e: impl std::fmt::Display) -> OrchestratorError {
    OrchestratorError::Internal(e.to_string().into())
}

/// Starts the orchestrator over `topology`: opens (or creates) the state
/// file, loads the declared nodes, starts one Watch stream per host agent
/// (when configured), and returns the orchestrator for the API and the
/// feed of its network view for the control loop.
///
/// # Errors
/// [`WorkloadsError`]: the state file cannot be opened or read, or no
/// Tokio runtime is running while agents are to be watched.
pub fn start(
    config: &WorkloadsConfig,
    topology: &Topology,
) -> Result<(Arc<Workloads>, NetworkFeed), WorkloadsError> {
    let w = Workloads::open(config, topology)?;
    let feed = NetworkFeed::new(w.inner.network.clone());
    Ok((Arc::new(w), feed))
}

/// [`start`], with a Kubernetes scheduler extender over the same state
/// (see [`Workloads::extender`]).
///
/// # Errors
/// As [`start`].
pub fn start_with_extender(
    config: &WorkloadsConfig,
    topology: &Topology,
) -> Result<
    (
        Arc<Workloads>,
        NetworkFeed,
        solyx_orchestrator::extender::Extender,
    ),
    WorkloadsError,
> {
    let w = Workloads::open(config, topology)?;
    let feed = NetworkFeed::new(w.inner.network.clone());
    let extender = w.extender();
    Ok((Arc::new(w), feed, extender))
}

impl solyx_orchestrator::extender::DrmSource for Inner {
    fn with_drm(&self, f: &mut dyn FnMut(&solyx_orchestrator::drm::ResourceManager)) {
        f(&lock(&self.state).drm);
    }
}

impl Workloads {
    /// A Kubernetes scheduler extender that filters and scores nodes with
    /// this orchestrator's inventory, network view and energy signals, so
    /// that pods land where `solyx job submit` would place them.
    #[must_use]
    pub fn extender(&self) -> solyx_orchestrator::extender::Extender {
        // TODO-completeness: the extender keeps the energy signals in force
        // when it is made; energy files changed later reach `solyx job
        // submit` and the advice, not the extender's scores.
        solyx_orchestrator::extender::Extender::new(
            self.inner.clone(),
            self.inner.network.clone(),
            self.inner.energy(),
            self.inner.weights,
        )
    }

    /// Serves this orchestrator through `state`: nodes, jobs and
    /// placements, and migration advice.
    #[must_use]
    pub fn attach(self: &Arc<Self>, state: ApiState) -> ApiState {
        state
            .with_orchestrator(self.clone())
            .with_advisor(self.clone())
    }

    /// Opens the orchestrator (see [`start`]).
    ///
    /// # Errors
    /// As [`start`].
    pub fn open(config: &WorkloadsConfig, topology: &Topology) -> Result<Self, WorkloadsError> {
        let path = config.db.display().to_string();
        let runtime = if config.watch_agents {
            Some(tokio::runtime::Handle::try_current().map_err(|_| WorkloadsError::NoRuntime)?)
        } else {
            None
        };
        let drm = ResourceManager::open(&config.db).map_err(|source| WorkloadsError::Drm {
            path: path.clone(),
            source,
        })?;
        let jobs = JobStore::open(&config.db).map_err(|e| WorkloadsError::Jobs {
            path: path.clone(),
            what: e.to_string(),
        })?;
        let records = jobs.load().map_err(|what| WorkloadsError::Jobs {
            path: path.clone(),
            what,
        })?;
        let hosts = inventory::hosts(topology);
        let mut state = State { drm, jobs, records };
        reconcile(&mut state);
        load_declared(&mut state, &hosts);
        let energy = match &config.energy {
            Some(e) => {
                let sites: std::collections::BTreeSet<String> = state
                    .drm
                    .nodes()
                    .map(|n| n.node.site.clone())
                    .chain(hosts.values().filter_map(|h| h.site.clone()))
                    .collect();
                Some(EnergyFeed::open(e.clone(), &sites).map_err(WorkloadsError::Energy)?)
            }
            None => None,
        };
        let (stop, stopped) = tokio::sync::watch::channel(());
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            network: Arc::new(TopologyNetwork::new(topology, config.paths_per_pair)),
            energy,
            no_energy: Arc::new(EnergySignals::new()),
            weights: config.weights,
            policy: config.advice_policy,
            horizon_s: config.advice_horizon.as_secs_f64(),
            hosts,
            agents: Mutex::new(Agents::default()),
            stale_after: config.agent_stale_after,
            _stop: stop,
        });
        if let Some(rt) = runtime {
            // TODO-completeness: the hosts are those of the topology at start;
            // a host added to a reloaded topology is watched (and its
            // declared block read) only after a restart.
            for host in inner.hosts.values() {
                let Some(addr) = host.address.clone() else {
                    continue;
                };
                rt.spawn(watch_agent(
                    Arc::downgrade(&inner),
                    host.name.clone(),
                    addr,
                    config.agent_retry,
                    stopped.clone(),
                ));
            }
        }
        Ok(Self { inner })
    }

    /// The feed of this orchestrator's network view.
    #[must_use]
    pub fn network_feed(&self) -> NetworkFeed {
        NetworkFeed::new(self.inner.network.clone())
    }
}

/// Makes the jobs and the allocations agree after a stop: an allocation
/// without a running job is released (the controller stopped between the
/// two writes); a running job without its allocation failed.
fn reconcile(state: &mut State) {
    let running: HashSet<String> = state
        .records
        .iter()
        .filter(|r| r.job.state == JobState::Running)
        .map(|r| r.job.id.clone())
        .collect();
    let orphans: Vec<String> = state
        .drm
        .allocations()
        .filter(|a| !running.contains(&a.id))
        .map(|a| a.id.clone())
        .collect();
    for id in orphans {
        tracing::warn!(allocation = %id, "releasing an allocation no job holds");
        if let Err(e) = state.drm.release(&id) {
            tracing::error!(allocation = %id, error = %e, "cannot release");
        }
    }
    for i in 0..state.records.len() {
        let r = &state.records[i];
        if r.job.state == JobState::Running && state.drm.allocation(&r.job.id).is_none() {
            let mut rec = r.clone();
            rec.job.state = JobState::Failed;
            rec.job.reason = Some("its allocation was lost while the controller was down".into());
            if let Err(e) = state.jobs.put(&rec) {
                tracing::error!(job = %rec.job.id, error = %e, "cannot record the failure");
            }
            state.records[i] = rec;
        }
    }
}

/// Puts the declared nodes in the inventory, and takes out nodes the
/// topology no longer has (unless they hold allocations).
fn load_declared(state: &mut State, hosts: &BTreeMap<String, inventory::Host>) {
    for host in hosts.values() {
        if let Some(node) = inventory::merge(host, None) {
            if let Err(e) = state.drm.upsert_node(node) {
                tracing::error!(node = %host.name, error = %e, "declared node refused");
            }
        }
    }
    let gone: Vec<String> = state
        .drm
        .nodes()
        .map(|n| n.node.name.clone())
        .filter(|n| !hosts.contains_key(n))
        .collect();
    for name in gone {
        match state.drm.remove_node(&name) {
            Ok(_) => tracing::info!(node = %name, "node no longer in the topology; removed"),
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "node no longer in the topology kept")
            }
        }
    }
}

/// Reads one agent's node stream until the orchestrator is dropped,
/// reconnecting after `retry` when the agent cannot be reached.
async fn watch_agent(
    inner: Weak<Inner>,
    host: String,
    addr: String,
    retry: Duration,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let mut warned = false;
    loop {
        let session = async {
            let mut client = NodeClient::connect(&addr).await?;
            let mut updates = client.watch().await?;
            while let Some(update) = updates.next().await {
                let Some(node) = update?.node else { continue };
                let Some(inner) = inner.upgrade() else {
                    return Ok(());
                };
                let host = host.clone();
                // SQLite writes wait on the disk: off the async threads.
                let _ = tokio::task::spawn_blocking(move || inner.report(&host, node)).await;
            }
            Ok::<(), crate::node::NodeClientError>(())
        };
        let outcome = tokio::select! {
            r = session => r,
            _ = stop.changed() => return,
        };
        let Some(i) = inner.upgrade() else { return };
        i.disconnected(&host);
        drop(i);
        match outcome {
            Ok(()) => tracing::info!(node = %host, %addr, "node stream ended; reconnecting"),
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(node = %host, error = %e, "cannot read the node's agent; retrying");
            }
            Err(e) => tracing::debug!(node = %host, error = %e, "agent still unreachable"),
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            _ = stop.changed() => return,
        }
    }
}

impl Inner {
    /// The energy signals in force (empty without energy files).
    fn energy(&self) -> Arc<EnergySignals> {
        self.energy
            .as_ref()
            .map_or_else(|| self.no_energy.clone(), EnergyFeed::current)
    }

    /// An agent report: merged with the declared values and stored.
    fn report(&self, host: &str, reported: crate::node::Node) {
        let Some(h) = self.hosts.get(host) else {
            return;
        };
        {
            let mut a = lock(&self.agents);
            a.connected.insert(host.to_string());
            a.last_report.insert(host.to_string(), Instant::now());
            if a.reports.get(host) == Some(&reported) {
                return;
            }
            a.reports.insert(host.to_string(), reported.clone());
        }
        let Some(node) = inventory::merge(h, Some(&reported)) else {
            return;
        };
        match lock(&self.state).drm.upsert_node(node) {
            Ok(Upsert::Added | Upsert::Updated) => {
                tracing::info!(node = host, "node resources changed");
            }
            Ok(Upsert::Unchanged | Upsert::KeptDeclared) => {}
            Err(e) => tracing::warn!(node = host, error = %e, "agent report refused"),
        }
    }

    fn disconnected(&self, host: &str) {
        lock(&self.agents).connected.remove(host);
    }

    fn ready(&self, host: &str) -> bool {
        let a = lock(&self.agents);
        a.connected.contains(host)
            && a.last_report
                .get(host)
                .is_some_and(|t| t.elapsed() < self.stale_after)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        f64::MAX
    }
}

/// The placer's job for one task of an API job: its copies as a gang.
fn task_job(spec: &JobSpec, tenant: &str, t: &TaskSpec) -> ojob::JobSpec {
    let traffic = t
        .traffic
        .as_ref()
        .map_or_else(ojob::Traffic::default, |tr| {
            #[allow(clippy::cast_precision_loss)]
            ojob::Traffic {
                pattern: match tr.pattern {
                    TrafficPattern::None => ojob::TrafficPattern::None,
                    TrafficPattern::RingAllreduce => ojob::TrafficPattern::RingAllreduce,
                    TrafficPattern::ParameterServer => ojob::TrafficPattern::ParameterServer,
                    TrafficPattern::Pipeline => ojob::TrafficPattern::Pipeline,
                },
                bytes_per_step: tr.bytes_per_step,
                step_time_s: tr.step_time_ms as f64 / 1e3,
                servers: tr.servers,
            }
        });
    ojob::JobSpec {
        name: format!("{}/{}", spec.name, t.name),
        tenant: tenant.to_string(),
        tasks: t.replicas,
        gang: true,
        resources: Demand {
            cpu_milli: u64::from(t.cpus) * 1000,
            memory_mib: t.memory_mib,
            gpu_milli: u64::from(t.gpus) * 1000,
            gpu_models: t.gpu_model.iter().cloned().collect(),
            accelerators: BTreeMap::new(),
        },
        traffic,
        constraints: ojob::Constraints::default(),
        duration_s: 3600.0,
    }
}

impl Workloads {
    fn place(&self, st: &mut State, spec: &JobSpec) -> Result<JobRecord, OrchestratorError> {
        let tenant = spec.tenant.clone().unwrap_or_else(|| "default".into());
        let seq = st.records.last().map_or(1, |r| r.seq + 1);
        let id = format!("job-{seq}");
        let energy = self.inner.energy();
        let placer = Placer::new(self.inner.network.as_ref(), &energy, self.inner.weights);
        let nodes: Vec<&solyx_orchestrator::inventory::Node> =
            st.drm.nodes().map(|n| &n.node).collect();
        let mut free: Vec<Capacity> = st.drm.nodes().map(|n| n.free.clone()).collect();
        let mut request = AllocationRequest {
            id: id.clone(),
            tenant: tenant.clone(),
            job: spec.name.clone(),
            tasks: Vec::new(),
        };
        let mut placements = Vec::new();
        let now = unix_now();
        for (i, t) in spec.tasks.iter().enumerate() {
            if let Some(model) = &t.gpu_model {
                if !nodes
                    .iter()
                    .any(|n| n.gpus.iter().any(|g| &g.model == model))
                {
                    return Err(InvalidField::new(
                        format!("tasks[{i}].gpu_model"),
                        format!("no node has GPU model {model:?}"),
                    )
                    .into());
                }
            }
            let job = task_job(spec, &tenant, t);
            let offer: Vec<NodeFree<'_>> = nodes
                .iter()
                .zip(&free)
                .map(|(n, f)| NodeFree {
                    node: n,
                    free: Cow::Borrowed(f),
                })
                .collect();
            let p = placer
                .place(&job, &offer, now, Strategy::NetworkAware)
                .map_err(|e| InvalidField::new(format!("tasks[{i}]"), e.to_string()))?;
            drop(offer);
            let breakdown: BTreeMap<String, f64> = p
                .cost
                .terms
                .iter()
                .map(|t| (t.name.to_string(), finite(t.contribution)))
                .collect();
            let runners_up = p
                .explanation
                .alternatives
                .iter()
                .map(|a| format!("{} (+{:.4})", a.candidate, a.worse_by))
                .collect::<Vec<_>>()
                .join(", ");
            for (r, node) in p.nodes.iter().enumerate() {
                let ix = nodes
                    .iter()
                    .position(|n| &n.name == node)
                    .ok_or_else(|| internal(format!("placer chose unknown node {node}")))?;
                job.resources.take_from_checked(&mut free[ix], node)?;
                let task_idx = u32::try_from(request.tasks.len()).map_err(internal)?;
                request
                    .tasks
                    .push((task_idx, node.clone(), job.resources.clone()));
                let why = p.explanation.tasks.get(r);
                let mut explanation = p.explanation.summary.clone();
                if let Some(w) = why {
                    explanation.push_str(&format!("; leaf {}: {}", w.leaf, w.reason));
                }
                if !runners_up.is_empty() {
                    explanation.push_str(&format!("; runners-up: {runners_up}"));
                }
                placements.push(Placement {
                    job: id.clone(),
                    task: t.name.clone(),
                    replica: u32::try_from(r).map_err(internal)?,
                    node: node.clone(),
                    cost: finite(p.cost.total),
                    cost_breakdown: breakdown.clone(),
                    explanation,
                });
            }
        }
        drop(nodes);
        st.drm.allocate(request).map_err(|e| match e {
            DrmError::Refused(r @ Refusal::Quota { .. }) => {
                InvalidField::new("tenant", r.to_string()).into()
            }
            DrmError::Refused(r) => InvalidField::new("tasks", r.to_string()).into(),
            DrmError::Store(s) => internal(s),
        })?;
        Ok(JobRecord {
            seq,
            job: Job {
                id,
                spec: spec.clone(),
                // TODO-completeness: no executor starts the tasks yet; "running"
                // means placed and granted.
                state: JobState::Running,
                reason: None,
            },
            placements,
        })
    }
}

/// Taking one copy's demand out of what is free on a node, for the next
/// task of the same job.
trait TakeChecked {
    fn take_from_checked(&self, free: &mut Capacity, node: &str) -> Result<(), OrchestratorError>;
}

impl TakeChecked for Demand {
    fn take_from_checked(&self, free: &mut Capacity, node: &str) -> Result<(), OrchestratorError> {
        let grant = self
            .grant_from(free)
            .map_err(|s| internal(format!("placer overcommitted node {node}: {s}")))?;
        grant.take_from(free);
        Ok(())
    }
}

fn api_node(
    ns: &solyx_orchestrator::drm::NodeState,
    ready: bool,
    allocations: Vec<String>,
) -> Node {
    let n = &ns.node;
    let whole = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let mut accelerators: Vec<Accelerators> = n
        .gpus
        .iter()
        .map(|g| Accelerators {
            kind: "gpu".into(),
            model: g.model.clone(),
            count: g.count,
            free: whole(ns.free.gpu_milli.get(&g.model).copied().unwrap_or(0) / 1000).min(g.count),
            memory_mib: (g.memory_mib > 0).then_some(g.memory_mib),
        })
        .collect();
    accelerators.extend(n.accelerators.iter().map(|a| {
        Accelerators {
            kind: a.kind.to_string(),
            model: a.model.clone(),
            count: a.count,
            free: ns
                .free
                .accelerators
                .iter()
                .find(|(k, _)| k.kind == a.kind && k.model == a.model)
                .map_or(0, |(_, v)| whole(*v))
                .min(a.count),
            memory_mib: None,
        }
    }));
    let cores = |milli: u64| u32::try_from(milli / 1000).unwrap_or(u32::MAX);
    Node {
        name: n.name.clone(),
        site: Some(n.site.clone()),
        cpus: cores(n.cpu_milli),
        cpus_free: cores(ns.free.cpu_milli),
        memory_mib: n.memory_mib,
        memory_free_mib: ns.free.memory_mib,
        accelerators,
        allocations,
        ready,
    }
}

impl Orchestrator for Workloads {
    fn nodes(&self) -> Result<Vec<Node>, OrchestratorError> {
        let st = lock(&self.inner.state);
        let mut held: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for a in st.drm.allocations() {
            for t in &a.tasks {
                let ids = held.entry(t.node.as_str()).or_default();
                if !ids.contains(&a.id) {
                    ids.push(a.id.clone());
                }
            }
        }
        Ok(st
            .drm
            .nodes()
            .map(|ns| {
                let ids = held.get(ns.node.name.as_str()).cloned().unwrap_or_default();
                api_node(ns, self.inner.ready(&ns.node.name), ids)
            })
            .collect())
    }

    fn submit(&self, spec: JobSpec) -> Result<Job, OrchestratorError> {
        spec.validate()?;
        let mut st = lock(&self.inner.state);
        if st.records.iter().any(|r| r.job.spec.name == spec.name) {
            return Err(OrchestratorError::Exists(spec.name));
        }
        let rec = self.place(&mut st, &spec)?;
        if let Err(e) = st.jobs.put(&rec) {
            // Nothing acknowledged: give the resources back.
            if let Err(r) = st.drm.release(&rec.job.id) {
                tracing::error!(job = %rec.job.id, error = %r, "cannot release after a failed write");
            }
            return Err(internal(e));
        }
        let job = rec.job.clone();
        st.records.push(rec);
        Ok(job)
    }

    fn jobs(&self) -> Result<Vec<Job>, OrchestratorError> {
        let st = lock(&self.inner.state);
        Ok(st.records.iter().map(|r| r.job.clone()).collect())
    }

    fn job(&self, id: &str) -> Result<Job, OrchestratorError> {
        let st = lock(&self.inner.state);
        st.records
            .iter()
            .find(|r| r.job.id == id)
            .map(|r| r.job.clone())
            .ok_or_else(|| OrchestratorError::NotFound(id.into()))
    }

    fn placements(&self, job: Option<&str>) -> Result<Vec<Placement>, OrchestratorError> {
        let st = lock(&self.inner.state);
        match job {
            Some(id) => st
                .records
                .iter()
                .find(|r| r.job.id == id)
                .map(|r| r.placements.clone())
                .ok_or_else(|| OrchestratorError::NotFound(id.into())),
            None => Ok(st
                .records
                .iter()
                .flat_map(|r| r.placements.iter().cloned())
                .collect()),
        }
    }
}

/// The cost terms of a breakdown by name, as the API shows them.
fn terms(c: &solyx_orchestrator::cost::CostBreakdown) -> BTreeMap<String, f64> {
    c.terms
        .iter()
        .map(|t| (t.name.to_string(), finite(t.contribution)))
        .collect()
}

/// The sites of `nodes`, each once, in order of first appearance.
fn sites_of(drm: &ResourceManager, nodes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in nodes {
        let site = drm.node(n).map_or_else(
            || network::DEFAULT_SITE.to_string(),
            |s| s.node.site.clone(),
        );
        if !out.contains(&site) {
            out.push(site);
        }
    }
    out
}

impl Advisor for Workloads {
    fn advice(
        &self,
        job: Option<&str>,
        remaining_s: Option<f64>,
    ) -> Result<Vec<MoveAdvice>, OrchestratorError> {
        let remaining = remaining_s.unwrap_or(self.inner.horizon_s);
        let energy = self.inner.energy();
        let st = lock(&self.inner.state);
        if let Some(id) = job {
            if !st.records.iter().any(|r| r.job.id == id) {
                return Err(OrchestratorError::NotFound(id.into()));
            }
        }
        let now = unix_now();
        let mut out = Vec::new();
        let running = st
            .records
            .iter()
            .filter(|r| r.job.state == JobState::Running && job.is_none_or(|id| r.job.id == id));
        for rec in running {
            let Some(alloc) = st.drm.allocation(&rec.job.id) else {
                continue;
            };
            let spec = &rec.job.spec;
            let tenant = spec.tenant.clone().unwrap_or_else(|| "default".into());
            // The allocation numbers the copies of all tasks in a row; each
            // task is advised on its own, its copies numbered from 0, the
            // other tasks staying where they hold resources.
            let mut first = 0u32;
            for t in &spec.tasks {
                let own = first..first.saturating_add(t.replicas);
                first = own.end;
                let part = Allocation {
                    id: alloc.id.clone(),
                    tenant: alloc.tenant.clone(),
                    job: alloc.job.clone(),
                    tasks: alloc
                        .tasks
                        .iter()
                        .filter(|g| own.contains(&g.task))
                        .map(|g| TaskGrant {
                            task: g.task - own.start,
                            ..g.clone()
                        })
                        .collect(),
                };
                let task_spec = task_job(spec, &tenant, t);
                let jobs = [RunningJob {
                    spec: &task_spec,
                    allocation: &part,
                    remaining_s: remaining,
                }];
                let advised = migration::advise(
                    &st.drm,
                    self.inner.network.as_ref(),
                    &energy,
                    self.inner.weights,
                    now,
                    &jobs,
                    &self.inner.policy,
                );
                for a in advised {
                    out.push(MoveAdvice {
                        job: rec.job.id.clone(),
                        name: spec.name.clone(),
                        task: t.name.clone(),
                        from_sites: sites_of(&st.drm, &a.from),
                        to_sites: sites_of(&st.drm, &a.to),
                        moved: u32::try_from(a.moved_tasks).unwrap_or(u32::MAX),
                        triggers: a
                            .triggers
                            .iter()
                            .map(|t| match t {
                                Trigger::Price => AdviceTrigger::Price,
                                Trigger::Carbon => AdviceTrigger::Carbon,
                                Trigger::Congestion => AdviceTrigger::Congestion,
                            })
                            .collect(),
                        saving: AdviceSaving {
                            usd: finite(a.saving.usd),
                            kg_co2: finite(a.saving.kg_co2),
                            time_s: finite(a.saving.time_s),
                            relative_cost: finite(a.saving.relative_cost),
                        },
                        remaining_s: remaining,
                        cost_now: finite(a.current.total),
                        cost_after: finite(a.proposed.total),
                        cost_breakdown_now: terms(&a.current),
                        cost_breakdown_after: terms(&a.proposed),
                        usd_per_hour: [a.current.usd_per_hour, a.proposed.usd_per_hour],
                        kg_co2_per_hour: [a.current.kg_co2_per_hour, a.proposed.kg_co2_per_hour],
                        explanation: a.explanation,
                        from: a.from,
                        to: a.to,
                    });
                }
            }
        }
        Ok(out)
    }
}
