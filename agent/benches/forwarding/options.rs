//! Command-line options of the bench: usage text, parsing and limits.

use super::*;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

pub(crate) const USAGE: &str = "\
forwarding bench: packets/s through kernel IPv4 forwarding, the eBPF fabric
stage and Open vSwitch (userspace datapath) between veth pairs (needs root)

usage: cargo bench -p solyx-agent --bench forwarding [-- OPTIONS]

  --quick          short run for the main job (~20 s): 3 runs of 0.2 s, without
                   the TC floor, OVS system ports and the BPF run-time profile
  --runs N         repetitions of every configuration (default 5)
  --seconds S      length of one measurement window (default 0.6)
  --senders N      sender threads, one veth port each (default: CPUs, max 16)
  --only LIST      only these forwarders, comma-separated, of
                   direct,kernel,floor,ebpf,ovs,ovs-afxdp, and
                   ebpf-ingress (the ingress stage alone, only by name)
  --frames F       small (64 B), large (1518 B) or both (default)
  --no-ovs         leave Open vSwitch out (both port types)
  --no-floor       leave the TC redirect floor out
  -h, --help       this text";

/// Command-line options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) runs: usize,
    pub(crate) window: Duration,
    pub(crate) warmup: Duration,
    pub(crate) senders: usize,
    pub(crate) ovs: bool,
    pub(crate) floor: bool,
    pub(crate) quick: bool,
    /// Forwarders to measure (all by default).
    pub(crate) only: Option<Vec<Dut>>,
    /// OVS with `system` ports as well as with AF_XDP ports.
    pub(crate) ovs_system: bool,
    /// The fabric program's run time per packet (BPF statistics).
    pub(crate) profile: bool,
    /// Frame lengths (without FCS) to send.
    pub(crate) sizes: Vec<usize>,
}

impl Options {
    /// Parses the arguments; `Ok(None)` for `--help`.
    pub(crate) fn parse(args: impl Iterator<Item = String>, cpus: usize) -> Result<Option<Self>> {
        let mut options = Self {
            runs: 5,
            window: Duration::from_millis(600),
            warmup: Duration::from_millis(200),
            senders: cpus.clamp(1, MAX_SENDERS),
            ovs: true,
            floor: true,
            quick: false,
            only: None,
            ovs_system: true,
            profile: true,
            sizes: vec![FRAME_SMALL, FRAME_LARGE],
        };
        let mut runs = None;
        let mut window = None;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| anyhow!("{name} needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                // cargo bench passes --bench to harness = false targets.
                "--bench" => {}
                "--quick" => options.quick = true,
                "--no-ovs" => options.ovs = false,
                "--no-floor" => options.floor = false,
                "--runs" => runs = Some(parse_number::<usize>("--runs", &value("--runs")?)?),
                "--seconds" => {
                    let seconds = parse_number::<f64>("--seconds", &value("--seconds")?)?;
                    if !(0.05..=60.0).contains(&seconds) {
                        bail!("--seconds must be between 0.05 and 60");
                    }
                    window = Some(Duration::from_secs_f64(seconds));
                }
                "--senders" => {
                    options.senders = parse_number("--senders", &value("--senders")?)?;
                    if !(1..=MAX_SENDERS).contains(&options.senders) {
                        bail!("--senders must be between 1 and {MAX_SENDERS}");
                    }
                }
                "--only" => {
                    let list = value("--only")?;
                    let duts = list
                        .split(',')
                        .map(|name| {
                            Dut::from_name(name.trim()).ok_or_else(|| {
                                anyhow!("--only: unknown forwarder {name:?}\n\n{USAGE}")
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    options.only = Some(duts);
                }
                "--frames" => {
                    options.sizes = match value("--frames")?.as_str() {
                        "small" => vec![FRAME_SMALL],
                        "large" => vec![FRAME_LARGE],
                        "both" => vec![FRAME_SMALL, FRAME_LARGE],
                        other => bail!("--frames: {other:?} is not small, large or both"),
                    };
                }
                "-h" | "--help" => return Ok(None),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if options.quick {
            options.runs = 3;
            options.window = Duration::from_millis(200);
            options.warmup = Duration::from_millis(120);
            // The floor, OVS's slower port type and the BPF run-time
            // profile are for the analysis, not for the headline figures.
            options.floor = false;
            options.ovs_system = false;
            options.profile = false;
        }
        if let Some(runs) = runs {
            if runs == 0 {
                bail!("--runs must be at least 1");
            }
            options.runs = runs;
        }
        if let Some(window) = window {
            options.window = window;
        }
        // Forwarders asked for by name run even where --quick leaves them out.
        if let Some(only) = &options.only {
            options.floor |= only.contains(&Dut::TcFloor);
            options.ovs_system |= only.contains(&Dut::Ovs);
        }
        Ok(Some(options))
    }
}

pub(crate) fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T> {
    text.parse()
        .map_err(|_| anyhow!("{name}: {text:?} is not a valid number"))
}

/// Sender threads at most (interface names hold two digits of index).
pub(crate) const MAX_SENDERS: usize = 16;
