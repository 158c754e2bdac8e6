//! Open vSwitch: its programs, and `ovsdb-server` plus `ovs-vswitchd`
//! started and stopped for the run.

use super::*;

// ---------------------------------------------------------------------------
// Open vSwitch
// ---------------------------------------------------------------------------

/// Open vSwitch programs and the database schema.
#[derive(Debug, Clone)]
pub(crate) struct OvsPrograms {
    pub(crate) ovsdb_tool: PathBuf,
    pub(crate) ovsdb_server: PathBuf,
    pub(crate) vswitchd: PathBuf,
    pub(crate) vsctl: PathBuf,
    pub(crate) ofctl: PathBuf,
    pub(crate) schema: PathBuf,
}

/// `ovsdb-server` and `ovs-vswitchd` started for this run, with their
/// database, sockets, pidfiles and logs in a directory of their own. On drop
/// both are stopped by PID (SIGTERM, then SIGKILL) and the directory removed.
pub(crate) struct Ovs {
    pub(crate) programs: OvsPrograms,
    pub(crate) dir: PathBuf,
    pub(crate) bridge: String,
    pub(crate) ovsdb: Option<Child>,
    pub(crate) vswitchd: Option<Child>,
}

impl Ovs {
    pub(crate) fn start(programs: OvsPrograms, prefix: &str, ns: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("{prefix}-ovs"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut ovs = Self {
            programs,
            bridge: format!("{prefix}-br"),
            dir,
            ovsdb: None,
            vswitchd: None,
        };
        // On failure, dropping `ovs` stops what did start.
        ovs.start_daemons(ns)?;
        Ok(ovs)
    }

    pub(crate) fn start_daemons(&mut self, ns: &str) -> Result<()> {
        let db = self.dir.join("conf.db");
        let output = self
            .command(&self.programs.ovsdb_tool)
            .arg("create")
            .arg(&db)
            .arg(&self.programs.schema)
            .output()
            .context("run ovsdb-tool")?;
        if !output.status.success() {
            bail!(
                "ovsdb-tool create: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let socket = self.dir.join("db.sock");
        let mut server = self.command(&self.programs.ovsdb_server);
        server
            .arg(&db)
            .arg(format!("--remote=punix:{}", socket.display()))
            .arg(format!(
                "--pidfile={}",
                self.dir.join("ovsdb-server.pid").display()
            ))
            .arg(format!(
                "--unixctl={}",
                self.dir.join("ovsdb-server.ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                self.dir.join("ovsdb-server.log").display()
            ))
            .arg("-vconsole:off");
        self.ovsdb = Some(spawn_in(ns, &mut server).context("start ovsdb-server")?);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                bail!("ovsdb-server did not create {}", socket.display());
            }
            self.check_alive()?;
            pause(Duration::from_millis(20))?;
        }
        self.vsctl(&["--no-wait", "init"])?;

        let mut vswitchd = self.command(&self.programs.vswitchd);
        vswitchd
            .arg(format!("unix:{}", socket.display()))
            .arg(format!(
                "--pidfile={}",
                self.dir.join("ovs-vswitchd.pid").display()
            ))
            .arg(format!(
                "--unixctl={}",
                self.dir.join("ovs-vswitchd.ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                self.dir.join("ovs-vswitchd.log").display()
            ))
            .arg("-vconsole:off");
        self.vswitchd = Some(spawn_in(ns, &mut vswitchd).context("start ovs-vswitchd")?);
        // Waits for ovs-vswitchd to apply it: the bridge exists afterwards.
        let bridge = self.bridge.clone();
        self.vsctl(&[
            "add-br",
            &bridge,
            "--",
            "set",
            "Bridge",
            &bridge,
            "datapath_type=netdev",
            "fail_mode=secure",
            "other_config:disable-in-band=true",
        ])
        .context("create the netdev bridge (see ovs-vswitchd.log)")?;
        self.check_alive()
    }

    /// An OVS command with this instance's directories in its environment.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            command.env(var, &self.dir);
        }
        command.stdin(Stdio::null());
        command
    }

    pub(crate) fn check_alive(&mut self) -> Result<()> {
        for (name, child) in [
            ("ovsdb-server", self.ovsdb.as_mut()),
            ("ovs-vswitchd", self.vswitchd.as_mut()),
        ] {
            if let Some(child) = child {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!(
                        "{name} exited ({status}); its log is in {}",
                        self.dir.display()
                    );
                }
            }
        }
        Ok(())
    }

    pub(crate) fn vsctl(&self, args: &[&str]) -> Result<()> {
        let socket = self.dir.join("db.sock");
        let output = self
            .command(&self.programs.vsctl)
            .arg(format!("--db=unix:{}", socket.display()))
            .arg("--timeout=20")
            .args(args)
            .output()
            .context("run ovs-vsctl")?;
        if !output.status.success() {
            bail!(
                "ovs-vsctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    pub(crate) fn ofctl(&self, args: &[&str]) -> Result<()> {
        let output = self
            .command(&self.programs.ofctl)
            .args(["-O", "OpenFlow13"])
            .args(args)
            .output()
            .context("run ovs-ofctl")?;
        if !output.status.success() {
            bail!(
                "ovs-ofctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// The PID of `ovs-vswitchd`.
    pub(crate) fn vswitchd_pid(&self) -> Option<u32> {
        self.vswitchd.as_ref().map(Child::id)
    }

    /// The bridge's OpenFlow management socket.
    pub(crate) fn bridge_target(&self) -> String {
        format!(
            "unix:{}",
            self.dir.join(format!("{}.mgmt", self.bridge)).display()
        )
    }
}

impl Drop for Ovs {
    /// Stops both daemons by PID and removes the directory.
    fn drop(&mut self) {
        for child in [self.vswitchd.take(), self.ovsdb.take()]
            .into_iter()
            .flatten()
        {
            stop_child(child);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM to `child` by PID, SIGKILL after two seconds, and reaped.
pub(crate) fn stop_child(mut child: Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = sys::terminate(child.id());
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
