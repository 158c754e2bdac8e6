//! A lab for tests that run `solyx serve` over real agents: network
//! namespaces joined by veths, `solyx-agent` processes in them, and the
//! controller as a process, all removed (by name and by PID) on drop.
//!
//! Namespaces are `<prefix><pid>-<role>`, veths `<prefix><pid%100000><end>`,
//! pin directories `<prefix><pid>-<role>`, so two tests with different
//! prefixes never touch each other's parts.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use solyx::topology::Mac;

fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("solyx-agent");
    bin.exists().then_some(bin)
}

/// The `solyx-agent` binary when this machine can run the lab (root, eBPF
/// programs built, the binary next to `solyx`); else `None` after saying
/// why `test` is skipped (a failure under `SOLYX_REQUIRE_ROOT=1`).
pub fn can_run(test: &str) -> Option<PathBuf> {
    let reason = if !nix::unistd::Uid::effective().is_root() {
        "needs root (BPF programs, network namespaces)".to_string()
    } else if !solyx_agent::ebpf::is_built() {
        "the agent was built without eBPF programs".to_string()
    } else {
        match agent_binary() {
            Some(bin) => return Some(bin),
            None => "no solyx-agent binary next to solyx: run `cargo build -p solyx-agent`".into(),
        }
    };
    assert!(
        std::env::var("SOLYX_REQUIRE_ROOT").as_deref() != Ok("1"),
        "SOLYX_REQUIRE_ROOT=1 but {reason}"
    );
    let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
    None
}

pub fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `f` on a thread that has entered namespace `ns`.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let handle = File::open(format!("/run/netns/{ns}")).expect("open netns");
                nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("netns thread panicked")
    })
}

/// Namespaces, veths, pins and a temp dir; removed by name on drop.
pub struct Lab {
    prefix: &'static str,
    pid: u32,
    namespaces: Vec<String>,
    veths: Vec<(String, String)>,
    pins: Vec<String>,
    pub dir: PathBuf,
}

impl Lab {
    /// One namespace per role.
    pub fn new(prefix: &'static str, roles: &[&str]) -> Self {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("{prefix}{pid}-serve"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Self {
            prefix,
            pid,
            namespaces: Vec::new(),
            veths: Vec::new(),
            pins: Vec::new(),
            dir,
        };
        for r in roles {
            let ns = lab.ns(r);
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            lab.namespaces.push(ns);
        }
        lab
    }

    pub fn ns(&self, role: &str) -> String {
        format!("{}{}-{role}", self.prefix, self.pid)
    }

    pub fn dev(&self, end: &str) -> String {
        format!("{}{}{end}", self.prefix, self.pid % 100_000)
    }

    /// A veth between `a` (in `role_a`, MAC `mac_a`) and `b`.
    pub fn link(
        &mut self,
        (role_a, a, mac_a): (&str, &str, Mac),
        (role_b, b, mac_b): (&str, &str, Mac),
    ) {
        let (ns_a, ns_b) = (self.ns(role_a), self.ns(role_b));
        let (dev_a, dev_b) = (self.dev(a), self.dev(b));
        ip(&[
            "link",
            "add",
            &dev_a,
            "address",
            &mac_a.to_string(),
            "netns",
            &ns_a,
            "type",
            "veth",
            "peer",
            "name",
            &dev_b,
            "address",
            &mac_b.to_string(),
            "netns",
            &ns_b,
        ]);
        self.veths.push((ns_a.clone(), dev_a.clone()));
        for (ns, dev) in [(&ns_a, &dev_a), (&ns_b, &dev_b)] {
            let sysctl = format!("net.ipv6.conf.{dev}.disable_ipv6=1");
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-q", "-w", &sysctl])
                .output();
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }

    /// Host `role` on its veth end `dev`: address `cidr`, a gateway `gw`
    /// that the switch port MAC `gw_mac` stands for (the fabric answers no
    /// ARP), and a route to `other` through it.
    pub fn host(&self, role: &str, dev: &str, cidr: &str, (gw, gw_mac): (&str, Mac), other: &str) {
        let (ns, dev) = (self.ns(role), self.dev(dev));
        ip(&["-n", &ns, "addr", "add", cidr, "dev", &dev]);
        ip(&[
            "-n",
            &ns,
            "neigh",
            "replace",
            gw,
            "lladdr",
            &gw_mac.to_string(),
            "dev",
            &dev,
            "nud",
            "permanent",
        ]);
        ip(&["-n", &ns, "route", "replace", other, "via", gw, "dev", &dev]);
    }

    /// Starts `solyx-agent <kind>` for `role` in its namespace, on a Unix
    /// socket in the lab's dir, with `ports` (veth ends) as ports 1, 2, …;
    /// its log goes to `<role>.log`. Answers the process and the device's
    /// line for the topology file (`extra` appended to its fields).
    pub fn agent(
        &mut self,
        agent: &Path,
        (role, kind, id): (&str, &str, u64),
        ports: &[&str],
        extra: &str,
    ) -> (Proc, String) {
        let instance = format!("{}{}-{role}", self.prefix, self.pid);
        let _ = solyx_agent::ebpf::remove_instance(
            Path::new(solyx_agent::ebpf::DEFAULT_PIN_ROOT),
            &instance,
        );
        self.pins.push(instance.clone());
        let socket = self.dir.join(format!("{role}.sock"));
        let mut cmd = Command::new(agent);
        cmd.args([
            kind,
            "--netns",
            &self.ns(role),
            "--device-id",
            &id.to_string(),
        ])
        .arg("--unix")
        .arg(&socket)
        .args(["--instance", &instance])
        .arg("--state-dir")
        .arg(self.dir.join(format!("{role}-state")));
        for (i, p) in ports.iter().enumerate() {
            cmd.args(["--port", &format!("{}={}", i + 1, self.dev(p))]);
        }
        let log = File::create(self.dir.join(format!("{role}.log"))).unwrap();
        cmd.env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        let proc = Proc(cmd.spawn().expect("start solyx-agent"));
        let role_kind = if kind == "switch" { "fabric" } else { "host" };
        let line = format!(
            "  - {{ name: {role}, role: {role_kind}, device_id: {id}{extra}, address: \"unix:{}\" }}\n",
            socket.display()
        );
        (proc, line)
    }

    /// What the agents of `roles` logged.
    pub fn agent_logs(&self, roles: &[&str]) -> String {
        roles
            .iter()
            .map(|r| std::fs::read_to_string(self.dir.join(format!("{r}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (ns, dev) in &self.veths {
            let _ = Command::new("ip")
                .args(["-n", ns, "link", "del", dev])
                .output();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for p in &self.pins {
            let _ = solyx_agent::ebpf::remove_instance(
                Path::new(solyx_agent::ebpf::DEFAULT_PIN_ROOT),
                p,
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process killed (by its PID) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `solyx serve` as a process, its API address and what it logged.
pub struct Serve {
    pub api: String,
    log: Arc<Mutex<Vec<String>>>,
    proc: Proc,
}

impl Serve {
    /// `solyx serve --topology F` with the INT collector and the API on
    /// free loopback ports, no API auth, and `args`; waits for the API
    /// address it prints.
    pub fn start(topology: &Path, args: &[&str]) -> Self {
        let mut serve = Command::new(env!("CARGO_BIN_EXE_solyx"))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .args(["serve", "--topology"])
            .arg(topology)
            .args([
                "--int-listen",
                "127.0.0.1:0",
                "--api-listen",
                "127.0.0.1:0",
                "--insecure-no-auth",
            ])
            .args(args)
            .env("SOLYX_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = serve.stdout.take().unwrap();
        let stderr = serve.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let proc = Proc(serve);
        let mut api = String::new();
        BufReader::new(stdout).read_line(&mut api).unwrap();
        let api = api.trim().trim_start_matches("http://").to_string();
        Self { api, log, proc }
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.proc.0.try_wait(), Ok(None))
    }
}

/// `GET path` over HTTP/1.1: the whole response, head and body.
pub fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
