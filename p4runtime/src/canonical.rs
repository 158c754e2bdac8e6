//! Canonical byte strings for P4Runtime values.
//!
//! P4Runtime carries every match value and action parameter as an unsigned
//! big-endian byte string. The canonical form is the shortest string that
//! holds the value (zero is one `0x00` byte). Servers must accept it and
//! answer reads with it, so a client that writes canonical values can compare
//! what it reads back byte for byte.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a value does not fit the field it is meant for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The byte string is empty; P4Runtime has no empty integer.
    #[error("empty byte string")]
    Empty,
    /// The value needs more bits than the field has.
    #[error("value needs {needed} bits but the field is {bitwidth} bits wide")]
    TooWide {
        /// Width of the field in bits.
        bitwidth: u32,
        /// Bits the value needs.
        needed: u32,
    },
    /// An LPM prefix is longer than the field.
    #[error("prefix length {prefix_len} exceeds the field width {bitwidth}")]
    PrefixTooLong {
        /// The prefix length given.
        prefix_len: i32,
        /// Width of the field in bits.
        bitwidth: u32,
    },
}

/// Returns the canonical form of `bytes`: leading zero bytes removed, zero
/// kept as one `0x00` byte. An empty input stays empty.
#[must_use]
pub fn canonical(bytes: &[u8]) -> Vec<u8> {
    match bytes.iter().position(|b| *b != 0) {
        Some(first) => bytes[first..].to_vec(),
        None if bytes.is_empty() => Vec::new(),
        None => vec![0],
    }
}

/// Bits needed to hold the unsigned big-endian value in `bytes`.
#[must_use]
pub fn bit_length(bytes: &[u8]) -> u32 {
    match bytes.iter().position(|b| *b != 0) {
        Some(first) => {
            let rest = (bytes.len() - first - 1) as u32;
            rest * 8 + (8 - bytes[first].leading_zeros())
        }
        None => 0,
    }
}

/// Canonicalises `bytes` for a field of `bitwidth` bits.
///
/// A `bitwidth` of 0 means the field has no fixed width (a translated
/// `string` type): the bytes are returned as they are.
///
/// # Errors
/// [`ValueError::Empty`] for an empty integer, [`ValueError::TooWide`] when
/// the value does not fit.
pub fn fit(bytes: &[u8], bitwidth: u32) -> Result<Vec<u8>, ValueError> {
    if bitwidth == 0 {
        return Ok(bytes.to_vec());
    }
    if bytes.is_empty() {
        return Err(ValueError::Empty);
    }
    let needed = bit_length(bytes);
    if needed > bitwidth {
        return Err(ValueError::TooWide { bitwidth, needed });
    }
    Ok(canonical(bytes))
}

/// Pads (or trims leading zeros of) `bytes` to exactly `ceil(bitwidth / 8)`
/// bytes, the fixed layout a data plane table key needs.
///
/// # Errors
/// [`ValueError::TooWide`] when the value does not fit in `bitwidth` bits.
pub fn to_width(bytes: &[u8], bitwidth: u32) -> Result<Vec<u8>, ValueError> {
    let needed = bit_length(bytes);
    if needed > bitwidth {
        return Err(ValueError::TooWide { bitwidth, needed });
    }
    let len = bitwidth.div_ceil(8) as usize;
    let value = &bytes[bytes.len().saturating_sub(len)..];
    let mut out = vec![0u8; len - value.len()];
    out.extend_from_slice(value);
    Ok(out)
}

/// Zeroes every bit after the first `prefix_len` bits of a `bitwidth`-bit
/// value, so that an LPM value carries no bits outside its prefix. Returns
/// the canonical form.
///
/// # Errors
/// [`ValueError::PrefixTooLong`] or [`ValueError::TooWide`].
pub fn mask_prefix(bytes: &[u8], prefix_len: i32, bitwidth: u32) -> Result<Vec<u8>, ValueError> {
    if prefix_len < 0 || prefix_len as u32 > bitwidth {
        return Err(ValueError::PrefixTooLong {
            prefix_len,
            bitwidth,
        });
    }
    let mut full = to_width(bytes, bitwidth)?;
    // Bit `i` of the field (0 = most significant) sits at this offset in
    // the padded buffer: the first byte carries the unused high bits.
    let pad = full.len() as u32 * 8 - bitwidth;
    let keep = pad + prefix_len as u32;
    for (i, byte) in full.iter_mut().enumerate() {
        let start = i as u32 * 8;
        if start >= keep {
            *byte = 0;
        } else if start + 8 > keep {
            *byte &= 0xffu8 << (8 - (keep - start));
        }
    }
    Ok(canonical(&full))
}

/// ANDs `value` with `mask` (both taken as unsigned integers), in canonical
/// form: ternary values carry no bits outside their mask.
#[must_use]
pub fn and_mask(value: &[u8], mask: &[u8]) -> Vec<u8> {
    let len = value.len().max(mask.len());
    let pick = |b: &[u8], i: usize| {
        let off = len - b.len();
        if i < off {
            0
        } else {
            b[i - off]
        }
    };
    let out: Vec<u8> = (0..len).map(|i| pick(value, i) & pick(mask, i)).collect();
    if out.is_empty() {
        return vec![0];
    }
    canonical(&out)
}

/// Compares two unsigned big-endian byte strings as integers.
#[must_use]
pub fn cmp_uint(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let a = &a[a.iter().position(|x| *x != 0).unwrap_or(a.len())..];
    let b = &b[b.iter().position(|x| *x != 0).unwrap_or(b.len())..];
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Reads an unsigned integer of at most 128 bits.
///
/// # Errors
/// [`ValueError::TooWide`] when the value needs more than 128 bits.
pub fn to_u128(bytes: &[u8]) -> Result<u128, ValueError> {
    let needed = bit_length(bytes);
    if needed > 128 {
        return Err(ValueError::TooWide {
            bitwidth: 128,
            needed,
        });
    }
    Ok(bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b)))
}

/// Anything that can be written as a P4Runtime value: integers, addresses
/// and raw byte strings. The bytes are big-endian and need not be canonical;
/// builders canonicalise and check them against the field width.
pub trait ToBytes {
    /// The value as big-endian bytes.
    fn to_bytes(&self) -> Vec<u8>;
}

macro_rules! uint_to_bytes {
    ($($t:ty),*) => {$(
        impl ToBytes for $t {
            fn to_bytes(&self) -> Vec<u8> {
                self.to_be_bytes().to_vec()
            }
        }
    )*};
}
uint_to_bytes!(u8, u16, u32, u64, u128);

impl ToBytes for Ipv4Addr {
    fn to_bytes(&self) -> Vec<u8> {
        self.octets().to_vec()
    }
}

impl ToBytes for Ipv6Addr {
    fn to_bytes(&self) -> Vec<u8> {
        self.octets().to_vec()
    }
}

impl<const N: usize> ToBytes for [u8; N] {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl ToBytes for [u8] {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl ToBytes for Vec<u8> {
    fn to_bytes(&self) -> Vec<u8> {
        self.clone()
    }
}

impl ToBytes for bytes::Bytes {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl<T: ToBytes + ?Sized> ToBytes for &T {
    fn to_bytes(&self) -> Vec<u8> {
        (**self).to_bytes()
    }
}

/// Parses a MAC address written as six colon- or dash-separated hex bytes.
///
/// # Errors
/// A message naming the text when it is not a MAC address.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!(
            "{text:?} is not a MAC address (want six hex bytes)"
        ));
    }
    for (slot, part) in out.iter_mut().zip(parts) {
        *slot = u8::from_str_radix(part, 16)
            .map_err(|_| format!("{text:?} is not a MAC address: bad byte {part:?}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_strips_leading_zeros_and_keeps_one_for_zero() {
        assert_eq!(canonical(&[0, 0, 1, 0]), vec![1, 0]);
        assert_eq!(canonical(&[0, 0, 0]), vec![0]);
        assert_eq!(canonical(&[]), Vec::<u8>::new());
        assert_eq!(canonical(&[0x80]), vec![0x80]);
    }

    #[test]
    fn fit_checks_width_in_bits_not_bytes() {
        assert_eq!(fit(&[0x01, 0xff], 9), Ok(vec![0x01, 0xff]));
        assert_eq!(
            fit(&[0x02, 0x00], 9),
            Err(ValueError::TooWide {
                bitwidth: 9,
                needed: 10
            })
        );
        assert_eq!(fit(&[], 9), Err(ValueError::Empty));
        assert_eq!(fit(&[0, 0, 0, 0, 5], 3), Ok(vec![5]));
    }

    #[test]
    fn mask_prefix_clears_bits_past_the_prefix() {
        let v = Ipv4Addr::new(10, 1, 2, 3).to_bytes();
        assert_eq!(mask_prefix(&v, 16, 32), Ok(vec![10, 1, 0, 0]));
        assert_eq!(mask_prefix(&v, 0, 32), Ok(vec![0]));
        assert_eq!(mask_prefix(&v, 12, 32), Ok(vec![10, 0, 0, 0]));
        assert_eq!(mask_prefix(&[0x01, 0xff], 1, 9), Ok(vec![0x01, 0x00]));
        assert!(mask_prefix(&v, 33, 32).is_err());
    }

    #[test]
    fn to_width_pads_for_fixed_layout() {
        assert_eq!(to_width(&[1], 32), Ok(vec![0, 0, 0, 1]));
        assert_eq!(to_width(&[0, 0, 0, 0, 1], 9), Ok(vec![0, 1]));
        assert!(to_width(&[2, 0], 9).is_err());
    }

    #[test]
    fn parse_mac_names_the_bad_input() {
        assert_eq!(
            parse_mac("00:11:22:aa:bb:cc"),
            Ok([0, 0x11, 0x22, 0xaa, 0xbb, 0xcc])
        );
        assert!(parse_mac("00:11:22").unwrap_err().contains("00:11:22"));
        assert!(parse_mac("zz:11:22:aa:bb:cc").unwrap_err().contains("zz"));
    }

    proptest! {
        #[test]
        fn canonical_is_idempotent_and_value_preserving(v in proptest::collection::vec(any::<u8>(), 1..20)) {
            let c = canonical(&v);
            prop_assert_eq!(canonical(&c), c.clone());
            prop_assert_eq!(cmp_uint(&c, &v), std::cmp::Ordering::Equal);
            prop_assert!(c.len() == 1 || c[0] != 0);
        }

        #[test]
        fn fit_round_trips_through_fixed_width(x in any::<u64>(), extra in 0u32..64) {
            let bits = (64 - x.leading_zeros()).max(1) + extra;
            let fitted = fit(&x.to_bytes(), bits).unwrap();
            let wide = to_width(&fitted, bits).unwrap();
            prop_assert_eq!(to_u128(&wide).unwrap(), u128::from(x));
            prop_assert_eq!(canonical(&wide), fitted);
        }

        #[test]
        fn mask_prefix_is_idempotent_and_shrinks(x in any::<u32>(), len in 0i32..=32) {
            let once = mask_prefix(&x.to_bytes(), len, 32).unwrap();
            let twice = mask_prefix(&once, len, 32).unwrap();
            prop_assert_eq!(&once, &twice);
            let expect = if len == 0 { 0 } else { x & (u32::MAX << (32 - len)) };
            prop_assert_eq!(to_u128(&once).unwrap(), u128::from(expect));
        }

        #[test]
        fn and_mask_matches_integer_and(a in any::<u64>(), m in any::<u64>()) {
            let out = and_mask(&a.to_bytes(), &m.to_bytes());
            prop_assert_eq!(to_u128(&out).unwrap(), u128::from(a & m));
        }
    }
}
