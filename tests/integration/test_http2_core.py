"""The integration suite's core scenarios over HTTP/2 (h2c with prior
knowledge): routing (host, prefix, strip_prefix), jwt, rate-limit, response
shaping, and the error replies (404, 413, 502, 504), each answered as it is
over HTTP/1.1, and all of them at once as streams of one connection."""

import json
import time

import jwt
import pytest

import tg_harness as h
from test_http2 import H2

SECRET = "h2-core-test-secret-of-at-least-32-bytes!"
SHAPED_UPSTREAM = b'{"id":7,"name":"Ann","internal":"x","orders":[{"id":1,"cost":3}]}'


@pytest.fixture
def core(gateway_factory, upstream_factory):
    up = upstream_factory("up")
    up.raw["/shape/u"] = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(SHAPED_UPSTREAM), SHAPED_UPSTREAM), False)
    port = h.free_port()
    dead = h.free_port()  # nothing listens there
    ups = {"up": h.upstream_conf([up.address]),
           "slow": h.upstream_conf([up.address], timeout="300ms", retries=0),
           "down": h.upstream_conf(["127.0.0.1:%d" % dead], retries=0, max_fails=0)}
    routes = [
        {"name": "host", "match": {"host": "h2.test", "path_prefix": "/h"}, "strip_prefix": "/h",
         "upstream": "up"},
        {"name": "jwt", "match": {"path_prefix": "/jwt"}, "upstream": "up",
         "plugins": [{"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": SECRET}],
                                                "forward_claims": {"sub": "X-User-Id"}}}]},
        {"name": "rl", "match": {"path_prefix": "/rl"}, "upstream": "up",
         "plugins": [{"name": "rate-limit", "config": {"key": "ip", "backend": "local",
                                                       "limits": [{"rate": 1, "per": "1m", "burst": 2}]}}]},
        {"name": "shape", "match": {"path_prefix": "/shape"}, "upstream": "up",
         "plugins": [{"name": "response-shape", "config": {
             "client": "header:X-Client", "default": "full",
             "profiles": {"full": {"exclude": ["nothing"]},
                          "mobile": {"include": ["id", "name", "orders[].id"]}}}}]},
        {"name": "slow", "match": {"path_prefix": "/slow"}, "upstream": "slow"},
        {"name": "down", "match": {"path_prefix": "/down"}, "upstream": "down"},
        h.route("api", "up", {"path_prefix": "/api"}),
    ]
    cfg = h.gateway_config(port, ups, routes, limits={"max_body_size": "1KiB"}, workers=1)
    cfg["listen"][0]["http2"] = "prior_knowledge"
    gateway_factory(cfg, port=port)
    return port


def tok(sub="u-1"):
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 300}, SECRET, "HS256")


def check(c, path, want_status, headers=(), authority="api.test", method="GET", body=None):
    st = c.wait(c.request(path, headers=headers, authority=authority, method=method, body=body))
    assert st["headers"] is not None, (path, st)
    assert int(st["headers"][":status"]) == want_status, (path, st)
    return st


def test_routing(core):
    with H2(core) as c:
        st = check(c, "/h/x?q=1", 200, authority="h2.test")
        assert json.loads(st["data"])["target"] == "/x?q=1"
        check(c, "/h/x", 404, authority="other.test")
        st = check(c, "/nowhere", 404)
        assert json.loads(st["data"])["error"] == "no route"


def test_jwt(core):
    with H2(core) as c:
        st = check(c, "/jwt/me", 401)
        assert "www-authenticate" in st["headers"]
        st = check(c, "/jwt/me", 200, headers=[("authorization", "Bearer " + tok("ann"))])
        hs = {k.lower(): v for k, v in json.loads(st["data"])["headers"]}
        assert hs["x-user-id"] == "ann"
        check(c, "/jwt/me", 401, headers=[("authorization", "Bearer " + tok()[:-3] + "abc")])


def test_rate_limit(core):
    with H2(core) as c:
        got = [check(c, "/rl/x", s) for s in (200, 200, 429)]
        assert [g["headers"].get("ratelimit-remaining") for g in got] == ["1", "0", "0"]
        assert "retry-after" in got[2]["headers"]


def test_response_shaping(core):
    with H2(core) as c:
        st = check(c, "/shape/u", 200, headers=[("x-client", "mobile")])
        assert st["data"] == b'{"id":7,"name":"Ann","orders":[{"id":1}]}'
        assert st["headers"]["content-length"] == str(len(st["data"]))
        st = check(c, "/shape/u", 200)
        assert json.loads(st["data"]) == json.loads(SHAPED_UPSTREAM)


def test_error_replies(core):
    with H2(core) as c:
        for path, status, msg in [("/down/x", 502, "upstream connect failed"),
                                  ("/slow/delay/1000", 504, "upstream timed out")]:
            st = check(c, path, status)
            doc = json.loads(st["data"])
            assert doc["error"] == msg and doc["request_id"] == st["headers"]["x-request-id"]
        st = check(c, "/api/up", 413, method="POST", body=b"x" * 2000,
                   headers=[("content-length", "2000")])
        assert json.loads(st["data"])["error"] == "request body too large"


def test_all_at_once_on_one_connection(core):
    with H2(core) as c:
        want = {}
        for i in range(8):
            want[c.request("/h/%d" % i, authority="h2.test")] = 200
            want[c.request("/jwt/%d" % i, headers=[("authorization", "Bearer " + tok())])] = 200
            want[c.request("/jwt/%d" % i)] = 401
            want[c.request("/shape/u", headers=[("x-client", "mobile")])] = 200
            want[c.request("/down/%d" % i)] = 502
        for sid, status in want.items():
            st = c.wait(sid)
            assert int(st["headers"][":status"]) == status, st


def test_heads_the_http11_rules_refuse(core):
    # What request_head.c refuses over HTTP/1.1 it refuses over h2: same
    # status, same JSON reply, the connection goes on.
    with H2(core) as c:
        st = check(c, "/api/x", 400, authority="bad_host!")
        assert json.loads(st["data"])["request_id"] == st["headers"]["x-request-id"]
        st = check(c, "/api/%2e%2e/%zz", 400)
        check(c, "/api/fine", 200)
