//! The ACL (`FabricIngress.acl`) as installed: its rules in priority order,
//! each with its own counter slot, and the default action. The program sees
//! a whole rule table (see `solyx_ebpf_common::acl`), and swapping one in
//! waits for an RCU grace period (≈ 12 ms), so changes are collected and
//! published once, at the end of a P4Runtime Write ([`Acl::flush`], from
//! `Dataplane::end_batch`): a Write of 512 rules costs one swap, not 512.
//!
//! Until that publish the program still runs the previous table, so the
//! counter slot of a rule removed in the batch stays the old rule's
//! ("retired") and is handed out again only after the publish. The same
//! rule inserted again before the publish (the undo of a rolled-back
//! Write, or a delete and insert in one Write) takes its slot back with its
//! counter: for packets the rule never went away, and a rolled-back Write
//! leaves no trace, not even a swap.
//!
//! Rules are ordered by descending P4Runtime priority (a larger number
//! wins), then by value and mask, so that the order, and with it the
//! outcome for a packet two rules of equal priority match, is the same on
//! every agent and after every restart. P4Runtime leaves that case to the
//! target.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use solyx_ebpf_common::acl::{
    AclKey, AclRule, AclTable, ACL_ACTION_DROP, ACL_ACTION_PERMIT, ACL_ACTION_PUNT, ACL_CAPACITY,
    ACL_DEFAULT_SLOT,
};
use solyx_ebpf_common::Counter;
use solyx_p4runtime::proto::p4::v1 as p4;

use super::decode::{self, invalid};
use super::names::{AclIds, ACL_FIELDS};
use super::slots::Slots;
use super::to_dataplane_error;
use crate::ebpf::Tables;
use crate::p4rt::{DataplaneError, DataplaneErrorKind};

/// A rule's identity: priority (descending), value, mask.
pub(crate) type RuleKey = (Reverse<i32>, [u8; 32], [u8; 32]);

/// An installed rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Installed {
    pub(crate) action: u32,
    pub(crate) hit_slot: u32,
}

/// The ACL as installed.
#[derive(Debug)]
pub(crate) struct Acl {
    pub(crate) rules: BTreeMap<RuleKey, Installed>,
    pub(crate) default_action: u32,
    slots: Slots,
    /// While restoring: the rules of the pinned table, whose counter slots
    /// the same rules take over; and no table is published until the end.
    pub(crate) pinned: Option<Vec<AclRule>>,
    /// Rules removed since the last publish, with their counter slots: the
    /// published table may still count into those.
    retired: Vec<(RuleKey, u32)>,
    /// The table last published by this agent; `None` when unknown (a new
    /// data plane, a restore).
    published: Option<Box<AclTable>>,
    /// Tables published so far (for tests and logs).
    pub(crate) publishes: u64,
}

impl Default for Acl {
    fn default() -> Self {
        Self {
            rules: BTreeMap::new(),
            default_action: ACL_ACTION_PERMIT,
            slots: Slots::new(ACL_CAPACITY),
            pinned: None,
            retired: Vec::new(),
            published: None,
            publishes: 0,
        }
    }
}

/// The eBPF action of a P4 ACL action.
pub(crate) fn decode_action(ids: &AclIds, action: &p4::Action) -> Result<u32, DataplaneError> {
    if action.action_id == ids.punt {
        Ok(ACL_ACTION_PUNT)
    } else if action.action_id == ids.drop {
        Ok(ACL_ACTION_DROP)
    } else if action.action_id == ids.permit {
        Ok(ACL_ACTION_PERMIT)
    } else {
        Err(invalid(format!(
            "acl: action {:#010x} is not punt_to_cpu, drop or permit",
            action.action_id
        )))
    }
}

/// The rule key of an ACL entry: its ternary fields placed in the eBPF
/// key layout, the value masked.
pub(crate) fn decode_key(ids: &AclIds, entry: &p4::TableEntry) -> Result<RuleKey, DataplaneError> {
    let mut value = AclKey::default();
    let mut mask = AclKey::default();
    for (i, (name, _, offset, len)) in ACL_FIELDS.iter().enumerate() {
        let Some((v, m)) = decode::ternary(entry, ids.fields[i])? else {
            continue;
        };
        let (v, m) = match (decode::fixed::<8>(v), decode::fixed::<8>(m)) {
            (Some(v), Some(m)) => (v, m),
            _ => {
                return Err(invalid(format!(
                    "acl field {name}: value wider than 64 bits"
                )))
            }
        };
        if v[..8 - len].iter().chain(&m[..8 - len]).any(|&b| b != 0) {
            return Err(invalid(format!(
                "acl field {name}: value wider than the field"
            )));
        }
        for k in 0..*len {
            let (vb, mb) = (v[8 - len + k], m[8 - len + k]);
            value.bytes[offset + k] = vb & mb;
            mask.bytes[offset + k] = mb;
        }
    }
    Ok((Reverse(entry.priority), value.bytes, mask.bytes))
}

/// The eBPF rule of a key and its installation.
fn rule(key: &RuleKey, installed: Installed) -> AclRule {
    AclRule {
        value: AclKey { bytes: key.1 }.words(),
        mask: AclKey { bytes: key.2 }.words(),
        action: installed.action,
        hit_slot: installed.hit_slot,
    }
}

fn map_err(e: crate::ebpf::Error) -> DataplaneError {
    to_dataplane_error(&e)
}

impl Acl {
    /// The table the program should see now.
    fn table(&self) -> Box<AclTable> {
        let mut table = Box::new(AclTable::empty());
        table.default_action = self.default_action;
        for (slot, (key, installed)) in table.rules.iter_mut().zip(&self.rules) {
            *slot = rule(key, *installed);
        }
        table.count = self.rules.len().min(ACL_CAPACITY as usize) as u32;
        table
    }

    /// Publishes the current rules unless a restore is collecting them or
    /// the program already runs exactly this table; then hands the retired
    /// counter slots back.
    pub(crate) fn flush(&mut self, tables: &mut Tables) -> Result<(), DataplaneError> {
        if self.pinned.is_some() {
            return Ok(());
        }
        let table = self.table();
        if self.published.as_deref() != Some(&*table) {
            tables.publish_acl(&table).map_err(map_err)?;
            self.publishes += 1;
            self.published = Some(table);
        }
        for (_, slot) in self.retired.drain(..) {
            self.slots.free(slot);
        }
        Ok(())
    }

    /// Publishes the current rules in any case (the end of a restore),
    /// freeing the slots of pinned rules no installed rule took over.
    pub(crate) fn publish_now(&mut self, tables: &mut Tables) -> Result<(), DataplaneError> {
        for unclaimed in self.pinned.take().unwrap_or_default() {
            self.slots.free(unclaimed.hit_slot);
        }
        self.published = None;
        self.flush(tables)
    }

    /// The counter slot for a new rule `key`: its own if it was removed
    /// since the last publish (counter and all), else a free one, zeroed.
    /// When every slot is taken or retired, the pending changes are
    /// published first to free the retired ones.
    fn slot_for(&mut self, tables: &mut Tables, key: &RuleKey) -> Result<u32, DataplaneError> {
        if let Some(at) = self.retired.iter().position(|(k, _)| k == key) {
            return Ok(self.retired.swap_remove(at).1);
        }
        let mut slot = self.slots.take();
        if slot.is_none() && !self.retired.is_empty() {
            self.flush(tables)?;
            slot = self.slots.take();
        }
        let slot = slot.ok_or_else(|| {
            DataplaneError::new(
                DataplaneErrorKind::Full,
                format!("the ACL is full ({ACL_CAPACITY} rules)"),
            )
        })?;
        if let Err(e) = tables.reset_acl_hits(slot) {
            self.slots.free(slot);
            return Err(map_err(e));
        }
        Ok(slot)
    }

    /// Installs a rule (published by the next [`Acl::flush`]).
    pub(crate) fn insert(
        &mut self,
        tables: &mut Tables,
        key: RuleKey,
        action: u32,
    ) -> Result<(), DataplaneError> {
        if let Some(installed) = self.rules.get_mut(&key) {
            // Installed already (the store never asks for that): the same
            // rule with this action.
            installed.action = action;
            return Ok(());
        }
        let words = (
            AclKey { bytes: key.1 }.words(),
            AclKey { bytes: key.2 }.words(),
        );
        // A pinned rule's slot was reserved when the restore began.
        let adopted = self.pinned.as_mut().and_then(|pinned| {
            let at = pinned.iter().position(|r| (r.value, r.mask) == words)?;
            Some(pinned.swap_remove(at).hit_slot)
        });
        let hit_slot = match adopted {
            Some(slot) => slot,
            None => self.slot_for(tables, &key)?,
        };
        self.rules.insert(key, Installed { action, hit_slot });
        Ok(())
    }

    /// Changes the action of a rule (published by the next
    /// [`Acl::flush`]).
    pub(crate) fn modify(&mut self, key: RuleKey, action: u32) -> Result<(), DataplaneError> {
        let installed = self
            .rules
            .get_mut(&key)
            .ok_or_else(|| invalid("acl: the rule is not installed"))?;
        installed.action = action;
        Ok(())
    }

    /// Removes a rule (published by the next [`Acl::flush`], which then
    /// frees its counter slot).
    pub(crate) fn remove(&mut self, key: RuleKey) {
        if let Some(installed) = self.rules.remove(&key) {
            self.retired.push((key, installed.hit_slot));
        }
    }

    /// Sets the default action (`ACL_ACTION_*`; published by the next
    /// [`Acl::flush`]).
    pub(crate) fn set_default(&mut self, action: u32) {
        self.default_action = action;
    }

    /// The counter of a rule, or of the default entry.
    pub(crate) fn hits(
        &self,
        tables: &Tables,
        key: Option<&RuleKey>,
    ) -> Result<Counter, DataplaneError> {
        let slot = match key {
            None => ACL_DEFAULT_SLOT,
            Some(key) => match self.rules.get(key) {
                Some(installed) => installed.hit_slot,
                None => return Ok(Counter::default()),
            },
        };
        tables.acl_hits(slot).map_err(map_err)
    }

    /// Starts a restore: rules of the pinned table keep their counter slots
    /// when the same rules are installed again; nothing is published until
    /// [`Acl::publish_now`].
    pub(crate) fn begin_restore(&mut self, pinned: Option<&AclTable>) {
        let mut rules = Vec::new();
        if let Some(t) = pinned {
            for rule in t.rules.iter().take(t.count.min(ACL_CAPACITY) as usize) {
                // A slot out of range or used twice cannot be kept; such a
                // rule gets a fresh one if it is installed again.
                if self.slots.reserve(rule.hit_slot) {
                    rules.push(*rule);
                }
            }
        }
        self.pinned = Some(rules);
    }

    /// Forgets every rule and the published table (default permit), in
    /// memory only; the publish count stays.
    pub(crate) fn reset(&mut self) {
        let publishes = self.publishes;
        *self = Self {
            publishes,
            ..Self::default()
        };
    }

    /// Empties the ACL (default permit) and publishes that at once.
    pub(crate) fn clear(&mut self, tables: &mut Tables) -> Result<(), DataplaneError> {
        self.reset();
        self.flush(tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solyx_ebpf_common::acl::key;

    fn ids() -> AclIds {
        AclIds {
            table: 1,
            fields: [1, 2, 3, 4, 5, 6, 7, 8, 9],
            punt: 10,
            drop: 11,
            permit: 12,
        }
    }

    fn ternary(id: u32, value: &[u8], mask: &[u8]) -> p4::FieldMatch {
        p4::FieldMatch {
            field_id: id,
            field_match_type: Some(p4::field_match::FieldMatchType::Ternary(
                p4::field_match::Ternary {
                    value: value.to_vec(),
                    mask: mask.to_vec(),
                },
            )),
        }
    }

    #[test]
    fn keys_follow_the_ebpf_layout() {
        let entry = p4::TableEntry {
            table_id: 1,
            priority: 7,
            r#match: vec![
                ternary(1, &[0x01], &[0x01, 0xff]),
                ternary(4, &[0x08, 0x06], &[0xff, 0xff]),
                ternary(9, &[0x1e, 0x61], &[0xff, 0xf0]),
            ],
            ..Default::default()
        };
        let (priority, value, mask) = decode_key(&ids(), &entry).expect("key");
        assert_eq!(priority, Reverse(7));
        assert_eq!(&value[key::INGRESS_PORT..key::INGRESS_PORT + 2], &[0, 1]);
        assert_eq!(&mask[key::INGRESS_PORT..key::INGRESS_PORT + 2], &[1, 0xff]);
        assert_eq!(&value[key::ETH_TYPE..key::ETH_TYPE + 2], &[8, 6]);
        assert_eq!(
            &value[key::L4_DST..key::L4_DST + 2],
            &[0x1e, 0x60],
            "masked"
        );
        assert!(value[key::IPV4_SRC..key::IPV4_SRC + 4]
            .iter()
            .all(|&b| b == 0));
    }

    #[test]
    fn higher_priorities_come_first() {
        let mut acl = Acl::default();
        let a: RuleKey = (Reverse(1), [0; 32], [0; 32]);
        let b: RuleKey = (Reverse(9), [0; 32], [0; 32]);
        acl.rules.insert(
            a,
            Installed {
                action: ACL_ACTION_DROP,
                hit_slot: 0,
            },
        );
        acl.rules.insert(
            b,
            Installed {
                action: ACL_ACTION_PUNT,
                hit_slot: 1,
            },
        );
        let table = acl.table();
        assert_eq!(table.count, 2);
        assert_eq!(table.rules[0].action, ACL_ACTION_PUNT);
        assert_eq!(table.rules[1].hit_slot, 0);
        assert_eq!(table.default_action, ACL_ACTION_PERMIT);
    }
}
