"""The dashboard at / in headless Chromium (Debian chromium): a
socket-engine daemon on loopback with five fake IKE clients (four behind
one address); the page must load without console errors, show every
server with the SA count the API reports, and answer a lookup. Saves the
screenshot docs/dashboard.png (IKELB_SCREENSHOT=path to put it elsewhere).
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import skip_or_fail
from loopback import Client, Daemon, settle

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def chromium():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    skip_or_fail("chromium missing (Debian chromium; scripts/install-deps)")


def browse(url, *extra):
    """Run headless Chromium on url; -> (stdout, stderr). Virtual time lets
    the page's fetches and its 2 s poll run before the DOM is taken."""
    prof = tempfile.mkdtemp(prefix="ikelb-chromium-")
    try:
        r = subprocess.run([chromium(), "--headless", "--disable-gpu", "--no-sandbox",
                            "--no-first-run", "--user-data-dir=" + prof,
                            "--enable-logging=stderr", "--v=0",
                            "--virtual-time-budget=5000", *extra, url],
                           capture_output=True, text=True, timeout=120)
        return r.stdout, r.stderr
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def console_errors(stderr):
    return [l for l in stderr.splitlines()
            if "Uncaught" in l or ("CONSOLE" in l and ("ERROR" in l or "rror" in l))]


@pytest.fixture(scope="module")
def lab():
    d = Daemon(mode="source-ip", tcp=True)
    clients = [Client("127.0.0.1", 0x7000 + i) for i in range(4)] + [Client("127.0.0.2", 0x7100)]
    for c in clients:
        c.connect(d)
    settle(d, len(clients))
    yield d, clients
    for c in clients:
        c.close()
    d.stop()


def test_dashboard_shows_servers_and_sas(lab):
    d, clients = lab
    url = "http://%s/" % d.api
    dom, err = browse(url, "--dump-dom")
    assert not console_errors(err), console_errors(err)
    status = d.get_json("/v1/status")
    for s in status["services"][0]["servers"]:
        row = re.search(r'<tr data-server="%s">(.*?)</tr>' % s["name"], dom, re.S)
        assert row, (s["name"], dom[:2000])
        sas = re.search(r'data-sas="(\d+)"', row.group(1))
        assert sas and int(sas.group(1)) == s["sas"], (s, row.group(1))
    assert sum(s["sas"] for s in status["services"][0]["servers"]) == 5
    assert "5 IKE SAs" in dom


def test_lookup_box(lab):
    d, clients = lab
    c = clients[2]
    dom, err = browse("http://%s/#q=%s:%d" % (d.api, c.addr, c.port), "--dump-dom")
    assert not console_errors(err), console_errors(err)
    want = d.get_json("/v1/lookup?addr=%s&port=%d" % (c.addr, c.port))
    assert "<b>vpn/%s</b> (rule %s)" % (want["server"], want["rule"]) in dom, dom[-3000:]
    dom, _ = browse("http://%s/#q=%016x" % (d.api, c.spi_i), "--dump-dom")
    assert "(rule sa)" in dom


def test_static_files_and_screenshot(lab):
    d, _ = lab
    for path, ctype in (("/", "text/html"), ("/dashboard.js", "text/javascript"),
                        ("/dashboard.css", "text/css")):
        code, body = d.http("GET", path)
        assert code == 200 and body, path
    code, body = d.http("GET", "/dashboard.js")
    assert "http://" not in body and "https://" not in body  # no CDN, nothing external
    shot = os.environ.get("IKELB_SCREENSHOT") or os.path.join(ROOT, "docs", "dashboard.png")
    c = lab[1][1]
    _, err = browse("http://%s/#q=%s" % (d.api, c.addr), "--screenshot=" + shot, "--window-size=1280,640",
                    "--hide-scrollbars")
    assert not console_errors(err), console_errors(err)
    assert os.path.getsize(shot) > 5000
