//! One TCP segment per packet on host ports.
//!
//! Linux TCP hands the device stack GSO packets (one skb of many
//! segments, cut up later, after TC egress) whenever its congestion window
//! allows, even on devices without segmentation offload. `host_egress`
//! cannot push a label onto such a packet, so it would leave on the
//! kernel's unlabelled route instead of the path the controller chose. The
//! host agent therefore sets its ports' `gso_max_segs` to 1 (`ip link set
//! dev IF gso_max_segs 1`): TCP then builds one segment per skb and every
//! segment takes its labelled path, at the cost of the CPU that
//! segmentation offload saves.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Sets `gso_max_segs` of the interface `ifindex` (in the calling
/// thread's network namespace) to `segments`.
///
/// # Errors
/// The netlink socket could not be opened, or the kernel refused the
/// change (older kernels take `gso_max_segs` only when a link is
/// created); the error carries the kernel's answer.
pub fn set_gso_max_segs(ifindex: u32, segments: u32) -> io::Result<()> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut link = LinkMessage::default();
    link.header.index = ifindex;
    link.attributes.push(LinkAttribute::GsoMaxSegs(segments));
    let mut packet = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::SetLink(link)),
    );
    packet.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    packet.header.sequence_number = 1;
    packet.finalize();
    let mut out = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut out);
    socket.send(&out, 0)?;

    let mut buffer = vec![0u8; 8192];
    let size = socket.recv(&mut &mut buffer[..], 0)?;
    let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[..size])
        .map_err(|e| io::Error::other(format!("rtnetlink answer: {e}")))?;
    match answer.payload {
        NetlinkPayload::Error(e) => match e.code {
            None => Ok(()),
            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
        },
        other => Err(io::Error::other(format!(
            "rtnetlink: unexpected answer to RTM_SETLINK: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_interface_is_an_error_not_a_panic() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: setting a link attribute needs root");
            return;
        }
        // Index 0 names no interface.
        assert!(set_gso_max_segs(0, 1).is_err());
    }
}
