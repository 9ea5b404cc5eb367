"""Response framing from a hostile upstream (RFC 9112 section 6.3): framing the
gateway would have to guess at is a 502 when nothing reached the client yet (a
closed client connection otherwise), and the upstream connection that carried
it is closed, never reused.

The upstream here is a raw socket server: the first request on each connection
gets the scripted bytes; a request that arrives on a connection that already
carried one is answered "REUSED" and counted, so `reused == 0` proves that the
gateway never sent a second request over a connection after a bad response."""

import select
import socket
import threading
import time

import pytest

import tg_harness as h
from upstream import Reader

REUSED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nREUSED"
GOOD = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"


class HostileUpstream:
    """script(sock, reader) answers the first request of every connection
    (bytes, or a callable for timed sends); later requests get REUSED."""

    def __init__(self, script):
        self.script = script
        self.connections = 0
        self.reused = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._socks = []
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.address = "127.0.0.1:%d" % self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.ls], [], [], 0.05)
            if not r:
                continue
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self._socks.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        reader = Reader(s)
        try:
            reader.read_until(b"\r\n\r\n")
            if callable(self.script):
                self.script(s, reader)
            else:
                s.sendall(self.script)
            while True:
                reader.read_until(b"\r\n\r\n")
                with self.lock:
                    self.reused += 1
                s.sendall(REUSED)
        except (OSError, EOFError):
            pass
        finally:
            s.close()

    def stop(self):
        self._stop.set()
        self.ls.close()
        with self.lock:
            for s in self._socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def hostile(gateway_factory):
    made = []

    def make(script, retries=1, websocket=False):
        up = HostileUpstream(script)
        made.append(up)
        port = h.free_port()
        rt = h.route("all", "bad", {"path_prefix": "/"})
        if websocket:
            rt["websocket"] = True
        cfg = h.gateway_config(port, {"bad": h.upstream_conf([up.address], retries=retries, max_fails=0)},
                               [rt], workers=1)
        gateway_factory(cfg)
        return port, up

    yield make
    for up in made:
        up.stop()


def assert_502_and_no_reuse(port, up, requests=3):
    for i in range(requests):
        with h.Conn(port, timeout=5) as c:
            c.send(h.build_request("GET", "/r%d" % i))
            r = c.read_response()
            assert r.status == 502, r
            assert r.header("content-type") == "application/json", r
            assert b"invalid response from upstream" in r.body, r
    # One connection per request: no retry of a response that came, no reuse.
    assert up.connections == requests, up.connections
    assert up.reused == 0


# Every case is a complete, plausible message under one reading, which is
# exactly why it must not be forwarded under any.
BAD_HEADS = {
    "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n",
    "te_and_cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 28\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n",
    "cl0_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "cl_and_te_204": b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "te_gzip_chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te_chunked_gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te_identity": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
    "te_in_http10": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "two_te_fields": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\n\r\n",
    "cl_differ": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl_list_differ": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "cl_plus": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    "cl_negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello",
    "cl_hex": b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
    "cl_huge": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhello",
    "interim_with_cl": b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"
                       b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood",
    "interim_with_te": b"HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood",
    "switching_without_upgrade": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: upgrade\r\n\r\ngood",
}


@pytest.mark.parametrize("name", sorted(BAD_HEADS))
def test_bad_framing_is_502_and_connection_not_reused(hostile, name):
    port, up = hostile(BAD_HEADS[name])
    assert_502_and_no_reuse(port, up)


# Broken chunked framing that arrives with the head (nothing forwarded yet).
BAD_BODIES = {
    "chunk_size_not_hex": b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    "chunk_bare_lf": b"5\nhello\n0\n\n",
    "chunk_data_too_long": b"3\r\nhello\r\n0\r\n\r\n",
    "chunk_bad_extension": b"5;a=\"x\r\nhello\r\n0\r\n\r\n",
    "chunk_bad_trailer": b"5\r\nhello\r\n0\r\nX Y: 1\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_chunked_body_is_502_and_connection_not_reused(hostile, name):
    port, up = hostile(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + BAD_BODIES[name])
    assert_502_and_no_reuse(port, up)


def test_bad_chunk_mid_body_closes_client_and_upstream(hostile):
    """Once the head went out, the only honest signal is a close: the body must
    never look complete, and the upstream connection is not reused."""

    def script(s, reader):
        s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        time.sleep(0.3)
        s.sendall(b"zz\r\nworld\r\n0\r\n\r\n")

    port, up = hostile(script)
    for i in range(2):
        with h.Conn(port, timeout=5) as c:
            c.send(h.build_request("GET", "/mid%d" % i))
            r = c.read_response()
            assert r.status == 200 and not r.complete, r
            assert c.eof or c.read_to_eof(3) == b""
    assert up.connections == 2 and up.reused == 0


def test_extra_bytes_after_body_not_reused(hostile):
    """More bytes than Content-Length announced: the response is complete, the
    rest is never read as the answer to someone else's request."""
    smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
    port, up = hostile(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + smuggled)
    with h.Conn(port, timeout=5) as c:
        for i in range(3):
            c.send(h.build_request("GET", "/x%d" % i))
            r = c.read_response()
            assert r.status == 200 and r.body == b"ok", r
    assert up.connections == 3 and up.reused == 0


def test_late_extra_bytes_after_body_not_reused(hostile):
    def script(s, reader):
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        time.sleep(0.1)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")

    port, up = hostile(script)
    with h.Conn(port, timeout=5) as c:
        for i in range(3):
            c.send(h.build_request("GET", "/x%d" % i))
            r = c.read_response()
            assert r.status == 200 and r.body == b"ok", r
            time.sleep(0.3)
    assert up.connections == 3 and up.reused == 0


@pytest.mark.parametrize("framing", [b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n"])
def test_204_announcing_a_body_not_reused(hostile, framing):
    """A 204 has no body whatever its fields say; when they announce one, the
    upstream may still send it, and it would be read as the next response."""

    def script(s, reader):
        s.sendall(b"HTTP/1.1 204 No Content\r\n" + framing + b"\r\n")
        # The body comes late: after the next request, if one comes here.
        r, _, _ = select.select([s], [], [], 0.5)
        s.sendall(b"hello" if b"Content" in framing else b"5\r\nhello\r\n0\r\n\r\n")

    port, up = hostile(script)
    with h.Conn(port, timeout=5) as c:
        for i in range(3):
            c.send(h.build_request("GET", "/n%d" % i))
            r = c.read_response()
            assert r.status == 204 and r.body == b"", r
            assert r.header("content-length") is None and r.header("transfer-encoding") is None, r
    assert up.reused == 0 and up.connections == 3


def test_head_and_304_framing_fields_are_fine(hostile):
    """HEAD and 304 answers describe the representation: their Content-Length
    or Transfer-Encoding announces no body, so the connection is reused."""

    def script(s, reader):
        s.sendall(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n")

    port, up = hostile(script)
    with h.Conn(port, timeout=5) as c:
        c.send(h.build_request("GET", "/a"))
        assert c.read_response().status == 304
        c.send(h.build_request("GET", "/b"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"REUSED", r
    assert up.connections == 1


def test_101_with_content_length_is_502(hostile):
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    port, up = hostile(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nContent-Length: 4\r\n\r\ngood",
                       websocket=True)
    for i in range(2):
        with h.Conn(port, timeout=5) as c:
            c.send(h.build_request("GET", "/ws%d" % i, [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                                         ("Sec-WebSocket-Key", key),
                                                         ("Sec-WebSocket-Version", "13")]))
            r = c.read_response()
            assert r.status == 502, r
    assert up.connections == 2 and up.reused == 0


def test_upstream_failures_do_not_break_good_upstreams(hostile):
    """Control: the same harness with a well-framed upstream reuses connections."""
    port, up = hostile(GOOD)
    with h.Conn(port, timeout=5) as c:
        for i in range(3):
            c.send(h.build_request("GET", "/g%d" % i))
            r = c.read_response()
            assert r.status == 200, r
    assert up.connections == 1 and up.reused == 2
