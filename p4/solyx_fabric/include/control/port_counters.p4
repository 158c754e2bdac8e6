// solyx_fabric: per-port packet and byte counters, indexed by the 9-bit
// port number. The feature has two halves, because a counter is updated in
// the pipeline that sees the packet: IngressPortCounters counts every packet
// received (before any drop), EgressPortCounters every packet transmitted
// (as it leaves, INT metadata and packet_in header included).

#ifndef SOLYX_FABRIC_CONTROL_PORT_COUNTERS_P4
#define SOLYX_FABRIC_CONTROL_PORT_COUNTERS_P4

control IngressPortCounters(inout headers_t hdr,
                            inout fabric_metadata_t meta,
                            inout standard_metadata_t standard_metadata) {

    @id(0x12000101)
    @name(".FabricIngress.ingress_port_counter")
    counter(PORT_COUNTER_SIZE, CounterType.packets_and_bytes) ingress_port_counter;

    apply {
        ingress_port_counter.count((bit<32>)standard_metadata.ingress_port);
    }
}

control EgressPortCounters(inout headers_t hdr,
                           inout fabric_metadata_t meta,
                           inout standard_metadata_t standard_metadata) {

    @id(0x12000102)
    @name(".FabricEgress.egress_port_counter")
    counter(PORT_COUNTER_SIZE, CounterType.packets_and_bytes) egress_port_counter;

    apply {
        egress_port_counter.count((bit<32>)standard_metadata.egress_port);
    }
}

#endif  // SOLYX_FABRIC_CONTROL_PORT_COUNTERS_P4
