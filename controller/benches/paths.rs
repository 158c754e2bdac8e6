//! Path computation speed: K diverse paths for every pair of edge devices,
//! against networkx on the same graph in the same run.
//!
//! Graphs: a k=16 fat-tree (its 128 edge switches are the edge devices)
//! and the largest Internet Topology Zoo graph in the data folder (every
//! node is an edge device). For each, we time [`all_pairs`] over all
//! ordered pairs, then run `paths_nx.py` (networkx
//! `edge_disjoint_paths`, cutoff K) on destination after destination until
//! its time budget is spent, time ours on exactly those pairs, and print
//! the per-pair speed ratio. networkx only finds up to K disjoint paths;
//! ours also makes them least-cost and fills up with least-shared paths
//! when fewer than K disjoint ones exist, so the ratio flatters networkx.
//!
//! `cargo bench -p solyx --bench paths [-- --data DIR]`. Python: the
//! interpreter in `SOLYX_PYTHON`, else `/tmp/venv-nx/bin/python`, else
//! `python3`; it needs `pip install networkx`, and the comparison is
//! skipped with a message without it. `SOLYX_NX_BUDGET` sets networkx's
//! time budget per graph in seconds (default 20).

#[path = "data_dir.rs"]
mod data_dir;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use solyx::routing::{all_pairs, paths_to, PathGraph, Workspace, DEFAULT_K};
use solyx::topology::convert::{self, Options};
use solyx::topology::generate::fat_tree;
use solyx::topology::{Bandwidth, Delay, DeviceIx, Topology};

/// The Python interpreter to use, if it can import networkx.
fn python() -> Option<String> {
    let candidates = [
        std::env::var("SOLYX_PYTHON").ok(),
        Some("/tmp/venv-nx/bin/python".to_string()).filter(|p| Path::new(p).exists()),
        Some("python3".to_string()),
    ];
    for py in candidates.into_iter().flatten() {
        let ok = Command::new(&py)
            .args(["-c", "import networkx"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    None
}

/// The Zoo graph with the most nodes, converted without hosts.
fn largest_zoo(data: &Path) -> Option<(String, Topology)> {
    let dir = data.join("topologies/zoo");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let best = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "graphml"))
        .filter_map(|f| convert::zoo_graphml(f).ok())
        .max_by_key(|raw| raw.nodes.len());
    let Some(raw) = best else {
        println!("skipped Zoo: no readable GraphML under {}", dir.display());
        return None;
    };
    let file = raw.to_file(&Options::default());
    match Topology::from_file(&file, &raw.name) {
        Ok(t) => Some((format!("Zoo {} ({})", raw.name, raw.source), t)),
        Err(e) => {
            println!("skipped Zoo {}: {e}", raw.name);
            None
        }
    }
}

struct NxRun {
    dests: usize,
    pairs: usize,
    paths: usize,
    seconds: f64,
}

/// Runs the networkx baseline on `topo`'s working links.
fn networkx(py: &str, topo: &Topology, edges: &[DeviceIx], budget: f64) -> Result<NxRun, String> {
    let arcs: Vec<[usize; 2]> = topo
        .graph()
        .edge_references()
        .filter(|e| e.weight().state.up)
        .map(|e| [e.source().index(), e.target().index()])
        .collect();
    let ids: Vec<usize> = edges.iter().map(|d| d.index()).collect();
    let job = serde_json::json!({
        "arcs": arcs, "edges": ids, "dests": ids, "k": DEFAULT_K, "budget_s": budget,
    });
    let input = std::env::temp_dir().join(format!("solyx-paths-nx-{}.json", std::process::id()));
    std::fs::write(&input, job.to_string()).map_err(|e| format!("{}: {e}", input.display()))?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/paths_nx.py");
    let out = Command::new(py).arg(&script).arg(&input).output();
    let _ = std::fs::remove_file(&input);
    let out = out.map_err(|e| format!("{py} {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{} printed no JSON: {e}", script.display()))?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0) as usize;
    Ok(NxRun {
        dests: n("dests"),
        pairs: n("pairs"),
        paths: n("paths"),
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
    })
}

fn per_pair_us(took: Duration, pairs: usize) -> f64 {
    took.as_secs_f64() * 1e6 / pairs.max(1) as f64
}

fn bench(name: &str, topo: &Topology, edges: &[DeviceIx], py: Option<&str>, budget: f64) {
    let n = edges.len();
    println!(
        "{name}: {} devices, {} links, {n} edge devices, K={DEFAULT_K}",
        topo.devices().count(),
        topo.links().count() / 2
    );
    let t0 = Instant::now();
    let all = all_pairs(topo, edges, DEFAULT_K);
    let took = t0.elapsed();
    let paths: usize = all.values().map(Vec::len).sum();
    println!(
        "  ours, all {} pairs: {:.2} s ({:.1} µs/pair, {paths} paths)",
        all.len(),
        took.as_secs_f64(),
        per_pair_us(took, all.len())
    );
    let Some(py) = py else {
        return;
    };
    let nx = match networkx(py, topo, edges, budget) {
        Ok(r) => r,
        Err(e) => {
            println!("  networkx: skipped: {e}");
            return;
        }
    };
    // Ours on exactly the pairs networkx did.
    let g = PathGraph::new(topo);
    let mut w = Workspace::new(&g);
    let t0 = Instant::now();
    let mut ours_paths = 0;
    for &t in &edges[..nx.dests.min(n)] {
        ours_paths += paths_to(&g, &mut w, t, edges, DEFAULT_K)
            .iter()
            .map(Vec::len)
            .sum::<usize>();
    }
    let ours = t0.elapsed();
    let nx_us = nx.seconds * 1e6 / nx.pairs.max(1) as f64;
    let ours_us = per_pair_us(ours, nx.pairs);
    println!(
        "  same {} pairs ({} destinations): networkx {:.2} s ({nx_us:.1} µs/pair, {} paths), \
         ours {:.3} s ({ours_us:.1} µs/pair, {ours_paths} paths)",
        nx.pairs,
        nx.dests,
        nx.seconds,
        nx.paths,
        ours.as_secs_f64()
    );
    let ratio = nx_us / ours_us;
    println!(
        "  ratio: {ratio:.0}x faster than networkx (goal >= 20x: {})",
        if ratio >= 20.0 { "met" } else { "not met" }
    );
}

fn main() {
    let budget: f64 = std::env::var("SOLYX_NX_BUDGET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20.0);
    let py = python();
    match &py {
        Some(p) => println!("networkx baseline with {p}, {budget} s budget per graph"),
        None => println!(
            "networkx comparison skipped: no Python with networkx \
             (pip install networkx; or set SOLYX_PYTHON)"
        ),
    }
    let ft = fat_tree(
        16,
        0,
        Bandwidth(100_000_000_000),
        Delay(Duration::from_micros(1)),
    );
    match Topology::from_file(&ft, "fat-tree-k16") {
        Ok(t) => {
            let edges: Vec<DeviceIx> = t
                .devices()
                .filter(|(_, d)| d.name.starts_with('e'))
                .map(|(i, _)| i)
                .collect();
            bench(
                "fat-tree k=16 (generated)",
                &t,
                &edges,
                py.as_deref(),
                budget,
            );
        }
        Err(e) => println!("fat-tree k=16: {e}"),
    }
    if let Some(data) = data_dir::data_dir() {
        if let Some((name, t)) = largest_zoo(&data) {
            let edges = t.edge_devices();
            bench(&name, &t, &edges, py.as_deref(), budget);
        }
    }
}
