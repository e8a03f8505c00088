"""An active/active ECMP group of three ikelb nodes behind a router that
learns the VIPs by BGP (FRR), with real strongSwan clients and servers and
64 generated clients (bench/ikegen -> bench/ikesink on every server); docs/ha.md,
"Active/active with ECMP".

The router hashes by L4 ports, so one client's ports 500 and 4500 may reach
different nodes: whichever node forwards a packet must send it to the
client's server (port following across nodes). As in test_ha_vrrp.py, the
first half of every kind of client connects while the second server is
disabled on all nodes, so their server is not the one their hash names.
Then node 1 fails (links down, processes killed; it also held the servers'
gateway): the router drops it after the BGP hold time (3 s here), and its
flows rehash over the other nodes.

Asserted: with sync, no generated client ever reaches two servers and no
strongSwan SA is lost; with SPI labels and no sync, no strongSwan SA is lost
(the generator's clients have no labels; how many of them moved is
reported). Without either, what moved is reported.
"""
import os
import time

import pytest

from conftest import skip_or_fail
from lab import ecmp, ha
from test_ike_steering import ESP_RANGES, LABELS, SPI_MASK, label_server_opts

NSWAN = 8
NGEN = 64
RESUME_LIMIT_S = 8.0   # BGP hold time 3 s + the next pings
HEALTH = {"type": "ike", "interval": "1s", "timeout": "500ms", "rise": 1, "fall": 2}


@pytest.fixture
def require_frr(require_ikelb):
    for tool in (ha.KEEPALIVED, os.path.join(ecmp.FRR_DIR, "bgpd"), ecmp.bench_bin("ikegen"),
                 ecmp.bench_bin("ikesink")):
        if not os.access(tool, os.X_OK):
            skip_or_fail("%s missing (scripts/install-deps, make)" % tool)


def _on_all(nodes, *args):
    for n in nodes:
        r = n.ctl("server", *args)
        assert r.returncode == 0, r.stderr


def _gen(lab, ns, seconds, sink_seconds, during=None):
    """One generator run; `during()` is called 3 s in. -> {client id: {servers}}"""
    sinks = ecmp.Sinks(lab, sink_seconds).start()
    g = ecmp.run_gen(lab, ns, NGEN, seconds)
    extra = None
    if during:
        time.sleep(3)
        extra = during()
    g.communicate(timeout=seconds + 30)
    return sinks.result(timeout=sink_seconds + 30), extra


def _ecmp(make_lab, report, sync, labels):
    lab = make_lab(None, balancers=3, router=True, servers=2, clients=NSWAN,
                   server_opts=label_server_opts() if labels else None)
    gen_ns = ecmp.start_gen_host(lab)
    cfg = {"health": HEALTH}
    if labels:
        cfg.update(spi_mask=SPI_MASK, spi_labels=LABELS, esp_ranges=ESP_RANGES)
    nodes = ecmp.start_cluster(lab, sync=sync, **cfg)

    _on_all(nodes, "disable", "s2")
    _on_all(nodes, "disable", "g2")
    results = lab.initiate_all(clients=lab.clients[:NSWAN // 2])
    where1, _ = _gen(lab, gen_ns, 2, 5)
    assert len(where1) == NGEN and all(v == {"s1"} for v in where1.values()), where1
    _on_all(nodes, "enable", "s2")
    _on_all(nodes, "enable", "g2")
    for n in nodes:
        n.wait_healthy(time.monotonic() + 10)
    results.update(lab.initiate_all(clients=lab.clients[NSWAN // 2:]))
    assert all(r.ok for r in results.values()), lab.summary(results)
    before = ha.established_sas(lab)
    assert len(before) == NSWAN
    time.sleep(1.0)  # a few sync intervals

    def fail():
        t0 = ha.fail_node(lab, 1, nodes[0], lab.ha_keepalived[0])
        return t0, ha.resume_times(lab, t0, 15)
    where2, (t0, times) = _gen(lab, gen_ns, 10, 16, during=fail)
    after = ha.established_sas(lab)
    moved = sorted(c for c in where2 if len(where2[c]) > 1)
    late = sorted(n for n, t in times.items() if t is None or t > RESUME_LIMIT_S)
    worst = max((t for t in times.values() if t is not None), default=None)
    text = ("mode: sync %s, labels %s; generated clients seen %d, on two servers: %d; "
            "strongSwan SAs kept %d/%d, new %d; pings resumed %d/%d within %.0fs, worst %s; "
            "late: %s; router nexthops after: %s; per client: %s"
            % ("on" if sync else "off", "on" if labels else "off", len(where2), len(moved),
               len(before & after), len(before), len(after - before), NSWAN - len(late), NSWAN,
               RESUME_LIMIT_S, "%.1fs" % worst if worst is not None else "-",
               " ".join(late) or "-", ecmp.multipath_nexthops(lab, ecmp.GEN_VIP),
               " ".join("%s=%s" % (n, "%.1f" % t if t is not None else "-")
                        for n, t in sorted(times.items()))))
    report(lab, results, text)
    return before, after, late, moved, where2


def test_ecmp_node_loss_with_sync(make_lab, report, require_frr):
    before, after, late, moved, where = _ecmp(make_lab, report, sync=True, labels=False)
    assert len(where) == NGEN
    assert not moved, "port following broken for generated clients %s" % moved
    assert before == after
    assert not late


def test_ecmp_node_loss_with_spi_labels_without_sync(make_lab, report, require_frr):
    before, after, late, _, _ = _ecmp(make_lab, report, sync=False, labels=True)
    assert before == after
    assert not late


def test_ecmp_node_loss_without_sync_or_labels(make_lab, report, require_frr):
    """Measured, not asserted: what moves when nodes share nothing."""
    _ecmp(make_lab, report, sync=False, labels=False)
