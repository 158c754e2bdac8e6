//! P4Runtime writes applied to eBPF maps per second: the controller's
//! client writes `mpls_forward` entries over one session to the agent's
//! P4Runtime server, which validates each update and writes it into the
//! fabric's pinned eBPF maps. Printed next to two baselines measured in the
//! same run:
//!
//! - the same writes through the same server with the memory data plane
//!   (P4Runtime cost alone, no map writes);
//! - the same map entries written straight into the maps with aya (the
//!   kernel's map-update cost alone, no P4Runtime).
//!
//! Run as root: `cargo bench -p solyx-agent --bench p4rt_maps [-- --quick]`.
//! It creates a network namespace `sxw<pid>` with one veth pair for the
//! switch's two ports and removes it at the end.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use solyx::p4rt::{update, DeviceSession, SessionConfig, WriteOptions};
use solyx_agent::ebpf::common::MplsForward;
use solyx_agent::ebpf::{EbpfFabricDataplane, PortSpec, SwitchPorts};
use solyx_agent::p4rt::{spawn_unix, AgentService, Dataplane, MemoryDataplane, ServerConfig};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

const P4INFO: &str = include_str!("../../p4/solyx_fabric/solyx_fabric.p4info.txtpb");

/// Removes the namespace (and the veths inside it) when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Removes the switch's pinned maps and links when dropped.
struct Pins(String);

impl Drop for Pins {
    fn drop(&mut self) {
        let root = std::path::Path::new(solyx_agent::ebpf::DEFAULT_PIN_ROOT);
        let _ = solyx_agent::ebpf::remove_instance(root, &self.0);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn entries(ix: &P4InfoIndex, first: u32, count: u32) -> Vec<p4::Entity> {
    (first..first + count)
        .map(|label| {
            let a = ix
                .action("mpls_forward_to")
                .and_then(|a| a.param("port", 1u16 + (label % 2) as u16));
            let a = a.and_then(|a| a.build()).expect("action");
            ix.table_entry("mpls_forward")
                .and_then(|t| t.exact("mpls_label", label))
                .and_then(|t| t.action(a))
                .and_then(|t| t.build())
                .expect("entry")
        })
        .collect()
}

/// Inserts then deletes `count` entries `rounds` times over one session;
/// returns writes per second.
async fn p4runtime_rate(
    dp: Arc<dyn Dataplane>,
    sock: &std::path::Path,
    count: u32,
    rounds: u32,
) -> Result<f64, String> {
    let service = AgentService::new(ServerConfig::new(1), dp);
    let server = spawn_unix(service, sock).map_err(|e| e.to_string())?;
    let s = DeviceSession::start(SessionConfig::new(
        format!("unix:{}", sock.display()),
        1,
        10,
    ))
    .map_err(|e| e.to_string())?;
    s.wait_primary(Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let ix = P4InfoIndex::from_text(P4INFO).map_err(|e| e.to_string())?;
    s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .map_err(|e| e.to_string())?;
    let options = WriteOptions {
        batch_size: 1000,
        ..WriteOptions::default()
    };
    let batch = entries(&ix, 16, count);
    let mut written = 0u64;
    let start = Instant::now();
    for _ in 0..rounds {
        for kind in [p4::update::Type::Insert, p4::update::Type::Delete] {
            let updates: Vec<p4::Update> = batch.iter().cloned().map(|e| update(kind, e)).collect();
            let results = s
                .write_with(updates, options)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
                return Err(format!("a write failed: {e}"));
            }
            written += u64::from(count);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    s.close();
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(written as f64 / secs)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if !nix::unistd::Uid::effective().is_root() {
        println!("p4rt_maps: skipped: needs root (network namespaces and eBPF)");
        return;
    }
    if let Err(e) = run(quick) {
        println!("p4rt_maps: failed: {e}");
        std::process::exit(1);
    }
}

fn run(quick: bool) -> Result<(), String> {
    let pid = std::process::id();
    let ns = Netns(format!("sxw{pid}"));
    let (a, b) = (format!("sxwa{pid}"), format!("sxwb{pid}"));
    ip(&["netns", "add", &ns.0])?;
    ip(&[
        "link", "add", &a, "netns", &ns.0, "type", "veth", "peer", "name", &b, "netns", &ns.0,
    ])?;
    for dev in [&a, &b] {
        ip(&["-n", &ns.0, "link", "set", dev, "up"])?;
    }
    let dir = std::env::temp_dir().join(format!("solyx-bench-maps-{pid}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    // The data plane resolves interfaces in the namespace of the thread
    // that starts it.
    let switch = SwitchPorts {
        instance: format!("bench{pid}"),
        ports: vec![
            PortSpec::parse(&format!("1={a}"))?,
            PortSpec::parse(&format!("2={b}"))?,
        ],
    };
    // Dropped after the data plane (declared before it): removes the pins.
    let _pins = Pins(switch.instance.clone());
    let ns_name = ns.0.clone();
    let dp = std::thread::spawn(move || -> Result<EbpfFabricDataplane, String> {
        solyx_agent::switch::enter_netns(&ns_name)?;
        EbpfFabricDataplane::start(&switch).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "data plane thread panicked".to_string())??;
    let dp = Arc::new(dp);

    let (count, rounds) = if quick { (4000, 3) } else { (4000, 15) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    println!(
        "P4Runtime writes applied to eBPF maps (mpls_forward, batches of 1000, insert+delete)"
    );
    let ebpf = rt.block_on(p4runtime_rate(
        dp.clone(),
        &dir.join("ebpf.sock"),
        count,
        rounds,
    ))?;
    let memory = rt.block_on(p4runtime_rate(
        Arc::new(MemoryDataplane::new()),
        &dir.join("memory.sock"),
        count,
        rounds,
    ))?;

    // The floor: the same map entries written straight into the maps.
    let ifindex = dp
        .ports()
        .get(1)
        .map(|p| p.ifindex)
        .ok_or("port 1 missing")?;
    let entry = MplsForward {
        egress_ifindex: ifindex,
        egress_port: 1,
        flags: 0,
        dst_mac: [0; 6],
        src_mac: [0; 6],
    };
    let start = Instant::now();
    let mut written = 0u64;
    dp.with_fabric(|f| -> Result<(), String> {
        for _ in 0..rounds {
            for label in 16..16 + count {
                f.insert_mpls_forward(label, entry)
                    .map_err(|e| e.to_string())?;
            }
            for label in 16..16 + count {
                f.remove_mpls_forward(label).map_err(|e| e.to_string())?;
            }
            written += 2 * u64::from(count);
        }
        Ok(())
    })?;
    let raw = written as f64 / start.elapsed().as_secs_f64();

    println!("  P4Runtime -> eBPF maps (solyx-agent switch data plane): {ebpf:>10.0} writes/s");
    println!("  P4Runtime -> memory data plane (no map writes):         {memory:>10.0} writes/s");
    println!("  direct aya map updates (no P4Runtime):                   {raw:>10.0} writes/s");
    println!("ratios:");
    println!("  eBPF path / memory data plane: {:.2}", ebpf / memory);
    println!("  eBPF path / direct map updates: {:.2}", ebpf / raw);
    println!(
        "goal: >= 100,000 writes/s applied to maps: {}",
        if ebpf >= 100_000.0 { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
