//! The server's saved state: the running pipeline (P4Info, device config,
//! cookie) and every entity in normal form, written to a file after each
//! Write that changed something and after each pipeline commit, and read
//! back when the agent starts, so that a restarted agent answers Reads
//! with what the data plane still holds (see
//! [`super::AgentService::restore`]).
//!
//! The file is a protobuf message of its own (`SavedState` below) made of
//! P4Runtime messages: a `ForwardingPipelineConfig` and the entities as
//! INSERT/MODIFY `Update`s in dependency order. It is replaced atomically
//! (written to a temporary file, synced, renamed), so a crash leaves the
//! previous or the new state, never half of one.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use prost::Message;
use solyx_p4runtime::proto::p4::v1 as p4;

use super::pipeline::DeviceState;
use super::store::Store;

/// Version of the file layout; a file of another version is not loaded.
pub(crate) const STATE_VERSION: u32 = 1;

/// What the file holds.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SavedState {
    /// [`STATE_VERSION`].
    #[prost(uint32, tag = "1")]
    pub(crate) version: u32,
    /// The running pipeline, with its P4Info, device config and cookie.
    #[prost(message, optional, tag = "2")]
    pub(crate) config: Option<p4::ForwardingPipelineConfig>,
    /// Every entity, as the updates that write it again.
    #[prost(message, repeated, tag = "3")]
    pub(crate) updates: Vec<p4::Update>,
}

/// Why a saved state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The file is not a saved state of this version.
    #[error("{path} is not a saved P4Runtime state of version {STATE_VERSION}: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The state to save for `state`, or `None` when no pipeline runs.
pub(crate) fn snapshot(state: &DeviceState) -> Option<SavedState> {
    let pipe = state.pipeline.as_ref()?;
    Some(SavedState {
        version: STATE_VERSION,
        config: Some(p4::ForwardingPipelineConfig {
            p4info: Some(pipe.index.p4info().clone()),
            p4_device_config: pipe.device_config.clone(),
            cookie: pipe
                .cookie
                .map(|cookie| p4::forwarding_pipeline_config::Cookie { cookie }),
        }),
        updates: updates(&state.store),
    })
}

/// Every entity of `store` as the updates that would write it again, in
/// an order that satisfies references: members, groups, table entries,
/// default entries, multicast groups, clone sessions. Tables and
/// profiles in ID order, so that equal stores give equal update lists.
pub(crate) fn updates(store: &Store) -> Vec<p4::Update> {
    use p4::entity::Entity as E;
    use p4::update::Type;
    let up = |t: Type, e: E| p4::Update {
        r#type: t as i32,
        entity: Some(p4::Entity { entity: Some(e) }),
    };
    let mut out = Vec::new();
    let mut groups = Vec::new();
    let mut profiles: Vec<_> = store.profiles.iter().collect();
    profiles.sort_by_key(|(id, _)| **id);
    for (_, ps) in profiles {
        for m in ps.members.values() {
            out.push(up(Type::Insert, E::ActionProfileMember(m.value.clone())));
        }
        for g in ps.groups.values() {
            groups.push(up(Type::Insert, E::ActionProfileGroup(g.value.clone())));
        }
    }
    out.append(&mut groups);
    let mut defaults = Vec::new();
    let mut tables: Vec<_> = store.tables.iter().collect();
    tables.sort_by_key(|(id, _)| **id);
    for (_, ts) in tables {
        for e in ts.entries.values() {
            out.push(up(Type::Insert, E::TableEntry(e.clone())));
        }
        if let Some(d) = &ts.default {
            defaults.push(up(Type::Modify, E::TableEntry(d.clone())));
        }
    }
    out.append(&mut defaults);
    for m in store.multicast.values() {
        out.push(up(
            Type::Insert,
            E::PacketReplicationEngineEntry(p4::PacketReplicationEngineEntry {
                r#type: Some(
                    p4::packet_replication_engine_entry::Type::MulticastGroupEntry(m.clone()),
                ),
            }),
        ));
    }
    for c in store.clone_sessions.values() {
        out.push(up(
            Type::Insert,
            E::PacketReplicationEngineEntry(p4::PacketReplicationEngineEntry {
                r#type: Some(
                    p4::packet_replication_engine_entry::Type::CloneSessionEntry(c.clone()),
                ),
            }),
        ));
    }
    out
}

/// Writes `saved` to `path` atomically; creates the directory if needed.
pub(crate) fn save(path: &Path, saved: &SavedState) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&saved.encode_to_vec())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)
}

/// Reads the state saved at `path`; `None` when there is no file.
pub(crate) fn load(path: &Path) -> Result<Option<SavedState>, LoadError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LoadError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let format = |why: String| LoadError::Format {
        path: path.to_owned(),
        why,
    };
    let saved = SavedState::decode(bytes.as_slice()).map_err(|e| format(e.to_string()))?;
    if saved.version != STATE_VERSION {
        return Err(format(format!("it is version {}", saved.version)));
    }
    Ok(Some(saved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_round_trips_and_refuses_other_versions() {
        let dir = std::env::temp_dir().join(format!("solyx-persist-{}", std::process::id()));
        let path = dir.join("state.pb");
        let saved = SavedState {
            version: STATE_VERSION,
            config: Some(p4::ForwardingPipelineConfig {
                cookie: Some(p4::forwarding_pipeline_config::Cookie { cookie: 7 }),
                ..Default::default()
            }),
            updates: vec![p4::Update {
                r#type: p4::update::Type::Insert as i32,
                entity: None,
            }],
        };
        save(&path, &saved).expect("save");
        assert_eq!(load(&path).expect("load"), Some(saved.clone()));
        save(
            &path,
            &SavedState {
                version: 99,
                ..saved
            },
        )
        .expect("save");
        assert!(matches!(load(&path), Err(LoadError::Format { .. })));
        fs::write(&path, b"\xff\xff garbage").expect("write");
        assert!(matches!(load(&path), Err(LoadError::Format { .. })));
        assert!(load(&dir.join("missing")).expect("no file").is_none());
        let _ = fs::remove_dir_all(&dir);
    }
}
