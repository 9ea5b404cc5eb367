"""Client-side limits: header/idle timeouts, header and body sizes."""

import select
import time

import tg_harness as h


def test_header_timeout_408(proxy):
    px = proxy(limits={"header_timeout": "1s", "idle_timeout": "10s"})
    with h.Conn(px.port, timeout=5) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status == 408, r
        assert 0.7 <= elapsed <= 3.0, elapsed
        c.expect_closed(2)
    assert px.up.heads == 0


def test_header_timeout_is_for_the_whole_head(proxy):
    """Trickling bytes does not extend the header timeout."""
    px = proxy(limits={"header_timeout": "1s", "idle_timeout": "10s"})
    with h.Conn(px.port, timeout=5) as c:
        t0 = time.monotonic()
        c.send(b"GET /trickle HTTP/1.1\r\nHost: x\r\n")
        got = b""
        for i in range(30):
            try:
                c.send(b"X-%d: y\r\n" % i)
            except OSError:
                break
            got = c.read_available(0.2)
            if got:
                break
        elapsed = time.monotonic() - t0
        if not got:
            try:
                got = c.read_to_eof(1)
            except (AssertionError, OSError):
                pass
        assert got.startswith(b"HTTP/1.1 408 "), got[:100]
        assert elapsed <= 3.0, elapsed


def test_idle_keepalive_connection_closed_silently(proxy):
    px = proxy(limits={"idle_timeout": "1s", "header_timeout": "5s"})
    with h.Conn(px.port, timeout=5) as c:
        c.send(h.build_request("GET", "/one"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        c.expect_closed(4)
        elapsed = time.monotonic() - t0
        assert 0.7 <= elapsed <= 3.0, elapsed


def test_idle_connection_without_any_request_closed(proxy):
    px = proxy(limits={"idle_timeout": "1s", "header_timeout": "1s"})
    with h.Conn(px.port, timeout=5) as c:
        t0 = time.monotonic()
        c.read_to_eof(4)
        assert time.monotonic() - t0 <= 3.0


def test_max_header_size_431(proxy):
    px = proxy()
    with h.Conn(px.port, timeout=5) as c:
        c.send(h.build_request("GET", "/big-head", [("X-Big", "a" * 20000)]))
        r = c.read_response()
    assert r.status == 431, r
    assert px.up.heads == 0


def test_header_just_under_limit_accepted(proxy):
    px = proxy()
    r = h.request(px.port, "GET", "/ok-head", [("X-Big", "a" * 12000)])
    assert r.status == 200, r
    assert ["X-Big", "a" * 12000] in r.json()["headers"]


def test_long_request_line_rejected(proxy):
    px = proxy()
    with h.Conn(px.port, timeout=5) as c:
        c.send(h.build_request("GET", "/" + "a" * 20000))
        r = c.read_response()
    assert r.status in (414, 431), r
    assert px.up.heads == 0


def _send_until_answered(c, head, body_pieces):
    """Sends head then body pieces, stopping as soon as the gateway answers."""
    c.send(head)
    for piece in body_pieces:
        r, _, _ = select.select([c.sock], [], [], 0)
        if r:
            break
        try:
            c.sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
    return c.read_response()


def test_max_body_size_content_length_413(proxy):
    px = proxy(limits={"max_body_size": "1MiB"})
    with h.Conn(px.port, timeout=5) as c:
        n = 2 * 1024 * 1024
        r = _send_until_answered(c, h.build_request("POST", "/too-big", [("Content-Length", str(n))]),
                                 (b"z" * 65536 for _ in range(n // 65536)))
    assert r.status == 413, r
    assert px.up.heads == 0


def test_max_body_size_chunked_413(proxy):
    px = proxy(limits={"max_body_size": "1MiB"})
    with h.Conn(px.port, timeout=5) as c:
        piece = b"10000\r\n" + b"z" * 65536 + b"\r\n"
        r = _send_until_answered(c, h.build_request("POST", "/too-big-chunked", [("Transfer-Encoding", "chunked")]),
                                 (piece for _ in range(40)))
    assert r.status == 413, r
    assert px.up.requests == 0


def test_body_exactly_at_limit_accepted(proxy):
    px = proxy(limits={"max_body_size": "64KiB"})
    body = b"q" * 65536
    r = h.request(px.port, "POST", "/at-limit", body=body)
    assert r.status == 200, r
    assert r.json()["body_len"] == 65536
    r = h.request(px.port, "POST", "/at-limit-chunked", [("Transfer-Encoding", "chunked")],
                  body=h.chunk_encode([body[:1000], body[1000:]]))
    assert r.status == 200, r
    assert r.json()["body_len"] == 65536


def test_404_when_no_route(proxy):
    px = proxy(routes=[h.route("only", "up", {"path": "/only"})])
    r = h.request(px.port, "GET", "/missing")
    assert r.status == 404, r
    j = r.json()
    assert set(j) >= {"error", "request_id"} and j["request_id"] == r.header("x-request-id")
    assert h.request(px.port, "GET", "/only").status == 200
    assert px.up.requests == 1


def test_body_timeout_spares_a_request_without_body(proxy):
    # body_timeout bounds reading a body: a GET (or a body already read) may
    # wait for a slow upstream longer than that.
    px = proxy(limits={"body_timeout": "1s", "header_timeout": "5s", "idle_timeout": "10s"})
    with h.Conn(px.port, timeout=5) as c:
        c.send(h.build_request("GET", "/delay/1600"))
        r = c.read_response()
        assert r.status == 200, r
        c.send(h.build_request("POST", "/delay/1600", [("Content-Length", "4")]) + b"done")
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_len"] == 4


def test_body_timeout_408(proxy):
    px = proxy(limits={"body_timeout": "1s", "header_timeout": "5s", "idle_timeout": "10s"})
    with h.Conn(px.port, timeout=5) as c:
        c.send(h.build_request("POST", "/slow-body", [("Content-Length", "100")]) + b"only-some")
        t0 = time.monotonic()
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status == 408, r
        assert 0.7 <= elapsed <= 3.0, elapsed
        c.expect_closed(2)
    assert px.up.requests == 0
