//! Energy price and carbon in live placement, and migration advice, over
//! real HTTP against a real `solyx api serve --topology --energy-dir`
//! process (the same workloads runtime `solyx serve` builds): a job lands
//! on the cheaper, cleaner site and says why; when that site's price
//! rises in the energy files, the advice names the job, the target and
//! the saving; with no change it is empty. Bad energy input stops the
//! server with the file, line, site or zone named.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup is a failed test

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

/// A fresh directory under the system temporary directory, removed on
/// drop.
fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("solyx-energy-{tag}-"))
        .tempdir()
        .unwrap()
}

/// A spine over two leaves, one per site: h1 under leafa at site-a, h2
/// under leafb at site-b, each with 64 CPUs, eight A100s and 4000 W, so
/// one one-GPU task draws 0.5 kW.
fn two_sites(dir: &TempDir) -> PathBuf {
    let node = "node: { cpus: 64, memory: 512GiB, gpus: [{ model: A100, count: 8 }], \
                power_watts: 4000 }";
    let text = format!(
        "name: two-sites\ndefaults: {{ link: {{ bandwidth: 1Gbit, delay: 1ms }} }}\n\
         devices:\n  - {{ name: spine1, role: fabric, device_id: 1 }}\n\
         \x20 - {{ name: leafa, role: fabric, device_id: 4 }}\n\
         \x20 - {{ name: leafb, role: fabric, device_id: 5 }}\n\
         \x20 - name: h1\n    role: host\n    device_id: 2\n    ip: 10.0.0.1/24\n    \
         site: site-a\n    {node}\n\
         \x20 - name: h2\n    role: host\n    device_id: 3\n    ip: 10.0.0.2/24\n    \
         site: site-b\n    {node}\n\
         links:\n  - [spine1:1, leafa:1]\n  - [spine1:2, leafb:1]\n\
         \x20 - [leafa:2, h1:1]\n  - [leafb:2, h2:1]\n"
    );
    let path = dir.path().join("topo.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `YYYY-MM-DDTHH:00:00Z` of a Unix hour.
fn iso_hour(hour: i64) -> String {
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = hour.div_euclid(24) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:00:00Z", hour.rem_euclid(24))
}

/// Writes the native energy file: the same price and carbon per zone for
/// every hour from six hours ago to six hours ahead (so the test does not
/// depend on when in the hour it runs).
fn write_energy(dir: &Path, zones: &[(&str, f64, f64)]) {
    let now_h = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 3600;
    let mut text = String::from("time,zone,price_usd_per_mwh,carbon_g_per_kwh\n");
    for h in now_h - 6..=now_h + 6 {
        for (zone, price, carbon) in zones {
            text.push_str(&format!("{},{zone},{price},{carbon}\n", iso_hour(h)));
        }
    }
    // Replaced whole, as a fetching job would.
    let tmp = dir.join("grid.csv.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("grid.csv")).unwrap();
}

/// `solyx api serve` as a child process, ended with SIGTERM on drop.
struct Serve {
    child: Child,
    base: String,
}

fn serve_command(topology: &Path, dir: &TempDir, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_solyx"));
    cmd.args([
        "api",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--insecure-no-auth",
    ])
    .arg("--db")
    .arg(dir.path().join("state.db"))
    .arg("--topology")
    .arg(topology)
    .arg("--orchestrator-db")
    .arg(dir.path().join("orchestrator.db"))
    .args(extra)
    .env_remove("SOLYX_ENERGY_DIR");
    cmd
}

impl Serve {
    fn start(topology: &Path, dir: &TempDir, extra: &[&str]) -> Self {
        let mut child = serve_command(topology, dir, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("http://"),
            "no address on stdout: {line:?}"
        );
        Self {
            child,
            base: line.trim().to_string(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `solyx job ARGS` against this server: status, stdout, stderr.
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_solyx"))
            .arg("job")
            .args(args)
            .env("SOLYX_API", &self.base)
            .env_remove("SOLYX_TOKEN")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
        }
    }
}

/// Four one-GPU workers that do not talk: only energy and packing tell
/// the two sites apart.
fn batch_job() -> Value {
    json!({
        "name": "batch",
        "tasks": [{ "name": "worker", "replicas": 4, "cpus": 4, "memory_mib": 16384, "gpus": 1 }]
    })
}

const EIGHT_HOURS: &str = "remaining_s=28800";

#[tokio::test]
async fn energy_files_steer_placement_and_a_price_rise_brings_advice() {
    let dir = temp_dir("steer");
    let topo = two_sites(&dir);
    let energy = dir.path().join("energy");
    std::fs::create_dir_all(&energy).unwrap();
    write_energy(&energy, &[("Z-A", 40.0, 100.0), ("Z-B", 90.0, 300.0)]);
    let energy_arg = energy.display().to_string();
    let serve = Serve::start(
        &topo,
        &dir,
        &[
            "--energy-dir",
            &energy_arg,
            "--energy-site",
            "site-a=Z-A",
            "--energy-site",
            "site-b=Z-B",
        ],
    );

    // The job lands on the cheaper, cleaner site and says so.
    let (s, job) = serve
        .call(Method::POST, "/v1/jobs", Some(batch_job()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let (_, placements) = serve
        .call(Method::GET, &format!("/v1/placements?job={id}"), None)
        .await;
    let placements = placements.as_array().unwrap().clone();
    assert_eq!(placements.len(), 4);
    for p in &placements {
        assert_eq!(p["node"], "h1", "{p}");
        let why = p["explanation"].as_str().unwrap();
        assert!(
            why.contains("site site-a (40.0 USD/MWh, 100 gCO2/kWh)"),
            "{why}"
        );
        // price 40/100 and carbon 100/500, weighted 0.2 each.
        let terms = &p["cost_breakdown"];
        assert!(
            (terms["price"].as_f64().unwrap() - 0.08).abs() < 1e-9,
            "{p}"
        );
        assert!(
            (terms["carbon"].as_f64().unwrap() - 0.04).abs() < 1e-9,
            "{p}"
        );
    }

    // Nothing changed: no advice, for all jobs or this one.
    for path in [
        format!("/v1/advice?{EIGHT_HOURS}"),
        format!("/v1/jobs/{id}/advice?{EIGHT_HOURS}"),
    ] {
        let (s, advice) = serve.call(Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {advice}");
        assert_eq!(advice, json!([]), "{path}");
    }
    let (ok, out, err) = serve.cli(&["advise", &id, "--remaining", "8h"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "no move pays off now");

    // Site A's price rises tenfold in the files: the advice moves the job
    // to site B and counts the saving over the eight hours left.
    write_energy(&energy, &[("Z-A", 400.0, 100.0), ("Z-B", 90.0, 300.0)]);
    let (s, advice) = serve
        .call(Method::GET, &format!("/v1/advice?{EIGHT_HOURS}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{advice}");
    let list = advice.as_array().unwrap();
    assert_eq!(list.len(), 1, "{advice}");
    let a = &list[0];
    assert_eq!(a["job"], id.as_str(), "{a}");
    assert_eq!(a["name"], "batch", "{a}");
    assert_eq!(a["task"], "worker", "{a}");
    assert_eq!(a["from"], json!(["h1", "h1", "h1", "h1"]), "{a}");
    assert_eq!(a["to"], json!(["h2", "h2", "h2", "h2"]), "{a}");
    assert_eq!(a["to_sites"], json!(["site-b"]), "{a}");
    assert_eq!(a["moved"], 4, "{a}");
    assert_eq!(a["triggers"], json!(["price"]), "{a}");
    // 2 kW for 8 h at 310 USD/MWh less, minus the 120 s move at 400.
    let expected = 310.0 * 2.0 / 1000.0 * 8.0 - 400.0 * 2.0 / 1000.0 * (120.0 / 3600.0);
    let usd = a["saving"]["usd"].as_f64().unwrap();
    assert!((usd - expected).abs() < 1e-6, "{usd} vs {expected}: {a}");
    assert!(
        a["saving"]["kg_co2"].as_f64().unwrap() < 0.0,
        "site B is dirtier: {a}"
    );
    assert!(a["explanation"].as_str().unwrap().contains("USD"), "{a}");
    // The job's own route says the same.
    let (_, mine) = serve
        .call(
            Method::GET,
            &format!("/v1/jobs/{id}/advice?{EIGHT_HOURS}"),
            None,
        )
        .await;
    assert_eq!(mine, advice);
    // With the default hour left, 0.6 USD is below the 1 USD threshold.
    let (_, short) = serve.call(Method::GET, "/v1/advice", None).await;
    assert_eq!(short, json!([]), "{short}");

    // The command line shows the same, as a table and as JSON.
    let (ok, out, err) = serve.cli(&["advise", "--remaining", "8h"]);
    assert!(ok, "{err}");
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        out.starts_with("JOB") && row.contains(&id) && row.contains("h2,h2,h2,h2 (site-b)"),
        "{out}"
    );
    assert!(
        row.contains("price") && row.contains(&format!("{expected:.2}")),
        "{out}"
    );
    let (ok, out, err) = serve.cli(&["--json", "advise", &id, "--remaining", "28800"]);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), advice);

    // A new job now goes to site B, though h1 has room for it.
    let mut second = batch_job();
    second["name"] = json!("second");
    let (s, job2) = serve.call(Method::POST, "/v1/jobs", Some(second)).await;
    assert_eq!(s, StatusCode::CREATED, "{job2}");
    let (_, p2) = serve
        .call(
            Method::GET,
            &format!("/v1/placements?job={}", job2["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(p2[0]["node"], "h2", "{p2}");
    assert!(
        p2[0]["explanation"]
            .as_str()
            .unwrap()
            .contains("site site-b (90.0 USD/MWh, 300 gCO2/kWh)"),
        "{p2}"
    );
}

#[tokio::test]
async fn advice_refuses_bad_input_by_name() {
    let dir = temp_dir("bad-query");
    let topo = two_sites(&dir);
    let serve = Serve::start(&topo, &dir, &[]);
    let (s, v) = serve.call(Method::GET, "/v1/jobs/job-9/advice", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = serve
        .call(Method::GET, "/v1/advice?remaining_s=-5", None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["details"]["field"], "remaining_s", "{v}");
    let (s, v) = serve
        .call(Method::GET, "/v1/advice?remaining_s=soon", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Without energy files the placement says there is no energy data.
    let (s, _) = serve
        .call(Method::POST, "/v1/jobs", Some(batch_job()))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, p) = serve.call(Method::GET, "/v1/placements", None).await;
    assert!(
        p[0]["explanation"]
            .as_str()
            .unwrap()
            .contains("(no energy data)"),
        "{p}"
    );
    let (_, advice) = serve.call(Method::GET, "/v1/advice", None).await;
    assert_eq!(advice, json!([]));
}

/// Starts the server expecting it to fail; returns its stderr.
fn start_fails(topology: &Path, dir: &TempDir, extra: &[&str]) -> String {
    let mut child = serve_command(topology, dir, extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "started despite {extra:?}: {err}");
    err
}

#[test]
fn bad_energy_input_stops_the_server_naming_it() {
    let dir = temp_dir("bad-files");
    let topo = two_sites(&dir);
    let energy = dir.path().join("energy");
    std::fs::create_dir_all(&energy).unwrap();
    let energy_arg = energy.display().to_string();

    // An empty folder.
    let err = start_fails(&topo, &dir, &["--energy-dir", &energy_arg]);
    assert!(
        err.contains("no *.csv file") && err.contains(&energy_arg),
        "{err}"
    );

    // A zone no file has.
    write_energy(&energy, &[("Z-A", 40.0, 100.0)]);
    let err = start_fails(
        &topo,
        &dir,
        &[
            "--energy-dir",
            &energy_arg,
            "--energy-site",
            "site-b=Z-NOPE",
        ],
    );
    assert!(
        err.contains("site-b=Z-NOPE") && err.contains("zone Z-NOPE") && err.contains("Z-A"),
        "{err}"
    );

    // A malformed pair.
    let err = start_fails(
        &topo,
        &dir,
        &["--energy-dir", &energy_arg, "--energy-site", "site-b"],
    );
    assert!(err.contains("SITE=ZONE"), "{err}");

    // A value that is not a number, with its file and line.
    let bad = energy.join("bad.csv");
    std::fs::write(
        &bad,
        "time,zone,price_usd_per_mwh,carbon_g_per_kwh\n\
         2026-01-01T00:00:00Z,Z-B,40,100\n2026-01-01T01:00:00Z,Z-B,cheap,100\n",
    )
    .unwrap();
    let err = start_fails(&topo, &dir, &["--energy-dir", &energy_arg]);
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("line 3") && err.contains("cheap"),
        "{err}"
    );
}
