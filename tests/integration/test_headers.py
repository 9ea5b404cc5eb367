"""The headers plugin: request set/add/remove/rename and response
set/add/remove, values as templates rendered per request, fields the gateway
owns refused at load, no value a client can smuggle in."""

import time

import pytest

import tg_harness as h


@pytest.fixture
def gw(gateway_factory, upstream_factory):
    """make(config, limits=None, global_=False, extra=(), prefix="/") -> (port, up)."""

    def make(config, limits=None, global_=False, extra=(), prefix="/"):
        up = upstream_factory("up")
        port = h.free_port()
        plugins = list(extra) + [{"name": "headers", "config": config}]
        route = h.route("api", "up", {"path_prefix": prefix})
        if not global_:
            route["plugins"] = plugins
        cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, [route], limits=limits)
        if global_:
            cfg["plugins"] = plugins
        gateway_factory(cfg)
        return port, up

    return make


def sent(up):
    """Headers the upstream received: [(lower-case name, value)] in order."""
    with up.lock:
        rec = up.records[-1]
    return [(n.lower(), v) for n, v in rec["headers"]]


def values(headers, name):
    return [v for n, v in headers if n == name.lower()]


def test_request_transforms(gw):
    port, up = gw({"request": {
        "set": {"X-Gateway": "tollgate", "X-Client": "{client_ip} {route} {request_id}"},
        "add": {"X-Tag": "a"},
        "remove": ["X-Debug"],
        "rename": {"X-Old": "X-New"}}})
    r = h.request(port, "GET", "/x", headers=[
        ("X-Gateway", "evil"), ("X-Tag", "b"), ("X-Debug", "1"), ("X-Debug", "2"),
        ("X-Old", "o1"), ("X-Old", "o2"), ("X-New", "spoofed")])
    assert r.status == 200, r
    hs = sent(up)
    assert values(hs, "X-Gateway") == ["tollgate"]
    assert values(hs, "X-Client") == ["127.0.0.1 api %s" % r.header("X-Request-Id")]
    assert values(hs, "X-Tag") == ["b", "a"]
    assert values(hs, "X-Debug") == []
    assert values(hs, "X-Old") == [] and values(hs, "X-New") == ["o1", "o2"]
    # absent: nothing renamed, nothing set for it
    h.request(port, "GET", "/x", headers=[("X-New", "kept")])
    assert values(sent(up), "X-New") == ["kept"]


def test_set_cannot_be_smuggled_past(gw):
    """set replaces every instance, also a '_' spelling the upstream would read
    as the same name, whatever limits.headers_with_underscores allows."""
    port, up = gw({"request": {"set": {"X-User": "{header.X-Src}"}}},
                  limits={"headers_with_underscores": "allow"})
    h.request(port, "GET", "/x", headers=[("X-User", "evil"), ("X_User", "evil2"), ("x-user", "evil3"),
                                          ("X-Src", "alice")])
    hs = sent(up)
    assert [v for n, v in hs if n.replace("_", "-") == "x-user"] == ["alice"]


def test_unrenderable_value_leaves_the_header_out(gw):
    """A missing variable or one that is not a valid field value (CR, LF, NUL)
    sets nothing, and the client's own copies are still removed: never a 500,
    never a header the client chose, never a split header."""
    port, up = gw({"request": {"set": {"X-User": "{query.u}", "X-Sub": "{jwt.sub}"},
                               "add": {"X-Add": "{query.u}"}}})
    r = h.request(port, "GET", "/x?u=a%0D%0AX-Evil:%201", headers=[("X-User", "client"), ("X-Sub", "client")])
    assert r.status == 200, r
    hs = sent(up)
    assert values(hs, "X-User") == [] and values(hs, "X-Sub") == [] and values(hs, "X-Add") == []
    assert values(hs, "X-Evil") == []
    for q in ("u=a%00b", "u=a%0Ab", "u=a%0Db"):
        assert h.request(port, "GET", "/x?" + q).status == 200
        assert values(sent(up), "X-User") == []
    h.request(port, "GET", "/x?u=a+b%2Fc")
    assert values(sent(up), "X-User") == ["a b/c"]
    assert values(sent(up), "X-Add") == ["a b/c"]


def test_jwt_claims_in_templates(gw):
    import jwt  # python3-jwt
    secret = "s" * 32
    port, up = gw({"request": {"set": {"X-User": "{jwt.sub}", "X-Groups": "{jwt.groups}"}}},
                  extra=[{"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": secret}]}}])
    token = jwt.encode({"sub": "alice", "groups": ["a", "b"], "exp": int(time.time()) + 600}, secret, "HS256")
    h.request(port, "GET", "/x", headers=[("Authorization", "Bearer " + token), ("X-User", "mallory")])
    hs = sent(up)
    assert values(hs, "X-User") == ["alice"]
    assert values(hs, "X-Groups") == ['["a","b"]']
    bad = jwt.encode({"sub": "a\r\nX-Evil: 1", "exp": int(time.time()) + 600}, secret, "HS256")
    h.request(port, "GET", "/x", headers=[("Authorization", "Bearer " + bad), ("X-User", "mallory")])
    hs = sent(up)
    assert values(hs, "X-User") == [] and values(hs, "X-Evil") == []


def test_response_transforms(gw):
    port, up = gw({"response": {
        "set": {"Strict-Transport-Security": "max-age=31536000", "X-Seen": "{header.X-In}"},
        "add": {"X-Route": "{route}"},
        "remove": ["Server", "X-Powered-By"]}})
    body = b"ok"
    up.raw["/r"] = (b"HTTP/1.1 200 OK\r\nServer: secret/1.0\r\nX-Powered-By: PHP\r\n"
                    b"Strict-Transport-Security: max-age=0\r\nX-Route: upstream\r\n"
                    b"Content-Length: 2\r\n\r\n" + body, False)
    r = h.request(port, "GET", "/r", headers=[("X-In", "v")])
    assert r.status == 200 and r.body == body
    assert r.header("Server") is None and r.header("X-Powered-By") is None
    assert r.header_all("Strict-Transport-Security") == ["max-age=31536000"]
    assert r.header_all("X-Route") == ["upstream", "api"]
    assert r.header("X-Seen") == "v"
    assert r.header("Content-Length") == "2"
    # a missing variable: the upstream's value goes too (set replaces every instance)
    up.raw["/s"] = (b"HTTP/1.1 200 OK\r\nX-Seen: upstream\r\nContent-Length: 0\r\n\r\n", False)
    r = h.request(port, "GET", "/s")
    assert r.header("X-Seen") is None


def test_generated_replies_get_response_transforms(gw):
    """A global headers plugin's response side also runs on a 404 without a
    route and on a 502."""
    port, up = gw({"response": {"set": {"X-Frame-Options": "DENY"}}}, global_=True, prefix="/x")
    r = h.request(port, "GET", "/x")
    assert r.status == 200 and r.header("X-Frame-Options") == "DENY"
    r = h.request(port, "GET", "/nothing")
    assert r.status == 404 and r.header("X-Frame-Options") == "DENY"
    up.stop()
    r = h.request(port, "GET", "/x")
    assert r.status == 502 and r.header("X-Frame-Options") == "DENY"


BASE = """listen:
  - address: "127.0.0.1:1"
upstreams:
  up: { targets: ["127.0.0.1:2"] }
routes:
  - upstream: up
    plugins:
      - name: headers
        config:
"""


@pytest.mark.parametrize("conf,where,msg", [
    ("          request: { remove: [Content-Length] }\n", "10:31",
     "'Content-Length' is a field the gateway owns"),
    ("          request: { set: { Host: x } }\n", "10:29", "'Host' is a field the gateway owns"),
    ("          request: { rename: { X-A: Transfer-Encoding } }\n", "10:37",
     "'Transfer-Encoding' is a field the gateway owns"),
    ("          request: { rename: { X_Request_Id: X-B } }\n", "10:32", "'X_Request_Id' is a field the gateway owns"),
    ("          response: { remove: [X-Request-Id] }\n", "10:32", "'X-Request-Id' is a field the gateway owns"),
    ("          response: { add: { Connection: close } }\n", "10:30", "'Connection' is a field the gateway owns"),
    ("          request: { set: { \"Bad Name\": x } }\n", "10:29", "invalid header name 'Bad Name'"),
    ("          request: { set: { X-A: \"{bogus}\" } }\n", "10:34", "unknown template variable {bogus}"),
    ("          request: { set: { X-A: \"{path.id}\" } }\n", "10:34",
     "{path.id}: path groups exist only in route templates"),
    ("          request: { set: { X-A: \"a\\r\\nb\" } }\n", "10:34", "template text is not a valid header value"),
    ("          request: { sett: {} }\n", "10:22", "unknown key 'sett' in request (did you mean 'set'?)"),
    ("          response: { rename: { A: B } }\n", "10:23", "unknown key 'rename' in response"),
])
def test_config_errors(tmp_path, conf, where, msg):
    p = tmp_path / "bad.yaml"
    p.write_text(BASE + conf)
    rc, err = h.run_check(p)
    assert rc == 1
    assert err.startswith("%s:%s: %s" % (p, where, msg)), err
