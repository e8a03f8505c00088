"""The summary bench/run prints first: the ratios issue #18 sets goals for
(kernel path vs plain forwarding, socket engine vs nginx, kernel bytes per
client per persistence mode), the bpf engine's maps as measured from the
daemon, and the BENCH_PROFILE=1 profile."""

# (label, numerator path, denominator path, mode, key, goal, "le"|"ge")
RATIOS = [
    ("ikelb-bpf CPU/pkt / plain", "ikelb-bpf", "plain", "fixed", "cpu_us_per_pkt", 0.95, "le"),
    ("ikelb-bpf saturation / plain", "ikelb-bpf", "plain", "saturation", "rx_pps", 1.0, "ge"),
    ("ikelb-xdp CPU/pkt / plain", "ikelb-xdp", "plain", "fixed", "cpu_us_per_pkt", 0.95, "le"),
    ("ikelb-xdp saturation / plain", "ikelb-xdp", "plain", "saturation", "rx_pps", 1.0, "ge"),
    ("ikelb-socket CPU/pkt / nginx", "ikelb-socket", "nginx", "fixed", "cpu_us_per_pkt", 0.5,
     "le"),
    ("ikelb-socket-swgso CPU/pkt / nginx", "ikelb-socket-swgso", "nginx", "fixed",
     "cpu_us_per_pkt", 0.5, "le"),
    ("ikelb-socket CPU/pkt / plain", "ikelb-socket", "plain", "fixed", "cpu_us_per_pkt", None,
     None),
    ("nft-dnat CPU/pkt / plain", "nft-dnat", "plain", "fixed", "cpu_us_per_pkt", None, None),
]
MEMORY_GOAL = 200  # kernel bytes per client


def _cell(res, name, size, mode):
    for p in res["paths"]:
        if p["name"] == name and p["status"] == "ok":
            return p["results"].get(str(size), {}).get(mode)
    return None


def _ratio_range(num, den, key):
    """Ratio of the medians, and the widest range the runs allow (lowest
    numerator over highest denominator to the reverse): the paths run one
    after the other, so their runs do not share the machine's noise."""
    a, b = num.get(key), den.get(key)
    if a is None or not b:
        return None, None
    xs = [r[key] for r in num.get("runs", []) if r.get(key) is not None]
    ys = [r[key] for r in den.get("runs", []) if r.get(key)]
    if len(xs) < 2 or len(ys) < 2:
        return a / b, None
    return a / b, (min(xs) / max(ys), max(xs) / min(ys))


def _verdict(v, goal, how):
    if goal is None or v is None:
        return ""
    ok = v <= goal if how == "le" else v >= goal
    return "%s %s %.2f: %s" % ("<=" if how == "le" else ">=", "goal", goal,
                               "met" if ok else "NOT met")


def ratios(res):
    sizes = res["meta"]["settings"]["sizes"]
    out = ["| ratio | payload | median | range over runs | goal |", "|---|---:|---:|---:|---|"]
    for label, num, den, mode, key, goal, how in RATIOS:
        for size in sizes:
            a, b = _cell(res, num, size, mode), _cell(res, den, size, mode)
            if not a or not b:
                continue
            v, rng = _ratio_range(a, b, key)
            if v is None:
                continue
            out.append("| %s | %d B | %.2f | %s | %s |" % (
                label, size, v, "%.2f-%.2f" % rng if rng else "-", _verdict(v, goal, how)))
    return "\n".join(out)


def _tables(m):
    return " + ".join("%s x %s" % (("%.2f" % k).rstrip("0").rstrip("."), t)
                      for t, k in m["tables"].items())


def memory(res):
    """Per persistence mode, from the first bpf path's maps and the state
    entries counted in them after the handshake phase."""
    mem = next((p.get("memory") for p in res["paths"] if p.get("memory")), None)
    if not mem or not mem.get("modes"):
        return "Kernel memory per client: not measured (no bpf engine path ran, or its " \
               "state entries could not be counted)."
    out = ["| persistence mode | tables a client uses x entries measured per client | kernel "
           "bytes per client | MiB per million | goal |", "|---|---|---:|---:|---|"]
    for mode, m in sorted(mem["modes"].items()):
        b = m["bytes_per_client"]
        out.append("| %s | %s | %.0f | %.0f | %s |" % (
            mode, _tables(m), b, b * 1e6 / 2**20,
            "<= %d: %s" % (MEMORY_GOAL, "met" if b <= MEMORY_GOAL else "NOT met")))
    out += ["", "| table (daemon's map) | type | key+value | max_entries | memlock MiB "
            "| bytes/entry | entries per client |", "|---|---|---:|---:|---:|---:|---:|"]
    ent = mem.get("entries") or {}
    for t in mem["tables"]:
        out.append("| %s | %s | %d | %d | %.1f | %.1f | %s |" % (
            t["name"], t["type"], t["key"] + t["value"], t["max_entries"],
            t["memlock"] / 2**20, t["bytes_per_entry"],
            "%.2f" % ent[t["name"]] if t["name"] in ent else "-"))
    clients = mem["clients"]
    out += ["", "Entries per client counted in the daemon's maps (`ikelb clients`) after the "
            "handshake phase of a %s service (persistence per client address; ike's SA and "
            "flow entries are written by the same learn() as source-ip's); bytes from their "
            "memlock (/proc/PID/fdinfo; LRU hashes are preallocated, so each slot costs this "
            "whether filled or not), configured for %d clients (max_clients %d, max_flows "
            "%d): state tables %.0f MiB, other maps %.1f MiB, all maps %.0f bytes per "
            "client." % (mem.get("mode") or "?", clients, clients,
                         mem.get("flows_per_client", 1) * clients,
                         mem["state_memlock"] / 2**20, mem["other_memlock"] / 2**20,
                         mem["total_memlock"] / clients)]
    flows = ent.get("flow_map")
    if flows is not None and flows > mem.get("flows_per_client", 1):
        out.append("WARNING: %.2f flow entries per client measured, max_flows sized for %d: "
                   "raise BENCH_FLOWS_PER_CLIENT." % (flows, mem.get("flows_per_client", 1)))
    return "\n".join(out)


def profile(res):
    out = []
    for p in res["paths"]:
        for size, r in sorted(p.get("results", {}).items()):
            runs = [x.get("profile") for x in r.get("fixed", {}).get("runs", [])
                    if x.get("profile")]
            if not runs:
                continue
            prof = runs[-1]
            for pr in prof["progs"]:
                if pr["runs"]:
                    out.append("- %s %s B: %s `%s` ran %d times, %.0f ns per run "
                               "(kernel.bpf_stats_enabled)" % (
                                   p["name"], size, pr["type"], pr["name"], pr["runs"],
                                   pr["ns_per_run"]))
            top = prof.get("perf_top")
            if top:
                out.append("- %s %s B: perf, lb NAPI threads: BPF programs %.1f %% of samples; "
                           "top: %s" % (p["name"], size, top["bpf_prog_pct"], ", ".join(
                               "%s %.1f%%" % (sym, pct) for pct, sym in top["top"][:12])))
            top = prof.get("perf_top_procs")
            if top and top["top"]:
                out.append("- %s %s B: perf, balancer processes: top: %s" % (
                    p["name"], size, ", ".join("%s %.1f%%" % (sym, pct)
                                               for pct, sym in top["top"][:12])))
    if not out:
        return ""
    return "Profile (BENCH_PROFILE=1; bpf_stats and perf add overhead: not reference " \
           "figures):\n\n" + "\n".join(out)


def section(res):
    parts = ["## Summary: issue #18 ratios", "", ratios(res), "", memory(res)]
    pr = profile(res)
    if pr:
        parts += ["", pr]
    return "\n".join(parts)
