//! Field-level assertions on decoded cases: specific values each case must
//! carry after crossing from Python, so that a wrong field number or type
//! cannot pass as "it decodes".

use super::*;

pub(crate) fn updates(msg: &Msg) -> &[p4::Update] {
    match msg {
        Msg::Write(w) => &w.updates,
        other => panic!("expected a WriteRequest, got {other:?}"),
    }
}

pub(crate) fn entity_of(u: &p4::Update) -> &E {
    u.entity
        .as_ref()
        .and_then(|e| e.entity.as_ref())
        .expect("update has an entity")
}

pub(crate) fn table_entry(u: &p4::Update) -> &p4::TableEntry {
    match entity_of(u) {
        E::TableEntry(t) => t,
        other => panic!("expected a table entry, got {other:?}"),
    }
}

pub(crate) fn match_kind(m: &p4::FieldMatch) -> &Fm {
    m.field_match_type.as_ref().expect("field match kind")
}

pub(crate) fn table_action(t: &p4::TableEntry) -> &p4::table_action::Type {
    t.action
        .as_ref()
        .and_then(|a| a.r#type.as_ref())
        .expect("table action")
}

pub(crate) fn stream_req(msg: &Msg) -> &p4::stream_message_request::Update {
    match msg {
        Msg::StreamRequest(m) => m.update.as_ref().expect("request update"),
        other => panic!("expected a StreamMessageRequest, got {other:?}"),
    }
}

pub(crate) fn stream_resp(msg: &Msg) -> &p4::stream_message_response::Update {
    match msg {
        Msg::StreamResponse(m) => m.update.as_ref().expect("response update"),
        other => panic!("expected a StreamMessageResponse, got {other:?}"),
    }
}

pub(crate) fn stream_err(msg: &Msg) -> &p4::StreamError {
    match stream_resp(msg) {
        p4::stream_message_response::Update::Error(e) => e,
        other => panic!("expected a stream error, got {other:?}"),
    }
}

pub(crate) fn p4info_of(config: Option<&p4::ForwardingPipelineConfig>) -> &cfg::P4Info {
    config
        .and_then(|c| c.p4info.as_ref())
        .expect("config with a P4Info")
}

pub(crate) fn assert_p4info(info: &cfg::P4Info) {
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
pub(crate) fn unpack_error(any: &Any) -> p4::Error {
    assert_eq!(any.type_url, "type.googleapis.com/p4.v1.Error");
    p4::Error::decode(any.value.as_slice()).expect("decode p4.v1.Error")
}

#[allow(deprecated)]
pub(crate) fn assert_case(name: &str, msg: &Msg) {
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
