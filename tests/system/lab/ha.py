"""High availability in the lab (docs/ha.md): several ikelb nodes on the
same two bridges (Lab(balancers=N)), ikelb's state sync between them, and
keepalived (VRRP) moving the VIP and the servers' gateway together.

Node k (1-based) lives in namespace lab.lb_nss[k-1] with the addresses
203.0.113.(1+k) (c0) and 198.51.100.(1+k) (s0); the sync runs on s0, port
7600. keepalived runs per node with its own configuration, pid files and a
private /run, and is stopped by PID."""
import os
import subprocess
import time

from . import netns as N
from .balancers import IkelbBalancer, ikelb_bin
from .topology import LB_CLIENT_ADDR, LB_CLIENT_IF, LB_SERVER_ADDR, LB_SERVER_IF, VIP

SYNC_PORT = 7600
KEEPALIVED = "/usr/sbin/keepalived"


def node_addrs(k):
    return "203.0.113.%d" % (1 + k), "198.51.100.%d" % (1 + k)


def write_sync_key(lab):
    """A fresh shared key, mode 0600, in the lab's directory."""
    path = os.path.join(lab.workdir, "sync.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    return path


def sync_yaml(lab, k, key_file, interval="200ms"):
    peers = ['"%s:%d"' % (node_addrs(j)[1], SYNC_PORT)
             for j in range(1, lab.nbalancers + 1) if j != k]
    return ("sync:\n  listen: \"%s:%d\"\n  peers: [%s]\n  key_file: %s\n  interval: %s\n"
            % (node_addrs(k)[1], SYNC_PORT, ", ".join(peers), key_file, interval))


def accept_local(ns):
    """A node that takes over has never exchanged ARP with the clients: until
    it has, bpf_fib_lookup finds no neighbour for a dnat reply and hands it
    to the kernel, which drops a packet from the server side whose source
    (the VIP) is local, unless accept_local (docs/ha.md, "Every node")."""
    N.sysctl(ns, "net.ipv4.conf.%s.accept_local=1" % LB_SERVER_IF)


def start_nodes(lab, sync=True, **cfg):
    """One ikelb per balancer namespace, the same configuration (and
    maglev_seed) everywhere, with a `sync:` block when sync is on. -> list
    of IkelbBalancer, node 1 first."""
    key = write_sync_key(lab) if sync else None
    for ns in lab.lb_nss:
        accept_local(ns)
    nodes = []
    for k in range(1, lab.nbalancers + 1):
        extra = sync_yaml(lab, k, key) if sync else ""
        b = IkelbBalancer(lab, ns=lab.lb_nss[k - 1], tag="ikelb%d" % k, extra_yaml=extra,
                          **dict(cfg))
        nodes.append(b.start())
    return nodes


def keepalived_conf(k, priority, check_cmd, advert="0.2", servers_only=False):
    """VRRPv3, one sync group: the VIP (client side) and the servers'
    gateway move together; the node leaves MASTER when `ikelb health-check`
    fails twice. servers_only: just the servers' gateway (behind an ECMP
    group the router reaches the VIP by BGP, lab/ecmp.py)."""
    conf = _KA_GLOBAL + ("" if servers_only else _KA_CLIENTS) + _KA_SERVERS
    return conf % {"k": k, "check": check_cmd, "cif": LB_CLIENT_IF, "sif": LB_SERVER_IF,
                   "prio": priority, "adv": advert, "vip": VIP, "cgw": LB_CLIENT_ADDR,
                   "sgw": LB_SERVER_ADDR}


_KA_GLOBAL = """global_defs {
    router_id ikelb-lb%(k)d
    vrrp_version 3
    script_user root
    vrrp_garp_master_repeat 3
    # Linux ignores an ARP update within neigh locktime (1 s) of the last
    # one: the first burst at takeover can be ignored, so the second burst
    # comes after 1 s instead of keepalived's default 5 s.
    vrrp_garp_master_delay 1
}
vrrp_script chk_ikelb {
    script "%(check)s"
    interval 1
    timeout 2
    fall 2
    rise 2
}
"""
_KA_CLIENTS = """vrrp_sync_group ikelb {
    group {
        clients
        servers
    }
}
vrrp_instance clients {
    state BACKUP
    interface %(cif)s
    virtual_router_id 51
    priority %(prio)d
    advert_int %(adv)s
    virtual_ipaddress {
        %(vip)s/32 dev %(cif)s
        %(cgw)s/24 dev %(cif)s
    }
    track_script {
        chk_ikelb
    }
}
"""
_KA_SERVERS = """vrrp_instance servers {
    state BACKUP
    interface %(sif)s
    virtual_router_id 52
    priority %(prio)d
    advert_int %(adv)s
    virtual_ipaddress {
        %(sgw)s/24 dev %(sif)s
    }
    track_script {
        chk_ikelb
    }
}
"""


class Keepalived(N.LabProc):
    def __init__(self, lab, k, node, priority, servers_only=False):
        self.lab, self.k, self.node, self.priority = lab, k, node, priority
        self.servers_only = servers_only
        self.dir = os.path.join(lab.workdir, "keepalived%d" % k)
        self.conf = os.path.join(self.dir, "keepalived.conf")
        self.logfile = os.path.join(self.dir, "keepalived.log")
        self.proc = None

    def start(self):
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        check = "%s health-check -a %s" % (ikelb_bin(), self.node.api())
        with open(self.conf, "w") as f:
            f.write(keepalived_conf(self.k, self.priority, check,
                                    servers_only=self.servers_only))
        script = 'mount --bind "$1" /run && shift && exec "$@"'
        log = open(self.logfile, "w")
        self.proc = subprocess.Popen(
            [N.IP, "netns", "exec", self.lab.lb_nss[self.k - 1], "sh", "-c", script, "sh",
             os.path.join(self.dir, "run"), KEEPALIVED, "-n", "-l", "-D", "-G", "-P",
             "-f", self.conf, "-p", os.path.join(self.dir, "keepalived.pid"),
             "-r", os.path.join(self.dir, "vrrp.pid"),
             "-c", os.path.join(self.dir, "checkers.pid")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=N.pdeathsig if self.lab.die_with_parent else None)
        log.close()
        self.lab.reg.add_proc("keepalived%d" % self.k, self.proc)
        return self



def has_vip(lab, k):
    out = N.run([N.IP, "-n", lab.lb_nss[k - 1], "-o", "addr", "show", "dev", LB_CLIENT_IF],
                check=False).stdout
    return (" %s/32 " % VIP) in out


def has_gateway(lab, k):
    out = N.run([N.IP, "-n", lab.lb_nss[k - 1], "-o", "addr", "show", "dev", LB_SERVER_IF],
                check=False).stdout
    return (" %s/24 " % LB_SERVER_ADDR) in out


def wait_master(lab, k, timeout=15, servers_only=False):
    """Until node k holds the VIP and the servers' gateway (servers_only:
    the gateway); the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (servers_only or has_vip(lab, k)) and has_gateway(lab, k):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise N.LabError("node %d did not become VRRP master in %ds" % (k, timeout))


def fail_node(lab, k, node, keepalived=None):
    """The node is lost: its links go down (the moment of failure, returned
    as time.monotonic()), then its ikelb and keepalived are killed by PID."""
    ns = lab.lb_nss[k - 1]
    for ifname in (LB_CLIENT_IF, LB_SERVER_IF):
        N.run([N.IP, "-n", ns, "link", "set", ifname, "down"])
    t0 = time.monotonic()
    if keepalived is not None and keepalived.proc is not None:
        keepalived.proc.kill()
    if node.proc is not None and node.proc.poll() is None:
        node.proc.kill()
        node.proc.wait(timeout=5)
    return t0


def sync_stats(node):
    """The `sync` object of the node's /v1/stats, or {}."""
    import json
    r = node.ctl("stats", "--json")
    if r.returncode != 0:
        return {}
    return json.loads(r.stdout).get("sync", {})


def established_sas(lab):
    """{(server, initiator-spi, responder-spi)} of established IKE SAs: the
    same set before and after a failover means no SA was re-established."""
    return {(s.name, sa["initiator-spi"], sa["responder-spi"])
            for s in lab.servers for sa in lab.server_sas(s) if sa["state"] == "ESTABLISHED"}


def resume_times(lab, t0, watch):
    """Per client: seconds from t0 (the failure) to the first ping answered
    through its tunnel, or None when none within `watch` seconds."""
    import concurrent.futures

    def one(c):
        while time.monotonic() - t0 < watch:
            if lab.ping_through_tunnel(c.name, count=1, timeout=1):
                return c.name, time.monotonic() - t0
        return c.name, None
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(lab.clients)) as ex:
        return dict(ex.map(one, lab.clients))
