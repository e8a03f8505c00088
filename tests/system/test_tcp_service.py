"""tcp_ports (docs/tcp.md): SSTP's TCP 443 beside IKEv2 on one VIP,
through ikelb's bpf engine (dnat), against real strongSwan clients and
servers and a TLS stand-in for the SSTP listener on every server.

What the servers see is the truth: the TLS server answers each connection
with its own name and the peer address it accepted."""
import os
import subprocess
import sys
import time

import pytest

from lab import VIP, start_balancer
from lab import netns as N
from lab.checks import assert_all_up, sas_by_client

pytestmark = pytest.mark.usefixtures("require_ikelb")

HERE = os.path.dirname(os.path.abspath(__file__))
TLS = os.path.join(HERE, "tools", "tls_echo.py")
PY = "/usr/bin/python3"
SSTP = 443
CONNS = 3
OPTS = {"forwarding": "dnat", "persistence": "source-ip",
        "extra_service": {"tcp_ports": "[%d]" % SSTP}}


def make_cert(lab):
    cert, key = (os.path.join(lab.workdir, n) for n in ("tls.crt", "tls.key"))
    N.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
           "/CN=vpn.lab.test", "-keyout", key, "-out", cert], timeout=30)
    return cert, key


def start_tls(lab, server, cert, key):
    """The stand-in on server:443, registered with the lab (stopped by PID
    at teardown); returns its Popen once it listens."""
    p = subprocess.Popen([N.IP, "netns", "exec", server.ns, PY, TLS, "server", server.name,
                          cert, key, str(SSTP)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lab.reg.add_proc("tls-" + server.name, p)
    line = p.stdout.readline()
    assert line.strip() == "listening", line
    return p


def tls_connect(client, count=CONNS):
    """-> [(server name, peer address the server saw)] of count connections
    from the client to VIP:443."""
    out = N.ns_run(client.ns, [PY, TLS, "client", VIP, str(SSTP), str(count)],
                   timeout=10 + 6 * count).stdout
    seen = [tuple(l.split()) for l in out.splitlines() if l.strip()]
    assert all(len(s) == 2 and s[0] != "ERR" for s in seen), out
    return seen


def lab_with_tls(make_lab, servers, clients, tls_on=None):
    lab = make_lab(None, servers=servers, clients=clients)
    cert, key = make_cert(lab)
    procs = {s.name: start_tls(lab, s, cert, key) for s in lab.servers
             if tls_on is None or s.name in tls_on}
    start_balancer(lab, "ikelb", **OPTS)
    return lab, procs


def tcp_stats(lab):
    st = lab.balancer.ctl("stats", "--json")
    assert st.returncode == 0, st.stderr
    import json
    return json.loads(st.stdout)["services"][0]["counters"]


def test_tcp_service_same_server_as_ike(make_lab, report):
    lab, _ = lab_with_tls(make_lab, servers=2, clients=6)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    ike_server = {c: e[0][0] for c, e in sas_by_client(lab).items() if len(e) == 1}
    lines = []
    for c in lab.clients:
        seen = tls_connect(c)
        # the server saw the client itself, and the same server every time
        assert {addr for _, addr in seen} == {c.addr}, (c.name, seen)
        assert len({name for name, _ in seen}) == 1, (c.name, seen)
        # ... the one holding the client's IKE SA
        assert seen[0][0] == ike_server.get(c.name), (c.name, seen, ike_server)
        lines.append("%s (%s): IKE SA on %s, %d TLS connections on %s" % (
            c.name, c.addr, ike_server[c.name], len(seen), seen[0][0]))
    # both servers take clients (6 addresses spread by Maglev)
    assert len(set(ike_server.values())) == 2, ike_server
    # Drained, a server takes no new clients: the hash now sends its
    # clients' addresses elsewhere, so only the persistence IKE wrote keeps
    # their new TLS connections on it.
    drained = lab.servers[0].name
    assert lab.balancer.ctl("server", "drain", drained).returncode == 0
    for c in lab.clients:
        seen = tls_connect(c, 2)
        assert {name for name, _ in seen} == {ike_server[c.name]}, (c.name, seen, drained)
    lines.append("%s drained: every client's new TLS connections still on its IKE server"
                 % drained)
    ctr = tcp_stats(lab)
    assert ctr["tcp_new"]["packets"] >= CONNS * len(lab.clients), ctr
    assert ctr["tcp_replies"]["packets"] > 0, ctr
    metrics = N.run(["curl", "-s", "--unix-socket", lab.balancer.sock, "http://x/metrics"],
                    check=False).stdout
    report(lab, results, "\n".join(lines) + "\ntcp counters: %s" % {
        k: v["packets"] for k, v in ctr.items() if k.startswith("tcp")} +
        ("\n" + "\n".join(l for l in metrics.splitlines() if l.startswith("ikelb_tcp_"))
         if metrics else ""))


def test_tcp_check_marks_closed_port_down(make_lab, report):
    lab, procs = lab_with_tls(make_lab, servers=2, clients=3)
    dead = lab.servers[1]
    lab.reg.stop_proc(procs[dead.name])  # its TLS port now refuses
    deadline = time.monotonic() + 20
    srv = None
    while time.monotonic() < deadline:
        st = lab.balancer.status()
        srv = {s["name"]: s for s in st["services"][0]["servers"]} if st else None
        if srv and srv[dead.name]["health"] == "down":
            break
        time.sleep(0.3)
    assert srv and srv[dead.name]["health"] == "down", srv
    assert srv[lab.servers[0].name]["health"] == "up", srv
    detail = str(srv[dead.name])
    assert "tcp 443" in detail, detail
    # no new client, TCP or IKE, goes to it (one health per server)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    for c in lab.clients:
        seen = tls_connect(c, 2)
        assert {name for name, _ in seen} == {lab.servers[0].name}, (c.name, seen)
    on = {c: e[0][0] for c, e in sas_by_client(lab).items()}
    assert set(on.values()) == {lab.servers[0].name}, on
    report(lab, results, "%s down with %r; all %d clients (IKE and TLS) on %s" % (
        dead.name, srv[dead.name].get("last_error"), len(lab.clients), lab.servers[0].name))
