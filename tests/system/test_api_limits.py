"""Control API limits and access (issue "Edge hardening"): a burst of 200
parallel requests is served (the old backlog of 32 refused most), idle
connections are closed after api.idle_timeout and cannot lock clients out,
and a TCP listener with api.token_file answers only requests carrying
"Authorization: Bearer TOKEN".

No root and no lab: the daemon runs the socket engine on loopback.
Run: IKELB_BIN=$PWD/build/ikelb /usr/bin/python3 -m pytest -q tests/system/test_api_limits.py"""
import http.client
import os
import socket
import subprocess
import threading
import time

import pytest

from lab.balancers import ikelb_bin
from test_cli import write_config as cli_write_config
from test_cli import _built, ikelbd_bin, tmp  # noqa: F401 (fixtures: built binaries, a temp dir)

TOKEN = "s3cret-token-0123456789abcdef"
REQ = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(d, api):
    """test_cli's socket-engine configuration with API keys of our own."""
    udp = [free_port(socket.SOCK_DGRAM) for _ in range(2)]
    path = cli_write_config(d, "unix:/placeholder", udp)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace('listen: "unix:/placeholder"', api))
    return path


class Daemon:
    """ikelbd run in the background; stopped by its own PID only."""

    def __init__(self, conf, ready):
        self.proc = subprocess.Popen([ikelbd_bin(), "-c", conf, "run"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        deadline = time.monotonic() + 10
        while not ready() and time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read()
            time.sleep(0.05)
        assert ready(), "daemon did not start"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()


@pytest.fixture
def unix_daemon(tmp):
    sock = os.path.join(tmp, "api.sock")
    d = Daemon(write_config(tmp, 'listen: "unix:%s", idle_timeout: 2s' % sock),
               lambda: os.path.exists(sock))
    d.sock = sock
    yield d
    d.stop()


def unix_conn(path, timeout=15):
    # A timeout makes connect non-blocking, as curl's is: a full backlog is
    # an immediate EAGAIN, not a wait.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def status_over(s):
    s.sendall(REQ)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b" ", 2)[1] if data.startswith(b"HTTP/1.1 ") else data


def unix_status(path):
    try:
        with unix_conn(path) as s:
            return status_over(s)
    except OSError as e:
        return repr(e)


def test_200_parallel_status_requests_all_succeed(unix_daemon):
    n = 200
    results = [None] * n
    go = threading.Barrier(n)

    def one(i):
        go.wait(timeout=30)
        results[i] = unix_status(unix_daemon.sock)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ok = sum(r == b"200" for r in results)
    print("200 parallel: %d ok in %.2f s" % (ok, time.monotonic() - t0))
    assert ok == n, [r for r in results if r != b"200"][:5]


def test_idle_connections_do_not_lock_clients_out(unix_daemon):
    idle = []
    try:
        for _ in range(100):
            idle.append(unix_conn(unix_daemon.sock))
        t0 = time.monotonic()
        assert unix_status(unix_daemon.sock) == b"200"
        print("status behind 100 idle connections: %.2f s" % (time.monotonic() - t0))
    finally:
        for s in idle:
            s.close()


def test_idle_connection_is_closed_after_the_timeout(unix_daemon):
    with unix_conn(unix_daemon.sock, timeout=10) as s:
        t0 = time.monotonic()
        try:
            got = s.recv(1)
        except socket.timeout:
            got = "still open after 10 s"
        print("idle connection closed after %.2f s" % (time.monotonic() - t0))
        assert got == b""


def tcp_answers(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def tcp_daemon(tmp):
    port = free_port(socket.SOCK_STREAM)
    tok = os.path.join(tmp, "api.token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    conf = write_config(tmp, 'listen: "127.0.0.1:%d", token_file: %s' % (port, tok))

    d = Daemon(conf, lambda: tcp_answers(port))
    d.port, d.conf = port, conf
    yield d
    assert TOKEN not in d.stop()


def api_call(port, method, path, auth=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers={"Authorization": auth} if auth else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_tcp_api_needs_the_bearer_token(tcp_daemon):
    port = tcp_daemon.port
    assert api_call(port, "GET", "/v1/status")[0] == 401
    assert api_call(port, "GET", "/v1/status", "Bearer wrong-token-0123456789abcd")[0] == 401
    assert api_call(port, "GET", "/v1/status", "Bearer " + TOKEN[:-1])[0] == 401
    assert api_call(port, "GET", "/v1/status", "Basic " + TOKEN)[0] == 401
    assert api_call(port, "GET", "/v1/status", "Bearer " + TOKEN)[0] == 200
    assert api_call(port, "POST", "/v1/shutdown")[0] == 401
    time.sleep(0.3)
    assert tcp_daemon.proc.poll() is None, "shutdown without a token stopped the daemon"
    r = subprocess.run([ikelb_bin(), "-c", tcp_daemon.conf, "status"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def test_loopback_tcp_without_token_starts_with_a_warning(tmp):
    port = free_port(socket.SOCK_STREAM)
    conf = write_config(tmp, 'listen: "127.0.0.1:%d"' % port)

    d = Daemon(conf, lambda: tcp_answers(port))
    try:
        assert api_call(port, "GET", "/v1/status")[0] == 200
    finally:
        err = d.stop()
    assert "has no api.token_file" in err, err
