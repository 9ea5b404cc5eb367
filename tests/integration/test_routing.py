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
    # one canonical spelling: encoded sub-delims, ":" and "@" are decoded, the
    # rest stays encoded with upper-case hex, never decoded twice
    ("/api/users/42%3Acancel", "/users/42:cancel"),
    ("/api/users/%21%24%26%27%28%29%2a%2B%2c%3d%3a%40", "/users/!$&'()*+,=:@"),
    ("/api/users/a%3fb%7b%c3%a9", "/users/a%3Fb%7B%C3%A9"),
    ("/api/users/a%252Fb%252e%252e", "/users/a%252Fb%252e%252e"),
    ("/api/users/x/z/%2E./%2e%2E/y", "/users/y"),
    ("/api/users/%c0%ae%c0%ae/y", "/users/%C0%AE%C0%AE/y"),
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
    "/api/users/a%3Bx=1",
    "/api/users/a%%3Ab",
    "/api/users/a%3",
    "/api/users/a%G0",
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


# ---- one canonical path for routing, plugins and the upstream --------------

OPS_SECRET = "it-path-hs256-secret-0123456789abcdef"


@pytest.fixture
def ops(gateway_factory, upstream_factory):
    """A jwt-protected regex route for ".../<id>:cancel", a route whose path is
    written encoded in the config, and an open catch-all."""
    secure, named, open_ = upstream_factory("secure"), upstream_factory("named"), upstream_factory("open")
    port = h.free_port()
    jwt_plugin = {"name": "jwt", "config": {"keys": [{"kid": "k", "algorithm": "HS256", "secret": OPS_SECRET}]}}
    cancel = h.route("cancel", "secure", {"path_regex": "^/v1/ops/[^/]+:cancel$"})
    cancel["plugins"] = [jwt_plugin]
    routes = [cancel,
              h.route("named", "named", {"path": "/v1/a%3ab"}),
              h.route("all", "open")]  # no path condition: after regexes (docs/design.md)
    ups = {n: h.upstream_conf([u.address]) for n, u in
           (("secure", secure), ("named", named), ("open", open_))}
    gateway_factory(h.gateway_config(port, ups, routes))
    return port, secure, named, open_


def ops_token():
    import jwt  # python3-jwt: an implementation independent of the gateway's
    return jwt.encode({"sub": "alice"}, OPS_SECRET.encode(), "HS256", headers={"kid": "k"})


@pytest.mark.parametrize("target", ["/v1/ops/42%3Acancel", "/v1/ops/42%3acancel",
                                    "/v1/ops/%34%32%3Acancel", "/v1/ops/x/../42%3Acancel"])
def test_encoded_colon_meets_the_protected_route(ops, target):
    port, secure, named, open_ = ops
    r = h.request(port, "GET", target)
    assert r.status == 401, r  # the jwt route, not the open catch-all
    assert secure.heads == 0 and open_.heads == 0
    r = h.request(port, "GET", target, headers=[("Authorization", "Bearer " + ops_token())])
    assert r.status == 200, r
    assert r.header("x-upstream-name") == "secure"
    assert r.json()["target"] == "/v1/ops/42:cancel"  # the upstream sees the decoded spelling
    assert open_.heads == 0


@pytest.mark.parametrize("target", ["/v1/a:b", "/v1/a%3Ab", "/v1/a%3ab", "/v1/%61%3a%62"])
def test_route_path_is_canonical_at_load(ops, target):
    port, secure, named, open_ = ops
    r = h.request(port, "GET", target)
    assert r.status == 200, r
    assert r.header("x-upstream-name") == "named"
    assert r.json()["target"] == "/v1/a:b"


@pytest.mark.parametrize("path,msg", [
    ("/a;b", "path parameter in path"),
    ("/a%3Bb", "encoded path parameter in path"),
    ("/a%2Fb", "encoded slash in path"),
    ("/a%zz", "malformed percent-encoding in path"),
])
def test_uncanonicalisable_route_path_is_a_config_error(tmp_path, path, msg):
    text = ('listen:\n  - address: "127.0.0.1:1"\nupstreams:\n  u: { targets: ["127.0.0.1:2"] }\n'
            'routes:\n  - name: r\n    match: { path_prefix: "%s" }\n    upstream: u\n' % path)
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    rc, err = h.run_check(p)
    assert rc == 1
    assert err.startswith("%s:7:27: invalid path '%s': %s" % (p, path, msg)), err


@pytest.fixture
def slashes(gateway_factory, upstream_factory):
    def make(mode):
        up, other = upstream_factory("repo"), upstream_factory("other")
        port = h.free_port()
        routes = [h.route("repo", "repo", {"path_prefix": "/api/projects"}, strip_prefix="/api"),
                  h.route("group", "repo", {"path": "/api/projects/g%2fn/raw"}),
                  h.route("all", "other", {"path_prefix": "/"})]
        limits = {"encoded_slashes": mode} if mode else None
        cfg = h.gateway_config(port, {"repo": h.upstream_conf([up.address]),
                                      "other": h.upstream_conf([other.address])}, routes, limits=limits)
        if mode != "keep":
            cfg["routes"].pop(1)  # a route naming %2F is a config error unless keep
        gateway_factory(cfg)
        return port, up, other
    return make


@pytest.mark.parametrize("target,name,expected", [
    ("/api/projects/group%2Fname/issues", "repo", "/projects/group%2Fname/issues"),
    ("/api/projects/group%2fname", "repo", "/projects/group%2Fname"),
    # never a separator: no dot-segment removal across it, no prefix boundary
    ("/api/projects/..%2Fadmin", "repo", "/projects/..%2Fadmin"),
    ("/api/projects/%2e%2e%2f..%2fadmin", "repo", "/projects/..%2F..%2Fadmin"),
    ("/api/projects/a/%2F/../b", "repo", "/projects/a/b"),
    ("/api/projects%2Fx", "other", "/api/projects%2Fx"),
    ("/api%2Fprojects/x", "other", "/api%2Fprojects/x"),
    ("/api/projects/%252F", "repo", "/projects/%252F"),
    ("/api/projects/g%2Fn/raw", "repo", "/api/projects/g%2Fn/raw"),  # the exact route, no strip
])
def test_encoded_slashes_keep(slashes, target, name, expected):
    port, up, other = slashes("keep")
    r = h.request(port, "GET", target)
    assert r.status == 200, r
    assert r.header("x-upstream-name") == name
    assert r.json()["target"] == expected


@pytest.mark.parametrize("mode", [None, "reject", "keep"])
@pytest.mark.parametrize("target", ["/api/projects/a%5Cb", "/api/projects/a%3Bb", "/api/projects/a%23b",
                                    "/api/projects/a%00b"])
def test_encoded_slashes_keep_changes_nothing_else(slashes, mode, target):
    port, up, other = slashes(mode)
    r = h.request(port, "GET", target)
    assert r.status == 400, r
    assert up.heads == 0 and other.heads == 0


@pytest.mark.parametrize("mode", [None, "reject"])
def test_encoded_slashes_reject(slashes, mode):
    port, up, other = slashes(mode)
    with h.Conn(port) as c:
        c.send(h.build_request("GET", "/api/projects/group%2Fname"))
        r = c.read_response()
    assert r.status == 400, r
    assert "encoded slash" in r.json()["error"]
    assert up.heads == 0 and other.heads == 0
