"""A socket-engine daemon on loopback (no namespaces, no root), fake IKE
servers and fake IKE clients, for tests of what the daemon reports:
lookups, counts, metrics, the dashboard. The servers answer IKE_SA_INIT
with their SPIr, as real ones do: the balancer promotes an SA only when
the client's IKE_AUTH carries the SPIr its server answered
(docs/security.md)."""
import http.client
import json
import os
import socket
import struct
import subprocess
import select
import tempfile
import threading
import time

from lab.balancers import ikelb_bin
from test_api import UnixHTTP, free_udp_ports  # noqa: F401 (shared helpers)

SA_INIT, IKE_AUTH = 34, 35

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


SERVER_SPI_R = 0xabcdef0011223344
SERVERS = ("127.0.0.21", "127.0.0.22")


class FakeServers:
    """Answers every IKE_SA_INIT request on (server, port) with a bare
    response carrying SERVER_SPI_R; swallows everything else. A thread,
    stopped by stop() within 0.1 s."""

    def __init__(self, ports):
        self.socks = []
        for a in SERVERS:
            for p in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((a, p))
                self.socks.append(s)
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.done.is_set():
            ready, _, _ = select.select(self.socks, [], [], 0.1)
            for s in ready:
                b, peer = s.recvfrom(2048)
                # IKE_SA_INIT request: exchange 34, I flag, SPIr 0.
                if len(b) >= 28 and b[18] == SA_INIT and b[19] & 0x08 and b[8:16] == bytes(8):
                    spi_i = struct.unpack(">Q", b[:8])[0]
                    s.sendto(ike(spi_i, SERVER_SPI_R, SA_INIT, flags=0x20), peer)

    def stop(self):
        self.done.set()
        self.t.join(timeout=5)
        for s in self.socks:
            s.close()


class Daemon:
    def __init__(self, mode="source-ip", tcp=False):
        """tcp: the API on 127.0.0.1:PORT (for a browser) instead of a unix socket."""
        self.dir = tempfile.mkdtemp(prefix="ikelb-lb-")
        self.sock = os.path.join(self.dir, "api.sock")
        self.p500, self.p4500 = free_udp_ports(2)
        self.servers = FakeServers((self.p500, self.p4500))
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
        self.servers.stop()

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


def ike(spi_i, spi_r, exch, msgid=0, flags=0x08):
    """A bare IKEv2 header (an initiator's request by default): all the
    classifier needs."""
    return struct.pack(">QQBBBBII", spi_i, spi_r, 33, 0x20, exch, flags, msgid, 28)


class Client:
    """One IKE client: a UDP socket on (addr, any port); several on one
    address stand for clients behind one NAT."""

    def __init__(self, addr, spi_i):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((addr, 0))
        self.addr, self.port = self.s.getsockname()
        self.spi_i = spi_i

    def connect(self, d, spi_r=SERVER_SPI_R):
        """IKE_SA_INIT, the server's answer (relayed back, bounded wait),
        then IKE_AUTH with its SPIr: the balancer now tracks the SA."""
        self.s.sendto(ike(self.spi_i, 0, SA_INIT), ("127.0.0.1", d.p500))
        self.s.settimeout(2)
        try:
            self.s.recv(2048)
        except socket.timeout:
            pass  # the IKE_AUTH below then stays unpromoted: the test sees it
        self.s.settimeout(None)
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
