//! The ingress ACL (P4 table `FabricIngress.acl`): build the packet's key,
//! scan the priority-sorted rules for the first match, count the hit.
//!
//! The rule list lives in the inner map of `ACL_TABLE` (see
//! `solyx_ebpf_common::acl`); the agent swaps the whole inner map on every
//! change, so one packet sees one consistent rule list.
//!
//! Verifier notes: the scan is a `bpf_loop` whose callback is verified
//! once, not once per rule; its context is a struct on this program's
//! stack holding the key, the table pointer (a map value pointer the
//! verifier keeps track of through the stack slot) and the result. The
//! callback bounds the rule index by `ACL_CAPACITY` itself before indexing.

use core::ffi::c_void;

use aya_ebpf::{
    btf_maps::{Array, ArrayOfMaps},
    helpers::bpf_loop,
    macros::{btf_map, map},
    maps::PerCpuArray,
    programs::TcContext,
};
use solyx_ebpf_common::acl::{
    key, AclKey, AclTable, ACL_ACTION_PERMIT, ACL_CAPACITY, ACL_DEFAULT_SLOT, ACL_HIT_SLOTS,
};
use solyx_ebpf_common::Counter;

use crate::parse::Headers;
use crate::{bytes_at, count};

/// `ACL_TABLE`: slot 0 → the inner map holding the [`AclTable`]. Written
/// (swapped) by the agent.
#[btf_map(name = "ACL_TABLE")]
static ACL_TABLE: ArrayOfMaps<Array<AclTable, 1>, 1> = ArrayOfMaps::new();

/// `ACL_HITS`: hit slot → packets/bytes, per CPU; the last slot is the
/// default entry's.
#[map(name = "ACL_HITS")]
static ACL_HITS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(ACL_HIT_SLOTS, 0);

/// No rule matched.
const NO_MATCH: u32 = u32::MAX;

/// The `bpf_loop` context of the scan.
#[repr(C)]
struct Scan {
    /// The packet's key, as `AclKey::words`.
    key: [u64; 4],
    /// The rule table (a map value).
    table: *const AclTable,
    /// Index of the first matching rule, or `NO_MATCH`.
    found: u32,
    /// Zero.
    _pad: u32,
}

/// The ACL's decision for the packet: an `ACL_ACTION_*` value.
// TODO-perf: a packet that matches no rule is compared with every
// installed rule (up to 512 four-word comparisons per packet); a large ACL
// slows every packet. Splitting rules by mask (tuple space search, one hash
// lookup per distinct mask) would make the cost depend on the number of
// masks instead.
#[inline(always)]
pub fn apply(ctx: &TcContext, port: u32, headers: &Headers, len: u32) -> u32 {
    // SAFETY: the table is only read; the agent never writes an inner map
    // that is in use (it fills a new one and swaps it in).
    let Some(table) = ACL_TABLE.get_value(0, &0) else {
        // No table installed yet: the P4 default, permit, uncounted.
        return ACL_ACTION_PERMIT;
    };
    let count_rules = table.count;
    let mut found = NO_MATCH;
    if count_rules > 0 {
        let mut scan = Scan {
            key: build_key(ctx, port, headers).words(),
            table: table as *const AclTable,
            found: NO_MATCH,
            _pad: 0,
        };
        let loops = if count_rules < ACL_CAPACITY {
            count_rules
        } else {
            ACL_CAPACITY
        };
        // SAFETY: helper call; `scan_step` has the callback signature and
        // `scan` outlives the call.
        unsafe {
            bpf_loop(loops, scan_step as *mut c_void, (&raw mut scan).cast(), 0);
        }
        found = scan.found;
    }
    if found < ACL_CAPACITY {
        if let Some(rule) = table.rules.get(found as usize) {
            count(ACL_HITS.get_ptr_mut(rule.hit_slot), len);
            return rule.action;
        }
    }
    count(ACL_HITS.get_ptr_mut(ACL_DEFAULT_SLOT), len);
    table.default_action
}

/// One step of the scan: stops at the first rule that matches.
///
/// # Safety
///
/// `ctx` must point to a live `Scan` whose `table` is a valid table (the
/// kernel passes back the pointer `apply` gave `bpf_loop`).
unsafe extern "C" fn scan_step(index: u64, ctx: *mut c_void) -> i64 {
    let scan = ctx.cast::<Scan>();
    if index >= u64::from(ACL_CAPACITY) {
        return 1;
    }
    // SAFETY: see the function's contract; the index is below the array
    // length, checked above and again by `get`.
    let rule = unsafe { (*(*scan).table).rules.get(index as usize) };
    let Some(rule) = rule else { return 1 };
    // SAFETY: `scan` is valid, see above.
    if rule.matches(unsafe { &(*scan).key }) {
        // SAFETY: `scan` is valid, see above.
        unsafe { (*scan).found = index as u32 };
        return 1;
    }
    0
}

/// The packet's ACL key: ingress port, Ethernet addresses and type, IPv4
/// addresses and protocol, L4 ports (zeros where the packet has no such
/// header), laid out as `solyx_ebpf_common::acl::key` says.
#[inline(always)]
fn build_key(ctx: &TcContext, port: u32, headers: &Headers) -> AclKey {
    let mut k = AclKey::default();
    let b = &mut k.bytes;
    let port = (port as u16).to_be_bytes();
    b[key::INGRESS_PORT] = port[0];
    b[key::INGRESS_PORT + 1] = port[1];
    let eth_type = headers.eth_type.to_be_bytes();
    b[key::ETH_TYPE] = eth_type[0];
    b[key::ETH_TYPE + 1] = eth_type[1];
    if let Some(macs) = bytes_at::<12>(ctx, 0) {
        // SAFETY: `bytes_at` checked that the 12 bytes are inside the packet.
        let m = unsafe { *macs };
        b[key::ETH_DST..key::ETH_DST + 6].copy_from_slice(&m[0..6]);
        b[key::ETH_SRC..key::ETH_SRC + 6].copy_from_slice(&m[6..12]);
    }
    if let Some(ip) = &headers.ipv4 {
        b[key::IPV4_SRC..key::IPV4_SRC + 4].copy_from_slice(&ip.src);
        b[key::IPV4_DST..key::IPV4_DST + 4].copy_from_slice(&ip.dst);
        b[key::IP_PROTO] = ip.proto;
        let s = ip.l4_src.to_be_bytes();
        let d = ip.l4_dst.to_be_bytes();
        b[key::L4_SRC] = s[0];
        b[key::L4_SRC + 1] = s[1];
        b[key::L4_DST] = d[0];
        b[key::L4_DST + 1] = d[1];
    }
    k
}
