//! Finds the line and column of a field in a YAML document, given its
//! path (`devices[3].name`).
//!
//! serde_norway reports a location only for errors raised while it
//! deserializes. Checks that span the whole file (a duplicate name, a
//! link to an unknown device) run afterwards, on typed values. To point
//! at the offending line, we deserialize the document once more with a
//! seed that walks down the path and fails exactly at the value it
//! names: serde_norway then attaches that value's position to the error.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

const HERE: &str = "solyx-locate: here";

/// Parses `devices[3].node.gpus[0]` into steps.
pub fn parse_path(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                steps.push(Step::Key(rest[..open].to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    steps.push(Step::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else {
            steps.push(Step::Key(rest.to_string()));
        }
    }
    steps
}

/// Line and column (from 1) of the value at `path` in `yaml`, if the
/// path exists. Falls back to the deepest existing parent.
pub fn locate(yaml: &str, path: &str) -> Option<(usize, usize)> {
    let steps = parse_path(path);
    (0..=steps.len())
        .rev()
        .find_map(|n| locate_steps(yaml, &steps[..n]))
}

fn locate_steps(yaml: &str, steps: &[Step]) -> Option<(usize, usize)> {
    let de = serde_norway::Deserializer::from_str(yaml);
    match (Probe { steps }).deserialize(de) {
        Err(e) if e.to_string().contains(HERE) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

struct Probe<'a> {
    steps: &'a [Step],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Step::Key(want), rest)) = self.steps.split_first() else {
            return Err(de::Error::custom(if self.steps.is_empty() {
                HERE
            } else {
                "no"
            }));
        };
        while let Some(key) = map.next_key::<serde_norway::Value>()? {
            let matches = match &key {
                serde_norway::Value::String(s) => s == want,
                other => serde_norway::to_string(other).is_ok_and(|t| t.trim() == want),
            };
            if matches {
                return map.next_value_seed(Probe { steps: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom("no"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Step::Index(want), rest)) = self.steps.split_first() else {
            return Err(de::Error::custom(if self.steps.is_empty() {
                HERE
            } else {
                "no"
            }));
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom("no"));
            }
        }
        match seq.next_element_seed(Probe { steps: rest })? {
            Some(()) => Ok(()),
            None => Err(de::Error::custom("no")),
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
}

impl Probe<'_> {
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        Err(E::custom(if self.steps.is_empty() { HERE } else { "no" }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: x\ndevices:\n  - name: a\n    role: fabric\n  - { name: b, role: host }\nlinks:\n  - [a:1, b:1]\n";

    #[test]
    fn finds_values_by_path() {
        assert_eq!(locate(DOC, "name"), Some((1, 7)));
        assert_eq!(locate(DOC, "devices[0].role"), Some((4, 11)));
        assert_eq!(locate(DOC, "devices[1].role"), Some((5, 22)));
        assert_eq!(locate(DOC, "links[0][1]"), Some((7, 11)));
        // A missing field falls back to its parent.
        assert_eq!(locate(DOC, "devices[1].ip"), locate(DOC, "devices[1]"));
        assert_eq!(locate(DOC, "devices[1]").map(|l| l.0), Some(5));
    }

    #[test]
    fn paths_parse_into_steps() {
        assert_eq!(
            parse_path("devices[3].node.gpus[0]"),
            vec![
                Step::Key("devices".into()),
                Step::Index(3),
                Step::Key("node".into()),
                Step::Key("gpus".into()),
                Step::Index(0)
            ]
        );
        assert_eq!(
            parse_path("links[2][0]"),
            vec![Step::Key("links".into()), Step::Index(2), Step::Index(0)]
        );
    }
}
