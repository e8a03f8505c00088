"""sd_notify(3) without systemd: the test is the service manager. It binds
an AF_UNIX datagram socket, hands it to a socket-engine daemon (loopback
high ports, no root, no lab) as NOTIFY_SOCKET and reads what arrives:
READY=1 once the API answers, RELOADING=1 then READY=1 around SIGHUP,
RELOADING=1/MAINPID=/READY=1 around a SIGUSR1 re-exec (same PID),
STOPPING=1 on SIGTERM.

Run: IKELB_BIN=$PWD/build/ikelb /usr/bin/python3 -m pytest -q tests/system/test_sd_notify.py"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from lab.balancers import ikelb_bin
from test_api import CONFIG, UnixHTTP, free_udp_ports


@pytest.fixture
def notified():
    d = tempfile.mkdtemp(prefix="ikelb-notify-")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(os.path.join(d, "notify"))
    sock = os.path.join(d, "api.sock")
    p = free_udp_ports(2)
    conf = os.path.join(d, "ikelb.yaml")
    with open(conf, "w") as f:
        f.write(CONFIG.format(sock=sock, svc="vpn", p500=p[0], p4500=p[1]))
    env = dict(os.environ, NOTIFY_SOCKET=os.path.join(d, "notify"))
    with open(os.path.join(d, "ikelb.log"), "w") as log:
        proc = subprocess.Popen([ikelb_bin(), "run", "-c", conf], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    yield {"proc": proc, "ns": ns, "sock": sock, "dir": d}
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    ns.close()
    shutil.rmtree(d, ignore_errors=True)


def log_of(n):
    with open(os.path.join(n["dir"], "ikelb.log"), errors="replace") as f:
        return f.read()


def wait_for(n, key, limit=10.0):
    """Messages until one carries key=…; -> (that message's fields, all
    messages read). Bounded by limit seconds."""
    seen = []
    end = time.monotonic() + limit
    while time.monotonic() < end:
        n["ns"].settimeout(max(0.01, end - time.monotonic()))
        try:
            msg = n["ns"].recv(4096).decode()
        except socket.timeout:
            break
        fields = dict(line.split("=", 1) for line in msg.splitlines() if "=" in line)
        seen.append(fields)
        if key in fields:
            return fields, seen
    raise AssertionError("no %s= within %.0fs; got %s\n%s" % (key, limit, seen, log_of(n)))


def api_answers(n):
    c = UnixHTTP(n["sock"])
    c.request("GET", "/v1/status")
    status = c.getresponse().status
    c.close()
    return status == 200


def test_ready_reload_stop(notified):
    n = notified
    ready, _ = wait_for(n, "READY")
    assert ready["READY"] == "1"
    # READY=1 is sent when the API answers: at once, without retrying.
    assert api_answers(n)
    assert "1 service(s), 2/2 server(s) up, last reload none" in ready["STATUS"], ready

    n["proc"].send_signal(signal.SIGHUP)
    reloading, _ = wait_for(n, "RELOADING")
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
    ready, _ = wait_for(n, "READY")
    assert "last reload applied" in ready["STATUS"], ready

    n["proc"].send_signal(signal.SIGTERM)
    stopping, _ = wait_for(n, "STOPPING")
    assert stopping["STOPPING"] == "1"
    assert n["proc"].wait(timeout=10) == 0, log_of(n)


def test_sigusr1_reexecs_in_place(notified):
    n = notified
    wait_for(n, "READY")
    pid = n["proc"].pid
    n["proc"].send_signal(signal.SIGUSR1)
    wait_for(n, "RELOADING")
    mainpid, seen = wait_for(n, "MAINPID")
    assert mainpid["MAINPID"] == str(pid)
    assert not any("STOPPING" in m for m in seen), seen
    wait_for(n, "READY")
    assert n["proc"].poll() is None, log_of(n)
    assert api_answers(n)
    text = log_of(n)
    assert "re-executing" in text and text.count("running: engine socket") == 2, text
    n["proc"].send_signal(signal.SIGTERM)
    wait_for(n, "STOPPING")
    assert n["proc"].wait(timeout=10) == 0, log_of(n)


def test_reexec_refused_when_the_file_does_not_load(notified):
    n = notified
    wait_for(n, "READY")
    conf = os.path.join(n["dir"], "ikelb.yaml")
    with open(conf, "a") as f:
        f.write("bogus_key: 1\n")
    n["proc"].send_signal(signal.SIGUSR1)
    wait_for(n, "RELOADING")
    ready, seen = wait_for(n, "READY")
    assert not any("MAINPID" in m for m in seen), seen
    assert "last reload refused" in ready["STATUS"], ready
    text = log_of(n)
    assert "not re-executing" in text and "re-executing /" not in text, text
    assert n["proc"].poll() is None and api_answers(n)
