//! Entity builders checked against P4Info before anything is sent, and the
//! normal form that makes entities comparable.
//!
//! Every builder resolves names through a [`P4InfoIndex`], checks match kinds,
//! widths and priorities, and writes canonical byte strings. A mistake is a
//! typed [`EntityError`] that names the table (or profile, or header) and the
//! field.

use crate::canonical::{self, ToBytes, ValueError};
use crate::p4info::{ActionInfo, ActionScope, MatchKind, P4InfoIndex, TableInfo};
use crate::proto::p4::v1 as p4;

/// A mistake in an entity, found before it reaches a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityError {
    /// No such entity in the P4Info.
    #[error("no {kind} named {name:?} in the P4Info")]
    Unknown {
        /// Entity kind.
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// No such match field in the table.
    #[error("table {table:?} has no match field {field:?}")]
    UnknownField {
        /// Table name.
        table: String,
        /// Field asked for.
        field: String,
    },
    /// The field is matched with another kind.
    #[error("table {table:?} field {field:?} is {expected}, not {given}")]
    WrongMatchKind {
        /// Table name.
        table: String,
        /// Field name.
        field: String,
        /// Kind in the P4Info.
        expected: MatchKind,
        /// Kind the caller used.
        given: MatchKind,
    },
    /// A value does not fit its field or parameter.
    #[error("{owner:?} {kind} {field:?}: {problem}")]
    Value {
        /// Table, action or header name.
        owner: String,
        /// Field or parameter name.
        field: String,
        /// What is wrong with the value.
        problem: ValueError,
        /// "field", "parameter" or "metadata field".
        kind: &'static str,
    },
    /// The same field was given twice.
    #[error("table {table:?} field {field:?} is given twice")]
    DuplicateField {
        /// Table name.
        table: String,
        /// Field name.
        field: String,
    },
    /// An exact field has no value.
    #[error("table {table:?} needs a value for exact field {field:?}")]
    MissingField {
        /// Table name.
        table: String,
        /// Field name.
        field: String,
    },
    /// A range whose low end is above its high end.
    #[error("table {table:?} field {field:?}: range low is above high")]
    EmptyRange {
        /// Table name.
        table: String,
        /// Field name.
        field: String,
    },
    /// The table needs a priority (it has ternary, range or optional fields).
    #[error("table {table:?} has ternary, range or optional fields: entries need a priority > 0")]
    PriorityRequired {
        /// Table name.
        table: String,
    },
    /// The table takes no priority (all its fields are exact or LPM).
    #[error("table {table:?} has only exact and LPM fields: entries take no priority")]
    PriorityNotAllowed {
        /// Table name.
        table: String,
    },
    /// The action is not one the table may run, or not in this scope.
    #[error("table {table:?} cannot run action {action:?} {context}")]
    ActionNotAllowed {
        /// Table name.
        table: String,
        /// Action name.
        action: String,
        /// "in an entry" or "as the default action".
        context: &'static str,
    },
    /// An action parameter is unknown, missing or repeated.
    #[error("action {action:?} parameter {param:?}: {problem}")]
    Param {
        /// Action name.
        action: String,
        /// Parameter name.
        param: String,
        /// "unknown", "missing" or "given twice".
        problem: &'static str,
    },
    /// An entry has no action.
    #[error("table {table:?}: the entry has no action")]
    NoAction {
        /// Table name.
        table: String,
    },
    /// Direct actions on a table implemented by a profile, or the reverse.
    #[error("table {table:?}: {problem}")]
    Implementation {
        /// Table name.
        table: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A weighted group member with a weight below 1.
    #[error(
        "group {group} of {profile:?}: member {member} has weight {weight}; weights start at 1"
    )]
    BadWeight {
        /// Profile name.
        profile: String,
        /// Group ID.
        group: u32,
        /// Member ID.
        member: u32,
        /// The weight given.
        weight: i32,
    },
}

fn value_err<'a>(owner: &'a str, field: &'a str) -> impl FnOnce(ValueError) -> EntityError + 'a {
    value_err_of(owner, "field", field)
}

fn value_err_of<'a>(
    owner: &'a str,
    kind: &'static str,
    field: &'a str,
) -> impl FnOnce(ValueError) -> EntityError + 'a {
    move |problem| EntityError::Value {
        kind,
        owner: owner.to_string(),
        field: field.to_string(),
        problem,
    }
}

fn table_action(table: &TableInfo, a: p4::Action) -> p4::TableAction {
    let _ = table;
    p4::TableAction {
        r#type: Some(p4::table_action::Type::Action(a)),
    }
}

/// Builds an action call: `index.action("set_next_hop")?.param("port", 3u16)?`.
#[derive(Debug, Clone)]
pub struct ActionBuilder<'a> {
    info: &'a ActionInfo,
    params: Vec<p4::action::Param>,
}

impl<'a> ActionBuilder<'a> {
    /// Sets parameter `name` to `value`.
    ///
    /// # Errors
    /// Unknown parameter, repeated parameter, or a value too wide.
    pub fn param(mut self, name: &str, value: impl ToBytes) -> Result<Self, EntityError> {
        let p = self.info.param(name).ok_or_else(|| EntityError::Param {
            action: self.info.name.clone(),
            param: name.to_string(),
            problem: "unknown",
        })?;
        if self.params.iter().any(|q| q.param_id == p.id) {
            return Err(EntityError::Param {
                action: self.info.name.clone(),
                param: name.to_string(),
                problem: "given twice",
            });
        }
        let value = canonical::fit(&value.to_bytes(), p.bitwidth).map_err(value_err_of(
            &self.info.name,
            "parameter",
            name,
        ))?;
        self.params.push(p4::action::Param {
            param_id: p.id,
            value,
        });
        Ok(self)
    }

    /// Finishes the action, checking that every parameter has a value.
    ///
    /// # Errors
    /// [`EntityError::Param`] for the first missing parameter.
    pub fn build(mut self) -> Result<p4::Action, EntityError> {
        if let Some(missing) = self
            .info
            .params
            .iter()
            .find(|p| !self.params.iter().any(|q| q.param_id == p.id))
        {
            return Err(EntityError::Param {
                action: self.info.name.clone(),
                param: missing.name.clone(),
                problem: "missing",
            });
        }
        self.params.sort_by_key(|p| p.param_id);
        Ok(p4::Action {
            action_id: self.info.id,
            params: self.params,
        })
    }
}

impl P4InfoIndex {
    /// Starts an action call.
    ///
    /// # Errors
    /// [`EntityError::Unknown`] when no action has this name or alias.
    pub fn action(&self, name: &str) -> Result<ActionBuilder<'_>, EntityError> {
        let info = self
            .actions
            .by_name(name)
            .ok_or_else(|| EntityError::Unknown {
                kind: "action",
                name: name.to_string(),
            })?;
        Ok(ActionBuilder {
            info,
            params: Vec::new(),
        })
    }

    /// Starts a table entry.
    ///
    /// # Errors
    /// [`EntityError::Unknown`] when no table has this name or alias.
    pub fn table_entry(&self, table: &str) -> Result<TableEntryBuilder<'_>, EntityError> {
        let info = self
            .tables
            .by_name(table)
            .ok_or_else(|| EntityError::Unknown {
                kind: "table",
                name: table.to_string(),
            })?;
        Ok(TableEntryBuilder {
            index: self,
            table: info,
            entry: p4::TableEntry {
                table_id: info.id,
                ..Default::default()
            },
        })
    }

    /// An action-profile member running `action`.
    ///
    /// # Errors
    /// Unknown profile, or an action the profile's tables cannot run.
    pub fn profile_member(
        &self,
        profile: &str,
        member_id: u32,
        action: p4::Action,
    ) -> Result<p4::ActionProfileMember, EntityError> {
        let prof = self
            .action_profiles
            .by_name(profile)
            .ok_or_else(|| EntityError::Unknown {
                kind: "action profile",
                name: profile.to_string(),
            })?;
        for t in &prof.table_ids {
            if let Some(table) = self.tables.by_id(*t) {
                self.check_action_in_table(table, action.action_id, false)?;
            }
        }
        Ok(p4::ActionProfileMember {
            action_profile_id: prof.id,
            member_id,
            action: Some(action),
        })
    }

    /// A weighted group of members `(member_id, weight)`.
    ///
    /// # Errors
    /// Unknown profile, a profile without selector, weights below 1.
    pub fn profile_group(
        &self,
        profile: &str,
        group_id: u32,
        members: &[(u32, i32)],
    ) -> Result<p4::ActionProfileGroup, EntityError> {
        let prof = self
            .action_profiles
            .by_name(profile)
            .ok_or_else(|| EntityError::Unknown {
                kind: "action profile",
                name: profile.to_string(),
            })?;
        if !prof.with_selector {
            return Err(EntityError::Unknown {
                kind: "action selector",
                name: profile.to_string(),
            });
        }
        let mut out = Vec::with_capacity(members.len());
        for (member, weight) in members {
            if *weight < 1 {
                return Err(EntityError::BadWeight {
                    profile: prof.name.clone(),
                    group: group_id,
                    member: *member,
                    weight: *weight,
                });
            }
            out.push(p4::action_profile_group::Member {
                member_id: *member,
                weight: *weight,
                ..Default::default()
            });
        }
        Ok(p4::ActionProfileGroup {
            action_profile_id: prof.id,
            group_id,
            members: out,
            max_size: prof.max_group_size,
        })
    }

    /// A read of one cell (`Some(index)`) or all cells (`None`) of an indexed counter.
    ///
    /// # Errors
    /// [`EntityError::Unknown`] when no counter has this name.
    pub fn counter_entry(
        &self,
        counter: &str,
        index: Option<i64>,
    ) -> Result<p4::CounterEntry, EntityError> {
        let c = self
            .counters
            .by_name(counter)
            .ok_or_else(|| EntityError::Unknown {
                kind: "counter",
                name: counter.to_string(),
            })?;
        Ok(p4::CounterEntry {
            counter_id: c.id,
            index: index.map(|index| p4::Index { index }),
            data: None,
        })
    }

    /// Packet metadata for the controller header `header` (`packet_out`
    /// for packets the controller sends), from `(name, value)` pairs.
    ///
    /// # Errors
    /// Unknown header or field, or a value too wide.
    pub fn packet_metadata(
        &self,
        header: &str,
        fields: &[(&str, &dyn ToBytes)],
    ) -> Result<Vec<p4::PacketMetadata>, EntityError> {
        let h = self
            .packet_metadata
            .by_name(header)
            .ok_or_else(|| EntityError::Unknown {
                kind: "controller packet header",
                name: header.to_string(),
            })?;
        let mut out = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let m = h.metadata.iter().find(|m| m.name == *name).ok_or_else(|| {
                EntityError::Unknown {
                    kind: "packet metadata field",
                    name: format!("{}.{}", h.name, name),
                }
            })?;
            let value = canonical::fit(&value.to_bytes(), m.bitwidth).map_err(value_err_of(
                &h.name,
                "metadata field",
                name,
            ))?;
            out.push(p4::PacketMetadata {
                metadata_id: m.id,
                value,
            });
        }
        Ok(out)
    }

    /// Decodes packet metadata of header `header` into `(name, value)` pairs.
    /// Unknown IDs are kept under the name `#<id>`.
    #[must_use]
    pub fn decode_packet_metadata(
        &self,
        header: &str,
        metadata: &[p4::PacketMetadata],
    ) -> Vec<(String, Vec<u8>)> {
        let h = self.packet_metadata.by_name(header);
        metadata
            .iter()
            .map(|m| {
                let name = h
                    .and_then(|h| h.metadata.iter().find(|f| f.id == m.metadata_id))
                    .map_or_else(|| format!("#{}", m.metadata_id), |f| f.name.clone());
                (name, canonical::canonical(&m.value))
            })
            .collect()
    }

    fn check_action_in_table(
        &self,
        table: &TableInfo,
        action_id: u32,
        as_default: bool,
    ) -> Result<(), EntityError> {
        let name = || {
            self.actions
                .by_id(action_id)
                .map_or_else(|| format!("#{action_id}"), |a| a.name.clone())
        };
        let context = if as_default {
            "as the default action"
        } else {
            "in an entry"
        };
        let allowed = match table.action_scope(action_id) {
            None => false,
            Some(ActionScope::TableAndDefault) => true,
            Some(ActionScope::TableOnly) => !as_default,
            Some(ActionScope::DefaultOnly) => as_default,
        };
        if !allowed {
            return Err(EntityError::ActionNotAllowed {
                table: table.name.clone(),
                action: name(),
                context,
            });
        }
        Ok(())
    }
}

/// Builds a table entry field by field.
#[derive(Debug, Clone)]
pub struct TableEntryBuilder<'a> {
    index: &'a P4InfoIndex,
    table: &'a TableInfo,
    entry: p4::TableEntry,
}

impl<'a> TableEntryBuilder<'a> {
    /// A value of field `name` in canonical form, checked against its width.
    fn fit(&self, name: &str, value: &impl ToBytes, bitwidth: u32) -> Result<Vec<u8>, EntityError> {
        canonical::fit(&value.to_bytes(), bitwidth).map_err(value_err(&self.table.name, name))
    }

    fn field(
        &self,
        name: &str,
        given: MatchKind,
    ) -> Result<&'a crate::p4info::MatchFieldInfo, EntityError> {
        let f = self
            .table
            .field(name)
            .ok_or_else(|| EntityError::UnknownField {
                table: self.table.name.clone(),
                field: name.to_string(),
            })?;
        if f.kind != given {
            return Err(EntityError::WrongMatchKind {
                table: self.table.name.clone(),
                field: name.to_string(),
                expected: f.kind,
                given,
            });
        }
        if self.entry.r#match.iter().any(|m| m.field_id == f.id) {
            return Err(EntityError::DuplicateField {
                table: self.table.name.clone(),
                field: name.to_string(),
            });
        }
        Ok(f)
    }

    fn push(&mut self, field_id: u32, m: p4::field_match::FieldMatchType) {
        self.entry.r#match.push(p4::FieldMatch {
            field_id,
            field_match_type: Some(m),
        });
    }

    /// Matches field `name` exactly.
    ///
    /// # Errors
    /// Unknown field, wrong kind, repeated field, value too wide.
    pub fn exact(mut self, name: &str, value: impl ToBytes) -> Result<Self, EntityError> {
        let f = self.field(name, MatchKind::Exact)?;
        let value = self.fit(name, &value, f.bitwidth)?;
        self.push(
            f.id,
            p4::field_match::FieldMatchType::Exact(p4::field_match::Exact { value }),
        );
        Ok(self)
    }

    /// Matches the first `prefix_len` bits of field `name`. Bits past the
    /// prefix are cleared; a prefix of 0 is a wildcard and adds nothing.
    ///
    /// # Errors
    /// Unknown field, wrong kind, repeated field, value or prefix too wide.
    pub fn lpm(
        mut self,
        name: &str,
        value: impl ToBytes,
        prefix_len: i32,
    ) -> Result<Self, EntityError> {
        let f = self.field(name, MatchKind::Lpm)?;
        let err = value_err(&self.table.name, name);
        let value =
            canonical::mask_prefix(&value.to_bytes(), prefix_len, f.bitwidth).map_err(err)?;
        if prefix_len > 0 {
            self.push(
                f.id,
                p4::field_match::FieldMatchType::Lpm(p4::field_match::Lpm { value, prefix_len }),
            );
        }
        Ok(self)
    }

    /// Matches field `name` under `mask`. Value bits outside the mask are
    /// cleared; an all-zero mask is a wildcard and adds nothing.
    ///
    /// # Errors
    /// Unknown field, wrong kind, repeated field, value or mask too wide.
    pub fn ternary(
        mut self,
        name: &str,
        value: impl ToBytes,
        mask: impl ToBytes,
    ) -> Result<Self, EntityError> {
        let f = self.field(name, MatchKind::Ternary)?;
        let mask = self.fit(name, &mask, f.bitwidth)?;
        let value = self.fit(name, &value, f.bitwidth)?;
        if mask != [0] {
            let value = canonical::and_mask(&value, &mask);
            self.push(
                f.id,
                p4::field_match::FieldMatchType::Ternary(p4::field_match::Ternary { value, mask }),
            );
        }
        Ok(self)
    }

    /// Matches field `name` in `low..=high`. The full range is a wildcard
    /// and adds nothing.
    ///
    /// # Errors
    /// Unknown field, wrong kind, repeated field, values too wide, low > high.
    pub fn range(
        mut self,
        name: &str,
        low: impl ToBytes,
        high: impl ToBytes,
    ) -> Result<Self, EntityError> {
        let f = self.field(name, MatchKind::Range)?;
        let low = self.fit(name, &low, f.bitwidth)?;
        let high = self.fit(name, &high, f.bitwidth)?;
        if canonical::cmp_uint(&low, &high) == std::cmp::Ordering::Greater {
            return Err(EntityError::EmptyRange {
                table: self.table.name.clone(),
                field: name.to_string(),
            });
        }
        let all_ones = high.iter().map(|b| b.count_ones()).sum::<u32>() == f.bitwidth;
        let full = low == [0] && canonical::bit_length(&high) == f.bitwidth && all_ones;
        if !full {
            self.push(
                f.id,
                p4::field_match::FieldMatchType::Range(p4::field_match::Range { low, high }),
            );
        }
        Ok(self)
    }

    /// Matches field `name` exactly; leaving it out matches any value.
    ///
    /// # Errors
    /// Unknown field, wrong kind, repeated field, value too wide.
    pub fn optional(mut self, name: &str, value: impl ToBytes) -> Result<Self, EntityError> {
        let f = self.field(name, MatchKind::Optional)?;
        let value = self.fit(name, &value, f.bitwidth)?;
        self.push(
            f.id,
            p4::field_match::FieldMatchType::Optional(p4::field_match::Optional { value }),
        );
        Ok(self)
    }

    /// Sets the priority (higher wins). Needed exactly when the table has
    /// ternary, range or optional fields.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.entry.priority = priority;
        self
    }

    /// Runs `action` directly.
    ///
    /// # Errors
    /// The table is implemented by an action profile, or cannot run it.
    pub fn action(mut self, action: p4::Action) -> Result<Self, EntityError> {
        if self.table.implementation_id.is_some() {
            return Err(EntityError::Implementation {
                table: self.table.name.clone(),
                problem:
                    "is implemented by an action profile: give a member or a group, not an action",
            });
        }
        self.index.check_action_in_table(
            self.table,
            action.action_id,
            self.entry.is_default_action,
        )?;
        self.entry.action = Some(table_action(self.table, action));
        Ok(self)
    }

    /// Runs action-profile member `member_id`.
    ///
    /// # Errors
    /// The table has no action profile.
    pub fn member(mut self, member_id: u32) -> Result<Self, EntityError> {
        self.need_profile(false)?;
        self.entry.action = Some(p4::TableAction {
            r#type: Some(p4::table_action::Type::ActionProfileMemberId(member_id)),
        });
        Ok(self)
    }

    /// Runs action-profile group `group_id`.
    ///
    /// # Errors
    /// The table has no action selector.
    pub fn group(mut self, group_id: u32) -> Result<Self, EntityError> {
        self.need_profile(true)?;
        self.entry.action = Some(p4::TableAction {
            r#type: Some(p4::table_action::Type::ActionProfileGroupId(group_id)),
        });
        Ok(self)
    }

    /// Runs a one-shot weighted action set: `(action, weight)` pairs.
    ///
    /// # Errors
    /// The table has no action selector, or an action it cannot run.
    pub fn one_shot(mut self, actions: Vec<(p4::Action, i32)>) -> Result<Self, EntityError> {
        self.need_profile(true)?;
        let mut set = Vec::with_capacity(actions.len());
        for (action, weight) in actions {
            self.index
                .check_action_in_table(self.table, action.action_id, false)?;
            set.push(p4::ActionProfileAction {
                action: Some(action),
                weight,
                ..Default::default()
            });
        }
        self.entry.action = Some(p4::TableAction {
            r#type: Some(p4::table_action::Type::ActionProfileActionSet(
                p4::ActionProfileActionSet {
                    action_profile_actions: set,
                    ..Default::default()
                },
            )),
        });
        Ok(self)
    }

    fn need_profile(&self, selector: bool) -> Result<(), EntityError> {
        let prof = self
            .table
            .implementation_id
            .and_then(|id| self.index.action_profiles.by_id(id));
        match prof {
            None => Err(EntityError::Implementation {
                table: self.table.name.clone(),
                problem: "has no action profile: give an action, not a member or group",
            }),
            Some(p) if selector && !p.with_selector => Err(EntityError::Implementation {
                table: self.table.name.clone(),
                problem: "its action profile has no selector: groups are not allowed",
            }),
            Some(_) => Ok(()),
        }
    }

    /// Marks this as the table's default entry (no match fields).
    #[must_use]
    pub fn as_default(mut self) -> Self {
        self.entry.is_default_action = true;
        self
    }

    /// Finishes the entry (as an [`p4::Entity`] ready for a write or read).
    ///
    /// # Errors
    /// Missing exact fields, a missing or needless priority, no action.
    pub fn build(self) -> Result<p4::Entity, EntityError> {
        Ok(p4::Entity {
            entity: Some(p4::entity::Entity::TableEntry(self.build_entry()?)),
        })
    }

    /// Finishes the entry as a key only (for a delete or a read of one
    /// entry): as [`Self::build`], but the entry needs no action.
    ///
    /// # Errors
    /// Missing exact fields, a missing or needless priority.
    pub fn build_key(mut self) -> Result<p4::Entity, EntityError> {
        let keep = self.entry.action.take();
        self.entry.action = Some(p4::TableAction::default());
        let mut entry = self.build_entry()?;
        entry.action = keep;
        Ok(p4::Entity {
            entity: Some(p4::entity::Entity::TableEntry(entry)),
        })
    }

    /// Finishes the entry as a bare [`p4::TableEntry`].
    ///
    /// # Errors
    /// As [`Self::build`].
    pub fn build_entry(mut self) -> Result<p4::TableEntry, EntityError> {
        let t = self.table;
        if self.entry.is_default_action {
            if !self.entry.r#match.is_empty() {
                return Err(EntityError::UnknownField {
                    table: t.name.clone(),
                    field: "(default entries match nothing)".into(),
                });
            }
        } else {
            if let Some(f) = t.match_fields.iter().find(|f| {
                f.kind == MatchKind::Exact && !self.entry.r#match.iter().any(|m| m.field_id == f.id)
            }) {
                return Err(EntityError::MissingField {
                    table: t.name.clone(),
                    field: f.name.clone(),
                });
            }
            match (t.needs_priority(), self.entry.priority) {
                (true, p) if p <= 0 => {
                    return Err(EntityError::PriorityRequired {
                        table: t.name.clone(),
                    })
                }
                (false, p) if p != 0 => {
                    return Err(EntityError::PriorityNotAllowed {
                        table: t.name.clone(),
                    })
                }
                _ => {}
            }
            if self.entry.action.is_none() {
                return Err(EntityError::NoAction {
                    table: t.name.clone(),
                });
            }
        }
        self.entry.r#match.sort_by_key(|m| m.field_id);
        Ok(self.entry)
    }

    /// A wildcard read of the whole table (a builder is not needed for it).
    #[must_use]
    pub fn wildcard(table_id: u32) -> p4::Entity {
        p4::Entity {
            entity: Some(p4::entity::Entity::TableEntry(p4::TableEntry {
                table_id,
                ..Default::default()
            })),
        }
    }
}

/// Puts an entity into normal form so that two entities that mean the same
/// compare equal: canonical byte strings everywhere, match fields sorted by
/// ID, action parameters sorted by ID, group members sorted by ID. Counter
/// and meter data read back with a table entry are dropped (they are state,
/// not configuration).
pub fn normalize(entity: &mut p4::Entity) {
    use p4::entity::Entity as E;
    match entity.entity.as_mut() {
        Some(E::TableEntry(t)) => normalize_table_entry(t),
        Some(E::ActionProfileMember(m)) => {
            if let Some(a) = m.action.as_mut() {
                normalize_action(a);
            }
        }
        Some(E::ActionProfileGroup(g)) => g.members.sort_by_key(|m| m.member_id),
        Some(E::PacketReplicationEngineEntry(p)) => {
            use p4::packet_replication_engine_entry::Type;
            match p.r#type.as_mut() {
                Some(Type::MulticastGroupEntry(m)) => {
                    m.replicas.sort_by_key(replica_key);
                }
                Some(Type::CloneSessionEntry(c)) => {
                    c.replicas.sort_by_key(replica_key);
                }
                None => {}
            }
        }
        _ => {}
    }
}

fn replica_key(r: &p4::Replica) -> (u32, Vec<u8>) {
    #[allow(deprecated)]
    let port = match &r.port_kind {
        Some(p4::replica::PortKind::Port(p)) => canonical::canonical(p),
        Some(p4::replica::PortKind::EgressPort(p)) => p.to_be_bytes().to_vec(),
        None => Vec::new(),
    };
    (r.instance, port)
}

fn normalize_action(a: &mut p4::Action) {
    for p in &mut a.params {
        p.value = canonical::canonical(&p.value);
    }
    a.params.sort_by_key(|p| p.param_id);
}

/// Normal form of a table entry; see [`normalize`].
pub fn normalize_table_entry(t: &mut p4::TableEntry) {
    use p4::field_match::FieldMatchType as M;
    for m in &mut t.r#match {
        match m.field_match_type.as_mut() {
            Some(M::Exact(e)) => e.value = canonical::canonical(&e.value),
            Some(M::Lpm(l)) => l.value = canonical::canonical(&l.value),
            Some(M::Ternary(x)) => {
                x.mask = canonical::canonical(&x.mask);
                x.value = canonical::and_mask(&x.value, &x.mask);
            }
            Some(M::Range(r)) => {
                r.low = canonical::canonical(&r.low);
                r.high = canonical::canonical(&r.high);
            }
            Some(M::Optional(o)) => o.value = canonical::canonical(&o.value),
            Some(M::Other(_)) | None => {}
        }
    }
    t.r#match.sort_by_key(|m| m.field_id);
    match t.action.as_mut().and_then(|a| a.r#type.as_mut()) {
        Some(p4::table_action::Type::Action(a)) => normalize_action(a),
        Some(p4::table_action::Type::ActionProfileActionSet(s)) => {
            for x in &mut s.action_profile_actions {
                if let Some(a) = x.action.as_mut() {
                    normalize_action(a);
                }
            }
        }
        _ => {}
    }
    t.counter_data = None;
    t.meter_counter_data = None;
    t.time_since_last_hit = None;
}
