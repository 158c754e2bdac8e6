//! The eBPF fabric switch programmed through the controller's P4Runtime
//! client (`solyx::p4rt::DeviceSession`), forwarding real traffic between
//! network namespaces:
//!
//! ```text
//!   h1 (10.77.1.1) ── p1 ┌────┐ p2 ── eth0 (10.77.2.2) h2
//!                        │ s1 │ p3 ── eth1 (10.77.3.2)    (10.77.9.9 on lo)
//!                        └────┘
//! ```
//!
//! s1 runs `EbpfFabricDataplane` on p1–p3 with an in-process P4Runtime
//! server; hosts reach s1 with static neighbours (the switch answers no
//! ARP). Routes to 10.77.1.0/24 and 10.77.2.0/24 point at members; the
//! route to 10.77.9.0/24 at a WCMP group over p2 and p3, weights 3:1.
//!
//! Needs root and the eBPF object; skips otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use solyx_agent::ebpf::common::DropReason;
use switch::fabric::{self, index, install, session};
use switch::packet::{link_packets, PacketSocket, UdpFrame, ETHERTYPE_IPV4};
use switch::{can_run, in_netns, netns_exec, Switch, Topology};

const H1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x01, 0x01];
const S1_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x01, 0xfe];
const S1_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x02, 0xfe];
const H2_E0: [u8; 6] = [0x02, 0x5f, 0, 0, 0x02, 0x02];
const S1_P3: [u8; 6] = [0x02, 0x5f, 0, 0, 0x03, 0xfe];
const H2_E1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x03, 0x02];

const H1_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
const H2_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);
const H2_ANYCAST: Ipv4Addr = Ipv4Addr::new(10, 77, 9, 9);

/// h1 — s1 — h2 (two links), addressed and routed on the hosts.
fn topology(test: &str, tag: &str) -> Topology {
    let mut t = Topology::new(test, tag, &["h1", "s1", "h2"]);
    t.link(("h1", "h1", H1), ("s1", "p1", S1_P1));
    t.link(("s1", "p2", S1_P2), ("h2", "e0", H2_E0));
    t.link(("s1", "p3", S1_P3), ("h2", "e1", H2_E1));
    t.host(
        "h1",
        "h1",
        "10.77.1.1/24",
        "10.77.1.254",
        S1_P1,
        &["10.77.0.0/16"],
    );
    t.host(
        "h2",
        "e0",
        "10.77.2.2/24",
        "10.77.2.254",
        S1_P2,
        &["10.77.1.0/24"],
    );
    t.host("h2", "e1", "10.77.3.2/24", "10.77.3.254", S1_P3, &[]);
    let h2 = t.ns("h2");
    switch::ip(&["-n", &h2, "addr", "add", "10.77.9.9/32", "dev", "lo"]);
    for key in ["all", "default", &t.dev("e0"), &t.dev("e1")] {
        let sysctl = format!("net.ipv4.conf.{key}.rp_filter=0");
        let _ = netns_exec(&h2, &["sysctl", "-q", "-w", &sysctl]);
    }
    t
}

/// s1 with its three ports, a session with the pipeline, the egress
/// rewrites and the two host routes.
async fn switch_with_routes(t: &Topology) -> (Switch, solyx::p4rt::DeviceSession) {
    let s1 = Switch::start(t, "s1", 1, &[(1, "p1"), (2, "p2"), (3, "p3")]).await;
    let s = session(&s1.endpoint(), 1).await;
    let ix = index();
    install(
        &s,
        vec![
            fabric::egress_rewrite(&ix, 1, S1_P1),
            fabric::egress_rewrite(&ix, 2, S1_P2),
            fabric::egress_rewrite(&ix, 3, S1_P3),
            fabric::member(&ix, 1, 1, H1),
            fabric::member(&ix, 2, 2, H2_E0),
            fabric::member(&ix, 3, 3, H2_E1),
        ],
    )
    .await;
    install(
        &s,
        vec![
            fabric::route_to_member(&ix, Ipv4Addr::new(10, 77, 1, 0), 24, 1),
            fabric::route_to_member(&ix, Ipv4Addr::new(10, 77, 2, 0), 24, 2),
        ],
    )
    .await;
    (s1, s)
}

/// Sends `count` datagrams from `from` (in `ns`) to `to`, each with its
/// own payload `tag-i`.
fn send_udp(ns: &str, from: (Ipv4Addr, u16), to: (Ipv4Addr, u16), tag: &str, count: usize) {
    in_netns(ns, || {
        let socket = UdpSocket::bind(from).expect("bind sender");
        for i in 0..count {
            socket
                .send_to(format!("{tag}-{i}").as_bytes(), to)
                .expect("send");
        }
    });
}

/// Datagrams `socket` receives until `count` arrived or 3 s passed.
fn receive_udp(socket: &UdpSocket, count: usize) -> Vec<(String, Ipv4Addr)> {
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < count && Instant::now() < deadline {
        let mut buf = [0u8; 2048];
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let ip = match from.ip() {
                std::net::IpAddr::V4(ip) => ip,
                std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            got.push((String::from_utf8_lossy(&buf[..n]).into_owned(), ip));
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_carry_udp_and_icmp_both_ways() {
    if !can_run("routes_carry_udp_and_icmp_both_ways") {
        return;
    }
    let t = topology("route", "r");
    let (s1, s) = switch_with_routes(&t).await;
    let ix = index();
    let (h1, h2) = (t.ns("h1"), t.ns("h2"));

    // UDP h1 → h2, watched on h2's wire too.
    const N: usize = 20;
    let h2_ifindex = in_netns(&h2, || {
        nix::net::if_::if_nametoindex(t.dev("e0").as_str()).expect("ifindex")
    });
    let (rx2, capture) = in_netns(&h2, || {
        (
            UdpSocket::bind((H2_IP, 5000)).expect("bind h2"),
            PacketSocket::bind(h2_ifindex).expect("capture"),
        )
    });
    send_udp(&h1, (H1_IP, 40000), (H2_IP, 5000), "to-h2", N);
    let got = receive_udp(&rx2, N);
    assert_eq!(got.len(), N, "h2 got {} of {N} datagrams", got.len());
    assert!(got.iter().all(|(_, from)| *from == H1_IP));
    let frames = capture
        .receive_all(Duration::from_millis(300))
        .expect("capture");
    let ours: Vec<_> = frames
        .iter()
        .filter(|f| f.len() > 42 && f[12..14] == ETHERTYPE_IPV4.to_be_bytes() && f[23] == 17)
        .collect();
    assert!(ours.len() >= N, "captured {} UDP frames", ours.len());
    for f in &ours {
        assert_eq!(&f[0..6], &H2_E0, "destination MAC is the next hop's");
        assert_eq!(&f[6..12], &S1_P2, "source MAC is the egress port's");
        assert_eq!(f[22], 63, "TTL decremented");
        assert_eq!(
            switch::packet::ipv4_checksum(&f[14..34]),
            0,
            "header checksum fixed"
        );
    }

    // UDP h2 → h1.
    let rx1 = in_netns(&h1, || UdpSocket::bind((H1_IP, 5001)).expect("bind h1"));
    send_udp(&h2, (H2_IP, 40001), (H1_IP, 5001), "to-h1", N);
    let back = receive_udp(&rx1, N);
    assert_eq!(back.len(), N, "h1 got {} of {N} datagrams", back.len());

    // ICMP echo both ways (the reply is routed back by s1).
    let ping = netns_exec(
        &h1,
        &["ping", "-c", "5", "-i", "0.2", "-W", "2", "10.77.2.2"],
    );
    let out = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success() && out.contains(" 0% packet loss"),
        "ping: {out}"
    );

    // Counters, over P4Runtime.
    let rx_p1 = fabric::counter_packets(&s, &ix, "ingress_port_counter", 1).await;
    let rx_p2 = fabric::counter_packets(&s, &ix, "ingress_port_counter", 2).await;
    let route_hits = fabric::table_hits(&s, &ix, "ipv4_route").await;
    let rewrite_hits = fabric::table_hits(&s, &ix, "egress_rewrite").await;
    let drops = s1
        .dataplane
        .with_fabric(|f| f.drop_counts().expect("drops"));
    eprintln!(
        "UDP {N}+{N} and 5 pings delivered; port 1 rx {rx_p1}, port 2 rx {rx_p2}, route hits \
         {route_hits}, egress rewrite hits {rewrite_hits}; drops {drops:?}"
    );
    assert!(rx_p1 >= (N + 5) as i64, "port 1 rx {rx_p1}");
    assert!(rx_p2 >= (N + 5) as i64, "port 2 rx {rx_p2}");
    assert!(route_hits >= (2 * N + 10) as i64, "route hits {route_hits}");
    assert!(
        rewrite_hits >= (2 * N + 10) as i64,
        "rewrite hits {rewrite_hits}"
    );
    s.close();
    drop(s1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wcmp_group_spreads_flows_3_to_1() {
    if !can_run("wcmp_group_spreads_flows_3_to_1") {
        return;
    }
    let t = topology("wcmp", "w");
    let (s1, s) = switch_with_routes(&t).await;
    let ix = index();
    install(&s, vec![fabric::group(&ix, 10, &[(2, 3), (3, 1)])]).await;
    install(
        &s,
        vec![fabric::route_to_group(
            &ix,
            Ipv4Addr::new(10, 77, 9, 0),
            24,
            10,
        )],
    )
    .await;

    let s1_ns = t.ns("s1");
    let (p2, p3) = (t.dev("p2"), t.dev("p3"));
    let before = (link_packets(&s1_ns, &p2).1, link_packets(&s1_ns, &p3).1);
    // 400 flows that differ in their source port, one datagram each.
    const FLOWS: u16 = 400;
    in_netns(&t.ns("h1"), || {
        for i in 0..FLOWS {
            let socket = UdpSocket::bind((H1_IP, 20000 + i)).expect("bind flow");
            socket.send_to(b"flow", (H2_ANYCAST, 7000)).expect("send");
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let after = (link_packets(&s1_ns, &p2).1, link_packets(&s1_ns, &p3).1);
    let (on_p2, on_p3) = (after.0 - before.0, after.1 - before.1);
    let share = on_p2 as f64 / (on_p2 + on_p3).max(1) as f64;
    eprintln!(
        "WCMP 3:1 over {FLOWS} flows: {on_p2} on port 2, {on_p3} on port 3 (share {share:.3})"
    );
    assert_eq!(on_p2 + on_p3, u64::from(FLOWS), "every flow forwarded once");
    // Tolerance: the expected share of the weight-3 link is 0.75; allow
    // ±0.08 (the hash is CRC-16 of the 5-tuple, not a random choice).
    assert!((0.67..=0.83).contains(&share), "share of port 2: {share}");
    s.close();
    drop(s1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_punts_drops_permits_and_packet_out_reaches_h2() {
    if !can_run("acl_punts_drops_permits_and_packet_out_reaches_h2") {
        return;
    }
    let t = topology("acl", "a");
    let (s1, s) = switch_with_routes(&t).await;
    let ix = index();
    install(
        &s,
        vec![
            fabric::acl_udp(&ix, 10, 7777, 0xffff, "punt_to_cpu"),
            // 7792..=7807 dropped, but 7801 permitted by a higher priority.
            fabric::acl_udp(&ix, 10, 7792, 0xfff0, "drop"),
            fabric::acl_udp(&ix, 20, 7801, 0xffff, "permit"),
        ],
    )
    .await;
    let (h1, h2) = (t.ns("h1"), t.ns("h2"));
    let mut packet_ins = s.packet_ins();

    // Punt: the frame reaches the controller with its ingress port.
    let rx = in_netns(&h2, || UdpSocket::bind((H2_IP, 7777)).expect("bind"));
    send_udp(&h1, (H1_IP, 41000), (H2_IP, 7777), "punt-me", 1);
    let packet = tokio::time::timeout(Duration::from_secs(5), packet_ins.recv())
        .await
        .expect("a packet-in within 5 s")
        .expect("packet-in");
    let meta = ix.decode_packet_metadata("packet_in", &packet.metadata);
    let port = meta
        .iter()
        .find(|(name, _)| name == "ingress_port")
        .map(|(_, v)| v.clone())
        .expect("ingress_port");
    assert_eq!(port, vec![1u8], "ingress port 1");
    assert_eq!(&packet.payload[0..6], &S1_P1, "the frame as it arrived");
    assert!(
        String::from_utf8_lossy(&packet.payload).contains("punt-me-0"),
        "payload"
    );
    assert!(
        receive_udp(&rx, 1).is_empty(),
        "a punted packet is not forwarded"
    );

    // Overlapping rules: the higher priority wins.
    let (ok_rx, dropped_rx) = in_netns(&h2, || {
        (
            UdpSocket::bind((H2_IP, 7801)).expect("bind"),
            UdpSocket::bind((H2_IP, 7802)).expect("bind"),
        )
    });
    send_udp(&h1, (H1_IP, 41001), (H2_IP, 7801), "permitted", 3);
    send_udp(&h1, (H1_IP, 41002), (H2_IP, 7802), "denied", 3);
    assert_eq!(
        receive_udp(&ok_rx, 3).len(),
        3,
        "priority 20 permit beats priority 10 drop"
    );
    assert!(receive_udp(&dropped_rx, 1).is_empty(), "dropped by the ACL");
    let denied = s1
        .dataplane
        .with_fabric(|f| f.drop_count(DropReason::AclDeny).expect("drops"));
    assert_eq!(denied, 3, "ACL drops counted");
    let acl_hits = fabric::table_hits(&s, &ix, "acl").await;
    assert!(acl_hits >= 7, "ACL hits over P4Runtime: {acl_hits}");

    // Packet-out: a frame the controller built leaves on port 2 and
    // reaches h2's UDP socket.
    let out_rx = in_netns(&h2, || UdpSocket::bind((H2_IP, 7900)).expect("bind"));
    let frame = UdpFrame {
        dst_mac: H2_E0,
        src_mac: S1_P2,
        label: None,
        src_ip: Ipv4Addr::new(10, 77, 2, 254),
        dst_ip: H2_IP,
        ttl: 64,
        src_port: 9,
        dst_port: 7900,
        payload: b"from-the-controller",
    }
    .build();
    s.packet_out_named(frame, &[("egress_port", &2u16)])
        .await
        .expect("packet-out");
    let got = receive_udp(&out_rx, 1);
    assert_eq!(got.len(), 1, "packet-out delivered");
    assert_eq!(got[0].0, "from-the-controller");
    let counts = s1.dataplane.packet_in_counts();
    eprintln!("ACL: punted 1 (packet-ins {counts:?}), permitted 3, denied {denied}; ACL hits {acl_hits}; packet-out delivered");
    s.close();
    drop(s1);
}
