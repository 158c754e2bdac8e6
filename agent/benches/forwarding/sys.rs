//! What neither the standard library, nix nor aya offers: a packet
//! socket sending with `sendmmsg`, two hand-assembled TC programs loaded
//! and attached (TCX) with the `bpf` system call, and SIGTERM by PID.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `PACKET_QDISC_BYPASS` (`linux/if_packet.h`): hand frames straight to
/// the driver.
const PACKET_QDISC_BYPASS: libc::c_int = 20;

/// A raw packet socket bound to one interface, for sending only (bound
/// to protocol 0, it receives nothing).
pub struct PacketSender {
    fd: OwnedFd,
}

impl PacketSender {
    pub fn bind(ifindex: u32) -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int of the given size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_QDISC_BYPASS,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sockaddr_ll is plain old data; all zeroes is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
        // SAFETY: `addr` is a valid sockaddr_ll and the length is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Sends the whole batch in one call; returns how many frames went.
    pub fn send(&self, batch: &mut Batch) -> io::Result<usize> {
        let count = libc::c_uint::try_from(batch.headers.len()).map_err(io::Error::other)?;
        // SAFETY: every header points at one iovec of `batch`, which
        // points at a frame of `batch`; all live as long as `batch`.
        let sent =
            unsafe { libc::sendmmsg(self.fd.as_raw_fd(), batch.headers.as_mut_ptr(), count, 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// Frames and the message headers that point at them. The vectors are
/// never changed after `new`, so the pointers stay valid while the
/// batch lives (moving it does not move their heap buffers).
pub struct Batch {
    _frames: Vec<Vec<u8>>,
    _iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl Batch {
    pub fn new(frames: Vec<Vec<u8>>) -> Self {
        let iovecs: Vec<libc::iovec> = frames
            .iter()
            .map(|frame| libc::iovec {
                iov_base: frame.as_ptr().cast_mut().cast(),
                iov_len: frame.len(),
            })
            .collect();
        let headers = iovecs
            .iter()
            .map(|iov| {
                // SAFETY: mmsghdr is plain old data; all zeroes is valid
                // (no address: the socket's bound interface is used).
                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                header.msg_hdr.msg_iov = std::ptr::from_ref(iov).cast_mut();
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        Self {
            _frames: frames,
            _iovecs: iovecs,
            headers,
        }
    }
}

/// `bpf` commands, program and attach types (`linux/bpf.h`).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_TCX_INGRESS: u32 = 46;

/// `union bpf_attr` as `BPF_PROG_LOAD` reads it, with a zeroed tail.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    tail: [u64; 12],
}

/// `union bpf_attr` as `BPF_LINK_CREATE` reads it for TCX.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
    tail: [u64; 8],
}

/// One eBPF instruction (`struct bpf_insn`) as a little-endian u64.
const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    code as u64
        | ((dst as u64 | ((src as u64) << 4)) << 8)
        | ((off as u16 as u64) << 16)
        | ((imm as u32 as u64) << 32)
}
const MOV64_IMM: u8 = 0xb7;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const TC_ACT_SHOT: i32 = 2;
const BPF_FUNC_REDIRECT: i32 = 23;

/// `return TC_ACT_SHOT;`
pub fn drop_program() -> Vec<u64> {
    vec![
        insn(MOV64_IMM, 0, 0, 0, TC_ACT_SHOT),
        insn(EXIT, 0, 0, 0, 0),
    ]
}

/// `return bpf_redirect(ifindex, 0);`
pub fn redirect_program(ifindex: u32) -> Vec<u64> {
    vec![
        insn(MOV64_IMM, 1, 0, 0, ifindex as i32),
        insn(MOV64_IMM, 2, 0, 0, 0),
        insn(CALL, 0, 0, 0, BPF_FUNC_REDIRECT),
        insn(EXIT, 0, 0, 0, 0),
    ]
}

/// A BPF program or link; closing it unloads or detaches.
pub struct BpfFd(OwnedFd);

impl BpfFd {
    /// Loads a TC (`sched_cls`) program.
    pub fn load_tc(name: &str, insns: &[u64]) -> io::Result<Self> {
        match Self::load(name, insns, None) {
            Ok(fd) => Ok(fd),
            Err(e) => {
                // Again with the verifier's log, for the error message.
                let mut log = vec![0u8; 1 << 16];
                match Self::load(name, insns, Some(&mut log)) {
                    Ok(fd) => Ok(fd),
                    Err(_) => {
                        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                        Err(io::Error::new(
                            e.kind(),
                            format!("{e}: {}", String::from_utf8_lossy(&log[..end]).trim()),
                        ))
                    }
                }
            }
        }
    }

    fn load(name: &str, insns: &[u64], log: Option<&mut Vec<u8>>) -> io::Result<Self> {
        let license = b"GPL\0";
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_SCHED_CLS,
            insn_cnt: u32::try_from(insns.len()).map_err(io::Error::other)?,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..ProgLoadAttr::default()
        };
        for (slot, byte) in attr.prog_name.iter_mut().zip(name.bytes().take(15)) {
            *slot = byte;
        }
        if let Some(log) = log {
            attr.log_level = 1;
            attr.log_size = u32::try_from(log.len()).map_err(io::Error::other)?;
            attr.log_buf = log.as_mut_ptr() as u64;
        }
        // SAFETY: `attr` is a valid bpf_attr for BPF_PROG_LOAD; the
        // instructions, license and log buffer it points at outlive the
        // call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                &raw mut attr,
                size_of::<ProgLoadAttr>(),
            )
        };
        Self::from_result(fd)
    }

    /// Attaches this program to TC ingress of `ifindex` (in the calling
    /// thread's namespace) as a TCX link; closing the link detaches it.
    pub fn attach_tcx_ingress(&self, ifindex: u32) -> io::Result<Self> {
        let mut attr = LinkCreateAttr {
            prog_fd: u32::try_from(self.0.as_raw_fd()).map_err(io::Error::other)?,
            target_ifindex: ifindex,
            attach_type: BPF_TCX_INGRESS,
            ..LinkCreateAttr::default()
        };
        // SAFETY: `attr` is a valid bpf_attr for BPF_LINK_CREATE.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_LINK_CREATE,
                &raw mut attr,
                size_of::<LinkCreateAttr>(),
            )
        };
        Self::from_result(fd)
    }

    fn from_result(fd: libc::c_long) -> io::Result<Self> {
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::c_int::try_from(fd).map_err(io::Error::other)?;
        // SAFETY: the kernel returned a fresh descriptor owned by nothing
        // else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// Sends SIGTERM to process `pid`.
pub fn terminate(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: plain syscall on a PID this program started and has not
    // reaped yet (so it cannot have been reused).
    if unsafe { libc::kill(pid, libc::SIGTERM) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
