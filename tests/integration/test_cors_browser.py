"""The cors plugin seen by a real browser: Debian's chromium, headless,
loads a page from one origin (a tiny HTTP server on 127.0.0.1:P1) that
makes cross-origin fetch() calls with credentials to the gateway on another
origin (127.0.0.1:P2). From the allowed origin the calls succeed (the
preflighted PUT too) and the page reads exactly the exposed headers; from
another origin (127.0.0.1:P3) the browser blocks them, and the PUT never
reaches the upstream since its preflight is refused at the gateway.

The page writes what it saw into the DOM; chromium --dump-dom with a
virtual time budget prints the DOM once the page is idle. scripts/install-deps
installs chromium; the test is skipped only when it is not there."""

import html
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading

import pytest

import tg_harness as h

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium is not installed (scripts/install-deps installs Debian's chromium)")

PAGE = """<!doctype html><html><body><pre id="result">pending</pre><script>
const gw = "%(gw)s";
async function call(name, path, init) {
  try {
    const r = await fetch(gw + path, init);
    const body = await r.text();
    return {name, ok: true, status: r.status, exposed: r.headers.get("X-Upstream-Name"),
            hidden: r.headers.get("X-Request-Id"), body: body.slice(0, 2000)};
  } catch (e) {
    return {name, ok: false, error: String(e)};
  }
}
(async () => {
  const out = [];
  out.push(await call("simple", "/api/simple", {credentials: "include"}));
  out.push(await call("put", "/api/put", {method: "PUT", credentials: "include",
      headers: {"Content-Type": "application/json", "X-Trace": "t-1"}, body: '{"a":1}'}));
  out.push(await call("nocred-include", "/nocred/include", {credentials: "include"}));
  out.push(await call("nocred-omit", "/nocred/omit", {credentials: "omit"}));
  document.getElementById("result").textContent = JSON.stringify(out);
})();
</script></body></html>
"""


class PageServer:
    """Serves PAGE for one origin (127.0.0.1:port) from a thread."""

    def __init__(self, gw_url):
        page = (PAGE % {"gw": gw_url}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def browse(url, profile):
    """The DOM of url after chromium ran it headless, and chromium's stderr."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--user-data-dir=" + str(profile), "--virtual-time-budget=10000",
            "--dump-dom", url]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # chromium and its helper processes
        out, err = p.communicate()
        raise AssertionError("chromium did not finish within 90 s:\n" + err.decode("utf-8", "replace")[-3000:])
    m = re.search(r'<pre id="result">(.*?)</pre>', out.decode("utf-8", "replace"), re.S)
    assert m is not None, "no result in the DOM:\n%s\n%s" % (out[-2000:], err[-3000:])
    text = html.unescape(m.group(1))
    assert text != "pending", "the page never finished:\n" + err.decode("utf-8", "replace")[-3000:]
    return {c["name"]: c for c in json.loads(text)}


def test_browser_allows_the_configured_origin_and_blocks_others(gateway_factory, upstream, tmp_path):
    port = h.free_port()
    gw_url = "http://127.0.0.1:%d" % port
    allowed, other = PageServer(gw_url), PageServer(gw_url)
    try:
        cors = {"origins": [allowed.origin], "methods": ["GET", "PUT"], "headers": ["Content-Type", "X-Trace"],
                "expose_headers": ["X-Upstream-Name"], "credentials": True, "max_age": "1m"}
        routes = [dict(h.route("api", "up", {"path_prefix": "/api"}), plugins=[{"name": "cors", "config": cors}]),
                  dict(h.route("nocred", "up", {"path_prefix": "/nocred"}),
                       plugins=[{"name": "cors", "config": dict(cors, credentials=False)}])]
        cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])}, routes)
        gateway_factory(cfg, port=port)

        seen = browse(allowed.origin + "/", tmp_path / "profile-allowed")
        assert seen["simple"]["ok"], seen
        assert seen["simple"]["status"] == 200
        assert seen["simple"]["exposed"] == "up"  # listed in expose_headers
        assert seen["simple"]["hidden"] is None  # X-Request-Id is not: the browser hides it
        assert seen["put"]["ok"], seen  # preflighted: the gateway's 204 let it through
        put = json.loads(seen["put"]["body"])
        assert put["method"] == "PUT"
        assert ["X-Trace", "t-1"] in put["headers"]
        # without Access-Control-Allow-Credentials a credentialed fetch is blocked
        assert not seen["nocred-include"]["ok"], seen
        assert seen["nocred-omit"]["ok"], seen
        targets = upstream.targets()
        assert sorted(targets) == ["/api/put", "/api/simple", "/nocred/include", "/nocred/omit"], targets

        seen = browse(other.origin + "/", tmp_path / "profile-other")
        for name in ("simple", "put", "nocred-include", "nocred-omit"):
            assert not seen[name]["ok"], seen  # blocked by the browser
            assert "Failed to fetch" in seen[name]["error"], seen
        # Simple requests went through (CORS protects the response, not the
        # server); the PUT's preflight was refused, so the PUT never left.
        new = upstream.targets()[len(targets):]
        assert sorted(new) == ["/api/simple", "/nocred/include", "/nocred/omit"], new
    finally:
        allowed.stop()
        other.stop()
