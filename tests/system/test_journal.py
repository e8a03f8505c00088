"""Structured journald fields without journald: the test is the journal.

sd_journal_send(3) writes datagrams to /run/systemd/journal/socket. The
test runs a helper in a private mount namespace (unshare -m) with a tmpfs
over /run, binds that socket itself, starts a socket-engine daemon (loopback
high ports) with JOURNAL_STREAM set as systemd sets it, drains a server
through the API and reads what arrived: the state change must carry
IKELB_SERVICE, IKELB_SERVER and IKELB_STATE, so `journalctl
IKELB_SERVER=a` finds it. Needs root (mount namespace)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from lab.balancers import ikelb_bin
from test_api import CONFIG, free_udp_ports

HERE = os.path.dirname(os.path.abspath(__file__))

# Runs inside the private mount namespace; prints the journal entries as JSON.
HELPER = r'''
import json, os, socket, subprocess, sys, time
sys.path.insert(0, sys.argv[3])
from test_api import UnixHTTP
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
os.makedirs("/run/systemd/journal")
j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
j.bind("/run/systemd/journal/socket")
env = dict(os.environ, JOURNAL_STREAM="8:12345")
log = open(sys.argv[4], "w")
p = subprocess.Popen([sys.argv[1], "run", "-c", sys.argv[2]], stdout=log, stderr=subprocess.STDOUT,
                     stdin=subprocess.DEVNULL, env=env)
sock = sys.argv[5]
entries = []
try:
    end = time.monotonic() + 10
    while time.monotonic() < end and not os.path.exists(sock):
        time.sleep(0.05)
    time.sleep(0.3)
    c = UnixHTTP(sock)
    c.request("POST", "/v1/servers/a/drain")
    c.getresponse().read()
    c.close()
    end = time.monotonic() + 5
    while time.monotonic() < end:
        j.settimeout(max(0.01, end - time.monotonic()))
        try:
            msg = j.recv(65536).decode(errors="replace")
        except socket.timeout:
            break
        e = dict(l.split("=", 1) for l in msg.splitlines() if "=" in l)
        entries.append(e)
        if e.get("IKELB_SERVER") == "a":
            break
finally:
    p.terminate()
    p.wait(timeout=10)
print(json.dumps(entries))
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a mount namespace")
def test_state_change_carries_journal_fields():
    d = tempfile.mkdtemp(prefix="ikelb-journal-")
    try:
        sock = os.path.join(d, "api.sock")
        p = free_udp_ports(2)
        conf = os.path.join(d, "ikelb.yaml")
        with open(conf, "w") as f:
            f.write(CONFIG.format(sock=sock, svc="vpn", p500=p[0], p4500=p[1]))
        helper = os.path.join(d, "helper.py")
        with open(helper, "w") as f:
            f.write(HELPER)
        log = os.path.join(d, "ikelb.log")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, helper,
                            ikelb_bin(), conf, HERE, log, sock],
                           capture_output=True, text=True, timeout=60)
        text = open(log, errors="replace").read()
        assert r.returncode == 0, r.stderr + text
        entries = json.loads(r.stdout.strip().splitlines()[-1])
        change = [e for e in entries if e.get("IKELB_SERVER") == "a"]
        assert change, (entries, text)
        e = change[0]
        assert e["IKELB_SERVICE"] == "vpn" and e["IKELB_STATE"] == "draining", e
        assert e["PRIORITY"] == "5" and e["SYSLOG_IDENTIFIER"] == "ikelbd", e
        assert "server a: active -> draining" in e["MESSAGE"], e
        # Every message went to the journal, none to the stream.
        assert all("MESSAGE" in x for x in entries), entries
        assert "active -> draining" not in text, text
    finally:
        shutil.rmtree(d, ignore_errors=True)
