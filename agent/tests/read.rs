//! Reads over real gRPC: wildcards of every kind, counters, chunking,
//! unknown IDs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use solyx_p4runtime::proto::p4::v1 as p4;
use tonic::Code;

fn entity(e: p4::entity::Entity) -> p4::Entity {
    p4::Entity { entity: Some(e) }
}

async fn fill(h: &mut Harness) -> Vec<p4::TableEntry> {
    let ix = index();
    let l2: Vec<p4::TableEntry> = (1..=3).map(|i| l2_entry(&ix, i, i as u16)).collect();
    let acl = ix
        .table_entry("ingress.acl")
        .unwrap()
        .ternary("hdr.ipv4.proto", 6u8, 0xffu8)
        .unwrap()
        .priority(1)
        .action(ix.action("ingress.permit").unwrap().build().unwrap())
        .unwrap()
        .build_entry()
        .unwrap();
    let mut all = l2.clone();
    all.push(acl);
    let member = ix
        .profile_member(
            "ingress.ecmp",
            4,
            ix.action("ingress.drop").unwrap().build().unwrap(),
        )
        .unwrap();
    let group = ix.profile_group("ingress.ecmp", 9, &[(4, 1)]).unwrap();
    let mut updates = vec![
        insert(entity(p4::entity::Entity::ActionProfileMember(member))),
        insert(entity(p4::entity::Entity::ActionProfileGroup(group))),
    ];
    updates.extend(all.iter().cloned().map(|t| insert(table_entity(t))));
    write(&mut h.client, updates).await.unwrap();
    all
}

#[tokio::test]
async fn table_wildcards() {
    let (mut h, _s) = primary_with_pipeline().await;
    let all = fill(&mut h).await;
    let mut every = table_entries(read(&mut h.client, vec![wildcard(0)]).await.unwrap());
    assert_eq!(every.len(), 4);
    for t in &all {
        assert!(every.contains(t), "{t:?} missing");
    }
    every.retain(|t| t.table_id == T_L2);
    let l2 = table_entries(read(&mut h.client, vec![wildcard(T_L2)]).await.unwrap());
    assert_eq!(l2.len(), 3);
    // One entry by its key (action not needed).
    let mut key = all[1].clone();
    key.action = None;
    let one = table_entries(read(&mut h.client, vec![table_entity(key)]).await.unwrap());
    assert_eq!(one, vec![all[1].clone()]);
    // A key that is not there reads as nothing.
    let mut absent = l2_entry(&index(), 77, 1);
    absent.action = None;
    assert!(read(&mut h.client, vec![table_entity(absent)])
        .await
        .unwrap()
        .is_empty());
    // Several requests in one read.
    let both = read(&mut h.client, vec![wildcard(T_L2), wildcard(T_ACL)])
        .await
        .unwrap();
    assert_eq!(both.len(), 4);
}

#[tokio::test]
async fn profile_wildcards() {
    let (mut h, _s) = primary_with_pipeline().await;
    fill(&mut h).await;
    let members = |profile, id| {
        entity(p4::entity::Entity::ActionProfileMember(
            p4::ActionProfileMember {
                action_profile_id: profile,
                member_id: id,
                action: None,
            },
        ))
    };
    let groups = |profile, id| {
        entity(p4::entity::Entity::ActionProfileGroup(
            p4::ActionProfileGroup {
                action_profile_id: profile,
                group_id: id,
                ..Default::default()
            },
        ))
    };
    assert_eq!(
        read(&mut h.client, vec![members(0, 0)])
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        read(&mut h.client, vec![members(P_ECMP, 4)])
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(read(&mut h.client, vec![members(P_ECMP, 5)])
        .await
        .unwrap()
        .is_empty());
    let g = read(&mut h.client, vec![groups(P_ECMP, 0)]).await.unwrap();
    assert_eq!(g.len(), 1);
    let Some(p4::entity::Entity::ActionProfileGroup(g)) = &g[0].entity else {
        panic!("not a group: {g:?}");
    };
    assert_eq!(g.group_id, 9);
    assert_eq!(g.members.len(), 1);
    let e = read(&mut h.client, vec![members(0x1100_00ff, 0)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn indexed_counters() {
    let (mut h, _s) = primary_with_pipeline().await;
    let counter = |id, index: Option<i64>| {
        entity(p4::entity::Entity::CounterEntry(p4::CounterEntry {
            counter_id: id,
            index: index.map(|index| p4::Index { index }),
            data: None,
        }))
    };
    let all = read(&mut h.client, vec![counter(C_PORTS, None)])
        .await
        .unwrap();
    assert_eq!(all.len(), 8);
    for (i, e) in all.iter().enumerate() {
        let Some(p4::entity::Entity::CounterEntry(c)) = &e.entity else {
            panic!("not a counter: {e:?}");
        };
        assert_eq!(c.index.as_ref().map(|x| x.index), Some(i as i64));
        assert_eq!(c.data, Some(p4::CounterData::default()));
    }
    assert_eq!(
        read(&mut h.client, vec![counter(0, None)])
            .await
            .unwrap()
            .len(),
        8
    );
    assert_eq!(
        read(&mut h.client, vec![counter(C_PORTS, Some(3))])
            .await
            .unwrap()
            .len(),
        1
    );
    let e = read(&mut h.client, vec![counter(C_PORTS, Some(8))])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_names(e.message(), &["ingress.port_counter", "8"]);
    let e = read(&mut h.client, vec![counter(0x1200_00ff, None)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn direct_counters() {
    let (mut h, _s) = primary_with_pipeline().await;
    let all = fill(&mut h).await;
    let direct = |t: p4::TableEntry| {
        entity(p4::entity::Entity::DirectCounterEntry(
            p4::DirectCounterEntry {
                table_entry: Some(t),
                data: None,
            },
        ))
    };
    let of_table = read(
        &mut h.client,
        vec![direct(p4::TableEntry {
            table_id: T_L2,
            ..Default::default()
        })],
    )
    .await
    .unwrap();
    assert_eq!(of_table.len(), 3);
    let one = read(&mut h.client, vec![direct(all[0].clone())])
        .await
        .unwrap();
    let Some(p4::entity::Entity::DirectCounterEntry(d)) = &one[0].entity else {
        panic!("not a direct counter: {one:?}");
    };
    assert_eq!(d.table_entry.as_ref(), Some(&all[0]));
    assert_eq!(d.data, Some(p4::CounterData::default()));
    // Every table with a direct counter.
    assert_eq!(
        read(&mut h.client, vec![direct(p4::TableEntry::default())])
            .await
            .unwrap()
            .len(),
        3
    );
    let e = read(
        &mut h.client,
        vec![direct(p4::TableEntry {
            table_id: T_ACL,
            ..Default::default()
        })],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_names(e.message(), &["ingress.acl", "direct counter"]);
    // Counter data along with the entries, when asked for.
    let mut with_counters = p4::TableEntry {
        table_id: T_L2,
        ..Default::default()
    };
    with_counters.counter_data = Some(p4::CounterData::default());
    let got = table_entries(
        read(&mut h.client, vec![table_entity(with_counters)])
            .await
            .unwrap(),
    );
    assert!(got.iter().all(|t| t.counter_data.is_some()));
}

#[tokio::test]
async fn large_reads_come_in_chunks_of_1000() {
    let (mut h, _s) = primary_with_pipeline().await;
    let ix = index();
    let updates: Vec<_> = (0..2500u64)
        .map(|i| insert(table_entity(l2_entry(&ix, i + 1, 1))))
        .collect();
    write(&mut h.client, updates).await.unwrap();
    let chunks = read_chunks(&mut h.client, vec![wildcard(T_L2)])
        .await
        .unwrap();
    let sizes: Vec<usize> = chunks.iter().map(|c| c.entities.len()).collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);
}

#[tokio::test]
async fn bad_reads() {
    let mut h = start().await;
    let e = read(&mut h.client, vec![wildcard(0)]).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let (_s, _) = Stream::open(&mut h.client, 1).await;
    set_pipeline(&mut h.client, 1).await;
    let e = read(&mut h.client, vec![wildcard(0x0200_00ff)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("0x020000ff"), "{e:?}");
    let e = read(&mut h.client, vec![p4::Entity { entity: None }])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Registers are read like counters: this P4Info has none, so the
    // wildcard finds nothing and a register ID is unknown.
    let register = |register_id| {
        entity(p4::entity::Entity::RegisterEntry(p4::RegisterEntry {
            register_id,
            ..Default::default()
        }))
    };
    assert!(read(&mut h.client, vec![register(0)])
        .await
        .unwrap()
        .is_empty());
    let e = read(&mut h.client, vec![register(0x1600_00ff)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Entities the agent does not read at all.
    let meter = entity(p4::entity::Entity::MeterEntry(p4::MeterEntry::default()));
    let e = read(&mut h.client, vec![meter]).await.unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    // A read from a backup (or anyone) is allowed.
    let mut other = connect(&h.server).await;
    assert!(read(&mut other, vec![wildcard(0)])
        .await
        .unwrap()
        .is_empty());
    let e = other
        .read(p4::ReadRequest {
            device_id: 5,
            entities: vec![wildcard(0)],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}
