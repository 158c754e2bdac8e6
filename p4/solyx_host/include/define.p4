// solyx_host: constants, sizes and the metadata the controls share. The
// headers and the fabric-wide types come from solyx_fabric.

#ifndef SOLYX_HOST_DEFINE_P4
#define SOLYX_HOST_DEFINE_P4

// The host's network stack, as a port of the pipeline.
const port_t HOST_STACK_PORT = 9w254;

#define HOST_ROUTE_TABLE_SIZE 1024
// Sum of member weights per group and over all groups.
#define HOST_MAX_GROUP_SIZE 16
#define HOST_SELECTOR_SIZE 4096
#define HOST_SELECTOR_OUTPUT_WIDTH 16
// Paths counted: path IDs are below this.
#define HOST_PATH_COUNT 256
// Flow buckets of the flowlet state and of the elephant counter.
#define HOST_FLOW_BUCKETS 4096
#define INT_SINK_PORT_TABLE_SIZE 64

// A flow idle this long (µs) may take another path: the default of
// `solyx-agent host --flowlet-gap`, a device setting, not a table.
const bit<48> FLOWLET_GAP_US = 500;

// Most INT hops the sink accepts in a stack.
const bit<8> SINK_MAX_HOPS = 16;

// Solyx path probes: UDP to this port, INT-MD after the UDP header, then
// a probe body (see ebpf/README.md, "Probes").
const l4_port_t PROBE_UDP_PORT = 7777;

struct host_metadata_t {
    l4_port_t l4_src_port;
    l4_port_t l4_dst_port;
    // Hash of the 5-tuple, folded to HOST_FLOW_BUCKETS.
    bit<32>   flow_bucket;
    // Changes when the flow has paused longer than the flowlet gap: the
    // path selector hashes it with the 5-tuple, so a new flowlet may take
    // another member.
    bit<16>   flowlet_id;
    bit<8>    path_id;
    bool      int_sink;
    bool      int_consume;
}

#endif  // SOLYX_HOST_DEFINE_P4
