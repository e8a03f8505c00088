"""The server-state file: a drain and a weight set through the API survive
a stop and a start (SIGTERM), and a SIGUSR1 re-exec; when the file later
changes that server's weight, the file's weight wins while the drain set
through the API stays. Socket engine on loopback high ports (no root, no
lab), with server_state_file inside the test's temp dir.

Run: IKELB_BIN=$PWD/build/ikelb /usr/bin/python3 -m pytest -q tests/system/test_server_state.py"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from lab.balancers import ikelb_bin
from test_api import CONFIG, free_udp_ports, raw


@pytest.fixture
def env():
    d = tempfile.mkdtemp(prefix="ikelb-sstate-")
    # A directory that does not exist yet: the daemon creates it.
    state = os.path.join(d, "lib", "server-state.json")
    p = free_udp_ports(2)
    text = CONFIG.format(sock=os.path.join(d, "api.sock"), svc="vpn", p500=p[0], p4500=p[1])
    text = text.replace('server_state_file: ""', 'server_state_file: "%s"' % state)
    assert state in text
    e = {"dir": d, "conf": os.path.join(d, "ikelb.yaml"), "state": state,
         "sock": os.path.join(d, "api.sock"), "text": text, "proc": None,
         "ns": socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)}
    e["ns"].bind(os.path.join(d, "notify"))
    with open(e["conf"], "w") as f:
        f.write(text)
    yield e
    if e["proc"] and e["proc"].poll() is None:
        e["proc"].kill()
        e["proc"].wait(timeout=10)
    e["ns"].close()
    shutil.rmtree(d, ignore_errors=True)


def log_of(e):
    with open(os.path.join(e["dir"], "ikelb.log"), errors="replace") as f:
        return f.read()


def wait_ready(e, limit=10.0):
    """Until the daemon sends READY=1 (sd_notify: the API answers)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        e["ns"].settimeout(max(0.01, end - time.monotonic()))
        try:
            if "READY=1" in e["ns"].recv(4096).decode().splitlines():
                return
        except socket.timeout:
            break
    raise AssertionError("no READY=1 within %.0fs\n%s" % (limit, log_of(e)))


def start(e):
    env = dict(os.environ, NOTIFY_SOCKET=os.path.join(e["dir"], "notify"))
    with open(os.path.join(e["dir"], "ikelb.log"), "a") as log:
        e["proc"] = subprocess.Popen([ikelb_bin(), "run", "-c", e["conf"]], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env)
    wait_ready(e)


def stop(e):
    e["proc"].send_signal(signal.SIGTERM)
    assert e["proc"].wait(timeout=10) == 0, log_of(e)


def api(e, method, path):
    status, body = raw(e, method, path)
    assert status == 200, body
    return json.loads(body) if body else None


def server(e, name):
    st = api(e, "GET", "/v1/status")
    return {s["name"]: s for s in st["services"][0]["servers"]}[name]


def test_drain_and_weight_survive_restart_and_reexec(env):
    e = env
    start(e)
    api(e, "POST", "/v1/servers/a/drain")
    api(e, "POST", "/v1/servers/a/weight/50")
    # Saved at once, not only at exit: a crash keeps it too.
    with open(e["state"]) as f:
        saved = json.load(f)
    assert saved["version"] == 1 and saved["servers"][0]["server"] == "a", saved
    assert oct(os.stat(e["state"]).st_mode & 0o777) == "0o644"

    stop(e)
    start(e)
    a = server(e, "a")
    assert (a["admin"], a["state"], a["weight"]) == ("draining", "draining", 50), a
    assert server(e, "b")["admin"] == "active"
    assert "server-state: vpn/a draining kept from %s" % e["state"] in log_of(e)

    pid = e["proc"].pid
    e["proc"].send_signal(signal.SIGUSR1)
    wait_ready(e)  # from the new image: the old one sends none on success
    assert e["proc"].pid == pid and e["proc"].poll() is None, log_of(e)
    assert log_of(e).count("running: engine socket") == 3, log_of(e)
    a = server(e, "a")
    assert (a["admin"], a["weight"]) == ("draining", 50), a

    # The file changes a's weight: the file wins for the weight, the drain
    # (which the file did not touch) stays.
    with open(e["conf"], "w") as f:
        f.write(e["text"].replace("address: 127.0.0.21, weight: 100",
                                  "address: 127.0.0.21, weight: 70"))
    stop(e)
    start(e)
    a = server(e, "a")
    assert (a["admin"], a["state"], a["weight"]) == ("draining", "draining", 70), a
    text = log_of(e)
    assert "server-state: vpn/a weight 50 from %s not applied: the file changed it " \
           "(100 -> 70), the file wins" % e["state"] in text, text
    # The save at stop recorded the new file value: the drain alone remains.
    stop(e)
    with open(e["state"]) as f:
        entry = json.load(f)["servers"][0]
    assert (entry["admin"], entry["weight"], entry["file_weight"]) == ("draining", 70, 70)
    assert os.listdir(os.path.dirname(e["state"])) == ["server-state.json"]


def test_corrupt_state_file_does_not_stop_the_start_and_moving_it_needs_a_restart(env):
    e = env
    os.makedirs(os.path.dirname(e["state"]))
    with open(e["state"], "w") as f:
        f.write("{ not json")
    start(e)
    assert server(e, "a")["admin"] == "active"
    assert "server-state: %s:1:" % e["state"] in log_of(e)
    # Another file is read only at start: a reload that moves it is refused.
    with open(e["conf"], "w") as f:
        f.write(e["text"].replace(e["state"], e["state"] + ".new"))
    status, body = raw(e, "POST", "/v1/reload")
    assert "'server_state_file' changed, which needs a restart" in body, (status, body)
    stop(e)
