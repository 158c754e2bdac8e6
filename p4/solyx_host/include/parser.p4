// solyx_host: parser, checksums and deparser. Ethernet, at most one MPLS
// label over IPv4, TCP/UDP, and an INT-MD shim + header right after the
// L4 header of a packet to an INT sink port (the stack is skipped whole
// by its length; the sink hands it to the agent, see host_ingress.p4).

#ifndef SOLYX_HOST_PARSER_P4
#define SOLYX_HOST_PARSER_P4

parser HostParser(packet_in packet,
                  out headers_t hdr,
                  inout host_metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_MPLS: parse_mpls;
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_mpls {
        packet.extract(hdr.mpls);
        transition select(hdr.mpls.bos) {
            1: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        transition select(hdr.ipv4.protocol) {
            IP_PROTO_UDP: parse_udp;
            IP_PROTO_TCP: parse_tcp;
            default: accept;
        }
    }
    state parse_udp {
        packet.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        transition parse_int;
    }
    state parse_tcp {
        packet.extract(hdr.tcp);
        meta.l4_src_port = hdr.tcp.src_port;
        meta.l4_dst_port = hdr.tcp.dst_port;
        transition parse_int;
    }
    state parse_int {
        int_shim_t shim = packet.lookahead<int_shim_t>();
        transition select(shim.int_type) {
            INT_TYPE_MD: parse_int_md;
            default: accept;
        }
    }
    state parse_int_md {
        packet.extract(hdr.int_shim);
        packet.extract(hdr.int_md);
        packet.extract(hdr.int_stack,
                       ((bit<32>)hdr.int_shim.len - (bit<32>)INT_MD_HEADER_WORDS) * 32);
        transition accept;
    }
}

control HostVerifyChecksum(inout headers_t hdr, inout host_metadata_t meta) {
    apply { }
}

control HostComputeChecksum(inout headers_t hdr, inout host_metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.dscp, hdr.ipv4.ecn,
              hdr.ipv4.total_len, hdr.ipv4.identification, hdr.ipv4.flags,
              hdr.ipv4.frag_offset, hdr.ipv4.ttl, hdr.ipv4.protocol,
              hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control HostDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.mpls);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.udp);
        packet.emit(hdr.tcp);
        packet.emit(hdr.int_shim);
        packet.emit(hdr.int_md);
        packet.emit(hdr.int_stack);
    }
}

#endif  // SOLYX_HOST_PARSER_P4
