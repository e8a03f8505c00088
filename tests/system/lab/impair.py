"""Path impairments and packet captures for the lab.

FragReorder: later IPv4 fragments of a client's datagrams overtake the
first one on the way to the balancer, every time (lab/fragrelay.py; the
lab's kernel has no qdiscs such as netem). Capture: tcpdump in a namespace, by PID;
ip_fragments() reads its IPv4 fragments back in arrival order."""
import json
import os
import re
import subprocess
import time

from . import netns as N
from .topology import LB_CLIENT_IF

TCPDUMP = "/usr/bin/tcpdump"


RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fragrelay.py")
PYTHON = "/usr/bin/python3"


class FragReorder:
    """Put lab/fragrelay.py between a client and the clients' bridge: the
    client's switch port leaves the bridge, a new veth (rl<name> -> rb<name>)
    joins it, and the relay copies frames between the two, first IPv4
    fragments from the client held until a later one has gone.

    The relay sends what it reads; a frame read before the kernel filled in
    an offloaded checksum would leave with a wrong one, so checksum offload
    is turned off on the client's eth0 and on the balancer's client side."""

    def __init__(self, lab, client, hold_ms=200):
        sw, name = lab.sw_ns, client.name
        self.stats_file = os.path.join(lab.workdir, "fragrelay-%s.json" % name)
        for ns, dev in ((client.ns, "eth0"), (lab.lb_ns, LB_CLIENT_IF)):
            N.ns_run(ns, ["ethtool", "-K", dev, "tx", "off"])
        N.run([N.IP, "-n", sw, "link", "set", name, "nomaster"])
        N.veth(sw, "rl" + name, sw, "rb" + name)
        N.link_up(sw, "rb" + name, "brc")
        N.link_up(sw, "rl" + name)
        self.proc = subprocess.Popen(
            [N.IP, "netns", "exec", sw, PYTHON, RELAY, name, "rl" + name, str(hold_ms),
             self.stats_file], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, preexec_fn=N.pdeathsig)
        lab.reg.add_proc("fragrelay-" + name, self.proc)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.stats_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise N.LabError("fragrelay for %s did not start" % name)
            time.sleep(0.05)

    def stats(self):
        """{'frames', 'held', 'overtaken', 'timed_out'}"""
        with open(self.stats_file) as f:
            return json.load(f)


class Capture:
    """tcpdump -i dev in namespace ns into path (headers only)."""

    def __init__(self, reg, ns, dev, path, expr="ip"):
        self.reg, self.path = reg, path
        self.errfile = path + ".err"
        err = open(self.errfile, "w")
        self.proc = subprocess.Popen(
            [N.IP, "netns", "exec", ns, TCPDUMP, "-i", dev, "-n", "-U", "--immediate-mode",
             "-s", "160",
             "-w", path, expr], stdout=subprocess.DEVNULL, stderr=err,
            stdin=subprocess.DEVNULL, preexec_fn=N.pdeathsig)
        err.close()
        reg.add_proc("tcpdump-" + dev, self.proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(self.errfile) as f:
                if "listening on" in f.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise N.LabError("tcpdump did not start: %s" % open(self.errfile).read())

    def stop(self):
        time.sleep(0.3)  # -U: let the last packets reach the file
        self.reg.stop_proc(self.proc)

    def ip_fragments(self):
        """-> [(src, ip id, offset, length)] of the IPv4 fragments, in
        arrival order."""
        if not os.path.exists(self.path):
            return []
        out = N.run([TCPDUMP, "-r", self.path, "-n", "-v",
                     "ip[6:2] & 0x3fff != 0"], check=False).stdout
        frags = []
        for m in re.finditer(r"id (\d+), offset (\d+), flags \[[^\]]*\], proto \w+ \(\d+\), "
                             r"length (\d+)\)\n\s+(\d+\.\d+\.\d+\.\d+)", out):
            frags.append((m.group(4), int(m.group(1)), int(m.group(2)), int(m.group(3))))
        return frags


    def ip6_fragments(self):
        """-> [(src, fragment id, offset, length)] of the IPv6 fragments
        (fragment header), in arrival order."""
        if not os.path.exists(self.path):
            return []
        out = N.run([TCPDUMP, "-r", self.path, "-n", "-v", "ip6"], check=False).stdout
        return [(m.group(1), int(m.group(2), 16), int(m.group(3)), int(m.group(4)))
                for m in re.finditer(r"(\S+) > \S+: frag \((0x[0-9a-f]+):(\d+)\|(\d+)\)",
                                     out)]


def datagrams(frags):
    """-> {(src, id): [offsets in arrival order]}"""
    out = {}
    for src, ident, off, _ in frags:
        out.setdefault((src, ident), []).append(off)
    return out
