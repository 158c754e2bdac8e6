//! Two eBPF fabric switches in a chain, each with its own in-process
//! P4Runtime server, programmed through the controller's client with one
//! MPLS path:
//!
//! ```text
//!   h1 ── p1 [s1] p2 ── p1 [s2] p2 ── h2
//!         label 100: s1 transit (mpls_forward_to 2), s2 last hop
//!         (mpls_pop_forward_to 2, h2's MAC)
//! ```
//!
//! h1 pushes the label itself (an `AF_PACKET` socket: in the fabric, the
//! host pipeline does that); h2's UDP socket must receive the datagrams,
//! popped, with s2's MAC as source, and both switches count them.
//!
//! Needs root and the eBPF object; skips otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use switch::fabric::{self, index, install, session};
use switch::packet::{PacketSocket, UdpFrame};
use switch::{can_run, in_netns, Switch, Topology};

const H1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x11, 0x01];
const S1_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x11, 0xfe];
const S1_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x12, 0xfe];
const S2_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x21, 0xfe];
const S2_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x22, 0xfe];
const H2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x22, 0x02];
const LABEL: u32 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mpls_path_crosses_two_switches() {
    if !can_run("an_mpls_path_crosses_two_switches") {
        return;
    }
    let mut t = Topology::new("chain", "c", &["h1", "s1", "s2", "h2"]);
    t.link(("h1", "h1", H1), ("s1", "s1p1", S1_P1));
    t.link(("s1", "s1p2", S1_P2), ("s2", "s2p1", S2_P1));
    t.link(("s2", "s2p2", S2_P2), ("h2", "h2", H2));
    let h2_ns = t.ns("h2");
    switch::ip(&[
        "-n",
        &h2_ns,
        "addr",
        "add",
        "10.78.2.2/24",
        "dev",
        &t.dev("h2"),
    ]);
    switch::ip(&[
        "-n",
        &h2_ns,
        "route",
        "add",
        "10.78.1.0/24",
        "dev",
        &t.dev("h2"),
    ]);

    let s1 = Switch::start(&t, "s1", 1, &[(1, "s1p1"), (2, "s1p2")]).await;
    let s2 = Switch::start(&t, "s2", 2, &[(1, "s2p1"), (2, "s2p2")]).await;
    let (c1, c2) = (
        session(&s1.endpoint(), 1).await,
        session(&s2.endpoint(), 2).await,
    );
    let ix = index();
    install(
        &c1,
        vec![
            fabric::egress_rewrite(&ix, 2, S1_P2),
            fabric::mpls_transit(&ix, LABEL, 2),
        ],
    )
    .await;
    install(
        &c2,
        vec![
            fabric::egress_rewrite(&ix, 2, S2_P2),
            fabric::mpls_pop(&ix, LABEL, 2, H2),
        ],
    )
    .await;

    let udp = in_netns(&h2_ns, || {
        UdpSocket::bind("10.78.2.2:6000").expect("bind h2")
    });
    const N: usize = 10;
    let h1_ifindex = in_netns(&t.ns("h1"), || {
        nix::net::if_::if_nametoindex(t.dev("h1").as_str()).expect("ifindex")
    });
    let frame_len = in_netns(&t.ns("h1"), || {
        let socket = PacketSocket::bind(h1_ifindex).expect("packet socket");
        let mut len = 0;
        for i in 0..N {
            let payload = format!("path-{i}");
            let frame = UdpFrame {
                dst_mac: S1_P1,
                src_mac: H1,
                label: Some((LABEL, 64)),
                src_ip: Ipv4Addr::new(10, 78, 1, 1),
                dst_ip: Ipv4Addr::new(10, 78, 2, 2),
                ttl: 64,
                src_port: 40000,
                dst_port: 6000,
                payload: payload.as_bytes(),
            }
            .build();
            len = frame.len();
            socket.send(&frame).expect("send");
        }
        len
    });

    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < N && Instant::now() < deadline {
        let mut buf = [0u8; 256];
        if let Ok((n, _)) = udp.recv_from(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got.sort();
    let mut expected: Vec<String> = (0..N).map(|i| format!("path-{i}")).collect();
    expected.sort();
    assert_eq!(got, expected, "h2 receives every datagram of the path");

    let hits1 = fabric::table_hits(&c1, &ix, "mpls_forward").await;
    let hits2 = fabric::table_hits(&c2, &ix, "mpls_forward").await;
    let bytes1: i64 = c1
        .read_direct_counters(fabric::table_id(&ix, "mpls_forward"))
        .await
        .expect("read")
        .iter()
        .filter_map(|c| c.data.as_ref())
        .map(|d| d.byte_count)
        .sum();
    eprintln!(
        "MPLS path: {N} datagrams h1 → s1 (transit, {hits1} hits, {bytes1} bytes) → s2 (pop, \
         {hits2} hits) → h2"
    );
    assert_eq!(hits1, N as i64);
    assert_eq!(hits2, N as i64);
    assert_eq!(bytes1, (N * frame_len) as i64, "bytes as the frames were");
    c1.close();
    c2.close();
}
