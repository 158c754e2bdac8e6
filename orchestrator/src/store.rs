//! The resource manager's durable state in one SQLite file: nodes,
//! quotas and allocations. Every change is one transaction, written
//! before the in-memory state changes, so a crash loses nothing that was
//! acknowledged and a reopened file holds exactly the acknowledged state.
//!
//! Rows keep their payload as JSON text: the schema stays small and the
//! payload types evolve with serde defaults.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::drm::{Allocation, Quota};
use crate::inventory::Node;

/// Error from the state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("state store: {op}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row does not decode: the file was written by an
    /// incompatible version or edited by hand.
    #[error("state store: {table} row `{key}` does not decode")]
    Corrupt {
        /// Table of the row.
        table: &'static str,
        /// Key of the row.
        key: String,
        /// Decoder error.
        #[source]
        source: serde_json::Error,
    },
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}

const SCHEMA_VERSION: i64 = 1;

/// Handle on the state file.
pub struct Store {
    conn: Connection,
}

/// One change, applied atomically with the others of a `commit` call.
pub enum Change<'a> {
    /// Insert or replace a node.
    PutNode(&'a Node),
    /// Delete a node.
    DeleteNode(&'a str),
    /// Insert or replace a tenant's quota.
    PutQuota(&'a str, &'a Quota),
    /// Delete a tenant's quota.
    DeleteQuota(&'a str),
    /// Insert an allocation.
    PutAllocation(&'a Allocation),
    /// Delete an allocation.
    DeleteAllocation(&'a str),
}

/// Everything stored, as read at open.
pub struct Loaded {
    /// All nodes.
    pub nodes: Vec<Node>,
    /// All quotas by tenant.
    pub quotas: Vec<(String, Quota)>,
    /// All allocations.
    pub allocations: Vec<Allocation>,
}

impl Store {
    /// Opens (or creates) the state file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(sql("open the state file"))?;
        // WAL keeps readers off the writer's back; FULL makes each commit
        // reach the disk before the call returns.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("set WAL mode"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql("set synchronous"))?;
        Self::init(conn)
    }

    /// A store that lives in memory only (simulations and benchmarks).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(sql("open an in-memory store"))?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS quotas (tenant TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS allocations (
                 id TEXT PRIMARY KEY, tenant TEXT NOT NULL, job TEXT NOT NULL,
                 body TEXT NOT NULL);",
        )
        .map_err(sql("create the schema"))?;
        let version: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("read the schema version"))?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    params![SCHEMA_VERSION],
                )
                .map_err(sql("write the schema version"))?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Sqlite {
                    op: "check the schema version",
                    source: rusqlite::Error::InvalidParameterName(format!(
                        "schema version {other}, this build reads {SCHEMA_VERSION}"
                    )),
                })
            }
        }
        Ok(Store { conn })
    }

    /// Reads everything.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            nodes: self.rows("nodes", "SELECT name, body FROM nodes ORDER BY name")?,
            quotas: self.keyed_rows("quotas", "SELECT tenant, body FROM quotas ORDER BY tenant")?,
            allocations: self.rows(
                "allocations",
                "SELECT id, body FROM allocations ORDER BY id",
            )?,
        })
    }

    fn keyed_rows<T: DeserializeOwned>(
        &self,
        table: &'static str,
        query: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(query)
            .map_err(sql("prepare a load query"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql("load rows"))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, body) = row.map_err(sql("read a row"))?;
            let value = serde_json::from_str(&body).map_err(|source| StoreError::Corrupt {
                table,
                key: key.clone(),
                source,
            })?;
            out.push((key, value));
        }
        Ok(out)
    }

    fn rows<T: DeserializeOwned>(
        &self,
        table: &'static str,
        query: &str,
    ) -> Result<Vec<T>, StoreError> {
        Ok(self
            .keyed_rows(table, query)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Applies `changes` in one transaction: all or none.
    pub fn commit(&mut self, changes: &[Change<'_>]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin a transaction"))?;
        for change in changes {
            match change {
                Change::PutNode(n) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO nodes (name, body) VALUES (?1, ?2)",
                        params![n.name, json(n)],
                    )
                    .map_err(sql("write a node"))?;
                }
                Change::DeleteNode(name) => {
                    tx.execute("DELETE FROM nodes WHERE name = ?1", params![name])
                        .map_err(sql("delete a node"))?;
                }
                Change::PutQuota(tenant, q) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO quotas (tenant, body) VALUES (?1, ?2)",
                        params![tenant, json(q)],
                    )
                    .map_err(sql("write a quota"))?;
                }
                Change::DeleteQuota(tenant) => {
                    tx.execute("DELETE FROM quotas WHERE tenant = ?1", params![tenant])
                        .map_err(sql("delete a quota"))?;
                }
                Change::PutAllocation(a) => {
                    tx.execute(
                        "INSERT INTO allocations (id, tenant, job, body) VALUES (?1, ?2, ?3, ?4)",
                        params![a.id, a.tenant, a.job, json(a)],
                    )
                    .map_err(sql("write an allocation"))?;
                }
                Change::DeleteAllocation(id) => {
                    tx.execute("DELETE FROM allocations WHERE id = ?1", params![id])
                        .map_err(sql("delete an allocation"))?;
                }
            }
        }
        tx.commit().map_err(sql("commit a transaction"))
    }
}

fn json<T: Serialize>(value: &T) -> String {
    // Serialising plain structs with string keys cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}
