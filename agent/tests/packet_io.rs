//! Packet-out and packet-in over real gRPC, through the memory data plane,
//! and serving over a Unix socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::*;
use hyper_util::rt::TokioIo;
use solyx_agent::p4rt::{
    spawn_unix, AgentService, MemoryDataplane, PacketIn, PacketOut, ServerConfig,
};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use tonic::transport::{Endpoint, Uri};
use tonic::Code;

fn packet_out(metadata: Vec<p4::PacketMetadata>, payload: &[u8]) -> p4::StreamMessageRequest {
    p4::StreamMessageRequest {
        update: Some(p4::stream_message_request::Update::Packet(p4::PacketOut {
            payload: payload.to_vec(),
            metadata,
        })),
    }
}

fn md(id: u32, value: &[u8]) -> p4::PacketMetadata {
    p4::PacketMetadata {
        metadata_id: id,
        value: value.to_vec(),
    }
}

async fn next_stream_error(s: &mut Stream) -> p4::StreamError {
    loop {
        match s.next().await {
            Some(Ok(p4::StreamMessageResponse {
                update: Some(p4::stream_message_response::Update::Error(e)),
            })) => return e,
            Some(Ok(_)) => continue,
            other => panic!("stream ended while waiting for an error: {other:?}"),
        }
    }
}

#[tokio::test]
async fn packet_out_reaches_the_data_plane() {
    let (h, s) = primary_with_pipeline().await;
    let mut outs = h.dataplane.packet_outs();
    // Built with the P4Info helper: egress_port 7, _pad 0.
    let ix = index();
    let metadata = ix
        .packet_metadata("packet_out", &[("egress_port", &7u16), ("_pad", &0u8)])
        .unwrap();
    s.send(packet_out(metadata, b"frame")).await;
    let got = tokio::time::timeout(TIMEOUT, outs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        PacketOut {
            egress_port: 7,
            payload: b"frame".to_vec()
        }
    );
}

#[tokio::test]
async fn bad_packet_outs_get_stream_errors() {
    let (h, mut s) = primary_with_pipeline().await;
    // 10 bits in a 9-bit field.
    s.send(packet_out(vec![md(1, &[2, 0])], b"x")).await;
    let e = next_stream_error(&mut s).await;
    assert_eq!(e.canonical_code, Code::InvalidArgument as i32);
    assert_names(&e.message, &["packet_out", "egress_port", "9 bits"]);
    let Some(p4::stream_error::Details::PacketOut(p)) = e.details else {
        panic!("no PacketOutError details");
    };
    assert_eq!(p.packet_out.map(|p| p.payload), Some(b"x".to_vec()));
    // No egress_port at all.
    s.send(packet_out(vec![md(2, &[0])], b"x")).await;
    let e = next_stream_error(&mut s).await;
    assert_eq!(e.canonical_code, Code::InvalidArgument as i32);
    assert_names(&e.message, &["egress_port", "missing"]);
    // An unknown metadata ID.
    s.send(packet_out(vec![md(1, &[1]), md(9, &[0])], b"x"))
        .await;
    let e = next_stream_error(&mut s).await;
    assert_names(&e.message, &["packet_out", "ID 9"]);
    // The stream stays open and usable.
    let mut outs = h.dataplane.packet_outs();
    s.send(packet_out(vec![md(1, &[1, 0xff])], b"ok")).await;
    let got = tokio::time::timeout(TIMEOUT, outs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.egress_port, 511);
}

#[tokio::test]
async fn packet_out_from_a_backup_is_denied() {
    let (h, _primary) = primary_with_pipeline().await;
    let mut c2 = connect(&h.server).await;
    let (mut backup, a) = Stream::open(&mut c2, 3).await;
    assert_eq!(code_of(&a), Code::AlreadyExists);
    backup.send(packet_out(vec![md(1, &[1])], b"x")).await;
    let e = next_stream_error(&mut backup).await;
    assert_eq!(e.canonical_code, Code::PermissionDenied as i32);
}

#[tokio::test]
async fn packet_in_arrives_at_the_primary_with_its_port() {
    let (h, mut primary) = primary_with_pipeline().await;
    let mut c2 = connect(&h.server).await;
    let (_backup, _) = Stream::open(&mut c2, 3).await;
    let queued = h.dataplane.inject_packet_in(PacketIn {
        ingress_port: 5,
        payload: b"hello".to_vec(),
    });
    assert_eq!(queued, 1, "only the primary gets packet-ins");
    let packet = loop {
        match primary.next().await {
            Some(Ok(p4::StreamMessageResponse {
                update: Some(p4::stream_message_response::Update::Packet(p)),
            })) => break p,
            Some(Ok(_)) => continue,
            other => panic!("stream ended: {other:?}"),
        }
    };
    assert_eq!(packet.payload, b"hello");
    assert_eq!(packet.metadata, vec![md(1, &[5])]);
    assert_eq!(
        index().decode_packet_metadata("packet_in", &packet.metadata),
        vec![("ingress_port".to_string(), vec![5])]
    );
    // A port that does not fit the 9-bit field is dropped, not truncated.
    assert_eq!(
        h.dataplane.inject_packet_in(PacketIn {
            ingress_port: 600,
            payload: vec![],
        }),
        0
    );
}

#[tokio::test]
async fn no_packet_in_without_a_pipeline() {
    let mut h = start().await;
    let (_s, _) = Stream::open(&mut h.client, 1).await;
    assert_eq!(
        h.dataplane.inject_packet_in(PacketIn {
            ingress_port: 1,
            payload: vec![],
        }),
        0
    );
}

#[tokio::test]
async fn serves_over_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("solyx-agent-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p4rt.sock");
    // A stale socket file from an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let service = AgentService::new(ServerConfig::new(DEVICE), Arc::new(MemoryDataplane::new()));
    let server = spawn_unix(service.clone(), &path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    // A second server on the same live socket is refused.
    let e = spawn_unix(service, &path).unwrap_err();
    assert!(e.to_string().contains("another server"), "{e}");

    let socket = path.clone();
    let channel = Endpoint::from_static("http://[::]:50051")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .unwrap();
    let mut client = P4RuntimeClient::new(channel);
    let (_s, a) = Stream::open(&mut client, 1).await;
    assert_eq!(code_of(&a), Code::Ok);
    set_pipeline(&mut client, 1).await;
    server.stop().await.unwrap();
    assert!(!path.exists(), "the socket file is removed on shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
