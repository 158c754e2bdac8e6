#!/usr/bin/python3
"""A steady stream of numbered UDP datagrams, to time delivery gaps.

    udpseq.py send DST:PORT --pps 5000 --seconds 10
    udpseq.py recv PORT --seconds 12 --out trace.json

Every datagram carries a sequence number and the sender's wall-clock time
(both namespaces of a testbed share the clock). The sender paces itself in
bursts of one millisecond, so a path change never comes from its own
jitter. The receiver writes what arrived as JSON: the sequence numbers, send
and receive times, and the sender's rate; `analyse` turns that into the
outage around a moment (the failure).
"""

import argparse
import json
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct("!QdI")  # seq, send time, pps
PAYLOAD = 64


def send(dst, pps, seconds):
    host, _, port = dst.rpartition(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pad = b"\0" * (PAYLOAD - HEADER.size)
    per_ms = pps / 1000.0
    start = time.perf_counter()
    end = start + seconds
    seq = 0
    errors = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * 1000.0 * per_ms) + 1
        while seq < due:
            try:
                s.sendto(HEADER.pack(seq, time.time(), pps) + pad, (host, int(port)))
            except OSError:
                errors += 1  # e.g. no route for a moment: the datagram is lost
            seq += 1
        time.sleep(max(0.0, start + (seq / per_ms) / 1000.0 - time.perf_counter()))
    print(json.dumps({"sent": seq, "send_errors": errors, "seconds": seconds, "pps": pps}), flush=True)


def recv(port, seconds, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", int(port)))
    s.settimeout(0.2)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    seqs, sent_at, recv_at = [], [], []
    pps = 0
    end = time.time() + seconds
    print("listening", flush=True)
    while not stop["now"] and time.time() < end:
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        t = time.time()
        if len(data) < HEADER.size:
            continue
        seq, ts, pps = HEADER.unpack_from(data)
        seqs.append(seq)
        sent_at.append(round(ts, 6))
        recv_at.append(round(t, 6))
    with open(out, "w") as f:
        json.dump({"pps": pps, "seq": seqs, "sent": sent_at, "recv": recv_at}, f)


def send_times(seqs, sent, pps):
    """Send time of every sequence number from the first to the last one
    received: the sender's own timestamp where the datagram arrived,
    interpolated between the received neighbours where it did not (the
    sender may fall behind its pace and catch up, so times are taken from
    the datagrams rather than from the rate)."""
    known = dict(zip(seqs, sent))
    order = sorted(known)
    times = {}
    for a, b in zip(order, order[1:]):
        ta, tb = known[a], known[b]
        for q in range(a, b):
            times[q] = ta + (tb - ta) * (q - a) / (b - a)
    times[order[-1]] = known[order[-1]]
    return times


def analyse(trace, at, window=0.2):
    """The delivery gap of a trace around time `at` (a failure).

    Returns a dict: `lost` datagrams sent after `at` that never arrived (up
    to the last one received); `restored_ms`, the time from `at` to the end
    of the outage: delivery is steady again from the first datagram after
    which every datagram sent in the next `window` seconds arrived, and the
    outage ended one datagram interval after the last one lost before it
    (0 when none was lost; None when delivery never became steady again);
    `longest_gap_ms`, the longest pause between arrivals after `at`.
    """
    seqs, sent, recv = trace["seq"], trace["sent"], trace["recv"]
    if not seqs:
        return {"received": 0, "lost": None, "restored_ms": None, "longest_gap_ms": None}
    pps = trace["pps"] or 1
    got = set(seqs)
    times = send_times(seqs, sent, pps)
    after = sorted(q for q, t in times.items() if t >= at)
    lost = [q for q in after if q not in got]
    restored = None
    # The first datagram sent after `at` from which every datagram of the
    # next `window` seconds arrived (and the window is covered).
    missing_after = sorted(lost)
    last_time = max(times.values())
    k = 0
    for q in after:
        t = times[q]
        if t + window > last_time:
            break
        while k < len(missing_after) and missing_after[k] < q:
            k += 1
        if q not in got:
            continue
        if k == len(missing_after) or times[missing_after[k]] > t + window:
            # Delivery is steady from q on: the outage ended with the last
            # datagram lost before it (one datagram interval after it was
            # sent). A sender that stalled lost nothing and adds nothing.
            lost_before = missing_after[:k]
            if lost_before:
                restored = max(0.0, (times[lost_before[-1]] + 1.0 / pps - at) * 1000.0)
            else:
                restored = 0.0
            break
    arrivals = sorted(r for r in recv if r >= at)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    before = [r for r in recv if r < at]
    if before and arrivals:
        gaps.append(arrivals[0] - max(before))
    return {
        "received": len(seqs),
        "lost": len(lost),
        "lost_ms": len(lost) * 1000.0 / pps,
        "restored_ms": restored,
        "longest_gap_ms": max(gaps) * 1000.0 if gaps else None,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("send")
    a.add_argument("dst")
    a.add_argument("--pps", type=int, default=5000)
    a.add_argument("--seconds", type=float, default=10)
    b = sub.add_parser("recv")
    b.add_argument("port")
    b.add_argument("--seconds", type=float, default=12)
    b.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "send":
        send(args.dst, args.pps, args.seconds)
    else:
        recv(args.port, args.seconds, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
