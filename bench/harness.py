"""bench/run: ikelb against what a user would pick instead, in one run.

For every path (bench_paths.PATHS) and payload size: the generator
(ikegen) offers a fixed rate and then saturates; three sinks (ikesink) count
per client. Reported per path: received pps at saturation, CPU us per packet
in the balancer namespace at the fixed rate, loss, port-following
violations, and ratios to plain forwarding and to nginx. Then the scale
figures (ikescale) and, unless BENCH_HANDSHAKE=0, the IKE handshake rate
through ikelb vs straight to a server (bench_handshake).

Settings (environment): BENCH_QUICK=1 (about a minute), BENCH_RUNS (3),
BENCH_RATE (50000 pps), BENCH_SIZES (128,1400), BENCH_SECONDS (3, fixed-rate
phase), BENCH_SAT_SECONDS (2), BENCH_CLIENTS (512), BENCH_SOURCES (256),
BENCH_PATHS (all: plain,nft-dnat,nginx,ikelb-bpf,ikelb-xdp,
ikelb-socket,ikelb-socket-swgso), BENCH_SCALE=0, BENCH_PROFILE=1,
BENCH_MAX_CLIENTS (1048576: the bpf engine's table sizes),
BENCH_PERSISTENCE (source-ip; ike measures an ike-only configuration),
BENCH_FLOWS_PER_CLIENT (1: max_flows = max_clients x this),
BENCH_HANDSHAKE=0, BENCH_OUT (bench/results), BENCH_KEEP=1 (keep the work
directory), BENCH_MAX_SECONDS (540: later measurements are skipped),
BENCH_NGINX_CONSISTENT=1 (nginx with `hash $remote_addr consistent`),
BENCH_SOCK_WORKERS / BENCH_SOCK_COALESCE (socket.workers, socket.coalesce_usecs
of the ikelb-socket paths)."""
import argparse
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_bpf  # noqa: E402
import bench_net as BN  # noqa: E402
import bench_paths as BP  # noqa: E402
import bench_report  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def settings():
    quick = os.environ.get("BENCH_QUICK", "0") == "1"
    s = {
        "quick": quick,
        "runs": env_int("BENCH_RUNS", 1 if quick else 3),
        "rate": env_int("BENCH_RATE", 50000),
        "sizes": [int(x) for x in os.environ.get("BENCH_SIZES", "128,1400").split(",") if x],
        "seconds": float(os.environ.get("BENCH_SECONDS", "1" if quick else "3")),
        "sat_seconds": float(os.environ.get("BENCH_SAT_SECONDS", "1" if quick else "2")),
        "clients": env_int("BENCH_CLIENTS", 512),
        "sources": env_int("BENCH_SOURCES", 256),
        "sinks": env_int("BENCH_SINKS", 3),
        "paths": [p for p in os.environ.get("BENCH_PATHS", "").split(",") if p],
        "scale": os.environ.get("BENCH_SCALE", "1") == "1",
        "handshake": os.environ.get("BENCH_HANDSHAKE", "0" if quick else "1") == "1",
        "max_seconds": env_int("BENCH_MAX_SECONDS", 540),
    }
    return s


class LineReader:
    """Lines from a pipe with a deadline (select + os.read, no buffering
    surprises)."""

    def __init__(self, f):
        self.fd, self.buf = f.fileno(), b""

    def readline(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line.decode(errors="replace")
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")


class Bench:
    def __init__(self, build, out, s):
        self.build, self.out, self.s = build, out, s
        self.bins = {b: os.path.join(build, "bench", b) for b in ("ikegen", "ikesink", "ikescale")}
        self.t0 = time.monotonic()
        self.workdir = tempfile.mkdtemp(prefix="ikb-bench-")
        self.topo = None
        self.run_no = 0
        self.prof = bench_bpf.Profiler(self.workdir) if bench_bpf.Profiler.wanted() else None

    def over_budget(self):
        return time.monotonic() - self.t0 > self.s["max_seconds"]

    # ---- one measurement --------------------------------------------------
    def start_sinks(self, tag):
        sinks = []
        for ns, name, addr in self.topo.sinks:
            out = os.path.join(self.workdir, "sink-%s-%d.json" % (name, tag))
            p = self.topo.popen(ns, [self.bins["ikesink"], "--bind", addr, "--out", out,
                                     "--name", name, "--duration", "300",
                                     "--max-clients", str(max(self.s["clients"], 16)),
                                     "--answer"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
            line = LineReader(p.stdout).readline(time.monotonic() + 10)
            if line != "READY":
                err = p.stderr.read().decode(errors="replace") if p.poll() is not None else ""
                raise BN.BenchError("sink %s did not start: %s %s" % (name, line, err))
            sinks.append((name, ns, p, out))
        return sinks

    def stop_sinks(self, sinks):
        res = []
        for name, ns, p, out in sinks:
            self.topo.stop(p)
            try:
                with open(out) as f:
                    res.append(json.load(f))
            except (OSError, ValueError) as e:
                raise BN.BenchError("sink %s wrote no summary: %s" % (name, e))
            finally:
                for fh in (p.stdout, p.stderr):
                    if fh:
                        fh.close()
        return res

    def lb_napi_comms(self):
        comms = set()
        for pid in self.topo.lb_napi_pids():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    comms.add(f.read().strip())
            except OSError:
                pass
        return sorted(comms)

    def measure(self, path, size, rate, seconds):
        self.run_no += 1
        tag = self.run_no
        pids = path.pids()
        drops0 = {ns: self.topo.snmp_rcvbuf_errors(ns) for ns, _, _ in self.topo.sinks}
        sinks = self.start_sinks(tag)
        count = int(rate * seconds) if rate else 50_000_000
        cmd = [self.bins["ikegen"], "--dst", ",".join(path.dsts()), "--src-base", BN.CLIENT_BASE,
               "--src-count", str(self.s["sources"]), "--clients", str(self.s["clients"]),
               "--size", str(size), "--rate", str(rate), "--count", str(count),
               "--duration", str(seconds), "--tag", str(0x1b000000 + tag)]
        gen = self.topo.popen(self.topo.gen, cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        rd = LineReader(gen.stdout)
        deadline = time.monotonic() + seconds + 30
        c0 = c1 = summary = prof = None
        w0 = w1 = 0.0
        profiling = bool(self.prof and rate)
        progs = getattr(path, "bpf_progs", None) or []
        try:
            while True:
                line = rd.readline(deadline)
                if line is None:
                    break
                if line == "ESP-START":
                    c0, w0 = self.topo.cpu_snapshot(pids), time.monotonic()
                    if profiling:
                        self.prof.start(progs, "%s-%d" % (path.name, tag))
                elif line == "ESP-END":
                    c1, w1 = self.topo.cpu_snapshot(pids), time.monotonic()
                    if profiling:
                        prof = self.prof.stop(progs, self.lb_napi_comms(), path.pids())
                elif line.startswith("{"):
                    summary = json.loads(line)
                    break
        finally:
            if gen.poll() is None:
                try:
                    gen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            err = gen.stderr.read().decode(errors="replace") if gen.poll() is not None else ""
            self.topo.stop(gen)
            gen.stdout.close()
            gen.stderr.close()
            time.sleep(0.3)  # queued packets reach the sinks
            sink_res = self.stop_sinks(sinks)
        if not summary or c0 is None or c1 is None:
            raise BN.BenchError("generator failed: %s" % err.strip()[:500])
        drops = sum(self.topo.snmp_rcvbuf_errors(ns) - drops0[ns] for ns in drops0)
        res = self.evaluate(summary, sink_res, c0, c1, w1 - w0, drops)
        if prof:
            res["profile"] = prof
        return res

    def evaluate(self, gen, sinks, c0, c1, wall, sink_drops):
        esp = sum(s["esp"] for s in sinks)
        first = min((s["first_esp_ns"] for s in sinks if s["first_esp_ns"]), default=0)
        last = max((s["last_esp_ns"] for s in sinks), default=0)
        window = (last - first) / 1e9 if last > first else 0.0
        where = {}
        for s in sinks:
            for cid in s["clients"]:
                where.setdefault(cid, set()).add(s["name"])
        violations = sum(1 for v in where.values() if len(v) > 1)
        cpu = {k: c1[k] - c0[k] for k in c0}
        total = sum(cpu.values())
        return {
            "esp_sent": gen["esp_sent"], "esp_received": esp,
            "gen_pps": gen["esp_pps"], "gen_send_errors": gen["send_errors"],
            "rx_pps": esp / window if window > 0 else 0.0,
            "loss": 1 - esp / gen["esp_sent"] if gen["esp_sent"] else 1.0,
            "handshake_sent": gen["hs_sent"], "handshake_answered": gen.get("hs_answered"),
            "handshake_received": sum(s["ike500"] + s["ike4500"] for s in sinks),
            "clients_seen": len(where), "violations": violations,
            "per_sink_esp": {s["name"]: s["esp"] for s in sinks},
            "bad": sum(s["bad"] + s["unknown_client"] for s in sinks),
            "sink_rcvbuf_drops": sink_drops,
            "cpu_ns": cpu, "cpu_wall_s": wall,
            "lb_cpu_util": total / 1e9 / wall if wall > 0 else 0.0,
            "cpu_us_per_pkt": total / 1e3 / esp if esp else None,
        }

    # ---- a path -----------------------------------------------------------
    def run_path(self, cls):
        path = cls(self.topo, self.workdir, self.build)
        entry = {"name": path.name, "label": path.label, "status": "ok", "results": {}}
        try:
            path.setup()
        except BP.Skip as e:
            entry.update(status="skipped", reason=str(e))
            path.teardown()
            return entry
        except BN.BenchError as e:
            entry.update(status="failed", reason=str(e)[:1000])
            path.teardown()
            return entry
        try:
            self.bpf_objects(path, entry)
            for size in self.s["sizes"]:
                per = {}
                for mode, rate, secs in (("fixed", self.s["rate"], self.s["seconds"]),
                                         ("saturation", 0, self.s["sat_seconds"])):
                    runs = []
                    for _ in range(self.s["runs"]):
                        if self.over_budget():
                            entry.setdefault("notes", []).append("time budget reached")
                            break
                        runs.append(self.measure(path, size, rate, secs))
                        self.bpf_memory(path, entry)
                        r = runs[-1]
                        print("  %-13s %5dB %-10s rx %8.0f pps  loss %5.1f%%  lb cpu %s us/pkt"
                              "  viol %d" % (path.name, size, mode, r["rx_pps"],
                                             100 * r["loss"],
                                             "%.2f" % r["cpu_us_per_pkt"]
                                             if r["cpu_us_per_pkt"] else "-",
                                             r["violations"]), flush=True)
                    per[mode] = summarize(runs)
                entry["results"][str(size)] = per
            if isinstance(path, BP.Ikelb):
                try:
                    st = json.loads(path.stats())
                    entry["ikelb_counters"] = {k: v["packets"] for k, v in
                                               st["services"][0]["counters"].items()}
                except (ValueError, KeyError, IndexError, TypeError):
                    entry["ikelb_counters"] = None
        except BN.BenchError as e:
            entry.update(status="failed", reason=str(e)[:1000])
        finally:
            if self.prof:
                self.prof.restore()
            path.teardown()
        return entry

    def bpf_objects(self, path, entry):
        """The bpf engine's maps and programs, read from the daemon's
        descriptors: kernel memory per client per persistence mode."""
        if not isinstance(path, BP.Ikelb) or path.engine != "bpf":
            return
        maps, progs = bench_bpf.objects(path.proc.pid)
        path.bpf_progs = progs
        entry["bpf_maps"], entry["bpf_progs"] = maps, progs
        if self.prof:
            self.prof.enable()

    def bpf_memory(self, path, entry):
        """Once, after the first measurement's handshake phase: the state
        entries each established client holds, counted in the daemon's
        maps, and the kernel bytes per client they cost."""
        if "bpf_maps" not in entry or "memory" in entry:
            return
        counts = bench_bpf.count_entries(path.binary(), path.api)
        entry["state_entries"] = counts
        entry["memory"] = bench_bpf.memory(
            entry["bpf_maps"], path.max_clients,
            bench_bpf.per_client(counts, self.s["clients"],
                                 min(self.s["sources"], self.s["clients"])),
            path.persistence, path.flows_per_client)

    # ---- the whole run ----------------------------------------------------
    def run(self):
        res = {"meta": self.meta(), "paths": []}
        self.topo = BN.Topology(nsinks=self.s["sinks"])
        try:
            self.topo.build()
            res["meta"]["threaded_napi"] = self.topo.threaded_ok
            res["meta"]["notes"] = list(self.topo.notes)
            res["meta"]["prefix"] = self.topo.prefix
            wanted = self.s["paths"] or [c.name for c in BP.PATHS]
            for cls in BP.PATHS:
                if cls.name not in wanted:
                    continue
                print("path %s" % cls.name, flush=True)
                res["paths"].append(self.run_path(cls))
        finally:
            self.topo.teardown()
        if self.s["scale"]:
            res["scale"] = self.scale()
        if self.s["handshake"]:
            import bench_handshake
            res["handshake"] = bench_handshake.run(self.build, quick=self.s["quick"])
        res["meta"]["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        res["meta"]["loadavg_end"] = os.getloadavg()
        return res

    def scale(self):
        n = "100000" if self.s["quick"] else "1000000"
        p = subprocess.run([self.bins["ikescale"], "--clients", n, "--bpf-entries", n],
                           capture_output=True, text=True, timeout=300)
        try:
            out = json.loads(p.stdout)
        except ValueError:
            return {"error": (p.stdout + p.stderr)[-1000:]}
        out["exit"] = p.returncode
        return out

    def meta(self):
        git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                             capture_output=True, text=True)
        return {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "kernel": platform.release(), "cpus": os.cpu_count(),
            "git": git.stdout.strip(), "nginx": BP.nginx_version(),
            "command": "make bench" + (" (BENCH_QUICK=1)" if self.s["quick"] else ""),
            "settings": self.s, "loadavg_start": os.getloadavg(),
        }

    def cleanup(self):
        if self.topo:
            self.topo.teardown()
        if os.environ.get("BENCH_KEEP") == "1":
            print("work directory kept: %s" % self.workdir)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def summarize(runs):
    def med(key):
        vals = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    def spread(key):
        vals = [r[key] for r in runs if r.get(key) is not None]
        return [min(vals), max(vals)] if vals else None
    return {
        "runs": runs, "n": len(runs),
        "rx_pps": med("rx_pps"), "loss": med("loss"), "gen_pps": med("gen_pps"),
        "cpu_us_per_pkt": med("cpu_us_per_pkt"), "lb_cpu_util": med("lb_cpu_util"),
        "rx_pps_range": spread("rx_pps"), "cpu_us_per_pkt_range": spread("cpu_us_per_pkt"),
        "violations": max((r["violations"] for r in runs), default=None),
        "min_received": min((r["esp_received"] for r in runs), default=0),
        "clients_seen": min((r["clients_seen"] for r in runs), default=0),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--out", default=os.environ.get("BENCH_OUT", os.path.join(REPO, "bench",
                                                                               "results")))
    ap.add_argument("--name", default=os.environ.get("BENCH_NAME", "latest"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (network namespaces, BPF)")

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    b = Bench(os.path.abspath(a.build), a.out, settings())
    try:
        res = b.run()
    except KeyboardInterrupt:
        print("bench: interrupted; cleaning up", file=sys.stderr)
        b.cleanup()
        sys.exit(130)
    finally:
        b.cleanup()
    os.makedirs(a.out, exist_ok=True)
    jpath = os.path.join(a.out, a.name + ".json")
    mpath = os.path.join(a.out, a.name + ".md")
    with open(jpath, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    md = bench_report.markdown(res)
    with open(mpath, "w") as f:
        f.write(md)
    print(md)
    print("written: %s %s" % (mpath, jpath))
    bad = [p["name"] for p in res["paths"] if p["status"] == "failed"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
