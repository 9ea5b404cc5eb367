"""Aggregation routes: concurrent calls through the upstream pools, one JSON
document, optional and required failures, timeouts, encoded templates."""

import json
import time

import pytest

import tg_harness as h


@pytest.fixture
def agg(gateway_factory, upstream_factory):
    def make(calls, timeout="1s", match=None, pass_headers=None):
        users = upstream_factory("users")
        orders = upstream_factory("orders")
        port = h.free_port()
        aggregate = {"timeout": timeout, "calls": calls}
        if pass_headers is not None:
            aggregate["pass_headers"] = pass_headers
        route = {"name": "dash", "match": match or {"path_prefix": "/bff"}, "aggregate": aggregate}
        cfg = h.gateway_config(port, {"users": h.upstream_conf([users.address]),
                                      "orders": h.upstream_conf([orders.address])}, [route])
        gateway_factory(cfg)
        return port, users, orders

    return make


def test_all_calls_merged(agg):
    port, users, orders = agg([
        {"key": "user", "upstream": "users", "path": "/users/7"},
        {"key": "orders", "upstream": "orders", "path": "/orders?user=7"},
    ])
    r = h.request(port, "GET", "/bff/dashboard", headers=[("Authorization", "Bearer abc")])
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    doc = json.loads(r.body)
    assert list(doc) == ["user", "orders"]
    assert doc["user"]["target"] == "/users/7"
    assert doc["orders"]["target"] == "/orders?user=7"
    sent = dict((k.lower(), v) for k, v in doc["user"]["headers"])
    assert sent["authorization"] == "Bearer abc"
    assert sent["x-request-id"] == r.header("X-Request-Id")
    assert r.header("X-Tollgate-Partial") is None


def test_jwt_templates_read_the_published_claims(gateway_factory, upstream_factory):
    """{jwt.<claim>} reads the claims the jwt plugin published through the core
    (tg_request_claim): strings as their value, numbers and booleans as their
    JSON text, arrays as compact JSON, then percent-encoded like every value."""
    import jwt  # python3-jwt
    secret = "s" * 32
    users = upstream_factory("users")
    port = h.free_port()
    calls = [{"key": "user", "upstream": "users",
              "path": "/users/{jwt.sub}?n={jwt.n}&f={jwt.admin}&g={jwt.groups}&r={jwt.ratio}"
                      "&m={jwt.m}&z={jwt.z}"}]
    route = {"name": "dash", "match": {"path_prefix": "/bff"}, "aggregate": {"timeout": "1s", "calls": calls},
             "plugins": [{"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": secret}]}}]}
    gateway_factory(h.gateway_config(port, {"users": h.upstream_conf([users.address])}, [route]))
    claims = {"sub": "u 1/é", "n": 42, "admin": True, "groups": ["a", "b c"], "ratio": 0.5,
              "m": -9007199254740993, "z": 0, "exp": int(time.time()) + 600}
    token = jwt.encode(claims, secret, "HS256")
    r = h.request(port, "GET", "/bff/x", headers=[("Authorization", "Bearer " + token)])
    assert r.status == 200, r
    assert json.loads(r.body)["user"]["target"] == (
        "/users/u%201%2F%C3%A9?n=42&f=true&g=%5B%22a%22%2C%22b%20c%22%5D&r=0.5&m=-9007199254740993&z=0")
    assert h.request(port, "GET", "/bff/x").status == 401


def test_calls_run_concurrently(agg):
    port, users, orders = agg([
        {"key": "a", "upstream": "users", "path": "/delay/400"},
        {"key": "b", "upstream": "orders", "path": "/delay/400"},
        {"key": "c", "upstream": "users", "path": "/delay/400"},
    ], timeout="3s")
    t0 = time.monotonic()
    r = h.request(port, "GET", "/bff/x")
    elapsed = time.monotonic() - t0
    assert r.status == 200
    assert elapsed < 1.0, elapsed  # not 1.2 s


def test_optional_failure_is_null_and_flagged(agg):
    port, users, orders = agg([
        {"key": "user", "upstream": "users", "path": "/users/7"},
        {"key": "orders", "upstream": "orders", "path": "/status/500", "optional": True},
    ])
    r = h.request(port, "GET", "/bff/x")
    assert r.status == 200
    doc = json.loads(r.body)
    assert doc["orders"] is None
    assert doc["user"]["target"] == "/users/7"
    assert r.header("X-Tollgate-Partial") == "orders"


def test_required_failure_is_502_naming_the_call(agg):
    port, users, orders = agg([
        {"key": "user", "upstream": "users", "path": "/status/503"},
        {"key": "orders", "upstream": "orders", "path": "/orders"},
    ])
    r = h.request(port, "GET", "/bff/x")
    assert r.status == 502
    assert "'user'" in r.json()["error"]


def test_non_json_call_fails(agg):
    port, users, orders = agg([{"key": "user", "upstream": "users", "path": "/head-test"}])
    r = h.request(port, "GET", "/bff/x")
    assert r.status == 502
    assert "not JSON" in r.json()["error"]


def test_timeout(agg):
    port, users, orders = agg([
        {"key": "user", "upstream": "users", "path": "/users/1"},
        {"key": "slow", "upstream": "orders", "path": "/delay/3000", "optional": True},
    ], timeout="300ms")
    t0 = time.monotonic()
    r = h.request(port, "GET", "/bff/x")
    assert time.monotonic() - t0 < 1.5
    assert r.status == 200
    assert json.loads(r.body)["slow"] is None
    assert r.header("X-Tollgate-Partial") == "slow"


def test_template_values_are_encoded(agg):
    port, users, orders = agg([
        {"key": "user", "upstream": "users", "path": "/users/{path.id}?q={query.q}&h={header.X-Tag}"},
    ], match={"path_regex": "^/bff/users/(?<id>[^/]+)$"})
    # %2F must not become a path separator, a query value cannot add a parameter
    r = h.request(port, "GET", "/bff/users/a%2Fb?q=x%26admin%3D1/../y",
                  headers=[("X-Tag", "t 1/2")])
    # an encoded slash in the client path is rejected before routing (400) ...
    assert r.status == 400
    r = h.request(port, "GET", "/bff/users/a%20b?q=x%26admin%3D1/../y", headers=[("X-Tag", "t 1/2")])
    assert r.status == 200
    target = json.loads(r.body)["user"]["target"]
    assert target == "/users/a%20b?q=x%26admin%3D1%2F..%2Fy&h=t%201%2F2"


def test_aggregate_config_errors(tmp_path):
    text = """listen:
  - address: "127.0.0.1:1"
upstreams:
  users: { targets: ["127.0.0.1:2"] }
routes:
  - name: dash
    match: { path: /bff }
    aggregate:
      calls:
        - { key: user, upstream: nobody, path: "/users/{jwt.sub}" }
"""
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    rc, err = h.run_check(p)
    assert rc == 1
    assert err.startswith("%s:10:34: unknown upstream 'nobody'" % p), err
    p.write_text(text.replace("nobody", "users").replace("{jwt.sub}", "{bogus}"))
    rc, err = h.run_check(p)
    assert rc == 1
    assert "unknown template variable {bogus}" in err


# ---- no template value can add a path segment --------------------------------

PROFILE = [{"key": "user", "upstream": "users", "path": "/users/{query.id}/profile"}]


@pytest.mark.parametrize("query,why", [
    ("id=..", "is '..'"),
    ("id=%2e%2e", "is '..'"),
    ("id=%2E%2E", "is '..'"),
    ("id=.%2E", "is '..'"),
    ("id=%2e.", "is '..'"),
    ("id=.", "is '.'"),
    ("id=%2e", "is '.'"),
    ("id=", "is empty"),
    ("id", "is empty"),
    ("other=1", "is missing"),
    ("", "is missing"),
])
def test_dot_empty_or_missing_value_is_400(agg, query, why):
    port, users, orders = agg(PROFILE)
    r = h.request(port, "GET", "/bff/x" + ("?" + query if query else ""))
    assert r.status == 400, r
    j = r.json()
    assert j["error"] == "template value {query.id} %s" % why, j
    assert j["request_id"] == r.header("X-Request-Id")
    assert users.heads == 0 and orders.heads == 0
    # the connection stays usable
    r = h.request(port, "GET", "/bff/x?id=7")
    assert r.status == 200, r
    assert users.targets() == ["/users/7/profile"]


def test_no_call_starts_when_one_value_is_refused(agg):
    port, users, orders = agg([
        {"key": "user", "upstream": "users", "path": "/users/7"},
        {"key": "orders", "upstream": "orders", "path": "/orders/{header.X-Order}/items", "optional": True},
    ])
    r = h.request(port, "GET", "/bff/x", headers=[("X-Order", "..")])
    assert r.status == 400, r
    assert r.json()["error"] == "template value {header.X-Order} is '..'"
    time.sleep(0.2)
    assert users.heads == 0 and orders.heads == 0


def test_path_group_dot_value_is_400(agg):
    port, users, orders = agg([{"key": "user", "upstream": "users", "path": "/users/{path.id}/profile"}],
                              match={"path_regex": "^/bff/u(?<id>[^/]*)$"})
    for target, why in (("/bff/u.", "is '.'"), ("/bff/u..", "is '..'"), ("/bff/u", "is empty"),
                        ("/bff/u%2e%2E", "is '..'")):
        r = h.request(port, "GET", target)
        assert r.status == 400, (target, r)
        assert r.json()["error"] == "template value {path.id} %s" % why
    assert users.heads == 0
    r = h.request(port, "GET", "/bff/u...")
    assert r.status == 200, r
    assert users.targets() == ["/users/.../profile"]


@pytest.mark.parametrize("query,expected", [
    ("id=a/b", "/users/a%2Fb/profile"),
    ("id=a%2Fb", "/users/a%2Fb/profile"),
    ("id=a%2fb", "/users/a%2Fb/profile"),
    ("id=../admin", "/users/..%2Fadmin/profile"),
    ("id=%2e%2e%2Fadmin", "/users/..%2Fadmin/profile"),
    ("id=..%5C", "/users/..%5C/profile"),
    ("id=/", "/users/%2F/profile"),
    ("id=...", "/users/.../profile"),
    ("id=%252e%252e", "/users/%252e%252e/profile"),
    ("id=a?b", "/users/a%3Fb/profile"),
    ("id=a%3Fx=1%23f", "/users/a%3Fx%3D1%23f/profile"),
])
def test_slash_in_value_is_encoded_not_a_segment(agg, query, expected):
    port, users, orders = agg(PROFILE)
    r = h.request(port, "GET", "/bff/x?" + query)
    assert r.status == 200, r
    assert users.targets() == [expected]  # what the upstream got on the wire


def test_empty_value_in_the_query_part_is_fine(agg):
    port, users, orders = agg([{"key": "user", "upstream": "users",
                                "path": "/users/{query.id}?sort={query.sort}&f={header.X-F}"}])
    r = h.request(port, "GET", "/bff/x?id=7&sort=..")
    assert r.status == 200, r
    assert users.targets() == ["/users/7?sort=..&f="]


def test_slow_call_on_a_pooled_connection(agg):
    # The second request's call takes the connection the first one pooled:
    # the pool's idle timer must not cut the call short.
    port, users, orders = agg([{"key": "user", "upstream": "users", "path": "/delay/1300"}], timeout="5s")
    with h.Conn(port) as c:
        for _ in range(2):
            c.send(h.build_request("GET", "/bff/x"))
            r = c.read_response()
            assert r.status == 200, r
            assert json.loads(r.body)["user"]["target"] == "/delay/1300"
    assert users.connections == 1, users.connections
