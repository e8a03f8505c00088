"""One daemon per data path (issue "Edge hardening"): a second bpf-engine
ikelbd on the same lab, with another api.listen, must refuse before it
attaches anything and name the first one's PID; the first keeps its tc
program and keeps forwarding. Before the lock, the second attached over the
first and its exit removed the data path under it."""
import os
import subprocess
import time

import pytest

from lab import netns as N
from lab.balancers import ikelb_bin
from lab.checks import assert_all_up

pytestmark = pytest.mark.usefixtures("require_ikelb")


def start_second(lab, conf):
    # As IkelbBalancer.start does: a fresh bpffs (so pins cannot collide; the
    # lock must not rely on them) and the lab's /run, shared with the first.
    script = ('mount -t bpf bpf /sys/fs/bpf 2>/dev/null; '
              'mount --bind "$1" /run && shift && exec "$@"')
    run_dir = os.path.join(lab.workdir, "ikelb", "run")
    return subprocess.Popen([N.IP, "netns", "exec", lab.lb_ns, "sh", "-c", script, "sh",
                             run_dir, ikelb_bin(), "run", "-c", conf],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)


def test_second_daemon_refuses_and_first_keeps_forwarding(make_lab):
    lab = make_lab("ikelb", balancer_opts={"forwarding": "dnat"}, servers=1, clients=1)
    first = lab.balancer
    assert first.attached()
    with open(first.conf) as f:
        text = f.read()
    sock1 = os.path.join(lab.workdir, "ikelb-api.sock")
    sock2 = os.path.join(lab.workdir, "ikelb-api-2.sock")
    assert sock1 in text
    conf2 = os.path.join(first.dir, "second.yaml")
    with open(conf2, "w") as f:
        f.write(text.replace(sock1, sock2))

    second = start_second(lab, conf2)
    try:
        out, _ = second.communicate(timeout=20)
    finally:
        if second.poll() is None:  # only our own process, by PID
            second.kill()
            second.wait()
    assert second.returncode != 0, out
    want = "another ikelbd (pid %d) owns /sys/fs/bpf/ikelb; stop it first" % first.proc.pid
    assert want in out, out
    assert not os.path.exists(sock2)

    time.sleep(0.5)
    assert first.proc.poll() is None, first.log()
    assert first.attached(), "the first daemon's tc program is gone"
    assert first.status() is not None
    assert_all_up(lab, lab.initiate_all())
