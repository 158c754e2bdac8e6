//! `solyx`: the Solyx controller and its command line.
//!
//! `solyx p4rt …` talks P4Runtime to one device directly: push or fetch a
//! pipeline, list tables, insert, modify, delete and read entries, read
//! counters. Entities are checked against the device's P4Info before they
//! are sent.

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
    /// Talk P4Runtime to one device.
    P4rt(P4rtArgs),
    /// Check, generate and convert topology files.
    #[command(subcommand)]
    Topology(topology_cmd::TopologyCommand),
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
}

#[derive(Clone, Copy, ValueEnum)]
enum EntryOp {
    Insert,
    Modify,
    Delete,
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    // SOLYX_LOG (or RUST_LOG) takes tracing filter directives, e.g. `info`
    // or `solyx=debug`; warnings only by default.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SOLYX_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
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
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::P4rt(args) => p4rt(args).await,
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
