"""Configuration reload (SIGHUP) with real strongSwan peers through the
bpf engine: removing and adding servers and changing weights take effect
without disturbing the clients of unchanged servers; an invalid file or a
change that needs a restart leaves the running configuration alone."""
import re
import time
import types

from lab.balancers import ikelb_config
from lab.checks import assert_all_up, assert_no_invalid_spi, assert_pings

IKELB = {"forwarding": "dnat", "persistence": "source-ip"}


def write_config(lab, servers, weights=None, **extra):
    text = ikelb_config(types.SimpleNamespace(servers=servers, workdir=lab.workdir),
                        **dict(IKELB, **extra))
    for name, w in (weights or {}).items():
        text = re.sub(r"(- name: %s\n\s+address: \S+\n\s+)weight: \d+" % name,
                      r"\g<1>weight: %d" % w, text)
    with open(lab.balancer.conf, "w") as f:
        f.write(text)


def servers_of(lab):
    return {s["name"]: s for s in lab.balancer.status()["services"][0]["servers"]}


def spis(lab, names):
    return {s.name: sorted((sa["initiator-spi"], sa["responder-spi"]) for sa in lab.server_sas(s))
            for s in lab.servers if s.name in names}


def test_reload_remove_add_reweight(make_lab, report):
    lab = make_lab("ikelb", balancer_opts=IKELB, servers=3, clients=6)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    keep = [s.name for s in lab.servers[:2]]
    before = spis(lab, keep)

    # Remove s3: it disappears from ikelb, the others' clients are untouched.
    write_config(lab, lab.servers[:2])
    lab.balancer.sighup("reload: now 1 service(s)")
    assert sorted(servers_of(lab)) == keep
    assert spis(lab, keep) == before

    # Add it back with three times the weight; health carries over for the
    # servers that stayed (they are not reset to "unknown").
    write_config(lab, lab.servers, weights={"s3": 300})
    lab.balancer.sighup("reload: now 1 service(s)")
    st = servers_of(lab)
    assert sorted(st) == ["s1", "s2", "s3"]
    assert st["s3"]["weight"] == 300
    assert st["s1"]["health"] in ("up", "unknown") and st["s1"]["state"] == "active"
    lab.balancer.wait_healthy(time.monotonic() + 10)

    # Weight only: applied in place.
    write_config(lab, lab.servers, weights={"s1": 50, "s3": 300})
    log = lab.balancer.sighup("weight/state change(s)")
    assert "reload: 1 weight/state change(s)" in log, log
    assert servers_of(lab)["s1"]["weight"] == 50
    assert spis(lab, keep) == before
    for c in lab.clients:
        if results[c.name].ok and any(sa for s in lab.servers[:2] for sa in lab.server_sas(s)
                                      if sa["remote-host"] == c.addr):
            assert lab.ping_through_tunnel(c), c.name
    assert_no_invalid_spi(lab)
    report(lab, results, "reload: remove, add (weight 300), reweight: clients of s1/s2 kept "
           "their SAs %s" % {k: len(v) for k, v in before.items()})


def test_reload_refuses_bad_or_restart_only_changes(make_lab):
    lab = make_lab("ikelb", balancer_opts=IKELB, servers=2, clients=2)
    assert_all_up(lab, lab.initiate_all())
    conf = open(lab.balancer.conf).read()

    with open(lab.balancer.conf, "w") as f:
        f.write(conf.replace("weight: 100", "weight: 70000", 1))
    log = lab.balancer.sighup("keeping the running one")
    assert "weight: 70000 is out of range" in log, log
    assert all(s["weight"] == 100 for s in servers_of(lab).values())

    with open(lab.balancer.conf, "w") as f:
        f.write(conf.replace("ikelb-api.sock", "other-api.sock"))
    log = lab.balancer.sighup("needs a restart")
    assert "'api.listen' changed" in log, log
    assert lab.balancer.status() is not None  # still on the old socket

    # The API's other settings are read once too: refused, not ignored.
    with open(lab.balancer.conf, "w") as f:
        f.write(conf.replace("api:\n", "api:\n  idle_timeout: 3s\n", 1))
    log = lab.balancer.sighup("needs a restart")
    assert "'api.idle_timeout' changed" in log, log

    with open(lab.balancer.conf, "w") as f:
        f.write(conf)
    assert lab.balancer.proc.poll() is None
    assert_pings(lab)
