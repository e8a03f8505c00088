"""Lookup and honest counts against real strongSwan servers: direct and
NATed clients, both persistence modes, both engines (bpf dnat, socket
fullnat). ikelb's per-server `sas` must equal what each server's
`swanctl --list-sas` holds, `client_addresses` the distinct addresses the
server sees (dnat), and `ikelb lookup` must name the server that holds
each SA, by SPIi and (dnat) by the address:port the server sees."""
import json

import pytest

from lab.checks import assert_all_up

pytestmark = pytest.mark.usefixtures("require_ikelb")

CASES = [("bpf", "source-ip"), ("bpf", "ike"), ("socket", "source-ip"), ("socket", "ike")]


def lookup(lab, *args):
    p = lab.balancer.ctl("lookup", "--json", *args)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def spi_hex(s):
    return s.replace("0x", "").replace(":", "")


@pytest.mark.parametrize("engine,persistence", CASES)
def test_counts_and_lookup_match_the_servers(make_lab, report, engine, persistence):
    fwd = "dnat" if engine == "bpf" else "fullnat"
    # fullnat: every client reaches a server from the balancer's address,
    # so stay under strongSwan's per-IP half-open limits.
    nat = 3 if engine == "bpf" else 2
    lab = make_lab("ikelb", balancer_opts={"engine": engine, "forwarding": fwd,
                                           "persistence": persistence},
                   servers=2, clients=2, nat_clients=nat)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    st = lab.balancer.status()
    held = {s["name"]: s for s in st["services"][0]["servers"]}
    seen = {}
    for s in lab.servers:
        sas = lab.server_sas(s)
        seen[s.name] = len(sas)
        assert held[s.name]["sas"] == len(sas), (s.name, held[s.name], len(sas))
        if fwd == "dnat":
            addrs = {sa["remote-host"] for sa in sas}
            assert held[s.name]["client_addresses"] == len(addrs), (s.name, held[s.name], addrs)
        for sa in sas:
            r = lookup(lab, "--spi", spi_hex(sa["initiator-spi"]))
            assert r["server"] == s.name and r["rule"] == "sa", (sa, r)
            if fwd == "dnat":
                r = lookup(lab, "%s:%d" % (sa["remote-host"], sa["remote-port"]))
                assert r["server"] == s.name and r["rule"] == "flow", (sa, r)
    assert sum(seen.values()) == 2 + nat
    report(lab, results, "%s/%s: SAs per server (swanctl) %s, ikelb sas %s" % (
        engine, persistence, seen, {n: h["sas"] for n, h in held.items()}))
