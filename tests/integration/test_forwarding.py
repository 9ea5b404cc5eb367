"""Byte-exact forwarding of requests and responses; headers added toward the
upstream; hop-by-hop headers removed in both directions; re-framing."""

import hashlib
import os

import pytest

import tg_harness as h
from upstream import chunked_payload, pattern_bytes, pattern_sha256

ADDED = {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "via",
         "connection", "content-length", "transfer-encoding", "traceparent", "tracestate"}
HOP = ("connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection")


def strip_ok_connection(values):
    """A Connection header the gateway adds itself may only say keep-alive / close."""
    for v in values:
        for tok in v.split(","):
            assert tok.strip().lower() in ("keep-alive", "close"), "Connection: %r" % v


@pytest.fixture
def px(proxy):
    return proxy()


def test_target_forwarded_byte_exact(px):
    # a canonical path (docs/design.md) and any query go out byte for byte
    for target in ("/api/users/a%20b?x=1&y=%2F", "/a/b%3Fc/?q=%2e%2E&&x==y&%7E", "/?", "/x?a=b?c/d",
                   "/a/b,c:d@e/?%2C%3a"):
        r = h.request(px.port, "GET", target)
        assert r.status == 200, r
        assert r.json()["target"] == target
    # the path is canonicalised: sub-delims decoded, kept encodings upper-case; the query is not
    r = h.request(px.port, "GET", "/a/b%2Cc%3a%3f/?q=%2c%3a")
    assert r.json()["target"] == "/a/b,c:%3F/?q=%2c%3a"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"])
def test_method_forwarded(px, method):
    body = b"payload" if method in ("POST", "PUT", "PATCH") else b""
    r = h.request(px.port, method, "/m", body=body)
    assert r.status == 200, r
    j = r.json()
    assert j["method"] == method
    assert j["body_len"] == len(body)


def test_request_headers_order_names_values(px):
    sent = [("X-Custom-B", "value  with  inner  spaces"), ("x-lower", "a"), ("X-Dup", "1"), ("X-UPPER", "Z"),
            ("X-Dup", "2"), ("Accept", "*/*"), ("X-Empty", ""), ("X-Utf8", "caf\xc3\xa9"),
            ("X-Tab", "a\tb"), ("Cookie", "a=1; b=2"), ("X-Trim", "v")]
    raw = (b"GET /h HTTP/1.1\r\nHost: test.local\r\n" + b"".join(
        ("%s: %s\r\n" % kv).encode("latin-1") for kv in sent[:-1]) + b"X-Trim: \t v \t\r\n\r\n")
    with h.Conn(px.port) as c:
        c.send(raw)
        r = c.read_response()
    assert r.status == 200, r
    got = [(n, v) for n, v in r.json()["headers"] if n.lower() not in ADDED]
    assert got == sent


def test_fixed_body_forwarded(px):
    body = os.urandom(5000)
    r = h.request(px.port, "POST", "/upload", [("Content-Type", "application/octet-stream")], body)
    assert r.status == 200, r
    j = r.json()
    assert j["body_len"] == 5000
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert [v for n, v in j["headers"] if n.lower() == "content-length"] == ["5000"]
    assert not [v for n, v in j["headers"] if n.lower() == "transfer-encoding"]


def test_empty_post_forwarded_with_zero_length(px):
    r = h.request(px.port, "POST", "/empty", [("Content-Length", "0")])
    assert r.status == 200, r
    assert r.json()["body_len"] == 0


def test_chunked_request_reframed_as_chunked(px):
    chunks = [b"hello", os.urandom(1000), b"abc", os.urandom(65536), b"x"]
    data = b"".join(chunks)
    body = h.chunk_encode(chunks, extensions={1: ";name=value"})
    with h.Conn(px.port) as c:
        c.send(h.build_request("POST", "/chunked-in", [("Transfer-Encoding", "chunked")]) + body)
        r = c.read_response()
    assert r.status == 200, r
    rec = px.up.records[-1]
    assert rec["chunked"], rec["headers"]
    assert [v for n, v in rec["headers"] if n.lower() == "transfer-encoding"] == ["chunked"]
    assert not [v for n, v in rec["headers"] if n.lower() == "content-length"]
    assert rec["body_len"] == len(data)
    assert rec["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_chunked_request_sent_slowly(px):
    """Chunk boundaries split across TCP writes still arrive intact."""
    chunks = [b"a" * 10, b"b" * 300, b"c" * 7]
    body = h.chunk_encode(chunks)
    with h.Conn(px.port) as c:
        c.send(h.build_request("POST", "/slow-chunks", [("Transfer-Encoding", "chunked")]))
        for i in range(0, len(body), 7):
            c.send(body[i:i + 7])
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_upload_10mb_streamed(px):
    n = 10 * 1000 * 1000
    with h.Conn(px.port, timeout=30) as c:
        c.send(h.build_request("POST", "/big-upload", [("Content-Length", str(n))]))
        for piece in h_pattern_pieces(n):
            c.send(piece)
        r = c.read_response()
    assert r.status == 200, r
    j = r.json()
    assert j["body_len"] == n
    assert j["body_sha256"] == pattern_sha256(n)


def test_upload_10mb_chunked(px):
    n = 10 * 1000 * 1000
    with h.Conn(px.port, timeout=30) as c:
        c.send(h.build_request("POST", "/big-upload-chunked", [("Transfer-Encoding", "chunked")]))
        for piece in h_pattern_pieces(n):
            c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    j = r.json()
    assert (j["body_len"], j["body_sha256"]) == (n, pattern_sha256(n))


def h_pattern_pieces(n):
    from upstream import pattern_chunks
    return pattern_chunks(n, 65536)


def test_download_10mb(px):
    n = 10 * 1000 * 1000
    sha = hashlib.sha256()
    with h.Conn(px.port, timeout=30) as c:
        c.send(h.build_request("GET", "/bytes/%d" % n))
        r = c.read_response(sink=sha.update)
    assert r.status == 200 and r.complete, r
    assert sha.hexdigest() == pattern_sha256(n)


def test_response_status_headers_body_forwarded(px):
    px.up.raw["/raw/resp"] = (
        b"HTTP/1.1 201 Created\r\n"
        b"X-B: 2\r\n"
        b"Set-Cookie: a=1\r\n"
        b"x-lower: v  v\r\n"
        b"Set-Cookie: b=2; Path=/; HttpOnly\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"X-Utf8: caf\xc3\xa9\r\n"
        b"Content-Length: 11\r\n\r\nhello world", False)
    r = h.request(px.port, "GET", "/raw/resp")
    assert (r.status, r.reason) == (201, "Created")
    assert r.body == b"hello world"
    assert h.names_in_order(r.headers, ["x-b", "set-cookie", "x-lower", "content-type", "x-utf8"]) == [
        ("X-B", "2"), ("Set-Cookie", "a=1"), ("x-lower", "v  v"), ("Set-Cookie", "b=2; Path=/; HttpOnly"),
        ("Content-Type", "text/plain; charset=utf-8"), ("X-Utf8", "caf\xc3\xa9")]


@pytest.mark.parametrize("status", [200, 201, 400, 404, 418, 500, 503])
def test_upstream_status_passed_through(px, status):
    r = h.request(px.port, "GET", "/status/%d" % status)
    assert r.status == status, r
    assert r.json()["target"] == "/status/%d" % status


def test_chunked_response_to_http11_client(px):
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/chunked/7"))
        r = c.read_response()
    assert r.status == 200 and r.complete, r
    assert r.chunked, r.headers
    assert r.header("content-length") is None
    assert r.body == chunked_payload(7)


def test_no_length_response_to_http11_client_is_chunked(px):
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/no-length/300000"))
        r = c.read_response()
        assert r.status == 200 and r.complete, r
        assert r.chunked, r.headers
        assert r.body == pattern_bytes(300000)
        # The client connection survives the upstream's close.
        c.send(h.build_request("GET", "/after"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.json()["target"] == "/after"


def test_no_length_response_to_http10_client(px):
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/no-length/50000", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200, r
        assert not r.chunked
        assert r.body == pattern_bytes(50000)


# ------------------------------------------------------------ added headers ---
def up_headers(r):
    return r.json()["headers"]


def hv(headers, name):
    return [v for n, v in headers if n.lower() == name]


def test_x_forwarded_headers_added(px):
    r = h.request(px.port, "GET", "/xf", host="api.example.com:8080")
    assert r.status == 200, r
    hs = up_headers(r)
    assert hv(hs, "x-forwarded-for") == ["127.0.0.1"]
    assert hv(hs, "x-forwarded-proto") == ["http"]
    assert hv(hs, "x-forwarded-host") == ["api.example.com:8080"]


def test_x_forwarded_for_replaced_for_untrusted_client(px):
    r = h.request(px.port, "GET", "/xf", [("X-Forwarded-For", "1.2.3.4, 10.1.1.1"), ("X-Forwarded-For", "5.6.7.8")])
    assert r.status == 200, r
    assert hv(up_headers(r), "x-forwarded-for") == ["127.0.0.1"]


def test_request_id_generated_and_echoed(px):
    ids = []
    for _ in range(2):
        r = h.request(px.port, "GET", "/rid")
        assert r.status == 200, r
        sent = hv(up_headers(r), "x-request-id")
        assert len(sent) == 1 and sent[0], up_headers(r)
        assert r.header_all("x-request-id") == sent
        ids.append(sent[0])
    assert ids[0] != ids[1]


def test_request_id_passed_through(px):
    r = h.request(px.port, "GET", "/rid", [("X-Request-Id", "client-chosen-id-123")])
    assert r.status == 200, r
    assert hv(up_headers(r), "x-request-id") == ["client-chosen-id-123"]
    assert r.header_all("x-request-id") in ([], ["client-chosen-id-123"])


# ------------------------------------------------------------- hop-by-hop ----
def test_hop_by_hop_request_headers_removed(px):
    hdrs = [("Connection", "keep-alive, X-Foo, X-Bar"), ("X-Foo", "1"), ("X-Bar", "2"), ("Keep-Alive", "300"),
            ("TE", "trailers"), ("Trailer", "X-Checksum"), ("Upgrade", "foo/1"),
            ("Proxy-Connection", "keep-alive"), ("X-Stay", "yes")]
    r = h.request(px.port, "GET", "/hop-req", hdrs)
    assert r.status == 200, r
    hs = up_headers(r)
    names = {n.lower() for n, v in hs}
    for gone in ("x-foo", "x-bar", "keep-alive", "te", "trailer", "upgrade", "proxy-connection",
                 "transfer-encoding"):
        assert gone not in names, (gone, hs)
    strip_ok_connection(hv(hs, "connection"))
    assert hv(hs, "x-stay") == ["yes"]


def test_hop_by_hop_response_headers_removed(px):
    r = h.request(px.port, "GET", "/hop")
    assert r.status == 200 and r.body == b"hop", r
    names = {n.lower() for n, v in r.headers}
    for gone in ("x-foo", "keep-alive", "upgrade", "trailer", "proxy-connection"):
        assert gone not in names, (gone, r.headers)
    strip_ok_connection(r.header_all("connection"))
    assert r.header("x-keep") == "yes"


def test_response_transfer_encoding_reframed_for_http10(px):
    """A chunked upstream response reaches an HTTP/1.0 client without Transfer-Encoding."""
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/chunked/3", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200, r
        assert r.header("transfer-encoding") is None, r.headers
        assert r.body == chunked_payload(3)


def test_x_forwarded_for_appended_for_trusted_proxy(proxy, gateway_factory, upstream):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])},
                           [h.route("all", "up", {"path_prefix": "/"})], trusted_proxies=["127.0.0.0/8"])
    gw = gateway_factory(cfg)
    r = h.request(gw.port, "GET", "/xf", [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https")])
    assert r.status == 200, r
    hs = up_headers(r)
    assert hv(hs, "x-forwarded-for") == ["1.2.3.4, 127.0.0.1"], hs
    assert hv(hs, "x-forwarded-proto") == ["https"], hs
    r = h.request(gw.port, "GET", "/xf", [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "5.6.7.8")])
    assert hv(up_headers(r), "x-forwarded-for") == ["1.2.3.4, 5.6.7.8, 127.0.0.1"], up_headers(r)
    r = h.request(gw.port, "GET", "/xf")
    assert hv(up_headers(r), "x-forwarded-for") == ["127.0.0.1"], up_headers(r)


def test_spoofed_forwarded_proto_and_host_replaced_for_untrusted_client(px):
    r = h.request(px.port, "GET", "/xf", [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.test")],
                  host="good.test")
    assert r.status == 200, r
    hs = up_headers(r)
    assert hv(hs, "x-forwarded-proto") == ["http"], hs
    assert hv(hs, "x-forwarded-host") == ["good.test"], hs


def test_upstream_connection_close_not_propagated(px):
    px.up.raw["/raw/close"] = (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True)
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/raw/close"))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"ok"), r
        assert "close" not in (r.header("connection") or "").lower(), r.headers
        c.send(h.build_request("GET", "/after-close"))
        assert c.read_response().json()["target"] == "/after-close"


def test_upstream_response_with_cl_and_te_is_502(px):
    """RFC 9112 section 6.3 item 3: an error, not a guess (see
    test_upstream_framing.py for the class); the client connection stays usable."""
    px.up.raw["/raw/clte"] = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", True)
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/raw/clte"))
        r = c.read_response()
        assert r.status == 502, r
        c.send(h.build_request("GET", "/after-clte"))
        assert c.read_response().json()["target"] == "/after-clte"


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Header: 1\r\nContent-Length: 0\r\n\r\n",
    b"garbage\r\n\r\n",
])
def test_malformed_upstream_response_is_502(px, raw):
    px.up.raw["/raw/bad"] = (raw, True)
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/raw/bad"))
        r = c.read_response()
        if b"zz" in raw and r.status == 200:
            # headers already sent when the bad chunk arrived: the cut must be visible
            assert not r.complete, r
        else:
            assert r.status == 502, r


# ------------------------------------------- fields the gateway owns (issue 10) ---
FORWARDING = [("Forwarded", "for=1.2.3.4;proto=https"), ("X-Real-IP", "1.2.3.4"), ("x-real-ip", "5.6.7.8"),
              ("X-Forwarded-Port", "8443"), ("X-Forwarded-Prefix", "/admin"), ("X-Forwarded-For", "1.2.3.4"),
              ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.test")]


def test_forwarding_headers_from_untrusted_client_removed(px):
    r = h.request(px.port, "GET", "/fwd", FORWARDING, host="good.test")
    assert r.status == 200, r
    hs = up_headers(r)
    for gone in ("forwarded", "x-real-ip", "x-forwarded-port", "x-forwarded-prefix"):
        assert hv(hs, gone) == [], (gone, hs)
    assert hv(hs, "x-forwarded-for") == ["127.0.0.1"], hs
    assert hv(hs, "x-forwarded-proto") == ["http"], hs
    assert hv(hs, "x-forwarded-host") == ["good.test"], hs


def trusted_gateway(gateway_factory, upstream, trusted=("127.0.0.1",), limits=None):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])},
                           [h.route("all", "up", {"path_prefix": "/"})], trusted_proxies=list(trusted),
                           limits=limits)
    return gateway_factory(cfg)


def test_forwarding_headers_kept_from_trusted_proxy_only(gateway_factory, upstream):
    """127.0.0.1 is the trusted load balancer; 127.0.0.2 is anyone else."""
    gw = trusted_gateway(gateway_factory, upstream)
    r = h.request(gw.port, "GET", "/fwd", FORWARDING)
    assert r.status == 200, r
    hs = up_headers(r)
    assert hv(hs, "forwarded") == ["for=1.2.3.4;proto=https"], hs
    assert hv(hs, "x-real-ip") == ["1.2.3.4", "5.6.7.8"], hs
    assert hv(hs, "x-forwarded-port") == ["8443"], hs
    assert hv(hs, "x-forwarded-prefix") == ["/admin"], hs
    assert hv(hs, "x-forwarded-for") == ["1.2.3.4, 127.0.0.1"], hs
    assert hv(hs, "x-forwarded-proto") == ["https"], hs
    assert hv(hs, "x-forwarded-host") == ["evil.test"], hs
    r = h.request(gw.port, "GET", "/fwd", FORWARDING, host="good.test", source="127.0.0.2")
    assert r.status == 200, r
    hs = up_headers(r)
    for gone in ("forwarded", "x-real-ip", "x-forwarded-port", "x-forwarded-prefix"):
        assert hv(hs, gone) == [], (gone, hs)
    assert hv(hs, "x-forwarded-for") == ["127.0.0.2"], hs
    assert hv(hs, "x-forwarded-proto") == ["http"], hs
    assert hv(hs, "x-forwarded-host") == ["good.test"], hs


def test_connection_cannot_remove_what_the_gateway_sets(gateway_factory, upstream):
    """Hop-by-hop removal applies to received fields: a trusted peer that lists its own
    X-Forwarded-Proto in Connection gets ours instead of none at all."""
    gw = trusted_gateway(gateway_factory, upstream)
    conn = ("Connection", "X-Forwarded-For, X-Forwarded-Proto, x-forwarded-host, X-Request-Id, Host")
    r = h.request(gw.port, "GET", "/c", [conn, ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "9.9.9.9"),
                                         ("X-Forwarded-Host", "lb.test"), ("X-Request-Id", "hop-id")],
                  host="api.test")
    assert r.status == 200, r
    hs = up_headers(r)
    assert hv(hs, "x-forwarded-proto") == ["http"], hs
    assert hv(hs, "x-forwarded-for") == ["127.0.0.1"], hs
    assert hv(hs, "x-forwarded-host") == ["api.test"], hs
    assert hv(hs, "host") == ["api.test"], hs
    rid = hv(hs, "x-request-id")
    assert len(rid) == 1 and rid[0] != "hop-id", hs
    strip_ok_connection(hv(hs, "connection"))


def test_headers_with_underscores_dropped_by_default(px):
    r = h.request(px.port, "GET", "/u", [("X_Custom", "1"), ("X-User_Id", "admin"), ("x_user_id", "root"),
                                         ("X-Normal", "yes")])
    assert r.status == 200, r
    names = [n for n, v in up_headers(r)]
    assert not [n for n in names if "_" in n], names
    assert hv(up_headers(r), "x-normal") == ["yes"]


def test_headers_with_underscores_reject(proxy):
    px = proxy(limits={"headers_with_underscores": "reject"})
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/u", [("X-Ok", "1"), ("X_User_Id", "admin")]) +
               h.build_request("GET", "/pipelined"))
        r = c.read_response()
        assert r.status == 400, r
        assert "underscore" in r.json()["error"], r
        c.expect_closed()  # one reply, then closed: the pipelined request is never read
    assert px.up.requests == 0
    assert h.request(px.port, "GET", "/u", [("X-Ok", "1")]).status == 200


def test_headers_with_underscores_allow_never_shadows_gateway_fields(proxy):
    px = proxy(limits={"headers_with_underscores": "allow"})
    sent = [("X_Custom", "1"), ("X-Forwarded_For", "6.6.6.6"), ("X_Forwarded_Proto", "https"),
            ("X_Forwarded_Host", "evil.test"), ("X_Real_IP", "6.6.6.6"), ("X_Request_Id", "evil"),
            ("Content_Length", "99"), ("Transfer_Encoding", "chunked"), ("Forwarded", "for=6.6.6.6")]
    r = h.request(px.port, "GET", "/u", sent, host="good.test")
    assert r.status == 200, r
    hs = up_headers(r)
    assert [(n, v) for n, v in hs if "_" in n] == [("X_Custom", "1")], hs
    assert hv(hs, "x-forwarded-for") == ["127.0.0.1"], hs
    assert hv(hs, "x-forwarded-proto") == ["http"], hs
    assert hv(hs, "forwarded") == [], hs
