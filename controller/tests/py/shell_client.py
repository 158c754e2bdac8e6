"""Drive a P4Runtime server with p4runtime-shell, a client Solyx did not write.

Modes (JSON on stdout, errors on stderr with a non-zero exit):

  interop ADDR DEVICE_ID ELECTION_LOW P4INFO
      push the pipeline from P4INFO, insert one mpls_forward entry and one
      ACL entry, read them back and print what was read.

  bench ADDR DEVICE_ID ELECTION_LOW COUNT FIRST_LABEL
      insert COUNT mpls_forward entries one by one, the way a p4runtime-shell
      user writes them, and print the elapsed time.
"""

import json
import os
import sys
import tempfile
import time

import p4runtime_sh.shell as sh


def setup(addr, device_id, election_low, config=None):
    sh.setup(
        device_id=int(device_id),
        grpc_addr=addr,
        election_id=(0, int(election_low)),
        config=config,
        verbose=False,
    )


def interop(addr, device_id, election_low, p4info):
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as empty:
        device_config = empty.name
    try:
        setup(addr, device_id, election_low, sh.FwdPipeConfig(p4info, device_config))
    finally:
        os.unlink(device_config)

    te = sh.TableEntry("mpls_forward")(action="mpls_out")
    te.match["mpls_label"] = "100"
    te.action["port"] = "7"
    te.action["pop"] = "1"
    te.insert()

    acl = sh.TableEntry("acl")(action="punt")
    acl.match["eth_type"] = "0x0800&&&0xffff"
    acl.priority = 5
    acl.insert()

    read = []
    for name in ("mpls_forward", "acl"):
        for entry in sh.TableEntry(name).read():
            msg = entry.msg()
            read.append({
                "table": name,
                "match": {str(m.field_id): m.WhichOneof("field_match_type") for m in msg.match},
                "values": [m.exact.value.hex() or m.ternary.value.hex() for m in msg.match],
                "priority": msg.priority,
            })
    sh.teardown()
    print(json.dumps({"read": read}))


def bench(addr, device_id, election_low, count, first_label):
    setup(addr, device_id, election_low)
    count, first = int(count), int(first_label)
    start = time.perf_counter()
    for label in range(first, first + count):
        te = sh.TableEntry("mpls_forward")(action="mpls_out")
        te.match["mpls_label"] = str(label)
        te.action["port"] = "1"
        te.action["pop"] = "0"
        te.insert()
    elapsed = time.perf_counter() - start
    sh.teardown()
    print(json.dumps({"entries": count, "seconds": elapsed}))


def main():
    modes = {"interop": (interop, 4), "bench": (bench, 5)}
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
