"""W3C Trace Context and OTLP/HTTP JSON export: what the upstream receives
(traceparent/tracestate), what the access log says, and the spans a test
collector (otlp_receiver.py) receives."""

import json
import re
import signal
import socket
import subprocess
import time

import pytest

import tg_harness as h
from otlp_receiver import OtlpReceiver, attrs

TP = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$")
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def receiver():
    r = OtlpReceiver()
    yield r
    r.stop()


def sent_headers(up, i=-1):
    with up.lock:
        rec = up.records[i]
    return {k.lower(): v for k, v in rec["headers"]}


def start(gateway_factory, upstream_factory, tracing=None, plugins=None, targets=None, upstream_kw=None,
          admin=False):
    up = upstream_factory("up")
    port = h.free_port()
    ups = {"up": h.upstream_conf(targets or [up.address], **(upstream_kw or {}))}
    cfg = h.gateway_config(port, ups, [h.route("api", "up", {"path_prefix": "/api"})])
    if tracing is not None:
        cfg["tracing"] = tracing
    if plugins:
        cfg["plugins"] = plugins
    admin_port = None
    if admin:
        admin_port = h.free_port()
        cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    gw = gateway_factory(cfg)
    return gw, up, port, admin_port


def tracing_conf(receiver, **kw):
    t = {"otlp_endpoint": receiver.url, "service_name": "edge", "sample_ratio": 1.0,
         "batch": {"max_spans": 512, "interval": "100ms", "queue": 8192}}
    t.update(kw)
    return t


# ---- trace context ---------------------------------------------------------

def test_new_trace_when_none(gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory)
    ids = set()
    for _ in range(3):
        assert h.request(port, "GET", "/api/x").status == 200
        m = TP.match(sent_headers(up)["traceparent"])
        assert m, sent_headers(up)
        assert m.group(3) == "00"  # no tracing: nothing sampled
        ids.add(m.group(1))
    assert len(ids) == 3
    assert "tracestate" not in sent_headers(up)


def test_valid_parent_continued(gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory)
    r = h.request(port, "GET", "/api/x", headers=[("traceparent", PARENT),
                                                  ("tracestate", "a=1"), ("tracestate", "b=2")])
    assert r.status == 200
    sent = sent_headers(up)
    m = TP.match(sent["traceparent"])
    assert m.group(1) == "0af7651916cd43dd8448eb211c80319c"
    assert m.group(2) != "b7ad6b7169203331"  # the gateway's span is the parent now
    assert m.group(3) == "01"  # a sampled parent is followed
    assert sent["tracestate"] == "a=1,b=2"
    assert sent["x-request-id"] == r.header("X-Request-Id")  # untouched


@pytest.mark.parametrize("bad", [
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
    "garbage",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
])
def test_invalid_parent_replaced(gateway_factory, upstream_factory, bad):
    gw, up, port, _ = start(gateway_factory, upstream_factory)
    assert h.request(port, "GET", "/api/x", headers=[("traceparent", bad), ("tracestate", "a=1")]).status == 200
    sent = sent_headers(up)
    m = TP.match(sent["traceparent"])
    assert m, sent["traceparent"]
    assert m.group(1) != "0af7651916cd43dd8448eb211c80319c"
    assert "tracestate" not in sent  # it belongs to the refused parent


def test_two_traceparents_are_invalid(gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory)
    other = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert h.request(port, "GET", "/api/x", headers=[("traceparent", PARENT), ("traceparent", other)]).status == 200
    tps = [v for k, v in up.records[-1]["headers"] if k.lower() == "traceparent"]
    assert len(tps) == 1
    assert TP.match(tps[0]).group(1) not in ("0af7651916cd43dd8448eb211c80319c", "1af7651916cd43dd8448eb211c80319c")


def test_access_log_has_trace_and_span_id(gateway_factory, upstream_factory, tmp_path):
    log = tmp_path / "access.log"
    gw, up, port, _ = start(gateway_factory, upstream_factory,
                            plugins=[{"name": "request-log", "config": {"path": str(log)}}])
    assert h.request(port, "GET", "/api/x", headers=[("traceparent", PARENT)]).status == 200
    deadline = time.time() + 5
    while time.time() < deadline and not (log.exists() and log.read_text().strip()):
        time.sleep(0.05)
    e = json.loads(log.read_text().splitlines()[-1])
    assert e["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert re.fullmatch(r"[0-9a-f]{16}", e["span_id"]) and e["span_id"] != "b7ad6b7169203331"


def test_sample_ratio_and_sampled_parent(gateway_factory, upstream_factory, receiver):
    """10,000 requests without a parent at ratio 0.1: the sampled share lies
    within 5 standard deviations (0.1 +- 0.015); a sampled parent is always
    followed, an unsampled one goes by the ratio."""
    gw, up, port, _ = start(gateway_factory, upstream_factory, tracing=tracing_conf(receiver, sample_ratio=0.1))
    n = 10000
    c = h.Conn(port)
    batch = 100
    for i in range(0, n, batch):
        c.send(b"".join(h.build_request("GET", "/api/s") for _ in range(batch)))
        for _ in range(batch):
            assert c.read_response().status == 200
    c.close()
    up.wait_requests(n)
    with up.lock:
        flags = [dict((k.lower(), v) for k, v in r["headers"])["traceparent"][-2:] for r in up.records]
    share = flags.count("01") / n
    assert 0.085 <= share <= 0.115, share
    for _ in range(50):
        assert h.request(port, "GET", "/api/p", headers=[("traceparent", PARENT)]).status == 200
        assert sent_headers(up)["traceparent"].endswith("-01")


# ---- OTLP export -------------------------------------------------------------

def check_common(sp):
    assert re.fullmatch(r"[0-9a-f]{32}", sp["traceId"])
    assert re.fullmatch(r"[0-9a-f]{16}", sp["spanId"])
    for k in ("startTimeUnixNano", "endTimeUnixNano"):
        assert isinstance(sp[k], str) and re.fullmatch(r"[0-9]{19}", sp[k]), sp[k]
    assert int(sp["startTimeUnixNano"]) <= int(sp["endTimeUnixNano"])
    now = time.time_ns()
    assert now - 60 * 10**9 < int(sp["startTimeUnixNano"]) <= now
    assert sp["resource"]["service.name"] == "edge"
    assert sp["scope"]["name"] == "tollgate"


def by_kind(spans, kind):
    return [s for s in spans if s["kind"] == kind]


def test_server_and_client_spans(gateway_factory, upstream_factory, receiver):
    """One SERVER span (kind 2) continuing the client's trace, one CLIENT span
    (kind 3) under it; the upstream's traceparent names the CLIENT span."""
    t = tracing_conf(receiver, headers={"Authorization": "Bearer ${OTLP_TOKEN}"},
                     resource={"deployment.environment.name": "test"})
    gw, up, port, _ = start(gateway_factory, upstream_factory, tracing=t)
    r = h.request(port, "GET", "/api/items?x=1", headers=[("traceparent", PARENT), ("User-Agent", "ua/1")])
    assert r.status == 200
    spans = receiver.wait_spans(2)
    assert len(spans) == 2, spans
    for sp in spans:
        check_common(sp)
    assert spans[0]["resource"]["deployment.environment.name"] == "test"
    (server,) = by_kind(spans, 2)
    (client,) = by_kind(spans, 3)
    assert server["traceId"] == client["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert server["parentSpanId"] == "b7ad6b7169203331"
    assert client["parentSpanId"] == server["spanId"]
    assert server["name"] == "GET"
    sa = attrs(server["attributes"])
    assert sa["http.request.method"] == "GET"
    assert sa["http.response.status_code"] == 200
    assert sa["http.route"] == "/api/*"
    assert sa["url.path"] == "/api/items"
    assert sa["url.scheme"] == "http"
    assert sa["client.address"] == "127.0.0.1"
    assert sa["network.protocol.version"] == "1.1"
    assert sa["user_agent.original"] == "ua/1"
    assert sa["tollgate.route"] == "api"
    assert sa["tollgate.request_id"] == r.header("X-Request-Id")
    assert server["status"].get("code", 0) == 0
    ca = attrs(client["attributes"])
    assert ca["server.address"] == "127.0.0.1"
    assert ca["server.port"] == up.port
    assert ca["http.response.status_code"] == 200
    assert "http.request.resend_count" not in ca
    assert int(client["startTimeUnixNano"]) >= int(server["startTimeUnixNano"])
    assert int(client["endTimeUnixNano"]) <= int(server["endTimeUnixNano"])
    m = TP.match(sent_headers(up)["traceparent"])
    assert m.group(2) == client["spanId"]
    # the headers and the path of the config
    path, hdrs, _doc = receiver.posts[0]
    assert path == "/v1/traces"
    assert hdrs["authorization"] == "Bearer tok-123"
    assert hdrs["content-type"] == "application/json"


@pytest.fixture(autouse=True)
def _otlp_token(monkeypatch):
    monkeypatch.setenv("OTLP_TOKEN", "tok-123")


def test_retry_gets_its_own_client_span(gateway_factory, upstream_factory, receiver):
    dead = h.free_port()
    up = upstream_factory("up")
    gw, _, port, _ = start(gateway_factory, upstream_factory, tracing=tracing_conf(receiver),
                           targets=["127.0.0.1:%d" % dead, up.address], upstream_kw={"retries": 1})
    # round robin may start on either target: ask until one request went through the dead one
    for _ in range(4):
        assert h.request(port, "GET", "/api/r").status == 200
    spans = receiver.wait_spans(4 + 6, timeout=5)
    servers = by_kind(spans, 2)
    clients = by_kind(spans, 3)
    retried = [s for s in servers if len([c for c in clients if c["parentSpanId"] == s["spanId"]]) == 2]
    assert retried, spans
    s = retried[0]
    tries = sorted((c for c in clients if c["parentSpanId"] == s["spanId"]),
                   key=lambda c: int(c["startTimeUnixNano"]))
    first, second = attrs(tries[0]["attributes"]), attrs(tries[1]["attributes"])
    assert first["server.port"] == dead and tries[0]["status"]["code"] == 2
    assert "error.type" in first and "http.response.status_code" not in first
    assert second["server.port"] == up.port and second["http.request.resend_count"] == 1
    assert second["http.response.status_code"] == 200
    with up.lock:
        seen = [dict((k.lower(), v) for k, v in rec["headers"])["traceparent"] for rec in up.records]
    assert any(TP.match(v).group(2) == tries[1]["spanId"] for v in seen)


def test_error_status_and_plugin_event(gateway_factory, upstream_factory, receiver):
    jwt = {"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": "s" * 32}]}}
    gw, up, port, _ = start(gateway_factory, upstream_factory, tracing=tracing_conf(receiver), plugins=[jwt])
    assert h.request(port, "GET", "/api/x").status == 401
    (server,) = receiver.wait_spans(1)
    assert attrs(server["attributes"])["http.response.status_code"] == 401
    assert server["status"].get("code", 0) == 0  # a 4xx is not the server's error
    (ev,) = server["events"]
    assert ev["name"] == "jwt.rejected"
    assert re.fullmatch(r"[0-9]{19}", ev["timeUnixNano"])
    assert attrs(ev["attributes"])["jwt.reject_reason"]
    assert h.request(port, "GET", "/nothing").status == 404
    spans = receiver.wait_spans(2)
    assert len(spans) == 2


def test_upstream_down_is_a_server_error(gateway_factory, upstream_factory, receiver):
    dead = h.free_port()
    gw, up, port, _ = start(gateway_factory, upstream_factory, tracing=tracing_conf(receiver),
                            targets=["127.0.0.1:%d" % dead], upstream_kw={"retries": 0})
    assert h.request(port, "GET", "/api/x").status == 502
    spans = receiver.wait_spans(2)
    (server,) = by_kind(spans, 2)
    (client,) = by_kind(spans, 3)
    assert server["status"]["code"] == 2
    assert attrs(server["attributes"])["error.type"] == "502"
    assert client["status"]["code"] == 2


def test_aggregation_calls_are_client_spans(gateway_factory, upstream_factory, receiver):
    users = upstream_factory("users")
    port = h.free_port()
    calls = [{"key": "a", "upstream": "users", "path": "/a"}, {"key": "b", "upstream": "users", "path": "/b"}]
    route = {"name": "dash", "match": {"path_prefix": "/bff"}, "aggregate": {"timeout": "1s", "calls": calls}}
    cfg = h.gateway_config(port, {"users": h.upstream_conf([users.address])}, [route])
    cfg["tracing"] = tracing_conf(receiver)
    gateway_factory(cfg)
    r = h.request(port, "GET", "/bff/x", headers=[("traceparent", PARENT)])
    assert r.status == 200
    doc = json.loads(r.body)
    sent = {k: dict((n.lower(), v) for n, v in doc[k]["headers"])["traceparent"] for k in ("a", "b")}
    spans = receiver.wait_spans(3)
    (server,) = by_kind(spans, 2)
    clients = by_kind(spans, 3)
    assert len(clients) == 2
    assert {c["parentSpanId"] for c in clients} == {server["spanId"]}
    assert {TP.match(v).group(2) for v in sent.values()} == {c["spanId"] for c in clients}
    assert {attrs(c["attributes"])["url.path"] for c in clients} == {"/a", "/b"}


def test_unsampled_requests_export_nothing(gateway_factory, upstream_factory, receiver):
    gw, up, port, _ = start(gateway_factory, upstream_factory, tracing=tracing_conf(receiver, sample_ratio=0))
    for _ in range(5):
        assert h.request(port, "GET", "/api/x").status == 200
    assert h.request(port, "GET", "/api/x", headers=[("traceparent", PARENT)]).status == 200
    spans = receiver.wait_spans(2)
    assert len(spans) == 2 and {s["traceId"] for s in spans} == {"0af7651916cd43dd8448eb211c80319c"}


def metric(admin_port, name):
    r = h.request(admin_port, "GET", "/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            yield line


def test_collector_retry_with_backoff(gateway_factory, upstream_factory, receiver):
    receiver.statuses = [503, 429]
    gw, up, port, admin = start(gateway_factory, upstream_factory, tracing=tracing_conf(receiver), admin=True)
    assert h.request(port, "GET", "/api/x").status == 200
    spans = receiver.wait_spans(2, timeout=5)
    assert len(spans) == 2
    assert receiver.attempts == 3
    assert list(metric(admin, "tollgate_tracing_spans_exported_total")) == ["tollgate_tracing_spans_exported_total 2"]


def test_collector_down_costs_nothing_but_drops(gateway_factory, upstream_factory):
    """A collector that accepts connections but never answers: requests are
    not slowed, and what cannot be queued or sent is counted."""
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    url = "http://127.0.0.1:%d/v1/traces" % hang.getsockname()[1]
    t = {"otlp_endpoint": url, "service_name": "edge", "sample_ratio": 1.0, "timeout": "300ms",
         "batch": {"max_spans": 4, "interval": "50ms", "queue": 8}}
    try:
        gw, up, port, admin = start(gateway_factory, upstream_factory, tracing=t, admin=True)
        c = h.Conn(port)
        t0 = time.monotonic()
        for _ in range(200):
            c.send(h.build_request("GET", "/api/x"))
            assert c.read_response().status == 200
        elapsed = time.monotonic() - t0
        c.close()
        assert elapsed < 5, elapsed
        dropped = {l.split("reason=")[1].split("}")[0]: int(l.rsplit(" ", 1)[1])
                   for l in metric(admin, "tollgate_tracing_spans_dropped_total")}
        assert dropped['"queue_full"'] > 0
    finally:
        hang.close()


def test_endpoint_may_name_an_upstream(gateway_factory, upstream_factory, receiver):
    up = upstream_factory("up")
    port = h.free_port()
    ups = {"up": h.upstream_conf([up.address]), "collector": h.upstream_conf(["127.0.0.1:%d" % receiver.port])}
    cfg = h.gateway_config(port, ups, [h.route("api", "up", {"path_prefix": "/api"})])
    cfg["tracing"] = tracing_conf(receiver, otlp_endpoint="collector")
    gateway_factory(cfg)
    assert h.request(port, "GET", "/api/x").status == 200
    assert len(receiver.wait_spans(2)) == 2
    assert receiver.posts[0][0] == "/v1/traces"


def test_rate_limit_decision_on_the_server_span(gateway_factory, upstream_factory, receiver):
    rl = {"name": "rate-limit", "config": {"key": "ip", "limits": [{"rate": 1, "per": "1m", "burst": 1}],
                                           "backend": "local"}}
    gw, up, port, _ = start(gateway_factory, upstream_factory, tracing=tracing_conf(receiver), plugins=[rl])
    assert h.request(port, "GET", "/api/x").status == 200
    assert h.request(port, "GET", "/api/x").status == 429
    spans = receiver.wait_spans(3)
    decisions = sorted(attrs(s["attributes"]).get("rate_limit.decision") for s in by_kind(spans, 2))
    assert decisions == ["allowed", "limited"], decisions


def test_jwks_downloads_carry_their_own_traceparent(gateway_factory, upstream_factory):
    """Each key set download is a request of the gateway's own: a new trace
    and span id each time, so the IdP can tell them apart."""
    idp = upstream_factory("idp")
    body = b'{"keys": []}'
    idp.raw["/jwks"] = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                        % len(body) + body, False)
    jwt = {"name": "jwt", "config": {"jwks_uri": {"upstream": "idp", "path": "/jwks", "refresh": "1s"}}}
    up = upstream_factory("up")
    port = h.free_port()
    ups = {"up": h.upstream_conf([up.address]), "idp": h.upstream_conf([idp.address])}
    cfg = h.gateway_config(port, ups, [h.route("api", "up", {"path_prefix": "/api"})])
    cfg["plugins"] = [jwt]
    gateway_factory(cfg)
    assert idp.wait_requests(3, timeout=10)
    with idp.lock:
        tps = [dict((k.lower(), v) for k, v in r["headers"])["traceparent"] for r in idp.records]
    ms = [TP.match(v) for v in tps]
    assert all(ms), tps
    assert len({m.group(1) for m in ms}) == len(ms)
    assert len({m.group(2) for m in ms}) == len(ms)


def self_signed(tmp_path):
    cert, key = tmp_path / "collector.pem", tmp_path / "collector.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=collector",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_https_collector_verified(gateway_factory, upstream_factory, tmp_path):
    cert, key = self_signed(tmp_path)
    receiver = OtlpReceiver(tls=(cert, key))
    try:
        gw, up, port, admin = start(gateway_factory, upstream_factory,
                                    tracing=tracing_conf(receiver, ca_file=cert), admin=True)
        assert receiver.url.startswith("https://127.0.0.1:")
        assert h.request(port, "GET", "/api/x").status == 200
        assert len(receiver.wait_spans(2)) == 2
    finally:
        receiver.stop()


def test_https_collector_not_trusted_gets_nothing(gateway_factory, upstream_factory, tmp_path):
    cert, key = self_signed(tmp_path)
    receiver = OtlpReceiver(tls=(cert, key))
    try:
        # the system's CAs do not know this certificate: nothing is sent
        gw, up, port, admin = start(gateway_factory, upstream_factory, tracing=tracing_conf(receiver),
                                    admin=True)
        assert h.request(port, "GET", "/api/x").status == 200
        deadline = time.time() + 8
        dropped = 0
        while time.time() < deadline and dropped == 0:
            dropped = sum(int(l.rsplit(" ", 1)[1]) for l in metric(admin, "tollgate_tracing_spans_dropped_total"))
            time.sleep(0.1)
        assert dropped == 2
        assert receiver.posts == []
        assert "tracing: export to https://127.0.0.1:" in gw.stderr()
    finally:
        receiver.stop()


def test_reload_turns_tracing_on_and_off(gateway_factory, upstream_factory, receiver):
    gw, up, port, admin = start(gateway_factory, upstream_factory, admin=True)
    assert h.request(port, "GET", "/api/x").status == 200
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           [h.route("api", "up", {"path_prefix": "/api"})])
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    cfg["tracing"] = tracing_conf(receiver)
    with open(gw.cfg_path, "w") as f:
        f.write(h.yaml_text(cfg))
    gw.signal(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline and not receiver.spans():
        h.request(port, "GET", "/api/on")
        time.sleep(0.2)
    assert any(attrs(s["attributes"]).get("url.path") == "/api/on" for s in receiver.spans())
    del cfg["tracing"]
    with open(gw.cfg_path, "w") as f:
        f.write(h.yaml_text(cfg))
    gw.signal(signal.SIGHUP)
    time.sleep(1)
    for _ in range(5):
        assert h.request(port, "GET", "/api/off").status == 200
    time.sleep(0.5)
    assert not any(attrs(s["attributes"]).get("url.path") == "/api/off" for s in receiver.spans())


def test_http2_requests_are_traced_and_counted(gateway_factory, upstream_factory, receiver):
    """An HTTP/2 stream is a request like any other: its trace continues, its
    SERVER span says protocol version 2, and its connection is counted under
    protocol h2 (not http/1.1) while open."""
    up = upstream_factory("up")
    port, admin = h.free_port(), h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           [h.route("api", "up", {"path_prefix": "/api"})], workers=1)
    cfg["listen"][0]["http2"] = "prior_knowledge"
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    cfg["tracing"] = tracing_conf(receiver)
    gateway_factory(cfg, port=port)
    h.wait_port(admin, 5)
    for path in ("/api/h2", "/api/h2b"):  # one connection each
        p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-H", "traceparent: " + PARENT,
                            "http://127.0.0.1:%d%s" % (port, path)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 0, p.stderr
    m = TP.match(sent_headers(up)["traceparent"])
    assert m.group(1) == "0af7651916cd43dd8448eb211c80319c"
    spans = receiver.wait_spans(4)
    servers = by_kind(spans, 2)
    assert len(servers) == 2
    assert {attrs(s["attributes"])["network.protocol.version"] for s in servers} == {"2"}
    listener = cfg["listen"][0]["address"]
    deadline = time.time() + 5
    while time.time() < deadline:
        lines = list(metric(admin, "tollgate_client_connections"))
        if all(l.endswith(" 0") for l in lines):
            break
        time.sleep(0.05)
    assert all(l.endswith(" 0") for l in lines), lines  # nothing left open, nothing below zero
    accepted = {l.split("protocol=")[1].split('"')[1]: int(l.rsplit(" ", 1)[1])
                for l in metric(admin, "tollgate_client_connections_accepted_total") if listener in l}
    assert accepted.get("h2") == 2, accepted
