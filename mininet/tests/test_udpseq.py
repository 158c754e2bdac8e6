#!/usr/bin/python3
"""udpseq.analyse: the outage measured from what a receiver recorded.

Synthetic traces of a 1000/s stream with a failure at t = 1 s: a clean
80 ms outage, a second burst of losses that moves the end of the outage,
a sender that stalled without losing anything, and a stream that never
became steady again. No root, no network.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import udpseq  # noqa: E402


def trace(keep, sent_at=lambda q: q / 1000.0, n=2000):
    seqs = [q for q in range(n) if keep(q)]
    sent = [sent_at(q) for q in seqs]
    return {"pps": 1000, "seq": seqs, "sent": sent, "recv": [t + 0.001 for t in sent]}


class Analyse(unittest.TestCase):
    def test_an_outage_ends_after_the_last_lost_datagram(self):
        r = udpseq.analyse(trace(lambda q: not 1000 <= q < 1080), 1.0)
        self.assertEqual(r["lost"], 80)
        self.assertAlmostEqual(r["restored_ms"], 80.0, places=3)
        self.assertAlmostEqual(r["longest_gap_ms"], 81.0, places=3)

    def test_losses_inside_the_window_extend_the_outage(self):
        r = udpseq.analyse(trace(lambda q: not (1000 <= q < 1080 or (1200 <= q < 1210 and q % 2))), 1.0)
        self.assertEqual(r["lost"], 85)
        self.assertAlmostEqual(r["restored_ms"], 210.0, places=3)

    def test_a_stalled_sender_is_no_outage(self):
        # Datagrams 1000..1499 all sent at 1.5 s, none lost.
        r = udpseq.analyse(trace(lambda q: True, lambda q: 1.5 if 1000 <= q < 1500 else q / 1000.0), 1.0)
        self.assertEqual((r["lost"], r["restored_ms"]), (0, 0.0))

    def test_delivery_that_never_steadies_is_not_restored(self):
        r = udpseq.analyse(trace(lambda q: q < 1000 or q % 2), 1.0)
        self.assertEqual(r["lost"], 500)
        self.assertIsNone(r["restored_ms"])


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    # The same closing line as cargo's, so the test command can add it up.
    print(f"test result: {'ok' if failed == 0 else 'FAILED'}. {passed} passed; {failed} failed; "
          f"{len(result.skipped)} ignored")
    sys.exit(1 if failed else 0)
