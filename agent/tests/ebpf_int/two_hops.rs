//! Two hops over veths: h1 — s1 — s2 — h2 in namespaces with MPLS label
//! forwarding and INT transit, and the queue occupancy under a tbf.

use super::*;

// ---------------------------------------------------------------------------
// Two hops over veths
// ---------------------------------------------------------------------------

pub(crate) const MAC_H1: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x01, 0x01];
pub(crate) const MAC_S1_P1: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x01, 0xfe];
pub(crate) const MAC_S1_P2: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x12, 0x01];
pub(crate) const MAC_S2_P1: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x12, 0x02];
pub(crate) const MAC_S2_P2: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x02, 0xfe];
pub(crate) const MAC_H2: [u8; 6] = [0x02, 0x5e, 0x10, 0x00, 0x02, 0x02];
pub(crate) const LABEL: u32 = 100;
pub(crate) const INT_PORT: u16 = 5555;
pub(crate) const PATH_BITMAP: u16 = INSTR_SWITCH_ID
    | INSTR_L1_PORTS
    | INSTR_HOP_LATENCY
    | INSTR_QUEUE
    | INSTR_INGRESS_TSTAMP
    | INSTR_EGRESS_TSTAMP
    | INSTR_TX_UTIL;

/// Interface names of the path topology (unique per test process).
pub(crate) struct PathNames {
    pub(crate) h1: String,
    pub(crate) s1p1: String,
    pub(crate) s1p2: String,
    pub(crate) s2p1: String,
    pub(crate) s2p2: String,
    pub(crate) h2: String,
}

impl PathNames {
    pub(crate) fn new(tag: char) -> Self {
        let pid = std::process::id();
        let name = |role: &str| format!("sxi{pid}{tag}{role}");
        Self {
            h1: name("h1"),
            s1p1: name("a1"),
            s1p2: name("a2"),
            s2p1: name("b1"),
            s2p2: name("b2"),
            h2: name("h2"),
        }
    }
}

/// A switch of the path: its fabric, INT stage and queue publisher.
pub(crate) struct Switch {
    pub(crate) fabric: Fabric,
    pub(crate) int: IntTransit,
    pub(crate) publisher: Option<QueuePublisher>,
}

/// h1 — s1 — s2 — h2; label 100 is forwarded by s1 and popped by s2; INT
/// transit on every switch port with switch IDs 1 and 2; the queue
/// publisher runs on both switches.
pub(crate) fn build_path(
    namespaces: &mut Namespaces,
    names: &PathNames,
    pins: [&Pins; 2],
    period: Duration,
) -> [Switch; 2] {
    let (h1, s1, s2, h2) = (
        namespaces.get("h1"),
        namespaces.get("s1"),
        namespaces.get("s2"),
        namespaces.get("h2"),
    );
    namespaces.add_veth((&h1, &names.h1, MAC_H1), (&s1, &names.s1p1, MAC_S1_P1));
    namespaces.add_veth((&s1, &names.s1p2, MAC_S1_P2), (&s2, &names.s2p1, MAC_S2_P1));
    namespaces.add_veth((&s2, &names.s2p2, MAC_S2_P2), (&h2, &names.h2, MAC_H2));
    for ns in [&h1, &s1, &s2, &h2] {
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    ip(&["-n", &h2, "addr", "add", "10.78.2.2/24", "dev", &names.h2]);
    ip(&["-n", &h2, "route", "add", "10.78.1.0/24", "dev", &names.h2]);

    // (destination MAC, source MAC, pop) of the label's next hop.
    let switch =
        |ns: &str, pins: &Pins, ports: [&str; 2], id: u32, next: ([u8; 6], [u8; 6], bool)| {
            in_netns(ns, || {
                let mut fabric = Fabric::load(&pins.instance).expect("load");
                fabric.attach(ports[0], 1).expect("attach port 1");
                let egress = fabric.attach(ports[1], 2).expect("attach port 2");
                let (dst_mac, src_mac, pop) = next;
                let flags = MPLS_FLAG_SET_DST_MAC
                    | MPLS_FLAG_SET_SRC_MAC
                    | if pop { MPLS_FLAG_POP } else { 0 };
                fabric
                    .insert_mpls_forward(
                        LABEL,
                        MplsForward {
                            egress_ifindex: egress,
                            egress_port: 2,
                            flags,
                            dst_mac,
                            src_mac,
                        },
                    )
                    .expect("label");
                let mut int = IntTransit::new(&mut fabric).expect("INT transit");
                for port in ports {
                    int.attach(&mut fabric, port).expect("attach egress");
                }
                int.set_switch_id(id).expect("switch id");
                int.insert_watch_rule(
                    WatchMatch {
                        priority: 1,
                        dscp: 0,
                        dscp_mask: 0,
                        l4_dst_port: INT_PORT,
                        l4_dst_port_mask: 0xffff,
                    },
                    WatchAction::Mark,
                )
                .expect("watch rule");
                let publisher = QueuePublisher::start(fabric.pin_dir(), period).expect("publisher");
                Switch {
                    fabric,
                    int,
                    publisher: Some(publisher),
                }
            })
        };
    let s1_switch = switch(
        &s1,
        pins[0],
        [&names.s1p1, &names.s1p2],
        1,
        (MAC_S2_P1, MAC_S1_P2, false),
    );
    let s2_switch = switch(
        &s2,
        pins[1],
        [&names.s2p1, &names.s2p2],
        2,
        (MAC_H2, MAC_S2_P2, true),
    );
    [s1_switch, s2_switch]
}

/// A labelled INT frame from h1 to h2's UDP port.
pub(crate) fn path_frame(hops: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Frame {
        label: Some(LABEL),
        ..Frame::udp(INT_PORT, Some(Int::md(PATH_BITMAP, hops)), payload)
    }
    .build();
    frame[..6].copy_from_slice(&MAC_S1_P1);
    frame[6..12].copy_from_slice(&MAC_H1);
    frame
}

/// Sends `frames` from h1's port with a packet socket.
pub(crate) fn send_from_h1(h1: &str, name: &str, frames: &[Vec<u8>]) {
    in_netns(h1, || {
        let ifindex = ifindex(name);
        let socket = packet::PacketSocket::bind(ifindex).expect("packet socket");
        for frame in frames {
            socket.send(frame).expect("send");
        }
    });
}

/// Waits until both publishers have completed a few rounds.
pub(crate) fn wait_for_publishers(switches: &[Switch; 2]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while switches
        .iter()
        .any(|s| s.publisher.as_ref().is_some_and(|p| p.rounds() < 3))
    {
        assert!(Instant::now() < deadline, "publishers did not run");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Receives `count` datagrams on `socket` (payload = INT headers + stack +
/// application payload).
pub(crate) fn receive(socket: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut out = Vec::new();
    while out.len() < count {
        let mut buf = [0u8; 4096];
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => out.push(buf[..n].to_vec()),
            Err(e) => panic!("h2 received {} of {count} datagrams: {e}", out.len()),
        }
    }
    out
}

/// The INT part of a received datagram: (shim len, rhc, hops newest first).
pub(crate) fn hops_of(datagram: &[u8]) -> (u8, u8, Vec<HopView>) {
    let shim_len = datagram[1];
    let rhc = datagram[7];
    let words = usize::from(words_of(PATH_BITMAP));
    let stack: Vec<u32> = datagram[16..4 + usize::from(shim_len) * 4]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let hops = stack
        .chunks(words)
        .map(|h| decode_hop(PATH_BITMAP, h))
        .collect();
    (shim_len, rhc, hops)
}

#[test]
fn two_hops_over_veths() {
    if !can_run("two_hops_over_veths") {
        return;
    }
    let mut namespaces = Namespaces::create("path", &["h1", "s1", "s2", "h2"]);
    let pins = [Pins::new("path-s1"), Pins::new("path-s2")];
    let names = PathNames::new('p');
    let switches = build_path(
        &mut namespaces,
        &names,
        [&pins[0], &pins[1]],
        Duration::from_millis(5),
    );
    wait_for_publishers(&switches);
    let (h1, h2) = (namespaces.get("h1"), namespaces.get("h2"));

    let (udp, capture) = in_netns(&h2, || {
        let udp = UdpSocket::bind(("10.78.2.2", INT_PORT)).expect("bind");
        let capture = packet::PacketSocket::bind(ifindex(&names.h2)).expect("capture");
        (udp, capture)
    });
    const PACKETS: usize = 5;
    let sent_at = tai_ns();
    let frames: Vec<Vec<u8>> = (0..PACKETS)
        .map(|i| path_frame(8, format!("int-path-{i}").as_bytes()))
        .collect();
    send_from_h1(&h1, &names.h1, &frames);

    // h2's UDP socket got them: its kernel checked the UDP checksum.
    let datagrams = receive(&udp, PACKETS);
    let received_at = tai_ns();
    let words = words_of(PATH_BITMAP);
    for (i, datagram) in datagrams.iter().enumerate() {
        let (shim_len, rhc, hops) = hops_of(datagram);
        assert_eq!(shim_len, 3 + 2 * words, "two hops of {words} words");
        assert_eq!(rhc, 6, "remaining hop count 8 - 2");
        assert_eq!(hops.len(), 2);
        let (s2, s1) = (hops[0], hops[1]);
        assert_eq!(s2.switch_id, Some(2), "newest hop first");
        assert_eq!(s1.switch_id, Some(1));
        assert_eq!(s1.ports, Some((1, 2)));
        assert_eq!(s2.ports, Some((1, 2)));
        let ts = [
            s1.ingress_ts.unwrap_or(0),
            s1.egress_ts.unwrap_or(0),
            s2.ingress_ts.unwrap_or(0),
            s2.egress_ts.unwrap_or(0),
        ];
        assert!(
            sent_at <= ts[0] && ts.windows(2).all(|w| w[0] <= w[1]) && ts[3] <= received_at,
            "timestamps in path order within the send/receive window: {ts:?} ({sent_at}..{received_at})"
        );
        // veths have no queue: occupancy 0, latency = time between hooks.
        for hop in [s1, s2] {
            assert_eq!(hop.queue, Some((0, 0)), "noqueue veth");
            let between = hop.egress_ts.unwrap_or(0) - hop.ingress_ts.unwrap_or(0);
            assert_eq!(u64::from(hop.latency.unwrap_or(0)), between);
        }
        let app = &datagram[4 + usize::from(shim_len) * 4..];
        assert!(app.starts_with(b"int-path-"), "payload {app:?}");
        if i == 0 {
            eprintln!(
                "h2 got {} B datagrams; s1 hop {s1:?}; s2 hop {s2:?}; s1 egress → s2 ingress {} ns",
                datagram.len(),
                ts[2] - ts[1]
            );
        }
    }

    // On the wire at h2: IPv4 and UDP checksums recomputed by the test.
    let frames = capture
        .receive_all(Duration::from_millis(300))
        .expect("capture");
    let ours: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f.len() > 42 && f[12..14] == [0x08, 0x00] && f[23] == 17)
        .collect();
    assert_eq!(ours.len(), PACKETS, "IPv4/UDP frames at h2");
    for frame in ours {
        let p = parse(frame);
        assert!(p.ipv4_ok(frame), "IPv4 checksum at h2");
        assert!(p.l4_ok(frame), "UDP checksum at h2");
        assert_ne!(
            p.udp_checksum(frame),
            0,
            "the checksum was kept, not dropped"
        );
    }

    // A sender on switch s2 itself: no ingress port, no stamp, and (on a
    // veth) a CHECKSUM_PARTIAL skb whose UDP checksum field holds only the
    // pseudo-header sum, which must follow the new length.
    let s2 = namespaces.get("s2");
    ip(&["-n", &s2, "addr", "add", "10.78.2.1/24", "dev", &names.s2p2]);
    // Static: the fabric ingress program does not pass ARP to the kernel.
    ip(&[
        "-n",
        &s2,
        "neigh",
        "add",
        "10.78.2.2",
        "lladdr",
        &mac_text(MAC_H2),
        "dev",
        &names.s2p2,
    ]);
    in_netns(&s2, || {
        let socket = UdpSocket::bind("10.78.2.1:0").expect("bind in s2");
        let mut datagram = Int::md(PATH_BITMAP, 8).bytes();
        datagram.extend_from_slice(b"from-s2");
        socket
            .send_to(&datagram, ("10.78.2.2", INT_PORT))
            .expect("send from s2");
    });
    let local = receive(&udp, 1);
    let (_, rhc, hops) = hops_of(&local[0]);
    assert_eq!((rhc, hops.len()), (7, 1), "one hop");
    assert_eq!(hops[0].switch_id, Some(2));
    assert_eq!(hops[0].ports, Some((0xffff, 2)), "no ingress port");
    assert_eq!(hops[0].ingress_ts, hops[0].egress_ts, "no ingress stamp");
    let frames = capture
        .receive_all(Duration::from_millis(300))
        .expect("capture");
    let frame = frames
        .iter()
        .find(|f| f.len() > 42 && f[12..14] == [0x08, 0x00] && f[26..30] == [10, 78, 2, 1])
        .expect("s2's datagram on the wire");
    let p = parse(frame);
    assert!(p.ipv4_ok(frame), "IPv4 checksum of s2's datagram");
    let field = p.udp_checksum(frame);
    let pseudo_only = {
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&frame[p.l3 + 12..p.l3 + 20]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&u16::try_from(p.udp_len(frame)).expect("fits").to_be_bytes());
        fold(sum16(&pseudo))
    };
    let how = if p.l4_ok(frame) {
        "a full UDP checksum"
    } else if field == pseudo_only {
        "CHECKSUM_PARTIAL: the pseudo-header sum of the grown length"
    } else {
        panic!("UDP checksum {field:#06x} of s2's datagram is neither complete nor the new pseudo-header sum {pseudo_only:#06x}");
    };
    eprintln!("s2's own datagram: {how}");
    assert_eq!(
        switches[1]
            .int
            .event_count(IntEvent::NoIngressStamp)
            .expect("events"),
        1
    );

    let bytes = 4 * u64::from(words);
    for ((name, switch), local) in ["s1", "s2"].iter().zip(&switches).zip([0, 1]) {
        let inserted = switch.int.event_count(IntEvent::Inserted).expect("events");
        assert_eq!(inserted, PACKETS as u64 + local, "{name} inserted");
        assert_eq!(
            switch.int.port_tx(2).expect("tx").packets,
            PACKETS as u64 + local,
            "{name} tx"
        );
        eprintln!(
            "{name}: +{bytes} B per packet; events {:?}; port 2 tx {:?}; rx {:?}",
            switch.int.event_counts().expect("events"),
            switch.int.port_tx(2).expect("tx"),
            switch.fabric.port_rx(1).expect("rx")
        );
    }
    assert_eq!(
        switches[0]
            .int
            .event_count(IntEvent::UnderMplsLabel)
            .expect("events"),
        PACKETS as u64,
        "s1 updated INT under the label"
    );
    for switch in switches {
        if let Some(p) = switch.publisher {
            p.stop();
        }
    }
}

#[test]
fn queue_occupancy_under_tbf() {
    if !can_run("queue_occupancy_under_tbf") {
        return;
    }
    let mut namespaces = Namespaces::create("tbf", &["h1", "s1", "s2", "h2"]);
    let pins = [Pins::new("tbf-s1"), Pins::new("tbf-s2")];
    let names = PathNames::new('q');
    let switches = build_path(
        &mut namespaces,
        &names,
        [&pins[0], &pins[1]],
        Duration::from_millis(2),
    );
    let (h1, s1, h2) = (
        namespaces.get("h1"),
        namespaces.get("s1"),
        namespaces.get("h2"),
    );
    // 8 Mbit/s = 1 MB/s out of s1 towards s2.
    run(
        "tc",
        &[
            "-n",
            &s1,
            "qdisc",
            "add",
            "dev",
            &names.s1p2,
            "root",
            "tbf",
            "rate",
            "8mbit",
            "burst",
            "4kb",
            "limit",
            "300kb",
        ],
    );
    wait_for_publishers(&switches);
    let udp = in_netns(&h2, || {
        UdpSocket::bind(("10.78.2.2", INT_PORT)).expect("bind")
    });

    // A burst of 150 kB (150 ms at the tbf rate; INT packets too), then,
    // while it drains, a few probes.
    const BURST: usize = 150;
    const PROBES: usize = 5;
    // Received while sending: 155 datagrams overflow a default socket
    // buffer.
    let receiver = std::thread::spawn(move || receive(&udp, BURST + PROBES));
    let burst: Vec<Vec<u8>> = (0..BURST).map(|_| path_frame(8, &[9u8; 1000])).collect();
    send_from_h1(&h1, &names.h1, &burst);
    // h1's socket buffer keeps about 45 of those in flight (queued at s1),
    // so the send returns while the tbf still holds ~48 kB. The probes go
    // once the publisher has put the draining port in the map (backlog and
    // TX rate), not after a fixed pause: a publisher thread that a busy
    // machine holds back would leave the probes an older state.
    let deadline = std::time::Instant::now() + Duration::from_millis(100);
    loop {
        let state = switches[0].int.port_state(2).expect("state");
        if state.backlog_bytes > 5_000 && state.tx_util_kbps > 1000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the publisher showed no draining queue within 100 ms: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let probes: Vec<Vec<u8>> = (0..PROBES)
        .map(|i| path_frame(8, format!("probe-{i}").as_bytes()))
        .collect();
    send_from_h1(&h1, &names.h1, &probes);

    let datagrams = receiver.join().expect("receiver thread");
    let probe_hops: Vec<HopView> = datagrams
        .iter()
        .filter(|d| d.windows(6).any(|w| w == b"probe-"))
        .map(|d| hops_of(d).2[1])
        .collect();
    assert_eq!(probe_hops.len(), PROBES, "probes at h2");
    let state = switches[0].int.port_state(2).expect("state");
    eprintln!("s1 port 2 state after the run: {state:?}");
    for hop in &probe_hops {
        let (q_id, occupancy) = hop.queue.unwrap_or((0, 0));
        let latency = u64::from(hop.latency.unwrap_or(0));
        let between = hop.egress_ts.unwrap_or(0) - hop.ingress_ts.unwrap_or(0);
        eprintln!(
            "probe at s1: queue {q_id}/{occupancy} B, hop latency {latency} ns \
             ({between} ns between the hooks), tx {} kbit/s",
            hop.tx_util.unwrap_or(0)
        );
        assert!(occupancy < 300_000, "backlog seen: {occupancy}");
        // Expected queueing delay at the tbf rate (1 MB/s): 1 µs per byte.
        let queueing = latency - between;
        assert!(
            queueing.abs_diff(u64::from(occupancy) * 1000)
                <= u64::from(occupancy) * 1000 / 100 + 1000,
            "queueing {queueing} ns for {occupancy} B at 1 MB/s"
        );
        assert!(
            hop.tx_util.unwrap_or(0) < 40_000,
            "at most the tbf rate (8000 kbit/s) plus its 4 kB burst in a window"
        );
    }
    assert!(
        probe_hops
            .iter()
            .any(|h| h.queue.unwrap_or((0, 0)).1 > 5_000),
        "a probe saw the burst's backlog"
    );
    assert!(
        probe_hops.iter().any(|h| h.tx_util.unwrap_or(0) > 1000),
        "the port was busy"
    );
    for switch in switches {
        if let Some(p) = switch.publisher {
            p.stop();
        }
    }
}
