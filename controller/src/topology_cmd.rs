//! `solyx topology …`: check a topology file, generate data-centre
//! topologies, convert public network data into topology files.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use solyx::topology::convert::{self, Options};
use solyx::topology::{generate, Bandwidth, Delay, Role, Topology, TopologyFile};

#[derive(Subcommand)]
pub enum TopologyCommand {
    /// Load a topology file and print its devices, links and problems
    /// (each with its line and field). Exits non-zero on any problem.
    Check {
        /// The topology file (YAML).
        file: PathBuf,
    },
    /// Write a data-centre topology file.
    Generate {
        #[command(subcommand)]
        kind: GenerateKind,
        /// Write here instead of stdout.
        #[arg(long, short = 'o', global = true)]
        out: Option<PathBuf>,
    },
    /// Build a topology file from public network data.
    Convert {
        /// The input format.
        #[arg(long, value_enum)]
        from: InputFormat,
        /// The input file.
        file: PathBuf,
        /// Hosts to add behind every switch.
        #[arg(long, default_value_t = 0)]
        hosts_per_switch: usize,
        /// Capacity of links the data gives none for.
        #[arg(long, default_value = "1Gbit")]
        default_bandwidth: Bandwidth,
        /// Write here instead of stdout.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum GenerateKind {
    /// Leaf-spine: every leaf linked to every spine.
    LeafSpine {
        #[arg(long, default_value_t = 2)]
        spines: u32,
        #[arg(long, default_value_t = 4)]
        leaves: u32,
        #[arg(long, default_value_t = 2)]
        hosts_per_leaf: u32,
        #[arg(long, default_value = "100Mbit")]
        bandwidth: Bandwidth,
        #[arg(long, default_value = "1ms")]
        delay: Delay,
    },
    /// k-ary fat-tree.
    FatTree {
        #[arg(long, default_value_t = 4)]
        k: u32,
        /// Hosts under each edge switch (default k/2).
        #[arg(long)]
        hosts_per_edge: Option<u32>,
        #[arg(long, default_value = "100Mbit")]
        bandwidth: Bandwidth,
        #[arg(long, default_value = "1ms")]
        delay: Delay,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum InputFormat {
    /// Internet Topology Zoo GraphML.
    Zoo,
    /// Teal networkx JSON.
    Teal,
    /// SNDlib JSON.
    Sndlib,
    /// Graphviz .dot (YATES style).
    Dot,
}

fn write_out(file: &TopologyFile, out: Option<PathBuf>, note: &str) -> Result<()> {
    let yaml = serde_norway::to_string(file).context("serialising the topology")?;
    let text = format!("# {note}\n{yaml}");
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    Ok(())
}

pub fn run(cmd: TopologyCommand) -> Result<()> {
    match cmd {
        TopologyCommand::Check { file } => check(&file),
        TopologyCommand::Generate { kind, out } => {
            let (f, note) = match kind {
                GenerateKind::LeafSpine { spines, leaves, hosts_per_leaf, bandwidth, delay } => (
                    generate::leaf_spine(spines, leaves, hosts_per_leaf, bandwidth, delay),
                    format!("solyx topology generate leaf-spine --spines {spines} --leaves {leaves} --hosts-per-leaf {hosts_per_leaf} --bandwidth {bandwidth} --delay {delay}"),
                ),
                GenerateKind::FatTree { k, hosts_per_edge, bandwidth, delay } => {
                    if k < 2 || k % 2 == 1 {
                        bail!("--k must be even and at least 2");
                    }
                    let h = hosts_per_edge.unwrap_or(k / 2);
                    (
                        generate::fat_tree(k, h, bandwidth, delay),
                        format!("solyx topology generate fat-tree --k {k} --hosts-per-edge {h} --bandwidth {bandwidth} --delay {delay}"),
                    )
                }
            };
            Topology::from_file(&f, "generated").map_err(|e| anyhow::anyhow!("{e}"))?;
            write_out(&f, out, &note)
        }
        TopologyCommand::Convert {
            from,
            file,
            hosts_per_switch,
            default_bandwidth,
            out,
        } => {
            let raw = match from {
                InputFormat::Zoo => convert::zoo_graphml(&file)?,
                InputFormat::Teal => convert::teal_json(&file)?,
                InputFormat::Sndlib => convert::sndlib_json(&file)?.0,
                InputFormat::Dot => convert::graphviz(&file)?,
            };
            let opts = Options {
                hosts_per_switch,
                default_bandwidth,
                ..Options::default()
            };
            let f = raw.to_file(&opts);
            Topology::from_file(&f, &file.display().to_string())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("input");
            write_out(
                &f,
                out,
                &format!(
                    "Converted from {} ({name}) by solyx topology convert",
                    raw.source
                ),
            )
        }
    }
}

fn check(file: &std::path::Path) -> Result<()> {
    let topo = match Topology::load(file) {
        Ok(t) => t,
        Err(e) => {
            out!("{} problem(s):", e.problems.len());
            out!("{e}");
            bail!("{} is not a usable topology", file.display());
        }
    };
    out!(
        "topology {:?}: {} devices, {} directed links",
        topo.name,
        topo.devices().count(),
        topo.links().count()
    );
    out!("");
    out!(
        "{:<12} {:<6} {:>9} {:<13} {:<22} ip",
        "device",
        "role",
        "device_id",
        "pipeline",
        "address"
    );
    for (_, d) in topo.devices() {
        let role = match d.role {
            Role::Fabric => "fabric",
            Role::Host => "host",
        };
        let ip = d.ip.map(|(a, l)| format!("{a}/{l}")).unwrap_or_default();
        out!(
            "{:<12} {:<6} {:>9} {:<13} {:<22} {ip}",
            d.name,
            role,
            d.device_id,
            d.pipeline,
            d.address.as_deref().unwrap_or("-")
        );
    }
    out!("");
    out!("{:<34} {:>12} {:>10}", "link", "bandwidth", "delay");
    for (id, l) in topo.links() {
        // One line per cable: the direction from the lower device index.
        if l.src.index() > l.dst.index() {
            continue;
        }
        out!(
            "{:<34} {:>12} {:>10}",
            topo.describe_link(id).replace("->", "<->"),
            l.state.capacity.to_string(),
            Delay(l.delay).to_string()
        );
    }
    out!("");
    let edges = topo.edge_devices().len();
    out!("problems: none ({edges} edge devices)");
    Ok(())
}
