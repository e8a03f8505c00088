"""Network-namespace plumbing for the lab: commands, namespaces, veths.

Everything created here is recorded in a Registry so teardown deletes
exactly what this run created (another lab may share the machine)."""
import os
import secrets
import signal
import subprocess
import time

IP = "/usr/sbin/ip"
NFT = "/usr/sbin/nft"


class LabError(RuntimeError):
    pass


class LabProc:
    """A daemon a lab object started (self.proc, registered in self.lab.reg)
    with its output in self.logfile: stopped by PID through the registry,
    never by name."""
    proc = None
    logfile = None

    def stop(self):
        if self.proc is not None:
            self.lab.reg.stop_proc(self.proc)

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""


def run(cmd, check=True, timeout=20, env=None, input=None):
    """Run a command (list), return CompletedProcess with text output."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=env, input=input)
    except subprocess.TimeoutExpired as e:
        raise LabError("timeout after %ss: %s" % (timeout, " ".join(cmd))) from e
    if check and p.returncode != 0:
        raise LabError("command failed (%d): %s\n%s%s" % (
            p.returncode, " ".join(cmd), p.stdout, p.stderr))
    return p


def ns_run(ns, cmd, **kw):
    return run([IP, "netns", "exec", ns] + list(cmd), **kw)


def new_prefix():
    return "ikl%s-" % secrets.token_hex(3)


def existing_namespaces():
    out = run([IP, "netns", "list"]).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


class Registry:
    """What one lab created: namespaces and processes (by PID)."""

    def __init__(self):
        self.namespaces = []
        self.procs = []  # (name, Popen)

    def add_ns(self, name, ipv6=False):
        """ipv6=False: IPv6 disabled so charon and the kernel keep to the
        lab's IPv4. ipv6=True: enabled, without duplicate address detection
        (addresses usable at once)."""
        if name in existing_namespaces():
            raise LabError("namespace %s already exists; refusing to reuse it" % name)
        run([IP, "netns", "add", name])
        self.namespaces.append(name)
        ns_run(name, [IP, "link", "set", "lo", "up"])
        keys = (("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
                if ipv6 else ("net.ipv6.conf.all.disable_ipv6=1",
                              "net.ipv6.conf.default.disable_ipv6=1"))
        for k in keys:
            ns_run(name, ["sysctl", "-qw", k], check=False)
        return name

    def add_proc(self, name, proc):
        self.procs.append((name, proc))

    def stop_proc(self, proc, grace=3.0):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass

    def state(self):
        """What teardown_saved() needs to undo this lab from another process."""
        return {"namespaces": list(self.namespaces),
                "procs": [{"name": n, "pid": p.pid, "cmdline": _cmdline(p.pid)}
                          for n, p in self.procs if p.poll() is None]}

    def teardown(self):
        procs, self.procs = self.procs, []
        for _, p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 4
        for _, p in procs:
            try:
                p.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        nss, self.namespaces = self.namespaces, []
        for ns in reversed(nss):
            run([IP, "netns", "del", ns], check=False)


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _alive(pid):
    """Running and not yet a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def teardown_saved(state):
    """Undo a detached lab (KEEP=1 demo): kill its processes by PID, but only
    while /proc/PID still shows the command we started, then delete its
    namespaces."""
    for p in state.get("procs", []):
        if p["cmdline"] and _cmdline(p["pid"]) == p["cmdline"]:
            try:
                os.kill(p["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 8
    for p in state.get("procs", []):
        while time.monotonic() < deadline and _alive(p["pid"]):
            time.sleep(0.1)
        if p["cmdline"] and _cmdline(p["pid"]) == p["cmdline"]:
            os.kill(p["pid"], signal.SIGKILL)
    for ns in reversed(state.get("namespaces", [])):
        run([IP, "netns", "del", ns], check=False)


def pdeathsig():
    """preexec_fn: the child gets SIGTERM if the process that started it
    dies, so a hard-killed test run does not leave charons behind."""
    import ctypes
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def veth(ns_a, name_a, ns_b, name_b):
    """A veth pair with one end in each namespace (created in ns_a)."""
    run([IP, "-n", ns_a, "link", "add", name_a, "type", "veth",
         "peer", "name", name_b, "netns", ns_b])


def bridge(ns, name):
    run([IP, "-n", ns, "link", "add", name, "type", "bridge"])
    run([IP, "-n", ns, "link", "set", name, "up"])


def link_up(ns, dev, master=None):
    cmd = [IP, "-n", ns, "link", "set", dev]
    if master:
        cmd += ["master", master]
    run(cmd + ["up"])


def addr_add(ns, dev, cidr):
    run([IP, "-n", ns, "addr", "add", cidr, "dev", dev])


def default_route(ns, gw):
    fam = ["-6"] if ":" in gw else []
    run([IP] + fam + ["-n", ns, "route", "add", "default", "via", gw])


def sysctl(ns, kv):
    ns_run(ns, ["sysctl", "-qw", kv])


def nft_load(ns, ruleset):
    ns_run(ns, [NFT, "-f", "-"], input=ruleset)
