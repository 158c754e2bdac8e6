"""Wire-compatibility corpus for Solyx's P4Runtime bindings.

The official P4Runtime Python bindings (the ``p4runtime`` package on PyPI)
build a corpus of messages. The Rust test ``p4runtime/tests/wire_compat/``
builds the same corpus with prost, and the two sides exchange serialized
bytes through a directory, one file ``<case>.bin`` per case.

Modes:

``gen DIR``
    Serialize every case into ``DIR/<case>.bin``.
``check DIR``
    Parse ``DIR/<case>.bin`` (bytes written by Rust) for every case and
    compare it with ``==`` against the message built here. Exits non-zero and
    names every case that is missing, does not parse or differs.
``descriptors FILE``
    Load the ``FileDescriptorSet`` in FILE (Solyx's compiled protos) and
    compare every message, field, oneof and enum with the descriptors of the
    official package. Exits non-zero and lists every difference.

Run it with ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` so that the
result does not depend on which native protobuf runtime is installed.
"""

import os
import sys

from google.protobuf import any_pb2, descriptor_pb2
from google.rpc import status_pb2
from p4.config.v1 import p4info_pb2, p4types_pb2
from p4.v1 import p4data_pb2, p4runtime_pb2

# Object IDs of the small router program the corpus talks about. The top byte
# is the P4Ids prefix of the object kind.
TABLE_L2 = 0x02000001
TABLE_IPV4_LPM = 0x02000002
TABLE_ACL = 0x02000003
TABLE_ECMP = 0x02000004
ACTION_SET_PORT = 0x01000001
ACTION_SET_NHOP = 0x01000002
ACTION_DROP = 0x01000003
ACTION_TO_CPU = 0x01000004
ACTION_PROFILE_ECMP = 0x11000001
COUNTER_PORT = 0x12000001
DIRECT_COUNTER_ACL = 0x13000001
METER_PORT = 0x14000001
DIRECT_METER_ACL = 0x15000001
REGISTER_FLOWS = 0x16000001
DIGEST_LEARN = 0x17000001
VALUE_SET_TPID = 0x03000001
PACKET_IN = 0x04000001
PACKET_OUT = 0x04000002
EXTERN_TYPE = 0x81
EXTERN_ID = 0x81000001

ELECTION_ID = p4runtime_pb2.Uint128(high=1, low=0xFFFFFFFFFFFFFFF0)


def pack(msg):
    """Any-packs a message the way the official runtime does."""
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def put(map_field, key, value):
    """Sets a message-valued map entry.

    The official package's generated code predates map-entry flags in
    descriptors, so under the pure-Python runtime its map fields behave as
    repeated key/value entries. This works with either kind of container.
    """
    if hasattr(map_field, "get_or_create"):
        map_field[key].CopyFrom(value)
    else:
        map_field.add(key=key, value=value)


def is_map_field(field):
    """True when a field is a protobuf map (a repeated map-entry message)."""
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def is_repeated(field):
    """True for a repeated field, on old and new protobuf runtimes."""
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == field.LABEL_REPEATED


def canonical(msg):
    """Sorts map entries by key, recursively and in place, so that messages
    compare equal whatever order their maps were encoded in (prost's maps
    have no order). Returns the message."""
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if hasattr(value, "keys"):
            # A real map container: its equality ignores order already.
            valued = field.message_type.fields_by_name["value"].message_type
            children = [value[k] for k in value] if valued else []
        elif is_map_field(field):
            children = sorted(value, key=lambda entry: entry.key)
            copies = []
            for entry in children:
                copy = type(entry)()
                copy.CopyFrom(entry)
                copies.append(copy)
            del value[:]
            value.extend(copies)
            children = list(value)
        elif is_repeated(field):
            children = list(value)
        else:
            children = [value]
        for child in children:
            canonical(child)
    return msg


def write(updates, atomicity=p4runtime_pb2.WriteRequest.CONTINUE_ON_ERROR):
    """A WriteRequest for device 1 from the primary controller."""
    return p4runtime_pb2.WriteRequest(
        device_id=1,
        election_id=ELECTION_ID,
        updates=updates,
        atomicity=atomicity,
    )


def update(kind, **entity):
    """An Update of the given type whose entity sets one oneof member."""
    return p4runtime_pb2.Update(type=kind, entity=p4runtime_pb2.Entity(**entity))


INSERT = p4runtime_pb2.Update.INSERT
MODIFY = p4runtime_pb2.Update.MODIFY
DELETE = p4runtime_pb2.Update.DELETE
FM = p4runtime_pb2.FieldMatch


def set_nhop(port, mac):
    """The set_nhop action with its two parameters."""
    return p4runtime_pb2.Action(
        action_id=ACTION_SET_NHOP,
        params=[
            p4runtime_pb2.Action.Param(param_id=1, value=port),
            p4runtime_pb2.Action.Param(param_id=2, value=mac),
        ],
    )


def l2_key(mac):
    """The exact-match key of the L2 table."""
    return [FM(field_id=1, exact=FM.Exact(value=mac))]


# --------------------------------------------------------------------------
# Write requests


def write_exact():
    """An exact match with a direct action, metadata and idle timeout."""
    entry = p4runtime_pb2.TableEntry(
        table_id=TABLE_L2,
        match=l2_key(b"\x00\x00\x00\x00\x00\x01"),
        action=p4runtime_pb2.TableAction(
            action=p4runtime_pb2.Action(
                action_id=ACTION_SET_PORT,
                params=[p4runtime_pb2.Action.Param(param_id=1, value=b"\x01")],
            )
        ),
        idle_timeout_ns=5_000_000_000,
        metadata=b"solyx:l2:1",
    )
    return write([update(INSERT, table_entry=entry)])


def write_lpm():
    """An LPM match (10.0.0.0/8) with a two-parameter action."""
    entry = p4runtime_pb2.TableEntry(
        table_id=TABLE_IPV4_LPM,
        match=[FM(field_id=1, lpm=FM.LPM(value=b"\x0a\x00\x00\x00", prefix_len=8))],
        action=p4runtime_pb2.TableAction(
            action=set_nhop(b"\x02", b"\x00\x00\x00\x00\x00\x02")
        ),
    )
    return write([update(INSERT, table_entry=entry)])


def write_ternary_range_optional():
    """Ternary, range and optional fields with a priority, a direct meter
    config and direct counter data, applied atomically."""
    entry = p4runtime_pb2.TableEntry(
        table_id=TABLE_ACL,
        match=[
            FM(field_id=1, ternary=FM.Ternary(value=b"\x0a\x00\x00\x00", mask=b"\xff\x00\x00\x00")),
            FM(field_id=2, range=FM.Range(low=b"\x00\x50", high=b"\x01\xbb")),
            FM(field_id=3, optional=FM.Optional(value=b"\x06")),
        ],
        action=p4runtime_pb2.TableAction(
            action=p4runtime_pb2.Action(action_id=ACTION_DROP)
        ),
        priority=10,
        meter_config=p4runtime_pb2.MeterConfig(cir=1000, cburst=100, pir=2000, pburst=200),
        counter_data=p4runtime_pb2.CounterData(byte_count=0, packet_count=0),
    )
    return write(
        [update(INSERT, table_entry=entry)],
        atomicity=p4runtime_pb2.WriteRequest.ROLLBACK_ON_ERROR,
    )


def write_default_action():
    """Changes a table's default action and deletes an entry, for a role."""
    req = write(
        [
            update(
                MODIFY,
                table_entry=p4runtime_pb2.TableEntry(
                    table_id=TABLE_ACL,
                    is_default_action=True,
                    action=p4runtime_pb2.TableAction(
                        action=p4runtime_pb2.Action(action_id=ACTION_TO_CPU)
                    ),
                ),
            ),
            update(
                DELETE,
                table_entry=p4runtime_pb2.TableEntry(
                    table_id=TABLE_L2, match=l2_key(b"\x00\x00\x00\x00\x00\x01")
                ),
            ),
        ],
        atomicity=p4runtime_pb2.WriteRequest.DATAPLANE_ATOMIC,
    )
    req.role = "solyx.acl"
    return req


def write_profile_actions():
    """Table entries pointing at an action-profile member and a group."""
    key = [FM(field_id=1, lpm=FM.LPM(value=b"\xc0\xa8\x00\x00", prefix_len=16))]
    key2 = [FM(field_id=1, lpm=FM.LPM(value=b"\xc0\xa9\x00\x00", prefix_len=16))]
    return write(
        [
            update(
                INSERT,
                table_entry=p4runtime_pb2.TableEntry(
                    table_id=TABLE_ECMP,
                    match=key,
                    action=p4runtime_pb2.TableAction(action_profile_member_id=7),
                ),
            ),
            update(
                INSERT,
                table_entry=p4runtime_pb2.TableEntry(
                    table_id=TABLE_ECMP,
                    match=key2,
                    action=p4runtime_pb2.TableAction(action_profile_group_id=3),
                ),
            ),
        ]
    )


def write_one_shot():
    """A one-shot action set: weighted actions with watch ports."""
    action_set = p4runtime_pb2.ActionProfileActionSet(
        action_profile_actions=[
            p4runtime_pb2.ActionProfileAction(
                action=set_nhop(b"\x01", b"\x00\x00\x00\x00\x00\x11"),
                weight=1,
                watch_port=b"\x01",
            ),
            p4runtime_pb2.ActionProfileAction(
                action=set_nhop(b"\x02", b"\x00\x00\x00\x00\x00\x12"),
                weight=3,
                watch_port=b"\x02",
            ),
        ],
        group_action=p4runtime_pb2.Action(action_id=ACTION_TO_CPU),
        action_selection_mode=p4runtime_pb2.ActionProfileActionSet.HASH,
        size_semantics=p4runtime_pb2.ActionProfileActionSet.SUM_OF_WEIGHTS,
    )
    entry = p4runtime_pb2.TableEntry(
        table_id=TABLE_ECMP,
        match=[FM(field_id=1, lpm=FM.LPM(value=b"\x0a\x01\x00\x00", prefix_len=16))],
        action=p4runtime_pb2.TableAction(action_profile_action_set=action_set),
    )
    return write([update(INSERT, table_entry=entry)])


def write_profile_members():
    """Two members of the ECMP action profile."""
    return write(
        [
            update(
                INSERT,
                action_profile_member=p4runtime_pb2.ActionProfileMember(
                    action_profile_id=ACTION_PROFILE_ECMP,
                    member_id=7,
                    action=set_nhop(b"\x01", b"\x00\x00\x00\x00\x00\x11"),
                ),
            ),
            update(
                INSERT,
                action_profile_member=p4runtime_pb2.ActionProfileMember(
                    action_profile_id=ACTION_PROFILE_ECMP,
                    member_id=8,
                    action=set_nhop(b"\x02", b"\x00\x00\x00\x00\x00\x12"),
                ),
            ),
        ]
    )


def write_weighted_group():
    """A selector group with weighted, watched members."""
    group = p4runtime_pb2.ActionProfileGroup(
        action_profile_id=ACTION_PROFILE_ECMP,
        group_id=3,
        members=[
            p4runtime_pb2.ActionProfileGroup.Member(member_id=7, weight=2, watch_port=b"\x01"),
            p4runtime_pb2.ActionProfileGroup.Member(member_id=8, weight=5, watch_port=b"\x02"),
        ],
        max_size=16,
    )
    return write([update(INSERT, action_profile_group=group)])


def write_counters():
    """An indexed counter cell, and a direct counter of an ACL entry."""
    acl_entry = p4runtime_pb2.TableEntry(
        table_id=TABLE_ACL,
        match=[FM(field_id=3, optional=FM.Optional(value=b"\x11"))],
        priority=5,
    )
    return write(
        [
            update(
                MODIFY,
                counter_entry=p4runtime_pb2.CounterEntry(
                    counter_id=COUNTER_PORT,
                    index=p4runtime_pb2.Index(index=3),
                    data=p4runtime_pb2.CounterData(byte_count=1500, packet_count=1),
                ),
            ),
            update(
                MODIFY,
                direct_counter_entry=p4runtime_pb2.DirectCounterEntry(
                    table_entry=acl_entry,
                    data=p4runtime_pb2.CounterData(
                        byte_count=9_000_000_000, packet_count=6_000_000
                    ),
                ),
            ),
        ]
    )


def write_meters():
    """An indexed meter cell and a direct meter, with full configs."""
    acl_entry = p4runtime_pb2.TableEntry(
        table_id=TABLE_ACL,
        match=[FM(field_id=3, optional=FM.Optional(value=b"\x11"))],
        priority=5,
    )
    return write(
        [
            update(
                MODIFY,
                meter_entry=p4runtime_pb2.MeterEntry(
                    meter_id=METER_PORT,
                    index=p4runtime_pb2.Index(index=2),
                    config=p4runtime_pb2.MeterConfig(
                        cir=125_000, cburst=10_000, pir=250_000, pburst=20_000
                    ),
                ),
            ),
            update(
                MODIFY,
                direct_meter_entry=p4runtime_pb2.DirectMeterEntry(
                    table_entry=acl_entry,
                    config=p4runtime_pb2.MeterConfig(cir=500, cburst=50, eburst=75),
                ),
            ),
        ]
    )


def write_replication():
    """A multicast group with replicas (one with backups) and a clone
    session."""
    group = p4runtime_pb2.MulticastGroupEntry(
        multicast_group_id=1,
        replicas=[
            p4runtime_pb2.Replica(port=b"\x01", instance=1),
            p4runtime_pb2.Replica(
                port=b"\x02",
                instance=1,
                backup_replicas=[p4runtime_pb2.BackupReplica(port=b"\x03", instance=2)],
            ),
        ],
        metadata=b"flood",
    )
    session = p4runtime_pb2.CloneSessionEntry(
        session_id=100,
        replicas=[p4runtime_pb2.Replica(port=b"\xff\xff\xff\xfd", instance=0)],
        class_of_service=2,
        packet_length_bytes=128,
    )
    return write(
        [
            update(
                INSERT,
                packet_replication_engine_entry=p4runtime_pb2.PacketReplicationEngineEntry(
                    multicast_group_entry=group
                ),
            ),
            update(
                INSERT,
                packet_replication_engine_entry=p4runtime_pb2.PacketReplicationEngineEntry(
                    clone_session_entry=session
                ),
            ),
        ]
    )


def flow_record():
    """A register cell value that uses most P4Data alternatives."""
    D = p4data_pb2
    return D.P4Data(
        struct=D.P4StructLike(
            members=[
                D.P4Data(bitstring=b"\x0a\x00\x00\x01"),
                D.P4Data(varbit=D.P4Varbit(bitstring=b"\x01\x02", bitwidth=12)),
                D.P4Data(bool=True),
                D.P4Data(tuple=D.P4StructLike(members=[D.P4Data(bitstring=b"\x07")])),
                D.P4Data(header=D.P4Header(is_valid=True, bitstrings=[b"\x08\x00", b"\x45"])),
                D.P4Data(
                    header_union=D.P4HeaderUnion(
                        valid_header_name="ipv4",
                        valid_header=D.P4Header(is_valid=True, bitstrings=[b"\x04"]),
                    )
                ),
                D.P4Data(
                    header_stack=D.P4HeaderStack(
                        entries=[D.P4Header(is_valid=True, bitstrings=[b"\x01"]), D.P4Header()]
                    )
                ),
                D.P4Data(
                    header_union_stack=D.P4HeaderUnionStack(
                        entries=[D.P4HeaderUnion(valid_header_name="")]
                    )
                ),
                D.P4Data(enum="RED"),
                D.P4Data(error="PacketTooShort"),
                D.P4Data(enum_value=b"\x02"),
            ]
        )
    )


def write_other_entities():
    """A value set, a register cell, digest settings and an extern entry."""
    return write(
        [
            update(
                MODIFY,
                value_set_entry=p4runtime_pb2.ValueSetEntry(
                    value_set_id=VALUE_SET_TPID,
                    members=[
                        p4runtime_pb2.ValueSetMember(
                            match=[FM(field_id=1, exact=FM.Exact(value=b"\x81\x00"))]
                        ),
                        p4runtime_pb2.ValueSetMember(
                            match=[FM(field_id=1, exact=FM.Exact(value=b"\x88\xa8"))]
                        ),
                    ],
                ),
            ),
            update(
                MODIFY,
                register_entry=p4runtime_pb2.RegisterEntry(
                    register_id=REGISTER_FLOWS,
                    index=p4runtime_pb2.Index(index=0),
                    data=flow_record(),
                ),
            ),
            update(
                INSERT,
                digest_entry=p4runtime_pb2.DigestEntry(
                    digest_id=DIGEST_LEARN,
                    config=p4runtime_pb2.DigestEntry.Config(
                        max_timeout_ns=1_000_000, max_list_size=64, ack_timeout_ns=500_000_000
                    ),
                ),
            ),
            update(
                INSERT,
                extern_entry=p4runtime_pb2.ExternEntry(
                    extern_type_id=EXTERN_TYPE,
                    extern_id=EXTERN_ID,
                    entry=pack(p4data_pb2.P4Data(bitstring=b"\x00\x2a")),
                ),
            ),
            update(
                INSERT,
                table_entry=p4runtime_pb2.TableEntry(
                    table_id=TABLE_ACL,
                    match=[FM(field_id=4, other=pack(FM.Exact(value=b"\x05")))],
                    priority=1,
                ),
            ),
        ]
    )


def write_deprecated_fields():
    """Fields kept for wire compatibility only: role_id, controller_metadata,
    watch and egress_port."""
    req = write(
        [
            update(
                INSERT,
                table_entry=p4runtime_pb2.TableEntry(
                    table_id=TABLE_L2,
                    match=l2_key(b"\x00\x00\x00\x00\x00\x02"),
                    controller_metadata=0xDEADBEEF,
                ),
            ),
            update(
                INSERT,
                action_profile_group=p4runtime_pb2.ActionProfileGroup(
                    action_profile_id=ACTION_PROFILE_ECMP,
                    group_id=4,
                    members=[p4runtime_pb2.ActionProfileGroup.Member(member_id=7, weight=1, watch=9)],
                ),
            ),
            update(
                INSERT,
                packet_replication_engine_entry=p4runtime_pb2.PacketReplicationEngineEntry(
                    multicast_group_entry=p4runtime_pb2.MulticastGroupEntry(
                        multicast_group_id=2,
                        replicas=[p4runtime_pb2.Replica(egress_port=4, instance=0)],
                    )
                ),
            ),
        ]
    )
    req.role_id = 3
    return req


# --------------------------------------------------------------------------
# Stream channel


def stream_arbitration_request():
    """A client asks to become primary for a named role."""
    return p4runtime_pb2.StreamMessageRequest(
        arbitration=p4runtime_pb2.MasterArbitrationUpdate(
            device_id=1,
            role=p4runtime_pb2.Role(
                name="solyx.acl", config=pack(p4info_pb2.Documentation(brief="acl role"))
            ),
            election_id=ELECTION_ID,
        )
    )


def stream_arbitration_response():
    """The server tells a backup client who is primary."""
    return p4runtime_pb2.StreamMessageResponse(
        arbitration=p4runtime_pb2.MasterArbitrationUpdate(
            device_id=1,
            role=p4runtime_pb2.Role(name="solyx.acl"),
            election_id=p4runtime_pb2.Uint128(high=0, low=42),
            status=status_pb2.Status(code=6, message="a primary exists for this role"),
        )
    )


def stream_packet_out():
    """A packet-out with two metadata fields."""
    return p4runtime_pb2.StreamMessageRequest(
        packet=p4runtime_pb2.PacketOut(
            payload=bytes(range(64)),
            metadata=[
                p4runtime_pb2.PacketMetadata(metadata_id=1, value=b"\x00\x05"),
                p4runtime_pb2.PacketMetadata(metadata_id=2, value=b"\x01"),
            ],
        )
    )


def stream_packet_in():
    """A packet-in with its ingress port metadata."""
    return p4runtime_pb2.StreamMessageResponse(
        packet=p4runtime_pb2.PacketIn(
            payload=b"\xff" * 6 + b"\x00\x00\x00\x00\x00\x01" + b"\x88\xcc",
            metadata=[p4runtime_pb2.PacketMetadata(metadata_id=1, value=b"\x00\x03")],
        )
    )


def stream_digest_list():
    """A digest list of two learned (mac, port) pairs."""
    D = p4data_pb2

    def learned(mac, port):
        return D.P4Data(
            struct=D.P4StructLike(members=[D.P4Data(bitstring=mac), D.P4Data(bitstring=port)])
        )

    return p4runtime_pb2.StreamMessageResponse(
        digest=p4runtime_pb2.DigestList(
            digest_id=DIGEST_LEARN,
            list_id=77,
            data=[
                learned(b"\x00\x00\x00\x00\x00\x0a", b"\x01"),
                learned(b"\x00\x00\x00\x00\x00\x0b", b"\x02"),
            ],
            timestamp=1_700_000_000_000_000_000,
        )
    )


def stream_digest_ack():
    """The controller acknowledges a digest list."""
    return p4runtime_pb2.StreamMessageRequest(
        digest_ack=p4runtime_pb2.DigestListAck(digest_id=DIGEST_LEARN, list_id=77)
    )


def stream_idle_timeout():
    """Two entries went idle."""
    return p4runtime_pb2.StreamMessageResponse(
        idle_timeout_notification=p4runtime_pb2.IdleTimeoutNotification(
            table_entry=[
                p4runtime_pb2.TableEntry(table_id=TABLE_L2, match=l2_key(b"\x00\x00\x00\x00\x00\x01")),
                p4runtime_pb2.TableEntry(table_id=TABLE_L2, match=l2_key(b"\x00\x00\x00\x00\x00\x02")),
            ],
            timestamp=1_700_000_000_000_000_001,
        )
    )


def stream_error_packet_out():
    """The server rejects a packet-out."""
    return p4runtime_pb2.StreamMessageResponse(
        error=p4runtime_pb2.StreamError(
            canonical_code=3,
            message="unknown metadata id 9",
            space="solyx",
            code=1001,
            packet_out=p4runtime_pb2.PacketOutError(
                packet_out=p4runtime_pb2.PacketOut(
                    payload=b"\x00",
                    metadata=[p4runtime_pb2.PacketMetadata(metadata_id=9, value=b"\x01")],
                )
            ),
        )
    )


def stream_error_digest_ack():
    """The server rejects a digest ack."""
    return p4runtime_pb2.StreamMessageResponse(
        error=p4runtime_pb2.StreamError(
            canonical_code=5,
            message="no such digest list",
            digest_list_ack=p4runtime_pb2.DigestListAckError(
                digest_list_ack=p4runtime_pb2.DigestListAck(digest_id=DIGEST_LEARN, list_id=78)
            ),
        )
    )


def stream_error_other():
    """The server rejects an architecture-specific stream message."""
    return p4runtime_pb2.StreamMessageResponse(
        error=p4runtime_pb2.StreamError(
            canonical_code=12,
            message="unsupported",
            other=p4runtime_pb2.StreamOtherError(
                other=pack(p4runtime_pb2.PacketOut(payload=b"ping"))
            ),
        )
    )


def stream_other():
    """Architecture-specific messages in both directions."""
    return p4runtime_pb2.StreamMessageRequest(
        other=pack(p4runtime_pb2.PacketOut(payload=b"ping"))
    )


# --------------------------------------------------------------------------
# Pipeline configuration


def annotated(name, id_, alias=""):
    """A preamble with a name, an alias and a documentation string."""
    return p4info_pb2.Preamble(
        id=id_,
        name=name,
        alias=alias or name.rsplit(".", 1)[-1],
        annotations=['@name("%s")' % name],
        doc=p4info_pb2.Documentation(brief="the %s object" % name),
    )


def type_info():
    """Named types: structs, a header, enums, errors and new types."""
    T = p4types_pb2
    bit = lambda w: T.P4DataTypeSpec(
        bitstring=T.P4BitstringLikeTypeSpec(bit=T.P4BitTypeSpec(bitwidth=w))
    )
    info = T.P4TypeInfo(error=T.P4ErrorTypeSpec(members=["NoError", "PacketTooShort"]))
    put(
        info.structs,
        "learn_t",
        T.P4StructTypeSpec(
            members=[
                T.P4StructTypeSpec.Member(name="mac", type_spec=bit(48)),
                T.P4StructTypeSpec.Member(name="port", type_spec=bit(9)),
            ]
        )
    )
    put(
        info.structs,
        "flow_t",
        T.P4StructTypeSpec(
            members=[
                T.P4StructTypeSpec.Member(name="dst", type_spec=bit(32)),
                T.P4StructTypeSpec.Member(
                    name="ok", type_spec=T.P4DataTypeSpec(bool=T.P4BoolType())
                ),
                T.P4StructTypeSpec.Member(
                    name="err", type_spec=T.P4DataTypeSpec(error=T.P4ErrorType())
                ),
            ]
        )
    )
    put(
        info.headers,
        "ethernet_t",
        T.P4HeaderTypeSpec(
            members=[
                T.P4HeaderTypeSpec.Member(
                    name="dst",
                    type_spec=T.P4BitstringLikeTypeSpec(bit=T.P4BitTypeSpec(bitwidth=48)),
                ),
                T.P4HeaderTypeSpec.Member(
                    name="opts",
                    type_spec=T.P4BitstringLikeTypeSpec(
                        varbit=T.P4VarbitTypeSpec(max_bitwidth=320)
                    ),
                ),
            ]
        )
    )
    put(
        info.enums,
        "Color",
        T.P4EnumTypeSpec(
            members=[T.P4EnumTypeSpec.Member(name="RED"), T.P4EnumTypeSpec.Member(name="GREEN")]
        )
    )
    put(
        info.serializable_enums,
        "EtherType",
        T.P4SerializableEnumTypeSpec(
            underlying_type=T.P4BitTypeSpec(bitwidth=16),
            members=[T.P4SerializableEnumTypeSpec.Member(name="IPV4", value=b"\x08\x00")],
        )
    )
    put(
        info.new_types,
        "PortId_t",
        T.P4NewTypeSpec(
            translated_type=T.P4NewTypeTranslation(uri="p4.org/psa/v1/PortId_t", sdn_bitwidth=32)
        )
    )
    put(
        info.new_types,
        "Name_t",
        T.P4NewTypeSpec(
            translated_type=T.P4NewTypeTranslation(
                uri="solyx/name", sdn_string=T.P4NewTypeTranslation.SdnString()
            )
        )
    )
    return info


def p4info():
    """A P4Info of a small router with every kind of object and types."""
    I = p4info_pb2
    T = p4types_pb2
    ipv4_field = I.MatchField(
        id=1, name="hdr.ipv4.dst_addr", bitwidth=32, match_type=I.MatchField.LPM
    )
    return I.P4Info(
        pkg_info=I.PkgInfo(
            name="solyx_router",
            version="1.0",
            arch="v1model",
            organization="Solyx",
            doc=I.Documentation(brief="router", description="a test router"),
            platform_properties=I.PlatformProperties(
                multicast_group_table_size=256,
                multicast_group_table_total_replicas=4096,
                multicast_group_table_max_replicas_per_entry=64,
            ),
            structured_annotations=[
                T.StructuredAnnotation(
                    name="owner",
                    kv_pair_list=T.KeyValuePairList(
                        kv_pairs=[
                            T.KeyValuePair(key="team", value=T.Expression(string_value="net")),
                            T.KeyValuePair(key="tier", value=T.Expression(int64_value=2)),
                        ]
                    ),
                    source_location=T.SourceLocation(file="router.p4", line=3, column=1),
                )
            ],
        ),
        tables=[
            I.Table(
                preamble=annotated("ingress.l2", TABLE_L2),
                match_fields=[
                    I.MatchField(
                        id=1, name="hdr.eth.dst", bitwidth=48, match_type=I.MatchField.EXACT
                    )
                ],
                action_refs=[
                    I.ActionRef(id=ACTION_SET_PORT),
                    I.ActionRef(id=ACTION_DROP, scope=I.ActionRef.DEFAULT_ONLY),
                ],
                size=1024,
                idle_timeout_behavior=I.Table.NOTIFY_CONTROL,
                initial_default_action=I.TableActionCall(action_id=ACTION_DROP),
            ),
            I.Table(
                preamble=annotated("ingress.ipv4_lpm", TABLE_IPV4_LPM),
                match_fields=[ipv4_field],
                action_refs=[I.ActionRef(id=ACTION_SET_NHOP), I.ActionRef(id=ACTION_DROP)],
                const_default_action_id=ACTION_DROP,
                size=4096,
            ),
            I.Table(
                preamble=annotated("ingress.acl", TABLE_ACL),
                match_fields=[
                    I.MatchField(id=1, name="hdr.ipv4.src_addr", bitwidth=32,
                                 match_type=I.MatchField.TERNARY),
                    I.MatchField(id=2, name="meta.l4_dport", bitwidth=16,
                                 match_type=I.MatchField.RANGE),
                    I.MatchField(id=3, name="hdr.ipv4.protocol", bitwidth=8,
                                 match_type=I.MatchField.OPTIONAL),
                    I.MatchField(id=4, name="meta.app", bitwidth=8,
                                 other_match_type="dpi"),
                ],
                action_refs=[
                    I.ActionRef(id=ACTION_DROP),
                    I.ActionRef(id=ACTION_TO_CPU, scope=I.ActionRef.TABLE_ONLY),
                ],
                direct_resource_ids=[DIRECT_COUNTER_ACL, DIRECT_METER_ACL],
                size=256,
            ),
            I.Table(
                preamble=annotated("ingress.ecmp", TABLE_ECMP),
                match_fields=[ipv4_field],
                action_refs=[
                    I.ActionRef(id=ACTION_SET_NHOP),
                    I.ActionRef(id=ACTION_TO_CPU, scope=I.ActionRef.GROUP_ACTION),
                ],
                implementation_id=ACTION_PROFILE_ECMP,
                size=1024,
                is_const_table=False,
                has_initial_entries=True,
                other_properties=pack(p4info_pb2.Documentation(brief="hw table")),
            ),
        ],
        actions=[
            I.Action(
                preamble=annotated("ingress.set_port", ACTION_SET_PORT),
                params=[I.Action.Param(id=1, name="port", bitwidth=9,
                                       type_name=T.P4NamedType(name="PortId_t"))],
            ),
            I.Action(
                preamble=annotated("ingress.set_nhop", ACTION_SET_NHOP),
                params=[
                    I.Action.Param(id=1, name="port", bitwidth=9),
                    I.Action.Param(id=2, name="dmac", bitwidth=48,
                                   doc=I.Documentation(brief="next hop MAC")),
                ],
            ),
            I.Action(preamble=annotated("ingress.drop", ACTION_DROP)),
            I.Action(preamble=annotated("ingress.send_to_cpu", ACTION_TO_CPU)),
        ],
        action_profiles=[
            I.ActionProfile(
                preamble=annotated("ingress.ecmp_selector", ACTION_PROFILE_ECMP),
                table_ids=[TABLE_ECMP],
                with_selector=True,
                size=1024,
                max_group_size=16,
                sum_of_members=I.ActionProfile.SumOfMembers(max_member_weight=8),
            )
        ],
        counters=[
            I.Counter(
                preamble=annotated("ingress.port_counter", COUNTER_PORT),
                spec=I.CounterSpec(unit=I.CounterSpec.BOTH),
                size=512,
            )
        ],
        direct_counters=[
            I.DirectCounter(
                preamble=annotated("ingress.acl_counter", DIRECT_COUNTER_ACL),
                spec=I.CounterSpec(unit=I.CounterSpec.PACKETS),
                direct_table_id=TABLE_ACL,
            )
        ],
        meters=[
            I.Meter(
                preamble=annotated("ingress.port_meter", METER_PORT),
                spec=I.MeterSpec(unit=I.MeterSpec.BYTES,
                                 type=I.MeterSpec.SINGLE_RATE_THREE_COLOR),
                size=512,
            )
        ],
        direct_meters=[
            I.DirectMeter(
                preamble=annotated("ingress.acl_meter", DIRECT_METER_ACL),
                spec=I.MeterSpec(unit=I.MeterSpec.PACKETS),
                direct_table_id=TABLE_ACL,
            )
        ],
        controller_packet_metadata=[
            I.ControllerPacketMetadata(
                preamble=annotated("packet_in", PACKET_IN),
                metadata=[
                    I.ControllerPacketMetadata.Metadata(id=1, name="ingress_port", bitwidth=9)
                ],
            ),
            I.ControllerPacketMetadata(
                preamble=annotated("packet_out", PACKET_OUT),
                metadata=[
                    I.ControllerPacketMetadata.Metadata(id=1, name="egress_port", bitwidth=9),
                    I.ControllerPacketMetadata.Metadata(id=2, name="flags", bitwidth=8),
                ],
            ),
        ],
        value_sets=[
            I.ValueSet(
                preamble=annotated("parser.tpid", VALUE_SET_TPID),
                match=[I.MatchField(id=1, name="tpid", bitwidth=16,
                                    match_type=I.MatchField.EXACT)],
                size=4,
            )
        ],
        registers=[
            I.Register(
                preamble=annotated("ingress.flows", REGISTER_FLOWS),
                type_spec=T.P4DataTypeSpec(struct=T.P4NamedType(name="flow_t")),
                size=128,
            )
        ],
        digests=[
            I.Digest(
                preamble=annotated("learn", DIGEST_LEARN),
                type_spec=T.P4DataTypeSpec(struct=T.P4NamedType(name="learn_t")),
            )
        ],
        externs=[
            I.Extern(
                extern_type_id=EXTERN_TYPE,
                extern_type_name="Hash",
                instances=[
                    I.ExternInstance(
                        preamble=annotated("ingress.hash", EXTERN_ID),
                        info=pack(p4types_pb2.P4BitTypeSpec(bitwidth=32)),
                    )
                ],
            )
        ],
        type_info=type_info(),
    )


def pipeline_config():
    """The router's pipeline with a device blob and a cookie."""
    return p4runtime_pb2.ForwardingPipelineConfig(
        p4info=p4info(),
        p4_device_config=b'{"program": "solyx_router"}',
        cookie=p4runtime_pb2.ForwardingPipelineConfig.Cookie(cookie=0xC0FFEE),
    )


def set_pipeline_config():
    """Installs the router pipeline."""
    return p4runtime_pb2.SetForwardingPipelineConfigRequest(
        device_id=1,
        role="",
        election_id=ELECTION_ID,
        action=p4runtime_pb2.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
        config=pipeline_config(),
    )


def get_pipeline_config_request():
    """Asks for the P4Info and cookie only."""
    return p4runtime_pb2.GetForwardingPipelineConfigRequest(
        device_id=1,
        response_type=p4runtime_pb2.GetForwardingPipelineConfigRequest.P4INFO_AND_COOKIE,
    )


def get_pipeline_config_response():
    """Answers with the router pipeline."""
    return p4runtime_pb2.GetForwardingPipelineConfigResponse(config=pipeline_config())


# --------------------------------------------------------------------------
# Read


def read_request():
    """Wildcard reads of several entity kinds."""
    E = p4runtime_pb2.Entity
    return p4runtime_pb2.ReadRequest(
        device_id=1,
        role="solyx.acl",
        entities=[
            E(table_entry=p4runtime_pb2.TableEntry()),
            E(table_entry=p4runtime_pb2.TableEntry(
                table_id=TABLE_ACL,
                counter_data=p4runtime_pb2.CounterData(),
                time_since_last_hit=p4runtime_pb2.TableEntry.IdleTimeout(),
            )),
            E(action_profile_member=p4runtime_pb2.ActionProfileMember(
                action_profile_id=ACTION_PROFILE_ECMP)),
            E(action_profile_group=p4runtime_pb2.ActionProfileGroup(
                action_profile_id=ACTION_PROFILE_ECMP)),
            E(counter_entry=p4runtime_pb2.CounterEntry(counter_id=COUNTER_PORT)),
            E(meter_entry=p4runtime_pb2.MeterEntry(meter_id=METER_PORT)),
            E(direct_counter_entry=p4runtime_pb2.DirectCounterEntry(
                table_entry=p4runtime_pb2.TableEntry(table_id=TABLE_ACL))),
            E(packet_replication_engine_entry=p4runtime_pb2.PacketReplicationEngineEntry(
                multicast_group_entry=p4runtime_pb2.MulticastGroupEntry())),
            E(register_entry=p4runtime_pb2.RegisterEntry(register_id=REGISTER_FLOWS)),
            E(digest_entry=p4runtime_pb2.DigestEntry()),
        ],
    )


def read_response():
    """A reply with a table entry carrying its counters, meter counts and
    idle time, a group, a counter cell and a multicast group."""
    E = p4runtime_pb2.Entity
    entry = p4runtime_pb2.TableEntry(
        table_id=TABLE_ACL,
        match=[FM(field_id=1, ternary=FM.Ternary(value=b"\x0a\x00\x00\x00", mask=b"\xff\x00\x00\x00"))],
        action=p4runtime_pb2.TableAction(action=p4runtime_pb2.Action(action_id=ACTION_DROP)),
        priority=10,
        counter_data=p4runtime_pb2.CounterData(byte_count=123456, packet_count=789),
        meter_counter_data=p4runtime_pb2.MeterCounterData(
            green=p4runtime_pb2.CounterData(byte_count=100, packet_count=1),
            yellow=p4runtime_pb2.CounterData(byte_count=200, packet_count=2),
            red=p4runtime_pb2.CounterData(byte_count=300, packet_count=3),
        ),
        time_since_last_hit=p4runtime_pb2.TableEntry.IdleTimeout(elapsed_ns=2_500_000_000),
        is_const=True,
    )
    return p4runtime_pb2.ReadResponse(
        entities=[
            E(table_entry=entry),
            E(action_profile_group=write_weighted_group().updates[0].entity.action_profile_group),
            E(counter_entry=p4runtime_pb2.CounterEntry(
                counter_id=COUNTER_PORT,
                index=p4runtime_pb2.Index(index=3),
                data=p4runtime_pb2.CounterData(byte_count=1500, packet_count=1),
            )),
            E(meter_entry=p4runtime_pb2.MeterEntry(
                meter_id=METER_PORT,
                index=p4runtime_pb2.Index(index=2),
                config=p4runtime_pb2.MeterConfig(cir=125_000, cburst=10_000),
                counter_data=p4runtime_pb2.MeterCounterData(
                    green=p4runtime_pb2.CounterData(packet_count=10)),
            )),
            E(packet_replication_engine_entry=write_replication().updates[0].entity
              .packet_replication_engine_entry),
        ]
    )


# --------------------------------------------------------------------------
# Errors and capabilities


def write_error_status():
    """The status of a failed Write batch: one p4.v1.Error per update."""
    return status_pb2.Status(
        code=2,
        message="2 of 3 updates failed",
        details=[
            pack(p4runtime_pb2.Error(canonical_code=0)),
            pack(p4runtime_pb2.Error(
                canonical_code=6,
                message="entry already exists",
                space="solyx",
                code=17,
            )),
            pack(p4runtime_pb2.Error(
                canonical_code=3,
                message="bad prefix length",
                details=pack(FM(field_id=1, lpm=FM.LPM(value=b"\x0a", prefix_len=33))),
            )),
        ],
    )


def capabilities_request():
    """Asks device 1 what it supports."""
    return p4runtime_pb2.CapabilitiesRequest(device_id=1)


def capabilities_response():
    """Reports the API version and an experimental feature."""
    return p4runtime_pb2.CapabilitiesResponse(
        p4runtime_api_version="1.4.0",
        experimental=pack(p4info_pb2.Documentation(brief="solyx experimental")),
    )


CASES = {
    "write_exact": write_exact,
    "write_lpm": write_lpm,
    "write_ternary_range_optional": write_ternary_range_optional,
    "write_default_action": write_default_action,
    "write_profile_actions": write_profile_actions,
    "write_one_shot": write_one_shot,
    "write_profile_members": write_profile_members,
    "write_weighted_group": write_weighted_group,
    "write_counters": write_counters,
    "write_meters": write_meters,
    "write_replication": write_replication,
    "write_other_entities": write_other_entities,
    "write_deprecated_fields": write_deprecated_fields,
    "stream_arbitration_request": stream_arbitration_request,
    "stream_arbitration_response": stream_arbitration_response,
    "stream_packet_out": stream_packet_out,
    "stream_packet_in": stream_packet_in,
    "stream_digest_list": stream_digest_list,
    "stream_digest_ack": stream_digest_ack,
    "stream_idle_timeout": stream_idle_timeout,
    "stream_error_packet_out": stream_error_packet_out,
    "stream_error_digest_ack": stream_error_digest_ack,
    "stream_error_other": stream_error_other,
    "stream_other": stream_other,
    "set_pipeline_config": set_pipeline_config,
    "get_pipeline_config_request": get_pipeline_config_request,
    "get_pipeline_config_response": get_pipeline_config_response,
    "read_request": read_request,
    "read_response": read_response,
    "write_error_status": write_error_status,
    "capabilities_request": capabilities_request,
    "capabilities_response": capabilities_response,
}


# --------------------------------------------------------------------------
# Modes


def gen(directory):
    """Writes every case's serialized bytes into the directory."""
    os.makedirs(directory, exist_ok=True)
    for name, build in CASES.items():
        with open(os.path.join(directory, name + ".bin"), "wb") as out:
            out.write(build().SerializeToString())
    print("wire_compat: wrote %d cases" % len(CASES))
    return 0


def check(directory):
    """Checks that the bytes in the directory parse to the expected cases."""
    failures = []
    for name, build in CASES.items():
        expected = build()
        path = os.path.join(directory, name + ".bin")
        if not os.path.exists(path):
            failures.append("%s: no file" % name)
            continue
        got = type(expected)()
        try:
            with open(path, "rb") as src:
                got.ParseFromString(src.read())
        except Exception as err:  # any parse failure is a test failure
            failures.append("%s: does not parse: %s" % (name, err))
            continue
        if canonical(got) != canonical(expected):
            failures.append(
                "%s: differs\n--- expected (Python)\n%s--- got (Rust bytes)\n%s"
                % (name, expected, got)
            )
    extra = sorted(
        f[: -len(".bin")]
        for f in os.listdir(directory)
        if f.endswith(".bin") and f[: -len(".bin")] not in CASES
    )
    failures.extend("%s: not a known case" % name for name in extra)
    for failure in failures:
        print("MISMATCH " + failure)
    print("wire_compat: checked %d cases, %d failed" % (len(CASES), len(failures)))
    return 1 if failures else 0


# --------------------------------------------------------------------------
# Descriptor comparison

OFFICIAL_MODULES = (p4runtime_pb2, p4data_pb2, p4info_pb2, p4types_pb2, status_pb2)


def index_file(fdp):
    """Maps the full name of each message and enum in a file to its proto."""
    messages, enums = {}, {}

    def walk(msg, scope):
        full = scope + "." + msg.name
        messages[full] = msg
        for nested in msg.nested_type:
            walk(nested, full)
        for enum in msg.enum_type:
            enums[full + "." + enum.name] = enum

    scope = "." + fdp.package
    for msg in fdp.message_type:
        walk(msg, scope)
    for enum in fdp.enum_type:
        enums[scope + "." + enum.name] = enum
    return messages, enums


def field_facts(msg):
    """The wire-relevant facts of each field of a message, by field name."""
    facts = {}
    for f in msg.field:
        oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
        facts[f.name] = {
            "number": f.number,
            "type": descriptor_pb2.FieldDescriptorProto.Type.Name(f.type),
            "label": descriptor_pb2.FieldDescriptorProto.Label.Name(f.label),
            "type_name": f.type_name,
            "oneof": oneof,
            "proto3_optional": f.proto3_optional,
            "deprecated": f.options.deprecated,
        }
    return facts


def compare_files(official, ours):
    """Lists the differences between two FileDescriptorProtos."""
    diffs = []
    if official.package != ours.package:
        diffs.append("%s: package %r, ours %r" % (official.name, official.package, ours.package))
    off_msgs, off_enums = index_file(official)
    our_msgs, our_enums = index_file(ours)
    for name in sorted(set(off_msgs) | set(our_msgs)):
        if name not in our_msgs:
            diffs.append("message %s: missing in ours" % name)
            continue
        if name not in off_msgs:
            diffs.append("message %s: not in the official protos" % name)
            continue
        if off_msgs[name].options.map_entry != our_msgs[name].options.map_entry:
            diffs.append("message %s: map_entry differs" % name)
        off_fields, our_fields = field_facts(off_msgs[name]), field_facts(our_msgs[name])
        for field in sorted(set(off_fields) | set(our_fields)):
            a, b = off_fields.get(field), our_fields.get(field)
            if a is None:
                diffs.append("%s.%s: not in the official protos" % (name, field))
            elif b is None:
                diffs.append("%s.%s: missing in ours" % (name, field))
            else:
                for key in a:
                    if a[key] != b[key]:
                        diffs.append("%s.%s: %s is %r, ours %r" % (name, field, key, a[key], b[key]))
    for name in sorted(set(off_enums) | set(our_enums)):
        a = [(v.name, v.number) for v in off_enums[name].value] if name in off_enums else None
        b = [(v.name, v.number) for v in our_enums[name].value] if name in our_enums else None
        if a != b:
            diffs.append("enum %s: official %s, ours %s" % (name, a, b))
    off_services = {s.name: s for s in official.service}
    our_services = {s.name: s for s in ours.service}
    for name in sorted(set(off_services) | set(our_services)):
        def methods(service):
            if service is None:
                return None
            return {
                m.name: (m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                for m in service.method
            }
        a, b = methods(off_services.get(name)), methods(our_services.get(name))
        if a != b:
            diffs.append("service %s: official %s, ours %s" % (name, a, b))
    a = sorted((e.name, e.number, e.extendee) for e in official.extension)
    b = sorted((e.name, e.number, e.extendee) for e in ours.extension)
    if a != b:
        diffs.append("%s: extensions official %s, ours %s" % (official.name, a, b))
    return diffs


def descriptors(path):
    """Compares our FileDescriptorSet with the official descriptors."""
    ours = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as src:
        ours.ParseFromString(src.read())
    our_files = {f.name: f for f in ours.file}
    diffs = []
    messages = 0
    for module in OFFICIAL_MODULES:
        official = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(official)
        if official.name not in our_files:
            diffs.append("file %s: missing in ours" % official.name)
            continue
        messages += len(index_file(official)[0])
        diffs.extend(compare_files(official, our_files[official.name]))
    for diff in diffs:
        print("DIFF " + diff)
    print(
        "wire_compat: compared %d files, %d messages, %d differences"
        % (len(OFFICIAL_MODULES), messages, len(diffs))
    )
    return 1 if diffs else 0


def main(argv):
    modes = {"gen": gen, "check": check, "descriptors": descriptors}
    if len(argv) != 3 or argv[1] not in modes:
        print("usage: wire_compat.py {gen DIR | check DIR | descriptors FILE}", file=sys.stderr)
        return 2
    return modes[argv[1]](argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
