// solyx_host: what the host receives. An MPLS label is popped. A TCP/UDP
// packet to a port of int_sink_port is an INT sink packet: its INT-MD
// shim, header and stack are exported to the collector as a Telemetry
// Report v2.0 (the eBPF implementation hands them to the agent, which
// builds the report) and removed, and the original payload goes to the
// application (int_sink_strip), or the packet ends at the sink
// (int_sink_consume: probes). Malformed INT on a sink port is dropped;
// see ebpf/README.md for the rule and its counters.

#ifndef SOLYX_HOST_CONTROL_HOST_INGRESS_P4
#define SOLYX_HOST_CONTROL_HOST_INGRESS_P4

control HostIngress(inout headers_t hdr,
                    inout host_metadata_t meta,
                    inout standard_metadata_t standard_metadata) {

    @id(0x01000403)
    @name(".HostIngress.int_sink_strip")
    action int_sink_strip() {
        meta.int_sink = true;
        meta.int_consume = false;
    }

    @id(0x01000404)
    @name(".HostIngress.int_sink_consume")
    action int_sink_consume() {
        meta.int_sink = true;
        meta.int_consume = true;
    }

    @id(0x01000405)
    @name(".HostIngress.int_sink_none")
    action int_sink_none() {
        meta.int_sink = false;
    }

    @id(0x02000402)
    @name(".HostIngress.int_sink_port")
    table int_sink_port {
        key = {
            meta.l4_dst_port : exact @name("l4_dst_port");
        }
        actions = {
            int_sink_strip;
            int_sink_consume;
            @defaultonly int_sink_none;
        }
        const default_action = int_sink_none();
        size = INT_SINK_PORT_TABLE_SIZE;
    }

    apply {
        standard_metadata.egress_spec = HOST_STACK_PORT;
        if (hdr.mpls.isValid()) {
            hdr.mpls.setInvalid();
            hdr.ethernet.ether_type = ETHERTYPE_IPV4;
        }
        if (!hdr.ipv4.isValid()) {
            return;
        }
        int_sink_port.apply();
        if (meta.int_sink && hdr.int_md.isValid()) {
            // Report: the eBPF sink hands shim, header and stack to the
            // agent; a BMv2 build would clone to the collector's session.
            hdr.ipv4.total_len = hdr.ipv4.total_len - ((bit<16>)hdr.int_shim.len << 2) - 4;
            if (hdr.udp.isValid()) {
                hdr.udp.len = hdr.udp.len - ((bit<16>)hdr.int_shim.len << 2) - 4;
            }
            hdr.int_shim.setInvalid();
            hdr.int_md.setInvalid();
            hdr.int_stack.setInvalid();
            if (meta.int_consume) {
                mark_to_drop(standard_metadata);
            }
        }
    }
}

#endif  // SOLYX_HOST_CONTROL_HOST_INGRESS_P4
