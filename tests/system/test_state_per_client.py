"""Kernel state per established client, counted with REAL strongSwan
clients through the bpf engine (dnat), both persistence modes: how many
flow, SA, half-open and persistence entries each client holds once its SA
is up and ESP has flowed. What the bench charges per client
(bench/bench_bpf.py, docs/performance.md "Kernel memory per client") must
be what the data path really keeps.

Behind dnat every initiator floats to 4500 for IKE_AUTH (the server's
NAT_DETECTION hash names its own address, not the VIP) and strongSwan's
MOBIKE floats anyway: the IKE_SA_INIT on 500 writes only the half-open
table, so a client holds exactly ONE flow entry (vip_port 4500).

Run: /usr/bin/python3 -m pytest -q tests/system/test_state_per_client.py
(root, IKELB_BIN)."""
import collections
import json
import time

import pytest

from lab.checks import assert_all_up, assert_pings

pytestmark = pytest.mark.usefixtures("require_ikelb")

CLIENTS, NAT_CLIENTS = 2, 2


def entries(lab):
    """Every live state entry the daemon lists (/v1/clients)."""
    p = lab.balancer.ctl("clients", "--json", "--limit", "10000")
    assert p.returncode == 0, p.stdout + p.stderr
    page = json.loads(p.stdout)
    assert page["total"] == len(page["clients"]), page
    return page["clients"]


def server_view(lab):
    """{(address, port) a server sees: server name}, one per IKE SA."""
    sas = {}
    for s in lab.servers:
        for sa in lab.server_sas(s):
            sas[(sa["remote-host"], int(sa["remote-port"]))] = s.name
    return sas


def server_spis(lab):
    return {sa["initiator-spi"].replace("0x", "").replace(":", "").zfill(16)
            for s in lab.servers for sa in lab.server_sas(s)}


def counted(lab, persistence):
    """Entries per table, checked against what the servers hold: one flow
    per client (the floated 4500 one, on its SA's server), one SA, no
    half-open SA, one persistence entry per address (source-ip)."""
    sas = server_view(lab)
    n = CLIENTS + NAT_CLIENTS
    assert len(sas) == n, sas
    ents = entries(lab)
    by = collections.Counter(e["table"] for e in ents)
    flows = [e for e in ents if e["table"] == "flow"]
    assert len(flows) == n, flows
    assert {(e["client"], e["client_port"]): e["server"] for e in flows} == sas, (flows, sas)
    assert all(e["vip_port"] == 4500 for e in flows), flows
    assert by["halfopen"] == 0, by  # every SA was promoted
    addrs = {a for a, _ in sas}
    assert by["persist"] == (len(addrs) if persistence == "source-ip" else 0), (by, addrs)
    assert set(by) <= {"flow", "sa", "persist"}, by
    return by, addrs, [e["spi"] for e in ents if e["table"] == "sa"]


@pytest.mark.parametrize("persistence", ["ike", "source-ip"])
def test_entries_per_established_client(make_lab, report, persistence):
    lab = make_lab("ikelb", balancer_opts={"engine": "bpf", "forwarding": "dnat",
                                           "persistence": persistence},
                   servers=2, clients=CLIENTS, nat_clients=NAT_CLIENTS)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)  # ESP both ways: the replies teach flows too (reply_learn)
    by, addrs, sa_spis = counted(lab, persistence)
    # The SA entries are exactly the servers' IKE SAs (by SPIi).
    assert sorted(sa_spis) == sorted(server_spis(lab)), (sa_spis, server_spis(lab))
    report(lab, results, "%s: %d clients (%d addresses): entries %s" % (
        persistence, CLIENTS + NAT_CLIENTS, len(addrs), dict(by)))


# As tests/system/test_ike_steering.py (shorter rekey times lose SAs).
REKEY_CLIENT = {"conn": {"rekey_time": "10s", "rand_time": "1s"},
                "child": {"rekey_time": "6s", "rand_time": "1s"}}


def test_entries_after_ike_rekey(make_lab, report):
    """An IKE rekey gives the client a new SPIi on the same 4500 flow: still
    one flow entry. The rekeyed SA's new SPIs travel encrypted, so the old
    SA's entry cannot be matched to the new one: it stays until idle past
    the persistence timeout (swept) or the LRU takes it first (it is the
    least recently used; a quiet SA without DPD also goes idle: its flow
    carries it). The new SA's entry is learned from the server's first
    protected reply on it. Measured, so the bench's figure says so."""
    lab = make_lab("ikelb", balancer_opts={"engine": "bpf", "forwarding": "dnat",
                                           "persistence": "ike"},
                   servers=2, clients=CLIENTS, nat_clients=NAT_CLIENTS,
                   client_opts=REKEY_CLIENT)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    first = server_spis(lab)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        now = server_spis(lab)
        if len(now) == len(first) and not now & first:
            break
        time.sleep(1)
    assert len(now) == len(first) and not now & first, (first, now)
    assert_pings(lab)
    by, _, sa_spis = counted(lab, "ike")
    cur = server_spis(lab)
    stale = [s for s in sa_spis if s in first]
    assert len(set(sa_spis)) == len(sa_spis) and set(sa_spis) <= cur | first, (sa_spis, cur, first)
    report(lab, results, "after one IKE rekey per client: entries %s; SA entries of the "
           "current SAs %d, of the rekeyed-away SAs %d (idle until the persistence "
           "timeout)" % (dict(by), len(sa_spis) - len(stale), len(stale)))


def test_entries_ikev1_natt(make_lab, report):
    """IKEv1 (Main Mode): messages 3-4 go in the clear on 500 with both
    cookies set, and NAT-T floats the client to 4500 with message 5, the
    first encrypted one. A flow learned from message 3 was left behind on
    500 (2 flows per client, fixed: ike_teaches_flow); now one, on 4500."""
    lab = make_lab("ikelb", balancer_opts={"engine": "bpf", "forwarding": "dnat",
                                           "persistence": "ike"},
                   servers=2, clients=CLIENTS, nat_clients=NAT_CLIENTS,
                   server_opts={"conn": {"version": 0}}, client_opts={"conn": {"version": 1}})
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    by, addrs, sa_spis = counted(lab, "ike")
    assert sorted(sa_spis) == sorted(server_spis(lab)), (sa_spis, server_spis(lab))
    report(lab, results, "IKEv1: %d clients (%d addresses): entries %s" % (
        CLIENTS + NAT_CLIENTS, len(addrs), dict(by)))
