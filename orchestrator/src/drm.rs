//! Distributed resource manager: the inventory of nodes, what is
//! allocated on them, and per-tenant quotas (hard limits).
//!
//! Every operation either succeeds completely or is refused with a
//! reason and changes nothing, in memory or on disk. Changes are written
//! to the state file before they become visible.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::inventory::{Node, NodeSource};
use crate::resources::{Capacity, Demand, Grant, Shortfall};
use crate::store::{Change, Store, StoreError};

/// Hard limits for one tenant, summed over all its allocations. `None`
/// means no limit in that dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// CPU millicores.
    #[serde(default)]
    pub cpu_milli: Option<u64>,
    /// Memory MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Milli-GPUs over all models.
    #[serde(default)]
    pub gpu_milli: Option<u64>,
    /// TPUs and FPGAs together.
    #[serde(default)]
    pub accelerators: Option<u64>,
}

/// One task's share of an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskGrant {
    /// Task index inside the job.
    pub task: u32,
    /// Node the task runs on.
    pub node: String,
    /// What it took there.
    pub grant: Grant,
}

/// A granted set of resources for one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Unique id, chosen by the caller (e.g. `tenant/job/attempt`).
    pub id: String,
    /// Tenant charged for it.
    pub tenant: String,
    /// Job name.
    pub job: String,
    /// Per-task grants.
    pub tasks: Vec<TaskGrant>,
}

/// What a caller asks the resource manager for.
#[derive(Debug, Clone)]
pub struct AllocationRequest {
    /// Unique id for the allocation.
    pub id: String,
    /// Tenant charged.
    pub tenant: String,
    /// Job name.
    pub job: String,
    /// Per task: node and demand.
    pub tasks: Vec<(u32, String, Demand)>,
}

/// Why a request was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The node is not in the inventory.
    #[error("node `{0}` is not in the inventory")]
    UnknownNode(String),
    /// The node description is invalid.
    #[error("invalid node: {0}")]
    InvalidNode(String),
    /// A task does not fit on its node.
    #[error("task {task} does not fit on node `{node}`: {shortfall}")]
    NoFit {
        /// Task index.
        task: u32,
        /// Node.
        node: String,
        /// First dimension short.
        shortfall: String,
    },
    /// The tenant's quota would be exceeded.
    #[error("tenant `{tenant}` quota on {dimension}: limit {limit}, in use {used}, asked {asked}")]
    Quota {
        /// Tenant.
        tenant: String,
        /// `cpu_milli`, `memory_mib`, `gpu_milli` or `accelerators`.
        dimension: &'static str,
        /// The limit.
        limit: u64,
        /// Already in use.
        used: u64,
        /// Asked by this request.
        asked: u64,
    },
    /// An allocation with this id exists.
    #[error("allocation `{0}` already exists")]
    DuplicateAllocation(String),
    /// No allocation with this id.
    #[error("allocation `{0}` does not exist")]
    UnknownAllocation(String),
    /// The request is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The node still holds allocations.
    #[error("node `{node}` still holds allocations: {allocations:?}")]
    NodeBusy {
        /// Node.
        node: String,
        /// Allocation ids on it.
        allocations: Vec<String>,
    },
}

/// Error from the resource manager.
#[derive(Debug, thiserror::Error)]
pub enum DrmError {
    /// The request was refused; nothing changed.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// The state file failed; nothing changed in memory.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `upsert_node` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// The node is new.
    Added,
    /// The node's description changed.
    Updated,
    /// The same description was already stored.
    Unchanged,
    /// An agent report for a node the topology file pins was ignored.
    KeptDeclared,
}

/// Resource totals of a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU millicores.
    pub cpu_milli: u64,
    /// Memory MiB.
    pub memory_mib: u64,
    /// Milli-GPUs.
    pub gpu_milli: u64,
    /// Accelerators.
    pub accelerators: u64,
}

impl Usage {
    fn add(&mut self, g: &Grant) {
        self.cpu_milli += g.cpu_milli;
        self.memory_mib += g.memory_mib;
        self.gpu_milli += g.gpu_milli;
        self.accelerators += g.accelerators.values().sum::<u64>();
    }

    fn sub(&mut self, g: &Grant) {
        self.cpu_milli = self.cpu_milli.saturating_sub(g.cpu_milli);
        self.memory_mib = self.memory_mib.saturating_sub(g.memory_mib);
        self.gpu_milli = self.gpu_milli.saturating_sub(g.gpu_milli);
        self.accelerators = self
            .accelerators
            .saturating_sub(g.accelerators.values().sum::<u64>());
    }
}

/// A node with what is in use and free on it.
#[derive(Debug, Clone)]
pub struct NodeState {
    /// The node as described.
    pub node: Node,
    /// Sum of grants on it.
    pub used: Capacity,
    /// Capacity minus use (zero where use exceeds a shrunk capacity).
    pub free: Capacity,
}

impl NodeState {
    fn new(node: Node) -> Self {
        let free = node.capacity();
        NodeState {
            node,
            used: Capacity::default(),
            free,
        }
    }

    fn recompute_free(&mut self) {
        let cap = self.node.capacity();
        let mut free = cap.clone();
        free.cpu_milli = cap.cpu_milli.saturating_sub(self.used.cpu_milli);
        free.memory_mib = cap.memory_mib.saturating_sub(self.used.memory_mib);
        for (m, f) in free.gpu_milli.iter_mut() {
            *f = f.saturating_sub(self.used.gpu_milli.get(m).copied().unwrap_or(0));
        }
        for (k, f) in free.accelerators.iter_mut() {
            *f = f.saturating_sub(self.used.accelerators.get(k).copied().unwrap_or(0));
        }
        self.free = free;
    }
}

/// The resource manager. Not thread-safe by itself; the server wraps it
/// in a lock.
pub struct ResourceManager {
    store: Store,
    nodes: BTreeMap<String, NodeState>,
    quotas: BTreeMap<String, Quota>,
    allocations: BTreeMap<String, Allocation>,
    usage: BTreeMap<String, Usage>,
}

impl ResourceManager {
    /// Opens the state file at `path` (created when absent) and rebuilds
    /// the in-memory state from it.
    pub fn open(path: &Path) -> Result<Self, DrmError> {
        Self::from_store(Store::open(path)?)
    }

    /// A resource manager whose state lives in memory only (simulation).
    pub fn in_memory() -> Result<Self, DrmError> {
        Self::from_store(Store::in_memory()?)
    }

    fn from_store(store: Store) -> Result<Self, DrmError> {
        let loaded = store.load()?;
        let mut drm = ResourceManager {
            store,
            nodes: BTreeMap::new(),
            quotas: loaded.quotas.into_iter().collect(),
            allocations: BTreeMap::new(),
            usage: BTreeMap::new(),
        };
        for n in loaded.nodes {
            drm.nodes.insert(n.name.clone(), NodeState::new(n));
        }
        for a in loaded.allocations {
            drm.apply_allocation(&a);
            drm.allocations.insert(a.id.clone(), a);
        }
        Ok(drm)
    }

    fn apply_allocation(&mut self, a: &Allocation) {
        let usage = self.usage.entry(a.tenant.clone()).or_default();
        for t in &a.tasks {
            usage.add(&t.grant);
            if let Some(ns) = self.nodes.get_mut(&t.node) {
                t.grant.add_to(&mut ns.used);
                ns.recompute_free();
            }
        }
    }

    fn unapply_allocation(&mut self, a: &Allocation) {
        if let Some(u) = self.usage.get_mut(&a.tenant) {
            for t in &a.tasks {
                u.sub(&t.grant);
            }
        }
        for t in &a.tasks {
            if let Some(ns) = self.nodes.get_mut(&t.node) {
                let used = &mut ns.used;
                used.cpu_milli = used.cpu_milli.saturating_sub(t.grant.cpu_milli);
                used.memory_mib = used.memory_mib.saturating_sub(t.grant.memory_mib);
                if let Some(m) = &t.grant.gpu_model {
                    if let Some(u) = used.gpu_milli.get_mut(m) {
                        *u = u.saturating_sub(t.grant.gpu_milli);
                    }
                }
                for (k, n) in &t.grant.accelerators {
                    if let Some(u) = used.accelerators.get_mut(k) {
                        *u = u.saturating_sub(*n);
                    }
                }
                ns.recompute_free();
            }
        }
    }

    /// Adds or replaces a node. Called for declared nodes at start and by
    /// the host agents' resource stream. An agent report does not replace
    /// a declared node (the file overrides discovery). A node whose new
    /// capacity is below what is allocated on it is stored as reported;
    /// it simply has nothing free until enough is released.
    pub fn upsert_node(&mut self, node: Node) -> Result<Upsert, DrmError> {
        node.validate().map_err(Refusal::InvalidNode)?;
        let outcome = match self.nodes.get(&node.name) {
            None => Upsert::Added,
            Some(old) if old.node == node => return Ok(Upsert::Unchanged),
            Some(old)
                if old.node.source == NodeSource::Declared && node.source == NodeSource::Agent =>
            {
                return Ok(Upsert::KeptDeclared)
            }
            Some(_) => Upsert::Updated,
        };
        self.store.commit(&[Change::PutNode(&node)])?;
        match self.nodes.get_mut(&node.name) {
            Some(ns) => {
                ns.node = node;
                ns.recompute_free();
                if ns.used.cpu_milli > ns.node.cpu_milli || ns.used.memory_mib > ns.node.memory_mib
                {
                    tracing::warn!(node = %ns.node.name, "node capacity is now below its allocations");
                }
            }
            None => {
                self.nodes.insert(node.name.clone(), NodeState::new(node));
            }
        }
        Ok(outcome)
    }

    /// Removes a node that holds no allocations.
    pub fn remove_node(&mut self, name: &str) -> Result<Node, DrmError> {
        if !self.nodes.contains_key(name) {
            return Err(Refusal::UnknownNode(name.into()).into());
        }
        let holding: Vec<String> = self
            .allocations
            .values()
            .filter(|a| a.tasks.iter().any(|t| t.node == name))
            .map(|a| a.id.clone())
            .collect();
        if !holding.is_empty() {
            return Err(Refusal::NodeBusy {
                node: name.into(),
                allocations: holding,
            }
            .into());
        }
        self.store.commit(&[Change::DeleteNode(name)])?;
        let ns = self
            .nodes
            .remove(name)
            .ok_or_else(|| Refusal::UnknownNode(name.into()))?;
        Ok(ns.node)
    }

    /// Sets (or with `None` removes) a tenant's quota. A quota below the
    /// tenant's current use is accepted: it blocks new allocations until
    /// enough is released.
    pub fn set_quota(&mut self, tenant: &str, quota: Option<Quota>) -> Result<(), DrmError> {
        if tenant.is_empty() {
            return Err(Refusal::InvalidRequest("tenant name is empty".into()).into());
        }
        match quota {
            Some(q) => {
                self.store.commit(&[Change::PutQuota(tenant, &q)])?;
                self.quotas.insert(tenant.into(), q);
            }
            None => {
                self.store.commit(&[Change::DeleteQuota(tenant)])?;
                self.quotas.remove(tenant);
            }
        }
        Ok(())
    }

    /// Grants every task of the request, or refuses the whole request.
    pub fn allocate(&mut self, req: AllocationRequest) -> Result<Allocation, DrmError> {
        if req.id.is_empty() || req.tenant.is_empty() {
            return Err(
                Refusal::InvalidRequest("allocation id and tenant must be set".into()).into(),
            );
        }
        if req.tasks.is_empty() {
            return Err(
                Refusal::InvalidRequest("an allocation needs at least one task".into()).into(),
            );
        }
        if self.allocations.contains_key(&req.id) {
            return Err(Refusal::DuplicateAllocation(req.id).into());
        }
        // Resolve every task against a scratch copy of the free resources,
        // so that tasks sharing a node are checked together.
        let mut scratch: BTreeMap<&str, Capacity> = BTreeMap::new();
        let mut tasks = Vec::with_capacity(req.tasks.len());
        let mut asked = Usage::default();
        for (task, node, demand) in &req.tasks {
            if demand.is_empty() {
                return Err(
                    Refusal::InvalidRequest(format!("task {task} asks for nothing")).into(),
                );
            }
            let ns = self
                .nodes
                .get(node.as_str())
                .ok_or_else(|| Refusal::UnknownNode(node.clone()))?;
            let free = scratch
                .entry(ns.node.name.as_str())
                .or_insert_with(|| ns.free.clone());
            let grant = demand
                .grant_from(free)
                .map_err(|s: Shortfall| Refusal::NoFit {
                    task: *task,
                    node: node.clone(),
                    shortfall: s.to_string(),
                })?;
            grant.take_from(free);
            asked.add(&grant);
            tasks.push(TaskGrant {
                task: *task,
                node: node.clone(),
                grant,
            });
        }
        self.check_quota(&req.tenant, &asked)?;
        let alloc = Allocation {
            id: req.id,
            tenant: req.tenant,
            job: req.job,
            tasks,
        };
        self.store.commit(&[Change::PutAllocation(&alloc)])?;
        self.apply_allocation(&alloc);
        self.allocations.insert(alloc.id.clone(), alloc.clone());
        Ok(alloc)
    }

    fn check_quota(&self, tenant: &str, asked: &Usage) -> Result<(), Refusal> {
        let Some(q) = self.quotas.get(tenant) else {
            return Ok(());
        };
        let used = self.usage.get(tenant).cloned().unwrap_or_default();
        let dims = [
            ("cpu_milli", q.cpu_milli, used.cpu_milli, asked.cpu_milli),
            (
                "memory_mib",
                q.memory_mib,
                used.memory_mib,
                asked.memory_mib,
            ),
            ("gpu_milli", q.gpu_milli, used.gpu_milli, asked.gpu_milli),
            (
                "accelerators",
                q.accelerators,
                used.accelerators,
                asked.accelerators,
            ),
        ];
        for (dimension, limit, used, asked) in dims {
            if let Some(limit) = limit {
                if asked > 0 && used + asked > limit {
                    return Err(Refusal::Quota {
                        tenant: tenant.into(),
                        dimension,
                        limit,
                        used,
                        asked,
                    });
                }
            }
        }
        Ok(())
    }

    /// Releases an allocation and returns it.
    pub fn release(&mut self, id: &str) -> Result<Allocation, DrmError> {
        if !self.allocations.contains_key(id) {
            return Err(Refusal::UnknownAllocation(id.into()).into());
        }
        self.store.commit(&[Change::DeleteAllocation(id)])?;
        let alloc = self
            .allocations
            .remove(id)
            .ok_or_else(|| Refusal::UnknownAllocation(id.into()))?;
        self.unapply_allocation(&alloc);
        Ok(alloc)
    }

    /// A node and its use.
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.get(name)
    }

    /// All nodes in name order.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.values()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// An allocation by id.
    pub fn allocation(&self, id: &str) -> Option<&Allocation> {
        self.allocations.get(id)
    }

    /// All allocations in id order.
    pub fn allocations(&self) -> impl Iterator<Item = &Allocation> {
        self.allocations.values()
    }

    /// A tenant's quota.
    pub fn quota(&self, tenant: &str) -> Option<&Quota> {
        self.quotas.get(tenant)
    }

    /// What a tenant holds now.
    pub fn usage(&self, tenant: &str) -> Usage {
        self.usage.get(tenant).cloned().unwrap_or_default()
    }
}
