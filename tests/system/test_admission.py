"""Admission control for new IKE SAs and ikelb's own COOKIE
(docs/security.md, "Admission"), with real strongSwan clients and servers
on the bpf engine (dnat):

- cookie_threshold 0: every client gets ikelb's COOKIE first, returns it,
  and comes up; the servers never asked for one;
- the servers also demand their own COOKIE (strongSwan cookie_threshold 1,
  IKE_AUTH held 1.5 s so SAs stay half-open): clients answer ikelb's, then
  the server's, and come up;
- a bounded spoofed IKE_SA_INIT flood (scapy, forged sources in
  198.18.100.0-198.18.105.255) with established clients pinging through
  their tunnels: with a rate limit the servers see at most the configured rate; after a
  reload that turns the cookie on (threshold 0) they see none of it.

Run: make -j2 all tests && IKELB_NO_SKIP=1 IKELB_BIN=$PWD/build/ikelb \
     IKELB_BUILD=$PWD/build /usr/bin/python3 -m pytest -q -p no:cacheprovider \
     tests/system/test_admission.py"""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from lab import netns as N
from lab.checks import assert_all_up, assert_pings, assert_server_view, log_counts
from lab.topology import VIP

pytestmark = pytest.mark.usefixtures("require_ikelb")

COOKIE_ALWAYS = {"admission": "{ cookie_threshold: 0 }"}
RATE, BURST = 20, 20
FLOOD = 1500  # sources 198.18.100.1 .. 198.18.105.250: inside 198.18.96.0/20

# Run by /usr/bin/python3 (scapy) in the attacker's namespace: argv count,
# VIP, balancer MAC. IKE_SA_INIT requests (SA, KE, Nonce) from forged
# sources, sent as fast as scapy goes; prints the count and the seconds.
FLOODER = r'''
import os, random, struct, sys, time
from scapy.all import Ether, IP, UDP, Raw, conf, sendp
conf.verb = 0
n, vip, mac = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def gen(np, body):
    return struct.pack("!BBH", np, 0, 4 + len(body)) + body
tr = [(1, 12, struct.pack("!HH", 0x800e, 128)), (2, 5, b""), (3, 12, b""), (4, 31, b"")]
trs = b"".join(struct.pack("!BBHBBH", 0 if i == len(tr) - 1 else 3, 0, 8 + len(a), t, 0, i_d) + a
               for i, (t, i_d, a) in enumerate(tr))
prop = struct.pack("!BBHBBBB", 0, 0, 8 + len(trs), 1, 1, 0, len(tr)) + trs
body = gen(34, prop) + gen(40, struct.pack("!HH", 31, 0) + os.urandom(32)) + gen(0, os.urandom(32))
pkts = []
for i in range(n):
    src = "198.18.%d.%d" % (100 + i // 250, 1 + i % 250)
    h = struct.pack("!QQBBBBII", random.getrandbits(64) | 1, 0, 33, 0x20, 34, 0x08, 0, 28 + len(body))
    pkts.append(Ether(dst=mac) / IP(src=src, dst=vip) / UDP(sport=500, dport=500) / Raw(h + body))
iface = conf.route.route(vip)[0]
t0 = time.monotonic()
sendp(pkts, iface=iface)
print(n, time.monotonic() - t0)
'''

# Counts IKE_SA_INIT requests (exchange 34, SPIr 0, not a response) that
# reach a server, from the flood's sources only and from anyone.
NFT = """table inet admitcnt {
  counter flood {}
  counter any {}
  chain in {
    type filter hook prerouting priority -300; policy accept;
    udp dport 500 @ih,64,64 0 @ih,144,8 34 ip saddr 198.18.96.0/20 counter name flood
    udp dport 500 @ih,64,64 0 @ih,144,8 34 counter name any
  }
}
"""


def flood(lab, attacker, n):
    mac = N.ns_run(lab.lb_ns, ["cat", "/sys/class/net/c0/address"]).stdout.strip()
    p = N.ns_run(attacker.ns, ["/usr/bin/python3", "-c", FLOODER, str(n), VIP, mac],
                 timeout=180)
    sent, secs = p.stdout.strip().splitlines()[-1].split()
    return int(sent), float(secs)


def count_inits(lab):
    """Install the counters in every server namespace (idempotent reset)."""
    for s in lab.servers:
        N.ns_run(s.ns, ["nft", "delete", "table", "inet", "admitcnt"], check=False)
        N.ns_run(s.ns, ["nft", "-f", "-"], input=NFT)


def inits_seen(lab):
    out = {"flood": 0, "any": 0}
    for s in lab.servers:
        p = N.ns_run(s.ns, ["nft", "-j", "list", "counters", "table", "inet", "admitcnt"])
        for item in json.loads(p.stdout)["nftables"]:
            c = item.get("counter")
            if c:
                out[c["name"]] += c["packets"]
    return out


def counters(lab):
    p = lab.balancer.ctl("stats", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    svc = json.loads(p.stdout)["services"][0]
    out = {k: v["packets"] for k, v in svc["counters"].items()}
    out.update({"drop_" + k: v["packets"] for k, v in svc["drops"].items()})
    return out


def metric(lab, name):
    sock = lab.balancer.api()[len("unix:"):]
    p = subprocess.run(["curl", "-s", "--unix-socket", sock, "http://ikelb/metrics"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    for line in p.stdout.splitlines():
        if line.startswith(name + " "):
            return int(line.split(" ")[1])
    raise AssertionError("no %s in /metrics" % name)


def delta(c0, c1):
    return {k: c1[k] - c0.get(k, 0) for k in c1 if c1[k] != c0.get(k, 0)}


def test_cookie_challenge_clients_up(make_lab, report):
    lab = make_lab("ikelb", balancer_opts={"extra_service": COOKIE_ALWAYS}, servers=2, clients=4)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_server_view(lab)
    assert_pings(lab)
    c = counters(lab)
    assert c.get("cookie_sent", 0) >= 4, c
    assert c.get("cookie_valid", 0) >= 4, c
    assert c.get("cookie_invalid", 0) == 0, c
    assert metric(lab, 'ikelb_cookies_total{service="vpn",result="valid"}') == c["cookie_valid"]
    # the servers never asked for a cookie of their own
    assert all(n == 0 for n, _ in log_counts(lab).values()), log_counts(lab)
    report(lab, results, "ikelb cookie (threshold 0): counters %s" % {
        k: v for k, v in c.items() if k.startswith("cookie")})


def test_cookie_then_server_cookie(make_lab, report):
    server = {"charon": {"receive_delay": 1500, "receive_delay_type": 35, "cookie_threshold": 1}}
    lab = make_lab("ikelb", balancer_opts={"extra_service": COOKIE_ALWAYS}, servers=1,
                   clients=4, server_opts=server)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_server_view(lab)
    assert_pings(lab)
    server_cookies = sum(n for n, _ in log_counts(lab).values())
    assert server_cookies > 0, "the server never demanded its own cookie: test proves nothing"
    c = counters(lab)
    assert c.get("cookie_valid", 0) >= 4, c
    report(lab, results, "ikelb cookie, then the server's: server COOKIE notifies %d, "
           "ikelb counters %s" % (server_cookies,
                                  {k: v for k, v in c.items() if k.startswith("cookie")}))


def established(lab):
    """The lab clients' ESTABLISHED IKE SAs, as the servers list them."""
    names = {c.name for c in lab.clients}
    return sum(1 for s in lab.servers for sa in lab.server_sas(s)
               if sa["state"] == "ESTABLISHED" and (sa["remote-id"] or "").split("@")[0] in names)


def pinging(lab, stop, failures):
    while not stop.is_set():
        for c in lab.clients[1:]:
            if not lab.ping_through_tunnel(c, count=3, timeout=2):
                failures.append(c.name)
        time.sleep(0.2)


def flood_round(lab, attacker):
    count_inits(lab)
    c0 = counters(lab)
    stop, failures = threading.Event(), []
    t = threading.Thread(target=pinging, args=(lab, stop, failures))
    t.start()
    try:
        sent, secs = flood(lab, attacker, FLOOD)
        time.sleep(1)
    finally:
        stop.set()
        t.join(timeout=60)
    return sent, secs, inits_seen(lab), delta(c0, counters(lab)), failures


def write_admission(lab, text):
    conf = open(lab.balancer.conf).read()
    start = conf.index("    admission:")
    end = conf.index("\n", start)
    with open(lab.balancer.conf, "w") as f:
        f.write(conf[:start] + "    admission: " + text + conf[end:])
    before = len(lab.balancer.log())
    os.kill(lab.balancer.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "reload: now 1 service(s)" in lab.balancer.log()[before:]:
            return
        time.sleep(0.1)
    raise AssertionError("no reload:\n%s" % lab.balancer.log()[before:])


def test_spoofed_init_flood(make_lab, report):
    adm = {"admission": "{ rate: %d, burst: %d }" % (RATE, BURST)}
    lab = make_lab("ikelb", balancer_opts={"extra_service": adm}, servers=2, clients=4)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    attacker = lab.clients[0]
    est0 = established(lab)
    assert est0 == len(lab.clients), est0

    sent, secs, seen, d, failures = flood_round(lab, attacker)
    assert established(lab) == est0
    assert not failures, "pings lost during the flood: %s" % failures
    allowed = BURST + RATE * (secs + 1) + 2  # +2: two CPUs may race on the bucket
    assert 0 < seen["flood"] <= allowed, (seen, secs, d)
    assert d.get("drop_admit_service", 0) >= sent - allowed, d
    assert d.get("drop_admit_service", 0) + seen["flood"] >= sent * 0.95, (seen, d)
    assert metric(lab, 'ikelb_drops_total{service="vpn",reason="admit_service"}') == \
        d["drop_admit_service"]
    rate_line = ("rate %d/s burst %d: sent %d spoofed INITs in %.1fs, servers received %d "
                 "(%d allowed), drop_admit_service %d, pings lost 0" % (
                     RATE, BURST, sent, secs, seen["flood"], allowed,
                     d.get("drop_admit_service", 0)))

    # reload: the cookie on top; spoofed INITs never reach the servers
    write_admission(lab, "{ rate: %d, burst: %d, cookie_threshold: 0 }" % (RATE, BURST))
    sent2, secs2, seen2, d2, failures2 = flood_round(lab, attacker)
    assert not failures2, "pings lost during the flood: %s" % failures2
    assert established(lab) == est0
    assert seen2["flood"] == 0, (seen2, d2)
    assert d2.get("cookie_sent", 0) >= sent2 * 0.95, d2
    assert d2.get("drop_admit_service", 0) == 0, d2
    assert_pings(lab)
    report(lab, results, "established IKE SAs before/after both floods: %d/%d\n%s\n"
           "cookie (threshold 0) after reload: sent %d in %.1fs, servers "
           "received %d, cookie_sent %d, pings lost 0\ncounter deltas %s / %s" % (
               est0, established(lab), rate_line, sent2, secs2, seen2["flood"],
               d2.get("cookie_sent", 0), d, d2))
