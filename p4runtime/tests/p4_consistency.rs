//! The committed P4Info of every pipeline under `p4/` agrees with its P4
//! source: each entity pinned with `@id` in the source is in the P4Info with
//! the same ID, name, match fields (names, kinds, widths, order), action
//! references (with `@defaultonly` scope), action parameters, selector and
//! direct counters, and registers (ID, name, size, bit width of the cells);
//! and every P4Info entity comes from the source.
//!
//! p4c cannot run on every machine that builds Solyx, so the source pins
//! every control-plane ID and this test keeps source and P4Info in step.
//! It reads the regular layout the P4 sources keep (see `p4/README.md`):
//! `@id(...)` and `@name("...")` on the lines right before a declaration,
//! one key per line as `expr : kind @name("field");`. Sizes may be numbers
//! or `#define`d names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use solyx_p4runtime::p4info::{ActionScope, MatchKind};
use solyx_p4runtime::P4InfoIndex;

#[derive(Debug, Default)]
struct Source {
    /// typedef name -> width.
    typedefs: HashMap<String, u32>,
    /// `#define NAME number` -> number.
    defines: HashMap<String, i64>,
    /// type name (header or struct) -> field name -> type text.
    types: HashMap<String, Vec<(String, String)>>,
    /// control/parser parameter name -> type name, e.g. hdr -> headers_t.
    params: HashMap<String, String>,
    entities: Vec<Entity>,
}

#[derive(Debug)]
struct Entity {
    id: u32,
    name: String,
    kind: Kind,
    /// Where it is declared, for messages.
    at: String,
}

#[derive(Debug)]
enum Kind {
    Table {
        keys: Vec<(String, String, MatchKind)>,
        actions: Vec<(String, bool)>,
        implementation: Option<String>,
        counters: Option<String>,
    },
    Action {
        params: Vec<(String, String)>,
    },
    Selector,
    Counter,
    DirectCounter,
    /// `register<T>(size) name;`: the cell type's text and the size's.
    Register {
        ty: String,
        size: String,
    },
    PacketHeader {
        fields: Vec<(String, String)>,
    },
}

fn strip_comment(line: &str) -> &str {
    line.split("//").next().unwrap_or("").trim()
}

fn quoted(s: &str) -> Option<String> {
    let a = s.find('"')?;
    let b = s[a + 1..].find('"')?;
    Some(s[a + 1..a + 1 + b].to_string())
}

fn parse_id(line: &str) -> u32 {
    let inner = line.trim_start_matches("@id(").trim_end_matches(')').trim();
    match inner.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).expect("hex @id"),
        None => inner.parse().expect("decimal @id"),
    }
}

/// Reads the fields of a `header`/`struct` body or an action's parameter
/// list: `type name` pairs.
fn fields(body: &str) -> Vec<(String, String)> {
    body.split([';', ','])
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
        .filter_map(|f| {
            let words: Vec<&str> = f
                .split_whitespace()
                .filter(|w| !w.starts_with('@'))
                .collect();
            // Parameters may carry a direction: `in bit<8> x`.
            let words: Vec<&str> = words
                .into_iter()
                .filter(|w| !matches!(*w, "in" | "out" | "inout"))
                .collect();
            match words.as_slice() {
                [ty, name] => Some((ty.to_string(), name.to_string())),
                _ => None,
            }
        })
        .collect()
}

fn block(lines: &[String], start: usize) -> (String, usize) {
    let mut depth = 0i32;
    let mut text = String::new();
    for (i, l) in lines.iter().enumerate().skip(start) {
        text.push_str(l);
        text.push('\n');
        depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
        if depth <= 0 && l.contains('}') {
            return (text, i);
        }
    }
    (text, lines.len())
}

fn between<'a>(text: &'a str, open: &str, close: char) -> &'a str {
    let Some(a) = text.find(open) else { return "" };
    let rest = &text[a + open.len()..];
    &rest[..rest.find(close).unwrap_or(rest.len())]
}

fn match_kind(word: &str) -> Option<MatchKind> {
    Some(match word {
        "exact" => MatchKind::Exact,
        "lpm" => MatchKind::Lpm,
        "ternary" => MatchKind::Ternary,
        "range" => MatchKind::Range,
        "optional" => MatchKind::Optional,
        _ => return None,
    })
}

fn read_source(dir: &Path) -> Source {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read p4 dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "p4") {
                files.push(p);
            }
        }
    }
    files.sort();
    // Files of another pipeline included by this one (`#include
    // "../../solyx_fabric/include/header.p4"`) give their types, not
    // their entities: those belong to the other pipeline's P4Info.
    let mut external = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read p4 file");
        for l in text.lines() {
            let Some(inc) = l.trim().strip_prefix("#include \"") else {
                continue;
            };
            let target = f
                .parent()
                .expect("p4 file in a dir")
                .join(inc.trim_end_matches('"'));
            let target = target.canonicalize().unwrap_or(target);
            let inside = dir.canonicalize().is_ok_and(|d| target.starts_with(d));
            if !inside && !external.contains(&target) {
                external.push(target);
            }
        }
    }
    let mut src = Source::default();
    for f in external.iter().chain(&files) {
        let text = std::fs::read_to_string(f).expect("read p4 file");
        let lines: Vec<String> = text.lines().map(|l| strip_comment(l).to_string()).collect();
        let rel = match f.strip_prefix(dir) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => format!("{EXTERNAL}{}", f.display()),
        };
        let mut pending: (Option<u32>, Option<String>) = (None, None);
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i].as_str();
            let at = format!("{rel}:{}", i + 1);
            if let Some(rest) = l.strip_prefix("#define ") {
                let mut words = rest.split_whitespace();
                if let (Some(name), Some(value)) = (words.next(), words.next()) {
                    if let Some(v) = parse_int(value) {
                        src.defines.insert(name.to_string(), v);
                    }
                }
            } else if let Some(rest) = l.strip_prefix("typedef bit<") {
                let (w, name) = rest.split_once('>').expect("typedef");
                src.typedefs.insert(
                    name.trim().trim_end_matches(';').to_string(),
                    w.parse().expect("width"),
                );
            } else if l.starts_with("@id(") {
                pending.0 = Some(parse_id(l));
            } else if l.starts_with("@name(") && pending.0.is_some() {
                pending.1 = quoted(l);
            } else if l.starts_with("header ") || l.starts_with("struct ") {
                let name = l.split_whitespace().nth(1).expect("type name").to_string();
                let (body, end) = block(&lines, i);
                let fs = fields(between(&body, "{", '}'));
                if let (Some(id), Some(n)) = (pending.0.take(), pending.1.take()) {
                    src.entities.push(Entity {
                        id,
                        name: n,
                        kind: Kind::PacketHeader { fields: fs.clone() },
                        at,
                    });
                }
                src.types.insert(name, fs);
                i = end;
            } else if l.starts_with("control ") || l.starts_with("parser ") {
                let mut sig = String::new();
                for s in &lines[i..] {
                    sig.push_str(s);
                    if s.contains(')') {
                        break;
                    }
                }
                for (ty, name) in fields(between(&sig, "(", ')')) {
                    src.params.insert(name, ty);
                }
            } else if let (Some(id), Some(name)) = (pending.0, pending.1.clone()) {
                let name = name.trim_start_matches('.').to_string();
                let kind = if l.starts_with("table ") {
                    let (body, end) = block(&lines, i);
                    i = end;
                    let keys = between(&body, "key = {", '}')
                        .lines()
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .filter_map(|k| {
                            let (expr, rest) = k.split_once(':')?;
                            let kind = match_kind(rest.split_whitespace().next()?)?;
                            Some((expr.trim().to_string(), quoted(rest)?, kind))
                        })
                        .collect();
                    let actions = between(&body, "actions = {", '}')
                        .split(';')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(|a| {
                            let default_only = a.contains("@defaultonly");
                            let n = a.split_whitespace().last().unwrap_or("").to_string();
                            (n, default_only)
                        })
                        .collect();
                    let prop = |p: &str| {
                        body.lines()
                            .find_map(|x| x.trim().strip_prefix(p))
                            .map(|v| v.trim().trim_end_matches(';').to_string())
                    };
                    Kind::Table {
                        keys,
                        actions,
                        implementation: prop("implementation ="),
                        counters: prop("counters ="),
                    }
                } else if l.starts_with("action ") {
                    let mut sig = String::new();
                    for s in &lines[i..] {
                        sig.push_str(s);
                        if s.contains(')') {
                            break;
                        }
                    }
                    Kind::Action {
                        params: fields(between(&sig, "(", ')')),
                    }
                } else if l.starts_with("action_selector") || l.starts_with("action_profile") {
                    Kind::Selector
                } else if l.starts_with("direct_counter") {
                    Kind::DirectCounter
                } else if let Some(rest) = l.strip_prefix("register<") {
                    // `register<bit<104>>(SIZE) name;`: the type ends at the
                    // `>` that closes `register<`.
                    let mut depth = 1;
                    let end = rest
                        .char_indices()
                        .find(|(_, c)| {
                            match c {
                                '<' => depth += 1,
                                '>' => depth -= 1,
                                _ => {}
                            }
                            depth == 0
                        })
                        .map_or(rest.len(), |(n, _)| n);
                    Kind::Register {
                        ty: rest[..end].trim().to_string(),
                        size: between(&rest[end..], "(", ')').trim().to_string(),
                    }
                } else if l.starts_with("counter") {
                    Kind::Counter
                } else if l.starts_with('@') {
                    i += 1;
                    continue;
                } else {
                    panic!("{at}: @id on a declaration this test does not know: {l}");
                };
                src.entities.push(Entity { id, name, kind, at });
                pending = (None, None);
            }
            i += 1;
        }
    }
    src.entities.retain(|e| !e.at.starts_with(EXTERNAL));
    src
}

/// A decimal or `0x` hexadecimal number, with an optional `32w` width prefix.
fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let t = t.split_once('w').map_or(t, |(_, v)| v);
    match t.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Marks where an entity of an included file of another pipeline was read.
const EXTERNAL: &str = "external:";

/// v1model's standard metadata, for keys that match on it.
fn standard_metadata(field: &str) -> Option<u32> {
    Some(match field {
        "ingress_port" | "egress_spec" | "egress_port" => 9,
        "packet_length" | "instance_type" => 32,
        _ => return None,
    })
}

impl Source {
    /// A size written as a number or a `#define`d name.
    fn size_of(&self, text: &str) -> Option<i64> {
        parse_int(text).or_else(|| self.defines.get(text.trim()).copied())
    }

    fn width_of_type(&self, ty: &str) -> Option<u32> {
        if let Some(w) = ty.strip_prefix("bit<").and_then(|r| r.strip_suffix('>')) {
            return w.parse().ok();
        }
        if ty == "bool" {
            return Some(1);
        }
        self.typedefs.get(ty).copied()
    }

    /// Width of a key expression such as `hdr.ipv4.dst_addr`.
    fn width_of_expr(&self, expr: &str) -> Option<u32> {
        let parts: Vec<&str> = expr.split('.').collect();
        let (first, rest) = parts.split_first()?;
        let mut ty = self.params.get(*first)?.clone();
        if ty == "standard_metadata_t" {
            return standard_metadata(rest.first()?);
        }
        for (n, part) in rest.iter().enumerate() {
            let fs = self.types.get(&ty)?;
            let (t, _) = fs.iter().find(|(_, name)| name == part)?;
            if n + 1 == rest.len() {
                return self.width_of_type(t);
            }
            ty = t.clone();
        }
        None
    }
}

fn pipelines() -> Vec<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../p4");
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for d in dirs.flatten() {
        let dir = d.path();
        if !dir.is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            if p.to_string_lossy().ends_with(".p4info.txtpb") {
                out.push((dir.clone(), p));
            }
        }
    }
    out.sort();
    out
}

/// The bit width of a register's cells, when its type is a plain
/// bitstring (`bit<W>`, `int<W>`, `varbit<W>`).
fn register_width(r: &solyx_p4runtime::proto::p4::config::v1::Register) -> Option<u32> {
    use solyx_p4runtime::proto::p4::config::v1::{p4_bitstring_like_type_spec, p4_data_type_spec};
    let spec = r.type_spec.as_ref()?.type_spec.as_ref()?;
    let p4_data_type_spec::TypeSpec::Bitstring(b) = spec else {
        return None;
    };
    match b.type_spec.as_ref()? {
        p4_bitstring_like_type_spec::TypeSpec::Bit(t) => u32::try_from(t.bitwidth).ok(),
        p4_bitstring_like_type_spec::TypeSpec::Int(t) => u32::try_from(t.bitwidth).ok(),
        p4_bitstring_like_type_spec::TypeSpec::Varbit(t) => u32::try_from(t.max_bitwidth).ok(),
    }
}

fn check(dir: &Path, p4info: &Path) -> Vec<String> {
    let src = read_source(dir);
    let text = std::fs::read_to_string(p4info).expect("read P4Info");
    let ix = P4InfoIndex::from_text(&text).unwrap_or_else(|e| panic!("{}: {e}", p4info.display()));
    let mut problems = Vec::new();
    let mut p = |s: String| problems.push(s);
    let id_of = |local: &str| -> Option<u32> {
        src.entities
            .iter()
            .find(|e| e.name.rsplit('.').next() == Some(local))
            .map(|e| e.id)
    };

    let mut seen = std::collections::HashSet::new();
    for e in &src.entities {
        if !seen.insert(e.id) {
            p(format!(
                "{}: @id {:#x} is used twice in the source",
                e.at, e.id
            ));
        }
        let prefix = e.id >> 24;
        let want_prefix = match e.kind {
            Kind::Table { .. } => 0x02,
            Kind::Action { .. } => 0x01,
            Kind::Selector => 0x11,
            Kind::Counter => 0x12,
            Kind::DirectCounter => 0x13,
            Kind::Register { .. } => 0x16,
            Kind::PacketHeader { .. } => 0x04,
        };
        if prefix != want_prefix {
            p(format!(
                "{}: {} has @id prefix {prefix:#x}, P4Runtime wants {want_prefix:#x}",
                e.at, e.name
            ));
        }
        match &e.kind {
            Kind::Table {
                keys,
                actions,
                implementation,
                counters,
            } => {
                let Some(t) = ix.tables.by_id(e.id) else {
                    p(format!(
                        "{}: table {} ({:#x}) is not in the P4Info",
                        e.at, e.name, e.id
                    ));
                    continue;
                };
                if t.name != e.name {
                    p(format!(
                        "{}: table {:#x} is {} in the source, {} in the P4Info",
                        e.at, e.id, e.name, t.name
                    ));
                }
                if t.match_fields.len() != keys.len() {
                    p(format!(
                        "{}: table {} has {} keys in the source, {} in the P4Info",
                        e.at,
                        e.name,
                        keys.len(),
                        t.match_fields.len()
                    ));
                }
                for (n, (expr, fname, kind)) in keys.iter().enumerate() {
                    let Some(f) = t.match_fields.get(n) else {
                        break;
                    };
                    let width = src.width_of_expr(expr);
                    if f.name != *fname
                        || f.kind != *kind
                        || f.id != n as u32 + 1
                        || Some(f.bitwidth) != width
                    {
                        p(format!(
                            "{}: table {} key {n}: source {fname} {kind} {width:?} bits (id {}), P4Info {} {} {} bits (id {})",
                            e.at, e.name, n + 1, f.name, f.kind, f.bitwidth, f.id
                        ));
                    }
                }
                let mut want: Vec<(u32, ActionScope)> = Vec::new();
                for (a, default_only) in actions {
                    match id_of(a) {
                        Some(id) => want.push((
                            id,
                            if *default_only {
                                ActionScope::DefaultOnly
                            } else {
                                ActionScope::TableAndDefault
                            },
                        )),
                        None => p(format!(
                            "{}: table {} uses action {a} which has no @id",
                            e.at, e.name
                        )),
                    }
                }
                let mut have = t.actions.clone();
                want.sort_by_key(|x| x.0);
                have.sort_by_key(|x| x.0);
                if want != have {
                    p(format!(
                        "{}: table {} actions: source {want:?}, P4Info {have:?}",
                        e.at, e.name
                    ));
                }
                if implementation.as_deref().and_then(id_of) != t.implementation_id {
                    p(format!(
                        "{}: table {} implementation differs from the P4Info",
                        e.at, e.name
                    ));
                }
                if counters.as_deref().and_then(id_of) != t.direct_counter_id {
                    p(format!(
                        "{}: table {} direct counter differs from the P4Info",
                        e.at, e.name
                    ));
                }
            }
            Kind::Action { params } => {
                let Some(a) = ix.actions.by_id(e.id) else {
                    p(format!(
                        "{}: action {} ({:#x}) is not in the P4Info",
                        e.at, e.name, e.id
                    ));
                    continue;
                };
                if a.name != e.name {
                    p(format!(
                        "{}: action {:#x} is {} in the source, {} in the P4Info",
                        e.at, e.id, e.name, a.name
                    ));
                }
                let want: Vec<(u32, String, Option<u32>)> = params
                    .iter()
                    .enumerate()
                    .map(|(n, (ty, name))| (n as u32 + 1, name.clone(), src.width_of_type(ty)))
                    .collect();
                let have: Vec<(u32, String, Option<u32>)> = a
                    .params
                    .iter()
                    .map(|q| (q.id, q.name.clone(), Some(q.bitwidth)))
                    .collect();
                if want != have {
                    p(format!(
                        "{}: action {} params: source {want:?}, P4Info {have:?}",
                        e.at, e.name
                    ));
                }
            }
            Kind::Selector => match ix.action_profiles.by_id(e.id) {
                None => p(format!(
                    "{}: selector {} is not in the P4Info",
                    e.at, e.name
                )),
                Some(a) => {
                    if a.name != e.name {
                        p(format!(
                            "{}: selector {:#x} is {} in the P4Info",
                            e.at, e.id, a.name
                        ));
                    }
                    let users: Vec<u32> = src
                        .entities
                        .iter()
                        .filter(|t| matches!(&t.kind, Kind::Table { implementation: Some(i), .. } if e.name.ends_with(&format!(".{i}")) || e.name == *i))
                        .map(|t| t.id)
                        .collect();
                    let mut have = a.table_ids.clone();
                    have.sort_unstable();
                    let mut users = users;
                    users.sort_unstable();
                    if users != have {
                        p(format!(
                            "{}: selector {} tables: source {users:?}, P4Info {have:?}",
                            e.at, e.name
                        ));
                    }
                }
            },
            Kind::Counter => match ix.counters.by_id(e.id) {
                None => p(format!("{}: counter {} is not in the P4Info", e.at, e.name)),
                Some(c) if c.name != e.name => p(format!(
                    "{}: counter {:#x} is {} in the P4Info",
                    e.at, e.id, c.name
                )),
                Some(_) => {}
            },
            Kind::DirectCounter => match ix.direct_counters.by_id(e.id) {
                None => p(format!(
                    "{}: direct counter {} is not in the P4Info",
                    e.at, e.name
                )),
                Some(c) if c.name != e.name => p(format!(
                    "{}: direct counter {:#x} is {} in the P4Info",
                    e.at, e.id, c.name
                )),
                Some(_) => {}
            },
            Kind::Register { ty, size } => {
                let Some(r) = ix
                    .p4info()
                    .registers
                    .iter()
                    .find(|r| r.preamble.as_ref().map(|p| p.id) == Some(e.id))
                else {
                    p(format!(
                        "{}: register {} ({:#x}) is not in the P4Info",
                        e.at, e.name, e.id
                    ));
                    continue;
                };
                let name = r.preamble.as_ref().map_or("", |p| p.name.as_str());
                if name != e.name {
                    p(format!(
                        "{}: register {:#x} is {} in the source, {name} in the P4Info",
                        e.at, e.id, e.name
                    ));
                }
                let want_size = src.size_of(size);
                if want_size != Some(i64::from(r.size)) {
                    p(format!(
                        "{}: register {} size: source {size} = {want_size:?}, P4Info {}",
                        e.at, e.name, r.size
                    ));
                }
                let want_width = src.width_of_type(ty);
                let have_width = register_width(r);
                if want_width.is_none() || want_width != have_width {
                    p(format!(
                        "{}: register {} cells: source {ty} = {want_width:?} bits, P4Info {have_width:?} bits",
                        e.at, e.name
                    ));
                }
            }
            Kind::PacketHeader { fields } => match ix.packet_metadata.by_id(e.id) {
                None => p(format!(
                    "{}: controller header {} is not in the P4Info",
                    e.at, e.name
                )),
                Some(h) => {
                    let want: Vec<(u32, String, Option<u32>)> = fields
                        .iter()
                        .enumerate()
                        .map(|(n, (ty, name))| (n as u32 + 1, name.clone(), src.width_of_type(ty)))
                        .collect();
                    let have: Vec<(u32, String, Option<u32>)> = h
                        .metadata
                        .iter()
                        .map(|m| (m.id, m.name.clone(), Some(m.bitwidth)))
                        .collect();
                    if h.name != e.name || want != have {
                        p(format!(
                            "{}: controller header {}: source {want:?}, P4Info {} {have:?}",
                            e.at, e.name, h.name
                        ));
                    }
                }
            },
        }
    }

    // The reverse: nothing in the P4Info that the source does not declare.
    let declared = |id: u32| src.entities.iter().any(|e| e.id == id);
    let all: Vec<(u32, &str)> = ix
        .tables
        .iter()
        .map(|t| (t.id, t.name.as_str()))
        .chain(ix.actions.iter().map(|a| (a.id, a.name.as_str())))
        .chain(ix.action_profiles.iter().map(|a| (a.id, a.name.as_str())))
        .chain(ix.counters.iter().map(|c| (c.id, c.name.as_str())))
        .chain(ix.direct_counters.iter().map(|c| (c.id, c.name.as_str())))
        .chain(ix.meters.iter().map(|c| (c.id, c.name.as_str())))
        .chain(ix.registers.iter().map(|c| (c.id, c.name.as_str())))
        .chain(ix.digests.iter().map(|c| (c.id, c.name.as_str())))
        .chain(ix.packet_metadata.iter().map(|c| (c.id, c.name.as_str())))
        .collect();
    for (id, name) in all {
        if !declared(id) {
            p(format!(
                "{}: {name} ({id:#x}) has no @id in the source",
                p4info.display()
            ));
        }
    }
    problems
}

#[test]
fn every_pipeline_matches_its_p4info() {
    let found = pipelines();
    assert!(!found.is_empty(), "no p4/<pipeline>/*.p4info.txtpb found");
    let mut problems = Vec::new();
    for (dir, p4info) in &found {
        let src = read_source(dir);
        assert!(
            src.entities.len() >= 5,
            "{}: found only {} entities; has the source layout changed?",
            dir.display(),
            src.entities.len()
        );
        problems.extend(check(dir, p4info));
        eprintln!(
            "{}: {} entities checked against {}",
            dir.display(),
            src.entities.len(),
            p4info.display()
        );
    }
    assert!(
        problems.is_empty(),
        "P4 source and P4Info disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_notices_a_drifted_p4info() {
    let (dir, p4info) = pipelines().into_iter().next().expect("a pipeline");
    let text = std::fs::read_to_string(&p4info).expect("read");
    // Change one match field width and drop one action: both must be seen.
    let drifted = text.replacen("bitwidth: 20", "bitwidth: 21", 1);
    let tmp = std::env::temp_dir().join(format!("solyx-drift-{}.p4info.txtpb", std::process::id()));
    std::fs::write(&tmp, drifted).expect("write");
    let problems = check(&dir, &tmp);
    let _ = std::fs::remove_file(&tmp);
    assert!(problems.iter().any(|p| p.contains("bits")), "{problems:?}");
}

/// The `solyx_host` pipeline: the one with registers.
fn host_pipeline() -> (PathBuf, PathBuf) {
    pipelines()
        .into_iter()
        .find(|(dir, _)| dir.ends_with("solyx_host"))
        .expect("p4/solyx_host")
}

/// Copies `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("dir entry").path();
        let target = to.join(p.file_name().expect("file name"));
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy file");
        }
    }
}

/// The problems `check` finds in a copy of the P4 sources (both pipelines,
/// since the host includes the fabric's headers) after `edit` changed
/// `file` of the host pipeline.
fn check_edited_source(tag: &str, file: &str, from: &str, to: &str) -> Vec<String> {
    let (dir, p4info) = host_pipeline();
    let root = dir.parent().expect("p4 dir");
    let tmp = std::env::temp_dir().join(format!("solyx-drift-src-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_tree(root, &tmp.join("p4"));
    let host = tmp.join("p4").join(dir.file_name().expect("pipeline name"));
    let path = host.join(file);
    let text = std::fs::read_to_string(&path).expect("read source");
    assert!(text.contains(from), "{file} no longer contains {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write source");
    let problems = check(&host, &p4info);
    let _ = std::fs::remove_dir_all(&tmp);
    problems
}

/// A change to the `registers` section of a P4Info text.
type Edit = fn(&str) -> String;

/// The problems `check` finds against a copy of the host P4Info whose
/// `registers` section was changed by `edit`.
fn check_edited_p4info(tag: &str, edit: impl Fn(&str) -> String) -> Vec<String> {
    let (dir, p4info) = host_pipeline();
    let text = std::fs::read_to_string(&p4info).expect("read");
    let at = text.find("registers {").expect("a registers section");
    let drifted = format!("{}{}", &text[..at], edit(&text[at..]));
    let tmp = std::env::temp_dir().join(format!(
        "solyx-drift-{}-{tag}.p4info.txtpb",
        std::process::id()
    ));
    std::fs::write(&tmp, drifted).expect("write");
    let problems = check(&dir, &tmp);
    let _ = std::fs::remove_file(&tmp);
    problems
}

#[test]
fn registers_are_checked_against_the_p4info() {
    let (dir, p4info) = host_pipeline();
    let src = read_source(&dir);
    assert!(
        src.entities
            .iter()
            .any(|e| matches!(e.kind, Kind::Register { .. })
                && e.name == "HostEgress.flow_key_register"),
        "the host's pinned register is read from the source"
    );
    assert_eq!(check(&dir, &p4info), Vec::<String>::new());

    // The P4Info drifts: width, size, name, a missing and an extra register.
    let cases: [(&str, Edit, &str); 5] = [
        (
            "width",
            |r| r.replacen("bitwidth: 104", "bitwidth: 96", 1),
            "register HostEgress.flow_key_register cells",
        ),
        (
            "size",
            |r| r.replacen("size: 4096", "size: 2048", 1),
            "register HostEgress.flow_key_register size",
        ),
        (
            "name",
            |r| r.replacen("HostEgress.flow_key_register", "HostEgress.flow_key", 1),
            "HostEgress.flow_key in the P4Info",
        ),
        (
            "missing",
            |_| String::new(),
            "register HostEgress.flow_key_register (0x16000401) is not in the P4Info",
        ),
        (
            "extra",
            |r| {
                format!(
                    "{r}registers {{\n  preamble {{\n    id: 369099778\n    \
                     name: \"HostEgress.flowlet_ids\"\n    alias: \"flowlet_ids\"\n  }}\n  \
                     type_spec {{\n    bitstring {{\n      bit {{\n        bitwidth: 16\n      \
                     }}\n    }}\n  }}\n  size: 4096\n}}\n"
                )
            },
            "HostEgress.flowlet_ids (0x16000402) has no @id in the source",
        ),
    ];
    for (tag, edit, want) in cases {
        let problems = check_edited_p4info(tag, edit);
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "P4Info {tag}: no problem mentions {want:?}: {problems:?}"
        );
    }

    // The source drifts: cell width, size (through its #define), @id.
    let egress = "include/control/host_egress.p4";
    let problems = check_edited_source(
        "width",
        egress,
        "register<bit<104>>(HOST_FLOW_BUCKETS) flow_key_register",
        "register<bit<96>>(HOST_FLOW_BUCKETS) flow_key_register",
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("source bit<96> = Some(96) bits")),
        "{problems:?}"
    );
    let problems = check_edited_source(
        "size",
        "include/define.p4",
        "#define HOST_FLOW_BUCKETS 4096",
        "#define HOST_FLOW_BUCKETS 8192",
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("size: source HOST_FLOW_BUCKETS = Some(8192), P4Info 4096")),
        "{problems:?}"
    );
    let problems = check_edited_source("id", egress, "@id(0x16000401)", "@id(0x16000403)");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("(0x16000403) is not in the P4Info"))
            && problems
                .iter()
                .any(|p| p.contains("(0x16000401) has no @id in the source")),
        "{problems:?}"
    );
}
