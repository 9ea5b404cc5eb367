"""The admin endpoint: /healthz, /readyz, /metrics (checked against the traffic
sent, parsed with prometheus_client's own parser) and /config."""

import json
import signal
import socket
import subprocess
import threading
import time
import types

import pytest
from prometheus_client.parser import text_string_to_metric_families

import tg_harness as h

METRICS_CT = "text/plain; version=0.0.4; charset=utf-8"


def admin_config(port, admin_port, upstreams, routes, **kw):
    cfg = h.gateway_config(port, upstreams, routes, **kw)
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    return cfg


@pytest.fixture
def admin(gateway_factory, upstream_factory):
    """A gateway with route "users" (/users) to upstream "users", no catch-all,
    and the admin endpoint: ns(gw, up, port, admin)."""

    def make(workers=2, upstream=None, up=None, token=None):
        up = up or upstream_factory("users")
        port, admin_port = h.free_port(), h.free_port()
        ups = {"users": h.upstream_conf([up.address], **(upstream or {}))}
        routes = [h.route("users", "users", {"path_prefix": "/users"})]
        cfg = admin_config(port, admin_port, ups, routes, workers=workers)
        if token is not None:
            cfg["admin"]["token"] = token
        gw = gateway_factory(cfg)
        wait_ready(admin_port)
        return types.SimpleNamespace(gw=gw, up=up, port=port, admin=admin_port, cfg=cfg)

    return make


def get(port, path, method="GET", headers=(), host="127.0.0.1", body=b"", version="HTTP/1.1"):
    return h.request(port, method, path, headers=headers, host=host, body=body, version=version)


def wait_ready(admin_port, timeout=5.0):
    """The listeners accept before the server declares itself ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = get(admin_port, "/readyz")
            if r.status == 200:
                return r
        except OSError:
            pass
        assert time.monotonic() < deadline, "admin /readyz never answered 200"
        time.sleep(0.02)


def scrape(admin_port):
    """{family name: family} and {(sample name, sorted labels): value}, plus the raw text."""
    r = get(admin_port, "/metrics")
    assert r.status == 200, r
    assert r.header("content-type") == METRICS_CT
    text = r.body.decode("utf-8")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {}
    for f in fams.values():
        for s in f.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, "duplicate series %r" % (key,)
            samples[key] = s.value
    return fams, samples, text


def val(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def test_healthz_readyz_and_errors(admin):
    a = admin()
    r = get(a.admin, "/healthz")
    assert (r.status, r.body) == (200, b"ok\n")
    assert r.header("content-type") == "text/plain; charset=utf-8"
    r = get(a.admin, "/readyz")
    assert (r.status, r.body) == (200, b"ready\n")
    r = get(a.admin, "/nope")
    assert (r.status, r.body) == (404, b"not found\n")
    r = get(a.admin, "/metrics", method="POST")
    assert r.status == 405 and r.header("allow") == "GET, HEAD"
    r = get(a.admin, "/config", method="DELETE")
    assert r.status == 405
    r = get(a.admin, "/healthz", method="HEAD")
    assert (r.status, r.body, r.header("content-length")) == (200, b"", "3")
    # The admin port is not a client listener: it never proxies.
    r = get(a.admin, "/users/x")
    assert r.status == 404 and a.up.requests == 0


def test_every_family_once_even_when_zero(admin):
    a = admin()
    fams, samples, text = scrape(a.admin)
    expected = {
        "tollgate_requests": "counter",
        "tollgate_request_duration_seconds": "histogram",
        "tollgate_upstream_connections": "gauge",
        "tollgate_upstream_connections_created": "counter",
        "tollgate_upstream_connections_reused": "counter",
        "tollgate_upstream_errors": "counter",
        "tollgate_websocket_connections": "counter",
        "tollgate_workers": "gauge",
        "tollgate_info": "gauge",
    }
    for name, typ in expected.items():
        assert fams[name].type == typ, name
    for line in text.splitlines():
        if line.startswith("# "):
            assert text.count(line + "\n") == 1, line
    assert val(samples, "tollgate_requests_total", route="users", status="2xx") == 0
    assert val(samples, "tollgate_request_duration_seconds_count", route="users") == 0
    assert val(samples, "tollgate_workers") == 2
    info = [s for s in fams["tollgate_info"].samples]
    assert len(info) == 1 and info[0].value == 1 and info[0].labels["version"]
    for kind in ("connect", "timeout", "reset"):
        assert val(samples, "tollgate_upstream_errors_total", upstream="users", kind=kind) == 0


def test_metrics_match_traffic(admin):
    a = admin()
    n = 7
    with h.Conn(a.port) as c:  # one keep-alive connection: one worker, one pooled upstream connection
        for i in range(n):
            c.send(h.build_request("GET", "/users/%d" % i))
            assert c.read_response().status == 200
    for _ in range(3):
        assert get(a.port, "/elsewhere").status == 404
    with h.Conn(a.port) as c:
        c.send(b"GET /bad%zz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 400
    # Requests are counted when they end, which may be just after the client has the response.
    deadline = time.monotonic() + 3
    while True:
        fams, samples, _ = scrape(a.admin)
        done = val(samples, "tollgate_requests_total", route="", status="4xx")
        if done == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert val(samples, "tollgate_requests_total", route="users", status="2xx") == n
    for cls in ("0", "1xx", "3xx", "4xx", "5xx"):
        assert val(samples, "tollgate_requests_total", route="users", status=cls) == 0
    assert val(samples, "tollgate_requests_total", route="", status="4xx") == 4

    assert val(samples, "tollgate_request_duration_seconds_count", route="users") == n
    assert val(samples, "tollgate_request_duration_seconds_bucket", route="users", le="+Inf") == n
    assert val(samples, "tollgate_request_duration_seconds_count", route="") == 4
    buckets = [(s.labels["le"], s.value) for s in fams["tollgate_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["route"] == "users"]
    assert [b[0] for b in buckets] == ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                       "0.5", "1", "2.5", "5", "10", "+Inf"]
    values = [b[1] for b in buckets]
    assert values == sorted(values), "buckets must be cumulative"
    total = val(samples, "tollgate_request_duration_seconds_sum", route="users")
    assert 0 < total < n * 1.0

    created = val(samples, "tollgate_upstream_connections_created_total", upstream="users")
    reused = val(samples, "tollgate_upstream_connections_reused_total", upstream="users")
    assert created == a.up.connections >= 1
    assert created + reused == n == a.up.requests
    idle = val(samples, "tollgate_upstream_connections", upstream="users", state="idle")
    active = val(samples, "tollgate_upstream_connections", upstream="users", state="active")
    assert active == 0 and 1 <= idle <= created


def test_upstream_errors_counted(admin):
    dead = types.SimpleNamespace(address="127.0.0.1:%d" % h.free_port(), requests=0)  # nothing listens
    a = admin(up=dead, upstream={"retries": 0, "max_fails": 0})
    for _ in range(3):
        assert get(a.port, "/users/x").status == 502
    time.sleep(0.1)
    _, samples, _ = scrape(a.admin)
    assert val(samples, "tollgate_upstream_errors_total", upstream="users", kind="connect") == 3
    assert val(samples, "tollgate_upstream_errors_total", upstream="users", kind="timeout") == 0
    assert val(samples, "tollgate_upstream_connections_reused_total", upstream="users") == 0
    assert val(samples, "tollgate_requests_total", route="users", status="5xx") == 3


def test_scrapes_during_traffic(admin):
    """Scrapes on the admin thread while workers count: values only grow."""
    a = admin()
    stop = threading.Event()
    sent = [0]

    def load():
        with h.Conn(a.port) as c:
            while not stop.is_set() and sent[0] < 2000:
                c.send(h.build_request("GET", "/users/x"))
                assert c.read_response().status == 200
                sent[0] += 1

    t = threading.Thread(target=load)
    t.start()
    last = -1
    try:
        for _ in range(30):
            _, samples, _ = scrape(a.admin)
            v = val(samples, "tollgate_requests_total", route="users", status="2xx")
            assert v >= last
            last = v
    finally:
        stop.set()
        t.join()
    time.sleep(0.1)
    _, samples, _ = scrape(a.admin)
    assert val(samples, "tollgate_requests_total", route="users", status="2xx") == sent[0]


def test_config_document(gateway_factory, upstream_factory):
    up = upstream_factory("users")
    port, admin_port = h.free_port(), h.free_port()
    ups = {"users": h.upstream_conf([up.address], balance="least_conn", keepalive=4)}
    routes = [h.route("users", "users", {"path_prefix": "/api/users", "methods": ["GET", "POST"],
                                         "headers": {"X-Env": "canary"}}, strip_prefix="/api"),
              h.route("exact", "users", {"path": "/ex%61ct", "host": "*.example.com"})]
    cfg = admin_config(port, admin_port, ups, routes, workers=2, limits={"max_headers": 50})
    gateway_factory(cfg)
    wait_ready(admin_port)
    r = get(admin_port, "/config")
    assert r.status == 200 and r.header("content-type") == "application/json"
    j = r.json()
    assert j["workers"] == 2
    assert j["listen"] == [{"address": "127.0.0.1:%d" % port}]
    assert j["admin"] == {"address": "127.0.0.1:%d" % admin_port, "token": None}
    assert j["trusted_proxies"] == ["10.0.0.0/8"]
    assert j["limits"] == {
        "header_timeout_ms": 5000, "idle_timeout_ms": 10000, "body_timeout_ms": 10000,
        "send_timeout_ms": 60000, "drain_timeout_ms": 30000,  # defaults filled in
        "max_header_size": 16384, "max_body_size": 10485760, "max_headers": 50,
        "encoded_slashes": "reject",
        "headers_with_underscores": "drop",
    }
    assert j["upstreams"] == [{
        "name": "users", "targets": [up.address], "balance": "least_conn", "keepalive": 4, "keepalive_trim_ms": 1000,
        "connect_timeout_ms": 1000, "timeout_ms": 5000, "retries": 1, "max_fails": 3,
        "fail_timeout_ms": 10000,
    }]
    assert j["routes"] == [
        {"name": "users", "match": {"path_prefix": "/api/users", "methods": ["GET", "POST"],
                                    "headers": {"x-env": "***"}},
         "strip_prefix": "/api", "upstream": "users", "plugins": []},
        {"name": "exact", "match": {"host": "*.example.com", "path": "/exact"},
         "strip_prefix": None, "upstream": "users", "plugins": []},
    ]
    assert j["plugins"] == []


def test_not_ready_while_draining(admin):
    a = admin(workers=1)
    c = h.Conn(a.port)
    try:
        c.send(h.build_request("GET", "/users/delay/1500"))
        deadline = time.monotonic() + 2
        while a.up.heads == 0:
            assert time.monotonic() < deadline, "request never reached the upstream"
            time.sleep(0.01)
        a.gw.signal(signal.SIGTERM)
        deadline = time.monotonic() + 1
        while True:
            r = get(a.admin, "/readyz")
            if r.status == 503:
                break
            assert time.monotonic() < deadline, "still ready after SIGTERM"
            time.sleep(0.02)
        assert r.body == b"not ready\n"
        assert get(a.admin, "/healthz").status == 200  # alive while it drains
        assert c.read_response().status == 200
        # It exits by itself once drained (a second SIGTERM from the fixture
        # would race with its shutdown).
        assert a.gw.proc.wait(timeout=10) == 0
    finally:
        c.close()


def test_admin_port_taken_fails_startup(tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    admin_port = blocker.getsockname()[1]
    try:
        port = h.free_port()
        cfg = admin_config(port, admin_port, {"users": h.upstream_conf(["127.0.0.1:9"])},
                           [h.route("users", "users")])
        path = tmp_path / "gw.yaml"
        path.write_text(h.yaml_text(cfg))
        p = subprocess.run([h.BINARY, "-c", str(path)], stderr=subprocess.PIPE, timeout=20)
        err = p.stderr.decode()
        assert p.returncode == 1, err
        assert "cannot listen on 127.0.0.1:%d: Address already in use" % admin_port in err
        for marker in h.SANITIZER_MARKERS:
            assert marker not in err
    finally:
        blocker.close()


# ---------------------------------------------- cross-site protection ----

TOKEN = "planted-admin-token-0123456789"


def bearer(tok=TOKEN):
    return [("Authorization", "Bearer " + tok)]


def reload_count(gw):
    return gw.stderr().count("reloaded ")


def test_config_and_reload_need_the_token(admin):
    a = admin(token=TOKEN)
    for path, method in (("/config", "GET"), ("/config", "HEAD"), ("/reload", "POST")):
        for headers in ((), bearer("wrong-token-0123456789"), bearer(TOKEN[:-1]), bearer(TOKEN + "x"),
                        [("Authorization", "Basic " + TOKEN)], [("Authorization", "Bearer")],
                        bearer() + bearer()):  # two Authorization headers: ambiguous
            r = get(a.admin, path, method, headers=headers)
            assert r.status == 401, (path, headers, r)
            assert r.header("www-authenticate").startswith("Bearer"), r
            assert r.header("connection") == "close"
            if headers:
                assert 'error="invalid_token"' in r.header("www-authenticate")
    assert reload_count(a.gw) == 0
    r = get(a.admin, "/config", headers=bearer())
    assert r.status == 200 and r.json()["admin"]["token"] == "***"
    r = get(a.admin, "/config", headers=[("authorization", "bearer  " + TOKEN)])  # scheme is case-insensitive
    assert r.status == 200
    r = get(a.admin, "/reload", "POST", headers=bearer())
    assert (r.status, r.body) == (200, b"reloaded\n")
    # Probes and scrapers need no token.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert get(a.admin, path).status == 200, path


@pytest.mark.parametrize("path,method", [("/config", "GET"), ("/reload", "POST"), ("/nope", "GET")])
def test_rebinding_hosts_are_refused(admin, path, method):
    a = admin()
    for host in ("evil.example:%d" % a.admin, "evil.example", "127.0.0.1.evil.example:%d" % a.admin,
                 "localhost.evil.example", "localhost.", "0.0.0.0:%d" % a.admin, "127.1", "[::2]",
                 "localhost:0", "localhost:x", "[localhost]", ""):
        r = get(a.admin, path, method, host=host)
        assert r.status == 403, (host, r)
        assert r.header("connection") == "close"
    assert reload_count(a.gw) == 0
    # Missing (HTTP/1.1) or duplicate Host: 400 (RFC 9112 section 3.2).
    assert get(a.admin, path, method, host=None).status == 400
    assert get(a.admin, path, method, headers=[("Host", "localhost")]).status == 400
    # The names of this endpoint, with any port (port forwards).
    want = 404 if path == "/nope" else 200
    for host in ("127.0.0.1:%d" % a.admin, "127.0.0.1", "localhost:%d" % a.admin, "LOCALHOST",
                 "localhost:8080", "127.9.9.9:1", "[::1]:%d" % a.admin):
        assert get(a.admin, path, method, host=host).status == want, host
    # HTTP/1.0 without Host: no browser sends that.
    assert get(a.admin, path, method, host=None, version="HTTP/1.0").status == want


def test_origin_is_refused_everywhere_but_open_endpoints_answer_any_host(admin):
    a = admin()
    for path, method in (("/config", "GET"), ("/reload", "POST"), ("/metrics", "GET"), ("/healthz", "GET"),
                         ("/readyz", "GET"), ("/config", "OPTIONS")):
        for origin in ("http://127.0.0.1:%d" % a.admin, "null", "https://evil.example"):
            r = get(a.admin, path, method, headers=[("Origin", origin)])
            assert r.status == 403, (path, origin, r)
            assert r.header("connection") == "close"
    assert reload_count(a.gw) == 0
    # A scraper or a probe addresses the endpoint by its platform's name.
    for path in ("/healthz", "/readyz", "/metrics"):
        r = get(a.admin, path, host="tollgate-admin.monitoring.svc:%d" % a.admin)
        assert r.status == 200, path


@pytest.mark.parametrize("ctype,body", [
    ("application/x-www-form-urlencoded", b""),
    ("application/x-www-form-urlencoded", b"a=1"),
    ("multipart/form-data; boundary=x", b"--x--\r\n"),
    ("text/plain", b"x"),
    ("Text/Plain;charset=utf-8", b""),
    ("application/octet-stream", b"x"),
    (None, b"x"),  # a body with no type: fetch() sends a Blob like that
])
def test_reload_refuses_form_content_types(admin, ctype, body):
    a = admin()
    headers = [("Content-Type", ctype)] if ctype else []
    r = get(a.admin, "/reload", "POST", headers=headers, body=body)
    assert r.status == 415, r
    assert r.header("connection") == "close"
    assert reload_count(a.gw) == 0


def test_reload_accepts_no_body_or_json(admin):
    a = admin()
    assert get(a.admin, "/reload", "POST").status == 200
    assert get(a.admin, "/reload", "POST", headers=[("Content-Type", "application/json")], body=b"{}").status == 200
    r = get(a.admin, "/reload", "POST", headers=[("Content-Type", "application/json"),
                                               ("Content-Type", "text/plain")], body=b"{}")
    assert r.status == 415
    assert reload_count(a.gw) == 2


@pytest.mark.parametrize("first", [
    b"GET /config HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    b"POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nOrigin: null\r\n\r\n",
    b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"DELETE /config HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /config HTTP/1.1\r\n\r\n",
    b"GET http://localhost/config HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT /config HTTP/1.1\r\nHost: localhost\r\n\r\n",
], ids=["host", "form", "origin", "404", "405", "no-host", "absolute-form", "asterisk", "connect", "connect-path"])
def test_error_replies_are_one_reply_then_close(admin, first):
    """A refused request gets one framed reply, and what was pipelined behind
    it is never answered."""
    a = admin()
    with h.Conn(a.admin, timeout=5) as c:
        c.send(first + b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = c.read_response(allow_eof_body=False)
        assert 400 <= r.status < 500, r
        assert r.header("content-length") is not None, r
        # (evhttp drops the Connection header of an absolute-form request's
        # reply, taking it for a proxy request, but closes all the same.)
        c.expect_closed()


def test_config_masks_every_secret(gateway_factory, upstream_factory, tmp_path):
    """Plants one secret per kind and walks the whole /config document."""
    up = upstream_factory("users")
    port, admin_port = h.free_port(), h.free_port()
    planted = {
        "admin token": TOKEN,
        "redis password": "planted-redis-password",
        "header match": "planted-header-value",
        "authorization match": "Bearer planted-bearer",
        "jwt secret": "planted-jwt-hmac-secret-of-32-bytes!!",
    }
    routes = [h.route("internal", "users", {"path_prefix": "/internal",
                                            "headers": {"X-Internal-Key": planted["header match"],
                                                        "X-Env": "canary"}}),
              h.route("auth", "users", {"path_prefix": "/auth",
                                        "headers": {"Authorization": planted["authorization match"]}}),
              h.route("users", "users", {"path_prefix": "/users"})]
    routes[2]["plugins"] = [{"name": "jwt", "config": {
        "keys": [{"algorithm": "HS256", "secret": planted["jwt secret"]}]}}]
    cfg = admin_config(port, admin_port, {"users": h.upstream_conf([up.address])}, routes)
    cfg["admin"]["token"] = TOKEN
    cfg["redis"] = {"address": "127.0.0.1:%d" % h.free_port(), "password": planted["redis password"]}
    gateway_factory(cfg)
    wait_ready(admin_port)
    r = get(admin_port, "/config", headers=bearer())
    assert r.status == 200, r
    text = r.body.decode()

    def strings(v, where="$"):
        if isinstance(v, dict):
            for k, x in v.items():
                yield where + "." + k, k
                yield from strings(x, where + "." + k)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                yield from strings(x, "%s[%d]" % (where, i))
        elif isinstance(v, str):
            yield where, v

    doc = json.loads(text)
    for kind, secret in planted.items():
        assert secret not in text, kind
        for where, s in strings(doc):
            assert secret not in s, (kind, where)
    # The structure stays: header names, a set admin token and redis password show as "***".
    assert doc["admin"]["token"] == "***"
    assert doc["redis"]["password"] == "***"
    assert doc["routes"][0]["match"]["headers"] == {"x-internal-key": "***", "x-env": "***"}
    assert doc["routes"][1]["match"]["headers"] == {"authorization": "***"}
    assert doc["routes"][2]["plugins"] == ["jwt"]
