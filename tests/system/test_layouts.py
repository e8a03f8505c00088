"""Layouts beside two-arm dnat (docs/layouts.md), with real strongSwan
peers through ikelb's bpf engine:

- two-arm dsr, the VIP on ikelb's c0, the servers' gateway a separate
  router: replies go straight to the clients (none reaches ikelb);
- two-arm dsr, the servers' gateway ikelb itself (the layout of issue 15,
  which the kernel dropped as "martian source"): works with accept_local=1
  on ikelb's servers' side, and without it ikelb warns at start;
- one arm (ikelb, servers and the clients' router on one segment) with
  dnat and with dsr.

Raw ESP: strongSwan 5.9.8's kernel-libipsec can only do UDP-encapsulated
ESP (it forces NAT-T), so raw ESP is sent with raw IP sockets here, after
the real clients are up, and must arrive at the server that holds the
client's SA (dsr: to the VIP; dnat: to the server's address, and its
answer leaves with the VIP as source)."""
import json

import pytest

from lab import VIP
from lab import layouts as L
from lab import netns as N
from lab.checks import assert_all_up, assert_pings, assert_server_view, sas_by_client

pytestmark = pytest.mark.usefixtures("require_ikelb")

DSR_WARNING = "is a local address here and net.ipv4.conf.s0.accept_local is 0"
ESP_SPI = 0xc0ffee01
ESP_COUNT = 3
TWO_ARM_DSR = {"forwarding": "dsr", "interfaces": {"public": ["c0"], "servers": ["s0"]}}


def counters(lab):
    p = lab.balancer.ctl("stats", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    svc = json.loads(p.stdout)["services"][0]
    out = {k: v["packets"] for k, v in svc["counters"].items()}
    out.update({"drop_" + k: v["packets"] for k, v in svc["drops"].items() if v["packets"]})
    return out


def server_of(lab, client):
    entries = sas_by_client(lab)[client.name]
    assert len(entries) == 1, entries
    return lab.node(entries[0][0])


def up_and_pinging(lab):
    results = lab.initiate_all(timeout=20)
    assert_all_up(lab, results)
    assert_pings(lab)
    assert_server_view(lab)  # one SA per client, the client's own address
    return results


def raw_esp_to_vip(lab, client, want_dst):
    """ESP_COUNT raw ESP datagrams client -> VIP: every one arrives at the
    server holding the client's SA, from the client, to want_dst(server);
    no other server sees any."""
    before = counters(lab)
    listeners = {s.name: L.raw_esp_listen(s.ns, 4) for s in lab.servers}
    L.raw_esp_send(client.ns, VIP, ESP_SPI, ESP_COUNT)
    seen = {n: L.raw_esp_collect(p, 10) for n, p in listeners.items()}
    owner = server_of(lab, client)
    want = [(client.addr, want_dst(owner), "%08x" % ESP_SPI)] * ESP_COUNT
    assert seen[owner.name] == want, (seen, {k: (before.get(k), v) for k, v in counters(lab).items() if v != before.get(k)})
    assert not any(v for n, v in seen.items() if n != owner.name), seen
    after = counters(lab)
    assert after["esp_raw"] - before["esp_raw"] == ESP_COUNT, (before, after)
    assert after["steer_flow"] - before["steer_flow"] == ESP_COUNT, (before, after)
    return owner


NAT_HERE = "local host is behind NAT"


def nat_detection(lab):
    """-> {server: True when its charon detected a NAT in front of itself}
    and the clients' CHILD SAs' encap flags. kernel-libipsec fakes its own
    NAT-D source hash (it requires UDP encapsulation), so both peers always
    see the *other* side "behind NAT"; whether the server's own address
    matched the client's NAT-D destination hash is the part that tells
    whether a kernel-ESP peer would send raw ESP."""
    here = {s.name: NAT_HERE in lab.server_log(s) for s in lab.servers if lab.server_sas(s)}
    encap = {ch.get("encap") for c in lab.clients for sa in lab.client_sas(c)
             for ch in sa["children"]}
    return here, encap


def test_dsr_replies_bypass_ikelb(make_lab, report):
    lab = make_lab("ikelb", balancer_opts=TWO_ARM_DSR, servers=2, clients=4,
                   dsr=True, server_gw="router", vip_on="c0")
    L.nft_count_vip_source(lab.lb_ns, VIP)
    L.nft_count_vip_source(lab.gw_ns, VIP)
    results = up_and_pinging(lab)
    c = counters(lab)
    assert c["replies"] == 0, c
    assert L.nft_counter(lab.lb_ns) == 0  # no reply from the VIP ever reached ikelb
    # every client's IKE responses, ESP and pings came back through the router
    assert L.nft_counter(lab.gw_ns) >= 4 * (2 + 2), L.nft_counter(lab.gw_ns)
    # the VIP is local on ikelb and accept_local is off: harmless here (the
    # replies bypass ikelb), and exactly what ikelb warns about at start
    assert DSR_WARNING in lab.balancer.log(), lab.balancer.log()
    # The server owns the VIP: NAT-D matches, no NAT here (raw ESP with a
    # kernel-ESP peer); libipsec still encapsulates.
    here, encap = nat_detection(lab)
    assert here and not any(here.values()), here
    assert encap == {"yes"}, encap
    raw_esp_to_vip(lab, lab.clients[0], lambda s: VIP)
    report(lab, results, "ikelb: %s; VIP-sourced packets at ikelb %d, at the router %d"
           % (counters(lab), L.nft_counter(lab.lb_ns), L.nft_counter(lab.gw_ns)))


def test_dsr_through_ikelb_with_accept_local(make_lab, report):
    """The issue's layout: the servers' gateway is ikelb, which also holds
    the VIP. The kernel accepts the VIP as a forwarded source only with
    accept_local (and rp_filter not strict)."""
    lab = make_lab(None, servers=2, clients=2, dsr=True, vip_on="c0")
    N.sysctl(lab.lb_ns, "net.ipv4.conf.s0.accept_local=1")
    N.sysctl(lab.lb_ns, "net.ipv4.conf.s0.rp_filter=2")
    from lab import start_balancer
    start_balancer(lab, "ikelb", **TWO_ARM_DSR)
    L.nft_count_vip_source(lab.lb_ns, VIP)
    results = up_and_pinging(lab)
    assert DSR_WARNING not in lab.balancer.log()
    assert "dsr service" not in lab.balancer.log()
    assert L.nft_counter(lab.lb_ns) > 0  # the replies did pass ikelb's kernel
    assert counters(lab)["replies"] == 0   # ... untranslated: no dnat reply path
    report(lab, results, "ikelb: %s" % counters(lab))


def test_one_arm_dnat(make_lab, report):
    lab = make_lab("ikelb", balancer_opts={"forwarding": "dnat", "interfaces": ["c0"]},
                   servers=2, clients=4, one_arm=True)
    results = up_and_pinging(lab)
    c = counters(lab)
    assert c["replies"] > 0, c
    # dnat: the server sees its own address, not the VIP the client hashed:
    # a NAT in front of itself, so UDP encapsulation whatever the peers
    here, _ = nat_detection(lab)
    assert here and all(here.values()), here
    client = lab.clients[0]
    owner = raw_esp_to_vip(lab, client, lambda s: s.addr)
    # the server's raw ESP to the client leaves ikelb with the VIP as source
    listener = L.raw_esp_listen(client.ns, 4)
    L.raw_esp_send(owner.ns, client.addr, ESP_SPI + 1, ESP_COUNT)
    got = L.raw_esp_collect(listener, 10)
    assert got == [(VIP, client.addr, "%08x" % (ESP_SPI + 1))] * ESP_COUNT, got
    report(lab, results, "ikelb: %s" % counters(lab))


def test_one_arm_dsr(make_lab, report):
    lab = make_lab("ikelb", balancer_opts={"forwarding": "dsr", "interfaces": ["c0"]},
                   servers=2, clients=4, one_arm=True, dsr=True, server_gw="router")
    L.nft_count_vip_source(lab.lb_ns, VIP)
    L.nft_count_vip_source(lab.rt_ns, VIP)
    results = up_and_pinging(lab)
    assert counters(lab)["replies"] == 0
    assert L.nft_counter(lab.lb_ns) == 0
    assert L.nft_counter(lab.rt_ns) >= 4 * (2 + 2)
    raw_esp_to_vip(lab, lab.clients[1], lambda s: VIP)
    report(lab, results, "ikelb: %s; VIP-sourced packets at ikelb %d, at the router %d"
           % (counters(lab), L.nft_counter(lab.lb_ns), L.nft_counter(lab.rt_ns)))
