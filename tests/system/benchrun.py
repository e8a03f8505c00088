"""bench/run from a test: prerequisites, one run with the given settings,
its JSON result (tests/system/test_bench_smoke.py, test_socket_gso.py)."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("IKELB_BUILD") or os.path.join(REPO, "build")


def skip_reason(tools=()):
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for b in ("bench/ikegen", "bench/ikesink", "bench/ikescale", "ikelb"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            return "%s/%s not built (make)" % (BUILD, b)
    for t in tools:
        if not os.access(t, os.X_OK):
            return "%s missing" % t
    return None


def run(settings, name, timeout, tools=()):
    """bench/run with BENCH_QUICK=1 and `settings` (BENCH_* strings);
    skipped (failed under IKELB_NO_SKIP=1) without its prerequisites."""
    reason = skip_reason(tools)
    if reason:
        if os.environ.get("IKELB_NO_SKIP") == "1":
            pytest.fail("prerequisite missing under make check: %s" % reason)
        pytest.skip(reason)
    out = tempfile.mkdtemp(prefix="ikb-%s-" % name)
    env = dict(os.environ, IKELB_BUILD=BUILD, BENCH_QUICK="1", BENCH_HANDSHAKE="0",
               BENCH_OUT=out, BENCH_NAME=name)
    env.pop("BENCH_PATHS", None)
    env.update(settings)
    try:
        p = subprocess.run(["sh", os.path.join(REPO, "bench", "run")], env=env,
                           capture_output=True, text=True, timeout=timeout)
        path = os.path.join(out, name + ".json")
        assert os.path.exists(path), "no result file; exit %d\n%s\n%s" % (
            p.returncode, p.stdout[-3000:], p.stderr[-3000:])
        with open(path) as f:
            res = json.load(f)
        res["_exit"], res["_stdout"] = p.returncode, p.stdout
        return res
    finally:
        shutil.rmtree(out, ignore_errors=True)
