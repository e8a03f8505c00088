"""The daemon's control API and CLI, end to end, without namespaces: ikelb
runs the socket engine on loopback high ports (no root needed for this
engine) and the tests drive `ikelb status|stats|server|stop` and raw HTTP,
including misuse (unknown servers, bad weights, wrong methods), which must
get clear errors and leave the daemon running."""
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time

import pytest

from lab.balancers import ikelb_bin


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


def free_udp_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


# server_state_file "": tests must not share the host's
# /var/lib/ikelb/server-state.json (a drain would leak into the next test).
CONFIG = """engine: socket
api: {{ listen: "unix:{sock}" }}
server_state_file: ""
services:
  - name: {svc}
    vip: 127.0.0.1
    ports: [{p500}, {p4500}]
    ike_port: {p500}
    forwarding: fullnat
    health: {{ type: none }}
    servers:
      - {{ name: a, address: 127.0.0.21, weight: 100 }}
      - {{ name: b, address: 127.0.0.22, weight: 100 }}
"""


@pytest.fixture
def daemon():
    d = tempfile.mkdtemp(prefix="ikelb-api-")
    sock = os.path.join(d, "api.sock")
    ports = free_udp_ports(4)
    conf = os.path.join(d, "ikelb.yaml")
    with open(conf, "w") as f:
        f.write(CONFIG.format(sock=sock, svc="vpn", p500=ports[0], p4500=ports[1]))
    log = open(os.path.join(d, "ikelb.log"), "w")
    proc = subprocess.Popen([ikelb_bin(), "run", "-c", conf], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 10
    while not os.path.exists(sock) and time.monotonic() < deadline:
        assert proc.poll() is None, open(os.path.join(d, "ikelb.log")).read()
        time.sleep(0.05)
    assert os.path.exists(sock), "API socket never appeared"
    yield {"proc": proc, "sock": sock, "api": "unix:" + sock, "dir": d, "conf": conf}
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = open(os.path.join(d, "ikelb.log")).read()
    subprocess.run(["rm", "-rf", d], check=False)
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in text, text


def cli(daemon, *args):
    return subprocess.run([ikelb_bin()] + list(args) + ["-a", daemon["api"]],
                          capture_output=True, text=True, timeout=10)


def raw(daemon, method, path):
    c = UnixHTTP(daemon["sock"])
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


def test_status_and_metrics(daemon):
    st = json.loads(cli(daemon, "status", "--json").stdout)
    assert st["engine"] == "socket"
    servers = st["services"][0]["servers"]
    assert [s["name"] for s in servers] == ["a", "b"]
    assert all(s["state"] == "active" and s["weight"] == 100 for s in servers)
    text = cli(daemon, "status").stdout
    assert "service vpn" in text and "127.0.0.21" in text
    code, metrics = raw(daemon, "GET", "/metrics")
    assert code == 200
    # Prometheus: one TYPE line per family, before its samples.
    types = [l.split()[2] for l in metrics.splitlines() if l.startswith("# TYPE")]
    assert len(types) == len(set(types)), types
    assert 'ikelb_service_fullnat{service="vpn"} 1' in metrics
    assert 'ikelb_server_up{service="vpn",server="a"} 1' in metrics


def test_drain_enable_weight(daemon):
    assert cli(daemon, "server", "drain", "a").returncode == 0
    st = json.loads(cli(daemon, "status", "--json").stdout)
    a = st["services"][0]["servers"][0]
    assert (a["admin"], a["state"]) == ("draining", "draining")
    assert cli(daemon, "server", "weight", "vpn/b", "7").returncode == 0
    assert cli(daemon, "server", "enable", "a").returncode == 0
    st = json.loads(cli(daemon, "status", "--json").stdout)
    a, b = st["services"][0]["servers"]
    assert a["state"] == "active" and b["weight"] == 7
    assert cli(daemon, "server", "disable", "b").returncode == 0
    st = json.loads(cli(daemon, "status", "--json").stdout)
    assert st["services"][0]["servers"][1]["state"] == "down"


@pytest.mark.parametrize("args,needle", [
    (("server", "drain", "nosuch"), "no such server"),
    (("server", "weight", "a", "70000"), "weight must be 0..65535"),
    (("server", "weight", "a", "abc"), "weight must be 0..65535"),
    (("server", "weight", "a", "--", "-1"), "weight must be 0..65535"),
    (("server", "explode", "a"), "unknown server action"),
    (("server", "drain"), "usage"),
    (("server", "drain", "other/a"), "no such server"),
])
def test_misuse_gets_clear_errors(daemon, args, needle):
    r = cli(daemon, *args)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert daemon["proc"].poll() is None


@pytest.mark.parametrize("method,path,code", [
    ("GET", "/nope", 404),
    ("DELETE", "/v1/status", 405),
    ("POST", "/v1/servers/a", 404),
    ("POST", "/v1/servers/a/weight/abc", 404),
    ("GET", "/v1/servers/a/drain", 404),
    ("POST", "/v1/servers/" + "x" * 400 + "/drain", 414),
])
def test_raw_http_misuse(daemon, method, path, code):
    got, body = raw(daemon, method, path)
    assert got == code, body
    assert "error" in json.loads(body)
    assert daemon["proc"].poll() is None


def test_stop(daemon):
    assert cli(daemon, "stop").returncode == 0
    assert daemon["proc"].wait(timeout=10) == 0
    r = cli(daemon, "status")
    assert r.returncode == 1 and "cannot reach ikelb" in r.stderr


def test_unreachable_daemon_is_a_clear_error():
    r = subprocess.run([ikelb_bin(), "status", "-a", "unix:/nonexistent/ikelb.sock"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "cannot reach ikelb" in r.stderr


def test_socket_engine_runs_unprivileged():
    """engine: socket needs no privileges on high ports: the daemon runs as
    nobody, relays a datagram, and answers its API."""
    d = tempfile.mkdtemp(prefix="ikelb-unpriv-")
    os.chmod(d, 0o777)
    sock = os.path.join(d, "api.sock")
    p500, p4500, srv_port = free_udp_ports(3)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.21", p500))
    server.settimeout(0.2)
    conf = os.path.join(d, "ikelb.yaml")
    with open(conf, "w") as f:
        f.write(CONFIG.format(sock=sock, svc="vpn", p500=p500, p4500=p4500))
    os.chmod(conf, 0o644)
    proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             ikelb_bin(), "run", "-c", conf],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        st = json.loads(subprocess.run([ikelb_bin(), "status", "--json", "-a", "unix:" + sock],
                                       capture_output=True, text=True, timeout=10).stdout)
        assert st["engine"] == "socket"
        # An IKE_SA_INIT-shaped datagram reaches a server through the relay.
        hdr = bytes(range(1, 9)) + bytes(8) + bytes([33, 0x20, 34, 0x08]) + bytes(4)
        msg = hdr + (28).to_bytes(4, "big")
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind(("127.0.0.1", 0))
        got = None
        servers = [server]
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.22", p500))
        other.settimeout(0.2)
        servers.append(other)
        for _ in range(10):
            c.sendto(msg, ("127.0.0.1", p500))
            for s in servers:
                try:
                    got, _ = s.recvfrom(2048)
                    break
                except socket.timeout:
                    continue
            if got:
                break
        assert got == msg
        with open("/proc/%d/status" % proc.pid) as f:
            uid = [l for l in f if l.startswith("Uid:")][0].split()[1]
        assert uid == "65534"
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
        subprocess.run(["rm", "-rf", d], check=False)
    assert "AddressSanitizer" not in out and "runtime error:" not in out, out


def test_second_daemon_on_the_same_api_refuses(daemon):
    """Two daemons would fight over one data path: the second one refuses to
    start while the first answers on the API socket, and the first keeps
    running."""
    r = subprocess.run([ikelb_bin(), "run", "-c", daemon["conf"]], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1
    assert "another ikelb is already running" in r.stderr, r.stderr
    assert daemon["proc"].poll() is None
    assert cli(daemon, "status").returncode == 0
