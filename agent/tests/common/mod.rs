//! Shared helpers of the integration tests: a small P4Info built in Rust,
//! a server on an ephemeral port, a raw tonic client, streams with
//! timeouts, and shortcuts for writes and reads.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod entities;

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use solyx_agent::p4rt::{
    spawn_tcp, AgentService, MemoryDataplane, PipelinePolicy, RunningServer, ServerConfig,
};
use solyx_p4runtime::proto::p4::config::v1 as cfg;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use solyx_p4runtime::P4InfoIndex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Code;

pub const DEVICE: u64 = 1;
pub const PKG: &str = "solyx_test";

pub const A_DROP: u32 = 0x0100_0001;
pub const A_SET_PORT: u32 = 0x0100_0002;
pub const A_NEXT_HOP: u32 = 0x0100_0003;
pub const A_MISS: u32 = 0x0100_0004;
pub const A_PERMIT: u32 = 0x0100_0005;

pub const T_L2: u32 = 0x0200_0001;
pub const T_ROUTES: u32 = 0x0200_0002;
pub const T_ACL: u32 = 0x0200_0003;
pub const T_PORTS: u32 = 0x0200_0004;
pub const T_TINY: u32 = 0x0200_0005;

pub const P_ECMP: u32 = 0x1100_0001;
pub const C_PORTS: u32 = 0x1200_0001;
pub const DC_L2: u32 = 0x1300_0001;
pub const H_PACKET_IN: u32 = 0x0400_0001;
pub const H_PACKET_OUT: u32 = 0x0400_0002;

pub const TIMEOUT: Duration = Duration::from_secs(5);

fn preamble(id: u32, name: &str) -> Option<cfg::Preamble> {
    Some(cfg::Preamble {
        id,
        name: name.to_string(),
        alias: name.rsplit('.').next().unwrap_or(name).to_string(),
        ..Default::default()
    })
}

fn field(id: u32, name: &str, bitwidth: i32, kind: cfg::match_field::MatchType) -> cfg::MatchField {
    cfg::MatchField {
        id,
        name: name.to_string(),
        bitwidth,
        r#match: Some(cfg::match_field::Match::MatchType(kind as i32)),
        ..Default::default()
    }
}

fn aref(id: u32, scope: cfg::action_ref::Scope) -> cfg::ActionRef {
    cfg::ActionRef {
        id,
        scope: scope as i32,
        ..Default::default()
    }
}

fn action(id: u32, name: &str, params: &[(u32, &str, i32)]) -> cfg::Action {
    cfg::Action {
        preamble: preamble(id, name),
        params: params
            .iter()
            .map(|(id, name, bitwidth)| cfg::action::Param {
                id: *id,
                name: name.to_string(),
                bitwidth: *bitwidth,
                ..Default::default()
            })
            .collect(),
    }
}

fn header(id: u32, name: &str, fields: &[(u32, &str, i32)]) -> cfg::ControllerPacketMetadata {
    cfg::ControllerPacketMetadata {
        preamble: preamble(id, name),
        metadata: fields
            .iter()
            .map(
                |(id, name, bitwidth)| cfg::controller_packet_metadata::Metadata {
                    id: *id,
                    name: name.to_string(),
                    bitwidth: *bitwidth,
                    ..Default::default()
                },
            )
            .collect(),
    }
}

/// The test pipeline:
/// - `ingress.l2`: exact 48-bit `hdr.eth.dst`, actions set_port /
///   drop / default-only miss, direct counter, 4096 entries;
/// - `ingress.routes`: LPM 32-bit `hdr.ipv4.dst`, implemented by the
///   selector `ingress.ecmp` (max_group_size 4, 128 members);
/// - `ingress.acl`: ternary `hdr.ipv4.src` (32) and `hdr.ipv4.proto` (8);
/// - `ingress.ports`: range `meta.l4_port` (16) and optional `meta.vlan` (12);
/// - `ingress.tiny`: exact 16-bit `meta.vrf`, 2 entries;
/// - indexed counter `ingress.port_counter` of 8 cells;
/// - `packet_in` (ingress_port: 9, _pad: 7) and `packet_out` (egress_port: 9, _pad: 7).
pub fn p4info() -> cfg::P4Info {
    use cfg::action_ref::Scope;
    use cfg::match_field::MatchType as M;
    cfg::P4Info {
        pkg_info: Some(cfg::PkgInfo {
            name: PKG.into(),
            arch: "v1model".into(),
            ..Default::default()
        }),
        actions: vec![
            action(A_DROP, "ingress.drop", &[]),
            action(A_SET_PORT, "ingress.set_port", &[(1, "port", 9)]),
            action(
                A_NEXT_HOP,
                "ingress.set_next_hop",
                &[(1, "dmac", 48), (2, "port", 9)],
            ),
            action(A_MISS, "ingress.miss", &[]),
            action(A_PERMIT, "ingress.permit", &[]),
        ],
        tables: vec![
            cfg::Table {
                preamble: preamble(T_L2, "ingress.l2"),
                match_fields: vec![field(1, "hdr.eth.dst", 48, M::Exact)],
                action_refs: vec![
                    aref(A_SET_PORT, Scope::TableAndDefault),
                    aref(A_DROP, Scope::TableAndDefault),
                    aref(A_MISS, Scope::DefaultOnly),
                ],
                direct_resource_ids: vec![DC_L2],
                size: 4096,
                ..Default::default()
            },
            cfg::Table {
                preamble: preamble(T_ROUTES, "ingress.routes"),
                match_fields: vec![field(1, "hdr.ipv4.dst", 32, M::Lpm)],
                action_refs: vec![
                    aref(A_NEXT_HOP, Scope::TableAndDefault),
                    aref(A_DROP, Scope::TableAndDefault),
                ],
                implementation_id: P_ECMP,
                size: 1024,
                ..Default::default()
            },
            cfg::Table {
                preamble: preamble(T_ACL, "ingress.acl"),
                match_fields: vec![
                    field(1, "hdr.ipv4.src", 32, M::Ternary),
                    field(2, "hdr.ipv4.proto", 8, M::Ternary),
                ],
                action_refs: vec![
                    aref(A_DROP, Scope::TableAndDefault),
                    aref(A_PERMIT, Scope::TableAndDefault),
                ],
                size: 256,
                ..Default::default()
            },
            cfg::Table {
                preamble: preamble(T_PORTS, "ingress.ports"),
                match_fields: vec![
                    field(1, "meta.l4_port", 16, M::Range),
                    field(2, "meta.vlan", 12, M::Optional),
                ],
                action_refs: vec![
                    aref(A_PERMIT, Scope::TableAndDefault),
                    aref(A_DROP, Scope::TableAndDefault),
                ],
                size: 256,
                ..Default::default()
            },
            cfg::Table {
                preamble: preamble(T_TINY, "ingress.tiny"),
                match_fields: vec![field(1, "meta.vrf", 16, M::Exact)],
                action_refs: vec![aref(A_DROP, Scope::TableAndDefault)],
                size: 2,
                ..Default::default()
            },
        ],
        action_profiles: vec![cfg::ActionProfile {
            preamble: preamble(P_ECMP, "ingress.ecmp"),
            table_ids: vec![T_ROUTES],
            with_selector: true,
            size: 128,
            max_group_size: 4,
            ..Default::default()
        }],
        counters: vec![cfg::Counter {
            preamble: preamble(C_PORTS, "ingress.port_counter"),
            size: 8,
            ..Default::default()
        }],
        direct_counters: vec![cfg::DirectCounter {
            preamble: preamble(DC_L2, "ingress.l2_counter"),
            direct_table_id: T_L2,
            ..Default::default()
        }],
        controller_packet_metadata: vec![
            header(
                H_PACKET_IN,
                "packet_in",
                &[(1, "ingress_port", 9), (2, "_pad", 7)],
            ),
            header(
                H_PACKET_OUT,
                "packet_out",
                &[(1, "egress_port", 9), (2, "_pad", 7)],
            ),
        ],
        ..Default::default()
    }
}

pub fn index() -> P4InfoIndex {
    P4InfoIndex::new(p4info()).unwrap()
}

/// A server on 127.0.0.1 with a fresh memory data plane, and a client.
pub struct Harness {
    pub server: RunningServer,
    pub dataplane: Arc<MemoryDataplane>,
    pub service: AgentService,
    pub client: P4RuntimeClient<Channel>,
}

pub async fn start() -> Harness {
    start_with(ServerConfig::new(DEVICE)).await
}

pub async fn start_with_policy(policy: PipelinePolicy) -> Harness {
    let mut config = ServerConfig::new(DEVICE);
    config.pipelines = policy;
    start_with(config).await
}

pub async fn start_with(config: ServerConfig) -> Harness {
    let dataplane = Arc::new(MemoryDataplane::new());
    let service = AgentService::new(config, dataplane.clone());
    let server = spawn_tcp(service.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = connect(&server).await;
    Harness {
        server,
        dataplane,
        service,
        client,
    }
}

pub async fn connect(server: &RunningServer) -> P4RuntimeClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.endpoint()))
        .unwrap()
        .connect_timeout(TIMEOUT)
        .connect()
        .await
        .unwrap();
    P4RuntimeClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

pub fn uint128(v: u128) -> p4::Uint128 {
    p4::Uint128 {
        high: (v >> 64) as u64,
        low: v as u64,
    }
}

/// One StreamChannel.
pub struct Stream {
    pub tx: mpsc::Sender<p4::StreamMessageRequest>,
    pub rx: tonic::Streaming<p4::StreamMessageResponse>,
}

pub fn arbitration(device_id: u64, role: &str, election: Option<u128>) -> p4::StreamMessageRequest {
    p4::StreamMessageRequest {
        update: Some(p4::stream_message_request::Update::Arbitration(
            p4::MasterArbitrationUpdate {
                device_id,
                role: (!role.is_empty()).then(|| p4::Role {
                    name: role.to_string(),
                    ..Default::default()
                }),
                election_id: election.map(uint128),
                status: None,
            },
        )),
    }
}

impl Stream {
    /// Opens a stream and sends the arbitration request (no wait).
    pub async fn open_raw(
        client: &mut P4RuntimeClient<Channel>,
        device_id: u64,
        role: &str,
        election: Option<u128>,
    ) -> Stream {
        let (tx, rx) = mpsc::channel(64);
        tx.send(arbitration(device_id, role, election))
            .await
            .unwrap();
        let rx = client
            .stream_channel(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Stream { tx, rx }
    }

    /// Opens a stream for the default role and waits for its arbitration answer.
    pub async fn open(
        client: &mut P4RuntimeClient<Channel>,
        election: u128,
    ) -> (Stream, p4::MasterArbitrationUpdate) {
        let mut s = Self::open_raw(client, DEVICE, "", Some(election)).await;
        let a = s.next_arbitration().await;
        (s, a)
    }

    /// The next message, failing the test after [`TIMEOUT`].
    pub async fn next(&mut self) -> Option<Result<p4::StreamMessageResponse, tonic::Status>> {
        tokio::time::timeout(TIMEOUT, self.rx.next())
            .await
            .expect("timed out waiting on the stream")
    }

    /// The next arbitration update (other messages are skipped).
    pub async fn next_arbitration(&mut self) -> p4::MasterArbitrationUpdate {
        loop {
            match self.next().await {
                Some(Ok(p4::StreamMessageResponse {
                    update: Some(p4::stream_message_response::Update::Arbitration(a)),
                })) => return a,
                Some(Ok(_)) => continue,
                other => panic!("stream ended while waiting for arbitration: {other:?}"),
            }
        }
    }

    /// The error status that ends the stream.
    pub async fn closing_status(&mut self) -> tonic::Status {
        loop {
            match self.next().await {
                Some(Err(status)) => return status,
                Some(Ok(_)) => continue,
                None => panic!("stream ended without an error"),
            }
        }
    }

    pub async fn send(&self, msg: p4::StreamMessageRequest) {
        self.tx.send(msg).await.unwrap();
    }
}

use tokio_stream::StreamExt as _;

pub fn code_of(a: &p4::MasterArbitrationUpdate) -> Code {
    Code::from_i32(a.status.as_ref().map_or(0, |s| s.code))
}

pub fn election_of(a: &p4::MasterArbitrationUpdate) -> Option<u128> {
    a.election_id
        .as_ref()
        .map(|e| (u128::from(e.high) << 64) | u128::from(e.low))
}

/// Pushes the test pipeline with VERIFY_AND_COMMIT as `election`.
pub async fn set_pipeline(client: &mut P4RuntimeClient<Channel>, election: u128) {
    push_pipeline(
        client,
        election,
        p4info(),
        p4::set_forwarding_pipeline_config_request::Action::VerifyAndCommit,
        Some(7),
    )
    .await
    .unwrap();
}

pub async fn push_pipeline(
    client: &mut P4RuntimeClient<Channel>,
    election: u128,
    p4info: cfg::P4Info,
    action: p4::set_forwarding_pipeline_config_request::Action,
    cookie: Option<u64>,
) -> Result<(), tonic::Status> {
    client
        .set_forwarding_pipeline_config(p4::SetForwardingPipelineConfigRequest {
            device_id: DEVICE,
            election_id: Some(uint128(election)),
            action: action as i32,
            config: Some(p4::ForwardingPipelineConfig {
                p4info: Some(p4info),
                p4_device_config: b"device-config".to_vec(),
                cookie: cookie.map(|cookie| p4::forwarding_pipeline_config::Cookie { cookie }),
            }),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// A primary client with the test pipeline set: the harness and the stream
/// that keeps it primary (election ID 10).
pub async fn primary_with_pipeline() -> (Harness, Stream) {
    let mut h = start().await;
    let (s, a) = Stream::open(&mut h.client, 10).await;
    assert_eq!(code_of(&a), Code::Ok);
    set_pipeline(&mut h.client, 10).await;
    (h, s)
}

pub fn update(kind: p4::update::Type, entity: p4::Entity) -> p4::Update {
    p4::Update {
        r#type: kind as i32,
        entity: Some(entity),
    }
}

pub fn insert(entity: p4::Entity) -> p4::Update {
    update(p4::update::Type::Insert, entity)
}

pub fn modify(entity: p4::Entity) -> p4::Update {
    update(p4::update::Type::Modify, entity)
}

pub fn delete(entity: p4::Entity) -> p4::Update {
    update(p4::update::Type::Delete, entity)
}

pub fn table_entity(t: p4::TableEntry) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::TableEntry(t)),
    }
}

pub async fn write_with(
    client: &mut P4RuntimeClient<Channel>,
    election: u128,
    updates: Vec<p4::Update>,
    atomicity: p4::write_request::Atomicity,
) -> Result<(), tonic::Status> {
    client
        .write(p4::WriteRequest {
            device_id: DEVICE,
            election_id: Some(uint128(election)),
            updates,
            atomicity: atomicity as i32,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// Writes as the primary of [`primary_with_pipeline`], continue-on-error.
pub async fn write(
    client: &mut P4RuntimeClient<Channel>,
    updates: Vec<p4::Update>,
) -> Result<(), tonic::Status> {
    write_with(
        client,
        10,
        updates,
        p4::write_request::Atomicity::ContinueOnError,
    )
    .await
}

/// The per-update results carried by a failed Write.
pub fn per_update(status: &tonic::Status) -> Vec<(Code, String)> {
    let rpc = tonic_types::pb::Status::decode(status.details()).expect("google.rpc.Status details");
    rpc.details
        .iter()
        .map(|any| {
            assert_eq!(any.type_url, "type.googleapis.com/p4.v1.Error");
            let e = p4::Error::decode(any.value.as_slice()).unwrap();
            (Code::from_i32(e.canonical_code), e.message)
        })
        .collect()
}

/// Writes one update and returns its error (code and message).
pub async fn write_one_err(client: &mut P4RuntimeClient<Channel>, u: p4::Update) -> (Code, String) {
    let status = write(client, vec![u])
        .await
        .expect_err("the write should fail");
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    let per = per_update(&status);
    assert_eq!(per.len(), 1);
    per.into_iter().next().unwrap()
}

/// Reads `entities` and collects every answer (all chunks).
pub async fn read_chunks(
    client: &mut P4RuntimeClient<Channel>,
    entities: Vec<p4::Entity>,
) -> Result<Vec<p4::ReadResponse>, tonic::Status> {
    let mut stream = client
        .read(p4::ReadRequest {
            device_id: DEVICE,
            entities,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.next().await {
        out.push(r?);
    }
    Ok(out)
}

pub async fn read(
    client: &mut P4RuntimeClient<Channel>,
    entities: Vec<p4::Entity>,
) -> Result<Vec<p4::Entity>, tonic::Status> {
    Ok(read_chunks(client, entities)
        .await?
        .into_iter()
        .flat_map(|r| r.entities)
        .collect())
}

pub fn table_entries(entities: Vec<p4::Entity>) -> Vec<p4::TableEntry> {
    entities
        .into_iter()
        .filter_map(|e| match e.entity {
            Some(p4::entity::Entity::TableEntry(t)) => Some(t),
            _ => None,
        })
        .collect()
}

pub fn wildcard(table_id: u32) -> p4::Entity {
    table_entity(p4::TableEntry {
        table_id,
        ..Default::default()
    })
}

/// An l2 entry `mac -> set_port(port)`, built through the P4Info builders.
pub fn l2_entry(ix: &P4InfoIndex, mac: u64, port: u16) -> p4::TableEntry {
    ix.table_entry("ingress.l2")
        .unwrap()
        .exact("hdr.eth.dst", &mac.to_be_bytes()[2..])
        .unwrap()
        .action(
            ix.action("ingress.set_port")
                .unwrap()
                .param("port", port)
                .unwrap()
                .build()
                .unwrap(),
        )
        .unwrap()
        .build_entry()
        .unwrap()
}

/// Asserts that `msg` names every one of `parts`.
pub fn assert_names(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} does not name {p:?}");
    }
}
