// solyx_fabric: packet headers (each cites the specification it follows),
// the controller packet-in/packet-out headers, the header struct the parser
// fills and the deparser emits, and the metadata the controls share.

#ifndef SOLYX_FABRIC_HEADER_P4
#define SOLYX_FABRIC_HEADER_P4

// ---------------------------------------------------------------------------
// Controller packet I/O. The P4Runtime server strips packet_in from packets
// sent to CPU_PORT and prepends packet_out to packets the controller sends.
// P4Runtime specification, section "Packet I/O" and the controller packet
// metadata of P4Info: https://p4.org/p4-spec/p4runtime/main/P4Runtime-Spec.html
// ---------------------------------------------------------------------------

@id(0x04000401)
@name("packet_in")
@controller_header("packet_in")
header packet_in_header_t {
    // Port the packet arrived on.
    port_t ingress_port;
    // Pads the header to a whole byte; always zero.
    @padding bit<7> _pad;
}

@id(0x04000402)
@name("packet_out")
@controller_header("packet_out")
header packet_out_header_t {
    // Port to send the packet out of.
    port_t egress_port;
    // Pads the header to a whole byte; ignored.
    @padding bit<7> _pad;
}

// ---------------------------------------------------------------------------
// Ethernet II, IEEE 802.3 (https://standards.ieee.org/ieee/802.3/10422/);
// EtherType values from https://www.iana.org/assignments/ieee-802-numbers/
// ---------------------------------------------------------------------------

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

// ---------------------------------------------------------------------------
// MPLS label stack entry, RFC 3032 (https://www.rfc-editor.org/rfc/rfc3032).
// The fabric carries exactly one label (bos = 1) over IPv4.
// ---------------------------------------------------------------------------

header mpls_t {
    mpls_label_t label;
    bit<3>       tc;   // traffic class, RFC 5462
    bit<1>       bos;  // bottom of stack
    bit<8>       ttl;
}

// ---------------------------------------------------------------------------
// IPv4, RFC 791 (https://www.rfc-editor.org/rfc/rfc791); DSCP per RFC 2474
// (https://www.rfc-editor.org/rfc/rfc2474), ECN per RFC 3168
// (https://www.rfc-editor.org/rfc/rfc3168).
// ---------------------------------------------------------------------------

header ipv4_t {
    bit<4>      version;
    bit<4>      ihl;             // header length in 4-byte words
    bit<6>      dscp;
    bit<2>      ecn;
    bit<16>     total_len;       // header + payload, bytes
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

// IPv4 options, RFC 791 section 3.1: (ihl - 5) words, at most 40 bytes.
header ipv4_options_t {
    varbit<320> data;
}

// ---------------------------------------------------------------------------
// UDP, RFC 768 (https://www.rfc-editor.org/rfc/rfc768)
// ---------------------------------------------------------------------------

header udp_t {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<16>   len;       // header + payload, bytes
    bit<16>   checksum;  // 0: the sender computed none (IPv4 only)
}

// ---------------------------------------------------------------------------
// TCP, RFC 9293 (https://www.rfc-editor.org/rfc/rfc9293)
// ---------------------------------------------------------------------------

header tcp_t {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<32>   seq_no;
    bit<32>   ack_no;
    bit<4>    data_offset;  // header length in 4-byte words
    bit<4>    res;
    bit<8>    flags;        // CWR ECE URG ACK PSH RST SYN FIN
    bit<16>   window;
    bit<16>   checksum;
    bit<16>   urgent_ptr;
}

// TCP options: (data_offset - 5) words, at most 40 bytes.
header tcp_options_t {
    varbit<320> data;
}

// ---------------------------------------------------------------------------
// In-band Network Telemetry (INT) v2.1, INT-MD over TCP/UDP.
// Specification: https://p4.org/p4-spec/docs/INT_v2_1.pdf
// (source: https://github.com/p4lang/p4-applications/blob/master/telemetry/specs/INT.mdk)
//
// On the wire, right after the TCP/UDP header:
//   shim (4 B) | INT-MD metadata header (12 B) | this hop's metadata |
//   metadata pushed by upstream hops ... | original L4 payload
// ---------------------------------------------------------------------------

// INT shim header for TCP/UDP (spec 5.7.2).
header int_shim_t {
    bit<4>  int_type;  // INT_TYPE_MD for INT-MD
    bit<2>  npt;       // next protocol type; 0 unless a UDP port signals INT
    bit<2>  rsvd;
    // Length of the INT-MD metadata header plus the metadata stack, in
    // 4-byte words. The shim itself is not counted (since INT v2.0).
    bit<8>  len;
    // Depends on npt:
    //   npt = 0: bits 15..8 reserved, bits 7..2 the original DSCP (optional),
    //            bits 1..0 reserved;
    //   npt = 1: the original UDP destination port;
    //   npt = 2: bits 15..8 reserved, bits 7..0 the original IP protocol.
    bit<16> npt_data;
}

// INT-MD metadata header, 12 bytes (spec 5.8).
header int_md_t {
    bit<4>  ver;                    // INT_VERSION
    bit<1>  d;                      // discard: the sink drops the packet
    bit<1>  e;                      // remaining hop count exceeded
    bit<1>  m;                      // MTU exceeded
    bit<12> rsvd;
    bit<5>  hop_ml;                 // words each hop adds
    bit<8>  remaining_hop_cnt;
    // Instruction bitmap, bit 0 is the most significant bit:
    //   0 switch ID, 1 level-1 ingress + egress port IDs, 2 hop latency,
    //   3 queue ID + occupancy, 4 ingress timestamp (8 B),
    //   5 egress timestamp (8 B), 6 level-2 ingress + egress port IDs (8 B),
    //   7 egress port TX utilization, 8 buffer ID + occupancy,
    //   9-14 reserved, 15 checksum complement.
    bit<4>  instruction_mask_0003;  // bits 0..3
    bit<4>  instruction_mask_0407;  // bits 4..7
    bit<4>  instruction_mask_0811;  // bits 8..11
    bit<4>  instruction_mask_1215;  // bits 12..15
    bit<16> domain_specific_id;
    bit<16> ds_instruction;
    bit<16> ds_flags;
}

// Per-hop metadata, one header per instruction bit, in bitmap order.
// Each hop pushes its words in front of those of upstream hops.

// bit 0
header int_switch_id_t {
    int_switch_id_t switch_id;
}

// bit 1
header int_level1_port_ids_t {
    bit<16> ingress_port_id;
    bit<16> egress_port_id;
}

// bit 2
header int_hop_latency_t {
    bit<32> hop_latency;
}

// bit 3
header int_q_occupancy_t {
    bit<8>  q_id;
    bit<24> q_occupancy;
}

// bit 4
header int_ingress_tstamp_t {
    bit<64> ingress_tstamp;
}

// bit 5
header int_egress_tstamp_t {
    bit<64> egress_tstamp;
}

// bit 6
header int_level2_port_ids_t {
    bit<32> ingress_port_id;
    bit<32> egress_port_id;
}

// bit 7
header int_egress_tx_util_t {
    bit<32> egress_port_tx_util;
}

// bit 8
header int_buffer_t {
    bit<8>  buffer_id;
    bit<24> buffer_occupancy;
}

// bit 15: always the last word of a hop's metadata.
header int_checksum_complement_t {
    bit<32> checksum_complement;
}

// Metadata pushed by upstream hops, kept as opaque words.
header int_stack_t {
    varbit<INT_MAX_STACK_BITS> data;
}

// ---------------------------------------------------------------------------
// All headers, in wire order.
// ---------------------------------------------------------------------------

struct headers_t {
    packet_out_header_t       packet_out;
    packet_in_header_t        packet_in;
    ethernet_t                ethernet;
    mpls_t                    mpls;
    ipv4_t                    ipv4;
    ipv4_options_t            ipv4_options;
    udp_t                     udp;
    tcp_t                     tcp;
    tcp_options_t             tcp_options;
    int_shim_t                int_shim;
    int_md_t                  int_md;
    int_switch_id_t           int_switch_id;
    int_level1_port_ids_t     int_level1_port_ids;
    int_hop_latency_t         int_hop_latency;
    int_q_occupancy_t         int_q_occupancy;
    int_ingress_tstamp_t      int_ingress_tstamp;
    int_egress_tstamp_t       int_egress_tstamp;
    int_level2_port_ids_t     int_level2_port_ids;
    int_egress_tx_util_t      int_egress_tx_util;
    int_buffer_t              int_buffer;
    int_checksum_complement_t int_checksum_complement;
    int_stack_t               int_stack;
}

// ---------------------------------------------------------------------------
// Metadata carried from the parser through ingress and egress.
// ---------------------------------------------------------------------------

struct fabric_metadata_t {
    // TCP/UDP ports, zero for other packets (ACL keys, WCMP hash, INT
    // watchlist key).
    l4_port_t     l4_src_port;
    l4_port_t     l4_dst_port;
    // Bytes after the TCP/UDP header (and TCP options).
    bit<16>       l4_payload_len;
    // TCP/UDP length for the pseudo-header, set when INT grows a packet.
    bit<16>       l4_len;
    // Why the packet was dropped, one of DROP_REASON_*.
    drop_reason_t drop_reason;
    // The ACL decided the packet's fate: forwarding does not run.
    bool          skip_forwarding;
    // The packet came from the controller with a packet_out header.
    bool          is_packet_out;
    // int_watchlist recognised the packet as carrying INT.
    bool          int_marked;
    // This hop pushed its INT metadata (L4 checksum must be redone).
    bool          int_inserted;
    // Switch ID configured in int_switch_config.
    int_switch_id_t int_switch_id;
}

#endif  // SOLYX_FABRIC_HEADER_P4
