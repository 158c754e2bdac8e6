//! The ingress pipeline after the port counter, in the order of the P4
//! `FabricIngress` control (`p4/solyx_fabric/include/control/ingress.p4`):
//!
//! 1. parse; a malformed packet (cut short, IPv4 IHL or TCP data offset
//!    below 5) or one with a wrong IPv4 header checksum is dropped;
//! 2. the ACL punts (packet-in), drops, or permits;
//! 3. forwarding: MPLS packets by their label (`mpls_stage`), IPv4 packets
//!    by longest prefix (`route`); anything else is dropped as an
//!    unsupported EtherType.
//!
//! The egress MAC rewrite and the redirect follow in `fabric_ingress`.
//! Packet-outs do not pass here: the agent sends them straight out of the
//! egress interface.

use aya_ebpf::programs::TcContext;
use solyx_ebpf_common::acl::{ACL_ACTION_DROP, ACL_ACTION_PUNT};
use solyx_ebpf_common::{DropReason, ETHERTYPE_MPLS};

use crate::parse::{parse, ParseError};
use crate::{acl, mpls_stage, punt, route, Verdict};

/// Runs the pipeline on a packet received on fabric port `port`.
#[inline(always)]
pub fn run(ctx: &TcContext, port: u32, len: u32) -> Verdict {
    let headers = match parse(ctx, len) {
        Ok(headers) => headers,
        Err(ParseError::Malformed) => return Verdict::Drop(DropReason::Malformed),
        Err(ParseError::Checksum) => return Verdict::Drop(DropReason::Ipv4Checksum),
    };

    let action = acl::apply(ctx, port, &headers, len);
    if action == ACL_ACTION_DROP {
        return Verdict::Drop(DropReason::AclDeny);
    }
    if action == ACL_ACTION_PUNT {
        return if punt::punt(ctx, port, len) {
            Verdict::Punted
        } else {
            Verdict::Drop(DropReason::PuntLost)
        };
    }

    if headers.eth_type == ETHERTYPE_MPLS {
        return mpls_stage(ctx, len);
    }
    match &headers.ipv4 {
        Some(ip) => route::route(ctx, ip, len),
        None => Verdict::Drop(DropReason::UnsupportedEthertype),
    }
}
