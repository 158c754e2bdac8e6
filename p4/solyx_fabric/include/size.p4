// solyx_fabric: table, action selector and counter sizes. Every size the
// P4Info reports comes from here.

#ifndef SOLYX_FABRIC_SIZE_P4
#define SOLYX_FABRIC_SIZE_P4

// Ingress
#define ACL_TABLE_SIZE               512
#define MPLS_FORWARD_TABLE_SIZE      4096
#define IPV4_ROUTE_TABLE_SIZE        4096

// WCMP action selector: total member weight over all groups, largest group
// (sum of its members' weights) and width of the hash output in bits.
#define WCMP_SELECTOR_SIZE           32w1024
#define WCMP_MAX_GROUP_SIZE          16
#define WCMP_SELECTOR_OUTPUT_WIDTH   32w16

// Egress
#define INT_SWITCH_CONFIG_TABLE_SIZE 1
#define INT_WATCHLIST_TABLE_SIZE     64
#define EGRESS_REWRITE_TABLE_SIZE    512

// Per-port counters: one cell per 9-bit port number.
#define PORT_COUNTER_SIZE            32w512

#endif  // SOLYX_FABRIC_SIZE_P4
