"""State tables a configuration cannot use are created at their minimum
size (bpf engine): persist_map when no service uses source-ip persistence,
tcp_conn_map when no service has tcp_ports; every slot of an LRU hash is
preallocated, so at max_clients / max_flows each costs ~96 MiB per
million. A reload that would need one is refused, naming the key and
saying a restart is needed; the clients keep going. Sizes are read from
the daemon's own map descriptors (/proc/PID/fdinfo), as the bench does.

Run: /usr/bin/python3 -m pytest -q tests/system/test_state_table_sizes.py
(root, IKELB_BIN)."""
import json
import os
import subprocess

import pytest

from lab.checks import assert_all_up, assert_pings

pytestmark = pytest.mark.usefixtures("require_ikelb")

BPFTOOL = "/usr/sbin/bpftool"
MIN_ENTRIES = 64  # CFG_UNUSED_TABLE_ENTRIES
MAX_CLIENTS = 65536
LIMITS = {"max_clients": MAX_CLIENTS, "max_flows": MAX_CLIENTS}


def daemon_maps(pid):
    """{map name: (max_entries, memlock)} of the maps the process holds."""
    ids = {}
    base = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(base):
        try:
            with open(os.path.join(base, fd)) as f:
                kv = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        except (OSError, ValueError):
            continue
        if "map_id" in kv:
            ids[int(kv["map_id"])] = (int(kv["max_entries"]), int(kv["memlock"]))
    out = {}
    for mid, v in ids.items():
        p = subprocess.run([BPFTOOL, "-j", "map", "show", "id", str(mid)],
                           capture_output=True, text=True, timeout=30)
        if p.returncode == 0:
            out[json.loads(p.stdout)["name"]] = v
    return out


@pytest.mark.skipif(not os.access(BPFTOOL, os.X_OK), reason="bpftool missing")
def test_unused_tables_minimal_and_reload_refused(make_lab, report):
    lab = make_lab("ikelb", balancer_opts={"engine": "bpf", "forwarding": "dnat",
                                           "persistence": "ike", "limits": LIMITS},
                   servers=2, clients=2)
    assert_all_up(lab, lab.initiate_all())
    maps = daemon_maps(lab.balancer.proc.pid)
    assert maps["persist_map"][0] == MIN_ENTRIES, maps
    assert maps["tcp_conn_map"][0] == MIN_ENTRIES, maps
    assert maps["sa_map"][0] == MAX_CLIENTS and maps["flow_map"][0] == MAX_CLIENTS, maps
    assert maps["persist_map"][1] < maps["sa_map"][1] / 100, maps
    conf = open(lab.balancer.conf).read()
    try:
        with open(lab.balancer.conf, "w") as f:
            f.write(conf.replace("mode: ike", "mode: source-ip", 1))
        log = lab.balancer.sighup("needs a restart")
        assert "'persistence.mode' changed, which needs a restart (source-ip" in log, log
        with open(lab.balancer.conf, "w") as f:
            f.write(conf.replace("    ports: [500, 4500]\n",
                                 "    ports: [500, 4500]\n    tcp_ports: [443]\n", 1))
        log = lab.balancer.sighup("needs a restart")
        assert "'tcp_ports' changed, which needs a restart" in log, log
    finally:
        with open(lab.balancer.conf, "w") as f:
            f.write(conf)
    # Refused means untouched: same tables, clients still through.
    assert daemon_maps(lab.balancer.proc.pid)["persist_map"][0] == MIN_ENTRIES
    assert_pings(lab)
    report(lab, {}, "ike-only: persist_map %d entries (%d bytes), tcp_conn_map %d; sa_map %d "
           "(%d bytes)" % (maps["persist_map"][0], maps["persist_map"][1],
                           maps["tcp_conn_map"][0], maps["sa_map"][0], maps["sa_map"][1]))


def test_source_ip_gets_the_full_table(make_lab):
    lab = make_lab("ikelb", balancer_opts={"engine": "bpf", "forwarding": "dnat",
                                           "persistence": "source-ip", "limits": LIMITS},
                   servers=1, clients=1)
    maps = daemon_maps(lab.balancer.proc.pid)
    assert maps["persist_map"][0] == MAX_CLIENTS, maps
    assert maps["tcp_conn_map"][0] == MIN_ENTRIES, maps


def test_socket_engine_refusal_names_its_own_reason(make_lab):
    """Only the bpf engine sizes its tables by what the configuration uses,
    so only it may blame a minimum-size table. The socket engine refuses a
    changed service for its own reason (it cannot change services at run
    time), and its message must say that, not send the user after a
    persistence table it does not have."""
    lab = make_lab("ikelb", balancer_opts={"engine": "socket", "forwarding": "fullnat",
                                           "persistence": "ike",
                                           "snat_pool": ["198.51.100.2"]},
                   servers=1, clients=1)
    assert_all_up(lab, lab.initiate_all())
    conf = open(lab.balancer.conf).read()
    assert "mode: ike" in conf, conf
    try:
        with open(lab.balancer.conf, "w") as f:
            f.write(conf.replace("mode: ike", "mode: source-ip", 1))
        log = lab.balancer.sighup("reload: not applied")
    finally:
        with open(lab.balancer.conf, "w") as f:
            f.write(conf)
    assert "socket engine cannot add, remove or change services" in log, log
    assert "minimum size" not in log, log
    assert_pings(lab)
