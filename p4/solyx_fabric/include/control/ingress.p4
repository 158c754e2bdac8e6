// solyx_fabric: FabricIngress, the ingress pipeline. It only wires the
// ingress controls together:
//   1. count the packet on its ingress port;
//   2. a packet from the controller (packet_out) skips ACL and forwarding;
//      a malformed packet or one with a bad IPv4 checksum is dropped;
//   3. the ACL punts, drops or permits;
//   4. forwarding (MPLS path or IPv4 route) picks the egress port and the
//      next hop's MAC, or drops;
//   5. packet I/O sends packet-outs on their way and gives packets bound for
//      the controller their packet_in header.

#ifndef SOLYX_FABRIC_CONTROL_INGRESS_P4
#define SOLYX_FABRIC_CONTROL_INGRESS_P4

control FabricIngress(inout headers_t hdr,
                      inout fabric_metadata_t meta,
                      inout standard_metadata_t standard_metadata) {

    IngressPortCounters() ingress_port_counters;
    Acl() acl;
    Forwarding() forwarding;
    PacketIo() packet_io;

    apply {
        ingress_port_counters.apply(hdr, meta, standard_metadata);

        if (hdr.packet_out.isValid()) {
            meta.is_packet_out = true;
        } else if (standard_metadata.parser_error == error.Ipv4IhlInvalid
                   || standard_metadata.parser_error == error.TcpDataOffsetInvalid) {
            mark_to_drop(standard_metadata);
            meta.drop_reason = DROP_REASON_MALFORMED;
        } else if (standard_metadata.checksum_error == 1w1) {
            mark_to_drop(standard_metadata);
            meta.drop_reason = DROP_REASON_IPV4_CHECKSUM;
        } else {
            acl.apply(hdr, meta, standard_metadata);
            if (!meta.skip_forwarding) {
                forwarding.apply(hdr, meta, standard_metadata);
            }
        }

        packet_io.apply(hdr, meta, standard_metadata);
    }
}

#endif  // SOLYX_FABRIC_CONTROL_INGRESS_P4
