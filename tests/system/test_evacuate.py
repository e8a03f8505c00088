"""Evacuating a server without cutting users off (docs/operations.md,
"Evacuate"), with real strongSwan peers through the bpf engine: `ikelb
server evacuate` drains the server, forgets its persistence and asks its
charon over vici to REDIRECT (RFC 5685) every IKE SA to the VIP; the
clients re-establish through ikelb on the other servers while their pings
keep going, and the evacuated charon ends with no IKE SA. Errors: an
unknown server (404), a server without vici (drain and forget only, said
so), a vici endpoint nobody answers (a clear error in status while the
API stays responsive)."""
import http.client
import json
import re
import socket
import subprocess
import time

from lab import PROTECTED, start_balancer
from lab.netns import IP

IKELB = {"forwarding": "dnat", "persistence": "source-ip"}
DEAD_VICI = "tcp://198.51.100.250:4502"  # on the servers' bridge, no host there
PING_INTERVAL = 0.2
PING_COUNT = 300  # 60 s at most: bounded


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def api(lab, method, path):
    c = UnixHTTP(lab.balancer.sock)
    try:
        c.request(method, path)
        r = c.getresponse()
        data = r.read().decode()
        if r.getheader("Content-Type", "").startswith("application/json"):
            return r.status, json.loads(data)
        return r.status, data
    finally:
        c.close()


def servers_of(lab):
    return {s["name"]: s for s in lab.balancer.status()["services"][0]["servers"]}


def clients_on(lab, server):
    return {sa["remote-host"] for sa in lab.server_sas(server)
            if sa["state"] == "ESTABLISHED"}


def start_pings(lab, clients):
    """One bounded ping per client, started by us and stopped by PID."""
    procs = {}
    for c in clients:
        procs[c.name] = subprocess.Popen(
            [IP, "netns", "exec", c.ns, "ping", "-n", "-i", str(PING_INTERVAL), "-c",
             str(PING_COUNT), "-W", "1", PROTECTED],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lab.reg.add_proc("ping-" + c.name, procs[c.name])
    return procs


def stop_pings(procs):
    """{client: (sent, received)} after SIGINT (ping prints its summary)."""
    out = {}
    for name, p in procs.items():
        if p.poll() is None:
            p.send_signal(2)
        text = p.communicate(timeout=10)[0]
        m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
        assert m, text
        out[name] = (int(m.group(1)), int(m.group(2)))
    return out


def wait_for(what, pred, timeout, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for %s" % what)


def test_evacuate_moves_every_client_through_redirect(make_lab, require_ikelb):
    lab = make_lab(balancer=None, servers=3, clients=9)
    vici = {s.name: s.charon.uri for s in lab.servers}
    lab.balancer = start_balancer(lab, "ikelb", vici=vici, **IKELB)
    res = lab.initiate_all()
    assert all(r.ok for r in res.values()), res
    placed = {s.name: clients_on(lab, s) for s in lab.servers}
    victim = max(lab.servers, key=lambda s: len(placed[s.name]))
    moved = placed[victim.name]
    assert len(moved) >= 3, placed  # 9 clients on 3 servers: one has 3 or more
    others = {s.name: clients_on(lab, s) for s in lab.servers if s is not victim}

    pings = start_pings(lab, lab.clients)
    time.sleep(2)
    t0 = time.monotonic()
    r = lab.balancer.ctl("server", "evacuate", victim.name)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "REDIRECT" in r.stdout, r.stdout

    def empty():
        return not lab.server_sas(victim) and time.monotonic()
    t_empty = wait_for("%s to have no IKE SA" % victim.name, empty, 90) - t0
    ev = wait_for("evacuation done",
                  lambda: (servers_of(lab)[victim.name].get("evacuation") or {})
                  .get("phase") == "done" and servers_of(lab)[victim.name]["evacuation"], 20)
    assert ev["sas_left"] == 0 and ev["redirected"] >= len(moved), ev
    assert ev["persistence_forgotten"] >= 1, ev

    # Every client of the victim is established on another server, and the
    # others' clients stayed where they were.
    def all_moved():
        now = {s.name: clients_on(lab, s) for s in lab.servers if s is not victim}
        return all(any(c in v for v in now.values()) for c in moved) and now
    now = wait_for("the victim's clients on other servers", all_moved, 60)
    for name, cl in others.items():
        assert cl <= now[name], (name, cl, now[name])
    st = servers_of(lab)[victim.name]
    assert st["admin"] == "draining" and st["state"] == "draining", st

    # Pings resume for every client (checked once the SAs settled).
    time.sleep(3)
    stats = stop_pings(pings)
    moved_names = {c.name for c in lab.clients if c.addr in moved}
    for c in lab.clients:
        assert lab.ping_through_tunnel(c), c.name
    lost = {n: s - r for n, (s, r) in stats.items()}
    lost_moved = sum(lost[n] for n in moved_names)
    lost_others = sum(v for n, v in lost.items() if n not in moved_names)
    print("\nEVACUATE: %d clients moved off %s; its charon empty %.1f s after the command "
          "(ikelb's worker: done after %.1f s); pings lost: "
          "%d of %d on moved clients (%.1f s of traffic each at most), %d on others"
          % (len(moved), victim.name, t_empty, ev["seconds"], lost_moved,
             sum(stats[n][0] for n in moved_names),
             max(lost[n] for n in moved_names) * PING_INTERVAL, lost_others))
    assert lost_others == 0, lost
    status, body = api(lab, "GET", "/metrics")
    assert status == 200
    assert re.search(r'ikelb_server_evacuation_sas_left\{service="vpn",server="%s"\} 0\n'
                     % victim.name, body), body[-2000:]
    assert re.search(r'ikelb_server_evacuating\{service="vpn",server="%s"\} 0\n'
                     % victim.name, body), body[-2000:]


def test_evacuate_errors(make_lab, require_ikelb):
    lab = make_lab(balancer=None, servers=3, clients=2)
    s1, s2, s3 = lab.servers
    lab.balancer = start_balancer(lab, "ikelb", vici={s2.name: DEAD_VICI}, **IKELB)

    # unknown server
    status, body = api(lab, "POST", "/v1/servers/nope/evacuate")
    assert status == 404 and body["error"] == "no such server", body
    r = lab.balancer.ctl("server", "evacuate", "nope")
    assert r.returncode != 0 and "no such server" in r.stdout + r.stderr

    # no vici: drained, persistence forgotten, and said so
    status, body = api(lab, "POST", "/v1/servers/%s/evacuate" % s1.name)
    assert status == 200, body
    assert body["phase"] == "drain-only" and body["vici"] is None, body
    assert "no vici endpoint" in body["message"], body
    st = servers_of(lab)[s1.name]
    assert st["admin"] == "draining" and st["evacuation"]["phase"] == "drain-only", st

    # a dead endpoint: the daemon answers at once meanwhile, then status
    # says why it failed; the server stays drained
    t0 = time.monotonic()
    status, body = api(lab, "POST", "/v1/servers/%s/evacuate" % s2.name)
    assert status == 200 and body["phase"] == "redirecting", body
    assert lab.balancer.status() is not None
    assert time.monotonic() - t0 < 2.5, "the API waited for the vici worker"
    ev = wait_for("the dead endpoint's error",
                  lambda: servers_of(lab)[s2.name]["evacuation"]["phase"] == "failed"
                  and servers_of(lab)[s2.name]["evacuation"], 30)
    assert DEAD_VICI in ev["error"] and "connect" in ev["error"], ev
    assert servers_of(lab)[s2.name]["admin"] == "draining"
    assert "evacuate vpn/%s" % s2.name in lab.balancer.log()

    # a reload keeps the evacuations (and the data path's mark)
    r = lab.balancer.ctl("reload")
    assert r.returncode == 0, r.stdout + r.stderr
    assert servers_of(lab)[s1.name]["evacuation"]["phase"] == "drain-only"
    assert "forgotten after the reload" not in lab.balancer.log()

    # enable ends the evacuation; the servers take clients again
    for s in (s1, s2):
        assert lab.balancer.ctl("server", "enable", s.name).returncode == 0
        assert "evacuation" not in servers_of(lab)[s.name]
    res = lab.initiate_all()
    assert all(r.ok for r in res.values()), res
