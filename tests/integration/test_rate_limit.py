"""The rate-limit plugin against a real redis-server started by this module.

Covers: accuracy of the shared bucket across 3 gateway instances, separate
keys, the RateLimit-* headers against the bucket state, Retry-After, Redis
killed or frozen under traffic for each on_error policy, Redis restarted
(NOSCRIPT), the local backend, config errors.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import tg_harness as h

REDIS_BIN = "redis-server"


class Redis:
    """A redis-server child on a fixed port (so it can be restarted there)."""

    def __init__(self, port=None):
        self.port = port or h.free_port()
        self.proc = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert h.wait_port(self.port, 10, self.proc), "redis-server did not start"
        return self

    def kill(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self):
        self.proc.send_signal(signal.SIGSTOP)

    def cont(self):
        self.proc.send_signal(signal.SIGCONT)

    def cmd(self, *args):
        """One command over RESP; returns the decoded reply (bulk/status as str)."""
        out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in
                                                    (x.encode() if isinstance(x, str) else x for x in args))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(out)
            f = s.makefile("rb")
            return _read_resp(f)


def _read_resp(f):
    line = f.readline()[:-2]
    t, rest = line[:1], line[1:]
    if t in (b"+", b"-"):
        return rest.decode()
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("latin-1")
    if t == b"*":
        return [_read_resp(f) for _ in range(int(rest))]
    raise AssertionError("bad RESP %r" % line)


@pytest.fixture
def redis():
    r = Redis().start()
    yield r
    r.kill()


KEY_RE = re.compile(r"tg:rl:\{([0-9a-f]{8}):(.*)\}:([^:]*):(\d)")


def rl_route(name, prefix, config, upstream="up"):
    return {"name": name, "match": {"path_prefix": prefix}, "upstream": upstream,
            "plugins": [{"name": "rate-limit", "config": config}]}


def make_config(port, up, routes, redis=None, workers=2, redis_timeout="50ms"):
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, routes, workers=workers)
    if redis is not None:
        cfg["redis"] = {"address": redis.address, "timeout": redis_timeout}
    return cfg


def start_gw(gateway_factory, up, routes, redis=None, workers=2, redis_timeout="50ms", name=None):
    port = h.free_port()
    cfg = make_config(port, up, routes, redis, workers, redis_timeout)
    gw = gateway_factory(cfg, name=name)
    if redis is not None:
        wait_redis_ready(gw)
    return gw


def wait_redis_ready(gw):
    """Workers connect asynchronously (a TCP connect and a PING on loopback):
    give them a moment so the first requests do not see "not connected"."""
    time.sleep(0.3)


def get(port, path, headers=(), conn=None):
    if conn is not None:
        conn.send(h.build_request("GET", path, headers))
        return conn.read_response()
    return h.request(port, "GET", path, headers)


def limited(cfg_overrides=None, **kw):
    conf = {"key": "header:X-Client", "limits": [{"rate": 20, "per": "1s", "burst": 10}], "backend": "redis",
            "on_error": "allow", "headers": True}
    conf.update(cfg_overrides or {})
    conf.update(kw)
    return conf


def rl_headers(r):
    return {k: r.header(k) for k in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                                     "RateLimit-Policy", "Retry-After")}


# ------------------------------------------------------------- accuracy ----

def check_accuracy(gws, path, rate, burst, duration):
    """One client at 3x its limit for duration seconds, spread round-robin over
    gws: burst + rate * elapsed admitted, within 2%."""
    conns = [h.Conn(gw.port, timeout=5) for gw in gws]
    try:
        interval = 1.0 / (3 * rate)
        admitted = refused = 0
        t0 = time.monotonic()
        first = last = None
        i = 0
        while True:
            due = t0 + i * interval
            if due - t0 > duration:
                break
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            sent = time.monotonic()
            first = first if first is not None else sent
            last = sent
            r = get(None, path, [("X-Client", "acc")], conns[i % len(conns)])
            assert r.status in (200, 429), r
            admitted += r.status == 200
            refused += r.status == 429
            i += 1
    finally:
        for c in conns:
            c.close()
    elapsed = last - first
    expected = burst + rate * elapsed
    assert abs(admitted - expected) <= 0.02 * expected, (admitted, expected, refused, elapsed)
    assert refused > 0
    for gw in gws:
        assert "rate-limit: redis unavailable" not in gw.stderr()


def test_accuracy_three_instances_share_one_redis(gateway_factory, upstream, redis):
    """A client at 3x its limit for 5 s, spread over 3 gateways: burst + rate * elapsed admitted (2%)."""
    rate, burst, duration = 20, 10, 5.0
    routes = [rl_route("api", "/api", limited(limits=[{"rate": rate, "per": "1s", "burst": burst}]))]
    gws = [start_gw(gateway_factory, upstream, routes, redis, name="gw%d" % i) for i in range(3)]
    check_accuracy(gws, "/api/x", rate, burst, duration)


# ------------------------------------------------------------- keys ----

def script_calls(servers):
    """EVALSHA + EVAL calls so far, summed over servers (INFO commandstats)."""
    n = 0
    for srv in servers:
        for line in srv.cmd("INFO", "commandstats").splitlines():
            if line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")):
                n += int(line.split("calls=")[1].split(",")[0])
    return n


def stopped(pid):
    """Every thread of pid is stopped (SIGSTOP is delivered asynchronously)."""
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "T":
                return False
    return True


def at_once(gw, path, clients):
    """One request per client, each on its own (already accepted) connection,
    all sent while the gateway is stopped, so that its worker reads them in
    one event-loop iteration (libevent reads up to 32 ready sockets per
    epoll_wait at first: keep clients under that). Returns the responses in
    clients' order."""
    conns = [h.Conn(gw.port, timeout=10) for _ in clients]
    try:
        for c in conns:  # accepted and kept alive: the stop below holds only the requests
            assert get(None, "/plain/", conn=c).status == 200
        gw.signal(signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 5
            while not stopped(gw.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            for c, client in zip(conns, clients):
                c.send(h.build_request("GET", path, [("X-Client", client)]))
            time.sleep(0.2)
        finally:
            gw.signal(signal.SIGCONT)
        return [c.read_response() for c in conns]
    finally:
        for c in conns:
            c.close()


def test_requests_ready_together_are_decided_in_one_script_exactly(gateway_factory, upstream, redis):
    """30 requests read in one iteration: one EVALSHA, not 30; each decision
    still sees the ones before it (each client's burst admitted exactly)."""
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 10}], on_error="deny")
    routes = [rl_route("a", "/a", conf), {"name": "plain", "match": {"path_prefix": "/plain"}, "upstream": "up"}]
    gw = start_gw(gateway_factory, upstream, routes, redis, workers=1)
    assert get(gw.port, "/a", [("X-Client", "warm-up")]).status == 200  # the script is cached (no NOSCRIPT)
    clients = ["a" if i % 5 < 3 else "b" for i in range(30)]  # 18 of client a, 12 of b
    before = script_calls([redis])
    rs = at_once(gw, "/a", clients)
    calls = script_calls([redis]) - before
    assert calls == 1, calls
    for client, n in (("a", 18), ("b", 12)):
        mine = [r for r, c in zip(rs, clients) if c == client]
        assert len(mine) == n
        ok = [r for r in mine if r.status == 200]
        assert len(ok) == 10 and all(r.status == 429 for r in mine if r.status != 200), client
        assert sorted(int(r.header("RateLimit-Remaining")) for r in ok) == list(range(10)), client
    assert "rate-limit: redis unavailable" not in gw.stderr()


def rl_values(r):
    return (r.status,) + tuple(r.header(k) for k in ("RateLimit-Limit", "RateLimit-Remaining",
                                                     "RateLimit-Reset", "Retry-After"))


def test_a_batch_decides_each_client_as_separate_calls_would(gateway_factory, upstream, redis):
    """Mixed clients read in one iteration, over two limits with cost 2: each
    client is one group of the script (its bucket names sent once), a client
    that runs out in the middle gets exactly the admissions, Remaining, Reset
    and Retry-After values of one call per request."""
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 5}, {"rate": 2, "per": "1h", "burst": 8}],
                   cost=2, on_error="deny")
    routes = [rl_route("a", "/a", conf), {"name": "plain", "match": {"path_prefix": "/plain"}, "upstream": "up"}]
    gw = start_gw(gateway_factory, upstream, routes, redis, workers=1)
    assert get(gw.port, "/a", [("X-Client", "warm-up")]).status == 200  # the script is cached (no NOSCRIPT)
    clients = ["a", "b", "a", "c", "a", "d", "c", "a", "a", "d", "c", "a"]  # a x6, b x1, c x3, d x2
    redis.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")
    redis.cmd("SLOWLOG", "RESET")
    before = script_calls([redis])
    batch = at_once(gw, "/a", clients)
    assert script_calls([redis]) - before == 1
    evals = [e[3] for e in redis.cmd("SLOWLOG", "GET", "100") if e[3][0].upper() == "EVALSHA"]
    assert len(evals) == 1 and evals[0][2] == "8", evals  # 4 clients x 2 limits, each name once
    got, want = {}, {}
    for r, client in zip(batch, clients):
        got.setdefault(client, []).append(rl_values(r))
    with h.Conn(gw.port) as c:
        for client in clients:  # fresh buckets of the same shape, one call per request
            want.setdefault(client, []).append(rl_values(get(None, "/a", [("X-Client", client + "-seq")], c)))
    for client in want:
        assert sorted(got[client]) == sorted(want[client]), (client, got[client], want[client])
    # a: 2 admitted (limit 1: 5 tokens, 2 per request), then refused for the minute a token takes.
    assert sorted(want["a"]) == [(200, "5", "1", "240", None), (200, "5", "3", "120", None)] + \
        [(429, "5", "1", "240", "60")] * 4, want["a"]
    assert "rate-limit: redis unavailable" not in gw.stderr()


def test_separate_keys_and_routes(gateway_factory, upstream, redis):
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 2}])
    routes = [rl_route("a", "/a", conf), rl_route("b", "/b", conf)]
    gw = start_gw(gateway_factory, upstream, routes, redis)
    statuses = lambda path, client: [get(gw.port, path, [("X-Client", client)]).status for _ in range(3)]
    assert statuses("/a/1", "alice") == [200, 200, 429]
    assert statuses("/a/1", "bob") == [200, 200, 429]       # another header value: its own bucket
    assert statuses("/b/1", "alice") == [200, 200, 429]     # another route: its own bucket
    keys = redis.cmd("KEYS", "tg:rl:*")
    # tg:rl:{<instance hash>:<key value>}:<route>:<limit index>
    parts = sorted(KEY_RE.fullmatch(k).group(2, 3, 4) for k in keys)
    assert parts == [("h:alice", "a", "0"), ("h:alice", "b", "0"), ("h:bob", "a", "0")], keys
    # Keys expire when the bucket is full again (2 tokens at 1/min: <= 120 s).
    for k in keys:
        ttl = redis.cmd("PTTL", k)
        assert 0 < ttl <= 120000, (k, ttl)


def test_missing_header_falls_back_to_ip_and_long_values_are_hashed(gateway_factory, upstream, redis):
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 1}])
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)], redis)
    assert get(gw.port, "/a").status == 200
    assert get(gw.port, "/a").status == 429
    long_value = "x" * 300
    assert get(gw.port, "/a", [("X-Client", long_value)]).status == 200
    keys = redis.cmd("KEYS", "tg:rl:*")
    values = [KEY_RE.fullmatch(k).group(2) for k in keys]
    assert "i:127.0.0.1" in values, keys
    hashed = [v for v in values if v.startswith("#")]
    assert len(hashed) == 1 and len(hashed[0]) == 41, keys


def key_slot(key):
    """Redis Cluster's slot of key: CRC16 (XMODEM) of its hash tag, mod 16384."""
    b = key.encode("latin-1")
    s = b.find(b"{")
    if s >= 0:
        e = b.find(b"}", s + 1)
        if e > s + 1:
            b = b[s + 1:e]
    crc = 0
    for c in b:
        crc ^= c << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc % 16384


def test_all_limits_of_a_route_and_client_share_one_cluster_slot(gateway_factory, upstream, redis):
    """One EVALSHA must never span Cluster slots: the keys share a hash tag, even for a key value with braces."""
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 2}, {"rate": 100, "per": "1h"},
                           {"rate": 1000, "per": "1d"}])
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)], redis)
    for client in ("alice", "}{odd}", "{x}"):
        assert get(gw.port, "/a", [("X-Client", client)]).status == 200
    keys = redis.cmd("KEYS", "tg:rl:*")
    assert len(keys) == 9, keys
    by_client = {}
    for k in keys:
        by_client.setdefault(KEY_RE.fullmatch(k).group(2), set()).add(key_slot(k))
    assert sorted(by_client) == ["h:alice", "h:{x}", "h:}{odd}"], keys
    assert all(len(slots) == 1 for slots in by_client.values()), by_client


# ------------------------------------------------------------- headers ----

def test_headers_follow_the_bucket(gateway_factory, upstream, redis):
    conf = limited(limits=[{"rate": 1, "per": "1s", "burst": 5}])
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)], redis)
    with h.Conn(gw.port) as c:
        for k in range(1, 6):
            r = get(gw.port, "/a", [("X-Client", "hdr")], c)
            assert r.status == 200
            hd = rl_headers(r)
            assert hd["RateLimit-Limit"] == "5"
            assert hd["RateLimit-Remaining"] == str(5 - k)
            # k tokens taken at 1/s: full again in k s (a few ms less: ceil).
            assert hd["RateLimit-Reset"] == str(k), hd
            assert hd["RateLimit-Policy"] == "1;w=1;burst=5"
            assert hd["Retry-After"] is None
        r = get(gw.port, "/a", [("X-Client", "hdr")], c)
    assert r.status == 429
    assert r.header("Content-Type") == "application/json"
    body = r.json()
    assert body["error"] == "rate limit exceeded" and body["request_id"]
    hd = rl_headers(r)
    assert hd["Retry-After"] == "1"
    assert hd["RateLimit-Remaining"] == "0" and hd["RateLimit-Limit"] == "5"
    assert hd["RateLimit-Policy"] == "1;w=1;burst=5"
    # The bucket in Redis: a TAT about 5 s ahead of Redis's clock, refused request consumed nothing.
    key = [k for k in redis.cmd("KEYS", "tg:rl:*")][0]
    sec, usec = redis.cmd("TIME")
    ahead = (int(redis.cmd("GET", key)) - (int(sec) * 1000000 + int(usec))) / 1e6
    assert 4.5 < ahead <= 5.0, ahead


def test_headers_show_the_tightest_limit_and_the_policy(gateway_factory, upstream, redis):
    conf = limited(limits=[{"rate": 10, "per": "1s"}, {"rate": 3, "per": "1m"}])
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)], redis)
    r = get(gw.port, "/a", [("X-Client", "t")])
    hd = rl_headers(r)
    assert hd["RateLimit-Policy"] == "10;w=1, 3;w=60"
    assert (hd["RateLimit-Limit"], hd["RateLimit-Remaining"], hd["RateLimit-Reset"]) == ("3", "2", "20")
    assert [get(gw.port, "/a", [("X-Client", "t")]).status for _ in range(3)] == [200, 200, 429]
    r = get(gw.port, "/a", [("X-Client", "t")])
    assert r.status == 429
    assert 19 <= int(r.header("Retry-After")) <= 20, r.header("Retry-After")


def test_headers_false_and_cost(gateway_factory, upstream, redis):
    conf = limited(limits=[{"rate": 10, "per": "1m"}], cost=4, headers=False)
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)], redis)
    got = [get(gw.port, "/a", [("X-Client", "c")]) for _ in range(3)]
    assert [r.status for r in got] == [200, 200, 429]
    assert got[0].header("RateLimit-Limit") is None
    assert got[2].header("RateLimit-Limit") is None and got[2].header("Retry-After") is not None


def test_retry_after_is_honoured(gateway_factory, upstream, redis):
    conf = limited(limits=[{"rate": 1, "per": "2s", "burst": 1}])
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)], redis)
    assert get(gw.port, "/a", [("X-Client", "r")]).status == 200
    r = get(gw.port, "/a", [("X-Client", "r")])
    assert r.status == 429
    wait = int(r.header("Retry-After"))
    assert wait == 2
    time.sleep(wait)
    assert get(gw.port, "/a", [("X-Client", "r")]).status == 200


# ------------------------------------------------------------- failures ----

def _burst_then(gw, path, client, n):
    out = []
    for _ in range(n):
        t = time.monotonic()
        r = get(gw.port, path, [("X-Client", client)])
        out.append((r, time.monotonic() - t))
    return out


@pytest.mark.parametrize("failure", ["killed", "frozen"])
@pytest.mark.parametrize("policy", ["allow", "deny", "local"])
def test_redis_failure_policy(gateway_factory, upstream, redis, policy, failure):
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 3}], on_error=policy)
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)], redis, redis_timeout="100ms")
    assert [get(gw.port, "/a", [("X-Client", "f")]).status for _ in range(2)] == [200, 200]
    if failure == "killed":
        redis.kill()
    else:
        redis.stop()
    got = _burst_then(gw, "/a", "g", 8)
    statuses = [r.status for r, _ in got]
    for r, took in got:
        # Never waits for a dead Redis longer than its timeout (plus scheduling slack).
        assert took < 0.6, (took, statuses)
    if policy == "allow":
        assert statuses == [200] * 8
        assert got[0][0].header("RateLimit-Limit") is None
    elif policy == "deny":
        assert statuses == [503] * 8
        assert got[0][0].json()["error"] == "rate limiter unavailable"
    else:
        assert statuses == [200, 200, 200] + [429] * 5
        assert got[0][0].header("RateLimit-Remaining") == "2"
    err = gw.stderr()
    assert err.count("rate-limit: redis unavailable") == 1, err
    if failure == "frozen":
        redis.cont()


def test_redis_outage_logged_with_route_and_request_id(gateway_factory, upstream, redis):
    """The outage and recovery lines are request-aware (tg_request_log): they
    name the worker, the route whose limiter met the outage and the request id
    the client got, in the core's line format."""
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 3}], on_error="allow")
    gw = start_gw(gateway_factory, upstream, [rl_route("limited-api", "/a", conf)], redis, workers=1)
    assert get(gw.port, "/a", [("X-Client", "o")]).status == 200
    redis.kill()
    r = get(gw.port, "/a", [("X-Client", "o"), ("X-Request-Id", "outage-probe-1")])
    assert r.status == 200 and r.header("X-Request-Id") == "outage-probe-1"
    lines = [l for l in gw.stderr().splitlines() if "rate-limit: redis unavailable" in l]
    assert len(lines) == 1, gw.stderr()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[warn\] rate-limit: redis unavailable "
                        r"\(.+\): on_error allow applies \(worker 0, route limited-api, request outage-probe-1\)",
                        lines[0]), lines[0]
    redis.start()
    deadline = time.monotonic() + 8
    ids = []
    while time.monotonic() < deadline and "redis available again" not in gw.stderr():
        ids.append("recovery-%d" % len(ids))
        assert get(gw.port, "/a", [("X-Client", "p"), ("X-Request-Id", ids[-1])]).status == 200
        time.sleep(0.05)
    lines = [l for l in gw.stderr().splitlines() if "rate-limit: redis available again" in l]
    assert len(lines) == 1, gw.stderr()
    m = re.search(r" \[notice\] rate-limit: redis available again \(worker 0, route limited-api, "
                  r"request (recovery-\d+)\)$", lines[0])
    assert m and m.group(1) in ids, lines[0]


def test_redis_restarted_noscript_and_limiting_resumes(gateway_factory, upstream, redis):
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 2}], on_error="deny")
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)], redis)
    assert get(gw.port, "/a", [("X-Client", "n")]).status == 200
    assert redis.cmd("SCRIPT", "FLUSH") == "OK"
    assert get(gw.port, "/a", [("X-Client", "n")]).status == 200   # NOSCRIPT -> EVAL
    assert get(gw.port, "/a", [("X-Client", "n")]).status == 429
    # A fresh server on the same port: no script, no buckets.
    redis.kill()
    assert get(gw.port, "/a", [("X-Client", "n")]).status == 503
    redis.start()
    deadline = time.monotonic() + 8
    statuses = []
    while time.monotonic() < deadline:
        s = get(gw.port, "/a", [("X-Client", "m")]).status
        if s != 503:
            statuses.append(s)
            if len(statuses) == 3:
                break
        else:
            time.sleep(0.1)
    assert statuses == [200, 200, 429], statuses
    err = gw.stderr()
    assert "redis: connected to 127.0.0.1:%d" % redis.port in err
    assert "rate-limit: redis available again" in err


# ------------------------------------------------------------- local ----

def test_local_backend_without_redis(gateway_factory, upstream):
    conf = {"key": ["header:X-Client", "route"], "limits": [{"rate": 1, "per": "1m", "burst": 3}],
            "backend": "local"}
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf), rl_route("b", "/b", conf)],
                  workers=2)
    # Separate connections: requests land on both workers, which share the buckets.
    got = [get(gw.port, "/a", [("X-Client", "l")]) for _ in range(5)]
    assert [r.status for r in got] == [200, 200, 200, 429, 429]
    assert [r.header("RateLimit-Remaining") for r in got] == ["2", "1", "0", "0", "0"]
    assert got[3].header("Retry-After") is not None
    assert get(gw.port, "/b", [("X-Client", "l")]).status == 200
    assert get(gw.port, "/a", [("X-Client", "other")]).status == 200


def test_local_backend_refills(gateway_factory, upstream):
    conf = {"key": "ip", "limits": [{"rate": 5, "per": "1s", "burst": 1}], "backend": "local"}
    gw = start_gw(gateway_factory, upstream, [rl_route("a", "/a", conf)])
    assert get(gw.port, "/a").status == 200
    assert get(gw.port, "/a").status == 429
    time.sleep(0.25)
    assert get(gw.port, "/a").status == 200


def test_clients_behind_a_trusted_load_balancer_get_their_own_buckets(gateway_factory, upstream):
    """key: ip is the client behind trusted_proxies (the rightmost untrusted X-Forwarded-For
    address), not the load balancer every client shares."""
    conf = {"key": "ip", "limits": [{"rate": 1, "per": "1m", "burst": 1}], "backend": "local"}
    port = h.free_port()
    cfg = make_config(port, upstream, [rl_route("a", "/a", conf)])
    cfg["trusted_proxies"] = ["127.0.0.1", "10.0.0.0/8"]
    gw = gateway_factory(cfg)

    def xff(v):
        return [("X-Forwarded-For", v)]

    assert get(gw.port, "/a", xff("203.0.113.1")).status == 200
    assert get(gw.port, "/a", xff("203.0.113.1")).status == 429
    # another client behind the same balancer
    assert get(gw.port, "/a", xff("203.0.113.2")).status == 200
    # a client cannot mint buckets by prepending addresses; trusted hops are skipped
    assert get(gw.port, "/a", xff("198.51.100.9, 203.0.113.1")).status == 429
    assert get(gw.port, "/a", xff("203.0.113.2, 10.1.1.1")).status == 429
    assert get(gw.port, "/a", [("X-Forwarded-For", "192.0.2.50"), ("X-Forwarded-For", "10.9.9.9")]).status == 200
    # the balancer's own requests (no X-Forwarded-For) are its own client
    assert get(gw.port, "/a").status == 200
    assert get(gw.port, "/a").status == 429
    # a peer outside trusted_proxies: its X-Forwarded-For is ignored, it is one client
    r1 = h.request(gw.port, "GET", "/a", xff("203.0.113.77"), source="127.0.0.2")
    r2 = h.request(gw.port, "GET", "/a", xff("203.0.113.78"), source="127.0.0.2")
    assert (r1.status, r2.status) == (200, 429)


def test_jwt_key_without_jwt_plugin_warns_and_falls_back_to_ip(gateway_factory, upstream, tmp_path):
    conf = {"key": "jwt.sub", "limits": [{"rate": 1, "per": "1m", "burst": 1}], "backend": "local"}
    port = h.free_port()
    cfg = make_config(port, upstream, [rl_route("a", "/a", conf)])
    path = tmp_path / "t.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(path)
    assert rc == 0, err
    assert "rate-limit key 'jwt.sub' reads a JWT claim but no jwt plugin runs before" in err
    line = [l for l in h.yaml_text(cfg).splitlines()].index("          key: jwt.sub") + 1
    assert re.search(r"\[warn\] \S*t\.yaml:%d:16: rate-limit key" % line, err), err
    gw = gateway_factory(cfg)
    assert get(gw.port, "/a").status == 200
    assert get(gw.port, "/a").status == 429


# ------------------------------------------------------------- config ----

BAD = [
    ({"limits": [{"rate": 0, "per": "1s"}]}, "rate", "must be between 1 and"),
    ({"limits": [{"rate": -5, "per": "1s"}]}, "rate", "expected an integer"),
    ({"limits": [{"rate": 5, "per": "5"}]}, "per", "expected a duration"),
    ({"limits": [{"rate": 5, "per": "1s", "brust": 3}]}, "brust", "unknown key 'brust'"),
    ({"limits": [{"rate": 5}]}, None, "missing required key 'per'"),
    ({"limits": [{"rate": 5, "per": "1s"}], "colour": "red"}, "colour", "unknown key 'colour'"),
    ({"limits": [{"rate": 5, "per": "1s"}], "on_error": "maybe"}, "on_error",
     "on_error must be allow, deny or local, got 'maybe'"),
    ({"limits": [{"rate": 5, "per": "1s"}], "backend": "memcached"}, "backend",
     "backend must be redis or local, got 'memcached'"),
    ({"limits": [{"rate": 5, "per": "1s"}], "key": "cookie:x"}, "key", "invalid key 'cookie:x'"),
    ({"limits": [{"rate": 5, "per": "1s"}], "cost": 6}, "cost", "cost 6 exceeds the burst (5) of limit 1"),
    ({"limits": []}, "limits", "expected a list of limits"),
    ({"key": "ip"}, None, "missing required key 'limits'"),
]


@pytest.mark.parametrize("conf,at,msg", BAD, ids=[b[2][:30] for b in BAD])
def test_config_errors_at_the_node(upstream, tmp_path, conf, at, msg):
    cfg = make_config(h.free_port(), upstream, [rl_route("a", "/a", conf)])
    text = h.yaml_text(cfg)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    rc, err = h.run_check(path)
    assert rc != 0
    assert msg in err, err
    if at is not None:
        lines = text.splitlines()
        start = next(i for i, l in enumerate(lines) if l.strip() == "config:")
        lineno = next(i for i, l in enumerate(lines) if i > start and l.lstrip("- ").startswith(at + ":")) + 1
        assert ("t.yaml:%d:" % lineno) in err, (lineno, err)


@pytest.mark.parametrize("backend", ["redis", None], ids=["explicit", "default"])
def test_redis_backend_without_redis_section_is_a_config_error(upstream, tmp_path, backend):
    """Not a warning per request at run time: `tollgate -t` refuses it, at the
    backend key (or at the config map when the default applies)."""
    conf = {"key": "ip", "limits": [{"rate": 5, "per": "1s"}]}
    if backend is not None:
        conf["backend"] = backend
    cfg = make_config(h.free_port(), upstream, [rl_route("a", "/a", conf)])
    text = h.yaml_text(cfg)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    rc, err = h.run_check(path)
    assert rc != 0, err
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "config:")
    if backend is not None:
        i = next(i for i, l in enumerate(lines) if i > start and l.strip().startswith("backend:"))
        col = lines[i].index("redis") + 1
    else:
        i = start + 1  # the config map's first key
        col = len(lines[i]) - len(lines[i].lstrip()) + 1
    assert "t.yaml:%d:%d: backend redis" % (i + 1, col) in err, err
    assert "needs a top-level 'redis:' section (or backend: local)" in err, err
    # With a redis: section (nothing needs to listen there) or backend local, it loads.
    cfg["redis"] = {"address": "127.0.0.1:%d" % h.free_port()}
    path.write_text(h.yaml_text(cfg))
    assert h.run_check(path)[0] == 0
    del cfg["redis"]
    conf["backend"] = "local"
    path.write_text(h.yaml_text(cfg))
    assert h.run_check(path)[0] == 0


def test_jwt_claim_keys_read_the_published_claims(gateway_factory, upstream):
    """`jwt.<claim>` reads the claim the jwt plugin published through the core
    (tg_request_claim): a string claim as its value, a number as its JSON text,
    so two users of tenant 7 share one bucket and tenant 8 has its own."""
    import jwt  # python3-jwt
    secret = "s" * 32
    route = rl_route("a", "/a", {"key": "jwt.tenant", "limits": [{"rate": 1, "per": "1m", "burst": 1}],
                                 "backend": "local"})
    route["plugins"].insert(0, {"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": secret}]}})
    gw = start_gw(gateway_factory, upstream, [route])

    def bearer(sub, tenant):
        t = jwt.encode({"sub": sub, "tenant": tenant, "exp": int(time.time()) + 600}, secret, "HS256")
        return [("Authorization", "Bearer " + t)]

    assert get(gw.port, "/a", bearer("alice", 7)).status == 200
    assert get(gw.port, "/a", bearer("bob", 7)).status == 429
    assert get(gw.port, "/a", bearer("carol", 8)).status == 200
    assert get(gw.port, "/a", bearer("dave", "8")).status == 429  # "8" and 8 publish the same text
