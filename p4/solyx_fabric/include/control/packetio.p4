// solyx_fabric: controller packet I/O, applied last in ingress.
//
// Packet-out: a packet from CPU_PORT starts with the packet_out header; it
// leaves on packet_out.egress_port without forwarding or ACL (FabricIngress
// skips them) and without the header.
// Packet-in: a packet ingress sends to CPU_PORT (ACL punt_to_cpu) gets the
// packet_in header carrying the port it arrived on.

#ifndef SOLYX_FABRIC_CONTROL_PACKETIO_P4
#define SOLYX_FABRIC_CONTROL_PACKETIO_P4

control PacketIo(inout headers_t hdr,
                 inout fabric_metadata_t meta,
                 inout standard_metadata_t standard_metadata) {
    apply {
        if (hdr.packet_out.isValid()) {
            standard_metadata.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else if (standard_metadata.egress_spec == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = standard_metadata.ingress_port;
            hdr.packet_in._pad = 7w0;
        }
    }
}

#endif  // SOLYX_FABRIC_CONTROL_PACKETIO_P4
