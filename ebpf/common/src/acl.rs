//! The ingress ACL: a priority-sorted rule list that the program scans,
//! replaced as a whole on every change.
//!
//! eBPF has no TCAM. The P4 table `FabricIngress.acl` (ternary keys, entry
//! priorities, 512 entries) becomes an [`AclTable`]: its rules sorted by
//! descending priority, each a value/mask pair over the 32-byte
//! [`AclKey`] layout. The program builds the packet's key once, then scans
//! the rules in order (`bpf_loop`) and takes the first whose masked key
//! equals its value: with priorities sorted, the first match is the
//! highest-priority match, so overlapping rules behave as in P4.
//!
//! The table is the single element of an array map that is itself the only
//! element of `ACL_TABLE`, an array of maps. The agent fills a fresh inner
//! map and swaps it in with one `bpf_map_update_elem` on `ACL_TABLE`; the
//! kernel waits (`synchronize_rcu`) until no program still reads the old
//! one, so a packet sees either the whole old rule list or the whole new
//! one, never a mix.

/// Name of the ACL array of maps: index 0 → an array map with one element,
/// an [`AclTable`].
///
/// A `BPF_MAP_TYPE_ARRAY_OF_MAPS` with one slot (BTF-defined, since the
/// inner map's layout is declared in BTF). Written by the agent (P4Runtime
/// table `FabricIngress.acl`), read by the program.
pub const MAP_ACL_TABLE: &str = "ACL_TABLE";
/// Name of the per-rule hit counters: [`AclRule::hit_slot`] (`u32` index)
/// → [`crate::Counter`].
///
/// A `BPF_MAP_TYPE_PERCPU_ARRAY` with [`ACL_HIT_SLOTS`] slots (the P4
/// direct counter `FabricIngress.acl_counter`); slot [`ACL_DEFAULT_SLOT`]
/// counts packets that matched no rule (the default entry).
pub const MAP_ACL_HITS: &str = "ACL_HITS";

/// Rules an [`AclTable`] holds: the P4 `ACL_TABLE_SIZE`. The program scans
/// only the `count` rules installed, so a packet costs one comparison of
/// four 64-bit words per installed rule up to the first match.
pub const ACL_CAPACITY: u32 = 512;
/// The hit slot of the default entry (a packet no rule matched).
pub const ACL_DEFAULT_SLOT: u32 = ACL_CAPACITY;
/// Slots of `ACL_HITS`: one per rule plus the default entry's.
pub const ACL_HIT_SLOTS: u32 = ACL_CAPACITY + 1;

/// `AclRule::action` (and `AclTable::default_action`): let forwarding
/// decide (`permit`).
pub const ACL_ACTION_PERMIT: u32 = 1;
/// Drop the packet (`drop`, `DropReason::AclDeny`).
pub const ACL_ACTION_DROP: u32 = 2;
/// Send the packet to the controller instead of forwarding it
/// (`punt_to_cpu`).
pub const ACL_ACTION_PUNT: u32 = 3;

/// Byte offsets of the P4 match fields in the 32-byte ACL key. Every field
/// is in network byte order, right-aligned in its bytes (the 9-bit ingress
/// port takes two bytes), so the agent copies P4Runtime's canonical bytes
/// into place and the program copies packet bytes.
pub mod key {
    /// `ingress_port` (9 bits, 2 bytes).
    pub const INGRESS_PORT: usize = 0;
    /// `eth_type` (2 bytes).
    pub const ETH_TYPE: usize = 2;
    /// `eth_dst` (6 bytes).
    pub const ETH_DST: usize = 4;
    /// `eth_src` (6 bytes).
    pub const ETH_SRC: usize = 10;
    /// `ipv4_src` (4 bytes); zero when the packet carries no IPv4 header.
    pub const IPV4_SRC: usize = 16;
    /// `ipv4_dst` (4 bytes); zero without IPv4.
    pub const IPV4_DST: usize = 20;
    /// `l4_src_port` (2 bytes); zero unless TCP or UDP.
    pub const L4_SRC: usize = 24;
    /// `l4_dst_port` (2 bytes); zero unless TCP or UDP.
    pub const L4_DST: usize = 26;
    /// `ip_proto` (1 byte); zero without IPv4.
    pub const IP_PROTO: usize = 28;
    /// Bytes 29–31 are zero in keys, values and masks.
    pub const LEN: usize = 32;
}

/// A packet's ACL key, or a rule's value or mask: 32 bytes laid out as
/// [`key`] says, compared as four 64-bit words.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AclKey {
    /// The bytes.
    pub bytes: [u8; key::LEN],
}

impl AclKey {
    /// The key as four native-endian words (the program's comparison unit;
    /// the agent stores values and masks the same way, so byte order does
    /// not matter as long as both sides use this).
    #[inline(always)]
    #[must_use]
    pub fn words(&self) -> [u64; 4] {
        let b = &self.bytes;
        let word = |i: usize| {
            u64::from_ne_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        [word(0), word(8), word(16), word(24)]
    }
}

/// One ACL rule: a packet matches when `key & mask == value` word by word
/// (`value` is stored already masked).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AclRule {
    /// The rule's value, masked, as [`AclKey::words`].
    pub value: [u64; 4],
    /// The rule's mask, as [`AclKey::words`].
    pub mask: [u64; 4],
    /// `ACL_ACTION_*`.
    pub action: u32,
    /// Index of this rule's counter in `ACL_HITS` (`0..ACL_CAPACITY`); kept
    /// by the agent across swaps, so counters follow their entry.
    pub hit_slot: u32,
}

impl AclRule {
    /// Whether `key` (as [`AclKey::words`]) matches this rule.
    #[inline(always)]
    #[must_use]
    pub fn matches(&self, key: &[u64; 4]) -> bool {
        key[0] & self.mask[0] == self.value[0]
            && key[1] & self.mask[1] == self.value[1]
            && key[2] & self.mask[2] == self.value[2]
            && key[3] & self.mask[3] == self.value[3]
    }
}

/// The element of the inner ACL map: the rule list in priority order and
/// the default action.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AclTable {
    /// Rules in use, `0..=ACL_CAPACITY`; the program scans `rules[..count]`.
    pub count: u32,
    /// What a packet that matches no rule gets (`ACL_ACTION_*`; the P4
    /// default is `permit`).
    pub default_action: u32,
    /// The rules, highest priority first; entries from `count` on are zero.
    pub rules: [AclRule; ACL_CAPACITY as usize],
}

impl AclTable {
    /// An empty table whose default action permits.
    #[must_use]
    pub const fn empty() -> Self {
        Self {
            count: 0,
            default_action: ACL_ACTION_PERMIT,
            rules: [AclRule {
                value: [0; 4],
                mask: [0; 4],
                action: 0,
                hit_slot: 0,
            }; ACL_CAPACITY as usize],
        }
    }
}

// Layout pins: a change here changes the inner map's value size, which the
// agent checks before reusing a pinned `ACL_TABLE`.
const _: () = assert!(core::mem::size_of::<AclKey>() == key::LEN);
const _: () = assert!(core::mem::size_of::<AclRule>() == 72);
const _: () = assert!(core::mem::size_of::<AclTable>() == 8 + 72 * ACL_CAPACITY as usize);
const _: () = assert!(key::IP_PROTO < key::LEN);

#[cfg(feature = "user")]
#[allow(unsafe_code)]
mod pod {
    //! `aya::Pod` for the ACL map types.

    use super::{AclRule, AclTable};

    // SAFETY: `#[repr(C)]`, `Copy`, only integers and integer arrays (every
    // bit pattern valid), no implicit padding (sizes pinned above: 72 =
    // 32+32+4+4 with 8-byte alignment; the table's 8-byte header keeps the
    // rules 8-byte aligned).
    unsafe impl aya::Pod for AclRule {}
    // SAFETY: see above.
    unsafe impl aya::Pod for AclTable {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_words_match() {
        let mut k = AclKey::default();
        k.bytes[key::ETH_TYPE..key::ETH_TYPE + 2].copy_from_slice(&0x0800u16.to_be_bytes());
        k.bytes[key::IP_PROTO] = 17;
        let mut mask = AclKey::default();
        mask.bytes[key::ETH_TYPE..key::ETH_TYPE + 2].copy_from_slice(&[0xff, 0xff]);
        let (kw, mw) = (k.words(), mask.words());
        let rule = AclRule {
            value: [kw[0] & mw[0], kw[1] & mw[1], kw[2] & mw[2], kw[3] & mw[3]],
            mask: mw,
            action: ACL_ACTION_DROP,
            hit_slot: 0,
        };
        assert!(rule.matches(&k.words()));
        let mut other = k;
        other.bytes[key::IP_PROTO] = 6;
        assert!(rule.matches(&other.words()), "protocol is not masked in");
        other.bytes[key::ETH_TYPE + 1] = 0x06;
        assert!(!rule.matches(&other.words()));
    }
}
