// solyx_fabric: FabricEgress, the egress pipeline. It only wires the egress
// controls together:
//   1. count the packet on its egress port;
//   2. packets for the controller leave as they are (with packet_in);
//   3. INT transit adds this hop's telemetry to INT packets;
//   4. the source MAC becomes the egress port's MAC, except on packets the
//      controller built itself (packet_out).

#ifndef SOLYX_FABRIC_CONTROL_EGRESS_P4
#define SOLYX_FABRIC_CONTROL_EGRESS_P4

control FabricEgress(inout headers_t hdr,
                     inout fabric_metadata_t meta,
                     inout standard_metadata_t standard_metadata) {

    EgressPortCounters() egress_port_counters;
    IntTransit() int_transit;
    EgressRewrite() egress_rewrite;

    apply {
        egress_port_counters.apply(hdr, meta, standard_metadata);

        if (standard_metadata.egress_port != CPU_PORT) {
            int_transit.apply(hdr, meta, standard_metadata);
            if (!meta.is_packet_out) {
                egress_rewrite.apply(hdr, meta, standard_metadata);
            }
        }
    }
}

#endif  // SOLYX_FABRIC_CONTROL_EGRESS_P4
