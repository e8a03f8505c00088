"""Live detection of a dnat server whose replies bypass ikelb (docs/doctor.md,
"Live: ikelb status"): real strongSwan behind the bpf engine; one server's
default route is moved past the balancer (as tests/doctor/record-captures
does for the `bypass` capture). Its clients fail, its health probe (answered
to ikelb's own address, on its subnet) still passes, and ikelb must say so
for that server only; once the route is back and clients re-initiate, the
warning goes."""
import concurrent.futures
import json
import re
import time

import pytest

from lab import LB_SERVER_ADDR
from lab import netns as N
from test_api import UnixHTTP

pytestmark = pytest.mark.usefixtures("require_ikelb")

IKELB_DNAT = {"forwarding": "dnat", "persistence": "source-ip"}
# A few retransmissions, so a failing client sends several IKE_SA_INITs
# within the detection window (10 s) and gives up soon after.
RETRY = {"charon": {"retransmit_tries": 3, "retransmit_timeout": 2}}
WARN = "replies from %s bypass ikelb (check its default gateway)"


def servers_by_name(lab):
    st = lab.balancer.status()
    return {s["name"]: s for s in st["services"][0]["servers"]}


def bypass_metric(lab):
    c = UnixHTTP(lab.balancer.sock)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    assert "# TYPE ikelb_server_replies_bypass gauge" in body
    assert "# TYPE ikelb_server_reply_packets_total counter" in body
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^ikelb_server_replies_bypass\{service="[^"]+",server="([^"]+)"\} (\d+)$', body, re.M)}


def wait_for(cond, timeout, step=0.5):
    """Seconds until cond() held, or None after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def placement(lab):
    """{server name: [clients]} where each client's first IKE_SA_INIT goes
    (the lookup answers rule 6's server before any state exists)."""
    out = {s.name: [] for s in lab.servers}
    for c in lab.clients:
        p = lab.balancer.ctl("lookup", "--json", c.addr)
        assert p.returncode == 0, p.stdout + p.stderr
        out[json.loads(p.stdout)["server"]].append(c)
    return out


def set_default_route(lab, server, via):
    N.ns_run(lab.node(server).ns, [N.IP, "route", "replace", "default", "via", via])


def test_replies_bypass_warned_for_that_server_only(make_lab, report):
    lab = make_lab("ikelb", balancer_opts=IKELB_DNAT, servers=2, clients=6, client_opts=RETRY)
    placed = placement(lab)
    victim = max(placed, key=lambda n: len(placed[n]))
    other = next(n for n in placed if n != victim)
    assert len(placed[victim]) >= 2, placed
    assert not any(s["warnings"] for s in servers_by_name(lab).values())

    set_default_route(lab, victim, "198.51.100.254")  # nobody there: replies are lost
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        # The clients retransmit while ikelb is watched.
        running = ex.submit(lab.initiate_all, timeout=20)

        def warned():
            return servers_by_name(lab)[victim]["warnings"] == [WARN % victim]
        detect_s = wait_for(warned, 20)
        results = running.result(timeout=60)
    assert detect_s is not None and detect_s <= 15, servers_by_name(lab)
    assert not any(results[c.name].ok for c in placed[victim]), results
    assert all(results[c.name].ok for c in placed[other]), results
    st = servers_by_name(lab)
    assert st[victim]["health"] == "up"  # the probe's answers still reach ikelb
    assert st[victim]["packets"] > 0 and st[victim]["reply_packets"] == 0, st[victim]
    assert st[other]["warnings"] == [] and st[other]["reply_packets"] > 0, st[other]
    assert bypass_metric(lab) == {victim: 1, other: 0}
    text = lab.balancer.ctl("status").stdout
    assert ("warning: " + WARN % victim) in text, text

    set_default_route(lab, victim, LB_SERVER_ADDR)
    t1 = time.monotonic()
    # An attempt still retransmitting from before may answer the first
    # initiate with its failure: the clients try once more.
    pending = placed[victim]
    for _ in range(2):
        again = lab.initiate_all(timeout=20, clients=pending)
        pending = [c for c in pending if not again[c.name].ok]
        if not pending:
            break
    assert not pending, [again[c.name].output[-600:] for c in pending]
    assert wait_for(lambda: servers_by_name(lab)[victim]["warnings"] == [], 15) is not None
    clear_s = time.monotonic() - t1  # includes the clients' own IKE exchanges
    assert bypass_metric(lab) == {victim: 0, other: 0}
    assert servers_by_name(lab)[victim]["reply_packets"] > 0
    report(lab, results, "bypass on %s (%d clients): warned %.1f s after the clients "
           "started, cleared %.1f s after the route came back" %
           (victim, len(placed[victim]), detect_s, clear_s))
