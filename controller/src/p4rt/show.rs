//! Human and JSON views of entities, with names resolved through P4Info.

use serde_json::{json, Value};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn action_json(index: &P4InfoIndex, a: &p4::Action) -> Value {
    let info = index.actions.by_id(a.action_id);
    let params: serde_json::Map<String, Value> = a
        .params
        .iter()
        .map(|p| {
            let name = info
                .and_then(|i| i.params.iter().find(|q| q.id == p.param_id))
                .map_or_else(|| format!("#{}", p.param_id), |q| q.name.clone());
            (name, Value::String(hex(&p.value)))
        })
        .collect();
    json!({
        "action": info.map_or_else(|| format!("#{}", a.action_id), |i| i.alias.clone()),
        "params": params,
    })
}

/// A table entry as JSON, names resolved; unknown IDs show as `#<id>`.
#[must_use]
pub fn table_entry_json(index: &P4InfoIndex, t: &p4::TableEntry) -> Value {
    use p4::field_match::FieldMatchType as M;
    let table = index.tables.by_id(t.table_id);
    let matches: serde_json::Map<String, Value> = t
        .r#match
        .iter()
        .map(|m| {
            let name = table
                .and_then(|tb| tb.field_by_id(m.field_id))
                .map_or_else(|| format!("#{}", m.field_id), |f| f.name.clone());
            let v = match &m.field_match_type {
                Some(M::Exact(e)) => hex(&e.value),
                Some(M::Lpm(l)) => format!("{}/{}", hex(&l.value), l.prefix_len),
                Some(M::Ternary(x)) => format!("{}&&&{}", hex(&x.value), hex(&x.mask)),
                Some(M::Range(r)) => format!("{}..{}", hex(&r.low), hex(&r.high)),
                Some(M::Optional(o)) => hex(&o.value),
                Some(M::Other(_)) | None => "?".into(),
            };
            (name, Value::String(v))
        })
        .collect();
    let action = match t.action.as_ref().and_then(|a| a.r#type.as_ref()) {
        Some(p4::table_action::Type::Action(a)) => action_json(index, a),
        Some(p4::table_action::Type::ActionProfileMemberId(m)) => json!({ "member": m }),
        Some(p4::table_action::Type::ActionProfileGroupId(g)) => json!({ "group": g }),
        Some(p4::table_action::Type::ActionProfileActionSet(s)) => json!({
            "one_shot": s.action_profile_actions.iter().map(|x| json!({
                "weight": x.weight,
                "action": x.action.as_ref().map(|a| action_json(index, a)),
            })).collect::<Vec<_>>()
        }),
        None => Value::Null,
    };
    json!({
        "table": table.map_or_else(|| format!("#{}", t.table_id), |tb| tb.alias.clone()),
        "match": matches,
        "priority": t.priority,
        "default": t.is_default_action,
        "action": action,
    })
}

/// One line per table entry: `table  field=value ...  -> action(p=v, ...)`.
#[must_use]
pub fn table_entry_line(index: &P4InfoIndex, t: &p4::TableEntry) -> String {
    let j = table_entry_json(index, t);
    let mut line = format!("{:<24}", j["table"].as_str().unwrap_or("?"));
    if let Some(m) = j["match"].as_object() {
        for (k, v) in m {
            line.push_str(&format!(" {k}={}", v.as_str().unwrap_or("?")));
        }
    }
    if t.priority != 0 {
        line.push_str(&format!(" priority={}", t.priority));
    }
    if t.is_default_action {
        line.push_str(" (default)");
    }
    let a = &j["action"];
    if let Some(name) = a["action"].as_str() {
        let params: Vec<String> = a["params"]
            .as_object()
            .map(|p| {
                p.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
                    .collect()
            })
            .unwrap_or_default();
        line.push_str(&format!("  -> {name}({})", params.join(", ")));
    } else if let Some(m) = a["member"].as_u64() {
        line.push_str(&format!("  -> member {m}"));
    } else if let Some(g) = a["group"].as_u64() {
        line.push_str(&format!("  -> group {g}"));
    } else if !a.is_null() {
        line.push_str(&format!("  -> {a}"));
    }
    line
}

/// One line for any entity: table entries as [`table_entry_line`],
/// members as `member <profile> <id> -> action(...)`, groups as
/// `group <profile> <id> members 1:3 2:1` (member:weight).
#[must_use]
pub fn entity_line(index: &P4InfoIndex, e: &p4::Entity) -> String {
    use p4::entity::Entity as E;
    let profile = |id: u32| {
        index
            .action_profiles
            .by_id(id)
            .map_or_else(|| format!("#{id}"), |p| p.alias.clone())
    };
    match &e.entity {
        Some(E::TableEntry(t)) => table_entry_line(index, t),
        Some(E::ActionProfileMember(m)) => {
            let a = m
                .action
                .as_ref()
                .map(|a| action_json(index, a))
                .unwrap_or_default();
            let params: Vec<String> = a["params"]
                .as_object()
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "member {} {}  -> {}({})",
                profile(m.action_profile_id),
                m.member_id,
                a["action"].as_str().unwrap_or("?"),
                params.join(", ")
            )
        }
        Some(E::ActionProfileGroup(g)) => {
            let members: Vec<String> = g
                .members
                .iter()
                .map(|m| format!("{}:{}", m.member_id, m.weight))
                .collect();
            format!(
                "group {} {}  members {}",
                profile(g.action_profile_id),
                g.group_id,
                members.join(" ")
            )
        }
        other => format!("{other:?}"),
    }
}
