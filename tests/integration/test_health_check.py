"""Active health checks with upstreams that hang and recover: one prober per
process, verdicts every worker follows at once, state changes logged and
exported, all_down, and no head-of-line effect on other routes while an
upstream hangs."""

import threading
import time

import tg_harness as h

HC = {"path": "/healthz", "interval": "300ms", "timeout": "200ms", "healthy": 2, "unhealthy": 2,
      "expect_status": ["200-299"]}


def probes(up):
    return sum(1 for t in up.targets() if t == "/healthz")


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError("condition not met within %.1fs" % timeout)


def test_hung_target_out_within_bound_and_back(gateway_factory, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    gw = h.start_with_admin(gateway_factory, {"up": h.upstream_conf([a.address, b.address], health_check=HC, max_fails=0,
                                                       timeout="5s")},
               [h.route("all", "up", {"path_prefix": "/"})])
    wait_for(lambda: probes(a) >= 2, 2)
    healthy = lambda: h.metric(gw.admin_port, "tollgate_upstream_target_healthy", upstream="up", target=a.address)
    assert healthy() == 1
    t0 = time.monotonic()
    a.mode = "never"  # hangs: accepts, reads, never answers
    t_out = wait_for(lambda: healthy() == 0, 3) - t0
    assert t_out <= 0.3 * 2 + 0.2 + 0.3, t_out  # interval * unhealthy + timeout (+ a scrape)
    assert "is unhealthy: timed out" in gw.stderr()
    # every worker follows the verdict at once: nothing reaches the hung target
    heads = a.heads
    for i in range(10):
        t1 = time.monotonic()
        r = h.request(gw.port, "GET", "/r?i=%d" % i)
        assert r.status == 200 and r.json()["server"] == "b"
        assert time.monotonic() - t1 < 0.5
    assert a.heads - heads <= 2  # only probes
    a.mode = "normal"
    wait_for(lambda: healthy() == 1, 2)
    assert "is healthy again" in gw.stderr()
    servers = {h.request(gw.port, "GET", "/r").json()["server"] for _ in range(4)}
    assert servers == {"a", "b"}
    assert h.metric(gw.admin_port, "tollgate_upstream_health_checks_total", upstream="up", result="timeout") >= 2
    assert h.metric(gw.admin_port, "tollgate_upstream_health_checks_total", upstream="up", result="success") >= 4


def test_one_prober_per_process(gateway_factory, upstream_factory):
    a = upstream_factory("a")
    hc = dict(HC, interval="200ms")
    gw = h.start_with_admin(gateway_factory, {"up": h.upstream_conf([a.address], health_check=hc)},
               [h.route("all", "up", {"path_prefix": "/"})], workers=4)
    time.sleep(1.0)
    n = probes(a)
    assert 4 <= n <= 7, n  # one prober: ~5 in 1 s, not 4 workers x 5
    rec = [r for r in a.records if r["target"] == "/healthz"][0]
    assert dict((k.lower(), v) for k, v in rec["headers"])["host"] == a.address


def test_status_outside_expect_fails_and_host_is_sent(gateway_factory, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    hc = dict(HC, path="/status/503", host="orders.internal")
    gw = h.start_with_admin(gateway_factory, {"up": h.upstream_conf([a.address, b.address], health_check=hc)},
               [h.route("all", "up", {"path_prefix": "/"})], workers=1)
    wait_for(lambda: "is unhealthy: status 503" in gw.stderr(), 3)
    rec = [r for r in a.records if r["target"] == "/status/503"][0]
    assert dict((k.lower(), v) for k, v in rec["headers"])["host"] == "orders.internal"


def test_all_down_fail_closed_and_fail_open(gateway_factory, upstream_factory):
    a = upstream_factory("a")
    hc = dict(HC, path="/status/500")
    gw = h.start_with_admin(gateway_factory,
               {"closed": h.upstream_conf([a.address], health_check=hc, all_down="fail_closed"),
                "open": h.upstream_conf([a.address], health_check=hc)},
               [h.route("closed", "closed", {"path_prefix": "/closed"}),
                h.route("open", "open", {"path_prefix": "/"})])
    wait_for(lambda: gw.stderr().count("is unhealthy") >= 2, 3)
    r = h.request(gw.port, "GET", "/closed/x")
    assert r.status == 503 and r.header("X-Tollgate-Overloaded") is None, r
    assert "no healthy upstream target" in r.json()["error"]
    assert h.request(gw.port, "GET", "/open/x").status == 200  # fail_open: everyone shares


def test_no_head_of_line_effect_while_an_upstream_hangs(gateway_factory, upstream_factory):
    hung, fine = upstream_factory("hung", mode="never"), upstream_factory("fine")
    gw = h.start_with_admin(gateway_factory, {"hung": h.upstream_conf([hung.address], timeout="3s", retries=0),
                                 "fine": h.upstream_conf([fine.address])},
               [h.route("hung", "hung", {"path_prefix": "/hung"}), h.route("fine", "fine", {"path_prefix": "/"})])
    base = []
    for _ in range(20):
        t0 = time.monotonic()
        h.request(gw.port, "GET", "/x")
        base.append(time.monotonic() - t0)
    threads = [threading.Thread(target=h.request, args=(gw.port, "GET", "/hung/x"), kwargs={"timeout": 5})
               for _ in range(30)]
    for t in threads:
        t.start()
    hung.wait_heads(30, 3)
    during = []
    for _ in range(20):
        t0 = time.monotonic()
        assert h.request(gw.port, "GET", "/x").status == 200
        during.append(time.monotonic() - t0)
    for t in threads:
        t.join()
    during.sort()
    base.sort()
    assert during[18] < max(0.05, 5 * base[18]), (base, during)
