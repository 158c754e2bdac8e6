//! The sampling loop: reads `/proc` every poll period, NVML and RAPL at
//! most once a second, and the declared-resources file every poll period;
//! composes the node; sets the gauges; publishes the node to watchers when
//! it differs from the last published one by more than the dead bands.
//!
//! The loop runs on a thread of its own (its reads block), and publishes
//! through a `tokio::sync::watch` channel: a slow watcher skips to the
//! latest node instead of queueing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use solyx_p4runtime::proto::solyx::node::v1 as pb;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::compose::{compose, differs, Discovered};
use super::declared::{Declared, DeclaredError};
use super::gpu::GpuReader;
use super::metrics::NodeMetrics;
use super::power::PowerReader;
use super::proc::{hostname, ProcReader};
use super::NodeError;

/// How the monitor samples.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// The declared-resources file, re-read when it changes.
    pub declare: Option<PathBuf>,
    /// How often `/proc` and the declared file are read.
    pub poll: Duration,
    /// How often NVML and RAPL are read (at least the poll period).
    pub slow_poll: Duration,
    /// Where the powercap zones are (normally `/sys/class/powercap`).
    pub powercap_root: PathBuf,
    /// Whether to load NVML.
    pub nvml: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            declare: None,
            poll: Duration::from_millis(250),
            slow_poll: Duration::from_secs(1),
            powercap_root: PathBuf::from(super::power::POWERCAP_ROOT),
            nvml: true,
        }
    }
}

/// A node and the sequence number of the last published change (1 for the
/// first node).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Counts published nodes.
    pub sequence: u64,
    /// The node.
    pub node: pb::Node,
}

/// The running sampling loop. Dropping it stops the loop.
#[derive(Debug)]
pub struct Monitor {
    rx: watch::Receiver<Arc<Snapshot>>,
    latest: Latest,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Reads the declared file, takes the first sample and starts the
    /// loop, setting `metrics` from every sample.
    ///
    /// # Errors
    /// The declared file is unreadable or invalid: the agent does not
    /// start on a file it cannot honour ([`NodeError::Declared`]).
    pub fn start(config: MonitorConfig, metrics: NodeMetrics) -> Result<Self, NodeError> {
        let declared = match &config.declare {
            Some(path) => {
                let text = std::fs::read(path).map_err(|source| DeclaredError::Read {
                    path: path.clone(),
                    source,
                })?;
                let d = Declared::parse(path, &String::from_utf8_lossy(&text))?;
                info!(file = %path.display(), "declared resources loaded");
                DeclaredFile {
                    path: Some(path.clone()),
                    text,
                    declared: d,
                }
            }
            None => DeclaredFile::default(),
        };
        let mut sampler = Sampler {
            proc: ProcReader::new(),
            gpus: if config.nvml {
                GpuReader::open()
            } else {
                GpuReader::none()
            },
            power: PowerReader::open(&config.powercap_root),
            discovered: Discovered {
                hostname: hostname(),
                ..Discovered::default()
            },
            last_slow: None,
            proc_failed: false,
            declared,
            metrics,
            config,
        };
        let first = sampler.sample();
        let (tx, rx) = watch::channel(Arc::new(Snapshot {
            sequence: 1,
            node: first,
        }));
        let latest: Latest = Arc::new(Mutex::new(rx.borrow().clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let shared = latest.clone();
        let thread = std::thread::Builder::new()
            .name("node-monitor".into())
            .spawn(move || sampler.run(&tx, &shared, &stopping))
            .map_err(|e| NodeError::Start(e.to_string()))?;
        Ok(Self {
            rx,
            latest,
            stop,
            thread: Some(thread),
        })
    }

    /// A receiver of every published change, starting with the last one.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }

    /// The latest sample (its gauges may have moved within their dead
    /// bands since the last published change).
    #[must_use]
    pub fn current(&self) -> Arc<Snapshot> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The loop notices within one poll period; not joined, so that a
        // drop never waits on a slow NVML call.
        drop(self.thread.take());
    }
}

/// The latest sample, published or not.
type Latest = Arc<Mutex<Arc<Snapshot>>>;

#[derive(Debug, Default)]
struct DeclaredFile {
    path: Option<PathBuf>,
    /// The file's bytes when last read (valid or not), to see changes.
    text: Vec<u8>,
    /// The last valid declaration.
    declared: Declared,
}

impl DeclaredFile {
    /// Re-reads the file; a changed, valid file replaces the declaration.
    /// A changed, invalid or unreadable one is logged once and the last
    /// valid declaration stays. Returns whether a refusal happened.
    fn refresh(&mut self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                let marker = format!("\0unreadable: {e}").into_bytes();
                if self.text != marker {
                    warn!(file = %path.display(), error = %e, "declared-resources file unreadable; keeping the last declaration");
                    self.text = marker;
                    return true;
                }
                return false;
            }
        };
        if text == self.text {
            return false;
        }
        let parsed = Declared::parse(path, &String::from_utf8_lossy(&text));
        self.text = text;
        match parsed {
            Ok(d) => {
                info!(file = %path.display(), "declared resources reloaded");
                self.declared = d;
                false
            }
            Err(e) => {
                error!(error = %e, "declared-resources file refused; keeping the last valid declaration");
                true
            }
        }
    }
}

struct Sampler {
    config: MonitorConfig,
    proc: ProcReader,
    gpus: GpuReader,
    power: PowerReader,
    discovered: Discovered,
    last_slow: Option<Instant>,
    proc_failed: bool,
    declared: DeclaredFile,
    metrics: NodeMetrics,
}

impl Sampler {
    fn sample(&mut self) -> pb::Node {
        if self.declared.refresh() {
            self.metrics.declared_errors.inc();
        }
        match self.proc.read() {
            Ok(p) => {
                self.discovered.proc = p;
                self.proc_failed = false;
            }
            Err(e) => {
                if !self.proc_failed {
                    warn!(error = %e, "cannot read /proc; keeping the last values");
                }
                self.proc_failed = true;
            }
        }
        let now = Instant::now();
        let slow_due = self
            .last_slow
            .is_none_or(|t| now.duration_since(t) >= self.config.slow_poll);
        if slow_due {
            self.last_slow = Some(now);
            self.discovered.gpus = self.gpus.read();
            self.discovered.rapl_watts = self.power.read(now);
        }
        let mut node = compose(&self.discovered, &self.declared.declared);
        node.sampled_at = Some(prost_types::Timestamp::from(SystemTime::now()));
        self.metrics.update(&node);
        node
    }

    fn run(mut self, tx: &watch::Sender<Arc<Snapshot>>, latest: &Latest, stop: &AtomicBool) {
        let mut sequence = tx.borrow().sequence;
        self.metrics.updates.inc();
        loop {
            std::thread::sleep(self.config.poll);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let node = self.sample();
            let changed = differs(&tx.borrow().node, &node);
            if changed {
                sequence += 1;
            }
            let snapshot = Arc::new(Snapshot { sequence, node });
            *latest.lock().unwrap_or_else(PoisonError::into_inner) = snapshot.clone();
            if changed {
                self.metrics.updates.inc();
                tx.send_replace(snapshot);
            }
        }
    }
}
