//! Checks of entities against the committed P4Info, before anything is
//! stored or programmed, and the identity key of a table entry.
//!
//! Each check looks only at the entity and the P4Info; whether referenced
//! members and groups exist is the store's business. Every message names
//! the table (or profile) by its P4Info name and the field or parameter.

use solyx_p4runtime::canonical;
use solyx_p4runtime::p4info::{
    ActionInfo, ActionProfileInfo, ActionScope, MatchFieldInfo, MatchKind, TableInfo,
};
use solyx_p4runtime::proto::p4::v1 as p4;

use super::error::StoreError;
use super::pipeline::Pipeline;

/// The identity of a table entry inside its table: priority and the
/// canonical match fields, sorted by field ID, in one byte string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct EntryKey(Box<[u8]>);

impl EntryKey {
    /// The key of a normalised entry (match fields sorted, values canonical).
    pub(crate) fn of(entry: &p4::TableEntry) -> Self {
        use p4::field_match::FieldMatchType as M;
        let mut out = Vec::with_capacity(8 + entry.r#match.len() * 16);
        out.extend_from_slice(&entry.priority.to_be_bytes());
        let mut put = |bytes: &[u8]| {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        };
        for m in &entry.r#match {
            put(&m.field_id.to_be_bytes());
            match &m.field_match_type {
                Some(M::Exact(e)) => {
                    put(b"e");
                    put(&e.value);
                }
                Some(M::Lpm(l)) => {
                    put(b"l");
                    put(&l.value);
                    put(&l.prefix_len.to_be_bytes());
                }
                Some(M::Ternary(t)) => {
                    put(b"t");
                    put(&t.value);
                    put(&t.mask);
                }
                Some(M::Range(r)) => {
                    put(b"r");
                    put(&r.low);
                    put(&r.high);
                }
                Some(M::Optional(o)) => {
                    put(b"o");
                    put(&o.value);
                }
                Some(M::Other(a)) => {
                    put(b"x");
                    put(a.type_url.as_bytes());
                    put(&a.value);
                }
                None => put(b"-"),
            }
        }
        Self(out.into_boxed_slice())
    }
}

/// What a table entry's action refers to in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionRef {
    /// Nothing (a direct action, an action set, or no action).
    None,
    /// Member `.1` of profile `.0`.
    Member(u32, u32),
    /// Group `.1` of profile `.0`.
    Group(u32, u32),
}

impl ActionRef {
    pub(crate) fn of(entry: &p4::TableEntry, table: &TableInfo) -> Self {
        let Some(profile) = table.implementation_id else {
            return ActionRef::None;
        };
        match entry.action.as_ref().and_then(|a| a.r#type.as_ref()) {
            Some(p4::table_action::Type::ActionProfileMemberId(m)) => {
                ActionRef::Member(profile, *m)
            }
            Some(p4::table_action::Type::ActionProfileGroupId(g)) => ActionRef::Group(profile, *g),
            _ => ActionRef::None,
        }
    }
}

fn field_at(table: &TableInfo, field: &MatchFieldInfo) -> String {
    format!("table {:?} field {:?}", table.name, field.name)
}

fn check_value(at: &str, what: &str, value: &[u8], bitwidth: u32) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("{at}: empty {what}")));
    }
    let needed = canonical::bit_length(value);
    if bitwidth > 0 && needed > bitwidth {
        return Err(StoreError::Invalid(format!(
            "{at}: {what} needs {needed} bits but the field is {bitwidth} bits wide"
        )));
    }
    Ok(())
}

/// Whether `low..=high` covers every value of a `bitwidth`-bit field.
fn is_full_range(low: &[u8], high: &[u8], bitwidth: u32) -> bool {
    if bitwidth == 0 || canonical::bit_length(low) != 0 || canonical::bit_length(high) != bitwidth {
        return false;
    }
    // `high` has exactly `bitwidth` significant bits: all ones when its
    // first non-zero byte is a run of low ones and every later byte is 0xff.
    let mut bytes = high.iter().skip_while(|b| **b == 0);
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.count_ones() == 8 - b.leading_zeros());
    first_ok && bytes.all(|b| *b == 0xff)
}

/// Number of trailing zero bits of a big-endian value (`None` for zero).
fn trailing_zeros(value: &[u8]) -> Option<u32> {
    let mut zeros = 0u32;
    for b in value.iter().rev() {
        if *b == 0 {
            zeros = zeros.saturating_add(8);
        } else {
            return Some(zeros.saturating_add(b.trailing_zeros()));
        }
    }
    None
}

fn check_field(table: &TableInfo, m: &p4::FieldMatch) -> Result<(), StoreError> {
    use p4::field_match::FieldMatchType as M;
    let f = table.field_by_id(m.field_id).ok_or_else(|| {
        StoreError::Invalid(format!(
            "table {:?} has no match field with ID {}",
            table.name, m.field_id
        ))
    })?;
    let at = field_at(table, f);
    let (given, ok) = match &m.field_match_type {
        Some(M::Exact(_)) => (MatchKind::Exact, f.kind == MatchKind::Exact),
        Some(M::Lpm(_)) => (MatchKind::Lpm, f.kind == MatchKind::Lpm),
        Some(M::Ternary(_)) => (MatchKind::Ternary, f.kind == MatchKind::Ternary),
        Some(M::Range(_)) => (MatchKind::Range, f.kind == MatchKind::Range),
        Some(M::Optional(_)) => (MatchKind::Optional, f.kind == MatchKind::Optional),
        Some(M::Other(_)) => {
            return Err(StoreError::Unsupported(format!(
                "{at}: architecture-specific match kinds are not supported"
            )))
        }
        None => return Err(StoreError::Invalid(format!("{at}: no match value"))),
    };
    if !ok {
        return Err(StoreError::Invalid(format!(
            "{at} is matched {}, not {given}",
            f.kind
        )));
    }
    let w = f.bitwidth;
    match &m.field_match_type {
        Some(M::Exact(e)) => check_value(&at, "value", &e.value, w),
        Some(M::Optional(o)) => check_value(&at, "value", &o.value, w),
        Some(M::Lpm(l)) => {
            check_value(&at, "value", &l.value, w)?;
            if w == 0 {
                return Err(StoreError::Unsupported(format!(
                    "{at}: LPM on a field without a fixed width"
                )));
            }
            if l.prefix_len < 1 || l.prefix_len as u32 > w {
                return Err(StoreError::Invalid(format!(
                    "{at}: prefix length {} is outside 1..={w} (leave the field out for a wildcard)",
                    l.prefix_len
                )));
            }
            // Bits past the prefix: the lowest `w - prefix_len` bits.
            let host_bits = w.saturating_sub(l.prefix_len as u32);
            if trailing_zeros(&l.value).is_some_and(|z| z < host_bits) {
                return Err(StoreError::Invalid(format!(
                    "{at}: LPM value has bits set past the /{} prefix",
                    l.prefix_len
                )));
            }
            Ok(())
        }
        Some(M::Ternary(t)) => {
            check_value(&at, "value", &t.value, w)?;
            check_value(&at, "mask", &t.mask, w)?;
            if canonical::bit_length(&t.mask) == 0 {
                return Err(StoreError::Invalid(format!(
                    "{at}: all-zero ternary mask (leave the field out for a wildcard)"
                )));
            }
            let masked = canonical::and_mask(&t.value, &t.mask);
            if !canonical::cmp_uint(&masked, &t.value).is_eq() {
                return Err(StoreError::Invalid(format!(
                    "{at}: ternary value has bits set outside the mask"
                )));
            }
            Ok(())
        }
        Some(M::Range(r)) => {
            check_value(&at, "range low", &r.low, w)?;
            check_value(&at, "range high", &r.high, w)?;
            if canonical::cmp_uint(&r.low, &r.high).is_gt() {
                return Err(StoreError::Invalid(format!(
                    "{at}: range low is above range high"
                )));
            }
            if is_full_range(&r.low, &r.high, w) {
                return Err(StoreError::Invalid(format!(
                    "{at}: the full range is a wildcard (leave the field out)"
                )));
            }
            Ok(())
        }
        Some(M::Other(_)) | None => Ok(()),
    }
}

/// Checks the match fields and priority of a non-default entry.
// TODO-completeness: `meter_config`, `idle_timeout_ns` and `metadata` of an
// entry are stored and handed to the data plane unchecked (no data plane
// has meters or idle timeouts yet).
pub(crate) fn check_match(table: &TableInfo, entry: &p4::TableEntry) -> Result<(), StoreError> {
    for (i, m) in entry.r#match.iter().enumerate() {
        check_field(table, m)?;
        if entry
            .r#match
            .iter()
            .take(i)
            .any(|p| p.field_id == m.field_id)
        {
            let name = table
                .field_by_id(m.field_id)
                .map_or("?", |f| f.name.as_str());
            return Err(StoreError::Invalid(format!(
                "table {:?} field {name:?} is given twice",
                table.name
            )));
        }
    }
    if let Some(f) = table
        .match_fields
        .iter()
        .find(|f| f.kind == MatchKind::Exact && !entry.r#match.iter().any(|m| m.field_id == f.id))
    {
        return Err(StoreError::Invalid(format!(
            "{}: exact field missing",
            field_at(table, f)
        )));
    }
    let needs = table.needs_priority();
    if needs && entry.priority <= 0 {
        return Err(StoreError::Invalid(format!(
            "table {:?} has ternary, range or optional fields: entries need a priority > 0 (got {})",
            table.name, entry.priority
        )));
    }
    if !needs && entry.priority != 0 {
        return Err(StoreError::Invalid(format!(
            "table {:?} has only exact and LPM fields: priority must be 0 (got {})",
            table.name, entry.priority
        )));
    }
    Ok(())
}

/// Checks the parameters of `action` against its declaration.
fn check_params(owner: &str, info: &ActionInfo, action: &p4::Action) -> Result<(), StoreError> {
    for (i, p) in action.params.iter().enumerate() {
        let decl = info
            .params
            .iter()
            .find(|d| d.id == p.param_id)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{owner} action {:?}: no parameter with ID {}",
                    info.name, p.param_id
                ))
            })?;
        let at = format!("{owner} action {:?} parameter {:?}", info.name, decl.name);
        if action
            .params
            .iter()
            .take(i)
            .any(|q| q.param_id == p.param_id)
        {
            return Err(StoreError::Invalid(format!("{at} is given twice")));
        }
        check_value(&at, "value", &p.value, decl.bitwidth)?;
    }
    if let Some(missing) = info
        .params
        .iter()
        .find(|d| !action.params.iter().any(|p| p.param_id == d.id))
    {
        return Err(StoreError::Invalid(format!(
            "{owner} action {:?}: parameter {:?} is missing",
            info.name, missing.name
        )));
    }
    Ok(())
}

/// Checks that `table` may run `action` (in an entry, or as its default
/// action) with these parameters.
fn check_action_in_table(
    pipe: &Pipeline,
    table: &TableInfo,
    action: &p4::Action,
    as_default: bool,
) -> Result<(), StoreError> {
    let owner = format!("table {:?}", table.name);
    let info = pipe.index.actions.by_id(action.action_id).ok_or_else(|| {
        StoreError::Invalid(format!(
            "{owner}: no action with ID {:#010x} in the P4Info",
            action.action_id
        ))
    })?;
    let refused = match table.action_scope(action.action_id) {
        None => Some("is not an action of this table"),
        Some(ActionScope::DefaultOnly) if !as_default => {
            Some("is default-only: it cannot be used in entries")
        }
        Some(ActionScope::TableOnly) if as_default => {
            Some("is table-only: it cannot be the default action")
        }
        Some(_) => None,
    };
    if let Some(why) = refused {
        return Err(StoreError::Invalid(format!(
            "{owner}: action {:?} {why}",
            info.name
        )));
    }
    check_params(&owner, info, action)
}

fn profile_of<'a>(pipe: &'a Pipeline, table: &TableInfo) -> Option<&'a ActionProfileInfo> {
    table
        .implementation_id
        .and_then(|id| pipe.index.action_profiles.by_id(id))
}

/// Checks the action of an entry (`as_default`: of the default entry).
pub(crate) fn check_table_action(
    pipe: &Pipeline,
    table: &TableInfo,
    entry: &p4::TableEntry,
    as_default: bool,
) -> Result<(), StoreError> {
    use p4::table_action::Type;
    let Some(kind) = entry.action.as_ref().and_then(|a| a.r#type.as_ref()) else {
        return Err(StoreError::Invalid(format!(
            "table {:?}: the entry has no action",
            table.name
        )));
    };
    let profile = profile_of(pipe, table);
    match (kind, profile) {
        (Type::Action(a), None) => check_action_in_table(pipe, table, a, as_default),
        (Type::Action(_), Some(p)) => Err(StoreError::Invalid(format!(
            "table {:?} is implemented by action profile {:?}: entries name a member or group, not an action",
            table.name, p.name
        ))),
        (Type::ActionProfileMemberId(_) | Type::ActionProfileGroupId(_) | Type::ActionProfileActionSet(_), None) => {
            Err(StoreError::Invalid(format!(
                "table {:?} has no action profile: entries name an action directly",
                table.name
            )))
        }
        (Type::ActionProfileMemberId(_), Some(_)) => Ok(()),
        (Type::ActionProfileGroupId(_) | Type::ActionProfileActionSet(_), Some(p))
            if !p.with_selector =>
        {
            Err(StoreError::Invalid(format!(
                "table {:?}: action profile {:?} has no selector, so no groups or action sets",
                table.name, p.name
            )))
        }
        (Type::ActionProfileGroupId(_), Some(_)) => Ok(()),
        (Type::ActionProfileActionSet(set), Some(p)) => {
            if set.action_profile_actions.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "table {:?}: empty action set",
                    table.name
                )));
            }
            let mut total = 0i64;
            for x in &set.action_profile_actions {
                let Some(a) = x.action.as_ref() else {
                    return Err(StoreError::Invalid(format!(
                        "table {:?}: an action of the action set has no action",
                        table.name
                    )));
                };
                check_action_in_table(pipe, table, a, false)?;
                if x.weight < 1 {
                    return Err(StoreError::Invalid(format!(
                        "table {:?}: action set weight {} is below 1",
                        table.name, x.weight
                    )));
                }
                total += i64::from(if pipe.sum_of_members(p.id) { 1 } else { x.weight });
            }
            if p.max_group_size > 0 && total > i64::from(p.max_group_size) {
                return Err(StoreError::Full(format!(
                    "table {:?}: action set of size {total} exceeds max_group_size {} of {:?}",
                    table.name, p.max_group_size, p.name
                )));
            }
            Ok(())
        }
    }
}

/// Checks an action-profile member (not whether it is in use).
pub(crate) fn check_member<'a>(
    pipe: &'a Pipeline,
    m: &p4::ActionProfileMember,
    needs_action: bool,
) -> Result<&'a ActionProfileInfo, StoreError> {
    let profile = pipe
        .index
        .action_profiles
        .by_id(m.action_profile_id)
        .ok_or(StoreError::UnknownId {
            kind: "action profile",
            id: m.action_profile_id,
        })?;
    if m.member_id == 0 {
        return Err(StoreError::Invalid(format!(
            "action profile {:?}: member ID 0 is reserved for wildcard reads",
            profile.name
        )));
    }
    if !needs_action {
        return Ok(profile);
    }
    let Some(action) = m.action.as_ref() else {
        return Err(StoreError::Invalid(format!(
            "action profile {:?} member {}: no action",
            profile.name, m.member_id
        )));
    };
    for t in &profile.table_ids {
        if let Some(table) = pipe.index.tables.by_id(*t) {
            check_action_in_table(pipe, table, action, false)?;
        }
    }
    Ok(profile)
}

/// Checks an action-profile group (not whether its members exist).
pub(crate) fn check_group<'a>(
    pipe: &'a Pipeline,
    g: &p4::ActionProfileGroup,
    needs_members: bool,
) -> Result<&'a ActionProfileInfo, StoreError> {
    let profile = pipe
        .index
        .action_profiles
        .by_id(g.action_profile_id)
        .ok_or(StoreError::UnknownId {
            kind: "action profile",
            id: g.action_profile_id,
        })?;
    let at = format!("action profile {:?} group {}", profile.name, g.group_id);
    if !profile.with_selector {
        return Err(StoreError::Invalid(format!(
            "action profile {:?} has no selector: it holds no groups",
            profile.name
        )));
    }
    if g.group_id == 0 {
        return Err(StoreError::Invalid(format!(
            "action profile {:?}: group ID 0 is reserved for wildcard reads",
            profile.name
        )));
    }
    if !needs_members {
        return Ok(profile);
    }
    if g.max_size < 0 || (profile.max_group_size > 0 && g.max_size > profile.max_group_size) {
        return Err(StoreError::Invalid(format!(
            "{at}: max_size {} is outside 0..={} (the profile's max_group_size)",
            g.max_size, profile.max_group_size
        )));
    }
    let mut total = 0i64;
    for (i, m) in g.members.iter().enumerate() {
        if m.weight < 1 {
            return Err(StoreError::Invalid(format!(
                "{at}: member {} has weight {}; weights start at 1",
                m.member_id, m.weight
            )));
        }
        if g.members.iter().take(i).any(|p| p.member_id == m.member_id) {
            return Err(StoreError::Invalid(format!(
                "{at}: member {} is given twice",
                m.member_id
            )));
        }
        total += if pipe.sum_of_members(profile.id) {
            1
        } else {
            i64::from(m.weight)
        };
    }
    let limit = if g.max_size > 0 {
        g.max_size
    } else {
        profile.max_group_size
    };
    if limit > 0 && total > i64::from(limit) {
        return Err(StoreError::Full(format!(
            "{at}: size {total} exceeds the limit of {limit}"
        )));
    }
    Ok(profile)
}

fn check_replicas(at: &str, replicas: &mut [p4::Replica]) -> Result<(), StoreError> {
    for r in replicas.iter_mut() {
        #[allow(deprecated)]
        match &mut r.port_kind {
            Some(p4::replica::PortKind::Port(p)) => {
                if p.is_empty() {
                    return Err(StoreError::Invalid(format!(
                        "{at}: replica with an empty port"
                    )));
                }
                *p = canonical::canonical(p);
            }
            Some(p4::replica::PortKind::EgressPort(_)) => {}
            None => {
                return Err(StoreError::Invalid(format!("{at}: replica without a port")));
            }
        }
    }
    for (i, r) in replicas.iter().enumerate() {
        if replicas
            .iter()
            .take(i)
            .any(|q| q.instance == r.instance && q.port_kind == r.port_kind)
        {
            return Err(StoreError::Invalid(format!(
                "{at}: replica (port {:?}, instance {}) is given twice",
                r.port_kind, r.instance
            )));
        }
    }
    Ok(())
}

/// Checks and canonicalises a multicast group.
pub(crate) fn check_multicast(m: &mut p4::MulticastGroupEntry) -> Result<(), StoreError> {
    if m.multicast_group_id == 0 {
        return Err(StoreError::Invalid(
            "multicast group ID 0 is reserved for wildcard reads".into(),
        ));
    }
    let at = format!("multicast group {}", m.multicast_group_id);
    check_replicas(&at, &mut m.replicas)
}

/// Checks and canonicalises a clone session.
pub(crate) fn check_clone_session(c: &mut p4::CloneSessionEntry) -> Result<(), StoreError> {
    if c.session_id == 0 {
        return Err(StoreError::Invalid(
            "clone session ID 0 is reserved for wildcard reads".into(),
        ));
    }
    let at = format!("clone session {}", c.session_id);
    if c.packet_length_bytes < 0 {
        return Err(StoreError::Invalid(format!(
            "{at}: negative packet_length_bytes"
        )));
    }
    check_replicas(&at, &mut c.replicas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_range_needs_zero_to_all_ones() {
        assert!(is_full_range(&[0], &[0xff, 0xff], 16));
        assert!(is_full_range(&[0, 0], &[0x01, 0xff], 9));
        assert!(is_full_range(&[0], &[0, 0x0f], 4));
        assert!(!is_full_range(&[1], &[0xff, 0xff], 16));
        assert!(!is_full_range(&[0], &[0xff, 0xfe], 16));
        assert!(!is_full_range(&[0], &[0x7f, 0xff], 16));
        assert!(!is_full_range(&[0], &[0x02, 0xff], 10));
        assert!(!is_full_range(&[0], &[0xff], 0));
    }

    #[test]
    fn trailing_zeros_counts_bits_from_the_end() {
        assert_eq!(trailing_zeros(&[10, 1, 0, 0]), Some(16));
        assert_eq!(trailing_zeros(&[10, 0, 0, 0]), Some(25));
        assert_eq!(trailing_zeros(&[0x80]), Some(7));
        assert_eq!(trailing_zeros(&[0, 0]), None);
        assert_eq!(trailing_zeros(&[]), None);
    }

    #[test]
    fn entry_keys_separate_fields_and_priorities() {
        let entry = |priority, value: &[u8]| p4::TableEntry {
            table_id: 1,
            priority,
            r#match: vec![p4::FieldMatch {
                field_id: 1,
                field_match_type: Some(p4::field_match::FieldMatchType::Exact(
                    p4::field_match::Exact {
                        value: value.to_vec(),
                    },
                )),
            }],
            ..Default::default()
        };
        assert_eq!(
            EntryKey::of(&entry(0, &[1, 2])),
            EntryKey::of(&entry(0, &[1, 2]))
        );
        assert_ne!(
            EntryKey::of(&entry(0, &[1, 2])),
            EntryKey::of(&entry(1, &[1, 2]))
        );
        assert_ne!(
            EntryKey::of(&entry(0, &[1, 2])),
            EntryKey::of(&entry(0, &[1]))
        );
        // Lengths are part of the key: [1],[2,3] differs from [1,2],[3].
        let two = |a: &[u8], b: &[u8]| {
            let mut e = entry(0, a);
            e.r#match.push(p4::FieldMatch {
                field_id: 2,
                field_match_type: Some(p4::field_match::FieldMatchType::Exact(
                    p4::field_match::Exact { value: b.to_vec() },
                )),
            });
            EntryKey::of(&e)
        };
        assert_ne!(two(&[1], &[2, 3]), two(&[1, 2], &[3]));
    }
}
