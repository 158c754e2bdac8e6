// solyx_fabric: egress MAC rewrite. Every packet leaving a fabric port gets
// that port's MAC address as source. The destination MAC was set by the
// forwarding action that chose the next hop. A port without an entry keeps
// the source MAC the packet had.

#ifndef SOLYX_FABRIC_CONTROL_EGRESS_REWRITE_P4
#define SOLYX_FABRIC_CONTROL_EGRESS_REWRITE_P4

control EgressRewrite(inout headers_t hdr,
                      inout fabric_metadata_t meta,
                      inout standard_metadata_t standard_metadata) {

    @id(0x13000601)
    @name(".FabricEgress.egress_rewrite_counter")
    direct_counter(CounterType.packets_and_bytes) egress_rewrite_counter;

    @id(0x01000601)
    @name(".FabricEgress.set_src_mac")
    action set_src_mac(mac_addr_t smac) {
        hdr.ethernet.src_addr = smac;
    }

    @id(0x01000602)
    @name(".FabricEgress.keep_src_mac")
    action keep_src_mac() {
    }

    @id(0x02000601)
    @name(".FabricEgress.egress_rewrite")
    table egress_rewrite {
        key = {
            standard_metadata.egress_port : exact @name("egress_port");
        }
        actions = {
            set_src_mac;
            @defaultonly keep_src_mac;
        }
        default_action = keep_src_mac();
        counters = egress_rewrite_counter;
        size = EGRESS_REWRITE_TABLE_SIZE;
    }

    apply {
        egress_rewrite.apply();
    }
}

#endif  // SOLYX_FABRIC_CONTROL_EGRESS_REWRITE_P4
