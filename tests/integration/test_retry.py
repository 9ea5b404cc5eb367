"""A route's retry policy against upstreams that reset, hang and fail:
another target preferred, methods, buffered bodies, per-try timeout, status
retries, backoff, the budget during a full outage, and the access log's
`retries` and final `upstream_addr`."""

import json
import threading
import time

import tg_harness as h


def retry_route(path="/", **policy):
    r = h.route("r", "up", {"path_prefix": path})
    r["retry"] = policy
    return r


def start(gateway_factory, tmp_path, targets, policy, workers=1, **up_kw):
    port = h.free_port()
    up_kw.setdefault("max_fails", 0)
    up_kw.setdefault("retries", 0)
    cfg = h.gateway_config(port, {"up": h.upstream_conf(targets, **up_kw)}, [retry_route(**policy)],
                           workers=workers)
    cfg["plugins"] = [{"name": "request-log", "config": {"path": str(tmp_path / "access.log")}}]
    return gateway_factory(cfg)


def access_log(gw, tmp_path, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        path = tmp_path / "access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n or time.monotonic() > deadline:
            return [json.loads(ln) for ln in lines]
        time.sleep(0.05)


def test_get_retried_on_another_target_after_a_reset(gateway_factory, upstream_factory, tmp_path):
    bad, good = upstream_factory("bad", mode="reset"), upstream_factory("good")
    gw = start(gateway_factory, tmp_path, [bad.address, good.address],
               {"attempts": 3, "on": ["connect_failure", "reset", 502, 503, 504]})
    for i in range(4):
        r = h.request(gw.port, "GET", "/g?i=%d" % i)
        assert r.status == 200 and r.json()["server"] == "good", r
    log = access_log(gw, tmp_path, 4)
    # round robin starts on the bad target every other request
    assert sorted(e["retries"] for e in log) == [0, 0, 1, 1], log
    assert all(e["upstream_addr"] == good.address for e in log), log
    assert bad.heads == 2


def test_post_is_not_retried_unless_named(gateway_factory, upstream_factory, tmp_path):
    bad, good = upstream_factory("bad", mode="reset"), upstream_factory("good")
    gw = start(gateway_factory, tmp_path, [bad.address, good.address], {"attempts": 3, "on": ["reset"]})
    r = h.request(gw.port, "POST", "/p", body=b"hello")  # first try: the bad target
    assert r.status == 502, r
    assert good.requests == 0
    log = access_log(gw, tmp_path, 1)
    assert log[0]["retries"] == 0 and log[0]["upstream_addr"] == bad.address


def test_post_retried_with_its_whole_body_when_named(gateway_factory, upstream_factory, tmp_path):
    bad, good = upstream_factory("bad", mode="reset"), upstream_factory("good")
    gw = start(gateway_factory, tmp_path, [bad.address, good.address],
               {"attempts": 2, "on": ["reset"], "methods": ["GET", "POST"]})
    body = bytes(range(256)) * 100  # 25.6 KB: kept whole for the retry
    r = h.request(gw.port, "POST", "/p", body=body)
    assert r.status == 200, r
    rec = good.records[0]
    assert rec["body_len"] == len(body)
    import hashlib
    assert rec["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert access_log(gw, tmp_path, 1)[0]["retries"] == 1


def test_large_body_is_not_retried(gateway_factory, upstream_factory, tmp_path):
    bad, good = upstream_factory("bad", mode="reset"), upstream_factory("good")
    gw = start(gateway_factory, tmp_path, [bad.address, good.address],
               {"attempts": 2, "on": ["reset"], "methods": ["POST"]})
    r = h.request(gw.port, "POST", "/p", body=b"x" * 200000)  # over the 64 KiB kept for retries
    assert r.status == 502, r
    assert good.requests == 0


def test_per_try_timeout_moves_to_the_next_target(gateway_factory, upstream_factory, tmp_path):
    hung, good = upstream_factory("hung", mode="never"), upstream_factory("good")
    gw = start(gateway_factory, tmp_path, [hung.address, good.address],
               {"attempts": 2, "on": [504], "per_try_timeout": "300ms"}, timeout="10s")
    t0 = time.monotonic()
    r = h.request(gw.port, "GET", "/t")
    elapsed = time.monotonic() - t0
    assert r.status == 200 and r.json()["server"] == "good", r
    assert 0.25 <= elapsed < 1.5, elapsed


def test_retry_on_status_then_forwarded_when_out_of_tries(gateway_factory, upstream_factory, tmp_path):
    a, b = upstream_factory("a", mode="status:503"), upstream_factory("b")
    gw = start(gateway_factory, tmp_path, [a.address, b.address], {"attempts": 2, "on": [503]})
    assert h.request(gw.port, "GET", "/s").json()["server"] == "b"
    b.mode = "status:503"
    r = h.request(gw.port, "GET", "/s")
    assert r.status == 503 and r.header("X-Upstream-Name") is not None, r  # the last answer, as is
    assert access_log(gw, tmp_path, 2)[1]["retries"] == 1


def test_backoff_is_jittered_and_bounded(gateway_factory, upstream_factory, tmp_path):
    bad = upstream_factory("bad", mode="reset")
    gw = start(gateway_factory, tmp_path, [bad.address],
               {"attempts": 4, "on": ["reset"], "backoff": {"base": "100ms", "max": "200ms"}})
    t0 = time.monotonic()
    assert h.request(gw.port, "GET", "/b").status == 502
    elapsed = time.monotonic() - t0
    # three waits of at most 100, 200, 200 ms
    assert elapsed < 0.5 + 0.3, elapsed
    assert bad.heads == 4
    assert access_log(gw, tmp_path, 1)[0]["retries"] == 3


def test_budget_caps_retries_during_a_full_outage(gateway_factory, upstream_factory, tmp_path):
    a, b = upstream_factory("a", mode="never"), upstream_factory("b", mode="never")
    gw = start(gateway_factory, tmp_path, [a.address, b.address],
               {"attempts": 3, "on": ["timeout"], "per_try_timeout": "400ms", "budget": "20%",
                "backoff": {"base": "1ms", "max": "1ms"}}, workers=2, timeout="10s")
    n = 40
    statuses = []

    def one():
        statuses.append(h.request(gw.port, "GET", "/o", timeout=10).status)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [504] * n
    log = access_log(gw, tmp_path, n)
    assert len(log) == n
    retried = [e for e in log if e["retries"] > 0]
    # 20% of 40 in flight: 8 retrying requests at most (3 always allowed)
    assert 3 <= len(retried) <= 8, [e["retries"] for e in log]
    total = sum(e["retries"] for e in log)
    assert total <= 2 * 8
    # without the budget every request would have made 2 retries (80)
    assert a.heads + b.heads == n + total
