"""`make bench` in its quickest mode: every forwarding path must deliver
packets to every sink, and ikelb must keep each client on one server (port
following). No timing thresholds: on a shared VM they would only be noise.

Run: /usr/bin/python3 -m pytest -q tests/system/test_bench_smoke.py (root;
IKELB_BUILD picks the build directory, default build/). The fixture is in
benchrun.py."""
import os

import pytest

import benchrun

CLIENTS = 64
SOURCES = 32

# Paths that must run wherever the bench's dependencies are installed; the
# socket engine may be absent from a build (then it is reported skipped).
REQUIRED = ["plain", "nft-dnat", "ikelb-bpf"]


@pytest.fixture(scope="module")
def bench_result():
    return benchrun.run({"BENCH_SIZES": "128", "BENCH_CLIENTS": str(CLIENTS),
                         "BENCH_SOURCES": str(SOURCES), "BENCH_RATE": "20000",
                         "BENCH_SECONDS": "0.5", "BENCH_SAT_SECONDS": "0.5",
                         "BENCH_SCALE": "1", "BENCH_MAX_SECONDS": "50",
                         "BENCH_MAX_CLIENTS": "65536"}, "smoke", timeout=150)


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
    # every state map layout filled to its capacity keeps nearly all of it
    for m in sc["state_bytes"]["maps"]:
        assert m["filled"] == 100000, m
        assert 0.99 * m["filled"] <= m["kept"] <= m["filled"], m
    assert [m["servers"] for m in sc["maglev"]] == [10, 100, 1000]


def test_memory_per_persistence_mode(bench_result):
    """Kernel bytes per client come from the bpf daemon's own maps, per
    persistence mode, counting only the tables the mode uses, times the
    entries each established client was measured to hold after the
    handshake (the sinks answer IKE_SA_INIT, so every IKE_AUTH on 4500
    establishes): one SA, one flow (none left on 500), one persistence
    entry per address, no half-open SA. ike mode has no persistence entry,
    so it must come out smaller; the summary prints them."""
    p = _paths(bench_result)["ikelb-bpf"]
    mem = p["memory"]
    tabs = {t["name"]: t for t in mem["tables"]}
    assert tabs["persist_map"]["max_entries"] == 65536
    assert tabs["flow_map"]["max_entries"] == 65536  # one flow slot per client
    assert p["state_entries"] == {"flow_map": CLIENTS, "sa_map": CLIENTS,
                                  "persist_map": SOURCES, "halfopen_map": 0}, p["state_entries"]
    assert mem["entries"] == {"flow_map": 1, "sa_map": 1, "persist_map": 1, "halfopen_map": 0}
    modes = mem["modes"]
    per = {n: t["bytes_per_entry"] for n, t in tabs.items()}
    assert modes["ike"]["tables"] == {"sa_map": 1, "flow_map": 1}
    assert modes["ike"]["bytes_per_client"] == pytest.approx(per["sa_map"] + per["flow_map"])
    assert modes["source-ip"]["bytes_per_client"] == pytest.approx(
        modes["ike"]["bytes_per_client"] + per["persist_map"])
    out = bench_result["_stdout"]
    assert "## Summary: issue #18 ratios" in out
    assert "ikelb-bpf CPU/pkt / plain" in out and "| source-ip |" in out
    assert "1 x sa_map + 1 x flow_map" in out and "WARNING" not in out
