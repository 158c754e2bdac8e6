//! SetForwardingPipelineConfig and GetForwardingPipelineConfig over real
//! gRPC: actions, response types, cookie, policy, reconciliation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use solyx_agent::p4rt::PipelinePolicy;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use tonic::transport::Channel;
use tonic::Code;

use p4::get_forwarding_pipeline_config_request::ResponseType;
use p4::set_forwarding_pipeline_config_request::Action;

async fn get(
    client: &mut P4RuntimeClient<Channel>,
    kind: ResponseType,
) -> Result<p4::ForwardingPipelineConfig, tonic::Status> {
    let r = client
        .get_forwarding_pipeline_config(p4::GetForwardingPipelineConfigRequest {
            device_id: DEVICE,
            response_type: kind as i32,
        })
        .await?;
    Ok(r.into_inner().config.expect("a config"))
}

#[tokio::test]
async fn get_without_pipeline_is_failed_precondition() {
    let mut h = start().await;
    let e = get(&mut h.client, ResponseType::All).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn set_then_get_each_response_type() {
    let (mut h, _s) = primary_with_pipeline().await;
    let all = get(&mut h.client, ResponseType::All).await.unwrap();
    assert_eq!(all.p4info, Some(p4info()));
    assert_eq!(all.p4_device_config, b"device-config");
    assert_eq!(all.cookie.map(|c| c.cookie), Some(7));

    let cookie = get(&mut h.client, ResponseType::CookieOnly).await.unwrap();
    assert_eq!(cookie.p4info, None);
    assert!(cookie.p4_device_config.is_empty());
    assert_eq!(cookie.cookie.map(|c| c.cookie), Some(7));

    let info = get(&mut h.client, ResponseType::P4infoAndCookie)
        .await
        .unwrap();
    assert_eq!(info.p4info, Some(p4info()));
    assert!(info.p4_device_config.is_empty());

    let dev = get(&mut h.client, ResponseType::DeviceConfigAndCookie)
        .await
        .unwrap();
    assert_eq!(dev.p4info, None);
    assert_eq!(dev.p4_device_config, b"device-config");
    assert_eq!(dev.cookie.map(|c| c.cookie), Some(7));

    let e = h
        .client
        .get_forwarding_pipeline_config(p4::GetForwardingPipelineConfigRequest {
            device_id: 3,
            response_type: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn an_unlisted_pipeline_is_refused_with_the_list() {
    let mut h = start_with_policy(PipelinePolicy::Only(vec![
        "solyx_fabric".into(),
        "solyx_host".into(),
    ]))
    .await;
    let (_s, _) = Stream::open(&mut h.client, 1).await;
    let e = push_pipeline(&mut h.client, 1, p4info(), Action::VerifyAndCommit, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_names(e.message(), &[PKG, "solyx_fabric", "solyx_host"]);
    let e = get(&mut h.client, ResponseType::All).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    let mut listed = p4info();
    listed.pkg_info.as_mut().unwrap().name = "solyx_host".into();
    push_pipeline(&mut h.client, 1, listed, Action::VerifyAndCommit, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_invalid_p4info_is_refused_naming_the_problem() {
    let mut h = start().await;
    let (_s, _) = Stream::open(&mut h.client, 1).await;
    let mut bad = p4info();
    bad.tables[1].preamble.as_mut().unwrap().id = T_L2;
    let e = push_pipeline(&mut h.client, 1, bad, Action::VerifyAndCommit, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_names(e.message(), &["ingress.l2", "ingress.routes"]);

    let e = h
        .client
        .set_forwarding_pipeline_config(p4::SetForwardingPipelineConfigRequest {
            device_id: DEVICE,
            election_id: Some(uint128(1)),
            action: Action::VerifyAndCommit as i32,
            config: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn verify_save_and_commit() {
    let mut h = start().await;
    let (_s, _) = Stream::open(&mut h.client, 1).await;
    push_pipeline(&mut h.client, 1, p4info(), Action::Verify, Some(1))
        .await
        .unwrap();
    assert_eq!(
        get(&mut h.client, ResponseType::CookieOnly)
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let e = push_pipeline(&mut h.client, 1, p4info(), Action::Commit, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    push_pipeline(&mut h.client, 1, p4info(), Action::VerifyAndSave, Some(2))
        .await
        .unwrap();
    assert!(get(&mut h.client, ResponseType::CookieOnly).await.is_err());
    push_pipeline(&mut h.client, 1, p4info(), Action::Commit, None)
        .await
        .unwrap();
    let c = get(&mut h.client, ResponseType::CookieOnly).await.unwrap();
    assert_eq!(c.cookie.map(|c| c.cookie), Some(2));
    let e = push_pipeline(&mut h.client, 1, p4info(), Action::Unspecified, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_new_pipeline_clears_the_store_unless_reconciled() {
    let (mut h, _s) = primary_with_pipeline().await;
    let ix = index();
    write(
        &mut h.client,
        vec![
            insert(table_entity(l2_entry(&ix, 1, 1))),
            insert(table_entity(l2_entry(&ix, 2, 2))),
        ],
    )
    .await
    .unwrap();

    // Same pipeline, reconciled: everything is kept.
    push_pipeline(
        &mut h.client,
        10,
        p4info(),
        Action::ReconcileAndCommit,
        Some(8),
    )
    .await
    .unwrap();
    assert_eq!(
        read(&mut h.client, vec![wildcard(T_L2)])
            .await
            .unwrap()
            .len(),
        2
    );

    // set_port's parameter grows to 16 bits: still accepted, kept.
    let mut wider = p4info();
    wider.actions[1].params[0].bitwidth = 16;
    push_pipeline(
        &mut h.client,
        10,
        wider,
        Action::ReconcileAndCommit,
        Some(9),
    )
    .await
    .unwrap();
    assert_eq!(
        read(&mut h.client, vec![wildcard(T_L2)])
            .await
            .unwrap()
            .len(),
        2
    );

    // set_port gains a parameter: the entries no longer fit, so the
    // reconcile is refused and both the pipeline and the entries stay.
    let mut changed = p4info();
    changed.actions[1]
        .params
        .push(solyx_p4runtime::proto::p4::config::v1::action::Param {
            id: 2,
            name: "vlan".into(),
            bitwidth: 12,
            ..Default::default()
        });
    let err = push_pipeline(
        &mut h.client,
        10,
        changed,
        Action::ReconcileAndCommit,
        Some(10),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains("vlan"), "{}", err.message());
    assert_eq!(
        read(&mut h.client, vec![wildcard(T_L2)])
            .await
            .unwrap()
            .len(),
        2
    );

    // A plain commit clears the store.
    set_pipeline(&mut h.client, 10).await;
    write(
        &mut h.client,
        vec![insert(table_entity(l2_entry(&ix, 1, 1)))],
    )
    .await
    .unwrap();
    set_pipeline(&mut h.client, 10).await;
    assert!(read(&mut h.client, vec![wildcard(0)])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.service.table_entry_count(), 0);
}

#[tokio::test]
async fn reconcile_keeps_profiles_and_their_references() {
    let (mut h, _s) = primary_with_pipeline().await;
    let ix = index();
    let member = ix
        .profile_member(
            "ingress.ecmp",
            1,
            ix.action("ingress.set_next_hop")
                .unwrap()
                .param("dmac", [0u8, 1, 2, 3, 4, 5])
                .unwrap()
                .param("port", 3u16)
                .unwrap()
                .build()
                .unwrap(),
        )
        .unwrap();
    let group = ix.profile_group("ingress.ecmp", 7, &[(1, 2)]).unwrap();
    let route = ix
        .table_entry("ingress.routes")
        .unwrap()
        .lpm("hdr.ipv4.dst", [10u8, 0, 0, 0], 8)
        .unwrap()
        .group(7)
        .unwrap()
        .build()
        .unwrap();
    write(
        &mut h.client,
        vec![
            insert(p4::Entity {
                entity: Some(p4::entity::Entity::ActionProfileMember(member)),
            }),
            insert(p4::Entity {
                entity: Some(p4::entity::Entity::ActionProfileGroup(group)),
            }),
            insert(route),
        ],
    )
    .await
    .unwrap();
    push_pipeline(
        &mut h.client,
        10,
        p4info(),
        Action::ReconcileAndCommit,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        read(&mut h.client, vec![wildcard(T_ROUTES)])
            .await
            .unwrap()
            .len(),
        1
    );
    // The reference count came along: the group is still in use.
    let (code, _) = write_one_err(
        &mut h.client,
        delete(p4::Entity {
            entity: Some(p4::entity::Entity::ActionProfileGroup(
                p4::ActionProfileGroup {
                    action_profile_id: P_ECMP,
                    group_id: 7,
                    ..Default::default()
                },
            )),
        }),
    )
    .await;
    assert_eq!(code, Code::FailedPrecondition);
}

#[tokio::test]
async fn capabilities_report_the_api_version() {
    let mut h = start().await;
    let r = h
        .client
        .capabilities(p4::CapabilitiesRequest { device_id: DEVICE })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.p4runtime_api_version, "1.4.1");
}
