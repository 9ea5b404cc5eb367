"""Idle keep-alive connections give back their buffers after 1 s (conn.c:
park; pooled upstream connections too, upstream_pool.c) and must behave
exactly as before: the next request works, pipelined bytes arriving on a
parked connection work, and the idle timeout still holds."""

import time

import pytest

import tg_harness as h


def test_request_after_parking(proxy):
    px = proxy(limits={"idle_timeout": "10s"})
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/one"))
        assert c.read_response().status == 200
        time.sleep(1.6)  # parked now
        c.send(h.build_request("GET", "/two") + h.build_request("GET", "/three"))
        assert c.read_response().status == 200
        r = c.read_response()
        assert r.status == 200
        assert r.json()["target"] == "/three"


def test_idle_timeout_holds_while_parked(proxy):
    px = proxy(limits={"idle_timeout": "2500ms"})
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/one"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        c.expect_closed(timeout=6)
        waited = time.monotonic() - t0
        assert 2.0 <= waited <= 4.5, waited


def test_many_parked_connections_then_all_used(proxy):
    px = proxy(limits={"idle_timeout": "20s"}, workers=2)
    conns = [h.Conn(px.port) for _ in range(200)]
    try:
        for c in conns:
            c.send(h.build_request("GET", "/a"))
        for c in conns:
            assert c.read_response().status == 200
        time.sleep(1.5)
        for c in conns:
            c.send(h.build_request("GET", "/b"))
        for c in conns:
            assert c.read_response().status == 200
    finally:
        for c in conns:
            c.close()


def test_pressure_parking_with_many_connections(proxy):
    # over 1024 connections on one worker: idle ones park as soon as flushed
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 1200
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 500), hard))
    px = proxy(limits={"idle_timeout": "20s", "header_timeout": "60s"}, workers=1)
    conns = [h.Conn(px.port) for _ in range(n)]
    try:
        # one at a time, so the upstream sees one pooled connection, not 1200
        for path in ("/a", "/b"):
            for c in conns:
                c.send(h.build_request("GET", path))
                assert c.read_response().status == 200
            time.sleep(0.2)
    finally:
        for c in conns:
            c.close()


def test_upstream_connection_reused_busy_and_parked(proxy):
    """A pooled upstream connection keeps its buffers while requests follow
    each other and parks after a second idle: one connection serves both."""
    px = proxy(workers=1)
    for i, pause in enumerate([0, 0.2, 1.6, 0, 2.2]):
        time.sleep(pause)
        r = h.request(px.port, "GET", "/r%d" % i)
        assert r.status == 200 and r.json()["target"] == "/r%d" % i
    assert px.up.connections == 1


def test_upstream_closing_a_parked_connection(proxy):
    """The upstream closes the pooled connection while it is parked: the next
    request goes out on a new one, never on the dead one."""
    px = proxy(workers=1)
    assert h.request(px.port, "GET", "/a").status == 200
    time.sleep(1.6)  # parked
    px.up.close_connections()
    time.sleep(0.3)
    assert h.request(px.port, "GET", "/b").status == 200
    assert px.up.connections == 2



@pytest.mark.parametrize("idle_ms", [600, 2500])
def test_idle_timeout_counts_from_the_last_request_of_a_busy_connection(proxy, idle_ms):
    """The idle timer armed when a connection first went idle stays armed
    while requests follow each other (conn.c: become_idle) and re-arms for
    what is left when it fires: the timeout still runs from the last
    response, shorter and longer than the one-second parking delay."""
    px = proxy(limits={"idle_timeout": "%dms" % idle_ms}, workers=1)
    with h.Conn(px.port) as c:
        t_end = time.monotonic() + idle_ms / 1000.0 * 1.6
        while time.monotonic() < t_end:
            c.send(h.build_request("GET", "/busy"))
            assert c.read_response().status == 200
            time.sleep(0.05)
        t0 = time.monotonic()
        c.expect_closed(timeout=idle_ms / 1000.0 + 3)
        waited = time.monotonic() - t0
        assert idle_ms / 1000.0 - 0.15 <= waited <= idle_ms / 1000.0 + 1.0, waited
