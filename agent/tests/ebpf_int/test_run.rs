//! `BPF_PROG_TEST_RUN` of the fabric programs: the table-driven INT
//! transit cases and the insertion cost per packet.

use super::*;

// ---------------------------------------------------------------------------
// BPF_PROG_TEST_RUN
// ---------------------------------------------------------------------------

/// `struct __sk_buff` as `ctx_in`/`ctx_out` of a test run (offsets from
/// `linux/bpf.h`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SkbCtx {
    pub(crate) mark: u32,
    pub(crate) ingress_ifindex: u32,
    pub(crate) gso_segs: u32,
    pub(crate) gso_size: u32,
}

pub(crate) const SKB_CTX_LEN: usize = 192;

impl SkbCtx {
    pub(crate) fn bytes(&self) -> [u8; SKB_CTX_LEN] {
        let mut b = [0u8; SKB_CTX_LEN];
        b[8..12].copy_from_slice(&self.mark.to_ne_bytes());
        b[36..40].copy_from_slice(&self.ingress_ifindex.to_ne_bytes());
        b[164..168].copy_from_slice(&self.gso_segs.to_ne_bytes());
        b[176..180].copy_from_slice(&self.gso_size.to_ne_bytes());
        b
    }

    pub(crate) fn mark_of(bytes: &[u8]) -> u32 {
        u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]])
    }
}

/// Runs the egress program once; returns verdict, output frame, the mark
/// after the run and the kernel-measured run time.
pub(crate) fn egress_run(
    fabric: &mut Fabric,
    frame: &[u8],
    ctx: SkbCtx,
) -> (u32, Vec<u8>, u32, Duration) {
    let mut out = vec![0u8; frame.len() + 256];
    let ctx_in = ctx.bytes();
    let mut ctx_out = [0u8; SKB_CTX_LEN];
    let result = IntTransit::program(fabric)
        .expect("egress program")
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx_in),
            ctx_out: Some(&mut ctx_out),
            ..TestRunOptions::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(result.data_size_out as usize);
    (
        result.return_value,
        out,
        SkbCtx::mark_of(&ctx_out),
        result.duration,
    )
}

/// Runs the ingress program once on `frame` with `mark` in the skb; returns
/// the mark after the run (the verdict does not matter here).
pub(crate) fn ingress_mark(fabric: &mut Fabric, frame: &[u8], mark: u32) -> u32 {
    let mut out = vec![0u8; frame.len() + 256];
    let ctx_in = SkbCtx {
        mark,
        ..SkbCtx::default()
    }
    .bytes();
    let mut ctx_out = [0u8; SKB_CTX_LEN];
    fabric
        .program()
        .expect("ingress program")
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx_in),
            ctx_out: Some(&mut ctx_out),
            ..TestRunOptions::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    SkbCtx::mark_of(&ctx_out)
}

#[test]
fn test_run_int_transit() {
    if !can_run("test_run_int_transit") {
        return;
    }
    let mut namespaces = Namespaces::create("tr", &["s1"]);
    let pins = Pins::new("tr");
    let s1 = namespaces.get("s1");
    let spare = format!("sxi{}d", std::process::id());
    namespaces.add_spare(&s1, &spare);
    // Test runs enter through the namespace's lo (egress port 3); its MTU is
    // the device MTU the M bit checks against.
    ip(&["-n", &s1, "link", "set", "lo", "up", "mtu", "1500"]);

    in_netns(&s1, || {
        let mut fabric = Fabric::load(&pins.instance).expect("load");
        fabric.attach("lo", EGRESS_PORT).expect("attach lo");
        fabric.attach(&spare, INGRESS_PORT).expect("attach spare");
        let ingress_ifindex = ifindex(&spare);
        let mut int = IntTransit::new(&mut fabric).expect("INT transit");
        int.attach(&mut fabric, "lo").expect("attach egress");
        assert!(
            int.attach(&mut fabric, "sxi-none").is_err(),
            "not a fabric port"
        );

        assert_eq!(int.switch_id().expect("switch id"), None);
        int.set_switch_id(SWITCH_ID).expect("switch id");

        // No watch rule yet: the ingress program leaves no stamp (and
        // resets the mark), and the egress program only counts the port and
        // clears a stamp left from before; the packet leaves untouched.
        let input = watched(Int::md(FULL_BITMAP, 2)).build();
        assert_eq!(ingress_mark(&mut fabric, &input, 0x1234), 0, "no stamp");
        let ctx = SkbCtx {
            mark: ingress_stamp(monotonic_ns()),
            ingress_ifindex,
            ..SkbCtx::default()
        };
        let (verdict, out, mark, _) = egress_run(&mut fabric, &input, ctx);
        assert_eq!(verdict, TC_ACT_OK, "no rule: verdict");
        assert_eq!(out, input, "no rule: untouched");
        assert_eq!(mark, 0, "no rule: the stamp is cleared");
        let tx = int.port_tx(EGRESS_PORT).expect("tx");
        assert_eq!(
            (tx.packets, tx.bytes),
            (1, input.len() as u64),
            "no rule: TX counted"
        );
        assert!(
            int.event_counts()
                .expect("events")
                .iter()
                .all(|&(_, count)| count == 0),
            "no rule: no INT event"
        );
        assert_eq!(int.switch_config_hits().expect("switch hits").packets, 0);

        int.insert_watch_rule(BY_PORT, WatchAction::Mark)
            .expect("rule");
        let stamp = ingress_mark(&mut fabric, &input, 0x1234);
        assert_eq!(
            stamp & INT_MARK_MAGIC_MASK,
            INT_MARK_MAGIC,
            "stamped: {stamp:#x}"
        );
        int.insert_watch_rule(BY_DSCP, WatchAction::NoMark)
            .expect("rule");
        // Modify: the DSCP rule marks after all (keeps its counter).
        int.insert_watch_rule(BY_DSCP, WatchAction::Mark)
            .expect("modify");
        int.insert_watch_rule(EXCLUDED, WatchAction::NoMark)
            .expect("rule");
        assert_eq!(
            int.watch_rules(),
            vec![
                (EXCLUDED, WatchAction::NoMark),
                (BY_PORT, WatchAction::Mark),
                (BY_DSCP, WatchAction::Mark),
            ],
            "highest priority first"
        );

        let mut expected_events = std::collections::HashMap::<IntEvent, u64>::new();
        // The run without rules above.
        let mut runs = 1u64;
        let mut inserted_bytes = Vec::new();
        for case in cases() {
            int.set_port_state(EGRESS_PORT, fresh_state(monotonic_ns()))
                .expect("port state");
            let mut input = case.frame.build();
            if let Some(cut) = case.cut {
                input.truncate(cut);
            }
            let ctx = case.ctx(ingress_ifindex);
            let before = tai_ns();
            let (verdict, out, mark, _) = egress_run(&mut fabric, &input, ctx);
            let after = tai_ns();
            runs += 1;
            assert_eq!(verdict, TC_ACT_OK, "{}: verdict", case.name);
            assert_eq!(mark, 0, "{}: the stamp is cleared", case.name);
            if let Some(event) = case.event {
                *expected_events.entry(event).or_default() += 1;
            }
            match case.expect {
                Expect::Untouched => assert_eq!(out, input, "{}: untouched", case.name),
                Expect::Flag(bit) => check_flag(case.name, &input, &out, bit),
                Expect::Inserted => {
                    *expected_events.entry(IntEvent::Inserted).or_default() += 1;
                    inserted_bytes.push(check_inserted(&case, &input, &out, (before, after)));
                }
            }
        }

        // A stale queue state: occupancy and utilisation are "not
        // available", no queueing delay is added.
        int.set_port_state(
            EGRESS_PORT,
            PortQueueState {
                updated_ns: monotonic_ns() - 5_000_000_000,
                ..fresh_state(0)
            },
        )
        .expect("stale state");
        let stale = Case::new("stale", watched(Int::md(FULL_BITMAP, 2)), Expect::Inserted);
        let input = stale.frame.build();
        let (_, out, _, _) = egress_run(&mut fabric, &input, stale.ctx(ingress_ifindex));
        runs += 1;
        *expected_events.entry(IntEvent::Inserted).or_default() += 1;
        *expected_events
            .entry(IntEvent::StaleQueueState)
            .or_default() += 1;
        let o = parse(&out).int(&out);
        let hop = decode_hop(FULL_BITMAP, &o.stack);
        assert_eq!(hop.queue, Some((0, 0x00ff_ffff)), "stale occupancy");
        assert_eq!(hop.tx_util, Some(u32::MAX), "stale utilisation");
        let between = hop.egress_ts.unwrap_or(0) - hop.ingress_ts.unwrap_or(0);
        assert_eq!(
            u64::from(hop.latency.unwrap_or(0)),
            between,
            "no queueing delay"
        );

        // Counters.
        for (event, count) in int.event_counts().expect("events") {
            let expected = expected_events.get(&event).copied().unwrap_or(0);
            assert_eq!(count, expected, "event {}", event.name());
        }
        assert_eq!(int.port_tx(EGRESS_PORT).expect("tx").packets, runs);
        let inserted = expected_events
            .get(&IntEvent::Inserted)
            .copied()
            .unwrap_or(0);
        assert_eq!(
            int.switch_config_hits().expect("switch hits").packets,
            inserted
        );
        for (rule, hits) in [(EXCLUDED, 1), (BY_DSCP, 1)] {
            let counter = int.watch_rule_hits(&rule).expect("hits").expect("rule");
            assert_eq!(counter.packets, hits, "{rule:?}");
        }
        eprintln!(
            "test runs: {runs}; bytes added per inserted hop: {inserted_bytes:?}; events {:?}",
            int.event_counts().expect("events")
        );

        // Removing a rule: the packet it marked is left alone.
        assert!(int.remove_watch_rule(&BY_DSCP).expect("remove"));
        assert!(!int.remove_watch_rule(&BY_DSCP).expect("remove again"));
        let input = Frame {
            dscp: 0x22,
            dst_port: 7000,
            ..watched(Int::md(BASE_BITMAP, 2))
        }
        .build();
        let ctx = SkbCtx {
            mark: ingress_stamp(monotonic_ns()),
            ingress_ifindex,
            ..SkbCtx::default()
        };
        let (_, out, _, _) = egress_run(&mut fabric, &input, ctx);
        assert_eq!(out, input, "rule removed");

        // A reloaded agent finds the switch ID and the rules again.
        drop(int);
        drop(fabric);
        let mut fabric = Fabric::load(&pins.instance).expect("reload");
        let int = IntTransit::new(&mut fabric).expect("INT transit again");
        assert_eq!(int.switch_id().expect("switch id"), Some(SWITCH_ID));
        assert_eq!(int.watch_rules().len(), 2);
        assert_eq!(
            int.watch_rule_hits(&EXCLUDED)
                .expect("hits")
                .map(|c| c.packets),
            Some(1)
        );
    });
}

#[test]
fn insert_cost() {
    if !can_run("insert_cost") {
        return;
    }
    let namespaces = Namespaces::create("cost", &["s1"]);
    let pins = Pins::new("cost");
    let s1 = namespaces.get("s1");
    ip(&["-n", &s1, "link", "set", "lo", "up"]);
    in_netns(&s1, || {
        let mut fabric = Fabric::load(&pins.instance).expect("load");
        fabric.attach("lo", EGRESS_PORT).expect("attach lo");
        let mut int = IntTransit::new(&mut fabric).expect("INT transit");
        int.set_switch_id(1).expect("switch id");
        int.insert_watch_rule(
            WatchMatch {
                priority: 1,
                dscp: 0,
                dscp_mask: 0,
                l4_dst_port: WATCHED_PORT,
                l4_dst_port_mask: 0xffff,
            },
            WatchAction::Mark,
        )
        .expect("rule");
        let ctx = SkbCtx {
            mark: ingress_stamp(monotonic_ns()),
            ..SkbCtx::default()
        };
        const RUNS: u32 = 2000;
        for payload in [64usize, 1400, 3000] {
            let data = vec![5u8; payload];
            let mut measure = |frame: &[u8]| {
                let mut total = Duration::ZERO;
                for _ in 0..RUNS {
                    total += egress_run(&mut fabric, frame, ctx).3;
                }
                total / RUNS
            };
            let plain = measure(&Frame::udp(6000, Some(Int::md(FULL_BITMAP, 5)), &data).build());
            let base =
                measure(&Frame::udp(WATCHED_PORT, Some(Int::md(BASE_BITMAP, 5)), &data).build());
            let full =
                measure(&Frame::udp(WATCHED_PORT, Some(Int::md(FULL_BITMAP, 5)), &data).build());
            eprintln!(
                "payload {payload} B: not watched {plain:?}, +8 B (switch ID, ports) {base:?}, \
                 +52 B (every instruction) {full:?} per packet"
            );
        }
    });
}
