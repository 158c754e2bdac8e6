//! Helpers of the eBPF switch tests (`tests/ebpf_switch_*.rs`): the root
//! check, network namespaces and veths removed by a guard, threads that
//! enter a namespace, in-process switches, the controller's P4Runtime
//! client set up for `solyx_fabric`, and INT-MD probes.
//!
//! Every namespace is named `sxf<pid>-<test>-<role>` and every veth
//! `sx<pid%100000><tag>` plus a short role, so parallel tests and
//! concurrent runs never share one; guards delete them by name, also when
//! a test fails.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod fabric;
pub mod int;
pub mod packet;

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use solyx_agent::ebpf::{
    remove_instance, EbpfFabricDataplane, PortSpec, SwitchPorts, DEFAULT_PIN_ROOT,
};
use solyx_agent::p4rt::{spawn_tcp, AgentService, RunningServer, ServerConfig};

/// Whether the test can run (root, eBPF object built); prints why not, or
/// fails when `SOLYX_REQUIRE_ROOT=1`.
pub fn can_run(test: &str) -> bool {
    let reason = if !nix::unistd::Uid::effective().is_root() {
        Some("needs root (BPF programs, network namespaces)")
    } else if !solyx_agent::ebpf::is_built() {
        Some(
            "the agent was built without eBPF programs \
             (nightly rust-src or bpf-linker missing, or SOLYX_EBPF_BUILD=skip)",
        )
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) => {
            assert!(
                std::env::var("SOLYX_REQUIRE_ROOT").as_deref() != Ok("1"),
                "{test}: SOLYX_REQUIRE_ROOT=1 but {reason}"
            );
            let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
            false
        }
    }
}

/// Runs `ip` with `args`; panics with its stderr on failure.
pub fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `command` in namespace `ns`; its output.
pub fn netns_exec(ns: &str, command: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(command)
        .output()
        .expect("ip netns exec")
}

/// Runs `f` on a new thread that entered network namespace `ns`.
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

/// `02:5e:...` notation.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The namespaces and veths of one test; deleted by name on drop.
pub struct Topology {
    test: String,
    tag: String,
    namespaces: Vec<(String, String)>,
    /// (namespace, name) of one end of every veth pair.
    veths: Vec<(String, String)>,
}

impl Topology {
    /// Namespaces `sxf<pid>-<test>-<role>` for every role. `tag` (one or
    /// two characters) keeps this test's veth names apart from other
    /// tests'.
    pub fn new(test: &str, tag: &str, roles: &[&str]) -> Self {
        let mut t = Self {
            test: test.to_owned(),
            tag: tag.to_owned(),
            namespaces: Vec::new(),
            veths: Vec::new(),
        };
        for role in roles {
            let name = format!("sxf{}-{test}-{role}", std::process::id());
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
            ip(&["netns", "add", &name]);
            ip(&["-n", &name, "link", "set", "lo", "up"]);
            t.namespaces.push(((*role).to_owned(), name));
        }
        t
    }

    /// The namespace of `role`.
    pub fn ns(&self, role: &str) -> String {
        self.namespaces
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| panic!("no namespace for {role}"))
    }

    /// A veth name for `short` (at most 4 characters), unique to this test
    /// run.
    pub fn dev(&self, short: &str) -> String {
        format!("sx{}{}{short}", std::process::id() % 100_000, self.tag)
    }

    /// Joins `a` in namespace `role_a` (MAC `mac_a`) and `b` in `role_b`
    /// with a veth pair; both ends up, IPv6 off.
    pub fn link(
        &mut self,
        (role_a, a, mac_a): (&str, &str, [u8; 6]),
        (role_b, b, mac_b): (&str, &str, [u8; 6]),
    ) {
        let (ns_a, ns_b) = (self.ns(role_a), self.ns(role_b));
        let (dev_a, dev_b) = (self.dev(a), self.dev(b));
        ip(&[
            "link",
            "add",
            &dev_a,
            "address",
            &mac_text(mac_a),
            "netns",
            &ns_a,
            "type",
            "veth",
            "peer",
            "name",
            &dev_b,
            "address",
            &mac_text(mac_b),
            "netns",
            &ns_b,
        ]);
        self.veths.push((ns_a.clone(), dev_a.clone()));
        for (ns, dev) in [(&ns_a, &dev_a), (&ns_b, &dev_b)] {
            let sysctl = format!("net.ipv6.conf.{dev}.disable_ipv6=1");
            let _ = netns_exec(ns, &["sysctl", "-q", "-w", &sysctl]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }

    /// A host end: address `cidr` on `dev`, a route to `via` for
    /// `routes`, and `via`'s MAC as a static neighbour (the switch answers
    /// no ARP).
    pub fn host(
        &self,
        role: &str,
        dev: &str,
        cidr: &str,
        via: &str,
        via_mac: [u8; 6],
        routes: &[&str],
    ) {
        let ns = self.ns(role);
        let dev = self.dev(dev);
        ip(&["-n", &ns, "addr", "add", cidr, "dev", &dev]);
        ip(&[
            "-n",
            &ns,
            "neigh",
            "replace",
            via,
            "lladdr",
            &mac_text(via_mac),
            "dev",
            &dev,
            "nud",
            "permanent",
        ]);
        for route in routes {
            ip(&[
                "-n", &ns, "route", "replace", route, "via", via, "dev", &dev,
            ]);
        }
    }

    /// The test's name.
    pub fn test(&self) -> &str {
        &self.test
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for (ns, veth) in &self.veths {
            let _ = Command::new("ip")
                .args(["-n", ns, "link", "del", veth])
                .output();
        }
        for (_, name) in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A pin directory `sxf<pid>-<name>` removed on drop (which detaches the
/// pinned programs).
pub struct Pins {
    pub instance: String,
}

impl Pins {
    pub fn new(name: &str) -> Self {
        let instance = format!("sxf{}-{name}", std::process::id());
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &instance);
        Self { instance }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if let Err(e) = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.instance) {
            eprintln!("removing pins of {}: {e}", self.instance);
        }
    }
}

/// An in-process switch: the eBPF data plane on namespace `ns`'s ports, a
/// P4Runtime server for it on 127.0.0.1 (in the test's namespace).
pub struct Switch {
    pub server: RunningServer,
    pub dataplane: Arc<EbpfFabricDataplane>,
    pub pins: Pins,
}

impl Switch {
    /// Starts device `device_id` on `ports` ((P4 port, veth short name)).
    pub async fn start(
        topology: &Topology,
        role: &str,
        device_id: u64,
        ports: &[(u16, &str)],
    ) -> Self {
        let pins = Pins::new(&format!("{}-{role}", topology.test()));
        let switch = SwitchPorts {
            instance: pins.instance.clone(),
            ports: ports
                .iter()
                .map(|(port, dev)| PortSpec {
                    port: *port,
                    interface: topology.dev(dev),
                })
                .collect(),
        };
        let ns = topology.ns(role);
        let dataplane = in_netns(&ns, || {
            EbpfFabricDataplane::start(&switch).expect("data plane")
        });
        let dataplane = Arc::new(dataplane);
        let service = AgentService::new(ServerConfig::new(device_id), dataplane.clone());
        let server = spawn_tcp(service, "127.0.0.1:0".parse().expect("address"))
            .await
            .expect("server");
        Self {
            server,
            dataplane,
            pins,
        }
    }

    /// The server's address for `SessionConfig`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint().to_string()
    }
}

/// Waits up to `timeout` for `check` to hold, polling.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
