//! Raw entities of the test pipeline, built by hand (not through the
//! P4Info builders) so that tests can make them wrong on purpose.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use tonic::transport::Channel;
use tonic::Code;

use super::*;

pub use p4::field_match::FieldMatchType as M;

pub fn fm(field_id: u32, m: M) -> p4::FieldMatch {
    p4::FieldMatch {
        field_id,
        field_match_type: Some(m),
    }
}

pub fn exact(field_id: u32, value: &[u8]) -> p4::FieldMatch {
    fm(
        field_id,
        M::Exact(p4::field_match::Exact {
            value: value.to_vec(),
        }),
    )
}

pub fn act(action_id: u32, params: &[(u32, &[u8])]) -> Option<p4::TableAction> {
    Some(p4::TableAction {
        r#type: Some(p4::table_action::Type::Action(p4::Action {
            action_id,
            params: params
                .iter()
                .map(|(id, v)| p4::action::Param {
                    param_id: *id,
                    value: v.to_vec(),
                })
                .collect(),
        })),
    })
}

pub fn member_ref(id: u32) -> Option<p4::TableAction> {
    Some(p4::TableAction {
        r#type: Some(p4::table_action::Type::ActionProfileMemberId(id)),
    })
}

pub fn group_ref(id: u32) -> Option<p4::TableAction> {
    Some(p4::TableAction {
        r#type: Some(p4::table_action::Type::ActionProfileGroupId(id)),
    })
}

/// A valid raw l2 entry: mac -> set_port(port).
pub fn l2(mac: &[u8], port: &[u8]) -> p4::TableEntry {
    p4::TableEntry {
        table_id: T_L2,
        r#match: vec![exact(1, mac)],
        action: act(A_SET_PORT, &[(1, port)]),
        ..Default::default()
    }
}

pub fn route(addr: [u8; 4], prefix_len: i32, action: Option<p4::TableAction>) -> p4::TableEntry {
    p4::TableEntry {
        table_id: T_ROUTES,
        r#match: vec![fm(
            1,
            M::Lpm(p4::field_match::Lpm {
                value: addr.to_vec(),
                prefix_len,
            }),
        )],
        action,
        ..Default::default()
    }
}

pub fn acl(value: &[u8], mask: &[u8], priority: i32) -> p4::TableEntry {
    p4::TableEntry {
        table_id: T_ACL,
        r#match: vec![fm(
            1,
            M::Ternary(p4::field_match::Ternary {
                value: value.to_vec(),
                mask: mask.to_vec(),
            }),
        )],
        action: act(A_DROP, &[]),
        priority,
        ..Default::default()
    }
}

pub fn ports(low: &[u8], high: &[u8], vlan: Option<&[u8]>, priority: i32) -> p4::TableEntry {
    let mut r#match = vec![fm(
        1,
        M::Range(p4::field_match::Range {
            low: low.to_vec(),
            high: high.to_vec(),
        }),
    )];
    if let Some(v) = vlan {
        r#match.push(fm(
            2,
            M::Optional(p4::field_match::Optional { value: v.to_vec() }),
        ));
    }
    p4::TableEntry {
        table_id: T_PORTS,
        r#match,
        action: act(A_PERMIT, &[]),
        priority,
        ..Default::default()
    }
}

pub fn member(id: u32, port: u8) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::ActionProfileMember(
            p4::ActionProfileMember {
                action_profile_id: P_ECMP,
                member_id: id,
                action: Some(p4::Action {
                    action_id: A_NEXT_HOP,
                    params: vec![
                        p4::action::Param {
                            param_id: 1,
                            value: vec![0, 0, 0, 0, 0, id as u8],
                        },
                        p4::action::Param {
                            param_id: 2,
                            value: vec![port],
                        },
                    ],
                }),
            },
        )),
    }
}

pub fn group(id: u32, members: &[(u32, i32)]) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::ActionProfileGroup(
            p4::ActionProfileGroup {
                action_profile_id: P_ECMP,
                group_id: id,
                members: members
                    .iter()
                    .map(|(m, w)| p4::action_profile_group::Member {
                        member_id: *m,
                        weight: *w,
                        ..Default::default()
                    })
                    .collect(),
                max_size: 0,
            },
        )),
    }
}

pub const MAC: [u8; 6] = [0, 0x11, 0x22, 0x33, 0x44, 0x55];

pub async fn expect_err(
    client: &mut P4RuntimeClient<Channel>,
    u: p4::Update,
    code: Code,
    names: &[&str],
) {
    let (c, msg) = write_one_err(client, u).await;
    assert_eq!(c, code, "{msg}");
    assert_names(&msg, names);
}
