"""Namespaces, veths, threaded NAPI and CPU accounting for bench/run.

    gen (ikegen) --g0/c0-- lb --sN/e0-- sN (ikesink), N = 1..3

Every veth gets GRO (so veth uses NAPI) and threaded NAPI, so each
device's receive work runs in its own kernel thread `napi/<dev>-<id>` and
can be charged to the namespace that owns the device. Without that, the
receive work of the next hop would run in whatever context sent the packet
(ARCHITECTURE.md, Lab). Everything created is recorded and removed by teardown();
processes are stopped by PID."""
import os
import secrets
import signal
import subprocess
import time

IP = "/usr/sbin/ip"
NFT = "/usr/sbin/nft"
ETHTOOL = "/usr/sbin/ethtool"

VIP = "203.0.113.10"
GEN_ADDR = "203.0.113.2"
LB_CLIENT_ADDR = "203.0.113.1"
CLIENT_NET = "198.18.0.0/16"   # client source addresses (local route in gen)
CLIENT_BASE = "198.18.0.1"
QDISC_LIMIT = 10000


class BenchError(RuntimeError):
    pass


def run(cmd, check=True, timeout=30, input=None):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired as e:
        raise BenchError("timeout after %ss: %s" % (timeout, " ".join(cmd))) from e
    if check and p.returncode != 0:
        raise BenchError("command failed (%d): %s\n%s%s" % (
            p.returncode, " ".join(cmd), p.stdout, p.stderr))
    return p


def ns_run(ns, cmd, **kw):
    return run([IP, "netns", "exec", ns] + list(cmd), **kw)


def sink_addr(i):
    """(lb side, sink side) of sink i's /28 (i from 1)."""
    return "198.51.100.%d" % (16 * i + 1), "198.51.100.%d" % (16 * i + 2)


def napi_threads():
    """{pid: comm} of all threaded-NAPI kernel threads."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith("napi/"):
            out[int(d)] = comm
    return out


def ksoftirqd_pids():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().startswith("ksoftirqd/"):
                        out.append(int(d))
            except OSError:
                pass
    return out


def thread_runtime_ns(pid):
    """Run time of one task in ns (schedstat: exact, not tick-sampled)."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def process_runtime_ns(pid):
    """All live threads of a process."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for t in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


class Topology:
    def __init__(self, nsinks=3, workdir=None):
        self.prefix = "ikb%s-" % secrets.token_hex(3)
        self.nsinks = nsinks
        self.namespaces = []
        self.procs = []             # Popen objects we started
        self.napi = {}              # (ns role, dev) -> [pid]
        self.threaded_ok = True
        self.notes = []
        self.gen = self.lb = None
        self.sinks = []             # [(ns, name, addr)]

    # ---- build ------------------------------------------------------------
    def _add_ns(self, role):
        name = self.prefix + role
        existing = run([IP, "netns", "list"]).stdout.split()
        if name in existing:
            raise BenchError("namespace %s exists; refusing to reuse it" % name)
        run([IP, "netns", "add", name])
        self.namespaces.append(name)
        ns_run(name, [IP, "link", "set", "lo", "up"])
        for k in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                  "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"):
            ns_run(name, ["sysctl", "-qw", k], check=False)
        return name

    def _veth(self, ns_a, dev_a, ns_b, dev_b):
        run([IP, "-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b,
             "netns", ns_b])

    def build(self):
        self.gen = self._add_ns("gen")
        self.lb = self._add_ns("lb")
        self._veth(self.gen, "g0", self.lb, "c0")
        run([IP, "-n", self.gen, "addr", "add", GEN_ADDR + "/24", "dev", "g0"])
        run([IP, "-n", self.lb, "addr", "add", LB_CLIENT_ADDR + "/24", "dev", "c0"])
        run([IP, "-n", self.lb, "addr", "add", VIP + "/32", "dev", "lo"])
        devs = [(self.gen, "g0"), (self.lb, "c0")]
        for i in range(1, self.nsinks + 1):
            ns = self._add_ns("s%d" % i)
            lb_a, s_a = sink_addr(i)
            self._veth(self.lb, "s%d" % i, ns, "e0")
            run([IP, "-n", self.lb, "addr", "add", lb_a + "/28", "dev", "s%d" % i])
            run([IP, "-n", ns, "addr", "add", s_a + "/28", "dev", "e0"])
            devs += [(self.lb, "s%d" % i), (ns, "e0")]
            self.sinks.append((ns, "s%d" % i, s_a))
        for ns, dev in devs:
            run([IP, "-n", ns, "link", "set", dev, "up"])
        # gen owns the whole client range (bind to any address in it)
        run([IP, "-n", self.gen, "route", "add", "local", CLIENT_NET, "dev", "lo"])
        run([IP, "-n", self.gen, "route", "add", "default", "via", LB_CLIENT_ADDR])
        run([IP, "-n", self.lb, "route", "add", CLIENT_NET, "via", GEN_ADDR])
        for i, (ns, _, _) in enumerate(self.sinks, 1):
            run([IP, "-n", ns, "route", "add", "default", "via", sink_addr(i)[0]])
        ns_run(self.lb, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for ns, dev in devs:
            self._threaded_napi(ns, dev)
            # veth stops its queue when the peer's 256-slot ring is full
            # and a qdisc holds the packets meanwhile, as with a NIC's TX
            # ring; without one (veth's default noqueue) a NAPI thread that
            # is scheduled a few ms late on a 2-CPU VM means silent drops.
            ns_run(ns, ["tc", "qdisc", "replace", "dev", dev, "root", "pfifo", "limit",
                        str(QDISC_LIMIT)])
        self._warm_neighbours()

    def _threaded_napi(self, ns, dev):
        """GRO on (veth then has a NAPI instance), TSO off (veth_xmit
        passes a packet from a TSO-capable sender to NAPI only when it came
        from a local socket and the receiver does UDP GRO forwarding, which
        would change what is measured), then threaded NAPI: the kernel
        threads that appear are this device's."""
        if os.access(ETHTOOL, os.X_OK):
            ns_run(ns, [ETHTOOL, "-K", dev, "gro", "on", "tso", "off"], check=False)
        else:
            self.notes.append("ethtool missing: veth NAPI (hence threaded NAPI) is off")
        before = napi_threads()
        p = ns_run(ns, ["sh", "-c", "echo 1 > /sys/class/net/%s/threaded" % dev], check=False)
        time.sleep(0.05)
        after = napi_threads()
        new = [pid for pid, comm in after.items()
               if pid not in before and comm.startswith(("napi/" + dev)[:15])]
        role = "lb" if ns == self.lb else ns[len(self.prefix):]
        self.napi[(role, dev)] = new
        if p.returncode != 0 or not new:
            self.threaded_ok = False
            self.notes.append("no threaded NAPI thread for %s/%s (%s)" % (
                role, dev, (p.stderr or "no new napi/ thread").strip()))

    def _warm_neighbours(self):
        for i, (ns, _, s_a) in enumerate(self.sinks, 1):
            ns_run(self.lb, ["ping", "-c", "1", "-W", "1", s_a], check=False)
        ns_run(self.gen, ["ping", "-c", "1", "-W", "1", LB_CLIENT_ADDR], check=False)

    # ---- CPU --------------------------------------------------------------
    def lb_napi_pids(self):
        return [pid for (role, _), pids in self.napi.items() if role == "lb" for pid in pids]

    def cpu_snapshot(self, balancer_pids):
        """ns of CPU per category for the balancer namespace."""
        napi = sum(thread_runtime_ns(p) for p in self.lb_napi_pids())
        soft = sum(thread_runtime_ns(p) for p in ksoftirqd_pids())
        procs = 0
        for pid in balancer_pids:
            procs += process_runtime_ns(pid)
        return {"napi": napi, "ksoftirqd": soft, "process": procs}

    # ---- processes --------------------------------------------------------
    def popen(self, ns, cmd, **kw):
        p = subprocess.Popen([IP, "netns", "exec", ns] + list(cmd), **kw)
        self.procs.append(p)
        return p

    def stop(self, p, grace=3.0):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        if p in self.procs:
            self.procs.remove(p)

    def teardown(self):
        for p in list(self.procs):
            self.stop(p)
        for ns in reversed(self.namespaces):
            run([IP, "netns", "del", ns], check=False)
        self.namespaces = []

    def snmp_rcvbuf_errors(self, ns):
        """UDP RcvbufErrors of a namespace (drops at a full socket queue)."""
        out = ns_run(ns, ["cat", "/proc/net/snmp"], check=False).stdout.splitlines()
        rows = [l.split() for l in out if l.startswith("Udp:")]
        if len(rows) >= 2 and "RcvbufErrors" in rows[0]:
            return int(rows[1][rows[0].index("RcvbufErrors")])
        return 0
