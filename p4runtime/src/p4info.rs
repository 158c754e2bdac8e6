//! The P4Info index: names, aliases and IDs of every control-plane entity of
//! a pipeline, with the widths and kinds a client needs to build valid
//! entities and a server needs to check them.
//!
//! P4Info is the contract between controller and device. The index is built
//! once per pipeline and is read-only afterwards, so it can be shared freely.

use std::collections::HashMap;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::proto::p4::config::v1 as cfg;

/// A P4Info that cannot be used, with the place that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum P4InfoError {
    /// The text or binary form could not be parsed.
    #[error("P4Info does not parse: {0}")]
    Parse(String),
    /// An entity has no preamble (so no ID and no name).
    #[error("{kind} #{index} in the P4Info has no preamble")]
    NoPreamble {
        /// Entity kind ("table", "action", ...).
        kind: &'static str,
        /// Position in its list.
        index: usize,
    },
    /// Two entities share an ID.
    #[error("ID {id:#010x} is used by both {first:?} and {second:?}")]
    DuplicateId {
        /// The shared ID.
        id: u32,
        /// Name of the first entity.
        first: String,
        /// Name of the second entity.
        second: String,
    },
    /// An entity refers to an ID that the P4Info does not define.
    #[error("{owner:?} refers to unknown {kind} ID {id:#010x}")]
    DanglingRef {
        /// Name of the referring entity.
        owner: String,
        /// Kind of the missing entity.
        kind: &'static str,
        /// The missing ID.
        id: u32,
    },
    /// An entity has ID 0, which P4Runtime reserves for wildcards.
    #[error("{kind} {name:?} has ID 0, which P4Runtime reserves for wildcards")]
    ZeroId {
        /// Entity kind.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Two entities of one kind share a name.
    #[error("two {kind}s are named {name:?}")]
    DuplicateName {
        /// Entity kind.
        kind: &'static str,
        /// The shared name.
        name: String,
    },
    /// A field or parameter has no width and no translated type.
    #[error("{owner:?} {field:?} has bit width {bitwidth}")]
    BadWidth {
        /// Table, action or header name.
        owner: String,
        /// Field or parameter name.
        field: String,
        /// The width given.
        bitwidth: i32,
    },
    /// A match field has a kind P4Runtime does not define.
    #[error("table {table:?} field {field:?} has no usable match type")]
    BadMatchType {
        /// Table name.
        table: String,
        /// Field name.
        field: String,
    },
}

/// How a table matches one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// Exact value.
    Exact,
    /// Longest prefix.
    Lpm,
    /// Value and mask.
    Ternary,
    /// Inclusive low..high.
    Range,
    /// Exact value or absent (wildcard).
    Optional,
    /// An architecture-specific kind, by name.
    Other,
}

impl MatchKind {
    /// Lower-case name as written in P4.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Lpm => "lpm",
            MatchKind::Ternary => "ternary",
            MatchKind::Range => "range",
            MatchKind::Optional => "optional",
            MatchKind::Other => "other",
        }
    }
}

impl std::fmt::Display for MatchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One match field of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchFieldInfo {
    /// Field ID, unique within the table.
    pub id: u32,
    /// Field name as in P4Info.
    pub name: String,
    /// Width in bits (0 for translated string types).
    pub bitwidth: u32,
    /// Match kind.
    pub kind: MatchKind,
}

/// Where an action may be used in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionScope {
    /// In entries and as the default action.
    TableAndDefault,
    /// Only in entries.
    TableOnly,
    /// Only as the default action.
    DefaultOnly,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Table ID.
    pub id: u32,
    /// Fully qualified name.
    pub name: String,
    /// Short alias.
    pub alias: String,
    /// Match fields in P4Info order.
    pub match_fields: Vec<MatchFieldInfo>,
    /// Actions the table may run, with their scope.
    pub actions: Vec<(u32, ActionScope)>,
    /// Action profile or selector that implements the table, if any.
    pub implementation_id: Option<u32>,
    /// Direct counter attached to the table, if any.
    pub direct_counter_id: Option<u32>,
    /// Direct meter attached to the table, if any.
    pub direct_meter_id: Option<u32>,
    /// Maximum number of entries.
    pub size: i64,
    /// Default action fixed by the program, if any.
    pub const_default_action_id: Option<u32>,
    /// Whether the entries are fixed by the program.
    pub is_const: bool,
}

impl TableInfo {
    /// Whether entries need a priority: any ternary, range or optional field.
    #[must_use]
    pub fn needs_priority(&self) -> bool {
        self.match_fields.iter().any(|f| {
            matches!(
                f.kind,
                MatchKind::Ternary | MatchKind::Range | MatchKind::Optional
            )
        })
    }

    /// The match field called `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&MatchFieldInfo> {
        self.match_fields.iter().find(|f| f.name == name)
    }

    /// The match field with ID `id`.
    #[must_use]
    pub fn field_by_id(&self, id: u32) -> Option<&MatchFieldInfo> {
        self.match_fields.iter().find(|f| f.id == id)
    }

    /// The scope of action `id` in this table, if the table may run it.
    #[must_use]
    pub fn action_scope(&self, id: u32) -> Option<ActionScope> {
        self.actions.iter().find(|(a, _)| *a == id).map(|(_, s)| *s)
    }
}

/// A parameter of an action, or a field of a packet header or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// ID, unique within the owner.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Width in bits (0 for translated string types).
    pub bitwidth: u32,
}

/// An action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInfo {
    /// Action ID.
    pub id: u32,
    /// Fully qualified name.
    pub name: String,
    /// Short alias.
    pub alias: String,
    /// Parameters in P4Info order.
    pub params: Vec<ParamInfo>,
}

impl ActionInfo {
    /// The parameter called `name`.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// An action profile or action selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionProfileInfo {
    /// Profile ID.
    pub id: u32,
    /// Fully qualified name.
    pub name: String,
    /// Short alias.
    pub alias: String,
    /// Tables it implements.
    pub table_ids: Vec<u32>,
    /// Whether it has a selector (groups allowed).
    pub with_selector: bool,
    /// Capacity.
    pub size: i64,
    /// Largest group (0: no limit beyond `size`).
    pub max_group_size: i32,
}

/// Any indexed or direct resource: counter, meter, register, digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Resource ID.
    pub id: u32,
    /// Fully qualified name.
    pub name: String,
    /// Short alias.
    pub alias: String,
    /// Number of cells for indexed resources; 0 for direct ones and digests.
    pub size: i64,
    /// The table of a direct resource.
    pub direct_table_id: Option<u32>,
}

/// A controller packet header (`packet_in` or `packet_out`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketMetadataInfo {
    /// Header ID.
    pub id: u32,
    /// Name, by convention `packet_in` or `packet_out`.
    pub name: String,
    /// Metadata fields.
    pub metadata: Vec<ParamInfo>,
}

/// Entities of one kind, found by ID, name or alias.
#[derive(Debug, Clone)]
pub struct Catalog<T> {
    items: Vec<T>,
    by_id: HashMap<u32, usize>,
    by_name: HashMap<String, usize>,
}

impl<T> Default for Catalog<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            by_id: HashMap::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<T> Catalog<T> {
    fn insert(&mut self, id: u32, name: &str, alias: &str, item: T) {
        let at = self.items.len();
        self.items.push(item);
        self.by_id.insert(id, at);
        self.by_name.insert(name.to_string(), at);
        // An alias that collides with another entity's name or alias is
        // ambiguous: the full name must be used.
        if !alias.is_empty() && alias != name {
            if let Some(prev) = self.by_name.get(alias) {
                if *prev != at {
                    return;
                }
            }
            self.by_name.insert(alias.to_string(), at);
        }
    }

    /// The entity with this ID.
    #[must_use]
    pub fn by_id(&self, id: u32) -> Option<&T> {
        self.by_id.get(&id).map(|i| &self.items[*i])
    }

    /// The entity with this name or alias.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&T> {
        self.by_name.get(name).map(|i| &self.items[*i])
    }

    /// All entities, in P4Info order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// Number of entities.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Everything a P4Info declares, indexed.
#[derive(Debug, Clone)]
pub struct P4InfoIndex {
    p4info: cfg::P4Info,
    /// Tables.
    pub tables: Catalog<TableInfo>,
    /// Actions.
    pub actions: Catalog<ActionInfo>,
    /// Action profiles and selectors.
    pub action_profiles: Catalog<ActionProfileInfo>,
    /// Indexed counters.
    pub counters: Catalog<ResourceInfo>,
    /// Direct counters.
    pub direct_counters: Catalog<ResourceInfo>,
    /// Indexed meters.
    pub meters: Catalog<ResourceInfo>,
    /// Direct meters.
    pub direct_meters: Catalog<ResourceInfo>,
    /// Registers.
    pub registers: Catalog<ResourceInfo>,
    /// Digests.
    pub digests: Catalog<ResourceInfo>,
    /// Controller packet headers.
    pub packet_metadata: Catalog<PacketMetadataInfo>,
}

fn preamble<'a>(
    p: Option<&'a cfg::Preamble>,
    kind: &'static str,
    index: usize,
) -> Result<&'a cfg::Preamble, P4InfoError> {
    p.ok_or(P4InfoError::NoPreamble { kind, index })
}

fn width(bits: i32) -> u32 {
    u32::try_from(bits).unwrap_or(0)
}

fn resource(p: &cfg::Preamble, size: i64, direct_table_id: Option<u32>) -> ResourceInfo {
    ResourceInfo {
        id: p.id,
        name: p.name.clone(),
        alias: p.alias.clone(),
        size,
        direct_table_id,
    }
}

impl P4InfoIndex {
    /// Indexes a P4Info, checking that IDs are unique and references resolve.
    ///
    /// # Errors
    /// A [`P4InfoError`] naming the first entity that is wrong.
    pub fn new(p4info: cfg::P4Info) -> Result<Self, P4InfoError> {
        let mut ids: HashMap<u32, String> = HashMap::new();
        let mut names: std::collections::HashSet<(&'static str, String)> =
            std::collections::HashSet::new();
        let mut claim_as = |kind: &'static str, id: u32, name: &str| -> Result<(), P4InfoError> {
            if id == 0 {
                return Err(P4InfoError::ZeroId {
                    kind,
                    name: name.to_string(),
                });
            }
            if !names.insert((kind, name.to_string())) {
                return Err(P4InfoError::DuplicateName {
                    kind,
                    name: name.to_string(),
                });
            }
            if let Some(first) = ids.insert(id, name.to_string()) {
                return Err(P4InfoError::DuplicateId {
                    id,
                    first,
                    second: name.to_string(),
                });
            }
            Ok(())
        };

        let mut actions = Catalog::default();
        for (i, a) in p4info.actions.iter().enumerate() {
            let p = preamble(a.preamble.as_ref(), "action", i)?;
            claim_as("action", p.id, &p.name)?;
            let params = a
                .params
                .iter()
                .map(|q| {
                    check_width(&p.name, &q.name, q.bitwidth, &q.type_name)?;
                    Ok(ParamInfo {
                        id: q.id,
                        name: q.name.clone(),
                        bitwidth: width(q.bitwidth),
                    })
                })
                .collect::<Result<_, P4InfoError>>()?;
            let info = ActionInfo {
                id: p.id,
                name: p.name.clone(),
                alias: p.alias.clone(),
                params,
            };
            actions.insert(p.id, &p.name, &p.alias, info);
        }

        let mut tables = Catalog::default();
        for (i, t) in p4info.tables.iter().enumerate() {
            let p = preamble(t.preamble.as_ref(), "table", i)?;
            claim_as("table", p.id, &p.name)?;
            let mut match_fields = Vec::with_capacity(t.match_fields.len());
            for f in &t.match_fields {
                let kind = match &f.r#match {
                    Some(cfg::match_field::Match::MatchType(m)) => {
                        match cfg::match_field::MatchType::try_from(*m) {
                            Ok(cfg::match_field::MatchType::Exact) => MatchKind::Exact,
                            Ok(cfg::match_field::MatchType::Lpm) => MatchKind::Lpm,
                            Ok(cfg::match_field::MatchType::Ternary) => MatchKind::Ternary,
                            Ok(cfg::match_field::MatchType::Range) => MatchKind::Range,
                            Ok(cfg::match_field::MatchType::Optional) => MatchKind::Optional,
                            _ => {
                                return Err(P4InfoError::BadMatchType {
                                    table: p.name.clone(),
                                    field: f.name.clone(),
                                })
                            }
                        }
                    }
                    Some(cfg::match_field::Match::OtherMatchType(_)) => MatchKind::Other,
                    None => {
                        return Err(P4InfoError::BadMatchType {
                            table: p.name.clone(),
                            field: f.name.clone(),
                        })
                    }
                };
                check_width(&p.name, &f.name, f.bitwidth, &f.type_name)?;
                match_fields.push(MatchFieldInfo {
                    id: f.id,
                    name: f.name.clone(),
                    bitwidth: width(f.bitwidth),
                    kind,
                });
            }
            let mut table_actions = Vec::with_capacity(t.action_refs.len());
            for r in &t.action_refs {
                if actions.by_id(r.id).is_none() {
                    return Err(P4InfoError::DanglingRef {
                        owner: p.name.clone(),
                        kind: "action",
                        id: r.id,
                    });
                }
                let scope = match cfg::action_ref::Scope::try_from(r.scope) {
                    Ok(cfg::action_ref::Scope::TableOnly) => ActionScope::TableOnly,
                    Ok(cfg::action_ref::Scope::DefaultOnly) => ActionScope::DefaultOnly,
                    _ => ActionScope::TableAndDefault,
                };
                table_actions.push((r.id, scope));
            }
            let direct = |list: &[cfg::DirectCounter]| {
                list.iter()
                    .filter_map(|d| d.preamble.as_ref())
                    .map(|d| d.id)
                    .find(|id| t.direct_resource_ids.contains(id))
            };
            let direct_meter = p4info
                .direct_meters
                .iter()
                .filter_map(|d| d.preamble.as_ref())
                .map(|d| d.id)
                .find(|id| t.direct_resource_ids.contains(id));
            let info = TableInfo {
                id: p.id,
                name: p.name.clone(),
                alias: p.alias.clone(),
                match_fields,
                actions: table_actions,
                implementation_id: (t.implementation_id != 0).then_some(t.implementation_id),
                direct_counter_id: direct(&p4info.direct_counters),
                direct_meter_id: direct_meter,
                size: t.size,
                const_default_action_id: (t.const_default_action_id != 0)
                    .then_some(t.const_default_action_id),
                is_const: t.is_const_table,
            };
            tables.insert(p.id, &p.name, &p.alias, info);
        }

        let mut action_profiles = Catalog::default();
        for (i, a) in p4info.action_profiles.iter().enumerate() {
            let p = preamble(a.preamble.as_ref(), "action profile", i)?;
            claim_as("action profile", p.id, &p.name)?;
            for t in &a.table_ids {
                if tables.by_id(*t).is_none() {
                    return Err(P4InfoError::DanglingRef {
                        owner: p.name.clone(),
                        kind: "table",
                        id: *t,
                    });
                }
            }
            let info = ActionProfileInfo {
                id: p.id,
                name: p.name.clone(),
                alias: p.alias.clone(),
                table_ids: a.table_ids.clone(),
                with_selector: a.with_selector,
                size: a.size,
                max_group_size: a.max_group_size,
            };
            action_profiles.insert(p.id, &p.name, &p.alias, info);
        }
        for t in tables.iter() {
            if let Some(id) = t.implementation_id {
                if action_profiles.by_id(id).is_none() {
                    return Err(P4InfoError::DanglingRef {
                        owner: t.name.clone(),
                        kind: "action profile",
                        id,
                    });
                }
            }
        }

        let mut counters = Catalog::default();
        for (i, c) in p4info.counters.iter().enumerate() {
            let p = preamble(c.preamble.as_ref(), "counter", i)?;
            claim_as("counter", p.id, &p.name)?;
            counters.insert(p.id, &p.name, &p.alias, resource(p, c.size, None));
        }
        let mut direct_counters = Catalog::default();
        for (i, c) in p4info.direct_counters.iter().enumerate() {
            let p = preamble(c.preamble.as_ref(), "direct counter", i)?;
            claim_as("direct counter", p.id, &p.name)?;
            check_table(&tables, &p.name, c.direct_table_id)?;
            let r = resource(p, 0, Some(c.direct_table_id));
            direct_counters.insert(p.id, &p.name, &p.alias, r);
        }
        let mut meters = Catalog::default();
        for (i, m) in p4info.meters.iter().enumerate() {
            let p = preamble(m.preamble.as_ref(), "meter", i)?;
            claim_as("meter", p.id, &p.name)?;
            meters.insert(p.id, &p.name, &p.alias, resource(p, m.size, None));
        }
        let mut direct_meters = Catalog::default();
        for (i, m) in p4info.direct_meters.iter().enumerate() {
            let p = preamble(m.preamble.as_ref(), "direct meter", i)?;
            claim_as("direct meter", p.id, &p.name)?;
            check_table(&tables, &p.name, m.direct_table_id)?;
            let r = resource(p, 0, Some(m.direct_table_id));
            direct_meters.insert(p.id, &p.name, &p.alias, r);
        }
        let mut registers = Catalog::default();
        for (i, r) in p4info.registers.iter().enumerate() {
            let p = preamble(r.preamble.as_ref(), "register", i)?;
            claim_as("register", p.id, &p.name)?;
            registers.insert(
                p.id,
                &p.name,
                &p.alias,
                resource(p, i64::from(r.size), None),
            );
        }
        let mut digests = Catalog::default();
        for (i, d) in p4info.digests.iter().enumerate() {
            let p = preamble(d.preamble.as_ref(), "digest", i)?;
            claim_as("digest", p.id, &p.name)?;
            digests.insert(p.id, &p.name, &p.alias, resource(p, 0, None));
        }
        let mut packet_metadata = Catalog::default();
        for (i, c) in p4info.controller_packet_metadata.iter().enumerate() {
            let p = preamble(c.preamble.as_ref(), "controller packet metadata", i)?;
            claim_as("controller packet metadata", p.id, &p.name)?;
            let metadata = c
                .metadata
                .iter()
                .map(|m| ParamInfo {
                    id: m.id,
                    name: m.name.clone(),
                    bitwidth: width(m.bitwidth),
                })
                .collect();
            let info = PacketMetadataInfo {
                id: p.id,
                name: p.name.clone(),
                metadata,
            };
            packet_metadata.insert(p.id, &p.name, &p.alias, info);
        }

        Ok(Self {
            p4info,
            tables,
            actions,
            action_profiles,
            counters,
            direct_counters,
            meters,
            direct_meters,
            registers,
            digests,
            packet_metadata,
        })
    }

    /// Parses P4Info in protobuf text format (what `p4c --p4runtime-files
    /// x.p4info.txtpb` writes) and indexes it.
    ///
    /// # Errors
    /// [`P4InfoError::Parse`] with the line and column, or any index error.
    pub fn from_text(text: &str) -> Result<Self, P4InfoError> {
        Self::new(parse_text(text)?)
    }

    /// Decodes binary P4Info and indexes it.
    ///
    /// # Errors
    /// [`P4InfoError::Parse`] or any index error.
    pub fn from_binary(bytes: &[u8]) -> Result<Self, P4InfoError> {
        let p4info = cfg::P4Info::decode(bytes).map_err(|e| P4InfoError::Parse(e.to_string()))?;
        Self::new(p4info)
    }

    /// The P4Info this index was built from.
    #[must_use]
    pub fn p4info(&self) -> &cfg::P4Info {
        &self.p4info
    }

    /// The `arch` and `name` of the package, e.g. `("v1model", "solyx_fabric")`.
    #[must_use]
    pub fn package(&self) -> (&str, &str) {
        self.p4info
            .pkg_info
            .as_ref()
            .map_or(("", ""), |p| (p.arch.as_str(), p.name.as_str()))
    }
}

fn check_width(
    owner: &str,
    field: &str,
    bitwidth: i32,
    type_name: &Option<cfg::P4NamedType>,
) -> Result<(), P4InfoError> {
    // Width 0 is only meaningful for translated (string) types.
    let translated = type_name.is_some();
    if bitwidth < 0 || (bitwidth == 0 && !translated) {
        return Err(P4InfoError::BadWidth {
            owner: owner.to_string(),
            field: field.to_string(),
            bitwidth,
        });
    }
    Ok(())
}

fn check_table(tables: &Catalog<TableInfo>, owner: &str, id: u32) -> Result<(), P4InfoError> {
    if tables.by_id(id).is_none() {
        return Err(P4InfoError::DanglingRef {
            owner: owner.to_string(),
            kind: "table",
            id,
        });
    }
    Ok(())
}

/// Parses P4Info in protobuf text format.
///
/// # Errors
/// [`P4InfoError::Parse`] with the position of the first error.
pub fn parse_text(text: &str) -> Result<cfg::P4Info, P4InfoError> {
    let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
        .map_err(|e| P4InfoError::Parse(format!("embedded descriptors: {e}")))?;
    let desc = pool
        .get_message_by_name("p4.config.v1.P4Info")
        .ok_or_else(|| P4InfoError::Parse("embedded descriptors lack P4Info".into()))?;
    let dynamic = DynamicMessage::parse_text_format(desc, text).map_err(|e| {
        use miette::Diagnostic;
        // Say where: line and column of the first labelled span.
        let at = e
            .labels()
            .and_then(|mut l| l.next())
            .map(|span| line_col(text, span.offset()))
            .map_or_else(String::new, |(line, col)| {
                format!("line {line} column {col}: ")
            });
        P4InfoError::Parse(format!("{at}{e}"))
    })?;
    cfg::P4Info::decode(dynamic.encode_to_vec().as_slice())
        .map_err(|e| P4InfoError::Parse(e.to_string()))
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

/// Writes P4Info in protobuf text format, as `p4c` would.
///
/// # Errors
/// [`P4InfoError::Parse`] if the embedded descriptors are unusable.
pub fn to_text(p4info: &cfg::P4Info) -> Result<String, P4InfoError> {
    let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
        .map_err(|e| P4InfoError::Parse(format!("embedded descriptors: {e}")))?;
    let desc = pool
        .get_message_by_name("p4.config.v1.P4Info")
        .ok_or_else(|| P4InfoError::Parse("embedded descriptors lack P4Info".into()))?;
    let dynamic = DynamicMessage::decode(desc, p4info.encode_to_vec().as_slice())
        .map_err(|e| P4InfoError::Parse(e.to_string()))?;
    let options = prost_reflect::text_format::FormatOptions::new().pretty(true);
    Ok(dynamic.to_text_format_with_options(&options))
}
