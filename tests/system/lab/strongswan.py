"""One strongSwan charon per namespace, plus swanctl helpers and parsers.

Each instance gets its own directory with strongswan.conf (STRONGSWAN_CONF),
swanctl.conf (SWANCTL_DIR), a vici socket outside /run (so swanctl runs from
the host without entering the namespace) and a private /run bind-mounted
inside `ip netns exec` (charon hard-codes /var/run/charon.pid)."""
import os
import re
import shutil
import signal
import subprocess
import time

from .netns import IP, LabError, pdeathsig, run

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = "/usr/sbin/swanctl"
PSK = "ikelb-lab-preshared-key-0123456789"
GATEWAY_ID = "vpn.example.test"
PROTECTED = "198.19.255.1"

# kernel-libipsec before kernel-netlink: the kernel has XFRM but no ESP,
# so CHILD_SAs run in user space over a TUN device.
PLUGINS = ("random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints "
           "curve25519 aes sha1 sha2 hmac gcm kdf kernel-libipsec kernel-netlink "
           "socket-default vici counters")

BASE_CHARON = {
    "load_modular": "no",
    "load": PLUGINS,
    "threads": 16,  # 8 hung `swanctl --load-all` here
    "install_virtual_ip": "yes",
    "install_routes": "yes",
    "retransmit_tries": 3,
    "retransmit_timeout": 2.0,
}


def _nest(flat):
    """{'a.b': 1, 'c': 2} -> {'a': {'b': 1}, 'c': 2}"""
    out = {}
    for key, val in flat.items():
        cur = out
        parts = key.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        if isinstance(val, dict):
            cur.setdefault(parts[-1], {}).update(_nest(val))
        else:
            cur[parts[-1]] = val
    return out


def render_conf(tree, indent=0):
    """strongswan.conf / swanctl.conf syntax from a nested dict."""
    pad = "\t" * indent
    lines = []
    for key, val in tree.items():
        if isinstance(val, dict):
            lines.append("%s%s {" % (pad, key))
            lines.append(render_conf(val, indent + 1))
            lines.append("%s}" % pad)
        else:
            if isinstance(val, bool):
                val = "yes" if val else "no"
            if isinstance(val, (list, tuple)):
                val = ",".join(str(v) for v in val)
            lines.append("%s%s = %s" % (pad, key, val))
    return "\n".join(l for l in lines if l != "")


def server_swanctl(index, pool, conn=None, child=None):
    c = {
        "version": 2,
        "pools": "pool",
        "proposals": "aes128-sha256-x25519",
        "local": {"auth": "psk", "id": GATEWAY_ID},
        "remote": {"auth": "psk"},
        "children": {"net": dict({"local_ts": PROTECTED + "/32",
                                  "esp_proposals": "aes128gcm16"}, **(child or {}))},
    }
    c.update(conn or {})
    return {
        "connections": {"rw": c},
        "pools": {"pool": {"addrs": pool}},
        "secrets": {"ike-gw": {"id": GATEWAY_ID, "secret": '"%s"' % PSK}},
    }


def client_swanctl(ident, remote, conn=None, child=None):
    c = {
        "version": 2,
        "remote_addrs": remote,
        "vips": "0.0.0.0",
        "proposals": "aes128-sha256-x25519",
        "local": {"auth": "psk", "id": ident},
        "remote": {"auth": "psk", "id": GATEWAY_ID},
        "children": {"net": dict({"remote_ts": PROTECTED + "/32",
                                  "esp_proposals": "aes128gcm16"}, **(child or {}))},
    }
    c.update(conn or {})
    return {
        "connections": {"vpn": c},
        "secrets": {"ike-gw": {"id-1": GATEWAY_ID, "id-2": ident,
                               "secret": '"%s"' % PSK}},
    }


class Charon:
    """One charon in one namespace."""

    def __init__(self, name, ns, workdir, charon_opts=None, swanctl_tree=None, files=None):
        self.name = name
        self.ns = ns
        self.dir = os.path.join(workdir, name)
        self.rundir = os.path.join(self.dir, "run")
        self.swanctl_dir = os.path.join(self.dir, "swanctl")
        self.conf = os.path.join(self.dir, "strongswan.conf")
        self.socket = os.path.join(self.dir, "charon.vici")
        self.logfile = os.path.join(self.dir, "charon.log")
        self.outfile = os.path.join(self.dir, "charon.out")
        self.charon_opts = dict(BASE_CHARON, **(charon_opts or {}))
        self.swanctl_tree = swanctl_tree or {}
        # {path under the swanctl directory: source file} (lab/pki.py)
        self.files = files or {}
        self.proc = None

    @property
    def uri(self):
        return "unix://" + self.socket

    def write_config(self):
        os.makedirs(self.rundir, exist_ok=True)
        for sub in ("conf.d", "x509", "x509ca", "private", "rsa", "ecdsa", "pkcs8",
                    "pkcs12", "x509aa", "x509ocsp", "x509crl", "x509ac", "pubkey",
                    "bliss", "pkcs12"):
            os.makedirs(os.path.join(self.swanctl_dir, sub), exist_ok=True)
        charon = _nest(self.charon_opts)
        charon.setdefault("plugins", {}).setdefault("vici", {})["socket"] = self.uri
        # net=2 so COOKIE decisions are visible in the log. Levels can be
        # raised per instance with charon options "filelog.lab.<group>",
        # e.g. {"filelog.lab.esp": 2} logs ESP packets with unknown SPIs
        # (kernel-libipsec).
        lab_log = {"path": self.logfile, "time_format": "%T", "ike_name": "yes",
                   "flush_line": "yes", "default": 1, "net": 2, "enc": 1}
        lab_log.update(charon.get("filelog", {}).get("lab", {}))
        charon["filelog"] = {"lab": lab_log}
        charon["syslog"] = {"identifier": "charon-" + self.name,
                            "daemon": {"default": -1}, "auth": {"default": -1}}
        tree = {"charon": charon,
                "swanctl": {"socket": self.uri}}
        with open(self.conf, "w") as f:
            f.write(render_conf(tree) + "\n")
        with open(os.path.join(self.swanctl_dir, "swanctl.conf"), "w") as f:
            f.write(render_conf(self.swanctl_tree) + "\n")
        for rel, src in self.files.items():
            shutil.copyfile(src, os.path.join(self.swanctl_dir, rel))

    def env(self):
        e = dict(os.environ)
        e["STRONGSWAN_CONF"] = self.conf
        e["SWANCTL_DIR"] = self.swanctl_dir
        return e

    def start(self, registry, die_with_parent=True):
        self.write_config()
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        script = 'mount --bind "$1" /run && exec "$2"'
        out = open(self.outfile, "w")
        self.proc = subprocess.Popen(
            [IP, "netns", "exec", self.ns, "sh", "-c", script, "sh", self.rundir, CHARON],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env(), preexec_fn=pdeathsig if die_with_parent else None)
        out.close()
        registry.add_proc(self.name, self.proc)

    def kill(self, sig=signal.SIGKILL, timeout=5):
        """Kill this charon by PID (a crash when SIGKILL: no DELETE is sent,
        the peers find out by DPD/retransmits). Returns the time of the kill
        (time.monotonic())."""
        p = self.proc
        if p is None or p.poll() is not None:
            raise LabError("charon %s is not running" % self.name)
        t = time.monotonic()
        p.send_signal(sig)
        p.wait(timeout=timeout)
        return t

    def restart(self, registry, die_with_parent=True):
        """Start a fresh charon with the same configuration (after kill())
        and load it; its old pid file would otherwise stop it."""
        if self.proc is not None and self.proc.poll() is None:
            raise LabError("charon %s is still running" % self.name)
        try:
            os.unlink(os.path.join(self.rundir, "charon.pid"))
        except FileNotFoundError:
            pass
        self.start(registry, die_with_parent)
        self.wait_ready()
        self.load_all()

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError("charon %s exited (%s):\n%s" % (
                    self.name, self.proc.returncode, self.output()[-2000:]))
            if os.path.exists(self.socket):
                p = self.swanctl(["--stats"], check=False, timeout=5)
                if p.returncode == 0:
                    return
            time.sleep(0.05)
        raise LabError("charon %s: vici socket not ready after %ss" % (self.name, timeout))

    def swanctl(self, args, check=True, timeout=15):
        # swanctl wants the command first, then --uri.
        cmd = ["timeout", "-k", "2", str(timeout), SWANCTL] + list(args[:1]) + \
              ["--uri", self.uri] + list(args[1:])
        return run(cmd, check=check, timeout=timeout + 5, env=self.env())

    def load_all(self):
        self.swanctl(["--load-all", "--noprompt"], timeout=20)

    def output(self):
        try:
            with open(self.outfile) as f:
                return f.read()
        except OSError:
            return ""

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def list_sas(self):
        p = self.swanctl(["--list-sas", "--raw"], timeout=10)
        return parse_list_sas(p.stdout)

    def counters(self):
        p = self.swanctl(["--counters"], timeout=10)
        return parse_counters(p.stdout)

    def stats(self):
        p = self.swanctl(["--stats"], timeout=10)
        return parse_stats(p.stdout)


# ---- parsers ---------------------------------------------------------------

def parse_raw(text):
    """Parse swanctl --raw output (`name {k=v sect {..} list [a b]}`) into
    nested dicts. Returns a list of (event-name, dict) for each message."""
    msgs = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        m = re.match(r"^([\w-]+(?: [\w-]+)*?) \{(.*)\}$", line)
        if not m:
            continue
        body, _ = _parse_section(m.group(2), 0)
        msgs.append((m.group(1), body))
    return msgs


def _parse_section(s, i):
    out = {}
    n = len(s)
    while i < n:
        while i < n and s[i] == " ":
            i += 1
        if i >= n:
            break
        if s[i] == "}":
            return out, i + 1
        j = i
        while j < n and s[j] not in " ={[}":
            j += 1
        key = s[i:j]
        while j < n and s[j] == " ":
            j += 1
        if j < n and s[j] == "=":
            # value runs to the next space (values with spaces do not occur
            # in the fields the lab reads)
            if j + 1 < n and s[j + 1] == "[":
                k = s.index("]", j)
                out[key] = s[j + 2:k].split()
                i = k + 1
                continue
            k = j + 1
            while k < n and s[k] not in " }":
                k += 1
            out[key] = s[j + 1:k]
            i = k
        elif j < n and s[j] == "{":
            sub, i = _parse_section(s, j + 1)
            out[key] = sub
        elif j < n and s[j] == "[":
            k = s.index("]", j)
            out[key] = s[j + 1:k].split()
            i = k + 1
        else:
            i = j + 1
    return out, i


def parse_list_sas(text):
    """-> list of IKE SA dicts with the fields the tests read, plus
    'children': list of child SA dicts."""
    sas = []
    for _, msg in parse_raw(text):
        for conn, sa in msg.items():
            if not isinstance(sa, dict):
                continue
            children = []
            for cname, c in (sa.get("child-sas") or {}).items():
                if isinstance(c, dict):
                    children.append(dict(c, name=cname))
            sas.append({
                "conn": conn,
                "uniqueid": sa.get("uniqueid"),
                "state": sa.get("state"),
                "local-host": sa.get("local-host"),
                "local-port": _int(sa.get("local-port")),
                "remote-host": sa.get("remote-host"),
                "remote-port": _int(sa.get("remote-port")),
                "remote-id": sa.get("remote-id"),
                "initiator-spi": sa.get("initiator-spi"),
                "responder-spi": sa.get("responder-spi"),
                "nat-remote": sa.get("nat-remote") == "yes",
                "remote-vips": sa.get("remote-vips") or [],
                "local-vips": sa.get("local-vips") or [],
                "children": children,
                "raw": sa,
            })
    return sas


def parse_counters(text):
    """swanctl --counters (global section) -> {'invalid-spi': n, ...}."""
    out = {}
    for m in re.finditer(r"^\s*([\w-]+)\s*:\s*(\d+)\s*$", text, re.M):
        out[m.group(1)] = int(m.group(2))
    if "invalid-spi" not in out:
        raise LabError("cannot parse swanctl --counters:\n" + text)
    return out


def parse_stats(text):
    m = re.search(r"IKE_SAs:\s*(\d+) total,\s*(\d+) half-open", text)
    if not m:
        raise LabError("cannot parse swanctl --stats:\n" + text)
    return {"ike_sas": int(m.group(1)), "half_open": int(m.group(2)), "text": text}


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
