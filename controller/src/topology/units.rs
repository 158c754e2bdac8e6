//! Quantities written with their unit in topology files: bandwidth
//! (`100Mbit`), delay (`1ms`) and size (`64GiB`).
//!
//! Each type parses from and prints back to the same text, so a file
//! written by a converter reads back to the same values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Splits `2.5Gbit` into `(2.5, "Gbit")`.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..end].parse().ok()?;
    (number.is_finite() && number >= 0.0).then_some((number, text[end..].trim()))
}

fn scaled(text: &str, units: &[(&str, f64)], what: &str) -> Result<f64, String> {
    let hint = || {
        let names: Vec<&str> = units.iter().map(|(n, _)| *n).collect();
        format!(
            "{text:?} is not a {what}: write a number and one of {}",
            names.join(", ")
        )
    };
    let (number, unit) = split_number(text).ok_or_else(hint)?;
    let (_, factor) = units.iter().find(|(n, _)| *n == unit).ok_or_else(hint)?;
    Ok(number * factor)
}

/// A link rate in bits per second (`bit`, `Kbit`, `Mbit`, `Gbit`; decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bandwidth(pub u64);

impl Bandwidth {
    /// Bits per second.
    #[must_use]
    pub fn bps(self) -> u64 {
        self.0
    }

    /// Bits per second as a float, for rate arithmetic.
    #[must_use]
    pub fn bps_f64(self) -> f64 {
        self.0 as f64
    }
}

impl FromStr for Bandwidth {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        const UNITS: &[(&str, f64)] = &[
            ("bit", 1.0),
            ("Kbit", 1e3),
            ("Mbit", 1e6),
            ("Gbit", 1e9),
            ("Tbit", 1e12),
        ];
        let bps = scaled(text, UNITS, "bandwidth")?;
        if bps < 1.0 {
            return Err(format!("{text:?}: a link carries at least 1bit per second"));
        }
        Ok(Self(bps.round() as u64))
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, factor) in [("Tbit", 1e12), ("Gbit", 1e9), ("Mbit", 1e6), ("Kbit", 1e3)] {
            let v = self.0 as f64 / factor;
            if v >= 1.0 && (v * 1000.0).fract() == 0.0 {
                return write!(f, "{v}{unit}");
            }
        }
        write!(f, "{}bit", self.0)
    }
}

/// A one-way propagation delay (`us`, `ms`, `s`; decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Delay(pub Duration);

impl FromStr for Delay {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        const UNITS: &[(&str, f64)] = &[("us", 1e-6), ("ms", 1e-3), ("s", 1.0)];
        let secs = scaled(text, UNITS, "delay")?;
        Ok(Self(Duration::from_nanos((secs * 1e9).round() as u64)))
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_nanos() as f64 / 1e3;
        if us >= 1000.0 && (us / 1000.0 * 1000.0).fract() == 0.0 {
            write!(f, "{}ms", us / 1000.0)
        } else {
            write!(f, "{}us", (us * 1000.0).round() / 1000.0)
        }
    }
}

/// A memory size in bytes (`MiB`, `GiB`, `TiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        const UNITS: &[(&str, f64)] = &[
            ("MiB", (1u64 << 20) as f64),
            ("GiB", (1u64 << 30) as f64),
            ("TiB", (1u64 << 40) as f64),
        ];
        Ok(Self(scaled(text, UNITS, "size")?.round() as u64))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, shift) in [("TiB", 40), ("GiB", 30)] {
            if self.0 >= 1 << shift && self.0 % (1 << shift) == 0 {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}MiB", self.0 as f64 / (1u64 << 20) as f64)
    }
}

macro_rules! text_serde {
    ($t:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$t, E> {
                        // A bare number has no unit: say which units exist.
                        format!("{v}").parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

text_serde!(Bandwidth, "a bandwidth such as 100Mbit");
text_serde!(Delay, "a delay such as 1ms");
text_serde!(Size, "a size such as 64GiB");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_and_print_back() {
        for (text, bps) in [
            ("100Mbit", 100_000_000),
            ("1Gbit", 1_000_000_000),
            ("2.5Gbit", 2_500_000_000),
            ("10Kbit", 10_000),
            ("7bit", 7),
        ] {
            let b: Bandwidth = text.parse().unwrap();
            assert_eq!(b.bps(), bps, "{text}");
            assert_eq!(b.to_string().parse::<Bandwidth>().unwrap(), b);
        }
        for (text, ns) in [
            ("1ms", 1_000_000),
            ("0ms", 0),
            ("250us", 250_000),
            ("1.5s", 1_500_000_000),
        ] {
            let d: Delay = text.parse().unwrap();
            assert_eq!(d.0.as_nanos(), ns, "{text}");
            assert_eq!(d.to_string().parse::<Delay>().unwrap(), d);
        }
        let s: Size = "64GiB".parse().unwrap();
        assert_eq!(s.0, 64 << 30);
        assert_eq!(s.to_string(), "64GiB");
        assert_eq!("512MiB".parse::<Size>().unwrap().to_string(), "512MiB");
    }

    #[test]
    fn wrong_units_say_which_exist() {
        let e = "100Mbps".parse::<Bandwidth>().unwrap_err();
        assert!(e.contains("Mbit") && e.contains("100Mbps"), "{e}");
        assert!("1 min".parse::<Delay>().unwrap_err().contains("ms"));
        assert!("100".parse::<Bandwidth>().is_err());
        assert!("-1ms".parse::<Delay>().is_err());
        assert!("0bit".parse::<Bandwidth>().is_err());
    }
}
