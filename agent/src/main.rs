//! `solyx-agent`: the Solyx node agent.
//!
//! `solyx-agent serve` serves P4Runtime for this node. Exit codes: 0 after
//! a clean stop (Ctrl-C or SIGTERM), 2 when the agent cannot start (bad
//! arguments, address in use, unusable socket path), 1 when serving fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use solyx_agent::p4rt::{
    self, AgentService, Dataplane, MemoryDataplane, PipelinePolicy, ServerConfig,
};
use tokio::sync::watch;
use tracing::{error, info};

#[derive(Debug, Parser)]
#[command(
    name = "solyx-agent",
    version,
    about = "Solyx node agent: serves P4Runtime for this node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve P4Runtime over TCP (and optionally a Unix socket).
    Serve(ServeArgs),
}

/// Which data plane the server programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DataplaneKind {
    /// Forwards nothing: serves the P4Runtime behaviour only.
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TCP address to serve gRPC on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9559")]
    grpc: SocketAddr,
    /// Also serve on this Unix socket (created with mode 0660).
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// P4Runtime device ID of this node.
    #[arg(long, default_value_t = 1)]
    device_id: u64,
    /// Pipelines (P4Info package names) to accept, comma-separated; any by default.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pipelines: Vec<String>,
    /// Data plane to program.
    #[arg(long, value_enum, default_value_t = DataplaneKind::Memory)]
    dataplane: DataplaneKind,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot watch SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("Ctrl-C: stopping"),
        () = term => info!("SIGTERM: stopping"),
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let dataplane: Arc<dyn Dataplane> = match args.dataplane {
        DataplaneKind::Memory => Arc::new(MemoryDataplane::new()),
    };
    let config = ServerConfig {
        device_id: args.device_id,
        pipelines: PipelinePolicy::from_names(args.pipelines),
        ..ServerConfig::default()
    };
    let service = AgentService::new(config, dataplane);

    let tcp = match p4rt::bind_tcp(args.grpc).await {
        Ok(l) => l,
        Err(e) => return startup_failure(&e),
    };
    let unix = match args.unix.as_deref().map(p4rt::bind_unix).transpose() {
        Ok(l) => l,
        Err(e) => return startup_failure(&e),
    };
    info!(
        grpc = %args.grpc,
        unix = ?args.unix,
        device_id = args.device_id,
        pipelines = ?service.config().pipelines,
        dataplane = service.dataplane_name(),
        "solyx-agent listening"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop_tx.send(true);
    });

    let tcp_server = p4rt::serve_tcp_listener(service.clone(), tcp, stopped());
    let result = match unix {
        Some(unix) => {
            let unix_server = p4rt::serve_unix_listener(service, unix, stopped());
            let (a, b) = tokio::join!(tcp_server, unix_server);
            a.and(b)
        }
        None => tcp_server.await,
    };
    match result {
        Ok(()) => {
            info!("solyx-agent stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(error = %e, "serving failed");
            eprintln!("solyx-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn startup_failure(e: &p4rt::ServeError) -> ExitCode {
    error!(error = %e, "cannot start");
    eprintln!("solyx-agent: {e}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("solyx-agent: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(serve(args))
}
