//! A device's desired state as a YAML file of entities named through the
//! P4Info: what `solyx p4rt apply` reconciles a device to.
//!
//! ```yaml
//! members:
//!   - { profile: wcmp_selector, id: 1, action: set_next_hop,
//!       params: { port: 1, dmac: "02:00:00:00:00:01" } }
//! groups:
//!   - { profile: wcmp_selector, id: 10, members: { 1: 3, 2: 1 } }  # member: weight
//! entries:
//!   - { table: mpls_forward, match: { mpls_label: 100 },
//!       action: mpls_forward_to, params: { port: 2 } }
//!   - { table: ipv4_route, match: { ipv4_dst: 10.0.2.0/24 }, group: 10 }
//!   - { table: acl, match: { eth_type: "0x0800&&&0xffff" }, priority: 10,
//!       action: punt_to_cpu }
//!   - { table: acl, default: true, action: permit }
//! ```
//!
//! Values are written as on the command line (see [`super::spec`]). Every
//! mistake is reported with its place in the file, e.g.
//! `entries[2].match.ipv4_dst: ...`.

use std::collections::BTreeMap;

use serde::Deserialize;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

use super::spec;

/// A desired-state file that cannot be used, with the place that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct DesiredError {
    /// Where in the file: `entries[2].match.ipv4_dst`.
    pub place: String,
    /// What is wrong.
    pub reason: String,
}

/// A value in the file: a non-negative YAML integer or a string, both
/// read as on the command line.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
struct Scalar(serde_norway::Value);

impl Scalar {
    fn text(&self, place: &str) -> Result<String, DesiredError> {
        use serde_norway::Value;
        match &self.0 {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
            Value::Number(n) => Err(at(place)(format!(
                "{n} is not a value: use a non-negative integer, or a string"
            ))),
            other => Err(at(place)(format!(
                "{} is not a value: use a non-negative integer, or a string",
                serde_norway::to_string(other).unwrap_or_default().trim()
            ))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    members: Vec<Member>,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    profile: String,
    id: u32,
    action: String,
    #[serde(default)]
    params: BTreeMap<String, Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    profile: String,
    id: u32,
    members: BTreeMap<u32, i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    table: String,
    #[serde(default, rename = "match")]
    matches: BTreeMap<String, Scalar>,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    default: bool,
    action: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, Scalar>,
    member: Option<u32>,
    group: Option<u32>,
}

fn at(place: impl Into<String>) -> impl FnOnce(String) -> DesiredError {
    let place = place.into();
    move |reason| DesiredError { place, reason }
}

fn action(
    index: &P4InfoIndex,
    place: &str,
    name: &str,
    params: &BTreeMap<String, Scalar>,
) -> Result<p4::Action, DesiredError> {
    let mut a = index
        .action(name)
        .map_err(|e| at(format!("{place}.action"))(e.to_string()))?;
    for (p, v) in params {
        let pplace = format!("{place}.params.{p}");
        let bytes =
            spec::parse_value(&v.text(&pplace)?).map_err(|e| at(pplace.clone())(e.to_string()))?;
        a = a
            .param(p, bytes)
            .map_err(|e| at(format!("{place}.params.{p}"))(e.to_string()))?;
    }
    a.build()
        .map_err(|e| at(format!("{place}.params"))(e.to_string()))
}

/// Parses a desired-state file into entities, every one checked against
/// `index`: members, then groups, then table entries.
///
/// # Errors
/// [`DesiredError`] naming the place of the first mistake.
pub fn parse(index: &P4InfoIndex, yaml: &str) -> Result<Vec<p4::Entity>, DesiredError> {
    // An empty file would delete everything on the device: say so instead.
    let value: serde_norway::Value = serde_norway::from_str(yaml).map_err(|e| yaml_error(&e))?;
    if value.is_null()
        || value
            .as_mapping()
            .is_some_and(serde_norway::Mapping::is_empty)
    {
        return Err(DesiredError {
            place: "file".into(),
            reason: "the file is empty; to remove every entry, write `entries: []`".into(),
        });
    }
    let file: File = serde_norway::from_str(yaml).map_err(|e| yaml_error(&e))?;
    let (out, places) = build(index, &file)?;
    if let Some((a, b)) = super::reconcile::find_duplicate(&out) {
        return Err(DesiredError {
            place: places[b].clone(),
            reason: format!("the same key as {}: each entity may appear once", places[a]),
        });
    }
    Ok(out)
}

fn yaml_error(e: &serde_norway::Error) -> DesiredError {
    // serde_norway appends the location to its message; keep it once.
    let text = e.to_string();
    let reason = text.split(" at line ").next().unwrap_or(&text).to_string();
    DesiredError {
        place: e.location().map_or_else(
            || "file".into(),
            |l| format!("line {} column {}", l.line(), l.column()),
        ),
        reason,
    }
}

fn build(index: &P4InfoIndex, file: &File) -> Result<(Vec<p4::Entity>, Vec<String>), DesiredError> {
    let mut places = Vec::new();
    let mut out = Vec::new();
    for (i, m) in file.members.iter().enumerate() {
        let place = format!("members[{i}]");
        let a = action(index, &place, &m.action, &m.params)?;
        let member = index
            .profile_member(&m.profile, m.id, a)
            .map_err(|e| at(place.clone())(e.to_string()))?;
        out.push(p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileMember(member)),
        });
        places.push(place);
    }
    for (i, g) in file.groups.iter().enumerate() {
        let members: Vec<(u32, i32)> = g.members.iter().map(|(m, w)| (*m, *w)).collect();
        let group = index
            .profile_group(&g.profile, g.id, &members)
            .map_err(|e| at(format!("groups[{i}]"))(e.to_string()))?;
        out.push(p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileGroup(group)),
        });
        places.push(format!("groups[{i}]"));
    }
    for (i, e) in file.entries.iter().enumerate() {
        let place = format!("entries[{i}]");
        let table = index.tables.by_name(&e.table).ok_or_else(|| {
            at(format!("{place}.table"))(format!("no table {:?} in the P4Info", e.table))
        })?;
        let mut b = index
            .table_entry(&e.table)
            .map_err(|x| at(place.clone())(x.to_string()))?;
        if e.default {
            b = b.as_default();
        }
        for (field, v) in &e.matches {
            let fplace = format!("{place}.match.{field}");
            let kind = table.field(field).map(|f| f.kind).ok_or_else(|| {
                at(fplace.clone())(format!(
                    "table {:?} has no match field {field:?}",
                    table.name
                ))
            })?;
            b = spec::add_match(b, kind, &format!("{field}={}", v.text(&fplace)?))
                .map_err(|x| at(fplace.clone())(x.reason))?;
        }
        let chosen = [e.action.is_some(), e.member.is_some(), e.group.is_some()];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(at(place)(
                "give exactly one of action, member, group".into(),
            ));
        }
        b = if let Some(a) = &e.action {
            let a = action(index, &place, a, &e.params)?;
            b.action(a)
        } else if let Some(m) = e.member {
            b.member(m)
        } else {
            b.group(e.group.unwrap_or_default())
        }
        .map_err(|x| at(place.clone())(x.to_string()))?;
        let entity = b
            .priority(e.priority)
            .build()
            .map_err(|x| at(place.clone())(x.to_string()))?;
        out.push(entity);
        places.push(place);
    }
    Ok((out, places))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> P4InfoIndex {
        P4InfoIndex::from_text(include_str!(
            "../../../p4runtime/testdata/test.p4info.txtpb"
        ))
        .unwrap()
    }

    #[test]
    fn a_full_file_parses_into_checked_entities() {
        let yaml = r#"
members:
  - { profile: wcmp_selector, id: 1, action: set_next_hop, params: { port: 1, dmac: "02:00:00:00:00:01" } }
  - { profile: wcmp_selector, id: 2, action: set_next_hop, params: { port: 2, dmac: "02:00:00:00:00:02" } }
groups:
  - { profile: wcmp_selector, id: 10, members: { 1: 3, 2: 1 } }
entries:
  - { table: mpls_forward, match: { mpls_label: 100 }, action: mpls_out, params: { port: 2, pop: 0 } }
  - { table: ipv4_route, match: { ipv4_dst: 10.0.2.0/24 }, group: 10 }
  - { table: acl, match: { eth_type: "0x0800&&&0xffff" }, priority: 10, action: punt }
"#;
        let es = parse(&index(), yaml).unwrap();
        assert_eq!(es.len(), 6);
        let Some(p4::entity::Entity::ActionProfileGroup(g)) = &es[2].entity else {
            panic!()
        };
        assert_eq!(
            g.members
                .iter()
                .map(|m| (m.member_id, m.weight))
                .collect::<Vec<_>>(),
            vec![(1, 3), (2, 1)]
        );
    }

    #[test]
    fn mistakes_name_their_place() {
        let ix = index();
        let e = parse(&ix, "entries:\n  - { table: mpls_forward, match: { mpls_label: 99999999 }, action: mpls_out, params: { port: 1, pop: 0 } }\n").unwrap_err();
        assert_eq!(e.place, "entries[0].match.mpls_label", "{e}");
        let e = parse(&ix, "entries:\n  - { table: nope, action: drop }\n").unwrap_err();
        assert_eq!(e.place, "entries[0].table");
        let e = parse(
            &ix,
            "entries:\n  - { table: acl, match: { eth_type: 1 }, action: punt }\n",
        )
        .unwrap_err();
        assert!(
            e.place == "entries[0].match.eth_type" && e.reason.contains("&&&"),
            "{e}"
        );
        let e = parse(&ix, "members:\n  - { profile: wcmp_selector, id: 1, action: set_next_hop, params: { port: 1 } }\n").unwrap_err();
        assert!(e.to_string().contains("dmac"), "{e}");
        let e = parse(&ix, "entriez: []\n").unwrap_err();
        assert!(e.reason.contains("entriez"), "{e}");
        let e = parse(
            &ix,
            "entries:\n  - { table: mpls_forward, match: { mpls_label: 1 } }\n",
        )
        .unwrap_err();
        assert!(e.reason.contains("exactly one"), "{e}");
        let e = parse(&ix, "").unwrap_err();
        assert!(e.reason.contains("entries: []"), "{e}");
        assert_eq!(parse(&ix, "entries: []\n").unwrap(), vec![]);
        let neg = "entries:\n  - { table: mpls_forward, match: { mpls_label: -5 }, \
                   action: mpls_out, params: { port: 1, pop: 0 } }\n";
        let e = parse(&ix, neg).unwrap_err();
        assert!(
            e.place == "entries[0].match.mpls_label" && e.reason.contains("-5"),
            "{e}"
        );
        let dup = "entries:\n  - { table: mpls_forward, match: { mpls_label: 7 }, \
                   action: mpls_out, params: { port: 1, pop: 0 } }\n  \
                   - { table: mpls_forward, match: { mpls_label: 7 }, \
                   action: mpls_out, params: { port: 2, pop: 0 } }\n";
        let e = parse(&ix, dup).unwrap_err();
        assert_eq!(e.place, "entries[1]");
        assert!(e.reason.contains("entries[0]"), "{e}");
    }
}
