//! Validation of writes over real gRPC: each kind of mistake gets its
//! code and a message naming the table and the field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::entities::*;
use common::*;
use solyx_p4runtime::proto::p4::v1 as p4;
use tonic::Code;

#[tokio::test]
async fn match_field_errors_name_table_and_field() {
    let (mut h, _s) = primary_with_pipeline().await;
    let c = &mut h.client;

    let mut t = l2(&MAC, &[1]);
    t.table_id = 0x0200_00ff;
    expect_err(c, insert(table_entity(t)), Code::NotFound, &["0x020000ff"]).await;

    let mut t = l2(&MAC, &[1]);
    t.r#match[0].field_id = 9;
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "ID 9"],
    )
    .await;

    let mut t = l2(&MAC, &[1]);
    t.r#match = vec![fm(
        1,
        M::Lpm(p4::field_match::Lpm {
            value: MAC.to_vec(),
            prefix_len: 48,
        }),
    )];
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "hdr.eth.dst", "exact"],
    )
    .await;

    let t = l2(&[1, 0, 0, 0, 0, 0, 0], &[1]);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "hdr.eth.dst", "49 bits"],
    )
    .await;

    let t = l2(&[], &[1]);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "hdr.eth.dst", "empty"],
    )
    .await;

    let mut t = l2(&MAC, &[1]);
    t.r#match.clear();
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "hdr.eth.dst", "missing"],
    )
    .await;

    let mut t = l2(&MAC, &[1]);
    t.r#match.push(exact(1, &MAC));
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "hdr.eth.dst", "twice"],
    )
    .await;

    let t = route([10, 1, 2, 3], 16, member_ref(1));
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.routes", "hdr.ipv4.dst", "/16"],
    )
    .await;

    let t = route([10, 1, 0, 0], 33, member_ref(1));
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.routes", "hdr.ipv4.dst", "prefix length"],
    )
    .await;

    let t = acl(&[10, 1, 0, 0], &[255, 0, 0, 0], 1);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.acl", "hdr.ipv4.src", "outside the mask"],
    )
    .await;

    let t = acl(&[0], &[0], 1);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.acl", "hdr.ipv4.src", "mask"],
    )
    .await;

    let t = ports(&[0x10], &[0x08], None, 1);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.ports", "meta.l4_port", "low is above"],
    )
    .await;

    let t = ports(&[1], &[2], Some(&[0x10, 0]), 1);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.ports", "meta.vlan", "13 bits"],
    )
    .await;
}

#[tokio::test]
async fn priority_rules_name_the_table() {
    let (mut h, _s) = primary_with_pipeline().await;
    let c = &mut h.client;
    let t = acl(&[10, 0, 0, 0], &[255, 0, 0, 0], 0);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.acl", "priority"],
    )
    .await;
    let t = ports(&[1], &[2], None, 0);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.ports", "priority"],
    )
    .await;
    let mut t = l2(&MAC, &[1]);
    t.priority = 3;
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "priority must be 0"],
    )
    .await;
}

#[tokio::test]
async fn action_errors_name_table_action_and_parameter() {
    let (mut h, _s) = primary_with_pipeline().await;
    let c = &mut h.client;

    let mut t = l2(&MAC, &[1]);
    t.action = act(A_PERMIT, &[]);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &[
            "ingress.l2",
            "ingress.permit",
            "not an action of this table",
        ],
    )
    .await;

    let mut t = l2(&MAC, &[1]);
    t.action = act(0x0100_00ff, &[]);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "0x010000ff"],
    )
    .await;

    let mut t = l2(&MAC, &[1]);
    t.action = act(A_MISS, &[]);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "ingress.miss", "default-only"],
    )
    .await;

    let mut t = l2(&MAC, &[1]);
    t.action = act(A_SET_PORT, &[]);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "ingress.set_port", "\"port\"", "missing"],
    )
    .await;

    let mut t = l2(&MAC, &[1]);
    t.action = act(A_SET_PORT, &[(1, &[1]), (2, &[1])]);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "ingress.set_port", "ID 2"],
    )
    .await;

    let t = l2(&MAC, &[2, 0]);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "ingress.set_port", "\"port\"", "10 bits"],
    )
    .await;

    let mut t = l2(&MAC, &[1]);
    t.action = None;
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "no action"],
    )
    .await;
}

#[tokio::test]
async fn profile_rules_and_references() {
    let (mut h, _s) = primary_with_pipeline().await;
    let c = &mut h.client;

    // Direct action on a profile table, and a member on a direct table.
    let t = route([10, 0, 0, 0], 8, act(A_DROP, &[]));
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.routes", "ingress.ecmp"],
    )
    .await;
    let mut t = l2(&MAC, &[1]);
    t.action = member_ref(1);
    expect_err(
        c,
        insert(table_entity(t)),
        Code::InvalidArgument,
        &["ingress.l2", "no action profile"],
    )
    .await;

    // References to nothing.
    expect_err(
        c,
        insert(table_entity(route([10, 0, 0, 0], 8, member_ref(1)))),
        Code::NotFound,
        &["ingress.routes", "member 1"],
    )
    .await;
    expect_err(
        c,
        insert(table_entity(route([10, 0, 0, 0], 8, group_ref(5)))),
        Code::NotFound,
        &["ingress.routes", "group 5"],
    )
    .await;
    expect_err(
        c,
        insert(group(5, &[(1, 1)])),
        Code::NotFound,
        &["ingress.ecmp", "member 1"],
    )
    .await;

    // Members, a group, a route through the group.
    let members: Vec<_> = (1..=5).map(|m| insert(member(m, m as u8))).collect();
    write(c, members).await.unwrap();
    expect_err(
        c,
        insert(group(5, &[(1, 0)])),
        Code::InvalidArgument,
        &["ingress.ecmp", "member 1", "weight 0"],
    )
    .await;
    expect_err(
        c,
        insert(group(5, &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)])),
        Code::ResourceExhausted,
        &["ingress.ecmp", "group 5"],
    )
    .await;
    expect_err(
        c,
        insert(group(5, &[(1, 2), (2, 3)])),
        Code::ResourceExhausted,
        &["ingress.ecmp"],
    )
    .await;
    write(c, vec![insert(group(5, &[(1, 1), (2, 1)]))])
        .await
        .unwrap();
    write(
        c,
        vec![insert(table_entity(route([10, 0, 0, 0], 8, group_ref(5))))],
    )
    .await
    .unwrap();
    write(
        c,
        vec![insert(table_entity(route(
            [10, 1, 0, 0],
            16,
            member_ref(3),
        )))],
    )
    .await
    .unwrap();

    // In use: cannot delete.
    expect_err(
        c,
        delete(member(1, 1)),
        Code::FailedPrecondition,
        &["ingress.ecmp", "member 1"],
    )
    .await;
    expect_err(
        c,
        delete(member(3, 3)),
        Code::FailedPrecondition,
        &["ingress.ecmp", "member 3"],
    )
    .await;
    expect_err(
        c,
        delete(group(5, &[])),
        Code::FailedPrecondition,
        &["ingress.ecmp", "group 5"],
    )
    .await;
    // A member action the profile's tables cannot run.
    let mut bad = member(9, 1);
    if let Some(p4::entity::Entity::ActionProfileMember(m)) = bad.entity.as_mut() {
        m.action = Some(p4::Action {
            action_id: A_PERMIT,
            params: vec![],
        });
    }
    expect_err(
        c,
        insert(bad),
        Code::InvalidArgument,
        &["ingress.routes", "ingress.permit"],
    )
    .await;

    // Modify the group to drop member 1: then member 1 is free.
    write(c, vec![modify(group(5, &[(2, 1), (4, 2)]))])
        .await
        .unwrap();
    write(c, vec![delete(member(1, 1))]).await.unwrap();
    // Unwind in order.
    write(
        c,
        vec![
            delete(table_entity(route([10, 0, 0, 0], 8, None))),
            delete(table_entity(route([10, 1, 0, 0], 16, None))),
            delete(group(5, &[])),
            delete(member(2, 2)),
            delete(member(3, 3)),
        ],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn default_entries_can_only_be_modified() {
    let (mut h, _s) = primary_with_pipeline().await;
    let c = &mut h.client;
    let default = |action| {
        table_entity(p4::TableEntry {
            table_id: T_L2,
            is_default_action: true,
            action,
            ..Default::default()
        })
    };
    expect_err(
        c,
        insert(default(act(A_DROP, &[]))),
        Code::InvalidArgument,
        &["ingress.l2", "default entry"],
    )
    .await;
    expect_err(
        c,
        delete(default(None)),
        Code::InvalidArgument,
        &["ingress.l2", "default entry"],
    )
    .await;
    // A default-only action is fine as the default action.
    write(c, vec![modify(default(act(A_MISS, &[])))])
        .await
        .unwrap();
    let read_default = table_entries(read(c, vec![default(None)]).await.unwrap());
    assert_eq!(read_default.len(), 1);
    assert!(read_default[0].is_default_action);
    assert_eq!(read_default[0].action, act(A_MISS, &[]));
    // The default entry is not part of a table wildcard.
    assert!(read(c, vec![wildcard(T_L2)]).await.unwrap().is_empty());
    // Back to the program's default action.
    write(c, vec![modify(default(None))]).await.unwrap();
    let read_default = table_entries(read(c, vec![default(None)]).await.unwrap());
    assert_eq!(read_default[0].action, None);
    // Match fields on a default entry are refused.
    let mut with_match = l2(&MAC, &[1]);
    with_match.is_default_action = true;
    expect_err(
        c,
        modify(table_entity(with_match)),
        Code::InvalidArgument,
        &["ingress.l2", "no match fields"],
    )
    .await;
}
