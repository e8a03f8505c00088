"""IKE-aware steering (issue 4): one IKE SA -> one server, even for many
clients behind one NAT address. ikelb engine bpf, forwarding dnat, against
real strongSwan charons (docs/steering.md explains what is shown here).

Run: IKELB_BIN=$PWD/build/ikelb /usr/bin/python3 -m pytest -q -p no:cacheprovider \
         tests/system/test_ike_steering.py"""
import concurrent.futures
import json
import time

import pytest

from lab.checks import (assert_all_up, assert_no_invalid_spi, assert_pings,
                        assert_server_view, log_counts, sas_by_client)

pytestmark = pytest.mark.usefixtures("require_ikelb")

IKE = {"forwarding": "dnat", "persistence": "ike"}
SRC_IP = {"forwarding": "dnat", "persistence": "source-ip"}
NCLIENTS = 16
# The global COOKIE threshold (10 half-open SAs per server) is raised as in
# test_bpf_dnat.py: the point here is the per-IP limits (cookie_threshold_ip
# 3, block_threshold 5), which stay at strongSwan's defaults.
SLOW_AUTH_SERVER = {"charon": {"receive_delay": 1500, "receive_delay_type": 35,
                               "cookie_threshold": 64}}
IMPATIENT_CLIENT = {"charon": {"retransmit_tries": 0, "retransmit_timeout": 4}}

# SPI labels: strongSwan applies (random & ~spi_mask) | spi_label to the
# IKE SPIs it chooses, and picks inbound ESP SPIs in [spi_min, spi_max].
SPI_MASK = "0xff00000000000000"
LABELS = {"s1": "0x0100000000000000", "s2": "0x0200000000000000"}
ESP_RANGES = {"s1": (0xc1000000, 0xc1ffffff), "s2": (0xc2000000, 0xc2ffffff)}
IKE_LABELS = dict(IKE, spi_mask=SPI_MASK, spi_labels=LABELS, esp_ranges=ESP_RANGES)


def label_server_opts(extra=None):
    """Per-server charon options matching IKE_LABELS (index 1 -> s1 ...)."""
    def opts(i):
        name = "s%d" % i
        lo, hi = ESP_RANGES[name]
        o = {"charon": {"spi_mask": SPI_MASK, "spi_label": LABELS[name],
                        "spi_min": "0x%08x" % lo, "spi_max": "0x%08x" % hi}}
        for k, v in (extra or {}).items():
            o.setdefault(k, {}).update(v)
        return o
    return opts


# ---- helpers ---------------------------------------------------------------

def steering(lab):
    """-> {'steer_label': packets, ...} and the drops, from `ikelb stats --json`."""
    p = lab.balancer.ctl("stats", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    svc = json.loads(p.stdout)["services"][0]
    out = {k: v["packets"] for k, v in svc["counters"].items() if k.startswith("steer_")}
    out.update({"drop_" + k: v["packets"] for k, v in svc["drops"].items() if v["packets"]})
    return out


def delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after
            if after.get(k, 0) - before.get(k, 0)}


def server_of(lab):
    """-> {client name: server name} (every client must be on exactly one)."""
    out = {}
    for c, entries in sas_by_client(lab).items():
        assert len(entries) == 1, "%s has IKE SAs on %s" % (c, [e[0] for e in entries])
        out[c] = entries[0][0]
    return out


def spread(lab):
    return {s.name: len(lab.server_sas(s)) for s in lab.servers}


def invalid_spi(lab):
    return {s.name: lab.server_counters(s)["invalid-spi"] for s in lab.servers}


def sa_spis(lab):
    """-> {client: (server, IKE SPIi, SPIr, sorted CHILD SA inbound SPIs)}"""
    out = {}
    for c, entries in sas_by_client(lab).items():
        server, sa = entries[0]
        children = sorted(ch.get("spi-in", "") for ch in sa["children"]
                          if ch.get("state") == "INSTALLED")
        out[c] = (server, sa["initiator-spi"], sa["responder-spi"], tuple(children))
    return out


# strongSwan's invalid-spi counter counts IKE messages only; ESP with an
# unknown SPI (kernel-libipsec) is visible only in the log at esp level 2.
ESP_LOG = {"charon": {"filelog.lab.esp": 2}}
UNKNOWN_ESP_LINE = "inbound ESP packet does not belong to an installed SA"


def unknown_esp(lab):
    """-> {server: ESP packets dropped for an unknown SPI} (needs ESP_LOG)."""
    return {s.name: lab.server_log(s).count(UNKNOWN_ESP_LINE) for s in lab.servers}


def wait_for(pred, timeout, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# ---- 1. many clients behind one NAT address --------------------------------

def _spread_run(make_lab, opts):
    lab = make_lab("ikelb", balancer_opts=opts, servers=2, clients=0, nat_clients=NCLIENTS)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_server_view(lab)  # one SA per client, CHILD SA installed, NAT address seen
    assert_pings(lab)
    assert_no_invalid_spi(lab)
    return lab, results, spread(lab), steering(lab)


def test_nat_clients_spread_ike_vs_source_ip(make_lab, report):
    """16 clients behind one carrier-NAT address: `ike` spreads their IKE SAs
    over both servers, `source-ip` puts all on one (same address)."""
    rows = []
    lab_ike, res_ike, sp_ike, st_ike = _spread_run(make_lab, IKE)
    rows.append(("ike", sp_ike, st_ike))
    lab_src, res_src, sp_src, st_src = _spread_run(make_lab, SRC_IP)
    rows.append(("source-ip", sp_src, st_src))
    # source-ip: one address -> one server.
    assert sorted(sp_src.values()) == [0, NCLIENTS], sp_src
    # ike: SPIi hashing spreads them; the SPIs are random, so the split is
    # binomial(16, 1/2). A bound of 25% per server failed 2.1% of runs (a
    # 13/3 split was seen in CI); at least 2 per server fails 0.05% of runs,
    # while source-ip (above) always puts all 16 on one.
    assert all(n >= 2 for n in sp_ike.values()), sp_ike
    assert sum(sp_ike.values()) == NCLIENTS
    # New SAs were scheduled (steer_new), ESP followed the learned flows.
    assert st_ike.get("steer_new", 0) >= NCLIENTS and st_ike.get("steer_flow", 0) > 0, st_ike
    assert st_ike.get("steer_persist", 0) == 0, st_ike
    table = ["mode        s1  s2  steering counters"]
    table += ["%-10s %3d %3d  %s" % (m, sp["s1"], sp["s2"], st) for m, sp, st in rows]
    report(lab_ike, res_ike, "\n".join(table))


def test_nat_clients_slow_auth_ike_vs_source_ip(make_lab, report):
    """IKE_AUTH slowed 1.5 s (stands in for slow EAP/RADIUS), 16 clients
    behind one NAT address. strongSwan's per-IP limits (COOKIE from 3
    half-open SAs of one address, silent drop from 5) count the NAT address:
    with source-ip all 16 hit one server; with ike each server still sees
    about 8 from that one address, so COOKIEs and blocks remain; the gain
    is the spread (and more clients up), not an end to the per-IP limits."""
    rows = {}
    for mode, opts in (("source-ip", SRC_IP), ("ike", IKE)):
        lab = make_lab("ikelb", balancer_opts=opts, servers=2, clients=0,
                       nat_clients=NCLIENTS, server_opts=SLOW_AUTH_SERVER,
                       client_opts=IMPATIENT_CLIENT)
        results = lab.initiate_all(timeout=15)
        up = sum(r.ok for r in results.values())
        established = {s.name: sum(1 for sa in lab.server_sas(s) if sa["state"] == "ESTABLISHED")
                       for s in lab.servers}
        rows[mode] = (lab, results, up, established, log_counts(lab), invalid_spi(lab),
                      steering(lab))
        for c in lab.clients:
            if results[c.name].ok:
                assert lab.ping_through_tunnel(c), c.name
    src, ike = rows["source-ip"], rows["ike"]
    # source-ip: one address, one server, which answers with COOKIEs.
    assert min(src[3].values()) == 0, src[3]
    assert sum(n for n, _ in src[4].values()) > 0, src[4]
    # ike: both servers take clients; every up client pings (checked above).
    assert all(n > 0 for n in ike[3].values()), ike[3]
    for r in rows.values():
        assert not any(r[5].values()), "invalid-spi: %s" % r[5]
    table = ["mode       up/16  established s1/s2  COOKIEs s1/s2  per-IP blocks s1/s2"]
    for mode, (_, _, up, est, lc, _, _) in rows.items():
        table.append("%-10s %5d  %8d/%-8d  %6d/%-6d  %8d/%-8d" % (
            mode, up, est["s1"], est["s2"], lc["s1"][0], lc["s2"][0], lc["s1"][1], lc["s2"][1]))
    report(ike[0], ike[1], "\n".join(table))


# ---- 2. rekeying and reauthentication --------------------------------------

REKEY_CLIENT = {"conn": {"rekey_time": "10s", "rand_time": "1s"},
                "child": {"rekey_time": "6s", "rand_time": "1s"}}


def _watch(lab, seconds, until=None):
    """Ping every client through its tunnel about once a second for up to
    `seconds` (stops early when until() is true); -> {client: failed pings}.
    A single lost ping right at a rekey is tolerated by the callers only
    when said so."""
    failed = {c.name: 0 for c in lab.clients}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for c in lab.clients:
            if not lab.ping_through_tunnel(c, count=1, timeout=2):
                failed[c.name] += 1
        if until and until():
            break
        time.sleep(0.5)
    return failed


def _server_counter(lab, name):
    return {s.name: lab.server_counters(s).get(name, 0) for s in lab.servers}


def test_rekey_ike_and_child_sa_stay_on_server(make_lab, report):
    """Clients rekey their IKE SA every ~10 s and CHILD SA every ~6 s. The
    new IKE SPIs travel encrypted (RFC 7296 §2.18): ikelb never sees them in
    a header before they are used, so the client's flow entry (and, with
    labels, the SPI label) carries the rekeyed SA to the same server."""
    lab = make_lab("ikelb", balancer_opts=IKE, servers=2, clients=2, nat_clients=4,
                   client_opts=REKEY_CLIENT)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    before = sa_spis(lab)
    st0 = steering(lab)

    def all_rekeyed():
        now = sa_spis(lab)
        return len(now) == len(before) and all(
            now[c][1] != before[c][1] and now[c][3] != before[c][3] for c in before)
    failed = _watch(lab, 30, until=all_rekeyed)
    assert all_rekeyed(), "not every client rekeyed IKE and CHILD SA: %s -> %s" % (
        before, sa_spis(lab))
    # Settled: exactly one IKE SA per client, on the server it started on.
    assert wait_for(lambda: all(len(e) == 1 for e in sas_by_client(lab).values()), 10), \
        "old IKE SAs not deleted"
    after = sa_spis(lab)
    moved = {c: (before[c][0], after[c][0]) for c in before if before[c][0] != after[c][0]}
    assert not moved, "clients changed server after a rekey: %s" % moved
    assert_server_view(lab)
    assert_pings(lab)
    assert_no_invalid_spi(lab)
    ike_rekeys = _server_counter(lab, "ike-rekey-resp")
    child_rekeys = _server_counter(lab, "child-rekey")
    assert sum(ike_rekeys.values()) >= len(lab.clients), ike_rekeys
    assert sum(child_rekeys.values()) >= len(lab.clients), child_rekeys
    st = delta(steering(lab), st0)
    # Every packet of a rekeyed SA followed the client's flow; nothing fell
    # back to the client-IP hash.
    assert st.get("steer_flow", 0) > 0 and not st.get("steer_fallback"), st
    assert sum(failed.values()) <= len(lab.clients), failed
    report(lab, results, "IKE rekeys (server ike-rekey-resp) %s, CHILD rekeys %s\n"
           "steering during rekeys: %s\nlost single pings: %s" % (
               ike_rekeys, child_rekeys, st, {k: v for k, v in failed.items() if v}))


@pytest.mark.parametrize("mbb", ["no", "yes"])
def test_reauthentication_stays_on_server(make_lab, report, mbb):
    """reauth_time 12 s: the client builds a new IKE SA (new IKE_SA_INIT
    with a new SPIi) from the same address and port 4500. strongSwan 5.9.8
    defaults to break-before-make (charon.make_before_break = no); both
    schemes are run. The new IKE_SA_INIT matches the client's flow entry,
    so it reaches the same server (flow before new-SA scheduling)."""
    client = {"conn": {"reauth_time": "12s", "rand_time": "1s"},
              "charon": {"make_before_break": mbb}}
    lab = make_lab("ikelb", balancer_opts=IKE, servers=2, clients=2, nat_clients=4,
                   client_opts=client)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    before = sa_spis(lab)
    st0 = steering(lab)

    def all_reauthed():
        now = sa_spis(lab)
        return len(now) == len(before) and all(
            c in now and now[c][1] != before[c][1] and
            all(len(e) == 1 for e in sas_by_client(lab).values()) for c in before)
    failed = _watch(lab, 35, until=all_reauthed)
    assert all_reauthed(), "not every client reauthenticated: %s -> %s" % (
        before, sa_spis(lab))
    after = sa_spis(lab)
    moved = {c: (before[c][0], after[c][0]) for c in before if before[c][0] != after[c][0]}
    assert not moved, "clients changed server on reauthentication: %s" % moved
    # (the servers' ike-init-in-req also counts ikelb's health probes)
    inits = {c.name: lab.node(c).charon.counters().get("ike-init-out-req", 0)
             for c in lab.clients}
    assert all(n >= 2 for n in inits.values()), inits
    assert_server_view(lab)
    assert_pings(lab)
    assert_no_invalid_spi(lab)
    st = delta(steering(lab), st0)
    # The new IKE_SA_INITs followed the flow: none was scheduled afresh.
    assert not st.get("steer_fallback") and not st.get("steer_new"), st
    report(lab, results, "make_before_break=%s: IKE_SA_INITs sent per client %s; steering %s;"
           " lost single pings %s" % (mbb, inits, st, {k: v for k, v in failed.items() if v}))


# ---- 3. SPI labels: steering without learned state -------------------------

DPD_CLIENT = {"conn": {"dpd_delay": "2s"}}


def _label_checks(lab):
    """-> (IKE labels ok, ESP ranges ok, details): every server-chosen IKE
    SPI carries its server's label; every inbound CHILD SA SPI lies in its
    server's spi_min..spi_max."""
    ike_ok, esp_ok, bad = True, True, []
    for s in lab.servers:
        want = int(LABELS[s.name], 16) & int(SPI_MASK, 16)
        lo, hi = ESP_RANGES[s.name]
        for sa in lab.server_sas(s):
            if int(sa["responder-spi"], 16) & int(SPI_MASK, 16) != want:
                ike_ok = False
                bad.append("%s IKE SPIr %s" % (s.name, sa["responder-spi"]))
            for ch in sa["children"]:
                spi = int(ch.get("spi-in", "0"), 16)
                if not lo <= spi <= hi:
                    esp_ok = False
                    bad.append("%s ESP spi-in %08x" % (s.name, spi))
    return ike_ok, esp_ok, bad


def test_labels_survive_balancer_restart_without_state(make_lab, report):
    """Servers label their IKE SPIs (charon.spi_mask/spi_label) and ESP SPIs
    (charon.spi_min/spi_max). ikelb is restarted with --flush-state: no flow,
    SA or persistence entry survives, yet established SAs keep working:
    ESP and the clients' DPD / rekey exchanges are steered by label."""
    lab = make_lab("ikelb", balancer_opts=IKE_LABELS, servers=2, clients=2, nat_clients=6,
                   server_opts=label_server_opts(), client_opts=DPD_CLIENT)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    ike_ok, esp_ok, bad = _label_checks(lab)
    assert ike_ok and esp_ok, bad
    before = sa_spis(lab)
    st_pre = steering(lab)

    lab.balancer.restart(flush_state=True)
    st0 = steering(lab)
    # The pinned maps (counters included) were deleted: no SA was scheduled
    # by this instance, yet every client already has its SA.
    assert st_pre.get("steer_new", 0) >= len(lab.clients) and not st0.get("steer_new"), \
        (st_pre, st0)
    info0 = _server_counter(lab, "info-in-req")
    assert_pings(lab)  # ESP first: no flow is known, the ESP SPI names the server
    st_esp = delta(steering(lab), st0)
    assert st_esp.get("steer_label", 0) > 0, st_esp
    # DPD (INFORMATIONAL) every 2 s of silence, and a rekey of each kind.
    c_ike, c_child = lab.clients[0], lab.clients[-1]
    c_ike.charon.swanctl(["--rekey", "--ike", "vpn"])
    c_child.charon.swanctl(["--rekey", "--child", "net"])
    time.sleep(6)
    assert_pings(lab)
    info = delta(_server_counter(lab, "info-in-req"), info0)
    after = sa_spis(lab)
    moved = {c: (before[c][0], after[c][0]) for c in before if before[c][0] != after[c][0]}
    assert not moved, moved
    unchanged = [c for c in before if c not in (c_ike.name, c_child.name)
                 and before[c][1:3] != after[c][1:3]]
    assert not unchanged, "IKE SAs replaced: %s" % unchanged
    assert after[c_ike.name][1] != before[c_ike.name][1], "IKE rekey did not happen"
    assert after[c_child.name][3] != before[c_child.name][3], "CHILD rekey did not happen"
    assert sum(info.values()) > 0, info
    assert_server_view(lab)
    assert_no_invalid_spi(lab)
    ike_ok, esp_ok, bad = _label_checks(lab)
    assert ike_ok and esp_ok, bad
    st = delta(steering(lab), st0)
    assert st.get("steer_label", 0) > st_esp["steer_label"], st
    report(lab, results, "after restart --flush-state: steering (ESP pings only) %s; "
           "after DPD + rekeys %s; INFORMATIONAL requests at servers %s" % (st_esp, st, info))


# ---- 4. the carrier NAT forgets its mappings --------------------------------

def _remote_ports(lab):
    return {c: sa["remote-port"] for c, e in sas_by_client(lab).items() for _, sa in e[:1]}


# MOBIKE off: with MOBIKE a strongSwan 5.9.8 responder does not move an SA
# to the port an IKE request came from (it waits for UPDATE_SA_ADDRESSES,
# which the client never sends here), and kernel-libipsec reports no ESP
# mapping changes (kernel-netlink does, from XFRM). So in this lab the
# server would keep sending to the dead port whatever the balancer does.
# Without MOBIKE the server follows the client's DPD (RFC 7296 §2.23).
REBIND_CLIENT = {"conn": {"dpd_delay": "2s", "mobike": "no"}}


def _rebind(make_lab, opts, server_opts=None, nat_clients=6):
    """Clients up behind the NAT, then `conntrack -F` in the NAT namespace:
    the next packet of every client leaves from a new public port. ESP goes
    first (a ping), then the client's DPD (every 2 s without answers) tells
    the server the new port. -> dict of observations."""
    lab = make_lab("ikelb", balancer_opts=opts, servers=2, clients=0,
                   nat_clients=nat_clients, server_opts=server_opts, client_opts=REBIND_CLIENT)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    where = server_of(lab)
    ports0 = _remote_ports(lab)
    st0, bad0, esp0 = steering(lab), invalid_spi(lab), unknown_esp(lab)
    lab.flush_nat_conntrack()
    t0 = time.monotonic()
    # One ESP packet from every client at once, before their DPDs.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(lab.clients)) as ex:
        oks = list(ex.map(lambda c: lab.ping_through_tunnel(c, count=1, timeout=1),
                          lab.clients))
    first_ping = {c.name: ok for c, ok in zip(lab.clients, oks)}
    st_esp = delta(steering(lab), st0)
    bad_esp = delta(invalid_spi(lab), bad0)
    # Recovered: every server SA shows the client's new public port.
    moved = wait_for(lambda: (lambda p: p if len(p) == len(ports0) and all(
        p[c] != ports0[c] for c in ports0) else None)(_remote_ports(lab)), 20)
    t_rebound = time.monotonic() - t0
    pings = {c.name: lab.ping_through_tunnel(c) for c in lab.clients}
    return dict(lab=lab, results=results, where=where, ports0=ports0, ports=_remote_ports(lab),
                moved=bool(moved), t_rebound=t_rebound, first_ping=first_ping,
                st_esp=st_esp, bad_esp=bad_esp, pings=pings,
                st=delta(steering(lab), st0), bad=delta(invalid_spi(lab), bad0),
                esp_lost=delta(unknown_esp(lab), esp0), where_after=server_of(lab))


def _rebind_summary(r):
    return ("placement %s\nremote ports %s -> %s (rebound after %.1fs)\n"
            "first ESP ping after the flush ok: %s\nsteering for that ESP %s, invalid-spi %s\n"
            "steering after DPD %s; invalid-spi (IKE) in all %s; ESP with unknown SPI %s;"
            " pings then %s" % (
                r["where"], r["ports0"], r["ports"], r["t_rebound"],
                sorted(c for c, ok in r["first_ping"].items() if ok) or "none",
                r["st_esp"], r["bad_esp"], r["st"], r["bad"], r["esp_lost"],
                "all ok" if all(r["pings"].values()) else r["pings"]))


def test_nat_rebinding_with_labels(make_lab, report):
    """With SPI labels the client's ESP from its new port carries the
    server's SPI, so it reaches its server before any IKE message; the DPD
    that follows (labelled SPIr) moves the server's SA to the new port."""
    r = _rebind(make_lab, IKE_LABELS, server_opts=label_server_opts(ESP_LOG))
    lab = r["lab"]
    assert r["moved"], "servers did not learn the new ports: %s -> %s" % (
        r["ports0"], r["ports"])
    assert r["where_after"] == r["where"]
    assert not any(r["bad"].values()), "invalid-spi: %s" % r["bad"]
    assert not any(r["esp_lost"].values()), "ESP at the wrong server: %s" % r["esp_lost"]
    assert r["st_esp"].get("steer_label", 0) >= len(lab.clients), r["st_esp"]
    assert not r["st"].get("steer_fallback"), r["st"]
    assert all(r["pings"].values()), r["pings"]
    assert_server_view(lab)
    report(lab, r["results"], _rebind_summary(r))


def test_nat_rebinding_without_labels(make_lab, report):
    """Without labels the new (NAT address, new port) flow is unknown: ESP
    falls back to the hash of the client address, i.e. to ONE server for
    every client behind that NAT; for clients of the other server it
    arrives there as an unknown SPI (invalid-spi) and is lost. The client's
    next IKE message (here its DPD) still names its SA by SPIi, which ikelb
    learned at IKE_SA_INIT: it is steered by SA, re-learns the flow, and
    ESP follows again. (An IKE SA rekeyed since its last message would not
    be known by SPIi either: then only a label helps.)"""
    r = _rebind(make_lab, IKE, server_opts=ESP_LOG)
    lab = r["lab"]
    assert r["moved"], "servers did not learn the new ports: %s -> %s" % (
        r["ports0"], r["ports"])
    # ESP of the unknown new flows: fallback, never a label (there are none).
    assert r["st_esp"].get("steer_fallback", 0) >= 1 and not r["st_esp"].get("steer_label"), \
        r["st_esp"]
    # The DPDs were steered by SPIi and brought the flows back.
    assert r["st"].get("steer_sa", 0) >= len(lab.clients), r["st"]
    assert r["where_after"] == r["where"]
    assert all(r["pings"].values()), r["pings"]
    # The fallback sends every client's new flow to the one server the NAT
    # address hashes to: the other server's clients lose their ESP there.
    if len(set(r["where"].values())) == 2:
        assert sum(1 for n in r["esp_lost"].values() if n) == 1, r["esp_lost"]
    report(lab, r["results"], _rebind_summary(r))


def test_restart_without_labels_recovers_through_replies(make_lab, report):
    """The label test without labels: `ike` persistence, restart with
    --flush-state, so no flow or SA is known. A client's DPD (its SA was
    never rekeyed) falls back to hash(SPIi), which is where its SA was
    placed; the server's answer passes ikelb's reply path and teaches the
    client's flow, so its ESP follows again. Every client recovers without
    reconnecting, and no server sees a message for an SA it does not hold."""
    lab = make_lab("ikelb", balancer_opts=IKE, servers=2, clients=2, nat_clients=6,
                   client_opts=DPD_CLIENT)
    results = lab.initiate_all()
    assert_all_up(lab, results)
    assert_pings(lab)
    where = server_of(lab)
    spis_before = sas_by_client(lab)
    lab.balancer.restart(flush_state=True)
    bad0 = invalid_spi(lab)
    time.sleep(6)  # a few DPD rounds
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(lab.clients)) as ex:
        oks = list(ex.map(lambda c: lab.ping_through_tunnel(c, count=2, timeout=1),
                          lab.clients))
    broken = sorted(c.name for c, ok in zip(lab.clients, oks) if not ok)
    bad = delta(invalid_spi(lab), bad0)
    st = steering(lab)
    assert not broken, (broken, st)
    assert not sum(bad.values()), bad
    assert server_of(lab) == where
    assert sas_by_client(lab).keys() == spis_before.keys()
    assert st.get("steer_fallback", 0) > 0, st  # the DPDs, before replies taught flows
    assert st.get("steer_flow", 0) > 0, st      # ESP after the replies
    report(lab, results, "placement %s\nafter restart --flush-state without labels: broken %s; "
           "invalid-spi %s; steering %s" % (where, broken, bad, st))