#!/usr/bin/python3
"""The main job: a leaf-spine testbed, the controller, and what it measures.

    mininet/scenario.py topologies/leaf-spine.yaml              # until Ctrl-C
    mininet/scenario.py topologies/leaf-spine.yaml --duration 0 # measure, stop
    mininet/scenario.py --cleanup                               # after a crash

It builds the topology in Mininet (`solyx_net.Testbed`: eBPF switches run
by `solyx-agent switch`, hosts running `solyx-agent host`, tbf-shaped
links), starts `solyx serve` over the same file, then runs four steps and
prints what each measured:

1. reachability: every host pings every other host;
2. congestion: two long iperf3 flows between two leaves start on the same
   spine; INT sees the queue; the controller moves traffic. Aggregate
   throughput before and after, and the time from congestion to new
   weights;
3. failure: a spine link goes down (`ip link set <name> down`) under a
   steady stream of numbered UDP datagrams; the time from the failure to
   steady delivery again, from the sequence numbers that arrived;
4. the controller's load: INT reports per second and P4Runtime writes.

Then it leaves the testbed and the controller running (API, /metrics)
until Ctrl-C or the end of --duration. Every number is printed as
measured, next to its goal; a step that cannot run says why.

Run as root with Debian's python3 (Mininet). `--help` lists the options.
"""

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import solyx_net  # noqa: E402
import udpseq  # noqa: E402

ROOT = solyx_net.ROOT
GOAL_RATIO = 1.5
GOAL_RESTORE_MS = 100.0


class StepError(Exception):
    """A step could not run; the message says why."""


def say(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def solyx_path():
    for cand in (os.environ.get("SOLYX"),
                 os.path.join(ROOT, "target", "release", "solyx"),
                 os.path.join(ROOT, "target", "debug", "solyx")):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise StepError("solyx not found: build it (cargo build --release -p solyx) or set SOLYX")


def ns_popen(tb, node, argv, state_name, **kw):
    """Starts argv in a host's network namespace with nsenter (which execs
    the command, so the PID is the command's) and records it in the
    testbed's state file, so a crash cleanup stops it by PID."""
    proc = subprocess.Popen(["nsenter", f"--net=/proc/{node.pid}/ns/net", "--"] + argv, **kw)
    tb.state.add("pids", {"pid": proc.pid, "prog": argv[0], "name": state_name})
    return proc


def stop_proc(proc, timeout=5):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def iface_stat(name, what):
    try:
        with open(f"/sys/class/net/{name}/statistics/{what}") as f:
            return int(f.read())
    except OSError:
        return 0


def parse_ts(text):
    """RFC 3339 UTC with nanoseconds -> seconds since the epoch."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    if not m:
        return None
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return (base - datetime(1970, 1, 1)).total_seconds() + frac


def fmt(value, unit="", digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


class Controller:
    """`solyx serve` over the topology, with its API, a fresh admin token and a state file."""

    def __init__(self, tb, topology, run_dir, api_listen, int_port, probe_ms):
        self.tb = tb
        self.solyx = solyx_path()
        self.log_path = os.path.join(run_dir, "controller.log")
        self.api = None
        self.token = None
        argv = [self.solyx, "serve", "--topology", topology, "--log-format", "json",
                "--p4-dir", os.path.join(ROOT, "p4"), "--int-listen", f"0.0.0.0:{int_port}",
                "--probe-interval-ms", str(probe_ms)]
        self.api = f"http://{api_listen}"
        self.token = secrets.token_hex(16)
        tokens = os.path.join(run_dir, "tokens")
        with open(tokens, "w") as f:
            f.write(f"admin main {self.token}\n")
        os.chmod(tokens, 0o600)
        argv += ["--api-listen", api_listen, "--tokens", tokens,
                 "--state", os.path.join(run_dir, "solyx-state.db"),
                 # Every group starts on its first path, as an unlucky ECMP
                 # hash would put them: the collision step 2 resolves.
                 "--start-on-first-path",
                 # Flows of seconds: balancing rounds a second apart, and a
                 # group moves whole in one round (one draw, not two).
                 "--balance-hold-ms", "1000", "--balance-step", "100",
                 # Act once congestion has lasted 3 s, so that step 2 sees
                 # the collided state before the controller resolves it.
                 "--balance-sustain-ms", "3000"]
        self.argv = argv
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=ROOT)
        log.close()
        tb.state.add("pids", {"pid": self.proc.pid, "prog": self.solyx, "name": "controller"})
        self._log_pos = 0
        self.events = []  # (time, level, message, fields, span)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self):
        return self.proc.poll() is None

    def read_log(self):
        """New JSON log lines, parsed; kept in self.events."""
        try:
            with open(self.log_path) as f:
                f.seek(self._log_pos)
                chunk = f.read()
                # Keep a partial last line for the next read.
                cut = chunk.rfind("\n") + 1
                self._log_pos += len(chunk[:cut].encode())
        except OSError:
            return []
        new = []
        for line in chunk[:cut].splitlines():
            try:
                j = json.loads(line)
            except ValueError:
                continue
            fields = j.get("fields", {})
            new.append((parse_ts(j.get("timestamp", "")), j.get("level"), fields.get("message", ""),
                        fields, j.get("span") or {}))
        self.events += new
        return new

    def count(self, message, since=0.0):
        self.read_log()
        return [e for e in self.events if e[2].startswith(message) and (e[0] or 0) >= since]

    def get(self, path, timeout=2.0):
        """JSON (or text for /metrics) from the API; None without an API or on error."""
        if self.api is None:
            return None
        req = urllib.request.Request(self.api + path)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read().decode()
        except (urllib.error.URLError, OSError, ValueError):
            return None
        if path == "/metrics":
            return body
        try:
            return json.loads(body)
        except ValueError:
            return None

    def metrics(self):
        """{(name, frozenset(labels)): value} from /metrics, or None."""
        text = self.get("/metrics")
        if text is None:
            return None
        out = {}
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+([0-9.eE+-]+|NaN)$", line)
            if not m:
                continue
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
        return out

    def weights(self, src, dst):
        ps = self.get(f"/v1/paths?src={src}&dst={dst}")
        if not ps or "paths" not in ps:
            return None
        return [(p.get("label"), p.get("weight"), tuple(p.get("devices", []))) for p in ps["paths"]]


def metric_sum(metrics, name, **match):
    if metrics is None:
        return None
    total = None
    for (n, labels), v in metrics.items():
        if n == name and all((k, val) in labels for k, val in match.items()):
            total = (total or 0.0) + v
    return total


class Scenario:
    def __init__(self, args, log=print):
        self.args = args
        self.log = log
        self.results = {}
        self.tb = None
        self.ctl = None

    # --- topology helpers -------------------------------------------------

    def devices(self, role):
        return [n for n, d in self.tb.topo["devices"].items() if d["role"] == role]

    def neighbours(self, device):
        """[(my port, other device, other port)] of a device's links."""
        out = []
        for link in self.tb.topo["links"]:
            for mine, other in ((link["a"], link["b"]), (link["b"], link["a"])):
                if mine[0] == device:
                    out.append((mine[1], other[0], other[1]))
        return sorted(out)

    def leaf_of(self, host):
        return next(o for _, o, _ in self.neighbours(host))

    def hosts_of(self, leaf):
        return [o for _, o, _ in self.neighbours(leaf) if self.tb.topo["devices"][o]["role"] == "host"]

    def spines(self):
        hosts_leaves = {self.leaf_of(h) for h in self.devices("host")}
        return [d for d in self.devices("fabric") if d not in hosts_leaves]

    def spine_intf(self, spine, leaf):
        """The spine-side interface (root namespace) of the spine--leaf link."""
        port = next(p for p, o, _ in self.neighbours(spine) if o == leaf)
        return self.tb.intf_name(spine, port)

    def leaf_host_intf(self, host):
        leaf = self.leaf_of(host)
        port = next(p for p, o, _ in self.neighbours(leaf) if o == host)
        return self.tb.intf_name(leaf, port)

    def ip(self, host):
        return str(self.tb.topo["devices"][host]["ip"]).split("/")[0]

    # --- the run ----------------------------------------------------------

    def run(self):
        a = self.args
        say(f"testbed: {a.topology} in Mininet (prefix {a.prefix})")
        self.tb = solyx_net.Testbed(a.topology, prefix=a.prefix, run_dir=a.run_dir, log=self.log,
                                    collector=f"127.0.0.1:{a.int_port}")
        with self.tb:
            hosts, fabric = self.devices("host"), self.devices("fabric")
            print(f"{len(fabric)} switches (solyx-agent switch), {len(hosts)} hosts "
                  f"(solyx-agent host: {'yes' if any(h in self.tb.procs for h in hosts) else 'no'}), "
                  f"{len(self.tb.topo['links'])} links shaped with tbf; state in {self.tb.state.path}",
                  flush=True)
            try:
                self.start_controller()
                for step in (self.step_ping, self.step_congestion, self.step_failure, self.step_load):
                    try:
                        step()
                    except StepError as e:
                        print(f"step not measured: {e}", flush=True)
                self.summary()
                self.keep_running()
            finally:
                if self.ctl:
                    self.ctl.stop()
        return self.results

    def start_controller(self):
        a = self.args
        say("controller: solyx serve")
        self.ctl = Controller(self.tb, a.topology, self.tb.run_dir, a.api_listen, a.int_port,
                              a.probe_interval_ms)
        print(" ".join(self.ctl.argv), flush=True)
        print(f"log: {self.ctl.log_path}", flush=True)
        devices = len(self.tb.topo["devices"])
        fabric_links = sum(1 for l in self.tb.topo["links"]
                           if all(self.tb.topo["devices"][d]["role"] == "fabric" for d in (l["a"][0], l["b"][0])))
        t0 = time.time()
        deadline = t0 + a.ready_timeout
        configured, ups = set(), set()
        by_id = {d["device_id"]: n for n, d in self.tb.topo["devices"].items()}
        while time.time() < deadline:
            if not self.ctl.alive():
                raise StepError(f"solyx serve exited with {self.ctl.proc.returncode}; see {self.ctl.log_path}")
            # The span carries device_id (its `name` field is the span's own).
            configured = {by_id.get(e[4].get("device_id")) for e in self.ctl.count("device configured")}
            configured.discard(None)
            ups = {e[3].get("link") for e in self.ctl.count("link up")}
            if len(configured) >= devices and len(ups) >= 2 * fabric_links:
                break
            time.sleep(0.2)
        self.results["devices_configured"] = len(configured)
        self.results["links_discovered"] = len(ups) // 2
        print(f"devices configured (pipeline pushed, primary): {len(configured)}/{devices} "
              f"in {time.time() - t0:.1f} s", flush=True)
        print(f"fabric links discovered by LLDP probes (both directions up): {len(ups) // 2}/{fabric_links}",
              flush=True)
        if len(configured) < devices:
            missing = sorted(set(self.tb.topo["devices"]) - configured)
            print(f"not configured after {a.ready_timeout} s: {', '.join(missing)}", flush=True)
        routes = None
        if self.ctl.api:
            deadline = time.time() + a.ready_timeout
            while time.time() < deadline:
                routes = self.ctl.get("/v1/routes")
                if routes:
                    break
                time.sleep(0.3)
            print(f"routes the controller reports installed (/v1/routes): "
                  f"{len(routes) if routes is not None else 'no answer'}", flush=True)
        self.results["routes"] = len(routes) if routes else 0

    def step_ping(self):
        say("1. reachability: every host pings every other host")
        hosts = self.devices("host")
        procs = {}
        for src in hosts:
            node = self.tb.net.get(src)
            for dst in hosts:
                if src != dst:
                    procs[(src, dst)] = ns_popen(
                        self.tb, node, ["ping", "-q", "-c", "3", "-i", "0.2", "-W", "1", self.ip(dst)],
                        f"ping-{src}-{dst}", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ok = {}
        for pair, p in procs.items():
            try:
                out, _ = p.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            m = re.search(r"(\d+) received", out or "")
            ok[pair] = bool(m and int(m.group(1)) > 0)
        width = max(len(h) for h in hosts) + 1
        print(" " * width + "".join(f"{h:>{width}}" for h in hosts))
        for src in hosts:
            row = "".join(f"{'-' if src == dst else ('ok' if ok[(src, dst)] else 'NO'):>{width}}"
                          for dst in hosts)
            print(f"{src:<{width}}{row}")
        good = sum(ok.values())
        self.results["ping_ok"], self.results["ping_pairs"] = good, len(ok)
        print(f"{good}/{len(ok)} pairs reach each other", flush=True)
        if good == 0:
            raise StepError("no host reaches any other: the controller installed no routes "
                            f"(it reports {self.results.get('routes', 0)}); steps 2 and 3 need them")

    def flow_pairs(self):
        """Two host pairs between the first two leaves that have two hosts each."""
        leaves = [l for l in dict.fromkeys(self.leaf_of(h) for h in self.devices("host"))
                  if len(self.hosts_of(l)) >= 2]
        if len(leaves) < 2:
            raise StepError("the topology needs two leaves with two hosts each for this step")
        a, b = self.hosts_of(leaves[0]), self.hosts_of(leaves[1])
        return leaves[0], leaves[1], [(a[0], b[0]), (a[1], b[1])]

    def spine_bytes(self, src_leaf, what="rx_bytes"):
        return {s: iface_stat(self.spine_intf(s, src_leaf), what) for s in self.spines()}

    def step_congestion(self):
        a = self.args
        if not self.results.get("ping_ok"):
            say("2. congestion")
            raise StepError("hosts do not reach each other (step 1)")
        src_leaf, dst_leaf, pairs = self.flow_pairs()
        say(f"2. congestion: iperf3 {pairs[0][0]}->{pairs[0][1]} and {pairs[1][0]}->{pairs[1][1]} "
            f"({src_leaf} -> {dst_leaf}) for {a.flow_seconds:g} s")
        servers, clients = [], []
        try:
            for i, (src, dst) in enumerate(pairs):
                servers.append(ns_popen(self.tb, self.tb.net.get(dst),
                                        ["iperf3", "-s", "-1", "-p", str(5201 + i)], f"iperf3-s-{dst}",
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)
            before_w = {p: self.ctl.weights(*p) for p in pairs}
            rx_intfs = [self.leaf_host_intf(dst) for _, dst in pairs]
            base_reroutes = metric_sum(self.ctl.metrics(), "solyx_reroute_events_total")
            t_start = time.time()
            for i, (src, dst) in enumerate(pairs):
                clients.append(ns_popen(
                    self.tb, self.tb.net.get(src),
                    ["iperf3", "-c", self.ip(dst), "-p", str(5201 + i), "-t", str(int(a.flow_seconds)),
                     "-J"], f"iperf3-c-{src}", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            samples = []  # (t, delivered bytes, {spine: bytes from src leaf})
            t_weights = t_int = t_reroute = None
            new_w = None
            while time.time() < t_start + a.flow_seconds + 0.5 and any(c.poll() is None for c in clients):
                now = time.time()
                samples.append((now, sum(iface_stat(i, "tx_bytes") for i in rx_intfs),
                                self.spine_bytes(src_leaf)))
                if t_weights is None and self.ctl.api:
                    cur = {p: self.ctl.weights(*p) for p in pairs}
                    if any(cur[p] and before_w[p] and cur[p] != before_w[p] for p in pairs):
                        t_weights, new_w = now, cur
                if t_int is None and self.ctl.api:
                    t_int = now if self.int_congested() else None
                if t_reroute is None and base_reroutes is not None:
                    r = metric_sum(self.ctl.metrics(), "solyx_reroute_events_total")
                    if r is not None and r > base_reroutes:
                        t_reroute = now
                time.sleep(0.2)
            reports = []
            for c in clients:
                out, _ = c.communicate(timeout=a.flow_seconds + 15)
                try:
                    reports.append(json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6)
                except (ValueError, KeyError, TypeError):
                    reports.append(None)
        finally:
            for p in clients + servers:
                stop_proc(p)
        self.report_congestion(pairs, samples, t_start, t_weights, t_int, t_reroute, before_w, new_w,
                               reports)

    def int_congested(self):
        links = self.ctl.get("/v1/links") or []
        for l in links:
            t = l.get("telemetry") or {}
            if (t.get("utilisation") or 0) >= 0.8 or (t.get("queue_depth") or 0) > 0:
                return True
        return False

    @staticmethod
    def rate(samples, t0, t1):
        """Mean delivered Mbit/s between two times, from counter samples."""
        win = [s for s in samples if t0 <= s[0] <= t1]
        if len(win) < 2:
            return None
        return (win[-1][1] - win[0][1]) * 8 / (win[-1][0] - win[0][0]) / 1e6

    def report_congestion(self, pairs, samples, t_start, t_weights, t_int, t_reroute, before_w, new_w,
                          reports):
        if len(samples) < 5:
            raise StepError("the iperf3 flows ended at once (see the testbed logs)")
        # Where the flows ran at first: bytes from the source leaf per spine
        # over the first seconds, once TCP has ramped up.
        w0 = [s for s in samples if t_start + 1.0 <= s[0] <= t_start + 2.5]
        split = {}
        if len(w0) >= 2:
            split = {sp: w0[-1][2][sp] - w0[0][2][sp] for sp in w0[0][2]}
        total = sum(split.values()) or 1
        shares = {sp: v / total for sp, v in split.items()}
        collided = max(shares.values(), default=0) >= 0.9
        print("first seconds, traffic from the source leaf per spine: " +
              ", ".join(f"{sp} {100 * v:.0f}%" for sp, v in shares.items()) +
              (" (both flows on one spine)" if collided else " (flows not on one spine)"), flush=True)
        if before_w and any(before_w.values()):
            for p, w in before_w.items():
                print(f"  weights {p[0]}->{p[1]} at start: {w}")
        end = samples[-1][0]
        if t_weights is not None:
            # Up to the last poll that still saw the old weights.
            before = self.rate(samples, t_start + 1.0, max(t_weights - 0.2, t_start + 1.5))
            after = self.rate(samples, max(t_weights + 2.0, end - 5.0), end)
        else:
            before = self.rate(samples, t_start + 1.0, end)
            after = None
        ratio = after / before if before and after else None
        self.results.update({
            "collided": collided, "tput_before_mbps": before, "tput_after_mbps": after, "tput_ratio": ratio,
            "int_congestion_s": (t_int - t_start) if t_int else None,
            "weights_changed_s": (t_weights - t_start) if t_weights else None,
            "congestion_to_weights_ms": (t_weights - t_int) * 1000 if t_weights and t_int else None,
            "reroute_metric_s": (t_reroute - t_start) if t_reroute else None,
        })
        print(f"aggregate throughput before rebalancing: {fmt(before, ' Mbit/s')}", flush=True)
        if new_w:
            for p, w in new_w.items():
                print(f"  weights {p[0]}->{p[1]} after: {w}")
        print(f"aggregate throughput after rebalancing:  {fmt(after, ' Mbit/s')}"
              + ("" if t_weights else " (the controller changed no weights)"), flush=True)
        print(f"iperf3 receivers over the whole run: "
              + ", ".join(f"{fmt(r, ' Mbit/s')}" for r in reports), flush=True)
        print(f"INT saw congestion {fmt(self.results['int_congestion_s'], ' s')} after the flows started; "
              f"new weights {fmt(self.results['weights_changed_s'], ' s')} after; congestion to new weights: "
              f"{fmt(self.results['congestion_to_weights_ms'], ' ms', 0)}", flush=True)
        print(f"ratio after/before: {fmt(ratio, 'x', 2)} (goal >= {GOAL_RATIO}x)", flush=True)
        if not collided:
            print("note: the flows did not start on one spine, so 'before' is not a collided state; "
                  "serve needs --start-on-first-path for a reproducible collision", flush=True)

    def step_failure(self):
        a = self.args
        if not self.results.get("ping_ok"):
            say("3. failure")
            raise StepError("hosts do not reach each other (step 1)")
        src_leaf, dst_leaf, pairs = self.flow_pairs()
        src, dst = pairs[0]
        say(f"3. failure: {a.pps} numbered UDP datagrams/s {src}->{dst}; a spine link goes down")
        trace_path = os.path.join(self.tb.run_dir, "udpseq-trace.json")
        seconds = a.stream_seconds
        recv = ns_popen(self.tb, self.tb.net.get(dst),
                        [sys.executable, os.path.join(HERE, "udpseq.py"), "recv", "9000", "--seconds",
                         str(seconds + 4), "--out", trace_path], f"udpseq-recv-{dst}",
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        recv.stdout.readline()  # "listening"
        send = ns_popen(self.tb, self.tb.net.get(src),
                        [sys.executable, os.path.join(HERE, "udpseq.py"), "send", f"{self.ip(dst)}:9000",
                         "--pps", str(a.pps), "--seconds", str(seconds)], f"udpseq-send-{src}",
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        failed_intf = None
        try:
            time.sleep(min(2.0, seconds / 4))
            c0 = self.spine_bytes(src_leaf, "rx_packets")
            time.sleep(1.0)
            c1 = self.spine_bytes(src_leaf, "rx_packets")
            per_spine = {s: c1[s] - c0[s] for s in c0}
            spine = max(per_spine, key=per_spine.get)
            failed_intf = self.spine_intf(spine, src_leaf)
            print("stream packets per spine over 1 s: " +
                  ", ".join(f"{s} {v}" for s, v in per_spine.items()), flush=True)
            print(f"taking down {failed_intf} ({spine} -- {src_leaf}) with ip link set down", flush=True)
            t_fail = time.time()
            subprocess.run(["ip", "link", "set", failed_intf, "down"], check=True)
            send.wait(timeout=seconds + 10)
            sent = json.loads(send.stdout.read().strip().splitlines()[-1])
        finally:
            stop_proc(send)
            if failed_intf:
                subprocess.run(["ip", "link", "set", failed_intf, "up"], check=False)
        recv.send_signal(signal.SIGTERM)
        recv.wait(timeout=10)
        for proc in (send, recv):
            proc.stdout.close()
        with open(trace_path) as f:
            trace = json.load(f)
        r = udpseq.analyse(trace, t_fail)
        down = [e for e in self.ctl.count("link down", since=t_fail - 0.01)]
        detect_ms = (min(e[0] for e in down) - t_fail) * 1000 if down else None
        self.results.update({"failed_link": failed_intf, "restore_ms": r["restored_ms"], "lost": r["lost"],
                             "sent": sent.get("sent"), "received": r["received"], "detect_ms": detect_ms})
        print(f"sent {sent.get('sent')}, received {r['received']}, lost after the failure {r['lost']} "
              f"({fmt(r.get('lost_ms'), ' ms', 0)} of stream), longest pause {fmt(r['longest_gap_ms'], ' ms', 1)}",
              flush=True)
        print(f"controller saw the link down {fmt(detect_ms, ' ms', 0)} after the failure (discovery)", flush=True)
        print(f"failure to restored delivery: {fmt(r['restored_ms'], ' ms', 1)} (goal <= {GOAL_RESTORE_MS:g} ms)"
              + ("" if r["restored_ms"] is not None else " -- delivery did not resume"), flush=True)
        if per_spine[spine] == 0:
            print("note: no stream packets crossed any spine: the stream was not routed", flush=True)

    def step_load(self):
        say("4. controller load: INT reports and P4Runtime writes")
        if not self.ctl.api:
            raise StepError("this solyx serve has no --api-listen: /metrics is not served")
        m0, t0 = self.ctl.metrics(), time.time()
        time.sleep(self.args.load_seconds)
        m1, t1 = self.ctl.metrics(), time.time()
        if m0 is None or m1 is None:
            raise StepError(f"no answer from {self.ctl.api}/metrics")
        dt = t1 - t0
        acc0 = metric_sum(m0, "solyx_int_reports_total", result="accepted") or 0
        acc1 = metric_sum(m1, "solyx_int_reports_total", result="accepted") or 0
        all1 = metric_sum(m1, "solyx_int_reports_total") or 0
        w0 = metric_sum(m0, "solyx_p4rt_updates_total") or 0
        w1 = metric_sum(m1, "solyx_p4rt_updates_total") or 0
        ok1 = metric_sum(m1, "solyx_p4rt_updates_total", result="ok") or 0
        self.results.update({"int_reports_per_s": (acc1 - acc0) / dt, "int_reports_total": all1,
                             "p4rt_updates_total": w1, "p4rt_updates_per_s": (w1 - w0) / dt})
        print(f"INT reports accepted: {(acc1 - acc0) / dt:.0f}/s over {dt:.1f} s ({all1:.0f} received in all)")
        print(f"P4Runtime updates written: {w1:.0f} in all ({ok1:.0f} ok), {(w1 - w0) / dt:.1f}/s now",
              flush=True)

    def summary(self):
        r = self.results
        say("what the main job measured")
        rows = [
            ("devices configured", f"{r.get('devices_configured')}/{len(self.tb.topo['devices'])}", ""),
            ("fabric links discovered", f"{r.get('links_discovered')}", ""),
            ("host pairs reaching each other", f"{r.get('ping_ok', 'n/a')}/{r.get('ping_pairs', 'n/a')}",
             "all"),
            ("throughput before / after rebalancing",
             f"{fmt(r.get('tput_before_mbps'))} / {fmt(r.get('tput_after_mbps'))} Mbit/s", ""),
            ("ratio after/before", fmt(r.get("tput_ratio"), "x", 2), f">= {GOAL_RATIO}x"),
            ("congestion (INT) to new weights", fmt(r.get("congestion_to_weights_ms"), " ms", 0), ""),
            ("failure to restored delivery", fmt(r.get("restore_ms"), " ms", 1), f"<= {GOAL_RESTORE_MS:g} ms"),
            ("INT reports per second", fmt(r.get("int_reports_per_s"), "", 0), ""),
            ("P4Runtime updates written", fmt(r.get("p4rt_updates_total"), "", 0), ""),
        ]
        for name, value, goal in rows:
            verdict = ""
            if goal.startswith(">="):
                verdict = "n/a" if r.get("tput_ratio") is None else (
                    "met" if r["tput_ratio"] >= GOAL_RATIO else "MISSED")
            elif goal.startswith("<="):
                verdict = "n/a" if r.get("restore_ms") is None else (
                    "met" if r["restore_ms"] <= GOAL_RESTORE_MS else "MISSED")
            elif goal == "all":
                verdict = "met" if r.get("ping_ok") and r.get("ping_ok") == r.get("ping_pairs") else "MISSED"
            print(f"  {name:<40} {value:<28} {('goal ' + goal) if goal else '':<18} {verdict}")
        print(flush=True)

    def keep_running(self):
        a = self.args
        if a.duration is not None and a.duration <= 0:
            return
        say("running: the controller and the testbed stay up "
            + (f"for {a.duration:g} s" if a.duration else "until Ctrl-C"))
        if self.ctl.api:
            env = f"export SOLYX_API={self.ctl.api}" + (f" SOLYX_TOKEN={self.ctl.token}" if self.ctl.token else "")
            print(f"API:     {self.ctl.api}/v1   (OpenAPI: {self.ctl.api}/v1/openapi.json)")
            print(f"metrics: {self.ctl.api}/metrics")
            print(f"  {env}")
            print("  solyx link list")
            hosts = self.devices("host")
            print(f"  solyx path show {hosts[0]} {hosts[-1]}")
            print("  solyx route list")
        else:
            print("no REST API in this solyx serve (no --api-listen)")
        print(f"controller log: {self.ctl.log_path}")
        print(f"testbed logs:   {self.tb.run_dir}/*.log", flush=True)
        end = time.time() + a.duration if a.duration else None
        while end is None or time.time() < end:
            if not self.ctl.alive():
                print(f"solyx serve exited with {self.ctl.proc.returncode}", flush=True)
                break
            time.sleep(0.5)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="The Solyx main job on a Mininet testbed.")
    ap.add_argument("topology", nargs="?", default=os.path.join(ROOT, "topologies", "leaf-spine.yaml"))
    ap.add_argument("--prefix", default="sxm", help="prefix of interface names and pins (default sxm)")
    ap.add_argument("--run-dir", default=solyx_net.DEFAULT_RUN_DIR, help="logs, sockets, state file")
    ap.add_argument("--api-listen", default="127.0.0.1:8080", help="controller REST API and /metrics")
    ap.add_argument("--int-port", type=int, default=9555, help="UDP port of the INT collector")
    ap.add_argument("--probe-interval-ms", type=int, default=20,
                    help="link-discovery probe period (a link is down after 3 missed probes)")
    ap.add_argument("--ready-timeout", type=float, default=60, help="seconds to wait for devices and links")
    ap.add_argument("--flow-seconds", type=float, default=30, help="length of the two iperf3 flows")
    ap.add_argument("--stream-seconds", type=float, default=8, help="length of the numbered UDP stream")
    ap.add_argument("--pps", type=int, default=5000, help="datagrams per second of the UDP stream")
    ap.add_argument("--load-seconds", type=float, default=5, help="window for reports/s and writes/s")
    ap.add_argument("--duration", type=float,
                    help="after the steps, keep running this many seconds (0: stop; default: until Ctrl-C)")
    ap.add_argument("--cleanup", action="store_true", help="remove what a killed run left, then exit")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("scenario.py needs root (Mininet creates namespaces and links)", file=sys.stderr)
        return 2
    if args.cleanup:
        path = os.path.join(args.run_dir, args.prefix, "state.json")
        if not solyx_net.cleanup_state(path):
            print(f"nothing recorded in {path}")
        return 0

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        Scenario(args).run()
    except KeyboardInterrupt:
        print("\nstopped; testbed and controller removed", flush=True)
        return 130
    except (solyx_net.TopologyError, StepError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
