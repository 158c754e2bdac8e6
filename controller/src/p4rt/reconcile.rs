//! Reconciliation: make a device hold exactly the desired entities by
//! writing only the difference.
//!
//! Entities are identified by their key (table + match + priority for table
//! entries, profile + ID for members and groups, group or session ID for
//! replication entries). The writes are ordered so that nothing refers to
//! what does not exist yet: members, then groups, then table entries when
//! inserting, and the reverse when deleting.

use std::collections::HashMap;

use prost::Message;
use solyx_p4runtime::entity::normalize;
use solyx_p4runtime::proto::p4::v1 as p4;
use tracing::info;

use super::write::update;
use super::{ClientError, DeviceSession, UpdateError};

/// The writes that turn `actual` into `desired`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Entities to insert, in dependency order.
    pub insert: Vec<p4::Entity>,
    /// Entities to modify (same key, other contents).
    pub modify: Vec<p4::Entity>,
    /// Entities to delete, in reverse dependency order.
    pub delete: Vec<p4::Entity>,
}

impl Diff {
    /// Whether nothing needs writing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.insert.is_empty() && self.modify.is_empty() && self.delete.is_empty()
    }

    /// The updates, in the order they must be sent.
    #[must_use]
    pub fn into_updates(self) -> Vec<p4::Update> {
        use p4::update::Type;
        let mut out = Vec::with_capacity(self.insert.len() + self.modify.len() + self.delete.len());
        // Deleting table entries first frees references to groups and members
        // that may go; inserting members and groups before modifying entries
        // makes new references valid.
        let (del_refs, del_rest): (Vec<_>, Vec<_>) = self
            .delete
            .into_iter()
            .partition(|e| rank(e) == Rank::Table);
        out.extend(del_refs.into_iter().map(|e| update(Type::Delete, e)));
        out.extend(
            self.insert
                .iter()
                .filter(|e| rank(e) != Rank::Table)
                .cloned()
                .map(|e| update(Type::Insert, e)),
        );
        out.extend(self.modify.into_iter().map(|e| update(Type::Modify, e)));
        out.extend(
            self.insert
                .into_iter()
                .filter(|e| rank(e) == Rank::Table)
                .map(|e| update(Type::Insert, e)),
        );
        out.extend(del_rest.into_iter().map(|e| update(Type::Delete, e)));
        out
    }
}

/// What [`DeviceSession::reconcile`] changed.
#[derive(Debug, Clone, Default)]
pub struct ReconcileReport {
    /// Entities inserted.
    pub inserted: usize,
    /// Entities modified.
    pub modified: usize,
    /// Entities deleted.
    pub deleted: usize,
    /// Updates the device refused, with its reason.
    pub failed: Vec<(p4::Update, UpdateError)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Member,
    Group,
    Replication,
    Table,
    Other,
}

fn rank(e: &p4::Entity) -> Rank {
    use p4::entity::Entity as E;
    match &e.entity {
        Some(E::ActionProfileMember(_)) => Rank::Member,
        Some(E::ActionProfileGroup(_)) => Rank::Group,
        Some(E::PacketReplicationEngineEntry(_)) => Rank::Replication,
        Some(E::TableEntry(_)) => Rank::Table,
        _ => Rank::Other,
    }
}

/// The identity of an entity, as bytes: two entities with the same key are
/// the same object on the device.
fn key(e: &p4::Entity) -> Option<Vec<u8>> {
    use p4::entity::Entity as E;
    let mut k = vec![rank(e) as u8];
    match e.entity.as_ref()? {
        E::TableEntry(t) => {
            let id = p4::TableEntry {
                table_id: t.table_id,
                r#match: t.r#match.clone(),
                priority: t.priority,
                is_default_action: t.is_default_action,
                ..Default::default()
            };
            k.extend(id.encode_to_vec());
        }
        E::ActionProfileMember(m) => {
            k.extend(m.action_profile_id.to_be_bytes());
            k.extend(m.member_id.to_be_bytes());
        }
        E::ActionProfileGroup(g) => {
            k.extend(g.action_profile_id.to_be_bytes());
            k.extend(g.group_id.to_be_bytes());
        }
        E::PacketReplicationEngineEntry(p) => {
            use p4::packet_replication_engine_entry::Type;
            match p.r#type.as_ref()? {
                Type::MulticastGroupEntry(m) => {
                    k.push(0);
                    k.extend(m.multicast_group_id.to_be_bytes());
                }
                Type::CloneSessionEntry(c) => {
                    k.push(1);
                    k.extend(c.session_id.to_be_bytes());
                }
            }
        }
        _ => return None,
    }
    Some(k)
}

/// The positions of two entities of `desired` with the same key (the same
/// table entry, member, group, multicast group or clone session), if any:
/// such a list cannot be applied without losing one of them.
#[must_use]
pub fn find_duplicate(desired: &[p4::Entity]) -> Option<(usize, usize)> {
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::with_capacity(desired.len());
    for (i, e) in desired.iter().enumerate() {
        let mut e = e.clone();
        normalize(&mut e);
        if let Some(k) = key(&e) {
            if let Some(first) = seen.insert(k, i) {
                return Some((first, i));
            }
        }
    }
    None
}

/// References in the state a device would hold that point at nothing:
/// group members, and table entries that name a member or group absent
/// from `state` (when `state` manages action profiles at all). Each is
/// described in words.
#[must_use]
pub fn dangling_references(state: &[p4::Entity]) -> Vec<String> {
    use p4::entity::Entity as E;
    let mut members = std::collections::HashSet::new();
    let mut groups = std::collections::HashSet::new();
    for e in state {
        match &e.entity {
            Some(E::ActionProfileMember(m)) => {
                members.insert((m.action_profile_id, m.member_id));
            }
            Some(E::ActionProfileGroup(g)) => {
                groups.insert((g.action_profile_id, g.group_id));
            }
            _ => {}
        }
    }
    let profiles: std::collections::HashSet<u32> = members
        .iter()
        .map(|m| m.0)
        .chain(groups.iter().map(|g| g.0))
        .collect();
    let known =
        |set: &std::collections::HashSet<(u32, u32)>, id: u32| set.iter().any(|(_, x)| *x == id);
    let mut out = Vec::new();
    for e in state {
        match &e.entity {
            Some(E::ActionProfileGroup(g)) => {
                for m in &g.members {
                    if !members.contains(&(g.action_profile_id, m.member_id)) {
                        out.push(format!(
                            "group {} uses member {}, which does not exist",
                            g.group_id, m.member_id
                        ));
                    }
                }
            }
            // Entries may refer to members and groups of a profile this
            // state does not manage (it lists none of them): those live on
            // the device and are not checked here.
            Some(E::TableEntry(t)) if !profiles.is_empty() => {
                match t.action.as_ref().and_then(|a| a.r#type.as_ref()) {
                    Some(p4::table_action::Type::ActionProfileMemberId(m))
                        if !known(&members, *m) =>
                    {
                        out.push(format!(
                            "an entry of table {} uses member {m}, which does not exist",
                            t.table_id
                        ));
                    }
                    Some(p4::table_action::Type::ActionProfileGroupId(g))
                        if !known(&groups, *g) =>
                    {
                        out.push(format!(
                            "an entry of table {} uses group {g}, which does not exist",
                            t.table_id
                        ));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

fn is_default(e: &p4::Entity) -> bool {
    matches!(&e.entity, Some(p4::entity::Entity::TableEntry(t)) if t.is_default_action)
}

/// Computes the writes that make a device holding `actual` hold `desired`.
/// Both sides are normalised first, so encodings that differ only in
/// leading zeros or field order do not count as changes. Default entries
/// are never inserted or deleted, only modified.
#[must_use]
pub fn diff(desired: &[p4::Entity], actual: &[p4::Entity]) -> Diff {
    let norm = |e: &p4::Entity| {
        let mut e = e.clone();
        normalize(&mut e);
        e
    };
    let mut have: HashMap<Vec<u8>, p4::Entity> = HashMap::with_capacity(actual.len());
    for e in actual {
        let e = norm(e);
        if let Some(k) = key(&e) {
            have.insert(k, e);
        }
    }
    let mut out = Diff::default();
    for e in desired {
        let e = norm(e);
        let Some(k) = key(&e) else { continue };
        match have.remove(&k) {
            Some(current) if current == e => {}
            Some(_) => out.modify.push(e),
            None if is_default(&e) => out.modify.push(e),
            None => out.insert.push(e),
        }
    }
    out.delete = have.into_values().filter(|e| !is_default(e)).collect();
    out.insert.sort_by_key(rank);
    out.modify.sort_by_key(rank);
    out.delete.sort_by_key(|e| std::cmp::Reverse(rank(e)));
    out
}

/// The wildcard reads that fetch everything reconciliation compares with
/// `desired`: every table, and the action profiles `desired` uses.
#[must_use]
pub fn wildcards(desired: &[p4::Entity]) -> Vec<p4::Entity> {
    use p4::entity::Entity as E;
    let mut out = vec![p4::Entity {
        entity: Some(E::TableEntry(p4::TableEntry::default())),
    }];
    let mut profiles: Vec<u32> = desired
        .iter()
        .filter_map(|e| match &e.entity {
            Some(E::ActionProfileMember(m)) => Some(m.action_profile_id),
            Some(E::ActionProfileGroup(g)) => Some(g.action_profile_id),
            _ => None,
        })
        .collect();
    profiles.sort_unstable();
    profiles.dedup();
    // Wildcard reads do not return default entries: ask for each one the
    // desired state sets.
    for e in desired {
        if let Some(E::TableEntry(t)) = &e.entity {
            if t.is_default_action {
                out.push(p4::Entity {
                    entity: Some(E::TableEntry(p4::TableEntry {
                        table_id: t.table_id,
                        is_default_action: true,
                        ..Default::default()
                    })),
                });
            }
        }
    }
    for action_profile_id in profiles {
        out.push(p4::Entity {
            entity: Some(E::ActionProfileGroup(p4::ActionProfileGroup {
                action_profile_id,
                ..Default::default()
            })),
        });
        out.push(p4::Entity {
            entity: Some(E::ActionProfileMember(p4::ActionProfileMember {
                action_profile_id,
                ..Default::default()
            })),
        });
    }
    out
}

impl DeviceSession {
    /// Reads what the device holds (every table, and the action profiles
    /// that `desired` uses) and writes only the difference. Run it after
    /// every (re)connection: a controller restart then rewrites nothing that
    /// is already right, so traffic is not disturbed.
    ///
    /// # Errors
    /// Not connected, not primary, or the read failed. Refused updates are
    /// in the report.
    pub async fn reconcile(&self, desired: &[p4::Entity]) -> Result<ReconcileReport, ClientError> {
        self.reconcile_with(desired, self.inner.config.write).await
    }

    /// [`Self::reconcile`] with explicit write options: with one batch and
    /// ROLLBACK_ON_ERROR the device applies the whole difference or none
    /// of it (what `solyx p4rt apply` does).
    ///
    /// # Errors
    /// As [`Self::reconcile`].
    pub async fn reconcile_with(
        &self,
        desired: &[p4::Entity],
        options: super::WriteOptions,
    ) -> Result<ReconcileReport, ClientError> {
        self.require_primary()?;
        if let Some((first, second)) = find_duplicate(desired) {
            return Err(ClientError::Desired {
                device_id: self.device_id(),
                problem: format!("entities {first} and {second} have the same key"),
            });
        }
        let dangling = dangling_references(desired);
        if !dangling.is_empty() {
            return Err(ClientError::Desired {
                device_id: self.device_id(),
                problem: dangling.join("; "),
            });
        }
        let actual = self.read(wildcards(desired)).await?;
        let d = diff(desired, &actual);
        let mut report = ReconcileReport {
            inserted: d.insert.len(),
            modified: d.modify.len(),
            deleted: d.delete.len(),
            failed: Vec::new(),
        };
        if d.is_empty() {
            self.inner
                .span
                .in_scope(|| info!(held = actual.len(), "reconcile: device is in sync"));
            return Ok(report);
        }
        let updates = d.into_updates();
        let results = self.write_with(updates.clone(), options).await?;
        for (u, r) in updates.into_iter().zip(results) {
            if let Err(e) = r {
                match p4::update::Type::try_from(u.r#type) {
                    Ok(p4::update::Type::Insert) => report.inserted -= 1,
                    Ok(p4::update::Type::Modify) => report.modified -= 1,
                    _ => report.deleted -= 1,
                }
                report.failed.push((u, e));
            }
        }
        self.inner.span.in_scope(|| {
            info!(
                inserted = report.inserted,
                modified = report.modified,
                deleted = report.deleted,
                failed = report.failed.len(),
                "reconciled"
            )
        });
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(table_id: u32, key: u32, port: u32) -> p4::Entity {
        p4::Entity {
            entity: Some(p4::entity::Entity::TableEntry(p4::TableEntry {
                table_id,
                r#match: vec![p4::FieldMatch {
                    field_id: 1,
                    field_match_type: Some(p4::field_match::FieldMatchType::Exact(
                        p4::field_match::Exact {
                            value: key.to_be_bytes().to_vec(),
                        },
                    )),
                }],
                action: Some(p4::TableAction {
                    r#type: Some(p4::table_action::Type::Action(p4::Action {
                        action_id: 9,
                        params: vec![p4::action::Param {
                            param_id: 1,
                            value: port.to_be_bytes().to_vec(),
                        }],
                    })),
                }),
                ..Default::default()
            })),
        }
    }

    fn member(id: u32) -> p4::Entity {
        p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileMember(
                p4::ActionProfileMember {
                    action_profile_id: 5,
                    member_id: id,
                    action: Some(p4::Action {
                        action_id: 9,
                        params: vec![],
                    }),
                },
            )),
        }
    }

    #[test]
    fn equal_sets_need_no_writes_even_with_padding_differences() {
        let desired = vec![entry(1, 1, 2), entry(1, 2, 3)];
        let mut actual = desired.clone();
        // The device pads values: still the same entries.
        if let Some(p4::entity::Entity::TableEntry(t)) = actual[0].entity.as_mut() {
            if let Some(p4::field_match::FieldMatchType::Exact(e)) =
                t.r#match[0].field_match_type.as_mut()
            {
                e.value = vec![0, 0, 0, 0, 0, 1];
            }
        }
        assert!(diff(&desired, &actual).is_empty());
    }

    #[test]
    fn insert_modify_delete_are_found_and_ordered() {
        let desired = vec![entry(1, 1, 2), entry(1, 2, 9), member(1)];
        let actual = vec![entry(1, 2, 3), entry(1, 3, 3), member(7)];
        let d = diff(&desired, &actual);
        assert_eq!(d.insert.len(), 2);
        assert_eq!(
            rank(&d.insert[0]),
            Rank::Member,
            "members go in before entries"
        );
        assert_eq!(
            d.modify,
            vec![{
                let mut e = entry(1, 2, 9);
                normalize(&mut e);
                e
            }]
        );
        assert_eq!(d.delete.len(), 2);
        assert_eq!(rank(&d.delete[0]), Rank::Table, "entries go before members");
        let kinds: Vec<i32> = d.into_updates().iter().map(|u| u.r#type).collect();
        use p4::update::Type::*;
        assert_eq!(
            kinds,
            vec![
                Delete as i32,
                Insert as i32,
                Modify as i32,
                Insert as i32,
                Delete as i32
            ]
        );
    }

    proptest! {
        /// Applying the diff to `actual` gives exactly `desired`, and a
        /// second diff is empty.
        #[test]
        fn applying_the_diff_converges(
            want in proptest::collection::btree_map(0u32..40, 0u32..4, 0..30),
            have in proptest::collection::btree_map(0u32..40, 0u32..4, 0..30),
        ) {
            let desired: Vec<_> = want.iter().map(|(k, v)| entry(1, *k, *v)).collect();
            let actual: Vec<_> = have.iter().map(|(k, v)| entry(1, *k, *v)).collect();
            let d = diff(&desired, &actual);
            let changed = want.iter().filter(|(k, v)| have.get(k).is_some_and(|h| h != *v)).count();
            prop_assert_eq!(d.modify.len(), changed);
            let mut state: HashMap<Vec<u8>, p4::Entity> =
                actual.iter().map(|e| { let mut e = e.clone(); normalize(&mut e); (key(&e).unwrap(), e) }).collect();
            for e in d.delete { state.remove(&key(&e).unwrap()); }
            for e in d.insert.into_iter().chain(d.modify) { state.insert(key(&e).unwrap(), e); }
            let after: Vec<_> = state.into_values().collect();
            prop_assert!(diff(&desired, &after).is_empty());
            prop_assert_eq!(after.len(), desired.len());
        }
    }
}
