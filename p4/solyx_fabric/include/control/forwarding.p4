// solyx_fabric: forwarding. MPLS packets follow their path label
// (mpls_forward); IPv4 packets are routed by longest prefix to a next hop
// or to a WCMP group of next hops (ipv4_route with wcmp_selector). Anything
// else, and anything that cannot be forwarded, is dropped with a reason.

#ifndef SOLYX_FABRIC_CONTROL_FORWARDING_P4
#define SOLYX_FABRIC_CONTROL_FORWARDING_P4

control Forwarding(inout headers_t hdr,
                   inout fabric_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {

    @id(0x13000301)
    @name(".FabricIngress.mpls_forward_counter")
    direct_counter(CounterType.packets_and_bytes) mpls_forward_counter;

    @id(0x13000302)
    @name(".FabricIngress.ipv4_route_counter")
    direct_counter(CounterType.packets_and_bytes) ipv4_route_counter;

    // WCMP: a group's members are set_next_hop actions with weights; the
    // member is chosen by a CRC-16 hash of the IPv4 5-tuple (the selector
    // keys of ipv4_route). Sizes count member weights.
    @max_group_size(WCMP_MAX_GROUP_SIZE)
    @selector_size_semantics("sum_of_weights")
    @id(0x11000301)
    @name(".FabricIngress.wcmp_selector")
    action_selector(HashAlgorithm.crc16, WCMP_SELECTOR_SIZE,
                    WCMP_SELECTOR_OUTPUT_WIDTH) wcmp_selector;

    // ---------------------------------------------------------------------
    // MPLS path forwarding: the label names the path; it is not swapped.
    // ---------------------------------------------------------------------

    // Transit hop: out of `port`, label kept, MPLS TTL decremented.
    @id(0x01000301)
    @name(".FabricIngress.mpls_forward_to")
    action mpls_forward_to(port_t port) {
        standard_metadata.egress_spec = port;
        hdr.mpls.ttl = hdr.mpls.ttl - 1;
    }

    // Last hop: pop the label (pipe model: the IPv4 TTL is left as it is)
    // and deliver the IPv4 packet out of `port` to the host at `dmac`.
    @id(0x01000302)
    @name(".FabricIngress.mpls_pop_forward_to")
    action mpls_pop_forward_to(port_t port, mac_addr_t dmac) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        hdr.ethernet.ether_type = ETHERTYPE_IPV4;
        hdr.mpls.setInvalid();
    }

    @id(0x01000303)
    @name(".FabricIngress.mpls_miss")
    action mpls_miss() {
        mark_to_drop(standard_metadata);
        meta.drop_reason = DROP_REASON_MPLS_MISS;
    }

    // ---------------------------------------------------------------------
    // IPv4 routing
    // ---------------------------------------------------------------------

    // Next hop (or WCMP member): out of `port` to the router at `dmac`.
    @id(0x01000304)
    @name(".FabricIngress.set_next_hop")
    action set_next_hop(port_t port, mac_addr_t dmac) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }

    // Null route.
    @id(0x01000305)
    @name(".FabricIngress.route_drop")
    action route_drop() {
        mark_to_drop(standard_metadata);
        meta.drop_reason = DROP_REASON_ROUTE_DROP;
    }

    @id(0x01000306)
    @name(".FabricIngress.route_miss")
    action route_miss() {
        mark_to_drop(standard_metadata);
        meta.drop_reason = DROP_REASON_IPV4_MISS;
    }

    @id(0x02000301)
    @name(".FabricIngress.mpls_forward")
    table mpls_forward {
        key = {
            hdr.mpls.label : exact @name("mpls_label");
        }
        actions = {
            mpls_forward_to;
            mpls_pop_forward_to;
            @defaultonly mpls_miss;
        }
        const default_action = mpls_miss();
        counters = mpls_forward_counter;
        size = MPLS_FORWARD_TABLE_SIZE;
    }

    @id(0x02000302)
    @name(".FabricIngress.ipv4_route")
    table ipv4_route {
        key = {
            hdr.ipv4.dst_addr : lpm @name("ipv4_dst");
            // WCMP hash input; not part of the P4Runtime match key.
            hdr.ipv4.src_addr : selector @name("hash_ipv4_src");
            hdr.ipv4.dst_addr : selector @name("hash_ipv4_dst");
            hdr.ipv4.protocol : selector @name("hash_ip_proto");
            meta.l4_src_port : selector @name("hash_l4_src_port");
            meta.l4_dst_port : selector @name("hash_l4_dst_port");
        }
        actions = {
            set_next_hop;
            route_drop;
            @defaultonly route_miss;
        }
        const default_action = route_miss();
        implementation = wcmp_selector;
        counters = ipv4_route_counter;
        size = IPV4_ROUTE_TABLE_SIZE;
    }

    apply {
        if (hdr.mpls.isValid()) {
            if (hdr.mpls.bos == 1w0) {
                // More than one label: not carried by this fabric.
                mark_to_drop(standard_metadata);
                meta.drop_reason = DROP_REASON_MPLS_LABEL_STACK;
            } else if (hdr.mpls.ttl <= 8w1) {
                mark_to_drop(standard_metadata);
                meta.drop_reason = DROP_REASON_MPLS_TTL_EXPIRED;
            } else {
                mpls_forward.apply();
            }
        } else if (hdr.ipv4.isValid()) {
            if (hdr.ipv4.ttl <= 8w1) {
                mark_to_drop(standard_metadata);
                meta.drop_reason = DROP_REASON_IPV4_TTL_EXPIRED;
            } else {
                ipv4_route.apply();
            }
        } else {
            // v1model would otherwise send the packet out of port 0.
            mark_to_drop(standard_metadata);
            meta.drop_reason = DROP_REASON_UNSUPPORTED_ETHERTYPE;
        }
    }
}

#endif  // SOLYX_FABRIC_CONTROL_FORWARDING_P4
