//! Processes and namespaces: `ip`, sysctl, programs run in a namespace,
//! CPU time of tasks, entering namespaces and TCX attachment.

use super::*;

// ---------------------------------------------------------------------------
// Processes and namespaces
// ---------------------------------------------------------------------------

/// `name` as found by [`find_program`], or as is.
pub(crate) fn tool(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| PathBuf::from(name))
}

/// Runs `ip` with `args`; an error carries its stderr.
pub(crate) fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new(tool("ip"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run ip (iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `program` with `args` in namespace `ns` (forked from a thread that
/// entered it); an error carries its stderr.
pub(crate) fn run_in(ns: &str, program: &str, args: &[&str]) -> Result<()> {
    let output = in_netns(ns, || {
        Command::new(tool(program))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {program}"))
    })?;
    if !output.status.success() {
        bail!(
            "{program} {} (in {ns}): {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Spawns `command` in namespace `ns`; the child is the program itself, so
/// its PID is the one to stop.
pub(crate) fn spawn_in(ns: &str, command: &mut Command) -> Result<Child> {
    in_netns(ns, || {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn")
    })
}

/// Writes sysctl `key` (dotted) in namespace `ns`.
pub(crate) fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    in_netns(ns, || {
        fs::write(&path, value).with_context(|| format!("write {value} to {path} in {ns}"))
    })
}

/// The calling thread's ID (`/proc/thread-self` is `<pid>/task/<tid>`);
/// 0 when unknown.
pub(crate) fn own_tid() -> u32 {
    fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// On-CPU nanoseconds of the tasks (`/proc/.../schedstat`, first field:
/// exact, unlike the tick-sampled utime and stime), summed. A task that is
/// gone counts 0.
pub(crate) fn cpu_ns(tasks: &[PathBuf]) -> u64 {
    tasks
        .iter()
        .filter_map(|task| {
            fs::read_to_string(task.join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .fold(0, u64::saturating_add)
}

/// The `ksoftirqd/<cpu>` kernel threads: softirq work the senders' CPUs
/// could not finish on the way out of a send goes there.
pub(crate) fn ksoftirqd_tasks() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            path.file_name()?.to_str()?.parse::<u32>().ok()?;
            let comm = fs::read_to_string(path.join("comm")).ok()?;
            comm.starts_with("ksoftirqd/").then_some(path)
        })
        .collect()
}

/// The `/proc` directories of every thread of process `pid`.
pub(crate) fn process_tasks(pid: u32) -> Vec<PathBuf> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes the calling thread enter network namespace `ns`.
pub(crate) fn enter_netns(ns: &str) -> Result<()> {
    let handle =
        File::open(format!("/run/netns/{ns}")).with_context(|| format!("open namespace {ns}"))?;
    nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("enter namespace {ns}"))
}

/// Runs `f` on a thread that entered namespace `ns` and returns its result.
pub(crate) fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_netns(ns)?;
                f()
            })
            .join()
            .map_err(|_| anyhow!("a thread in namespace {ns} panicked"))?
    })
}

/// Attaches `program` to TC ingress of `port` in namespace `ns` (TCX).
pub(crate) fn attach_tcx_ingress(ns: &str, program: &sys::BpfFd, port: &str) -> Result<sys::BpfFd> {
    in_netns(ns, || Ok(program.attach_tcx_ingress(ifindex(port)?)?))
}

/// The interface index of `name` in the calling thread's namespace.
pub(crate) fn ifindex(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).with_context(|| format!("interface {name}"))
}
