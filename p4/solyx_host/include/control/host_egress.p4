// solyx_host: what the host sends. A packet to a destination of
// host_route takes one member (path) of the route's group in
// path_selector: the member pushes the path's MPLS label and sets the next
// hop's MAC. Members are chosen per flowlet: the selector hashes the
// 5-tuple with a flowlet ID that changes only after the flow paused
// longer than FLOWLET_GAP_US, so packets of a burst never take two paths
// (and are never reordered). Counted per destination (host_route_counter),
// per path (path_counter) and per flow bucket (flow_bytes_counter: the
// elephants, read by the controller to pin or move large flows); the
// 5-tuple of the flow that last counted in a bucket is in
// flow_key_register, so the controller knows which flow an elephant is.

#ifndef SOLYX_HOST_CONTROL_HOST_EGRESS_P4
#define SOLYX_HOST_CONTROL_HOST_EGRESS_P4

control HostEgress(inout headers_t hdr,
                   inout host_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {

    // TODO-completeness: p4c would list these two registers in the P4Info
    // (with IDs of its own choosing); the committed P4Info leaves them out
    // on purpose. They are v1model's stand-in for the flowlet state of the
    // path choice, which the eBPF implementation keeps in another form
    // (FLOWLETS: the chosen slot, the group version and the time in ns,
    // no flowlet ID), so the agent could not answer a Read of them as they
    // are declared here, and the controller has no use for them. Listing
    // them would need @id pins and an agent that refuses their Reads.
    register<bit<48>>(HOST_FLOW_BUCKETS) flowlet_last_seen;
    register<bit<16>>(HOST_FLOW_BUCKETS) flowlet_ids;

    // Per flow bucket, the 5-tuple of the flow that last counted in it:
    // source and destination address, protocol, L4 source and destination
    // port, concatenated in that order (32 + 32 + 8 + 16 + 16 bits, the
    // source address in the top bits). One bitstring per cell, which every
    // P4Runtime reader decodes; two flows in one bucket share the bytes of
    // flow_bytes_counter and leave the key of the last one seen.
    @id(0x16000401)
    @name(".HostEgress.flow_key_register")
    register<bit<104>>(HOST_FLOW_BUCKETS) flow_key_register;

    @id(0x13000401)
    @name(".HostEgress.host_route_counter")
    direct_counter(CounterType.packets_and_bytes) host_route_counter;

    @id(0x12000401)
    @name(".HostEgress.path_counter")
    counter(HOST_PATH_COUNT, CounterType.packets_and_bytes) path_counter;

    @id(0x12000402)
    @name(".HostEgress.flow_bytes_counter")
    counter(HOST_FLOW_BUCKETS, CounterType.packets_and_bytes) flow_bytes_counter;

    @max_group_size(HOST_MAX_GROUP_SIZE)
    @selector_size_semantics("sum_of_weights")
    @id(0x11000401)
    @name(".HostEgress.path_selector")
    action_selector(HashAlgorithm.crc16, HOST_SELECTOR_SIZE,
                    HOST_SELECTOR_OUTPUT_WIDTH) path_selector;

    // One path: out of `port` with `label` pushed, to the fabric switch at
    // `dmac`; counted as path `path_id`.
    @id(0x01000401)
    @name(".HostEgress.set_path")
    action set_path(port_t port, mpls_label_t label, mac_addr_t dmac,
                    bit<8> path_id) {
        standard_metadata.egress_spec = port;
        hdr.mpls.setValid();
        hdr.mpls.label = label;
        hdr.mpls.tc = 0;
        hdr.mpls.bos = 1;
        hdr.mpls.ttl = 64;
        hdr.ethernet.ether_type = ETHERTYPE_MPLS;
        hdr.ethernet.dst_addr = dmac;
        meta.path_id = path_id;
    }

    // No labelled path: the host's own route (unlabelled IPv4).
    @id(0x01000402)
    @name(".HostEgress.no_path")
    action no_path() {
        meta.path_id = 0;
    }

    @id(0x02000401)
    @name(".HostEgress.host_route")
    table host_route {
        key = {
            hdr.ipv4.dst_addr : lpm @name("ipv4_dst");
            // Path choice: the 5-tuple and the flowlet.
            hdr.ipv4.src_addr : selector @name("hash_ipv4_src");
            hdr.ipv4.dst_addr : selector @name("hash_ipv4_dst");
            hdr.ipv4.protocol : selector @name("hash_ip_proto");
            meta.l4_src_port : selector @name("hash_l4_src_port");
            meta.l4_dst_port : selector @name("hash_l4_dst_port");
            meta.flowlet_id : selector @name("hash_flowlet_id");
        }
        actions = {
            set_path;
            @defaultonly no_path;
        }
        const default_action = no_path();
        implementation = path_selector;
        counters = host_route_counter;
        size = HOST_ROUTE_TABLE_SIZE;
    }

    apply {
        if (!hdr.ipv4.isValid()) {
            return;
        }
        hash(meta.flow_bucket, HashAlgorithm.crc32, 32w0,
             { hdr.ipv4.src_addr, hdr.ipv4.dst_addr, hdr.ipv4.protocol,
               meta.l4_src_port, meta.l4_dst_port },
             32w4096);
        bit<48> last;
        flowlet_last_seen.read(last, meta.flow_bucket);
        flowlet_ids.read(meta.flowlet_id, meta.flow_bucket);
        bit<48> now = standard_metadata.ingress_global_timestamp;
        if (now - last > FLOWLET_GAP_US) {
            meta.flowlet_id = meta.flowlet_id + 1;
            flowlet_ids.write(meta.flow_bucket, meta.flowlet_id);
        }
        flowlet_last_seen.write(meta.flow_bucket, now);
        if (host_route.apply().hit) {
            path_counter.count((bit<32>)meta.path_id);
            flow_bytes_counter.count(meta.flow_bucket);
            flow_key_register.write(meta.flow_bucket,
                                    hdr.ipv4.src_addr ++ hdr.ipv4.dst_addr ++
                                    hdr.ipv4.protocol ++ meta.l4_src_port ++
                                    meta.l4_dst_port);
        } else {
            standard_metadata.egress_spec = standard_metadata.ingress_port;
        }
    }
}

#endif  // SOLYX_HOST_CONTROL_HOST_EGRESS_P4
