//! Egress rewrite: the source MAC of every packet leaving a port (the P4
//! table `FabricEgress.egress_rewrite`), applied by the ingress program just
//! before it redirects a packet.

/// Name of the egress rewrite table: P4 port number (`u32` index) →
/// [`EgressRewrite`].
///
/// A `BPF_MAP_TYPE_ARRAY` with [`crate::MAX_PORTS`] slots. Written by the
/// agent (`set_src_mac(smac)` entries set the flag; deleting an entry
/// clears the slot, which is the default `keep_src_mac()`), read by the
/// program.
pub const MAP_EGRESS_REWRITE: &str = "EGRESS_REWRITE";
/// Name of the per-entry counters of `EGRESS_REWRITE`: port (`u32` index)
/// → [`crate::Counter`].
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` with [`crate::MAX_PORTS`] slots (the P4
/// direct counter `FabricEgress.egress_rewrite_counter`); counted when an
/// entry rewrites a packet, zeroed by the agent when it installs the entry.
pub const MAP_EGRESS_REWRITE_HITS: &str = "EGRESS_REWRITE_HITS";

/// `EgressRewrite::flags`: write `src_mac` as the Ethernet source.
pub const EGRESS_FLAG_SET_SRC_MAC: u16 = 1 << 0;

/// Value of `EGRESS_REWRITE`: what happens to the Ethernet source of a
/// packet leaving the port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EgressRewrite {
    /// `EGRESS_FLAG_*` bits; 0 keeps the source MAC (no entry).
    pub flags: u16,
    /// The port's MAC.
    pub src_mac: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<EgressRewrite>() == 8);

#[cfg(feature = "user")]
#[allow(unsafe_code)]
mod pod {
    //! `aya::Pod` for the egress rewrite value.

    use super::EgressRewrite;

    // SAFETY: `#[repr(C)]`, `Copy`, an integer and a byte array (every bit
    // pattern valid), no implicit padding (8 = 2+6, pinned above).
    unsafe impl aya::Pod for EgressRewrite {}
}
