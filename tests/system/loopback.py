"""A socket-engine daemon on loopback (no namespaces, no root) and fake IKE
clients, for tests of what the daemon reports: lookups, counts, metrics,
the dashboard. Servers need not exist: the balancer learns its state from
client messages (IKE_SA_INIT, then IKE_AUTH with the responder SPI)."""
import http.client
import json
import os
import socket
import struct
import subprocess
import tempfile
import time

from lab.balancers import ikelb_bin
from test_api import UnixHTTP, free_udp_ports  # noqa: F401 (shared helpers)

CONFIG = """engine: socket
api: {{ listen: "{listen}" }}
services:
  - name: vpn
    vip: 127.0.0.1
    ports: [{p500}, {p4500}]
    ike_port: {p500}
    forwarding: fullnat
    persistence: {{ mode: {mode} }}
    health: {{ type: none }}
    servers:
      - {{ name: a, address: 127.0.0.21, weight: 100 }}
      - {{ name: b, address: 127.0.0.22, weight: 100 }}
"""


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    def __init__(self, mode="source-ip", tcp=False):
        """tcp: the API on 127.0.0.1:PORT (for a browser) instead of a unix socket."""
        self.dir = tempfile.mkdtemp(prefix="ikelb-lb-")
        self.sock = os.path.join(self.dir, "api.sock")
        self.p500, self.p4500 = free_udp_ports(2)
        self.tcp_port = free_tcp_port() if tcp else None
        self.api = "127.0.0.1:%d" % self.tcp_port if tcp else "unix:" + self.sock
        self.conf = os.path.join(self.dir, "ikelb.yaml")
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(listen=self.api, p500=self.p500, p4500=self.p4500, mode=mode))
        self.logpath = os.path.join(self.dir, "ikelb.log")
        log = open(self.logpath, "w")
        self.proc = subprocess.Popen([ikelb_bin(), "run", "-c", self.conf], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while not self._api_up() and time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            time.sleep(0.05)
        assert self._api_up(), "API never came up"

    def _api_up(self):
        if not self.tcp_port:
            return os.path.exists(self.sock)
        try:
            socket.create_connection(("127.0.0.1", self.tcp_port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self):
        with open(self.logpath) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def http(self, method, path):
        c = (http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=10)
             if self.tcp_port else UnixHTTP(self.sock))
        c.request(method, path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body

    def get_json(self, path):
        code, body = self.http("GET", path)
        assert code == 200, (path, code, body)
        return json.loads(body)

    def cli(self, *args):
        return subprocess.run([ikelb_bin()] + list(args) + ["-a", self.api],
                              capture_output=True, text=True, timeout=20)


def ike(spi_i, spi_r, exch, msgid=0):
    """A bare IKEv2 header (initiator request): all the classifier needs."""
    return struct.pack(">QQBBBBII", spi_i, spi_r, 33, 0x20, exch, 0x08, msgid, 28)


SA_INIT, IKE_AUTH = 34, 35


class Client:
    """One IKE client: a UDP socket on (addr, any port); several on one
    address stand for clients behind one NAT."""

    def __init__(self, addr, spi_i):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((addr, 0))
        self.addr, self.port = self.s.getsockname()
        self.spi_i = spi_i

    def connect(self, d, spi_r=0xabcdef0011223344):
        """IKE_SA_INIT, then IKE_AUTH: the balancer now tracks the SA."""
        self.s.sendto(ike(self.spi_i, 0, SA_INIT), ("127.0.0.1", d.p500))
        time.sleep(0.05)
        self.s.sendto(ike(self.spi_i, spi_r, IKE_AUTH, 1), ("127.0.0.1", d.p500))

    def close(self):
        self.s.close()


def settle(d, want_sas, timeout=5):
    """Wait until the status counts want_sas established SAs."""
    deadline = time.monotonic() + timeout
    while True:
        st = d.get_json("/v1/status")
        n = sum(s["sas"] for s in st["services"][0]["servers"])
        if n >= want_sas or time.monotonic() > deadline:
            return st
        time.sleep(0.1)
