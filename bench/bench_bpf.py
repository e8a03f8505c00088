"""The BPF side of a running ikelb daemon, as the bench reports it: its maps
and programs read from /proc/PID/fdinfo (the daemon's own descriptors, so
other BPF users on the machine are not counted), kernel bytes per client
per persistence mode from those maps' memlock, and, with BENCH_PROFILE=1,
the programs' run counts and run time (kernel.bpf_stats_enabled) and a
`perf record` of the balancer namespace's NAPI threads."""
import json
import os
import signal
import subprocess
import time

BPFTOOL = "/usr/sbin/bpftool"
PERF = "/usr/bin/perf"
STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"

# The state tables a client of each persistence mode can hold entries in
# (src/bpf/ikelb_steer.h, learn()). How many entries it holds in each is
# measured (count_entries, after the handshake phase), not assumed: a
# NAT-T client's IKE_SA_INIT on 500 writes only the half-open table, its
# IKE_AUTH on 4500 the SA and the one flow entry (tests/system/
# test_state_per_client.py checks the same with strongSwan). halfopen_map
# holds an SA only until that IKE_AUTH, so it is shown per table, not
# charged to established clients.
MODE_TABLES = {
    "source-ip": ("persist_map", "sa_map", "flow_map"),
    "ike": ("sa_map", "flow_map"),
}
# /v1/clients "table" -> map name
API_TABLES = {"flow": "flow_map", "sa": "sa_map", "halfopen": "halfopen_map",
              "persist": "persist_map"}
STATE_MAPS = ("persist_map", "sa_map", "halfopen_map", "flow_map")


def _fdinfo(pid):
    """{fd: {field: value}} of every BPF map or program descriptor of pid."""
    out = {}
    base = "/proc/%d/fdinfo" % pid
    try:
        fds = os.listdir(base)
    except OSError:
        return out
    for fd in fds:
        try:
            with open(os.path.join(base, fd)) as f:
                fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except (OSError, ValueError):
            continue
        if "map_id" in fields or "prog_id" in fields:
            out[int(fd)] = fields
    return out


def _bpftool_json(args):
    if not os.access(BPFTOOL, os.X_OK):
        return []  # map names unknown: the memory table then stays empty
    p = subprocess.run([BPFTOOL, "-j"] + args, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return []
    try:
        return json.loads(p.stdout)
    except ValueError:
        return []


def objects(pid):
    """(maps, progs) the process holds: maps as dicts with name, type, key,
    value, max_entries, flags, memlock; progs with id, type, name."""
    infos = _fdinfo(pid)
    map_ids = {int(v["map_id"]): v for v in infos.values() if "map_id" in v}
    prog_ids = {int(v["prog_id"]): v for v in infos.values() if "prog_id" in v}
    names = {m.get("id"): m for m in _bpftool_json(["map", "show"])
             if isinstance(m, dict) and m.get("id") in map_ids}
    maps = []
    for mid, v in sorted(map_ids.items()):
        meta = names.get(mid, {})
        maps.append({"id": mid, "name": meta.get("name", "?"), "type": meta.get("type", "?"),
                     "key": int(v.get("key_size", 0)), "value": int(v.get("value_size", 0)),
                     "max_entries": int(v.get("max_entries", 0)),
                     "flags": int(v.get("map_flags", "0"), 16),
                     "memlock": int(v.get("memlock", 0))})
    progs = []
    for pid_, v in sorted(prog_ids.items()):
        meta = _bpftool_json(["prog", "show", "id", str(pid_)])
        meta = meta if isinstance(meta, dict) else {}
        progs.append({"id": pid_, "name": meta.get("name", "?"), "type": meta.get("type", "?"),
                      "xlated": meta.get("bytes_xlated"), "jited": meta.get("bytes_jited")})
    return maps, progs


def count_entries(binary, api, limit=10000, pages=100):
    """{map name: live entries} from the daemon's own listing (`ikelb
    clients`, /v1/clients: the pinned maps, idle entries left out), paged
    and bounded. None when the daemon did not answer."""
    counts = {n: 0 for n in API_TABLES.values()}
    offset = 0
    for _ in range(pages):
        p = subprocess.run([binary, "clients", "--json", "--offset", str(offset), "--limit",
                            str(limit), "-a", "unix:" + api],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            return None
        try:
            page = json.loads(p.stdout)
        except ValueError:
            return None
        for e in page["clients"]:
            t = API_TABLES.get(e.get("table"))
            if t:
                counts[t] += 1
        offset += len(page["clients"])
        if not page["clients"] or offset >= page["total"]:
            break
    return counts


def per_client(counts, clients, addresses):
    """Entries per established client: persistence is kept per client
    address (netmask /32), the other tables per client."""
    if not counts or not clients:
        return None
    return {t: n / (addresses if t == "persist_map" else clients) for t, n in counts.items()}


def memory(maps, clients, entries=None, mode=None, flows_per_client=1):
    """Kernel bytes per client per persistence mode from the daemon's maps:
    for each state table memlock / max_entries (LRU hashes are preallocated,
    so that is what each slot costs whether filled or not), times the
    entries a client was measured to hold in it (`entries`, per_client()).
    The run measures its own mode, and ike from a source-ip run (the same
    learn() writes SA and flow entries in both; ike has no persistence),
    not source-ip from an ike run (its persistence entries are not there).
    `reserved` is what the configured tables take in total, and per client
    of `clients` (the configured max_clients)."""
    by = {m["name"]: m for m in maps}
    per_entry = {n: by[n]["memlock"] / by[n]["max_entries"]
                 for n in STATE_MAPS if n in by and by[n]["max_entries"]}
    modes = {}
    for m, tabs in MODE_TABLES.items():
        if entries is None or not all(t in per_entry for t in tabs):
            continue
        if not set(tabs) <= set(MODE_TABLES.get(mode, ())):
            continue  # a table the measured mode does not write: not measured
        k = {t: round(entries.get(t, 0), 2) for t in tabs}
        modes[m] = {"bytes_per_client": sum(per_entry[t] * n for t, n in k.items()),
                    "tables": k, "measured_in": mode}
    state = sum(by[n]["memlock"] for n in STATE_MAPS if n in by)
    total = sum(m["memlock"] for m in maps)
    return {
        "tables": [{"name": n, "type": by[n]["type"], "key": by[n]["key"],
                    "value": by[n]["value"], "max_entries": by[n]["max_entries"],
                    "memlock": by[n]["memlock"], "bytes_per_entry": per_entry[n]}
                   for n in STATE_MAPS if n in per_entry],
        "modes": modes, "clients": clients, "mode": mode, "entries": entries,
        "flows_per_client": flows_per_client,
        "state_memlock": state, "other_memlock": total - state, "total_memlock": total,
    }


# ---- BENCH_PROFILE=1 ------------------------------------------------------

class Profiler:
    """Run counts and run time of the daemon's programs over a phase, and a
    system-wide perf record of it (reported for the lb NAPI threads and for
    the balancer's own processes).
    kernel.bpf_stats_enabled is switched on for the path and restored after:
    it adds two clock reads per program run, so profiled runs are not the
    reference figures."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.saved = None
        self.perf = None
        self.perf_data = None
        self.t0 = None

    @staticmethod
    def wanted():
        return os.environ.get("BENCH_PROFILE") == "1"

    def enable(self):
        try:
            with open(STATS_SYSCTL) as f:
                self.saved = f.read().strip()
            with open(STATS_SYSCTL, "w") as f:
                f.write("1")
        except OSError:
            self.saved = None

    def restore(self):
        if self.saved is not None:
            try:
                with open(STATS_SYSCTL, "w") as f:
                    f.write(self.saved)
            except OSError:
                pass
            self.saved = None

    @staticmethod
    def prog_stats(progs):
        out = {}
        for p in progs:
            j = _bpftool_json(["prog", "show", "id", str(p["id"])])
            if isinstance(j, dict):
                out[p["id"]] = (j.get("run_cnt", 0), j.get("run_time_ns", 0))
        return out

    def start(self, progs, tag):
        self.t0 = (self.prog_stats(progs), time.monotonic())
        if os.access(PERF, os.X_OK):
            self.perf_data = os.path.join(self.workdir, "perf-%s.data" % tag)
            self.perf = subprocess.Popen([PERF, "record", "-a", "-g", "-F", "10000", "-q", "-o",
                                          self.perf_data], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)

    def stop(self, progs, napi_comms, pids=None):
        s1 = self.prog_stats(progs)
        s0, _ = self.t0
        res = {"progs": []}
        for p in progs:
            if p["id"] in s0 and p["id"] in s1:
                cnt = s1[p["id"]][0] - s0[p["id"]][0]
                ns = s1[p["id"]][1] - s0[p["id"]][1]
                res["progs"].append({"name": p["name"], "type": p["type"], "runs": cnt,
                                     "ns_per_run": ns / cnt if cnt else None})
        if self.perf:
            self.perf.send_signal(signal.SIGINT)
            try:
                self.perf.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.perf.kill()
                self.perf.wait()
            res["perf_top"] = perf_top(self.perf_data, napi_comms)
            # The balancer's own processes (the socket engine, nginx): where
            # their CPU per packet goes, kernel side included.
            res["perf_top_procs"] = perf_top(self.perf_data, None, pids)
            self.perf = None
        return res


def perf_top(data, comms, pids=None, n=25):
    """The hottest symbols in the given threads (by name) or processes (by
    PID) (self time, % of theirs), with the share of BPF programs
    (bpf_prog_*) among them."""
    if not (comms or pids) or not data or not os.path.exists(data):
        return None
    only = ["--comms", ",".join(comms)] if comms else \
        ["--pid", ",".join(str(x) for x in pids)]
    p = subprocess.run([PERF, "report", "-i", data, "--no-children"] + only +
                       ["--sort", "sym", "--stdio", "-g", "none",
                        "--percentage", "relative"], capture_output=True, text=True,
                       timeout=120)
    rows = []
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith("%") and not line.startswith("#"):
            try:
                rows.append((float(parts[0][:-1]), " ".join(parts[2:])))
            except ValueError:
                continue
    bpf = sum(pct for pct, sym in rows if sym.startswith("bpf_prog_"))
    return {"bpf_prog_pct": bpf, "top": rows[:n]}
