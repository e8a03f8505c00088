"""Load balancers the lab can put in its `lb` namespace.

  nft    nftables DNAT (conntrack reverses it): the plain-Linux baseline.
  snat   nft DNAT + masquerade toward the servers: "full NAT", servers see
         the balancer's address (reproduces strongSwan's per-IP limits).
  ikelb  the real thing: `$IKELB_BIN run -c FILE` in the lb namespace."""
import os
import signal
import subprocess
import time

from . import netns as N
from .topology import LB_CLIENT_IF, LB_SERVER_IF, VIP, VIP6

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class NftBalancer:
    """mode 'jhash': jhash ip saddr mod N (source-IP persistence, both ports
    go to the same server); 'numgen': round robin per conntrack flow (port
    500 and 4500 of one client may land on different servers)."""
    name = "nft"

    def __init__(self, lab, mode="jhash", masquerade=False):
        self.lab, self.mode, self.masquerade = lab, mode, masquerade

    def ruleset(self):
        servers = [s.addr for s in self.lab.servers]
        mapping = ", ".join("%d : %s" % (i, a) for i, a in enumerate(servers))
        expr = ("jhash ip saddr mod %d" % len(servers) if self.mode == "jhash"
                else "numgen inc mod %d" % len(servers))
        post = ""
        if self.masquerade:
            post = (" chain post { type nat hook postrouting priority srcnat; policy accept;\n"
                    '  oifname "%s" masquerade\n }\n' % LB_SERVER_IF)
        return ("table ip ikl_lb {\n"
                " chain pre { type nat hook prerouting priority dstnat; policy accept;\n"
                "  ip daddr %s udp dport { 500, 4500 } dnat to %s map { %s }\n"
                " }\n%s}\n" % (VIP, expr, mapping, post))

    def start(self):
        N.nft_load(self.lab.lb_ns, self.ruleset())
        self.lab.balancer = self
        return self

    def stop(self):
        if self.lab.lb_ns:
            N.ns_run(self.lab.lb_ns, [N.NFT, "delete", "table", "ip", "ikl_lb"], check=False)

    def stats(self):
        return N.ns_run(self.lab.lb_ns, ["conntrack", "-L", "-p", "udp"], check=False).stdout

    def describe(self):
        return "nftables DNAT (%s%s)" % (self.mode, ", masquerade" if self.masquerade else "")


class SnatBalancer(NftBalancer):
    name = "snat"

    def __init__(self, lab, mode="jhash"):
        super().__init__(lab, mode=mode, masquerade=True)


# ---- ikelb ------------------------------------------------------------------

def ikelb_bin():
    return os.environ.get("IKELB_BIN") or os.path.join(REPO, "build", "ikelb")


def ikelb_available():
    """(True, '') when `ikelb run` is implemented, else (False, reason).
    The skeleton prints its usage for every unknown command, so a real `run`
    is detected by asking it to run a missing file: a usage text means the
    command is not there yet."""
    b = ikelb_bin()
    if not os.access(b, os.X_OK):
        return False, "IKELB_BIN %s not found (build it, or set IKELB_BIN)" % b
    try:
        h = subprocess.run([b, "--help"], capture_output=True, text=True, timeout=5)
        if "run" not in h.stdout + h.stderr:
            return False, "%s --help does not list `run`" % b
        p = subprocess.run([b, "run", "-c", "/nonexistent/ikelb-lab-probe.yaml"],
                           capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, "%s does not answer: %s" % (b, e)
    out = (p.stdout + p.stderr).strip()
    if p.returncode == 0 or out.startswith("usage:") or not out:
        return False, "`%s run` is not implemented yet" % b
    return True, ""


def ikelb_config(lab, forwarding="dnat", persistence="source-ip", scheduler="maglev",
                 persistence_timeout="1h", netmask=32, health=None, api_listen=None,
                 spi_labels=None, spi_mask=None, esp_ranges=None, interfaces=None,
                 extra_service=None, engine="bpf", snat_pool=None, limits=None,
                 netmask6=None, vici=None,
                 server_extra=None):
    """YAML text for one service on the lab's VIP (schema: docs/config.md).
    spi_labels: {server name: "0x0100000000000000"}; esp_ranges: {server
    name: (min, max)}; the lab's servers need the matching charon options.
    engine 'socket' (forwarding fullnat) needs no interfaces; snat_pool:
    source addresses, which IkelbBalancer adds to lb's server-side s0.
    interfaces: a list, or {"public": [...], "servers": [...]} (roles);
    limits: {"max_clients": N, ...}. A Lab(ipv6=True) gets the IPv6 VIP and
    server addresses; netmask6: persistence.netmask6. vici: {server name: vici URI}
    (the charon's socket is server.charon.uri). server_extra: {server name:
    {key: value}} added to that server (e.g. max_clients, slow_start)."""
    # timeout must be shorter than interval (docs/config.md)
    h = health or {"type": "ike", "interval": "1s", "timeout": "500ms", "rise": 1, "fall": 2}
    lines = ["engine: %s" % engine]
    if engine == "bpf":
        if isinstance(interfaces, dict):
            ifs = "{ %s }" % ", ".join("%s: [%s]" % (k, ", ".join(v)) for k, v in interfaces.items())
        else:
            ifs = "[%s]" % ", ".join(interfaces or [LB_CLIENT_IF, LB_SERVER_IF])
        lines += ["interfaces: %s" % ifs,
                  # a private bpffs is mounted in the lb namespace (see start)
                  "bpf:",
                  "  pin_dir: /sys/fs/bpf/ikelb"]
    # callers may pass a stand-in lab (test_reload's write_config) without ipv6
    v6 = getattr(lab, "ipv6", False)
    if limits:
        lines += ["limits:"] + ["  %s: %s" % kv for kv in limits.items()]
    lines += ["api:",
             "  listen: %s" % (api_listen or "unix:%s" % os.path.join(lab.workdir, "ikelb-api.sock")),
             # not the host's /var/lib/ikelb: no drain leaks from test to test
             'server_state_file: ""',
             "services:",
             "  - name: vpn",
             "    vip: %s" % (VIP6 if v6 else VIP),
             "    ports: [500, 4500]",
             "    forwarding: %s" % forwarding,
             "    persistence:",
             "      mode: %s" % persistence,
             "      timeout: %s" % persistence_timeout,
             "      netmask: %d" % netmask,
             *(["      netmask6: %d" % netmask6] if netmask6 is not None else []),
             "    scheduler: %s" % scheduler]
    if spi_mask:
        lines.append('    spi_mask: "%s"' % spi_mask)
    if snat_pool:
        lines.append("    snat_pool: [%s]" % ", ".join(snat_pool))
    lines.append("    health:")
    lines += ["      %s: %s" % (k, v) for k, v in h.items()]
    for k, v in (extra_service or {}).items():
        lines.append("    %s: %s" % (k, v))
    lines.append("    servers:")
    for s in lab.servers:
        lines.append("      - name: %s" % s.name)
        lines.append("        address: %s" % (s.addr6 if v6 else s.addr))
        lines.append("        weight: 100")
        for k, v in (server_extra or {}).get(s.name, {}).items():
            lines.append("        %s: %s" % (k, v))
        if spi_labels and s.name in spi_labels:
            lines.append('        spi_label: "%s"' % spi_labels[s.name])
        if esp_ranges and s.name in esp_ranges:
            lo, hi = esp_ranges[s.name]
            lines.append("        esp_spi_min: 0x%08x" % lo)
            lines.append("        esp_spi_max: 0x%08x" % hi)
        if vici and s.name in vici:
            lines.append('        vici: "%s"' % vici[s.name])
    return "\n".join(lines) + "\n"


class IkelbBalancer(N.LabProc):
    name = "ikelb"

    def __init__(self, lab, run_args=(), ns=None, tag="ikelb", extra_yaml="", **cfg):
        # run_args: extra `ikelb run` arguments (e.g. ["--flush-state"]).
        # ns, tag, extra_yaml: one node of several (lab/ha.py): its
        # namespace, the name of its directory and API socket, and YAML
        # appended to the generated file (e.g. a `sync:` block).
        self.lab, self.cfg, self.run_args = lab, cfg, list(run_args)
        self.ns, self.tag, self.extra_yaml = ns or lab.lb_ns, tag, extra_yaml
        self.sock = os.path.join(lab.workdir, tag + "-api.sock")
        if tag != "ikelb":
            self.cfg.setdefault("api_listen", "unix:" + self.sock)
        self.proc = None
        self.dir = os.path.join(lab.workdir, tag)
        self.conf = os.path.join(self.dir, "ikelb.yaml")
        self.logfile = os.path.join(self.dir, "ikelb.log")

    def start(self, ready_timeout=20):
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        # fullnat sources must be local addresses of the balancer (the
        # socket engine binds its upstream sockets to them).
        # `replace`: a restart() finds them already there.
        for a in self.cfg.get("snat_pool") or ():
            N.run([N.IP, "-n", self.ns, "addr", "replace",
                   a + ("/128" if ":" in a else "/32"), "dev", LB_SERVER_IF])
        with open(self.conf, "w") as f:
            f.write(ikelb_config(self.lab, **self.cfg) + self.extra_yaml)
        # ip netns exec remounts /sys, so bpffs is gone there: mount a fresh
        # instance (private to this mount namespace, so pins cannot collide
        # with another lab) and a private /run.
        script = ('mount -t bpf bpf /sys/fs/bpf 2>/dev/null; '
                  'mount --bind "$1" /run && shift && exec "$@"')
        log = open(self.logfile, "w")
        self.proc = subprocess.Popen(
            [N.IP, "netns", "exec", self.ns, "sh", "-c", script, "sh",
             os.path.join(self.dir, "run"), ikelb_bin(), "run", "-c", self.conf] + self.run_args,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=N.pdeathsig if self.lab.die_with_parent else None)
        log.close()
        self.lab.reg.add_proc(self.tag, self.proc)
        self.lab.balancer = self
        deadline = time.monotonic() + float(os.environ.get("IKELB_READY_TIMEOUT", ready_timeout))
        # Ready when the API socket exists or a program sits on the client
        # interface; then a short settle for the first health checks.
        sock = self.sock
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise N.LabError("ikelb exited (%s):\n%s" % (self.proc.returncode, self.log()))
            if os.path.exists(sock) or self.attached():
                break
            time.sleep(0.1)
        self.wait_healthy(deadline)
        if self.proc.poll() is not None:
            raise N.LabError("ikelb exited (%s):\n%s" % (self.proc.returncode, self.log()))
        return self

    def restart(self, flush_state=False, ready_timeout=20):
        """Stop the daemon (SIGTERM by PID) and start it again with the
        same configuration; flush_state=True adds `--flush-state`, so every
        learned entry (persistence, SAs, flows) is gone. The log of the
        previous run is kept as ikelb.log.N."""
        self.stop()
        self.proc = None
        n = 1
        while os.path.exists("%s.%d" % (self.logfile, n)):
            n += 1
        if os.path.exists(self.logfile):
            os.rename(self.logfile, "%s.%d" % (self.logfile, n))
        sock = self.sock
        if os.path.exists(sock):
            os.unlink(sock)
        saved = self.run_args
        self.run_args = saved + (["--flush-state"] if flush_state else [])
        try:
            return self.start(ready_timeout)
        finally:
            self.run_args = saved

    def api(self):
        return "unix:" + self.sock

    def status(self):
        """`ikelb status --json` as a dict, or None (also while the daemon
        is still busy loading its program: the verifier takes tens of
        seconds on a loaded machine)."""
        import json
        try:
            r = subprocess.run([ikelb_bin(), "status", "--json", "-a", self.api()],
                               capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def ctl(self, *args):
        """Run an `ikelb` control command against this daemon."""
        return subprocess.run([ikelb_bin()] + list(args) + ["-a", self.api()],
                              capture_output=True, text=True, timeout=10)

    def sighup(self, expect, timeout=10):
        """SIGHUP (reload) and wait for `expect` in the daemon's log;
        -> the part of the log written after the signal."""
        before = len(self.log())
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.log()[before:]
            if expect in new:
                return new
            time.sleep(0.1)
        raise AssertionError("no %r after SIGHUP:\n%s" % (expect, self.log()[before:]))

    def wait_healthy(self, deadline, servers=None):
        """Until every (or every named) server's health probe answered, so
        placement does not depend on probe timing. Services without health
        checks are ready at once."""
        while time.monotonic() < deadline:
            st = self.status()
            if st:
                health = [s["health"] for svc in st["services"] for s in svc["servers"]
                          if servers is None or s["name"] in servers]
                if all(h == "up" for h in health):
                    return True
            time.sleep(0.2)
        raise N.LabError("ikelb: servers not healthy in time:\n%s" % self.log())

    def attached(self):
        """A tc or XDP program on the lb's client-side interface."""
        ns = self.ns
        tc = N.ns_run(ns, ["tc", "filter", "show", "dev", LB_CLIENT_IF, "ingress"],
                      check=False).stdout
        xdp = N.run([N.IP, "-n", ns, "link", "show", LB_CLIENT_IF], check=False).stdout
        return " bpf " in tc or "prog/xdp" in xdp

    def stats(self):
        """`ikelb stats` output, or '' when the command is not there."""
        for args in (["stats", "-c", self.conf], ["stats"]):
            try:
                p = N.ns_run(self.ns, [ikelb_bin()] + args, check=False, timeout=10)
            except N.LabError:
                continue
            if p.returncode == 0 and not p.stdout.startswith("usage:"):
                return p.stdout
        return ""

    def describe(self):
        pool = self.cfg.get("snat_pool")
        return "ikelb (%s, %s, %s%s)" % (
            self.cfg.get("engine", "bpf"), self.cfg.get("forwarding", "dnat"),
            self.cfg.get("persistence", "source-ip"),
            ", snat_pool %d" % len(pool) if pool else "")


BALANCERS = {"nft": NftBalancer, "snat": SnatBalancer, "ikelb": IkelbBalancer}


def start_balancer(lab, kind, **kw):
    return BALANCERS[kind](lab, **kw).start()
