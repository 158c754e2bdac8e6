//! Energy price and carbon intensity per site, as hourly time series.
//!
//! Series are kept per grid zone (`US-CAL-CISO`, `DE-LU`) and sites map to
//! zones by configuration. Three CSV layouts load, told apart by their
//! header (see docs/orchestrator.md, "Energy files"):
//!
//! - the native layout: `time,zone,price_usd_per_mwh,carbon_g_per_kwh`;
//! - Electricity Maps hourly carbon exports (`Datetime (UTC)`,
//!   `Carbon Intensity gCO₂eq/kWh (LCA)`);
//! - hourly wholesale price files (`Datetime (UTC)`, `Price (USD/MWh)`).
//!
//! In the two exported layouts the zone is the file name up to the first
//! `_` (`DE-LU_2023_hourly.csv`): the carbon export's own `Zone Id`
//! column says `DE` where the price file says `DE-LU`, and the file name
//! is what pairs them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Error from loading energy data.
#[derive(Debug, thiserror::Error)]
pub enum EnergyError {
    /// A file or folder could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file is malformed.
    #[error("{path}: line {line}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The site map is malformed.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// Field, line and reason.
        message: String,
    },
}

/// One value per hour from `start_hour` (hours since the Unix epoch).
/// Hours with no data hold NaN.
#[derive(Debug, Clone, Default)]
pub struct HourlySeries {
    start_hour: i64,
    values: Vec<f64>,
}

impl HourlySeries {
    /// Records `v` for the hour holding `t_unix`; NaN marks an hour the
    /// source covers without a value (it then reads as the hour before).
    fn insert(&mut self, t_unix: i64, v: f64) {
        let h = t_unix.div_euclid(3600);
        if self.values.is_empty() {
            self.start_hour = h;
        }
        if h < self.start_hour {
            let shift = (self.start_hour - h) as usize;
            let mut v2 = vec![f64::NAN; shift];
            v2.append(&mut self.values);
            self.values = v2;
            self.start_hour = h;
        }
        let i = (h - self.start_hour) as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, f64::NAN);
        }
        if !v.is_nan() {
            self.values[i] = v;
        }
    }

    /// The value for the hour holding `t_unix`, or the nearest earlier hour
    /// with data; `None` outside the series.
    pub fn at(&self, t_unix: i64) -> Option<f64> {
        let h = t_unix.div_euclid(3600) - self.start_hour;
        if h < 0 || h as usize >= self.values.len() {
            return None;
        }
        self.values[..=h as usize]
            .iter()
            .rev()
            .copied()
            .find(|v| !v.is_nan())
    }

    /// Mean over `[from, to)` in whole hours, skipping gaps.
    pub fn mean(&self, from: i64, to: i64) -> Option<f64> {
        let (mut sum, mut n) = (0.0, 0u32);
        let mut t = from;
        while t < to.max(from + 1) {
            if let Some(v) = self.at(t) {
                sum += v;
                n += 1;
            }
            t += 3600;
        }
        (n > 0).then(|| sum / f64::from(n))
    }

    /// Hours covered (first to last, gaps included).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the series holds nothing.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// First and last covered instant (Unix seconds).
    pub fn span(&self) -> Option<(i64, i64)> {
        (!self.values.is_empty()).then(|| {
            (
                self.start_hour * 3600,
                (self.start_hour + self.values.len() as i64) * 3600,
            )
        })
    }
}

/// Price and carbon of one grid zone.
#[derive(Debug, Clone, Default)]
pub struct ZoneSeries {
    /// Wholesale price, USD/MWh.
    pub price_usd_per_mwh: HourlySeries,
    /// Carbon intensity, gCO₂eq/kWh.
    pub carbon_g_per_kwh: HourlySeries,
    /// Files the values came from (for reports).
    pub sources: Vec<String>,
}

/// Energy signals for all sites.
#[derive(Debug, Clone, Default)]
pub struct EnergySignals {
    zones: HashMap<String, ZoneSeries>,
    site_zone: BTreeMap<String, String>,
}

/// Price and carbon of a site at one instant.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SiteEnergy {
    /// USD/MWh, when known.
    pub price_usd_per_mwh: Option<f64>,
    /// gCO₂eq/kWh, when known.
    pub carbon_g_per_kwh: Option<f64>,
}

/// The site-to-zone map file: `sites: { <site>: <zone> }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteZones {
    /// Site name to grid zone id.
    pub sites: BTreeMap<String, String>,
}

impl SiteZones {
    /// Reads a site map YAML file.
    pub fn load(path: &Path) -> Result<Self, EnergyError> {
        let text = std::fs::read_to_string(path).map_err(|source| EnergyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_norway::from_str(&text).map_err(|e| EnergyError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

impl EnergySignals {
    /// No data: every site is unknown until series are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps a site to a zone.
    pub fn map_site(&mut self, site: &str, zone: &str) {
        self.site_zone.insert(site.to_string(), zone.to_string());
    }

    /// Maps sites to zones as the file says.
    pub fn map_sites(&mut self, zones: &SiteZones) {
        for (s, z) in &zones.sites {
            self.map_site(s, z);
        }
    }

    /// The zone a site maps to (the site's own name when unmapped).
    pub fn zone_of<'a>(&'a self, site: &'a str) -> &'a str {
        self.site_zone.get(site).map(String::as_str).unwrap_or(site)
    }

    /// Sets one hour of a zone's values (tests, live feeds). A `None`
    /// next to a known value marks the hour as covered without that value:
    /// it reads as the hour before.
    pub fn set(&mut self, zone: &str, t_unix: i64, price: Option<f64>, carbon: Option<f64>) {
        let z = self.zones.entry(zone.to_string()).or_default();
        let both_none = price.is_none() && carbon.is_none();
        if let Some(p) = price {
            z.price_usd_per_mwh.insert(t_unix, p);
        } else if !both_none && !z.price_usd_per_mwh.is_empty() {
            z.price_usd_per_mwh.insert(t_unix, f64::NAN);
        }
        if let Some(c) = carbon {
            z.carbon_g_per_kwh.insert(t_unix, c);
        } else if !both_none && !z.carbon_g_per_kwh.is_empty() {
            z.carbon_g_per_kwh.insert(t_unix, f64::NAN);
        }
    }

    /// A zone's series.
    pub fn zone(&self, zone: &str) -> Option<&ZoneSeries> {
        self.zones.get(zone)
    }

    /// Zones with data, sorted.
    pub fn zones(&self) -> Vec<&str> {
        let mut z: Vec<&str> = self.zones.keys().map(String::as_str).collect();
        z.sort_unstable();
        z
    }

    /// Price and carbon of a site at `t_unix`.
    pub fn at(&self, site: &str, t_unix: i64) -> SiteEnergy {
        match self.zones.get(self.zone_of(site)) {
            Some(z) => SiteEnergy {
                price_usd_per_mwh: z.price_usd_per_mwh.at(t_unix),
                carbon_g_per_kwh: z.carbon_g_per_kwh.at(t_unix),
            },
            None => SiteEnergy {
                price_usd_per_mwh: None,
                carbon_g_per_kwh: None,
            },
        }
    }

    /// Loads every `*.csv` under `dir` and its subfolders `carbon/` and
    /// `prices/`, in any of the three layouts.
    pub fn load_dir(dir: &Path) -> Result<Self, EnergyError> {
        let mut signals = EnergySignals::new();
        let mut files = Vec::new();
        for sub in [dir.to_path_buf(), dir.join("carbon"), dir.join("prices")] {
            if !sub.is_dir() {
                continue;
            }
            let entries = std::fs::read_dir(&sub).map_err(|source| EnergyError::Read {
                path: sub.display().to_string(),
                source,
            })?;
            for e in entries {
                let e = e.map_err(|source| EnergyError::Read {
                    path: sub.display().to_string(),
                    source,
                })?;
                let p = e.path();
                if p.extension().is_some_and(|x| x == "csv") {
                    files.push(p);
                }
            }
        }
        files.sort();
        for f in files {
            signals.load_file(&f)?;
        }
        Ok(signals)
    }

    /// Loads one CSV file in any of the three layouts.
    pub fn load_file(&mut self, path: &Path) -> Result<(), EnergyError> {
        let name = path.display().to_string();
        let mut rdr = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .flexible(true)
            .from_path(path)
            .map_err(|e| EnergyError::Invalid {
                path: name.clone(),
                line: 1,
                reason: e.to_string(),
            })?;
        let headers = rdr
            .headers()
            .map_err(|e| EnergyError::Invalid {
                path: name.clone(),
                line: 1,
                reason: e.to_string(),
            })?
            .clone();
        let col = |want: &str| headers.iter().position(|h| h.trim() == want);
        let layout = if let (Some(t), Some(z)) = (col("time"), col("zone")) {
            Layout::Native {
                time: t,
                zone: z,
                price: col("price_usd_per_mwh"),
                carbon: col("carbon_g_per_kwh"),
            }
        } else if let Some(t) = col("Datetime (UTC)") {
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            let zone = file.split('_').next().unwrap_or_default().to_string();
            if zone.is_empty() || zone.ends_with(".csv") {
                return Err(EnergyError::Invalid {
                    path: name,
                    line: 1,
                    reason: "file name must start with its zone, as in DE-LU_2023_hourly.csv"
                        .into(),
                });
            }
            match (
                col("Carbon Intensity gCO₂eq/kWh (LCA)"),
                col("Price (USD/MWh)"),
            ) {
                (Some(carbon), _) => Layout::Carbon {
                    time: t,
                    zone,
                    carbon,
                },
                (None, Some(price)) => Layout::Price {
                    time: t,
                    price,
                    zone,
                },
                (None, None) => {
                    return Err(EnergyError::Invalid {
                        path: name,
                        line: 1,
                        reason:
                            "a `Datetime (UTC)` file needs a `Carbon Intensity gCO₂eq/kWh (LCA)` \
                                 or a `Price (USD/MWh)` column"
                                .into(),
                    })
                }
            }
        } else {
            return Err(EnergyError::Invalid {
                path: name,
                line: 1,
                reason: "unknown header: expected `time,zone,price_usd_per_mwh,carbon_g_per_kwh`, \
                         an Electricity Maps carbon export or a `Price (USD/MWh)` file"
                    .into(),
            });
        };
        let mut touched = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| EnergyError::Invalid {
                path: name.clone(),
                line: e.position().map_or(0, |p| p.line()),
                reason: e.to_string(),
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            let bad = |reason: String| EnergyError::Invalid {
                path: name.clone(),
                line,
                reason,
            };
            let field = |i: usize| rec.get(i).unwrap_or("").trim();
            let number = |i: usize, what: &str| -> Result<Option<f64>, EnergyError> {
                let s = field(i);
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Some)
                    .ok_or_else(|| bad(format!("{what} `{s}` is not a number")))
            };
            let (time, zone, price, carbon) = match &layout {
                Layout::Native {
                    time,
                    zone,
                    price,
                    carbon,
                } => (
                    *time,
                    field(*zone).to_string(),
                    price
                        .map(|c| number(c, "price_usd_per_mwh"))
                        .transpose()?
                        .flatten(),
                    carbon
                        .map(|c| number(c, "carbon_g_per_kwh"))
                        .transpose()?
                        .flatten(),
                ),
                Layout::Carbon { time, zone, carbon } => (
                    *time,
                    zone.clone(),
                    None,
                    number(*carbon, "carbon intensity")?,
                ),
                Layout::Price { time, price, zone } => {
                    (*time, zone.clone(), number(*price, "price")?, None)
                }
            };
            let t = parse_utc(field(time))
                .map_err(|why| bad(format!("time `{}`: {why}", field(time))))?;
            if zone.is_empty() {
                return Err(bad("empty zone".into()));
            }
            self.set(&zone, t, price, carbon);
            if !touched.contains(&zone) {
                touched.push(zone);
            }
        }
        for z in touched {
            if let Some(zs) = self.zones.get_mut(&z) {
                zs.sources.push(name.clone());
            }
        }
        Ok(())
    }
}

enum Layout {
    Native {
        time: usize,
        zone: usize,
        price: Option<usize>,
        carbon: Option<usize>,
    },
    Carbon {
        time: usize,
        zone: String,
        carbon: usize,
    },
    Price {
        time: usize,
        price: usize,
        zone: String,
    },
}

/// Parses `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`, optionally
/// followed by `Z` or an offset `±HH:MM`, into Unix seconds (UTC).
pub fn parse_utc(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') {
        return Err("expected YYYY-MM-DD HH:MM:SS");
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, &'static str> {
        s.get(r)
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or("expected YYYY-MM-DD HH:MM:SS")
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err("date or time out of range");
    }
    let rest = &s[19..];
    let offset = match rest {
        "" | "Z" => 0,
        r if (r.starts_with('+') || r.starts_with('-')) && r.len() == 6 && &r[3..4] == ":" => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            let oh: i64 = r[1..3].parse().map_err(|_| "bad offset")?;
            let om: i64 = r[4..6].parse().map_err(|_| "bad offset")?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return Err("expected `Z` or an offset like +02:00 after the time"),
    };
    Ok(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The folder of real data: the `SOLYX_DATA` variable, else
/// the default data folder beside the repository.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("SOLYX_DATA") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_time_formats_of_the_data_files() {
        assert_eq!(parse_utc("1970-01-01 00:00:00"), Ok(0));
        assert_eq!(parse_utc("2023-01-01 00:00:00"), Ok(1_672_531_200));
        assert_eq!(parse_utc("2023-01-01T00:00:00Z"), Ok(1_672_531_200));
        assert_eq!(parse_utc("2023-01-01 00:00:00+00:00"), Ok(1_672_531_200));
        assert_eq!(parse_utc("2023-01-01 11:00:00+11:00"), Ok(1_672_531_200));
        assert_eq!(parse_utc("2024-03-01 00:00:00"), Ok(1_709_251_200));
        assert!(parse_utc("01/01/2023 00:00").is_err());
        assert!(parse_utc("2023-13-01 00:00:00").is_err());
    }

    #[test]
    fn series_fills_gaps_from_the_previous_hour() {
        let mut s = HourlySeries::default();
        s.insert(7200, 2.0);
        s.insert(0, 1.0);
        assert_eq!(s.at(0), Some(1.0));
        assert_eq!(s.at(3600), Some(1.0), "gap takes the hour before");
        assert_eq!(s.at(7200 + 1800), Some(2.0));
        assert_eq!(s.at(-1), None);
        assert_eq!(s.at(10800), None);
        assert_eq!(s.mean(0, 10800), Some(4.0 / 3.0));
    }
}
