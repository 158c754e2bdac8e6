//! The sender threads (`AF_PACKET`, `sendmmsg`) and the frames they send.

use super::*;

// ---------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------

/// Sender threads, one per port, each in the senders' namespace and pinned
/// to a CPU. Dropping them stops and joins them.
pub(crate) struct Senders {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) sent: Vec<Arc<AtomicU64>>,
    /// Thread IDs, 0 until the thread has published it.
    pub(crate) tids: Vec<Arc<AtomicU32>>,
    pub(crate) threads: Vec<JoinHandle<Result<()>>>,
}

impl Senders {
    pub(crate) fn start(
        ns: &str,
        ports: &[String],
        frames: Vec<Vec<Vec<u8>>>,
        cpus: &[usize],
    ) -> Result<Self> {
        let mut senders = Self {
            stop: Arc::new(AtomicBool::new(false)),
            sent: Vec::new(),
            tids: Vec::new(),
            threads: Vec::new(),
        };
        for (k, (port, frames)) in ports.iter().zip(frames).enumerate() {
            let sent = Arc::new(AtomicU64::new(0));
            let tid = Arc::new(AtomicU32::new(0));
            let (stop, counter, tid_slot) = (senders.stop.clone(), sent.clone(), tid.clone());
            let (ns, port) = (ns.to_owned(), port.clone());
            let cpu = (!cpus.is_empty()).then(|| cpus[k % cpus.len()]);
            let thread = std::thread::Builder::new()
                .name(format!("sender-{k}"))
                .spawn(move || {
                    tid_slot.store(own_tid(), Ordering::SeqCst);
                    send_loop(&ns, &port, cpu, frames, &stop, &counter)
                })
                .context("start a sender thread")?;
            senders.sent.push(sent);
            senders.tids.push(tid);
            senders.threads.push(thread);
        }
        Ok(senders)
    }

    /// Packets sent so far by all threads.
    pub(crate) fn sent(&self) -> u64 {
        self.sent
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .fold(0, u64::saturating_add)
    }

    /// The `/proc` directories of the sender threads.
    pub(crate) fn tasks(&self) -> Vec<PathBuf> {
        self.tids
            .iter()
            .map(|tid| tid.load(Ordering::SeqCst))
            .filter(|&tid| tid != 0)
            .map(|tid| PathBuf::from(format!("/proc/self/task/{tid}")))
            .collect()
    }

    /// An error if a sender thread has already failed.
    pub(crate) fn check(&self) -> Result<()> {
        if self.threads.iter().any(JoinHandle::is_finished) {
            // A thread only ends early on an error; `stop` collects it.
            bail!("a sender thread stopped early");
        }
        Ok(())
    }

    /// Stops the threads and returns the first error one of them had.
    pub(crate) fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let mut first = Ok(());
        for thread in self.threads.drain(..) {
            let result = thread
                .join()
                .map_err(|_| anyhow!("a sender thread panicked"))
                .and_then(|r| r);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One sender: enters `ns`, binds a packet socket to `port` and sends
/// `frames` in one `sendmmsg` call after the other until told to stop.
pub(crate) fn send_loop(
    ns: &str,
    port: &str,
    cpu: Option<usize>,
    frames: Vec<Vec<u8>>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> Result<()> {
    enter_netns(ns)?;
    if let Some(cpu) = cpu {
        // Best effort: without pinning the scheduler spreads the threads.
        let mut set = nix::sched::CpuSet::new();
        if set.set(cpu).is_ok() {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
        }
    }
    let socket = sys::PacketSender::bind(ifindex(port)?)
        .with_context(|| format!("packet socket on {port}"))?;
    let mut batch = sys::Batch::new(frames);
    while !stop.load(Ordering::Relaxed) && !STOP.load(Ordering::Relaxed) {
        match socket.send(&mut batch) {
            Ok(n) => {
                sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)
                ) => {}
            Err(e) => return Err(e).with_context(|| format!("sendmmsg on {port}")),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// A UDP-in-IPv4 frame of `len` bytes (without FCS) from sender `k`, flow
/// `flow`, optionally under one MPLS label (same frame length: the IPv4
/// packet is 4 bytes shorter).
pub(crate) fn build_frame(
    traffic: Traffic,
    len: usize,
    k: usize,
    flow: u16,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
) -> Vec<u8> {
    let label = match traffic {
        Traffic::Ipv4 => None,
        Traffic::MplsTransit => Some(LABEL_TRANSIT),
        Traffic::MplsPop => Some(LABEL_POP),
    };
    let mut frame = Vec::with_capacity(len);
    frame.extend_from_slice(&dst_mac);
    frame.extend_from_slice(&src_mac);
    if let Some(label) = label {
        frame.extend_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
        // Bottom of stack, TTL 64.
        let lse = (label << 12) | (1 << 8) | 64;
        frame.extend_from_slice(&lse.to_be_bytes());
    } else {
        frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    }
    let ip_len = len - frame.len();
    let k = (k & 0xff) as u8;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&[10, 78, k, 2]);
    ip[16..20].copy_from_slice(&[10, 80, k, 1]);
    let checksum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&ip);
    let udp_len = (ip_len - 20) as u16;
    frame.extend_from_slice(&(1024 + flow).to_be_bytes());
    frame.extend_from_slice(&9u16.to_be_bytes()); // discard
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0]); // no UDP checksum
    frame.resize(len, 0);
    frame
}

/// The IPv4 header checksum (RFC 1071) of a header whose checksum is 0.
pub(crate) fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|pair| {
            u32::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
