//! Primary election over real gRPC: who is primary, who is told, who may
//! write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use solyx_p4runtime::proto::p4::v1 as p4;
use tonic::Code;

#[tokio::test]
async fn higher_election_id_wins_and_the_loser_is_told() {
    let mut h = start().await;
    let (mut s1, a1) = Stream::open(&mut h.client, 1).await;
    assert_eq!(code_of(&a1), Code::Ok);
    assert_eq!(election_of(&a1), Some(1));
    assert_eq!(a1.device_id, DEVICE);

    let mut c2 = connect(&h.server).await;
    let (_s2, a2) = Stream::open(&mut c2, 2).await;
    assert_eq!(code_of(&a2), Code::Ok);
    assert_eq!(election_of(&a2), Some(2));

    let told = s1.next_arbitration().await;
    assert_eq!(code_of(&told), Code::AlreadyExists);
    assert_eq!(election_of(&told), Some(2));

    // The loser may no longer write or push a pipeline.
    let e = write_with(
        &mut h.client,
        1,
        vec![],
        p4::write_request::Atomicity::ContinueOnError,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = push_pipeline(
        &mut h.client,
        1,
        p4info(),
        p4::set_forwarding_pipeline_config_request::Action::VerifyAndCommit,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // The winner may.
    set_pipeline(&mut c2, 2).await;
    write_with(
        &mut c2,
        2,
        vec![],
        p4::write_request::Atomicity::ContinueOnError,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_lower_election_id_joins_as_backup() {
    let mut h = start().await;
    let (_s1, _) = Stream::open(&mut h.client, 5).await;
    let mut c2 = connect(&h.server).await;
    let (_s2, a2) = Stream::open(&mut c2, 3).await;
    assert_eq!(code_of(&a2), Code::AlreadyExists);
    assert_eq!(election_of(&a2), Some(5));
}

#[tokio::test]
async fn primary_disconnect_promotes_the_other() {
    let mut h = start().await;
    let (mut s1, _) = Stream::open(&mut h.client, 1).await;
    let mut c2 = connect(&h.server).await;
    let (s2, a2) = Stream::open(&mut c2, 2).await;
    assert_eq!(code_of(&a2), Code::Ok);
    assert_eq!(code_of(&s1.next_arbitration().await), Code::AlreadyExists);

    drop(s2);
    let promoted = s1.next_arbitration().await;
    assert_eq!(code_of(&promoted), Code::Ok);
    assert_eq!(election_of(&promoted), Some(1));
    set_pipeline(&mut h.client, 1).await;
}

#[tokio::test]
async fn a_duplicate_election_id_is_refused() {
    let mut h = start().await;
    let (_s1, _) = Stream::open(&mut h.client, 4).await;
    let mut c2 = connect(&h.server).await;
    let mut s2 = Stream::open_raw(&mut c2, DEVICE, "", Some(4)).await;
    let status = s2.closing_status().await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains('4'), "{status:?}");
    // The first client is still primary.
    set_pipeline(&mut h.client, 4).await;
}

#[tokio::test]
async fn a_wrong_device_id_is_not_found() {
    let mut h = start().await;
    let mut s = Stream::open_raw(&mut h.client, 99, "", Some(1)).await;
    let status = s.closing_status().await;
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("99"), "{status:?}");
}

#[tokio::test]
async fn writes_without_a_primary_stream_are_denied() {
    let mut h = start().await;
    let e = write_with(
        &mut h.client,
        1,
        vec![],
        p4::write_request::Atomicity::ContinueOnError,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("no primary"), "{e:?}");
}

#[tokio::test]
async fn roles_elect_independently() {
    let mut h = start().await;
    let (_s1, a1) = Stream::open(&mut h.client, 9).await;
    assert_eq!(code_of(&a1), Code::Ok);
    let mut c2 = connect(&h.server).await;
    let mut s2 = Stream::open_raw(&mut c2, DEVICE, "telemetry", Some(1)).await;
    let a2 = s2.next_arbitration().await;
    assert_eq!(code_of(&a2), Code::Ok);
    assert_eq!(a2.role.as_ref().map(|r| r.name.as_str()), Some("telemetry"));
    // Election ID 1 is primary of "telemetry", not of the default role.
    let e = write_with(
        &mut c2,
        1,
        vec![],
        p4::write_request::Atomicity::ContinueOnError,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_stream_without_election_id_is_told_there_is_no_primary() {
    let mut h = start().await;
    let mut s = Stream::open_raw(&mut h.client, DEVICE, "", None).await;
    let a = s.next_arbitration().await;
    assert_eq!(code_of(&a), Code::NotFound);
}

#[tokio::test]
async fn packet_out_before_arbitration_closes_the_stream() {
    let mut h = start().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(p4::StreamMessageRequest {
        update: Some(p4::stream_message_request::Update::Packet(p4::PacketOut {
            payload: vec![1],
            metadata: vec![],
        })),
    })
    .await
    .unwrap();
    let rx = h
        .client
        .stream_channel(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut s = Stream { tx, rx };
    assert_eq!(s.closing_status().await.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn stopping_the_server_closes_open_streams() {
    let mut h = start().await;
    let (mut s, _) = Stream::open(&mut h.client, 1).await;
    tokio::time::timeout(TIMEOUT, h.server.stop())
        .await
        .expect("graceful stop must not wait for open streams")
        .unwrap();
    // The stream ends (cleanly or with an error), it does not hang.
    while let Some(Ok(_)) = s.next().await {}
}
