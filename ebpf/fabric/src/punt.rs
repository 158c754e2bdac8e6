//! Packet-in: a punted frame goes to the agent through `PACKET_IN`, a perf
//! event array, with a `PacketInMeta` in front; the data plane then drops
//! it.
//!
//! `bpf_perf_event_output` on a TC program copies `ctxlen` bytes of the skb
//! after the given data when the length is passed in the
//! `BPF_F_CTXLEN_MASK` bits of the flags (the upper 32 bits: 20 bits of
//! length). No copy through the stack, no size bound to prove.

use aya_ebpf::{
    bindings::BPF_F_CURRENT_CPU, helpers::bpf_perf_event_output, macros::map, maps::PerfEventArray,
    programs::TcContext, EbpfContext as _,
};
use solyx_ebpf_common::packet_io::{PacketInMeta, PUNT_REASON_ACL};

/// `PACKET_IN`: CPU → perf ring. Not pinned; the agent opens the rings.
#[map(name = "PACKET_IN")]
static PACKET_IN: PerfEventArray<PacketInMeta> = PerfEventArray::new(0);

/// Largest frame length the ctxlen bits carry (20 bits).
const CTXLEN_MAX: u32 = (1 << 20) - 1;

/// Sends the frame to the agent. False when it could not be queued (no
/// reader on this CPU's ring, or the ring is full).
#[inline(always)]
pub fn punt(ctx: &TcContext, port: u32, len: u32) -> bool {
    let frame_len = if len > CTXLEN_MAX { CTXLEN_MAX } else { len };
    let mut meta = PacketInMeta {
        ingress_port: port as u16,
        reason: PUNT_REASON_ACL,
        frame_len,
    };
    let flags = (u64::from(frame_len) << 32) | BPF_F_CURRENT_CPU;
    // SAFETY: helper call on this program's skb with the address of a map
    // definition and of a stack value of the given size.
    let rc = unsafe {
        bpf_perf_event_output(
            ctx.as_ptr(),
            (&raw const PACKET_IN).cast_mut().cast(),
            flags,
            (&raw mut meta).cast(),
            size_of::<PacketInMeta>() as u64,
        )
    };
    rc == 0
}
