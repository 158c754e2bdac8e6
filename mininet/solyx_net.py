#!/usr/bin/python3
"""Builds a Solyx topology file in Mininet.

Every fabric device becomes a Mininet switch run by `solyx-agent switch`
(the solyx_fabric pipeline in eBPF) or, with --switch bmv2 where it is
installed, by BMv2's simple_switch_grpc. Every host device becomes a Mininet
host (its own network namespace) with the address and MAC from the file;
when the agent has a `host` command, the host runs `solyx-agent host` in its
namespace. Links are shaped with tbf at the bandwidth the file gives, in
both directions, so congestion makes real queues; delay is added with netem
only where the kernel has it (the script says so when it has not).

Everything the testbed creates is recorded in a state file as it is
created (agent PIDs, switch-side interface names, pin directories), so a
later run removes exactly that after a crash, by PID and by name. Nothing
is ever killed or deleted by a broad name pattern.

Run as root with Debian's python3 (Mininet's Python API):

    mininet/solyx_net.py topologies/leaf-spine.yaml --duration 60
    mininet/solyx_net.py --cleanup            # after a crash

The module is also a library: `Testbed(path, ...)` is a context manager.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RUN_DIR = "/run/solyx-testbed"
PIN_ROOT = "/sys/fs/bpf"
IFNAMSIZ = 15


class TopologyError(Exception):
    """A topology file the testbed cannot build; the message names the place."""


def parse_rate(text, where):
    """'100Mbit' -> bits per second."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(bit|Kbit|Mbit|Gbit)\s*", str(text))
    if not m:
        raise TopologyError(f"{where}: bandwidth {text!r} is not a number with bit, Kbit, Mbit or Gbit")
    scale = {"bit": 1, "Kbit": 1e3, "Mbit": 1e6, "Gbit": 1e9}[m.group(2)]
    value = float(m.group(1)) * scale
    if value <= 0:
        raise TopologyError(f"{where}: bandwidth must be positive")
    return int(value)


def parse_delay(text, where):
    """'2ms' -> microseconds."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s)\s*", str(text))
    if not m:
        raise TopologyError(f"{where}: delay {text!r} is not a number with us, ms or s")
    scale = {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
    return int(float(m.group(1)) * scale)


def parse_endpoint(text, where):
    m = re.fullmatch(r"([a-z0-9_-]+):([0-9]+)", str(text))
    if not m or int(m.group(2)) < 1:
        raise TopologyError(f"{where}: link end {text!r} is not device:port (port from 1)")
    return m.group(1), int(m.group(2))


def load_topology(path):
    """Reads the parts of a topology file the testbed needs, checking them."""
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise TopologyError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise TopologyError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise TopologyError(f"{path}: expected a mapping with devices and links")
    defaults = (doc.get("defaults") or {}).get("link") or {}
    devices = {}
    for i, d in enumerate(doc.get("devices") or []):
        where = f"{path}: devices[{i}]"
        if not isinstance(d, dict) or "name" not in d:
            raise TopologyError(f"{where}: a device needs a name")
        name = str(d["name"])
        if not re.fullmatch(r"[a-z0-9_-]{1,9}", name):
            raise TopologyError(f"{where}.name: {name!r} must be 1-9 of [a-z0-9_-]")
        if name in devices:
            raise TopologyError(f"{where}.name: {name!r} is declared twice")
        role = d.get("role")
        if role not in ("fabric", "host"):
            raise TopologyError(f"{where}.role: {role!r} must be fabric or host")
        if not isinstance(d.get("device_id"), int) or d["device_id"] < 1:
            raise TopologyError(f"{where}.device_id: must be a positive integer")
        if role == "host" and "ip" not in d:
            raise TopologyError(f"{where}.ip: a host needs an address")
        devices[name] = dict(d, _where=where)
    if not devices:
        raise TopologyError(f"{path}: no devices")
    links = []
    used = set()
    for i, link in enumerate(doc.get("links") or []):
        where = f"{path}: links[{i}]"
        if isinstance(link, list) and len(link) == 2:
            a, b, extra = link[0], link[1], {}
        elif isinstance(link, dict) and "a" in link and "b" in link:
            a, b, extra = link["a"], link["b"], link
        else:
            raise TopologyError(f"{where}: a link is [dev:port, dev:port] or {{a: dev:port, b: dev:port}}")
        ends = [parse_endpoint(a, f"{where}.a"), parse_endpoint(b, f"{where}.b")]
        for end, field in zip(ends, ("a", "b")):
            if end[0] not in devices:
                raise TopologyError(f"{where}.{field}: device {end[0]!r} is not declared")
            if end in used:
                raise TopologyError(f"{where}.{field}: port {end[0]}:{end[1]} is already linked")
            used.add(end)
        bw = extra.get("bandwidth", defaults.get("bandwidth"))
        delay = extra.get("delay", defaults.get("delay"))
        links.append({
            "a": ends[0],
            "b": ends[1],
            "bandwidth": parse_rate(bw, f"{where}.bandwidth") if bw is not None else None,
            "delay_us": parse_delay(delay, f"{where}.delay") if delay is not None else 0,
        })
    device_config = (doc.get("defaults") or {}).get("device_config") or {}
    if not isinstance(device_config, dict):
        raise TopologyError(f"{path}: defaults.device_config: expected pipeline: file pairs")
    return {"name": doc.get("name", os.path.basename(path)), "devices": devices, "links": links,
            "device_config": device_config}


def bmv2_device_configs(topo, topo_path):
    """The BMv2 JSON each fabric device's pipeline gets from the controller
    (defaults.device_config, relative to the topology file). BMv2 started
    with --no-p4 accepts no pipeline without one, so a missing entry or an
    unreadable file is refused here, naming the device."""
    base = os.path.dirname(os.path.abspath(topo_path))
    out = {}
    for name, d in topo["devices"].items():
        if d["role"] != "fabric":
            continue
        pipeline = d.get("pipeline") or "solyx_fabric"
        rel = topo["device_config"].get(pipeline)
        if not rel:
            raise TopologyError(
                f"{topo_path}: --switch bmv2: device {name} (pipeline {pipeline}) has no "
                f"defaults.device_config.{pipeline}: the controller would push an empty BMv2 "
                f"config; build the JSON with p4c (mininet/README.md, \"BMv2 switches\")")
        full = os.path.join(base, str(rel))
        if not os.access(full, os.R_OK):
            raise TopologyError(
                f"{topo_path}: --switch bmv2: device {name}: cannot read its device config {full}")
        out[name] = full
    return out


def kernel_has_netem():
    """True when `tc qdisc add ... netem` can work on this kernel."""
    if os.path.exists("/sys/module/sch_netem"):
        return True
    return subprocess.run(["modprobe", "-q", "sch_netem"], capture_output=True).returncode == 0


def tbf_cmd(dev, rate):
    # Burst: 5 ms at the link rate, at least two full frames; limit: ~50 ms.
    burst = max(int(rate / 8 * 0.005), 2 * 1514)
    limit = max(int(rate / 8 * 0.05), 4 * burst)
    return ["tc", "qdisc", "replace", "dev", dev, "root", "handle", "5:", "tbf",
            "rate", f"{rate}bit", "burst", str(burst), "limit", str(limit)]


def host_mac(device_id):
    """The controller's default host MAC (`Mac::for_device`): 02:53:00 + 24 bits of the ID."""
    return "02:53:00:%02x:%02x:%02x" % ((device_id >> 16) & 0xFF, (device_id >> 8) & 0xFF, device_id & 0xFF)


def port_mac(device_id, port):
    """The controller's MAC of a fabric port (`Mac::for_port`): 02:53 + 16 bits of ID + 16 of port."""
    return "02:53:%02x:%02x:%02x:%02x" % ((device_id >> 8) & 0xFF, device_id & 0xFF,
                                          (port >> 8) & 0xFF, port & 0xFF)


def agent_path():
    for cand in (os.environ.get("SOLYX_AGENT"),
                 os.path.join(ROOT, "target", "release", "solyx-agent"),
                 os.path.join(ROOT, "target", "debug", "solyx-agent")):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise TopologyError("solyx-agent not found: build it (cargo build --release -p solyx-agent) or set SOLYX_AGENT")


def agent_has(agent, command):
    out = subprocess.run([agent, command, "--help"], capture_output=True)
    return out.returncode == 0


def pid_alive(pid, expect):
    """The process still exists and is the one we started (same program)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False
    return os.path.basename(argv0) == os.path.basename(expect)


class State:
    """What this testbed created, written through to a JSON file."""

    def __init__(self, path):
        self.path = path
        self.data = {"pids": [], "links": [], "pins": [], "dirs": []}

    def add(self, kind, value):
        self.data[kind].append(value)
        self.flush()

    def flush(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)


def cleanup_state(path, log=print):
    """Removes what a (crashed) testbed recorded in its state file."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as e:
        log(f"state file {path} unreadable ({e}); remove it by hand after checking")
        return False
    for entry in data.get("pids", []):
        pid, prog = entry["pid"], entry["prog"]
        if pid_alive(pid, prog):
            log(f"stopping {os.path.basename(prog)} pid {pid}")
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                if not pid_alive(pid, prog):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
    for name in data.get("links", []):
        if os.path.exists(f"/sys/class/net/{name}"):
            log(f"deleting link {name}")
            subprocess.run(["ip", "link", "del", name], capture_output=True)
    for pin in data.get("pins", []) + data.get("dirs", []):
        if os.path.isdir(pin):
            shutil.rmtree(pin, ignore_errors=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # it lived in one of the directories removed above
    return True


class Testbed:
    """A running topology. Use as a context manager, or call start()/stop()."""

    def __init__(self, topo_path, switch="solyx", prefix="sxt", run_dir=DEFAULT_RUN_DIR,
                 log=print, collector=None):
        self.topo = load_topology(topo_path)
        self.topo_path = topo_path
        self.switch_kind = switch
        self.prefix = prefix
        self.run_dir = os.path.join(run_dir, prefix)
        self.state = State(os.path.join(self.run_dir, "state.json"))
        self.log = log
        self.collector = collector
        self.net = None
        self.procs = {}
        self.endpoints = {}
        self.sockets = {}
        self.netem = kernel_has_netem()

    # Interface names live in the root namespace for switches, so they
    # carry the testbed prefix and must fit IFNAMSIZ.
    def intf_name(self, device, port):
        role = self.topo["devices"][device]["role"]
        name = f"{device}-{port}" if role == "host" else f"{self.prefix}{device}-{port}"
        if len(name) > IFNAMSIZ:
            raise TopologyError(
                f"{self.topo_path}: interface name {name!r} for {device}:{port} is longer than "
                f"{IFNAMSIZ} characters; use a shorter device name or --prefix")
        return name

    def start(self):
        from mininet.net import Mininet
        from mininet.node import Host, Switch
        from mininet.link import Link

        if cleanup_state(self.state.path, self.log):
            self.log(f"removed what a previous testbed with prefix {self.prefix!r} left behind")
        os.makedirs(self.run_dir, exist_ok=True)
        self.state.add("dirs", self.run_dir)
        agent = agent_path() if self.switch_kind == "solyx" else None
        if self.switch_kind == "bmv2" and not shutil.which("simple_switch_grpc"):
            raise TopologyError("--switch bmv2: simple_switch_grpc is not installed here")
        if self.switch_kind == "bmv2":
            bmv2_device_configs(self.topo, self.topo_path)
        for link in self.topo["links"]:
            for dev, port in (link["a"], link["b"]):
                name = self.intf_name(dev, port)
                if self.topo["devices"][dev]["role"] == "fabric" and os.path.exists(f"/sys/class/net/{name}"):
                    raise TopologyError(f"interface {name} exists already: another testbed with prefix "
                                        f"{self.prefix!r}? run with --cleanup or another --prefix")

        testbed = self

        class AgentSwitch(Switch):
            """A Mininet switch whose data plane is a solyx-agent (or BMv2) process."""

            def start(self, controllers):
                testbed._start_switch(self)

            def stop(self, deleteIntfs=True):
                testbed._stop_process(self.name)
                super().stop(deleteIntfs)

        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False,
                      autoStaticArp=False, link=Link)
        self.net = net
        for name, d in self.topo["devices"].items():
            if d["role"] == "fabric":
                net.addSwitch(name, cls=AgentSwitch, dpid="%016x" % d["device_id"],
                              inNamespace=False)
            else:
                net.addHost(name, cls=Host, ip=d["ip"] if "/" in str(d["ip"]) else f"{d['ip']}/24",
                            mac=d.get("mac") or host_mac(d["device_id"]))
        for link in self.topo["links"]:
            (da, pa), (db, pb) = link["a"], link["b"]
            na, nb = self.intf_name(da, pa), self.intf_name(db, pb)
            for dev, name in ((da, na), (db, nb)):
                if self.topo["devices"][dev]["role"] == "fabric":
                    self.state.add("links", name)
            # Fabric ports carry the MAC the controller expects of them
            # (hosts address their first hop with it); host ports get
            # theirs from addHost.
            macs = {}
            for dev, port, key in ((da, pa, "addr1"), (db, pb, "addr2")):
                dd = self.topo["devices"][dev]
                if dd["role"] == "fabric":
                    macs[key] = port_mac(dd["device_id"], port)
                else:
                    macs[key] = dd.get("mac") or host_mac(dd["device_id"])
            net.addLink(da, db, port1=pa, port2=pb, intfName1=na, intfName2=nb, **macs)
        net.build()
        for host in net.hosts:
            # Each host is a shell holding its namespace; recorded so that a
            # crashed run's namespaces go too.
            self.state.add("pids", {"pid": host.pid, "prog": "bash", "name": host.name})
        self._shape()
        self._host_routes()
        net.start()
        self._start_hosts()
        self._wait_ready()
        return self

    def _shape(self):
        if not self.netem and any(l["delay_us"] for l in self.topo["links"]):
            self.log("this kernel has no netem: link delays in the topology are not emulated "
                     "(bandwidth shaping with tbf still applies)")
        for link in self.topo["links"]:
            for dev, port in (link["a"], link["b"]):
                node = self.net.get(dev)
                intf = self.intf_name(dev, port)
                # Hardware-style offloads hide packet boundaries from the
                # switch and the shaper; the testbed forwards real frames.
                node.cmd(f"ethtool -K {intf} tso off gso off gro off 2>/dev/null")
                if link["bandwidth"]:
                    out = node.cmd(" ".join(tbf_cmd(intf, link["bandwidth"])) + " 2>&1")
                    if out.strip():
                        raise TopologyError(f"tc tbf on {intf} failed: {out.strip()}")
                if link["delay_us"] and self.netem:
                    parent = "parent 5:1" if link["bandwidth"] else "root"
                    node.cmd(f"tc qdisc add dev {intf} {parent} handle 10: netem delay {link['delay_us']}us")

    def first_hop(self, host):
        """(host interface, MAC of the fabric port it is cabled to) of a host's lowest port."""
        ends = []
        for link in self.topo["links"]:
            for mine, other in ((link["a"], link["b"]), (link["b"], link["a"])):
                if mine[0] == host and self.topo["devices"][other[0]]["role"] == "fabric":
                    ends.append((mine[1], other))
        if not ends:
            return None
        port, (dev, dport) = min(ends)
        return self.intf_name(host, port), port_mac(self.topo["devices"][dev]["device_id"], dport)

    def _host_routes(self):
        """Lets each host's kernel hand IPv4 for every other host to its fabric port.

        The fabric answers no ARP, so every other host's address gets a
        permanent neighbour entry with the first hop's MAC, and every other
        subnet a route out of the host's port. The host pipeline (eBPF on
        that port) then picks the path and pushes its label; without routes
        from the controller the packet leaves unlabelled and the leaf drops it.
        """
        import ipaddress
        hosts = {n: d for n, d in self.topo["devices"].items() if d["role"] == "host"}
        for name, d in hosts.items():
            hop = self.first_hop(name)
            if hop is None:
                continue
            intf, mac = hop
            node = self.net.get(name)
            own = ipaddress.ip_interface(d["ip"] if "/" in str(d["ip"]) else f"{d['ip']}/24")
            subnets = set()
            for other, od in hosts.items():
                if other == name:
                    continue
                addr = ipaddress.ip_interface(od["ip"] if "/" in str(od["ip"]) else f"{od['ip']}/24")
                if addr.ip not in own.network:
                    subnets.add(str(addr.network))
                node.cmd(f"ip neigh replace {addr.ip} lladdr {mac} dev {intf} nud permanent")
            for net in sorted(subnets):
                node.cmd(f"ip route replace {net} dev {intf}")

    def _start_switch(self, sw):
        d = self.topo["devices"][sw.name]
        ports = sorted((p, self.intf_name(dev, p)) for l in self.topo["links"]
                       for dev, p in (l["a"], l["b"]) if dev == sw.name)
        log_path = os.path.join(self.run_dir, f"{sw.name}.log")
        address = d.get("address") or f"unix:{self.run_dir}/{sw.name}.sock"
        if self.switch_kind == "solyx":
            agent = agent_path()
            pin_root = os.path.join(PIN_ROOT, f"solyx-{self.prefix}")
            self.state.add("pins", pin_root)
            argv = [agent, "switch", "--device-id", str(d["device_id"]), "--instance", sw.name,
                    "--state-dir", os.path.join(self.run_dir, "state", sw.name),
                    "--pin-root", pin_root]
            for port, intf in ports:
                argv += ["--port", f"{port}={intf}"]
            if address.startswith("unix:"):
                argv += ["--unix", address[len("unix:"):]]
            else:
                argv += ["--grpc", address]
        else:
            argv = ["simple_switch_grpc", "--device-id", str(d["device_id"]), "--no-p4"]
            for port, intf in ports:
                argv += ["-i", f"{port}@{intf}"]
            # The pipelines send packet-in and take packet-out on port 255
            # (CPU_PORT in p4/*/include/define.p4).
            argv += ["--", "--grpc-server-addr", address, "--cpu-port", "255"]
        self._spawn(sw.name, argv, log_path)
        self.endpoints[sw.name] = address

    def _spawn(self, name, argv, log_path, node=None):
        log = open(log_path, "ab")
        if node is None:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        else:
            proc = node.popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()  # the child holds its own descriptor
        self.procs[name] = proc
        self.state.add("pids", {"pid": proc.pid, "prog": argv[0], "name": name})

    def _start_hosts(self):
        agent = agent_path() if self.switch_kind == "solyx" else None
        if agent is None or not agent_has(agent, "host"):
            return
        pin_root = os.path.join(PIN_ROOT, f"solyx-{self.prefix}")
        self.state.add("pins", pin_root)
        hosts = [n for n, d in self.topo["devices"].items() if d["role"] == "host"]
        for name in hosts:
            d = self.topo["devices"][name]
            node = self.net.get(name)
            ports = sorted(p for l in self.topo["links"] for dev, p in (l["a"], l["b"]) if dev == name)
            # The agent runs in the root namespace and enters the host's
            # with --netns (the way the agent asks for: `ip netns exec` or
            # Mininet's mnexec would hide /sys/fs/bpf and its pins). Its
            # gRPC listener then lives in the host's namespace too, so it
            # serves on a Unix socket, which every namespace reaches.
            sock = os.path.join(self.run_dir, f"{name}.sock")
            argv = [agent, "host", "--device-id", str(d["device_id"]), "--instance", name,
                    "--netns", f"/proc/{node.pid}/ns/net", "--unix", sock,
                    "--state-dir", os.path.join(self.run_dir, "state", name), "--pin-root", pin_root]
            for p in ports:
                argv += ["--port", f"{p}={self.intf_name(name, p)}"]
            if self.collector:
                argv += ["--collector", self._collector_for()]
            self._spawn(name, argv, os.path.join(self.run_dir, f"{name}.log"))
            address = d.get("address")
            self.sockets[name] = f"unix:{sock}"
            if address and not address.startswith("unix:"):
                # The controller reaches the host at the file's address: a
                # relay from that TCP address to the agent's socket.
                host, _, port = address.rpartition(":")
                relay = [shutil.which("socat") or "socat", f"TCP-LISTEN:{port},bind={host},reuseaddr,fork",
                         f"UNIX-CONNECT:{sock}"]
                if not shutil.which("socat"):
                    raise TopologyError(f"{name}: socat is needed to relay {address} to the host agent "
                                        "(apt-get install socat)")
                self._spawn(f"{name}-relay", relay, os.path.join(self.run_dir, f"{name}-relay.log"))
                self.endpoints[name] = address
            else:
                self.endpoints[name] = f"unix:{sock}"

    def _collector_for(self):
        """The collector address a host's agent sends Telemetry Reports to.

        The agent opens its report socket before it enters the host's
        namespace, so a collector on the machine's loopback is reachable as
        it is; a wildcard listen address stands for loopback.
        """
        host, _, port = self.collector.rpartition(":")
        if host in ("0.0.0.0", "localhost", ""):
            return f"127.0.0.1:{port}"
        return self.collector

    def _wait_ready(self, timeout=20.0):
        deadline = time.time() + timeout
        for name, address in self.endpoints.items():
            # A relayed host answers on its socket first, then on the relay.
            for address in dict.fromkeys((self.sockets.get(name, address), address)):
                self._wait_endpoint(name, address, deadline, timeout)

    def _wait_endpoint(self, name, address, deadline, timeout):
        while True:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise TopologyError(f"{name}: agent exited with {proc.returncode}; see "
                                    f"{os.path.join(self.run_dir, name + '.log')}")
            if endpoint_up(address):
                return
            if time.time() > deadline:
                raise TopologyError(f"{name}: no P4Runtime server at {address} after {timeout:.0f} s")
            time.sleep(0.05)

    def _stop_process(self, name):
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self):
        for name in list(self.procs):
            self._stop_process(name)
        if self.net is not None:
            self.net.stop()
            self.net = None
        cleanup_state(self.state.path, self.log)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False

    def describe(self):
        lines = [f"testbed {self.topo['name']!r} (prefix {self.prefix}):"]
        for name, d in self.topo["devices"].items():
            where = self.endpoints.get(name, "no agent")
            lines.append(f"  {d['role']:6} {name:12} device_id {d['device_id']:<5} P4Runtime {where}")
        for link in self.topo["links"]:
            bw = f"{link['bandwidth'] / 1e6:g} Mbit/s" if link["bandwidth"] else "unshaped"
            lines.append(f"  link {link['a'][0]}:{link['a'][1]} -- {link['b'][0]}:{link['b'][1]}  {bw}")
        return "\n".join(lines)


def endpoint_up(address):
    if address.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = address[len("unix:"):]
    else:
        host, _, port = address.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    s.settimeout(0.2)
    try:
        s.connect(target)
        return True
    except OSError:
        return False
    finally:
        s.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Build a Solyx topology file in Mininet.")
    ap.add_argument("topology", nargs="?", help="topology YAML (see docs/topology-format.md)")
    ap.add_argument("--switch", choices=["solyx", "bmv2"], default="solyx",
                    help="switch data plane: solyx-agent (eBPF) or BMv2 simple_switch_grpc")
    ap.add_argument("--prefix", default="sxt", help="prefix of interface names and pin directories")
    ap.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="logs, sockets and the state file")
    ap.add_argument("--collector", help="INT collector ADDR:PORT handed to host agents")
    ap.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    ap.add_argument("--cleanup", action="store_true", help="remove what a crashed testbed left, then exit")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("solyx_net.py needs root (Mininet creates namespaces and links)", file=sys.stderr)
        return 2
    if args.cleanup:
        path = os.path.join(args.run_dir, args.prefix, "state.json")
        if not cleanup_state(path):
            print(f"nothing recorded in {path}")
        return 0
    if not args.topology:
        ap.error("a topology file is needed (or --cleanup)")
    stop = {"now": False}

    def on_signal(signum, _frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        with Testbed(args.topology, switch=args.switch, prefix=args.prefix, run_dir=args.run_dir,
                     collector=args.collector) as tb:
            print(tb.describe(), flush=True)
            print("ready", flush=True)
            end = time.time() + args.duration if args.duration else None
            while not stop["now"] and (end is None or time.time() < end):
                time.sleep(0.2)
    except TopologyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
