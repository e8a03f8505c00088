"""The forwarding paths bench/run compares. Each one is set up in the lb
namespace of a bench_net.Topology and says where the generator sends
(dsts) and which processes do the balancer's work (pids, besides the lb's
NAPI threads and ksoftirqd, which bench_net counts for every path)."""
import os
import shutil
import subprocess
import time

from bench_net import ETHTOOL, NFT, VIP, BenchError, children, ns_run, run

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX = "/usr/sbin/nginx"
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


class Skip(Exception):
    """The path cannot run here (missing package, engine not built)."""


class Path:
    name = ""
    label = ""

    def __init__(self, topo, workdir, build):
        self.topo, self.workdir, self.build = topo, workdir, build

    def sink_addrs(self):
        return [a for _, _, a in self.topo.sinks]

    def dsts(self):
        return [VIP]

    def setup(self):
        pass

    def pids(self):
        return []

    def teardown(self):
        pass

    def describe(self):
        return self.label


class Plain(Path):
    name = "plain"
    label = "plain forwarding (lb routes, sinks addressed directly)"

    def dsts(self):
        # client i -> sink i mod N: same share per sink, no balancer
        return self.sink_addrs()


class NftDnat(Path):
    name = "nft-dnat"
    label = "nftables DNAT (jhash ip saddr, conntrack)"

    def setup(self):
        m = ", ".join("%d : %s" % (i, a) for i, a in enumerate(self.sink_addrs()))
        ruleset = ("table ip ikb_bench {\n"
                   " chain pre { type nat hook prerouting priority dstnat; policy accept;\n"
                   "  ip daddr %s udp dport { 500, 4500 } dnat to jhash ip saddr mod %d "
                   "map { %s }\n }\n}\n" % (VIP, len(self.sink_addrs()), m))
        ns_run(self.topo.lb, [NFT, "-f", "-"], input=ruleset)

    def teardown(self):
        ns_run(self.topo.lb, [NFT, "delete", "table", "ip", "ikb_bench"], check=False)
        ns_run(self.topo.lb, ["conntrack", "-F"], check=False)


class Nginx(Path):
    name = "nginx"
    label = "nginx stream UDP proxy (hash $remote_addr)"

    def __init__(self, *a):
        super().__init__(*a)
        self.proc = None
        self.dir = os.path.join(self.workdir, "nginx")
        self.consistent = os.environ.get("BENCH_NGINX_CONSISTENT") == "1"
        if self.consistent:
            self.label = "nginx stream UDP proxy (hash $remote_addr consistent)"

    def setup(self):
        if not (os.access(NGINX, os.X_OK) and os.path.exists(NGINX_STREAM_MODULE)):
            raise Skip("nginx or its stream module missing (IKELB_BENCH_DEPS=1 "
                       "scripts/install-deps)")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(HERE, "nginx-stream.conf.in")) as f:
            tmpl = f.read()
        ups = lambda port: "".join("        server %s:%d;\n" % (a, port)
                                   for a in self.sink_addrs())
        hash_ = "hash $remote_addr" + (" consistent" if self.consistent else "")
        conf = (tmpl.replace("@MODULE@", NGINX_STREAM_MODULE).replace("@HASH@", hash_)
                .replace("@DIR@", self.dir).replace("@VIP@", VIP)
                .replace("@UPSTREAM_500@", ups(500)).replace("@UPSTREAM_4500@", ups(4500)))
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        ns_run(self.topo.lb, [NGINX, "-t", "-q", "-c", path, "-p", self.dir, "-e",
                              os.path.join(self.dir, "error.log")])
        log = open(os.path.join(self.dir, "stdout.log"), "w")
        # daemon off: the PID we hold is nginx's master process
        self.proc = self.topo.popen(self.topo.lb, [NGINX, "-c", path, "-p", self.dir, "-e",
                                                   os.path.join(self.dir, "error.log"),
                                                   "-g", "daemon off;"],
                                    stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("nginx exited: %s" % self._log())
            out = ns_run(self.topo.lb, ["ss", "-uln"], check=False).stdout
            if "%s:4500" % VIP in out and children(self.proc.pid):
                return
            time.sleep(0.1)
        raise BenchError("nginx did not listen on %s:4500" % VIP)

    def _log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def teardown(self):
        if self.proc:
            self.topo.stop(self.proc)


class Ikelb(Path):
    """ikelb in the lb namespace with a private bpffs and /run, as the lab
    runs it (tests/system/lab/balancers.py)."""
    engine = "bpf"
    attach = "tc"
    # The generator's veth hands the lb CHECKSUM_PARTIAL skbs (UDP checksum
    # left to "hardware"). XDP cannot see that state and the frame it
    # redirects reaches the sink as a finished packet with a pseudo-header-
    # only checksum (sinks count UdpInCsumErrors, 100% loss). With full
    # checksums from the sender, as from a real NIC, XDP forwards correctly.
    # BENCH_GEN_TX_CSUM=off applies it to every ikelb path (same input).
    full_csum = False

    def __init__(self, *a):
        super().__init__(*a)
        self.proc = None
        self.dir = os.path.join(self.workdir, self.name or "ikelb-" + self.engine)
        self.max_clients = int(os.environ.get("BENCH_MAX_CLIENTS") or 1048576)
        # The service's persistence mode (BENCH_PERSISTENCE=ike measures an
        # ike-only configuration: persist_map then at its minimum size) and
        # flow slots per client: one, as measured (bench_bpf.count_entries).
        self.persistence = os.environ.get("BENCH_PERSISTENCE") or "source-ip"
        self.flows_per_client = int(os.environ.get("BENCH_FLOWS_PER_CLIENT") or 1)
        self.bpf_progs = None
        self.api = os.path.join(self.dir, "api.sock")

    def config(self):
        lines = ["engine: %s" % self.engine]
        if self.engine == "bpf":
            ifs = ["c0"] + [n for _, n, _ in self.topo.sinks]
            # Tables for max_clients NAT-T clients (one flow each, as the
            # bench measures), so the maps are those of a 1 M client balancer.
            lines += ["interfaces: [%s]" % ", ".join(ifs),
                      "bpf: { pin_dir: /sys/fs/bpf/ikelb, attach: %s }" % self.attach,
                      "limits: { max_clients: %d, max_flows: %d }" % (
                          self.max_clients, self.flows_per_client * self.max_clients)]
        else:
            lines += self.socket_keys()
        lines += ["api: { listen: \"unix:%s\" }" % self.api,
                  'server_state_file: ""',
                  "services:",
                  "  - name: bench",
                  "    vip: %s" % VIP,
                  "    ports: [500, 4500]",
                  "    forwarding: %s" % ("dnat" if self.engine == "bpf" else "fullnat"),
                  "    persistence: { mode: %s, timeout: 1h }" % self.persistence,
                  "    scheduler: maglev",
                  "    health: { type: none }",
                  "    servers:"]
        lines += ["      - { name: %s, address: %s }" % (n, a) for _, n, a in self.topo.sinks]
        return "\n".join(lines) + "\n"

    def socket_keys(self):
        """BENCH_SOCK_WORKERS / BENCH_SOCK_COALESCE: socket.workers and
        socket.coalesce_usecs (docs/socket-engine.md), else the defaults."""
        keys = [k + ": " + os.environ[e] for k, e in (
            ("workers", "BENCH_SOCK_WORKERS"), ("coalesce_usecs", "BENCH_SOCK_COALESCE"))
            if os.environ.get(e, "").strip()]
        return ["socket: { %s }" % ", ".join(keys)] if keys else []

    def binary(self):
        return os.path.join(self.build, "ikelb")

    def gen_csum_off(self):
        return self.full_csum or os.environ.get("BENCH_GEN_TX_CSUM") == "off"

    def setup(self):
        b = self.binary()
        if not os.access(b, os.X_OK):
            raise Skip("%s not built" % b)
        if self.gen_csum_off():
            if not os.access(ETHTOOL, os.X_OK):
                raise Skip("ethtool missing: cannot turn off g0 tx checksum offload")
            ns_run(self.topo.gen, [ETHTOOL, "-K", "g0", "tx", "off"])
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        conf = os.path.join(self.dir, "ikelb.yaml")
        with open(conf, "w") as f:
            f.write(self.config())
        chk = run([b, "check-config", "-c", conf], check=False)
        if chk.returncode != 0:
            raise Skip("ikelb check-config refuses the %s engine config: %s" % (
                self.engine, (chk.stdout + chk.stderr).strip()[:300]))
        script = ('ulimit -n 65536; mount -t bpf bpf /sys/fs/bpf 2>/dev/null; '
                  'mount --bind "$1" /run && shift && exec "$@"')
        log = open(os.path.join(self.dir, "ikelb.log"), "w")
        self.proc = self.topo.popen(self.topo.lb, ["sh", "-c", script, "sh",
                                                   os.path.join(self.dir, "run"), b, "run",
                                                   "-c", conf],
                                    stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("ikelb (%s) exited %s: %s" % (self.engine,
                                                               self.proc.returncode,
                                                               self.log()))
            if os.path.exists(self.api) and self.ready():
                time.sleep(0.5)  # first table sync
                return
            time.sleep(0.1)
        raise BenchError("ikelb (%s) not ready: %s" % (self.engine, self.log()))

    def ready(self):
        tc = ns_run(self.topo.lb, ["tc", "filter", "show", "dev", "c0", "ingress"],
                    check=False).stdout
        return " bpf " in tc or "bpf" in tc

    def log(self):
        try:
            with open(os.path.join(self.dir, "ikelb.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def pids(self):
        return [self.proc.pid]

    def stats(self):
        p = run([self.binary(), "stats", "--json", "-a", "unix:" + self.api], check=False)
        return p.stdout if p.returncode == 0 else ""

    def teardown(self):
        if self.proc:
            self.topo.stop(self.proc, grace=5)
        if self.gen_csum_off():
            ns_run(self.topo.gen, [ETHTOOL, "-K", "g0", "tx", "on"], check=False)


class IkelbBpf(Ikelb):
    name = "ikelb-bpf"
    label = "ikelb bpf engine (tc, dnat, source-ip persistence)"
    engine = "bpf"


class IkelbXdp(Ikelb):
    """The same with the XDP hot path in front of tc (bpf.attach: xdp):
    native XDP on the veths, redirect to the sink veths (GRO on, so their
    peers take XDP frames). The generator sends full checksums (see
    Ikelb.full_csum)."""
    name = "ikelb-xdp"
    label = ("ikelb bpf engine (native XDP + tc, dnat, source-ip persistence; "
             "generator sends full UDP checksums)")
    engine = "bpf"
    attach = "xdp"
    full_csum = True


class IkelbSocket(Ikelb):
    """BENCH_SOCK_SRV_MTU=N: MTU N on the lb's server-side veths, below the
    client side's, so that the engine's GSO trains exceed the route's MTU,
    the kernel refuses them (EINVAL) and the engine must send their
    datagrams singly (tests/system/test_socket_gso.py)."""
    name = "ikelb-socket"
    label = "ikelb socket engine (fullnat relay, source-ip persistence)"
    engine = "socket"

    def srv_mtu(self):
        return int(os.environ.get("BENCH_SOCK_SRV_MTU") or 0)

    def set_srv_mtu(self, mtu, check=True):
        for _, dev, _ in self.topo.sinks:
            ns_run(self.topo.lb, ["ip", "link", "set", "dev", dev, "mtu", str(mtu)],
                   check=check)

    def setup(self):
        if self.srv_mtu():
            self.set_srv_mtu(self.srv_mtu())
        super().setup()

    def teardown(self):
        super().teardown()
        if self.srv_mtu():
            self.set_srv_mtu(1500, check=False)

    def ready(self):
        out = ns_run(self.topo.lb, ["ss", "-uln"], check=False).stdout
        return "%s:4500" % VIP in out


class IkelbSocketSwGso(IkelbSocket):
    """The socket engine's GSO sends segmented on the balancer itself, as
    behind a NIC without UDP segmentation offload: veth otherwise passes the
    train whole and the receiving namespace segments it, off the lb's
    books."""
    name = "ikelb-socket-swgso"
    label = ("ikelb socket engine, UDP GSO segmented in software on the lb "
             "(tx-udp-segmentation off on its server-side veths)")

    def setup(self):
        if not os.access(ETHTOOL, os.X_OK):
            raise Skip("ethtool missing: cannot turn off tx-udp-segmentation")
        for _, dev, _ in self.topo.sinks:
            ns_run(self.topo.lb, [ETHTOOL, "-K", dev, "tx-udp-segmentation", "off"])
        super().setup()

    def teardown(self):
        super().teardown()
        for _, dev, _ in self.topo.sinks:
            ns_run(self.topo.lb, [ETHTOOL, "-K", dev, "tx-udp-segmentation", "on"],
                   check=False)


PATHS = [Plain, NftDnat, Nginx, IkelbBpf, IkelbXdp, IkelbSocket, IkelbSocketSwGso]


def nginx_version():
    if not os.access(NGINX, os.X_OK):
        return None
    p = subprocess.run([NGINX, "-v"], capture_output=True, text=True)
    return (p.stderr or p.stdout).strip().replace("nginx version: ", "")


def have(tool):
    return shutil.which(tool) is not None
