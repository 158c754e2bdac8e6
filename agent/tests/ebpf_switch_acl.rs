//! ACL writes over P4Runtime on an eBPF switch: the rule table is rebuilt
//! and swapped into `ACL_TABLE` once per Write (`Dataplane::end_batch`),
//! not once per update, and batches that fail in the middle still end up
//! right:
//!
//! 1. 512 rules (the ACL's capacity) in one Write: one swap; the time is
//!    printed (one swap waits for an RCU grace period, ≈ 12 ms);
//! 2. with the ACL full, a Write that deletes a rule and inserts another:
//!    the pending delete is published first to free its counter slot;
//! 3. CONTINUE_ON_ERROR with a failing update in the middle: the valid
//!    updates are published, in one swap;
//! 4. ROLLBACK_ON_ERROR with a failing update: nothing changes, no swap;
//! 5. 512 deletes in one Write: one swap.
//!
//! After each step the published table is compared with what a Read
//! returns. Needs root and the eBPF object; skips otherwise (fails with
//! `SOLYX_REQUIRE_ROOT=1`).

mod switch;

use std::time::Instant;

use solyx::p4rt::{update, Atomicity, DeviceSession, WriteOptions};
use solyx_agent::ebpf::common::acl::{AclTable, ACL_ACTION_DROP, ACL_ACTION_PERMIT};
use solyx_agent::ebpf::EbpfFabricDataplane;
use solyx_p4runtime::proto::p4::v1 as p4;
use switch::fabric::{self, index, install, session};
use switch::{can_run, Switch, Topology};

const H1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x41, 0x01];
const S1_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x41, 0xfe];

/// The table the program runs.
fn published(dp: &EbpfFabricDataplane) -> Box<AclTable> {
    dp.with_fabric(|f| f.tables().acl_table())
        .expect("read ACL_TABLE")
        .expect("a table is published")
}

/// `acl` entries the device returns on a Read.
async fn acl_entries(s: &DeviceSession) -> usize {
    let id = fabric::table_id(&index(), "acl");
    s.read(vec![p4::Entity {
        entity: Some(p4::entity::Entity::TableEntry(p4::TableEntry {
            table_id: id,
            ..Default::default()
        })),
    }])
    .await
    .expect("read")
    .len()
}

/// Rule `i`: UDP to port 10000 + i, dropped.
fn rule(i: u16, action: &str) -> p4::Entity {
    fabric::acl_udp(&index(), 1 + i32::from(i % 7), 10_000 + i, 0xffff, action)
}

/// The codes of one Write of `updates` with `atomicity`.
async fn codes(
    s: &DeviceSession,
    updates: Vec<p4::Update>,
    atomicity: Atomicity,
) -> Vec<tonic::Code> {
    let options = WriteOptions {
        batch_size: 1000,
        atomicity,
    };
    s.write_with(updates, options)
        .await
        .expect("write")
        .into_iter()
        .map(|r| r.map_or_else(|e| e.code, |()| tonic::Code::Ok))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_writes_swap_the_table_once_per_write() {
    if !can_run("acl_writes_swap_the_table_once_per_write") {
        return;
    }
    let mut t = Topology::new("acl", "a", &["h1", "s1"]);
    t.link(("h1", "h1", H1), ("s1", "p1", S1_P1));
    let s1 = Switch::start(&t, "s1", 1, &[(1, "p1")]).await;
    let s = session(&s1.endpoint(), 1).await;
    let dp = &s1.dataplane;
    let swaps = || dp.acl_publishes();

    // 1. 512 rules in one Write.
    let rules: Vec<p4::Entity> = (0..512).map(|i| rule(i, "drop")).collect();
    let before = swaps();
    let started = Instant::now();
    install(&s, rules.clone()).await;
    let insert_took = started.elapsed();
    assert_eq!(swaps() - before, 1, "one swap for 512 inserts");
    let table = published(dp);
    assert_eq!(table.count, 512);
    assert!(table.rules.iter().all(|r| r.action == ACL_ACTION_DROP));
    assert_eq!(acl_entries(&s).await, 512);

    // 2. Full: a delete and an insert in one Write.
    let before = swaps();
    let extra = rule(600, "permit");
    let got = codes(
        &s,
        vec![
            update(p4::update::Type::Delete, rules[0].clone()),
            update(p4::update::Type::Insert, extra.clone()),
        ],
        Atomicity::ContinueOnError,
    )
    .await;
    assert_eq!(got, vec![tonic::Code::Ok, tonic::Code::Ok]);
    assert_eq!(
        swaps() - before,
        2,
        "the delete is published to free its slot, then the insert"
    );
    let table = published(dp);
    assert_eq!(table.count, 512);
    assert_eq!(
        table
            .rules
            .iter()
            .filter(|r| r.action == ACL_ACTION_PERMIT)
            .count(),
        1
    );
    let mut slots: Vec<u32> = table.rules.iter().map(|r| r.hit_slot).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), 512, "every rule its own counter slot");

    // 3. Continue-on-error, a failure in the middle.
    let before = swaps();
    let got = codes(
        &s,
        vec![
            update(p4::update::Type::Delete, rules[1].clone()),
            update(p4::update::Type::Insert, rules[2].clone()),
            update(p4::update::Type::Modify, rule(3, "permit")),
        ],
        Atomicity::ContinueOnError,
    )
    .await;
    assert_eq!(
        got,
        vec![tonic::Code::Ok, tonic::Code::AlreadyExists, tonic::Code::Ok]
    );
    assert_eq!(swaps() - before, 1, "the valid updates in one swap");
    let table = published(dp);
    assert_eq!(table.count, 511);
    assert_eq!(
        table
            .rules
            .iter()
            .filter(|r| r.action == ACL_ACTION_PERMIT)
            .count(),
        2
    );
    assert_eq!(acl_entries(&s).await, 511);

    // 4. Rollback-on-error: nothing changes, nothing is swapped.
    let before = swaps();
    let got = codes(
        &s,
        vec![
            update(p4::update::Type::Delete, rules[4].clone()),
            update(p4::update::Type::Modify, rule(5, "permit")),
            update(p4::update::Type::Insert, rules[6].clone()),
        ],
        Atomicity::RollbackOnError,
    )
    .await;
    assert_eq!(
        got,
        vec![
            tonic::Code::Aborted,
            tonic::Code::Aborted,
            tonic::Code::AlreadyExists
        ]
    );
    assert_eq!(swaps() - before, 0, "the undone batch is what runs already");
    assert_eq!(published(dp).count, 511);
    assert_eq!(acl_entries(&s).await, 511);

    // 5. Everything deleted in one Write.
    let mut all: Vec<p4::Entity> = rules[2..].to_vec();
    all.push(extra);
    let before = swaps();
    let started = Instant::now();
    let got = codes(
        &s,
        all.into_iter()
            .map(|e| update(p4::update::Type::Delete, e))
            .collect(),
        Atomicity::ContinueOnError,
    )
    .await;
    let delete_took = started.elapsed();
    assert!(got.iter().all(|c| *c == tonic::Code::Ok), "{got:?}");
    assert_eq!(swaps() - before, 1, "one swap for 511 deletes");
    assert_eq!(published(dp).count, 0);
    assert_eq!(acl_entries(&s).await, 0);
    eprintln!(
        "ACL over P4Runtime: 512 inserts in one Write {insert_took:?}, 511 deletes in one \
         Write {delete_took:?}, one table swap each"
    );
    s.close();
}
