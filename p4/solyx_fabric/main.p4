// solyx_fabric: the fabric switch pipeline for v1model (BMv2
// simple_switch_grpc). This file only includes the parts, in dependency
// order, and instantiates V1Switch. See ../README.md.
//
//   p4c --target bmv2 --arch v1model \
//       --p4runtime-files solyx_fabric.p4info.txtpb main.p4

#include <core.p4>
#include <v1model.p4>

#include "include/size.p4"
#include "include/define.p4"
#include "include/header.p4"
#include "include/parser.p4"
#include "include/control/port_counters.p4"
#include "include/control/acl.p4"
#include "include/control/forwarding.p4"
#include "include/control/packetio.p4"
#include "include/control/int_transit.p4"
#include "include/control/egress_rewrite.p4"
#include "include/control/ingress.p4"
#include "include/control/egress.p4"

@pkginfo(name="solyx_fabric", version="0.1.0")
V1Switch(
    FabricParser(),
    FabricVerifyChecksum(),
    FabricIngress(),
    FabricEgress(),
    FabricComputeChecksum(),
    FabricDeparser()
) main;
