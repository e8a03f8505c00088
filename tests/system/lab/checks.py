"""Assertions shared by the system tests (server-side truth first)."""
from .topology import LB_CLIENT_ADDR, LB_SERVER_ADDR

COOKIE_LINE = "sending COOKIE notify"
PER_IP_LINE = "per-IP half-open IKE_SA limit"


def sas_by_client(lab):
    """-> {client name: [(server name, sa), ...]} from every server's list-sas."""
    out = {}
    for s in lab.servers:
        for sa in lab.server_sas(s):
            name = (sa["remote-id"] or "?").split("@")[0]
            out.setdefault(name, []).append((s.name, sa))
    return out


def assert_all_up(lab, results):
    failed = {n: r.output[-600:] for n, r in results.items() if not r.ok}
    assert not failed, "clients failed to connect: %s\n%s" % (
        sorted(failed), "\n".join("--- %s\n%s" % kv for kv in sorted(failed.items())))


def assert_server_view(lab, clients=None):
    """Every client holds exactly one ESTABLISHED IKE SA with an INSTALLED
    CHILD SA on exactly one server, which saw the client's real (public)
    address, never the balancer's."""
    by_client = sas_by_client(lab)
    problems = []
    for c in clients or lab.clients:
        entries = by_client.get(c.name, [])
        if len(entries) != 1:
            problems.append("%s: %d IKE SAs on servers %s" % (
                c.name, len(entries), [e[0] for e in entries]))
            continue
        server, sa = entries[0]
        if sa["state"] != "ESTABLISHED":
            problems.append("%s on %s: IKE SA state %s" % (c.name, server, sa["state"]))
        if not any(ch.get("state") == "INSTALLED" for ch in sa["children"]):
            problems.append("%s on %s: no INSTALLED CHILD SA" % (c.name, server))
        want = lab.public_addr(c)
        if sa["remote-host"] != want:
            problems.append("%s on %s: server saw %s, expected %s" % (
                c.name, server, sa["remote-host"], want))
        if sa["remote-host"] in (LB_CLIENT_ADDR, LB_SERVER_ADDR):
            problems.append("%s on %s: server saw the balancer address %s" % (
                c.name, server, sa["remote-host"]))
    assert not problems, "\n".join(problems)
    return by_client


def assert_no_invalid_spi(lab):
    bad = {s.name: lab.server_counters(s)["invalid-spi"] for s in lab.servers}
    assert not any(bad.values()), "invalid-spi counters: %s" % bad


def assert_pings(lab, clients=None):
    failed = [c.name for c in clients or lab.clients if not lab.ping_through_tunnel(c)]
    assert not failed, "ping through the tunnel failed for %s" % failed


def log_counts(lab):
    """-> {server: (COOKIE notifies sent, per-IP blocks)}"""
    out = {}
    for s in lab.servers:
        log = lab.server_log(s)
        out[s.name] = (log.count(COOKIE_LINE), log.count(PER_IP_LINE))
    return out
