//! Corpus cases: building blocks shared with `wire_compat.py`, and the
//! WriteRequest cases (every match kind, actions, profiles, counters,
//! meters, replication, other entities).

use super::*;

pub(crate) const TABLE_L2: u32 = 0x0200_0001;
pub(crate) const TABLE_IPV4_LPM: u32 = 0x0200_0002;
pub(crate) const TABLE_ACL: u32 = 0x0200_0003;
pub(crate) const TABLE_ECMP: u32 = 0x0200_0004;
pub(crate) const ACTION_SET_PORT: u32 = 0x0100_0001;
pub(crate) const ACTION_SET_NHOP: u32 = 0x0100_0002;
pub(crate) const ACTION_DROP: u32 = 0x0100_0003;
pub(crate) const ACTION_TO_CPU: u32 = 0x0100_0004;
pub(crate) const ACTION_PROFILE_ECMP: u32 = 0x1100_0001;
pub(crate) const COUNTER_PORT: u32 = 0x1200_0001;
pub(crate) const DIRECT_COUNTER_ACL: u32 = 0x1300_0001;
pub(crate) const METER_PORT: u32 = 0x1400_0001;
pub(crate) const DIRECT_METER_ACL: u32 = 0x1500_0001;
pub(crate) const REGISTER_FLOWS: u32 = 0x1600_0001;
pub(crate) const DIGEST_LEARN: u32 = 0x1700_0001;
pub(crate) const VALUE_SET_TPID: u32 = 0x0300_0001;
pub(crate) const PACKET_IN: u32 = 0x0400_0001;
pub(crate) const PACKET_OUT: u32 = 0x0400_0002;
pub(crate) const EXTERN_TYPE: u32 = 0x81;
pub(crate) const EXTERN_ID: u32 = 0x8100_0001;

pub(crate) fn election_id() -> Option<p4::Uint128> {
    Some(p4::Uint128 {
        high: 1,
        low: 0xFFFF_FFFF_FFFF_FFF0,
    })
}

/// Packs a message into an Any the way the official runtime does.
pub(crate) fn pack<M: Message>(full_name: &str, msg: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{full_name}"),
        value: msg.encode_to_vec(),
    }
}

pub(crate) fn write(updates: Vec<p4::Update>, atomicity: Atomicity) -> p4::WriteRequest {
    p4::WriteRequest {
        device_id: 1,
        election_id: election_id(),
        updates,
        atomicity: atomicity as i32,
        ..Default::default()
    }
}

pub(crate) fn update(kind: UpdateType, entity: E) -> p4::Update {
    p4::Update {
        r#type: kind as i32,
        entity: Some(p4::Entity {
            entity: Some(entity),
        }),
    }
}

pub(crate) fn field(field_id: u32, m: Fm) -> p4::FieldMatch {
    p4::FieldMatch {
        field_id,
        field_match_type: Some(m),
    }
}

pub(crate) fn exact(field_id: u32, value: &[u8]) -> p4::FieldMatch {
    field(
        field_id,
        Fm::Exact(p4::field_match::Exact {
            value: value.to_vec(),
        }),
    )
}

pub(crate) fn lpm(field_id: u32, value: &[u8], prefix_len: i32) -> p4::FieldMatch {
    field(
        field_id,
        Fm::Lpm(p4::field_match::Lpm {
            value: value.to_vec(),
            prefix_len,
        }),
    )
}

pub(crate) fn optional(field_id: u32, value: &[u8]) -> p4::FieldMatch {
    field(
        field_id,
        Fm::Optional(p4::field_match::Optional {
            value: value.to_vec(),
        }),
    )
}

pub(crate) fn action(action_id: u32, params: &[(u32, &[u8])]) -> p4::Action {
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

pub(crate) fn set_nhop(port: &[u8], mac: &[u8]) -> p4::Action {
    action(ACTION_SET_NHOP, &[(1, port), (2, mac)])
}

pub(crate) fn direct(a: p4::Action) -> Option<p4::TableAction> {
    Some(p4::TableAction {
        r#type: Some(p4::table_action::Type::Action(a)),
    })
}

pub(crate) fn l2_key(mac: &[u8]) -> Vec<p4::FieldMatch> {
    vec![exact(1, mac)]
}

pub(crate) fn counter_data(byte_count: i64, packet_count: i64) -> Option<p4::CounterData> {
    Some(p4::CounterData {
        byte_count,
        packet_count,
    })
}

pub(crate) fn acl_optional_entry() -> p4::TableEntry {
    p4::TableEntry {
        table_id: TABLE_ACL,
        r#match: vec![optional(3, b"\x11")],
        priority: 5,
        ..Default::default()
    }
}

pub(crate) fn pre(t: p4::packet_replication_engine_entry::Type) -> E {
    E::PacketReplicationEngineEntry(p4::PacketReplicationEngineEntry { r#type: Some(t) })
}

pub(crate) fn replica(port: &[u8], instance: u32) -> p4::Replica {
    p4::Replica {
        port_kind: Some(p4::replica::PortKind::Port(port.to_vec())),
        instance,
        backup_replicas: vec![],
    }
}

pub(crate) fn bits(value: &[u8]) -> p4::P4Data {
    p4::P4Data {
        data: Some(p4::p4_data::Data::Bitstring(value.to_vec())),
    }
}

pub(crate) fn data(d: p4::p4_data::Data) -> p4::P4Data {
    p4::P4Data { data: Some(d) }
}

pub(crate) fn header(is_valid: bool, fields: &[&[u8]]) -> p4::P4Header {
    p4::P4Header {
        is_valid,
        bitstrings: fields.iter().map(|f| f.to_vec()).collect(),
    }
}

// ---------------------------------------------------------------------------
// Write requests

pub(crate) fn write_exact() -> Msg {
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

pub(crate) fn write_lpm() -> Msg {
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

pub(crate) fn write_ternary_range_optional() -> Msg {
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

pub(crate) fn write_default_action() -> Msg {
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

pub(crate) fn write_profile_actions() -> Msg {
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

pub(crate) fn write_one_shot() -> Msg {
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

pub(crate) fn write_profile_members() -> Msg {
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

pub(crate) fn weighted_group() -> p4::ActionProfileGroup {
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

pub(crate) fn write_weighted_group() -> Msg {
    Msg::Write(write(
        vec![update(
            UpdateType::Insert,
            E::ActionProfileGroup(weighted_group()),
        )],
        Atomicity::ContinueOnError,
    ))
}

pub(crate) fn write_counters() -> Msg {
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

pub(crate) fn write_meters() -> Msg {
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

pub(crate) fn multicast_group() -> E {
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

pub(crate) fn write_replication() -> Msg {
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

pub(crate) fn flow_record() -> p4::P4Data {
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

pub(crate) fn write_other_entities() -> Msg {
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
pub(crate) fn write_deprecated_fields() -> Msg {
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
