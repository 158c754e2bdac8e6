//! Checked big-endian reads from byte slices.
//!
//! Every read returns `None` when the bytes are not there, so the parsers
//! never index out of bounds: a short buffer becomes a [`ParseError`]
//! chosen by the caller, never a panic.
//!
//! [`ParseError`]: crate::ParseError

/// The byte at `off`.
#[inline]
pub(crate) fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

/// The big-endian `u16` at `off`.
#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*b.get(off..)?.first_chunk::<2>()?))
}

/// The big-endian `u32` at `off`.
#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*b.get(off..)?.first_chunk::<4>()?))
}

/// The big-endian `u64` at `off`.
#[inline]
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_be_bytes(*b.get(off..)?.first_chunk::<8>()?))
}

/// The six bytes at `off` (a MAC address).
#[inline]
pub(crate) fn mac_at(b: &[u8], off: usize) -> Option<[u8; 6]> {
    Some(*b.get(off..)?.first_chunk::<6>()?)
}

/// `b[start..end]`, or `None` when the range is out of bounds or reversed.
#[inline]
pub(crate) fn range(b: &[u8], start: usize, end: usize) -> Option<&[u8]> {
    b.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_big_endian_and_checked() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        assert_eq!(u8_at(&b, 7), Some(8));
        assert_eq!(u8_at(&b, 8), None);
        assert_eq!(u16_at(&b, 0), Some(0x0102));
        assert_eq!(u16_at(&b, 7), None);
        assert_eq!(u32_at(&b, 4), Some(0x0506_0708));
        assert_eq!(u32_at(&b, 5), None);
        assert_eq!(u64_at(&b, 0), Some(0x0102_0304_0506_0708));
        assert_eq!(u64_at(&b, 1), None);
        assert_eq!(u64_at(&b, usize::MAX), None);
        assert_eq!(mac_at(&b, 2), Some([3, 4, 5, 6, 7, 8]));
        assert_eq!(range(&b, 3, 2), None);
        assert_eq!(range(&b, 8, 8), Some(&[][..]));
    }
}
