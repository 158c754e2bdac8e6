// solyx_host: the pipeline of a Linux host attached to the fabric, for
// v1model. The host's own network stack is port HOST_STACK_PORT: packets
// it sends enter there and go through HostEgress (labelled paths per
// flowlet, counters); packets from the fabric go through HostIngress
// (label pop, INT sink) and leave towards the stack. The eBPF programs of
// ebpf/host implement it on the host's interfaces (TC egress and ingress).
// See ../README.md.
//
//   p4c --target bmv2 --arch v1model \
//       --p4runtime-files solyx_host.p4info.txtpb main.p4

#include <core.p4>
#include <v1model.p4>

#include "../solyx_fabric/include/define.p4"
#include "../solyx_fabric/include/header.p4"
#include "include/define.p4"
#include "include/parser.p4"
#include "include/control/host_egress.p4"
#include "include/control/host_ingress.p4"

control HostPipeline(inout headers_t hdr,
                     inout host_metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    HostEgress() host_egress;
    HostIngress() host_ingress;
    apply {
        if (standard_metadata.ingress_port == HOST_STACK_PORT) {
            host_egress.apply(hdr, meta, standard_metadata);
        } else {
            host_ingress.apply(hdr, meta, standard_metadata);
        }
    }
}

control HostNoEgress(inout headers_t hdr,
                     inout host_metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    apply { }
}

@pkginfo(name="solyx_host", version="0.1.0")
V1Switch(
    HostParser(),
    HostVerifyChecksum(),
    HostPipeline(),
    HostNoEgress(),
    HostComputeChecksum(),
    HostDeparser()
) main;
