"""The bundled cors plugin through the real binary, over raw sockets: the
preflight answered at the gateway (204 allowed, 403 refused, never
forwarded), actual requests from allowed and other origins, the upstream's
own CORS headers replaced, Vary, wildcard origins against look-alikes,
origins ["*"], and cors in front of key-auth. A real browser's view is
tests/integration/test_cors_browser.py."""

import hashlib
import json

import pytest

import tg_harness as h

APP = "https://app.example.com"
ALL_CORS = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
            "access-control-allow-headers", "access-control-expose-headers", "access-control-max-age")

CONF = {"origins": [APP, "https://*.example.org"], "methods": ["GET", "POST", "PUT", "DELETE"],
        "headers": ["Authorization", "Content-Type", "X-Trace"], "expose_headers": ["X-Upstream-Name", "X-Total"],
        "credentials": True, "max_age": "10m"}


def start(gateway_factory, upstream, conf=None, plugins=None):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])},
                           [h.route("all", "up", {"path_prefix": "/"})])
    cfg["plugins"] = plugins if plugins is not None else [{"name": "cors", "config": conf or CONF}]
    return gateway_factory(cfg, port=port), port


def preflight(port, origin=APP, method="PUT", headers="content-type,x-trace", target="/api/x"):
    hs = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if headers is not None:
        hs.append(("Access-Control-Request-Headers", headers))
    return h.request(port, "OPTIONS", target, hs)


def cors_headers(r):
    return {n.lower(): v for n, v in r.headers if n.lower() in ALL_CORS}


def test_preflight_allowed(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream)
    r = preflight(port)
    assert r.status == 204, r
    assert cors_headers(r) == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, PUT, DELETE",
        "access-control-allow-headers": "Authorization, Content-Type, X-Trace",
        "access-control-max-age": "600",
    }
    assert r.header_all("Vary") == ["Origin"]
    assert r.body == b""
    # no headers asked: no Allow-Headers; a safelisted method is allowed as the browser would
    r = preflight(port, origin="https://a.b.example.org", method="POST", headers=None)
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Origin") == "https://a.b.example.org"
    assert r.header("Access-Control-Allow-Headers") is None
    assert upstream.requests == 0  # never forwarded


@pytest.mark.parametrize("origin, method, headers", [
    ("https://evil.com", "PUT", "content-type"),
    ("https://app.example.com.evil.com", "PUT", None),
    ("https://evilexample.org", "PUT", None),
    ("https://example.org", "PUT", None),
    ("http://app.example.com", "PUT", None),
    ("null", "PUT", None),
    (APP, "PATCH", None),            # method not allowed
    (APP, "put", None),              # methods are case-sensitive
    (APP, "PUT", "x-trace,x-other"),  # a header not allowed
    (APP, "PUT", "x trace"),
    (APP, "", None),
])
def test_preflight_refused_without_cors_headers(gateway_factory, upstream, origin, method, headers):
    _, port = start(gateway_factory, upstream)
    r = preflight(port, origin=origin, method=method, headers=headers)
    assert r.status == 403, r
    assert cors_headers(r) == {}
    assert r.header_all("Vary") == ["Origin"]
    assert r.json()["error"] == "CORS preflight refused"
    assert upstream.requests == 0


def test_preflight_with_two_origins_refused(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream)
    r = h.request(port, "OPTIONS", "/x", [("Origin", APP), ("Origin", APP),
                                          ("Access-Control-Request-Method", "PUT")])
    assert r.status == 403 and cors_headers(r) == {}
    assert upstream.requests == 0


def test_options_without_request_method_is_forwarded(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream)
    r = h.request(port, "OPTIONS", "/x", [("Origin", APP)])
    assert r.status == 200, r
    assert json.loads(r.body)["method"] == "OPTIONS"
    assert r.header("Access-Control-Allow-Origin") == APP


def upstream_with_cors(upstream, path="/raw/cors"):
    upstream.raw[path] = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVary: Accept-Encoding\r\n"
                          b"Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: TRACE\r\n"
                          b"Access-Control-Allow-Credentials: false\r\nAccess-Control-Expose-Headers: X-Secret\r\n"
                          b"Access-Control-Max-Age: 99\r\nX-Total: 7\r\n\r\nok", False)


def test_actual_request_from_an_allowed_origin(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream)
    upstream_with_cors(upstream)
    r = h.request(port, "GET", "/raw/cors", [("Origin", APP)])
    assert r.status == 200, r
    # the upstream's own CORS headers are replaced by the gateway's
    assert cors_headers(r) == {"access-control-allow-origin": APP, "access-control-allow-credentials": "true",
                               "access-control-expose-headers": "X-Upstream-Name, X-Total"}
    assert r.header_all("Vary") == ["Accept-Encoding", "Origin"]
    r = h.request(port, "POST", "/x", [("Origin", "https://deep.sub.example.org")], body=b"{}")
    assert r.header("Access-Control-Allow-Origin") == "https://deep.sub.example.org"


@pytest.mark.parametrize("origin", ["https://evil.com", "null", "https://app.example.com.evil.com", None])
def test_other_origins_are_forwarded_without_cors_headers(gateway_factory, upstream, origin):
    _, port = start(gateway_factory, upstream)
    upstream_with_cors(upstream)
    r = h.request(port, "GET", "/raw/cors", [("Origin", origin)] if origin else [])
    assert r.status == 200 and r.body == b"ok"
    assert cors_headers(r) == {}  # the upstream's "*" is gone too
    assert r.header_all("Vary") == ["Accept-Encoding", "Origin"]
    assert upstream.requests == 1


def test_vary_not_repeated(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream)
    upstream.raw["/v"] = (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVary: origin, accept\r\n\r\n", False)
    assert h.request(port, "GET", "/v", [("Origin", APP)]).header_all("Vary") == ["origin, accept"]
    upstream.raw["/s"] = (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVary: *\r\n\r\n", False)
    assert h.request(port, "GET", "/s", [("Origin", APP)]).header_all("Vary") == ["*"]


def test_any_origin(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream, conf={"origins": ["*"], "headers": ["*"]})
    r = h.request(port, "GET", "/x", [("Origin", "https://whoever.test")])
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Access-Control-Allow-Credentials") is None
    assert r.header("Vary") is None
    assert h.request(port, "GET", "/x").header("Access-Control-Allow-Origin") == "*"
    r = preflight(port, origin="https://whoever.test", method="DELETE", headers="x-a,x-b")
    assert r.status == 204
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Access-Control-Allow-Headers") == "x-a,x-b"  # the asked names, never "*"


def test_cors_in_front_of_key_auth(gateway_factory, upstream, tmp_path):
    """cors first: the preflight (no key) is answered, the actual request
    needs the key, and its 401 carries CORS headers so the page can read it."""
    key = "k_live_0123"
    (tmp_path / "keys.yaml").write_text('consumers:\n  - { name: app, sha256: "%s" }\n'
                                        % hashlib.sha256(key.encode()).hexdigest())
    plugins = [{"name": "cors", "config": dict(CONF, headers=["X-Api-Key"])},
               {"name": "key-auth", "config": {"keys_file": str(tmp_path / "keys.yaml")}}]
    _, port = start(gateway_factory, upstream, plugins=plugins)
    assert preflight(port, headers="x-api-key").status == 204
    r = h.request(port, "GET", "/x", [("Origin", APP)])
    assert r.status == 401
    assert r.header("Access-Control-Allow-Origin") == APP
    assert r.header("Vary") == "Origin"
    r = h.request(port, "GET", "/x", [("Origin", APP), ("X-Api-Key", key)])
    assert r.status == 200 and r.header("Access-Control-Allow-Origin") == APP


def test_cors_after_key_auth_warns(tmp_path):
    (tmp_path / "keys.yaml").write_text("consumers: []\n")
    cfg = h.gateway_config(1, {"up": h.upstream_conf(["127.0.0.1:2"])}, [h.route("all", "up", {"path_prefix": "/"})])
    cfg["plugins"] = [{"name": "key-auth", "config": {"keys_file": "keys.yaml"}},
                      {"name": "cors", "config": {"origins": [APP]}}]
    path = tmp_path / "c.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(path)
    assert rc == 0, err
    assert "cors runs after key-auth: preflights" in err, err


@pytest.mark.parametrize("conf, message", [
    ({"origins": ["*"], "credentials": True}, '"*" with credentials: true'),
    ({"origins": ["https://a.com/"]}, "an origin has no path"),
    ({"origins": ["https://*.com"]}, "at least two labels"),
    ({"origins": [APP], "methods": ["GE T"]}, "is not a method"),
    ({"origins": [APP], "max_age": "600"}, ""),
])
def test_config_errors(tmp_path, conf, message):
    cfg = h.gateway_config(1, {"up": h.upstream_conf(["127.0.0.1:2"])}, [h.route("all", "up", {"path_prefix": "/"})])
    cfg["plugins"] = [{"name": "cors", "config": conf}]
    path = tmp_path / "c.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(path)
    assert rc == 1, err
    assert err.startswith(str(path) + ":"), err
    assert message in err, err
