"""Least privilege (issue "Edge hardening"): after setup the bpf-engine
daemon holds only CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and (ports 500/4500)
CAP_NET_BIND_SERVICE, with no_new_privs set, and still reloads, forwards
and detaches its programs when it stops."""
import os
import socket
import time

import pytest

from lab.checks import assert_all_up
from test_api_limits import Daemon, api_call, free_port, tcp_answers
from test_api_limits import write_config as write_api_config
from test_cli import _built, tmp  # noqa: F401 (fixtures)
from test_reload import servers_of, write_config

CAP_DAC_OVERRIDE, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW = 1, 10, 12, 13
CAP_SYS_ADMIN, CAP_SYS_RESOURCE, CAP_PERFMON, CAP_BPF = 21, 24, 38, 39


def proc_status(pid):
    return proc_status_path("/proc/%d/status" % pid)


def proc_status_path(path):
    with open(path) as f:
        return dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)


def caps(st, key):
    v = int(st[key].strip(), 16)
    return {c for c in range(64) if v >> c & 1}


@pytest.mark.usefixtures("require_ikelb")
def test_capabilities_dropped_and_daemon_still_works(make_lab):
    lab = make_lab("ikelb", balancer_opts={"forwarding": "dnat"}, servers=2, clients=2)
    st = proc_status(lab.balancer.proc.pid)
    want = {CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_NET_BIND_SERVICE}
    print("CapEff %s CapPrm %s NoNewPrivs %s" % (st["CapEff"].strip(), st["CapPrm"].strip(),
                                                 st["NoNewPrivs"].strip()))
    assert caps(st, "CapEff") == want
    assert caps(st, "CapPrm") == want
    assert st["NoNewPrivs"].strip() == "1"
    for gone in (CAP_SYS_ADMIN, CAP_DAC_OVERRIDE, CAP_SYS_RESOURCE, CAP_NET_RAW):
        assert gone not in caps(st, "CapEff")

    # Reload (remove a server, add it back), forward, stop: all without
    # the dropped capabilities.
    write_config(lab, lab.servers[:1])
    lab.balancer.sighup("reload: now 1 service(s)")
    write_config(lab, lab.servers)
    lab.balancer.sighup("reload: now 1 service(s)")
    assert sorted(servers_of(lab)) == sorted(s.name for s in lab.servers)
    lab.balancer.wait_healthy(time.monotonic() + 10)
    assert_all_up(lab, lab.initiate_all())
    lab.balancer.stop()
    assert lab.balancer.proc.returncode == 0, lab.balancer.log()
    assert not lab.balancer.attached(), "programs left attached after stop"


def test_socket_engine_threads_hold_no_capabilities(tmp):
    # Every thread: capabilities are per thread, and the relay workers are
    # threads. High ports need none at all.
    port = free_port(socket.SOCK_STREAM)
    conf = write_api_config(tmp, 'listen: "127.0.0.1:%d"' % port)
    d = Daemon(conf, lambda: tcp_answers(port))
    try:
        tasks = os.listdir("/proc/%d/task" % d.proc.pid)
        assert len(tasks) > 1
        for t in tasks:
            st = proc_status_path("/proc/%d/task/%s/status" % (d.proc.pid, t))
            assert caps(st, "CapEff") == set() and caps(st, "CapPrm") == set(), (t, st["CapEff"])
            assert st["NoNewPrivs"].strip() == "1"
        assert api_call(port, "GET", "/v1/status")[0] == 200
    finally:
        d.stop()
