"""Spoofed traffic against established clients (docs/security.md): ikelb
engine bpf, dnat, `ike` persistence, 16-entry tables, real strongSwan
clients pinging through their tunnels while one client namespace sends
(scapy, forged sources):

- replies that claim a real server's address:4500 (and the VIP's) toward
  every victim client (a 1-byte keepalive used to move the victim's flow to
  that server: its tunnel died ~20 s later);
- fake clients: IKE_SA_INIT, IKE_AUTH with a guessed SPIr, IKEv1 Main Mode,
  from random forged sources (three datagrams per fake client used to
  evict every established client's entries from 16-entry tables).

Every established client must keep its tunnel and its server; the counters
must show the drops, and /metrics the table pressure.

Run: make -j2 all tests && IKELB_NO_SKIP=1 IKELB_BIN=$PWD/build/ikelb \
     IKELB_BUILD=$PWD/build /usr/bin/python3 -m pytest -q -p no:cacheprovider \
     tests/system/test_spoof.py"""
import json
import subprocess
import time

import pytest

from lab import netns as N
from lab.checks import assert_all_up, assert_pings, sas_by_client
from lab.topology import VIP

pytestmark = pytest.mark.usefixtures("require_ikelb")

LIMITS = {"max_clients": 16, "max_flows": 16, "max_halfopen": 16}
FAKES = 200

# Run by /usr/bin/python3 (scapy) inside the attacker's namespace. argv:
# mode, its arguments, then the VIP and the balancer's MAC (every frame goes
# to the balancer, out of the interface toward the VIP).
SPOOFER = r'''
import os, random, struct, sys
from scapy.all import Ether, IP, UDP, Raw, conf, sendp
conf.verb = 0
mode = sys.argv[1]
def ike(spi_i, spi_r, np, ver, exch, flags, body, marker=False):
    h = struct.pack("!QQBBBBII", spi_i, spi_r, np, ver, exch, flags, 1 if exch == 35 else 0,
                    28 + len(body))
    return (b"\0\0\0\0" if marker else b"") + h + body
def gen(np, body):
    return struct.pack("!BBH", np, 0, 4 + len(body)) + body
def sa_init(spi):
    tr = [(1, 12, struct.pack("!HH", 0x800e, 128)), (2, 5, b""), (3, 12, b""), (4, 31, b"")]
    trs = b"".join(struct.pack("!BBHBBH", 0 if i == len(tr) - 1 else 3, 0, 8 + len(a), t, 0, i_d) + a
                   for i, (t, i_d, a) in enumerate(tr))
    prop = struct.pack("!BBHBBBB", 0, 0, 8 + len(trs), 1, 1, 0, len(tr)) + trs
    body = gen(34, prop) + gen(40, struct.pack("!HH", 31, 0) + os.urandom(32)) + gen(0, os.urandom(32))
    return ike(spi, 0, 33, 0x20, 34, 0x08, body)
pkts = []
if mode == "replies":
    # The victims share the attacker's subnet: aim at the balancer's MAC,
    # where the replies of the servers come from in a one-router network.
    servers, victims = sys.argv[2].split(","), sys.argv[3].split(",")
    for v in victims:
        for src in servers + [sys.argv[4]]:
            for dport in (4500, 500):
                pkts.append(IP(src=src, dst=v) / UDP(sport=4500, dport=dport) / Raw(b"\xff"))
else:
    n = int(sys.argv[2])
    for i in range(n):
        src = "198.18.%d.%d" % (100 + i // 250, 1 + i % 250)
        spi = random.getrandbits(64) | 1
        pkts.append(IP(src=src, dst=sys.argv[-2]) / UDP(sport=500, dport=500) / Raw(sa_init(spi)))
        auth = ike(spi, random.getrandbits(64) | 1, 46, 0x20, 35, 0x08, gen(35, os.urandom(80)), True)
        pkts.append(IP(src=src, dst=sys.argv[-2]) / UDP(sport=4500, dport=4500) / Raw(auth))
        mm = ike(random.getrandbits(64) | 1, 0, 1, 0x10, 2, 0, os.urandom(52))
        pkts.append(IP(src=src, dst=sys.argv[-2]) / UDP(sport=500, dport=500) / Raw(mm))
iface = conf.route.route(sys.argv[-2])[0]
sendp([Ether(dst=sys.argv[-1]) / p for p in pkts], iface=iface, inter=0.001)
print(len(pkts))
'''


def spoof(lab, attacker, *args):
    mac = N.ns_run(lab.lb_ns, ["cat", "/sys/class/net/c0/address"]).stdout.strip()
    p = N.ns_run(attacker.ns, ["/usr/bin/python3", "-c", SPOOFER] + [str(a) for a in args] +
                 [VIP, mac], timeout=120)
    return int(p.stdout.strip().splitlines()[-1])


def counters(lab):
    p = lab.balancer.ctl("stats", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    svc = json.loads(p.stdout)["services"][0]
    out = {k: v["packets"] for k, v in svc["counters"].items()}
    out.update({"drop_" + k: v["packets"] for k, v in svc["drops"].items()})
    return out


def metrics(lab):
    sock = lab.balancer.api()[len("unix:"):]
    p = subprocess.run(["curl", "-s", "--unix-socket", sock, "http://ikelb/metrics"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return {line.split(" ")[0]: int(line.split(" ")[1]) for line in p.stdout.splitlines()
            if line.startswith("ikelb_table_")}


def placement(lab):
    """{client: [servers holding its IKE SAs]}, the lab's clients only (the
    fake clients' half-open SAs show up as '%any')."""
    names = {c.name for c in lab.clients}
    return {c: [e[0] for e in entries] for c, entries in sas_by_client(lab).items()
            if c in names}


@pytest.mark.parametrize("ifaces", ["list", "map"])
def test_spoofed_replies_and_fake_clients_leave_tunnels_up(make_lab, report, ifaces):
    opts = {"forwarding": "dnat", "persistence": "ike", "limits": LIMITS}
    if ifaces == "map":
        opts["interfaces"] = {"public": ["c0"], "servers": ["s0"]}
    lab = make_lab("ikelb", balancer_opts=opts, servers=2, clients=4)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    where = placement(lab)
    c0 = counters(lab)
    attacker = lab.clients[0]
    victims = ",".join(lab.public_addr(c) for c in lab.clients[1:])
    sent_replies = spoof(lab, attacker, "replies", ",".join(s.addr for s in lab.servers),
                         victims, VIP)
    sent_fakes = spoof(lab, attacker, "fakes", FAKES)
    # Long enough for a moved flow to break its tunnel (ESP to the wrong
    # server, DPD): the tunnels must still carry pings, on the same servers.
    deadline = time.time() + 25
    while time.time() < deadline:
        assert_pings(lab)
        time.sleep(5)
    assert placement(lab) == where
    c1 = counters(lab)
    d = {k: c1[k] - c0.get(k, 0) for k in c1 if c1[k] != c0.get(k, 0)}
    assert d.get("drop_spoofed_reply", 0) == sent_replies, d
    m = metrics(lab)
    assert m['ikelb_table_capacity{table="halfopen"}'] == 16, m
    assert m['ikelb_table_inserts_total{table="halfopen"}'] >= 2 * FAKES, m
    assert m['ikelb_table_evictions_total{table="halfopen"}'] > 0, m
    assert m['ikelb_table_evictions_total{table="flow"}'] == 0, m
    assert m['ikelb_table_evictions_total{table="sa"}'] == 0, m
    assert d.get("halfopen_full", 0) > 0, d
    report(lab, results, "interfaces %s: sent %d spoofed replies, %d fake-client datagrams\n"
           "counter deltas %s\ntables %s" % (ifaces, sent_replies, sent_fakes, d, m))
