//! `solyx api serve`: the REST API on its own, over a state store that is
//! empty (for a runtime to fill) or holds the demo network (`--demo`); and
//! `solyx api openapi`, which prints the OpenAPI document.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use solyx::api::{self, auth, ApiState};
use solyx::metrics::Metrics;
use solyx::state::StateStore;

/// `solyx api ...`
#[derive(Args)]
pub struct ApiArgs {
    #[command(subcommand)]
    cmd: ApiCmd,
}

#[derive(Subcommand)]
enum ApiCmd {
    /// Serve the REST API.
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI 3 document (`solyx api openapi > docs/openapi.json`).
    Openapi,
}

/// Where and how the API listens.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the chosen address is
    /// printed on stdout).
    #[arg(long, env = "SOLYX_API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Token file: one `ROLE NAME TOKEN` per line (docs/api.md).
    #[arg(long, env = "SOLYX_API_TOKENS_FILE")]
    tokens: Option<PathBuf>,
    /// Serve without authentication (every caller is admin). Loopback labs only.
    #[arg(long)]
    insecure_no_auth: bool,
    /// SQLite file where intents persist.
    #[arg(long, env = "SOLYX_STATE_DB", default_value = "solyx-state.db")]
    db: PathBuf,
    /// Serve over TLS with this certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also serve /metrics alone on this address (for Prometheus).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Fill the state with a small demo leaf-spine network.
    #[arg(long)]
    demo: bool,
    /// Attach the orchestrator over this topology file: nodes from its
    /// host devices' `node:` blocks and their agents, placement over its
    /// paths (docs/orchestrator.md).
    #[arg(long, env = "SOLYX_TOPOLOGY")]
    topology: Option<PathBuf>,
    /// SQLite file of the orchestrator's nodes, allocations and jobs
    /// (default: solyx-orchestrator.db next to --db).
    #[arg(long, env = "SOLYX_ORCHESTRATOR_DB", requires = "topology")]
    orchestrator_db: Option<PathBuf>,
    #[command(flatten)]
    energy: EnergyArgs,
}

/// Energy price and carbon for the orchestrator (`solyx serve` and
/// `solyx api serve --topology`).
#[derive(Args, Debug, Clone, Default)]
pub struct EnergyArgs {
    /// Folder of hourly energy price and carbon series (`*.csv` in it and
    /// in its carbon/ and prices/ folders; docs/orchestrator.md, "Energy
    /// files"), read at start and again whenever a file changes. Prices
    /// are read at the current time.
    #[arg(long, env = "SOLYX_ENERGY_DIR")]
    pub energy_dir: Option<PathBuf>,
    /// The grid zone of a site, as SITE=ZONE (repeat it); a site not
    /// mapped reads the zone of its own name.
    #[arg(long = "energy-site", value_name = "SITE=ZONE", requires = "energy_dir",
          value_parser = parse_energy_site)]
    pub energy_sites: Vec<(String, String)>,
    /// A site map file, `sites: { SITE: ZONE }` (docs/examples/energy-sites.yaml);
    /// --energy-site pairs override it.
    #[arg(long, value_name = "FILE", requires = "energy_dir")]
    pub energy_sites_file: Option<PathBuf>,
}

fn parse_energy_site(s: &str) -> std::result::Result<(String, String), String> {
    solyx::workloads::energy::EnergyConfig::parse_site(s)
}

impl EnergyArgs {
    /// Puts the energy configuration into `config` (nothing without
    /// `--energy-dir`).
    ///
    /// # Errors
    /// An unreadable or malformed site map file.
    pub fn apply(&self, config: &mut solyx::workloads::WorkloadsConfig) -> Result<()> {
        let Some(dir) = &self.energy_dir else {
            return Ok(());
        };
        let mut sites = std::collections::BTreeMap::new();
        if let Some(file) = &self.energy_sites_file {
            let map = solyx_orchestrator::energy::SiteZones::load(file)
                .with_context(|| format!("--energy-sites-file {}", file.display()))?;
            sites.extend(map.sites);
        }
        sites.extend(self.energy_sites.iter().cloned());
        config.energy = Some(solyx::workloads::energy::EnergyConfig {
            dir: dir.clone(),
            sites,
        });
        Ok(())
    }
}

/// `--orchestrator-db`, or `solyx-orchestrator.db` in the folder of the
/// state file.
fn orchestrator_db(a: &ServeArgs) -> PathBuf {
    a.orchestrator_db.clone().unwrap_or_else(|| {
        a.db.parent()
            .unwrap_or_else(|| std::path::Path::new(""))
            .join("solyx-orchestrator.db")
    })
}

/// `solyx api`.
pub async fn run(a: ApiArgs) -> Result<()> {
    match a.cmd {
        ApiCmd::Openapi => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(api::openapi::document_text().as_bytes())
                .context("writing the document")?;
            Ok(())
        }
        ApiCmd::Serve(args) => serve(*args).await,
    }
}

/// Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Who may call an API listening on `listen`: tokens from `tokens` or
/// the environment, or nobody checked (`insecure`, loopback only).
///
/// # Errors
/// No token source, an unreadable or empty token list, or
/// `--insecure-no-auth` on a non-loopback address.
pub fn load_auth(
    tokens: Option<&std::path::Path>,
    insecure: bool,
    listen: SocketAddr,
) -> Result<Arc<auth::Auth>> {
    let source = auth::source_from(tokens, std::env::var(auth::TOKENS_ENV).ok(), insecure)
        .map_err(anyhow::Error::msg)?;
    if insecure && !listen.ip().is_loopback() {
        anyhow::bail!(
            "--insecure-no-auth on {listen} would let anyone who reaches it change intents: \
             listen on a loopback address or give tokens"
        );
    }
    let auth = Arc::new(auth::Auth::load(source)?);
    if !auth.disabled() && auth.is_empty() {
        anyhow::bail!("the token list is empty: every request would be refused");
    }
    Ok(auth)
}

async fn serve(a: ServeArgs) -> Result<()> {
    let auth = load_auth(a.tokens.as_deref(), a.insecure_no_auth, a.listen)?;
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(StateStore::open(&a.db)?.with_metrics(metrics.clone()));
    if a.demo {
        api::demo::fill(&store)?;
    }
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(api::tls::server_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut state = ApiState::new(store, auth, metrics.clone());
    // The network feed is kept alive with the server: this command runs
    // no control loop, so the view stays the topology as declared.
    let mut _network = None;
    if a.topology.is_none() && a.energy.energy_dir.is_some() {
        anyhow::bail!("--energy-dir needs --topology: energy weighs the orchestrator's placements");
    }
    if let Some(topo_path) = &a.topology {
        let topo = solyx::topology::Topology::load(topo_path)?;
        let db = orchestrator_db(&a);
        let mut config = solyx::workloads::WorkloadsConfig::new(&db);
        a.energy.apply(&mut config)?;
        let (orchestrator, feed) = solyx::workloads::start(&config, &topo)?;
        tracing::info!(topology = %topo_path.display(), db = %db.display(), "orchestrator attached");
        state = orchestrator.attach(state);
        _network = Some(feed);
    }
    let server = api::spawn(a.listen, api::router(state.clone()), tls)
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    let metrics_server = match a.metrics_listen {
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
    tracing::info!(listen = %server.local_addr(), db = %a.db.display(), demo = a.demo, "API serving");
    // The address on stdout lets scripts start the server on port 0.
    println!("{scheme}://{}", server.local_addr());
    server.run_until(stop_signal()).await?;
    if let Some(m) = metrics_server {
        m.stop().await?;
    }
    Ok(())
}
