// solyx_fabric: the parser, the IPv4 checksum verification, the checksum
// updates (IPv4 header; TCP/UDP when INT grows the payload) and the
// deparser.
//
// INT recognition. A parser cannot consult tables, yet which packets carry
// INT is configured at run time (egress table int_watchlist, on DSCP and L4
// destination port). So the parser treats the first 16 bytes after every
// TCP/UDP header as a *candidate* INT shim + INT-MD header, and the metadata
// stack the candidate's length implies as a candidate stack. int_watchlist
// then decides whether the candidate is INT. A candidate that is not INT is
// never modified and the deparser emits it back in place, so the packet
// leaves byte for byte as it came. A candidate whose lengths do not fit ends
// parsing with error.IntLengthInvalid, which is not a drop reason.

#ifndef SOLYX_FABRIC_PARSER_P4
#define SOLYX_FABRIC_PARSER_P4

parser FabricParser(packet_in packet,
                    out headers_t hdr,
                    inout fabric_metadata_t meta,
                    inout standard_metadata_t standard_metadata) {

    state start {
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        packet.extract(hdr.packet_out);
        transition parse_ethernet;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_MPLS: parse_mpls;
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }

    // One label, then IPv4 (recognised by its version nibble). A deeper
    // label stack is left unparsed; ingress drops it.
    state parse_mpls {
        packet.extract(hdr.mpls);
        transition select(hdr.mpls.bos, packet.lookahead<bit<4>>()) {
            (1w1, 4w4): parse_ipv4;
            default: accept;
        }
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        verify(hdr.ipv4.ihl >= 4w5, error.Ipv4IhlInvalid);
        transition select(hdr.ipv4.ihl) {
            4w5: parse_ipv4_l4;
            default: parse_ipv4_options;
        }
    }

    state parse_ipv4_options {
        packet.extract(hdr.ipv4_options,
                       (bit<32>)((((bit<16>)hdr.ipv4.ihl) - 16w5) << 5));
        transition parse_ipv4_l4;
    }

    // Only the first fragment of a datagram carries the L4 header.
    state parse_ipv4_l4 {
        transition select(hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (13w0, IP_PROTO_TCP): parse_tcp;
            (13w0, IP_PROTO_UDP): parse_udp;
            default: accept;
        }
    }

    state parse_udp {
        packet.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        meta.l4_payload_len = hdr.udp.len - 16w8;
        transition select(meta.l4_payload_len) {
            // Fewer than 16 bytes of payload: no room for shim + INT-MD.
            16w0 &&& 16w0xfff0: accept;
            default: parse_int_candidate;
        }
    }

    state parse_tcp {
        packet.extract(hdr.tcp);
        meta.l4_src_port = hdr.tcp.src_port;
        meta.l4_dst_port = hdr.tcp.dst_port;
        verify(hdr.tcp.data_offset >= 4w5, error.TcpDataOffsetInvalid);
        transition select(hdr.tcp.data_offset) {
            4w5: parse_tcp_payload;
            default: parse_tcp_options;
        }
    }

    // INT over TCP sits after the TCP options in this INT domain.
    state parse_tcp_options {
        packet.extract(hdr.tcp_options,
                       (bit<32>)((((bit<16>)hdr.tcp.data_offset) - 16w5) << 5));
        transition parse_tcp_payload;
    }

    state parse_tcp_payload {
        meta.l4_payload_len = hdr.ipv4.total_len
            - ((((bit<16>)hdr.ipv4.ihl) + ((bit<16>)hdr.tcp.data_offset)) << 2);
        transition select(meta.l4_payload_len) {
            16w0 &&& 16w0xfff0: accept;
            default: parse_int_candidate;
        }
    }

    // Candidate INT shim, INT-MD header and metadata stack (see the top of
    // this file). The stack is bounded by INT_MAX_STACK_WORDS.
    state parse_int_candidate {
        packet.extract(hdr.int_shim);
        packet.extract(hdr.int_md);
        verify(hdr.int_shim.len >= INT_MD_HEADER_WORDS, error.IntLengthInvalid);
        verify(hdr.int_shim.len <= INT_MD_HEADER_WORDS + INT_MAX_STACK_WORDS,
               error.IntLengthInvalid);
        verify((((bit<16>)hdr.int_shim.len) << 2) + 16w4 <= meta.l4_payload_len,
               error.IntLengthInvalid);
        packet.extract(hdr.int_stack,
                       (bit<32>)(((bit<16>)(hdr.int_shim.len - INT_MD_HEADER_WORDS)) << 5));
        transition accept;
    }
}

// Sets standard_metadata.checksum_error when the IPv4 header checksum is
// wrong; ingress drops such packets.
control FabricVerifyChecksum(inout headers_t hdr, inout fabric_metadata_t meta) {
    apply {
        verify_checksum(hdr.ipv4.isValid(),
            {
                hdr.ipv4.version,
                hdr.ipv4.ihl,
                hdr.ipv4.dscp,
                hdr.ipv4.ecn,
                hdr.ipv4.total_len,
                hdr.ipv4.identification,
                hdr.ipv4.flags,
                hdr.ipv4.frag_offset,
                hdr.ipv4.ttl,
                hdr.ipv4.protocol,
                hdr.ipv4.src_addr,
                hdr.ipv4.dst_addr,
                hdr.ipv4_options.data
            },
            hdr.ipv4.hdr_checksum,
            HashAlgorithm.csum16);
    }
}

// Recomputes the IPv4 header checksum (TTL and, with INT, total length
// change) and, when this hop pushed INT metadata, the TCP/UDP checksum over
// the pseudo-header, the L4 header, every INT header and the payload.
// Fields of invalid headers are left out of a checksum. A UDP checksum of
// zero means the sender computed none (RFC 768) and stays zero.
control FabricComputeChecksum(inout headers_t hdr, inout fabric_metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            {
                hdr.ipv4.version,
                hdr.ipv4.ihl,
                hdr.ipv4.dscp,
                hdr.ipv4.ecn,
                hdr.ipv4.total_len,
                hdr.ipv4.identification,
                hdr.ipv4.flags,
                hdr.ipv4.frag_offset,
                hdr.ipv4.ttl,
                hdr.ipv4.protocol,
                hdr.ipv4.src_addr,
                hdr.ipv4.dst_addr,
                hdr.ipv4_options.data
            },
            hdr.ipv4.hdr_checksum,
            HashAlgorithm.csum16);

        update_checksum_with_payload(
            hdr.udp.isValid() && meta.int_inserted && hdr.udp.checksum != 16w0,
            {
                hdr.ipv4.src_addr,
                hdr.ipv4.dst_addr,
                8w0,
                hdr.ipv4.protocol,
                hdr.udp.len,
                hdr.udp.src_port,
                hdr.udp.dst_port,
                hdr.udp.len,
                16w0,
                hdr.int_shim.int_type,
                hdr.int_shim.npt,
                hdr.int_shim.rsvd,
                hdr.int_shim.len,
                hdr.int_shim.npt_data,
                hdr.int_md.ver,
                hdr.int_md.d,
                hdr.int_md.e,
                hdr.int_md.m,
                hdr.int_md.rsvd,
                hdr.int_md.hop_ml,
                hdr.int_md.remaining_hop_cnt,
                hdr.int_md.instruction_mask_0003,
                hdr.int_md.instruction_mask_0407,
                hdr.int_md.instruction_mask_0811,
                hdr.int_md.instruction_mask_1215,
                hdr.int_md.domain_specific_id,
                hdr.int_md.ds_instruction,
                hdr.int_md.ds_flags,
                hdr.int_switch_id.switch_id,
                hdr.int_level1_port_ids.ingress_port_id,
                hdr.int_level1_port_ids.egress_port_id,
                hdr.int_hop_latency.hop_latency,
                hdr.int_q_occupancy.q_id,
                hdr.int_q_occupancy.q_occupancy,
                hdr.int_ingress_tstamp.ingress_tstamp,
                hdr.int_egress_tstamp.egress_tstamp,
                hdr.int_level2_port_ids.ingress_port_id,
                hdr.int_level2_port_ids.egress_port_id,
                hdr.int_egress_tx_util.egress_port_tx_util,
                hdr.int_buffer.buffer_id,
                hdr.int_buffer.buffer_occupancy,
                hdr.int_checksum_complement.checksum_complement,
                hdr.int_stack.data
            },
            hdr.udp.checksum,
            HashAlgorithm.csum16);

        update_checksum_with_payload(
            hdr.tcp.isValid() && meta.int_inserted,
            {
                hdr.ipv4.src_addr,
                hdr.ipv4.dst_addr,
                8w0,
                hdr.ipv4.protocol,
                meta.l4_len,
                hdr.tcp.src_port,
                hdr.tcp.dst_port,
                hdr.tcp.seq_no,
                hdr.tcp.ack_no,
                hdr.tcp.data_offset,
                hdr.tcp.res,
                hdr.tcp.flags,
                hdr.tcp.window,
                16w0,
                hdr.tcp.urgent_ptr,
                hdr.tcp_options.data,
                hdr.int_shim.int_type,
                hdr.int_shim.npt,
                hdr.int_shim.rsvd,
                hdr.int_shim.len,
                hdr.int_shim.npt_data,
                hdr.int_md.ver,
                hdr.int_md.d,
                hdr.int_md.e,
                hdr.int_md.m,
                hdr.int_md.rsvd,
                hdr.int_md.hop_ml,
                hdr.int_md.remaining_hop_cnt,
                hdr.int_md.instruction_mask_0003,
                hdr.int_md.instruction_mask_0407,
                hdr.int_md.instruction_mask_0811,
                hdr.int_md.instruction_mask_1215,
                hdr.int_md.domain_specific_id,
                hdr.int_md.ds_instruction,
                hdr.int_md.ds_flags,
                hdr.int_switch_id.switch_id,
                hdr.int_level1_port_ids.ingress_port_id,
                hdr.int_level1_port_ids.egress_port_id,
                hdr.int_hop_latency.hop_latency,
                hdr.int_q_occupancy.q_id,
                hdr.int_q_occupancy.q_occupancy,
                hdr.int_ingress_tstamp.ingress_tstamp,
                hdr.int_egress_tstamp.egress_tstamp,
                hdr.int_level2_port_ids.ingress_port_id,
                hdr.int_level2_port_ids.egress_port_id,
                hdr.int_egress_tx_util.egress_port_tx_util,
                hdr.int_buffer.buffer_id,
                hdr.int_buffer.buffer_occupancy,
                hdr.int_checksum_complement.checksum_complement,
                hdr.int_stack.data
            },
            hdr.tcp.checksum,
            HashAlgorithm.csum16);
    }
}

// Emits the headers in wire order. packet_out never leaves the switch;
// packet_in is valid only on packets sent to CPU_PORT. This hop's INT
// metadata goes between the INT-MD header and the upstream stack.
control FabricDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.mpls);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.ipv4_options);
        packet.emit(hdr.udp);
        packet.emit(hdr.tcp);
        packet.emit(hdr.tcp_options);
        packet.emit(hdr.int_shim);
        packet.emit(hdr.int_md);
        packet.emit(hdr.int_switch_id);
        packet.emit(hdr.int_level1_port_ids);
        packet.emit(hdr.int_hop_latency);
        packet.emit(hdr.int_q_occupancy);
        packet.emit(hdr.int_ingress_tstamp);
        packet.emit(hdr.int_egress_tstamp);
        packet.emit(hdr.int_level2_port_ids);
        packet.emit(hdr.int_egress_tx_util);
        packet.emit(hdr.int_buffer);
        packet.emit(hdr.int_checksum_complement);
        packet.emit(hdr.int_stack);
    }
}

#endif  // SOLYX_FABRIC_PARSER_P4
