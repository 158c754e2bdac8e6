//! `solyx`: the Solyx controller and its command line.
//!
//! `solyx <noun> <verb>` (device, port, link, host, path, intent, route,
//! telemetry, node, job, placement) talks to a running controller's REST
//! API; `solyx api serve` serves that API; `solyx completions SHELL` prints
//! shell completions.
//!
//! `solyx p4rt …` talks P4Runtime to one device directly: push or fetch a
//! pipeline, list tables, insert, modify, delete and read entries, read
//! counters. Entities are checked against the device's P4Info before they
//! are sent.
//!
//! `solyx node show ADDR` prints a node's resources as its agent reports
//! them (`--json`, `--watch`).
//! `solyx serve --topology FILE` runs the controller over a network.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use solyx::p4rt::{show, spec, DeviceSession, SessionConfig};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

/// Prints a line to stdout; a closed stdout (`solyx … | head`) ends the
/// program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// Prints a line to stderr, ignoring a closed stderr.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod topology_cmd;

#[derive(Parser)]
#[command(
    name = "solyx",
    version,
    about = "Solyx: a network-centric controller for AI infrastructure"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SOLYX_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Devices the controller programs.
    Device(cli::DeviceArgs),
    /// Ports with their counters.
    Port(cli::ListArgs),
    /// Links with their live measurements.
    Link(cli::ListArgs),
    /// Hosts attached to the fabric.
    Host(cli::ListArgs),
    /// Paths between two hosts.
    Path(cli::PathArgs),
    /// Intents: what to ask of the network between two hosts.
    Intent(cli::IntentArgs),
    /// Routes installed on the devices.
    Route(cli::ListArgs),
    /// Summary of the INT telemetry collector.
    Telemetry(cli::client::Remote),
    /// Jobs: submit, list, get.
    Job(cli::JobArgs),
    /// Where the tasks of jobs were placed.
    Placement(cli::ListArgs),
    /// Serve the REST API, or print its OpenAPI document.
    Api(cli::serve::ApiArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Talk P4Runtime to one device.
    P4rt(P4rtArgs),
    /// Nodes that run workloads: as the controller holds them (`list`) or
    /// as their agents report them (`show`).
    Node(NodeArgs),
    /// Run the controller over a topology: device sessions, pipelines,
    /// link discovery, the INT collector.
    Serve(ServeArgs),
    /// Check, generate and convert topology files.
    #[command(subcommand)]
    Topology(topology_cmd::TopologyCommand),
}

#[derive(Args)]
struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// List the nodes the controller knows, with free and total resources.
    List {
        #[command(flatten)]
        remote: cli::client::Remote,
    },
    /// Print the node: CPU, memory, GPUs, accelerators, power, site/rack/pod,
    /// and whether each value was discovered or declared. With several
    /// agents: one line per node.
    Show {
        /// The agents: host:port or unix:/path.
        #[arg(required = true, value_name = "ADDR")]
        addrs: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Keep printing the node at every change and heartbeat (JSON: one
        /// object per line).
        #[arg(long)]
        watch: bool,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// The topology file (docs/topology-format.md).
    #[arg(long, env = "SOLYX_TOPOLOGY")]
    topology: PathBuf,
    /// Folder of the pipelines' P4Info: <dir>/<pipeline>/<pipeline>.p4info.txtpb.
    #[arg(long, default_value = "p4")]
    p4_dir: PathBuf,
    /// Election ID towards every device.
    #[arg(long, env = "SOLYX_ELECTION_ID", default_value_t = 1)]
    election_id: u128,
    /// UDP address of the INT collector.
    #[arg(long, default_value = "0.0.0.0:9555")]
    int_listen: std::net::SocketAddr,
    /// Collector sockets (SO_REUSEPORT), one receive task each.
    #[arg(long, default_value_t = 1)]
    int_sockets: usize,
    /// Link-discovery probe period in milliseconds (default: the
    /// topology's probe_interval, else 100).
    #[arg(long)]
    probe_interval_ms: Option<u64>,
    /// A port probed on every fabric device besides those of declared
    /// links; repeat it.
    #[arg(long = "probe-port")]
    probe_ports: Vec<u32>,
    /// Telemetry period in milliseconds: link state from INT and a
    /// balancing round this often.
    #[arg(long, default_value_t = 1000)]
    telemetry_period_ms: u64,
    /// Serve the REST API (/v1, /metrics) over the live network here (port
    /// 0 picks a free one; the address is printed on stdout).
    #[arg(long, env = "SOLYX_API_LISTEN")]
    api_listen: Option<std::net::SocketAddr>,
    /// API token file: one `ROLE NAME TOKEN` per line (docs/api.md).
    #[arg(long, env = "SOLYX_API_TOKENS_FILE", requires = "api_listen")]
    tokens: Option<PathBuf>,
    /// Serve the API without authentication (every caller is admin).
    /// Loopback addresses only.
    #[arg(long, requires = "api_listen")]
    insecure_no_auth: bool,
    /// SQLite file where intents persist [default: kept in memory].
    #[arg(long, env = "SOLYX_STATE_DB", requires = "api_listen")]
    state: Option<PathBuf>,
    /// SQLite file of the orchestrator's nodes, allocations and jobs
    /// [default: solyx-orchestrator.db next to --state; without --state,
    /// a file in the temporary directory removed at stop].
    #[arg(long, env = "SOLYX_ORCHESTRATOR_DB", requires = "api_listen")]
    orchestrator_db: Option<PathBuf>,
    /// Also serve /metrics alone on this address (for Prometheus).
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Start every group with all its weight on its first path, as an
    /// unlucky ECMP hash would, and let telemetry spread it (a way to
    /// show rebalancing; failover still moves weight off failed paths).
    #[arg(long)]
    start_on_first_path: bool,
    /// A group's weights stay at least this long between two balancing
    /// changes, in ms (failover ignores it).
    #[arg(long, default_value_t = 5000)]
    balance_hold_ms: u64,
    /// At most this share of a group's weight, in percent, moves per
    /// balancing round (failover ignores it).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    balance_step: u32,
    /// Balancing acts only after congestion worth moving traffic has
    /// lasted this long, in ms (0: at the first telemetry round that sees
    /// it).
    #[arg(long, default_value_t = 0)]
    balance_sustain_ms: u64,
    /// Serve the Kubernetes scheduler extender (POST /scheduler/filter,
    /// /scheduler/prioritize) on this address, scoring nodes with the
    /// orchestrator's live network view. Needs --api-listen.
    #[arg(long, requires = "api_listen")]
    extender_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    energy: Box<cli::serve::EnergyArgs>,
    /// Serve the API over HTTPS with this certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// P4Runtime over TLS to every device with a TCP address: the CA that
    /// signed the devices' certificates (PEM).
    #[arg(long, env = "SOLYX_P4RT_CA", value_name = "FILE")]
    p4rt_tls_ca: Option<PathBuf>,
    /// Mutual TLS: this controller's certificate towards the devices (PEM).
    #[arg(long, env = "SOLYX_P4RT_CERT", value_name = "FILE", requires_all = ["p4rt_tls_ca", "p4rt_tls_key"])]
    p4rt_tls_cert: Option<PathBuf>,
    /// Private key of --p4rt-tls-cert (PEM).
    #[arg(
        long,
        env = "SOLYX_P4RT_KEY",
        value_name = "FILE",
        requires = "p4rt_tls_cert"
    )]
    p4rt_tls_key: Option<PathBuf>,
}

#[derive(Args)]
struct P4rtArgs {
    /// Device address: host:port or unix:/path.
    #[arg(long, env = "SOLYX_P4RT_ADDR", default_value = "127.0.0.1:9559")]
    addr: String,
    /// P4Runtime device ID.
    #[arg(long, env = "SOLYX_DEVICE_ID", default_value_t = 1)]
    device_id: u64,
    /// Election ID (the highest connected one is primary).
    #[arg(long, env = "SOLYX_ELECTION_ID", default_value_t = 1)]
    election_id: u128,
    /// Role name (empty: the default role).
    #[arg(long, default_value = "")]
    role: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for the connection and election.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// Connect over TLS, trusting this CA (PEM) for the device's certificate.
    #[arg(long, env = "SOLYX_P4RT_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, env = "SOLYX_P4RT_CERT", value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(
        long,
        env = "SOLYX_P4RT_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: P4rtCommand,
}

#[derive(Subcommand)]
enum P4rtCommand {
    /// Push a pipeline (skipped when the device already runs it).
    PipelineSet {
        /// P4Info in text format (p4c's .p4info.txtpb) or binary (.bin).
        #[arg(long)]
        p4info: PathBuf,
        /// Target-specific device config (e.g. BMv2 JSON); none for the Solyx agent.
        #[arg(long)]
        device_config: Option<PathBuf>,
        /// Keep the entries the new pipeline can still hold.
        #[arg(long)]
        reconcile: bool,
    },
    /// Show the device's pipeline: package, cookie, tables.
    PipelineGet {
        /// Also write the P4Info (text format) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the tables of the device's pipeline with their match fields and actions.
    Tables,
    /// Insert, modify or delete a table entry.
    Entry {
        /// insert, modify or delete.
        op: EntryOp,
        /// Table name or alias.
        #[arg(long)]
        table: String,
        /// A match, repeated: field=value, field=value/len, field=v&&&mask, field=lo..hi.
        #[arg(long = "match", short = 'm')]
        matches: Vec<String>,
        /// Action name or alias.
        #[arg(long)]
        action: Option<String>,
        /// An action parameter, repeated: name=value.
        #[arg(long = "param", short = 'p')]
        params: Vec<String>,
        /// Action-profile member ID (tables implemented by a profile).
        #[arg(long, conflicts_with_all = ["action", "group"])]
        member: Option<u32>,
        /// Action-profile group ID (tables with a selector).
        #[arg(long, conflicts_with_all = ["action", "member"])]
        group: Option<u32>,
        /// Priority (tables with ternary, range or optional fields).
        #[arg(long, default_value_t = 0)]
        priority: i32,
        /// Set the table's default action instead of an entry.
        #[arg(long)]
        default: bool,
    },
    /// Make the device hold exactly the entities of a desired-state file
    /// (YAML: members, groups, entries): reads what it holds and writes only
    /// the difference, deleting what the file does not list.
    Apply {
        /// The desired-state file.
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// Show what would change without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Read table entries (all tables, or one).
    Read {
        /// Table name or alias; all tables when absent.
        #[arg(long)]
        table: Option<String>,
    },
    /// Read an indexed counter (all cells, or one).
    Counter {
        /// Counter name or alias.
        name: String,
        /// Cell index.
        #[arg(long)]
        index: Option<i64>,
    },
    /// The largest flows of a host (solyx_host): flow buckets by bytes
    /// (flow_bytes_counter) with the 5-tuple that last counted in each
    /// (flow_key_register). Two flows in one bucket add up their bytes and
    /// show the key of the last one seen.
    Elephants {
        /// How many flows to show.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum EntryOp {
    Insert,
    Modify,
    Delete,
}

fn init_logging(format: LogFormat, default: &str) {
    use std::io::IsTerminal;
    // SOLYX_LOG (or RUST_LOG) takes tracing filter directives, e.g. `info`
    // or `solyx=debug`; warnings only by default.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SOLYX_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon tells what it does; one-shot commands only warn.
    let default_level = match cli.command {
        Command::Serve(_) | Command::Api(_) => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, default_level);
    let result = match cli.command {
        Command::Device(a) => cli::device(a).await,
        Command::Port(a) => cli::port(a).await,
        Command::Link(a) => cli::link(a).await,
        Command::Host(a) => cli::host(a).await,
        Command::Path(a) => cli::path(a).await,
        Command::Intent(a) => cli::intent(a).await,
        Command::Route(a) => cli::route(a).await,
        Command::Telemetry(r) => cli::telemetry(r).await,
        Command::Job(a) => cli::job(a).await,
        Command::Placement(a) => cli::placement(a).await,
        Command::Api(a) => cli::serve::run(a).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "solyx", &mut std::io::stdout());
            Ok(())
        }
        Command::P4rt(args) => p4rt(args).await,
        Command::Node(args) => node(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Topology(cmd) => topology_cmd::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn node(args: NodeArgs) -> Result<()> {
    use solyx::node::{summary, to_json, NodeClient};
    let (addrs, json, watch) = match args.command {
        NodeCommand::List { remote } => return cli::node_list(&remote).await,
        NodeCommand::Show { addrs, json, watch } => (addrs, json, watch),
    };
    if let [addr] = addrs.as_slice() {
        return node_one(addr, json, watch).await;
    }
    if watch {
        bail!("--watch takes one agent address");
    }
    let nodes = futures::future::join_all(addrs.iter().map(|addr| async move {
        let node = match NodeClient::connect(addr).await {
            Ok(mut c) => c.get().await,
            Err(e) => Err(e),
        };
        (addr.clone(), node)
    }))
    .await;
    if json {
        let all: Vec<_> = nodes
            .iter()
            .map(|(addr, n)| match n {
                Ok(n) => serde_json::json!({ "address": addr, "node": to_json(n) }),
                Err(e) => serde_json::json!({ "address": addr, "error": e.to_string() }),
            })
            .collect();
        out!("{}", serde_json::Value::Array(all));
    } else {
        out!("{}", summary(&nodes).trim_end());
    }
    let failed = nodes.iter().filter(|(_, n)| n.is_err()).count();
    if failed > 0 {
        bail!("{failed} of {} agents could not be read", nodes.len());
    }
    Ok(())
}

/// `solyx node show ADDR`: one node in detail, or watched.
async fn node_one(addr: &str, json: bool, watch: bool) -> Result<()> {
    use futures::StreamExt;
    use solyx::node::{table, to_json, NodeClient};
    let mut client = NodeClient::connect(addr).await?;
    let print = |node: &solyx::node::Node| {
        if json {
            out!("{}", to_json(node));
        } else {
            out!("{}", table(node).trim_end());
        }
    };
    if !watch {
        print(&client.get().await?);
        return Ok(());
    }
    let mut updates = client.watch().await?;
    while let Some(update) = updates.next().await {
        let update = update?;
        if let Some(node) = &update.node {
            if !json {
                out!(
                    "# update {} ({})",
                    update.sequence,
                    update.reason().as_str_name().to_lowercase()
                );
            }
            print(node);
        }
    }
    bail!("{addr}: the agent closed the watch")
}

/// Runs the controller until SIGINT or SIGTERM.
async fn serve(args: ServeArgs) -> Result<()> {
    use solyx::api;
    use std::sync::Arc;

    let metrics = Arc::new(solyx::metrics::Metrics::new());
    let mut config = solyx::serve::ServeConfig::new(args.topology.clone());
    config.p4_dir = args.p4_dir;
    config.election_id = args.election_id;
    config.collector.listen = args.int_listen;
    config.collector.sockets = args.int_sockets.max(1);
    config.probe_interval = args.probe_interval_ms.map(Duration::from_millis);
    config.probe_ports = args.probe_ports;
    config.telemetry_period = Duration::from_millis(args.telemetry_period_ms.max(10));
    config.metrics = metrics.clone();
    config.routing.start_on_first_path = args.start_on_first_path;
    config.routing.hold = Duration::from_millis(args.balance_hold_ms);
    config.routing.sustain = Duration::from_millis(args.balance_sustain_ms);
    config.routing.max_step = config.routing.total_weight * args.balance_step / 100;
    if let Some(ca) = &args.p4rt_tls_ca {
        let identity = args
            .p4rt_tls_cert
            .as_deref()
            .zip(args.p4rt_tls_key.as_deref());
        config.device_tls = Some(solyx::p4rt::ClientTls::from_files(ca, identity)?);
    }
    let api_tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(api::tls::server_config(cert, key)?),
        _ => None,
    };
    let mut extender = None;
    // The API's checks come first: a bad token file stops nothing running.
    let mut scratch_db: Option<PathBuf> = None;
    if args.api_listen.is_none() && args.energy.energy_dir.is_some() {
        bail!("--energy-dir needs --api-listen: energy weighs the placements of the API's jobs");
    }
    let api = match args.api_listen {
        Some(listen) => {
            let auth =
                cli::serve::load_auth(args.tokens.as_deref(), args.insecure_no_auth, listen)?;
            let store = match &args.state {
                Some(path) => solyx::state::StateStore::open(path)?,
                None => solyx::state::StateStore::ephemeral()?,
            };
            let store = Arc::new(store.with_metrics(metrics.clone()));
            config.store = Some(store.clone());
            // The orchestrator runs in the controller and places over the
            // live link state (docs/orchestrator.md).
            let (db, scratch) = match (&args.orchestrator_db, &args.state) {
                (Some(db), _) => (db.clone(), false),
                (None, Some(state)) => (
                    state
                        .parent()
                        .unwrap_or_else(|| std::path::Path::new("."))
                        .join("solyx-orchestrator.db"),
                    false,
                ),
                (None, None) => (
                    std::env::temp_dir()
                        .join(format!("solyx-{}-orchestrator.db", std::process::id())),
                    true,
                ),
            };
            if scratch {
                scratch_db = Some(db.clone());
            }
            let topo = solyx::topology::Topology::load(&args.topology)?;
            let mut wconfig = solyx::workloads::WorkloadsConfig::new(&db);
            args.energy.apply(&mut wconfig)?;
            let (orchestrator, feed, ext) = solyx::workloads::start_with_extender(&wconfig, &topo)?;
            extender = Some(Arc::new(ext));
            tracing::info!(db = %db.display(), "orchestrator attached");
            config.network_feed = Some(feed);
            let state = orchestrator.attach(api::ApiState::new(store, auth, metrics.clone()));
            Some((listen, state))
        }
        None => None,
    };
    let controller = solyx::serve::Controller::start(config).await?;
    let api = match api {
        Some((listen, state)) => {
            let scheme = if api_tls.is_some() { "https" } else { "http" };
            let server = api::spawn(listen, api::router(state), api_tls)
                .with_context(|| format!("cannot listen on {listen}"))?;
            tracing::info!(listen = %server.local_addr(), scheme, "API serving the live network");
            // The address on stdout lets scripts start serve on port 0.
            println!("{scheme}://{}", server.local_addr());
            Some(server)
        }
        None => None,
    };
    let extender_server = match (args.extender_listen, extender) {
        (Some(addr), Some(ext)) => {
            let server = api::spawn(addr, ext.router(), None)
                .with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!(listen = %server.local_addr(), "Kubernetes scheduler extender serving");
            Some(server)
        }
        _ => None,
    };
    let metrics_server = match args.metrics_listen {
        Some(addr) => {
            let handler = move || {
                let m = metrics.clone();
                async move { m.render() }
            };
            let app = axum::Router::new().route("/metrics", axum::routing::get(handler));
            Some(api::spawn(addr, app, None).with_context(|| format!("cannot listen on {addr}"))?)
        }
        None => None,
    };
    cli::serve::stop_signal().await;
    tracing::info!("stopping");
    if let Some(server) = api {
        server.stop().await?;
    }
    if let Some(server) = metrics_server {
        server.stop().await?;
    }
    if let Some(server) = extender_server {
        server.stop().await?;
    }
    controller.shutdown().await;
    if let Some(db) = scratch_db {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}

/// Reads a P4Info file, in text or binary form.
fn read_p4info(path: &PathBuf) -> Result<P4InfoIndex> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        bail!("P4Info {} is empty", path.display());
    }
    let index = match std::str::from_utf8(&bytes) {
        Ok(text) => P4InfoIndex::from_text(text),
        Err(_) => P4InfoIndex::from_binary(&bytes),
    };
    let index = index.with_context(|| format!("P4Info {}", path.display()))?;
    if index.tables.is_empty() && index.actions.is_empty() {
        bail!(
            "P4Info {} declares no tables and no actions: nothing to program",
            path.display()
        );
    }
    Ok(index)
}

async fn connect(args: &P4rtArgs) -> Result<DeviceSession> {
    let mut config = SessionConfig::new(args.addr.clone(), args.device_id, args.election_id);
    config.role = args.role.clone();
    if let Some(ca) = &args.tls_ca {
        let identity = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
        config.tls = Some(solyx::p4rt::ClientTls::from_files(ca, identity)?);
    }
    let session = DeviceSession::start(config)?;
    let timeout = Duration::from_secs(args.timeout);
    let m = session
        .wait_for(timeout, "connection", |m| {
            !matches!(
                m,
                solyx::p4rt::Mastership::Disconnected | solyx::p4rt::Mastership::Connecting
            )
        })
        .await
        .with_context(|| format!("no answer from {} within {}s", args.addr, args.timeout))?;
    tracing::debug!(?m, "connected");
    Ok(session)
}

async fn device_index(session: &DeviceSession) -> Result<std::sync::Arc<P4InfoIndex>> {
    session.get_pipeline().await?;
    session.index().with_context(|| {
        format!(
            "device {} has no pipeline: push one with `solyx p4rt pipeline-set`",
            session.device_id()
        )
    })
}

async fn p4rt(args: P4rtArgs) -> Result<()> {
    let session = connect(&args).await?;
    match &args.command {
        P4rtCommand::PipelineSet {
            p4info,
            device_config,
            reconcile,
        } => {
            let index = read_p4info(p4info)?;
            let config = match device_config {
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                None => Vec::new(),
            };
            session
                .wait_primary(Duration::from_secs(args.timeout))
                .await?;
            let outcome = session
                .set_pipeline(index.p4info().clone(), config, *reconcile)
                .await?;
            let (arch, name) = index.package();
            if args.json {
                out!(
                    "{}",
                    serde_json::json!({ "outcome": format!("{outcome:?}"), "arch": arch, "name": name })
                );
            } else {
                out!("pipeline {name} ({arch}): {outcome:?}");
            }
        }
        P4rtCommand::PipelineGet { out } => {
            let config = session.get_pipeline().await?;
            let Some(config) = config else {
                bail!("device {} has no pipeline", args.device_id);
            };
            let index = device_index(&session).await?;
            let (arch, name) = index.package();
            let cookie = config.cookie.map(|c| c.cookie);
            let cookie_text = cookie.map_or_else(|| "none".to_string(), |c| format!("{c:#018x}"));
            if let Some(out) = out {
                let text = solyx_p4runtime::p4info::to_text(index.p4info())?;
                std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
            }
            if args.json {
                out!(
                    "{}",
                    serde_json::json!({ "name": name, "arch": arch, "cookie": cookie, "tables": index.tables.len(), "actions": index.actions.len() })
                );
            } else {
                out!(
                    "pipeline {name} ({arch}) cookie {cookie_text}: {} tables, {} actions",
                    index.tables.len(),
                    index.actions.len()
                );
            }
        }
        P4rtCommand::Tables => {
            let index = device_index(&session).await?;
            let mut rows = Vec::new();
            for t in index.tables.iter() {
                let fields: Vec<String> = t
                    .match_fields
                    .iter()
                    .map(|f| format!("{}:{}/{}", f.name, f.kind, f.bitwidth))
                    .collect();
                let actions: Vec<String> = t
                    .actions
                    .iter()
                    .filter_map(|(id, _)| index.actions.by_id(*id).map(|a| a.alias.clone()))
                    .collect();
                rows.push((t.alias.clone(), t.id, t.size, fields, actions));
            }
            if args.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(n, id, size, f, a)| serde_json::json!({"table": n, "id": id, "size": size, "match": f, "actions": a}))
                    .collect();
                out!("{}", serde_json::Value::Array(v));
            } else {
                out!(
                    "{:<28} {:>10} {:>7}  MATCH / ACTIONS",
                    "TABLE",
                    "ID",
                    "SIZE"
                );
                for (n, id, size, f, a) in rows {
                    out!(
                        "{n:<28} {id:>10} {size:>7}  {} / {}",
                        f.join(" "),
                        a.join(" ")
                    );
                }
            }
        }
        P4rtCommand::Entry {
            op,
            table,
            matches,
            action,
            params,
            member,
            group,
            priority,
            default,
        } => {
            let index = device_index(&session).await?;
            let entity = build_entry(
                matches!(op, EntryOp::Delete),
                &index,
                table,
                matches,
                action.as_deref(),
                params,
                *member,
                *group,
                *priority,
                *default,
            )?;
            session
                .wait_primary(Duration::from_secs(args.timeout))
                .await?;
            let kind = match op {
                EntryOp::Insert => p4::update::Type::Insert,
                EntryOp::Modify => p4::update::Type::Modify,
                EntryOp::Delete => p4::update::Type::Delete,
            };
            let results = session
                .write(vec![solyx::p4rt::update(kind, entity)])
                .await?;
            for r in results {
                r.with_context(|| {
                    format!(
                        "the device refused the {} on {table}",
                        kind.as_str_name().to_lowercase()
                    )
                })?;
            }
            if !args.json {
                out!("ok");
            }
        }
        P4rtCommand::Apply { file, dry_run } => {
            let index = device_index(&session).await?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let desired = solyx::p4rt::desired::parse(&index, &text)
                .with_context(|| format!("{}", file.display()))?;
            session
                .wait_primary(Duration::from_secs(args.timeout))
                .await?;
            let (inserted, modified, deleted, failed) = if *dry_run {
                let dangling = solyx::p4rt::reconcile::dangling_references(&desired);
                if !dangling.is_empty() {
                    bail!("{}: {}", file.display(), dangling.join("; "));
                }
                let held = session
                    .read(solyx::p4rt::reconcile::wildcards(&desired))
                    .await?;
                let d = solyx::p4rt::diff(&desired, &held);
                if !args.json {
                    for (mark, list) in [("+", &d.insert), ("~", &d.modify), ("-", &d.delete)] {
                        for e in list {
                            out!("{mark} {}", show::entity_line(&index, e));
                        }
                    }
                }
                (d.insert.len(), d.modify.len(), d.delete.len(), Vec::new())
            } else {
                // All or nothing: one request, rolled back if any update is refused.
                let options = solyx::p4rt::WriteOptions {
                    batch_size: usize::MAX,
                    atomicity: solyx::p4rt::Atomicity::RollbackOnError,
                };
                let r = session.reconcile_with(&desired, options).await?;
                let rolled_back = r
                    .failed
                    .iter()
                    .filter(|(_, e)| e.code == tonic::Code::Aborted)
                    .count();
                let mut failed: Vec<String> = r
                    .failed
                    .iter()
                    .filter(|(_, e)| e.code != tonic::Code::Aborted)
                    .map(|(u, e)| {
                        format!(
                            "{}: {e}",
                            show::entity_line(
                                &index,
                                u.entity.as_ref().unwrap_or(&p4::Entity::default())
                            )
                        )
                    })
                    .collect();
                if rolled_back > 0 {
                    failed.push(format!(
                        "{rolled_back} other updates were rolled back: nothing changed"
                    ));
                }
                (r.inserted, r.modified, r.deleted, failed)
            };
            if args.json {
                out!(
                    "{}",
                    serde_json::json!({"desired": desired.len(), "inserted": inserted, "modified": modified, "deleted": deleted, "failed": failed, "dry_run": dry_run})
                );
            } else {
                let verb = if *dry_run { "would write" } else { "wrote" };
                out!(
                    "{} entities desired; {verb}: {inserted} inserted, {modified} modified, {deleted} deleted",
                    desired.len()
                );
                for f in &failed {
                    out!("  refused: {f}");
                }
            }
            if !failed.is_empty() {
                bail!("the device refused the desired state of {}", file.display());
            }
        }
        P4rtCommand::Read { table } => {
            let index = device_index(&session).await?;
            let table_id = match table {
                Some(name) => index
                    .tables
                    .by_name(name)
                    .map(|t| t.id)
                    .with_context(|| format!("no table {name:?} in the device's P4Info"))?,
                None => 0,
            };
            let entries = session.read_table(table_id).await?;
            // Without --table, the action-profile members and groups too.
            let mut profile_reads = Vec::new();
            if table.is_none() {
                for p in index.action_profiles.iter() {
                    use solyx_p4runtime::proto::p4::v1::entity::Entity as E;
                    profile_reads.push(p4::Entity {
                        entity: Some(E::ActionProfileMember(p4::ActionProfileMember {
                            action_profile_id: p.id,
                            ..Default::default()
                        })),
                    });
                    profile_reads.push(p4::Entity {
                        entity: Some(E::ActionProfileGroup(p4::ActionProfileGroup {
                            action_profile_id: p.id,
                            ..Default::default()
                        })),
                    });
                }
            }
            let profiles = if profile_reads.is_empty() {
                Vec::new()
            } else {
                session.read(profile_reads).await?
            };
            if args.json {
                let v: Vec<_> = entries
                    .iter()
                    .map(|t| show::table_entry_json(&index, t))
                    .collect();
                let p: Vec<_> = profiles
                    .iter()
                    .map(|e| show::entity_line(&index, e))
                    .collect();
                out!("{}", serde_json::json!({ "entries": v, "profiles": p }));
            } else {
                for e in &profiles {
                    out!("{}", show::entity_line(&index, e));
                }
                for t in &entries {
                    out!("{}", show::table_entry_line(&index, t));
                }
                note!(
                    "{} entries, {} members and groups",
                    entries.len(),
                    profiles.len()
                );
            }
        }
        P4rtCommand::Counter { name, index: cell } => {
            let index = device_index(&session).await?;
            let id = index
                .counters
                .by_name(name)
                .map(|c| c.id)
                .with_context(|| format!("no counter {name:?} in the device's P4Info"))?;
            let cells = session.read_counter(id, *cell).await?;
            let rows: Vec<(i64, i64, i64)> = cells
                .iter()
                .map(|c| {
                    let d = c.data.unwrap_or_default();
                    (c.index.map_or(0, |i| i.index), d.packet_count, d.byte_count)
                })
                .collect();
            if args.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(i, p, b)| serde_json::json!({"index": i, "packets": p, "bytes": b}))
                    .collect();
                out!("{}", serde_json::Value::Array(v));
            } else {
                out!("{:>6} {:>14} {:>16}", "INDEX", "PACKETS", "BYTES");
                for (i, p, b) in rows {
                    out!("{i:>6} {p:>14} {b:>16}");
                }
            }
        }
        P4rtCommand::Elephants { top } => {
            let index = device_index(&session).await?;
            let flows = session.elephants(&index, *top).await.with_context(|| {
                format!(
                    "device {} (pipeline {}): reading the largest flows needs a solyx_host \
                     pipeline",
                    session.device_id(),
                    index.package().1
                )
            })?;
            if args.json {
                let v: Vec<_> = flows
                    .iter()
                    .map(|e| {
                        let flow = e.flow.map(|f| {
                            serde_json::json!({
                                "src": f.src.to_string(),
                                "dst": f.dst.to_string(),
                                "proto": f.proto,
                                "sport": f.sport,
                                "dport": f.dport,
                            })
                        });
                        serde_json::json!({
                            "bucket": e.bucket,
                            "flow": flow,
                            "packets": e.packets,
                            "bytes": e.bytes,
                        })
                    })
                    .collect();
                out!("{}", serde_json::Value::Array(v));
            } else {
                out!(
                    "{:<5} {:<15} {:>5} {:<15} {:>5} {:>6} {:>14} {:>16}",
                    "PROTO",
                    "SRC",
                    "SPORT",
                    "DST",
                    "DPORT",
                    "BUCKET",
                    "PACKETS",
                    "BYTES"
                );
                for e in &flows {
                    let (proto, src, sport, dst, dport) = match e.flow {
                        Some(f) => (
                            f.proto_name(),
                            f.src.to_string(),
                            f.sport.to_string(),
                            f.dst.to_string(),
                            f.dport.to_string(),
                        ),
                        None => ("?".into(), "?".into(), "?".into(), "?".into(), "?".into()),
                    };
                    out!(
                        "{proto:<5} {src:<15} {sport:>5} {dst:<15} {dport:>5} {:>6} {:>14} {:>16}",
                        e.bucket,
                        e.packets,
                        e.bytes
                    );
                }
                if flows.is_empty() {
                    note!("no flow bucket has counted any bytes");
                }
            }
        }
    }
    session.close();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn build_entry(
    key_only: bool,
    index: &P4InfoIndex,
    table: &str,
    matches: &[String],
    action: Option<&str>,
    params: &[String],
    member: Option<u32>,
    group: Option<u32>,
    priority: i32,
    default: bool,
) -> Result<p4::Entity> {
    let info = index
        .tables
        .by_name(table)
        .with_context(|| format!("no table {table:?} in the device's P4Info"))?;
    let mut b = index.table_entry(table)?;
    if default {
        b = b.as_default();
    }
    for m in matches {
        let (field, _) = spec::split_assignment(m)?;
        let kind = info
            .field(field)
            .map(|f| f.kind)
            .with_context(|| format!("table {:?} has no match field {field:?}", info.name))?;
        b = spec::add_match(b, kind, m)?;
    }
    if let Some(name) = action {
        let mut a = index.action(name)?;
        for p in params {
            let (pname, value) = spec::split_assignment(p)?;
            a = a.param(pname, spec::parse_value(value)?)?;
        }
        b = b.action(a.build()?)?;
    } else if let Some(m) = member {
        b = b.member(m)?;
    } else if let Some(g) = group {
        b = b.group(g)?;
    }
    let b = b.priority(priority);
    Ok(if key_only { b.build_key()? } else { b.build()? })
}
