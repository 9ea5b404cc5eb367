"""W3C Trace Context and OTLP/HTTP JSON export: what the upstream receives
(traceparent/tracestate), what the access log says, and the spans a test
collector (otlp_receiver.py) receives."""

import json
import re
import socket
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
