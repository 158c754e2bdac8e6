"""Program the eBPF fabric switch with p4runtime-shell, a P4Runtime client
Solyx did not write (used by agent/tests/ebpf_switch_shell.rs).

Modes (JSON on stdout, errors on stderr with a non-zero exit):

  program ADDR DEVICE_ID ELECTION_LOW P4INFO PORT DMAC SMAC PREFIX
      push the solyx_fabric pipeline from P4INFO, then insert the egress
      rewrite of PORT (source MAC SMAC), wcmp_selector member 1
      (set_next_hop(PORT, DMAC)) and the ipv4_route PREFIX -> member 1;
      read the route and the member back and print them.

  counters ADDR DEVICE_ID ELECTION_LOW
      read the direct counters of ipv4_route and print their packets.
"""

import json
import os
import sys
import tempfile

import p4runtime_sh.shell as sh


def setup(addr, device_id, election_low, config=None):
    sh.setup(
        device_id=int(device_id),
        grpc_addr=addr,
        election_id=(0, int(election_low)),
        config=config,
        verbose=False,
    )


def program(addr, device_id, election_low, p4info, port, dmac, smac, prefix):
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as empty:
        device_config = empty.name
    try:
        setup(addr, device_id, election_low, sh.FwdPipeConfig(p4info, device_config))
    finally:
        os.unlink(device_config)

    rewrite = sh.TableEntry("egress_rewrite")(action="set_src_mac")
    rewrite.match["egress_port"] = port
    rewrite.action["smac"] = smac
    rewrite.insert()

    member = sh.ActionProfileMember("wcmp_selector")(member_id=1, action="set_next_hop")
    member.action["port"] = port
    member.action["dmac"] = dmac
    member.insert()

    route = sh.TableEntry("ipv4_route")
    route.match["ipv4_dst"] = prefix
    route.member_id = 1
    route.insert()

    routes = []
    for entry in sh.TableEntry("ipv4_route").read():
        msg = entry.msg()
        routes.append({
            "prefix_len": msg.match[0].lpm.prefix_len,
            "value": msg.match[0].lpm.value.hex(),
            "member": msg.action.action_profile_member_id,
        })
    members = [m.msg().member_id for m in sh.ActionProfileMember("wcmp_selector").read()]
    sh.teardown()
    print(json.dumps({"routes": routes, "members": members}))


def counters(addr, device_id, election_low):
    setup(addr, device_id, election_low)
    packets = []
    for c in sh.DirectCounterEntry("ipv4_route_counter").read():
        packets.append(c.msg().data.packet_count)
    sh.teardown()
    print(json.dumps({"route_packets": packets}))


def main():
    modes = {"program": (program, 8), "counters": (counters, 3)}
    if len(sys.argv) < 2 or sys.argv[1] not in modes:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    fn, nargs = modes[sys.argv[1]]
    args = sys.argv[2:]
    if len(args) != nargs:
        print(f"{sys.argv[1]} takes {nargs} arguments, got {len(args)}", file=sys.stderr)
        sys.exit(2)
    fn(*args)


if __name__ == "__main__":
    main()
