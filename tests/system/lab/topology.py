"""The lab: a balancer namespace between a client segment and a server
segment, real strongSwan responders behind it and initiators in front.

    clients (203.0.113.100+i) ─┐                    ┌─ s1 198.51.100.11
    nat (203.0.113.50) ────────┤ brc ─ lb ─ brs ────┼─ s2 198.51.100.12
      └ brn 198.18.200.0/24    │ (sw namespace)     └─ ...
        └ n1.. 198.18.200.10+i

Bridges live in a `sw` namespace so the balancer gets two plain veth
interfaces (c0 toward clients, s0 toward servers) to attach BPF to.

Lab(ipv6=True) adds IPv6 beside it (documentation prefix only): client ci
2001:db8:c:i::100 (its own /64 inside the on-link 2001:db8:c::/48, so a
/64 persistence netmask tells clients apart), server si 2001:db8:5::(10+i),
lb c0 2001:db8:c::1, s0 2001:db8:5::1, VIP6 2001:db8:a::10."""
import atexit
import concurrent.futures
import json
import os
import shutil
import signal
import tempfile
import threading
import time

from . import layouts
from . import netns as N
from .strongswan import PROTECTED, Charon, client_swanctl, server_swanctl

VIP = "203.0.113.10"
LB_CLIENT_ADDR = "203.0.113.1"
LB_SERVER_ADDR = "198.51.100.1"
NAT_PUBLIC = "203.0.113.50"
NAT_PRIVATE_GW = "198.18.200.1"
LB_CLIENT_IF = "c0"
LB_SERVER_IF = "s0"
TRANSIT_ROUTER = "198.18.100.1"
VIP6 = "2001:db8:a::10"
LB_CLIENT_ADDR6 = "2001:db8:c::1"
LB_SERVER_ADDR6 = "2001:db8:5::1"

_live_labs = set()
_live_lock = threading.Lock()
_handlers_installed = False


def _cleanup_all():
    with _live_lock:
        labs = list(_live_labs)
    for lab in labs:
        lab.stop()


def _install_handlers():
    """atexit + SIGTERM/SIGHUP -> tear down every live lab and raise
    KeyboardInterrupt. SIGINT already raises it; callers' try/finally and
    the pytest fixtures handle it."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        prev = signal.getsignal(sig)

        def handler(signum, frame, prev=prev):
            _cleanup_all()
            if callable(prev):
                prev(signum, frame)
            # Like Ctrl-C: pytest stops the session (SystemExit would only
            # fail the current test) and callers' finally blocks run.
            raise KeyboardInterrupt("signal %d" % signum)
        signal.signal(sig, handler)


def _opts(spec, index):
    """Per-instance options: a dict (same for all) or a callable(index)."""
    if spec is None:
        return {}
    if callable(spec):
        return spec(index) or {}
    return spec


class Node:
    def __init__(self, name, ns, addr, kind):
        self.name, self.ns, self.addr, self.kind = name, ns, addr, kind
        self.addr6 = None
        self.charon = None
        self.index = 0

    def __repr__(self):
        return "<%s %s %s>" % (self.kind, self.name, self.addr)


class InitResult:
    def __init__(self, client, ok, seconds, output, vip=None):
        self.client, self.ok, self.seconds, self.output = client, ok, seconds, output
        self.vip = vip

    def __repr__(self):
        return "<%s %s %.1fs>" % (self.client, "up" if self.ok else "FAILED", self.seconds)


class Lab:
    """servers/clients/nat_clients: counts. server_opts/client_opts: dict or
    callable(index) -> {'charon': {strongswan.conf charon.* keys},
    'conn': {swanctl connection keys}, 'child': {swanctl child keys},
    'files': {path under swanctl/: source file} (certificates, lab/pki.py)}.
    vip_on: 'lo' (default), 'c0' (lb's client interface) or None (the
    balancer answers for the VIP itself).
    balancers: N > 1 builds N balancer namespaces (lb, lb2, ...) on the same
    two bridges for high availability (docs/ha.md): node k has its own
    addresses 203.0.113.(1+k) and 198.51.100.(1+k), and neither the VIP nor
    the gateways 203.0.113.1 / 198.51.100.1 are configured: keepalived
    (lab/ha.py) moves them. vip_on is then ignored.
    router=True (with balancers > 1): an ECMP router namespace `rt` owns
    the clients' gateway 203.0.113.1 and reaches the nodes over a transit
    bridge brr (198.18.100.0/24: router .1, node k .(1+k), the nodes' c0);
    lab/ecmp.py runs BGP so the router learns the VIP from the nodes.
    ipv6=True (one balancer, no NAT clients): IPv6 addresses beside the
    IPv4 ones (module docstring); servers, clients and public_addr() use
    them, so clients connect to VIP6.
    dsr, server_gw, one_arm: lab/layouts.py (one_arm puts a lo VIP with
    vip_on set, the lb's single interface being c0)."""

    def __init__(self, servers=2, clients=4, nat_clients=0, server_opts=None,
                 client_opts=None, vip_on="lo", workdir=None, prefix=None,
                 die_with_parent=True, balancers=1, router=False, ipv6=False,
                 dsr=False, server_gw="lb", one_arm=False):
        self.nservers, self.nclients, self.nnat = servers, clients, nat_clients
        self.server_opts, self.client_opts = server_opts, client_opts
        self.vip_on = vip_on
        self.ipv6 = ipv6
        if ipv6 and (balancers > 1 or nat_clients):
            raise N.LabError("ipv6=True: one balancer and no NAT clients")
        self.nbalancers = balancers
        self.router = router and balancers > 1
        self.rt_ns = None
        self.lb_nss = []
        # lab/layouts.py: servers holding the VIP, their gateway, one arm
        self.dsr, self.server_gw, self.one_arm = dsr, server_gw, one_arm
        self.gw_ns = None
        # False for a lab meant to outlive this process (demo KEEP=1).
        self.die_with_parent = die_with_parent
        self.prefix = prefix or N.new_prefix()
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=self.prefix)
        self.reg = N.Registry()
        self.servers, self.clients = [], []
        self.lb_ns = self.sw_ns = self.nat_ns = None
        self.balancer = None
        self.started = False
        self._stopped = False

    # ---- topology ---------------------------------------------------------
    def ns(self, suffix):
        return self.prefix + suffix

    def _add_ns(self, name):
        return self.reg.add_ns(self.ns(name), ipv6=self.ipv6)

    def start(self):
        _install_handlers()
        with _live_lock:
            _live_labs.add(self)
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        self.started = True
        return self

    def _build(self):
        self.sw_ns = self._add_ns("sw")
        N.bridge(self.sw_ns, "brc")
        N.bridge(self.sw_ns, "brs")
        if self.router:
            self._build_router()
        if self.one_arm:
            layouts.one_arm_balancer(self, VIP, LB_SERVER_ADDR)
            if self.vip_on:
                N.addr_add(self.lb_ns, "lo", VIP + "/32")
        elif self.nbalancers > 1:
            for k in range(1, self.nbalancers + 1):
                caddr = ("198.18.100.%d" if self.router else "203.0.113.%d") % (1 + k)
                self._balancer_arms(k, caddr, "198.51.100.%d" % (1 + k),
                                    "brr" if self.router else "brc")
                if self.router:
                    N.default_route(self.lb_nss[-1], TRANSIT_ROUTER)
            self.lb_ns = self.lb_nss[0]
        else:
            self._balancer_arms(1, LB_CLIENT_ADDR, LB_SERVER_ADDR)
            self.lb_ns = self.lb_nss[0]
            if self.vip_on:
                N.addr_add(self.lb_ns, self.vip_on, VIP + "/32")
            if self.ipv6:
                self._balancer_v6()

        for i in range(1, self.nservers + 1):
            name = "s%d" % i
            node = self._host(name, "brs", "198.51.100.%d" % (10 + i), 24, LB_SERVER_ADDR,
                              "server")
            N.addr_add(node.ns, "lo", PROTECTED + "/32")
            node.index = i
            self._host_v6(node, "2001:db8:5::%d/64" % (10 + i), LB_SERVER_ADDR6)
            self.servers.append(node)
        for i in range(1, self.nclients + 1):
            name = "c%d" % i
            node = self._host(name, "brc", "203.0.113.%d" % (100 + i), 24, LB_CLIENT_ADDR,
                              "client")
            node.index = i
            self._host_v6(node, "2001:db8:c:%x::100/48" % i, LB_CLIENT_ADDR6)
            self.clients.append(node)
        if self.nnat:
            self._build_nat()
        layouts.finish(self, VIP)

    def _balancer_v6(self):
        N.addr_add(self.lb_ns, LB_CLIENT_IF, LB_CLIENT_ADDR6 + "/48")
        N.addr_add(self.lb_ns, LB_SERVER_IF, LB_SERVER_ADDR6 + "/64")
        N.sysctl(self.lb_ns, "net.ipv6.conf.all.forwarding=1")
        if self.vip_on:
            N.addr_add(self.lb_ns, self.vip_on, VIP6 + "/128")

    def _host_v6(self, node, cidr, gw):
        if not self.ipv6:
            return
        N.addr_add(node.ns, "eth0", cidr)
        N.default_route(node.ns, gw)
        node.addr6 = cidr.split("/")[0]

    def _build_router(self):
        """The ECMP router: eth0 on the clients' bridge, eth1 on the transit
        bridge toward the nodes; L4 multipath hashing, so one client's
        ports 500 and 4500 may reach different nodes."""
        self.rt_ns = self._add_ns("rt")
        N.bridge(self.sw_ns, "brr")
        N.veth(self.rt_ns, "eth0", self.sw_ns, "rtc")
        N.veth(self.rt_ns, "eth1", self.sw_ns, "rtr")
        N.link_up(self.sw_ns, "rtc", "brc")
        N.link_up(self.sw_ns, "rtr", "brr")
        N.addr_add(self.rt_ns, "eth0", LB_CLIENT_ADDR + "/24")
        N.addr_add(self.rt_ns, "eth1", TRANSIT_ROUTER + "/24")
        N.link_up(self.rt_ns, "eth0")
        N.link_up(self.rt_ns, "eth1")
        N.sysctl(self.rt_ns, "net.ipv4.ip_forward=1")
        N.sysctl(self.rt_ns, "net.ipv4.fib_multipath_hash_policy=1")
        # The VIP lies in the clients' own subnet here (as in every lab
        # topology), so clients ARP for it: the router answers for the
        # addresses it routes elsewhere.
        N.sysctl(self.rt_ns, "net.ipv4.conf.eth0.proxy_arp=1")

    def _balancer_arms(self, k, caddr, saddr, cbridge="brc"):
        """Balancer namespace k (lb, lb2, ...): c0 on cbridge, s0 on brs."""
        sfx = "" if k == 1 else str(k)
        ns = self._add_ns("lb" + sfx)
        N.veth(ns, LB_CLIENT_IF, self.sw_ns, "lbc" + sfx)
        N.veth(ns, LB_SERVER_IF, self.sw_ns, "lbs" + sfx)
        N.link_up(self.sw_ns, "lbc" + sfx, cbridge)
        N.link_up(self.sw_ns, "lbs" + sfx, "brs")
        if self.nbalancers > 1:
            # A switch floods frames for a MAC it no longer knows (a dead
            # node's port went down) to every port; the other nodes' BPF
            # programs would forward those copies (docs/ha.md, "Findings").
            # Off here, so a failover is measured by ARP/VRRP/BGP alone.
            for port in ("lbc" + sfx, "lbs" + sfx):
                N.run(["bridge", "-n", self.sw_ns, "link", "set", "dev", port, "flood", "off"])
        N.addr_add(ns, LB_CLIENT_IF, caddr + "/24")
        N.addr_add(ns, LB_SERVER_IF, saddr + "/24")
        N.link_up(ns, LB_CLIENT_IF)
        N.link_up(ns, LB_SERVER_IF)
        N.sysctl(ns, "net.ipv4.ip_forward=1")
        self.lb_nss.append(ns)
        return ns

    def _host(self, name, bridge, addr, plen, gw, kind):
        ns = self._add_ns(name)
        N.veth(ns, "eth0", self.sw_ns, name)
        N.link_up(self.sw_ns, name, bridge)
        N.addr_add(ns, "eth0", "%s/%d" % (addr, plen))
        N.link_up(ns, "eth0")
        N.default_route(ns, gw)
        return Node(name, ns, addr, kind)

    def _build_nat(self):
        self.nat_ns = self._add_ns("nat")
        N.bridge(self.sw_ns, "brn")
        N.veth(self.nat_ns, "eth0", self.sw_ns, "natpub")
        N.veth(self.nat_ns, "eth1", self.sw_ns, "natpriv")
        N.link_up(self.sw_ns, "natpub", "brc")
        N.link_up(self.sw_ns, "natpriv", "brn")
        N.addr_add(self.nat_ns, "eth0", NAT_PUBLIC + "/24")
        N.addr_add(self.nat_ns, "eth1", NAT_PRIVATE_GW + "/24")
        N.link_up(self.nat_ns, "eth0")
        N.link_up(self.nat_ns, "eth1")
        N.default_route(self.nat_ns, LB_CLIENT_ADDR)
        N.sysctl(self.nat_ns, "net.ipv4.ip_forward=1")
        N.nft_load(self.nat_ns, (
            "table ip cgnat {\n"
            " chain post { type nat hook postrouting priority srcnat; policy accept;\n"
            '  oifname "eth0" ip saddr 198.18.200.0/24 masquerade random\n'
            " }\n}\n"))
        for i in range(1, self.nnat + 1):
            name = "n%d" % i
            node = self._host(name, "brn", "198.18.200.%d" % (10 + i), 24, NAT_PRIVATE_GW,
                              "nat-client")
            node.index = self.nclients + i
            self.clients.append(node)

    # ---- charons ----------------------------------------------------------
    def start_charons(self):
        for s in self.servers:
            o = _opts(self.server_opts, s.index)
            tree = server_swanctl(s.index, "198.18.%d.0/24" % s.index,
                                  o.get("conn"), o.get("child"))
            s.charon = Charon(s.name, s.ns, self.workdir, o.get("charon"), tree, o.get("files"))
        for c in self.clients:
            o = _opts(self.client_opts, c.index)
            tree = client_swanctl("%s@lab.test" % c.name,
                                  o.get("remote", VIP6 if self.ipv6 else VIP),
                                  o.get("conn"), o.get("child"))
            c.charon = Charon(c.name, c.ns, self.workdir, o.get("charon"), tree, o.get("files"))
        nodes = self.servers + self.clients
        # Started from this thread on purpose: PDEATHSIG follows the thread.
        for n in nodes:
            n.charon.start(self.reg, self.die_with_parent)
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
            list(ex.map(lambda n: (n.charon.wait_ready(), n.charon.load_all()), nodes))
        return self

    def kill_charon(self, name, sig=signal.SIGKILL):
        """Kill one node's charon by PID; returns the time.monotonic() of
        the kill."""
        return self.node(name).charon.kill(sig)

    def restart_charon(self, name):
        """Start a killed node's charon again (same config), loaded."""
        self.node(name).charon.restart(self.reg, self.die_with_parent)

    def initiate(self, client, timeout=20):
        t0 = time.monotonic()
        p = client.charon.swanctl(["--initiate", "--child", "net", "--timeout",
                                   str(timeout)], check=False, timeout=timeout + 5)
        ok = p.returncode == 0 and "completed successfully" in p.stdout
        return InitResult(client.name, ok, time.monotonic() - t0, p.stdout + p.stderr)

    def initiate_all(self, parallel=True, timeout=20, clients=None):
        """-> {client name: InitResult}"""
        clients = clients or self.clients
        if not parallel:
            return {c.name: self.initiate(c, timeout) for c in clients}
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(clients) or 1) as ex:
            res = list(ex.map(lambda c: self.initiate(c, timeout), clients))
        return {r.client: r for r in res}

    # ---- inspection -------------------------------------------------------
    def node(self, name_or_node):
        if isinstance(name_or_node, Node):
            return name_or_node
        for n in self.servers + self.clients:
            if n.name == name_or_node:
                return n
        raise KeyError(name_or_node)

    def server_sas(self, server):
        """[] for a killed charon: it holds no SAs."""
        ch = self.node(server).charon
        if ch.proc is not None and ch.proc.poll() is not None:
            return []
        return ch.list_sas()

    def server_counters(self, server):
        return self.node(server).charon.counters()

    def server_stats(self, server):
        return self.node(server).charon.stats()

    def server_log(self, server):
        return self.node(server).charon.log()

    def client_sas(self, client):
        return self.node(client).charon.list_sas()

    def ping_through_tunnel(self, client, count=2, timeout=3):
        c = self.node(client)
        p = N.ns_run(c.ns, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W",
                            str(timeout), PROTECTED], check=False, timeout=count * timeout + 5)
        return p.returncode == 0

    def flush_nat_conntrack(self):
        """`conntrack -F` in the carrier-NAT namespace: every NAT'd client
        gets a new public source port (masquerade random) with its next
        packet, as when a real carrier NAT drops its mappings."""
        if not self.nat_ns:
            raise N.LabError("this lab has no NAT namespace (nat_clients=0)")
        N.ns_run(self.nat_ns, ["conntrack", "-F"], check=False)

    def nat_mappings(self):
        """-> {(private ip, private port): public port} of the carrier NAT's
        UDP conntrack entries toward the VIP."""
        if not self.nat_ns:
            return {}
        out = N.ns_run(self.nat_ns, ["conntrack", "-L", "-p", "udp"], check=False).stdout
        maps = {}
        for line in out.splitlines():
            f = [kv.split("=", 1) for kv in line.split() if "=" in kv]
            src = [v for k, v in f if k == "src"]
            dst = [v for k, v in f if k == "dst"]
            sport = [v for k, v in f if k == "sport"]
            dport = [v for k, v in f if k == "dport"]
            if len(src) == 2 and len(dport) == 2 and dst[0] == VIP:
                maps[(src[0], int(sport[0]))] = int(dport[1])
        return maps

    def public_addr(self, client):
        """The address the outside world sees for a client."""
        c = self.node(client)
        if self.ipv6:
            return c.addr6
        return NAT_PUBLIC if c.kind == "nat-client" else c.addr

    def placement(self):
        """-> {server name: [(remote-id, remote-host, remote-port, state), ...]}"""
        out = {}
        for s in self.servers:
            out[s.name] = [(sa["remote-id"], sa["remote-host"], sa["remote-port"], sa["state"])
                           for sa in self.server_sas(s)]
        return out

    def summary(self, results=None):
        lines = ["lab %s: %d servers, %d clients" % (self.prefix, len(self.servers),
                                                     len(self.clients))]
        if results:
            up = sum(1 for r in results.values() if r.ok)
            times = sorted(r.seconds for r in results.values())
            lines.append("clients up: %d/%d (initiate %.1f..%.1fs)" % (
                up, len(results), times[0], times[-1]))
            failed = [n for n, r in results.items() if not r.ok]
            if failed:
                lines.append("failed: " + " ".join(sorted(failed)))
        for s in self.servers:
            sas = self.server_sas(s)
            seen = sorted({sa["remote-host"] for sa in sas})
            lines.append("%s %s: %d IKE SAs, %d established; clients %s; seen from %s" % (
                s.name, s.addr6 if self.ipv6 else s.addr, len(sas),
                sum(1 for sa in sas if sa["state"] == "ESTABLISHED"),
                ",".join(sorted(sa["remote-id"].split("@")[0] for sa in sas if sa["remote-id"]))
                or "-", ",".join(seen) or "-"))
        return "\n".join(lines)

    # ---- teardown ---------------------------------------------------------
    def detach(self):
        """Leave the lab running after this process exits; returns the path
        of a state file for `teardown_saved_lab(path)`."""
        path = os.path.join(self.workdir, "lab.json")
        state = dict(self.reg.state(), workdir=self.workdir, prefix=self.prefix)
        with open(path, "w") as f:
            json.dump(state, f, indent=1)
        self._stopped = True
        with _live_lock:
            _live_labs.discard(self)
        return path

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.balancer is not None:
                try:
                    self.balancer.stop()
                except Exception:
                    pass
            self.reg.teardown()
        finally:
            with _live_lock:
                _live_labs.discard(self)
            if self._own_workdir and not os.environ.get("IKL_KEEP_LOGS"):
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def teardown_saved_lab(path):
    """Tear down a lab left running by detach() (KEEP=1 demo)."""
    with open(path) as f:
        state = json.load(f)
    N.teardown_saved(state)
    wd = state.get("workdir", "")
    if wd and os.path.basename(wd).startswith(state.get("prefix", "?")):
        shutil.rmtree(wd, ignore_errors=True)
