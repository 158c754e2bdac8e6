//! Energy price and carbon for the live placer: the series files of one
//! folder (any layout `EnergySignals::load_dir` reads) and a map from the
//! topology's sites to the files' grid zones.
//!
//! The files are read at start, where any error stops the controller
//! naming the file and line, or the site and zone. Afterwards every
//! placement and every piece of migration advice first checks whether a
//! file changed (name, size or modification time) and reads the folder
//! again if so: a job that fetches new prices only has to replace the
//! files. A folder that no longer reads keeps the last good signals in
//! force and logs why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use solyx_orchestrator::energy::EnergySignals;

/// Where the energy series are and which zone each site draws from.
#[derive(Debug, Clone, Default)]
pub struct EnergyConfig {
    /// Folder of `*.csv` series (also read: its `carbon/` and `prices/`).
    pub dir: PathBuf,
    /// Site to grid zone. A site not listed reads the zone of its own name.
    pub sites: BTreeMap<String, String>,
}

impl EnergyConfig {
    /// Parses one `SITE=ZONE` pair (as given to `--energy-site`).
    ///
    /// # Errors
    /// A pair without `=` or with an empty side.
    pub fn parse_site(pair: &str) -> Result<(String, String), String> {
        match pair.split_once('=') {
            Some((s, z)) if !s.trim().is_empty() && !z.trim().is_empty() => {
                Ok((s.trim().to_string(), z.trim().to_string()))
            }
            _ => Err(format!(
                "`{pair}`: expected SITE=ZONE, e.g. site-a=US-CAL-CISO"
            )),
        }
    }
}

/// What the folder held when last read: every series file with its size
/// and modification time.
type Stamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn stamp(dir: &Path) -> Result<Stamp, String> {
    if !dir.is_dir() {
        return Err(format!("energy folder {}: not a directory", dir.display()));
    }
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("carbon"), dir.join("prices")] {
        if !sub.is_dir() {
            continue;
        }
        let entries =
            std::fs::read_dir(&sub).map_err(|e| format!("energy folder {}: {e}", sub.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("energy folder {}: {e}", sub.display()))?;
            let p = e.path();
            if p.extension().is_some_and(|x| x == "csv") {
                let meta = e
                    .metadata()
                    .map_err(|e| format!("energy file {}: {e}", p.display()))?;
                out.push((p, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(format!(
            "energy folder {}: no *.csv file in it or in its carbon/ and prices/ folders",
            dir.display()
        ));
    }
    Ok(out)
}

/// Reads the folder and maps the sites; every mapped zone must have data.
fn load(config: &EnergyConfig) -> Result<EnergySignals, String> {
    let mut signals = EnergySignals::load_dir(&config.dir).map_err(|e| e.to_string())?;
    let zones = signals.zones().join(", ");
    for (site, zone) in &config.sites {
        if signals.zone(zone).is_none() {
            return Err(format!(
                "energy site {site}={zone}: no file in {} has zone {zone} (zones with data: {zones})",
                config.dir.display()
            ));
        }
        signals.map_site(site, zone);
    }
    Ok(signals)
}

/// The energy signals in force, read again when the files change.
pub struct EnergyFeed {
    config: EnergyConfig,
    current: Mutex<(Stamp, Arc<EnergySignals>)>,
}

impl EnergyFeed {
    /// Reads the folder. `sites` are the sites the inventory knows now:
    /// a site that has no data is logged (its energy terms stay 0), a
    /// mapped site that no node has is logged too (agents may bring it).
    ///
    /// # Errors
    /// The folder, a file (with its line) or a site's zone, in words.
    pub fn open(config: EnergyConfig, sites: &BTreeSet<String>) -> Result<Self, String> {
        let st = stamp(&config.dir)?;
        let signals = load(&config)?;
        for site in sites {
            if signals.zone(signals.zone_of(site)).is_none() {
                tracing::warn!(
                    site = %site,
                    dir = %config.dir.display(),
                    "no energy data for this site: map it with --energy-site SITE=ZONE; \
                     its price and carbon terms are 0"
                );
            }
        }
        for site in config.sites.keys() {
            if !sites.contains(site) {
                tracing::warn!(site = %site, "--energy-site names a site no node has (yet)");
            }
        }
        tracing::info!(
            dir = %config.dir.display(),
            zones = %signals.zones().join(","),
            "energy signals loaded"
        );
        Ok(Self {
            config,
            current: Mutex::new((st, Arc::new(signals))),
        })
    }

    /// The signals in force, after reading the folder again if a file
    /// changed since the last read.
    pub fn current(&self) -> Arc<EnergySignals> {
        let mut cur = super::lock(&self.current);
        let now = match stamp(&self.config.dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "energy folder unreadable; the last signals stay in force");
                return cur.1.clone();
            }
        };
        if now != cur.0 {
            match load(&self.config) {
                Ok(signals) => {
                    tracing::info!(dir = %self.config.dir.display(), "energy files changed; read again");
                    *cur = (now, Arc::new(signals));
                }
                Err(e) => {
                    // Remember the stamp so a broken file is reported once,
                    // not on every request.
                    cur.0 = now;
                    tracing::error!(error = %e, "energy files changed but do not read; the last signals stay in force");
                }
            }
        }
        cur.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_pairs_parse_or_say_what_is_expected() {
        assert_eq!(
            EnergyConfig::parse_site("site-a=DE-LU"),
            Ok(("site-a".into(), "DE-LU".into()))
        );
        let e = EnergyConfig::parse_site("site-a").unwrap_err();
        assert!(e.contains("SITE=ZONE") && e.contains("site-a"), "{e}");
        assert!(EnergyConfig::parse_site("=DE").is_err());
    }
}
