"""The socket engine's UDP GRO/GSO relay (src/engine/sock_gso.c) through the
bench topology: bursts of one client's ESP arrive at the engine as GRO
trains and leave as GSO sends. Where a train cannot leave whole (its
datagrams exceed the server side's MTU: the kernel refuses the send with
EINVAL), the engine must fall back to single datagrams (which the kernel
then fragments) and still deliver everything. Also the software
segmentation variant (tx-udp-segmentation off). A low fixed rate, no timing
thresholds: every datagram must arrive intact at its client's one sink.

Run: /usr/bin/python3 -m pytest -q tests/system/test_socket_gso.py (root)."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("IKELB_BUILD") or os.path.join(REPO, "build")
PATHS = "ikelb-socket,ikelb-socket-swgso"


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for b in ("bench/ikegen", "bench/ikesink", "ikelb"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            return "%s/%s not built (make)" % (BUILD, b)
    if not os.access("/usr/sbin/ethtool", os.X_OK):
        return "ethtool missing"
    return None


def _bench(srv_mtu):
    reason = _skip_reason()
    if reason:
        if os.environ.get("IKELB_NO_SKIP") == "1":
            pytest.fail("prerequisite missing: %s" % reason)
        pytest.skip(reason)
    out = tempfile.mkdtemp(prefix="ikb-gso-")
    env = dict(os.environ, IKELB_BUILD=BUILD, BENCH_QUICK="1", BENCH_SIZES="128,1000",
               BENCH_CLIENTS="32", BENCH_SOURCES="16", BENCH_RATE="5000",
               BENCH_SECONDS="1", BENCH_SAT_SECONDS="0.5", BENCH_HANDSHAKE="0",
               BENCH_SCALE="0", BENCH_OUT=out, BENCH_NAME="gso", BENCH_MAX_SECONDS="100",
               BENCH_PATHS=PATHS, BENCH_SOCK_SRV_MTU=srv_mtu)
    try:
        p = subprocess.run(["sh", os.path.join(REPO, "bench", "run")], env=env,
                           capture_output=True, text=True, timeout=240)
        path = os.path.join(out, "gso.json")
        assert os.path.exists(path), "no result; exit %d\n%s\n%s" % (
            p.returncode, p.stdout[-3000:], p.stderr[-3000:])
        with open(path) as f:
            return json.load(f)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _check(res):
    paths = {p["name"]: p for p in res["paths"]}
    assert set(paths) == set(PATHS.split(",")), list(paths)
    for name, p in paths.items():
        assert p["status"] == "ok", (name, p.get("reason"))
        for size, r in p["results"].items():
            for run in r["fixed"]["runs"]:
                where = (name, size, run["per_sink_esp"], run["esp_sent"])
                # every datagram, intact (sinks check length and client id)
                assert run["bad"] == 0, where
                # a lost train would cost up to 16 datagrams of a client
                # each time: far below 99 % when trains do not get out
                assert run["esp_sent"] > 0, where
                assert run["esp_received"] >= 0.99 * run["esp_sent"], where
                assert run["violations"] == 0, where
                assert run["clients_seen"] == 32, where


def test_gso_relay_delivers_every_datagram():
    _check(_bench(""))


def test_gso_falls_back_when_trains_exceed_the_mtu():
    # 1000-byte datagrams, 900-byte MTU toward the servers
    _check(_bench("900"))
