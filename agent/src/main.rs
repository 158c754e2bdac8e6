//! `solyx-agent`: the Solyx node agent.
//!
//! `solyx-agent serve` serves P4Runtime for this node; `solyx-agent switch`
//! makes the box a `solyx_fabric` switch (eBPF on the given ports) and
//! serves P4Runtime for it; `solyx-agent host` does the same for the
//! `solyx_host` pipeline of a host attached to the fabric (labelled paths
//! per flowlet, INT sink, path probes); `solyx-agent node` only reports the
//! node's resources. `switch`, `host` and `node` serve the node resources
//! over gRPC and Prometheus metrics (`--metrics`). Exit codes: 0 after a clean stop (Ctrl-C or
//! SIGTERM), 2 when the agent cannot start (bad arguments, address in use,
//! unusable socket path, eBPF program not loadable), 1 when serving fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use solyx_agent::ebpf::{ExportConfig, PortSpec, SinkExporter};
use solyx_agent::host::{self, HostOptions};
use solyx_agent::node::{self, NodeArgs, NodeService};
use solyx_agent::p4rt::{
    self, AgentService, Dataplane, MemoryDataplane, PipelinePolicy, ServerConfig,
};
use solyx_agent::switch::{self, SwitchConfig, SwitchOverrides};
use tokio::sync::watch;
use tonic::service::Routes;
use tracing::{error, info, warn};

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
    /// Run this box as a solyx_fabric switch: the eBPF pipeline on the
    /// given ports, programmed over P4Runtime. Stopping the agent leaves
    /// the pipeline forwarding; the next start takes it over.
    Switch(SwitchArgs),
    /// Run this box as a solyx_host node: labelled paths per flowlet, label
    /// pop and INT sink on the given ports, path probes, programmed over
    /// P4Runtime. Same device options as `switch`.
    Host(HostArgs),
    /// Report this node's resources (CPU, memory, GPUs, accelerators,
    /// power, site/rack/pod) over gRPC and as Prometheus metrics; no
    /// P4Runtime.
    Node(NodeCommandArgs),
}

#[derive(Debug, clap::Args)]
struct HostArgs {
    #[command(flatten)]
    device: SwitchArgs,
    /// Send Telemetry Reports (v2.0, UDP) of the INT the host sinks here.
    #[arg(long, value_name = "ADDR:PORT")]
    collector: Option<SocketAddr>,
    /// Probes per second along every path of every group (0: none).
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_PROBE_RATE)]
    probe_rate: u32,
    /// A flow idle this long may take another path (ns, us, ms, s).
    #[arg(long, value_name = "DUR", default_value = "500us", value_parser = host::parse_duration)]
    flowlet_gap: std::time::Duration,
    /// Up to N Telemetry Reports share one datagram behind one group header
    /// (1: one report per datagram).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u8).range(1..=64)
    )]
    report_coalesce: u8,
    /// Longest a report waits for others to share its datagram, with
    /// --report-coalesce above 1 (ns, us, ms, s; at most 1s).
    #[arg(long, value_name = "DUR", default_value = "200us", value_parser = host::parse_duration)]
    report_max_delay: std::time::Duration,
    /// MTU towards the collector: a datagram of several reports fits it.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 1500,
        value_parser = clap::value_parser!(u16).range(1280..)
    )]
    report_mtu: u16,
}

/// Where `solyx-agent node` serves when given no address.
const DEFAULT_NODE_GRPC: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    9559,
));

#[derive(Debug, clap::Args)]
struct NodeCommandArgs {
    /// TCP address to serve the node resources service on [default:
    /// 127.0.0.1:9559 unless only --unix is given].
    #[arg(long, value_name = "ADDR:PORT")]
    grpc: Option<SocketAddr>,
    /// Serve on this Unix socket (created with mode 0660).
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, clap::Args)]
struct SwitchArgs {
    /// A fabric port: P4 port number = interface (repeatable).
    #[arg(long = "port", value_name = "N=INTERFACE", value_parser = PortSpec::parse)]
    ports: Vec<PortSpec>,
    /// YAML file with ports, device_id, instance, grpc, unix, state_dir,
    /// declare, metrics; the options given here override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// TCP address to serve gRPC on [default: 127.0.0.1:9559 unless only
    /// --unix is given].
    #[arg(long, value_name = "ADDR:PORT")]
    grpc: Option<SocketAddr>,
    /// Serve on this Unix socket (created with mode 0660).
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// P4Runtime device ID [default: 1].
    #[arg(long)]
    device_id: Option<u64>,
    /// Network namespace of the ports (a name under /run/netns, or a
    /// path), entered before anything starts. Use it instead of `ip netns
    /// exec`, whose private /sys hides /sys/fs/bpf and makes the pins
    /// vanish with the agent.
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    /// Name of the pin directory under /sys/fs/bpf/solyx [default:
    /// dev<device-id>].
    #[arg(long)]
    instance: Option<String>,
    /// Where the P4Runtime state is saved for a restart [default:
    /// /var/lib/solyx/<instance>].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Another pin root (a directory on a bpffs) instead of /sys/fs/bpf/solyx.
    #[arg(long, value_name = "DIR", hide = true)]
    pin_root: Option<PathBuf>,
    /// Node resources, served on the P4Runtime listeners.
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    tls: TlsArgs,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// TLS on the TCP listener (docs/api.md shows how to make the files).
#[derive(Debug, Clone, clap::Args)]
struct TlsArgs {
    /// Serve gRPC over TLS with this certificate (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

impl TlsArgs {
    fn load(&self) -> Result<Option<p4rt::ServerTls>, p4rt::ServeError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                p4rt::ServerTls::from_files(cert, key, self.tls_client_ca.as_deref()).map(Some)
            }
            _ => Ok(None),
        }
    }
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
    #[command(flatten)]
    tls: TlsArgs,
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
    let tls = match args.tls.load() {
        Ok(t) => t,
        Err(e) => return startup_failure(&e),
    };
    run_service(service, Some(args.grpc), args.unix, None, tls).await
}

/// `solyx-agent node`: node resources only, on TCP and/or a Unix socket.
async fn node(args: NodeCommandArgs) -> ExitCode {
    let node = match node::spawn(&args.node, None).await {
        Ok(n) => n,
        Err(e) => return node_failure(&e),
    };
    let grpc = args
        .grpc
        .or_else(|| args.unix.is_none().then_some(DEFAULT_NODE_GRPC));
    let tcp = match grpc.map(p4rt::bind_tcp) {
        Some(bind) => match bind.await {
            Ok(l) => Some(l),
            Err(e) => return startup_failure(&e),
        },
        None => None,
    };
    let unix = match args.unix.as_deref().map(p4rt::bind_unix).transpose() {
        Ok(l) => l,
        Err(e) => return startup_failure(&e),
    };
    info!(grpc = ?grpc, unix = ?args.unix, metrics = ?node.metrics_addr(), "solyx-agent node listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let service = node.service();
    let closer = service.clone();
    tokio::spawn(async move {
        stop_signal().await;
        closer.close_streams();
        let _ = stop_tx.send(true);
    });
    let server = || tonic::transport::Server::builder().add_service(service.clone().into_grpc());
    let tcp_server = async {
        match tcp {
            Some(l) => {
                let incoming = tonic::transport::server::TcpIncoming::from(l);
                server()
                    .serve_with_incoming_shutdown(incoming, stopped())
                    .await
            }
            None => Ok(()),
        }
    };
    let unix_server = async {
        match unix {
            Some(l) => {
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(l);
                server()
                    .serve_with_incoming_shutdown(incoming, stopped())
                    .await
            }
            None => Ok(()),
        }
    };
    let (a, b) = tokio::join!(tcp_server, unix_server);
    if let Some(path) = &args.unix {
        let _ = std::fs::remove_file(path);
    }
    node.stop().await;
    match a.and(b) {
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

fn node_failure(e: &node::NodeError) -> ExitCode {
    error!(error = %e, "cannot start node reporting");
    eprintln!("solyx-agent: {e}");
    ExitCode::from(2)
}

/// Resolves the switch configuration and enters its network namespace
/// (before the async runtime starts threads).
fn switch_config(args: SwitchArgs) -> Result<SwitchConfig, String> {
    let config = SwitchConfig::resolve(SwitchOverrides {
        config: args.config,
        ports: args.ports,
        device_id: args.device_id,
        netns: args.netns,
        instance: args.instance,
        grpc: args.grpc,
        unix: args.unix,
        state_dir: args.state_dir,
        pin_root: args.pin_root,
        declare: args.node.declare,
        metrics: args.node.metrics,
    })?;
    if let Some(netns) = &config.netns {
        switch::enter_netns(netns)?;
    }
    Ok(config)
}

/// `solyx-agent host`: starts the eBPF host pipeline, its exporter and
/// prober, then serves it.
async fn host(
    config: SwitchConfig,
    node_args: NodeArgs,
    tls: TlsArgs,
    options: HostOptions,
    report_socket: Option<std::net::UdpSocket>,
    export: ExportConfig,
) -> ExitCode {
    let tls = match tls.load() {
        Ok(t) => t,
        Err(e) => return startup_failure(&e),
    };
    let started = match host::start_with_export(&config, &options, report_socket, export) {
        Ok(h) => h,
        Err(e) => {
            error!(error = %e, "cannot start the host pipeline");
            eprintln!("solyx-agent host: {e}");
            return ExitCode::from(2);
        }
    };
    info!(
        instance = %config.instance,
        ports = %started.dataplane.ports(),
        collector = ?options.collector,
        probe_rate = options.probe_rate,
        flowlet_gap = ?options.flowlet_gap,
        report_coalesce = export.coalesce,
        report_max_delay = ?export.max_delay,
        report_mtu = export.mtu,
        state = %config.state_file().display(),
        "host started"
    );
    let node = match node::spawn(&node_args, Some(&started.service)).await {
        Ok(n) => n,
        Err(e) => return node_failure(&e),
    };
    let events = host::HostEventMetrics::new(started.dataplane.clone())
        .and_then(|m| node.registry().register(Box::new(m)));
    if let Err(e) = events {
        warn!(error = %e, "host event counters not exported");
    }
    let code = run_service(
        started.service,
        config.grpc,
        config.unix.clone(),
        Some(node.service()),
        tls,
    )
    .await;
    node.stop().await;
    info!(
        instance = %config.instance,
        "the host programs stay attached with the tables as they are"
    );
    code
}

/// `solyx-agent switch`: starts the eBPF switch, then serves it.
async fn switch(config: SwitchConfig, node_args: NodeArgs, tls: TlsArgs) -> ExitCode {
    let tls = match tls.load() {
        Ok(t) => t,
        Err(e) => return startup_failure(&e),
    };
    let started = match switch::start(&config) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot start the switch");
            eprintln!("solyx-agent switch: {e}");
            return ExitCode::from(2);
        }
    };
    info!(
        instance = %config.instance,
        ports = %started.dataplane.ports(),
        state = %config.state_file().display(),
        "switch started"
    );
    let node = match node::spawn(&node_args, Some(&started.service)).await {
        Ok(n) => n,
        Err(e) => return node_failure(&e),
    };
    let code = run_service(
        started.service,
        config.grpc,
        config.unix.clone(),
        Some(node.service().with_ports(started.ports.clone())),
        tls,
    )
    .await;
    node.stop().await;
    info!(
        instance = %config.instance,
        "the fabric program stays attached and keeps forwarding with the tables as they are"
    );
    code
}

/// Serves `service` (and the node resources service, when given) on the
/// TCP address and/or the Unix socket until Ctrl-C or SIGTERM.
async fn run_service(
    service: AgentService,
    grpc: Option<SocketAddr>,
    unix_path: Option<PathBuf>,
    node: Option<NodeService>,
    tls: Option<p4rt::ServerTls>,
) -> ExitCode {
    let tcp = match grpc.map(p4rt::bind_tcp) {
        Some(bind) => match bind.await {
            Ok(l) => Some(l),
            Err(e) => return startup_failure(&e),
        },
        None => None,
    };
    let unix = match unix_path.as_deref().map(p4rt::bind_unix).transpose() {
        Ok(l) => l,
        Err(e) => return startup_failure(&e),
    };
    info!(
        grpc = ?grpc,
        unix = ?unix_path,
        device_id = service.config().device_id,
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
    let extra = node
        .as_ref()
        .map_or_else(Routes::default, |n| Routes::new(n.clone().into_grpc()));
    tokio::spawn(async move {
        stop_signal().await;
        if let Some(node) = node {
            node.close_streams();
        }
        let _ = stop_tx.send(true);
    });

    let tcp_server = async {
        match tcp {
            Some(tcp) => {
                p4rt::serve_tcp_listener_with(service.clone(), extra.clone(), tcp, tls, stopped())
                    .await
            }
            None => Ok(()),
        }
    };
    let unix_server = async {
        match unix {
            Some(unix) => {
                p4rt::serve_unix_listener_with(service.clone(), extra.clone(), unix, stopped())
                    .await
            }
            None => Ok(()),
        }
    };
    let (a, b) = tokio::join!(tcp_server, unix_server);
    let result = a.and(b);
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
    let log_format = match &cli.command {
        Command::Serve(args) => args.log_format,
        Command::Switch(args) => args.log_format,
        Command::Node(args) => args.log_format,
        Command::Host(args) => args.device.log_format,
    };
    init_logging(log_format);
    let cli = match cli.command {
        Command::Switch(args) => {
            let mut node_args = args.node.clone();
            let tls = args.tls.clone();
            match switch_config(args) {
                Ok(config) => {
                    // The file may name them too; the command line won.
                    node_args.declare.clone_from(&config.declare);
                    node_args.metrics = config.metrics;
                    Resolved::Switch(config, node_args, tls)
                }
                Err(e) => {
                    eprintln!("solyx-agent switch: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        Command::Host(args) => {
            let mut node_args = args.device.node.clone();
            let tls = args.device.tls.clone();
            let export = ExportConfig {
                coalesce: usize::from(args.report_coalesce),
                max_delay: args.report_max_delay,
                mtu: usize::from(args.report_mtu),
            };
            if let Err(e) = export.validate() {
                eprintln!("solyx-agent host: {e}");
                return ExitCode::from(2);
            }
            // Opened before entering the host's namespace, the report
            // socket reaches a collector on this machine's loopback.
            let report_socket = match args.collector.map(SinkExporter::connect).transpose() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "solyx-agent host: cannot open the report socket to {:?}: {e}",
                        args.collector
                    );
                    return ExitCode::from(2);
                }
            };
            match switch_config(args.device) {
                Ok(config) => {
                    node_args.declare.clone_from(&config.declare);
                    node_args.metrics = config.metrics;
                    Resolved::Host(
                        config,
                        node_args,
                        tls,
                        HostOptions {
                            collector: args.collector,
                            probe_rate: args.probe_rate,
                            flowlet_gap: args.flowlet_gap,
                        },
                        report_socket,
                        export,
                    )
                }
                Err(e) => {
                    eprintln!("solyx-agent host: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        Command::Node(args) => Resolved::Node(args),
        Command::Serve(args) => Resolved::Serve(args),
    };
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
    match cli {
        Resolved::Serve(args) => runtime.block_on(serve(args)),
        Resolved::Switch(config, node_args, tls) => {
            runtime.block_on(switch(config, node_args, tls))
        }
        Resolved::Node(args) => runtime.block_on(node(args)),
        Resolved::Host(config, node_args, tls, options, socket, export) => {
            runtime.block_on(host(config, node_args, tls, options, socket, export))
        }
    }
}

/// A command ready to run.
enum Resolved {
    Serve(ServeArgs),
    Switch(SwitchConfig, NodeArgs, TlsArgs),
    Node(NodeCommandArgs),
    Host(
        SwitchConfig,
        NodeArgs,
        TlsArgs,
        HostOptions,
        Option<std::net::UdpSocket>,
        ExportConfig,
    ),
}
