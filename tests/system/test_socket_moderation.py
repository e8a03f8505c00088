"""The socket engine's receive moderation (socket.coalesce_usecs,
src/engine/sock_mod.c) and socket.workers with real strongSwan peers: at
the largest bound (1000 us) and two workers, tunnels come up through the
relay and carry a bounded ping flood; the flood makes the workers wait
(ikelb_socket_coalesce_waits_total grows: the knob is live), while a
client's handshake on an otherwise idle balancer (IKE_SA_INIT first) is
never held: no wait is counted while it runs. No timing thresholds: the
engine's own counters say whether a datagram was held.

Run: IKELB_NO_SKIP=1 IKELB_BIN=$PWD/build/ikelb /usr/bin/python3 -m pytest -q \
tests/system/test_socket_moderation.py (root)."""
import os
import re
import signal
import subprocess
import time

import pytest

from lab import netns as N
from lab.checks import assert_all_up, assert_no_invalid_spi, assert_pings
from lab.strongswan import PROTECTED

pytestmark = pytest.mark.usefixtures("require_ikelb")

BOUND_US = 1000  # the largest socket.coalesce_usecs
OPTS = {"engine": "socket", "forwarding": "fullnat", "persistence": "source-ip",
        "snat_pool": ["198.51.100.2", "198.51.100.3"],
        "extra_yaml": "socket: { workers: 2, coalesce_usecs: %d }\n" % BOUND_US}
FLOOD = 1000  # echo requests per client, 1 ms apart


def metrics(lab):
    sock = lab.balancer.api()[len("unix:"):]
    p = subprocess.run(["curl", "-s", "--unix-socket", sock, "http://ikelb/metrics"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"(ikelb_socket_\w+) ([0-9.]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    assert "ikelb_socket_coalesce_waits_total" in out, p.stdout[-2000:]
    return out


def flood(lab, client):
    """A bounded ping flood through client's tunnel: FLOOD requests, 1 ms
    apart, at most 20 s. -> replies received."""
    c = lab.node(client)
    return subprocess.Popen([N.IP, "netns", "exec", c.ns, "ping", "-n", "-q", "-i", "0.001",
                             "-c", str(FLOOD), "-w", "20", "-s", "100", PROTECTED],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def received(out):
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m.group(2))


def test_moderation_at_its_bound_relays_and_never_holds_a_lone_handshake(make_lab, report):
    lab = make_lab("ikelb", balancer_opts=OPTS, servers=2, clients=4)
    log = lab.balancer.log()
    assert "2 workers" in log and "coalesce %d us" % BOUND_US in log, log[-2000:]
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)

    before = metrics(lab)
    procs = {c.name: flood(lab, c.name) for c in lab.clients}
    got = {}
    for name, p in procs.items():
        out, _ = p.communicate(timeout=40)
        got[name] = received(out)
    after = metrics(lab)
    waits = after["ikelb_socket_coalesce_waits_total"] - before["ikelb_socket_coalesce_waits_total"]
    dgrams = after["ikelb_socket_datagrams_total"] - before["ikelb_socket_datagrams_total"]
    wakes = after["ikelb_socket_wakes_total"] - before["ikelb_socket_wakes_total"]
    held = (after["ikelb_socket_coalesce_wait_seconds_total"]
            - before["ikelb_socket_coalesce_wait_seconds_total"])
    # Held datagrams are delayed, not lost: the tunnels carry the flood.
    for name, n in got.items():
        assert n >= 0.9 * FLOOD, (name, got)
    assert dgrams >= 2 * 0.9 * FLOOD * len(lab.clients), (dgrams, got)
    assert waits > 0, "no moderation wait during the flood: %s -> %s" % (before, after)
    # Every wait within the bound (the timer slack is 1 us).
    assert held <= waits * BOUND_US * 1e-6 + 1e-9, (held, waits)

    # Idle, then one client's whole handshake (IKE_SA_INIT, IKE_AUTH):
    # sparse traffic, never held.
    c1 = lab.clients[0]
    c1.charon.swanctl(["--terminate", "--ike", "vpn", "--timeout", "10"], check=False,
                      timeout=15)
    time.sleep(2)
    idle = metrics(lab)
    res = lab.initiate(c1)
    assert res.ok, res.output
    done = metrics(lab)
    assert done["ikelb_socket_datagrams_total"] > idle["ikelb_socket_datagrams_total"]
    assert done["ikelb_socket_coalesce_waits_total"] == idle["ikelb_socket_coalesce_waits_total"], (
        idle, done)
    assert lab.ping_through_tunnel(c1.name)
    assert_no_invalid_spi(lab)
    refused_on_reload(lab)
    report(lab, results, "flood: %s replies of %d per client; %d datagrams in %d wakes "
           "(%.1f per wake), %d waits (%.3f s held); handshake of %s on an idle balancer: "
           "%d datagrams, 0 waits" % (
               got, FLOOD, dgrams, wakes, dgrams / max(wakes, 1), waits, held, c1.name,
               done["ikelb_socket_datagrams_total"] - idle["ikelb_socket_datagrams_total"]))


def refused_on_reload(lab):
    """The socket keys are read at start: a reload that changes them is
    refused (not silently ignored), and the engine keeps running."""
    conf = open(lab.balancer.conf).read()
    assert "coalesce_usecs: %d" % BOUND_US in conf, conf
    with open(lab.balancer.conf, "w") as f:
        f.write(conf.replace("coalesce_usecs: %d" % BOUND_US, "coalesce_usecs: 0"))
    before = len(lab.balancer.log())
    os.kill(lab.balancer.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "needs a restart" not in lab.balancer.log()[before:] and time.monotonic() < deadline:
        time.sleep(0.1)
    new = lab.balancer.log()[before:]
    assert "needs a restart" in new and "'socket' changed" in new, new
    with open(lab.balancer.conf, "w") as f:
        f.write(conf)
    assert lab.balancer.proc.poll() is None
    assert lab.ping_through_tunnel(lab.clients[1].name)
