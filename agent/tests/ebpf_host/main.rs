//! Kernel tests of the `solyx_host` programs (`BPF_PROG_TEST_RUN`).
//!
//! * `host_ingress_pop_and_int_sink`: table-driven frames through
//!   `host_ingress`: label pop, INT stripped from UDP and TCP (lengths and
//!   checksums recomputed, payload intact), probes consumed, and every
//!   malformed-INT rule (bad shim length, truncated stack, a stack that
//!   is not whole hops, more hops than the limit, too short for a shim,
//!   not INT-MD), each with its verdict and its `HOST_EVENTS` counter.
//! * `host_egress_labels_per_flowlet`: `host_egress` pushes the path's
//!   label and MAC, keeps a flow on one path within the flowlet gap,
//!   spreads new flowlets by weight, counts per destination, path and
//!   flow bucket, records the flow's 5-tuple as the bucket's key (a second
//!   flow in the bucket adds its bytes and takes the key), and leaves GSO
//!   packets and unrouted destinations alone.
//!
//! The programs run in a network namespace of their own (`sxh<pid>-…`,
//! attached to its loopback, whose ifindex the test runs use); it and the
//! pin directory are removed by name, also on failure. Without root or
//! the eBPF object they print why and pass, unless `SOLYX_REQUIRE_ROOT=1`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use aya::programs::{TestRun, TestRunOptions};
use solyx_agent::ebpf::common::host::{
    flow_bucket, FlowKey, HostEvent, HostGroup, HostPath, HostRoute, SinkPort, PROG_HOST_EGRESS,
    PROG_HOST_INGRESS, SINK_FLAG_CONSUME,
};
use solyx_agent::ebpf::common::int::{
    INSTR_EGRESS_TSTAMP, INSTR_HOP_LATENCY, INSTR_INGRESS_TSTAMP, INSTR_L1_PORTS, INSTR_QUEUE,
    INSTR_SWITCH_ID, INSTR_TX_UTIL,
};
use solyx_agent::ebpf::{remove_instance, Host, DEFAULT_PIN_ROOT};

#[path = "../switch/mod.rs"]
mod switch;

#[path = "../ebpf_int/frame.rs"]
#[allow(dead_code)]
mod frame;

use frame::{parse, Frame, Int, L4};
use switch::{can_run, in_netns};

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const SINK_PORT: u16 = 6000;
const PROBE_PORT: u16 = 7777;
const PLAIN_PORT: u16 = 5000;

/// A namespace and a pin directory for one test, removed on drop.
struct Scratch {
    ns: String,
    instance: String,
}

impl Scratch {
    fn new(test: &str) -> Self {
        let ns = format!("sxh{}-{test}", std::process::id());
        let instance = ns.clone();
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &instance);
        switch::ip(&["netns", "add", &ns]);
        switch::ip(&["-n", &ns, "link", "set", "lo", "up"]);
        Self { ns, instance }
    }

    /// The host programs, loaded, with the namespace's loopback as port 1.
    fn host(&self) -> Host {
        in_netns(&self.ns, || {
            let mut host =
                Host::load_with(Path::new(DEFAULT_PIN_ROOT), &self.instance).expect("load");
            host.attach("lo", 1).expect("attach lo");
            host
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.instance);
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// `__sk_buff` for `ctx_in`: ifindex 1 (the loopback), `gso_size`.
fn ctx(gso_size: u32) -> [u8; 192] {
    let mut b = [0u8; 192];
    b[40..44].copy_from_slice(&1u32.to_ne_bytes()); // ifindex
    b[164..168].copy_from_slice(&u32::from(gso_size != 0).to_ne_bytes()); // gso_segs
    b[176..180].copy_from_slice(&gso_size.to_ne_bytes());
    b
}

fn run(host: &mut Host, program: &str, frame: &[u8], gso_size: u32) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; frame.len() + 64];
    let ctx_in = ctx(gso_size);
    let mut ctx_out = [0u8; 192];
    let r = host
        .program(program)
        .expect("program")
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx_in),
            ctx_out: Some(&mut ctx_out),
            ..TestRunOptions::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

/// Two hops of switch ID + ports + hop latency (3 words each).
fn two_hops() -> Int {
    let bitmap = INSTR_SWITCH_ID | INSTR_L1_PORTS | INSTR_HOP_LATENCY;
    Int {
        stack: vec![2, 0x0001_0002, 500, 1, 0x0003_0001, 400],
        ..Int::md(bitmap, 6)
    }
}

enum Expect {
    /// Delivered with the INT block removed: the payload that follows.
    Stripped,
    /// Delivered as it came (after a pop, if labelled).
    Unchanged,
    Dropped,
}

#[test]
fn host_ingress_pop_and_int_sink() {
    if !can_run("host_ingress_pop_and_int_sink") {
        return;
    }
    let scratch = Scratch::new("ingress");
    let mut host = scratch.host();
    host.insert_sink_port(SINK_PORT, SinkPort { flags: 0 })
        .expect("sink port");
    host.insert_sink_port(
        PROBE_PORT,
        SinkPort {
            flags: SINK_FLAG_CONSUME,
        },
    )
    .expect("probe port");
    let payload = b"the application's own bytes, which must arrive intact";

    let truncated_stack = Int {
        shim_len: Some(3 + 6 + 4),
        ..two_hops()
    };
    let short_shim = Int {
        shim_len: Some(2),
        ..two_hops()
    };
    let partial_hop = Int {
        stack: vec![1, 2, 3, 4],
        ..two_hops()
    };
    let many_hops = Int {
        hop_ml: 1,
        stack: (0..17).collect(),
        ..Int::md(INSTR_SWITCH_ID, 1)
    };
    let not_md = Int {
        shim_type: 2,
        ..two_hops()
    };
    let tcp = Frame {
        l4: L4::Tcp {
            options: vec![1, 1, 1, 1],
        },
        ..Frame::udp(SINK_PORT, Some(two_hops()), payload)
    };
    let cases: Vec<(&str, Frame, Expect, Option<HostEvent>)> = vec![
        (
            "labelled, not a sink port: popped",
            Frame {
                label: Some(100),
                ..Frame::udp(PLAIN_PORT, None, payload)
            },
            Expect::Unchanged,
            Some(HostEvent::LabelPopped),
        ),
        (
            "UDP with two hops: stripped",
            Frame::udp(SINK_PORT, Some(two_hops()), payload),
            Expect::Stripped,
            Some(HostEvent::IntExported),
        ),
        (
            "labelled UDP with two hops: popped and stripped",
            Frame {
                label: Some(7),
                ..Frame::udp(SINK_PORT, Some(two_hops()), payload)
            },
            Expect::Stripped,
            Some(HostEvent::IntExported),
        ),
        (
            "UDP without checksum: stripped, still none",
            Frame {
                l4: L4::Udp { checksum: false },
                ..Frame::udp(SINK_PORT, Some(two_hops()), payload)
            },
            Expect::Stripped,
            Some(HostEvent::IntExported),
        ),
        (
            "TCP with options: stripped",
            tcp,
            Expect::Stripped,
            Some(HostEvent::IntExported),
        ),
        (
            "INT-MD with an empty stack: stripped",
            Frame::udp(SINK_PORT, Some(Int::md(INSTR_SWITCH_ID, 5)), payload),
            Expect::Stripped,
            Some(HostEvent::IntExported),
        ),
        (
            "probe: consumed",
            Frame::udp(PROBE_PORT, Some(two_hops()), b"SXPB probe body"),
            Expect::Dropped,
            Some(HostEvent::ProbeConsumed),
        ),
        (
            "shim length below the header: dropped",
            Frame::udp(SINK_PORT, Some(short_shim), payload),
            Expect::Dropped,
            Some(HostEvent::LengthInvalid),
        ),
        (
            "shim longer than the packet: dropped",
            Frame::udp(SINK_PORT, Some(truncated_stack), b""),
            Expect::Dropped,
            Some(HostEvent::Truncated),
        ),
        (
            "stack not a whole number of hops: dropped",
            Frame::udp(SINK_PORT, Some(partial_hop), payload),
            Expect::Dropped,
            Some(HostEvent::LengthInvalid),
        ),
        (
            "17 hops, above the limit: dropped",
            Frame::udp(SINK_PORT, Some(many_hops), payload),
            Expect::Dropped,
            Some(HostEvent::HopCountExceeded),
        ),
        (
            "too short for a shim: dropped",
            Frame::udp(SINK_PORT, None, b"tiny"),
            Expect::Dropped,
            Some(HostEvent::Truncated),
        ),
        (
            "not INT-MD: delivered as it is",
            Frame::udp(SINK_PORT, Some(not_md), payload),
            Expect::Unchanged,
            Some(HostEvent::NotIntMd),
        ),
        (
            "not a sink port: untouched",
            Frame::udp(PLAIN_PORT, Some(two_hops()), payload),
            Expect::Unchanged,
            None,
        ),
        (
            "a later fragment on a sink port: untouched",
            Frame {
                frag: 0x0010,
                ..Frame::udp(SINK_PORT, Some(two_hops()), payload)
            },
            Expect::Unchanged,
            None,
        ),
    ];

    for (name, case, expect, event) in cases {
        let before = event.map(|e| host.event(e).expect("event"));
        let input = case.build();
        let (verdict, out) = run(&mut host, PROG_HOST_INGRESS, &input, 0);
        match expect {
            Expect::Dropped => assert_eq!(verdict, TC_ACT_SHOT, "{name}"),
            Expect::Unchanged => {
                assert_eq!(verdict, TC_ACT_OK, "{name}");
                let unlabelled = Frame {
                    label: None,
                    ..case.clone()
                }
                .build();
                assert_eq!(
                    out, unlabelled,
                    "{name}: the frame as sent, without a label"
                );
            }
            Expect::Stripped => {
                assert_eq!(verdict, TC_ACT_OK, "{name}");
                let plain = Frame {
                    label: None,
                    int: None,
                    ..case.clone()
                }
                .build();
                let p = parse(&out);
                assert!(p.ipv4_ok(&out), "{name}: IPv4 checksum");
                assert!(p.l4_ok(&out), "{name}: L4 checksum");
                assert_eq!(out, plain, "{name}: as if sent without INT");
            }
        }
        if let (Some(e), Some(before)) = (event, before) {
            assert_eq!(
                host.event(e).expect("event"),
                before + 1,
                "{name}: {} counted once",
                e.name()
            );
        }
    }
    // No reader: every export was lost, counted, and the packets still
    // went through.
    assert_eq!(
        host.event(HostEvent::ExportLost).expect("event"),
        host.event(HostEvent::IntExported).expect("event")
    );
    // A label stack of two: dropped.
    let mut two_labels = Frame {
        label: Some(9),
        ..Frame::udp(PLAIN_PORT, None, payload)
    }
    .build();
    two_labels[16] &= !1; // bottom-of-stack bit off
    let (verdict, _) = run(&mut host, PROG_HOST_INGRESS, &two_labels, 0);
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(host.event(HostEvent::LabelUnsupported).expect("event"), 1);
    // Garbage of every length never crashes, and a frame too short for
    // anything passes to the kernel.
    for len in [0usize, 1, 13, 14, 20, 33, 41, 60] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
        if len >= 14 {
            let _ = run(&mut host, PROG_HOST_INGRESS, &junk, 0);
        }
    }
}

#[test]
fn host_egress_labels_per_flowlet() {
    if !can_run("host_egress_labels_per_flowlet") {
        return;
    }
    let scratch = Scratch::new("egress");
    let mut host = scratch.host();
    let path = |label: u32, path_id: u16, mac: u8| HostPath {
        label,
        egress_ifindex: 1,
        egress_port: 1,
        path_id,
        dst_mac: [2, 0, 0, 0, 0, mac],
        src_mac: [2, 0, 0, 0, 1, 1],
    };
    let mut group = HostGroup {
        slot_count: 4,
        version: 1,
        ..HostGroup::default()
    };
    // Weights 3:1.
    group.slots[..3].fill(path(100, 1, 0xa));
    group.slots[3] = path(200, 2, 0xb);
    host.set_group(7, &group).expect("group");
    host.insert_route(
        [10, 78, 2, 0],
        24,
        HostRoute {
            group_id: 7,
            hit_slot: 3,
        },
    )
    .expect("route");
    host.reset_route_hits(3).expect("zero");
    host.set_flowlet_gap(60_000_000_000).expect("gap");

    let label_of = |out: &[u8]| -> Option<u32> {
        (u16::from_be_bytes([out[12], out[13]]) == 0x8847)
            .then(|| u32::from_be_bytes([out[14], out[15], out[16], out[17]]) >> 12)
    };
    // One flow, a long gap: one path for all its packets.
    let flow = Frame::udp(PLAIN_PORT, None, b"burst");
    let input = flow.build();
    let mut labels = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let (verdict, out) = run(&mut host, PROG_HOST_EGRESS, &input, 0);
        assert_eq!(verdict, TC_ACT_OK);
        let label = label_of(&out).expect("labelled");
        labels.insert(label);
        let mac = if label == 100 { 0xa } else { 0xb };
        assert_eq!(out[..6], [2, 0, 0, 0, 0, mac], "the path's next hop");
        assert_eq!(out[6..12], [2, 0, 0, 0, 1, 1], "the port's MAC");
        assert_eq!(out[18..], input[14..], "the IPv4 packet unchanged");
        assert_eq!(out[16] & 1, 1, "bottom of stack");
    }
    assert_eq!(labels.len(), 1, "one flowlet, one path: {labels:?}");
    let route = host.route_hits(3).expect("route counter");
    assert_eq!(route.packets, 50);
    let bucket = flow_bucket([10, 78, 1, 1], [10, 78, 2, 2], 17, 40000, PLAIN_PORT);
    assert_eq!(host.flow_bytes(bucket).expect("flow").packets, 50);
    assert_eq!(
        host.flowlet(bucket).expect("flowlet").group_id,
        7,
        "the flowlet state is in the documented bucket"
    );
    // The bucket's key is the flow's 5-tuple (P4 flow_key_register).
    let key = FlowKey {
        src: [10, 78, 1, 1],
        dst: [10, 78, 2, 2],
        sport: 40000,
        dport: PLAIN_PORT,
        proto: 17,
        _pad: [0; 3],
    };
    assert_eq!(host.flow_key(bucket).expect("key"), key);
    // A second flow hashed to the same bucket: the bytes add up, the key
    // is the last flow's; the first flow's next packet takes it back.
    let twin_port = (1..=u16::MAX)
        .find(|p| {
            *p != PLAIN_PORT && flow_bucket([10, 78, 1, 1], [10, 78, 2, 2], 17, 40000, *p) == bucket
        })
        .expect("a flow in the same bucket");
    let twin = Frame {
        dst_port: twin_port,
        ..flow.clone()
    }
    .build();
    let before = host.flow_bytes(bucket).expect("flow");
    let (verdict, _) = run(&mut host, PROG_HOST_EGRESS, &twin, 0);
    assert_eq!(verdict, TC_ACT_OK);
    let after = host.flow_bytes(bucket).expect("flow");
    assert_eq!(
        (after.packets, after.bytes),
        (before.packets + 1, before.bytes + twin.len() as u64),
        "one bucket, both flows' bytes"
    );
    assert_eq!(
        host.flow_key(bucket).expect("key"),
        FlowKey {
            dport: twin_port,
            ..key
        },
        "the last flow's key"
    );
    run(&mut host, PROG_HOST_EGRESS, &input, 0);
    assert_eq!(host.flow_key(bucket).expect("key"), key);

    // Gap 0: every packet is a new flowlet; the 3:1 weights show.
    host.set_flowlet_gap(0).expect("gap");
    let (before_a, before_b) = (
        host.path_hits(1).expect("path").packets,
        host.path_hits(2).expect("path").packets,
    );
    for _ in 0..800 {
        run(&mut host, PROG_HOST_EGRESS, &input, 0);
    }
    let a = host.path_hits(1).expect("path").packets - before_a;
    let b = host.path_hits(2).expect("path").packets - before_b;
    assert_eq!(a + b, 800);
    let share = a as f64 / 800.0;
    assert!(
        (0.68..=0.82).contains(&share),
        "path 1 took {share:.2}, weight 0.75"
    );

    // GSO: unlabelled (counted); another destination: untouched.
    let gso_before = host.event(HostEvent::Gso).expect("event");
    let (verdict, out) = run(&mut host, PROG_HOST_EGRESS, &input, 1400);
    assert_eq!((verdict, label_of(&out)), (TC_ACT_OK, None));
    assert_eq!(host.event(HostEvent::Gso).expect("event"), gso_before + 1);
    let other = Frame {
        dst: Ipv4Addr::new(10, 99, 0, 1),
        ..flow.clone()
    }
    .build();
    let (verdict, out) = run(&mut host, PROG_HOST_EGRESS, &other, 0);
    assert_eq!((verdict, out), (TC_ACT_OK, other));
    let other_bucket = flow_bucket([10, 78, 1, 1], [10, 99, 0, 1], 17, 40000, PLAIN_PORT);
    if other_bucket != bucket {
        assert_eq!(
            host.flow_key(other_bucket).expect("key"),
            FlowKey::default(),
            "no route, no key"
        );
    }
    // An empty group sends unlabelled.
    host.set_group(7, &HostGroup::default()).expect("empty");
    let (_, out) = run(&mut host, PROG_HOST_EGRESS, &input, 0);
    assert_eq!(label_of(&out), None);
    assert!(host.event(HostEvent::EmptyGroup).expect("event") >= 1);
}

// The INT test frames' decoder needs these.
#[allow(dead_code)]
const _USED: [u16; 4] = [
    INSTR_QUEUE,
    INSTR_INGRESS_TSTAMP,
    INSTR_EGRESS_TSTAMP,
    INSTR_TX_UTIL,
];
