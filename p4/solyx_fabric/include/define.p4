// solyx_fabric: constants and types shared by every part of the pipeline:
// field types, the CPU port, EtherTypes, IP protocol numbers, INT constants,
// drop reasons and the parser errors the pipeline declares.

#ifndef SOLYX_FABRIC_DEFINE_P4
#define SOLYX_FABRIC_DEFINE_P4

// ---------------------------------------------------------------------------
// Field types
// ---------------------------------------------------------------------------

// v1model ports are 9 bits wide. The P4Runtime port numbers the Solyx agent
// serves are the same 9-bit numbers, each mapped to one network interface.
typedef bit<9>  port_t;
typedef bit<48> mac_addr_t;
typedef bit<32> ipv4_addr_t;
typedef bit<20> mpls_label_t;
typedef bit<16> l4_port_t;
typedef bit<32> int_switch_id_t;

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

// Port of the controller: packets sent to it carry the packet_in header,
// packets received from it start with the packet_out header. BMv2 runs with
// `simple_switch_grpc ... -- --cpu-port 255`.
const port_t CPU_PORT = 9w255;

// ---------------------------------------------------------------------------
// EtherTypes (https://www.iana.org/assignments/ieee-802-numbers/)
// ---------------------------------------------------------------------------

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_ARP  = 0x0806;
const bit<16> ETHERTYPE_IPV6 = 0x86dd;
const bit<16> ETHERTYPE_MPLS = 0x8847;  // MPLS unicast (RFC 5332)
const bit<16> ETHERTYPE_LLDP = 0x88cc;

// ---------------------------------------------------------------------------
// IP protocol numbers (https://www.iana.org/assignments/protocol-numbers/)
// ---------------------------------------------------------------------------

const bit<8> IP_PROTO_ICMP = 1;
const bit<8> IP_PROTO_TCP  = 6;
const bit<8> IP_PROTO_UDP  = 17;

// RoCEv2 (InfiniBand over UDP) destination port, the bulk of GPU traffic.
const l4_port_t UDP_PORT_ROCEV2 = 4791;

// ---------------------------------------------------------------------------
// In-band Network Telemetry, INT-MD over TCP/UDP, spec v2.1
// (https://p4.org/p4-spec/docs/INT_v2_1.pdf)
// ---------------------------------------------------------------------------

// INT header types carried in the shim header's type field (spec 5.1).
const bit<4> INT_TYPE_MD          = 1;
const bit<4> INT_TYPE_DESTINATION = 2;
const bit<4> INT_TYPE_MX          = 3;

// Version carried in the INT-MD metadata header's ver field (spec 5.8).
const bit<4> INT_VERSION = 2;

// Length of the INT-MD metadata header in 4-byte words. The shim header's
// length field counts this header plus the metadata stack, not the shim.
const bit<8> INT_MD_HEADER_WORDS = 3;

// Largest metadata stack (in 4-byte words) the parser extracts. 8 hops of a
// full baseline instruction set (12 words per hop) fit. A packet whose stack
// is longer is forwarded untouched: this hop adds no metadata to it.
#define INT_MAX_STACK_WORDS 96
#define INT_MAX_STACK_BITS 3072

// The reserved value a hop writes for metadata it cannot provide (spec 5.8).
const bit<32> INT_ALL_ONES_32 = 0xffffffff;

// Switch ID reported until the control plane configures one.
const int_switch_id_t INT_UNKNOWN_SWITCH_ID = 0xffffffff;

// IP MTU of the fabric links. A hop whose metadata would push a packet past
// it adds nothing and sets the M bit instead (spec 5.3).
const bit<16> FABRIC_IP_MTU = 9000;

// ---------------------------------------------------------------------------
// Drop reasons, kept in fabric_metadata_t.drop_reason for every packet this
// pipeline drops. Numbers are stable: the agent exports them as counters.
// ---------------------------------------------------------------------------

typedef bit<8> drop_reason_t;

const drop_reason_t DROP_REASON_NONE                  = 0;
const drop_reason_t DROP_REASON_ACL_DENY              = 1;
const drop_reason_t DROP_REASON_MPLS_MISS             = 2;
const drop_reason_t DROP_REASON_MPLS_TTL_EXPIRED      = 3;
const drop_reason_t DROP_REASON_MPLS_LABEL_STACK      = 4;
const drop_reason_t DROP_REASON_IPV4_MISS             = 5;
const drop_reason_t DROP_REASON_IPV4_TTL_EXPIRED      = 6;
const drop_reason_t DROP_REASON_IPV4_CHECKSUM         = 7;
const drop_reason_t DROP_REASON_ROUTE_DROP            = 8;
const drop_reason_t DROP_REASON_MALFORMED             = 9;
const drop_reason_t DROP_REASON_UNSUPPORTED_ETHERTYPE = 10;

// ---------------------------------------------------------------------------
// Parser errors
// ---------------------------------------------------------------------------

error {
    // IPv4 IHL below 5 (RFC 791): the header is malformed; dropped.
    Ipv4IhlInvalid,
    // TCP data offset below 5 (RFC 9293): the header is malformed; dropped.
    TcpDataOffsetInvalid,
    // The INT candidate after TCP/UDP has lengths that do not fit the
    // packet or the parser's bound. Not a drop: most such candidates are
    // ordinary payload, which is forwarded unchanged.
    IntLengthInvalid
}

#endif  // SOLYX_FABRIC_DEFINE_P4
