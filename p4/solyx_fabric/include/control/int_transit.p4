// solyx_fabric: INT-MD transit hop (INT v2.1, INT over TCP/UDP), in egress.
// Specification: https://p4.org/p4-spec/docs/INT_v2_1.pdf
//
// int_watchlist decides, from DSCP and L4 destination port, whether the
// candidate INT headers the parser found after TCP/UDP are INT. For an INT-MD
// packet this hop then, per the spec (section 5.8):
//   - with remaining_hop_cnt == 0, adds nothing and sets the E bit;
//   - when it cannot add exactly hop_ml words (reserved instruction bits
//     9-14 set, domain-specific metadata it does not know, a stack longer
//     than the parser's bound, or a shim length that would overflow), adds
//     nothing and leaves the header as it is;
//   - when the added words would exceed FABRIC_IP_MTU, adds nothing and
//     sets the M bit;
//   - otherwise pushes its metadata, in instruction-bit order, in front of
//     the upstream hops' metadata, decrements remaining_hop_cnt and grows
//     the shim length, the IPv4 total length and the UDP length. The
//     TCP/UDP checksum is then recomputed (FabricComputeChecksum), so a
//     requested checksum complement is sent as the reserved all-ones value.
//
// Metadata values on v1model/BMv2: switch ID from int_switch_config;
// level-1 port IDs are the 9-bit P4Runtime port numbers; hop latency is
// deq_timedelta (time spent in the queue, microseconds); the queue ID is 0
// (one queue per port) and its occupancy enq_qdepth (packets); timestamps
// are the 48-bit global timestamps (microseconds) widened to 64 bits.
// Level-2 port IDs, TX utilization and buffer occupancy are not available
// and are sent as all ones.

#ifndef SOLYX_FABRIC_CONTROL_INT_TRANSIT_P4
#define SOLYX_FABRIC_CONTROL_INT_TRANSIT_P4

control IntTransit(inout headers_t hdr,
                   inout fabric_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {

    @id(0x13000501)
    @name(".FabricEgress.int_switch_config_counter")
    direct_counter(CounterType.packets_and_bytes) int_switch_config_counter;

    @id(0x13000502)
    @name(".FabricEgress.int_watchlist_counter")
    direct_counter(CounterType.packets_and_bytes) int_watchlist_counter;

    // The switch ID this hop reports (instruction bit 0).
    @id(0x01000501)
    @name(".FabricEgress.int_set_switch_id")
    action int_set_switch_id(int_switch_id_t switch_id) {
        meta.int_switch_id = switch_id;
    }

    // The packet carries INT after its TCP/UDP header.
    @id(0x01000502)
    @name(".FabricEgress.int_mark_int")
    action int_mark_int() {
        meta.int_marked = true;
    }

    // The packet does not carry INT (the default; also usable in entries to
    // exclude traffic that a broader entry would mark).
    @id(0x01000503)
    @name(".FabricEgress.int_no_mark")
    action int_no_mark() {
        meta.int_marked = false;
    }

    // Keyless: the control plane sets the default action to
    // int_set_switch_id(<this switch's INT ID>).
    @id(0x02000501)
    @name(".FabricEgress.int_switch_config")
    table int_switch_config {
        actions = {
            @defaultonly int_set_switch_id;
        }
        default_action = int_set_switch_id(INT_UNKNOWN_SWITCH_ID);
        counters = int_switch_config_counter;
        size = INT_SWITCH_CONFIG_TABLE_SIZE;
    }

    // INT detection: entries match the DSCP value (or bit) and/or the L4
    // destination port that the INT domain uses to signal INT.
    @id(0x02000502)
    @name(".FabricEgress.int_watchlist")
    table int_watchlist {
        key = {
            hdr.ipv4.dscp : ternary @name("ipv4_dscp");
            meta.l4_dst_port : ternary @name("l4_dst_port");
        }
        actions = {
            int_mark_int;
            int_no_mark;
        }
        const default_action = int_no_mark();
        counters = int_watchlist_counter;
        size = INT_WATCHLIST_TABLE_SIZE;
    }

    apply {
        meta.int_marked = false;
        meta.int_inserted = false;

        if (hdr.ipv4.isValid() && hdr.int_shim.isValid() && hdr.int_md.isValid()) {
            int_watchlist.apply();
        }

        if (meta.int_marked
                && hdr.int_shim.int_type == INT_TYPE_MD
                && hdr.int_md.ver == INT_VERSION) {
            if (hdr.int_md.remaining_hop_cnt == 8w0) {
                hdr.int_md.e = 1w1;
            } else {
                // Words this hop adds for the instructions it implements:
                // bits 0-3, 7, 8 and 15 take one word, bits 4-6 two.
                bit<5> words = ((bit<5>)hdr.int_md.instruction_mask_0003[3:3])
                    + ((bit<5>)hdr.int_md.instruction_mask_0003[2:2])
                    + ((bit<5>)hdr.int_md.instruction_mask_0003[1:1])
                    + ((bit<5>)hdr.int_md.instruction_mask_0003[0:0])
                    + (((bit<5>)hdr.int_md.instruction_mask_0407[3:3]) << 1)
                    + (((bit<5>)hdr.int_md.instruction_mask_0407[2:2]) << 1)
                    + (((bit<5>)hdr.int_md.instruction_mask_0407[1:1]) << 1)
                    + ((bit<5>)hdr.int_md.instruction_mask_0407[0:0])
                    + ((bit<5>)hdr.int_md.instruction_mask_0811[3:3])
                    + ((bit<5>)hdr.int_md.instruction_mask_1215[0:0]);
                bool can_insert = hdr.int_stack.isValid()
                    && hdr.int_md.instruction_mask_0811[2:0] == 3w0
                    && hdr.int_md.instruction_mask_1215[3:1] == 3w0
                    && words != 5w0
                    && hdr.int_md.hop_ml == words
                    && hdr.int_shim.len <= 8w255 - ((bit<8>)words);
                if (can_insert) {
                    bit<16> bytes = ((bit<16>)words) << 2;
                    if (hdr.ipv4.total_len > FABRIC_IP_MTU - bytes) {
                        hdr.int_md.m = 1w1;
                    } else {
                        int_switch_config.apply();

                        // bit 0: switch ID
                        if (hdr.int_md.instruction_mask_0003[3:3] == 1w1) {
                            hdr.int_switch_id.setValid();
                            hdr.int_switch_id.switch_id = meta.int_switch_id;
                        }
                        // bit 1: level-1 ingress and egress port IDs
                        if (hdr.int_md.instruction_mask_0003[2:2] == 1w1) {
                            hdr.int_level1_port_ids.setValid();
                            hdr.int_level1_port_ids.ingress_port_id =
                                (bit<16>)standard_metadata.ingress_port;
                            hdr.int_level1_port_ids.egress_port_id =
                                (bit<16>)standard_metadata.egress_port;
                        }
                        // bit 2: hop latency
                        if (hdr.int_md.instruction_mask_0003[1:1] == 1w1) {
                            hdr.int_hop_latency.setValid();
                            hdr.int_hop_latency.hop_latency = standard_metadata.deq_timedelta;
                        }
                        // bit 3: queue ID and occupancy
                        if (hdr.int_md.instruction_mask_0003[0:0] == 1w1) {
                            hdr.int_q_occupancy.setValid();
                            // One queue per port in BMv2 (v1model has no
                            // queue ID in standard_metadata).
                            hdr.int_q_occupancy.q_id = 8w0;
                            hdr.int_q_occupancy.q_occupancy =
                                (bit<24>)standard_metadata.enq_qdepth;
                        }
                        // bit 4: ingress timestamp
                        if (hdr.int_md.instruction_mask_0407[3:3] == 1w1) {
                            hdr.int_ingress_tstamp.setValid();
                            hdr.int_ingress_tstamp.ingress_tstamp =
                                (bit<64>)standard_metadata.ingress_global_timestamp;
                        }
                        // bit 5: egress timestamp
                        if (hdr.int_md.instruction_mask_0407[2:2] == 1w1) {
                            hdr.int_egress_tstamp.setValid();
                            hdr.int_egress_tstamp.egress_tstamp =
                                (bit<64>)standard_metadata.egress_global_timestamp;
                        }
                        // bit 6: level-2 port IDs (no logical ports here)
                        if (hdr.int_md.instruction_mask_0407[1:1] == 1w1) {
                            hdr.int_level2_port_ids.setValid();
                            hdr.int_level2_port_ids.ingress_port_id = INT_ALL_ONES_32;
                            hdr.int_level2_port_ids.egress_port_id = INT_ALL_ONES_32;
                        }
                        // bit 7: egress port TX utilization (not available)
                        if (hdr.int_md.instruction_mask_0407[0:0] == 1w1) {
                            hdr.int_egress_tx_util.setValid();
                            hdr.int_egress_tx_util.egress_port_tx_util = INT_ALL_ONES_32;
                        }
                        // bit 8: buffer ID and occupancy (not available)
                        if (hdr.int_md.instruction_mask_0811[3:3] == 1w1) {
                            hdr.int_buffer.setValid();
                            hdr.int_buffer.buffer_id = 8w0xff;
                            hdr.int_buffer.buffer_occupancy = 24w0xffffff;
                        }
                        // bit 15: checksum complement; the L4 checksum is
                        // recomputed instead, so the reserved value is sent.
                        if (hdr.int_md.instruction_mask_1215[0:0] == 1w1) {
                            hdr.int_checksum_complement.setValid();
                            hdr.int_checksum_complement.checksum_complement = INT_ALL_ONES_32;
                        }

                        hdr.int_md.remaining_hop_cnt = hdr.int_md.remaining_hop_cnt - 8w1;
                        hdr.int_shim.len = hdr.int_shim.len + (bit<8>)words;
                        hdr.ipv4.total_len = hdr.ipv4.total_len + bytes;
                        if (hdr.udp.isValid()) {
                            hdr.udp.len = hdr.udp.len + bytes;
                        }
                        meta.l4_len = hdr.ipv4.total_len - (((bit<16>)hdr.ipv4.ihl) << 2);
                        meta.int_inserted = true;
                    }
                }
            }
        }
    }
}

#endif  // SOLYX_FABRIC_CONTROL_INT_TRANSIT_P4
