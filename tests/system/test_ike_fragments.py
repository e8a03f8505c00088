"""Windows-sized IKE_AUTH (issue #15, deliverable 5): clients with
`fragmentation = no` (Windows RRAS's default: no RFC 7383 IKE
fragmentation) and an RSA-4096 certificate chain with an intermediate CA,
so every IKE_AUTH is larger than the 1500-byte MTU and the kernel splits it
into IP fragments, through ikelb in both persistence modes and both
forwarding modes, with the fragments in order and reordered (the first
fragment held back on the client's link, so the later ones reach ikelb
before it).

A capture on ikelb's client-side interface proves the IKE_AUTH datagrams
were IP-fragmented (and, reordered, that a later fragment arrived first);
the servers' logs show the whole message arrived (its size above the MTU)."""
import re

import pytest

from lab import netns as N
from lab import VIP, VIP6, LB_CLIENT_IF
from lab.checks import assert_all_up, assert_no_invalid_spi, assert_pings, assert_server_view
from lab.impair import Capture, FragReorder, datagrams
from lab.pki import Pki

pytestmark = pytest.mark.usefixtures("require_ikelb")

CLIENTS = 4
NO_FRAG = {"fragmentation": "no"}
# dsr: servers keep their SAs on the VIP (test_ipv6.py, DSR_SERVER).
DSR_CONN = {"mobike": "no"}
# charon's per-IKE_SA line for each datagram it received (whole, after
# reassembly); only the IKE_AUTH requests are larger than the MTU.
RX = re.compile(r"<[^>]+> received packet: from [0-9a-f.:]+\[\d+\] to [0-9a-f.:]+\[\d+\] "
                r"\((\d+) bytes\)")


# `ikelb stats`: the counter `fragments` (later fragments forwarded) and the
# drop reason `fragment` (later fragments nobody could place).
FORWARDED_FRAGS = re.compile(r"^\s+fragments\s+(\d+) pkts", re.M)
DROP_FRAG = re.compile(r"^\s+fragment\s+\d+ pkts", re.M)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """One RSA-4096 chain for the module: seven keys take seconds each."""
    return Pki(str(tmp_path_factory.mktemp("pki"))).make(CLIENTS)


def dsr_servers(lab):
    """dsr over IPv4: servers hold the VIP on lo and do not answer ARP for
    it; their replies (source VIP) are routed back through the balancer,
    which holds the VIP too: accept_local lets its kernel forward them
    instead of dropping them as martians (issue #15, deliverable 1, is the
    real fix)."""
    for s in lab.servers:
        N.addr_add(s.ns, "lo", VIP + "/32")
        for k in ("net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"):
            N.sysctl(s.ns, k)
    N.sysctl(lab.lb_ns, "net.ipv4.conf.all.accept_local=1")
    N.sysctl(lab.lb_ns, "net.ipv4.conf.%s.accept_local=1" % "s0")


def auth_sizes(lab):
    """Sizes of the datagrams above the MTU the servers received whole."""
    out = []
    for s in lab.servers:
        out += [int(m) for m in RX.findall(lab.server_log(s)) if int(m) > 1500]
    return out


def dsr_servers6(lab):
    """dsr over IPv6: VIP6 on the servers' lo is all (test_ipv6.py)."""
    for s in lab.servers:
        N.addr_add(s.ns, "lo", VIP6 + "/128")


# (family, persistence, forwarding, reordered): IPv4 in every combination,
# IPv6 with source-ip persistence.
CASES = [(4, p, f, r) for p in ("source-ip", "ike") for f in ("dnat", "dsr")
         for r in (False, True)] + [(6, "source-ip", f, r) for f in ("dnat", "dsr")
                                    for r in (False, True)]


def case_id(case):
    fam, pers, fwd, reorder = case
    return "v%d-%s-%s-%s" % (fam, pers, fwd, "reordered" if reorder else "inorder")


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_windows_sized_ike_auth(make_lab, report, pki, case):
    fam, persistence, forwarding, reorder = case
    dsr = forwarding == "dsr"
    lab = make_lab("ikelb", balancer_opts={"forwarding": forwarding, "persistence": persistence},
                   servers=2, clients=CLIENTS, ipv6=fam == 6,
                   server_opts=pki.server_opts(DSR_CONN if dsr else None),
                   client_opts=pki.client_opts(NO_FRAG))
    if dsr:
        (dsr_servers6 if fam == 6 else dsr_servers)(lab)
    relays = [FragReorder(lab, c) for c in lab.clients] if reorder else []
    cap = Capture(lab.reg, lab.lb_ns, LB_CLIENT_IF, lab.workdir + "/c0.pcap",
                  expr="ip6" if fam == 6 else "ip")
    results = lab.initiate_all(timeout=30)
    cap.stop()
    assert_all_up(lab, results)
    assert_pings(lab)
    assert_server_view(lab)
    assert_no_invalid_spi(lab)
    if dsr:
        vip = VIP6 if fam == 6 else VIP
        for s in lab.servers:
            assert all(sa["local-host"] == vip for sa in lab.server_sas(s))

    # Really fragmented: every client's IKE_AUTH reached ikelb in pieces
    # (and, reordered, a later piece first), and reached a server whole.
    clients = {lab.public_addr(c) for c in lab.clients}
    frags = cap.ip6_fragments() if fam == 6 else cap.ip_fragments()
    grams = {k: v for k, v in datagrams(frags).items() if len(v) > 1 and k[0] in clients}
    assert {src for src, _ in grams} == clients, grams
    late_first = {src for (src, _), offs in grams.items() if offs[0] != 0}
    assert late_first == (clients if reorder else set()), grams
    assert all(r.stats()["overtaken"] >= 1 for r in relays), [r.stats() for r in relays]
    sizes = auth_sizes(lab)
    assert len(sizes) >= CLIENTS and min(sizes) > 1500, sizes

    # ikelb placed every fragment: none dropped as orphans (a later
    # fragment before its first one was, before the client hints).
    stats = lab.balancer.stats()
    assert not DROP_FRAG.search(stats), stats
    m = FORWARDED_FRAGS.search(stats)
    assert m and int(m.group(1)) >= CLIENTS, stats
    report(lab, results, "%s: %d fragmented client datagrams at ikelb (%d clients' arrived "
           "later fragment first); whole datagrams above the MTU at the servers: %s; "
           "ikelb fragments forwarded: %s" % (case_id(case), len(grams), len(late_first),
                                              sorted(set(sizes)), m.group(1)))
