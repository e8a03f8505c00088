"""The socket engine's UDP GRO/GSO relay (src/engine/sock_gso.c) through the
bench topology: bursts of one client's ESP arrive at the engine as GRO
trains and leave as GSO sends. Where a train cannot leave whole (its
datagrams exceed the server side's MTU: the kernel refuses the send with
EINVAL), the engine must fall back to single datagrams (which the kernel
then fragments) and still deliver everything. Also the software
segmentation variant (tx-udp-segmentation off). A low fixed rate, no timing
thresholds: every datagram must arrive intact at its client's one sink.

Run: /usr/bin/python3 -m pytest -q tests/system/test_socket_gso.py (root)."""
import benchrun

PATHS = "ikelb-socket,ikelb-socket-swgso"


def _bench(srv_mtu):
    return benchrun.run({"BENCH_SIZES": "128,1000", "BENCH_CLIENTS": "32",
                         "BENCH_SOURCES": "16", "BENCH_RATE": "5000", "BENCH_SECONDS": "1",
                         "BENCH_SAT_SECONDS": "0.5", "BENCH_SCALE": "0",
                         "BENCH_MAX_SECONDS": "100", "BENCH_PATHS": PATHS,
                         "BENCH_SOCK_SRV_MTU": srv_mtu}, "gso", timeout=240,
                        tools=("/usr/sbin/ethtool",))


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
