"""IPv6 end to end (issue #15, deliverable 3): real strongSwan clients and
servers over IPv6 through ikelb, with dnat, dsr and fullnat; a /64
persistence netmask keeps one client's privacy addresses on one server;
IKE health probes over IPv6 mark servers down and up. Addresses only from
2001:db8::/32, inside the lab's own namespaces (lab/topology.py)."""
import re
import time

import pytest

from lab import LB_CLIENT_ADDR6, LB_SERVER_ADDR6, VIP6
from lab import netns as N
from lab.checks import (assert_all_up, assert_no_invalid_spi, assert_pings,
                        assert_server_view, sas_by_client)

pytestmark = pytest.mark.usefixtures("require_ikelb")


def v6_lab(make_lab, balancer_opts, servers=2, clients=3, **kw):
    return make_lab("ikelb", balancer_opts=balancer_opts, servers=servers,
                    clients=clients, ipv6=True, **kw)


def assert_v6_view(lab):
    """Every server SA is IPv6 end to end: the server's own address and the
    client's real IPv6 address (never the balancer's)."""
    for s in lab.servers:
        for sa in lab.server_sas(s):
            assert ":" in sa["local-host"] and ":" in sa["remote-host"], sa
            assert sa["remote-host"] not in (LB_CLIENT_ADDR6, LB_SERVER_ADDR6), sa


REPLIES = re.compile(r"^\s+replies\s+(\d+) pkts", re.M)


def all_up_over_v6(lab, local_host):
    """All clients up and pinging over IPv6, each on one server that saw
    its real address and holds the SA on local_host(server). -> (results,
    replies ikelb rewrote)"""
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    assert_server_view(lab)
    assert_v6_view(lab)
    for s in lab.servers:
        for sa in lab.server_sas(s):
            assert sa["local-host"] == local_host(s), sa
    assert_no_invalid_spi(lab)
    m = REPLIES.search(lab.balancer.stats())
    return results, int(m.group(1)) if m else 0


def test_ipv6_dnat(make_lab, report):
    lab = v6_lab(make_lab, {"forwarding": "dnat", "persistence": "source-ip"})
    # dnat: the server's own address; its replies come back through ikelb
    results, replies = all_up_over_v6(lab, lambda s: s.addr6)
    assert replies > 0
    report(lab, results, "ipv6 dnat: %d replies rewritten by ikelb" % replies)


def test_ipv6_fullnat(make_lab, report):
    pool = ["2001:db8:5::2"]
    lab = v6_lab(make_lab, {"engine": "socket", "forwarding": "fullnat",
                            "persistence": "source-ip", "snat_pool": pool})
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    by_client = sas_by_client(lab)
    for c in lab.clients:
        entries = by_client.get(c.name, [])
        assert len(entries) == 1, (c.name, entries)
        server, sa = entries[0]
        assert sa["state"] == "ESTABLISHED", sa
        assert sa["remote-host"] in pool, sa  # fullnat: the servers see ikelb
        assert sa["local-host"] == lab.node(server).addr6, sa
    assert_no_invalid_spi(lab)
    report(lab, results, "ipv6 fullnat, snat_pool %s" % pool)


# dsr: charon does not count an address on lo as a usable source, so with
# MOBIKE a server moves every SA from the VIP to its own address right
# after IKE_AUTH ("sending address list update using MOBIKE, implicitly
# requesting an address change") and the clients follow it around the
# balancer. A dsr server needs `mobike = no` (docs/bpf-engine.md, dsr).
DSR_SERVER = {"conn": {"mobike": "no"}}


def test_ipv6_dsr(make_lab, report):
    lab = v6_lab(make_lab, {"forwarding": "dsr", "persistence": "source-ip"},
                 server_opts=DSR_SERVER)
    # dsr: the servers hold the VIP on lo and answer from it; IPv6 neighbour
    # discovery answers only for addresses on the asking interface, so
    # no arp_ignore counterpart is needed.
    for s in lab.servers:
        N.addr_add(s.ns, "lo", VIP6 + "/128")
    # the packets still named the VIP; replies leave from it, untouched
    results, replies = all_up_over_v6(lab, lambda s: VIP6)
    assert replies == 0
    report(lab, results, "ipv6 dsr: %d replies rewritten by ikelb" % replies)


def _terminate(client):
    client.charon.swanctl(["--terminate", "--ike", "vpn", "--timeout", "10"],
                          check=False, timeout=15)


def _initiate_from(lab, client, addr):
    """Bring the client's identity up again from source address `addr`."""
    ch = client.charon
    ch.swanctl_tree["connections"]["vpn"]["local_addrs"] = addr
    ch.write_config()
    ch.swanctl(["--load-conns"], timeout=20)
    return lab.initiate(client)


def test_ipv6_netmask64_keeps_privacy_addresses(make_lab, report):
    """One client identity from five addresses of its /64 (privacy
    addresses), one after another: with netmask6 64 every one lands on the
    server of the first. Three servers: a netmask that were ignored would
    pass by chance with probability (1/3)^4."""
    lab = v6_lab(make_lab, {"forwarding": "dnat", "persistence": "source-ip",
                            "netmask6": 64}, servers=3, clients=1)
    c = lab.clients[0]
    addrs = [c.addr6] + ["2001:db8:c:1:%x:%x:%x:%x" % (0x1000 + k, 0x2222 * k, 0x77 + k, k)
                         for k in range(1, 5)]
    for a in addrs[1:]:
        N.addr_add(c.ns, "eth0", a + "/48")
    placed = []
    for a in addrs:
        r = _initiate_from(lab, c, a)
        assert r.ok, r.output[-800:]
        entries = sas_by_client(lab).get(c.name, [])
        est = [(srv, sa) for srv, sa in entries if sa["state"] == "ESTABLISHED"]
        assert len(est) == 1, entries
        srv, sa = est[0]
        assert sa["remote-host"] == a, (sa["remote-host"], a)
        placed.append((a, srv))
        assert lab.ping_through_tunnel(c), a
        _terminate(c)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sas_by_client(lab).get(c.name):
            time.sleep(0.2)
    assert len({srv for _, srv in placed}) == 1, placed
    report(lab, None, "netmask6 64: %s" % placed)


def _health(lab, name):
    st = lab.balancer.status()
    return {s["name"]: s["health"] for s in st["services"][0]["servers"]}[name]


def _wait_health(lab, name, want, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _health(lab, name) == want:
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError("%s never %s:\n%s" % (name, want, lab.balancer.log()[-3000:]))


def test_ipv6_ike_health_probes(make_lab, report):
    """The IKE probe goes over IPv6 (the servers log it from the balancer's
    IPv6 address), a server whose charon dies is marked down and new
    clients go to the other one, and it comes back up."""
    lab = v6_lab(make_lab, {"forwarding": "dnat", "persistence": "source-ip"},
                 clients=3)
    for s in lab.servers:
        assert "received packet: from %s[" % LB_SERVER_ADDR6 in lab.server_log(s), s
        assert _health(lab, s.name) == "up"
    t_kill = lab.kill_charon("s1")
    t_down = _wait_health(lab, "s1", "down")
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_server_view(lab)
    assert {srv for srv, _ in sum(sas_by_client(lab).values(), [])} == {"s2"}
    lab.restart_charon("s1")
    t_up = _wait_health(lab, "s1", "up")
    report(lab, results, "s1 down %.1fs after its charon died; up %.1fs after restart"
           % (t_down - t_kill, t_up - t_down))
