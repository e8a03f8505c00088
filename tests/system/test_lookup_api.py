"""Lookup, client listing and honest counts through the API and the CLI,
on a socket-engine daemon on loopback with fake IKE clients: four clients
behind one address (a NAT) and one on another address, in both
persistence modes. (tests/system/test_lookup.py checks the same against
real strongSwan servers and both engines.)"""
import json

import pytest

from loopback import Client, Daemon, settle

NATED, DIRECT = "127.0.0.1", "127.0.0.2"


@pytest.fixture(params=["source-ip", "ike"])
def lab(request):
    d = Daemon(mode=request.param)
    clients = [Client(NATED, 0x1000 + i) for i in range(4)] + [Client(DIRECT, 0x2000)]
    for c in clients:
        c.connect(d)
    yield d, clients, request.param
    for c in clients:
        c.close()
    d.stop()


def test_counts_are_honest(lab):
    d, clients, mode = lab
    st = settle(d, len(clients))
    servers = st["services"][0]["servers"]
    assert sum(s["sas"] for s in servers) == 5, servers
    # Each server counts the addresses of its clients once.
    by_server = {}
    for c in clients:
        r = json.loads(d.cli("lookup", "%s:%d" % (c.addr, c.port), "--json").stdout)
        by_server.setdefault(r["server"], set()).add(c.addr)
    for s in servers:
        assert s["client_addresses"] == len(by_server.get(s["name"], ())), (s, by_server)
    if mode == "source-ip":  # one NAT address: all its clients on one server
        assert len({json.loads(d.cli("lookup", "%s:%d" % (c.addr, c.port), "--json")
                               .stdout)["server"] for c in clients[:4]}) == 1
    text = d.cli("status").stdout
    assert "SAS" in text and "ADDRS" in text, text


def test_lookup_address_lists_every_client_behind_a_nat(lab):
    d, clients, mode = lab
    settle(d, len(clients))
    r = d.get_json("/v1/lookup?addr=" + NATED)
    flows = [e for e in r["entries"] if e["table"] == "flow"]
    assert sorted(e["client_port"] for e in flows) == sorted(c.port for c in clients[:4])
    assert r["rule"] == "flow" and r["server"] in ("a", "b")
    assert r["last_seen"] >= 0 and r["expires_in"] > 0
    persist = [e for e in r["entries"] if e["table"] == "persist"]
    assert len(persist) == (1 if mode == "source-ip" else 0)
    out = d.cli("lookup", "%s:%d" % (NATED, clients[1].port))
    assert out.returncode == 0 and "rule flow" in out.stdout, out


def test_lookup_spi_in_both_modes(lab):
    d, clients, mode = lab
    settle(d, len(clients))
    for c in clients:
        r = json.loads(d.cli("lookup", "--spi", "%016x" % c.spi_i, "--json").stdout)
        assert r["rule"] == "sa" and r["table"] == "sa", r
        by_addr = json.loads(d.cli("lookup", "%s:%d" % (c.addr, c.port), "--json").stdout)
        assert r["server"] == by_addr["server"]
    # Unknown SPI: ike mode places it by hashing (fallback); source-ip knows nothing.
    code, body = d.http("GET", "/v1/lookup?spi=00000000deadbeef")
    if mode == "ike":
        assert code == 200 and json.loads(body)["rule"] == "fallback"
    else:
        assert code == 404, body
    assert d.http("GET", "/v1/lookup?spi=zz")[0] == 400
    assert d.http("GET", "/v1/lookup")[0] == 400


def test_clients_listing_pages(lab):
    d, clients, mode = lab
    settle(d, len(clients))
    full = d.get_json("/v1/clients?limit=1000")
    # flows + SAs (+ persistence for two addresses in source-ip mode)
    assert full["total"] == 5 + 5 + (2 if mode == "source-ip" else 0), full
    page = d.get_json("/v1/clients?offset=2&limit=3")
    assert len(page["clients"]) == 3 and page["total"] == full["total"]
    srv = full["clients"][0]["server"]
    mine = json.loads(d.cli("clients", "--server", srv, "--json").stdout)
    assert mine["total"] and all(e["server"] == srv for e in mine["clients"])
    text = d.cli("clients", "--limit", "2").stdout
    assert "entries 1-2 of %d" % full["total"] in text, text
