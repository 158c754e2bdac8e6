//! Text forms of match fields and action parameters, as an operator types
//! them on the command line: `ipv4_dst=10.0.0.0/8`, `eth_type=0x800&&&0xffff`,
//! `l4_dport=1000..2000`, `port=3`, `dmac=00:11:22:33:44:55`.

use std::net::{Ipv4Addr, Ipv6Addr};

use solyx_p4runtime::entity::TableEntryBuilder;
use solyx_p4runtime::p4info::MatchKind;
use solyx_p4runtime::EntityError;

/// A value or match that does not parse, naming the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {reason}")]
pub struct SpecError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

fn err(text: &str, reason: impl Into<String>) -> SpecError {
    SpecError {
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// Parses a value: decimal or `0x` hex integer (up to 128 bits), dotted
/// IPv4, IPv6, or a MAC address. Returns big-endian bytes.
///
/// # Errors
/// [`SpecError`] when none of these forms fits.
pub fn parse_value(text: &str) -> Result<Vec<u8>, SpecError> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(err(text, "not a hex number"));
        }
        let padded = if hex.len() % 2 == 1 {
            format!("0{hex}")
        } else {
            hex.to_string()
        };
        return (0..padded.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&padded[i..i + 2], 16).map_err(|e| err(text, e.to_string()))
            })
            .collect();
    }
    if let Ok(v) = t.parse::<u128>() {
        return Ok(v.to_be_bytes().to_vec());
    }
    if let Ok(ip) = t.parse::<Ipv4Addr>() {
        return Ok(ip.octets().to_vec());
    }
    if let Ok(ip) = t.parse::<Ipv6Addr>() {
        return Ok(ip.octets().to_vec());
    }
    if let Ok(mac) = solyx_p4runtime::canonical::parse_mac(t) {
        return Ok(mac.to_vec());
    }
    Err(err(text, "not a number, 0x-hex, IPv4, IPv6 or MAC address"))
}

/// Splits `name=value` at the first `=`.
///
/// # Errors
/// [`SpecError`] when there is no `=` or the name is empty.
pub fn split_assignment(text: &str) -> Result<(&str, &str), SpecError> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value.trim())),
        _ => Err(err(text, "expected name=value")),
    }
}

/// Adds one `field=value` match to `builder`, in the form the field's
/// match kind takes: `v` (exact, optional), `v/len` (LPM), `v&&&mask`
/// (ternary), `low..high` (range).
///
/// # Errors
/// [`SpecError`] for text that does not parse; [`EntityError`] (as text)
/// when the entity is wrong for the table.
pub fn add_match<'a>(
    builder: TableEntryBuilder<'a>,
    kind: MatchKind,
    text: &str,
) -> Result<TableEntryBuilder<'a>, SpecError> {
    let (name, value) = split_assignment(text)?;
    let entity = |e: EntityError| err(text, e.to_string());
    match kind {
        MatchKind::Exact => builder.exact(name, parse_value(value)?).map_err(entity),
        MatchKind::Optional => builder.optional(name, parse_value(value)?).map_err(entity),
        MatchKind::Lpm => {
            let (v, len) = value
                .split_once('/')
                .ok_or_else(|| err(text, "LPM wants value/prefix_len"))?;
            let len: i32 = len
                .parse()
                .map_err(|_| err(text, "prefix length is not a number"))?;
            builder.lpm(name, parse_value(v)?, len).map_err(entity)
        }
        MatchKind::Ternary => {
            let (v, m) = value
                .split_once("&&&")
                .ok_or_else(|| err(text, "ternary wants value&&&mask"))?;
            builder
                .ternary(name, parse_value(v)?, parse_value(m)?)
                .map_err(entity)
        }
        MatchKind::Range => {
            let (lo, hi) = value
                .split_once("..")
                .ok_or_else(|| err(text, "range wants low..high"))?;
            builder
                .range(name, parse_value(lo)?, parse_value(hi)?)
                .map_err(entity)
        }
        MatchKind::Other => Err(err(
            text,
            "architecture-specific match kinds are not supported",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_in_every_form() {
        assert_eq!(parse_value("3").unwrap(), 3u128.to_be_bytes().to_vec());
        assert_eq!(parse_value("0x800").unwrap(), vec![0x08, 0x00]);
        assert_eq!(parse_value("10.0.0.1").unwrap(), vec![10, 0, 0, 1]);
        assert_eq!(
            parse_value("00:11:22:33:44:55").unwrap(),
            vec![0, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
        assert_eq!(parse_value("::1").unwrap().len(), 16);
    }

    #[test]
    fn bad_values_name_the_text() {
        let e = parse_value("10.0.0.300").unwrap_err();
        assert_eq!(e.text, "10.0.0.300");
        assert!(parse_value("0x").is_err());
        assert!(parse_value("0xzz").is_err());
        assert!(split_assignment("=3").is_err());
        assert!(split_assignment("port").is_err());
    }
}
