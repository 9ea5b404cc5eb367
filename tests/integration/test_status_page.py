"""The admin endpoint's status page: /status.json's figures, and /status in a
real browser (Debian's chromium, headless, driven as in test_cors_browser.py):
the page loads without any external asset, polls /status.json, and the
figures it shows match /status.json; a screenshot of it is kept in tmp_path."""

import html
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import tg_harness as h

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def status(admin):
    r = h.request(admin, "GET", "/status.json")
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    return json.loads(r.body)


@pytest.fixture
def gw(gateway_factory, upstream_factory):
    up = upstream_factory("up")
    port, admin, dead = h.free_port(), h.free_port(), h.free_port()
    ups = {"up": h.upstream_conf([up.address]),
           "mixed": h.upstream_conf([up.address, "127.0.0.1:%d" % dead], retries=1, max_fails=1,
                                    fail_timeout="60s"),
           "down": h.upstream_conf(["127.0.0.1:%d" % dead], retries=0)}
    routes = [h.route("api", "up", {"path_prefix": "/api"}), h.route("mixed", "mixed", {"path_prefix": "/mixed"}),
              h.route("broken", "down", {"path_prefix": "/broken"})]
    cfg = h.gateway_config(port, ups, routes, workers=1)
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    g = gateway_factory(cfg)
    h.wait_port(admin, 5)
    return g, up, port, admin, dead


def traffic(port):
    for _ in range(20):
        assert h.request(port, "GET", "/api/x").status == 200
    for _ in range(4):
        assert h.request(port, "GET", "/mixed/x").status == 200
    for _ in range(5):
        assert h.request(port, "GET", "/broken/x").status == 502
    assert h.request(port, "GET", "/nothing").status == 404


def test_status_json(gw):
    g, up, port, admin, dead = gw
    first = status(admin)
    assert all(r["rate"] is None for r in first["routes"])  # no earlier reading yet
    traffic(port)
    time.sleep(1.1)
    s = status(admin)
    routes = {r["name"]: r for r in s["routes"]}
    assert routes["api"]["requests"] == 20 and routes["api"]["errors"] == 0
    assert routes["api"]["upstream"] == "up"
    assert routes["api"]["rate"] > 0 and routes["api"]["error_rate"] == 0
    assert 0 < routes["api"]["p50_ms"] <= routes["api"]["p99_ms"] < 1000
    assert routes["broken"]["errors"] == 5 and routes["broken"]["error_rate"] == 1
    assert routes["api"]["in_flight"] == 0
    assert s["unrouted"] == 1
    ups = {u["name"]: u for u in s["upstreams"]}
    assert ups["up"]["idle"] >= 1 and ups["up"]["active"] == 0
    assert ups["mixed"]["retries"] >= 1
    health = {t["address"]: t["health"] for t in ups["mixed"]["targets"]}
    assert health == {up.address: "up", "127.0.0.1:%d" % dead: "resting"}
    (l,) = s["listeners"]
    assert l["listener"] == "127.0.0.1:%d" % port and l["protocol"] == "http/1.1"
    assert l["open"] == 0 and l["accepted"] >= 30  # and the harness's own port probe
    assert s["reloads"]["ok"] == 0 and s["reloads"]["recent"] == []
    assert s["tracing"] is None
    # a failed reload is listed with its reason
    with open(g.cfg_path, "a") as f:
        f.write("bogus_key: 1\n")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/reload" % admin, method="POST"),
                               timeout=10)
    (ev,) = status(admin)["reloads"]["recent"]
    assert ev["ok"] is False and "unknown key 'bogus_key'" in ev["error"]


def test_status_is_open_and_self_contained(gw):
    g, up, port, admin, dead = gw
    r = h.request(admin, "GET", "/status", host="gateway.example")  # like /metrics: no Host check
    assert r.status == 200
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert "default-src 'none'" in r.header("Content-Security-Policy")
    page = r.body.decode()
    assert "/status.json" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no external asset
    assert "<link" not in page


def browse(args, profile):
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--user-data-dir=" + str(profile), "--virtual-time-budget=6000"]
    p = subprocess.Popen(base + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError("chromium did not finish within 90 s:\n" + err.decode("utf-8", "replace")[-3000:])
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def shown(dom):
    """{data-k: text} of every figure cell the page rendered."""
    cells = {}
    for m in re.finditer(r'<t[dr][^>]*data-k="([^"]+)"[^>]*>(.*?)</t[dr]>', dom, re.S):
        cells[html.unescape(m.group(1))] = html.unescape(m.group(2))
    return cells


def num(text):
    return None if text == "\u2013" else float(text.rstrip("%"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/install-deps installs it)")
def test_status_page_in_a_browser(gw, tmp_path):
    g, up, port, admin, dead = gw
    traffic(port)
    url = "http://127.0.0.1:%d/status" % admin
    dom, err = browse(["--dump-dom", url], tmp_path / "profile")
    s = status(admin)
    assert 'data-rendered="' in dom, "the page never rendered:\n%s\n%s" % (dom[-2000:], err[-3000:])
    cells = shown(dom)
    for r in s["routes"]:
        k = "route:%s:" % r["name"]
        assert int(cells[k + "requests"]) == r["requests"]
        assert int(cells[k + "errors"]) == r["errors"]
        assert int(cells[k + "in_flight"]) == r["in_flight"]
        for q in ("p50_ms", "p99_ms"):
            assert abs(num(cells[k + q]) - r[q]) <= 0.051, (k + q, cells[k + q], r[q])
        if num(cells[k + "rate"]) is not None and r["rate"] is not None:
            # rates move with time: the page read them a moment before us
            assert abs(num(cells[k + "rate"]) - r["rate"]) <= max(1.0, r["rate"] / 2)
    for u in s["upstreams"]:
        k = "upstream:%s:" % u["name"]
        for f in ("active", "idle", "retries"):
            assert int(cells[k + f]) == u[f], (k + f, cells[k + f], u[f])
        for t in u["targets"]:
            assert cells["target:%s:%s:health" % (u["name"], t["address"])].startswith(t["health"])
    (l,) = s["listeners"]
    assert int(cells["listener:%s:open" % l["listener"]]) == l["open"]
    assert int(cells["listener:%s:accepted" % l["listener"]]) == l["accepted"]
    assert cells["target:mixed:127.0.0.1:%d:health" % dead] == "resting"
    assert cells["route:api:requests"] == "20" and cells["route:broken:error_rate"] in ("100.0%", "\u2013")
    # a screenshot, for people reading the test's output
    shot = tmp_path / "status.png"
    browse(["--screenshot=" + str(shot), "--window-size=1280,900", "--hide-scrollbars", url],
           tmp_path / "profile2")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000
