"""The decision log: off by default, switched at run time through the API
and `ikelb log decisions on|off`, one line per placement (client, SPI,
service, server, rule), at most 50 lines a second with the rest counted in
/metrics. Socket engine on loopback; the bpf engine (events from the
kernel through a ring buffer) in a lab with real strongSwan peers."""
import re
import socket
import time

import pytest

from lab.checks import assert_all_up
from loopback import Client, Daemon, SA_INIT, ike, settle

DECISION = re.compile(r"decision: client ([0-9.]+):(\d+) spi ([0-9a-f]{16}) "
                      r"service (\S+) server (\S+) rule (\w+)")


@pytest.fixture
def d():
    d = Daemon(mode="ike")
    yield d
    d.stop()


def decisions(d):
    return [l for l in d.log().splitlines() if "decision: client" in l]


def test_decisions_logged_only_when_on(d):
    Client("127.0.0.1", 0x5000).connect(d)
    settle(d, 1)
    assert decisions(d) == []
    r = d.cli("log", "decisions", "on")
    assert r.returncode == 0 and "decision log on" in r.stdout, r
    c = Client("127.0.0.1", 0x5001)
    c.connect(d)
    settle(d, 2)
    time.sleep(0.2)
    lines = decisions(d)
    # IKE_SA_INIT placed (new), IKE_AUTH found its half-open SA (sa)
    assert len(lines) == 2, lines
    assert all("spi %016x" % 0x5001 in l and "service vpn" in l for l in lines), lines
    assert "rule new" in lines[0] and ":%d " % c.port in lines[0], lines[0]
    assert "rule sa" in lines[1], lines[1]
    assert d.cli("log", "decisions", "off").returncode == 0
    Client("127.0.0.1", 0x5002).connect(d)
    settle(d, 3)
    time.sleep(0.2)
    assert len(decisions(d)) == 2
    assert d.http("POST", "/v1/log/decisions/maybe")[0] == 404


def test_rate_limited_and_counted(d):
    assert d.http("POST", "/v1/log/decisions/on")[0] == 200
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    for i in range(400):
        s.sendto(ike(0x60000 + i, 0, SA_INIT), ("127.0.0.1", d.p500))
    s.close()
    time.sleep(0.5)
    n = len(decisions(d))
    assert 50 <= n < 120, n
    code, text = d.http("GET", "/metrics")
    dropped = [l for l in text.splitlines() if l.startswith("ikelb_decision_log_dropped_total ")]
    assert dropped and float(dropped[0].split()[1]) >= 400 - n - 5, (dropped, n)


def lab_decisions(lab, want, timeout=5):
    """Parsed decision lines of the lab's daemon, once there are `want`."""
    deadline = time.monotonic() + timeout
    while True:
        got = [m.groups() for m in map(DECISION.search, lab.balancer.log().splitlines()) if m]
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.mark.usefixtures("require_ikelb")
def test_bpf_engine_logs_each_client_on_its_server(make_lab):
    lab = make_lab("ikelb", balancer_opts={"forwarding": "dnat", "persistence": "source-ip"},
                   servers=2, clients=2)
    lb = lab.balancer
    r = lb.ctl("log", "decisions", "on")
    assert r.returncode == 0 and "decision log on" in r.stdout, r
    assert_all_up(lab, lab.initiate_all())
    # Per client: IKE_SA_INIT placed (new), IKE_AUTH found its half-open
    # SA (sa); ESP and keepalives then follow the flow and are not logged.
    lines = lab_decisions(lab, 4)
    sas = {sa["remote-host"]: (s.name, sa["initiator-spi"])
           for s in lab.servers for sa in lab.server_sas(s)}
    assert len(sas) == 2, sas
    for client, (server, spi) in sas.items():
        mine = [l for l in lines if l[0] == client]
        assert [l[5] for l in mine] == ["new", "sa"], (client, lines)
        assert all(l[3] == "vpn" and l[4] == server for l in mine), (client, server, mine)
        assert all(int(l[2], 16) == int(spi.replace(":", ""), 16) for l in mine), (spi, mine)
    assert len(lines) == 4, lines
    assert lb.ctl("log", "decisions", "off").returncode == 0
    assert "decision log off" in lb.log()
