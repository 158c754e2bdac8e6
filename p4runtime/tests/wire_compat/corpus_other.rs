//! Corpus cases: stream messages, P4Info and pipeline configs, reads,
//! per-update errors and capabilities; and the whole corpus in order.

use super::*;

pub(crate) fn stream_request(u: p4::stream_message_request::Update) -> Msg {
    Msg::StreamRequest(p4::StreamMessageRequest { update: Some(u) })
}

pub(crate) fn stream_response(u: p4::stream_message_response::Update) -> Msg {
    Msg::StreamResponse(p4::StreamMessageResponse { update: Some(u) })
}

pub(crate) fn role(name: &str, config: Option<Any>) -> Option<p4::Role> {
    Some(p4::Role {
        name: name.to_string(),
        config,
        ..Default::default()
    })
}

pub(crate) fn documentation(brief: &str) -> cfg::Documentation {
    cfg::Documentation {
        brief: brief.to_string(),
        description: String::new(),
    }
}

pub(crate) fn stream_arbitration_request() -> Msg {
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

pub(crate) fn stream_arbitration_response() -> Msg {
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

pub(crate) fn metadata(metadata_id: u32, value: &[u8]) -> p4::PacketMetadata {
    p4::PacketMetadata {
        metadata_id,
        value: value.to_vec(),
    }
}

pub(crate) fn stream_packet_out() -> Msg {
    stream_request(p4::stream_message_request::Update::Packet(p4::PacketOut {
        payload: (0u8..64).collect(),
        metadata: vec![metadata(1, b"\x00\x05"), metadata(2, b"\x01")],
    }))
}

pub(crate) fn stream_packet_in() -> Msg {
    let mut payload = vec![0xff; 6];
    payload.extend_from_slice(b"\x00\x00\x00\x00\x00\x01\x88\xcc");
    stream_response(p4::stream_message_response::Update::Packet(p4::PacketIn {
        payload,
        metadata: vec![metadata(1, b"\x00\x03")],
    }))
}

pub(crate) fn stream_digest_list() -> Msg {
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

pub(crate) fn stream_digest_ack() -> Msg {
    stream_request(p4::stream_message_request::Update::DigestAck(
        p4::DigestListAck {
            digest_id: DIGEST_LEARN,
            list_id: 77,
        },
    ))
}

pub(crate) fn stream_idle_timeout() -> Msg {
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

pub(crate) fn stream_error(
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

pub(crate) fn stream_error_packet_out() -> Msg {
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

pub(crate) fn stream_error_digest_ack() -> Msg {
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

pub(crate) fn ping() -> Any {
    pack(
        "p4.v1.PacketOut",
        &p4::PacketOut {
            payload: b"ping".to_vec(),
            metadata: vec![],
        },
    )
}

pub(crate) fn stream_error_other() -> Msg {
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

pub(crate) fn stream_other() -> Msg {
    stream_request(p4::stream_message_request::Update::Other(ping()))
}

// ---------------------------------------------------------------------------
// Pipeline configuration

pub(crate) fn preamble(name: &str, id: u32) -> Option<cfg::Preamble> {
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

pub(crate) fn match_field(
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

pub(crate) fn action_ref(id: u32, scope: cfg::action_ref::Scope) -> cfg::ActionRef {
    cfg::ActionRef {
        id,
        scope: scope as i32,
        ..Default::default()
    }
}

pub(crate) fn param(id: u32, name: &str, bitwidth: i32) -> cfg::action::Param {
    cfg::action::Param {
        id,
        name: name.to_string(),
        bitwidth,
        ..Default::default()
    }
}

pub(crate) fn packet_metadata(
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

pub(crate) fn bit_type(bitwidth: i32) -> cfg::P4BitstringLikeTypeSpec {
    cfg::P4BitstringLikeTypeSpec {
        type_spec: Some(cfg::p4_bitstring_like_type_spec::TypeSpec::Bit(
            cfg::P4BitTypeSpec { bitwidth },
        )),
        ..Default::default()
    }
}

pub(crate) fn bit_data_type(bitwidth: i32) -> Option<cfg::P4DataTypeSpec> {
    Some(cfg::P4DataTypeSpec {
        type_spec: Some(cfg::p4_data_type_spec::TypeSpec::Bitstring(bit_type(
            bitwidth,
        ))),
    })
}

pub(crate) fn named(name: &str) -> cfg::P4NamedType {
    cfg::P4NamedType {
        name: name.to_string(),
    }
}

pub(crate) fn struct_member(
    name: &str,
    type_spec: Option<cfg::P4DataTypeSpec>,
) -> cfg::p4_struct_type_spec::Member {
    cfg::p4_struct_type_spec::Member {
        name: name.to_string(),
        type_spec,
    }
}

pub(crate) fn type_info() -> cfg::P4TypeInfo {
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

pub(crate) fn pkg_info() -> cfg::PkgInfo {
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

pub(crate) fn tables() -> Vec<cfg::Table> {
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

pub(crate) fn p4info() -> cfg::P4Info {
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

pub(crate) fn pipeline_config() -> p4::ForwardingPipelineConfig {
    p4::ForwardingPipelineConfig {
        p4info: Some(p4info()),
        p4_device_config: br#"{"program": "solyx_router"}"#.to_vec(),
        cookie: Some(p4::forwarding_pipeline_config::Cookie { cookie: 0xC0FFEE }),
    }
}

pub(crate) fn set_pipeline_config() -> Msg {
    Msg::SetPipeline(p4::SetForwardingPipelineConfigRequest {
        device_id: 1,
        election_id: election_id(),
        action: p4::set_forwarding_pipeline_config_request::Action::VerifyAndCommit as i32,
        config: Some(pipeline_config()),
        ..Default::default()
    })
}

pub(crate) fn get_pipeline_config_request() -> Msg {
    Msg::GetPipelineRequest(p4::GetForwardingPipelineConfigRequest {
        device_id: 1,
        response_type: p4::get_forwarding_pipeline_config_request::ResponseType::P4infoAndCookie
            as i32,
    })
}

pub(crate) fn get_pipeline_config_response() -> Msg {
    Msg::GetPipelineResponse(p4::GetForwardingPipelineConfigResponse {
        config: Some(pipeline_config()),
    })
}

// ---------------------------------------------------------------------------
// Read

pub(crate) fn entity(e: E) -> p4::Entity {
    p4::Entity { entity: Some(e) }
}

pub(crate) fn read_request() -> Msg {
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

pub(crate) fn read_response() -> Msg {
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

pub(crate) fn error(
    canonical_code: i32,
    message: &str,
    space: &str,
    code: i32,
    details: Option<Any>,
) -> Any {
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

pub(crate) fn write_error_status() -> Msg {
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

pub(crate) fn capabilities_request() -> Msg {
    Msg::CapabilitiesRequest(p4::CapabilitiesRequest { device_id: 1 })
}

pub(crate) fn capabilities_response() -> Msg {
    Msg::CapabilitiesResponse(p4::CapabilitiesResponse {
        p4runtime_api_version: "1.4.0".to_string(),
        experimental: Some(pack(
            "p4.config.v1.Documentation",
            &documentation("solyx experimental"),
        )),
    })
}

/// The corpus, case by case, in the order of `CASES` in wire_compat.py.
pub(crate) fn corpus() -> Vec<(&'static str, Msg)> {
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
