//! `host_ingress`: label pop and INT sink.
//!
//! The rule for INT on a sink port (P4 `HostIngress.int_sink_port`), in
//! this order, each outcome counted in `HOST_EVENTS`:
//!
//! 1. a fragment or a GSO skb: delivered unchanged (`unsupported`);
//! 2. fewer than 16 bytes of L4 payload (no room for shim + INT-MD
//!    header): dropped (`truncated`);
//! 3. shim type not INT-MD (1) or version not 2: delivered unchanged
//!    (`not_int_md`): it is not INT;
//! 4. shim length below the INT-MD header (3 words) or above 3 + 96
//!    words: dropped (`length_invalid`);
//! 5. the shim reaches past the L4 payload or the packet: dropped
//!    (`truncated`);
//! 6. a stack that is not a whole number of hops (`hop_ml` words each;
//!    `hop_ml` 0 with a non-empty stack): dropped (`length_invalid`);
//! 7. more than `SINK_MAX_HOPS` hops: dropped (`hop_count_exceeded`);
//! 8. otherwise the frame (up to `SINK_SNAP_LEN` bytes) goes to the agent
//!    (`int_exported`; `export_lost` when the ring is full) and the shim,
//!    header and stack are removed (a failed helper: `strip_failed`,
//!    dropped), or the packet ends here when the port consumes
//!    (`probe_consumed`).
//!
//! Dropping malformed INT is deliberate: delivering it would hand the
//! application INT bytes as its payload.

use aya_ebpf::{
    bindings::{
        BPF_F_CURRENT_CPU, BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, BPF_F_RECOMPUTE_CSUM, TC_ACT_OK,
        TC_ACT_SHOT,
    },
    helpers::{
        bpf_csum_diff, bpf_ktime_get_tai_ns, bpf_perf_event_output, bpf_skb_change_tail,
        bpf_skb_load_bytes, bpf_skb_store_bytes,
    },
    macros::{classifier, map},
    maps::{HashMap, PerCpuArray, PerfEventArray},
    programs::TcContext,
    EbpfContext as _,
};
use solyx_ebpf_common::host::{
    HostEvent, SinkMeta, SinkPort, INT_SINK_PORT_CAPACITY, SINK_FLAG_CONSUME, SINK_MAX_HOPS,
    SINK_SNAP_LEN,
};
use solyx_ebpf_common::int::{
    INT_MAX_STACK_WORDS, INT_MD_HEADER_WORDS, INT_SHIM_LEN, INT_TYPE_MD, INT_VERSION,
};
use solyx_ebpf_common::{ETHERTYPE_IPV4, ETHERTYPE_MPLS};

use crate::{
    bounded_len, count_event, ETH_HLEN, HOST_PORTS, IP_PROTO_TCP, IP_PROTO_UDP, MPLS_HLEN,
};

/// Shim + INT-MD header.
const INT_HEADERS_LEN: u32 = 16;
/// The largest INT block: shim + (3 + 96) words.
const INT_MAX_LEN: u32 =
    INT_SHIM_LEN as u32 + 4 * (INT_MD_HEADER_WORDS + INT_MAX_STACK_WORDS) as u32;
/// Scratch for moves (above the fabric's 9000-byte MTU).
const SCRATCH_SIZE: usize = 9216;

/// `INT_SINK_PORTS`: L4 destination ports whose packets carry INT.
#[map(name = "INT_SINK_PORTS")]
static INT_SINK_PORTS: HashMap<u32, SinkPort> =
    HashMap::with_max_entries(INT_SINK_PORT_CAPACITY, 0);

/// `INT_SINK`: the frames handed to the agent.
#[map(name = "INT_SINK")]
static INT_SINK: PerfEventArray<SinkMeta> = PerfEventArray::new(0);

/// Scratch for the pop and the strip, one per CPU; not pinned.
#[map(name = "HOST_SCRATCH")]
static HOST_SCRATCH: PerCpuArray<[u8; SCRATCH_SIZE]> = PerCpuArray::with_max_entries(1, 0);

/// The TC ingress entry point.
#[classifier]
pub fn host_ingress(ctx: TcContext) -> i32 {
    // SAFETY: a context field read of the `__sk_buff` the kernel passed in.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: the value is copied at once.
    let Some(port) = (unsafe { HOST_PORTS.get(ifindex) }).map(|p| p.port) else {
        return TC_ACT_OK;
    };
    let Ok(ethertype) = ctx.load::<[u8; 2]>(12) else {
        return TC_ACT_OK;
    };
    let mut ethertype = u16::from_be_bytes(ethertype);
    if ethertype == ETHERTYPE_MPLS {
        match ctx.load::<[u8; 5]>(ETH_HLEN as usize) {
            // Bottom of stack with IPv4 under it.
            Ok(b) if b[2] & 1 == 1 && b[4] >> 4 == 4 => {}
            _ => {
                count_event(HostEvent::LabelUnsupported);
                return TC_ACT_SHOT;
            }
        }
        if !pop_label(&ctx) {
            count_event(HostEvent::StripFailed);
            return TC_ACT_SHOT;
        }
        count_event(HostEvent::LabelPopped);
        ethertype = ETHERTYPE_IPV4;
    }
    if ethertype != ETHERTYPE_IPV4 {
        return TC_ACT_OK;
    }
    sink(&ctx, port)
}

/// Removes the label after the Ethernet header (see the fabric's pop:
/// `bpf_skb_adjust_room` refuses a non-IP `skb->protocol`, so the payload
/// moves forward through the scratch and the tail is trimmed).
#[inline(always)]
fn pop_label(ctx: &TcContext) -> bool {
    let Some(scratch) = HOST_SCRATCH.get_ptr_mut(0) else {
        return false;
    };
    let len = ctx.len();
    let payload = ETH_HLEN + MPLS_HLEN;
    let Some(moved) = bounded_len(len.wrapping_sub(payload), SCRATCH_SIZE as u32) else {
        return false;
    };
    // SAFETY: helper call on this program's skb; the scratch slot belongs
    // to this CPU and holds `moved` bytes.
    if unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), payload, scratch.cast(), moved) } != 0 {
        return false;
    }
    // SAFETY: as above; `scratch` holds `moved` valid bytes.
    let stored = unsafe {
        bpf_skb_store_bytes(
            ctx.skb.skb,
            ETH_HLEN,
            scratch.cast(),
            moved,
            u64::from(BPF_F_RECOMPUTE_CSUM),
        )
    };
    if stored != 0 {
        return false;
    }
    // SAFETY: helper call on this program's skb.
    if unsafe { bpf_skb_change_tail(ctx.skb.skb, len - MPLS_HLEN, 0) } != 0 {
        return false;
    }
    ctx.store(12, &ETHERTYPE_IPV4.to_be_bytes(), 0).is_ok()
}

/// A TCP/UDP-in-IPv4 packet's offsets.
struct Packet {
    l3: u32,
    ihl_bytes: u32,
    total_len: u16,
    l4: u32,
    udp: bool,
    udp_len: u16,
    csum_off: u32,
    int_off: u32,
    payload_len: u32,
    fragment: bool,
}

#[inline(always)]
fn parse(ctx: &TcContext) -> Option<(Packet, u16)> {
    let l3 = ETH_HLEN;
    let ip = ctx.load::<[u8; 20]>(l3 as usize).ok()?;
    if ip[0] >> 4 != 4 {
        return None;
    }
    let ihl_bytes = u32::from(ip[0] & 0x0f) * 4;
    let total_len = u16::from_be_bytes([ip[2], ip[3]]);
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ihl_bytes < 20 || u32::from(total_len) < ihl_bytes {
        return None;
    }
    let ip_payload = u32::from(total_len) - ihl_bytes;
    let l4 = l3 + (ihl_bytes & 0x3c);
    let (udp, udp_len, dport, l4_hdr_len, payload_len, csum_off) = match ip[9] {
        IP_PROTO_UDP => {
            let h = ctx.load::<[u8; 8]>(l4 as usize).ok()?;
            let udp_len = u16::from_be_bytes([h[4], h[5]]);
            if udp_len < 8 || u32::from(udp_len) > ip_payload {
                return None;
            }
            let port = u16::from_be_bytes([h[2], h[3]]);
            (true, udp_len, port, 8, u32::from(udp_len) - 8, l4 + 6)
        }
        IP_PROTO_TCP => {
            let h = ctx.load::<[u8; 14]>(l4 as usize).ok()?;
            let hdr_len = u32::from(h[12] >> 4) * 4;
            if hdr_len < 20 || hdr_len > ip_payload {
                return None;
            }
            let port = u16::from_be_bytes([h[2], h[3]]);
            (false, 0, port, hdr_len, ip_payload - hdr_len, l4 + 16)
        }
        _ => return None,
    };
    Some((
        Packet {
            l3,
            ihl_bytes,
            total_len,
            l4,
            udp,
            udp_len,
            csum_off,
            int_off: l4 + (l4_hdr_len & 0x3c),
            payload_len,
            fragment: frag & 0x3fff != 0,
        },
        dport,
    ))
}

/// The INT sink.
#[inline(always)]
fn sink(ctx: &TcContext, port: u16) -> i32 {
    let Some((p, dport)) = parse(ctx) else {
        return TC_ACT_OK;
    };
    // SAFETY: the value is copied at once.
    let Some(sink_port) = (unsafe { INT_SINK_PORTS.get(u32::from(dport)) }).copied() else {
        return TC_ACT_OK;
    };
    // SAFETY: a context field read.
    let gso_size = unsafe { (*ctx.skb.skb).gso_size };
    if p.fragment || gso_size != 0 {
        count_event(HostEvent::Unsupported);
        return TC_ACT_OK;
    }
    if p.payload_len < INT_HEADERS_LEN {
        count_event(HostEvent::Truncated);
        return TC_ACT_SHOT;
    }
    let Ok(hdr) = ctx.load::<[u8; 16]>(p.int_off as usize) else {
        count_event(HostEvent::Truncated);
        return TC_ACT_SHOT;
    };
    if hdr[0] >> 4 != INT_TYPE_MD || hdr[4] >> 4 != INT_VERSION {
        count_event(HostEvent::NotIntMd);
        return TC_ACT_OK;
    }
    let shim_words = u32::from(hdr[1]);
    let header_words = u32::from(INT_MD_HEADER_WORDS);
    if shim_words < header_words || shim_words > header_words + u32::from(INT_MAX_STACK_WORDS) {
        count_event(HostEvent::LengthInvalid);
        return TC_ACT_SHOT;
    }
    let int_len = shim_words * 4 + INT_SHIM_LEN as u32;
    let len = ctx.len();
    if int_len > p.payload_len || p.int_off + int_len > len {
        count_event(HostEvent::Truncated);
        return TC_ACT_SHOT;
    }
    let stack_words = shim_words - header_words;
    let hop_ml = u32::from(hdr[6] & 0x1f);
    let hops = if hop_ml == 0 {
        if stack_words != 0 {
            count_event(HostEvent::LengthInvalid);
            return TC_ACT_SHOT;
        }
        0
    } else {
        if stack_words % hop_ml != 0 {
            count_event(HostEvent::LengthInvalid);
            return TC_ACT_SHOT;
        }
        stack_words / hop_ml
    };
    if hops > SINK_MAX_HOPS {
        count_event(HostEvent::HopCountExceeded);
        return TC_ACT_SHOT;
    }

    export(ctx, port, p.int_off + int_len, len);
    count_event(HostEvent::IntExported);
    if sink_port.flags & SINK_FLAG_CONSUME != 0 {
        count_event(HostEvent::ProbeConsumed);
        return TC_ACT_SHOT;
    }
    if strip(ctx, &p, int_len).is_err() {
        count_event(HostEvent::StripFailed);
        return TC_ACT_SHOT;
    }
    TC_ACT_OK
}

/// Hands the frame's first bytes (headers, INT, 128 bytes of payload) to
/// the agent.
#[inline(always)]
fn export(ctx: &TcContext, port: u16, int_end: u32, len: u32) {
    let want = int_end + 128;
    let want = if want > len { len } else { want };
    let frame_len = if want > SINK_SNAP_LEN {
        SINK_SNAP_LEN
    } else {
        want
    };
    let mut meta = SinkMeta {
        ingress_port: port,
        flags: 0,
        frame_len,
        // SAFETY: helper without arguments.
        tai_ns: unsafe { bpf_ktime_get_tai_ns() },
        orig_len: len,
        _pad: 0,
    };
    let flags = (u64::from(frame_len) << 32) | BPF_F_CURRENT_CPU;
    // SAFETY: helper call on this program's skb with the address of a map
    // definition and of a stack value of the given size.
    let rc = unsafe {
        bpf_perf_event_output(
            ctx.as_ptr(),
            (&raw const INT_SINK).cast_mut().cast(),
            flags,
            (&raw mut meta).cast(),
            size_of::<SinkMeta>() as u64,
        )
    };
    if rc != 0 {
        count_event(HostEvent::ExportLost);
    }
}

/// Removes `int_len` bytes at `p.int_off` and fixes lengths and
/// checksums. The removed bytes' sum leaves the L4 checksum; the bytes
/// after them move forward by a multiple of 4, keeping their sum.
#[inline(always)]
fn strip(ctx: &TcContext, p: &Packet, int_len: u32) -> Result<(), ()> {
    let scratch = HOST_SCRATCH.get_ptr_mut(0).ok_or(())?;
    let removed = bounded_len(int_len, INT_MAX_LEN).ok_or(())?;
    // SAFETY: helper call on this program's skb into this CPU's scratch.
    if unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), p.int_off, scratch.cast(), removed) } != 0 {
        return Err(());
    }
    // SAFETY: `scratch` holds `removed` (a multiple of 4, at most 400)
    // valid bytes.
    let diff = unsafe { bpf_csum_diff(scratch.cast(), removed, core::ptr::null_mut(), 0, 0) };
    if diff < 0 {
        return Err(());
    }

    let len = ctx.len();
    let tail_off = p.int_off + removed;
    let tail = len.wrapping_sub(tail_off);
    if tail != 0 {
        let moved = bounded_len(tail, SCRATCH_SIZE as u32).ok_or(())?;
        // SAFETY: as above.
        if unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), tail_off, scratch.cast(), moved) } != 0 {
            return Err(());
        }
        // SAFETY: `scratch` holds `moved` valid bytes.
        let stored = unsafe {
            bpf_skb_store_bytes(
                ctx.skb.skb,
                p.int_off,
                scratch.cast(),
                moved,
                u64::from(BPF_F_RECOMPUTE_CSUM),
            )
        };
        if stored != 0 {
            return Err(());
        }
    }
    // SAFETY: helper call on this program's skb.
    if unsafe { bpf_skb_change_tail(ctx.skb.skb, len - removed, 0) } != 0 {
        return Err(());
    }

    let flags = if p.udp {
        u64::from(BPF_F_MARK_MANGLED_0)
    } else {
        0
    };
    // Size 0: the value is a checksum difference.
    ctx.l4_csum_replace(p.csum_off as usize, 0, diff as u64, flags)
        .map_err(|_| ())?;
    let shrink = removed as u16;
    if p.udp {
        let old = u64::from(p.udp_len.to_be());
        let new_len = p.udp_len.wrapping_sub(shrink);
        let new = u64::from(new_len.to_be());
        ctx.l4_csum_replace(p.csum_off as usize, old, new, flags | 2)
            .map_err(|_| ())?;
        ctx.l4_csum_replace(
            p.csum_off as usize,
            old,
            new,
            flags | u64::from(BPF_F_PSEUDO_HDR) | 2,
        )
        .map_err(|_| ())?;
        ctx.store(p.l4 as usize + 4, &new_len.to_be_bytes(), 0)
            .map_err(|_| ())?;
    } else {
        let old_len = (u32::from(p.total_len)).wrapping_sub(p.ihl_bytes) as u16;
        let old = u64::from(old_len.to_be());
        let new = u64::from(old_len.wrapping_sub(shrink).to_be());
        ctx.l4_csum_replace(
            p.csum_off as usize,
            old,
            new,
            flags | u64::from(BPF_F_PSEUDO_HDR) | 2,
        )
        .map_err(|_| ())?;
    }
    let new_total = p.total_len.wrapping_sub(shrink);
    ctx.l3_csum_replace(
        p.l3 as usize + 10,
        u64::from(p.total_len.to_be()),
        u64::from(new_total.to_be()),
        2,
    )
    .map_err(|_| ())?;
    ctx.store(p.l3 as usize + 2, &new_total.to_be_bytes(), 0)
        .map_err(|_| ())
}
