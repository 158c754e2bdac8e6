//! Packets for the switch tests: raw `AF_PACKET` sockets, UDP/IPv4 frame
//! building (optionally labelled), interface statistics.

use std::net::Ipv4Addr;
use std::process::Command;

#[allow(unused_imports)] // not every test file captures frames
pub use raw::PacketSocket;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of MPLS unicast.
pub const ETHERTYPE_MPLS: u16 = 0x8847;

/// A UDP-in-IPv4 frame.
pub struct UdpFrame<'a> {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// An MPLS label (label, TTL) after the Ethernet header, if any.
    pub label: Option<(u32, u8)>,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub ttl: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl UdpFrame<'_> {
    /// The frame: Ethernet, the label, IPv4 (correct header checksum), UDP
    /// (checksum 0: none), payload.
    pub fn build(&self) -> Vec<u8> {
        let ethertype = if self.label.is_some() {
            ETHERTYPE_MPLS
        } else {
            ETHERTYPE_IPV4
        };
        let mut frame = Vec::new();
        frame.extend_from_slice(&self.dst_mac);
        frame.extend_from_slice(&self.src_mac);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        if let Some((label, ttl)) = self.label {
            let lse = (label << 12) | (1 << 8) | u32::from(ttl);
            frame.extend_from_slice(&lse.to_be_bytes());
        }
        let udp_len = u16::try_from(8 + self.payload.len()).expect("payload fits");
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = self.ttl;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&self.src_ip.octets());
        ip[16..20].copy_from_slice(&self.dst_ip.octets());
        let checksum = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&self.src_port.to_be_bytes());
        frame.extend_from_slice(&self.dst_port.to_be_bytes());
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(self.payload);
        frame
    }
}

/// The RFC 1071 checksum of `header` (0 when the header's own checksum is
/// right).
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|p| u32::from(u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A frame's EtherType.
pub fn ethertype(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

/// Packets and bytes an interface in namespace `ns` sent and received
/// (`ip -s -j link`): (rx packets, tx packets).
pub fn link_packets(ns: &str, dev: &str) -> (u64, u64) {
    let out = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", "dev", dev])
        .output()
        .expect("ip -s link");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip json");
    let stats = &v[0]["stats64"];
    (
        stats["rx"]["packets"].as_u64().expect("rx packets"),
        stats["tx"]["packets"].as_u64().expect("tx packets"),
    )
}

#[allow(unsafe_code)]
mod raw {
    //! A raw `AF_PACKET` socket bound to one interface (libc: no safe
    //! `sockaddr_ll` exists).

    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    /// `PACKET_OUTGOING`: a frame this host sent.
    const PACKET_OUTGOING: u8 = 4;

    /// A raw packet socket bound to one interface, all EtherTypes.
    pub struct PacketSocket {
        fd: OwnedFd,
        ifindex: i32,
    }

    impl PacketSocket {
        /// Opens a socket bound to `ifindex` in the calling thread's
        /// namespace.
        pub fn bind(ifindex: u32) -> io::Result<Self> {
            let protocol = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain syscall; the result is checked before use.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh descriptor owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let socket = Self {
                fd,
                ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
            };
            let addr = socket.address(protocol);
            // SAFETY: a valid sockaddr_ll of the given size.
            let rc = unsafe {
                libc::bind(
                    socket.fd.as_raw_fd(),
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(socket)
        }

        fn address(&self, protocol: u16) -> libc::sockaddr_ll {
            // SAFETY: plain old data; all zeroes is valid.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = protocol;
            addr.sll_ifindex = self.ifindex;
            addr
        }

        /// Sends one frame.
        pub fn send(&self, frame: &[u8]) -> io::Result<()> {
            let mut addr = self.address(u16::from_be_bytes([frame[12], frame[13]]).to_be());
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&frame[..6]);
            // SAFETY: valid buffer and sockaddr_ll of the given sizes.
            let sent = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Every frame received (not sent) until `timeout` passes without
        /// one.
        pub fn receive_all(&self, timeout: Duration) -> io::Result<Vec<Vec<u8>>> {
            let tv = libc::timeval {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
            };
            // SAFETY: a valid timeval of the given size.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const tv).cast(),
                    size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut frames = Vec::new();
            loop {
                let mut buf = vec![0u8; 65536];
                // SAFETY: plain old data; all zeroes is valid.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut from_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: buffers valid for the lengths given.
                let n = unsafe {
                    libc::recvfrom(
                        self.fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        (&raw mut from).cast(),
                        &raw mut from_len,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) {
                        return Ok(frames);
                    }
                    return Err(e);
                }
                if from.sll_pkttype == PACKET_OUTGOING {
                    continue;
                }
                buf.truncate(n as usize);
                frames.push(buf);
            }
        }
    }
}
