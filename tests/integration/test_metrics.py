"""/metrics beyond the request counters: in-flight requests, bytes, upstream
response time and retries, client connections, process_*, build info,
reloads; parsed by prometheus_client's text parser and its OpenMetrics
parser (exemplars with the trace id of sampled requests)."""

import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

import tg_harness as h

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def scrape(admin, openmetrics=False):
    headers = [("Accept", "application/openmetrics-text; version=1.0.0,text/plain;q=0.5")] if openmetrics else []
    r = h.request(admin, "GET", "/metrics", headers=headers)
    assert r.status == 200
    ctype = r.header("Content-Type")
    text = r.body.decode()
    if openmetrics:
        assert ctype.startswith("application/openmetrics-text; version=1.0.0")
        return {f.name: f for f in om_parse(text)}
    assert ctype.startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_parse(text)}


def value(fams, family, sample=None, **labels):
    f = fams[family]
    for s in f.samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError("no sample %s %r in %r" % (family, labels, f.samples))


@pytest.fixture
def gw(gateway_factory, upstream_factory):
    up = upstream_factory("up")
    port, admin, dead = h.free_port(), h.free_port(), h.free_port()
    ups = {"up": h.upstream_conf([up.address]),
           "flaky": h.upstream_conf(["127.0.0.1:%d" % dead, up.address], retries=1, max_fails=1,
                                    fail_timeout="60s")}
    routes = [h.route("api", "up", {"path_prefix": "/api"}), h.route("flaky", "flaky", {"path_prefix": "/flaky"})]
    cfg = h.gateway_config(port, ups, routes)
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    g = gateway_factory(cfg)
    h.wait_port(admin, 5)
    return g, up, port, admin, cfg


def test_text_families(gw):
    g, up, port, admin, _ = gw
    for _ in range(3):
        assert h.request(port, "GET", "/api/x").status == 200
    assert h.request(port, "POST", "/api/x", body=b"hello").status == 200
    # a request is counted when it ends, just after its response went out
    deadline = time.time() + 5
    while True:
        fams = scrape(admin)
        done = value(fams, "tollgate_upstream_response_duration_seconds",
                      "tollgate_upstream_response_duration_seconds_count", upstream="up")
        if done == 4 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert fams["tollgate_requests_in_flight"].type == "gauge"
    assert value(fams, "tollgate_requests_in_flight", route="api") == 0
    assert value(fams, "tollgate_request_bytes", route="api") > 4 * 30
    assert value(fams, "tollgate_response_bytes", route="api") > 0
    hist = fams["tollgate_upstream_response_duration_seconds"]
    assert hist.type == "histogram"
    assert value(fams, "tollgate_upstream_response_duration_seconds",
                 "tollgate_upstream_response_duration_seconds_count", upstream="up") == 4
    assert value(fams, "tollgate_upstream_response_duration_seconds",
                 "tollgate_upstream_response_duration_seconds_bucket", upstream="up", le="+Inf") == 4
    assert 0 < value(fams, "tollgate_upstream_response_duration_seconds",
                     "tollgate_upstream_response_duration_seconds_sum", upstream="up") < 4
    # process_* as the client libraries name them
    assert value(fams, "process_cpu_seconds") > 0
    assert value(fams, "process_resident_memory_bytes") > 1 << 20
    assert value(fams, "process_virtual_memory_bytes") > value(fams, "process_resident_memory_bytes")
    assert 5 < value(fams, "process_open_fds") < value(fams, "process_max_fds")
    assert abs(value(fams, "process_start_time_seconds") - time.time()) < 120
    (bi,) = fams["tollgate_build_info"].samples
    assert bi.value == 1 and bi.labels["version"] and bi.labels["openssl"] and bi.labels["libevent"]
    assert value(fams, "tollgate_config_reloads", result="success") == 0
    assert value(fams, "tollgate_config_last_reload_successful") == 1


def test_in_flight_and_connections(gw):
    g, up, port, admin, cfg = gw
    listener = cfg["listen"][0]["address"]
    done = threading.Event()

    def slow():
        h.request(port, "GET", "/api/delay/800")
        done.set()

    t = threading.Thread(target=slow)
    t.start()
    idle = [h.Conn(port) for _ in range(3)]
    deadline = time.time() + 5
    while time.time() < deadline:
        fams = scrape(admin)
        if value(fams, "tollgate_requests_in_flight", route="api") == 1 and \
                value(fams, "tollgate_client_connections", listener=listener, protocol="http/1.1") == 4:
            break
        time.sleep(0.05)
    assert value(fams, "tollgate_requests_in_flight", route="api") == 1
    assert value(fams, "tollgate_client_connections", listener=listener, protocol="http/1.1") == 4
    t.join()
    for c in idle:
        c.close()
    deadline = time.time() + 5
    while time.time() < deadline:
        fams = scrape(admin)
        if value(fams, "tollgate_client_connections", listener=listener, protocol="http/1.1") == 0:
            break
        time.sleep(0.05)
    assert value(fams, "tollgate_client_connections", listener=listener, protocol="http/1.1") == 0
    assert value(fams, "tollgate_requests_in_flight", route="api") == 0
    assert value(fams, "tollgate_client_connections_accepted", listener=listener, protocol="http/1.1") >= 4


def test_retries_counted(gw):
    g, up, port, admin, _ = gw
    for _ in range(4):
        assert h.request(port, "GET", "/flaky/x").status == 200
    fams = scrape(admin)
    assert value(fams, "tollgate_upstream_retries", upstream="flaky") >= 1
    assert value(fams, "tollgate_upstream_retries", upstream="up") == 0


def test_reloads_counted(gw):
    g, up, port, admin, cfg = gw
    req = urllib.request.Request("http://127.0.0.1:%d/reload" % admin, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    before = time.time()
    fams = scrape(admin)
    assert value(fams, "tollgate_config_reloads", result="success") == 1
    assert abs(value(fams, "tollgate_config_last_reload_success_timestamp_seconds") - before) < 10
    with open(g.cfg_path, "a") as f:
        f.write("bogus_key: 1\n")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/reload" % admin, method="POST"),
                               timeout=10)
    fams = scrape(admin)
    assert value(fams, "tollgate_config_reloads", result="failure") == 1
    assert value(fams, "tollgate_config_last_reload_successful") == 0


def test_openmetrics_with_exemplars(gw):
    """Sampled requests leave their trace id on the buckets they fell in, so a
    Grafana user jumps from a slow bucket to its trace."""
    g, up, port, admin, _ = gw
    assert h.request(port, "GET", "/api/x").status == 200  # unsampled: no exemplar
    assert h.request(port, "GET", "/api/y", headers=[("traceparent", PARENT)]).status == 200
    deadline = time.time() + 5  # recorded when the request ends, just after its response
    while True:
        fams = scrape(admin, openmetrics=True)
        if all(any(s.exemplar for s in fams[f].samples) for f in
               ("tollgate_request_duration_seconds", "tollgate_upstream_response_duration_seconds")) \
                or time.time() > deadline:
            break
        time.sleep(0.05)
    # counters are families without _total in OpenMetrics; the parser checks the rest
    assert fams["tollgate_requests"].type == "counter"
    assert fams["process_cpu_seconds"].type == "counter"
    found = {}
    for fam in ("tollgate_request_duration_seconds", "tollgate_upstream_response_duration_seconds"):
        assert fams[fam].type == "histogram"
        ex = [s.exemplar for s in fams[fam].samples if s.exemplar is not None]
        assert ex, fams[fam].samples
        found[fam] = ex
        for e in ex:
            assert e.labels["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
            assert 0 < e.value < 5
            assert abs(float(e.timestamp) - time.time()) < 60
    # plain text never carries exemplars (the 0.0.4 parser would refuse them)
    scrape(admin)
