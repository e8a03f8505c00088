"""Lab layouts beside the default two-arm one (docs/layouts.md):

dsr=True            every server holds the VIP on loopback (arp_ignore=1,
                    arp_announce=2), as `forwarding: dsr` needs.
server_gw='router'  the servers' default gateway is a plain router (`gw`
                    namespace, 198.51.100.254 on brs, 203.0.113.254 on brc),
                    not the balancer: dsr replies go straight to the
                    clients. 'lb' (default) keeps the balancer as gateway.
one_arm=True        the balancer has one interface (c0, 198.51.100.1) on
                    the servers' segment; the clients reach it through a
                    router `rt` (203.0.113.1 on brc, 198.51.100.254 on brs)
                    that routes the VIP to 198.51.100.1 and answers ARP for
                    it on the clients' side:

    clients ── brc ── rt ── brs ─┬─ lb c0 198.51.100.1
                                 ├─ s1 198.51.100.11
                                 └─ s2 ...

Only additive hooks into topology.Lab: one_arm_balancer() replaces the
balancer's two arms, finish() runs after the servers exist."""
from . import netns as N

SERVER_ROUTER = "198.51.100.254"
CLIENT_ROUTER = "203.0.113.254"


def _router(lab, name, pub_addr, srv_addr):
    """A forwarding namespace with eth0 on brc and eth1 on brs. rp_filter
    is off: dsr replies carry the VIP as source, which a strict reverse
    path check on the servers' side would drop."""
    ns = lab.reg.add_ns(lab.ns(name))
    N.veth(ns, "eth0", lab.sw_ns, name + "c")
    N.veth(ns, "eth1", lab.sw_ns, name + "s")
    N.link_up(lab.sw_ns, name + "c", "brc")
    N.link_up(lab.sw_ns, name + "s", "brs")
    N.addr_add(ns, "eth0", pub_addr + "/24")
    N.addr_add(ns, "eth1", srv_addr + "/24")
    N.link_up(ns, "eth0")
    N.link_up(ns, "eth1")
    N.sysctl(ns, "net.ipv4.ip_forward=1")
    for dev in ("all", "default", "eth0", "eth1"):
        N.sysctl(ns, "net.ipv4.conf.%s.rp_filter=0" % dev)
    return ns


def one_arm_balancer(lab, vip, lb_addr):
    """The router and the one-armed balancer (lab.lb_ns, interface c0)."""
    from .topology import LB_CLIENT_ADDR, LB_CLIENT_IF
    lab.rt_ns = _router(lab, "rt", LB_CLIENT_ADDR, SERVER_ROUTER)
    N.run([N.IP, "-n", lab.rt_ns, "route", "add", vip + "/32", "via", lb_addr])
    # The VIP lies in the clients' subnet: the router answers their ARP.
    N.sysctl(lab.rt_ns, "net.ipv4.conf.eth0.proxy_arp=1")
    ns = lab.reg.add_ns(lab.ns("lb"))
    N.veth(ns, LB_CLIENT_IF, lab.sw_ns, "lbc")
    N.link_up(lab.sw_ns, "lbc", "brs")
    N.addr_add(ns, LB_CLIENT_IF, lb_addr + "/24")
    N.link_up(ns, LB_CLIENT_IF)
    N.default_route(ns, SERVER_ROUTER)
    N.sysctl(ns, "net.ipv4.ip_forward=1")
    # docs/bpf-engine.md, one-arm: the kernel's fallback path must not tell
    # the router to go around the balancer.
    for dev in ("all", LB_CLIENT_IF):
        N.sysctl(ns, "net.ipv4.conf.%s.send_redirects=0" % dev)
    lab.lb_nss.append(ns)
    lab.lb_ns = ns


def finish(lab, vip):
    """After the servers exist: the VIP on their loopback (dsr) and their
    gateway (server_gw)."""
    if lab.dsr:
        for s in lab.servers:
            N.addr_add(s.ns, "lo", vip + "/32")
            for dev in ("all", "eth0"):
                N.sysctl(s.ns, "net.ipv4.conf.%s.arp_ignore=1" % dev)
                N.sysctl(s.ns, "net.ipv4.conf.%s.arp_announce=2" % dev)
    if lab.server_gw != "router":
        return
    if not lab.one_arm:
        lab.gw_ns = _router(lab, "gw", CLIENT_ROUTER, SERVER_ROUTER)
    for s in lab.servers:
        N.run([N.IP, "-n", s.ns, "route", "replace", "default", "via", SERVER_ROUTER])


def nft_count_vip_source(ns, vip, table="ikl_vipsrc"):
    """An nftables counter of IPv4 packets with the VIP as source entering
    ns (any interface): dsr replies seen there."""
    N.nft_load(ns, "table ip %s {\n counter vipsrc { }\n"
               " chain pre { type filter hook prerouting priority -300; policy accept;\n"
               "  ip saddr %s counter name vipsrc\n }\n}\n" % (table, vip))


def nft_counter(ns, table="ikl_vipsrc"):
    """-> packets of the counter nft_count_vip_source() installed."""
    out = N.ns_run(ns, [N.NFT, "list", "counter", "ip", table, "vipsrc"]).stdout
    for tok, nxt in zip(out.split(), out.split()[1:]):
        if tok == "packets":
            return int(nxt)
    raise N.LabError("no counter in:\n" + out)


# ---- raw ESP at packet level -------------------------------------------------
# strongSwan 5.9.8's kernel-libipsec requires UDP encapsulation (it fakes
# NAT-D so the peer also encapsulates); raw ESP through ikelb is sent and
# received here with raw IP sockets instead (docs/layouts.md).

_LISTEN = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
s.settimeout(0.2)
end = time.monotonic() + float(sys.argv[1])
print("ready", flush=True)
while time.monotonic() < end:
    try:
        b = s.recv(2048)
    except socket.timeout:
        continue
    hl = (b[0] & 15) * 4
    print(socket.inet_ntoa(b[12:16]), socket.inet_ntoa(b[16:20]),
          "%08x" % struct.unpack("!I", b[hl:hl + 4])[0], flush=True)
"""

_SEND = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
spi, n = int(sys.argv[2], 16), int(sys.argv[3])
for i in range(n):
    s.sendto(struct.pack("!II", spi, i + 1) + bytes(48), (sys.argv[1], 0))
"""


def raw_esp_listen(ns, seconds):
    """A raw IP protocol 50 listener in ns for `seconds`; returns the
    Popen (stdout lines: src dst spi), already listening."""
    import subprocess
    p = subprocess.Popen([N.IP, "netns", "exec", ns, "/usr/bin/python3", "-c", _LISTEN,
                          str(seconds)], stdout=subprocess.PIPE, text=True,
                         preexec_fn=N.pdeathsig)
    if p.stdout.readline().strip() != "ready":
        p.kill()
        raise N.LabError("raw ESP listener in %s did not start" % ns)
    return p


def raw_esp_collect(p, timeout):
    """-> [(src, dst, spi)] the listener saw, after it ends."""
    out, _ = p.communicate(timeout=timeout)
    return [tuple(l.split()) for l in out.splitlines() if l.strip()]


def raw_esp_send(ns, dst, spi, count):
    N.ns_run(ns, ["/usr/bin/python3", "-c", _SEND, dst, "%x" % spi, str(count)])
