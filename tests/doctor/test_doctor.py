"""`ikelb doctor --json` on the captures recorded from the lab
(tests/doctor/record-captures): each broken setup is named with the right
servers, the good one is healthy, and bad input never crashes it.
Needs no root: run by `make check-doctor` (IKELB_BIN: the built CLI)."""
import json
import os
import random
import struct
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CAPS = os.path.join(HERE, "captures")
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("IKELB_BIN") or os.path.join(REPO, "build", "ikelb")
S1, S2 = "198.51.100.11", "198.51.100.12"
LB = "198.51.100.1"
NAT = "203.0.113.50"
VIP = "203.0.113.10"

# capture -> {kind: (servers, clients or None)} that must be found
EXPECTED = {
    "fullnat": {"source-nat": ({S1, S2}, {LB}), "per-ip-limit": ({S1, S2}, {LB})},
    "portsplit": {"port-split": ({S1, S2}, {"203.0.113.101", "203.0.113.102"})},
    "bypass": {"no-reply": ({S2}, None)},
    "sharednat": {"shared-nat": ({S2}, {NAT})},
    # captured on the balancer's public side: the server is the VIP
    "fragmented": {"fragmented-ike": ({VIP}, {"203.0.113.10%d" % i for i in range(1, 5)})},
}


def doctor(*args):
    p = subprocess.run([BIN, "doctor"] + list(args), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode >= 0, "killed by signal %d: %s" % (-p.returncode, p.stderr)
    return p


def doctor_json(path):
    p = doctor("--json", path)
    assert p.returncode in (0, 1), p.stderr
    out = json.loads(p.stdout)
    errors = [f for f in out["findings"] if f["severity"] == "error"]
    assert p.returncode == (1 if errors else 0), (p.returncode, out)
    return out


def cap(name):
    return os.path.join(CAPS, name + ".pcap")


def by_kind(out):
    kinds = {}
    for f in out["findings"]:
        assert set(f) >= {"kind", "severity", "summary", "servers", "clients", "evidence"}, f
        assert f["severity"] in ("error", "warning", "info"), f
        kinds.setdefault(f["kind"], []).append(f)
    return kinds


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_capture_named(name):
    out = doctor_json(cap(name))
    kinds = by_kind(out)
    for kind, (servers, clients) in EXPECTED[name].items():
        assert kind in kinds, "%s: no %s finding in %s" % (name, kind, out)
        f = kinds[kind][0]
        assert set(f["servers"]) == servers, (kind, f)
        if clients is not None:
            assert set(f["clients"]) == clients, (kind, f)
        assert f["summary"] and f["evidence"], f
    assert "healthy" not in kinds, out


def test_fullnat_names_the_limits():
    f = by_kind(doctor_json(cap("fullnat")))["source-nat"][0]
    assert f["severity"] == "error", f
    assert "strongSwan" in f["summary"] and f["evidence"]["max_half_open"] >= 5, f
    per_ip = by_kind(doctor_json(cap("fullnat")))["per-ip-limit"][0]
    assert per_ip["evidence"]["cookie_rounds"] > 0, per_ip


def test_bypass_blames_only_the_bypassing_server():
    kinds = by_kind(doctor_json(cap("bypass")))
    assert [f["servers"] for f in kinds["no-reply"]] == [[S2]], kinds["no-reply"]
    assert "other addresses" in kinds["no-reply"][0]["summary"]
    assert kinds["no-reply"][0]["evidence"]["retransmissions"] > 0


def test_fragmented_counts_the_lost_fragment():
    """c1's later fragments were dropped before the capture point; the
    other clients' IKE_AUTH requests arrived whole."""
    f = by_kind(doctor_json(cap("fragmented")))["fragmented-ike"][0]
    ev = f["evidence"]
    assert ev["ike_auth_fragmented"] >= 4 and ev["incomplete"] >= 1, f
    assert ev["incomplete_from"] == ["203.0.113.101"] and f["severity"] == "error", f


def test_good_capture_is_healthy():
    p = doctor("--json", cap("good"))
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert not [f for f in out["findings"] if f["severity"] != "info"], out
    kinds = by_kind(out)
    assert set(kinds) == {"healthy"}, out
    s = out["summary"]
    assert s["established"] == 4 and s["servers"] == 2 and s["malformed"] == 0, s
    assert s["esp_spis"] >= 4, s
    assert set(kinds["healthy"][0]["servers"]) == {S1, S2}


def test_text_output_and_several_files():
    p = doctor(cap("good"), cap("bypass"))
    assert p.returncode == 1, p.stderr
    assert "error no-reply: server %s" % S2 in p.stdout, p.stdout
    assert p.stdout.splitlines()[0].startswith("92 packets"), p.stdout


def test_captures_stay_small():
    total = sum(os.path.getsize(os.path.join(CAPS, f)) for f in os.listdir(CAPS))
    assert total < 300 * 1024, total


# ---- bad input ------------------------------------------------------------

def pcap_bytes(frames, linktype=1):
    out = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, linktype)
    for i, fr in enumerate(frames):
        out += struct.pack("<IIII", 1000 + i, 0, len(fr), len(fr)) + fr
    return out


def test_truncated_capture_counts_or_refuses(tmp_path):
    data = open(cap("fullnat"), "rb").read()
    for cut in (10, 24 + 8, len(data) // 2 + 3, len(data) - 5):
        f = tmp_path / ("cut%d.pcap" % cut)
        f.write_bytes(data[:cut])
        p = doctor("--json", str(f))
        assert p.returncode in (0, 1, 2), p.stderr
        if p.returncode != 2:
            assert json.loads(p.stdout)["summary"]["malformed"] >= 1, p.stdout


def test_garbage_frames_are_counted(tmp_path):
    rnd = random.Random(7)
    frames = [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 120)))
              for _ in range(300)]
    # IPv4/UDP to port 500 with lengths that lie
    eth = b"\x00" * 12 + b"\x08\x00"
    ip = bytes([0x45, 0, 0, 60, 0, 1, 0x20, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    frames += [eth + ip + struct.pack(">HHHH", 500, 500, 200, 0) + b"\x01" * 20,
               eth + ip[:10], eth + bytes([0x4f]) + ip[1:]]
    f = tmp_path / "garbage.pcap"
    f.write_bytes(pcap_bytes(frames))
    p = doctor("--json", str(f))
    assert p.returncode in (0, 1), p.stderr
    s = json.loads(p.stdout)["summary"]
    assert s["packets"] == len(frames) and s["malformed"] >= 3, s


def test_not_a_capture_and_missing_file(tmp_path):
    f = tmp_path / "x.pcap"
    f.write_bytes(b"this is not a capture at all\n" * 4)
    assert doctor(str(f)).returncode == 2
    assert doctor(str(tmp_path / "missing.pcap")).returncode == 2
    e = tmp_path / "empty.pcap"
    e.write_bytes(b"")
    assert doctor(str(e)).returncode == 2


@pytest.mark.parametrize("args", [[], ["--live", "lo"], ["--duration", "5", cap("good")],
                                  ["--live", "lo", "--duration", "3601"],
                                  ["--live", "lo", "--duration", "0"],
                                  ["--live", "lo", "--duration", "5", cap("good")]])
def test_usage_errors(args):
    p = doctor(*args)
    assert p.returncode == 2 and "usage: ikelb doctor" in p.stderr, (args, p.stderr)


def test_empty_capture_says_no_ike(tmp_path):
    f = tmp_path / "none.pcap"
    f.write_bytes(pcap_bytes([]))
    p = doctor("--json", str(f))
    assert p.returncode == 0, p.stderr
    assert [x["kind"] for x in json.loads(p.stdout)["findings"]] == ["no-ike"]


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")
def test_live_capture_on_loopback():
    """Three IKE_SA_INIT retransmissions to 127.0.0.1:500 (nobody listens)
    while capturing on lo: a silent server."""
    import socket
    import time
    proc = subprocess.Popen([BIN, "doctor", "--json", "--live", "lo", "--duration", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    hdr = struct.pack(">QQBBBBII", 0x1122334455667788, 0, 0, 0x20, 34, 0x08, 0, 28)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(3):
        s.sendto(hdr, ("127.0.0.1", 500))
        time.sleep(0.2)
    s.close()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, (out, err)
    kinds = by_kind(json.loads(out))
    assert kinds["no-reply"][0]["servers"] == ["127.0.0.1"], kinds
