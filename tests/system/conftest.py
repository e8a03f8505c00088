"""Fixtures for the real-peer lab (network namespaces + strongSwan).

Run: /usr/bin/python3 -m pytest -q tests/system   (as root)
IKL_KEEP_LOGS=1 keeps each lab's directory (configs, charon logs)."""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lab import Lab, ikelb_available, start_balancer  # noqa: E402
from lab.strongswan import CHARON, SWANCTL  # noqa: E402

_SUMMARIES = []


def _lab_skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in (CHARON, SWANCTL, "/usr/sbin/ip", "/usr/sbin/nft"):
        if not os.access(tool, os.X_OK):
            return "%s missing (scripts/install-deps)" % tool
    return None


def skip_or_fail(reason):
    """`make check` sets IKELB_NO_SKIP=1: there a missing prerequisite is a
    failure, so a suite that silently tested nothing cannot pass."""
    if os.environ.get("IKELB_NO_SKIP") == "1":
        pytest.fail("prerequisite missing under make check: %s" % reason)
    pytest.skip(reason)


@pytest.fixture
def require_root():
    reason = _lab_skip_reason()
    if reason:
        skip_or_fail(reason)


@pytest.fixture
def require_ikelb(require_root):
    ok, reason = ikelb_available()
    if not ok:
        skip_or_fail(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def make_lab(request, require_root):
    """make_lab(balancer='nft'|'snat'|'ikelb'|None, balancer_opts={}, **Lab
    kwargs) -> a started lab with charons running and the balancer up.
    Torn down after the test; on failure the servers' log tails are
    printed (shown in pytest's report)."""
    labs = []

    def factory(balancer="nft", balancer_opts=None, **kw):
        lab = Lab(**kw)
        labs.append(lab)
        lab.t0 = time.monotonic()
        lab.start()
        # Servers first: a balancer that health-checks them must find them
        # configured, else it rightly marks them down during the placement.
        lab.start_charons()
        if balancer:
            start_balancer(lab, balancer, **(balancer_opts or {}))
        return lab

    yield factory
    rep = getattr(request.node, "rep_call", None)
    reports = []
    for lab in labs:
        if rep is not None and rep.failed:
            _dump(lab)
        b = lab.balancer
        lab.stop()
        # A sanitizer build of ikelb reports at exit: any report fails the test.
        log = b.log() if b is not None and hasattr(b, "log") else ""
        reports += [l for l in log.splitlines() if any(m in l for m in SANITIZER_MARKS)]
    if reports:
        pytest.fail("sanitizer reports in ikelb's log:\n" + "\n".join(reports[:20]))


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:")


def _dump(lab):
    for node in lab.servers + lab.clients[:2]:
        if node.charon:
            print("==== %s log (tail) ====" % node.name)
            print("\n".join(node.charon.log().splitlines()[-40:]))
    b = lab.balancer
    if b is not None and hasattr(b, "log"):
        print("==== balancer log ====")
        print(b.log()[-4000:])
    if os.environ.get("IKL_KEEP_LOGS"):
        print("lab directory kept: %s" % lab.workdir)


@pytest.fixture
def report(request):
    """report(lab, results, extra='') records a short per-test summary that
    is printed at the end of the run."""
    def add(lab, results=None, extra=""):
        text = lab.summary(results)
        if extra:
            text += "\n" + extra
        text += "\n(%.1fs)" % (time.monotonic() - getattr(lab, "t0", time.monotonic()))
        _SUMMARIES.append((request.node.name, text))
        print(text)
    return add


def pytest_terminal_summary(terminalreporter):
    if not _SUMMARIES:
        return
    terminalreporter.section("lab summaries")
    for name, text in _SUMMARIES:
        terminalreporter.write_line("-- " + name)
        for line in text.splitlines():
            terminalreporter.write_line("   " + line)
