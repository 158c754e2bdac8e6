//! Two labelled paths between two hosts, everything programmed over
//! P4Runtime by the controller's `solyx::p4rt::DeviceSession`:
//!
//! ```text
//!                 .-- s2 --.
//!   h1 --- s1 ---<          >--- s4 --- h2      label 101: s1-s2-s4
//!                 '-- s3 --'                    label 102: s1-s3-s4
//! ```
//!
//! h1 and h2 run the `solyx_host` pipeline in process (`host::start`: the
//! eBPF data plane, the INT report exporter and the prober, as
//! `solyx-agent host` does), s1–s4 the `solyx_fabric` switch with INT
//! transit marking UDP ports 7777 (probes) and 6000.
//!
//! * probes: h1 probes both paths of its group; h2's sink consumes them
//!   and its exporter sends Telemetry Reports to a UDP listener: each has
//!   three hops, the switch IDs of its path in order, timestamps that
//!   never go back from the probe's send time through every hop to the
//!   sink, and per-path sequence numbers;
//! * INT-instrumented application traffic: a datagram with an INT-MD
//!   header arrives at h2's application as sent, without INT, and its
//!   report has three hops;
//! * weights: bursts of a numbered flow with pauses above the flowlet gap;
//!   the byte share of path 1 (read from h1's `path_counter` over
//!   P4Runtime) is 0.5 ± 0.12 with weights 1:1 and 0.75 ± 0.12 after a
//!   MODIFY to 3:1 (200 bursts per phase: about 3.5 standard deviations),
//!   and h2 receives every burst in order (no reordering);
//! * elephants: after the weighted flow (the elephant) and three small
//!   flows, the controller's `DeviceSession::elephants` (what `solyx p4rt
//!   elephants` prints) names the elephant first, with its 5-tuple and the
//!   exact packets and bytes sent, then the small flows in order of size;
//!   `flow_key_register` read over P4Runtime by index and as a wildcard
//!   (every cell) holds the 5-tuples; an index outside the register and a
//!   register write are refused.
//!
//! Namespaces `sxf<pid>-hostpaths-<role>`, veths `sx<pid>hp…`, pin
//! directories `sxf<pid>-hostpaths-…` and `sxh<pid>-…`, all removed by
//! name. Without root or the eBPF object the test prints why and passes,
//! unless `SOLYX_REQUIRE_ROOT=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod switch;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use solyx::p4rt::{DeviceSession, SessionConfig};
use solyx_agent::ebpf::{remove_instance, PortSpec, ProbeBody, DEFAULT_PIN_ROOT};
use solyx_agent::host::{self, HostNode, HostOptions};
use solyx_agent::p4rt::{spawn_tcp, RunningServer};
use solyx_agent::switch::SwitchConfig;
use solyx_int::{Instructions, IntMdBuilder, Report, Stack};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;
use switch::fabric::{self, install};
use switch::{can_run, in_netns, Switch, Topology};

const HOST_P4INFO: &str = include_str!("../../p4/solyx_host/solyx_host.p4info.txtpb");

const MAC_H1: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x01, 0x01];
const MAC_S1H: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x01, 0xfe];
const MAC_S12: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x12, 0x01];
const MAC_S21: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x12, 0x02];
const MAC_S13: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x13, 0x01];
const MAC_S31: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x13, 0x03];
const MAC_S24: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x24, 0x02];
const MAC_S42: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x24, 0x04];
const MAC_S34: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x34, 0x03];
const MAC_S43: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x34, 0x04];
const MAC_S4H: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x02, 0xfe];
const MAC_H2: [u8; 6] = [0x02, 0x5e, 0x31, 0, 0x02, 0x02];

const LABEL_VIA_S2: u32 = 101;
const LABEL_VIA_S3: u32 = 102;
const PROBE_PORT: u16 = 7777;
const INT_APP_PORT: u16 = 6000;
const DATA_PORT: u16 = 5000;

/// A host of the testbed: its node, its P4Runtime server, its state and
/// pin directories (removed on drop).
struct TestHost {
    node: HostNode,
    server: RunningServer,
    state_dir: PathBuf,
    instance: String,
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.instance);
    }
}

async fn start_host(
    topology: &Topology,
    role: &str,
    device_id: u64,
    dev: &str,
    options: HostOptions,
) -> TestHost {
    let instance = format!("sxh{}-{role}", std::process::id());
    let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &instance);
    let state_dir = std::env::temp_dir().join(&instance);
    let _ = std::fs::remove_dir_all(&state_dir);
    let config = SwitchConfig {
        device_id,
        netns: None,
        instance: instance.clone(),
        grpc: None,
        unix: None,
        state_dir: state_dir.clone(),
        pin_root: PathBuf::from(DEFAULT_PIN_ROOT),
        ports: vec![PortSpec {
            port: 1,
            interface: topology.dev(dev),
        }],
        declare: None,
        metrics: None,
    };
    let node = in_netns(&topology.ns(role), || {
        host::start(&config, &options).expect("host starts")
    });
    let server = spawn_tcp(node.service.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("server");
    TestHost {
        node,
        server,
        state_dir,
        instance,
    }
}

async fn host_session(endpoint: &str, device_id: u64, ix: &P4InfoIndex) -> DeviceSession {
    let s = DeviceSession::start(SessionConfig::new(endpoint, device_id, 10)).expect("session");
    s.wait_primary(fabric::WAIT).await.expect("primary");
    s.set_pipeline(ix.p4info().clone(), Vec::new(), false)
        .await
        .expect("the host accepts solyx_host");
    s
}

fn path_member(ix: &P4InfoIndex, id: u32, label: u32, path_id: u8) -> p4::Entity {
    let a = ix
        .action("set_path")
        .unwrap()
        .param("port", 1u16)
        .unwrap()
        .param("label", label)
        .unwrap()
        .param("dmac", MAC_S1H)
        .unwrap()
        .param("path_id", path_id)
        .unwrap()
        .build()
        .unwrap();
    p4::Entity {
        entity: Some(p4::entity::Entity::ActionProfileMember(
            ix.profile_member("path_selector", id, a).unwrap(),
        )),
    }
}

fn path_group(ix: &P4InfoIndex, members: &[(u32, i32)]) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::ActionProfileGroup(
            ix.profile_group("path_selector", 10, members).unwrap(),
        )),
    }
}

fn sink_port(ix: &P4InfoIndex, port: u16, action: &str) -> p4::Entity {
    let a = ix.action(action).unwrap().build().unwrap();
    ix.table_entry("int_sink_port")
        .unwrap()
        .exact("l4_dst_port", port)
        .unwrap()
        .action(a)
        .unwrap()
        .build()
        .unwrap()
}

fn watch_port(ix: &P4InfoIndex, priority: i32, port: u16) -> p4::Entity {
    let a = ix.action("int_mark_int").unwrap().build().unwrap();
    ix.table_entry("int_watchlist")
        .unwrap()
        .ternary("l4_dst_port", port, 0xffffu16)
        .unwrap()
        .priority(priority)
        .action(a)
        .unwrap()
        .build()
        .unwrap()
}

/// Programs a fabric switch: INT ID, watch rules, egress MACs and its
/// label entries.
async fn program_switch(
    sw: &Switch,
    device_id: u64,
    ports: &[(u16, [u8; 6])],
    labels: Vec<p4::Entity>,
) -> DeviceSession {
    let ix = fabric::index();
    let s = fabric::session(&sw.endpoint(), device_id).await;
    fabric::all_ok(
        s.modify(vec![fabric::int_switch_id(
            &ix,
            u32::try_from(device_id).unwrap(),
        )])
        .await
        .unwrap(),
    );
    let mut entities = vec![
        watch_port(&ix, 10, PROBE_PORT),
        watch_port(&ix, 9, INT_APP_PORT),
    ];
    for (port, mac) in ports {
        entities.push(fabric::egress_rewrite(&ix, *port, *mac));
    }
    entities.extend(labels);
    install(&s, entities).await;
    s
}

async fn path_bytes(s: &DeviceSession, ix: &P4InfoIndex, path: i64) -> i64 {
    let id = ix.counters.by_name("path_counter").unwrap().id;
    s.read_counter(id, Some(path))
        .await
        .expect("read path_counter")
        .first()
        .and_then(|c| c.data.as_ref())
        .map_or(0, |d| d.byte_count)
}

fn tai_now() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_TAI).unwrap();
    (t.tv_sec() as u64) * 1_000_000_000 + t.tv_nsec() as u64
}

/// Reads reports from `socket` until `enough` holds or `timeout` passes.
fn collect(
    socket: &UdpSocket,
    timeout: Duration,
    mut enough: impl FnMut(&[Report]) -> bool,
) -> Vec<Report> {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + timeout;
    let mut reports = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !enough(&reports) {
        if let Ok(n) = socket.recv(&mut buf) {
            let report = Report::parse(Bytes::copy_from_slice(&buf[..n])).expect("a valid report");
            reports.push(report);
        }
    }
    reports
}

/// Checks one probe report; returns (path ID, sequence).
fn check_probe(report: &Report, sent_before: u64) -> (u8, u64) {
    let body = ProbeBody::decode(report.payload()).expect("a probe body in the report");
    assert_eq!(body.node_id, 1, "h1 sent it");
    assert_eq!(report.group().node_id, 2, "h2 reported it");
    let ids: Vec<u32> = report.path().filter_map(|h| h.switch_id()).collect();
    let want = if body.path_id == 1 {
        assert_eq!(body.label, LABEL_VIA_S2);
        vec![1, 2, 4]
    } else {
        assert_eq!((body.path_id, body.label), (2, LABEL_VIA_S3));
        vec![1, 3, 4]
    };
    assert_eq!(report.hop_count(), 3, "three switches");
    assert_eq!(ids, want, "switch IDs in path order");
    // Time never goes back: sent ≤ each hop's ingress ≤ its egress ≤ the
    // next hop's ingress ≤ … ≤ the sink.
    let mut t = body.sent_ns;
    assert!(t <= sent_before);
    for hop in report.path() {
        let (i, e) = (
            hop.ingress_timestamp().expect("ingress timestamp"),
            hop.egress_timestamp().expect("egress timestamp"),
        );
        assert!(t <= i && i <= e, "timestamps {t} ≤ {i} ≤ {e}");
        t = e;
    }
    let sink = report
        .node_metadata()
        .and_then(|m| m.ingress_timestamp())
        .expect("the sink's timestamp");
    assert!(t <= sink, "last egress {t} ≤ sink {sink}");
    (body.path_id, body.sequence)
}

/// Bytes a datagram of `payload` bytes counts at the host's TC egress:
/// Ethernet, IPv4, UDP headers and the payload.
fn frame_len(payload: usize) -> i64 {
    i64::try_from(14 + 20 + 8 + payload).unwrap()
}

/// The flow bucket of a UDP flow from h1 to h2's data port.
fn bucket_of(sport: u16) -> u32 {
    solyx_ebpf_common::host::flow_bucket([10, 0, 1, 1], [10, 0, 2, 2], 17, sport, DATA_PORT)
}

/// After the elephant (`seq` datagrams of 1000 bytes from `data`), sends
/// three small flows and reads the largest flows of h1 over P4Runtime.
async fn check_elephants(
    t: &Topology,
    h1s: &DeviceSession,
    hx: &P4InfoIndex,
    data: &UdpSocket,
    int_sender: &UdpSocket,
    seq: u64,
) {
    use solyx::p4rt::{ClientError, FiveTuple};

    let elephant_port = data.local_addr().unwrap().port();
    let elephant = FiveTuple {
        src: Ipv4Addr::new(10, 0, 1, 1),
        dst: Ipv4Addr::new(10, 0, 2, 2),
        proto: 17,
        sport: elephant_port,
        dport: DATA_PORT,
    };
    // Three small flows, from ports whose buckets no other flow of the test
    // uses (a shared bucket would add up, which is not what is checked).
    let int_port = int_sender.local_addr().unwrap().port();
    let int_bucket = solyx_ebpf_common::host::flow_bucket(
        [10, 0, 1, 1],
        [10, 0, 2, 2],
        17,
        int_port,
        INT_APP_PORT,
    );
    let mut taken = vec![bucket_of(elephant_port), int_bucket];
    let mut small = Vec::new();
    for port in 42_000u16.. {
        if small.len() == 3 {
            break;
        }
        if !taken.contains(&bucket_of(port)) {
            taken.push(bucket_of(port));
            small.push(port);
        }
    }
    let small_packets = [5usize, 3, 2];
    let small_payload = 200;
    for (port, packets) in small.iter().zip(small_packets) {
        let socket = in_netns(&t.ns("h1"), || {
            UdpSocket::bind(("10.0.1.1", *port)).unwrap()
        });
        for _ in 0..packets {
            socket
                .send_to(&[0x5a; 200], ("10.0.2.2", DATA_PORT))
                .unwrap();
        }
    }

    let top = h1s.elephants(hx, 5).await.expect("read the largest flows");
    println!("elephants of h1:");
    for e in &top {
        println!(
            "  bucket {:>4} {:>8} packets {:>10} bytes  {}",
            e.bucket,
            e.packets,
            e.bytes,
            e.flow.map_or_else(|| "?".to_string(), |f| f.to_string())
        );
    }
    let sent = i64::try_from(seq).unwrap();
    assert_eq!(top[0].flow, Some(elephant), "the elephant first: {top:?}");
    assert_eq!(top[0].bucket, i64::from(bucket_of(elephant_port)));
    assert_eq!(
        (top[0].packets, top[0].bytes),
        (sent, sent * frame_len(1000)),
        "the elephant's packets and bytes as sent"
    );
    for (n, (port, packets)) in small.iter().zip(small_packets).enumerate() {
        let e = &top[n + 1];
        let packets = i64::try_from(packets).unwrap();
        assert_eq!(
            (e.flow, e.packets, e.bytes),
            (
                Some(FiveTuple {
                    sport: *port,
                    ..elephant
                }),
                packets,
                packets * frame_len(small_payload)
            ),
            "small flow {n} from port {port}: {top:?}"
        );
    }
    // The fifth and last: the one INT datagram (to port 6000).
    assert_eq!(
        top.len(),
        5,
        "five flows left h1 by a labelled path: {top:?}"
    );
    assert_eq!(
        (top[4].flow.map(|f| (f.sport, f.dport)), top[4].packets),
        (Some((int_port, INT_APP_PORT)), 1),
        "{top:?}"
    );

    // The register itself: one cell by index, and every cell.
    let register = hx.registers.by_name("flow_key_register").unwrap().id;
    let cell = |r: &p4::RegisterEntry| match r.data.as_ref().and_then(|d| d.data.as_ref()) {
        Some(p4::p4_data::Data::Bitstring(b)) => b.clone(),
        other => panic!("a bitstring cell, not {other:?}"),
    };
    let bucket = i64::from(bucket_of(elephant_port));
    let one = h1s
        .read_register(register, Some(bucket))
        .await
        .expect("read one cell");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].index.map(|i| i.index), Some(bucket));
    let mut want = vec![10, 0, 1, 1, 10, 0, 2, 2, 17];
    want.extend_from_slice(&elephant_port.to_be_bytes());
    want.extend_from_slice(&DATA_PORT.to_be_bytes());
    assert_eq!(cell(&one[0]), want, "src ++ dst ++ proto ++ sport ++ dport");
    let all = h1s
        .read_register(register, None)
        .await
        .expect("read every cell");
    assert_eq!(all.len(), 4096, "one entity per flow bucket");
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, r)| r.register_id == register
            && r.index.map(|x| x.index) == Some(i64::try_from(i).unwrap())));
    for port in &small {
        let b = usize::try_from(bucket_of(*port)).unwrap();
        let flow = FiveTuple::from_cell(&cell(&all[b])).unwrap();
        assert_eq!((flow.sport, flow.dport), (*port, DATA_PORT));
    }
    let unused = (0..4096u32).find(|b| !taken.contains(b)).unwrap();
    assert_eq!(
        cell(&all[usize::try_from(unused).unwrap()]),
        vec![0],
        "a bucket no flow used"
    );

    // An index outside the register: INVALID_ARGUMENT naming it.
    match h1s.read_register(register, Some(4096)).await {
        Err(ClientError::Rpc { status, .. }) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
            assert!(
                status.message().contains("flow_key_register")
                    && status.message().contains("outside 0..4096"),
                "{status}"
            );
        }
        other => panic!("index 4096 refused, not {other:?}"),
    }
    // The program owns the cells: a write is refused.
    let write = p4::Entity {
        entity: Some(p4::entity::Entity::RegisterEntry(p4::RegisterEntry {
            register_id: register,
            index: Some(p4::Index { index: 0 }),
            data: Some(p4::P4Data {
                data: Some(p4::p4_data::Data::Bitstring(vec![1])),
            }),
        })),
    };
    let results = h1s.modify(vec![write]).await.expect("a write answer");
    let e = results[0]
        .as_ref()
        .expect_err("a register write is refused");
    assert_eq!(e.code, tonic::Code::Unimplemented, "{e}");
    assert!(e.message.contains("register"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_paths_probes_reports_and_weights() {
    if !can_run("two_paths_probes_reports_and_weights") {
        return;
    }
    let mut t = Topology::new("hostpaths", "hp", &["h1", "s1", "s2", "s3", "s4", "h2"]);
    t.link(("h1", "h1", MAC_H1), ("s1", "s1h", MAC_S1H));
    t.link(("s1", "s12", MAC_S12), ("s2", "s21", MAC_S21));
    t.link(("s1", "s13", MAC_S13), ("s3", "s31", MAC_S31));
    t.link(("s2", "s24", MAC_S24), ("s4", "s42", MAC_S42));
    t.link(("s3", "s34", MAC_S34), ("s4", "s43", MAC_S43));
    t.link(("s4", "s4h", MAC_S4H), ("h2", "h2", MAC_H2));
    t.host(
        "h1",
        "h1",
        "10.0.1.1/24",
        "10.0.1.254",
        MAC_S1H,
        &["10.0.2.0/24"],
    );
    t.host(
        "h2",
        "h2",
        "10.0.2.2/24",
        "10.0.2.254",
        MAC_S4H,
        &["10.0.1.0/24"],
    );

    let s1 = Switch::start(&t, "s1", 1, &[(1, "s1h"), (2, "s12"), (3, "s13")]).await;
    let s2 = Switch::start(&t, "s2", 2, &[(1, "s21"), (2, "s24")]).await;
    let s3 = Switch::start(&t, "s3", 3, &[(1, "s31"), (2, "s34")]).await;
    let s4 = Switch::start(&t, "s4", 4, &[(1, "s42"), (2, "s43"), (3, "s4h")]).await;
    let fx = fabric::index();
    let _s1 = program_switch(
        &s1,
        1,
        &[(1, MAC_S1H), (2, MAC_S12), (3, MAC_S13)],
        vec![
            fabric::mpls_transit(&fx, LABEL_VIA_S2, 2),
            fabric::mpls_transit(&fx, LABEL_VIA_S3, 3),
        ],
    )
    .await;
    let _s2 = program_switch(
        &s2,
        2,
        &[(1, MAC_S21), (2, MAC_S24)],
        vec![fabric::mpls_transit(&fx, LABEL_VIA_S2, 2)],
    )
    .await;
    let _s3 = program_switch(
        &s3,
        3,
        &[(1, MAC_S31), (2, MAC_S34)],
        vec![fabric::mpls_transit(&fx, LABEL_VIA_S3, 2)],
    )
    .await;
    let _s4 = program_switch(
        &s4,
        4,
        &[(1, MAC_S42), (2, MAC_S43), (3, MAC_S4H)],
        vec![
            fabric::mpls_pop(&fx, LABEL_VIA_S2, 3, MAC_H2),
            fabric::mpls_pop(&fx, LABEL_VIA_S3, 3, MAC_H2),
        ],
    )
    .await;

    // The collector listens on h2's loopback.
    let collector = in_netns(&t.ns("h2"), || UdpSocket::bind("127.0.0.1:0").unwrap());
    let collector_addr = collector.local_addr().unwrap();
    let h2 = start_host(
        &t,
        "h2",
        2,
        "h2",
        HostOptions {
            collector: Some(collector_addr),
            probe_rate: 0,
            flowlet_gap: Duration::from_micros(500),
        },
    )
    .await;
    let h1 = start_host(
        &t,
        "h1",
        1,
        "h1",
        HostOptions {
            collector: None,
            probe_rate: 200,
            flowlet_gap: Duration::from_micros(500),
        },
    )
    .await;

    // The host agent keeps TCP from handing its port multi-segment GSO
    // packets, which would leave unlabelled.
    let link = std::process::Command::new("ip")
        .args(["-n", &t.ns("h1"), "-d", "link", "show", &t.dev("h1")])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(link.contains("gso_max_segs 1 "), "{link}");

    let hx = P4InfoIndex::from_text(HOST_P4INFO).unwrap();
    // A fabric P4Info is refused by the host, naming what it runs.
    let refused =
        DeviceSession::start(SessionConfig::new(h1.server.endpoint().to_string(), 1, 10)).unwrap();
    refused.wait_primary(fabric::WAIT).await.unwrap();
    let e = refused
        .set_pipeline(fx.p4info().clone(), Vec::new(), false)
        .await
        .expect_err("solyx_fabric refused by the host");
    assert!(e.to_string().contains("solyx_host"), "{e}");
    drop(refused);

    let h2s = host_session(h2.server.endpoint(), 2, &hx).await;
    install(
        &h2s,
        vec![
            sink_port(&hx, PROBE_PORT, "int_sink_consume"),
            sink_port(&hx, INT_APP_PORT, "int_sink_strip"),
        ],
    )
    .await;
    let h1s = host_session(h1.server.endpoint(), 1, &hx).await;
    let route = hx
        .table_entry("host_route")
        .unwrap()
        .lpm("ipv4_dst", Ipv4Addr::new(10, 0, 2, 0), 24)
        .unwrap()
        .group(10)
        .unwrap()
        .build()
        .unwrap();
    install(
        &h1s,
        vec![
            path_member(&hx, 1, LABEL_VIA_S2, 1),
            path_member(&hx, 2, LABEL_VIA_S3, 2),
            path_group(&hx, &[(1, 1), (2, 1)]),
            route,
        ],
    )
    .await;

    // ---- Probes along both paths -----------------------------------------
    let probes = collect(&collector, Duration::from_secs(5), |r| {
        let mut per_path = BTreeMap::<u8, usize>::new();
        for report in r {
            if let Some(b) = ProbeBody::decode(report.payload()) {
                *per_path.entry(b.path_id).or_default() += 1;
            }
        }
        per_path.len() == 2 && per_path.values().all(|n| *n >= 40)
    });
    let now = tai_now();
    let mut sequences = BTreeMap::<u8, Vec<u64>>::new();
    for report in &probes {
        let (path, seq) = check_probe(report, now);
        sequences.entry(path).or_default().push(seq);
    }
    assert_eq!(sequences.len(), 2, "both paths probed: {sequences:?}");
    for (path, seqs) in &sequences {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "path {path}: in order"
        );
        let span = seqs.last().unwrap() - seqs.first().unwrap() + 1;
        assert!(
            seqs.len() as u64 * 10 >= span * 9,
            "path {path}: {} of {span} probes arrived",
            seqs.len()
        );
    }
    println!(
        "probes: {} reports, per path {:?}",
        probes.len(),
        sequences
            .iter()
            .map(|(p, s)| (p, s.len()))
            .collect::<Vec<_>>()
    );

    // ---- INT-instrumented application traffic ---------------------------
    let app = in_netns(&t.ns("h2"), || {
        UdpSocket::bind(("10.0.2.2", INT_APP_PORT)).unwrap()
    });
    app.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let sender = in_netns(&t.ns("h1"), || UdpSocket::bind("10.0.1.1:0").unwrap());
    let message = b"an application payload behind INT";
    let mut datagram = BytesMut::new();
    IntMdBuilder::new(
        Instructions::SWITCH_ID | Instructions::HOP_LATENCY,
        8,
        Stack::Hops(&[]),
    )
    .write(&mut datagram)
    .unwrap();
    datagram.extend_from_slice(message);
    sender
        .send_to(&datagram, ("10.0.2.2", INT_APP_PORT))
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = app
        .recv(&mut buf)
        .expect("the application gets the datagram");
    assert_eq!(&buf[..n], message, "delivered without INT");
    let reports = collect(&collector, Duration::from_secs(3), |r| {
        r.iter().any(|r| r.payload().starts_with(message))
    });
    let report = reports
        .iter()
        .find(|r| r.payload().starts_with(message))
        .expect("a report of the application datagram");
    assert_eq!(report.hop_count(), 3);
    let ids: Vec<u32> = report.path().filter_map(|h| h.switch_id()).collect();
    assert!(ids == [1, 2, 4] || ids == [1, 3, 4], "{ids:?}");
    let solyx_int::Transport::Udp(udp) = report.transport() else {
        panic!("a UDP inner packet");
    };
    assert_eq!(udp.dst_port, INT_APP_PORT);

    // The sink's counters reach Prometheus as the map holds them.
    let registry = prometheus::Registry::new();
    registry
        .register(Box::new(
            host::HostEventMetrics::new(h2.node.dataplane.clone()).unwrap(),
        ))
        .unwrap();
    let exported = h2
        .node
        .dataplane
        .with_host(|h| h.event(solyx_ebpf_common::host::HostEvent::IntExported))
        .unwrap();
    let family = registry.gather();
    let family = family
        .iter()
        .find(|f| f.name() == "solyx_host_events_total")
        .expect("the host events family");
    let scraped = family
        .get_metric()
        .iter()
        .find(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "event" && l.value() == "int_exported")
        })
        .expect("an int_exported series")
        .get_counter()
        .get_value();
    assert!(
        exported > 0,
        "the sink exported the probes and the datagram"
    );
    // Probes keep arriving between the two reads.
    assert!(scraped >= exported as f64, "{scraped} < {exported}");
    assert_eq!(family.get_metric().len(), 16, "every event has a series");

    // ---- Weights, flowlets, no reordering --------------------------------
    let receiver = in_netns(&t.ns("h2"), || {
        UdpSocket::bind(("10.0.2.2", DATA_PORT)).unwrap()
    });
    receiver
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let data = in_netns(&t.ns("h1"), || UdpSocket::bind("10.0.1.1:0").unwrap());
    let mut seq = 0u64;
    let mut shares = Vec::new();
    for (phase, weights) in [(1, [(1, 1), (2, 1)]), (2, [(1, 3), (2, 1)])] {
        if phase == 2 {
            fabric::all_ok(h1s.modify(vec![path_group(&hx, &weights)]).await.unwrap());
        }
        let before = (
            path_bytes(&h1s, &hx, 1).await,
            path_bytes(&h1s, &hx, 2).await,
        );
        let first = seq;
        let bursts = 200;
        let per_burst = 6;
        // Read while sending: the socket buffer holds less than a phase.
        let expected = bursts * per_burst;
        let socket = receiver.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while (got.len() as u64) < expected {
                match socket.recv(&mut buf) {
                    Ok(n) if n >= 8 => got.push(u64::from_be_bytes(buf[..8].try_into().unwrap())),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            got
        });
        for _ in 0..bursts {
            for _ in 0..per_burst {
                let mut payload = [0u8; 1000];
                payload[..8].copy_from_slice(&seq.to_be_bytes());
                data.send_to(&payload, ("10.0.2.2", DATA_PORT)).unwrap();
                seq += 1;
            }
            // A pause well above the 500 µs flowlet gap: the next burst
            // may take the other path.
            std::thread::sleep(Duration::from_millis(2));
        }
        let got = reader.join().expect("receiver thread");
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "phase {phase}: received out of order"
        );
        assert!(
            got.len() as u64 * 100 >= (seq - first) * 99,
            "phase {phase}: {} of {} arrived",
            got.len(),
            seq - first
        );
        let after = (
            path_bytes(&h1s, &hx, 1).await,
            path_bytes(&h1s, &hx, 2).await,
        );
        let (a, b) = (after.0 - before.0, after.1 - before.1);
        assert!(a + b > 0);
        let share = a as f64 / (a + b) as f64;
        println!(
            "phase {phase} weights {weights:?}: path 1 carried {share:.3} of {} bytes",
            a + b
        );
        shares.push(share);
    }
    assert!(
        (0.38..=0.62).contains(&shares[0]),
        "weights 1:1: path 1 share {:.3} not within 0.5 ± 0.12",
        shares[0]
    );
    assert!(
        (0.63..=0.87).contains(&shares[1]),
        "weights 3:1: path 1 share {:.3} not within 0.75 ± 0.12",
        shares[1]
    );
    // The elephant: the data flow's bucket of flow_bytes_counter, read
    // over P4Runtime with a wildcard index, holds the most bytes by far.
    let flows = h1s
        .read_counter(hx.counters.by_name("flow_bytes_counter").unwrap().id, None)
        .await
        .expect("read flow_bytes_counter");
    let mut bytes: Vec<i64> = flows
        .iter()
        .filter_map(|c| c.data.as_ref())
        .map(|d| d.byte_count)
        .filter(|b| *b > 0)
        .collect();
    bytes.sort_unstable_by(|a, b| b.cmp(a));
    let sent = i64::try_from(seq).unwrap() * 1000;
    assert!(
        bytes[0] >= sent,
        "largest bucket {} < {sent} bytes sent",
        bytes[0]
    );
    assert!(
        bytes.get(1).is_none_or(|second| bytes[0] > 100 * second),
        "the elephant stands out: {:?}",
        &bytes[..bytes.len().min(4)]
    );
    check_elephants(&t, &h1s, &hx, &data, &sender, seq).await;

    let exported = h2
        .node
        .exporter
        .as_ref()
        .unwrap()
        .stats()
        .exported
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(exported as usize >= probes.len());
    drop((s1, s2, s3, s4));
}
