//! Intents: what an operator asks of the network between two hosts
//! (latency bound, bandwidth floor, devices to avoid), kept durably in an
//! embedded SQLite file so that a controller restart keeps them.
//!
//! The API writes intents; the routing loop reads them and reports back
//! whether each is met ([`IntentStatus`]). The status lives in memory: after
//! a restart every intent is `pending` until the routing loop looks at it.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the routing engine should favour for the intent's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Lowest latency path first.
    Latency,
    /// Least-utilised paths first.
    Throughput,
    /// Weigh latency and utilisation together.
    #[default]
    Balanced,
}

/// An intent as a client submits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentSpec {
    /// Unique name: lowercase letters, digits, `-` and `_`, at most 63.
    #[schema(example = "train-allreduce", pattern = "^[a-z0-9_-]{1,63}$")]
    pub name: String,
    /// Source host.
    #[schema(example = "h1", pattern = "^[a-z0-9_-]{1,63}$")]
    pub src: String,
    /// Destination host.
    #[schema(example = "h2", pattern = "^[a-z0-9_-]{1,63}$")]
    pub dst: String,
    /// What to favour.
    #[serde(default)]
    pub objective: Objective,
    /// Upper bound on path latency, in microseconds.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_latency_us: Option<u64>,
    /// Bandwidth to keep free for this traffic, in megabits per second.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub min_bandwidth_mbps: Option<u64>,
    /// Devices the traffic must not cross.
    #[serde(default)]
    #[schema(example = json!(["spine2"]))]
    pub avoid: Vec<String>,
    /// Priority 0 (lowest) to 7 (highest) when intents compete for a link.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 7)]
    pub priority: u8,
}

/// Whether the routing loop meets an intent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentState {
    /// Not yet looked at by the routing loop.
    #[default]
    Pending,
    /// Every constraint holds on the installed paths.
    Satisfied,
    /// No set of paths meets the constraints now.
    Unsatisfiable,
}

/// The routing loop's verdict on an intent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntentStatus {
    /// The verdict.
    pub state: IntentState,
    /// Why, in words, when not satisfied.
    pub reason: Option<String>,
}

/// A stored intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Intent {
    /// What was asked.
    pub spec: IntentSpec,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// What the routing loop says of it.
    pub status: IntentStatus,
}

/// A field of a submitted intent that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// The field, as named in the JSON document.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidField {
    /// An invalid-field error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Why the intent store refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    /// The submitted intent is not valid; nothing was stored.
    #[error("invalid intent: {0}")]
    Invalid(#[from] InvalidField),
    /// An intent with that name exists.
    #[error("an intent named {0:?} exists")]
    Exists(String),
    /// No intent has that name.
    #[error("no intent named {0:?}")]
    NotFound(String),
    /// The database could not be opened, read or written.
    #[error("intent database {}", path.display())]
    Database {
        /// The database file (`:memory:` for an ephemeral store).
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row could not be decoded (the file was edited by hand or
    /// written by an incompatible version).
    #[error("intent database {}: row {name:?} is unreadable", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The intent's name.
        name: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

/// Whether `name` is a valid name for a device, host or intent.
#[must_use]
pub fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl IntentSpec {
    /// Checks the fields on their own and against the hosts and devices the
    /// controller knows.
    ///
    /// # Errors
    /// The first invalid field, named as in the JSON document.
    pub fn validate(
        &self,
        host_known: impl Fn(&str) -> bool,
        device_known: impl Fn(&str) -> bool,
    ) -> Result<(), InvalidField> {
        if !valid_name(&self.name, 63) {
            return Err(InvalidField::new(
                "name",
                "must be 1 to 63 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        for (field, host) in [("src", &self.src), ("dst", &self.dst)] {
            if host.is_empty() {
                return Err(InvalidField::new(field, "must name a host"));
            }
            if !host_known(host) {
                return Err(InvalidField::new(field, format!("no host named {host:?}")));
            }
        }
        if self.src == self.dst {
            return Err(InvalidField::new("dst", "must differ from src"));
        }
        if self.max_latency_us == Some(0) {
            return Err(InvalidField::new("max_latency_us", "must be at least 1"));
        }
        if self.min_bandwidth_mbps == Some(0) {
            return Err(InvalidField::new(
                "min_bandwidth_mbps",
                "must be at least 1",
            ));
        }
        if self.priority > 7 {
            return Err(InvalidField::new("priority", "must be 0 to 7"));
        }
        for (i, device) in self.avoid.iter().enumerate() {
            let field = format!("avoid[{i}]");
            if !device_known(device) {
                return Err(InvalidField::new(
                    field,
                    format!("no device named {device:?}"),
                ));
            }
            if device == &self.src || device == &self.dst {
                return Err(InvalidField::new(
                    field,
                    "cannot avoid the source or destination host",
                ));
            }
        }
        Ok(())
    }
}

/// Intents in an SQLite file, mirrored in memory for reads.
#[derive(Debug)]
pub struct IntentStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Connection,
    intents: BTreeMap<String, Intent>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl IntentStore {
    /// Opens (creating if needed) the intent database at `path` and loads
    /// every stored intent.
    ///
    /// # Errors
    /// [`IntentError::Database`] when the file cannot be opened or is not an
    /// intent database; [`IntentError::Corrupt`] for an unreadable row.
    pub fn open(path: &FsPath) -> Result<Self, IntentError> {
        let db = Connection::open(path).map_err(|source| IntentError::Database {
            path: path.to_path_buf(),
            source,
        })?;
        Self::with_connection(path.to_path_buf(), db)
    }

    /// A store that lives in memory only (lost on restart).
    ///
    /// # Errors
    /// [`IntentError::Database`] if SQLite cannot start.
    pub fn ephemeral() -> Result<Self, IntentError> {
        let path = PathBuf::from(":memory:");
        let db = Connection::open_in_memory().map_err(|source| IntentError::Database {
            path: path.clone(),
            source,
        })?;
        Self::with_connection(path, db)
    }

    fn with_connection(path: PathBuf, db: Connection) -> Result<Self, IntentError> {
        let fail = |source| IntentError::Database {
            path: path.clone(),
            source,
        };
        // WAL keeps readers of the file (backups, inspection) off the
        // writer's back; FULL sync makes a created intent survive power loss.
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS intents (
                 name TEXT PRIMARY KEY NOT NULL,
                 spec TEXT NOT NULL,
                 created_unix_ms INTEGER NOT NULL
             );",
        )
        .map_err(fail)?;
        let mut intents = BTreeMap::new();
        {
            let mut stmt = db
                .prepare("SELECT name, spec, created_unix_ms FROM intents")
                .map_err(fail)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(fail)?;
            for row in rows {
                let (name, spec, created) = row.map_err(fail)?;
                let spec: IntentSpec =
                    serde_json::from_str(&spec).map_err(|source| IntentError::Corrupt {
                        path: path.clone(),
                        name: name.clone(),
                        source,
                    })?;
                let intent = Intent {
                    spec,
                    created_unix_ms: u64::try_from(created).unwrap_or(0),
                    status: IntentStatus::default(),
                };
                intents.insert(name, intent);
            }
        }
        Ok(Self {
            path,
            inner: Mutex::new(Inner { db, intents }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map and the database
        // consistent (each write is one statement), so keep going.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a new intent. The caller validates it first
    /// ([`IntentSpec::validate`]).
    ///
    /// # Errors
    /// [`IntentError::Exists`], or [`IntentError::Database`] when the write
    /// fails (then nothing is stored).
    pub fn create(&self, spec: IntentSpec) -> Result<Intent, IntentError> {
        let mut inner = self.lock();
        if inner.intents.contains_key(&spec.name) {
            return Err(IntentError::Exists(spec.name));
        }
        let created = now_ms();
        let json = serde_json::to_string(&spec).map_err(|source| IntentError::Corrupt {
            path: self.path.clone(),
            name: spec.name.clone(),
            source,
        })?;
        inner
            .db
            .execute(
                "INSERT INTO intents (name, spec, created_unix_ms) VALUES (?1, ?2, ?3)",
                params![spec.name, json, i64::try_from(created).unwrap_or(i64::MAX)],
            )
            .map_err(|source| IntentError::Database {
                path: self.path.clone(),
                source,
            })?;
        let intent = Intent {
            spec,
            created_unix_ms: created,
            status: IntentStatus::default(),
        };
        inner
            .intents
            .insert(intent.spec.name.clone(), intent.clone());
        Ok(intent)
    }

    /// Removes an intent.
    ///
    /// # Errors
    /// [`IntentError::NotFound`] or [`IntentError::Database`].
    pub fn delete(&self, name: &str) -> Result<Intent, IntentError> {
        let mut inner = self.lock();
        if !inner.intents.contains_key(name) {
            return Err(IntentError::NotFound(name.to_string()));
        }
        inner
            .db
            .execute("DELETE FROM intents WHERE name = ?1", params![name])
            .map_err(|source| IntentError::Database {
                path: self.path.clone(),
                source,
            })?;
        inner
            .intents
            .remove(name)
            .ok_or_else(|| IntentError::NotFound(name.to_string()))
    }

    /// One intent by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Intent> {
        self.lock().intents.get(name).cloned()
    }

    /// Every intent, by name.
    #[must_use]
    pub fn list(&self) -> Vec<Intent> {
        self.lock().intents.values().cloned().collect()
    }

    /// Records the routing loop's verdict on an intent.
    ///
    /// # Errors
    /// [`IntentError::NotFound`] when the intent was deleted meanwhile.
    pub fn set_status(&self, name: &str, status: IntentStatus) -> Result<(), IntentError> {
        let mut inner = self.lock();
        let intent = inner
            .intents
            .get_mut(name)
            .ok_or_else(|| IntentError::NotFound(name.to_string()))?;
        intent.status = status;
        Ok(())
    }

    /// Whether the named intent is in the database file itself (not only
    /// in memory).
    ///
    /// # Errors
    /// [`IntentError::Database`].
    pub fn is_stored(&self, name: &str) -> Result<bool, IntentError> {
        let inner = self.lock();
        inner
            .db
            .query_row(
                "SELECT 1 FROM intents WHERE name = ?1",
                params![name],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|source| IntentError::Database {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> IntentSpec {
        IntentSpec {
            name: name.into(),
            src: "h1".into(),
            dst: "h2".into(),
            objective: Objective::Latency,
            max_latency_us: Some(500),
            min_bandwidth_mbps: None,
            avoid: vec!["spine2".into()],
            priority: 3,
        }
    }

    fn known(_: &str) -> bool {
        true
    }

    #[test]
    fn validation_names_the_field() {
        type Mutation = Box<dyn Fn(&mut IntentSpec)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|s| s.name = "Bad Name".into()), "name"),
            (Box::new(|s| s.src = String::new()), "src"),
            (Box::new(|s| s.dst = "h1".into()), "dst"),
            (Box::new(|s| s.max_latency_us = Some(0)), "max_latency_us"),
            (
                Box::new(|s| s.min_bandwidth_mbps = Some(0)),
                "min_bandwidth_mbps",
            ),
            (Box::new(|s| s.priority = 8), "priority"),
            (
                Box::new(|s| s.avoid = vec!["x".into(), "h2".into()]),
                "avoid[1]",
            ),
        ];
        for (mutate, field) in cases {
            let mut s = spec("a");
            mutate(&mut s);
            let e = s.validate(known, known).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        let e = spec("a").validate(|h| h == "h1", known).unwrap_err();
        assert_eq!(e.field, "dst");
        assert!(e.reason.contains("h2"), "{e}");
    }

    #[test]
    fn intents_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intents.db");
        {
            let store = IntentStore::open(&path).unwrap();
            store.create(spec("a")).unwrap();
            store.create(spec("b")).unwrap();
            store.delete("a").unwrap();
            assert!(matches!(
                store.create(spec("b")),
                Err(IntentError::Exists(_))
            ));
        }
        let store = IntentStore::open(&path).unwrap();
        let names: Vec<_> = store.list().into_iter().map(|i| i.spec.name).collect();
        assert_eq!(names, ["b"]);
        assert_eq!(store.get("b").unwrap().spec, spec("b"));
        assert_eq!(store.get("b").unwrap().status.state, IntentState::Pending);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intents.db");
        std::fs::write(
            &path,
            b"not sqlite at all, just some text that is long enough",
        )
        .unwrap();
        let e = IntentStore::open(&path).unwrap_err();
        assert!(e.to_string().contains("intents.db"), "{e}");
    }
}
