//! What the eBPF fabric switch refuses, as seen through the controller's
//! P4Runtime client: a P4Info it does not implement, an action naming a
//! port without an interface (per-update INVALID_ARGUMENT, nothing
//! applied), full tables (RESOURCE_EXHAUSTED), and the ACL at its size.
//!
//! Needs root and the eBPF object; skips otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::net::Ipv4Addr;
use std::time::Instant;

use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;
use switch::fabric::{self, index, install, session, table_id};
use switch::{can_run, Switch, Topology};
use tonic::Code;

const TEST_P4INFO: &str = include_str!("../../p4runtime/testdata/test.p4info.txtpb");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_the_right_codes_and_change_nothing() {
    if !can_run("refusals_have_the_right_codes_and_change_nothing") {
        return;
    }
    let mut t = Topology::new("errors", "e", &["h1", "s1"]);
    t.link(
        ("h1", "h1", [2, 0x5f, 0, 0, 1, 1]),
        ("s1", "p1", [2, 0x5f, 0, 0, 1, 0xfe]),
    );
    t.link(
        ("h1", "h2", [2, 0x5f, 0, 0, 2, 1]),
        ("s1", "p2", [2, 0x5f, 0, 0, 2, 0xfe]),
    );
    let s1 = Switch::start(&t, "s1", 1, &[(1, "p1"), (2, "p2")]).await;

    // Another pipeline's P4Info is refused, naming what is implemented.
    let s =
        solyx::p4rt::DeviceSession::start(solyx::p4rt::SessionConfig::new(s1.endpoint(), 1, 10))
            .expect("session");
    s.wait_primary(fabric::WAIT).await.expect("primary");
    let other = P4InfoIndex::from_text(TEST_P4INFO).expect("test P4Info");
    let refused = s
        .set_pipeline(other.p4info().clone(), Vec::new(), false)
        .await
        .expect_err("the test P4Info is refused");
    let message = refused.to_string();
    assert!(
        message.contains("solyx_fabric") && message.contains("FabricIngress.acl"),
        "{message}"
    );
    s.close();

    let s = session(&s1.endpoint(), 1).await;
    let ix = index();

    // A member on a port without an interface: INVALID_ARGUMENT for that
    // update only; the other one of the batch is applied.
    let results = s
        .insert(vec![
            fabric::member(&ix, 1, 1, [2, 0, 0, 0, 0, 1]),
            fabric::member(&ix, 2, 9, [2, 0, 0, 0, 0, 2]),
        ])
        .await
        .expect("write");
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let e = results[1].as_ref().expect_err("port 9 refused");
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert!(e.message.contains("port 9"), "{}", e.message);
    let members = s
        .read(vec![p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileMember(
                p4::ActionProfileMember::default(),
            )),
        }])
        .await
        .expect("read members");
    assert_eq!(members.len(), 1, "only member 1 was applied: {members:?}");

    // The same for an MPLS entry and a one-shot route.
    let results = s
        .insert(vec![fabric::mpls_transit(&ix, 100, 7)])
        .await
        .expect("write");
    assert_eq!(
        results[0].as_ref().expect_err("port 7").code,
        Code::InvalidArgument
    );
    assert!(s
        .read_table(table_id(&ix, "mpls_forward"))
        .await
        .expect("read")
        .is_empty());

    // A group heavier than WCMP_MAX_GROUP_SIZE: RESOURCE_EXHAUSTED.
    install(&s, vec![fabric::member(&ix, 3, 2, [2, 0, 0, 0, 0, 3])]).await;
    let results = s
        .insert(vec![fabric::group(&ix, 5, &[(1, 10), (3, 10)])])
        .await
        .expect("write");
    assert_eq!(
        results[0].as_ref().expect_err("too heavy").code,
        Code::ResourceExhausted
    );

    // ipv4_route holds 4096 routes; the next one is RESOURCE_EXHAUSTED.
    let started = Instant::now();
    let routes: Vec<p4::Entity> = (0..4096u32)
        .map(|i| {
            let addr = Ipv4Addr::from(0x0a64_0000 + i);
            fabric::route_to_member(&ix, addr, 32, 1)
        })
        .collect();
    install(&s, routes).await;
    let fill = started.elapsed();
    let results = s
        .insert(vec![fabric::route_to_member(
            &ix,
            Ipv4Addr::new(10, 200, 0, 1),
            32,
            1,
        )])
        .await
        .expect("write");
    let e = results[0].as_ref().expect_err("table full");
    assert_eq!(e.code, Code::ResourceExhausted, "{e}");
    let installed = s
        .read_table(table_id(&ix, "ipv4_route"))
        .await
        .expect("read")
        .len();
    assert_eq!(installed, 4096);
    let in_map = s1
        .dataplane
        .with_fabric(|f| f.tables().routes().expect("routes").len());
    assert_eq!(
        in_map, 4096,
        "the LPM trie holds exactly what a Read returns"
    );

    // The ACL at its P4 size (512 rules), in one Write: one table swap.
    let started = Instant::now();
    let rules: Vec<p4::Entity> = (0..512u16)
        .map(|i| fabric::acl_udp(&ix, 1 + i32::from(i), 10000 + i, 0xffff, "drop"))
        .collect();
    install(&s, rules).await;
    let acl_fill = started.elapsed();
    let results = s
        .insert(vec![fabric::acl_udp(&ix, 1000, 9999, 0xffff, "drop")])
        .await
        .expect("write");
    assert_eq!(
        results[0].as_ref().expect_err("ACL full").code,
        Code::ResourceExhausted
    );
    let acl_count = s1
        .dataplane
        .with_fabric(|f| f.tables().acl_table().expect("acl").map_or(0, |t| t.count));
    assert_eq!(acl_count, 512);
    eprintln!(
        "refusals as expected; 4096 routes installed in {fill:?}, 512 ACL rules (one \
         Write, one table swap) in {acl_fill:?}"
    );
    s.close();
}
