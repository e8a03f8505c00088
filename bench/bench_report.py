"""Markdown for bench/results/*.md from the harness's result dict."""
import bench_summary


def _ratio(a, b):
    if a is None or b in (None, 0):
        return "-"
    return "%.2f" % (a / b)


def _f(v, fmt):
    return fmt % v if v is not None else "-"


def _pct(v):
    return "%.1f%%" % (100 * v) if v is not None else "-"


def _cpu_cell(fix):
    cpu, rng = fix.get("cpu_us_per_pkt"), fix.get("cpu_us_per_pkt_range")
    if cpu is None:
        return "-"
    if rng and fix.get("n", 1) > 1:
        return "%.2f (%.2f-%.2f)" % (cpu, rng[0], rng[1])
    return "%.2f" % cpu


def _get(res, name, size, mode, key):
    for p in res["paths"]:
        if p["name"] == name and p["status"] == "ok":
            return p["results"].get(str(size), {}).get(mode, {}).get(key)
    return None


def forwarding_table(res):
    s = res["meta"]["settings"]
    rate_k = s["rate"] / 1000
    lines = [
        "| path | payload | rx kpps at saturation | x plain | x nginx | loss at sat. "
        "| CPU us/pkt at %g kpps (range) | x plain | x nginx | loss at %g kpps | lb CPU at %g kpps "
        "| port-following violations |" % (rate_k, rate_k, rate_k),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in s["sizes"]:
        for p in res["paths"]:
            if p["status"] != "ok":
                continue
            r = p["results"].get(str(size))
            if not r:
                continue
            sat, fix = r.get("saturation", {}), r.get("fixed", {})
            pps, cpu = sat.get("rx_pps"), fix.get("cpu_us_per_pkt")
            viol = max(v for v in (sat.get("violations"), fix.get("violations"), 0)
                       if v is not None)
            lines.append("| %s | %d B | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                p["name"], size, _f(pps / 1000 if pps else None, "%.1f"),
                _ratio(pps, _get(res, "plain", size, "saturation", "rx_pps")),
                _ratio(pps, _get(res, "nginx", size, "saturation", "rx_pps")),
                _pct(sat.get("loss")), _cpu_cell(fix),
                _ratio(cpu, _get(res, "plain", size, "fixed", "cpu_us_per_pkt")),
                _ratio(cpu, _get(res, "nginx", size, "fixed", "cpu_us_per_pkt")),
                _pct(fix.get("loss")), _pct(fix.get("lb_cpu_util")), viol))
    return "\n".join(lines)


def cpu_split(res):
    """Where the balancer namespace's CPU went at the fixed rate (128 B)."""
    s = res["meta"]["settings"]
    size = str(s["sizes"][0])
    lines = ["| path | NAPI threads of lb's veths | ksoftirqd | balancer processes |",
             "|---|---:|---:|---:|"]
    for p in res["paths"]:
        fix = p.get("results", {}).get(size, {}).get("fixed")
        if p["status"] != "ok" or not fix or not fix["runs"]:
            continue
        n = sum(r["esp_received"] for r in fix["runs"]) or 1
        tot = {k: sum(r["cpu_ns"][k] for r in fix["runs"]) for k in ("napi", "ksoftirqd",
                                                                       "process")}
        lines.append("| %s | %.2f | %.2f | %.2f |" % (
            p["name"], tot["napi"] / 1e3 / n, tot["ksoftirqd"] / 1e3 / n,
            tot["process"] / 1e3 / n))
    return "%s B payload, us per packet, all runs pooled:\n\n%s" % (size, "\n".join(lines))


def scale_section(sc):
    if not sc or "state_bytes" not in sc:
        return "Scale figures: not measured%s." % (
            " (%s)" % sc.get("error", "")[:200] if sc else "")
    st = sc["state_bytes"]
    out = ["| state | key+value | kernel bytes/entry (memlock, %d entries) | entries per client |"
           % st["bpf_entries"], "|---|---:|---:|---:|"]
    for m in st["maps"]:
        out.append("| BPF %s (LRU hash) | %d | %.1f | %d |" % (
            m["name"], m["key"] + m["value"], m["kernel_bytes_per_entry"], m["per_client"]))
    for u in st["user_tables"]:
        out.append("| user-space LRU table `%s` | key %d | %.1f (lru_bytes_per_entry) "
                   "| %d |" % (u["name"], u["key"], u["bytes_per_entry"], u["per_client"]))
    filled = [m for m in st["maps"] if m.get("filled")]
    if filled:
        out.append("")
        out.append("Filled to capacity (%d distinct entries written into each map, then "
                   "counted): %s; memlock after the fill unchanged (preallocated)." % (
                       filled[0]["filled"], ", ".join(
                           "%s kept %d (%.2f s, %.1f MiB)" % (
                               m["name"], m["kept"], m["fill_seconds"],
                               m["memlock_mib_full"]) for m in filled)))
    out.append("")
    out.append("Per tracked client (%s; user space %s): BPF key+value "
               "%d bytes, kernel %.0f bytes (%.0f MiB per million clients); user-space tables "
               "%.0f bytes (%.0f MiB per million)." % (
                   " + ".join("%d %s" % (m["per_client"], m["name"]) for m in st["maps"]),
                   " + ".join("%d %s" % (u["per_client"], u["name"]) for u in st["user_tables"]),
                   st["bpf_key_value_per_client"], st["bpf_kernel_per_client"],
                   st["bpf_kernel_per_client"] * 1e6 / 2**20, st["user_per_client"],
                   st["user_per_client"] * 1e6 / 2**20))
    pl = sc.get("place")
    if pl:
        out.append("")
        out.append("Placing %d synthetic clients through %s: IKE_SA_INIT %.2f s (%.0f/s), then "
                   "their IKE_AUTH (found by SA) %.2f s (%.0f/s); per server %s; not placed %d." % (
                       pl["clients"], pl["path"], pl["sa_init_seconds"], pl["sa_init_per_s"],
                       pl["auth_seconds"], pl["auth_per_s"], pl["per_server"],
                       pl["not_placed"]))
    mg = sc.get("maglev")
    if mg:
        out.append("")
        out.append("| Maglev rebuild | table size | median ms |")
        out.append("|---|---:|---:|")
        for m in mg:
            out.append("| %d servers | %d | %.2f |" % (m["servers"], m["table_size"],
                                                       m["median_ms"]))
    return "\n".join(out)


def handshake_section(hs):
    if not hs:
        return "IKE handshake rate: not measured (BENCH_HANDSHAKE=0)."
    if hs.get("error"):
        return "IKE handshake rate: not measured: %s" % hs["error"][:300]
    out = ["| IKE handshakes (strongSwan, %d clients in parallel) | up | seconds to all "
           "established | handshakes/s |" % hs["clients"], "|---|---:|---:|---:|"]
    for v in hs["variants"]:
        out.append("| %s | %d/%d | %s | %s |" % (
            v["label"], v["up"], v["clients"], _f(v.get("seconds"), "%.2f"),
            _f(v.get("per_s"), "%.1f")))
    return "\n".join(out)


def markdown(res):
    m, s = res["meta"], res["meta"]["settings"]
    out = ["# ikelb benchmark: %s" % m["date"], "",
           "`%s` on Linux %s, %d CPUs, git %s, nginx %s. %d clients on %d source addresses, "
           "%d sinks; fixed rate %d pps; median of %d run(s) per cell; fixed phase %gs, "
           "saturation phase %gs; threaded NAPI on every veth: %s." % (
               m["command"], m["kernel"], m["cpus"], m["git"], m.get("nginx") or "-",
               s["clients"], s["sources"], s["sinks"], s["rate"], s["runs"], s["seconds"],
               s["sat_seconds"], "yes" if m.get("threaded_napi") else "NO"), "",
           "Load average (1/5/15 min) at start %s, at end %s: other work on the machine "
           "shares its CPUs with the benchmark." % (
               "/".join("%.1f" % x for x in m.get("loadavg_start", [])),
               "/".join("%.1f" % x for x in m.get("loadavg_end", []))), "",
           bench_summary.section(res), "", "## Forwarding", "",
           forwarding_table(res), "",
           "CPU = run time of the lb namespace's veth NAPI threads + ksoftirqd + the balancer's "
           "processes (nginx master and workers, the ikelb daemon), over the timed ESP phase, "
           "divided by ESP packets delivered to the sinks. Ratios > 1 in `x plain`/`x nginx` "
           "mean more pps (saturation) or more CPU per packet (fixed rate).", "",
           cpu_split(res), ""]
    for p in res["paths"]:
        if p["status"] != "ok":
            out.append("- %s: %s: %s" % (p["name"], p["status"].upper(), p.get("reason", "")))
    for n in m.get("notes", []):
        out.append("- note: %s" % n)
    out += ["", "## Scale", "", scale_section(res.get("scale")), "",
            handshake_section(res.get("handshake")), "",
            "Elapsed: %ss." % m.get("elapsed_s"), ""]
    return "\n".join(out)
