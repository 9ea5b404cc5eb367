"""Target choice with real upstreams: weights (object or plain string),
smooth weighted round robin, p2c_ewma around a slow target, consistent
hashing on a request key, the route's timeout and max_body_size."""

import collections
import threading
import time

import tg_harness as h


def gateway(gateway_factory, targets, workers=1, routes=None, **up_kw):
    port = h.free_port()
    up_kw.setdefault("max_fails", 0)
    cfg = h.gateway_config(port, {"up": h.upstream_conf(targets, **up_kw)},
                           routes or [h.route("all", "up", {"path_prefix": "/"})], workers=workers)
    return gateway_factory(cfg)


def counts(ups):
    return [u.requests for u in ups]


def test_weights_object_and_plain_string(gateway_factory, upstream_factory):
    a, b, c = upstream_factory("a"), upstream_factory("b"), upstream_factory("c")
    gw = gateway(gateway_factory, [{"address": a.address, "weight": 3}, {"address": b.address, "weight": 1},
                                   c.address])
    with h.Conn(gw.port) as conn:
        for i in range(250):
            conn.send(h.build_request("GET", "/w?i=%d" % i))
            assert conn.read_response().status == 200
    # smooth weighted round robin on one worker: exactly 3:1:1
    assert counts([a, b, c]) == [150, 50, 50]


def test_weighted_round_robin_over_two_workers(gateway_factory, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    gw = gateway(gateway_factory, [{"address": a.address, "weight": 4}, b.address], workers=2)
    for i in range(200):
        assert h.request(gw.port, "GET", "/w?i=%d" % i).status == 200
    assert 140 <= a.requests <= 180, counts([a, b])


def test_p2c_ewma_avoids_the_slow_target(gateway_factory, upstream_factory):
    fast1, fast2, slow = upstream_factory("f1"), upstream_factory("f2"), upstream_factory("slow")
    slow.delay_ms = 100
    gw = gateway(gateway_factory, [fast1.address, fast2.address, slow.address], balance="p2c_ewma")
    for i in range(120):
        assert h.request(gw.port, "GET", "/p?i=%d" % i).status == 200
    # round robin would send 40 to the slow one
    assert slow.requests <= 12, counts([fast1, fast2, slow])


def test_hash_on_header_is_sticky_and_spreads(gateway_factory, upstream_factory):
    ups = [upstream_factory("h%d" % i) for i in range(3)]
    gw = gateway(gateway_factory, [u.address for u in ups], workers=2, balance="hash",
                 hash_key="header:X-User")
    where = {}
    for user in range(30):
        seen = set()
        for k in range(4):
            r = h.request(gw.port, "GET", "/h", headers=[("X-User", "user-%d" % user)])
            assert r.status == 200
            seen.add(r.json()["server"])
        assert len(seen) == 1, "user-%d moved between targets: %r" % (user, seen)
        where[user] = seen.pop()
    spread = collections.Counter(where.values())
    assert len(spread) == 3 and min(spread.values()) >= 4, spread


def test_hash_on_cookie_and_missing_key(gateway_factory, upstream_factory):
    ups = [upstream_factory("c%d" % i) for i in range(3)]
    gw = gateway(gateway_factory, [u.address for u in ups], balance="hash", hash_key="cookie:sid")
    first = None
    for k in range(6):
        r = h.request(gw.port, "GET", "/c", headers=[("Cookie", "theme=dark; sid=abc123; x=1")])
        assert r.status == 200
        first = first or r.json()["server"]
        assert r.json()["server"] == first
    # no key: round robin over all of them
    servers = {h.request(gw.port, "GET", "/n").json()["server"] for _ in range(6)}
    assert len(servers) == 3


def test_hash_key_config_errors(tmp_path, upstream):
    port = h.free_port()
    for kw, msg in [({"balance": "hash"}, "balance: hash needs hash_key"),
                    ({"balance": "hash", "hash_key": "body"}, "unknown key 'body'"),
                    ({"hash_key": "ip"}, "hash_key needs balance: hash")]:
        cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address], **kw)},
                               [h.route("all", "up", {"path_prefix": "/"})])
        path = tmp_path / "bad.yaml"
        path.write_text(h.yaml_text(cfg))
        rc, err = h.run_check(str(path))
        assert rc != 0 and msg in err, err


def test_route_timeout_overrides_the_upstreams(gateway_factory, upstream):
    routes = [dict(h.route("slow", "up", {"path_prefix": "/delay"}), timeout="400ms"),
              h.route("all", "up", {"path_prefix": "/"})]
    gw = gateway(gateway_factory, [upstream.address], routes=routes, timeout="10s", retries=0)
    t0 = time.monotonic()
    r = h.request(gw.port, "GET", "/delay/1500")
    elapsed = time.monotonic() - t0
    assert r.status == 504, r
    assert 0.3 <= elapsed < 1.2, elapsed
    # the other route keeps the upstream's 10 s
    assert h.request(gw.port, "GET", "/x/delay/600").status == 200


def test_route_max_body_size(gateway_factory, upstream):
    routes = [dict(h.route("small", "up", {"path_prefix": "/small"}), max_body_size="1KiB"),
              h.route("all", "up", {"path_prefix": "/"})]
    gw = gateway(gateway_factory, [upstream.address], routes=routes)
    body = b"x" * 2000
    assert h.request(gw.port, "POST", "/small/a", body=body).status == 413
    assert h.request(gw.port, "POST", "/small/a", body=b"x" * 1000).status == 200
    assert h.request(gw.port, "POST", "/big/a", body=body).status == 200


def test_admin_config_shows_the_isolation_keys(gateway_factory, upstream_factory):
    a, b, v2 = upstream_factory("a"), upstream_factory("b"), upstream_factory("v2")
    port, admin = h.free_port(), h.free_port()
    ups = {"up": h.upstream_conf([{"address": a.address, "weight": 3}, b.address], balance="hash",
                                 hash_key="jwt.sub", all_down="fail_closed",
                                 circuit_breaker={"max_requests": 10},
                                 outlier_detection={"consecutive_5xx": 4},
                                 health_check={"path": "/healthz", "interval": "10s"}),
           "v2": h.upstream_conf([v2.address])}
    r = dict(h.route("r", "up", {"path_prefix": "/"}), timeout="2s", max_body_size="1KiB",
             retry={"attempts": 3, "budget": "25%"})
    c = {"name": "c", "match": {"path_prefix": "/c"},
         "split": [{"upstream": "up", "weight": 9}, {"upstream": "v2", "weight": 1}]}
    cfg = h.gateway_config(port, ups, [c, r])
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    gateway_factory(cfg)
    assert h.wait_port(admin, 5)
    j = h.request(admin, "GET", "/config", host="localhost").json()
    u = j["upstreams"][0]
    assert u["targets"] == [{"address": a.address, "weight": 3}, b.address]
    assert u["balance"] == "hash" and u["hash_key"] == "jwt.sub" and u["all_down"] == "fail_closed"
    assert u["circuit_breaker"] == {"max_connections": 0, "max_pending": 0, "max_requests": 10}
    assert u["outlier_detection"]["consecutive_5xx"] == 4
    assert u["health_check"]["path"] == "/healthz" and u["health_check"]["interval_ms"] == 10000
    assert "health_check" not in j["upstreams"][1]
    routes = {x["name"]: x for x in j["routes"]}
    assert routes["c"]["upstream"] is None
    assert routes["c"]["split"] == [{"upstream": "up", "weight": 9}, {"upstream": "v2", "weight": 1}]
    assert routes["r"]["timeout_ms"] == 2000 and routes["r"]["max_body_size"] == 1024
    assert routes["r"]["retry"]["attempts"] == 3 and routes["r"]["retry"]["budget_percent"] == 25
