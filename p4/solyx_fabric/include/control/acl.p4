// solyx_fabric: the ingress ACL, applied before forwarding on the headers
// as they arrived. An entry punts the packet to the controller, drops it or
// permits it (forwarding then decides where it goes). Entries are ternary
// and carry a priority; a miss permits.

#ifndef SOLYX_FABRIC_CONTROL_ACL_P4
#define SOLYX_FABRIC_CONTROL_ACL_P4

control Acl(inout headers_t hdr,
            inout fabric_metadata_t meta,
            inout standard_metadata_t standard_metadata) {

    @id(0x13000201)
    @name(".FabricIngress.acl_counter")
    direct_counter(CounterType.packets_and_bytes) acl_counter;

    // Send the packet to the controller instead of forwarding it.
    @id(0x01000201)
    @name(".FabricIngress.punt_to_cpu")
    action punt_to_cpu() {
        standard_metadata.egress_spec = CPU_PORT;
        meta.skip_forwarding = true;
    }

    @id(0x01000202)
    @name(".FabricIngress.drop")
    action drop() {
        mark_to_drop(standard_metadata);
        meta.drop_reason = DROP_REASON_ACL_DENY;
        meta.skip_forwarding = true;
    }

    // Let forwarding decide.
    @id(0x01000203)
    @name(".FabricIngress.permit")
    action permit() {
    }

    @id(0x02000201)
    @name(".FabricIngress.acl")
    table acl {
        key = {
            standard_metadata.ingress_port : ternary @name("ingress_port");
            hdr.ethernet.src_addr : ternary @name("eth_src");
            hdr.ethernet.dst_addr : ternary @name("eth_dst");
            hdr.ethernet.ether_type : ternary @name("eth_type");
            hdr.ipv4.src_addr : ternary @name("ipv4_src");
            hdr.ipv4.dst_addr : ternary @name("ipv4_dst");
            hdr.ipv4.protocol : ternary @name("ip_proto");
            meta.l4_src_port : ternary @name("l4_src_port");
            meta.l4_dst_port : ternary @name("l4_dst_port");
        }
        actions = {
            punt_to_cpu;
            drop;
            permit;
        }
        default_action = permit();
        counters = acl_counter;
        size = ACL_TABLE_SIZE;
    }

    apply {
        acl.apply();
    }
}

#endif  // SOLYX_FABRIC_CONTROL_ACL_P4
