//! Wire compatibility of Solyx's generated P4Runtime types with the official
//! P4Runtime Python bindings (the `p4runtime` package on PyPI).
//!
//! `tests/py/wire_compat.py` and this file build the same corpus of messages,
//! case by case. Three checks run against that script:
//!
//! * Python → Rust → Python: Python serializes every case; Rust decodes each
//!   into its prost type, compares it with the Rust-built case, asserts
//!   specific field values, re-encodes it, and Python checks that its parse
//!   of the Rust bytes equals what it built.
//! * Rust → Python: Rust encodes its own corpus and Python checks each case.
//! * Descriptors: Python compares [`solyx_p4runtime::FILE_DESCRIPTOR_SET`]
//!   with the official descriptors, field by field and enum by enum.
//!
//! The Python comes from `SOLYX_P4RT_PYTHON` (a path to an interpreter) or
//! else `.venv-p4rt/bin/python` at the workspace root. Set it up with
//! `python3 -m venv .venv-p4rt && .venv-p4rt/bin/pip install p4runtime==1.6.0 protobuf`.
//! When neither imports the bindings, each test prints why it was skipped
//! and passes, unless `SOLYX_REQUIRE_PY=1`, in which case it fails.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use prost_types::Any;
use solyx_p4runtime::proto::p4::config::v1 as cfg;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::FILE_DESCRIPTOR_SET;
use tonic_types::pb::Status;

use p4::entity::Entity as E;
use p4::field_match::FieldMatchType as Fm;
use p4::update::Type as UpdateType;
use p4::write_request::Atomicity;

// ---------------------------------------------------------------------------
// Finding Python and running the script

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/wire_compat.py");

/// The interpreters to try, in order.
fn python_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("SOLYX_P4RT_PYTHON") {
        out.push(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives inside the workspace");
    out.push(root.join(".venv-p4rt").join("bin").join("python"));
    out
}

fn python_command(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python");
    cmd
}

/// The first interpreter that imports the official bindings, or `None` after
/// reporting the skip (or panics when `SOLYX_REQUIRE_PY=1`).
fn python_or_skip(test: &str) -> Option<PathBuf> {
    let candidates = python_candidates();
    for python in &candidates {
        let ok = python_command(python)
            .args(["-c", "import p4.v1.p4runtime_pb2"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(python.clone());
        }
    }
    let why = format!(
        "no Python with the P4Runtime bindings (tried {candidates:?}; set SOLYX_P4RT_PYTHON or \
         create .venv-p4rt with `pip install p4runtime==1.6.0 protobuf`)"
    );
    if std::env::var("SOLYX_REQUIRE_PY").as_deref() == Ok("1") {
        panic!("{test}: SOLYX_REQUIRE_PY=1 but {why}");
    }
    // Written to the stderr handle rather than with eprintln!, which the test
    // harness captures, so that the skip shows in every run.
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
    None
}

/// Runs the script in one mode; panics with its output when it fails.
fn run_script(python: &Path, mode: &str, arg: &Path) -> String {
    let out = python_command(python)
        .arg(SCRIPT)
        .arg(mode)
        .arg(arg)
        .output()
        .expect("run the Python interpreter");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "wire_compat.py {mode} failed:\n{text}"
    );
    text
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "solyx-wire-compat-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// The message kinds of the corpus

/// One corpus message, tagged with its protobuf type.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Write(p4::WriteRequest),
    StreamRequest(p4::StreamMessageRequest),
    StreamResponse(p4::StreamMessageResponse),
    SetPipeline(p4::SetForwardingPipelineConfigRequest),
    GetPipelineRequest(p4::GetForwardingPipelineConfigRequest),
    GetPipelineResponse(p4::GetForwardingPipelineConfigResponse),
    ReadRequest(p4::ReadRequest),
    ReadResponse(p4::ReadResponse),
    Status(Status),
    CapabilitiesRequest(p4::CapabilitiesRequest),
    CapabilitiesResponse(p4::CapabilitiesResponse),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Write(m) => m.encode_to_vec(),
            Msg::StreamRequest(m) => m.encode_to_vec(),
            Msg::StreamResponse(m) => m.encode_to_vec(),
            Msg::SetPipeline(m) => m.encode_to_vec(),
            Msg::GetPipelineRequest(m) => m.encode_to_vec(),
            Msg::GetPipelineResponse(m) => m.encode_to_vec(),
            Msg::ReadRequest(m) => m.encode_to_vec(),
            Msg::ReadResponse(m) => m.encode_to_vec(),
            Msg::Status(m) => m.encode_to_vec(),
            Msg::CapabilitiesRequest(m) => m.encode_to_vec(),
            Msg::CapabilitiesResponse(m) => m.encode_to_vec(),
        }
    }

    /// Decodes bytes as the same protobuf type as `self`.
    fn decode_like(&self, bytes: &[u8]) -> Result<Msg, prost::DecodeError> {
        Ok(match self {
            Msg::Write(_) => Msg::Write(Message::decode(bytes)?),
            Msg::StreamRequest(_) => Msg::StreamRequest(Message::decode(bytes)?),
            Msg::StreamResponse(_) => Msg::StreamResponse(Message::decode(bytes)?),
            Msg::SetPipeline(_) => Msg::SetPipeline(Message::decode(bytes)?),
            Msg::GetPipelineRequest(_) => Msg::GetPipelineRequest(Message::decode(bytes)?),
            Msg::GetPipelineResponse(_) => Msg::GetPipelineResponse(Message::decode(bytes)?),
            Msg::ReadRequest(_) => Msg::ReadRequest(Message::decode(bytes)?),
            Msg::ReadResponse(_) => Msg::ReadResponse(Message::decode(bytes)?),
            Msg::Status(_) => Msg::Status(Message::decode(bytes)?),
            Msg::CapabilitiesRequest(_) => Msg::CapabilitiesRequest(Message::decode(bytes)?),
            Msg::CapabilitiesResponse(_) => Msg::CapabilitiesResponse(Message::decode(bytes)?),
        })
    }
}

// ---------------------------------------------------------------------------
// Building blocks, mirroring the helpers of wire_compat.py

const TABLE_L2: u32 = 0x0200_0001;
const TABLE_IPV4_LPM: u32 = 0x0200_0002;
const TABLE_ACL: u32 = 0x0200_0003;
const TABLE_ECMP: u32 = 0x0200_0004;
const ACTION_SET_PORT: u32 = 0x0100_0001;
const ACTION_SET_NHOP: u32 = 0x0100_0002;
const ACTION_DROP: u32 = 0x0100_0003;
const ACTION_TO_CPU: u32 = 0x0100_0004;
const ACTION_PROFILE_ECMP: u32 = 0x1100_0001;
const COUNTER_PORT: u32 = 0x1200_0001;
const DIRECT_COUNTER_ACL: u32 = 0x1300_0001;
const METER_PORT: u32 = 0x1400_0001;
const DIRECT_METER_ACL: u32 = 0x1500_0001;
const REGISTER_FLOWS: u32 = 0x1600_0001;
const DIGEST_LEARN: u32 = 0x1700_0001;
const VALUE_SET_TPID: u32 = 0x0300_0001;
const PACKET_IN: u32 = 0x0400_0001;
const PACKET_OUT: u32 = 0x0400_0002;
const EXTERN_TYPE: u32 = 0x81;
const EXTERN_ID: u32 = 0x8100_0001;

fn election_id() -> Option<p4::Uint128> {
    Some(p4::Uint128 {
        high: 1,
        low: 0xFFFF_FFFF_FFFF_FFF0,
    })
}

/// Packs a message into an Any the way the official runtime does.
fn pack<M: Message>(full_name: &str, msg: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{full_name}"),
        value: msg.encode_to_vec(),
    }
}

fn write(updates: Vec<p4::Update>, atomicity: Atomicity) -> p4::WriteRequest {
    p4::WriteRequest {
        device_id: 1,
        election_id: election_id(),
        updates,
        atomicity: atomicity as i32,
        ..Default::default()
    }
}

fn update(kind: UpdateType, entity: E) -> p4::Update {
    p4::Update {
        r#type: kind as i32,
        entity: Some(p4::Entity {
            entity: Some(entity),
        }),
    }
}

fn field(field_id: u32, m: Fm) -> p4::FieldMatch {
    p4::FieldMatch {
        field_id,
        field_match_type: Some(m),
    }
}

fn exact(field_id: u32, value: &[u8]) -> p4::FieldMatch {
    field(
        field_id,
        Fm::Exact(p4::field_match::Exact {
            value: value.to_vec(),
        }),
    )
}

fn lpm(field_id: u32, value: &[u8], prefix_len: i32) -> p4::FieldMatch {
    field(
        field_id,
        Fm::Lpm(p4::field_match::Lpm {
            value: value.to_vec(),
            prefix_len,
        }),
    )
}

fn optional(field_id: u32, value: &[u8]) -> p4::FieldMatch {
    field(
        field_id,
        Fm::Optional(p4::field_match::Optional {
            value: value.to_vec(),
        }),
    )
}

fn action(action_id: u32, params: &[(u32, &[u8])]) -> p4::Action {
    p4::Action {
        action_id,
        params: params
            .iter()
            .map(|(param_id, value)| p4::action::Param {
                param_id: *param_id,
                value: value.to_vec(),
            })
            .collect(),
    }
}

fn set_nhop(port: &[u8], mac: &[u8]) -> p4::Action {
    action(ACTION_SET_NHOP, &[(1, port), (2, mac)])
}

fn direct(a: p4::Action) -> Option<p4::TableAction> {
    Some(p4::TableAction {
        r#type: Some(p4::table_action::Type::Action(a)),
    })
}

fn l2_key(mac: &[u8]) -> Vec<p4::FieldMatch> {
    vec![exact(1, mac)]
}

fn counter_data(byte_count: i64, packet_count: i64) -> Option<p4::CounterData> {
    Some(p4::CounterData {
        byte_count,
        packet_count,
    })
}

fn acl_optional_entry() -> p4::TableEntry {
    p4::TableEntry {
        table_id: TABLE_ACL,
        r#match: vec![optional(3, b"\x11")],
        priority: 5,
        ..Default::default()
    }
}

fn pre(t: p4::packet_replication_engine_entry::Type) -> E {
    E::PacketReplicationEngineEntry(p4::PacketReplicationEngineEntry { r#type: Some(t) })
}

fn replica(port: &[u8], instance: u32) -> p4::Replica {
    p4::Replica {
        port_kind: Some(p4::replica::PortKind::Port(port.to_vec())),
        instance,
        backup_replicas: vec![],
    }
}

fn bits(value: &[u8]) -> p4::P4Data {
    p4::P4Data {
        data: Some(p4::p4_data::Data::Bitstring(value.to_vec())),
    }
}

fn data(d: p4::p4_data::Data) -> p4::P4Data {
    p4::P4Data { data: Some(d) }
}

fn header(is_valid: bool, fields: &[&[u8]]) -> p4::P4Header {
    p4::P4Header {
        is_valid,
        bitstrings: fields.iter().map(|f| f.to_vec()).collect(),
    }
}

// ---------------------------------------------------------------------------
// Write requests

fn write_exact() -> Msg {
    let entry = p4::TableEntry {
        table_id: TABLE_L2,
        r#match: l2_key(b"\x00\x00\x00\x00\x00\x01"),
        action: direct(action(ACTION_SET_PORT, &[(1, b"\x01")])),
        idle_timeout_ns: 5_000_000_000,
        metadata: b"solyx:l2:1".to_vec(),
        ..Default::default()
    };
    Msg::Write(write(
        vec![update(UpdateType::Insert, E::TableEntry(entry))],
        Atomicity::ContinueOnError,
    ))
}

fn write_lpm() -> Msg {
    let entry = p4::TableEntry {
        table_id: TABLE_IPV4_LPM,
        r#match: vec![lpm(1, b"\x0a\x00\x00\x00", 8)],
        action: direct(set_nhop(b"\x02", b"\x00\x00\x00\x00\x00\x02")),
        ..Default::default()
    };
    Msg::Write(write(
        vec![update(UpdateType::Insert, E::TableEntry(entry))],
        Atomicity::ContinueOnError,
    ))
}

fn write_ternary_range_optional() -> Msg {
    let entry = p4::TableEntry {
        table_id: TABLE_ACL,
        r#match: vec![
            field(
                1,
                Fm::Ternary(p4::field_match::Ternary {
                    value: b"\x0a\x00\x00\x00".to_vec(),
                    mask: b"\xff\x00\x00\x00".to_vec(),
                }),
            ),
            field(
                2,
                Fm::Range(p4::field_match::Range {
                    low: b"\x00\x50".to_vec(),
                    high: b"\x01\xbb".to_vec(),
                }),
            ),
            optional(3, b"\x06"),
        ],
        action: direct(action(ACTION_DROP, &[])),
        priority: 10,
        meter_config: Some(p4::MeterConfig {
            cir: 1000,
            cburst: 100,
            pir: 2000,
            pburst: 200,
            eburst: 0,
        }),
        counter_data: counter_data(0, 0),
        ..Default::default()
    };
    Msg::Write(write(
        vec![update(UpdateType::Insert, E::TableEntry(entry))],
        Atomicity::RollbackOnError,
    ))
}

fn write_default_action() -> Msg {
    let mut req = write(
        vec![
            update(
                UpdateType::Modify,
                E::TableEntry(p4::TableEntry {
                    table_id: TABLE_ACL,
                    is_default_action: true,
                    action: direct(action(ACTION_TO_CPU, &[])),
                    ..Default::default()
                }),
            ),
            update(
                UpdateType::Delete,
                E::TableEntry(p4::TableEntry {
                    table_id: TABLE_L2,
                    r#match: l2_key(b"\x00\x00\x00\x00\x00\x01"),
                    ..Default::default()
                }),
            ),
        ],
        Atomicity::DataplaneAtomic,
    );
    req.role = "solyx.acl".to_string();
    Msg::Write(req)
}

fn write_profile_actions() -> Msg {
    let entry = |prefix: &[u8], t: p4::table_action::Type| p4::TableEntry {
        table_id: TABLE_ECMP,
        r#match: vec![lpm(1, prefix, 16)],
        action: Some(p4::TableAction { r#type: Some(t) }),
        ..Default::default()
    };
    Msg::Write(write(
        vec![
            update(
                UpdateType::Insert,
                E::TableEntry(entry(
                    b"\xc0\xa8\x00\x00",
                    p4::table_action::Type::ActionProfileMemberId(7),
                )),
            ),
            update(
                UpdateType::Insert,
                E::TableEntry(entry(
                    b"\xc0\xa9\x00\x00",
                    p4::table_action::Type::ActionProfileGroupId(3),
                )),
            ),
        ],
        Atomicity::ContinueOnError,
    ))
}

fn write_one_shot() -> Msg {
    use p4::action_profile_action::WatchKind;
    use p4::action_profile_action_set::{ActionSelectionMode, SizeSemantics};
    let weighted = |a: p4::Action, weight: i32, port: &[u8]| p4::ActionProfileAction {
        action: Some(a),
        weight,
        watch_kind: Some(WatchKind::WatchPort(port.to_vec())),
    };
    let set = p4::ActionProfileActionSet {
        group_action: Some(action(ACTION_TO_CPU, &[])),
        action_profile_actions: vec![
            weighted(set_nhop(b"\x01", b"\x00\x00\x00\x00\x00\x11"), 1, b"\x01"),
            weighted(set_nhop(b"\x02", b"\x00\x00\x00\x00\x00\x12"), 3, b"\x02"),
        ],
        action_selection_mode: ActionSelectionMode::Hash as i32,
        size_semantics: SizeSemantics::SumOfWeights as i32,
    };
    let entry = p4::TableEntry {
        table_id: TABLE_ECMP,
        r#match: vec![lpm(1, b"\x0a\x01\x00\x00", 16)],
        action: Some(p4::TableAction {
            r#type: Some(p4::table_action::Type::ActionProfileActionSet(set)),
        }),
        ..Default::default()
    };
    Msg::Write(write(
        vec![update(UpdateType::Insert, E::TableEntry(entry))],
        Atomicity::ContinueOnError,
    ))
}

fn write_profile_members() -> Msg {
    let member = |member_id: u32, a: p4::Action| {
        update(
            UpdateType::Insert,
            E::ActionProfileMember(p4::ActionProfileMember {
                action_profile_id: ACTION_PROFILE_ECMP,
                member_id,
                action: Some(a),
            }),
        )
    };
    Msg::Write(write(
        vec![
            member(7, set_nhop(b"\x01", b"\x00\x00\x00\x00\x00\x11")),
            member(8, set_nhop(b"\x02", b"\x00\x00\x00\x00\x00\x12")),
        ],
        Atomicity::ContinueOnError,
    ))
}

fn weighted_group() -> p4::ActionProfileGroup {
    use p4::action_profile_group::member::WatchKind;
    use p4::action_profile_group::Member;
    let member = |member_id: u32, weight: i32, port: &[u8]| Member {
        member_id,
        weight,
        watch_kind: Some(WatchKind::WatchPort(port.to_vec())),
    };
    p4::ActionProfileGroup {
        action_profile_id: ACTION_PROFILE_ECMP,
        group_id: 3,
        members: vec![member(7, 2, b"\x01"), member(8, 5, b"\x02")],
        max_size: 16,
    }
}

fn write_weighted_group() -> Msg {
    Msg::Write(write(
        vec![update(
            UpdateType::Insert,
            E::ActionProfileGroup(weighted_group()),
        )],
        Atomicity::ContinueOnError,
    ))
}

fn write_counters() -> Msg {
    Msg::Write(write(
        vec![
            update(
                UpdateType::Modify,
                E::CounterEntry(p4::CounterEntry {
                    counter_id: COUNTER_PORT,
                    index: Some(p4::Index { index: 3 }),
                    data: counter_data(1500, 1),
                }),
            ),
            update(
                UpdateType::Modify,
                E::DirectCounterEntry(p4::DirectCounterEntry {
                    table_entry: Some(acl_optional_entry()),
                    data: counter_data(9_000_000_000, 6_000_000),
                }),
            ),
        ],
        Atomicity::ContinueOnError,
    ))
}

fn write_meters() -> Msg {
    Msg::Write(write(
        vec![
            update(
                UpdateType::Modify,
                E::MeterEntry(p4::MeterEntry {
                    meter_id: METER_PORT,
                    index: Some(p4::Index { index: 2 }),
                    config: Some(p4::MeterConfig {
                        cir: 125_000,
                        cburst: 10_000,
                        pir: 250_000,
                        pburst: 20_000,
                        eburst: 0,
                    }),
                    counter_data: None,
                }),
            ),
            update(
                UpdateType::Modify,
                E::DirectMeterEntry(p4::DirectMeterEntry {
                    table_entry: Some(acl_optional_entry()),
                    config: Some(p4::MeterConfig {
                        cir: 500,
                        cburst: 50,
                        eburst: 75,
                        ..Default::default()
                    }),
                    counter_data: None,
                }),
            ),
        ],
        Atomicity::ContinueOnError,
    ))
}

fn multicast_group() -> E {
    let mut backed_up = replica(b"\x02", 1);
    backed_up.backup_replicas = vec![p4::BackupReplica {
        port: b"\x03".to_vec(),
        instance: 2,
    }];
    pre(
        p4::packet_replication_engine_entry::Type::MulticastGroupEntry(p4::MulticastGroupEntry {
            multicast_group_id: 1,
            replicas: vec![replica(b"\x01", 1), backed_up],
            metadata: b"flood".to_vec(),
        }),
    )
}

fn write_replication() -> Msg {
    let session = p4::CloneSessionEntry {
        session_id: 100,
        replicas: vec![replica(b"\xff\xff\xff\xfd", 0)],
        class_of_service: 2,
        packet_length_bytes: 128,
    };
    Msg::Write(write(
        vec![
            update(UpdateType::Insert, multicast_group()),
            update(
                UpdateType::Insert,
                pre(p4::packet_replication_engine_entry::Type::CloneSessionEntry(session)),
            ),
        ],
        Atomicity::ContinueOnError,
    ))
}

fn flow_record() -> p4::P4Data {
    use p4::p4_data::Data;
    data(Data::Struct(p4::P4StructLike {
        members: vec![
            bits(b"\x0a\x00\x00\x01"),
            data(Data::Varbit(p4::P4Varbit {
                bitstring: b"\x01\x02".to_vec(),
                bitwidth: 12,
            })),
            data(Data::Bool(true)),
            data(Data::Tuple(p4::P4StructLike {
                members: vec![bits(b"\x07")],
            })),
            data(Data::Header(header(true, &[b"\x08\x00", b"\x45"]))),
            data(Data::HeaderUnion(p4::P4HeaderUnion {
                valid_header_name: "ipv4".to_string(),
                valid_header: Some(header(true, &[b"\x04"])),
            })),
            data(Data::HeaderStack(p4::P4HeaderStack {
                entries: vec![header(true, &[b"\x01"]), p4::P4Header::default()],
            })),
            data(Data::HeaderUnionStack(p4::P4HeaderUnionStack {
                entries: vec![p4::P4HeaderUnion::default()],
            })),
            data(Data::Enum("RED".to_string())),
            data(Data::Error("PacketTooShort".to_string())),
            data(Data::EnumValue(b"\x02".to_vec())),
        ],
    }))
}

fn write_other_entities() -> Msg {
    let tpid = |v: &[u8]| p4::ValueSetMember {
        r#match: vec![exact(1, v)],
    };
    let other_match = field(
        4,
        Fm::Other(pack(
            "p4.v1.FieldMatch.Exact",
            &p4::field_match::Exact {
                value: b"\x05".to_vec(),
            },
        )),
    );
    Msg::Write(write(
        vec![
            update(
                UpdateType::Modify,
                E::ValueSetEntry(p4::ValueSetEntry {
                    value_set_id: VALUE_SET_TPID,
                    members: vec![tpid(b"\x81\x00"), tpid(b"\x88\xa8")],
                }),
            ),
            update(
                UpdateType::Modify,
                E::RegisterEntry(p4::RegisterEntry {
                    register_id: REGISTER_FLOWS,
                    index: Some(p4::Index { index: 0 }),
                    data: Some(flow_record()),
                }),
            ),
            update(
                UpdateType::Insert,
                E::DigestEntry(p4::DigestEntry {
                    digest_id: DIGEST_LEARN,
                    config: Some(p4::digest_entry::Config {
                        max_timeout_ns: 1_000_000,
                        max_list_size: 64,
                        ack_timeout_ns: 500_000_000,
                    }),
                }),
            ),
            update(
                UpdateType::Insert,
                E::ExternEntry(p4::ExternEntry {
                    extern_type_id: EXTERN_TYPE,
                    extern_id: EXTERN_ID,
                    entry: Some(pack("p4.v1.P4Data", &bits(b"\x00\x2a"))),
                }),
            ),
            update(
                UpdateType::Insert,
                E::TableEntry(p4::TableEntry {
                    table_id: TABLE_ACL,
                    r#match: vec![other_match],
                    priority: 1,
                    ..Default::default()
                }),
            ),
        ],
        Atomicity::ContinueOnError,
    ))
}

#[allow(deprecated)]
fn write_deprecated_fields() -> Msg {
    use p4::action_profile_group::member::WatchKind;
    let mut req = write(
        vec![
            update(
                UpdateType::Insert,
                E::TableEntry(p4::TableEntry {
                    table_id: TABLE_L2,
                    r#match: l2_key(b"\x00\x00\x00\x00\x00\x02"),
                    controller_metadata: 0xDEAD_BEEF,
                    ..Default::default()
                }),
            ),
            update(
                UpdateType::Insert,
                E::ActionProfileGroup(p4::ActionProfileGroup {
                    action_profile_id: ACTION_PROFILE_ECMP,
                    group_id: 4,
                    members: vec![p4::action_profile_group::Member {
                        member_id: 7,
                        weight: 1,
                        watch_kind: Some(WatchKind::Watch(9)),
                    }],
                    max_size: 0,
                }),
            ),
            update(
                UpdateType::Insert,
                pre(
                    p4::packet_replication_engine_entry::Type::MulticastGroupEntry(
                        p4::MulticastGroupEntry {
                            multicast_group_id: 2,
                            replicas: vec![p4::Replica {
                                port_kind: Some(p4::replica::PortKind::EgressPort(4)),
                                instance: 0,
                                backup_replicas: vec![],
                            }],
                            metadata: vec![],
                        },
                    ),
                ),
            ),
        ],
        Atomicity::ContinueOnError,
    );
    req.role_id = 3;
    Msg::Write(req)
}

// ---------------------------------------------------------------------------
// Stream channel

fn stream_request(u: p4::stream_message_request::Update) -> Msg {
    Msg::StreamRequest(p4::StreamMessageRequest { update: Some(u) })
}

fn stream_response(u: p4::stream_message_response::Update) -> Msg {
    Msg::StreamResponse(p4::StreamMessageResponse { update: Some(u) })
}

fn role(name: &str, config: Option<Any>) -> Option<p4::Role> {
    Some(p4::Role {
        name: name.to_string(),
        config,
        ..Default::default()
    })
}

fn documentation(brief: &str) -> cfg::Documentation {
    cfg::Documentation {
        brief: brief.to_string(),
        description: String::new(),
    }
}

fn stream_arbitration_request() -> Msg {
    stream_request(p4::stream_message_request::Update::Arbitration(
        p4::MasterArbitrationUpdate {
            device_id: 1,
            role: role(
                "solyx.acl",
                Some(pack(
                    "p4.config.v1.Documentation",
                    &documentation("acl role"),
                )),
            ),
            election_id: election_id(),
            status: None,
        },
    ))
}

fn stream_arbitration_response() -> Msg {
    stream_response(p4::stream_message_response::Update::Arbitration(
        p4::MasterArbitrationUpdate {
            device_id: 1,
            role: role("solyx.acl", None),
            election_id: Some(p4::Uint128 { high: 0, low: 42 }),
            status: Some(Status {
                code: 6,
                message: "a primary exists for this role".to_string(),
                details: vec![],
            }),
        },
    ))
}

fn metadata(metadata_id: u32, value: &[u8]) -> p4::PacketMetadata {
    p4::PacketMetadata {
        metadata_id,
        value: value.to_vec(),
    }
}

fn stream_packet_out() -> Msg {
    stream_request(p4::stream_message_request::Update::Packet(p4::PacketOut {
        payload: (0u8..64).collect(),
        metadata: vec![metadata(1, b"\x00\x05"), metadata(2, b"\x01")],
    }))
}

fn stream_packet_in() -> Msg {
    let mut payload = vec![0xff; 6];
    payload.extend_from_slice(b"\x00\x00\x00\x00\x00\x01\x88\xcc");
    stream_response(p4::stream_message_response::Update::Packet(p4::PacketIn {
        payload,
        metadata: vec![metadata(1, b"\x00\x03")],
    }))
}

fn stream_digest_list() -> Msg {
    let learned = |mac: &[u8], port: &[u8]| {
        data(p4::p4_data::Data::Struct(p4::P4StructLike {
            members: vec![bits(mac), bits(port)],
        }))
    };
    stream_response(p4::stream_message_response::Update::Digest(
        p4::DigestList {
            digest_id: DIGEST_LEARN,
            list_id: 77,
            data: vec![
                learned(b"\x00\x00\x00\x00\x00\x0a", b"\x01"),
                learned(b"\x00\x00\x00\x00\x00\x0b", b"\x02"),
            ],
            timestamp: 1_700_000_000_000_000_000,
        },
    ))
}

fn stream_digest_ack() -> Msg {
    stream_request(p4::stream_message_request::Update::DigestAck(
        p4::DigestListAck {
            digest_id: DIGEST_LEARN,
            list_id: 77,
        },
    ))
}

fn stream_idle_timeout() -> Msg {
    let entry = |mac: &[u8]| p4::TableEntry {
        table_id: TABLE_L2,
        r#match: l2_key(mac),
        ..Default::default()
    };
    stream_response(
        p4::stream_message_response::Update::IdleTimeoutNotification(p4::IdleTimeoutNotification {
            table_entry: vec![
                entry(b"\x00\x00\x00\x00\x00\x01"),
                entry(b"\x00\x00\x00\x00\x00\x02"),
            ],
            timestamp: 1_700_000_000_000_000_001,
        }),
    )
}

fn stream_error(
    canonical_code: i32,
    message: &str,
    space: &str,
    code: i32,
    details: p4::stream_error::Details,
) -> Msg {
    stream_response(p4::stream_message_response::Update::Error(
        p4::StreamError {
            canonical_code,
            message: message.to_string(),
            space: space.to_string(),
            code,
            details: Some(details),
        },
    ))
}

fn stream_error_packet_out() -> Msg {
    stream_error(
        3,
        "unknown metadata id 9",
        "solyx",
        1001,
        p4::stream_error::Details::PacketOut(p4::PacketOutError {
            packet_out: Some(p4::PacketOut {
                payload: b"\x00".to_vec(),
                metadata: vec![metadata(9, b"\x01")],
            }),
        }),
    )
}

fn stream_error_digest_ack() -> Msg {
    stream_error(
        5,
        "no such digest list",
        "",
        0,
        p4::stream_error::Details::DigestListAck(p4::DigestListAckError {
            digest_list_ack: Some(p4::DigestListAck {
                digest_id: DIGEST_LEARN,
                list_id: 78,
            }),
        }),
    )
}

fn ping() -> Any {
    pack(
        "p4.v1.PacketOut",
        &p4::PacketOut {
            payload: b"ping".to_vec(),
            metadata: vec![],
        },
    )
}

fn stream_error_other() -> Msg {
    stream_error(
        12,
        "unsupported",
        "",
        0,
        p4::stream_error::Details::Other(p4::StreamOtherError {
            other: Some(ping()),
        }),
    )
}

fn stream_other() -> Msg {
    stream_request(p4::stream_message_request::Update::Other(ping()))
}

// ---------------------------------------------------------------------------
// Pipeline configuration

fn preamble(name: &str, id: u32) -> Option<cfg::Preamble> {
    let alias = name.rsplit('.').next().unwrap_or(name);
    Some(cfg::Preamble {
        id,
        name: name.to_string(),
        alias: alias.to_string(),
        annotations: vec![format!("@name(\"{name}\")")],
        doc: Some(documentation(&format!("the {name} object"))),
        ..Default::default()
    })
}

fn match_field(
    id: u32,
    name: &str,
    bitwidth: i32,
    kind: cfg::match_field::MatchType,
) -> cfg::MatchField {
    cfg::MatchField {
        id,
        name: name.to_string(),
        bitwidth,
        r#match: Some(cfg::match_field::Match::MatchType(kind as i32)),
        ..Default::default()
    }
}

fn action_ref(id: u32, scope: cfg::action_ref::Scope) -> cfg::ActionRef {
    cfg::ActionRef {
        id,
        scope: scope as i32,
        ..Default::default()
    }
}

fn param(id: u32, name: &str, bitwidth: i32) -> cfg::action::Param {
    cfg::action::Param {
        id,
        name: name.to_string(),
        bitwidth,
        ..Default::default()
    }
}

fn packet_metadata(
    id: u32,
    name: &str,
    bitwidth: i32,
) -> cfg::controller_packet_metadata::Metadata {
    cfg::controller_packet_metadata::Metadata {
        id,
        name: name.to_string(),
        bitwidth,
        ..Default::default()
    }
}

fn bit_type(bitwidth: i32) -> cfg::P4BitstringLikeTypeSpec {
    cfg::P4BitstringLikeTypeSpec {
        type_spec: Some(cfg::p4_bitstring_like_type_spec::TypeSpec::Bit(
            cfg::P4BitTypeSpec { bitwidth },
        )),
        ..Default::default()
    }
}

fn bit_data_type(bitwidth: i32) -> Option<cfg::P4DataTypeSpec> {
    Some(cfg::P4DataTypeSpec {
        type_spec: Some(cfg::p4_data_type_spec::TypeSpec::Bitstring(bit_type(
            bitwidth,
        ))),
    })
}

fn named(name: &str) -> cfg::P4NamedType {
    cfg::P4NamedType {
        name: name.to_string(),
    }
}

fn struct_member(
    name: &str,
    type_spec: Option<cfg::P4DataTypeSpec>,
) -> cfg::p4_struct_type_spec::Member {
    cfg::p4_struct_type_spec::Member {
        name: name.to_string(),
        type_spec,
    }
}

fn type_info() -> cfg::P4TypeInfo {
    use cfg::p4_data_type_spec::TypeSpec;
    let structs = HashMap::from([
        (
            "learn_t".to_string(),
            cfg::P4StructTypeSpec {
                members: vec![
                    struct_member("mac", bit_data_type(48)),
                    struct_member("port", bit_data_type(9)),
                ],
                ..Default::default()
            },
        ),
        (
            "flow_t".to_string(),
            cfg::P4StructTypeSpec {
                members: vec![
                    struct_member("dst", bit_data_type(32)),
                    struct_member(
                        "ok",
                        Some(cfg::P4DataTypeSpec {
                            type_spec: Some(TypeSpec::Bool(cfg::P4BoolType {})),
                        }),
                    ),
                    struct_member(
                        "err",
                        Some(cfg::P4DataTypeSpec {
                            type_spec: Some(TypeSpec::Error(cfg::P4ErrorType {})),
                        }),
                    ),
                ],
                ..Default::default()
            },
        ),
    ]);
    let headers = HashMap::from([(
        "ethernet_t".to_string(),
        cfg::P4HeaderTypeSpec {
            members: vec![
                cfg::p4_header_type_spec::Member {
                    name: "dst".to_string(),
                    type_spec: Some(bit_type(48)),
                },
                cfg::p4_header_type_spec::Member {
                    name: "opts".to_string(),
                    type_spec: Some(cfg::P4BitstringLikeTypeSpec {
                        type_spec: Some(cfg::p4_bitstring_like_type_spec::TypeSpec::Varbit(
                            cfg::P4VarbitTypeSpec { max_bitwidth: 320 },
                        )),
                        ..Default::default()
                    }),
                },
            ],
            ..Default::default()
        },
    )]);
    let enum_member = |name: &str| cfg::p4_enum_type_spec::Member {
        name: name.to_string(),
        ..Default::default()
    };
    let enums = HashMap::from([(
        "Color".to_string(),
        cfg::P4EnumTypeSpec {
            members: vec![enum_member("RED"), enum_member("GREEN")],
            ..Default::default()
        },
    )]);
    let serializable_enums = HashMap::from([(
        "EtherType".to_string(),
        cfg::P4SerializableEnumTypeSpec {
            underlying_type: Some(cfg::P4BitTypeSpec { bitwidth: 16 }),
            members: vec![cfg::p4_serializable_enum_type_spec::Member {
                name: "IPV4".to_string(),
                value: b"\x08\x00".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        },
    )]);
    let translated = |uri: &str, sdn: cfg::p4_new_type_translation::SdnType| cfg::P4NewTypeSpec {
        representation: Some(cfg::p4_new_type_spec::Representation::TranslatedType(
            cfg::P4NewTypeTranslation {
                uri: uri.to_string(),
                sdn_type: Some(sdn),
            },
        )),
        ..Default::default()
    };
    let new_types = HashMap::from([
        (
            "PortId_t".to_string(),
            translated(
                "p4.org/psa/v1/PortId_t",
                cfg::p4_new_type_translation::SdnType::SdnBitwidth(32),
            ),
        ),
        (
            "Name_t".to_string(),
            translated(
                "solyx/name",
                cfg::p4_new_type_translation::SdnType::SdnString(
                    cfg::p4_new_type_translation::SdnString {},
                ),
            ),
        ),
    ]);
    cfg::P4TypeInfo {
        structs,
        headers,
        header_unions: HashMap::new(),
        enums,
        error: Some(cfg::P4ErrorTypeSpec {
            members: vec!["NoError".to_string(), "PacketTooShort".to_string()],
        }),
        serializable_enums,
        new_types,
    }
}

fn pkg_info() -> cfg::PkgInfo {
    use cfg::expression::Value;
    let kv = |key: &str, value: Value| cfg::KeyValuePair {
        key: key.to_string(),
        value: Some(cfg::Expression { value: Some(value) }),
    };
    cfg::PkgInfo {
        name: "solyx_router".to_string(),
        version: "1.0".to_string(),
        doc: Some(cfg::Documentation {
            brief: "router".to_string(),
            description: "a test router".to_string(),
        }),
        arch: "v1model".to_string(),
        organization: "Solyx".to_string(),
        platform_properties: Some(cfg::PlatformProperties {
            multicast_group_table_size: 256,
            multicast_group_table_total_replicas: 4096,
            multicast_group_table_max_replicas_per_entry: 64,
        }),
        structured_annotations: vec![cfg::StructuredAnnotation {
            name: "owner".to_string(),
            body: Some(cfg::structured_annotation::Body::KvPairList(
                cfg::KeyValuePairList {
                    kv_pairs: vec![
                        kv("team", Value::StringValue("net".to_string())),
                        kv("tier", Value::Int64Value(2)),
                    ],
                },
            )),
            source_location: Some(cfg::SourceLocation {
                file: "router.p4".to_string(),
                line: 3,
                column: 1,
            }),
        }],
        ..Default::default()
    }
}

fn tables() -> Vec<cfg::Table> {
    use cfg::action_ref::Scope;
    use cfg::match_field::MatchType;
    let ipv4_field = match_field(1, "hdr.ipv4.dst_addr", 32, MatchType::Lpm);
    vec![
        cfg::Table {
            preamble: preamble("ingress.l2", TABLE_L2),
            match_fields: vec![match_field(1, "hdr.eth.dst", 48, MatchType::Exact)],
            action_refs: vec![
                action_ref(ACTION_SET_PORT, Scope::TableAndDefault),
                action_ref(ACTION_DROP, Scope::DefaultOnly),
            ],
            size: 1024,
            idle_timeout_behavior: cfg::table::IdleTimeoutBehavior::NotifyControl as i32,
            initial_default_action: Some(cfg::TableActionCall {
                action_id: ACTION_DROP,
                arguments: vec![],
            }),
            ..Default::default()
        },
        cfg::Table {
            preamble: preamble("ingress.ipv4_lpm", TABLE_IPV4_LPM),
            match_fields: vec![ipv4_field.clone()],
            action_refs: vec![
                action_ref(ACTION_SET_NHOP, Scope::TableAndDefault),
                action_ref(ACTION_DROP, Scope::TableAndDefault),
            ],
            const_default_action_id: ACTION_DROP,
            size: 4096,
            ..Default::default()
        },
        cfg::Table {
            preamble: preamble("ingress.acl", TABLE_ACL),
            match_fields: vec![
                match_field(1, "hdr.ipv4.src_addr", 32, MatchType::Ternary),
                match_field(2, "meta.l4_dport", 16, MatchType::Range),
                match_field(3, "hdr.ipv4.protocol", 8, MatchType::Optional),
                cfg::MatchField {
                    id: 4,
                    name: "meta.app".to_string(),
                    bitwidth: 8,
                    r#match: Some(cfg::match_field::Match::OtherMatchType("dpi".to_string())),
                    ..Default::default()
                },
            ],
            action_refs: vec![
                action_ref(ACTION_DROP, Scope::TableAndDefault),
                action_ref(ACTION_TO_CPU, Scope::TableOnly),
            ],
            direct_resource_ids: vec![DIRECT_COUNTER_ACL, DIRECT_METER_ACL],
            size: 256,
            ..Default::default()
        },
        cfg::Table {
            preamble: preamble("ingress.ecmp", TABLE_ECMP),
            match_fields: vec![ipv4_field],
            action_refs: vec![
                action_ref(ACTION_SET_NHOP, Scope::TableAndDefault),
                action_ref(ACTION_TO_CPU, Scope::GroupAction),
            ],
            implementation_id: ACTION_PROFILE_ECMP,
            size: 1024,
            is_const_table: false,
            has_initial_entries: true,
            other_properties: Some(pack(
                "p4.config.v1.Documentation",
                &documentation("hw table"),
            )),
            ..Default::default()
        },
    ]
}

fn p4info() -> cfg::P4Info {
    let mut port_param = param(1, "port", 9);
    port_param.type_name = Some(named("PortId_t"));
    let mut dmac_param = param(2, "dmac", 48);
    dmac_param.doc = Some(documentation("next hop MAC"));
    let cpm = |name: &str, id: u32, metadata| cfg::ControllerPacketMetadata {
        preamble: preamble(name, id),
        metadata,
    };
    cfg::P4Info {
        pkg_info: Some(pkg_info()),
        tables: tables(),
        actions: vec![
            cfg::Action {
                preamble: preamble("ingress.set_port", ACTION_SET_PORT),
                params: vec![port_param],
            },
            cfg::Action {
                preamble: preamble("ingress.set_nhop", ACTION_SET_NHOP),
                params: vec![param(1, "port", 9), dmac_param],
            },
            cfg::Action {
                preamble: preamble("ingress.drop", ACTION_DROP),
                params: vec![],
            },
            cfg::Action {
                preamble: preamble("ingress.send_to_cpu", ACTION_TO_CPU),
                params: vec![],
            },
        ],
        action_profiles: vec![cfg::ActionProfile {
            preamble: preamble("ingress.ecmp_selector", ACTION_PROFILE_ECMP),
            table_ids: vec![TABLE_ECMP],
            with_selector: true,
            size: 1024,
            max_group_size: 16,
            selector_size_semantics: Some(
                cfg::action_profile::SelectorSizeSemantics::SumOfMembers(
                    cfg::action_profile::SumOfMembers {
                        max_member_weight: 8,
                    },
                ),
            ),
            weights_disallowed: false,
        }],
        counters: vec![cfg::Counter {
            preamble: preamble("ingress.port_counter", COUNTER_PORT),
            spec: Some(cfg::CounterSpec {
                unit: cfg::counter_spec::Unit::Both as i32,
            }),
            size: 512,
            index_type_name: None,
        }],
        direct_counters: vec![cfg::DirectCounter {
            preamble: preamble("ingress.acl_counter", DIRECT_COUNTER_ACL),
            spec: Some(cfg::CounterSpec {
                unit: cfg::counter_spec::Unit::Packets as i32,
            }),
            direct_table_id: TABLE_ACL,
        }],
        meters: vec![cfg::Meter {
            preamble: preamble("ingress.port_meter", METER_PORT),
            spec: Some(cfg::MeterSpec {
                unit: cfg::meter_spec::Unit::Bytes as i32,
                r#type: cfg::meter_spec::Type::SingleRateThreeColor as i32,
            }),
            size: 512,
            index_type_name: None,
        }],
        direct_meters: vec![cfg::DirectMeter {
            preamble: preamble("ingress.acl_meter", DIRECT_METER_ACL),
            spec: Some(cfg::MeterSpec {
                unit: cfg::meter_spec::Unit::Packets as i32,
                r#type: cfg::meter_spec::Type::TwoRateThreeColor as i32,
            }),
            direct_table_id: TABLE_ACL,
        }],
        controller_packet_metadata: vec![
            cpm(
                "packet_in",
                PACKET_IN,
                vec![packet_metadata(1, "ingress_port", 9)],
            ),
            cpm(
                "packet_out",
                PACKET_OUT,
                vec![
                    packet_metadata(1, "egress_port", 9),
                    packet_metadata(2, "flags", 8),
                ],
            ),
        ],
        value_sets: vec![cfg::ValueSet {
            preamble: preamble("parser.tpid", VALUE_SET_TPID),
            r#match: vec![match_field(
                1,
                "tpid",
                16,
                cfg::match_field::MatchType::Exact,
            )],
            size: 4,
        }],
        registers: vec![cfg::Register {
            preamble: preamble("ingress.flows", REGISTER_FLOWS),
            type_spec: Some(cfg::P4DataTypeSpec {
                type_spec: Some(cfg::p4_data_type_spec::TypeSpec::Struct(named("flow_t"))),
            }),
            size: 128,
            index_type_name: None,
        }],
        digests: vec![cfg::Digest {
            preamble: preamble("learn", DIGEST_LEARN),
            type_spec: Some(cfg::P4DataTypeSpec {
                type_spec: Some(cfg::p4_data_type_spec::TypeSpec::Struct(named("learn_t"))),
            }),
        }],
        externs: vec![cfg::Extern {
            extern_type_id: EXTERN_TYPE,
            extern_type_name: "Hash".to_string(),
            instances: vec![cfg::ExternInstance {
                preamble: preamble("ingress.hash", EXTERN_ID),
                info: Some(pack(
                    "p4.config.v1.P4BitTypeSpec",
                    &cfg::P4BitTypeSpec { bitwidth: 32 },
                )),
            }],
        }],
        type_info: Some(type_info()),
    }
}

fn pipeline_config() -> p4::ForwardingPipelineConfig {
    p4::ForwardingPipelineConfig {
        p4info: Some(p4info()),
        p4_device_config: br#"{"program": "solyx_router"}"#.to_vec(),
        cookie: Some(p4::forwarding_pipeline_config::Cookie { cookie: 0xC0FFEE }),
    }
}

fn set_pipeline_config() -> Msg {
    Msg::SetPipeline(p4::SetForwardingPipelineConfigRequest {
        device_id: 1,
        election_id: election_id(),
        action: p4::set_forwarding_pipeline_config_request::Action::VerifyAndCommit as i32,
        config: Some(pipeline_config()),
        ..Default::default()
    })
}

fn get_pipeline_config_request() -> Msg {
    Msg::GetPipelineRequest(p4::GetForwardingPipelineConfigRequest {
        device_id: 1,
        response_type: p4::get_forwarding_pipeline_config_request::ResponseType::P4infoAndCookie
            as i32,
    })
}

fn get_pipeline_config_response() -> Msg {
    Msg::GetPipelineResponse(p4::GetForwardingPipelineConfigResponse {
        config: Some(pipeline_config()),
    })
}

// ---------------------------------------------------------------------------
// Read

fn entity(e: E) -> p4::Entity {
    p4::Entity { entity: Some(e) }
}

fn read_request() -> Msg {
    Msg::ReadRequest(p4::ReadRequest {
        device_id: 1,
        role: "solyx.acl".to_string(),
        entities: vec![
            entity(E::TableEntry(p4::TableEntry::default())),
            entity(E::TableEntry(p4::TableEntry {
                table_id: TABLE_ACL,
                counter_data: counter_data(0, 0),
                time_since_last_hit: Some(p4::table_entry::IdleTimeout::default()),
                ..Default::default()
            })),
            entity(E::ActionProfileMember(p4::ActionProfileMember {
                action_profile_id: ACTION_PROFILE_ECMP,
                ..Default::default()
            })),
            entity(E::ActionProfileGroup(p4::ActionProfileGroup {
                action_profile_id: ACTION_PROFILE_ECMP,
                ..Default::default()
            })),
            entity(E::CounterEntry(p4::CounterEntry {
                counter_id: COUNTER_PORT,
                ..Default::default()
            })),
            entity(E::MeterEntry(p4::MeterEntry {
                meter_id: METER_PORT,
                ..Default::default()
            })),
            entity(E::DirectCounterEntry(p4::DirectCounterEntry {
                table_entry: Some(p4::TableEntry {
                    table_id: TABLE_ACL,
                    ..Default::default()
                }),
                data: None,
            })),
            entity(pre(
                p4::packet_replication_engine_entry::Type::MulticastGroupEntry(
                    p4::MulticastGroupEntry::default(),
                ),
            )),
            entity(E::RegisterEntry(p4::RegisterEntry {
                register_id: REGISTER_FLOWS,
                ..Default::default()
            })),
            entity(E::DigestEntry(p4::DigestEntry::default())),
        ],
    })
}

fn read_response() -> Msg {
    let entry = p4::TableEntry {
        table_id: TABLE_ACL,
        r#match: vec![field(
            1,
            Fm::Ternary(p4::field_match::Ternary {
                value: b"\x0a\x00\x00\x00".to_vec(),
                mask: b"\xff\x00\x00\x00".to_vec(),
            }),
        )],
        action: direct(action(ACTION_DROP, &[])),
        priority: 10,
        counter_data: counter_data(123_456, 789),
        meter_counter_data: Some(p4::MeterCounterData {
            green: counter_data(100, 1),
            yellow: counter_data(200, 2),
            red: counter_data(300, 3),
        }),
        time_since_last_hit: Some(p4::table_entry::IdleTimeout {
            elapsed_ns: 2_500_000_000,
        }),
        is_const: true,
        ..Default::default()
    };
    Msg::ReadResponse(p4::ReadResponse {
        entities: vec![
            entity(E::TableEntry(entry)),
            entity(E::ActionProfileGroup(weighted_group())),
            entity(E::CounterEntry(p4::CounterEntry {
                counter_id: COUNTER_PORT,
                index: Some(p4::Index { index: 3 }),
                data: counter_data(1500, 1),
            })),
            entity(E::MeterEntry(p4::MeterEntry {
                meter_id: METER_PORT,
                index: Some(p4::Index { index: 2 }),
                config: Some(p4::MeterConfig {
                    cir: 125_000,
                    cburst: 10_000,
                    ..Default::default()
                }),
                counter_data: Some(p4::MeterCounterData {
                    green: counter_data(0, 10),
                    yellow: None,
                    red: None,
                }),
            })),
            entity(multicast_group()),
        ],
    })
}

// ---------------------------------------------------------------------------
// Errors and capabilities

fn error(canonical_code: i32, message: &str, space: &str, code: i32, details: Option<Any>) -> Any {
    pack(
        "p4.v1.Error",
        &p4::Error {
            canonical_code,
            message: message.to_string(),
            space: space.to_string(),
            code,
            details,
        },
    )
}

fn write_error_status() -> Msg {
    let bad_match = pack("p4.v1.FieldMatch", &lpm(1, b"\x0a", 33));
    Msg::Status(Status {
        code: 2,
        message: "2 of 3 updates failed".to_string(),
        details: vec![
            error(0, "", "", 0, None),
            error(6, "entry already exists", "solyx", 17, None),
            error(3, "bad prefix length", "", 0, Some(bad_match)),
        ],
    })
}

fn capabilities_request() -> Msg {
    Msg::CapabilitiesRequest(p4::CapabilitiesRequest { device_id: 1 })
}

fn capabilities_response() -> Msg {
    Msg::CapabilitiesResponse(p4::CapabilitiesResponse {
        p4runtime_api_version: "1.4.0".to_string(),
        experimental: Some(pack(
            "p4.config.v1.Documentation",
            &documentation("solyx experimental"),
        )),
    })
}

/// The corpus, case by case, in the order of `CASES` in wire_compat.py.
fn corpus() -> Vec<(&'static str, Msg)> {
    vec![
        ("write_exact", write_exact()),
        ("write_lpm", write_lpm()),
        (
            "write_ternary_range_optional",
            write_ternary_range_optional(),
        ),
        ("write_default_action", write_default_action()),
        ("write_profile_actions", write_profile_actions()),
        ("write_one_shot", write_one_shot()),
        ("write_profile_members", write_profile_members()),
        ("write_weighted_group", write_weighted_group()),
        ("write_counters", write_counters()),
        ("write_meters", write_meters()),
        ("write_replication", write_replication()),
        ("write_other_entities", write_other_entities()),
        ("write_deprecated_fields", write_deprecated_fields()),
        ("stream_arbitration_request", stream_arbitration_request()),
        ("stream_arbitration_response", stream_arbitration_response()),
        ("stream_packet_out", stream_packet_out()),
        ("stream_packet_in", stream_packet_in()),
        ("stream_digest_list", stream_digest_list()),
        ("stream_digest_ack", stream_digest_ack()),
        ("stream_idle_timeout", stream_idle_timeout()),
        ("stream_error_packet_out", stream_error_packet_out()),
        ("stream_error_digest_ack", stream_error_digest_ack()),
        ("stream_error_other", stream_error_other()),
        ("stream_other", stream_other()),
        ("set_pipeline_config", set_pipeline_config()),
        ("get_pipeline_config_request", get_pipeline_config_request()),
        (
            "get_pipeline_config_response",
            get_pipeline_config_response(),
        ),
        ("read_request", read_request()),
        ("read_response", read_response()),
        ("write_error_status", write_error_status()),
        ("capabilities_request", capabilities_request()),
        ("capabilities_response", capabilities_response()),
    ]
}

// ---------------------------------------------------------------------------
// Field-level assertions on what Rust decoded from Python's bytes. They use
// literal values rather than the Rust builders, so that a mistake common to
// a builder and the decoder cannot hide.

fn updates(msg: &Msg) -> &[p4::Update] {
    match msg {
        Msg::Write(w) => &w.updates,
        other => panic!("expected a WriteRequest, got {other:?}"),
    }
}

fn entity_of(u: &p4::Update) -> &E {
    u.entity
        .as_ref()
        .and_then(|e| e.entity.as_ref())
        .expect("update has an entity")
}

fn table_entry(u: &p4::Update) -> &p4::TableEntry {
    match entity_of(u) {
        E::TableEntry(t) => t,
        other => panic!("expected a table entry, got {other:?}"),
    }
}

fn match_kind(m: &p4::FieldMatch) -> &Fm {
    m.field_match_type.as_ref().expect("field match kind")
}

fn table_action(t: &p4::TableEntry) -> &p4::table_action::Type {
    t.action
        .as_ref()
        .and_then(|a| a.r#type.as_ref())
        .expect("table action")
}

fn stream_req(msg: &Msg) -> &p4::stream_message_request::Update {
    match msg {
        Msg::StreamRequest(m) => m.update.as_ref().expect("request update"),
        other => panic!("expected a StreamMessageRequest, got {other:?}"),
    }
}

fn stream_resp(msg: &Msg) -> &p4::stream_message_response::Update {
    match msg {
        Msg::StreamResponse(m) => m.update.as_ref().expect("response update"),
        other => panic!("expected a StreamMessageResponse, got {other:?}"),
    }
}

fn stream_err(msg: &Msg) -> &p4::StreamError {
    match stream_resp(msg) {
        p4::stream_message_response::Update::Error(e) => e,
        other => panic!("expected a stream error, got {other:?}"),
    }
}

fn p4info_of(config: Option<&p4::ForwardingPipelineConfig>) -> &cfg::P4Info {
    config
        .and_then(|c| c.p4info.as_ref())
        .expect("config with a P4Info")
}

fn assert_p4info(info: &cfg::P4Info) {
    assert_eq!(info.tables.len(), 4);
    let acl = &info.tables[2];
    assert_eq!(acl.preamble.as_ref().map(|p| p.id), Some(0x0200_0003));
    assert_eq!(
        acl.match_fields[1].r#match,
        Some(cfg::match_field::Match::MatchType(5)),
        "meta.l4_dport is a RANGE field"
    );
    assert_eq!(
        acl.match_fields[3].r#match,
        Some(cfg::match_field::Match::OtherMatchType("dpi".to_string()))
    );
    assert_eq!(acl.direct_resource_ids, [0x1300_0001, 0x1500_0001]);
    assert_eq!(info.tables[3].action_refs[1].scope, 3, "GROUP_ACTION scope");
    assert_eq!(
        info.tables[0]
            .initial_default_action
            .as_ref()
            .map(|a| a.action_id),
        Some(0x0100_0003)
    );
    assert_eq!(info.actions[1].params[1].name, "dmac");
    assert_eq!(info.actions[1].params[1].bitwidth, 48);
    let profile = &info.action_profiles[0];
    assert!(profile.with_selector);
    assert_eq!(
        profile.selector_size_semantics,
        Some(cfg::action_profile::SelectorSizeSemantics::SumOfMembers(
            cfg::action_profile::SumOfMembers {
                max_member_weight: 8
            }
        ))
    );
    assert_eq!(info.counters[0].spec.as_ref().map(|s| s.unit), Some(3));
    assert_eq!(
        info.meters[0].spec.as_ref().map(|s| s.r#type),
        Some(1),
        "SINGLE_RATE_THREE_COLOR is 1"
    );
    let packet_out = &info.controller_packet_metadata[1];
    assert_eq!(
        packet_out.preamble.as_ref().map(|p| p.name.as_str()),
        Some("packet_out")
    );
    assert_eq!(packet_out.metadata[1].id, 2);
    assert_eq!(packet_out.metadata[1].bitwidth, 8);
    assert_eq!(
        info.digests[0].preamble.as_ref().map(|p| p.id),
        Some(0x1700_0001)
    );
    let types = info.type_info.as_ref().expect("type info");
    assert_eq!(types.structs["learn_t"].members[0].name, "mac");
    assert_eq!(
        types.new_types["PortId_t"].representation,
        Some(cfg::p4_new_type_spec::Representation::TranslatedType(
            cfg::P4NewTypeTranslation {
                uri: "p4.org/psa/v1/PortId_t".to_string(),
                sdn_type: Some(cfg::p4_new_type_translation::SdnType::SdnBitwidth(32)),
            }
        ))
    );
    let pkg = info.pkg_info.as_ref().expect("pkg info");
    assert_eq!(
        pkg.platform_properties
            .as_ref()
            .map(|p| p.multicast_group_table_max_replicas_per_entry),
        Some(64)
    );
}

/// Decodes an Any holding a p4.v1.Error.
fn unpack_error(any: &Any) -> p4::Error {
    assert_eq!(any.type_url, "type.googleapis.com/p4.v1.Error");
    p4::Error::decode(any.value.as_slice()).expect("decode p4.v1.Error")
}

#[allow(deprecated)]
fn assert_case(name: &str, msg: &Msg) {
    use p4::table_action::Type as Ta;
    match name {
        "write_exact" => {
            let t = table_entry(&updates(msg)[0]);
            assert_eq!(t.table_id, 0x0200_0001);
            assert_eq!(
                match_kind(&t.r#match[0]),
                &Fm::Exact(p4::field_match::Exact {
                    value: vec![0, 0, 0, 0, 0, 1]
                })
            );
            assert_eq!(t.idle_timeout_ns, 5_000_000_000);
            assert_eq!(t.metadata, b"solyx:l2:1");
            let Ta::Action(a) = table_action(t) else {
                panic!("direct action expected")
            };
            assert_eq!(a.action_id, 0x0100_0001);
            assert_eq!(
                (a.params[0].param_id, a.params[0].value.as_slice()),
                (1, &[1u8][..])
            );
        }
        "write_lpm" => {
            let Msg::Write(w) = msg else { unreachable!() };
            assert_eq!(w.device_id, 1);
            assert_eq!(
                w.election_id,
                Some(p4::Uint128 {
                    high: 1,
                    low: 0xFFFF_FFFF_FFFF_FFF0
                })
            );
            let t = table_entry(&w.updates[0]);
            let Fm::Lpm(l) = match_kind(&t.r#match[0]) else {
                panic!("LPM expected")
            };
            assert_eq!(l.value, [10, 0, 0, 0]);
            assert_eq!(l.prefix_len, 8);
            let Ta::Action(a) = table_action(t) else {
                panic!("direct action expected")
            };
            assert_eq!(a.params[1].param_id, 2);
            assert_eq!(a.params[1].value, [0, 0, 0, 0, 0, 2]);
        }
        "write_ternary_range_optional" => {
            let Msg::Write(w) = msg else { unreachable!() };
            assert_eq!(w.atomicity, 1, "ROLLBACK_ON_ERROR");
            let t = table_entry(&w.updates[0]);
            assert_eq!(t.priority, 10);
            let Fm::Ternary(tern) = match_kind(&t.r#match[0]) else {
                panic!("ternary expected")
            };
            assert_eq!(tern.value, [0x0a, 0, 0, 0]);
            assert_eq!(tern.mask, [0xff, 0, 0, 0]);
            let Fm::Range(r) = match_kind(&t.r#match[1]) else {
                panic!("range expected")
            };
            assert_eq!(
                (r.low.as_slice(), r.high.as_slice()),
                (&[0, 80][..], &[1, 187][..])
            );
            assert_eq!(t.r#match[2].field_id, 3);
            let Fm::Optional(o) = match_kind(&t.r#match[2]) else {
                panic!("optional expected")
            };
            assert_eq!(o.value, [6]);
            assert_eq!(
                t.meter_config.as_ref().map(|m| (m.cir, m.pburst)),
                Some((1000, 200))
            );
            assert_eq!(t.counter_data, Some(p4::CounterData::default()));
        }
        "write_default_action" => {
            let Msg::Write(w) = msg else { unreachable!() };
            assert_eq!(w.role, "solyx.acl");
            assert_eq!(w.atomicity, 2, "DATAPLANE_ATOMIC");
            assert_eq!(w.updates[0].r#type, 2, "MODIFY");
            assert!(table_entry(&w.updates[0]).is_default_action);
            assert!(table_entry(&w.updates[0]).r#match.is_empty());
            assert_eq!(w.updates[1].r#type, 3, "DELETE");
        }
        "write_profile_actions" => {
            let u = updates(msg);
            assert_eq!(
                table_action(table_entry(&u[0])),
                &Ta::ActionProfileMemberId(7)
            );
            assert_eq!(
                table_action(table_entry(&u[1])),
                &Ta::ActionProfileGroupId(3)
            );
        }
        "write_one_shot" => {
            let t = table_entry(&updates(msg)[0]);
            let Ta::ActionProfileActionSet(set) = table_action(t) else {
                panic!("one-shot action set expected")
            };
            let weights: Vec<i32> = set
                .action_profile_actions
                .iter()
                .map(|a| a.weight)
                .collect();
            assert_eq!(weights, [1, 3]);
            assert_eq!(
                set.action_profile_actions[1].watch_kind,
                Some(p4::action_profile_action::WatchKind::WatchPort(vec![2]))
            );
            assert_eq!(
                set.group_action.as_ref().map(|a| a.action_id),
                Some(0x0100_0004)
            );
            assert_eq!(set.action_selection_mode, 1, "HASH");
            assert_eq!(set.size_semantics, 1, "SUM_OF_WEIGHTS");
        }
        "write_profile_members" => {
            let E::ActionProfileMember(m) = entity_of(&updates(msg)[1]) else {
                panic!("member expected")
            };
            assert_eq!((m.action_profile_id, m.member_id), (0x1100_0001, 8));
            assert_eq!(
                m.action.as_ref().map(|a| a.params[1].value.clone()),
                Some(vec![0, 0, 0, 0, 0, 0x12])
            );
        }
        "write_weighted_group" => {
            let E::ActionProfileGroup(g) = entity_of(&updates(msg)[0]) else {
                panic!("group expected")
            };
            assert_eq!((g.group_id, g.max_size), (3, 16));
            assert_eq!((g.members[0].member_id, g.members[0].weight), (7, 2));
            assert_eq!((g.members[1].member_id, g.members[1].weight), (8, 5));
            assert_eq!(
                g.members[1].watch_kind,
                Some(p4::action_profile_group::member::WatchKind::WatchPort(
                    vec![2]
                ))
            );
        }
        "write_counters" => {
            let u = updates(msg);
            let E::CounterEntry(c) = entity_of(&u[0]) else {
                panic!("counter entry expected")
            };
            assert_eq!(c.index, Some(p4::Index { index: 3 }));
            assert_eq!(
                c.data.as_ref().map(|d| (d.byte_count, d.packet_count)),
                Some((1500, 1))
            );
            let E::DirectCounterEntry(d) = entity_of(&u[1]) else {
                panic!("direct counter entry expected")
            };
            assert_eq!(d.table_entry.as_ref().map(|t| t.priority), Some(5));
            assert_eq!(d.data.as_ref().map(|d| d.byte_count), Some(9_000_000_000));
        }
        "write_meters" => {
            let u = updates(msg);
            let E::MeterEntry(m) = entity_of(&u[0]) else {
                panic!("meter entry expected")
            };
            assert_eq!(
                m.config
                    .as_ref()
                    .map(|c| (c.cir, c.cburst, c.pir, c.pburst)),
                Some((125_000, 10_000, 250_000, 20_000))
            );
            let E::DirectMeterEntry(d) = entity_of(&u[1]) else {
                panic!("direct meter entry expected")
            };
            assert_eq!(d.config.as_ref().map(|c| c.eburst), Some(75));
        }
        "write_replication" => {
            use p4::packet_replication_engine_entry::Type as Pre;
            let u = updates(msg);
            let E::PacketReplicationEngineEntry(p4::PacketReplicationEngineEntry {
                r#type: Some(Pre::MulticastGroupEntry(g)),
            }) = entity_of(&u[0])
            else {
                panic!("multicast group expected")
            };
            assert_eq!(g.multicast_group_id, 1);
            assert_eq!(g.replicas.len(), 2);
            assert_eq!(
                g.replicas[1].port_kind,
                Some(p4::replica::PortKind::Port(vec![2]))
            );
            assert_eq!(g.replicas[1].backup_replicas[0].instance, 2);
            assert_eq!(g.metadata, b"flood");
            let E::PacketReplicationEngineEntry(p4::PacketReplicationEngineEntry {
                r#type: Some(Pre::CloneSessionEntry(s)),
            }) = entity_of(&u[1])
            else {
                panic!("clone session expected")
            };
            assert_eq!(
                (s.session_id, s.class_of_service, s.packet_length_bytes),
                (100, 2, 128)
            );
            assert_eq!(
                s.replicas[0].port_kind,
                Some(p4::replica::PortKind::Port(vec![0xff, 0xff, 0xff, 0xfd]))
            );
        }
        "write_other_entities" => {
            let u = updates(msg);
            let E::ValueSetEntry(v) = entity_of(&u[0]) else {
                panic!("value set expected")
            };
            assert_eq!(v.members.len(), 2);
            let E::RegisterEntry(r) = entity_of(&u[1]) else {
                panic!("register expected")
            };
            let Some(p4::p4_data::Data::Struct(s)) = r.data.as_ref().and_then(|d| d.data.as_ref())
            else {
                panic!("struct register value expected")
            };
            assert_eq!(s.members.len(), 11);
            assert_eq!(
                s.members[1].data,
                Some(p4::p4_data::Data::Varbit(p4::P4Varbit {
                    bitstring: vec![1, 2],
                    bitwidth: 12
                }))
            );
            assert_eq!(
                s.members[10].data,
                Some(p4::p4_data::Data::EnumValue(vec![2]))
            );
            let E::DigestEntry(d) = entity_of(&u[2]) else {
                panic!("digest entry expected")
            };
            assert_eq!(d.config.as_ref().map(|c| c.max_list_size), Some(64));
            let E::ExternEntry(x) = entity_of(&u[3]) else {
                panic!("extern entry expected")
            };
            assert_eq!((x.extern_type_id, x.extern_id), (0x81, 0x8100_0001));
            let inner = x.entry.as_ref().expect("extern payload");
            assert_eq!(inner.type_url, "type.googleapis.com/p4.v1.P4Data");
            assert_eq!(
                p4::P4Data::decode(inner.value.as_slice())
                    .map(|d| d.data)
                    .ok()
                    .flatten(),
                Some(p4::p4_data::Data::Bitstring(vec![0, 0x2a]))
            );
            let Fm::Other(other) = match_kind(&table_entry(&u[4]).r#match[0]) else {
                panic!("other match expected")
            };
            assert_eq!(other.type_url, "type.googleapis.com/p4.v1.FieldMatch.Exact");
        }
        "write_deprecated_fields" => {
            let Msg::Write(w) = msg else { unreachable!() };
            assert_eq!(w.role_id, 3);
            assert_eq!(table_entry(&w.updates[0]).controller_metadata, 0xDEAD_BEEF);
            let E::ActionProfileGroup(g) = entity_of(&w.updates[1]) else {
                panic!("group expected")
            };
            assert_eq!(
                g.members[0].watch_kind,
                Some(p4::action_profile_group::member::WatchKind::Watch(9))
            );
            let E::PacketReplicationEngineEntry(p4::PacketReplicationEngineEntry {
                r#type: Some(p4::packet_replication_engine_entry::Type::MulticastGroupEntry(g)),
            }) = entity_of(&w.updates[2])
            else {
                panic!("multicast group expected")
            };
            assert_eq!(
                g.replicas[0].port_kind,
                Some(p4::replica::PortKind::EgressPort(4))
            );
        }
        "stream_arbitration_request" => {
            let p4::stream_message_request::Update::Arbitration(a) = stream_req(msg) else {
                panic!("arbitration expected")
            };
            assert_eq!(a.device_id, 1);
            assert_eq!(a.role.as_ref().map(|r| r.name.as_str()), Some("solyx.acl"));
            let id = a.election_id.expect("election id");
            assert_eq!((id.high, id.low), (1, 0xFFFF_FFFF_FFFF_FFF0));
            assert!(a.status.is_none());
        }
        "stream_arbitration_response" => {
            let p4::stream_message_response::Update::Arbitration(a) = stream_resp(msg) else {
                panic!("arbitration expected")
            };
            assert_eq!(a.election_id, Some(p4::Uint128 { high: 0, low: 42 }));
            assert_eq!(a.status.as_ref().map(|s| s.code), Some(6), "ALREADY_EXISTS");
        }
        "stream_packet_out" => {
            let p4::stream_message_request::Update::Packet(p) = stream_req(msg) else {
                panic!("packet-out expected")
            };
            assert_eq!(p.payload.len(), 64);
            assert_eq!(p.payload[63], 63);
            assert_eq!(
                (p.metadata[0].metadata_id, p.metadata[0].value.as_slice()),
                (1, &[0u8, 5][..])
            );
            assert_eq!(
                (p.metadata[1].metadata_id, p.metadata[1].value.as_slice()),
                (2, &[1u8][..])
            );
        }
        "stream_packet_in" => {
            let p4::stream_message_response::Update::Packet(p) = stream_resp(msg) else {
                panic!("packet-in expected")
            };
            assert_eq!(&p.payload[12..], &[0x88, 0xcc]);
            assert_eq!(p.metadata, [metadata(1, &[0, 3])]);
        }
        "stream_digest_list" => {
            let p4::stream_message_response::Update::Digest(d) = stream_resp(msg) else {
                panic!("digest list expected")
            };
            assert_eq!((d.digest_id, d.list_id), (0x1700_0001, 77));
            assert_eq!(d.timestamp, 1_700_000_000_000_000_000);
            assert_eq!(d.data.len(), 2);
            let Some(p4::p4_data::Data::Struct(s)) = &d.data[1].data else {
                panic!("struct digest expected")
            };
            assert_eq!(
                s.members[0].data,
                Some(p4::p4_data::Data::Bitstring(vec![0, 0, 0, 0, 0, 0x0b]))
            );
        }
        "stream_digest_ack" => {
            assert_eq!(
                stream_req(msg),
                &p4::stream_message_request::Update::DigestAck(p4::DigestListAck {
                    digest_id: 0x1700_0001,
                    list_id: 77
                })
            );
        }
        "stream_idle_timeout" => {
            let p4::stream_message_response::Update::IdleTimeoutNotification(n) = stream_resp(msg)
            else {
                panic!("idle timeout notification expected")
            };
            assert_eq!(n.table_entry.len(), 2);
            assert_eq!(n.timestamp, 1_700_000_000_000_000_001);
        }
        "stream_error_packet_out" => {
            let e = stream_err(msg);
            assert_eq!(
                (e.canonical_code, e.code, e.space.as_str()),
                (3, 1001, "solyx")
            );
            let Some(p4::stream_error::Details::PacketOut(p)) = &e.details else {
                panic!("packet-out details expected")
            };
            assert_eq!(
                p.packet_out.as_ref().map(|p| p.metadata[0].metadata_id),
                Some(9)
            );
        }
        "stream_error_digest_ack" => {
            let e = stream_err(msg);
            assert_eq!(e.canonical_code, 5);
            let Some(p4::stream_error::Details::DigestListAck(d)) = &e.details else {
                panic!("digest ack details expected")
            };
            assert_eq!(d.digest_list_ack.map(|a| a.list_id), Some(78));
        }
        "stream_error_other" => {
            let e = stream_err(msg);
            assert_eq!(e.canonical_code, 12);
            assert!(matches!(
                e.details,
                Some(p4::stream_error::Details::Other(_))
            ));
        }
        "stream_other" => {
            let p4::stream_message_request::Update::Other(any) = stream_req(msg) else {
                panic!("other expected")
            };
            assert_eq!(any.type_url, "type.googleapis.com/p4.v1.PacketOut");
        }
        "set_pipeline_config" => {
            let Msg::SetPipeline(s) = msg else {
                unreachable!()
            };
            assert_eq!(s.action, 3, "VERIFY_AND_COMMIT");
            assert_eq!(s.election_id.map(|e| e.low), Some(0xFFFF_FFFF_FFFF_FFF0));
            let config = s.config.as_ref().expect("config");
            assert_eq!(config.cookie.map(|c| c.cookie), Some(0xC0FFEE));
            assert_eq!(config.p4_device_config, br#"{"program": "solyx_router"}"#);
            assert_p4info(p4info_of(Some(config)));
        }
        "get_pipeline_config_request" => {
            let Msg::GetPipelineRequest(g) = msg else {
                unreachable!()
            };
            assert_eq!((g.device_id, g.response_type), (1, 2), "P4INFO_AND_COOKIE");
        }
        "get_pipeline_config_response" => {
            let Msg::GetPipelineResponse(g) = msg else {
                unreachable!()
            };
            assert_p4info(p4info_of(g.config.as_ref()));
        }
        "read_request" => {
            let Msg::ReadRequest(r) = msg else {
                unreachable!()
            };
            assert_eq!(r.role, "solyx.acl");
            assert_eq!(r.entities.len(), 10);
            assert_eq!(
                r.entities[0].entity,
                Some(E::TableEntry(p4::TableEntry::default())),
                "a wildcard over all tables"
            );
            let Some(E::TableEntry(t)) = &r.entities[1].entity else {
                panic!("table entry expected")
            };
            assert!(t.counter_data.is_some() && t.time_since_last_hit.is_some());
            assert_eq!(
                r.entities[9].entity,
                Some(E::DigestEntry(p4::DigestEntry::default()))
            );
        }
        "read_response" => {
            let Msg::ReadResponse(r) = msg else {
                unreachable!()
            };
            assert_eq!(r.entities.len(), 5);
            let Some(E::TableEntry(t)) = &r.entities[0].entity else {
                panic!("table entry expected")
            };
            assert!(t.is_const);
            assert_eq!(
                t.counter_data.map(|c| (c.byte_count, c.packet_count)),
                Some((123_456, 789))
            );
            assert_eq!(
                t.meter_counter_data
                    .and_then(|m| m.red)
                    .map(|c| c.byte_count),
                Some(300)
            );
            assert_eq!(
                t.time_since_last_hit.map(|i| i.elapsed_ns),
                Some(2_500_000_000)
            );
            let Some(E::MeterEntry(m)) = &r.entities[3].entity else {
                panic!("meter entry expected")
            };
            assert_eq!(
                m.counter_data.and_then(|c| c.green).map(|g| g.packet_count),
                Some(10)
            );
        }
        "write_error_status" => {
            let Msg::Status(s) = msg else { unreachable!() };
            assert_eq!(s.code, 2, "UNKNOWN");
            assert_eq!(s.details.len(), 3);
            let errors: Vec<p4::Error> = s.details.iter().map(unpack_error).collect();
            assert_eq!(errors[0].canonical_code, 0);
            assert_eq!(errors[1].canonical_code, 6);
            assert_eq!(errors[1].message, "entry already exists");
            assert_eq!((errors[1].space.as_str(), errors[1].code), ("solyx", 17));
            assert_eq!(errors[2].canonical_code, 3);
            let detail = errors[2].details.as_ref().expect("error details");
            let bad = p4::FieldMatch::decode(detail.value.as_slice()).expect("decode FieldMatch");
            assert_eq!(
                bad.field_match_type,
                Some(Fm::Lpm(p4::field_match::Lpm {
                    value: vec![10],
                    prefix_len: 33
                }))
            );
        }
        "capabilities_request" => {
            assert_eq!(
                msg,
                &Msg::CapabilitiesRequest(p4::CapabilitiesRequest { device_id: 1 })
            );
        }
        "capabilities_response" => {
            let Msg::CapabilitiesResponse(c) = msg else {
                unreachable!()
            };
            assert_eq!(c.p4runtime_api_version, "1.4.0");
            assert_eq!(
                c.experimental.as_ref().map(|a| a.type_url.as_str()),
                Some("type.googleapis.com/p4.config.v1.Documentation")
            );
        }
        other => panic!("no assertions for case {other}: add them to assert_case"),
    }
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn python_to_rust_to_python() {
    let Some(python) = python_or_skip("python_to_rust_to_python") else {
        return;
    };
    let from_py = TempDir::new("py");
    let from_rust = TempDir::new("rs");
    run_script(&python, "gen", from_py.path());

    let cases = corpus();
    let written: BTreeSet<String> = std::fs::read_dir(from_py.path())
        .expect("list Python output")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".bin")
                .map(str::to_string)
        })
        .collect();
    let known: BTreeSet<String> = cases.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        written, known,
        "the Python and Rust corpora name different cases"
    );

    for (name, expected) in &cases {
        let bytes = std::fs::read(from_py.path().join(format!("{name}.bin")))
            .unwrap_or_else(|e| panic!("{name}: read Python bytes: {e}"));
        let decoded = expected
            .decode_like(&bytes)
            .unwrap_or_else(|e| panic!("{name}: Rust cannot decode Python's bytes: {e}"));
        assert_case(name, &decoded);
        assert_eq!(
            &decoded, expected,
            "{name}: decoded message differs from the Rust corpus"
        );
        std::fs::write(
            from_rust.path().join(format!("{name}.bin")),
            decoded.encode(),
        )
        .unwrap_or_else(|e| panic!("{name}: write re-encoded bytes: {e}"));
    }
    let report = run_script(&python, "check", from_rust.path());
    eprintln!(
        "python -> rust -> python: {} cases; {}",
        cases.len(),
        report.trim()
    );
}

#[test]
fn rust_to_python() {
    let Some(python) = python_or_skip("rust_to_python") else {
        return;
    };
    let dir = TempDir::new("rust-corpus");
    let cases = corpus();
    for (name, msg) in &cases {
        std::fs::write(dir.path().join(format!("{name}.bin")), msg.encode())
            .unwrap_or_else(|e| panic!("{name}: write bytes: {e}"));
    }
    let report = run_script(&python, "check", dir.path());
    eprintln!("rust -> python: {} cases; {}", cases.len(), report.trim());
}

#[test]
fn descriptors_match_official() {
    let Some(python) = python_or_skip("descriptors_match_official") else {
        return;
    };
    let dir = TempDir::new("descriptors");
    let path = dir.path().join("solyx_p4runtime.fds");
    std::fs::write(&path, FILE_DESCRIPTOR_SET).expect("write descriptor set");
    let report = run_script(&python, "descriptors", &path);
    eprintln!("descriptors: {}", report.trim());
}

/// Every corpus case has field assertions and survives a Rust-only round
/// trip; this part needs no Python.
#[test]
fn corpus_round_trips_in_rust() {
    for (name, msg) in corpus() {
        assert_case(name, &msg);
        let again = msg
            .decode_like(&msg.encode())
            .unwrap_or_else(|e| panic!("{name}: decode own bytes: {e}"));
        assert_eq!(again, msg, "{name}");
    }
}
