"""The IKE health probe against real strongSwan (5.9.8) servers.

A lab with two servers and no balancer; the probe runs in the balancer
namespace from 198.51.100.1 (ikelb's own address), like the daemon's.
tests/system/tools/ike_probe.c is compiled here against
$IKELB_BUILD/libikelb.a (default build/)."""
import os
import secrets
import subprocess
import time

import pytest

from lab.netns import ns_run

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEAD_ADDR = "198.51.100.99"  # on the server segment, nobody there


@pytest.fixture(scope="module")
def ike_probe(tmp_path_factory):
    build = os.environ.get("IKELB_BUILD") or os.path.join(REPO, "build")
    lib = os.path.join(build, "libikelb.a")
    if not os.path.exists(lib):
        reason = "%s missing (make BUILD=... first)" % lib
        if os.environ.get("IKELB_NO_SKIP") == "1":
            pytest.fail("prerequisite missing under make check: " + reason)
        pytest.skip(reason)
    out = str(tmp_path_factory.mktemp("ike_probe") / "ike_probe")
    cmd = ["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
           "-I" + os.path.join(REPO, "include"), "-I" + os.path.join(REPO, "src"),
           "-o", out, os.path.join(HERE, "tools", "ike_probe.c"), lib]
    # libikelb.a may be a sanitizer build: link the runtimes it needs.
    if "san" in os.path.basename(os.path.normpath(build)):
        cmd += ["-fsanitize=address,undefined"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return out


@pytest.fixture
def lab(make_lab):
    return make_lab(None, servers=2, clients=0, prefix="ikh%s-" % secrets.token_hex(3))


def _kv(line):
    return dict(f.split("=", 1) for f in line.split() if "=" in f)


def _half_open_settles(lab, server, limit=5.0):
    end = time.monotonic() + limit
    st = lab.server_stats(server)
    while st["half_open"] and time.monotonic() < end:
        time.sleep(0.2)
        st = lab.server_stats(server)
    return st


def test_probe_gets_no_proposal_chosen_and_leaves_no_state(lab, ike_probe, report):
    s1 = lab.servers[0]
    p = ns_run(lab.lb_ns, [ike_probe, s1.addr, "500"], check=False, timeout=10)
    r = _kv(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    # RFC 7296 §2.6 as strongSwan does it: same SPIi, SPIr 0, R flag only.
    assert r["verdict"] == "alive"
    assert r["notify"] == "14"
    assert r["spi_r"] == "0" * 16
    assert r["flags"] == "0x20"
    assert r["from_port"] == "500"

    # The checker: up within rise probes; strongSwan keeps no IKE SA.
    p = ns_run(lab.lb_ns, [ike_probe, s1.addr, "500", "8"], check=False, timeout=20)
    c = _kv(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert c["status"] == "up" and c["failed"] == "0", p.stdout
    st = _half_open_settles(lab, s1)
    assert st["ike_sas"] == 0 and st["half_open"] == 0, st["text"]
    assert not lab.server_sas(s1)

    # A dead address goes down after `fall` timeouts.
    p = ns_run(lab.lb_ns, [ike_probe, DEAD_ADDR, "500", "8"], check=False, timeout=20)
    d = _kv(p.stdout)
    assert p.returncode == 1 and d["status"] == "down", p.stdout + p.stderr
    assert d["last_error"] == "timeout"
    report(lab, None, "probe: %s\nchecker: %s\ndead: %s\nserver stats after: %d IKE_SAs, "
           "%d half-open" % (r, c, d, st["ike_sas"], st["half_open"]))


def test_back_to_back_probes_never_meet_cookies(lab, ike_probe):
    """Six probes back to back from one address (faster than the checker's
    2/s pacing): each is answered NO_PROPOSAL_CHOSEN, never COOKIE, never
    dropped by the per-IP block, because no probe stays half-open."""
    s2 = lab.servers[1]
    for _ in range(6):
        p = ns_run(lab.lb_ns, [ike_probe, s2.addr, "500"], check=False, timeout=10)
        assert _kv(p.stdout).get("notify") == "14", p.stdout + p.stderr
    st = _half_open_settles(lab, s2)
    assert st["half_open"] == 0, st["text"]
    log = lab.server_log(s2)
    assert "per-IP half-open IKE_SA limit" not in log
    # The probe names itself in the server's log.
    assert "received unknown vendor ID: 69:6b:65:6c:62:20:68:65" in log
