//! The declared-resources file: what the operator states about a node,
//! overriding what the agent discovers. Its fields are those of a device's
//! `node:` block in a topology file, plus the placement labels and an
//! optional node name:
//!
//! ```yaml
//! name: gpu-07                  # default: the host name
//! site: site-a                  # placement labels
//! rack: r1
//! pod: p1
//! cpus: 16
//! memory: 64GiB
//! gpus: [{ model: A100, count: 4, memory: 80GiB }]
//! accelerators: [{ kind: fpga, model: U250, count: 1 }]
//! power_watts: 1200
//! ```
//!
//! Every field is optional; a field that is absent leaves the discovered
//! value in place. `gpus:` replaces the discovered GPUs as a whole (an
//! empty list declares a node without GPUs). Errors name the file, the line
//! and the field (`node.yaml:7:9: gpus[0].memory: ...`).

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// The declared resources of a node.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    /// Node name (default: the host name).
    pub name: Option<Label>,
    /// Site (MetaPod): the unit of energy price and carbon intensity.
    pub site: Option<Label>,
    /// Rack within the site.
    pub rack: Option<Label>,
    /// Pod within the site.
    pub pod: Option<Label>,
    /// Logical CPUs.
    pub cpus: Option<NonZeroU32>,
    /// Memory.
    pub memory: Option<Size>,
    /// GPUs, in groups of one model; replaces the discovered ones.
    pub gpus: Option<Vec<DeclaredGpu>>,
    /// TPUs, FPGAs and other accelerators.
    #[serde(default)]
    pub accelerators: Vec<DeclaredAccelerator>,
    /// Power draw of the whole node.
    pub power_watts: Option<Watts>,
}

/// A group of identical GPUs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredGpu {
    /// Model name (`A100`, `H100-SXM5-80GB`, ...).
    pub model: Label,
    /// How many [default: 1].
    #[serde(default = "one")]
    pub count: NonZeroU32,
    /// Memory of each.
    pub memory: Option<Size>,
}

/// A group of identical accelerators of another kind than GPU.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredAccelerator {
    /// `tpu`, `fpga`, or another lower-case word.
    pub kind: Kind,
    /// Model name.
    pub model: Label,
    /// How many [default: 1].
    #[serde(default = "one")]
    pub count: NonZeroU32,
    /// Memory of each.
    pub memory: Option<Size>,
}

fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}

/// Why a declared-resources file was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeclaredError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{}{}: {field}: {message}", path.display(), place(*line, *column))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line (from 1), when known.
        line: Option<usize>,
        /// Column (from 1), when known.
        column: Option<usize>,
        /// The field, as a path (`gpus[0].memory`; `.` for the document).
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

fn place(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl Declared {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    /// [`DeclaredError::Read`], or [`DeclaredError::Invalid`] naming the
    /// line and the field.
    pub fn load(path: &Path) -> Result<Self, DeclaredError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeclaredError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Checks `text`, the contents of the file `path` (named in errors).
    ///
    /// # Errors
    /// [`DeclaredError::Invalid`] naming the line and the field.
    pub fn parse(path: &Path, text: &str) -> Result<Self, DeclaredError> {
        // An empty file (or one of comments only) declares nothing.
        let blank = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if blank {
            return Ok(Self::default());
        }
        let de = serde_norway::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let location = inner.location();
            DeclaredError::Invalid {
                path: path.to_path_buf(),
                line: location.as_ref().map(serde_norway::Location::line),
                column: location.as_ref().map(serde_norway::Location::column),
                message: bare_message(&inner.to_string(), &field),
                field,
            }
        })
    }
}

/// serde_norway writes "field: message at line L column C"; the error
/// carries the field and the place apart.
fn bare_message(message: &str, field: &str) -> String {
    let m = message
        .strip_prefix(field)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message);
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

/// Deserializes a string checked by `check`. The check runs inside the
/// visitor, so that the parser places an error at the value itself.
fn checked_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        check: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.check)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { expecting, check })
}

/// A name or label: non-empty, at most 64 characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label(String);

impl Label {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Label {
    fn check(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > 64 {
            return Err("longer than 64 characters".into());
        }
        if s.chars().any(char::is_control) {
            return Err("contains a control character".into());
        }
        Ok(Self(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a name", Self::check)
    }
}

/// An accelerator kind: a lower-case word (`tpu`, `fpga`, ...). `gpu` is
/// refused here: GPUs go under `gpus:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kind(String);

impl Kind {
    /// The word.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an accelerator kind", Self::check)
    }
}

impl Kind {
    fn check(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(format!(
                "invalid kind {s:?}: a lower-case word such as tpu or fpga"
            ));
        }
        if s == "gpu" {
            return Err("GPUs are declared under `gpus:`, not as accelerators".into());
        }
        Ok(Self(s.to_string()))
    }
}

/// A size in bytes, written with a binary unit: `512MiB`, `64GiB`,
/// `1.5TiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// Parses `512MiB`, `64 GiB`, `1.5TiB`.
    ///
    /// # Errors
    /// A message saying what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("invalid size {text:?}: write a number and MiB, GiB or TiB (64GiB)");
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, unit) = t.split_at(split);
        let scale: u64 = match unit.trim() {
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            _ => return Err(bad()),
        };
        let n: f64 = number.parse().map_err(|_| bad())?;
        #[allow(clippy::cast_precision_loss)]
        let bytes = n * scale as f64;
        // 2^63: beyond any machine's memory, and exact in f64.
        if !bytes.is_finite() || bytes <= 0.0 || bytes >= 9.223_372_036_854_776e18 {
            return Err(format!(
                "invalid size {text:?}: must be above zero and below 8 EiB"
            ));
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Self(bytes.round() as u64))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a size such as 64GiB", Self::parse)
    }
}

/// A power in watts: finite, not negative.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Watts(pub f64);

impl<'de> Deserialize<'de> for Watts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Watts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("watts, zero or more")
            }
            fn visit_f64<E: serde::de::Error>(self, w: f64) -> Result<Watts, E> {
                if !w.is_finite() || w < 0.0 {
                    return Err(E::custom(format!("invalid power {w}: watts, zero or more")));
                }
                Ok(Watts(w))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: serde::de::Error>(self, w: i64) -> Result<Watts, E> {
                self.visit_f64(w as f64)
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: serde::de::Error>(self, w: u64) -> Result<Watts, E> {
                self.visit_f64(w as f64)
            }
        }
        d.deserialize_f64(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Declared, String> {
        Declared::parse(Path::new("node.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_topology_node_block_parses() {
        let d = parse(
            "site: site-a\nrack: r1\npod: p1\ncpus: 16\nmemory: 64GiB\n\
             gpus: [{ model: A100, count: 4, memory: 80GiB }]\n\
             accelerators: [{ kind: fpga, model: U250, count: 1 }]\npower_watts: 1200\n",
        )
        .expect("valid");
        assert_eq!(d.site.as_ref().map(Label::as_str), Some("site-a"));
        assert_eq!(d.cpus.map(NonZeroU32::get), Some(16));
        assert_eq!(d.memory, Some(Size(64 << 30)));
        let gpus = d.gpus.expect("gpus");
        assert_eq!(gpus[0].count.get(), 4);
        assert_eq!(gpus[0].memory, Some(Size(80 << 30)));
        assert_eq!(d.accelerators[0].kind.as_str(), "fpga");
        assert_eq!(d.power_watts, Some(Watts(1200.0)));
    }

    #[test]
    fn an_empty_file_declares_nothing() {
        assert_eq!(
            parse("# nothing yet\n\n").expect("valid"),
            Declared::default()
        );
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = parse("cpus: 16\ngpus:\n  - model: A100\n    memory: 80GB\n").unwrap_err();
        assert!(e.starts_with("node.yaml:4:"), "{e}");
        assert!(e.contains("gpus[0].memory"), "{e}");
        assert!(e.contains("MiB, GiB or TiB"), "{e}");

        let e = parse("cpus: 16\ncpu_count: 3\n").unwrap_err();
        assert!(e.starts_with("node.yaml:2:"), "{e}");
        assert!(e.contains("unknown field `cpu_count`"), "{e}");

        let e = parse("cpus: 0\n").unwrap_err();
        assert!(e.starts_with("node.yaml:1:") && e.contains("cpus"), "{e}");

        let e = parse("accelerators:\n  - { kind: gpu, model: X }\n").unwrap_err();
        assert!(
            e.contains("accelerators[0].kind") && e.contains("gpus:"),
            "{e}"
        );

        let e = parse("power_watts: -5\n").unwrap_err();
        assert!(
            e.contains("power_watts") && e.contains("invalid power"),
            "{e}"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("512MiB"), Ok(Size(512 << 20)));
        assert_eq!(Size::parse("1.5 TiB"), Ok(Size(3 << 39)));
        for bad in ["64", "64GB", "GiB", "-1GiB", "0GiB", "1e3GiB", "9000000TiB"] {
            assert!(Size::parse(bad).is_err(), "{bad}");
        }
    }
}

/// The formats the documentation shows are the ones the parser takes.
#[cfg(test)]
mod doc_tests {
    use super::*;

    /// The first ```yaml block of `doc` (under `docs/`) that contains `marker`.
    fn yaml_block(doc: &str, marker: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(doc);
        let text = std::fs::read_to_string(&path).expect("doc");
        text.split("```yaml")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .find(|b| b.contains(marker))
            .unwrap_or_else(|| panic!("no yaml block with {marker:?} in {doc}"))
            .to_string()
    }

    #[test]
    fn the_node_blocks_of_the_topology_format_parse() {
        let topology: serde_norway::Value =
            serde_norway::from_str(&yaml_block("topology-format.md", "node:")).expect("yaml");
        let devices = topology["devices"].as_sequence().expect("devices");
        let mut blocks = 0;
        for device in devices {
            if let Some(node) = device.get("node") {
                let text = serde_norway::to_string(node).expect("yaml");
                Declared::parse(Path::new("topology-format.md"), &text)
                    .unwrap_or_else(|e| panic!("{e}"));
                blocks += 1;
            }
        }
        assert!(blocks > 0);
    }

    #[test]
    fn the_declared_file_of_the_node_resources_doc_parses() {
        let text = yaml_block("node-resources.md", "power_watts");
        let d = Declared::parse(Path::new("node-resources.md"), &text).expect("valid");
        assert!(d.site.is_some() && d.gpus.is_some() && !d.accelerators.is_empty());
    }
}
