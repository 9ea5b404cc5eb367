"""Circuit breaking across workers (max_requests, max_connections,
max_pending): 503 at once with X-Tollgate-Overloaded and a JSON body naming
the limit, counted in /metrics; other routes unaffected. Outlier ejection
(consecutive_5xx, consecutive_gateway_errors, doubling ejection time,
max_ejection_percent) with upstreams that start failing and recover."""

import threading
import time

import tg_harness as h


def concurrent(port, n, target, timeout=10):
    out = [None] * n

    def one(i):
        t0 = time.monotonic()
        r = h.request(port, "GET", target, timeout=timeout)
        out[i] = (r, time.monotonic() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, out


def test_max_requests_50_concurrent(gateway_factory, upstream_factory):
    slow, other = upstream_factory("slow"), upstream_factory("other")
    slow.delay_ms = 1500
    gw = h.start_with_admin(gateway_factory,
               {"slow": h.upstream_conf([slow.address], circuit_breaker={"max_requests": 10}, retries=0),
                "other": h.upstream_conf([other.address])},
               [h.route("slow", "slow", {"path_prefix": "/slow"}), h.route("other", "other", {"path_prefix": "/"})])
    threads, out = concurrent(gw.port, 50, "/slow/x")
    time.sleep(0.5)
    # while the slow upstream is full, another route answers at once
    t0 = time.monotonic()
    assert h.request(gw.port, "GET", "/fine").status == 200
    assert time.monotonic() - t0 < 0.3
    for t in threads:
        t.join()
    ok = [r for r, _ in out if r.status == 200]
    refused = [(r, dt) for r, dt in out if r.status == 503]
    assert len(ok) == 10 and len(refused) == 40, [r.status for r, _ in out]
    assert slow.requests == 10
    for r, dt in refused:
        assert dt < 1.0, dt  # at once, not after the slow answers
        assert r.header("X-Tollgate-Overloaded") == "max_requests"
        assert "max_requests" in r.json()["error"]
    assert h.metric(gw.admin_port, "tollgate_upstream_overloaded_total", upstream="slow", limit="max_requests") == 40
    assert h.metric(gw.admin_port, "tollgate_upstream_overloaded_total", upstream="other", limit="max_requests") == 0


def test_max_connections_per_target_across_workers(gateway_factory, upstream_factory):
    slow = upstream_factory("slow")
    slow.delay_ms = 1000
    gw = h.start_with_admin(gateway_factory,
               {"up": h.upstream_conf([slow.address], circuit_breaker={"max_connections": 3}, retries=0)},
               [h.route("all", "up", {"path_prefix": "/"})])
    threads, out = concurrent(gw.port, 10, "/c")
    for t in threads:
        t.join()
    statuses = sorted(r.status for r, _ in out)
    assert statuses == [200] * 3 + [503] * 7, statuses
    assert slow.connections == 3
    assert {r.header("X-Tollgate-Overloaded") for r, _ in out if r.status == 503} == {"max_connections"}



def test_max_pending_while_connects_hang(gateway_factory, blackhole):
    gw = h.start_with_admin(gateway_factory,
               {"up": h.upstream_conf([blackhole], connect_timeout="1500ms", retries=0, max_fails=0,
                                      circuit_breaker={"max_pending": 2})},
               [h.route("all", "up", {"path_prefix": "/"})])
    threads, out = concurrent(gw.port, 6, "/p")
    for t in threads:
        t.join()
    refused = [r for r, dt in out if r.status == 503 and dt < 1.0]
    assert len(refused) == 4, [(r.status, dt) for r, dt in out]
    assert {r.header("X-Tollgate-Overloaded") for r in refused} == {"max_pending"}
    assert sorted(r.status for r, _ in out).count(504) == 2


# ---- outlier detection -------------------------------------------------------

def outlier_gateway(gateway_factory, ups, **od):
    conf = dict(consecutive_5xx=3, consecutive_gateway_errors=3, base_ejection_time="1s",
                max_ejection_percent=50)
    conf.update(od)
    return h.start_with_admin(gateway_factory,
                 {"up": h.upstream_conf([u.address for u in ups], retries=0, max_fails=0,
                                        outlier_detection=conf)},
                 [h.route("all", "up", {"path_prefix": "/"})], workers=1)


def test_5xx_target_ejected_then_back_after_the_ejection_time(gateway_factory, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    gw = outlier_gateway(gateway_factory, [a, b])
    a.mode = "status:500"
    statuses = [h.request(gw.port, "GET", "/o").status for _ in range(6)]
    assert statuses.count(500) == 3  # round robin: every other request, until the third 500
    assert a.requests == 3
    for _ in range(10):
        assert h.request(gw.port, "GET", "/o").status == 200
    assert a.requests == 3, "an ejected target got traffic"
    assert h.metric(gw.admin_port, "tollgate_upstream_ejections_total", upstream="up") == 1
    assert h.metric(gw.admin_port, "tollgate_upstream_target_healthy", upstream="up", target=a.address) == 0
    assert "ejected" in gw.stderr() and a.address in gw.stderr()
    a.mode = "normal"  # recovers
    time.sleep(1.1)
    servers = [h.request(gw.port, "GET", "/o").json()["server"] for _ in range(4)]
    assert servers.count("a") == 2, servers
    assert h.metric(gw.admin_port, "tollgate_upstream_target_healthy", upstream="up", target=a.address) == 1


def test_gateway_errors_eject_and_the_time_doubles(gateway_factory, upstream_factory):
    a, b = upstream_factory("a", mode="reset"), upstream_factory("b")
    gw = outlier_gateway(gateway_factory, [a, b], consecutive_5xx=0, consecutive_gateway_errors=2,
                         base_ejection_time="400ms")

    def eject():
        before = h.metric(gw.admin_port, "tollgate_upstream_ejections_total", upstream="up")
        while h.metric(gw.admin_port, "tollgate_upstream_ejections_total", upstream="up") == before:
            h.request(gw.port, "GET", "/g")
        t0, n = time.monotonic(), a.heads
        while True:  # a is out: b answers; wait until a gets a request again
            h.request(gw.port, "GET", "/g")
            if a.heads > n:
                return time.monotonic() - t0
            time.sleep(0.02)

    first = eject()
    second = eject()
    assert 0.3 <= first < 0.7, first
    assert 0.7 <= second < 1.2, second
    assert h.metric(gw.admin_port, "tollgate_upstream_ejections_total", upstream="up") == 2


def test_max_ejection_percent_keeps_some_targets(gateway_factory, upstream_factory):
    ups = [upstream_factory("u%d" % i, mode="status:500") for i in range(2)]
    gw = outlier_gateway(gateway_factory, ups, max_ejection_percent=50)
    for _ in range(12):
        h.request(gw.port, "GET", "/m")
    assert h.metric(gw.admin_port, "tollgate_upstream_ejections_total", upstream="up") == 1
    assert "max_ejection_percent 50 is reached" in gw.stderr()
