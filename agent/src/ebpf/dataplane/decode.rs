//! Reading values out of validated, normalised P4Runtime entities: match
//! fields by ID, action parameters by ID, canonical byte strings widened to
//! fixed-size arrays. The server has checked every width against the
//! P4Info, so a failure here means a P4Info and data plane mismatch and is
//! reported as `INVALID_ARGUMENT`, never a panic.

use solyx_p4runtime::proto::p4::v1 as p4;

use crate::p4rt::{DataplaneError, DataplaneErrorKind};

/// An `INVALID_ARGUMENT` data plane error.
pub(crate) fn invalid(message: impl Into<String>) -> DataplaneError {
    DataplaneError::new(DataplaneErrorKind::Invalid, message)
}

/// `bytes` (big-endian, canonical: possibly shorter) right-aligned in `N`
/// bytes; `None` when it does not fit.
pub(crate) fn fixed<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let significant = bytes
        .iter()
        .position(|&b| b != 0)
        .map_or(&[][..], |i| &bytes[i..]);
    if significant.len() > N {
        return None;
    }
    let mut out = [0u8; N];
    out[N - significant.len()..].copy_from_slice(significant);
    Some(out)
}

/// `bytes` as an unsigned number, if it fits 32 bits.
pub(crate) fn uint(bytes: &[u8]) -> Option<u32> {
    fixed::<4>(bytes).map(u32::from_be_bytes)
}

/// The match of field `id`, if the entry has it (absent = don't care).
pub(crate) fn field(entry: &p4::TableEntry, id: u32) -> Option<&p4::field_match::FieldMatchType> {
    entry
        .r#match
        .iter()
        .find(|m| m.field_id == id)
        .and_then(|m| m.field_match_type.as_ref())
}

/// The value of exact field `id`.
pub(crate) fn exact<'a>(
    entry: &'a p4::TableEntry,
    id: u32,
    what: &str,
) -> Result<&'a [u8], DataplaneError> {
    match field(entry, id) {
        Some(p4::field_match::FieldMatchType::Exact(e)) => Ok(&e.value),
        _ => Err(invalid(format!("{what}: the exact match field is missing"))),
    }
}

/// The value and prefix length of LPM field `id`; a missing field is the
/// default route `0/0`.
pub(crate) fn lpm(entry: &p4::TableEntry, id: u32) -> Result<([u8; 4], u32), DataplaneError> {
    match field(entry, id) {
        None => Ok(([0; 4], 0)),
        Some(p4::field_match::FieldMatchType::Lpm(l)) => {
            let addr = fixed::<4>(&l.value)
                .ok_or_else(|| invalid("ipv4_dst: the address is wider than 32 bits"))?;
            let len = u32::try_from(l.prefix_len)
                .ok()
                .filter(|&len| len <= 32)
                .ok_or_else(|| invalid(format!("ipv4_dst: prefix length {}", l.prefix_len)))?;
            Ok((mask_prefix(addr, len), len))
        }
        Some(_) => Err(invalid("ipv4_dst is not an LPM match")),
    }
}

/// `addr` with the bits beyond the first `len` cleared.
pub(crate) fn mask_prefix(addr: [u8; 4], len: u32) -> [u8; 4] {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    };
    (u32::from_be_bytes(addr) & mask).to_be_bytes()
}

/// A ternary match's value and mask.
pub(crate) type ValueMask<'a> = (&'a [u8], &'a [u8]);

/// The value and mask of ternary field `id`; `None` when it is a don't
/// care.
pub(crate) fn ternary(
    entry: &p4::TableEntry,
    id: u32,
) -> Result<Option<ValueMask<'_>>, DataplaneError> {
    match field(entry, id) {
        None => Ok(None),
        Some(p4::field_match::FieldMatchType::Ternary(t)) => Ok(Some((&t.value, &t.mask))),
        Some(_) => Err(invalid(format!("match field {id} is not ternary"))),
    }
}

/// The direct action of an entry (or a member), if it names one.
pub(crate) fn direct_action(entry: &p4::TableEntry) -> Option<&p4::Action> {
    match entry.action.as_ref().and_then(|a| a.r#type.as_ref()) {
        Some(p4::table_action::Type::Action(a)) => Some(a),
        _ => None,
    }
}

/// The value of parameter `id` of `action`.
pub(crate) fn param<'a>(
    action: &'a p4::Action,
    id: u32,
    what: &str,
) -> Result<&'a [u8], DataplaneError> {
    action
        .params
        .iter()
        .find(|p| p.param_id == id)
        .map(|p| p.value.as_slice())
        .ok_or_else(|| invalid(format!("{what}: parameter {id} is missing")))
}

/// Parameter `id` of `action` as a port number.
pub(crate) fn port_param(action: &p4::Action, id: u32, what: &str) -> Result<u32, DataplaneError> {
    let value = param(action, id, what)?;
    uint(value).ok_or_else(|| invalid(format!("{what}: the port does not fit 32 bits")))
}

/// Parameter `id` of `action` as a MAC address.
pub(crate) fn mac_param(
    action: &p4::Action,
    id: u32,
    what: &str,
) -> Result<[u8; 6], DataplaneError> {
    let value = param(action, id, what)?;
    fixed::<6>(value).ok_or_else(|| invalid(format!("{what}: the MAC is wider than 48 bits")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_values_widen() {
        assert_eq!(fixed::<4>(&[0x0a, 0, 0, 1]), Some([10, 0, 0, 1]));
        assert_eq!(fixed::<2>(&[0x01]), Some([0, 1]));
        assert_eq!(fixed::<2>(&[0, 0, 0, 7]), Some([0, 7]));
        assert_eq!(fixed::<2>(&[1, 0, 0]), None);
        assert_eq!(fixed::<2>(&[]), Some([0, 0]));
        assert_eq!(uint(&[1, 0]), Some(256));
    }

    #[test]
    fn prefixes_are_masked() {
        assert_eq!(mask_prefix([10, 1, 2, 3], 16), [10, 1, 0, 0]);
        assert_eq!(mask_prefix([10, 1, 2, 3], 0), [0, 0, 0, 0]);
        assert_eq!(mask_prefix([10, 1, 2, 3], 32), [10, 1, 2, 3]);
    }
}
