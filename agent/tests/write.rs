//! Writes over real gRPC: what is accepted and stored, existence rules,
//! capacity, atomicity, data plane refusals. Validation errors are in
//! `write_validation.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::entities::*;
use common::*;
use solyx_p4runtime::entity::normalize_table_entry;
use solyx_p4runtime::proto::p4::v1 as p4;
use tonic::Code;

#[tokio::test]
async fn valid_entries_of_every_kind_read_back_as_written() {
    let (mut h, _s) = primary_with_pipeline().await;
    let ix = index();
    let mut written = vec![
        l2_entry(&ix, 0x0011_2233_4455, 3),
        ix.table_entry("ingress.acl")
            .unwrap()
            .ternary("hdr.ipv4.src", [10u8, 0, 0, 0], [255u8, 0, 0, 0])
            .unwrap()
            .priority(10)
            .action(ix.action("ingress.drop").unwrap().build().unwrap())
            .unwrap()
            .build_entry()
            .unwrap(),
        ix.table_entry("ingress.ports")
            .unwrap()
            .range("meta.l4_port", 1000u16, 2000u16)
            .unwrap()
            .optional("meta.vlan", 7u16)
            .unwrap()
            .priority(5)
            .action(ix.action("ingress.permit").unwrap().build().unwrap())
            .unwrap()
            .build_entry()
            .unwrap(),
    ];
    let updates = written
        .iter()
        .cloned()
        .map(|t| insert(table_entity(t)))
        .collect();
    write(&mut h.client, updates).await.unwrap();
    let mut read_back = table_entries(read(&mut h.client, vec![wildcard(0)]).await.unwrap());
    read_back.sort_by_key(|t| t.table_id);
    written.sort_by_key(|t| t.table_id);
    assert_eq!(read_back, written);
}

#[tokio::test]
async fn non_canonical_values_are_stored_canonically() {
    let (mut h, _s) = primary_with_pipeline().await;
    // Port 3 padded to two bytes; MAC with a leading zero byte kept.
    write(&mut h.client, vec![insert(table_entity(l2(&MAC, &[0, 3])))])
        .await
        .unwrap();
    let got = table_entries(read(&mut h.client, vec![wildcard(T_L2)]).await.unwrap());
    let mut expect = l2(&MAC, &[3]);
    normalize_table_entry(&mut expect);
    assert_eq!(got, vec![expect]);
}

#[tokio::test]
async fn existence_rules() {
    let (mut h, _s) = primary_with_pipeline().await;
    let c = &mut h.client;
    write(c, vec![insert(table_entity(l2(&MAC, &[1])))])
        .await
        .unwrap();
    expect_err(
        c,
        insert(table_entity(l2(&MAC, &[2]))),
        Code::AlreadyExists,
        &["ingress.l2"],
    )
    .await;
    let other = [0, 0, 0, 0, 0, 9];
    expect_err(
        c,
        modify(table_entity(l2(&other, &[2]))),
        Code::NotFound,
        &["ingress.l2"],
    )
    .await;
    expect_err(
        c,
        delete(table_entity(l2(&other, &[2]))),
        Code::NotFound,
        &["ingress.l2"],
    )
    .await;
    // MODIFY changes the action; DELETE needs the key only.
    write(c, vec![modify(table_entity(l2(&MAC, &[7])))])
        .await
        .unwrap();
    let got = table_entries(read(c, vec![wildcard(T_L2)]).await.unwrap());
    assert_eq!(got, vec![l2(&[0x11, 0x22, 0x33, 0x44, 0x55], &[7])]);
    let mut key_only = l2(&MAC, &[1]);
    key_only.action = None;
    write(c, vec![delete(table_entity(key_only))])
        .await
        .unwrap();
    assert!(read(c, vec![wildcard(T_L2)]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_full_table_is_resource_exhausted() {
    let (mut h, _s) = primary_with_pipeline().await;
    let tiny = |vrf: u8| {
        table_entity(p4::TableEntry {
            table_id: T_TINY,
            r#match: vec![exact(1, &[vrf])],
            action: act(A_DROP, &[]),
            ..Default::default()
        })
    };
    write(&mut h.client, vec![insert(tiny(1)), insert(tiny(2))])
        .await
        .unwrap();
    let (code, msg) = write_one_err(&mut h.client, insert(tiny(3))).await;
    assert_eq!(code, Code::ResourceExhausted);
    assert_names(&msg, &["ingress.tiny", "full"]);
    // Room again after a delete.
    write(&mut h.client, vec![delete(tiny(1)), insert(tiny(3))])
        .await
        .unwrap();
}

#[tokio::test]
async fn continue_on_error_applies_the_valid_updates() {
    let (mut h, _s) = primary_with_pipeline().await;
    let a = l2(&[1], &[1]);
    let b = l2(&[2], &[2]);
    let bad = l2(&[3], &[2, 0]);
    let status = write(
        &mut h.client,
        vec![
            insert(table_entity(a.clone())),
            insert(table_entity(bad)),
            insert(table_entity(b.clone())),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    assert!(status.message().contains("1 of 3"), "{status:?}");
    let per = per_update(&status);
    let codes: Vec<Code> = per.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, vec![Code::Ok, Code::InvalidArgument, Code::Ok]);
    let mut got = table_entries(read(&mut h.client, vec![wildcard(T_L2)]).await.unwrap());
    got.sort_by_key(|t| match &t.r#match[0].field_match_type {
        Some(M::Exact(e)) => e.value.clone(),
        _ => Vec::new(),
    });
    assert_eq!(got, vec![a, b]);
}

#[tokio::test]
async fn rollback_on_error_applies_nothing() {
    let (mut h, _s) = primary_with_pipeline().await;
    let kept = l2(&[9], &[9]);
    write(&mut h.client, vec![insert(table_entity(kept.clone()))])
        .await
        .unwrap();
    let changes_before = h.dataplane.changes_applied();
    for atomicity in [
        p4::write_request::Atomicity::RollbackOnError,
        p4::write_request::Atomicity::DataplaneAtomic,
    ] {
        let status = write_with(
            &mut h.client,
            10,
            vec![
                insert(table_entity(l2(&[1], &[1]))),
                modify(table_entity(l2(&[9], &[5]))),
                insert(table_entity(l2(&[3], &[2, 0]))),
                insert(table_entity(l2(&[2], &[2]))),
            ],
            atomicity,
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::Unknown);
        let codes: Vec<Code> = per_update(&status).iter().map(|(c, _)| *c).collect();
        assert_eq!(
            codes,
            vec![
                Code::Aborted,
                Code::Aborted,
                Code::InvalidArgument,
                Code::Aborted
            ]
        );
        let got = table_entries(read(&mut h.client, vec![wildcard(T_L2)]).await.unwrap());
        assert_eq!(got, vec![kept.clone()]);
    }
    // Each applied change was undone in the data plane too.
    assert_eq!(h.dataplane.changes_applied() - changes_before, 12);
}

#[tokio::test]
async fn every_write_ends_one_batch_after_its_updates() {
    let (mut h, _s) = primary_with_pipeline().await;
    let before = h.dataplane.batches_ended();
    write(
        &mut h.client,
        (1u8..=5)
            .map(|i| insert(table_entity(l2(&[i], &[i]))))
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(
        h.dataplane.batches_ended() - before,
        1,
        "five updates, one end"
    );
    // Continue-on-error with a failure: still one end, after the valid ones.
    let status = write(
        &mut h.client,
        vec![
            insert(table_entity(l2(&[6], &[6]))),
            insert(table_entity(l2(&[1], &[1]))),
        ],
    )
    .await
    .unwrap_err();
    let codes: Vec<Code> = per_update(&status).iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, vec![Code::Ok, Code::AlreadyExists]);
    assert_eq!(h.dataplane.batches_ended() - before, 2);
    // A rollback ends the batch once, after undoing.
    let status = write_with(
        &mut h.client,
        10,
        vec![
            insert(table_entity(l2(&[7], &[7]))),
            insert(table_entity(l2(&[1], &[1]))),
        ],
        p4::write_request::Atomicity::RollbackOnError,
    )
    .await
    .unwrap_err();
    let codes: Vec<Code> = per_update(&status).iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, vec![Code::Aborted, Code::AlreadyExists]);
    assert_eq!(h.dataplane.batches_ended() - before, 3);
    // An empty Write ends an empty batch.
    write(&mut h.client, Vec::new()).await.unwrap();
    assert_eq!(h.dataplane.batches_ended() - before, 4);
}

#[tokio::test]
async fn a_failed_end_of_batch_undoes_the_whole_batch() {
    let (mut h, _s) = primary_with_pipeline().await;
    let kept = l2(&[9], &[9]);
    write(&mut h.client, vec![insert(table_entity(kept.clone()))])
        .await
        .unwrap();
    let (changes, batches) = (h.dataplane.changes_applied(), h.dataplane.batches_ended());
    h.dataplane.fail_next_end_batch();
    let status = write(
        &mut h.client,
        vec![
            insert(table_entity(l2(&[1], &[1]))),
            insert(table_entity(l2(&[9], &[9]))),
            modify(table_entity(l2(&[9], &[5]))),
        ],
    )
    .await
    .unwrap_err();
    let per = per_update(&status);
    let codes: Vec<Code> = per.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        codes,
        vec![Code::Internal, Code::AlreadyExists, Code::Internal],
        "the updates that had been applied report the failed publish"
    );
    assert!(per[0].1.contains("end of this batch"), "{per:?}");
    let got = table_entries(read(&mut h.client, vec![wildcard(T_L2)]).await.unwrap());
    assert_eq!(got, vec![kept], "nothing of the batch stayed");
    // Two applied, two undone; the batch ended, then ended again undone.
    assert_eq!(h.dataplane.changes_applied() - changes, 4);
    assert_eq!(h.dataplane.batches_ended() - batches, 2);
    // The next Write publishes normally.
    write(&mut h.client, vec![insert(table_entity(l2(&[1], &[1])))])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refused_data_plane_change_leaves_the_store_unchanged() {
    let (mut h, _s) = primary_with_pipeline().await;
    h.dataplane.refuse_table(T_L2);
    let (code, msg) = write_one_err(&mut h.client, insert(table_entity(l2(&MAC, &[1])))).await;
    assert_eq!(code, Code::ResourceExhausted);
    assert!(msg.contains("data plane"), "{msg}");
    assert!(read(&mut h.client, vec![wildcard(T_L2)])
        .await
        .unwrap()
        .is_empty());
    h.dataplane.accept_all_tables();
    write(&mut h.client, vec![insert(table_entity(l2(&MAC, &[1])))])
        .await
        .unwrap();
}

#[tokio::test]
async fn whole_request_errors() {
    let mut h = start().await;
    let (_s, _) = Stream::open(&mut h.client, 10).await;
    // No pipeline yet.
    let e = write(&mut h.client, vec![insert(table_entity(l2(&MAC, &[1])))])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    set_pipeline(&mut h.client, 10).await;
    // Another device.
    let e = h
        .client
        .write(p4::WriteRequest {
            device_id: 2,
            election_id: Some(uint128(10)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // An update without entity or type.
    let (code, _) = write_one_err(
        &mut h.client,
        p4::Update {
            r#type: 1,
            entity: None,
        },
    )
    .await;
    assert_eq!(code, Code::InvalidArgument);
    let (code, _) = write_one_err(
        &mut h.client,
        p4::Update {
            r#type: 0,
            entity: Some(table_entity(l2(&MAC, &[1]))),
        },
    )
    .await;
    assert_eq!(code, Code::InvalidArgument);
    // An entity kind the agent does not write.
    let counter = p4::Entity {
        entity: Some(p4::entity::Entity::CounterEntry(p4::CounterEntry {
            counter_id: C_PORTS,
            ..Default::default()
        })),
    };
    let (code, msg) = write_one_err(&mut h.client, modify(counter)).await;
    assert_eq!(code, Code::Unimplemented);
    assert!(msg.contains("counter"), "{msg}");
}

#[tokio::test]
async fn replication_entries_round_trip() {
    let (mut h, _s) = primary_with_pipeline().await;
    let replica = |port: u8, instance| p4::Replica {
        instance,
        port_kind: Some(p4::replica::PortKind::Port(vec![port])),
        ..Default::default()
    };
    let mc = |id, replicas| p4::Entity {
        entity: Some(p4::entity::Entity::PacketReplicationEngineEntry(
            p4::PacketReplicationEngineEntry {
                r#type: Some(
                    p4::packet_replication_engine_entry::Type::MulticastGroupEntry(
                        p4::MulticastGroupEntry {
                            multicast_group_id: id,
                            replicas,
                            ..Default::default()
                        },
                    ),
                ),
            },
        )),
    };
    write(
        &mut h.client,
        vec![insert(mc(1, vec![replica(1, 0), replica(2, 0)]))],
    )
    .await
    .unwrap();
    let (code, msg) = write_one_err(
        &mut h.client,
        insert(mc(2, vec![replica(1, 0), replica(1, 0)])),
    )
    .await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("multicast group 2"), "{msg}");
    let (code, _) = write_one_err(&mut h.client, insert(mc(1, vec![]))).await;
    assert_eq!(code, Code::AlreadyExists);
    let got = read(&mut h.client, vec![mc(0, vec![])]).await.unwrap();
    assert_eq!(got, vec![mc(1, vec![replica(1, 0), replica(2, 0)])]);
    write(&mut h.client, vec![delete(mc(1, vec![]))])
        .await
        .unwrap();
    assert!(read(&mut h.client, vec![mc(0, vec![])])
        .await
        .unwrap()
        .is_empty());
}
