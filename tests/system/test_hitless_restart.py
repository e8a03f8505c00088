"""Hitless restarts and upgrades through the bpf engine, with real
strongSwan: the daemon re-executes itself in place (same PID) on SIGUSR1,
and on a reload (SIGHUP) after its executable was replaced on disk (as a
package upgrade does: a new file renamed over the old path). The tc filter
stays attached across the exec and the new image replaces it atomically,
so a ping through every tunnel at 10/s loses nothing. SIGTERM (systemctl
stop) then detaches: no ikelb program is left on the lab's interfaces.

The daemon runs from a copy of the build (ikelb + ikelbd in a temporary
directory), so the test can replace that copy's ikelbd."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from lab import netns as N
from lab.checks import assert_all_up
from lab.strongswan import PROTECTED
from lab.topology import LB_CLIENT_IF, LB_SERVER_IF

pytestmark = pytest.mark.usefixtures("require_ikelb")

LB = {"forwarding": "dnat", "persistence": "source-ip",
      "health": {"type": "ike", "interval": "1s", "timeout": "500ms", "rise": 1, "fall": 2}}
PINGS, INTERVAL_S = 60, 0.1  # 6 s of pings at 10/s around each re-exec


@pytest.fixture
def bin_copy(monkeypatch):
    """IKELB_BIN pointing at a copy of the build's ikelb, with its ikelbd."""
    build = os.path.dirname(os.environ.get("IKELB_BIN") or "build/ikelb")
    d = tempfile.mkdtemp(prefix="ikelb-bin-")
    for b in ("ikelb", "ikelbd"):
        shutil.copy2(os.path.join(build, b), os.path.join(d, b))
    monkeypatch.setenv("IKELB_BIN", os.path.join(d, "ikelb"))
    yield d, build
    shutil.rmtree(d, ignore_errors=True)


def start_pings(lab):
    """One `ping -c PINGS -i 0.1` through each client's tunnel; -> {name: Popen}."""
    procs = {}
    for c in lab.clients:
        p = subprocess.Popen([N.IP, "netns", "exec", c.ns, "ping", "-n", "-c", str(PINGS),
                              "-i", str(INTERVAL_S), "-W", "2", PROTECTED],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lab.reg.add_proc("ping-" + c.name, p)
        procs[c.name] = p
    return procs


def ping_losses(procs):
    """-> {client: (sent, received)} once every ping is done (bounded)."""
    out = {}
    for name, p in procs.items():
        text, _ = p.communicate(timeout=PINGS * INTERVAL_S + 20)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
        assert m, "%s: %s" % (name, text)
        out[name] = (int(m.group(1)), int(m.group(2)))
    return out


def runs(lab):
    return lab.balancer.log().count("running: engine bpf")


def reexec_under_pings(lab, trigger):
    """Pings, trigger() 2 s in, wait for the new image; -> losses."""
    pid, before = lab.balancer.proc.pid, runs(lab)
    procs = start_pings(lab)
    time.sleep(2)
    trigger()
    end = time.monotonic() + 15
    while runs(lab) == before and time.monotonic() < end:
        assert lab.balancer.proc.poll() is None, lab.balancer.log()[-3000:]
        time.sleep(0.1)
    assert runs(lab) == before + 1, "no re-exec:\n" + lab.balancer.log()[-3000:]
    losses = ping_losses(procs)
    assert lab.balancer.proc.pid == pid and lab.balancer.proc.poll() is None
    return losses


def programs_left(lab):
    """Lines naming an ikelb program on the lb namespace's interfaces."""
    left = []
    for dev in (LB_CLIENT_IF, LB_SERVER_IF):
        tc = N.ns_run(lab.lb_ns, ["tc", "filter", "show", "dev", dev, "ingress"],
                      check=False).stdout
        left += [ln for ln in tc.splitlines() if "ikelb" in ln or " bpf " in ln]
    net = N.ns_run(lab.lb_ns, ["bpftool", "net", "show"], check=False).stdout
    left += [ln for ln in net.splitlines() if "ikelb" in ln]
    return left


def test_reexec_and_upgrade_lose_no_ping(make_lab, bin_copy, report):
    lab = make_lab("ikelb", balancer_opts=LB, servers=2, clients=4)
    res = lab.initiate_all(timeout=15)
    assert_all_up(lab, res)
    proc = lab.balancer.proc
    copy_dir, build = bin_copy
    exe = os.path.join(copy_dir, "ikelbd")
    assert os.readlink("/proc/%d/exe" % proc.pid) == exe

    restart = reexec_under_pings(lab, lambda: proc.send_signal(signal.SIGUSR1))

    # The upgrade: a fresh file renamed over the running one's path.
    new = exe + ".new"
    shutil.copy2(os.path.join(build, "ikelbd"), new)
    os.rename(new, exe)
    assert os.readlink("/proc/%d/exe" % proc.pid).endswith(" (deleted)")
    upgrade = reexec_under_pings(lab, lambda: proc.send_signal(signal.SIGHUP))
    # The new file runs now, in the same process.
    assert os.readlink("/proc/%d/exe" % proc.pid) == exe

    lost = {k: v for k, v in list(restart.items()) + list(upgrade.items()) if v[0] != v[1]}
    assert not lost, "pings lost (sent, received): restart %s, upgrade %s" % (restart, upgrade)
    log = lab.balancer.log()
    assert "Exclusivity flag" not in log, log
    # An IPv4-only configuration leaves IPv6 forwarding alone, and the lab
    # already forwards IPv4: no sysctl was changed, none logged.
    v6 = N.ns_run(lab.lb_ns, ["sysctl", "-n", "net.ipv6.conf.all.forwarding"]).stdout
    assert v6.strip() == "0" and " -> 1 " not in log, (v6, log)

    lab.balancer.stop()  # SIGTERM
    assert proc.returncode == 0, log
    left = programs_left(lab)
    assert not left, "left attached after SIGTERM: %s" % left
    report(lab, res, "pid %d kept; pings (sent, received) restart %s upgrade %s" % (
        proc.pid, restart, upgrade))
