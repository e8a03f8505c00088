"""IPv6 end to end (issue #15, deliverable 3): real strongSwan clients and
servers over IPv6 through ikelb, with dnat, dsr and fullnat; a /64
persistence netmask keeps one client's privacy addresses on one server;
IKE health probes over IPv6 mark servers down and up. Addresses only from
2001:db8::/32, inside the lab's own namespaces (lab/topology.py)."""
import time

import pytest

from lab import LB_CLIENT_ADDR6, LB_SERVER_ADDR6, VIP6
from lab import netns as N
from lab.checks import (assert_all_up, assert_no_invalid_spi, assert_pings,
                        assert_server_view, sas_by_client)

pytestmark = pytest.mark.usefixtures("require_ikelb")


def v6_lab(make_lab, balancer_opts, servers=2, clients=3, **kw):
    return make_lab("ikelb", balancer_opts=balancer_opts, servers=servers,
                    clients=clients, ipv6=True, **kw)


def assert_v6_view(lab):
    """Every server SA is IPv6 end to end: the server's own address and the
    client's real IPv6 address (never the balancer's)."""
    for s in lab.servers:
        for sa in lab.server_sas(s):
            assert ":" in sa["local-host"] and ":" in sa["remote-host"], sa
            assert sa["remote-host"] not in (LB_CLIENT_ADDR6, LB_SERVER_ADDR6), sa


def test_ipv6_dnat(make_lab, report):
    lab = v6_lab(make_lab, {"forwarding": "dnat", "persistence": "source-ip"})
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    assert_server_view(lab)
    assert_v6_view(lab)
    for s in lab.servers:
        for sa in lab.server_sas(s):
            assert sa["local-host"] == s.addr6, sa  # dnat: the server's own address
    assert_no_invalid_spi(lab)
    report(lab, results, "ipv6 dnat")
