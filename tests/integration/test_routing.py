"""Path normalization, strip_prefix, route precedence and the 404 body."""

import pytest

import tg_harness as h


@pytest.fixture
def users(proxy):
    """/api/users (strip /api) plus a catch-all without stripping."""
    return proxy(routes=[h.route("users", "up", {"path_prefix": "/api/users"}, strip_prefix="/api"),
                         h.route("all", "up", {"path_prefix": "/"})])


@pytest.mark.parametrize("target,expected", [
    ("/api/users/./a/../b", "/users/b"),
    ("/%61pi/users", "/users"),
    ("/%61%70%69/users/%7euser", "/users/~user"),
    ("/api//users///x", "/users/x"),
    ("/api/users/a%20b?x=1&y=%2F", "/users/a%20b?x=1&y=%2F"),
    ("/api/users/./x?q=%2e%2E/../;&z=%7e", "/users/x?q=%2e%2E/../;&z=%7e"),
    ("/api/users", "/users"),
    ("/api/users/", "/users/"),
    ("/api/usersX", "/api/usersX"),  # segment-aware prefix: the catch-all takes it, no strip
    ("/other/./p/../q", "/other/q"),
])
def test_normalized_path_reaches_upstream(users, target, expected):
    r = h.request(users.port, "GET", target)
    assert r.status == 200, r
    assert r.json()["target"] == expected


@pytest.mark.parametrize("target", [
    "/api/users/..%2fadmin",
    "/api/users/..%2Fadmin",
    "/api/users/a%2fb",
    "/api/users/a;b",
    "/api/users/a%3bb",
    "/api/users/a%23b",
    "/api/users/a#b",
    "/api/users/a%5cb",
    "/api/users/a%00b",
    "/api/users/a%zzb",
    "/api/users/a%2",
])
def test_bad_paths_rejected(users, target):
    with h.Conn(users.port) as c:
        c.send(h.build_request("GET", target))
        r = c.read_response()
    assert r.status == 400, (target, r)
    assert users.up.heads == 0


@pytest.fixture
def routed(gateway_factory, upstream_factory):
    names = ["regex", "short", "long", "exact", "host", "wild", "method", "header", "v1"]
    ups = {n: upstream_factory(n) for n in names}
    port = h.free_port()
    upstreams = {n: h.upstream_conf([u.address]) for n, u in ups.items()}
    # File order is deliberately the reverse of precedence where it matters.
    routes = [
        h.route("regex", "regex", {"path_regex": "^/v[0-9]+/users/[0-9]+$"}),
        h.route("short", "short", {"path_prefix": "/p"}),
        h.route("long", "long", {"path_prefix": "/p/long"}),
        h.route("exact", "exact", {"path": "/p/long/x"}),
        h.route("v1", "v1", {"path_prefix": "/v1"}),
        h.route("host", "host", {"host": "api.example.com", "path_prefix": "/p"}),
        h.route("wild", "wild", {"host": "*.example.com", "path_prefix": "/p"}),
        h.route("method", "method", {"path_prefix": "/m", "methods": ["POST", "PUT"]}),
        h.route("m_any", "short", {"path_prefix": "/m"}),
        h.route("header", "header", {"path_prefix": "/hd", "headers": {"X-Env": "canary"}}),
        h.route("h_any", "short", {"path_prefix": "/hd"}),
    ]
    gw = gateway_factory(h.gateway_config(port, upstreams, routes))
    return gw


@pytest.mark.parametrize("method,target,host,headers,expected", [
    ("GET", "/p/long/x", "other.test", [], "exact"),
    ("GET", "/p/long/x/y", "other.test", [], "long"),
    ("GET", "/p/long", "other.test", [], "long"),
    ("GET", "/p/long/", "other.test", [], "long"),
    ("GET", "/p/longer", "other.test", [], "short"),
    ("GET", "/p", "other.test", [], "short"),
    ("GET", "/v2/users/5", "other.test", [], "regex"),
    ("GET", "/v1/users/5", "other.test", [], "v1"),
    ("GET", "/p/long/x", "api.example.com", [], "host"),
    ("GET", "/p/q", "API.Example.COM:8080", [], "host"),
    ("GET", "/p/q", "foo.example.com", [], "wild"),
    ("GET", "/p/q", "a.b.example.com", [], "wild"),
    ("GET", "/v2/users/7", "api.example.com", [], "regex"),
    ("POST", "/m/x", "other.test", [], "method"),
    ("PUT", "/m", "other.test", [], "method"),
    ("GET", "/m/x", "other.test", [], "short"),
    ("GET", "/hd/x", "other.test", [("X-Env", "canary")], "header"),
    ("GET", "/hd/x", "other.test", [("x-env", "canary")], "header"),
    ("GET", "/hd/x", "other.test", [("X-Env", "Canary")], "short"),
    ("GET", "/hd/x", "other.test", [], "short"),
])
def test_route_precedence(routed, method, target, host, headers, expected):
    body = b"x" if method in ("POST", "PUT") else b""
    r = h.request(routed.port, method, target, headers, body=body, host=host)
    assert r.status == 200, r
    assert r.header("x-upstream-name") == expected, r
    assert r.json()["target"] == target


@pytest.mark.parametrize("target,host", [
    ("/nothing", "other.test"),
    ("/pX", "other.test"),
    ("/v2/users/5/x", "other.test"),
    ("/v2/users/abc", "other.test"),
    ("/", "api.example.com"),
])
def test_no_route_is_404_json(routed, target, host):
    r = h.request(routed.port, "GET", target, host=host)
    assert r.status == 404, r
    assert (r.header("content-type") or "").split(";")[0].strip() == "application/json", r.headers
    j = r.json()
    assert "error" in j and "request_id" in j, j
    assert j["request_id"] == r.header("x-request-id"), (j, r.headers)
    assert j["request_id"]
