"""IKE handshake rate through ikelb vs straight to a server, with real
strongSwan peers from the system-test lab (tests/system/lab): N clients
initiate at once (IKE_SA_INIT, IKE_AUTH, CHILD_SA); the figure is the time
until the last one is established. Variants:

  direct    clients address server s1 itself; the lb namespace only routes
  ikelb-1   clients address the VIP; ikelb (bpf, dnat) in front of s1 only
  ikelb-2   the same with two servers (the handshakes are spread)

BENCH_HS_CLIENTS (40) sets N, BENCH_HS_REPS (3) the rounds per variant
(median reported; between rounds every client closes its IKE SA). Each
variant builds and removes its own lab."""
import concurrent.futures
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _variant(Lab, start_balancer, label, n, servers, balancer, client_opts, reps):
    lab = Lab(servers=servers, clients=n, client_opts=client_opts)
    try:
        lab.start()
        lab.start_charons()
        if balancer:
            start_balancer(lab, balancer)
        walls, ups = [], []
        for rep in range(reps):
            if rep:
                _terminate_all(lab)
            t0 = time.monotonic()
            res = lab.initiate_all(timeout=30)
            walls.append(time.monotonic() - t0)
            ups.append(sum(1 for r in res.values() if r.ok))
        ok = [w for w, u in zip(walls, ups) if u == n]
        wall = statistics.median(ok) if ok else None
        return {"label": label, "clients": n, "servers": servers, "up": min(ups), "ups": ups,
                "reps": reps, "runs_s": [round(w, 3) for w in walls],
                "seconds": wall, "per_s": n / wall if wall else None}
    finally:
        lab.stop()


def _terminate_all(lab):
    """Close every client's IKE SA and wait until the servers hold none, so
    the next round is a fresh set of handshakes."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
        list(ex.map(lambda c: c.charon.swanctl(["--terminate", "--ike", "vpn", "--timeout", "5"],
                                               check=False, timeout=10), lab.clients))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not any(lab.server_sas(s) for s in lab.servers):
            return
        time.sleep(0.2)


def run(build, quick=False):
    sys.path.insert(0, os.path.join(REPO, "tests", "system"))
    os.environ.setdefault("IKELB_BIN", os.path.join(build, "ikelb"))
    try:
        from lab import Lab, ikelb_available, start_balancer
    except ImportError as e:
        return {"error": "lab module not importable: %s" % e}
    ok, why = ikelb_available()
    if not ok:
        return {"error": why}
    n = int(os.environ.get("BENCH_HS_CLIENTS", "10" if quick else "40"))
    reps = int(os.environ.get("BENCH_HS_REPS", "1" if quick else "3"))
    out = {"clients": n, "reps": reps, "variants": []}
    plans = [
        ("straight to one server (no balancer)", 1, None, {"remote": "198.51.100.11"}),
        ("through ikelb (bpf, dnat), 1 server", 1, "ikelb", None),
        ("through ikelb (bpf, dnat), 2 servers", 2, "ikelb", None),
    ]
    for label, servers, bal, copts in plans:
        print("handshakes: %s, %d clients" % (label, n), flush=True)
        try:
            v = _variant(Lab, start_balancer, label, n, servers, bal, copts, reps)
        except Exception as e:  # a broken lab must not lose the other figures
            v = {"label": label, "clients": n, "servers": servers, "up": 0,
                 "error": str(e)[:500]}
        print("  up %d/%d in %s s" % (v["up"], n, "%.2f" % v["seconds"]
                                      if v.get("seconds") else "-"), flush=True)
        out["variants"].append(v)
    return out
