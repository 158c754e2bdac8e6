//! Egress rewrite (P4 table `FabricEgress.egress_rewrite`): the source MAC
//! of the egress port, written just before the packet is redirected, and
//! the entry's hit counter.
//!
//! The P4 program applies the table in egress; the ingress program applies
//! it right before `bpf_redirect`, which is equivalent for forwarded
//! packets (packet-outs and punts never get here, as in P4).

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
    programs::TcContext,
};
use solyx_ebpf_common::egress::{EgressRewrite, EGRESS_FLAG_SET_SRC_MAC};
use solyx_ebpf_common::{Counter, MAX_PORTS};

use crate::{count, SRC_MAC_OFFSET};

/// `EGRESS_REWRITE`: port → source MAC. Written by the agent.
#[map(name = "EGRESS_REWRITE")]
static EGRESS_REWRITE: Array<EgressRewrite> = Array::with_max_entries(MAX_PORTS, 0);

/// `EGRESS_REWRITE_HITS`: port → packets/bytes rewritten, per CPU.
#[map(name = "EGRESS_REWRITE_HITS")]
static EGRESS_REWRITE_HITS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(MAX_PORTS, 0);

/// Writes the source MAC of `port`, if it has an entry. False when the
/// store failed.
#[inline(always)]
pub fn rewrite(ctx: &TcContext, port: u16) -> bool {
    let port = u32::from(port);
    // An 8-byte value copied at once; the agent writes it whole.
    let Some(entry) = EGRESS_REWRITE.get(port).copied() else {
        return true;
    };
    if entry.flags & EGRESS_FLAG_SET_SRC_MAC == 0 {
        return true;
    }
    // The MACs are outside a CHECKSUM_COMPLETE skb's csum.
    if ctx.store(SRC_MAC_OFFSET, &entry.src_mac, 0).is_err() {
        return false;
    }
    count(EGRESS_REWRITE_HITS.get_ptr_mut(port), ctx.len());
    true
}
