"""The bundled cache plugin through the real gateway and real upstreams that
count the requests they get: freshness and Age, HEAD from a GET entry,
ETag revalidation (304 refreshes), client conditionals answered 304, Vary,
what is never stored, purge by path and prefix on the admin endpoint,
collapsed forwarding (100 concurrent misses, 1 upstream request),
stale-if-error with the upstream down, the memory bound under a key flood,
and response-shape running on cached bodies."""

import json
import os
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import tg_harness as h

TOKEN = "cache-admin-token-0123456789"


class Origin:
    """An upstream whose answers the test sets per path: behave[path] =
    fn(handler) -> (status, headers, body); counts requests per path."""

    def __init__(self):
        self.behave = {}
        self.count = {}
        self.seen = []
        self.lock = threading.Lock()
        self.down = False
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def _answer(self, body_too):
                if origin.down:  # a dead upstream: the connection closes unanswered
                    self.close_connection = True
                    return
                path = self.path.split("?", 1)[0]
                with origin.lock:
                    origin.count[path] = origin.count.get(path, 0) + 1
                    origin.seen.append((self.command, self.path, dict(self.headers)))
                fn = origin.behave.get(path) or origin.behave.get("*")
                status, headers, body = fn(self) if fn else (404, {}, b"no")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body_too and status != 304:
                    self.wfile.write(body)

            def do_GET(self):
                self._answer(True)

            def do_HEAD(self):
                self._answer(False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hits(self, path):
        with self.lock:
            return self.count.get(path, 0)

    def stop(self):
        self.down = True
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin():
    o = Origin()
    yield o
    try:
        o.stop()
    except OSError:
        pass


@pytest.fixture
def cached(gateway_factory, origin):
    """make(conf, plugins_before=(), workers=2) -> ns(port, admin, gw)."""

    def make(conf=None, plugins_before=(), workers=2, env=None, redis=None):
        port, admin_port = h.free_port(), h.free_port()
        rt = h.route("api", "up", {"path_prefix": "/"})
        rt["plugins"] = list(plugins_before) + [{"name": "cache", "config": conf or {}}]
        cfg = h.gateway_config(port, {"up": h.upstream_conf([origin.address])}, [rt],
                               workers=workers)
        cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port, "token": TOKEN}
        if redis is not None:
            cfg["redis"] = {"address": redis.address, "timeout": "500ms"}
        gw = gateway_factory(cfg, env=env)
        return types.SimpleNamespace(port=port, admin=admin_port, gw=gw)

    return make


def get(port, path, headers=(), method="GET"):
    return h.request(port, method, path, headers=list(headers))


def fixed(body, cc="max-age=60", **extra):
    headers = {"Content-Type": "text/plain"}
    if cc is not None:
        headers["Cache-Control"] = cc
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return lambda req: (200, headers, body)


def purge(admin_port, doc, token=TOKEN):
    body = json.dumps(doc).encode()
    hs = [("Content-Type", "application/json")]
    if token:
        hs.append(("Authorization", "Bearer " + token))
    return h.request(admin_port, "POST", "/cache/purge", headers=hs, body=body, host="127.0.0.1")


def test_fresh_hit_age_and_head_from_get(cached, origin):
    origin.behave["/f"] = fixed(b"hello", cc="max-age=4")
    g = cached()
    r = get(g.port, "/f")
    assert r.status == 200 and r.body == b"hello"
    assert r.header("Cache-Status") == "tollgate; fwd=miss; fwd-status=200"
    time.sleep(1.1)
    r = get(g.port, "/f")
    assert r.status == 200 and r.body == b"hello"
    assert r.header("Cache-Status") == "tollgate; hit"
    assert int(r.header("Age")) >= 1
    assert r.header("Content-Type") == "text/plain"
    r = get(g.port, "/f", method="HEAD")
    assert r.status == 200 and r.body == b"" and r.header("Content-Length") == "5"
    assert r.header("Cache-Status") == "tollgate; hit"
    assert origin.hits("/f") == 1
    time.sleep(3.0)  # max-age=4 ran out
    r = get(g.port, "/f")
    assert r.header("Cache-Status").startswith("tollgate; fwd=stale")
    assert origin.hits("/f") == 2


def test_query_parameters_sorted_in_the_key(cached, origin):
    origin.behave["/q"] = fixed(b"q")
    g = cached()
    assert get(g.port, "/q?a=1&b=2").header("Cache-Status").startswith("tollgate; fwd=miss")
    assert get(g.port, "/q?b=2&a=1").header("Cache-Status") == "tollgate; hit"
    assert get(g.port, "/q?b=3&a=1").header("Cache-Status").startswith("tollgate; fwd=miss")
    assert origin.hits("/q") == 2


def test_etag_revalidation_and_client_conditionals(cached, origin):
    state = {"etag": '"v1"', "body": b"one"}

    def etag(req):
        hs = {"Cache-Control": "max-age=1", "ETag": state["etag"], "Content-Type": "text/plain"}
        if req.headers.get("If-None-Match") == state["etag"]:
            return 304, hs, b""
        return 200, hs, state["body"]

    origin.behave["/e"] = etag
    g = cached()
    assert get(g.port, "/e").body == b"one"
    # A fresh entry answers the client's own validators with a 304.
    r = get(g.port, "/e", headers=[("If-None-Match", '"v1"')])
    assert r.status == 304 and r.body == b"" and r.header("ETag") == '"v1"'
    assert r.header("Cache-Status") == "tollgate; hit"
    time.sleep(1.2)
    r = get(g.port, "/e")
    assert r.status == 200 and r.body == b"one"
    assert r.header("Cache-Status") == "tollgate; fwd=stale; fwd-status=304"
    assert origin.seen[-1][2].get("If-None-Match") == '"v1"'
    assert get(g.port, "/e").header("Cache-Status") == "tollgate; hit"  # refreshed
    assert origin.hits("/e") == 2
    state.update(etag='"v2"', body=b"two")
    time.sleep(1.2)
    r = get(g.port, "/e")
    assert r.body == b"two" and r.header("ETag") == '"v2"'
    assert r.header("Cache-Status") == "tollgate; fwd=stale; fwd-status=200"
    assert get(g.port, "/e").body == b"two"
    assert origin.hits("/e") == 3


def test_vary_accept_language(cached, origin):
    def lang(req):
        l = req.headers.get("Accept-Language", "none")
        return 200, {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}, l.encode()

    origin.behave["/v"] = lang
    g = cached()
    for l in ("en", "fr", "en", "fr", "de"):
        r = get(g.port, "/v", headers=[("Accept-Language", l)])
        assert r.body == l.encode()
    assert get(g.port, "/v").body == b"none"
    assert get(g.port, "/v").header("Cache-Status") == "tollgate; hit"
    assert origin.hits("/v") == 4


@pytest.mark.parametrize("case", ["no-store", "private", "cookie", "auth", "no-info", "range"])
def test_not_stored(cached, origin, case):
    hs = {}
    req = []
    cc = "max-age=60"
    if case in ("no-store", "private"):
        cc = case
    elif case == "cookie":
        hs["Set-Cookie"] = "a=b"
    elif case == "auth":
        req = [("Authorization", "Bearer x")]
    elif case == "no-info":
        cc = None
    elif case == "range":
        req = [("Range", "bytes=0-1")]
    origin.behave["/n"] = lambda r: (200, dict(hs, **({"Cache-Control": cc} if cc else {})), b"body")
    g = cached()
    for _ in range(2):
        assert get(g.port, "/n", headers=req).status == 200
    assert origin.hits("/n") == 2


def test_authorization_served_when_public(cached, origin):
    origin.behave["/p"] = fixed(b"pub", cc="public, max-age=60")
    g = cached()
    auth = [("Authorization", "Bearer x")]
    get(g.port, "/p", headers=auth)
    assert get(g.port, "/p", headers=auth).header("Cache-Status") == "tollgate; hit"
    assert origin.hits("/p") == 1


def test_default_ttl_only_without_freshness_info(cached, origin):
    origin.behave["/d"] = fixed(b"d", cc=None)
    origin.behave["/z"] = fixed(b"z", cc="max-age=0")
    g = cached({"default_ttl": "60s"})
    for _ in range(2):
        get(g.port, "/d")
        get(g.port, "/z")
    assert origin.hits("/d") == 1 and origin.hits("/z") == 2


def test_purge_by_path_and_prefix(cached, origin):
    origin.behave["*"] = fixed(b"x")
    g = cached()
    for p in ("/p/1", "/p/1?a=1", "/p/2", "/q"):
        get(g.port, p)
    assert purge(g.admin, {"route": "api", "path": "/p/1"}, token=None).status == 401
    r = purge(g.admin, {"route": "api", "path": "/p/1"})
    assert r.status == 200 and r.json() == {"purged": 2}
    r = purge(g.admin, {"route": "api", "prefix": "/p/"})
    assert r.status == 200 and r.json() == {"purged": 1}
    assert purge(g.admin, {"route": "other", "prefix": "/"}).json() == {"purged": 0}
    assert purge(g.admin, {"route": "api"}).status == 400
    assert get(g.port, "/p/1").header("Cache-Status").startswith("tollgate; fwd=miss")
    assert get(g.port, "/q").header("Cache-Status") == "tollgate; hit"


def test_collapse_100_concurrent_misses_one_upstream_request(cached, origin):
    def slow(req):
        time.sleep(0.5)
        return 200, {"Cache-Control": "max-age=60"}, b"slow body"

    origin.behave["/slow"] = slow
    g = cached({"collapse": True})
    results = []

    def one():
        r = get(g.port, "/slow")
        results.append((r.status, r.body))

    threads = [threading.Thread(target=one) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 100
    assert all(r == (200, b"slow body") for r in results), set(results)
    assert origin.hits("/slow") == 1


def test_stale_if_error_with_upstream_down(cached, origin):
    origin.behave["/s"] = fixed(b"old", cc="max-age=1, stale-if-error=60")
    origin.behave["/m"] = fixed(b"old", cc="max-age=1, must-revalidate")
    g = cached()
    assert get(g.port, "/s").body == b"old"
    assert get(g.port, "/m").body == b"old"
    origin.stop()
    time.sleep(1.2)
    r = get(g.port, "/s")
    assert r.status == 200 and r.body == b"old"
    assert "detail=stale-if-error" in r.header("Cache-Status")
    assert get(g.port, "/m").status == 502  # must-revalidate: never served stale


def test_stale_while_revalidate(cached, origin):
    origin.behave["/w"] = fixed(b"w", cc="max-age=1")
    g = cached({"stale_while_revalidate": "30s"})
    get(g.port, "/w")
    time.sleep(1.2)
    r = get(g.port, "/w")  # the first stale request revalidates
    assert r.header("Cache-Status").startswith("tollgate; fwd=stale")
    assert get(g.port, "/w").header("Cache-Status") == "tollgate; hit"
    assert origin.hits("/w") == 2


def test_memory_bound_under_key_flood(cached, origin):
    body = b"k" * 8192
    origin.behave["*"] = fixed(body)
    # A sanitizer build keeps freed memory in quarantine: keep it small here.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = dict(os.environ, ASAN_OPTIONS=(asan + ":" if asan else "") + "quarantine_size_mb=1")
    g = cached({"max_size": "2MiB", "max_body": "64KiB"}, workers=1, env=env)
    for i in range(300):
        get(g.port, "/warm/%d" % i)
    base = g.gw.rss_kb()
    for i in range(3000):  # 24 MiB of bodies through a 2 MiB store
        assert get(g.port, "/flood/%d" % i).status == 200
    grown = g.gw.rss_kb() - base
    assert grown < 8 * 1024, "RSS grew by %d KiB" % grown
    # The oldest keys were evicted, the newest kept.
    assert get(g.port, "/flood/2999").header("Cache-Status") == "tollgate; hit"
    assert get(g.port, "/flood/0").header("Cache-Status").startswith("tollgate; fwd=miss")


def test_response_shape_applies_after_the_cache(cached, origin):
    doc = json.dumps({"id": 1, "secret": "s", "name": "n"}).encode()
    origin.behave["/u"] = lambda r: (200, {"Cache-Control": "max-age=60",
                                           "Content-Type": "application/json"}, doc)
    shape = {"name": "response-shape", "config": {
        "client": "header:X-Client", "default": "full",
        "profiles": {"full": {}, "slim": {"include": ["id"]}}}}
    g = cached(plugins_before=[shape])
    assert json.loads(get(g.port, "/u").body) == {"id": 1, "secret": "s", "name": "n"}
    r = get(g.port, "/u", headers=[("X-Client", "slim")])
    assert r.header("Cache-Status") == "tollgate; hit"
    assert json.loads(r.body) == {"id": 1}
    assert json.loads(get(g.port, "/u").body)["secret"] == "s"
    assert origin.hits("/u") == 1


def test_config_errors(tmp_path, origin):
    port = h.free_port()
    for conf, want in (({"storage": "redis"}, "storage: redis needs a top-level 'redis:'"),
                       ({"methods": ["POST"]}, "only GET and HEAD"),
                       ({"key": ["nope"]}, "key: 'nope'"),
                       ({"max_size": "1MiB", "max_body": "1MiB"}, "max_size must be at least")):
        rt = h.route("api", "up", {"path_prefix": "/"})
        rt["plugins"] = [{"name": "cache", "config": conf}]
        cfg = h.gateway_config(port, {"up": h.upstream_conf([origin.address])}, [rt])
        path = tmp_path / "c.yaml"
        path.write_text(h.yaml_text(cfg))
        rc, err = h.run_check(str(path))
        assert rc != 0 and want in err, err


def test_client_no_cache_revalidates_and_204_is_stored(cached, origin):
    origin.behave["/r"] = fixed(b"r", cc="max-age=60", ETag='"r1"')
    origin.behave["/nc"] = lambda req: (204, {"Cache-Control": "max-age=60"}, b"")
    g = cached()
    get(g.port, "/r")
    r = get(g.port, "/r", headers=[("Cache-Control", "no-cache")])
    assert r.header("Cache-Status").startswith("tollgate; fwd=stale")
    assert origin.seen[-1][2].get("If-None-Match") == '"r1"'
    r = get(g.port, "/r", headers=[("Pragma", "no-cache")])
    assert r.header("Cache-Status").startswith("tollgate; fwd=stale")
    assert get(g.port, "/r").header("Cache-Status") == "tollgate; hit"
    assert origin.hits("/r") == 3
    assert get(g.port, "/nc").status == 204
    r = get(g.port, "/nc")
    assert r.status == 204 and r.header("Cache-Status") == "tollgate; hit"
    assert origin.hits("/nc") == 1


def test_stale_while_revalidate_from_cache_control(cached, origin):
    calls = []

    def slow_second(req):
        calls.append(1)
        if len(calls) > 1:
            time.sleep(0.6)
        return 200, {"Cache-Control": "max-age=1, stale-while-revalidate=30"}, b"v%d" % len(calls)

    origin.behave["/w2"] = slow_second
    g = cached()
    assert get(g.port, "/w2").body == b"v1"
    time.sleep(1.2)
    out = {}
    t = threading.Thread(target=lambda: out.update(a=get(g.port, "/w2")))
    t.start()
    time.sleep(0.2)  # the first stale request is revalidating upstream
    b = get(g.port, "/w2")
    assert b.body == b"v1" and b.header("Cache-Status") == \
        "tollgate; hit; detail=stale-while-revalidate"
    t.join()
    assert out["a"].body == b"v2" and out["a"].header("Cache-Status").startswith("tollgate; fwd=stale")
    assert get(g.port, "/w2").body == b"v2"
    assert origin.hits("/w2") == 2


def test_redis_storage_shared_by_two_instances(cached, origin):
    from test_rate_limit import Redis
    redis = Redis().start()
    try:
        origin.behave["/r1"] = fixed(b"shared", cc="max-age=60, stale-if-error=30", ETag='"x"')
        conf = {"storage": "redis"}
        a, b = cached(conf, redis=redis), cached(conf, redis=redis)
        time.sleep(0.3)  # the workers connect
        r = get(a.port, "/r1")
        assert r.body == b"shared" and r.header("Cache-Status").startswith("tollgate; fwd=miss")
        time.sleep(0.2)
        r = get(b.port, "/r1", method="HEAD")
        assert r.header("Cache-Status") == "tollgate; hit" and r.header("Content-Length") == "6"
        r = get(b.port, "/r1", headers=[("If-None-Match", '"x"')])
        assert r.status == 304 and r.header("Cache-Status") == "tollgate; hit"
        assert origin.hits("/r1") == 1
        keys = redis.cmd("KEYS", "tollgate:cache:*")
        assert len(keys) == 1
        ttl = int(redis.cmd("PTTL", keys[0]))
        assert 80000 < ttl <= 90000  # max-age + stale-if-error
    finally:
        redis.kill()


def test_redis_down_is_a_miss(cached, origin):
    from test_rate_limit import Redis
    redis = Redis()  # never started
    origin.behave["/r2"] = fixed(b"up")
    g = cached({"storage": "redis"}, redis=redis)
    for _ in range(2):
        r = get(g.port, "/r2")
        assert r.status == 200 and r.body == b"up"
    assert origin.hits("/r2") == 2


def test_redis_collapse_across_two_instances(cached, origin):
    from test_rate_limit import Redis
    redis = Redis().start()
    try:
        def slow(req):
            time.sleep(0.5)
            return 200, {"Cache-Control": "max-age=60"}, b"once"

        origin.behave["/c"] = slow
        conf = {"storage": "redis"}
        a, b = cached(conf, redis=redis), cached(conf, redis=redis)
        time.sleep(0.3)
        results = []

        def one(port):
            r = get(port, "/c")
            results.append((r.status, r.body))

        threads = [threading.Thread(target=one, args=(p,)) for p in [a.port, b.port] * 50]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 100 and all(r == (200, b"once") for r in results), set(results)
        assert origin.hits("/c") == 1
        assert redis.cmd("KEYS", "tollgate:cache-lock:*") == []  # released after the store
    finally:
        redis.kill()


def test_metrics_count_outcomes(cached, origin):
    origin.behave["/mt"] = fixed(b"m")
    g = cached()
    get(g.port, "/mt")
    get(g.port, "/mt")
    get(g.port, "/mt", headers=[("Range", "bytes=0-0")])
    text = h.request(g.admin, "GET", "/metrics", host="127.0.0.1").body.decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith("tollgate_cache_total{"):
            name, value = line.rsplit(" ", 1)
            counts[name.split('result="', 1)[1].split('"', 1)[0]] = float(value)
    assert counts.get("miss") == 1 and counts.get("hit") == 1 and counts.get("bypass") == 1, counts


def test_redis_purge_by_path_and_prefix(gateway_factory, origin):
    """POST /cache/purge reaches the Redis entries (through the admin thread's
    own connection): every variant of a path, or a prefix, of one route; the
    count is that of the entries removed; the next request, through another
    instance sharing Redis, is a miss; other routes and paths stay."""
    from test_rate_limit import Redis
    redis = Redis().start()
    try:
        origin.behave["*"] = fixed(b"x")

        def make():
            port, admin_port = h.free_port(), h.free_port()
            routes = [h.route("other", "up", {"path_prefix": "/o/"}), h.route("api", "up", {"path_prefix": "/"})]
            for rt in routes:
                rt["plugins"] = [{"name": "cache", "config": {"storage": "redis"}}]
            cfg = h.gateway_config(port, {"up": h.upstream_conf([origin.address])}, routes)
            cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port, "token": TOKEN}
            cfg["redis"] = {"address": redis.address, "timeout": "500ms"}
            gateway_factory(cfg)
            return types.SimpleNamespace(port=port, admin=admin_port)

        a, b = make(), make()
        time.sleep(0.3)  # the workers connect
        paths = ["/p/1?x=1", "/p/1?x=2", "/p/2", "/p/a*b", "/p/aXb", "/q", "/o/p/1"]
        for p in paths:
            r = get(a.port, p)
            assert (r.header("Cache-Status") or "").startswith("tollgate; fwd=miss"), (p, r)
        time.sleep(0.2)
        for p in paths:
            assert get(b.port, p).header("Cache-Status") == "tollgate; hit", p
        assert len(redis.cmd("KEYS", "tollgate:cache:*")) == 7

        r = purge(a.admin, {"route": "api", "path": "/p/1"})
        assert r.status == 200 and r.json() == {"purged": 2}, r
        assert get(b.port, "/p/1?x=1").header("Cache-Status").startswith("tollgate; fwd=miss")
        assert get(b.port, "/p/1?x=2").header("Cache-Status").startswith("tollgate; fwd=miss")
        assert get(b.port, "/p/2").header("Cache-Status") == "tollgate; hit"
        assert get(b.port, "/o/p/1").header("Cache-Status") == "tollgate; hit"  # another route
        time.sleep(0.2)
        r = purge(b.admin, {"route": "api", "path": "/p/a*b"})  # "*" is no wildcard
        assert r.json() == {"purged": 1}, r
        assert get(b.port, "/p/aXb").header("Cache-Status") == "tollgate; hit"
        r = purge(b.admin, {"route": "api", "prefix": "/p/"})  # /p/1 x2 (stored again), /p/2, /p/aXb
        assert r.json() == {"purged": 4}, r
        assert purge(b.admin, {"route": "api", "prefix": "/p/"}).json() == {"purged": 0}
        assert get(a.port, "/p/2").header("Cache-Status").startswith("tollgate; fwd=miss")
        assert get(a.port, "/q").header("Cache-Status") == "tollgate; hit"
        assert purge(a.admin, {"route": "other", "prefix": "/o/"}).json() == {"purged": 1}
        assert get(a.port, "/o/p/1").header("Cache-Status").startswith("tollgate; fwd=miss")
        redis.kill()
        r = purge(a.admin, {"route": "api", "prefix": "/"})
        assert r.status == 503 and r.json()["purged"] == 0 and "redis" in r.json()["error"], r
    finally:
        redis.kill()


from test_redis_cluster import cluster  # noqa: E402,F401 (a fixture)


def test_redis_purge_through_cluster(gateway_factory, origin, cluster):  # noqa: F811
    """Entries spread over the cluster's primaries, the route's index on one:
    a purge finds and removes every entry of the prefix on its own node."""
    origin.behave["*"] = fixed(b"c")
    port, admin_port = h.free_port(), h.free_port()
    rt = h.route("api", "up", {"path_prefix": "/"})
    rt["plugins"] = [{"name": "cache", "config": {"storage": "redis"}}]
    cfg = h.gateway_config(port, {"up": h.upstream_conf([origin.address])}, [rt])
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port, "token": TOKEN}
    cfg["redis"] = {"cluster": {"nodes": [cluster[0].address]}, "timeout": "500ms"}
    gateway_factory(cfg)
    time.sleep(0.5)  # the slot map
    for i in range(30):
        assert get(port, "/c/%d" % i).header("Cache-Status").startswith("tollgate; fwd=miss")
        get(port, "/d/%d" % i)
    time.sleep(0.2)
    counts = [len(n.cmd("KEYS", "tollgate:cache:*")) for n in cluster]
    assert sum(counts) == 60 and sum(1 for c in counts if c) >= 2, counts
    r = purge(admin_port, {"route": "api", "prefix": "/c/"})
    assert r.status == 200 and r.json() == {"purged": 30}, r
    assert sum(len(n.cmd("KEYS", "tollgate:cache:*")) for n in cluster) == 30
    assert get(port, "/c/7").header("Cache-Status").startswith("tollgate; fwd=miss")
    assert get(port, "/d/7").header("Cache-Status") == "tollgate; hit"
