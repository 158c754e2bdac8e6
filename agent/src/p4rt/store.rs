//! The entity store: what the clients wrote for the running pipeline, in
//! normal form ([`solyx_p4runtime::entity::normalize`]), keyed by identity:
//! table entries by table ID + priority + canonical match, members and
//! groups by profile ID + their ID, multicast groups and clone sessions by
//! their ID. Reads return exactly what canonical writes put in.
//!
//! Every update goes through [`Store::apply_update`]: it checks the update
//! against the P4Info ([`super::validate`]) and the store (existence,
//! references, capacity), hands the change to the data plane, and only if
//! the data plane accepts it changes the store. An update therefore
//! applies to both or to neither. With an undo log, each applied update
//! records what it replaced, so a batch can be rolled back.

use std::collections::{BTreeMap, HashMap};

use solyx_p4runtime::entity::{normalize, normalize_table_entry};
use solyx_p4runtime::p4info::TableInfo;
use solyx_p4runtime::proto::p4::v1 as p4;
use tracing::error;

use super::dataplane::{Change, Dataplane, Entry};
use super::error::StoreError;
use super::pipeline::Pipeline;
use super::validate::{self, ActionRef, EntryKey};

/// Entries of one table.
#[derive(Debug, Default)]
pub(crate) struct TableStore {
    pub(crate) entries: HashMap<EntryKey, p4::TableEntry>,
    /// The default entry, when a client modified it.
    pub(crate) default: Option<p4::TableEntry>,
}

/// A member or group with the number of entities that refer to it.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    pub(crate) value: T,
    refs: u32,
}

/// Members and groups of one action profile.
#[derive(Debug, Default)]
pub(crate) struct ProfileStore {
    pub(crate) members: BTreeMap<u32, Slot<p4::ActionProfileMember>>,
    pub(crate) groups: BTreeMap<u32, Slot<p4::ActionProfileGroup>>,
}

/// What an applied update replaced, to undo it.
#[derive(Debug)]
pub(crate) enum Undo {
    Table {
        table_id: u32,
        key: EntryKey,
        previous: Option<p4::TableEntry>,
    },
    Default {
        table_id: u32,
        previous: Option<p4::TableEntry>,
    },
    Member {
        profile: u32,
        id: u32,
        previous: Option<p4::ActionProfileMember>,
    },
    Group {
        profile: u32,
        id: u32,
        previous: Option<p4::ActionProfileGroup>,
    },
    Multicast {
        id: u32,
        previous: Option<p4::MulticastGroupEntry>,
    },
    CloneSession {
        id: u32,
        previous: Option<p4::CloneSessionEntry>,
    },
}

/// Everything written for the running pipeline.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) tables: HashMap<u32, TableStore>,
    pub(crate) profiles: HashMap<u32, ProfileStore>,
    pub(crate) multicast: BTreeMap<u32, p4::MulticastGroupEntry>,
    pub(crate) clone_sessions: BTreeMap<u32, p4::CloneSessionEntry>,
    /// Changes applied so far (rollbacks included): the server saves its
    /// state after a Write only when this moved.
    pub(crate) generation: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Insert,
    Modify,
    Delete,
}

fn change<'a, T>(
    old: Option<&'a T>,
    new: Option<&'a T>,
    wrap: fn(&'a T) -> Entry<'a>,
) -> Option<Change<'a>> {
    match (old, new) {
        (None, Some(n)) => Some(Change::Insert(wrap(n))),
        (Some(o), Some(n)) => Some(Change::Modify {
            old: wrap(o),
            new: wrap(n),
        }),
        (Some(o), None) => Some(Change::Delete(wrap(o))),
        (None, None) => None,
    }
}

fn table_info(pipe: &Pipeline, table_id: u32) -> Result<&TableInfo, StoreError> {
    pipe.index
        .tables
        .by_id(table_id)
        .ok_or(StoreError::UnknownId {
            kind: "table",
            id: table_id,
        })
}

impl Store {
    /// Applies one update of a Write: validates it, applies it to the data
    /// plane, then to the store. With `undo`, records how to reverse it.
    pub(crate) fn apply_update(
        &mut self,
        pipe: &Pipeline,
        dp: &dyn Dataplane,
        update: p4::Update,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        use p4::entity::Entity as E;
        use p4::packet_replication_engine_entry::Type as Pre;
        let op = match p4::update::Type::try_from(update.r#type) {
            Ok(p4::update::Type::Insert) => Op::Insert,
            Ok(p4::update::Type::Modify) => Op::Modify,
            Ok(p4::update::Type::Delete) => Op::Delete,
            _ => {
                return Err(StoreError::Invalid(format!(
                    "update type {} is not INSERT, MODIFY or DELETE",
                    update.r#type
                )))
            }
        };
        let Some(entity) = update.entity.and_then(|e| e.entity) else {
            return Err(StoreError::Invalid("the update has no entity".into()));
        };
        match entity {
            E::TableEntry(t) => self.write_table_entry(pipe, dp, op, t, undo),
            E::ActionProfileMember(m) => self.write_member(pipe, dp, op, m, undo),
            E::ActionProfileGroup(g) => self.write_group(pipe, dp, op, g, undo),
            E::PacketReplicationEngineEntry(p) => match p.r#type {
                Some(Pre::MulticastGroupEntry(m)) => self.write_multicast(dp, op, m, undo),
                Some(Pre::CloneSessionEntry(c)) => self.write_clone_session(dp, op, c, undo),
                None => Err(StoreError::Invalid(
                    "packet replication engine entry without a type".into(),
                )),
            },
            // TODO-completeness: counter, meter and register writes (resetting
            // or presetting cells) and digest configs are refused: no data
            // plane implements them yet.
            other => Err(StoreError::Unsupported(format!(
                "writing {} entities is not supported by this agent",
                entity_kind(&other)
            ))),
        }
    }

    fn check_ref(&self, r: ActionRef, table: &TableInfo) -> Result<(), StoreError> {
        let found = match r {
            ActionRef::None => return Ok(()),
            ActionRef::Member(p, m) => self
                .profiles
                .get(&p)
                .is_some_and(|s| s.members.contains_key(&m)),
            ActionRef::Group(p, g) => self
                .profiles
                .get(&p)
                .is_some_and(|s| s.groups.contains_key(&g)),
        };
        if found {
            return Ok(());
        }
        let what = match r {
            ActionRef::Member(_, m) => format!("member {m}"),
            ActionRef::Group(_, g) => format!("group {g}"),
            ActionRef::None => String::new(),
        };
        Err(StoreError::NotFound(format!(
            "table {:?}: action profile {what} does not exist",
            table.name
        )))
    }

    fn adjust_ref(&mut self, r: ActionRef, up: bool) {
        let refs = match r {
            ActionRef::None => None,
            ActionRef::Member(p, m) => self
                .profiles
                .get_mut(&p)
                .and_then(|s| s.members.get_mut(&m))
                .map(|s| &mut s.refs),
            ActionRef::Group(p, g) => self
                .profiles
                .get_mut(&p)
                .and_then(|s| s.groups.get_mut(&g))
                .map(|s| &mut s.refs),
        };
        if let Some(refs) = refs {
            *refs = if up {
                refs.saturating_add(1)
            } else {
                refs.saturating_sub(1)
            };
        }
    }

    fn write_table_entry(
        &mut self,
        pipe: &Pipeline,
        dp: &dyn Dataplane,
        op: Op,
        mut t: p4::TableEntry,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let table = table_info(pipe, t.table_id)?;
        if table.is_const {
            return Err(StoreError::Const(format!(
                "table {:?} is const: its entries are fixed by the P4 program",
                table.name
            )));
        }
        if t.is_default_action {
            return self.write_default(pipe, dp, op, table, t, undo);
        }
        validate::check_match(table, &t)?;
        if op != Op::Delete {
            validate::check_table_action(pipe, table, &t, false)?;
        }
        normalize_table_entry(&mut t);
        let key = EntryKey::of(&t);
        let ts = self.tables.entry(table.id).or_default();
        let exists = ts.entries.contains_key(&key);
        match op {
            Op::Insert if exists => {
                return Err(StoreError::AlreadyExists(format!(
                    "table {:?}: an entry with this match and priority already exists",
                    table.name
                )))
            }
            Op::Insert if table.size > 0 && ts.entries.len() as i64 >= table.size => {
                return Err(StoreError::Full(format!(
                    "table {:?} is full ({} entries)",
                    table.name, table.size
                )))
            }
            Op::Modify | Op::Delete if !exists => {
                return Err(StoreError::NotFound(format!(
                    "table {:?}: no entry with this match and priority",
                    table.name
                )))
            }
            _ => {}
        }
        let new = if op == Op::Delete {
            None
        } else {
            self.check_ref(ActionRef::of(&t, table), table)?;
            Some(t)
        };
        self.set_entry(dp, table, key, new, undo)
    }

    /// Replaces (or removes) the entry at `key`, in the data plane first.
    fn set_entry(
        &mut self,
        dp: &dyn Dataplane,
        table: &TableInfo,
        key: EntryKey,
        new: Option<p4::TableEntry>,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let ts = self.tables.entry(table.id).or_default();
        let old = ts.entries.get(&key);
        let Some(c) = change(old, new.as_ref(), Entry::Table) else {
            return Ok(());
        };
        dp.apply(&c)?;
        self.generation = self.generation.wrapping_add(1);
        let old_ref = old.map_or(ActionRef::None, |o| ActionRef::of(o, table));
        let new_ref = new
            .as_ref()
            .map_or(ActionRef::None, |n| ActionRef::of(n, table));
        let undo_key = undo.as_ref().map(|_| key.clone());
        let previous = match new {
            Some(n) => ts.entries.insert(key, n),
            None => ts.entries.remove(&key),
        };
        self.adjust_ref(old_ref, false);
        self.adjust_ref(new_ref, true);
        if let (Some(u), Some(key)) = (undo, undo_key) {
            u.push(Undo::Table {
                table_id: table.id,
                key,
                previous,
            });
        }
        Ok(())
    }

    fn write_default(
        &mut self,
        pipe: &Pipeline,
        dp: &dyn Dataplane,
        op: Op,
        table: &TableInfo,
        mut t: p4::TableEntry,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        if op != Op::Modify {
            return Err(StoreError::Invalid(format!(
                "table {:?}: the default entry can only be modified, not inserted or deleted",
                table.name
            )));
        }
        if !t.r#match.is_empty() || t.priority != 0 {
            return Err(StoreError::Invalid(format!(
                "table {:?}: the default entry takes no match fields and no priority",
                table.name
            )));
        }
        if table.const_default_action_id.is_some() {
            return Err(StoreError::Const(format!(
                "table {:?}: the default action is const",
                table.name
            )));
        }
        let reset = t.action.is_none();
        if !reset {
            validate::check_table_action(pipe, table, &t, true)?;
        }
        normalize_table_entry(&mut t);
        self.check_ref(ActionRef::of(&t, table), table)?;
        self.set_default(dp, table, (!reset).then_some(t), undo)
    }

    /// Sets the default entry; `None` restores the program's default action.
    fn set_default(
        &mut self,
        dp: &dyn Dataplane,
        table: &TableInfo,
        new: Option<p4::TableEntry>,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let program_default = p4::TableEntry {
            table_id: table.id,
            is_default_action: true,
            ..Default::default()
        };
        let ts = self.tables.entry(table.id).or_default();
        let old = ts.default.as_ref();
        dp.apply(&Change::Modify {
            old: Entry::Table(old.unwrap_or(&program_default)),
            new: Entry::Table(new.as_ref().unwrap_or(&program_default)),
        })?;
        self.generation = self.generation.wrapping_add(1);
        let old_ref = old.map_or(ActionRef::None, |o| ActionRef::of(o, table));
        let new_ref = new
            .as_ref()
            .map_or(ActionRef::None, |n| ActionRef::of(n, table));
        let previous = std::mem::replace(&mut ts.default, new);
        self.adjust_ref(old_ref, false);
        self.adjust_ref(new_ref, true);
        if let Some(u) = undo {
            u.push(Undo::Default {
                table_id: table.id,
                previous,
            });
        }
        Ok(())
    }

    fn write_member(
        &mut self,
        pipe: &Pipeline,
        dp: &dyn Dataplane,
        op: Op,
        m: p4::ActionProfileMember,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let profile = validate::check_member(pipe, &m, op != Op::Delete)?;
        let mut entity = p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileMember(m)),
        };
        normalize(&mut entity);
        let Some(p4::entity::Entity::ActionProfileMember(m)) = entity.entity else {
            return Err(StoreError::Invalid("member lost in normalisation".into()));
        };
        let at = format!("action profile {:?} member {}", profile.name, m.member_id);
        let ps = self.profiles.entry(profile.id).or_default();
        match (op, ps.members.get(&m.member_id)) {
            (Op::Insert, Some(_)) => return Err(StoreError::AlreadyExists(format!("{at} exists"))),
            (Op::Insert, None) if profile.size > 0 && ps.members.len() as i64 >= profile.size => {
                return Err(StoreError::Full(format!(
                    "action profile {:?} is full ({} members)",
                    profile.name, profile.size
                )))
            }
            (Op::Modify | Op::Delete, None) => {
                return Err(StoreError::NotFound(format!("{at} does not exist")))
            }
            (Op::Delete, Some(s)) if s.refs > 0 => {
                return Err(StoreError::InUse(format!(
                    "{at} is used by {} groups or table entries",
                    s.refs
                )))
            }
            _ => {}
        }
        let id = m.member_id;
        let new = (op != Op::Delete).then_some(m);
        self.set_member(dp, profile.id, id, new, undo)
    }

    fn set_member(
        &mut self,
        dp: &dyn Dataplane,
        profile: u32,
        id: u32,
        new: Option<p4::ActionProfileMember>,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let ps = self.profiles.entry(profile).or_default();
        let old = ps.members.get(&id).map(|s| &s.value);
        let Some(c) = change(old, new.as_ref(), Entry::Member) else {
            return Ok(());
        };
        dp.apply(&c)?;
        self.generation = self.generation.wrapping_add(1);
        let previous = match new {
            Some(n) => match ps.members.get_mut(&id) {
                Some(slot) => Some(std::mem::replace(&mut slot.value, n)),
                None => {
                    ps.members.insert(id, Slot { value: n, refs: 0 });
                    None
                }
            },
            None => ps.members.remove(&id).map(|s| s.value),
        };
        if let Some(u) = undo {
            u.push(Undo::Member {
                profile,
                id,
                previous,
            });
        }
        Ok(())
    }

    fn write_group(
        &mut self,
        pipe: &Pipeline,
        dp: &dyn Dataplane,
        op: Op,
        mut g: p4::ActionProfileGroup,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let profile = validate::check_group(pipe, &g, op != Op::Delete)?;
        g.members.sort_by_key(|m| m.member_id);
        let at = format!("action profile {:?} group {}", profile.name, g.group_id);
        let ps = self.profiles.entry(profile.id).or_default();
        match (op, ps.groups.get(&g.group_id)) {
            (Op::Insert, Some(_)) => return Err(StoreError::AlreadyExists(format!("{at} exists"))),
            (Op::Modify | Op::Delete, None) => {
                return Err(StoreError::NotFound(format!("{at} does not exist")))
            }
            (Op::Delete, Some(s)) if s.refs > 0 => {
                return Err(StoreError::InUse(format!(
                    "{at} is used by {} table entries",
                    s.refs
                )))
            }
            _ => {}
        }
        if op != Op::Delete {
            if let Some(missing) = g
                .members
                .iter()
                .find(|m| !ps.members.contains_key(&m.member_id))
            {
                return Err(StoreError::NotFound(format!(
                    "{at}: member {} does not exist",
                    missing.member_id
                )));
            }
        }
        let id = g.group_id;
        let new = (op != Op::Delete).then_some(g);
        self.set_group(dp, profile.id, id, new, undo)
    }

    fn set_group(
        &mut self,
        dp: &dyn Dataplane,
        profile: u32,
        id: u32,
        new: Option<p4::ActionProfileGroup>,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let ps = self.profiles.entry(profile).or_default();
        let old = ps.groups.get(&id).map(|s| &s.value);
        let Some(c) = change(old, new.as_ref(), Entry::Group) else {
            return Ok(());
        };
        dp.apply(&c)?;
        self.generation = self.generation.wrapping_add(1);
        let old_members: Vec<u32> = old
            .map(|g| g.members.iter().map(|m| m.member_id).collect())
            .unwrap_or_default();
        let new_members: Vec<u32> = new
            .as_ref()
            .map(|g| g.members.iter().map(|m| m.member_id).collect())
            .unwrap_or_default();
        let previous = match new {
            Some(n) => match ps.groups.get_mut(&id) {
                Some(slot) => Some(std::mem::replace(&mut slot.value, n)),
                None => {
                    ps.groups.insert(id, Slot { value: n, refs: 0 });
                    None
                }
            },
            None => ps.groups.remove(&id).map(|s| s.value),
        };
        for m in old_members {
            self.adjust_ref(ActionRef::Member(profile, m), false);
        }
        for m in new_members {
            self.adjust_ref(ActionRef::Member(profile, m), true);
        }
        if let Some(u) = undo {
            u.push(Undo::Group {
                profile,
                id,
                previous,
            });
        }
        Ok(())
    }

    fn write_multicast(
        &mut self,
        dp: &dyn Dataplane,
        op: Op,
        mut m: p4::MulticastGroupEntry,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        if op == Op::Delete {
            if m.multicast_group_id == 0 {
                return Err(StoreError::Invalid(
                    "multicast group ID 0 cannot be deleted".into(),
                ));
            }
        } else {
            validate::check_multicast(&mut m)?;
        }
        let mut entity = p4::Entity {
            entity: Some(p4::entity::Entity::PacketReplicationEngineEntry(
                p4::PacketReplicationEngineEntry {
                    r#type: Some(p4::packet_replication_engine_entry::Type::MulticastGroupEntry(m)),
                },
            )),
        };
        normalize(&mut entity);
        let Some(p4::entity::Entity::PacketReplicationEngineEntry(
            p4::PacketReplicationEngineEntry {
                r#type: Some(p4::packet_replication_engine_entry::Type::MulticastGroupEntry(m)),
            },
        )) = entity.entity
        else {
            return Err(StoreError::Invalid(
                "multicast group lost in normalisation".into(),
            ));
        };
        let id = m.multicast_group_id;
        let at = format!("multicast group {id}");
        check_presence(op, self.multicast.contains_key(&id), &at)?;
        let new = (op != Op::Delete).then_some(m);
        self.set_multicast(dp, id, new, undo)
    }

    fn set_multicast(
        &mut self,
        dp: &dyn Dataplane,
        id: u32,
        new: Option<p4::MulticastGroupEntry>,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let old = self.multicast.get(&id);
        let Some(c) = change(old, new.as_ref(), Entry::MulticastGroup) else {
            return Ok(());
        };
        dp.apply(&c)?;
        self.generation = self.generation.wrapping_add(1);
        let previous = match new {
            Some(n) => self.multicast.insert(id, n),
            None => self.multicast.remove(&id),
        };
        if let Some(u) = undo {
            u.push(Undo::Multicast { id, previous });
        }
        Ok(())
    }

    fn write_clone_session(
        &mut self,
        dp: &dyn Dataplane,
        op: Op,
        mut c: p4::CloneSessionEntry,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        if op == Op::Delete {
            if c.session_id == 0 {
                return Err(StoreError::Invalid(
                    "clone session ID 0 cannot be deleted".into(),
                ));
            }
        } else {
            validate::check_clone_session(&mut c)?;
        }
        let mut entity = p4::Entity {
            entity: Some(p4::entity::Entity::PacketReplicationEngineEntry(
                p4::PacketReplicationEngineEntry {
                    r#type: Some(p4::packet_replication_engine_entry::Type::CloneSessionEntry(c)),
                },
            )),
        };
        normalize(&mut entity);
        let Some(p4::entity::Entity::PacketReplicationEngineEntry(
            p4::PacketReplicationEngineEntry {
                r#type: Some(p4::packet_replication_engine_entry::Type::CloneSessionEntry(c)),
            },
        )) = entity.entity
        else {
            return Err(StoreError::Invalid(
                "clone session lost in normalisation".into(),
            ));
        };
        let id = c.session_id;
        let at = format!("clone session {id}");
        check_presence(op, self.clone_sessions.contains_key(&id), &at)?;
        let new = (op != Op::Delete).then_some(c);
        self.set_clone_session(dp, id, new, undo)
    }

    fn set_clone_session(
        &mut self,
        dp: &dyn Dataplane,
        id: u32,
        new: Option<p4::CloneSessionEntry>,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<(), StoreError> {
        let old = self.clone_sessions.get(&id);
        let Some(c) = change(old, new.as_ref(), Entry::CloneSession) else {
            return Ok(());
        };
        dp.apply(&c)?;
        self.generation = self.generation.wrapping_add(1);
        let previous = match new {
            Some(n) => self.clone_sessions.insert(id, n),
            None => self.clone_sessions.remove(&id),
        };
        if let Some(u) = undo {
            u.push(Undo::CloneSession { id, previous });
        }
        Ok(())
    }

    /// Reverses one applied update. A data plane that refuses the reversal
    /// keeps the update applied in both, so they still agree.
    // TODO-robustness: a refused reversal leaves that update applied while
    // the client is told the batch was rolled back; only a log line says so.
    pub(crate) fn undo(&mut self, pipe: &Pipeline, dp: &dyn Dataplane, u: Undo) {
        let r = match u {
            Undo::Table {
                table_id,
                key,
                previous,
            } => {
                table_info(pipe, table_id).and_then(|t| self.set_entry(dp, t, key, previous, None))
            }
            Undo::Default { table_id, previous } => {
                table_info(pipe, table_id).and_then(|t| self.set_default(dp, t, previous, None))
            }
            Undo::Member {
                profile,
                id,
                previous,
            } => self.set_member(dp, profile, id, previous, None),
            Undo::Group {
                profile,
                id,
                previous,
            } => self.set_group(dp, profile, id, previous, None),
            Undo::Multicast { id, previous } => self.set_multicast(dp, id, previous, None),
            Undo::CloneSession { id, previous } => self.set_clone_session(dp, id, previous, None),
        };
        if let Err(e) = r {
            error!(error = %e, "rollback: the data plane refused to undo an update; it stays applied");
        }
    }

    /// Number of table entries, over all tables (default entries excluded).
    pub(crate) fn table_entry_count(&self) -> usize {
        self.tables.values().map(|t| t.entries.len()).sum()
    }

    /// Every entity as the updates that would write it again, in an order
    /// that satisfies references: members, groups, table entries, default
    /// entries, multicast groups, clone sessions.
    pub(crate) fn into_updates(self) -> Vec<p4::Update> {
        super::persist::updates(&self)
    }
}

fn check_presence(op: Op, exists: bool, at: &str) -> Result<(), StoreError> {
    match (op, exists) {
        (Op::Insert, true) => Err(StoreError::AlreadyExists(format!("{at} exists"))),
        (Op::Modify | Op::Delete, false) => {
            Err(StoreError::NotFound(format!("{at} does not exist")))
        }
        _ => Ok(()),
    }
}

/// A name for an entity kind, for messages.
pub(crate) fn entity_kind(e: &p4::entity::Entity) -> &'static str {
    use p4::entity::Entity as E;
    match e {
        E::ExternEntry(_) => "extern",
        E::TableEntry(_) => "table",
        E::ActionProfileMember(_) => "action profile member",
        E::ActionProfileGroup(_) => "action profile group",
        E::MeterEntry(_) => "meter",
        E::DirectMeterEntry(_) => "direct meter",
        E::CounterEntry(_) => "counter",
        E::DirectCounterEntry(_) => "direct counter",
        E::PacketReplicationEngineEntry(_) => "packet replication engine",
        E::ValueSetEntry(_) => "value set",
        E::RegisterEntry(_) => "register",
        E::DigestEntry(_) => "digest",
    }
}
