"""`make bench` in its quickest mode: every forwarding path must deliver
packets to every sink, and ikelb must keep each client on one server (port
following). No timing thresholds: on a shared VM they would only be noise.

Run: /usr/bin/python3 -m pytest -q tests/system/test_bench_smoke.py (root;
IKELB_BUILD picks the build directory, default build/)."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("IKELB_BUILD") or os.path.join(REPO, "build")
CLIENTS = 64

# Paths that must run wherever the bench's dependencies are installed; the
# socket engine may be absent from a build (then it is reported skipped).
REQUIRED = ["plain", "nft-dnat", "ikelb-bpf"]


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for b in ("ikegen", "ikesink", "ikescale"):
        if not os.access(os.path.join(BUILD, "bench", b), os.X_OK):
            return "%s/bench/%s not built (make)" % (BUILD, b)
    if not os.access(os.path.join(BUILD, "ikelb"), os.X_OK):
        return "%s/ikelb not built" % BUILD
    return None


@pytest.fixture(scope="module")
def bench_result():
    reason = _skip_reason()
    if reason:
        if os.environ.get("IKELB_NO_SKIP") == "1":
            pytest.fail("prerequisite missing under make check: %s" % reason)
        pytest.skip(reason)
    out = tempfile.mkdtemp(prefix="ikb-smoke-")
    env = dict(os.environ, IKELB_BUILD=BUILD, BENCH_QUICK="1", BENCH_SIZES="128",
               BENCH_CLIENTS=str(CLIENTS), BENCH_SOURCES="32", BENCH_RATE="20000",
               BENCH_SECONDS="0.5", BENCH_SAT_SECONDS="0.5", BENCH_HANDSHAKE="0",
               BENCH_SCALE="1", BENCH_OUT=out, BENCH_NAME="smoke", BENCH_MAX_SECONDS="50")
    env.pop("BENCH_PATHS", None)
    try:
        p = subprocess.run(["sh", os.path.join(REPO, "bench", "run")], env=env,
                           capture_output=True, text=True, timeout=120)
        path = os.path.join(out, "smoke.json")
        assert os.path.exists(path), "no result file; exit %d\n%s\n%s" % (
            p.returncode, p.stdout[-3000:], p.stderr[-3000:])
        with open(path) as f:
            res = json.load(f)
        res["_exit"], res["_stdout"] = p.returncode, p.stdout
        yield res
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _paths(res):
    return {p["name"]: p for p in res["paths"]}


def test_no_path_failed(bench_result):
    paths = _paths(bench_result)
    failed = {n: p.get("reason") for n, p in paths.items() if p["status"] == "failed"}
    assert not failed, failed
    for name in REQUIRED:
        assert paths[name]["status"] == "ok", (name, paths[name].get("reason"))
    if os.access("/usr/sbin/nginx", os.X_OK):
        assert paths["nginx"]["status"] == "ok", paths["nginx"].get("reason")
    assert bench_result["_exit"] == 0, bench_result["_stdout"][-2000:]


def test_every_path_delivers_to_every_sink(bench_result):
    for p in bench_result["paths"]:
        if p["status"] != "ok":
            continue
        for size, modes in p["results"].items():
            for mode, summ in modes.items():
                assert summ["n"] >= 1, (p["name"], size, mode)
                for r in summ["runs"]:
                    where = (p["name"], size, mode)
                    assert r["esp_received"] > 0, where
                    assert all(v > 0 for v in r["per_sink_esp"].values()), (
                        where, r["per_sink_esp"])
                    assert r["handshake_received"] > 0, where
                    assert r["clients_seen"] == CLIENTS, (where, r["clients_seen"])
                    assert r["bad"] == 0, where


def test_ikelb_keeps_port_following(bench_result):
    measured = 0
    for p in bench_result["paths"]:
        if not p["name"].startswith("ikelb") or p["status"] != "ok":
            continue
        for modes in p["results"].values():
            for summ in modes.values():
                for r in summ["runs"]:
                    assert r["violations"] == 0, (p["name"], r["violations"])
                    measured += 1
    assert measured > 0, "no ikelb run was measured"


def test_cpu_was_measured(bench_result):
    """The balancer namespace did work for every delivered packet, so its
    CPU time over the timed phase cannot be zero."""
    for p in bench_result["paths"]:
        if p["status"] != "ok":
            continue
        for modes in p["results"].values():
            fixed = modes["fixed"]
            assert fixed["cpu_us_per_pkt"] and fixed["cpu_us_per_pkt"] > 0, p["name"]


def test_scale_figures(bench_result):
    sc = bench_result["scale"]
    assert sc.get("exit") == 0, sc
    assert sc["place"]["not_placed"] == 0
    assert all(n > 0 for n in sc["place"]["per_server"])
    assert sc["state_bytes"]["user_per_client"] > 0
    assert [m["servers"] for m in sc["maglev"]] == [10, 100, 1000]
