"""An active/standby pair of ikelb nodes under keepalived (VRRP), with real
strongSwan clients and servers (docs/ha.md, "Active/standby with VRRP").

Half the clients connect while s2 is disabled on the active node, so they
all sit on s1 wherever the Maglev hash of their address points: exactly the
clients a node without their state would send elsewhere. Then the active
node is lost (its links go down, its ikelb and keepalived are killed) and
the standby takes the VIP and the servers' gateway. What must hold: no IKE
SA re-established (the servers keep the same SAs, nobody has a new one),
and a ping through every tunnel answered within 3 s of the failure, with
ikelb's state sync, or without it when the servers label their SPIs.
Without either, the clients whose hash names the other server lose their
tunnel: measured and reported, not asserted.
"""
import os
import time

import pytest

from conftest import skip_or_fail
from lab import ha
from test_ike_steering import ESP_RANGES, LABELS, SPI_MASK, label_server_opts

NCLIENTS = 16
RESUME_LIMIT_S = 3.0
WATCH_S = 12.0
HEALTH = {"type": "ike", "interval": "1s", "timeout": "500ms", "rise": 1, "fall": 2}


@pytest.fixture
def require_keepalived(require_ikelb):
    if not os.access(ha.KEEPALIVED, os.X_OK):
        skip_or_fail("%s missing (scripts/install-deps)" % ha.KEEPALIVED)


def _wait_synced(node, want, timeout=8):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if ha.sync_stats(node).get("applied", 0) >= want:
            return True
        time.sleep(0.2)
    return False


def _failover(make_lab, report, sync, labels, rejoin=False):
    lab = make_lab(None, balancers=2, servers=2, clients=NCLIENTS,
                   server_opts=label_server_opts() if labels else None)
    cfg = {"health": HEALTH}
    if labels:
        cfg.update(spi_mask=SPI_MASK, spi_labels=LABELS, esp_ranges=ESP_RANGES)
    nodes = ha.start_nodes(lab, sync=sync, **cfg)
    kas = [ha.Keepalived(lab, 1, nodes[0], 150).start(),
           ha.Keepalived(lab, 2, nodes[1], 100).start()]
    ha.wait_master(lab, 1)
    assert not ha.has_vip(lab, 2)

    first, rest = lab.clients[:NCLIENTS // 2], lab.clients[NCLIENTS // 2:]
    assert nodes[0].ctl("server", "disable", "s2").returncode == 0
    results = lab.initiate_all(clients=first)
    assert nodes[0].ctl("server", "enable", "s2").returncode == 0
    nodes[0].wait_healthy(time.monotonic() + 10)
    results.update(lab.initiate_all(clients=rest))
    assert all(r.ok for r in results.values()), lab.summary(results)
    before = ha.established_sas(lab)
    assert len(before) == NCLIENTS
    on_s1 = {sa["remote-id"].split("@")[0] for sa in lab.server_sas("s1")}
    assert {c.name for c in first} <= on_s1
    if sync:
        # persistence + flow entries of every client reached the standby
        assert _wait_synced(nodes[1], 2 * NCLIENTS), ha.sync_stats(nodes[1])
    if rejoin:
        # The standby restarts without any state: it asks the active node
        # for a bulk copy, which the active node sends paced.
        nodes[1].restart(flush_state=True)
        assert _wait_synced(nodes[1], 2 * NCLIENTS), ha.sync_stats(nodes[1])
        assert ha.sync_stats(nodes[1])["bulk_requests_sent"] >= 1
        assert ha.sync_stats(nodes[0])["bulk_requests_recv"] >= 1
        time.sleep(2.5)  # keepalived's check passes `rise` times again

    t0 = ha.fail_node(lab, 1, nodes[0], kas[0])
    ha.wait_master(lab, 2)
    takeover = time.monotonic() - t0
    times = ha.resume_times(lab, t0, WATCH_S)
    after = ha.established_sas(lab)
    late = sorted(n for n, t in times.items() if t is None or t > RESUME_LIMIT_S)
    worst = max((t for t in times.values() if t is not None), default=None)
    stats = ha.sync_stats(nodes[1])
    text = ("mode: sync %s, labels %s; VRRP takeover within %.1fs; pings resumed: %d/%d "
            "within %.0fs, worst %s; IKE SAs kept %d/%d, new %d; late: %s; standby sync %s"
            % ("on" if sync else "off", "on" if labels else "off", takeover,
               NCLIENTS - len(late), NCLIENTS, RESUME_LIMIT_S,
               "%.2fs" % worst if worst is not None else "-", len(before & after),
               len(before), len(after - before), " ".join(late) or "-",
               {k: stats.get(k) for k in ("recv_entries", "applied", "rej_auth")} if stats else "-"))
    report(lab, results, text)
    return before, after, late


def test_vrrp_failover_with_sync_keeps_every_tunnel(make_lab, report, require_keepalived):
    before, after, late = _failover(make_lab, report, sync=True, labels=False)
    assert not late
    assert before == after


def test_vrrp_standby_restarted_without_state_gets_a_bulk_copy(make_lab, report,
                                                               require_keepalived):
    """The standby restarts with --flush-state after the clients connected:
    everything it knows comes from the active node's answer to its bulk
    request, and the failover keeps every tunnel."""
    before, after, late = _failover(make_lab, report, sync=True, labels=False, rejoin=True)
    assert not late
    assert before == after


def test_vrrp_failover_with_spi_labels_without_sync(make_lab, report, require_keepalived):
    before, after, late = _failover(make_lab, report, sync=False, labels=True)
    assert not late
    assert before == after


def test_vrrp_failover_without_sync_or_labels_loses_clients(make_lab, report,
                                                             require_keepalived):
    """The defect this design fixes, measured: the standby places the
    clients that connected while s2 was disabled by their hash. The lab's
    addresses and seed are fixed, so which ones is deterministic: some of
    c1..c8 (in the lab 5 of 8), and none of the others."""
    _, _, late = _failover(make_lab, report, sync=False, labels=False)
    assert late
    assert set(late) <= {"c%d" % i for i in range(1, NCLIENTS // 2 + 1)}
