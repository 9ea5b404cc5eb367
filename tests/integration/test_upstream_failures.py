"""Upstream failures: refused, connect timeout, response timeout, mid-response
close, retries and passive health checks."""

import time

import tg_harness as h


def dead_address():
    return "127.0.0.1:%d" % h.free_port()



def test_refused_is_502_quickly(proxy, upstream_factory):
    px = proxy(extra_upstreams={"dead": h.upstream_conf([dead_address()], connect_timeout="1s", retries=1)},
               routes=[h.route("dead", "dead", {"path_prefix": "/"})])
    t0 = time.monotonic()
    r = h.request(px.port, "GET", "/x")
    assert r.status == 502, r
    assert time.monotonic() - t0 < 2.0


def test_connect_timeout_is_504(proxy, blackhole):
    px = proxy(extra_upstreams={"hole": h.upstream_conf([blackhole], connect_timeout="1s", retries=0)},
               routes=[h.route("hole", "hole", {"path_prefix": "/"})])
    t0 = time.monotonic()
    r = h.request(px.port, "GET", "/x")
    elapsed = time.monotonic() - t0
    assert r.status == 504, r
    assert 0.8 <= elapsed < 3.0, elapsed


def test_response_timeout_is_504(proxy):
    px = proxy(upstream={"timeout": "1s", "retries": 0})
    t0 = time.monotonic()
    r = h.request(px.port, "GET", "/never")
    elapsed = time.monotonic() - t0
    assert r.status == 504, r
    assert 0.8 <= elapsed < 3.0, elapsed


def test_close_mid_response_never_looks_complete(proxy):
    px = proxy()
    with h.Conn(px.port, timeout=5) as c:
        c.send(h.build_request("GET", "/close-mid"))
        r = c.read_response()
        if r.status == 200:
            assert not r.complete, "a cut upstream response reached the client as complete: %r" % r
            assert len(r.body) < 1000
            assert c.eof or c.read_to_eof(3) == b""
        else:
            assert r.status == 502, r


def test_retry_get_on_dead_target(gateway_factory, upstream):
    gw = two_target_gateway(gateway_factory, [dead_address(), upstream.address], retries=1, max_fails=100)
    for i in range(8):
        r = h.request(gw.port, "GET", "/r/%d" % i)
        assert r.status == 200, r
    assert upstream.requests == 8


def two_target_gateway(gateway_factory, targets, **up_kw):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf(targets, **up_kw)},
                           [h.route("all", "up", {"path_prefix": "/"})])
    return gateway_factory(cfg)


def test_passive_health_skips_failed_target(gateway_factory, upstream_factory):
    live = upstream_factory("live")
    bad = upstream_factory("bad", mode="never")
    workers, max_fails = 2, 2
    gw = two_target_gateway(gateway_factory, [bad.address, live.address], timeout="500ms", retries=1,
                            max_fails=max_fails, fail_timeout="30s")
    times = []
    for i in range(20):
        t0 = time.monotonic()
        r = h.request(gw.port, "GET", "/ph/%d" % i)
        times.append(time.monotonic() - t0)
        assert r.status == 200, r
    assert live.requests == 20
    assert bad.heads >= 1, "round robin never tried the failing target"
    assert bad.heads <= workers * max_fails, "failed target still used: %d attempts" % bad.heads
    assert max(times[-8:]) < 0.4, times


def test_post_never_retried(gateway_factory, upstream_factory):
    live = upstream_factory("live")
    bad = upstream_factory("bad", mode="close")
    gw = two_target_gateway(gateway_factory, [bad.address, live.address], retries=3, max_fails=100)
    statuses = []
    for i in range(6):
        r = h.request(gw.port, "POST", "/post/%d" % i, body=b"once")
        statuses.append(r.status)
    time.sleep(0.1)
    assert bad.heads >= 1, "round robin never chose the failing target"
    assert live.requests + bad.heads == 6, (live.requests, bad.heads, statuses)
    assert statuses.count(502) == bad.heads, statuses
    assert statuses.count(200) == live.requests, statuses


def test_get_retried_when_target_closes_without_response(gateway_factory, upstream_factory):
    live = upstream_factory("live")
    bad = upstream_factory("bad", mode="close")
    gw = two_target_gateway(gateway_factory, [bad.address, live.address], retries=1, max_fails=100)
    for i in range(6):
        r = h.request(gw.port, "GET", "/get/%d" % i)
        assert r.status == 200, r
    assert live.requests == 6
    assert bad.heads >= 1
