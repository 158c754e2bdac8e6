//! Packet-in: how the program hands a punted packet to the agent.
//!
//! An ACL `punt_to_cpu` sends the frame as it arrived, with a
//! [`PacketInMeta`] in front, through `PACKET_IN`, a perf event array:
//! `bpf_perf_event_output` on the skb with the frame length in the
//! `BPF_F_CTXLEN_MASK` bits copies the packet bytes after the metadata, on
//! the current CPU's ring. The data plane drops the packet; the agent reads
//! the rings and sends each frame to the controller as a P4Runtime
//! packet-in whose `ingress_port` is `PacketInMeta::ingress_port`.

/// Name of the packet-in perf event array: CPU index → perf ring.
///
/// A `BPF_MAP_TYPE_PERF_EVENT_ARRAY` sized by the loader to the number of
/// CPUs; not pinned (a new agent opens its own rings). Written by the
/// program, read by the agent.
pub const MAP_PACKET_IN: &str = "PACKET_IN";

/// What precedes every punted frame in a `PACKET_IN` sample. The sample is
/// padded by the kernel; the frame is the `frame_len` bytes after this
/// header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PacketInMeta {
    /// P4 port the frame arrived on.
    pub ingress_port: u16,
    /// Why it was punted: [`PUNT_REASON_ACL`].
    pub reason: u16,
    /// Length of the frame that follows, in bytes.
    pub frame_len: u32,
}

/// `PacketInMeta::reason`: an ACL entry with `punt_to_cpu` matched (or
/// the ACL default action is `punt_to_cpu`).
pub const PUNT_REASON_ACL: u16 = 1;

/// The P4 `CPU_PORT`: packet-outs name it to reach the controller itself,
/// and no front-panel port may use it.
pub const CPU_PORT: u16 = 255;

const _: () = assert!(core::mem::size_of::<PacketInMeta>() == 8);
