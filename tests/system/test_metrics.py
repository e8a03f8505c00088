"""/metrics read with a real parser (prometheus_client, Debian
python3-prometheus-client) from a socket-engine daemon on loopback that
has steered fake IKE clients: every family described and typed, bounded
label names and no values in labels, and sums that add up. Also checks
contrib/prometheus/ikelb.rules.yml with promtool and the Grafana dashboard
against the exporter's metric names."""
import json
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import skip_or_fail
from loopback import Client, Daemon, settle

prom = pytest.importorskip("prometheus_client.parser")

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
# Label names a family may use: all from the configuration or fixed lists.
LABELS = {"service", "server", "direction", "class", "rule", "reason", "result", "le",
          "version", "engine", "table", "kind"}


@pytest.fixture(scope="module")
def scraped():
    d = Daemon(mode="ike")
    clients = [Client("127.0.0.1", 0x3000 + i) for i in range(3)]
    for c in clients:
        c.connect(d)
    bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bad.sendto(b"\x01\x02\x03", ("127.0.0.1", d.p500))  # too short: a drop
    bad.close()
    settle(d, 3)
    code, text = d.http("GET", "/metrics")
    status = d.get_json("/v1/status")
    for c in clients:
        c.close()
    d.stop()
    assert code == 200
    return text, {f.name: f for f in prom.text_string_to_metric_families(text)}, status


def test_every_family_has_help_type_and_bounded_labels(scraped):
    text, fams, _ = scraped
    for name, f in fams.items():
        assert f.documentation, name
        assert f.type in ("counter", "gauge", "histogram"), (name, f.type)
        for s in f.samples:
            assert set(s.labels) <= LABELS, (name, s.labels)
    # The parser strips _total from counter family names.
    for want in ("ikelb_packets", "ikelb_bytes", "ikelb_steering_decisions", "ikelb_drops",
                 "ikelb_server_packets", "ikelb_server_bytes", "ikelb_server_sas",
                 "ikelb_server_client_addresses", "ikelb_server_up", "ikelb_probes",
                 "ikelb_probe_rtt_seconds", "ikelb_reload_success",
                 "ikelb_reload_timestamp_seconds", "ikelb_build_info", "ikelb_service_fullnat",
                 "ikelb_service_snat_pool_addresses", "ikelb_expired_entries",
                 "ikelb_tcp_segments"):
        assert want in fams, want
    assert "snat_pool_size" not in text and 'counter="' not in text


def test_sums_add_up(scraped):
    _, fams, status = scraped
    pk = {s.labels["direction"]: s.value for s in fams["ikelb_packets"].samples
          if s.name == "ikelb_packets_total"}
    rules = sum(s.value for s in fams["ikelb_steering_decisions"].samples
                if s.name == "ikelb_steering_decisions_total")
    drops = sum(s.value for s in fams["ikelb_drops"].samples if s.name == "ikelb_drops_total")
    # 3 clients x (IKE_SA_INIT + IKE_AUTH), one malformed datagram
    assert pk["in"] == 7, pk
    assert rules == pk["out"] == 6, (rules, pk)
    assert pk["in"] == pk["out"] + drops
    srv_pkts = sum(s.value for s in fams["ikelb_server_packets"].samples
                   if s.name == "ikelb_server_packets_total")
    assert srv_pkts == pk["out"]
    sas = sum(s.value for s in fams["ikelb_server_sas"].samples)
    assert sas == 3 == sum(s["sas"] for s in status["services"][0]["servers"])
    assert [s.value for s in fams["ikelb_service_fullnat"].samples] == [1]


def test_alert_rules_pass_promtool():
    promtool = shutil.which("promtool")
    if not promtool:
        skip_or_fail("promtool missing (Debian prometheus; scripts/install-deps)")
    rules = os.path.join(ROOT, "contrib", "prometheus", "ikelb.rules.yml")
    r = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def metric_names(text):
    return set(re.findall(r"\bikelb_[a-z_]+", text))


def exported(text):
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, typ = line.split()[2:4]
            names.add(name)
            if typ == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


@pytest.mark.parametrize("path", ["contrib/grafana/ikelb.json", "contrib/prometheus/ikelb.rules.yml"])
def test_dashboard_and_rules_use_exported_metrics(scraped, path):
    text, _, _ = scraped
    with open(os.path.join(ROOT, path)) as f:
        body = f.read()
    if path.endswith(".json"):
        dash = json.loads(body)
        assert dash["panels"] and all("targets" in p for p in dash["panels"])
    used = metric_names(body)
    assert used, path
    missing = used - exported(text)
    assert not missing, (path, missing)
