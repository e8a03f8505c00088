"""What a reload keeps, with real strongSwan peers through the bpf engine:
a drain set through the API survives `ikelb reload` of the unchanged file
and of a file that changes another server's weight (status and the
servers' own SAs agree); a server added by reload whose probe cannot
succeed yet takes no new clients until it answers; a refused file makes
`ikelb reload` fail with the reason."""
import re
import time
import types

from lab.balancers import ikelb_config
from lab.checks import assert_all_up

IKELB = {"forwarding": "dnat", "persistence": "source-ip"}


def write_config(lab, servers, weights=None):
    text = ikelb_config(types.SimpleNamespace(servers=servers, workdir=lab.workdir), **IKELB)
    for name, w in (weights or {}).items():
        text = re.sub(r"(- name: %s\n\s+address: \S+\n\s+)weight: \d+" % name,
                      r"\g<1>weight: %d" % w, text)
    with open(lab.balancer.conf, "w") as f:
        f.write(text)
    return text


def reload_ok(lab):
    r = lab.balancer.ctl("reload")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def servers_of(lab):
    return {s["name"]: s for s in lab.balancer.status()["services"][0]["servers"]}


def clients_on(lab, server):
    return {sa["remote-host"] for sa in lab.server_sas(server)}


def wait_state(lab, name, state, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if servers_of(lab)[name]["state"] == state:
            return
        time.sleep(0.2)
    raise AssertionError("%s not %s: %s\n%s" % (name, state, servers_of(lab)[name],
                                              lab.balancer.log()[-3000:]))


def test_reload_keeps_drain_and_new_server_waits_for_probe(make_lab):
    lab = make_lab("ikelb", balancer_opts=IKELB, servers=3, clients=8)
    s1, s2, s3 = lab.servers
    cl = lab.clients

    # Drain s1 through the API, then reload the unchanged file.
    assert lab.balancer.ctl("server", "drain", "s1").returncode == 0
    out = reload_ok(lab)
    assert "vpn/s1 drain kept (set by API)" in out, out
    assert servers_of(lab)["s1"]["admin"] == "draining"

    # A file that only changes s2's weight: the drain stays, the weight
    # comes from the file.
    write_config(lab, lab.servers, weights={"s2": 50})
    out = reload_ok(lab)
    assert "vpn/s2 weight 100 -> 50 (file)" in out, out
    assert "vpn/s1 drain kept (set by API)" in out, out
    st = servers_of(lab)
    assert st["s1"]["admin"] == "draining" and st["s1"]["state"] == "draining"
    assert st["s2"]["weight"] == 50
    assert "drain kept (set by API)" in lab.balancer.log()
    last = lab.balancer.status()["last_reload"]
    assert last["result"] == "ok" and last["changes"] == 2, last

    # New clients avoid the drained server: s1 itself saw none of them.
    res = lab.initiate_all(clients=cl[:3])
    assert_all_up(lab, res)
    assert not clients_on(lab, s1) & {c.addr for c in cl[:3]}, clients_on(lab, s1)

    # A refused file: non-zero exit, the reason, the running state stays.
    good = open(lab.balancer.conf).read()
    with open(lab.balancer.conf, "w") as f:
        f.write(good.replace("weight: 100", "weight: 70000", 1))
    r = lab.balancer.ctl("reload")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "reload refused" in r.stderr and "weight: 70000 is out of range" in r.stderr, r.stderr
    assert re.search(r"\S+\.yaml:\d+:\d+: ", r.stderr), r.stderr
    assert lab.balancer.status()["last_reload"]["result"] == "refused"
    assert servers_of(lab)["s1"]["admin"] == "draining"

    # Remove s3, stop its charon, add it back: its probe cannot succeed, so
    # it takes no new clients (health unknown -> draining, then down).
    write_config(lab, [s1, s2], weights={"s2": 50})
    out = reload_ok(lab)
    assert "vpn/s3 removed" in out and "vpn/s1 drain kept" in out, out
    lab.kill_charon("s3")
    write_config(lab, lab.servers, weights={"s2": 50})
    out = reload_ok(lab)
    assert "vpn/s3 added (health unknown)" in out, out
    st = servers_of(lab)
    assert st["s3"]["state"] in ("draining", "down"), st["s3"]
    assert st["s1"]["admin"] == "draining"
    res = lab.initiate_all(clients=cl[3:5])
    assert_all_up(lab, res)  # all of them on s2: s3 would not have answered
    assert {c.addr for c in cl[3:5]} <= clients_on(lab, s2)

    # Its charon starts: after the probe succeeds s3 takes new clients.
    # Drain s2 too, so every new client must go to s3.
    lab.restart_charon("s3")
    wait_state(lab, "s3", "active")
    assert lab.balancer.ctl("server", "drain", "s2").returncode == 0
    res = lab.initiate_all(clients=cl[5:])
    assert_all_up(lab, res)
    assert {c.addr for c in cl[5:]} <= clients_on(lab, s3), clients_on(lab, s3)
