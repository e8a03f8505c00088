"""ECMP in the lab (docs/ha.md, "Active/active with ECMP"): Lab(balancers=N,
router=True) plus FRR. The router namespace runs zebra + bgpd with
multipath; every node runs zebra + bgpd announcing the VIPs with `network`
statements, which FRR only announces while the route exists: the
announcer (contrib/ha/ikelb-bgp-announce) puts the VIPs on the node's lo
while `ikelb health-check` passes and takes them off when it fails. Each
FRR instance has its own directory, configuration and private /run, and
every process is stopped by PID."""
import os
import subprocess
import time

from . import netns as N
from .balancers import REPO, ikelb_bin
from .topology import TRANSIT_ROUTER

FRR_DIR = "/usr/lib/frr"
ROUTER_AS, NODE_AS = 65000, 65001
ANNOUNCER = os.path.join(REPO, "contrib", "ha", "ikelb-bgp-announce")


def transit_addr(k):
    return "198.18.100.%d" % (1 + k)


def router_bgpd_conf(nnodes):
    lines = ["hostname rt", "log stdout informational", "router bgp %d" % ROUTER_AS,
             " bgp router-id %s" % TRANSIT_ROUTER, " no bgp ebgp-requires-policy",
             " timers bgp 1 3"]
    for k in range(1, nnodes + 1):
        lines.append(" neighbor %s remote-as %d" % (transit_addr(k), NODE_AS))
    lines += [" address-family ipv4 unicast", "  maximum-paths 16", " exit-address-family", ""]
    return "\n".join(lines)


def node_bgpd_conf(k, vips):
    lines = ["hostname lb%d" % k, "log stdout informational", "router bgp %d" % NODE_AS,
             " bgp router-id %s" % transit_addr(k), " no bgp ebgp-requires-policy",
             " timers bgp 1 3", " neighbor %s remote-as %d" % (TRANSIT_ROUTER, ROUTER_AS),
             " address-family ipv4 unicast"]
    lines += ["  network %s/32" % v for v in vips]
    lines += [" exit-address-family", ""]
    return "\n".join(lines)


class Frr:
    """zebra + bgpd in one namespace."""

    def __init__(self, lab, ns, name, bgpd_conf):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = os.path.join(lab.workdir, "frr-" + name)
        self.bgpd_conf = bgpd_conf
        self.procs = []

    def _spawn(self, daemon, conf):
        script = 'mkdir -p "$1/frr" && mount --bind "$1" /run && shift && exec "$@"'
        log = open(os.path.join(self.dir, daemon + ".log"), "w")
        p = subprocess.Popen(
            [N.IP, "netns", "exec", self.ns, "sh", "-c", script, "sh",
             os.path.join(self.dir, "run"), os.path.join(FRR_DIR, daemon), "-f", conf, "-i", os.path.join(self.dir, daemon + ".pid"),
             "-P", "0", "--log", "stdout"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=N.pdeathsig if self.lab.die_with_parent else None)
        log.close()
        self.lab.reg.add_proc("%s-%s" % (daemon, self.name), p)
        self.procs.append(p)
        return p

    def start(self):
        # FRR drops to its `frr` user (root is not in its vty group): the
        # lab directory becomes traversable, this instance's own directory
        # belongs to frr.
        import pwd
        frr = pwd.getpwnam("frr")
        os.chmod(self.lab.workdir, 0o711)
        os.makedirs(os.path.join(self.dir, "run", "frr"), exist_ok=True)
        zconf = os.path.join(self.dir, "zebra.conf")
        bconf = os.path.join(self.dir, "bgpd.conf")
        with open(zconf, "w") as f:
            f.write("hostname %s\nlog stdout informational\n" % self.name)
        with open(bconf, "w") as f:
            f.write(self.bgpd_conf)
        for root, dirs, files in os.walk(self.dir):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, frr.pw_uid, frr.pw_gid)
        self._spawn("zebra", zconf)
        # bgpd connects to zebra's socket (/run/frr/zserv.api in the same dir)
        sock = os.path.join(self.dir, "run", "frr", "zserv.api")
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._spawn("bgpd", bconf)
        return self

    def stop(self):
        for p in self.procs:
            self.lab.reg.stop_proc(p)

    def log(self, daemon="bgpd"):
        try:
            with open(os.path.join(self.dir, daemon + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Announcer(N.LabProc):
    """contrib/ha/ikelb-bgp-announce in a node's namespace."""

    def __init__(self, lab, k, node, vips):
        self.lab, self.k, self.node, self.vips = lab, k, node, vips
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [N.IP, "netns", "exec", self.lab.lb_nss[self.k - 1], "sh", ANNOUNCER,
             "--ikelb", ikelb_bin(), "--api", self.node.api(), "--interval", "0.5"] + self.vips,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            preexec_fn=N.pdeathsig if self.lab.die_with_parent else None)
        self.lab.reg.add_proc("announce%d" % self.k, self.proc)
        return self


def multipath_nexthops(lab, vip):
    """The router's kernel nexthops for vip/32 (addresses)."""
    out = N.run([N.IP, "-n", lab.rt_ns, "route", "show", "%s/32" % vip], check=False).stdout
    return sorted({w for line in out.splitlines() for i, w in enumerate(line.split())
                   if i > 0 and line.split()[i - 1] == "via"})


def wait_nexthops(lab, vip, n, timeout=30):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if len(multipath_nexthops(lab, vip)) == n:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise N.LabError("router: %s has nexthops %s, want %d" % (
        vip, multipath_nexthops(lab, vip), n))


# ---- generated clients (bench/ikegen -> bench/ikesink on every server) ----

GEN_VIP = "203.0.113.20"
GEN_PORTS = (10500, 14500)
GEN_HOST = "203.0.113.99"
GEN_SOURCES = "198.18.64.0/24"


def gen_service_yaml(lab):
    """A second service for the generator's clients, on ports the servers'
    charons do not use (the sinks bind them), without health checks."""
    lines = ["  - name: gen", "    vip: %s" % GEN_VIP, "    ports: [%d, %d]" % GEN_PORTS,
             "    ike_port: %d" % GEN_PORTS[0], "    forwarding: dnat",
             "    persistence: { mode: source-ip, timeout: 1h }",
             "    health: { type: none }", "    servers:"]
    lines += ["      - { name: g%d, address: %s }" % (s.index, s.addr) for s in lab.servers]
    return "\n".join(lines) + "\n"


def bench_bin(name):
    return os.path.join(os.path.dirname(ikelb_bin()), "bench", name)


def start_gen_host(lab):
    """Namespace `gen` on the clients' bridge; its sources 198.18.64.0/24 are
    local (ikegen binds them) and routed to it by the router."""
    ns = lab.reg.add_ns(lab.ns("gen"))
    N.veth(ns, "eth0", lab.sw_ns, "gen")
    N.link_up(lab.sw_ns, "gen", "brc")
    N.addr_add(ns, "eth0", GEN_HOST + "/24")
    N.link_up(ns, "eth0")
    N.default_route(ns, "203.0.113.1")
    N.run([N.IP, "-n", ns, "route", "add", "local", GEN_SOURCES, "dev", "lo"])
    N.run([N.IP, "-n", lab.rt_ns, "route", "add", GEN_SOURCES, "via", GEN_HOST])
    return ns


class Sinks:
    """bench/ikesink on every server, on the generator's ports."""

    def __init__(self, lab, duration):
        self.lab, self.duration, self.procs, self.outs = lab, duration, [], []

    def start(self):
        for s in self.lab.servers:
            out = os.path.join(self.lab.workdir, "sink-%s.json" % s.name)
            p = subprocess.Popen(
                [N.IP, "netns", "exec", s.ns, bench_bin("ikesink"), "--bind", s.addr,
                 "--ports", "%d,%d" % GEN_PORTS, "--name", s.name, "--out", out,
                 "--duration", str(self.duration)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, preexec_fn=N.pdeathsig if self.lab.die_with_parent else None)
            self.lab.reg.add_proc("sink-" + s.name, p)
            p.stdout.readline()  # READY
            self.procs.append(p)
            self.outs.append(out)
        return self

    def result(self, timeout=30):
        """-> {client id: {server names}} once every sink wrote its file."""
        import json
        where = {}
        for p, out in zip(self.procs, self.outs):
            p.wait(timeout=timeout)
            with open(out) as f:
                res = json.load(f)
            for cid, n in res.get("clients", {}).items():
                if n:
                    where.setdefault(cid, set()).add(res["name"])
        return where


def run_gen(lab, ns, clients, duration, rate=2000):
    """ikegen from the gen namespace: handshakes then ESP for `duration` s.
    Returns the Popen (its last stdout line is a JSON summary)."""
    p = subprocess.Popen(
        [N.IP, "netns", "exec", ns, bench_bin("ikegen"), "--dst", GEN_VIP,
         "--src-base", GEN_SOURCES.split("/")[0], "--src-count", str(clients), "--clients",
         str(clients), "--rate", str(rate), "--hs-rate", "200", "--duration", str(duration),
         "--count", str(rate * duration * 2), "--port500", str(GEN_PORTS[0]),
         "--port4500", str(GEN_PORTS[1])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        preexec_fn=N.pdeathsig if lab.die_with_parent else None)
    lab.reg.add_proc("ikegen", p)
    return p


def start_cluster(lab, sync=True, **cfg):
    """Every node: ikelb (the lab's service `vpn` + `gen`, the same file and
    seed everywhere, sync when asked), keepalived for the servers' gateway
    only, FRR and the announcer; the router's FRR. Returns the nodes once
    the router has all of them as nexthops for both VIPs."""
    from . import ha
    from .topology import VIP
    key = ha.write_sync_key(lab) if sync else None
    nodes = []
    for k in range(1, lab.nbalancers + 1):
        ha.accept_local(lab.lb_nss[k - 1])
        extra = gen_service_yaml(lab) + (ha.sync_yaml(lab, k, key) if sync else "")
        nodes.append(ha.IkelbBalancer(lab, ns=lab.lb_nss[k - 1], tag="ikelb%d" % k,
                                      extra_yaml=extra, **dict(cfg)).start())
    lab.ha_keepalived = [ha.Keepalived(lab, k, nodes[k - 1], 200 - 10 * k,
                                       servers_only=True).start()
                         for k in range(1, lab.nbalancers + 1)]
    Frr(lab, lab.rt_ns, "rt", router_bgpd_conf(lab.nbalancers)).start()
    for k in range(1, lab.nbalancers + 1):
        Frr(lab, lab.lb_nss[k - 1], "lb%d" % k, node_bgpd_conf(k, [VIP, GEN_VIP])).start()
        Announcer(lab, k, nodes[k - 1], [VIP, GEN_VIP]).start()
    ha.wait_master(lab, 1, servers_only=True)
    for v in (VIP, GEN_VIP):
        wait_nexthops(lab, v, lab.nbalancers)
    return nodes
