"""The bundled response-shape plugin through the real gateway and a real
upstream: profile selection (header, query, User-Agent, JWT claim), every
shaping rule, exact Content-Length, byte-identical passthrough of what is not
shaped (non-JSON, non-2xx, and with on_invalid: pass invalid JSON, too large,
content-coded), on_invalid: error (a clean 502), Vary, header edits,
Accept-Encoding: identity toward the upstream, metrics."""

import json
import os
import time

import pytest

import tg_harness as h

USER = {
    "id": 7,
    "name": "Ann",
    "avatar_url": "http://x/a.png",
    "internal_notes": "vip",
    "orders": [
        {"id": 1, "total": 10.5, "cost_price": 4, "lines": [{"sku": "a", "qty": 1, "cost": 2},
                                                            {"sku": "b", "qty": 2, "cost": 3}]},
        {"id": 2, "total": 3, "cost_price": 1, "lines": []},
    ],
}
# Indented, so that a body that went through the plugin is visibly different.
USER_BODY = json.dumps(USER, indent=2).encode()

MOBILE = (b'{"id":7,"name":"Ann","avatar":"http://x/a.png",'
          b'"orders":[{"id":1,"sum":10.5},{"id":2,"sum":3}]}')
WEB = (b'{"id":7,"name":"Ann","avatar_url":"http://x/a.png","orders":[{"id":1,"total":10.5,'
       b'"lines":[{"sku":"a","qty":1,"cost":2},{"sku":"b","qty":2,"cost":3}]},'
       b'{"id":2,"total":3,"lines":[]}]}')
PARTNER = b'{"id":7,"name":"Ann"}'
FULL = json.dumps(USER, separators=(",", ":")).encode()

PROFILES = {
    "mobile": {
        "include": ["id", "name", "avatar_url", "orders[].id", "orders[].total"],
        "rename": {"avatar_url": "avatar", "orders[].total": "sum"},
        "set_headers": {"Cache-Control": "private, max-age=60", "X-Shape": "mobile"},
        "remove_headers": ["X-Internal-Trace"],
    },
    "web": {"exclude": ["internal_notes", "orders[].cost_price"]},
    "partner": {"include": ["id", "name"]},
    "lines": {"include": ["orders[].lines[].sku"], "exclude": ["orders[].lines[].cost"]},
    "headers_only": {"set_headers": {"X-Shape": "headers_only"}},
}


def raw_response(body, ctype="application/json", status="200 OK", extra=(), chunks=None):
    """Exact bytes an upstream sends: Content-Length, or chunked when chunks is given."""
    head = "HTTP/1.1 %s\r\n" % status
    if ctype is not None:
        head += "Content-Type: %s\r\n" % ctype
    for k, v in extra:
        head += "%s: %s\r\n" % (k, v)
    if chunks is None:
        return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode("latin-1") + body
    out = (head + "Transfer-Encoding: chunked\r\n\r\n").encode("latin-1")
    for c in chunks:
        out += b"%x\r\n%s\r\n" % (len(c), c)
    return out + b"0\r\n\r\n"


def shape_conf(client="header:X-Client", default="web", profiles=None, **kw):
    conf = {"client": client}
    conf.update(kw)
    conf["default"] = default
    conf["profiles"] = profiles or PROFILES
    return conf


def start(proxy, conf, plugins_before=(), **kw):
    rt = h.route("all", "up", {"path_prefix": "/"})
    rt["plugins"] = list(plugins_before) + [{"name": "response-shape", "config": conf}]
    return proxy(routes=[rt], **kw)


def get(port, target, headers=(), method="GET"):
    return h.request(port, method, target, headers=headers)


def assert_exact_length(r, body):
    assert r.status == 200, r
    assert r.body == body, r
    assert r.header_all("content-length") == [str(len(body))], r
    assert not r.header_all("transfer-encoding"), r


def serve_user(px, path="/u", body=USER_BODY, **kw):
    px.up.raw[path] = (raw_response(body, **kw), False)


# ------------------------------------------------------------- profiles ----
@pytest.mark.parametrize("client,want", [("mobile", MOBILE), ("web", WEB), ("partner", PARTNER)])
def test_profile_by_header(proxy, client, want):
    px = start(proxy, shape_conf())
    serve_user(px)
    r = get(px.port, "/u", [("X-Client", client)])
    assert_exact_length(r, want)


@pytest.mark.parametrize("headers", [[], [("X-Client", "nope")], [("X-Client", "Mobile")],
                                     [("X-Client", "")]])
def test_missing_or_unknown_profile_uses_default(proxy, headers):
    px = start(proxy, shape_conf())
    serve_user(px)
    assert_exact_length(get(px.port, "/u", headers), WEB)


@pytest.mark.parametrize("query,want", [("?client=mobile", MOBILE), ("?a=1&client=partner&b=2", PARTNER),
                                        ("?client=mob%69le", MOBILE), ("?client=nope", WEB),
                                        ("?client", WEB), ("", WEB), ("?xclient=mobile", WEB)])
def test_profile_by_query(proxy, query, want):
    px = start(proxy, shape_conf(client="query:client"))
    serve_user(px)
    r = get(px.port, "/u" + query, [("X-Client", "mobile")])
    assert_exact_length(r, want)
    assert not r.header_all("vary"), "query selection adds nothing to Vary: %r" % r


@pytest.mark.parametrize("ua,want", [
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8)", MOBILE),
    ("Mozilla/5.0 (iPHONE; CPU iPhone OS 17_0)", MOBILE),
    ("PartnerBot/1.0", PARTNER),
    ("Mozilla/5.0 (Android) PartnerBot", MOBILE),  # first profile in user_agent order wins
    ("curl/8.0", WEB),
    (None, WEB),
])
def test_profile_by_user_agent(proxy, ua, want):
    conf = shape_conf(client="user_agent",
                      user_agent={"mobile": "(?i)(android|iphone)", "partner": "^PartnerBot/"})
    px = start(proxy, conf)
    serve_user(px)
    headers = [("User-Agent", ua)] if ua is not None else []
    r = get(px.port, "/u", headers)
    assert_exact_length(r, want)
    assert r.header_all("vary") == ["User-Agent"], r


def test_profile_by_jwt_claim(proxy):
    jwt = pytest.importorskip("jwt")
    secret = "0123456789abcdef0123456789abcdef"
    jwt_plugin = {"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": secret}]}}
    px = start(proxy, shape_conf(client="jwt.tier"), plugins_before=[jwt_plugin])
    serve_user(px)
    for tier, want in (("mobile", MOBILE), ("partner", PARTNER), ("gold", WEB), (None, WEB)):
        claims = {"sub": "u1", "exp": int(time.time()) + 300}
        if tier is not None:
            claims["tier"] = tier
        token = jwt.encode(claims, secret, algorithm="HS256")
        r = get(px.port, "/u", [("Authorization", "Bearer " + token), ("X-Client", "mobile")])
        assert_exact_length(r, want)
        assert not r.header_all("vary"), r


# ---------------------------------------------------------------- rules ----
def test_nested_arrays_include_and_exclude(proxy):
    px = start(proxy, shape_conf())
    serve_user(px)
    r = get(px.port, "/u", [("X-Client", "lines")])
    assert_exact_length(r, b'{"orders":[{"lines":[{"sku":"a"},{"sku":"b"}]},{"lines":[]}]}')


def test_root_array_paths_apply_to_each_element(proxy):
    px = start(proxy, shape_conf())
    body = json.dumps([USER, 5, None, {"id": 8, "secret": 1}]).encode()
    serve_user(px, body=body)
    r = get(px.port, "/u", [("X-Client", "partner")])
    assert_exact_length(r, b'[{"id":7,"name":"Ann"},null,{"id":8}]')


def test_unicode_and_numbers_kept(proxy):
    px = start(proxy, shape_conf())
    body = ('{"internal_notes":1,"名前":"テスト \\u00e9\\n","big":9223372036854775807,'
            '"f":0.1,"e":1.5e300,"neg":-0.0,"one":1.0,"emoji":"\\ud83d\\ude00"}').encode()
    serve_user(px, body=body, ctype="application/json; charset=utf-8")
    r = get(px.port, "/u", [("X-Client", "web")])
    # Strings and numbers are copied as written (the DOM engine re-encoded
    # them: "é", 1.5e+300, a raw U+1F600).
    want = ('{"名前":"テスト \\u00e9\\n","big":9223372036854775807,"f":0.1,"e":1.5e300,"neg":-0.0,'
            '"one":1.0,"emoji":"\\ud83d\\ude00"}').encode()
    assert_exact_length(r, want)


def test_profile_without_body_rules_leaves_the_body(proxy):
    px = start(proxy, shape_conf())
    serve_user(px)
    r = get(px.port, "/u", [("X-Client", "headers_only")])
    assert r.status == 200 and r.body == USER_BODY, r
    assert r.header("x-shape") == "headers_only"
    assert r.header("vary") == "X-Client"


def test_empty_profile_compacts_the_body(proxy):
    px = start(proxy, shape_conf(profiles=dict(PROFILES, full={"exclude": ["no_such_key"]}), default="full"))
    serve_user(px)
    assert_exact_length(get(px.port, "/u"), FULL)


# ----------------------------------------------------- types and status ----
@pytest.mark.parametrize("ctype,shaped", [
    ("application/json", True),
    ("Application/JSON ; charset=UTF-8", True),
    ("application/problem+json", True),
    ("application/vnd.api+json; charset=utf-8", True),
    ("text/plain", False),
    ("text/json", False),
    ("application/jsonx", False),
    ("application/json-seq", False),
    ("+json", False),
    (None, False),
])
def test_content_types(proxy, ctype, shaped):
    px = start(proxy, shape_conf())
    serve_user(px, ctype=ctype)
    r = get(px.port, "/u", [("X-Client", "partner")])
    assert r.status == 200, r
    if shaped:
        assert_exact_length(r, PARTNER)
        assert r.header("vary") == "X-Client"
    else:
        assert r.body == USER_BODY, "non-JSON must pass byte for byte: %r" % r
        assert not r.header_all("vary"), r


@pytest.mark.parametrize("status", ["404 Not Found", "500 Internal Server Error", "301 Moved Permanently"])
def test_non_2xx_untouched(proxy, status):
    px = start(proxy, shape_conf())
    serve_user(px, status=status, extra=[("X-Internal-Trace", "t1")])
    r = get(px.port, "/u", [("X-Client", "mobile")])
    assert r.status == int(status[:3]), r
    assert r.body == USER_BODY
    assert r.header("x-internal-trace") == "t1"
    assert r.header("cache-control") is None and r.header("vary") is None, r


def test_201_and_206_are_2xx(proxy):
    px = start(proxy, shape_conf())
    serve_user(px, status="201 Created")
    r = get(px.port, "/u", [("X-Client", "partner")])
    assert r.status == 201 and r.body == PARTNER, r
    assert r.header_all("content-length") == [str(len(PARTNER))]


def test_invalid_json_passes_byte_identical(proxy):
    """Profiles without exclude rules default to on_invalid: pass."""
    px = start(proxy, shape_conf())
    bodies = [b'{"id": 7, "name": "Ann",', b'{"a":1} trailing', b'[{"id": 1, "x": "\\ud800"}]',
              b'\xff\xfe{"id":1}', b""]
    for i, body in enumerate(bodies):
        serve_user(px, path="/bad%d" % i, body=body)
        r = get(px.port, "/bad%d" % i, [("X-Client", "partner")])
        assert r.status == 200 and r.body == body, (body, r)
        assert r.header_all("content-length") == [str(len(body))], r


# ------------------------------------------------------------ on_invalid ----
# "web" has exclude rules: without on_invalid it refuses what it cannot shape.
UNSHAPEABLE = {
    "lone_surrogate": b'{"internal_notes": "vip", "name": "\\ud800"}',
    "lone_low_surrogate": b'{"internal_notes": "vip", "n\\udc00ame": 1}',
    "truncated": b'{"id": 7, "internal_notes": "vip", "orders": [',
    "trailing_garbage": b'{"internal_notes": "vip"} x',
    "not_utf8": b'{"internal_notes": "vip", "name": "\xff"}',
    "nul_in_key": b'{"internal_notes": "vip", "a\\u0000": 1}',
    "bom": b'\xef\xbb\xbf{"internal_notes": "vip"}',
    "too_deep": b'{"internal_notes": "vip", "a": ' + b"[" * 3000 + b"]" * 3000 + b"}",
}


def assert_refused(r, why=b"cannot be shaped"):
    assert r.status == 502, r
    assert r.header("content-type") == "application/json", r
    doc = json.loads(r.body)
    assert why.decode() in doc["error"] and doc["request_id"] == r.header("x-request-id"), doc
    assert b"vip" not in r.body and b"internal_notes" not in r.body, r
    assert r.header_all("content-length") == [str(len(r.body))], r


@pytest.mark.parametrize("name", sorted(UNSHAPEABLE))
def test_unshapeable_body_is_502_for_exclude_profiles(proxy, name):
    px = start(proxy, shape_conf())
    serve_user(px, body=UNSHAPEABLE[name])
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/u", [("X-Client", "web")]))
        assert_refused(c.read_response(), b"not valid JSON")
        # A clean reply: the connection carries the next request.
        c.send(h.build_request("GET", "/u", [("X-Client", "headers_only")]))
        r = c.read_response()
        assert r.status == 200 and r.body == UNSHAPEABLE[name], r
    assert "refused the response body: 502" in px.gw.stderr()


@pytest.mark.parametrize("name", ["lone_surrogate", "truncated"])
def test_unshapeable_body_arriving_late_is_a_clean_502(proxy, name):
    """The body comes in pieces over several reads: the head is held until
    the whole body was judged, so the refusal is still a clean 502."""
    px = start(proxy, shape_conf())
    body = UNSHAPEABLE[name]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"

    def slow(s, rec, arg):
        s.sendall(head + b"%x\r\n%s\r\n" % (10, body[:10]))
        time.sleep(0.3)
        rest = body[10:]
        s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        return True

    px.up._h_slowbody = slow
    r = get(px.port, "/slowbody/x", [("X-Client", "web")])
    assert_refused(r, b"not valid JSON")


def test_broken_upstream_body_while_buffering_is_502(proxy):
    """The upstream's chunked framing breaks after a first piece, while the
    head is held for shaping: nothing went out, so the client gets a 502, not
    a silently closed connection."""
    px = start(proxy, shape_conf())
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"

    def broken(s, rec, arg):
        s.sendall(head + b"5\r\n{\"a\":\r\n")
        time.sleep(0.3)
        s.sendall(b"zz\r\n1}\r\n0\r\n\r\n")
        return False

    px.up._h_brokenbody = broken
    for client in ("web", "partner"):
        r = get(px.port, "/brokenbody/x", [("X-Client", client)])
        assert r.status == 502 and b"invalid response from upstream" in r.body, r


def test_on_invalid_pass_and_error_explicit(proxy):
    profiles = dict(PROFILES)
    profiles["web"] = dict(PROFILES["web"], on_invalid="pass")
    profiles["partner"] = dict(PROFILES["partner"], on_invalid="error")
    px = start(proxy, shape_conf(profiles=profiles))
    body = UNSHAPEABLE["lone_surrogate"]
    serve_user(px, body=body)
    r = get(px.port, "/u", [("X-Client", "web")])
    assert r.status == 200 and r.body == body, r
    assert_refused(get(px.port, "/u", [("X-Client", "partner")]))
    r = get(px.port, "/u", [("X-Client", "mobile")])  # include only, default pass
    assert r.status == 200 and r.body == body, r


def test_on_invalid_plugin_default_and_profile_override(proxy):
    profiles = dict(PROFILES)
    profiles["partner"] = dict(PROFILES["partner"], on_invalid="pass")
    px = start(proxy, shape_conf(profiles=profiles, on_invalid="error"))
    body = UNSHAPEABLE["truncated"]
    serve_user(px, body=body)
    assert_refused(get(px.port, "/u", [("X-Client", "mobile")]))
    r = get(px.port, "/u", [("X-Client", "partner")])
    assert r.status == 200 and r.body == body, r
    # A profile without body rules never looks at the body.
    r = get(px.port, "/u", [("X-Client", "headers_only")])
    assert r.status == 200 and r.body == body, r


@pytest.mark.parametrize("chunked", [False, True])
def test_oversize_body_is_502_for_exclude_profiles(proxy, chunked):
    px = start(proxy, shape_conf(max_body="1KiB"))
    big = dict(USER, internal_notes="vip" * 1000, pad=list(range(2000)))
    body = json.dumps(big, indent=1).encode()
    chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)] if chunked else None
    serve_user(px, body=body, chunks=chunks)
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/u", [("X-Client", "web")]))
        assert_refused(c.read_response(), b"larger than max_body")
        c.send(h.build_request("GET", "/u", [("X-Client", "partner")]))  # include only: passes
        r = c.read_response()
        assert r.status == 200 and r.body == body, r


def test_content_coded_body_is_502_for_exclude_profiles(proxy):
    px = start(proxy, shape_conf())
    body = b"\x1f\x8b\x08\x00opaque bytes that may hold internal_notes: vip"
    serve_user(px, body=body, extra=[("Content-Encoding", "gzip")])
    assert_refused(get(px.port, "/u", [("X-Client", "web")]), b"content-coded")
    r = get(px.port, "/u", [("X-Client", "mobile")])
    assert r.status == 200 and r.body == body, r


def test_aggregated_document_over_max_body_is_502(gateway_factory, upstream_factory):
    """Generated documents (aggregation routes) follow the same rule: one
    over max_body is refused, not passed whole."""
    up = upstream_factory("up")
    port = h.free_port()
    route = {"name": "dash", "match": {"path_prefix": "/bff"},
             "aggregate": {"timeout": "2s", "calls": [{"key": "user", "upstream": "up", "path": "/users/7"}]},
             "plugins": [{"name": "response-shape", "config": shape_conf(max_body="200")}]}
    gateway_factory(h.gateway_config(port, {"up": h.upstream_conf([up.address])}, [route]))
    r = get(port, "/bff/x", [("X-Client", "web")])
    assert_refused(r, b"larger than max_body")
    r = get(port, "/bff/x", [("X-Client", "partner")])
    assert r.status == 200 and json.loads(r.body)["user"]["target"] == "/users/7", r  # passes whole


# RFC 8259 sets no limit on numbers: they are shaped, copied as written.
BIG_NUMBERS = [b"18446744073709551616", b"-99999999999999999999999999999999", b"1e400", b"-1.5E+99999",
               b"0.1234567890123456789012345678901234567890", b"123456789012345678901234567890e-500"]


@pytest.mark.parametrize("num", BIG_NUMBERS)
def test_big_numbers_are_shaped_as_written(proxy, num):
    px = start(proxy, shape_conf())
    body = b'{"id": %s, "internal_notes": "vip", "orders": [{"id": %s, "cost_price": %s}]}' % (num, num, num)
    serve_user(px, body=body)
    assert_exact_length(get(px.port, "/u", [("X-Client", "web")]),
                        b'{"id":%s,"orders":[{"id":%s}]}' % (num, num))
    assert_exact_length(get(px.port, "/u", [("X-Client", "partner")]), b'{"id":%s}' % num)


def test_scalar_root_untouched(proxy):
    px = start(proxy, shape_conf())
    serve_user(px, body=b' "just a string" ')
    r = get(px.port, "/u", [("X-Client", "partner")])
    assert r.status == 200 and r.body == b' "just a string" ', r


# ------------------------------------------------------------- framing ----
def test_chunked_upstream_json_shaped_with_content_length(proxy):
    px = start(proxy, shape_conf())
    pieces = [USER_BODY[i:i + 7] for i in range(0, len(USER_BODY), 7)]
    serve_user(px, chunks=pieces)
    r = get(px.port, "/u", [("X-Client", "mobile")])
    assert_exact_length(r, MOBILE)


def test_keepalive_responses_framed_exactly(proxy):
    px = start(proxy, shape_conf())
    serve_user(px)
    with h.Conn(px.port) as c:
        for client, want in (("mobile", MOBILE), ("web", WEB), ("partner", PARTNER), ("mobile", MOBILE)):
            c.send(h.build_request("GET", "/u", [("X-Client", client)]))
            r = c.read_response()
            assert_exact_length(r, want)


def test_pipelined_requests(proxy):
    px = start(proxy, shape_conf())
    serve_user(px)
    with h.Conn(px.port) as c:
        c.send(h.build_request("GET", "/u", [("X-Client", "mobile")]) +
               h.build_request("GET", "/u", [("X-Client", "partner")]))
        assert_exact_length(c.read_response(), MOBILE)
        assert_exact_length(c.read_response(), PARTNER)


@pytest.mark.parametrize("chunked", [False, True])
def test_oversize_passes_byte_identical(proxy, chunked):
    px = start(proxy, shape_conf(max_body="1KiB"))
    big = dict(USER, internal_notes="x" * 4000, pad=list(range(2000)))
    body = json.dumps(big, indent=1).encode()
    assert len(body) > 1024
    chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)] if chunked else None
    serve_user(px, body=body, chunks=chunks)
    r = get(px.port, "/u", [("X-Client", "partner")])
    assert r.status == 200 and r.complete, r
    assert r.body == body, "oversize body must pass byte for byte"
    # Exactly at the limit: shaped.
    small = json.dumps({"id": 1, "name": "n", "x": "y" * 900}).encode()
    small += b" " * (1024 - len(small))
    serve_user(px, path="/s", body=small)
    assert_exact_length(get(px.port, "/s", [("X-Client", "partner")]), b'{"id":1,"name":"n"}')


def test_head_request(proxy):
    px = start(proxy, shape_conf())
    serve_user(px)
    px.up.raw["/h"] = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n", False)
    with h.Conn(px.port) as c:
        c.send(h.build_request("HEAD", "/h", [("X-Client", "mobile")]))
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b"", r
        c.send(h.build_request("GET", "/u", [("X-Client", "mobile")]))
        assert_exact_length(c.read_response(), MOBILE)


def test_large_body_under_limit(proxy):
    px = start(proxy, shape_conf())
    items = [{"id": i, "name": "n%d" % i, "internal_notes": "z" * 50} for i in range(20000)]
    body = json.dumps(items).encode()
    assert len(body) > 1024 * 1024
    serve_user(px, body=body)
    r = get(px.port, "/u", [("X-Client", "partner")])
    want = json.dumps([{"id": i, "name": "n%d" % i} for i in range(20000)], separators=(",", ":")).encode()
    assert_exact_length(r, want)


# -------------------------------------------------------------- headers ----
def test_set_and_remove_headers(proxy):
    px = start(proxy, shape_conf())
    serve_user(px, extra=[("X-Internal-Trace", "t1"), ("Cache-Control", "public, max-age=3600"),
                          ("X-Keep", "k")])
    r = get(px.port, "/u", [("X-Client", "mobile")])
    assert_exact_length(r, MOBILE)
    assert r.header_all("cache-control") == ["private, max-age=60"]
    assert r.header_all("x-shape") == ["mobile"]
    assert r.header_all("x-internal-trace") == []
    assert r.header_all("x-keep") == ["k"]
    r = get(px.port, "/u", [("X-Client", "web")])
    assert r.header_all("cache-control") == ["public, max-age=3600"]
    assert r.header_all("x-internal-trace") == ["t1"]
    assert r.header_all("x-shape") == []


@pytest.mark.parametrize("upstream_vary,want", [
    (None, "X-Client"),
    ("Accept-Encoding", "Accept-Encoding, X-Client"),
    ("Origin,  x-client", "Origin,  x-client"),
    ("*", "*"),
])
def test_vary_merged(proxy, upstream_vary, want):
    px = start(proxy, shape_conf())
    extra = [("Vary", upstream_vary)] if upstream_vary else []
    serve_user(px, extra=extra)
    for client in ("mobile", "web", "nope"):
        r = get(px.port, "/u", [("X-Client", client)])
        assert r.header_all("vary") == [want], r


def test_etag_made_weak_when_shaped(proxy):
    px = start(proxy, shape_conf())
    serve_user(px, path="/strong", extra=[("ETag", '"v1"')])
    serve_user(px, path="/weak", extra=[("ETag", 'W/"v1"')])
    assert get(px.port, "/strong", [("X-Client", "mobile")]).header_all("etag") == ['W/"v1"']
    assert get(px.port, "/weak", [("X-Client", "mobile")]).header_all("etag") == ['W/"v1"']
    assert get(px.port, "/strong", [("X-Client", "headers_only")]).header_all("etag") == ['"v1"']


def test_accept_encoding_identity_reaches_upstream(proxy):
    px = start(proxy, shape_conf())
    for client, want in (("mobile", ["identity"]), ("web", ["identity"]), ("nope", ["identity"]),
                         ("headers_only", ["gzip, br"])):
        r = get(px.port, "/echo", [("X-Client", client), ("Accept-Encoding", "gzip, br")])
        assert r.status == 200, r
        rec = px.up.records[-1]
        got = [v for n, v in rec["headers"] if n.lower() == "accept-encoding"]
        assert got == want, (client, rec["headers"])


def test_content_coded_body_not_touched(proxy):
    px = start(proxy, shape_conf())
    body = b"\x1f\x8b\x08\x00not really gzip but opaque bytes"
    serve_user(px, body=body, extra=[("Content-Encoding", "gzip")])
    r = get(px.port, "/u", [("X-Client", "mobile")])
    assert r.status == 200 and r.body == body, r
    assert r.header("content-encoding") == "gzip"


# -------------------------------------------------------------- metrics ----
def scrape(admin_port):
    r = h.request(admin_port, "GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        name, _, value = line.rpartition(" ")
        if line.startswith("tollgate_response_shape_total{"):
            out[name[len("tollgate_response_shape_total"):]] = float(value)
        elif line.startswith("tollgate_response_shape_refused_total{"):
            out["refused" + name[len("tollgate_response_shape_refused_total"):]] = float(value)
    return {k: v for k, v in out.items() if v}


def test_metrics(gateway_factory, upstream_factory):
    up = upstream_factory("up")
    port, admin = h.free_port(), h.free_port()
    rt = h.route("all", "up", {"path_prefix": "/"})
    rt["plugins"] = [{"name": "response-shape", "config": shape_conf(max_body="1KiB")}]
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, [rt])
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    gateway_factory(cfg)
    up.raw["/ok"] = (raw_response(b'{"id":1,"x":2}'), False)
    up.raw["/bad"] = (raw_response(b'{"id":'), False)
    up.raw["/big"] = (raw_response(b'{"x":"' + b"y" * 5000 + b'"}'), False)
    up.raw["/text"] = (raw_response(b"hello", ctype="text/plain"), False)
    up.raw["/gz"] = (raw_response(b"x", extra=[("Content-Encoding", "gzip")]), False)
    for path, n in (("/ok", 3), ("/bad", 2), ("/big", 1), ("/text", 4)):
        for _ in range(n):
            assert h.request(port, "GET", path, headers=[("X-Client", "partner")]).status == 200
    for path, n in (("/bad", 3), ("/big", 2), ("/gz", 1)):  # web: on_invalid: error
        for _ in range(n):
            assert h.request(port, "GET", path, headers=[("X-Client", "web")]).status == 502
    deadline = time.monotonic() + 5
    want = {'{result="shaped"}': 3, '{result="invalid_json"}': 2, '{result="too_large"}': 1,
            '{result="passthrough"}': 4, '{result="refused"}': 6,
            'refused{reason="invalid_json"}': 3, 'refused{reason="too_large"}': 2,
            'refused{reason="content_encoding"}': 1}
    while True:
        got = scrape(admin)
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got == want


# ---------------------------------------------------------------- config ----
@pytest.mark.parametrize("conf,message", [
    ({"client": "header:X-C", "default": "nope", "profiles": {"a": {}}}, "default: unknown profile 'nope'"),
    ({"client": "cookie:x", "default": "a", "profiles": {"a": {}}}, "client must be"),
    ({"client": "user_agent", "default": "a", "profiles": {"a": {}}}, "needs user_agent"),
    ({"client": "user_agent", "user_agent": {"a": "("}, "default": "a", "profiles": {"a": {}}}, "bad regex"),
    ({"client": "user_agent", "user_agent": {"b": "x"}, "default": "a", "profiles": {"a": {}}},
     "unknown profile 'b'"),
    ({"client": "query:c", "user_agent": {"a": "x"}, "default": "a", "profiles": {"a": {}}},
     "only with client: user_agent"),
    ({"client": "query:c", "default": "a", "profiles": {"a": {"include": ["x..y"]}}}, "bad path 'x..y'"),
    ({"client": "query:c", "default": "a", "profiles": {"a": {"rename": {"x": ""}}}}, "empty new name"),
    ({"client": "query:c", "default": "a", "profiles": {"a": {"set_headers": {"Content-Length": "1"}}}},
     "cannot be changed"),
    ({"client": "query:c", "default": "a", "profiles": {"a": {"remove_headers": ["bad name"]}}},
     "is not a header name"),
    ({"client": "query:c", "default": "a", "profiles": {"a": {"extra": 1}}}, "unknown key 'extra'"),
    ({"client": "query:c", "default": "a", "max_body": "0", "profiles": {"a": {}}}, "max_body"),
    ({"client": "query:c", "profiles": {"a": {}}}, "missing required key 'default'"),
    ({"client": "query:c", "default": "a", "on_invalid": "drop", "profiles": {"a": {}}},
     "on_invalid must be pass or error, not 'drop'"),
    ({"client": "query:c", "default": "a", "profiles": {"a": {"on_invalid": True}}}, "on_invalid must be"),
    ({"client": "query:c", "default": "a", "profiles": {}}, "at least one profile"),
])
def test_config_errors(tmp_path, conf, message):
    rt = h.route("all", "up", {"path_prefix": "/"})
    rt["plugins"] = [{"name": "response-shape", "config": conf}]
    cfg = h.gateway_config(h.free_port(), {"up": h.upstream_conf(["127.0.0.1:9"])}, [rt])
    path = tmp_path / "bad.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(path)
    assert rc != 0
    assert message in err, err
    assert "bad.yaml:" in err, "errors carry FILE:LINE:COL: %s" % err


def test_example_config_passes_check():
    rc, err = h.run_check(os.path.join(h.REPO, "conf", "bff.yaml"))
    assert rc == 0, err
