//! The P4Info index and the entity builders against a P4Info that uses
//! every match kind: names resolve, mistakes are typed errors that name the
//! table and field, values go out canonical.

use std::net::Ipv4Addr;

use solyx_p4runtime::p4info::{ActionScope, MatchKind, P4InfoError};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::{EntityError, P4InfoIndex};

const P4INFO: &str = include_str!("../testdata/test.p4info.txtpb");

fn index() -> P4InfoIndex {
    P4InfoIndex::from_text(P4INFO).expect("test P4Info parses")
}

fn table_entry(e: p4::Entity) -> p4::TableEntry {
    match e.entity {
        Some(p4::entity::Entity::TableEntry(t)) => t,
        other => panic!("not a table entry: {other:?}"),
    }
}

#[test]
fn names_aliases_and_ids_resolve() {
    let ix = index();
    assert_eq!(ix.package(), ("v1model", "solyx_test"));
    let t = ix.tables.by_name("ipv4_route").unwrap();
    assert_eq!(t.id, 33554434);
    assert_eq!(ix.tables.by_name("Ingress.ipv4_route").unwrap().id, t.id);
    assert_eq!(ix.tables.by_id(33554434).unwrap().alias, "ipv4_route");
    assert_eq!(t.field("ipv4_dst").unwrap().kind, MatchKind::Lpm);
    assert_eq!(t.implementation_id, Some(285212673));
    assert!(
        ix.action_profiles
            .by_name("wcmp_selector")
            .unwrap()
            .with_selector
    );
    assert_eq!(
        ix.tables.by_name("mpls_forward").unwrap().direct_counter_id,
        Some(318767105)
    );
    assert_eq!(
        ix.tables
            .by_name("mpls_forward")
            .unwrap()
            .action_scope(16777218),
        Some(ActionScope::DefaultOnly)
    );
    assert!(ix.tables.by_name("acl").unwrap().needs_priority());
    assert!(!ix.tables.by_name("mpls_forward").unwrap().needs_priority());
    assert_eq!(
        ix.actions
            .by_name("set_next_hop")
            .unwrap()
            .param("dmac")
            .unwrap()
            .bitwidth,
        48
    );
    assert_eq!(ix.counters.by_name("port_rx").unwrap().size, 512);
    assert_eq!(
        ix.packet_metadata.by_name("packet_out").unwrap().metadata[0].name,
        "egress_port"
    );
}

#[test]
fn text_round_trip_keeps_the_p4info() {
    let ix = index();
    let text = solyx_p4runtime::p4info::to_text(ix.p4info()).unwrap();
    let again = P4InfoIndex::from_text(&text).unwrap();
    assert_eq!(again.p4info(), ix.p4info());
}

#[test]
fn broken_p4info_is_refused_with_the_place() {
    let text = "tables {\n  preamble { id: 1 name: \"t\" }\n  size: x\n}";
    let err = P4InfoIndex::from_text(text).unwrap_err();
    assert!(matches!(err, P4InfoError::Parse(_)), "{err}");
    assert!(err.to_string().contains("line 3 column 9"), "{err}");

    let mut p = index().p4info().clone();
    p.actions[1].preamble.as_mut().unwrap().id = p.actions[0].preamble.as_ref().unwrap().id;
    let err = P4InfoIndex::new(p).unwrap_err();
    assert!(err.to_string().contains("Ingress.drop"), "{err}");

    let mut p = index().p4info().clone();
    p.tables[0].action_refs[0].id = 99;
    let err = P4InfoIndex::new(p).unwrap_err();
    assert_eq!(
        err,
        P4InfoError::DanglingRef {
            owner: "Ingress.mpls_forward".into(),
            kind: "action",
            id: 99
        }
    );
}

#[test]
fn p4info_with_zero_ids_duplicate_names_or_no_widths_is_refused() {
    let mut p = index().p4info().clone();
    p.tables[0].preamble.as_mut().unwrap().id = 0;
    assert!(matches!(
        P4InfoIndex::new(p).unwrap_err(),
        P4InfoError::ZeroId { kind: "table", .. }
    ));

    let mut p = index().p4info().clone();
    let name = p.tables[0].preamble.as_ref().unwrap().name.clone();
    p.tables[1].preamble.as_mut().unwrap().name = name.clone();
    assert_eq!(
        P4InfoIndex::new(p).unwrap_err(),
        P4InfoError::DuplicateName {
            kind: "table",
            name
        }
    );

    let mut p = index().p4info().clone();
    p.tables[0].match_fields[0].bitwidth = 0;
    let err = P4InfoIndex::new(p).unwrap_err();
    assert!(err.to_string().contains("mpls_label"), "{err}");

    let mut p = index().p4info().clone();
    p.actions[0].params[0].bitwidth = -3;
    assert!(matches!(
        P4InfoIndex::new(p).unwrap_err(),
        P4InfoError::BadWidth { .. }
    ));
}

#[test]
fn exact_entry_is_canonical() {
    let ix = index();
    let action = ix
        .action("mpls_out")
        .unwrap()
        .param("port", 3u32)
        .unwrap()
        .param("pop", 1u8)
        .unwrap();
    let e = ix
        .table_entry("mpls_forward")
        .unwrap()
        .exact("mpls_label", 100u32)
        .unwrap()
        .action(action.build().unwrap())
        .unwrap()
        .build()
        .unwrap();
    let t = table_entry(e);
    assert_eq!(t.table_id, 33554433);
    let Some(p4::field_match::FieldMatchType::Exact(m)) = &t.r#match[0].field_match_type else {
        panic!("exact match expected")
    };
    assert_eq!(m.value, vec![100], "canonical: no leading zeros");
    let Some(p4::table_action::Type::Action(a)) = t.action.unwrap().r#type else {
        panic!("direct action expected")
    };
    assert_eq!(a.params[0].value, vec![3]);
    assert_eq!(a.params[1].value, vec![1]);
}

#[test]
fn lpm_clears_host_bits_and_zero_prefix_is_a_wildcard() {
    let ix = index();
    let t = table_entry(
        ix.table_entry("ipv4_route")
            .unwrap()
            .lpm("ipv4_dst", Ipv4Addr::new(10, 1, 2, 3), 16)
            .unwrap()
            .group(7)
            .unwrap()
            .build()
            .unwrap(),
    );
    let Some(p4::field_match::FieldMatchType::Lpm(l)) = &t.r#match[0].field_match_type else {
        panic!("lpm expected")
    };
    assert_eq!(
        (l.value.as_slice(), l.prefix_len),
        (&[10u8, 1, 0, 0][..], 16)
    );

    let t = table_entry(
        ix.table_entry("ipv4_route")
            .unwrap()
            .lpm("ipv4_dst", Ipv4Addr::new(10, 1, 2, 3), 0)
            .unwrap()
            .member(1)
            .unwrap()
            .build()
            .unwrap(),
    );
    assert!(t.r#match.is_empty());
}

#[test]
fn ternary_range_optional_need_priority() {
    let ix = index();
    let err = ix
        .table_entry("acl")
        .unwrap()
        .ternary("eth_type", 0x800u16, 0xffffu16)
        .unwrap()
        .action(ix.action("punt").unwrap().build().unwrap())
        .unwrap()
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        EntityError::PriorityRequired {
            table: "Ingress.acl".into()
        }
    );

    let t = table_entry(
        ix.table_entry("acl")
            .unwrap()
            .ternary(
                "ipv4_dst",
                Ipv4Addr::new(10, 0, 0, 77),
                Ipv4Addr::new(255, 255, 0, 0),
            )
            .unwrap()
            .ternary("ingress_port", 0u16, 0u16)
            .unwrap()
            .priority(10)
            .action(ix.action("punt").unwrap().build().unwrap())
            .unwrap()
            .build()
            .unwrap(),
    );
    assert_eq!(t.r#match.len(), 1, "an all-zero mask is a wildcard");
    let Some(p4::field_match::FieldMatchType::Ternary(x)) = &t.r#match[0].field_match_type else {
        panic!("ternary expected")
    };
    assert_eq!(
        x.value,
        vec![10, 0, 0, 0],
        "value bits outside the mask are cleared"
    );

    let t = table_entry(
        ix.table_entry("port_filter")
            .unwrap()
            .range("l4_dport", 1000u16, 2000u16)
            .unwrap()
            .optional("ip_proto", 17u8)
            .unwrap()
            .priority(1)
            .action(ix.action("punt").unwrap().build().unwrap())
            .unwrap()
            .build()
            .unwrap(),
    );
    assert_eq!(t.r#match.len(), 2);
    let full = ix
        .table_entry("port_filter")
        .unwrap()
        .range("l4_dport", 0u16, 0xffffu16)
        .unwrap()
        .priority(1)
        .action(ix.action("punt").unwrap().build().unwrap())
        .unwrap()
        .build_entry()
        .unwrap();
    assert!(full.r#match.is_empty(), "the full range is a wildcard");
}

#[test]
fn mistakes_name_the_table_and_field() {
    let ix = index();
    let b = || ix.table_entry("mpls_forward").unwrap();

    assert_eq!(
        ix.table_entry("nope").unwrap_err(),
        EntityError::Unknown {
            kind: "table",
            name: "nope".into()
        }
    );
    assert_eq!(
        b().exact("label", 1u8).unwrap_err(),
        EntityError::UnknownField {
            table: "Ingress.mpls_forward".into(),
            field: "label".into()
        }
    );
    assert_eq!(
        b().lpm("mpls_label", 1u8, 8).unwrap_err(),
        EntityError::WrongMatchKind {
            table: "Ingress.mpls_forward".into(),
            field: "mpls_label".into(),
            expected: MatchKind::Exact,
            given: MatchKind::Lpm,
        }
    );
    let err = b().exact("mpls_label", 1u32 << 20).unwrap_err();
    assert!(
        err.to_string().contains("mpls_label") && err.to_string().contains("20 bits"),
        "{err}"
    );
    let err = b()
        .exact("mpls_label", 1u8)
        .unwrap()
        .exact("mpls_label", 2u8)
        .unwrap_err();
    assert!(matches!(err, EntityError::DuplicateField { .. }), "{err}");
    let err = ix
        .action("mpls_out")
        .unwrap()
        .param("port", 512u16)
        .unwrap_err();
    assert!(
        err.to_string().contains("port") && err.to_string().contains("9 bits"),
        "{err}"
    );
    let err = ix
        .action("mpls_out")
        .unwrap()
        .param("port", 1u8)
        .unwrap()
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        EntityError::Param {
            action: "Ingress.mpls_out".into(),
            param: "pop".into(),
            problem: "missing"
        }
    );
    let drop = ix.action("drop").unwrap().build().unwrap();
    let err = b()
        .exact("mpls_label", 1u8)
        .unwrap()
        .action(drop.clone())
        .unwrap_err();
    assert!(
        matches!(
            err,
            EntityError::ActionNotAllowed {
                context: "in an entry",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        b().as_default().action(drop).is_ok(),
        "drop is allowed as the default"
    );
    let err = b()
        .exact("mpls_label", 1u8)
        .unwrap()
        .priority(5)
        .member(1)
        .unwrap_err();
    assert!(matches!(err, EntityError::Implementation { .. }), "{err}");
    let err = b()
        .exact("mpls_label", 1u8)
        .unwrap()
        .priority(5)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        EntityError::PriorityNotAllowed {
            table: "Ingress.mpls_forward".into()
        }
    );
    let set_nh = ix
        .action("set_next_hop")
        .unwrap()
        .param("port", 1u8)
        .unwrap();
    let set_nh = set_nh
        .param("dmac", [0u8, 1, 2, 3, 4, 5])
        .unwrap()
        .build()
        .unwrap();
    let err = ix
        .table_entry("ipv4_route")
        .unwrap()
        .action(set_nh)
        .unwrap_err();
    assert!(err.to_string().contains("action profile"), "{err}");
    let err = b().build().unwrap_err();
    assert_eq!(
        err,
        EntityError::MissingField {
            table: "Ingress.mpls_forward".into(),
            field: "mpls_label".into()
        }
    );
    let err = ix
        .table_entry("port_filter")
        .unwrap()
        .range("l4_dport", 9u8, 3u8)
        .unwrap_err();
    assert!(matches!(err, EntityError::EmptyRange { .. }), "{err}");
}

#[test]
fn groups_members_and_packet_metadata() {
    let ix = index();
    let a = ix
        .action("set_next_hop")
        .unwrap()
        .param("port", 2u8)
        .unwrap();
    let a = a
        .param("dmac", [2u8, 0, 0, 0, 0, 1])
        .unwrap()
        .build()
        .unwrap();
    let m = ix.profile_member("wcmp_selector", 1, a).unwrap();
    assert_eq!(m.action_profile_id, 285212673);
    let g = ix
        .profile_group("wcmp_selector", 10, &[(1, 3), (2, 1)])
        .unwrap();
    assert_eq!(
        g.members.iter().map(|m| m.weight).collect::<Vec<_>>(),
        vec![3, 1]
    );
    let err = ix
        .profile_group("wcmp_selector", 10, &[(1, 0)])
        .unwrap_err();
    assert!(err.to_string().contains("weight 0"), "{err}");

    let md = ix
        .packet_metadata("packet_out", &[("egress_port", &5u16)])
        .unwrap();
    assert_eq!(
        md,
        vec![p4::PacketMetadata {
            metadata_id: 1,
            value: vec![5]
        }]
    );
    let err = ix
        .packet_metadata("packet_out", &[("egress_port", &600u16)])
        .unwrap_err();
    assert!(err.to_string().contains("egress_port"), "{err}");
    let named = ix.decode_packet_metadata(
        "packet_in",
        &[p4::PacketMetadata {
            metadata_id: 1,
            value: vec![0, 4],
        }],
    );
    assert_eq!(named, vec![("ingress_port".to_string(), vec![4])]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use solyx_p4runtime::entity::normalize;

    proptest! {
        /// A label is accepted exactly when it fits the 20-bit field, and
        /// the entry is already in normal form.
        #[test]
        fn exact_values_are_accepted_iff_they_fit(label in any::<u32>()) {
            let ix = index();
            let b = ix.table_entry("mpls_forward").unwrap().exact("mpls_label", label);
            prop_assert_eq!(b.is_ok(), label < (1 << 20));
            if let Ok(b) = b {
                let a = ix.action("mpls_out").unwrap().param("port", 1u8).unwrap().param("pop", 0u8).unwrap();
                let e = b.action(a.build().unwrap()).unwrap().build().unwrap();
                let mut n = e.clone();
                normalize(&mut n);
                prop_assert_eq!(n, e);
            }
        }

        /// LPM and ternary entries built from any value are normal, and
        /// padding the values as a device might does not change the normal form.
        #[test]
        fn built_entries_are_normal_and_padding_insensitive(
            addr in any::<u32>(), len in 1i32..=32, mask in any::<u32>(), pad in 0usize..4,
        ) {
            let ix = index();
            let route = ix.table_entry("ipv4_route").unwrap()
                .lpm("ipv4_dst", addr, len).unwrap().member(1).unwrap().build().unwrap();
            let acl = ix.table_entry("acl").unwrap()
                .ternary("ipv4_dst", addr, mask).unwrap().priority(1)
                .action(ix.action("punt").unwrap().build().unwrap()).unwrap().build().unwrap();
            for e in [route, acl] {
                let mut padded = e.clone();
                if let Some(p4::entity::Entity::TableEntry(t)) = padded.entity.as_mut() {
                    for m in &mut t.r#match {
                        match m.field_match_type.as_mut() {
                            Some(p4::field_match::FieldMatchType::Lpm(l)) => {
                                let mut v = vec![0; pad];
                                v.extend(&l.value);
                                l.value = v;
                            }
                            Some(p4::field_match::FieldMatchType::Ternary(x)) => {
                                let mut v = vec![0; pad];
                                v.extend(&x.value);
                                x.value = v;
                            }
                            _ => {}
                        }
                    }
                }
                normalize(&mut padded);
                prop_assert_eq!(padded, e);
            }
        }
    }
}
