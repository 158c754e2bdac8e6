//! [`Int`]: the INT transit tables as the data plane drives them, through
//! [`IntTransit`]:
//!
//! | P4Runtime | call |
//! | --- | --- |
//! | `int_switch_config` default entry `int_set_switch_id(id)` | [`IntTransit::set_switch_id`] |
//! | its reset (no action: the program's `INT_UNKNOWN_SWITCH_ID`) | [`IntTransit::clear_switch_id`] |
//! | `int_watchlist` insert / modify (`int_mark_int`, `int_no_mark`) | [`IntTransit::insert_watch_rule`] |
//! | `int_watchlist` delete | [`IntTransit::remove_watch_rule`] |
//! | `int_switch_config_counter` (the default entry) | [`IntTransit::switch_config_hits`] |
//! | `int_watchlist_counter` | [`IntTransit::watch_rule_hits`] |
//! | `egress_port_counter` | [`IntTransit::port_tx`] |
//!
//! A restore takes over what the pinned maps hold as the other tables do:
//! a replayed watchlist entry keeps its rule and counter, the replayed
//! switch ID is written again, and what no replayed entity claimed is
//! removed at the end.

use std::collections::BTreeSet;

use solyx_ebpf_common::Counter;
use solyx_p4runtime::proto::p4::v1 as p4;

use super::decode::{self, invalid};
use super::names::IntIds;
use super::to_dataplane_error;
use crate::ebpf::{IntTransit, WatchAction, WatchMatch};
use crate::p4rt::{DataplaneError, DataplaneErrorKind};

fn map_err(e: crate::ebpf::Error) -> DataplaneError {
    to_dataplane_error(&e)
}

/// What a restore found in the pinned INT maps and no replayed entity has
/// claimed yet.
#[derive(Debug, Default)]
pub(crate) struct PinnedInt {
    rules: BTreeSet<WatchMatch>,
    /// A switch ID was set and the replay has not set one yet.
    switch_id: bool,
}

/// The INT transit stage under the data plane.
#[derive(Debug)]
pub(crate) struct Int {
    pub(crate) transit: IntTransit,
    /// While restoring: see [`PinnedInt`].
    pinned: Option<PinnedInt>,
}

/// The match of an `int_watchlist` entry; absent fields are wildcards.
pub(crate) fn watch_key(ids: &IntIds, t: &p4::TableEntry) -> Result<WatchMatch, DataplaneError> {
    let priority = u32::try_from(t.priority)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| {
            invalid(format!(
                "int_watchlist: priority {} (ternary entries need one above 0)",
                t.priority
            ))
        })?;
    let (dscp, dscp_mask) = match decode::ternary(t, ids.dscp)? {
        None => (0, 0),
        Some((v, m)) => match (decode::fixed::<1>(v), decode::fixed::<1>(m)) {
            (Some([v]), Some([m])) => (v, m),
            _ => return Err(invalid("int_watchlist: ipv4_dscp is wider than 6 bits")),
        },
    };
    let (l4_dst_port, l4_dst_port_mask) = match decode::ternary(t, ids.l4_dst_port)? {
        None => (0, 0),
        Some((v, m)) => match (decode::fixed::<2>(v), decode::fixed::<2>(m)) {
            (Some(v), Some(m)) => (u16::from_be_bytes(v), u16::from_be_bytes(m)),
            _ => return Err(invalid("int_watchlist: l4_dst_port is wider than 16 bits")),
        },
    };
    Ok(WatchMatch {
        priority,
        dscp,
        dscp_mask,
        l4_dst_port,
        l4_dst_port_mask,
    })
}

/// The action of an `int_watchlist` entry.
fn watch_action(ids: &IntIds, t: &p4::TableEntry) -> Result<WatchAction, DataplaneError> {
    let action = decode::direct_action(t).ok_or_else(|| invalid("int_watchlist: no action"))?;
    if action.action_id == ids.mark {
        Ok(WatchAction::Mark)
    } else if action.action_id == ids.no_mark {
        Ok(WatchAction::NoMark)
    } else {
        Err(invalid(format!(
            "int_watchlist: action {:#010x} is not int_mark_int or int_no_mark",
            action.action_id
        )))
    }
}

impl Int {
    /// The data plane's INT stage over `transit`.
    pub(crate) fn new(transit: IntTransit) -> Self {
        Self {
            transit,
            pinned: None,
        }
    }

    /// Writes the default entry of `int_switch_config` (the table is
    /// keyless: nothing else can be written).
    pub(crate) fn write_switch_config(
        &mut self,
        ids: &IntIds,
        t: &p4::TableEntry,
    ) -> Result<(), DataplaneError> {
        if !t.is_default_action {
            return Err(invalid(
                "int_switch_config is keyless: only its default entry can be written",
            ));
        }
        match decode::direct_action(t) {
            None => self.transit.clear_switch_id().map_err(map_err)?,
            Some(a) if a.action_id == ids.set_switch_id => {
                let value = decode::param(a, ids.switch_id, "int_set_switch_id")?;
                let id = decode::uint(value)
                    .ok_or_else(|| invalid("int_set_switch_id: switch_id is wider than 32 bits"))?;
                self.transit.set_switch_id(id).map_err(map_err)?;
            }
            Some(a) => {
                return Err(invalid(format!(
                    "int_switch_config: action {:#010x} is not int_set_switch_id",
                    a.action_id
                )))
            }
        }
        if let Some(pinned) = self.pinned.as_mut() {
            pinned.switch_id = false;
        }
        Ok(())
    }

    /// Applies an insert, modify (`delete: false`) or delete of an
    /// `int_watchlist` entry.
    pub(crate) fn write_watchlist(
        &mut self,
        ids: &IntIds,
        delete: bool,
        t: &p4::TableEntry,
    ) -> Result<(), DataplaneError> {
        if t.is_default_action {
            // Const int_no_mark: only the program's own default fits.
            return match decode::direct_action(t) {
                None => Ok(()),
                Some(a) if a.action_id == ids.no_mark => Ok(()),
                Some(_) => Err(DataplaneError::new(
                    DataplaneErrorKind::Unsupported,
                    "int_watchlist: the default action is int_no_mark",
                )),
            };
        }
        let key = watch_key(ids, t)?;
        if delete {
            self.transit.remove_watch_rule(&key).map_err(map_err)?;
            return Ok(());
        }
        let action = watch_action(ids, t)?;
        self.transit
            .insert_watch_rule(key, action)
            .map_err(map_err)?;
        if let Some(pinned) = self.pinned.as_mut() {
            pinned.rules.remove(&key);
        }
        Ok(())
    }

    /// The direct counter of an `int_switch_config` entry: packets this hop
    /// added metadata to, counted on the default entry (the only one).
    pub(crate) fn switch_config_hits(&self, t: &p4::TableEntry) -> Result<Counter, DataplaneError> {
        if t.is_default_action {
            self.transit.switch_config_hits().map_err(map_err)
        } else {
            Ok(Counter::default())
        }
    }

    /// The direct counter of an `int_watchlist` entry.
    pub(crate) fn watch_hits(
        &self,
        ids: &IntIds,
        t: &p4::TableEntry,
    ) -> Result<Counter, DataplaneError> {
        if t.is_default_action {
            // TODO-completeness: packets no rule matches (the const default
            // int_no_mark) are not counted by the egress program; the
            // default entry's counter reads zero.
            return Ok(Counter::default());
        }
        let key = watch_key(ids, t)?;
        Ok(self
            .transit
            .watch_rule_hits(&key)
            .map_err(map_err)?
            .unwrap_or_default())
    }

    /// Removes every watchlist rule and the switch ID.
    pub(crate) fn clear(&mut self) -> Result<(), DataplaneError> {
        self.pinned = None;
        self.transit.clear_watch_rules().map_err(map_err)?;
        self.transit.clear_switch_id().map_err(map_err)
    }

    /// Starts a restore: remembers what the pinned maps hold.
    pub(crate) fn begin_restore(&mut self) -> Result<(), DataplaneError> {
        self.pinned = Some(PinnedInt {
            rules: self
                .transit
                .watch_rules()
                .into_iter()
                .map(|(key, _)| key)
                .collect(),
            switch_id: self.transit.switch_id().map_err(map_err)?.is_some(),
        });
        Ok(())
    }

    /// Ends a restore: removes the rules and the switch ID no replayed
    /// entity claimed. Returns how many things it removed.
    pub(crate) fn finish_restore(&mut self) -> Result<usize, DataplaneError> {
        let Some(pinned) = self.pinned.take() else {
            return Ok(0);
        };
        let mut removed = 0;
        for key in &pinned.rules {
            if self.transit.remove_watch_rule(key).map_err(map_err)? {
                removed += 1;
            }
        }
        if pinned.switch_id {
            self.transit.clear_switch_id().map_err(map_err)?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> IntIds {
        IntIds {
            switch_config: 1,
            set_switch_id: 2,
            switch_id: 1,
            watchlist: 3,
            dscp: 1,
            l4_dst_port: 2,
            mark: 4,
            no_mark: 5,
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
    fn watchlist_keys_decode_with_wildcards() {
        let entry = p4::TableEntry {
            table_id: 3,
            priority: 10,
            r#match: vec![ternary(1, &[0x17], &[0x3f])],
            ..Default::default()
        };
        let key = watch_key(&ids(), &entry).expect("key");
        assert_eq!(
            key,
            WatchMatch {
                priority: 10,
                dscp: 0x17,
                dscp_mask: 0x3f,
                l4_dst_port: 0,
                l4_dst_port_mask: 0,
            }
        );
        let entry = p4::TableEntry {
            priority: 1,
            r#match: vec![ternary(2, &[0x12, 0xb7], &[0xff, 0xff])],
            ..entry
        };
        let key = watch_key(&ids(), &entry).expect("key");
        assert_eq!((key.l4_dst_port, key.l4_dst_port_mask), (4791, 0xffff));
        assert_eq!((key.dscp, key.dscp_mask), (0, 0));
    }

    #[test]
    fn bad_watchlist_keys_are_invalid_not_panics() {
        let wide = p4::TableEntry {
            priority: 1,
            r#match: vec![ternary(1, &[1, 0], &[1, 0])],
            ..Default::default()
        };
        let e = watch_key(&ids(), &wide).expect_err("9 bits of DSCP");
        assert_eq!(e.kind, DataplaneErrorKind::Invalid);
        let no_priority = p4::TableEntry {
            priority: 0,
            ..Default::default()
        };
        let e = watch_key(&ids(), &no_priority).expect_err("priority 0");
        assert_eq!(e.kind, DataplaneErrorKind::Invalid);
        let exact = p4::TableEntry {
            priority: 1,
            r#match: vec![p4::FieldMatch {
                field_id: 1,
                field_match_type: Some(p4::field_match::FieldMatchType::Exact(
                    p4::field_match::Exact { value: vec![1] },
                )),
            }],
            ..Default::default()
        };
        assert!(watch_key(&ids(), &exact).is_err(), "not ternary");
        let no_action = p4::TableEntry {
            priority: 1,
            ..Default::default()
        };
        assert!(watch_action(&ids(), &no_action).is_err());
    }
}
