//! The Read RPC body: expands each requested entity (which may be a
//! wildcard) into what the store and the data plane hold, in chunks of
//! ReadResponses.
//!
//! Wildcards: a table entry with table ID 0 (every table) or without match
//! fields (every entry of the table; `is_default_action` for its default
//! entry); members and groups with profile ID 0 and/or member or group ID
//! 0; counter ID 0 (every counter) and an absent index (every cell); the
//! same for registers (register ID 0, no index); a
//! direct counter entry whose table entry is a table wildcard; multicast
//! group or clone session ID 0.
//!
//! A read of one entity (a full key) that is not there answers nothing,
//! not an error, so that a batch of reads is not failed by one absent key.

use solyx_p4runtime::entity::normalize_table_entry;
use solyx_p4runtime::p4info::TableInfo;
use solyx_p4runtime::proto::p4::v1 as p4;

use super::dataplane::Dataplane;
use super::error::StoreError;
use super::pipeline::{DeviceState, Pipeline};
use super::store::{entity_kind, Store};
use super::validate::{self, EntryKey};

/// Counter (and register) cells read from the data plane at once.
const COUNTER_BATCH: i64 = 4096;

/// Most cells a wildcard read of one counter (or register) returns.
// TODO-completeness: larger counters can only be read cell by cell;
// P4Runtime has no index ranges, and answering a whole huge counter would
// build the answer in memory at once (see `read`).
const MAX_COUNTER_CELLS: i64 = 1 << 22;

/// Collects entities into ReadResponses of at most `chunk` entities.
struct Out {
    chunk: usize,
    current: Vec<p4::Entity>,
    done: Vec<p4::ReadResponse>,
}

impl Out {
    fn push(&mut self, e: p4::entity::Entity) {
        self.current.push(p4::Entity { entity: Some(e) });
        if self.current.len() >= self.chunk {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(self.chunk));
            self.done.push(p4::ReadResponse { entities: full });
        }
    }

    fn finish(mut self) -> Vec<p4::ReadResponse> {
        if !self.current.is_empty() || self.done.is_empty() {
            self.done.push(p4::ReadResponse {
                entities: self.current,
            });
        }
        self.done
    }
}

struct Reader<'a> {
    pipe: &'a Pipeline,
    store: &'a Store,
    dp: &'a dyn Dataplane,
    out: Out,
}

/// Answers a Read of `entities`, `chunk` entities per response (at least
/// one response, possibly empty).
// TODO-perf: the whole answer is built under the device lock before the
// first chunk is sent; a read of millions of entries holds the lock (and
// twice the memory) for that long. Streaming from a snapshot would not.
pub(crate) fn read(
    state: &DeviceState,
    dp: &dyn Dataplane,
    entities: Vec<p4::Entity>,
    chunk: usize,
) -> Result<Vec<p4::ReadResponse>, StoreError> {
    let pipe = state.pipeline.as_ref().ok_or(StoreError::NoPipeline)?;
    let chunk = chunk.max(1);
    let mut r = Reader {
        pipe,
        store: &state.store,
        dp,
        out: Out {
            chunk,
            current: Vec::with_capacity(chunk),
            done: Vec::new(),
        },
    };
    for e in entities {
        use p4::entity::Entity as E;
        match e.entity {
            Some(E::TableEntry(t)) => r.table_entries(&t)?,
            Some(E::ActionProfileMember(m)) => r.members(&m)?,
            Some(E::ActionProfileGroup(g)) => r.groups(&g)?,
            Some(E::CounterEntry(c)) => r.counters(&c)?,
            Some(E::DirectCounterEntry(d)) => r.direct_counters(&d)?,
            Some(E::RegisterEntry(g)) => r.registers(&g)?,
            Some(E::PacketReplicationEngineEntry(p)) => r.replication(&p)?,
            Some(other) => {
                return Err(StoreError::Unsupported(format!(
                    "reading {} entities is not supported by this agent",
                    entity_kind(&other)
                )))
            }
            None => return Err(StoreError::Invalid("read of an empty entity".into())),
        }
    }
    Ok(r.out.finish())
}

impl<'a> Reader<'a> {
    fn tables(&self, table_id: u32) -> Result<Vec<&'a TableInfo>, StoreError> {
        if table_id == 0 {
            return Ok(self.pipe.index.tables.iter().collect());
        }
        let t = self
            .pipe
            .index
            .tables
            .by_id(table_id)
            .ok_or(StoreError::UnknownId {
                kind: "table",
                id: table_id,
            })?;
        Ok(vec![t])
    }

    /// The stored entries `query` selects in `table`, in store order.
    fn select(
        &self,
        table: &TableInfo,
        query: &p4::TableEntry,
    ) -> Result<Vec<&'a p4::TableEntry>, StoreError> {
        let store: &'a Store = self.store;
        let ts = store.tables.get(&table.id);
        if query.is_default_action {
            return Ok(ts.and_then(|t| t.default.as_ref()).into_iter().collect());
        }
        if query.r#match.is_empty() {
            let all = ts.into_iter().flat_map(|t| t.entries.values());
            return Ok(all
                .filter(|e| query.priority == 0 || e.priority == query.priority)
                .collect());
        }
        if query.table_id == 0 {
            return Err(StoreError::Invalid(
                "a read with match fields must name its table".into(),
            ));
        }
        validate::check_match(table, query)?;
        let mut q = query.clone();
        normalize_table_entry(&mut q);
        let key = EntryKey::of(&q);
        Ok(ts.and_then(|t| t.entries.get(&key)).into_iter().collect())
    }

    fn table_entries(&mut self, query: &p4::TableEntry) -> Result<(), StoreError> {
        let with_counters = query.counter_data.is_some();
        for table in self.tables(query.table_id)? {
            let selected = self.select(table, query)?;
            let mut found = Vec::with_capacity(selected.len());
            for e in selected {
                let mut e = e.clone();
                if with_counters && table.direct_counter_id.is_some() {
                    e.counter_data = Some(self.dp.read_direct_counter(&e)?);
                }
                found.push(e);
            }
            // TODO-completeness: the program's own default action is not in
            // the P4Info (only const ones are), so an unmodified default
            // entry is read back without an action.
            if query.is_default_action && found.is_empty() {
                found.push(p4::TableEntry {
                    table_id: table.id,
                    is_default_action: true,
                    ..Default::default()
                });
            }
            for e in found {
                self.out.push(p4::entity::Entity::TableEntry(e));
            }
        }
        Ok(())
    }

    fn profiles(&self, id: u32) -> Result<Vec<u32>, StoreError> {
        if id == 0 {
            return Ok(self
                .pipe
                .index
                .action_profiles
                .iter()
                .map(|p| p.id)
                .collect());
        }
        self.pipe
            .index
            .action_profiles
            .by_id(id)
            .map(|p| vec![p.id])
            .ok_or(StoreError::UnknownId {
                kind: "action profile",
                id,
            })
    }

    fn members(&mut self, query: &p4::ActionProfileMember) -> Result<(), StoreError> {
        for p in self.profiles(query.action_profile_id)? {
            let Some(ps) = self.store.profiles.get(&p) else {
                continue;
            };
            let found: Vec<p4::ActionProfileMember> = if query.member_id == 0 {
                ps.members.values().map(|s| s.value.clone()).collect()
            } else {
                ps.members
                    .get(&query.member_id)
                    .map(|s| s.value.clone())
                    .into_iter()
                    .collect()
            };
            for m in found {
                self.out.push(p4::entity::Entity::ActionProfileMember(m));
            }
        }
        Ok(())
    }

    fn groups(&mut self, query: &p4::ActionProfileGroup) -> Result<(), StoreError> {
        for p in self.profiles(query.action_profile_id)? {
            let Some(ps) = self.store.profiles.get(&p) else {
                continue;
            };
            let found: Vec<p4::ActionProfileGroup> = if query.group_id == 0 {
                ps.groups.values().map(|s| s.value.clone()).collect()
            } else {
                ps.groups
                    .get(&query.group_id)
                    .map(|s| s.value.clone())
                    .into_iter()
                    .collect()
            };
            for g in found {
                self.out.push(p4::entity::Entity::ActionProfileGroup(g));
            }
        }
        Ok(())
    }

    fn counters(&mut self, query: &p4::CounterEntry) -> Result<(), StoreError> {
        let counters: Vec<(u32, String, i64)> =
            if query.counter_id == 0 {
                self.pipe
                    .index
                    .counters
                    .iter()
                    .map(|c| (c.id, c.name.clone(), c.size))
                    .collect()
            } else {
                let c = self.pipe.index.counters.by_id(query.counter_id).ok_or(
                    StoreError::UnknownId {
                        kind: "counter",
                        id: query.counter_id,
                    },
                )?;
                vec![(c.id, c.name.clone(), c.size)]
            };
        for (id, name, size) in counters {
            let cells = match &query.index {
                Some(i) if i.index < 0 || i.index >= size => {
                    return Err(StoreError::Invalid(format!(
                        "counter {name:?}: index {} is outside 0..{size}",
                        i.index
                    )))
                }
                Some(i) => i.index..i.index + 1,
                None if size > MAX_COUNTER_CELLS => {
                    return Err(StoreError::Full(format!(
                        "counter {name:?} has {size} cells; a wildcard read returns at most {MAX_COUNTER_CELLS}: read it by index"
                    )))
                }
                None => 0..size.max(0),
            };
            let mut start = cells.start;
            while start < cells.end {
                let end = cells.end.min(start.saturating_add(COUNTER_BATCH));
                let data = self.dp.read_counter(id, start..end)?;
                for (index, d) in (start..end).zip(data) {
                    self.out
                        .push(p4::entity::Entity::CounterEntry(p4::CounterEntry {
                            counter_id: id,
                            index: Some(p4::Index { index }),
                            data: Some(d),
                        }));
                }
                start = end;
            }
        }
        Ok(())
    }

    fn registers(&mut self, query: &p4::RegisterEntry) -> Result<(), StoreError> {
        let index = &self.pipe.index;
        let registers: Vec<(u32, String, i64)> = if query.register_id == 0 {
            index
                .registers
                .iter()
                .map(|r| (r.id, r.name.clone(), r.size))
                .collect()
        } else {
            let r = index
                .registers
                .by_id(query.register_id)
                .ok_or(StoreError::UnknownId {
                    kind: "register",
                    id: query.register_id,
                })?;
            vec![(r.id, r.name.clone(), r.size)]
        };
        for (id, name, size) in registers {
            let cells = match &query.index {
                Some(i) if i.index < 0 || i.index >= size => {
                    return Err(StoreError::Invalid(format!(
                        "register {name:?}: index {} is outside 0..{size}",
                        i.index
                    )))
                }
                Some(i) => i.index..i.index + 1,
                None if size > MAX_COUNTER_CELLS => {
                    return Err(StoreError::Full(format!(
                        "register {name:?} has {size} cells; a wildcard read returns at most {MAX_COUNTER_CELLS}: read it by index"
                    )))
                }
                None => 0..size.max(0),
            };
            let mut start = cells.start;
            while start < cells.end {
                let end = cells.end.min(start.saturating_add(COUNTER_BATCH));
                let data = self.dp.read_register(id, start..end)?;
                for (index, d) in (start..end).zip(data) {
                    self.out
                        .push(p4::entity::Entity::RegisterEntry(p4::RegisterEntry {
                            register_id: id,
                            index: Some(p4::Index { index }),
                            data: Some(d),
                        }));
                }
                start = end;
            }
        }
        Ok(())
    }

    fn direct_counters(&mut self, query: &p4::DirectCounterEntry) -> Result<(), StoreError> {
        let Some(te) = query.table_entry.as_ref() else {
            return Err(StoreError::Invalid(
                "direct counter read without a table entry".into(),
            ));
        };
        let tables = self.tables(te.table_id)?;
        for table in tables {
            if table.direct_counter_id.is_none() {
                if te.table_id == 0 {
                    continue;
                }
                return Err(StoreError::Invalid(format!(
                    "table {:?} has no direct counter",
                    table.name
                )));
            }
            let selected: Vec<p4::TableEntry> =
                self.select(table, te)?.into_iter().cloned().collect();
            for e in selected {
                let data = self.dp.read_direct_counter(&e)?;
                self.out.push(p4::entity::Entity::DirectCounterEntry(
                    p4::DirectCounterEntry {
                        table_entry: Some(e),
                        data: Some(data),
                    },
                ));
            }
        }
        Ok(())
    }

    fn replication(&mut self, query: &p4::PacketReplicationEngineEntry) -> Result<(), StoreError> {
        use p4::packet_replication_engine_entry::Type;
        let wrap = |t: Type| {
            p4::entity::Entity::PacketReplicationEngineEntry(p4::PacketReplicationEngineEntry {
                r#type: Some(t),
            })
        };
        let found: Vec<p4::entity::Entity> = match &query.r#type {
            Some(Type::MulticastGroupEntry(m)) if m.multicast_group_id == 0 => self
                .store
                .multicast
                .values()
                .map(|m| wrap(Type::MulticastGroupEntry(m.clone())))
                .collect(),
            Some(Type::MulticastGroupEntry(m)) => self
                .store
                .multicast
                .get(&m.multicast_group_id)
                .map(|m| wrap(Type::MulticastGroupEntry(m.clone())))
                .into_iter()
                .collect(),
            Some(Type::CloneSessionEntry(c)) if c.session_id == 0 => self
                .store
                .clone_sessions
                .values()
                .map(|c| wrap(Type::CloneSessionEntry(c.clone())))
                .collect(),
            Some(Type::CloneSessionEntry(c)) => self
                .store
                .clone_sessions
                .get(&c.session_id)
                .map(|c| wrap(Type::CloneSessionEntry(c.clone())))
                .into_iter()
                .collect(),
            None => {
                return Err(StoreError::Invalid(
                    "packet replication engine read without a type".into(),
                ))
            }
        };
        for e in found {
            self.out.push(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_cuts_chunks_and_always_answers() {
        let mut out = Out {
            chunk: 2,
            current: Vec::new(),
            done: Vec::new(),
        };
        for id in 0..5 {
            out.push(p4::entity::Entity::ActionProfileMember(
                p4::ActionProfileMember {
                    member_id: id,
                    ..Default::default()
                },
            ));
        }
        let sizes: Vec<usize> = out.finish().iter().map(|r| r.entities.len()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        let empty = Out {
            chunk: 2,
            current: Vec::new(),
            done: Vec::new(),
        };
        assert_eq!(empty.finish().len(), 1);
    }
}
