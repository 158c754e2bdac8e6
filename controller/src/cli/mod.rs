//! `solyx <noun> <verb>`: the commands that talk to a running controller's
//! REST API, and `solyx api` to serve it or print its OpenAPI document.

pub mod client;
pub mod serve;
pub mod table;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use solyx::orchestrator::{Job, JobSpec, JobState, Node, Placement};
use solyx::state::{
    Device, Host, Intent, IntentSpec, Link, Objective, PathSet, Port, Route, RouteMatch,
    TelemetrySummary,
};
use solyx::workloads::advice::MoveAdvice;

use client::{segment, Client, Remote};
use table::{opt, render};

/// Prints to stdout; a closed stdout ends the program quietly.
fn print(text: &str) {
    use std::io::Write as _;
    if writeln!(std::io::stdout().lock(), "{text}").is_err() {
        std::process::exit(0);
    }
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    print(&serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `solyx device ...`
#[derive(Args)]
pub struct DeviceArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    cmd: DeviceCmd,
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// List devices with their session state.
    List,
    /// Show one device.
    Get {
        /// Device name.
        name: String,
    },
}

/// `solyx port|link|host|route|node|placement list` and `solyx telemetry`.
#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    cmd: ListCmd,
}

#[derive(Subcommand)]
enum ListCmd {
    /// List them.
    List {
        /// Only those of this device (ports, routes) or job (placements).
        #[arg(long)]
        of: Option<String>,
    },
}

/// `solyx path show SRC DST`
#[derive(Args)]
pub struct PathArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    cmd: PathCmd,
}

#[derive(Subcommand)]
enum PathCmd {
    /// Show the paths between two hosts with their labels and weights.
    Show {
        /// Source host.
        src: String,
        /// Destination host.
        dst: String,
    },
}

/// `solyx intent ...`
#[derive(Args)]
pub struct IntentArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    cmd: IntentCmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum ObjectiveArg {
    Latency,
    Throughput,
    Balanced,
}

#[derive(Subcommand)]
enum IntentCmd {
    /// Create an intent, from flags or from a YAML/JSON file (-f).
    Add {
        /// Intent name.
        #[arg(required_unless_present = "file")]
        name: Option<String>,
        /// Source host.
        #[arg(long, required_unless_present = "file")]
        src: Option<String>,
        /// Destination host.
        #[arg(long, required_unless_present = "file")]
        dst: Option<String>,
        /// What to favour.
        #[arg(long, value_enum, default_value_t = ObjectiveArg::Balanced)]
        objective: ObjectiveArg,
        /// Latency bound in microseconds.
        #[arg(long)]
        max_latency_us: Option<u64>,
        /// Bandwidth to keep free, in Mbit/s.
        #[arg(long)]
        min_bandwidth_mbps: Option<u64>,
        /// A device to avoid (repeat for more).
        #[arg(long)]
        avoid: Vec<String>,
        /// Priority 0-7.
        #[arg(long, default_value_t = 0)]
        priority: u8,
        /// Read the intent from this file instead.
        #[arg(long, short = 'f', conflicts_with_all = ["name", "src", "dst"])]
        file: Option<PathBuf>,
    },
    /// List intents and whether they are met.
    List,
    /// Show one intent.
    Get {
        /// Intent name.
        name: String,
    },
    /// Delete an intent.
    Delete {
        /// Intent name.
        name: String,
    },
}

/// `solyx job ...`
#[derive(Args)]
pub struct JobArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    cmd: JobCmd,
}

#[derive(Subcommand)]
enum JobCmd {
    /// Submit a job described in a YAML (or JSON) file.
    Submit {
        /// The job file.
        file: PathBuf,
        /// Wait until the job is placed (or fails), showing progress.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// List jobs.
    List,
    /// Show one job and its placements.
    Get {
        /// Job ID.
        id: String,
    },
    /// Migration advice: moves of running jobs that would pay off under
    /// the energy prices, carbon and network of now (an empty list when
    /// none would).
    Advise {
        /// Only this job (default: every running job).
        id: Option<String>,
        /// Run time the jobs have left, savings are counted over it: `8h`,
        /// `90m`, `600s` or seconds [default: the controller's horizon, 1h].
        #[arg(long, value_parser = parse_remaining)]
        remaining: Option<f64>,
    },
}

/// `8h`, `90m`, `600s` or a number of seconds, as seconds.
fn parse_remaining(s: &str) -> std::result::Result<f64, String> {
    let t = s.trim();
    let (num, unit) = match t
        .char_indices()
        .rfind(|(_, c)| c.is_ascii_digit() || *c == '.')
    {
        Some((i, _)) => t.split_at(i + 1),
        None => (t, ""),
    };
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (use s, m, h or d)")),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v * scale),
        _ => Err(format!("`{s}`: expected a duration such as 8h, 90m or 600")),
    }
}

fn advice_rows(advice: &[MoveAdvice]) -> String {
    let rows: Vec<Vec<String>> = advice
        .iter()
        .map(|a| {
            let triggers: Vec<String> = a
                .triggers
                .iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect();
            vec![
                a.job.clone(),
                a.task.clone(),
                format!("{} ({})", a.from.join(","), a.from_sites.join(",")),
                format!("{} ({})", a.to.join(","), a.to_sites.join(",")),
                triggers.join(","),
                format!("{:.2}", a.saving.usd),
                format!("{:.1}", a.saving.kg_co2),
                format!("{:.0}", a.saving.time_s),
                a.explanation.clone(),
            ]
        })
        .collect();
    render(
        &[
            "JOB",
            "TASK",
            "FROM",
            "TO",
            "WHY",
            "SAVES_USD",
            "SAVES_KG",
            "SAVES_S",
            "DETAIL",
        ],
        &rows,
    )
}

fn yaml_file<T: serde::de::DeserializeOwned>(path: &PathBuf) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("{}", path.display()))
}

/// `solyx device`.
pub async fn device(a: DeviceArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    let devices: Vec<Device> = match &a.cmd {
        DeviceCmd::List => c.get("/v1/devices", &[]).await?,
        DeviceCmd::Get { name } => vec![
            c.get(&format!("/v1/devices/{}", segment(name)), &[])
                .await?,
        ],
    };
    if a.remote.json {
        return match a.cmd {
            DeviceCmd::Get { .. } => print_json(&devices[0]),
            DeviceCmd::List => print_json(&devices),
        };
    }
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.device_id.to_string(),
                format!("{:?}", d.role).to_lowercase(),
                d.address.clone(),
                opt(d.pipeline.as_ref()),
                format!("{:?}", d.connection).to_lowercase(),
                if d.primary { "yes" } else { "no" }.into(),
                d.election_id.to_string(),
            ]
        })
        .collect();
    print(&render(
        &[
            "NAME", "ID", "ROLE", "ADDRESS", "PIPELINE", "SESSION", "PRIMARY", "ELECTION",
        ],
        &rows,
    ));
    Ok(())
}

/// `solyx port list`.
pub async fn port(a: ListArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    let ListCmd::List { of } = &a.cmd;
    let q: Vec<(&str, &str)> = of.iter().map(|d| ("device", d.as_str())).collect();
    let ports: Vec<Port> = c.get("/v1/ports", &q).await?;
    if a.remote.json {
        return print_json(&ports);
    }
    let rows: Vec<Vec<String>> = ports
        .iter()
        .map(|p| {
            vec![
                p.device.clone(),
                p.port.to_string(),
                opt(p.interface.as_ref()),
                if p.up { "up" } else { "down" }.into(),
                p.counters.rx_packets.to_string(),
                p.counters.rx_bytes.to_string(),
                p.counters.tx_packets.to_string(),
                p.counters.tx_bytes.to_string(),
                p.counters.drops.to_string(),
            ]
        })
        .collect();
    print(&render(
        &[
            "DEVICE", "PORT", "IFACE", "STATE", "RX_PKTS", "RX_BYTES", "TX_PKTS", "TX_BYTES",
            "DROPS",
        ],
        &rows,
    ));
    Ok(())
}

/// `solyx link list`.
pub async fn link(a: ListArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    let links: Vec<Link> = c.get("/v1/links", &[]).await?;
    if a.remote.json {
        return print_json(&links);
    }
    let rows: Vec<Vec<String>> = links
        .iter()
        .map(|l| {
            let origin = match (l.declared, l.discovered) {
                (true, true) => "declared+seen",
                (true, false) => "declared, not seen",
                (false, true) => "discovered",
                (false, false) => "-",
            };
            vec![
                l.src.to_string(),
                l.dst.to_string(),
                format!("{:?}", l.state).to_lowercase(),
                opt(l.telemetry.latency_us.map(|v| format!("{v:.0}"))),
                format!("{:.1}%", l.telemetry.utilisation * 100.0),
                opt(l.telemetry.queue_depth),
                format!("{:.2}%", l.telemetry.loss * 100.0),
                origin.into(),
            ]
        })
        .collect();
    print(&render(
        &[
            "SRC",
            "DST",
            "STATE",
            "LATENCY_US",
            "UTIL",
            "QUEUE",
            "LOSS",
            "ORIGIN",
        ],
        &rows,
    ));
    Ok(())
}

/// `solyx host list`.
pub async fn host(a: ListArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    let hosts: Vec<Host> = c.get("/v1/hosts", &[]).await?;
    if a.remote.json {
        return print_json(&hosts);
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                h.ip.clone(),
                opt(h.mac.as_ref()),
                opt(h.attached_to.as_ref()),
                opt(h.site.as_ref()),
            ]
        })
        .collect();
    print(&render(&["NAME", "IP", "MAC", "ATTACHED", "SITE"], &rows));
    Ok(())
}

/// `solyx path show`.
pub async fn path(a: PathArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    let PathCmd::Show { src, dst } = &a.cmd;
    let set: PathSet = c
        .get("/v1/paths", &[("src", src.as_str()), ("dst", dst.as_str())])
        .await?;
    if a.remote.json {
        return print_json(&set);
    }
    if set.paths.is_empty() {
        print(&format!("no paths from {src} to {dst} yet"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = set
        .paths
        .iter()
        .map(|p| {
            vec![
                p.label.to_string(),
                p.weight.to_string(),
                opt(p.latency_us.map(|v| format!("{v:.0}"))),
                format!("{:.1}%", p.bottleneck_utilisation * 100.0),
                if p.usable { "yes" } else { "no" }.into(),
                p.devices.join(" > "),
            ]
        })
        .collect();
    print(&render(
        &[
            "LABEL",
            "WEIGHT",
            "LATENCY_US",
            "BOTTLENECK",
            "USABLE",
            "DEVICES",
        ],
        &rows,
    ));
    Ok(())
}

fn intent_rows(intents: &[Intent]) -> String {
    let rows: Vec<Vec<String>> = intents
        .iter()
        .map(|i| {
            let s = &i.spec;
            vec![
                s.name.clone(),
                s.src.clone(),
                s.dst.clone(),
                format!("{:?}", s.objective).to_lowercase(),
                opt(s.max_latency_us),
                opt(s.min_bandwidth_mbps),
                if s.avoid.is_empty() {
                    "-".into()
                } else {
                    s.avoid.join(",")
                },
                s.priority.to_string(),
                format!("{:?}", i.status.state).to_lowercase(),
            ]
        })
        .collect();
    render(
        &[
            "NAME",
            "SRC",
            "DST",
            "OBJECTIVE",
            "MAX_LAT_US",
            "MIN_MBPS",
            "AVOID",
            "PRIO",
            "STATUS",
        ],
        &rows,
    )
}

/// `solyx intent`.
pub async fn intent(a: IntentArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    let intents: Vec<Intent> = match a.cmd {
        IntentCmd::Add {
            name,
            src,
            dst,
            objective,
            max_latency_us,
            min_bandwidth_mbps,
            avoid,
            priority,
            file,
        } => {
            let spec = match file {
                Some(f) => yaml_file::<IntentSpec>(&f)?,
                None => IntentSpec {
                    name: name.unwrap_or_default(),
                    src: src.unwrap_or_default(),
                    dst: dst.unwrap_or_default(),
                    objective: match objective {
                        ObjectiveArg::Latency => Objective::Latency,
                        ObjectiveArg::Throughput => Objective::Throughput,
                        ObjectiveArg::Balanced => Objective::Balanced,
                    },
                    max_latency_us,
                    min_bandwidth_mbps,
                    avoid,
                    priority,
                },
            };
            vec![c.post("/v1/intents", &spec).await?]
        }
        IntentCmd::List => c.get("/v1/intents", &[]).await?,
        IntentCmd::Get { name } => {
            vec![
                c.get(&format!("/v1/intents/{}", segment(&name)), &[])
                    .await?,
            ]
        }
        IntentCmd::Delete { name } => {
            vec![c.delete(&format!("/v1/intents/{}", segment(&name))).await?]
        }
    };
    if a.remote.json {
        return print_json(&intents);
    }
    print(&intent_rows(&intents));
    Ok(())
}

/// `solyx route list`.
pub async fn route(a: ListArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    let ListCmd::List { of } = &a.cmd;
    let q: Vec<(&str, &str)> = of.iter().map(|d| ("device", d.as_str())).collect();
    let routes: Vec<Route> = c.get("/v1/routes", &q).await?;
    if a.remote.json {
        return print_json(&routes);
    }
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            let m = match &r.matches {
                RouteMatch::Label { label } => format!("label {label}"),
                RouteMatch::Prefix { prefix } => prefix.clone(),
            };
            let next: Vec<String> = r
                .next_hops
                .iter()
                .map(|n| match n.push_label {
                    Some(l) => format!("port {} push {l} w{}", n.port, n.weight),
                    None => format!("port {} w{}", n.port, n.weight),
                })
                .collect();
            vec![r.device.clone(), m, next.join(", ")]
        })
        .collect();
    print(&render(&["DEVICE", "MATCH", "NEXT HOPS"], &rows));
    Ok(())
}

/// `solyx telemetry`.
pub async fn telemetry(remote: Remote) -> Result<()> {
    let c = Client::new(&remote)?;
    let t: TelemetrySummary = c.get("/v1/telemetry", &[]).await?;
    if remote.json {
        return print_json(&t);
    }
    print(&format!(
        "reports/s {:.1}   accepted {}   last report {}",
        t.reports_per_second,
        t.reports_total,
        opt(t.last_report_age_ms.map(|ms| format!("{ms} ms ago")))
    ));
    if !t.rejected.is_empty() {
        let rows: Vec<Vec<String>> = t
            .rejected
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect();
        print(&render(&["REJECTED BY", "REPORTS"], &rows));
    }
    Ok(())
}

/// `solyx node list`.
pub async fn node_list(remote: &Remote) -> Result<()> {
    let c = Client::new(remote)?;
    let nodes: Vec<Node> = c.get("/v1/nodes", &[]).await?;
    if remote.json {
        return print_json(&nodes);
    }
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let acc: Vec<String> = n
                .accelerators
                .iter()
                .map(|a| format!("{}/{}x{}", a.free, a.count, a.model))
                .collect();
            vec![
                n.name.clone(),
                opt(n.site.as_ref()),
                format!("{}/{}", n.cpus_free, n.cpus),
                format!("{}/{}", n.memory_free_mib, n.memory_mib),
                if acc.is_empty() {
                    "-".into()
                } else {
                    acc.join(",")
                },
                if n.ready { "yes" } else { "no" }.into(),
                if n.allocations.is_empty() {
                    "-".into()
                } else {
                    n.allocations.join(",")
                },
            ]
        })
        .collect();
    print(&render(
        &[
            "NAME",
            "SITE",
            "CPUS_FREE",
            "MEM_FREE_MIB",
            "ACCELERATORS_FREE",
            "READY",
            "ALLOCATIONS",
        ],
        &rows,
    ));
    Ok(())
}

fn placement_rows(placements: &[Placement]) -> String {
    let rows: Vec<Vec<String>> = placements
        .iter()
        .map(|p| {
            vec![
                p.job.clone(),
                format!("{}[{}]", p.task, p.replica),
                p.node.clone(),
                format!("{:.3}", p.cost),
                p.explanation.clone(),
            ]
        })
        .collect();
    render(&["JOB", "TASK", "NODE", "COST", "WHY"], &rows)
}

/// `solyx placement list`.
pub async fn placement(a: ListArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    let ListCmd::List { of } = &a.cmd;
    let q: Vec<(&str, &str)> = of.iter().map(|j| ("job", j.as_str())).collect();
    let placements: Vec<Placement> = c.get("/v1/placements", &q).await?;
    if a.remote.json {
        return print_json(&placements);
    }
    print(&placement_rows(&placements));
    Ok(())
}

fn job_rows(jobs: &[Job]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let copies: u32 = j.spec.tasks.iter().map(|t| t.replicas).sum();
            vec![
                j.id.clone(),
                j.spec.name.clone(),
                opt(j.spec.tenant.as_ref()),
                copies.to_string(),
                format!("{:?}", j.state).to_lowercase(),
                opt(j.reason.as_ref()),
            ]
        })
        .collect();
    render(&["ID", "NAME", "TENANT", "TASKS", "STATE", "REASON"], &rows)
}

/// Polls a job until it leaves `pending`, with a spinner on a terminal.
async fn wait_placed(c: &Client, id: &str, timeout: Duration) -> Result<Job> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(format!("waiting for job {id} to be placed"));
    bar.enable_steady_tick(Duration::from_millis(120));
    let deadline = tokio::time::Instant::now() + timeout;
    let path = format!("/v1/jobs/{}", segment(id));
    let result = loop {
        let job: Job = match c.get(&path, &[]).await {
            Ok(j) => j,
            Err(e) => break Err(e),
        };
        if job.state != JobState::Pending {
            break Ok(job);
        }
        if tokio::time::Instant::now() >= deadline {
            break Err(anyhow::anyhow!(
                "job {id} still pending after {}s: {}",
                timeout.as_secs(),
                job.reason.unwrap_or_else(|| "no reason given".into())
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    result
}

/// `solyx job`.
pub async fn job(a: JobArgs) -> Result<()> {
    let c = Client::new(&a.remote)?;
    match a.cmd {
        JobCmd::Submit {
            file,
            wait,
            timeout,
        } => {
            let spec: JobSpec = yaml_file(&file)?;
            let mut job: Job = c.post("/v1/jobs", &spec).await?;
            if wait {
                job = wait_placed(&c, &job.id, Duration::from_secs(timeout)).await?;
            }
            if a.remote.json {
                return print_json(&job);
            }
            print(&job_rows(std::slice::from_ref(&job)));
            if wait && job.state == JobState::Running {
                let placements: Vec<Placement> =
                    c.get("/v1/placements", &[("job", job.id.as_str())]).await?;
                print(&placement_rows(&placements));
            }
            if job.state == JobState::Failed {
                anyhow::bail!("job {} failed", job.id);
            }
        }
        JobCmd::List => {
            let jobs: Vec<Job> = c.get("/v1/jobs", &[]).await?;
            if a.remote.json {
                return print_json(&jobs);
            }
            print(&job_rows(&jobs));
        }
        JobCmd::Advise { id, remaining } => {
            let r = remaining.map(|r| r.to_string());
            let q: Vec<(&str, &str)> = r.iter().map(|r| ("remaining_s", r.as_str())).collect();
            let advice: Vec<MoveAdvice> = match &id {
                Some(id) => {
                    c.get(&format!("/v1/jobs/{}/advice", segment(id)), &q)
                        .await?
                }
                None => c.get("/v1/advice", &q).await?,
            };
            if a.remote.json {
                return print_json(&advice);
            }
            if advice.is_empty() {
                print("no move pays off now");
            } else {
                print(&advice_rows(&advice));
            }
        }
        JobCmd::Get { id } => {
            let job: Job = c.get(&format!("/v1/jobs/{}", segment(&id)), &[]).await?;
            let placements: Vec<Placement> =
                c.get("/v1/placements", &[("job", job.id.as_str())]).await?;
            if a.remote.json {
                return print_json(&serde_json::json!({"job": job, "placements": placements}));
            }
            print(&job_rows(std::slice::from_ref(&job)));
            if !placements.is_empty() {
                print("");
                print(&placement_rows(&placements));
            }
        }
    }
    Ok(())
}
