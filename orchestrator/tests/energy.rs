//! Energy files: the native layout, errors that name the line, and the
//! real 2023 data when it is present.

use std::io::Write;

use solyx_orchestrator::energy::{
    default_data_dir, parse_utc, EnergyError, EnergySignals, SiteZones,
};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write file");
    p
}

#[test]
fn native_files_load_and_sites_map_to_zones() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "signals.csv",
        "# solyx energy series\ntime,zone,price_usd_per_mwh,carbon_g_per_kwh\n\
         2023-06-01T00:00:00Z,NORTH,40.5,120\n\
         2023-06-01T01:00:00Z,NORTH,,130\n\
         2023-06-01T00:00:00Z,SOUTH,80,\n",
    );
    let map = write(
        dir.path(),
        "sites.yaml",
        "sites:\n  pod-a: NORTH\n  pod-b: SOUTH\n",
    );
    let mut e = EnergySignals::load_dir(dir.path()).expect("loads");
    e.map_sites(&SiteZones::load(&map).expect("site map"));
    let t = parse_utc("2023-06-01 01:30:00").expect("time");
    let a = e.at("pod-a", t);
    assert_eq!(
        a.price_usd_per_mwh,
        Some(40.5),
        "an empty price keeps the previous hour"
    );
    assert_eq!(a.carbon_g_per_kwh, Some(130.0));
    assert_eq!(e.at("pod-b", t).carbon_g_per_kwh, None);
    assert_eq!(
        e.at("pod-c", t).price_usd_per_mwh,
        None,
        "unmapped, unknown site"
    );
}

#[test]
fn malformed_files_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = write(
        dir.path(),
        "bad.csv",
        "time,zone,price_usd_per_mwh,carbon_g_per_kwh\n2023-06-01T00:00:00Z,NORTH,40,120\n\
         2023-06-01T01:00:00Z,NORTH,cheap,120\n",
    );
    let err = EnergySignals::new().load_file(&p).expect_err("bad number");
    assert!(matches!(err, EnergyError::Invalid { line: 3, .. }), "{err}");
    assert!(
        err.to_string().contains("bad.csv") && err.to_string().contains("cheap"),
        "{err}"
    );
    let p = write(
        dir.path(),
        "when.csv",
        "time,zone,price_usd_per_mwh\n06/01/2023,NORTH,40\n",
    );
    let err = EnergySignals::new()
        .load_file(&p)
        .expect_err("bad time")
        .to_string();
    assert!(
        err.contains("line 2") && err.contains("06/01/2023"),
        "{err}"
    );
    let p = write(dir.path(), "what.csv", "a,b\n1,2\n");
    assert!(EnergySignals::new()
        .load_file(&p)
        .expect_err("unknown header")
        .to_string()
        .contains("header"));
    let map = write(dir.path(), "sites.yaml", "sites: [pod-a]\n");
    assert!(SiteZones::load(&map)
        .expect_err("not a map")
        .to_string()
        .contains("sites.yaml"));
}

#[test]
fn the_real_2023_data_pairs_carbon_with_prices_by_zone() {
    let dir = default_data_dir().join("energy");
    if !dir.is_dir() {
        println!(
            "skipped: no energy data at {} (set SOLYX_DATA)",
            dir.display()
        );
        return;
    }
    let e = EnergySignals::load_dir(&dir).expect("the 2023 files load");
    println!(
        "source: Electricity Maps carbon and wholesale prices 2023, {}",
        dir.display()
    );
    // Every zone with a price file also has its carbon series, under the
    // same name (the carbon export calls DE-LU `DE`; the file name wins).
    for zone in e.zones() {
        let z = e.zone(zone).expect("listed zone");
        assert!(
            !z.carbon_g_per_kwh.is_empty(),
            "{zone} has no carbon series"
        );
        assert!(
            z.carbon_g_per_kwh.len() >= 8760,
            "{zone}: {} hours",
            z.carbon_g_per_kwh.len()
        );
        if !z.price_usd_per_mwh.is_empty() {
            assert!(
                z.price_usd_per_mwh.len() >= 8760,
                "{zone}: {} price hours",
                z.price_usd_per_mwh.len()
            );
        }
    }
    assert!(e
        .zone("DE-LU")
        .is_some_and(|z| !z.price_usd_per_mwh.is_empty()));
    // Every hour of 2023 has a value in every zone.
    let start = parse_utc("2023-01-01 00:00:00").expect("time");
    for zone in e.zones() {
        let z = e.zone(zone).expect("zone");
        for h in (0..8760).step_by(97) {
            let c = z
                .carbon_g_per_kwh
                .at(start + h * 3600)
                .expect("carbon value");
            assert!((0.0..2000.0).contains(&c), "{zone} hour {h}: {c} gCO2/kWh");
        }
    }
}
