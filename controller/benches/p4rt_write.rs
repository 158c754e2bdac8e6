//! Table entries written per second over one P4Runtime session, with
//! batches of 1, 100 and 1000, against the agent's P4Runtime server; and
//! the same writes made by p4runtime-shell against the same server in the
//! same run, printed as ratios.
//!
//! Run: `cargo bench -p solyx --bench p4rt_write` (add `-- --quick` for a
//! short run). p4runtime-shell comes from `.venv-shell` (scripts/setup.sh)
//! or `SOLYX_SHELL_PYTHON`; without it the Rust figures are still printed.
//!
//! The server runs in this process on its own Tokio runtime (the memory
//! data plane: it applies every change to the agent's store and forwards
//! nothing), and both clients reach it over TCP on loopback.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use solyx::p4rt::{DeviceSession, SessionConfig, WriteOptions};
use solyx_agent::p4rt::{spawn_tcp, AgentService, MemoryDataplane, ServerConfig};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn entries(ix: &P4InfoIndex, first: u32, count: u32) -> Vec<p4::Entity> {
    (first..first + count)
        .map(|label| {
            let a = ix
                .action("mpls_out")
                .and_then(|a| a.param("port", (label % 64) as u16));
            let a = a
                .and_then(|a| a.param("pop", 0u8))
                .and_then(|a| a.build())
                .expect("action");
            ix.table_entry("mpls_forward")
                .and_then(|t| t.exact("mpls_label", label))
                .and_then(|t| t.action(a))
                .and_then(|t| t.build())
                .expect("entry")
        })
        .collect()
}

fn shell_python() -> Option<PathBuf> {
    std::env::var_os("SOLYX_SHELL_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([root().join(".venv-shell/bin/python")])
        .find(|p| {
            std::process::Command::new(p)
                .args(["-c", "import p4runtime_sh.shell"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("agent")
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("client")
        .enable_all()
        .build()
        .expect("client runtime");

    let mut p4info =
        P4InfoIndex::from_text(include_str!("../../p4runtime/testdata/test.p4info.txtpb"))
            .expect("P4Info")
            .p4info()
            .clone();
    // Room for every entry of the run in one table (20-bit labels).
    p4info.tables[0].size = 1 << 20;
    let ix = P4InfoIndex::new(p4info.clone()).expect("P4Info");

    let dataplane = Arc::new(MemoryDataplane::new());
    let service = AgentService::new(ServerConfig::new(1), dataplane.clone());
    let server = server_rt
        .block_on(spawn_tcp(service, "127.0.0.1:0".parse().expect("addr")))
        .expect("server");
    let addr = server.local_addr().expect("tcp").to_string();

    println!("P4Runtime writes: controller client vs p4runtime-shell, same agent, same run");
    println!("server: solyx-agent P4Runtime (memory data plane) on {addr}");
    let runs: &[(usize, u32)] = if quick {
        &[(1, 1_000), (100, 20_000), (1000, 50_000)]
    } else {
        &[(1, 5_000), (100, 200_000), (1000, 400_000)]
    };
    let mut next_label = 16u32;
    let mut rust = Vec::new();
    client_rt.block_on(async {
        let mut cfg = SessionConfig::new(addr.clone(), 1, 10);
        cfg.write = WriteOptions::default();
        let s = DeviceSession::start(cfg).expect("session");
        s.wait_primary(Duration::from_secs(10)).await.expect("primary");
        s.set_pipeline(p4info.clone(), Vec::new(), false).await.expect("pipeline");
        for &(batch, count) in runs {
            let batch_entries = entries(&ix, next_label, count);
            next_label += count;
            let options = WriteOptions { batch_size: batch, ..WriteOptions::default() };
            let updates: Vec<p4::Update> = batch_entries
                .into_iter()
                .map(|e| solyx::p4rt::update(p4::update::Type::Insert, e))
                .collect();
            let start = Instant::now();
            let results = s.write_with(updates, options).await.expect("write");
            let secs = start.elapsed().as_secs_f64();
            let failed = results.iter().filter(|r| r.is_err()).count();
            assert_eq!(failed, 0, "{failed} writes failed");
            let rate = f64::from(count) / secs;
            println!("  solyx client   batch {batch:>5}: {count:>7} entries in {secs:>7.3} s = {rate:>10.0} entries/s");
            rust.push((batch, rate));
        }
        s.close();
    });

    let held = dataplane.changes_applied();
    println!("  (data plane applied {held} changes)");

    let Some(python) = shell_python() else {
        println!("p4runtime-shell not found (run scripts/setup.sh or set SOLYX_SHELL_PYTHON): no ratio printed");
        return;
    };
    let count = if quick { 1_000 } else { 3_000 };
    let out = std::process::Command::new(&python)
        .arg(root().join("controller/tests/py/shell_client.py"))
        .args([
            "bench",
            &addr,
            "1",
            "20",
            &count.to_string(),
            &next_label.to_string(),
        ])
        .output()
        .expect("run p4runtime-shell");
    if !out.status.success() {
        println!(
            "p4runtime-shell failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::process::exit(1);
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("shell JSON");
    let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
    let shell = f64::from(count) / secs;
    println!("  p4runtime-shell (one entry per write): {count:>7} entries in {secs:>7.3} s = {shell:>10.0} entries/s");
    println!("ratios against p4runtime-shell:");
    for (batch, rate) in &rust {
        println!("  solyx client batch {batch:>5}: {:>8.1}x", rate / shell);
    }
    server_rt.block_on(server.stop()).expect("stop");
}
