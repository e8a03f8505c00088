"""The lab itself, with plain-Linux balancers (no ikelb): proves the
topology and the server-side checks work, and reproduces the problems
ikelb exists to solve."""
from lab import LB_SERVER_ADDR, NAT_PUBLIC
from lab.checks import (assert_all_up, assert_no_invalid_spi, assert_pings,
                        assert_server_view, log_counts, sas_by_client)

SLOW_AUTH_SERVER = {"charon": {"receive_delay": 1500, "receive_delay_type": 35}}
# The global COOKIE threshold (10 half-open SAs per server) depends on how many
# clients land on one server; the tests are about the per-IP limits, so it
# is raised for the destination-NAT runs (per-IP thresholds stay default).
SLOW_AUTH_SERVER_DNAT = {"charon": dict(SLOW_AUTH_SERVER["charon"], cookie_threshold=64)}
# One try, long enough for the delayed IKE_AUTH: a blocked client fails fast.
IMPATIENT_CLIENT = {"charon": {"retransmit_tries": 0, "retransmit_timeout": 4}}


def test_nft_dnat_clients_and_nat_clients_up(make_lab, report):
    lab = make_lab("nft", servers=2, clients=4, nat_clients=4)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    by_client = assert_server_view(lab)
    assert_no_invalid_spi(lab)
    # jhash over the source address: the four clients behind one NAT all
    # share one server (source-IP persistence cannot spread them).
    nat_servers = {by_client[c.name][0][0] for c in lab.clients if c.kind == "nat-client"}
    assert len(nat_servers) == 1, nat_servers
    nat_ports = {by_client[c.name][0][1]["remote-port"] for c in lab.clients
                 if c.kind == "nat-client"}
    assert len(nat_ports) == 4, "NAT'd clients should have distinct ports: %s" % nat_ports
    report(lab, results, "NAT'd clients (via %s) on %s" % (NAT_PUBLIC, sorted(nat_servers)))


def test_snat_slow_auth_hits_per_ip_limit(make_lab, report):
    lab = make_lab("snat", servers=2, clients=16, server_opts=SLOW_AUTH_SERVER,
                   client_opts=IMPATIENT_CLIENT)
    results = lab.initiate_all(timeout=15)
    failed = [n for n, r in results.items() if not r.ok]
    counts = log_counts(lab)
    # Full NAT: every server sees one source address for all clients.
    seen = {sa["remote-host"] for s in lab.servers for sa in lab.server_sas(s)}
    assert seen <= {LB_SERVER_ADDR}, seen
    assert len(failed) > 0, "full NAT with slow IKE_AUTH should lose clients"
    assert sum(b for _, b in counts.values()) > 0, counts
    assert sum(c for c, _ in counts.values()) > 0, counts
    # Each server lets at most block_threshold (5) half-open SAs per IP in.
    for s in lab.servers:
        assert len(lab.server_sas(s)) <= 5 + 1
    report(lab, results, "COOKIE/per-IP blocks per server: %s" % counts)


def test_nft_dnat_slow_auth_all_up(make_lab, report):
    """Control for the test above: destination NAT keeps client addresses,
    so no per-IP limit triggers."""
    lab = make_lab("nft", servers=2, clients=16, server_opts=SLOW_AUTH_SERVER_DNAT,
                   client_opts=IMPATIENT_CLIENT)
    results = lab.initiate_all(timeout=15)
    assert_all_up(lab, results)
    assert_server_view(lab)
    counts = log_counts(lab)
    assert counts == {s.name: (0, 0) for s in lab.servers}, counts
    assert_no_invalid_spi(lab)
    report(lab, results, "COOKIE/per-IP blocks per server: %s" % counts)


def test_nft_numgen_breaks_port_following(make_lab, report):
    """Negative control for the invalid-spi check: round robin per conntrack
    flow sends a client's port-4500 flow to the other server, which counts
    invalid-spi and the client fails. Sequential initiation makes the
    alternation deterministic (500 -> server 0, 4500 -> server 1)."""
    lab = make_lab("nft", balancer_opts={"mode": "numgen"}, servers=2, clients=2,
                   client_opts={"charon": {"retransmit_tries": 0, "retransmit_timeout": 2}})
    results = lab.initiate_all(parallel=False, timeout=10)
    invalid = {s.name: lab.server_counters(s)["invalid-spi"] for s in lab.servers}
    assert all(not r.ok for r in results.values()), results
    assert sum(invalid.values()) > 0, invalid
    assert not any(sa["state"] == "ESTABLISHED" for _, sas in sas_by_client(lab).items()
                   for _, sa in sas)
    report(lab, results, "invalid-spi per server: %s" % invalid)
