#!/usr/bin/python3
"""Tests of the Mininet testbed builder, run as root with Debian's python3.

They build a real two-switch line in Mininet with solyx-agent switches,
check what a user relies on (agents answer, links shaped at the file's
rates, hosts addressed), build the shipped fat-tree and GEANT files, and
check that a clean stop and a crash both leave nothing behind. Without root they skip, unless SOLYX_REQUIRE_ROOT=1.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import solyx_net  # noqa: E402

LINE = os.path.join(HERE, "line.yaml")
PREFIX = f"sxu{os.getpid() % 100}"


def links_with_prefix(prefix):
    return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(prefix))


def need_root():
    if os.geteuid() == 0:
        return
    if os.environ.get("SOLYX_REQUIRE_ROOT") == "1":
        raise AssertionError("SOLYX_REQUIRE_ROOT=1 but not running as root")
    raise unittest.SkipTest("needs root (Mininet creates namespaces and links)")


class TopologyFileErrors(unittest.TestCase):
    """Broken files are refused with the place named; nothing is built."""

    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def assertRefused(self, text, *parts):
        path = self.write(text)
        with self.assertRaises(solyx_net.TopologyError) as ctx:
            solyx_net.load_topology(path)
        for part in (path,) + parts:
            self.assertIn(part, str(ctx.exception))

    def test_unknown_device_in_link(self):
        self.assertRefused(
            "devices:\n  - {name: s1, role: fabric, device_id: 1}\nlinks:\n  - [s1:1, s9:1]\n",
            "links[0].b", "'s9' is not declared")

    def test_port_linked_twice(self):
        self.assertRefused(
            "devices:\n  - {name: s1, role: fabric, device_id: 1}\n"
            "  - {name: s2, role: fabric, device_id: 2}\nlinks:\n  - [s1:1, s2:1]\n  - [s1:1, s2:2]\n",
            "links[1].a", "already linked")

    def test_bad_bandwidth(self):
        self.assertRefused(
            "devices:\n  - {name: s1, role: fabric, device_id: 1}\n"
            "  - {name: s2, role: fabric, device_id: 2}\n"
            "links:\n  - {a: s1:1, b: s2:1, bandwidth: fast}\n",
            "links[0].bandwidth", "'fast'")

    def test_host_without_address(self):
        self.assertRefused("devices:\n  - {name: h1, role: host, device_id: 5}\n", "devices[0].ip")

    def test_not_yaml(self):
        self.assertRefused("devices: [\n", "not valid YAML")

    def test_rates(self):
        self.assertEqual(solyx_net.parse_rate("2.5Gbit", "x"), 2_500_000_000)
        self.assertEqual(solyx_net.parse_delay("250us", "x"), 250)


class Testbed(unittest.TestCase):
    def setUp(self):
        need_root()
        self.run_dir = tempfile.mkdtemp(prefix="solyx-tb-test.")
        self.assertEqual(links_with_prefix(PREFIX), [], "leftover links from an earlier run")

    def tearDown(self):
        solyx_net.cleanup_state(os.path.join(self.run_dir, PREFIX, "state.json"), log=lambda _: None)
        os.rmdir(self.run_dir) if os.path.isdir(self.run_dir) and not os.listdir(self.run_dir) else None

    def test_build_shape_and_clean_stop(self):
        tb = solyx_net.Testbed(LINE, prefix=PREFIX, run_dir=self.run_dir, log=lambda _: None)
        with tb:
            # Every device runs an agent that answers on its address (the
            # hosts' on a Unix socket: they have no address in the file).
            for name in ("tla", "tlb", "th1", "th2"):
                self.assertTrue(solyx_net.endpoint_up(tb.endpoints[name]), name)
            # Switch-side interfaces exist, carry the eBPF pipeline and the
            # file's rates (50 Mbit/s by default, 20 Mbit/s on th2's link).
            self.assertEqual(links_with_prefix(PREFIX), [f"{PREFIX}tla-1", f"{PREFIX}tla-2",
                                                         f"{PREFIX}tlb-1", f"{PREFIX}tlb-2"])
            shaped = subprocess.run(["tc", "qdisc", "show", "dev", f"{PREFIX}tlb-2"],
                                    capture_output=True, text=True, check=True).stdout
            self.assertIn("tbf", shaped)
            self.assertIn("rate 20Mbit", shaped)
            self.assertIn("clsact", shaped)
            default = subprocess.run(["tc", "qdisc", "show", "dev", f"{PREFIX}tla-1"],
                                     capture_output=True, text=True, check=True).stdout
            self.assertIn("rate 50Mbit", default)
            # Hosts have their addresses in their own namespaces.
            self.assertIn("10.77.0.1", tb.net.get("th1").cmd("ip -4 addr show dev th1-1"))
            pins = os.path.join(solyx_net.PIN_ROOT, f"solyx-{PREFIX}")
            self.assertEqual(sorted(os.listdir(pins)), ["th1", "th2", "tla", "tlb"])
            # Host kernels hand the other host's address to the first hop.
            self.assertIn("PERMANENT", tb.net.get("th1").cmd("ip neigh show 10.77.0.2"))
            pids = [p.pid for p in tb.procs.values()]
        # After the stop: no links, no pins, no agent processes.
        self.assertEqual(links_with_prefix(PREFIX), [])
        self.assertFalse(os.path.exists(pins))
        for pid in pids:
            self.assertFalse(os.path.exists(f"/proc/{pid}"), f"agent {pid} still running")

    def test_the_shipped_fat_tree_and_wan_build(self):
        # The other topologies of the repository build as they are: every
        # agent answers, every switch-side interface exists with the
        # file's rate, and a clean stop removes them all.
        root = os.path.dirname(os.path.dirname(HERE))
        for name in ("fat-tree-k4.yaml", "geant.yaml"):
            path = os.path.join(root, "topologies", name)
            topo = solyx_net.load_topology(path)
            # Interface names are <prefix><device>-<port>: a short prefix.
            prefix = "sxw"
            self.assertEqual(links_with_prefix(prefix), [], "leftover links")
            tb = solyx_net.Testbed(path, prefix=prefix, run_dir=self.run_dir, log=lambda _: None)
            with tb:
                for dev in topo["devices"]:
                    self.assertTrue(solyx_net.endpoint_up(tb.endpoints[dev]), f"{name}: {dev}")
                expected = sorted(tb.intf_name(d, port) for link in topo["links"]
                                  for d, port in (link["a"], link["b"])
                                  if topo["devices"][d]["role"] == "fabric")
                self.assertEqual(links_with_prefix(prefix), expected, name)
                first = expected[0]
                shaped = subprocess.run(["tc", "qdisc", "show", "dev", first],
                                        capture_output=True, text=True, check=True).stdout
                self.assertIn("tbf", shaped, f"{name}: {first}")
            self.assertEqual(links_with_prefix(prefix), [], name)
            solyx_net.cleanup_state(os.path.join(self.run_dir, prefix, "state.json"), log=lambda _: None)

    def test_crash_then_cleanup(self):
        proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(HERE), "solyx_net.py"),
                                 LINE, "--prefix", PREFIX, "--run-dir", self.run_dir],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == "ready" or time.time() > deadline:
                break
        self.assertEqual(seen[-1].strip(), "ready", "".join(seen))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        # The crash left the agents and the switch-side links behind.
        self.assertNotEqual(links_with_prefix(PREFIX), [])
        out = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "solyx_net.py"),
                              "--cleanup", "--prefix", PREFIX, "--run-dir", self.run_dir],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("stopping solyx-agent", out.stdout)
        self.assertEqual(links_with_prefix(PREFIX), [])
        self.assertFalse(os.path.exists(os.path.join(solyx_net.PIN_ROOT, f"solyx-{PREFIX}")))


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    # The same closing line as cargo's, so the test command can add it up.
    print(f"test result: {'ok' if failed == 0 else 'FAILED'}. {passed} passed; {failed} failed; "
          f"{skipped} ignored")
    sys.exit(1 if failed else 0)
