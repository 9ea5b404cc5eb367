"""Route actions: redirect and respond (answered by the gateway, no upstream),
rewrite (regex groups and {path_rest} into the upstream path and query) and
host_header (pass, upstream, literal); their config errors."""

import json
import time

import pytest

import tg_harness as h


@pytest.fixture
def gw(gateway_factory, upstream_factory):
    """make(routes, plugins=None) -> (port, up); every route may name upstream "up"."""

    def make(routes, plugins=None, limits=None):
        up = upstream_factory("up")
        port = h.free_port()
        cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, routes, limits=limits)
        if plugins is not None:
            cfg["plugins"] = plugins
        gateway_factory(cfg)
        return port, up

    return make


def sent(up, i=-1):
    """What the upstream received: (target, {lower-case name: [values]})."""
    with up.lock:
        rec = up.records[i]
    headers = {}
    for n, v in rec["headers"]:
        headers.setdefault(n.lower(), []).append(v)
    return rec["target"], headers


# ---- redirect -----------------------------------------------------------------

DOCS = {"name": "old-docs", "match": {"path_prefix": "/docs/v1"},
        "redirect": {"to": "https://docs.example.com/v2{path_rest}", "status": 301}}


def test_redirect_location_byte_for_byte(gw):
    port, up = gw([DOCS])
    r = h.request(port, "GET", "/docs/v1/guide/a%20b?x=1")
    assert r.status == 301, r
    # {path_rest} keeps its canonical encoding; nginx `return`: no query unless asked
    assert r.header_all("Location") == ["https://docs.example.com/v2/guide/a%20b"]
    assert r.header("Content-Length") == "0" and r.body == b""
    assert r.header("X-Request-Id")
    r = h.request(port, "GET", "/docs/v1")
    assert r.header("Location") == "https://docs.example.com/v2"
    # canonicalised first: an encoded unreserved byte is decoded, dot segments are gone
    r = h.request(port, "GET", "/docs/v1/a/../%7Euser")
    assert r.header("Location") == "https://docs.example.com/v2/~user"
    r = h.request(port, "HEAD", "/docs/v1/x")
    assert r.status == 301 and r.body == b""
    assert r.header("Location") == "https://docs.example.com/v2/x"
    assert up.heads == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_statuses(gw, status):
    route = {"name": "r", "match": {"path": "/a"}, "redirect": {"to": "/b", "status": status}}
    port, up = gw([route])
    r = h.request(port, "GET", "/a")
    assert r.status == status and r.header("Location") == "/b"


def test_redirect_keep_query_and_default_status(gw):
    routes = [{"name": "keep", "match": {"path_prefix": "/old"},
               "redirect": {"to": "/new{path_rest}", "keep_query": True}},
              {"name": "merge", "match": {"path_prefix": "/m"},
               "redirect": {"to": "/n?from=m", "keep_query": True}}]
    port, up = gw(routes)
    r = h.request(port, "GET", "/old/x?a=1&b=%20")
    assert r.status == 302  # nginx `return URL`
    assert r.header("Location") == "/new/x?a=1&b=%20"
    assert h.request(port, "GET", "/m?a=1").header("Location") == "/n?from=m&a=1"
    assert h.request(port, "GET", "/m").header("Location") == "/n?from=m"


def test_redirect_cannot_be_turned_into_another_host(gw):
    """A client path can never make the Location protocol-relative or extend
    the host: "/{path_rest}" is refused at load, values in the path are
    encoded."""
    routes = [{"name": "r", "match": {"path_prefix": "/go"}, "redirect": {"to": "/to/{query.u}"}},
              {"name": "rest", "match": {"path_prefix": "/rest"}, "redirect": {"to": "/r{path_rest}"}}]
    port, up = gw(routes)
    r = h.request(port, "GET", "/go?u=//evil.example/x")
    assert r.header("Location") == "/to/%2F%2Fevil.example%2Fx"
    r = h.request(port, "GET", "/rest//evil.example/x")  # "//" is merged by canonicalisation
    assert r.header("Location") == "/r/evil.example/x"
    r = h.request(port, "GET", "/go?u=..")
    assert r.status == 400 and r.json()["error"] == "template value {query.u} is '..'"


def test_response_plugins_see_the_generated_reply(gw):
    """A redirect and a respond reply go through the response_head hooks, with
    their own headers visible (the headers plugin replaces Location)."""
    routes = [dict(DOCS, plugins=[{"name": "headers", "config": {
        "response": {"set": {"Location": "/moved"}, "add": {"X-Gw": "{route}"}}}}]),
        {"name": "m", "match": {"path_prefix": "/beta"},
         "respond": {"status": 503, "headers": {"Retry-After": "600"}},
         "plugins": [{"name": "headers", "config": {"response": {"remove": ["Retry-After"]}}}]}]
    port, up = gw(routes)
    r = h.request(port, "GET", "/docs/v1/x")
    assert r.status == 301
    assert r.header_all("Location") == ["/moved"]
    assert r.header("X-Gw") == "old-docs"
    r = h.request(port, "GET", "/beta")
    assert r.status == 503 and r.header("Retry-After") is None


def test_request_plugins_run_before_the_redirect(gw):
    """jwt refuses before the route answers, and the redirect reads its claims."""
    import jwt  # python3-jwt
    secret = "s" * 32
    route = {"name": "me", "match": {"path": "/me"}, "redirect": {"to": "/users/{jwt.sub}"},
             "plugins": [{"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": secret}]}}]}
    port, up = gw([route])
    assert h.request(port, "GET", "/me").status == 401
    token = jwt.encode({"sub": "a/b", "exp": int(time.time()) + 600}, secret, "HS256")
    r = h.request(port, "GET", "/me", headers=[("Authorization", "Bearer " + token)])
    assert r.status == 302 and r.header("Location") == "/users/a%2Fb"


# ---- respond ------------------------------------------------------------------

def test_respond(gw):
    routes = [{"name": "maintenance", "match": {"path_prefix": "/beta"},
               "respond": {"status": 503, "body": '{"error":"maintenance"}',
                           "headers": {"Retry-After": "600", "X-Route": "{route}",
                                       "X-User": "{header.X-User}"},
                           "content_type": "application/json"}},
              {"name": "hello", "match": {"path": "/hello"}, "respond": {"body": "hi\n"}},
              {"name": "gone", "match": {"path": "/gone"}, "respond": {"status": 204}}]
    port, up = gw(routes)
    r = h.request(port, "GET", "/beta/x")
    assert r.status == 503, r
    assert r.body == b'{"error":"maintenance"}'
    assert r.header("Content-Type") == "application/json"
    assert r.header("Content-Length") == str(len(r.body))
    assert r.header("Retry-After") == "600" and r.header("X-Route") == "maintenance"
    assert r.header("X-User") is None  # the variable is missing: the header is left out
    r = h.request(port, "GET", "/beta", headers=[("X-User", "alice")])
    assert r.header("X-User") == "alice"
    r = h.request(port, "GET", "/hello")
    assert (r.status, r.body, r.header("Content-Type")) == (200, b"hi\n", "text/plain; charset=utf-8")
    r = h.request(port, "GET", "/gone")
    assert r.status == 204 and r.header("Content-Type") is None
    # keep-alive: several answers on one connection
    with h.Conn(port) as c:
        for _ in range(3):
            c.send(h.build_request("GET", "/hello"))
            assert c.read_response().body == b"hi\n"
    assert up.heads == 0


def test_respond_header_value_cannot_be_split(gw):
    route = {"name": "r", "match": {"path": "/r"}, "respond": {"headers": {"X-Q": "{query.q}"}}}
    port, up = gw([route])
    r = h.request(port, "GET", "/r?q=a%0D%0AX-Evil:%201")
    assert r.status == 200
    assert r.header("X-Q") is None and r.header("X-Evil") is None
    assert h.request(port, "GET", "/r?q=a%20b").header("X-Q") == "a b"


# ---- rewrite ------------------------------------------------------------------

USERS = {"name": "users", "match": {"path_regex": "^/api/v(?<ver>[0-9]+)/users/(?<id>[^/]+)$"},
         "rewrite": "/users/{id}?api={ver}", "upstream": "up", "host_header": "upstream"}


def test_rewrite_with_regex_groups(gw):
    port, up = gw([USERS])
    r = h.request(port, "GET", "/api/v2/users/42?x=1")
    assert r.status == 200, r
    target, headers = sent(up)
    assert target == "/users/42?api=2&x=1"  # nginx: the template's query, then the client's
    assert headers["host"] == [up.address]
    r = h.request(port, "GET", "/api/v3/users/a%20b")
    assert sent(up)[0] == "/users/a%20b?api=3"
    r = h.request(port, "GET", "/api/v3/users/a:b@c")
    assert sent(up)[0] == "/users/a%3Ab%40c?api=3"


def test_rewrite_query_rules_and_path_rest(gw):
    routes = [{"name": "keep", "match": {"path_prefix": "/k"}, "rewrite": "/kept{path_rest}", "upstream": "up"},
              {"name": "drop", "match": {"path_prefix": "/d"}, "rewrite": "/dropped?", "upstream": "up"},
              {"name": "me", "match": {"path": "/me"}, "rewrite": "/users/{header.X-User}", "upstream": "up"}]
    port, up = gw(routes)
    h.request(port, "GET", "/k/a/b?x=1")
    assert sent(up)[0] == "/kept/a/b?x=1"
    h.request(port, "GET", "/d/a?x=1")
    assert sent(up)[0] == "/dropped"
    h.request(port, "GET", "/me", headers=[("X-User", "../admin")])
    assert sent(up)[0] == "/users/..%2Fadmin"
    n = up.requests
    r = h.request(port, "GET", "/me", headers=[("X-User", "..")])
    assert r.status == 400 and r.json()["error"] == "template value {header.X-User} is '..'"
    assert up.requests == n


# ---- host_header --------------------------------------------------------------

def test_host_header(gw):
    routes = [{"name": "pass", "match": {"path_prefix": "/p"}, "upstream": "up"},
              {"name": "up", "match": {"path_prefix": "/u"}, "upstream": "up", "host_header": "upstream"},
              {"name": "lit", "match": {"path_prefix": "/l"}, "upstream": "up", "host_header": "api.internal:8443"}]
    port, up = gw(routes)
    for path, want in (("/p", "client.example"), ("/u", up.address), ("/l", "api.internal:8443")):
        r = h.request(port, "GET", path, host="client.example")
        assert r.status == 200, r
        target, headers = sent(up)
        assert headers["host"] == [want], (path, headers)
        # the client's host stays the forwarded one
        assert headers["x-forwarded-host"] == ["client.example"]


# ---- config errors --------------------------------------------------------------

BASE = """listen:
  - address: "127.0.0.1:1"
upstreams:
  up: { targets: ["127.0.0.1:2"] }
routes:
  - name: r
"""


@pytest.mark.parametrize("route,where,msg", [
    ("    match: { path_regex: \"^/u/(?<id>[0-9]+)$\" }\n    upstream: up\n    rewrite: \"/users/{nope}\"\n",
     "9:14", "unknown template variable {nope}"),
    ("    match: { path_regex: \"^/u/(?<id>[0-9]+)$\" }\n    upstream: up\n    rewrite: \"/users/{path.nope}\"\n",
     "9:14", "path_regex has no group named 'nope'"),
    ("    upstream: up\n    redirect: { to: /x }\n",
     "8:15", "a route has one of upstream, split, aggregate, redirect and respond: 'upstream' and 'redirect' are both set"),
    ("    respond: { status: 200 }\n    redirect: { to: /x }\n",
     "8:15", "a route has one of upstream, split, aggregate, redirect and respond: 'respond' and 'redirect' are both set"),
    ("    redirect: { to: /x, status: 200 }\n", "7:33", "must be between 301 and 308"),
    ("    redirect: { to: /x, status: 305 }\n", "7:33", "a redirect status is 301, 302, 303, 307 or 308"),
    ("    match: { path_prefix: /go }\n    redirect: { to: \"/{path_rest}\" }\n",
     "8:21", "{path_rest} starts with '/' on this route: drop the '/' before it"),
    ("    redirect: { to: \"https://{query.host}/x\" }\n", "7:21", "invalid host in redirect URL"),
    ("    respond: { status: 600 }\n", "7:24", "status must be between 200 and 599"),
    ("    upstream: up\n    host_header: \"a b\"\n", "8:18", "host_header is pass, upstream or a valid host"),
])
def test_config_errors(tmp_path, route, where, msg):
    p = tmp_path / "bad.yaml"
    p.write_text(BASE + route)
    rc, err = h.run_check(p)
    assert rc == 1
    assert err.startswith("%s:%s: %s" % (p, where, msg)), err
