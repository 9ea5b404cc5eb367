"""Client and upstream connection handling: keep-alive reuse, pipelining,
HTTP/1.0, Expect: 100-continue, responses without a body."""

import hashlib
import os
import threading
import time

import pytest

import tg_harness as h


@pytest.fixture
def px(proxy):
    return proxy()


def test_upstream_keepalive_reused_over_one_client_connection(px):
    with h.Conn(px.port) as c:
        for i in range(50):
            c.send(h.build_request("GET", "/ka/%d" % i))
            r = c.read_response()
            assert r.status == 200, r
            assert r.json()["target"] == "/ka/%d" % i
    assert px.up.requests == 50
    assert 1 <= px.up.connections <= 2, px.up.connections


def test_upstream_keepalive_across_client_connections(px):
    for k in range(10):
        with h.Conn(px.port) as c:
            for i in range(5):
                c.send(h.build_request("GET", "/ka/%d/%d" % (k, i)))
                assert c.read_response().status == 200
    assert px.up.requests == 50
    assert px.up.connections <= 4, px.up.connections


def _burst(port, n, path="/delay/300"):
    """n requests at once, each on its own client connection."""
    results = [None] * n

    def one(i):
        results[i] = h.request(port, "GET", "%s?i=%d" % (path, i)).status

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * n, results


def _wait_open(up, n, timeout):
    deadline = time.monotonic() + timeout
    while up.open_connections != n and time.monotonic() < deadline:
        time.sleep(0.02)
    return up.open_connections


def test_surplus_idle_connections_kept_then_trimmed(proxy):
    """keepalive: 1 under a burst of 4: the 4 connections stay while bursts
    follow each other (no connection opened per request), and the surplus is
    closed once idle keepalive_trim, down to keepalive."""
    px = proxy(workers=1, upstream={"keepalive": 1, "keepalive_trim": "600ms"})
    _burst(px.port, 4)
    assert px.up.connections == 4
    _burst(px.port, 4)
    assert px.up.connections == 4  # the second burst reused them all
    assert px.up.open_connections == 4
    assert _wait_open(px.up, 1, 3.0) == 1
    assert h.request(px.port, "GET", "/after").status == 200
    assert px.up.connections == 4  # the one kept is the one used


def test_keepalive_trim_zero_closes_surplus_at_release(proxy):
    """keepalive_trim: 0 is nginx's behaviour: a connection released above
    keepalive is closed at once, so the next burst opens new ones."""
    px = proxy(workers=1, upstream={"keepalive": 1, "keepalive_trim": "0s"})
    _burst(px.port, 4)
    assert _wait_open(px.up, 1, 0.5) == 1
    _burst(px.port, 4)
    assert px.up.connections == 7


def test_pooled_upstream_connection_reused_after_it_parked(px):
    # A pooled connection keeps its buffers while reused at once and parks
    # after 1 s unused; parked, it is handed out (and works) as before.
    with h.Conn(px.port) as c:
        for i in range(3):
            c.send(h.build_request("GET", "/park/%d" % i))
            r = c.read_response()
            assert r.status == 200, r
            assert r.json()["target"] == "/park/%d" % i
            time.sleep(1.5)
    assert px.up.requests == 3
    assert px.up.connections == 1, px.up.connections


def test_pipelined_requests_answered_in_order(px):
    reqs = b"".join(h.build_request("GET", "/pipe/%d" % i) for i in range(4))
    reqs += h.build_request("POST", "/pipe/4", body=b"last-one")
    with h.Conn(px.port) as c:
        c.send(reqs)
        got = [c.read_response() for _ in range(5)]
        for i, r in enumerate(got):
            assert r.status == 200, r
            assert r.json()["target"] == "/pipe/%d" % i
        assert got[4].json()["body_len"] == 8
        # still usable afterwards
        c.send(h.build_request("GET", "/pipe/after"))
        assert c.read_response().json()["target"] == "/pipe/after"


def test_pipelined_with_slow_first_request(px):
    reqs = h.build_request("GET", "/delay/300") + h.build_request("GET", "/fast")
    with h.Conn(px.port) as c:
        c.send(reqs)
        a, b = c.read_response(), c.read_response()
    assert a.json()["target"] == "/delay/300"
    assert b.json()["target"] == "/fast"


def test_http10_close_by_default(px):
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/old", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["target"] == "/old"
        c.expect_closed(3)


def test_http10_keepalive_when_requested(px):
    with h.Conn(px.port) as c:
        for i in range(3):
            c.send(h.build_request("GET", "/old/%d" % i, [("Connection", "keep-alive")], version="HTTP/1.0"))
            r = c.read_response()
            assert r.status == 200, r
            assert r.header("content-length") is not None, r.headers
            assert "keep-alive" in (r.header("connection") or "").lower(), r.headers
            assert r.json()["target"] == "/old/%d" % i


def test_http11_connection_close_honoured(px):
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/bye", [("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200, r
        c.expect_closed(3)


# ----------------------------------------------------------------- Expect ----
def test_expect_100_continue(px):
    body = os.urandom(20000)
    with h.Conn(px.port, timeout=3) as c:
        c.send(h.build_request("POST", "/expect", [("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
        interim = c.read_response()
        assert interim.status == 100, interim
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.raw_head
        assert px.up.requests == 0
        c.send(body)
        r = c.read_response()
    assert r.status == 200, r
    j = r.json()
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert not [v for n, v in j["headers"] if n.lower() == "expect"], j["headers"]


def test_expect_too_large_gets_413_without_100(px):
    with h.Conn(px.port, timeout=3) as c:
        c.send(h.build_request("POST", "/expect-big", [("Expect", "100-continue"),
                                                        ("Content-Length", str(20 * 1024 * 1024))]))
        r = c.read_response()
    assert r.status == 413, r
    assert px.up.heads == 0


# ---------------------------------------------------- responses without body --
def test_head_response_has_no_body(px):
    with h.Conn(px.port, timeout=3) as c:
        t0 = time.monotonic()
        c.send(h.build_request("HEAD", "/head-test"))
        r = c.read_response("HEAD")
        assert r.status == 200, r
        c.send(h.build_request("GET", "/head-test"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"hello world", r2
        assert time.monotonic() - t0 < 2
    assert px.up.records[0]["method"] == "HEAD"


@pytest.mark.parametrize("path,status", [("/204", 204), ("/304", 304)])
def test_no_body_statuses_ignore_upstream_content_length(px, path, status):
    with h.Conn(px.port, timeout=3) as c:
        t0 = time.monotonic()
        c.send(h.build_request("GET", path))
        r = c.read_response()
        assert r.status == status, r
        assert r.header("x-test") == str(status)
        assert r.header("transfer-encoding") is None
        c.send(h.build_request("GET", "/next"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.json()["target"] == "/next", r2
        assert time.monotonic() - t0 < 2


def test_204_with_junk_body_not_forwarded(px):
    with h.Conn(px.port, timeout=5) as c:
        c.send(h.build_request("GET", "/204junk"))
        r = c.read_response()
        assert r.status == 204, r
        assert c.read_available(0.3) == b"", "bytes after a 204"
        c.send(h.build_request("GET", "/next"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.json()["target"] == "/next", r2


def test_stale_pooled_connection_is_not_fatal(px):
    """The upstream closes an idle pooled connection; the next GET still succeeds."""
    px.up.raw["/raw/ka-then-close"] = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True)
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/raw/ka-then-close"))
        assert c.read_response().body == b"ok"
        time.sleep(0.3)
        for i in range(3):
            c.send(h.build_request("GET", "/after-stale/%d" % i))
            r = c.read_response()
            assert r.status == 200, r


def test_client_abort_mid_request(px):
    for _ in range(3):
        c = h.Conn(px.port)
        c.send(h.build_request("GET", "/delay/300"))
        c.close()
        c = h.Conn(px.port)
        c.send(h.build_request("GET", "/bytes/5000000"))
        c.read_until(b"\r\n\r\n")
        c.close()
    time.sleep(0.5)
    r = h.request(px.port, "GET", "/still-alive")
    assert r.status == 200, r


def test_concurrent_clients(px):
    import threading
    errors = []

    def client(k):
        try:
            with h.Conn(px.port, timeout=10) as c:
                for i in range(20):
                    body = os.urandom(k * 10 + i)
                    c.send(h.build_request("POST", "/cc/%d/%d" % (k, i), body=body))
                    r = c.read_response()
                    j = r.json()
                    if r.status != 200 or j["target"] != "/cc/%d/%d" % (k, i) or \
                            j["body_sha256"] != hashlib.sha256(body).hexdigest():
                        errors.append((k, i, r))
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    assert px.up.requests == 600


def test_expect_other_is_417(px):
    with h.Conn(px.port, timeout=3) as c:
        c.send(h.build_request("POST", "/expect", [("Expect", "something-else"), ("Content-Length", "3")]) + b"abc")
        r = c.read_response()
    assert r.status == 417, r
    assert px.up.heads == 0


def test_round_robin_alternates(gateway_factory, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    port = h.free_port()
    gw = gateway_factory(h.gateway_config(port, {"up": h.upstream_conf([a.address, b.address])},
                                          [h.route("all", "up", {"path_prefix": "/"})], workers=1))
    names = [h.request(gw.port, "GET", "/rr/%d" % i).header("x-upstream-name") for i in range(10)]
    assert names.count("a") == 5 and names.count("b") == 5, names
    assert all(names[i] != names[i + 1] for i in range(9)), names


def test_least_conn_avoids_busy_target(gateway_factory, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    port = h.free_port()
    gw = gateway_factory(h.gateway_config(port, {"up": h.upstream_conf([a.address, b.address],
                                                                       balance="least_conn")},
                                          [h.route("all", "up", {"path_prefix": "/"})], workers=1))
    with h.Conn(gw.port) as slow:
        slow.send(h.build_request("GET", "/delay/1500"))
        deadline = time.monotonic() + 3
        while a.heads + b.heads < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        busy = "a" if a.heads else "b"
        names = [h.request(gw.port, "GET", "/lc/%d" % i).header("x-upstream-name") for i in range(4)]
        assert busy not in names, (busy, names)
        assert slow.read_response().status == 200


def test_http10_keepalive_holds_for_generated_replies(proxy):
    """A reply the gateway writes (404 here) goes through the same head writer
    as a proxied one: an HTTP/1.0 keep-alive client is told the connection
    stays, and it does."""
    px = proxy(routes=[h.route("api", "up", {"path_prefix": "/api"})])
    with h.Conn(px.port) as c:
        for target in ("/nope", "/api/x", "/nope/again"):
            c.send(h.build_request("GET", target, [("Connection", "keep-alive")], version="HTTP/1.0"))
            r = c.read_response()
            assert r.status == (200 if target.startswith("/api") else 404), r
            assert "keep-alive" in (r.header("connection") or "").lower(), r.headers
            assert r.header("x-request-id"), r.headers
