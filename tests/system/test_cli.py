"""The command-line conventions of ikelb and ikelbd, run as built (IKELB_BIN;
ikelbd next to it). No root and no lab: the daemon, where one is needed,
runs the socket engine on loopback high ports.

Run: IKELB_BIN=$PWD/build/ikelb /usr/bin/python3 -m pytest -q tests/system/test_cli.py"""
import http.server
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

import pytest

from lab.balancers import ikelb_bin

NOWHERE = "unix:/nonexistent/ikelb.sock"
COMMANDS = ["run", "check-config", "status", "stats", "server", "stop", "lookup", "clients",
            "log", "health-check", "version"]


def ikelbd_bin():
    return os.path.join(os.path.dirname(ikelb_bin()), "ikelbd")


def run(*args, binary=None, timeout=20):
    r = subprocess.run([binary or ikelb_bin()] + list(args), capture_output=True,
                       text=True, timeout=timeout)
    for bad in ("Sanitizer", "runtime error:"):
        assert bad not in r.stderr, r.stderr
    return r


@pytest.fixture(autouse=True)
def _built():
    for b in (ikelb_bin(), ikelbd_bin()):
        if not os.access(b, os.X_OK):
            pytest.skip("%s not built (make all)" % b)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="ikelb-cli-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_config(d, listen, ports=(40500, 44500)):
    path = os.path.join(d, "ikelb.yaml")
    with open(path, "w") as f:
        f.write("engine: socket\n"
                "api: { listen: \"%s\" }\n"
                "server_state_file: \"\"\n"
                "services:\n"
                "  - name: vpn\n"
                "    vip: 127.0.0.1\n"
                "    ports: [%d, %d]\n"
                "    ike_port: %d\n"
                "    forwarding: fullnat\n"
                "    health: { type: none }\n"
                "    servers:\n"
                "      - { name: a, address: 127.0.0.21 }\n" % (listen, ports[0], ports[1],
                                                               ports[0]))
    return path


def assert_usage_error(r, needle):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("ikelb: "), r.stderr
    assert needle in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", COMMANDS)
def test_command_help_is_that_commands_usage(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: ikelb %s" % cmd), r.stdout
    assert "commands:" not in r.stdout


def test_global_help_and_daemon_help():
    r = run("--help")
    assert r.returncode == 0 and "commands:" in r.stdout
    r = run("run", "--help", binary=ikelbd_bin())
    assert r.returncode == 0 and r.stdout.startswith("usage: ikelbd run"), r.stdout


@pytest.mark.parametrize("flag", ["-V", "--version", "version"])
def test_version(flag):
    r = run(flag)
    assert r.returncode == 0 and r.stdout.startswith("ikelb "), r.stdout
    r = run(flag, binary=ikelbd_bin())
    assert r.returncode == 0 and r.stdout.startswith("ikelbd "), r.stdout


@pytest.mark.parametrize("args,needle", [
    (("server", "drain", "s2", "s3", "-a", NOWHERE), "unexpected argument 's3'"),
    (("check-config", "-c", "a.yaml", "extra"), "unexpected argument 'extra'"),
    (("status", "-c", "a.yaml", "-c", "b.yaml"), "given twice"),
    (("-a", NOWHERE, "stats", "--api", NOWHERE), "given twice"),
    (("status", "--bogus"), "unknown option '--bogus'"),
    (("status", "--flush-state"), "does not apply"),
    (("server", "weight", "a", "0x10000", "-a", NOWHERE), "weight must be 0..65535"),
    (("nosuch",), "unknown command 'nosuch'"),
])
def test_bad_arguments_are_usage_errors(args, needle):
    assert_usage_error(run(*args), needle)


def test_no_command_prints_usage_and_fails():
    r = run()
    assert r.returncode == 2 and r.stderr.startswith("usage: ikelb")


def test_daemon_has_only_daemon_commands():
    r = run("status", binary=ikelbd_bin())
    assert r.returncode == 2 and r.stderr.startswith("ikelbd: unknown command 'status'")


@pytest.mark.parametrize("args", [("status", "-c", "/nonexist"), ("-c", "/nonexist", "stats"),
                                  ("check-config", "-c", "/nonexist")])
def test_missing_config_file_is_named(args):
    r = run(*args)
    assert r.returncode == 1
    assert r.stderr == "ikelb: /nonexist: No such file or directory\n", r.stderr


def test_check_config_defaults_to_etc():
    r = run("check-config")
    assert "-c FILE is required" not in r.stderr
    assert "/etc/ikelb/ikelb.yaml" in r.stdout + r.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_and_api_options_before_or_after_the_command(tmp, where):
    conf = write_config(tmp, NOWHERE)
    for opt, val, cmd in (("-c", conf, "status"), ("-a", NOWHERE, "stats")):
        args = (opt, val, cmd) if where == "before" else (cmd, opt, val)
        r = run(*args)
        assert r.returncode == 1, r.stderr
        assert r.stderr.startswith("ikelb: cannot reach ikelb at %s" % NOWHERE), r.stderr


def test_weight_in_hex_reaches_the_api():
    r = run("server", "weight", "a", "0x10", "-a", NOWHERE)
    assert r.returncode == 1 and "cannot reach ikelb" in r.stderr, r.stderr


def test_daemon_does_not_link_libcurl():
    out = subprocess.run(["ldd", ikelbd_bin()], capture_output=True, text=True).stdout
    assert "libcurl" not in out, out
    out = subprocess.run(["ldd", ikelb_bin()], capture_output=True, text=True).stdout
    assert "libbpf" not in out, out


def test_run_needs_ikelbd_next_to_ikelb(tmp):
    lone = os.path.join(tmp, "ikelb")
    shutil.copy(ikelb_bin(), lone)
    r = run("run", "-c", "/nonexist", binary=lone)
    assert r.returncode == 1
    assert "ikelb: cannot run %s/ikelbd" % tmp in r.stderr, r.stderr


class SlowToDie(http.server.BaseHTTPRequestHandler):
    """Answers like the daemon; after /v1/shutdown it keeps answering for
    LINGER seconds, as a daemon does while it detaches its data path."""
    LINGER = 1.0

    def _reply(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def do_GET(self):
        self._reply()

    def do_POST(self):
        self._reply()
        if self.path.startswith("/v1/shutdown"):
            threading.Timer(self.LINGER, self.server.shutdown_later).start()

    def log_message(self, *a):
        pass

    def address_string(self):
        return "unix"


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def shutdown_later(self):
        def close():
            self.shutdown()
            self.server_close()
            os.unlink(self.server_address)
        threading.Thread(target=close).start()


def test_stop_waits_until_the_api_stops_answering(tmp):
    path = os.path.join(tmp, "api.sock")
    srv = UnixServer(path, SlowToDie)
    t = threading.Thread(target=srv.serve_forever)
    t.start()
    try:
        t0 = time.monotonic()
        r = run("stop", "-a", "unix:" + path)
        took = time.monotonic() - t0
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()
    assert r.returncode == 0, r.stderr
    assert took >= SlowToDie.LINGER, took


def free_udp_ports(n):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_run_is_ikelbd_in_the_same_process_and_stop_waits_for_it(tmp):
    sock = os.path.join(tmp, "api.sock")
    conf = write_config(tmp, "unix:" + sock, free_udp_ports(2))
    proc = subprocess.Popen([ikelb_bin(), "-c", conf, "run"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        assert os.readlink("/proc/%d/exe" % proc.pid) == os.path.realpath(ikelbd_bin())
        r = run("stop", "-c", conf)
        assert r.returncode == 0, r.stderr
        assert run("status", "-c", conf).returncode == 1
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
