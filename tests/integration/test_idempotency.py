"""The idempotency plugin (Idempotency-Key, draft-ietf-httpapi-idempotency-key-header)
against a real redis-server and an upstream that counts its side effects.

Covers: replay of a stored response, 200 concurrent identical POSTs through two
gateway instances sharing Redis (one side effect), 409 while in progress, 422 for
a different request under the same key, 5xx releasing the key, 4xx stored,
responses over max_body not replayable, bad and missing keys, scopes keeping
clients apart, the memory store, Redis down -> 503, config errors, the
per-client quota (429) and the memory store's byte bound under a key flood.
"""

import concurrent.futures
import http.server
import json
import socketserver
import threading
import time
import urllib.parse

import pytest

import tg_harness as h
from test_rate_limit import Redis

KEY = "Idempotency-Key"


class CountingUpstream:
    """POST /<anything>?status=N&delay=S&size=B: counts one side effect per
    request received, answers status N (default 201) after S seconds with a
    JSON body naming the effect's number (padded to B bytes)."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()
        self.fail_first = 0  # answer 500 to this many requests first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # head and body are two writes: no delayed-ACK stall

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                with outer.lock:
                    outer.count += 1
                    effect = outer.count
                    failing = outer.fail_first > 0
                    outer.fail_first -= failing
                time.sleep(float(q.get("delay", "0")))
                status = 500 if failing else int(q.get("status", "201"))
                out = json.dumps({"effect": effect, "got": body.decode("latin-1")})
                out = out.ljust(int(q.get("size", "0"))).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Effect", str(effect))
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_PATCH = do_POST

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 512

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def up():
    u = CountingUpstream()
    yield u
    u.stop()


@pytest.fixture
def redis():
    r = Redis().start()
    yield r
    r.kill()


def idem_config(port, up, config, redis=None, workers=2, plugins_before=()):
    ups = {"up": h.upstream_conf([up.address], retries=0)}
    rt = h.route("api", "up", {"path_prefix": "/"})
    rt["plugins"] = list(plugins_before) + [{"name": "idempotency", "config": config}]
    cfg = h.gateway_config(port, ups, [rt], workers=workers)
    if redis is not None:
        cfg["redis"] = {"address": redis.address, "timeout": "200ms"}
    return cfg


def start(gateway_factory, up, config, redis=None, workers=2, name=None):
    port = h.free_port()
    gw = gateway_factory(idem_config(port, up, config, redis, workers), name=name)
    if redis is not None:
        time.sleep(0.3)  # workers connect to Redis asynchronously
    return port


def post(port, path="/orders", key='"k1"', body=b'{"amount": 10}', headers=(), method="POST"):
    # With Redis the record is written (or released) as the response leaves,
    # on the worker's own Redis connection: a retry sent the same
    # millisecond on another connection may still meet "in progress" (a 409
    # with Retry-After, never a second side effect). Tests pause a moment so
    # that each exchange starts after the previous one's record landed.
    time.sleep(0.02)
    hs = list(headers)
    if key is not None:
        hs.append((KEY, key))
    hs.append(("Content-Type", "application/json"))
    return h.request(port, method, path, hs, body)


@pytest.fixture(params=["memory", "redis"])
def storage(request):
    return request.param


def gw_for(storage, gateway_factory, up, redis_fixture_factory, **config):
    config = dict(config, storage=storage)
    if storage == "redis":
        return start(gateway_factory, up, config, redis_fixture_factory())
    return start(gateway_factory, up, config)


@pytest.fixture
def make_gw(storage, gateway_factory, up, request):
    redises = []

    def make(**config):
        def new_redis():
            r = Redis().start()
            redises.append(r)
            return r

        return gw_for(storage, gateway_factory, up, new_redis, **config)

    yield make
    for r in redises:
        r.kill()


# ---------------------------------------------------------------- replay ----
def test_replay_of_stored_response(make_gw, up):
    port = make_gw()
    first = post(port)
    assert first.status == 201, first
    assert first.header("Idempotent-Replayed") is None
    again = post(port)
    assert again.status == 201, again
    assert again.body == first.body
    assert again.header("X-Effect") == "1"
    assert again.header("Content-Type") == "application/json"
    assert again.header("Idempotent-Replayed") == "true"
    assert up.count == 1
    other = post(port, key='"k2"')  # another key: another side effect
    assert other.status == 201 and json.loads(other.body)["effect"] == 2


def test_request_without_key_or_other_method_passes(make_gw, up):
    port = make_gw()
    assert post(port, key=None).status == 201
    assert post(port, key=None).status == 201
    assert up.count == 2


def test_different_request_same_key_is_422(make_gw, up):
    port = make_gw()
    assert post(port).status == 201
    for path, body in (("/other", b'{"amount": 10}'), ("/orders", b'{"amount": 1000}')):
        r = post(port, path=path, body=body)
        assert r.status == 422, r
        assert r.header("Content-Type") == "application/problem+json"
        assert r.json()["status"] == 422
    assert up.count == 1


def test_in_progress_is_409(make_gw, up):
    port = make_gw()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        slow = ex.submit(post, port, "/orders?delay=0.8")
        time.sleep(0.3)
        r = post(port, "/orders?delay=0.8")
        assert r.status == 409, r
        assert r.header("Content-Type") == "application/problem+json"
        assert r.json()["title"] == "Request in progress"
        assert slow.result().status == 201
    assert up.count == 1
    r = post(port, "/orders?delay=0.8")
    assert r.status == 201 and r.header("Idempotent-Replayed") == "true"


def test_5xx_releases_the_key(make_gw, up):
    port = make_gw()
    up.fail_first = 1
    assert post(port).status == 500
    r = post(port)  # the client may retry: it reaches the upstream again
    assert r.status == 201 and r.header("Idempotent-Replayed") is None
    assert up.count == 2
    assert post(port).header("Idempotent-Replayed") == "true"
    assert up.count == 2


def test_transport_failure_releases_the_key(storage, gateway_factory, up, redis):
    dead = CountingUpstream()
    dead.stop()  # nothing listens there any more: 502
    port = start(gateway_factory, dead, {"storage": storage}, redis if storage == "redis" else None)
    assert post(port).status == 502
    assert post(port).status == 502  # not a 409: the key was released


def test_4xx_is_stored(make_gw, up):
    port = make_gw()
    first = post(port, "/orders?status=409")
    assert first.status == 409
    again = post(port, "/orders?status=409")
    assert again.status == 409 and again.header("Idempotent-Replayed") == "true"
    assert again.body == first.body
    assert up.count == 1


def test_response_over_max_body_is_not_replayable(make_gw, up):
    port = make_gw(max_body="1KiB")
    first = post(port, "/orders?size=5000")
    assert first.status == 201 and len(first.body) == 5000
    again = post(port, "/orders?size=5000")
    assert again.status == 409, again
    assert again.json()["title"] == "Response not replayable"
    assert "201" in again.json()["detail"]
    assert up.count == 1


@pytest.mark.parametrize("value", ['""', "k1", '"a\\b"', '"' + "x" * 256 + '"', '"caf\xe9"', '"a" x'])
def test_bad_key_is_400(make_gw, up, value):
    port = make_gw()
    r = post(port, key=value)
    assert r.status == 400, r
    assert r.json()["title"] == "Invalid idempotency key"
    assert up.count == 0


def test_longest_key_and_escapes_accepted(make_gw, up):
    port = make_gw()
    assert post(port, key='"' + "x" * 255 + '"').status == 201
    assert post(port, key='"a\\"b\\\\c"').status == 201
    assert up.count == 2


def test_repeated_key_header_is_400(make_gw, up):
    port = make_gw()
    r = post(port, key='"a"', headers=[(KEY, '"b"')])
    assert r.status == 400
    assert up.count == 0


def test_required(make_gw, up):
    port = make_gw(required=True)
    r = post(port, key=None)
    assert r.status == 400 and "needs an idempotency key" in r.json()["detail"]
    assert post(port).status == 201
    assert up.count == 1


def test_scope_keeps_clients_apart(make_gw, up):
    port = make_gw(scope=["route", "header:X-Client"])
    a = post(port, headers=[("X-Client", "alice")])
    b = post(port, headers=[("X-Client", "bob")])
    assert a.status == b.status == 201
    assert up.count == 2
    # Values that a naive join would confuse stay apart: "..", "", repeated headers.
    for hs in ([("X-Client", "..")], [("X-Client", "")], [("X-Client", "alice"), ("X-Client", "bob")],
               [("X-Client", "alice,bob")], [("X-Client", "%61lice")]):
        assert post(port, headers=hs).status == 201, hs
    assert up.count == 7
    assert post(port, headers=[("X-Client", "alice")]).header("Idempotent-Replayed") == "true"
    r = post(port)  # the scope needs the header
    assert r.status == 400 and "header" in r.json()["detail"]


# ------------------------------------------------------ two instances ----
def test_200_concurrent_posts_two_instances_one_effect(gateway_factory, up, redis):
    ports = [start(gateway_factory, up, {"storage": "redis"}, redis, workers=2, name="gw%d" % i)
             for i in range(2)]
    # Warm the connections so the burst is not a connect storm.
    for p in ports:
        assert post(p, key='"warm-%d"' % p).status == 201
    base = up.count

    def one(i):
        return post(ports[i % 2], "/orders?delay=0.5", key='"burst"')

    with concurrent.futures.ThreadPoolExecutor(64) as ex:
        results = list(ex.map(one, range(200)))
    assert up.count - base == 1
    originals = [r for r in results if r.status == 201]
    conflicts = [r for r in results if r.status == 409]
    assert len(originals) + len(conflicts) == 200, [r for r in results if r.status not in (201, 409)][:3]
    assert originals, "nobody got the response"
    assert len({r.body for r in originals}) == 1
    assert sum(1 for r in originals if r.header("Idempotent-Replayed") is None) <= 1
    for r in conflicts:
        assert r.json()["title"] == "Request in progress"
    # Afterwards both instances replay the one stored response.
    for p in ports:
        r = post(p, "/orders?delay=0.5", key='"burst"')
        assert r.status == 201 and r.header("Idempotent-Replayed") == "true"
        assert r.body == originals[0].body
    assert up.count - base == 1


def test_memory_store_shared_by_workers(gateway_factory, up):
    port = start(gateway_factory, up, {"storage": "memory"}, workers=4)

    def one(i):
        return post(port, "/orders?delay=0.3", key='"m"')

    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        results = list(ex.map(one, range(64)))
    assert up.count == 1
    assert {r.status for r in results} <= {201, 409}
    assert len({r.body for r in results if r.status == 201}) == 1


# ----------------------------------------------------------- Redis down ----
def test_redis_down_is_503(gateway_factory, up, redis):
    port = start(gateway_factory, up, {"storage": "redis"}, redis)
    assert post(port).status == 201
    redis.kill()
    r = post(port, key='"k2"')
    assert r.status == 503, r
    assert r.header("Content-Type") == "application/problem+json"
    assert r.header("Retry-After") == "1"
    assert post(port, key=None).status == 201  # no key: no store needed
    assert up.count == 2


def test_redis_frozen_is_503(gateway_factory, up, redis):
    port = start(gateway_factory, up, {"storage": "redis"}, redis)
    redis.stop()
    try:
        r = post(port)
        assert r.status == 503, r
    finally:
        redis.cont()
    assert up.count == 0


# -------------------------------------------------------------- config ----
@pytest.mark.parametrize("config,redis_on,message", [
    ({"storage": "redis"}, False, "storage redis needs a top-level 'redis:'"),
    ({}, False, "storage redis (the default) needs a top-level 'redis:'"),
    ({"storage": "memory", "scope": ["route", "jwt.sub"]}, False, "no jwt plugin runs before"),
    ({"storage": "memory", "scope": ["route", "nope"]}, False, "invalid scope part 'nope'"),
    ({"storage": "memory", "scope": ["ip", "ip"]}, False, "listed twice"),
    ({"storage": "memory", "header": "Bad Header"}, False, "is not a token"),
    ({"storage": "memory", "methods": []}, False, "methods"),
    ({"storage": "memory", "ttl": "10s", "lock_ttl": "1m"}, False, "lock_ttl must not exceed ttl"),
    ({"storage": "memory", "ttl": "10"}, False, "expected a duration"),
    ({"storage": "memory", "colour": 1}, False, "unknown key 'colour'"),
    ({"storage": "redis", "max_size": "1MiB"}, True, "max_size bounds the memory store"),
    ({"storage": "redis", "max_size_per_scope": "1MiB"}, True, "max_size_per_scope bounds the memory"),
    ({"storage": "memory", "max_size": "1KiB"}, False, "max_size"),
    ({"storage": "memory", "max_keys_per_scope": -1}, False, "expected an integer"),
])
def test_config_errors(tmp_path, up, config, redis_on, message):
    cfg = idem_config(h.free_port(), up, config)
    if redis_on:
        cfg["redis"] = {"address": "127.0.0.1:1"}
    path = tmp_path / "tollgate.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(path)
    assert rc != 0
    assert message in err, err
    assert "tollgate.yaml:" in err


# ------------------------------------------------------------ jwt scope ----
SECRET = "idem-hs256-secret-0123456789abcdef-xyz"


def hs_token(**claims):
    import base64
    import hashlib
    import hmac

    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    claims.setdefault("exp", int(time.time()) + 600)
    signing = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims)
    sig = hmac.new(SECRET.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def test_scope_jwt_sub_keeps_subjects_apart(gateway_factory, up):
    port = h.free_port()
    jwt = {"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": SECRET}]}}
    cfg = idem_config(port, up, {"storage": "memory", "scope": ["route", "jwt.sub"]}, plugins_before=[jwt])
    gateway_factory(cfg)

    def auth(t):
        return [("Authorization", "Bearer " + t)]

    alice, bob = hs_token(sub="alice"), hs_token(sub="bob")
    assert post(port, headers=auth(alice)).status == 201
    assert post(port, headers=auth(bob)).status == 201
    assert up.count == 2
    r = post(port, headers=auth(hs_token(sub="alice")))  # a new token, the same subject
    assert r.header("Idempotent-Replayed") == "true" and json.loads(r.body)["effect"] == 1
    r = post(port, headers=auth(hs_token(scope="x")))  # no sub: no key space to put it in
    assert r.status == 400 and "jwt.sub" in r.json()["detail"], r
    assert up.count == 2


# --------------------------------------------------------- client abort ----
def test_client_gone_before_response_never_runs_twice(gateway_factory, up):
    """The upstream may have acted after the client left: a retry gets the
    stored response (the gateway finished the exchange) or 409 while the record
    is "in progress" (it did not), never a second side effect."""
    port = start(gateway_factory, up, {"storage": "memory", "lock_ttl": "1500ms"})
    c = h.Conn(port)
    c.send(h.build_request("POST", "/orders?delay=0.5", [(KEY, '"gone"'), ("Content-Type", "application/json")],
                           b'{"amount": 10}'))
    time.sleep(0.2)
    c.close()
    time.sleep(0.6)
    assert up.count == 1
    r = post(port, "/orders?delay=0.5", key='"gone"')
    assert (r.status == 201 and r.header("Idempotent-Replayed") == "true") or r.status == 409, r
    assert up.count == 1


# ------------------------------------------------------------- metrics ----
def test_outcomes_counted_in_metrics(gateway_factory, up):
    port, admin_port = h.free_port(), h.free_port()
    cfg = idem_config(port, up, {"storage": "memory"})
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    gateway_factory(cfg)
    time.sleep(0.3)
    post(port)  # stored
    post(port)  # replayed
    post(port, path="/other")  # mismatch
    post(port, key="bare")  # bad_key
    up.fail_first = 1
    post(port, key='"k5"')  # released
    text = h.request(admin_port, "GET", "/metrics", host="127.0.0.1").body.decode()
    for outcome in ("stored", "replayed", "mismatch", "bad_key", "released"):
        assert 'tollgate_idempotency_requests_total{outcome="%s"} 1' % outcome in text, outcome


# ---------------------------------------------------------------- body ----
def test_same_length_other_body_is_422(make_gw, up):
    port = make_gw()
    assert post(port, body=b'{"amount": 10}').status == 201
    r = post(port, body=b'{"amount": 99}')  # same method, path, length: other bytes
    assert r.status == 422, r
    assert up.count == 1


def test_chunked_retry_of_the_same_bytes_is_replayed(make_gw, up):
    port = make_gw()
    first = post(port, body=b'{"amount": 10}')
    assert first.status == 201
    hs = [(KEY, '"k1"'), ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    time.sleep(0.02)
    r = h.request(port, "POST", "/orders", hs, h.chunk_encode([b'{"amo', b'unt": 10}']))
    assert r.status == 201 and r.header("Idempotent-Replayed") == "true", r
    assert r.body == first.body
    assert up.count == 1


def test_chunked_body_goes_upstream_whole(make_gw, up):
    port = make_gw()
    hs = [(KEY, '"c"'), ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    r = h.request(port, "POST", "/orders", hs, h.chunk_encode([b'{"a":', b' 1}']))
    assert r.status == 201 and json.loads(r.body)["got"] == '{"a": 1}'


def test_expect_continue_is_answered_before_the_body(make_gw, up):
    port = make_gw()
    with h.Conn(port) as c:
        c.send(h.build_request("POST", "/orders", [(KEY, '"e"'), ("Content-Type", "application/json"),
                                                   ("Content-Length", "14"), ("Expect", "100-continue")]))
        assert c.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 100")
        c.send(b'{"amount": 10}')
        r = c.read_response("POST")
    assert r.status == 201 and json.loads(r.body)["got"] == '{"amount": 10}'


def test_body_over_the_limit_is_413(storage, gateway_factory, up, redis):
    port = h.free_port()
    cfg = idem_config(port, up, {"storage": storage}, redis if storage == "redis" else None)
    cfg["routes"][0]["max_body_size"] = "1KiB"
    gateway_factory(cfg)
    time.sleep(0.3)
    hs = [(KEY, '"big"'), ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    r = h.request(port, "POST", "/orders", hs, h.chunk_encode([b"x" * 800, b"y" * 800]))
    assert r.status == 413, r
    assert up.count == 0


def test_chain_with_a_request_body_hook_cannot_read_first(gateway_factory, up):
    """A plugin that filters the body as it streams (tests/contract.so has a
    request_body hook) rules out reading it whole first: 500, never unchecked."""
    import os
    port = h.free_port()
    contract = {"name": "contract", "path": os.path.join(os.path.dirname(h.BINARY), "tests", "contract.so"),
                "config": {"tag": "c"}}
    gateway_factory(idem_config(port, up, {"storage": "memory"}, plugins_before=[contract]))
    r = post(port)
    assert r.status == 500, r
    assert post(port, key=None).status == 201  # without a key: streams as before
    assert up.count == 1


def test_http2_client_body_read_first_and_replayed(gateway_factory, up):
    import subprocess
    port = h.free_port()
    cfg = idem_config(port, up, {"storage": "memory"})
    cfg["listen"][0]["http2"] = "prior_knowledge"
    gateway_factory(cfg)

    def curl(data):
        p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-D", "-", "-X", "POST",
                            "-H", 'Idempotency-Key: "h2"', "-H", "Content-Type: application/json",
                            "--data-binary", data, "http://127.0.0.1:%d/orders" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.stdout.decode()

    first = curl('{"amount": 10}')
    assert first.startswith("HTTP/2 201"), first
    assert json.loads(first.split("\r\n\r\n", 1)[1])["got"] == '{"amount": 10}'
    time.sleep(0.02)
    again = curl('{"amount": 10}')
    assert again.startswith("HTTP/2 201") and "idempotent-replayed: true" in again.lower(), again
    assert curl('{"amount": 11}').startswith("HTTP/2 422")
    assert up.count == 1


def test_body_read_first_is_resent_on_a_retry(gateway_factory, upstream_factory):
    """The body read whole for the fingerprint is the one a route retry resends
    (chunked from the client: Content-Length toward the upstream)."""
    import hashlib
    bad, good = upstream_factory("bad", mode="reset"), upstream_factory("good")
    port = h.free_port()
    ups = {"up": h.upstream_conf([bad.address, good.address], retries=0, max_fails=0)}
    rt = h.route("r", "up", {"path_prefix": "/"})
    rt["retry"] = {"attempts": 2, "on": ["reset"], "methods": ["POST"]}
    rt["plugins"] = [{"name": "idempotency", "config": {"storage": "memory"}}]
    gateway_factory(h.gateway_config(port, ups, [rt], workers=1))
    body = bytes(range(256)) * 800  # 200 KiB: over what the retry code keeps by itself
    hs = [(KEY, '"r"'), ("Transfer-Encoding", "chunked")]
    r = h.request(port, "POST", "/p", hs, h.chunk_encode([body[:70000], body[70000:]]))
    assert r.status == 200, r
    rec = good.records[0]
    assert rec["body_len"] == len(body)
    assert rec["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert any(k.lower() == "content-length" for k, _ in rec["headers"]), rec["headers"]


def test_broken_or_abandoned_body_while_read_first(make_gw, up):
    port = make_gw()
    hs = [(KEY, '"broken"'), ("Transfer-Encoding", "chunked")]
    r = h.request(port, "POST", "/orders", hs, b"zz\r\nxx\r\n0\r\n\r\n")  # not a chunk size
    assert r.status == 400, r
    with h.Conn(port) as c:  # half a body, then the client leaves
        c.send(h.build_request("POST", "/orders", [(KEY, '"half"'), ("Content-Length", "100")]) + b"x" * 40)
        time.sleep(0.2)
    time.sleep(0.2)
    assert up.count == 0
    assert post(port, key='"half"').status == 201  # nothing was claimed for it


# --------------------------------------------------------------- bounds ----
def test_one_client_at_its_quota_gets_429_others_keep_working(make_gw, up):
    """A client minting keys is refused at max_keys_per_scope (its scope value:
    here the X-Client header) while another client's keyed POST still runs once
    and replays; the flooding client's stored keys still replay too."""
    port = make_gw(scope=["route", "header:X-Client"], max_keys_per_scope=20)
    mallory = [("X-Client", "mallory")]
    for i in range(20):
        assert post(port, key='"m%d"' % i, headers=mallory).status == 201
    r = post(port, key='"m20"', headers=mallory)
    assert r.status == 429, r
    assert r.header("Content-Type") == "application/problem+json"
    assert r.json()["title"] == "Too many idempotency keys" and r.json()["status"] == 429
    assert int(r.header("Retry-After")) >= 1
    assert up.count == 20  # refused before the upstream
    assert post(port, key='"m3"', headers=mallory).header("Idempotent-Replayed") == "true"
    alice = [("X-Client", "alice")]
    first = post(port, key='"a1"', headers=alice)
    assert first.status == 201 and first.header("Idempotent-Replayed") is None
    again = post(port, key='"a1"', headers=alice)
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true"
    assert again.body == first.body
    assert up.count == 21
    assert post(port, key=None, headers=mallory).status == 201  # no key: no record, no quota


def test_released_key_gives_its_quota_back(make_gw, up):
    port = make_gw(max_keys_per_scope=1)
    up.fail_first = 1
    assert post(port, key='"x1"').status == 500  # released: it holds nothing
    assert post(port, key='"x2"').status == 201
    assert post(port, key='"x3"').status == 429


def _rss_env():
    # A sanitizer build keeps freed memory in quarantine: keep it small here.
    import os
    asan = os.environ.get("ASAN_OPTIONS", "")
    return dict(os.environ, ASAN_OPTIONS=(asan + ":" if asan else "") + "quarantine_size_mb=1")


def test_memory_store_byte_bound_under_key_flood(gateway_factory, up):
    """Keys minted from ever new scopes (no quota applies) with 16 KiB
    responses: the store holds max_size; responses fill 3/4 of it at most, the
    later ones are kept as not replayable (a retry gets 409, never a second
    run); once in-progress and not-replayable records fill it, new keys get
    503. RSS stays bounded."""
    port, admin_port = h.free_port(), h.free_port()
    cfg = idem_config(port, up, {"storage": "memory", "max_size": "1MiB",
                                 "scope": ["route", "header:X-Client"]}, workers=1)
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    gw = gateway_factory(cfg, env=_rss_env())
    hs = [("Content-Type", "application/json")]

    def one(i):
        return h.request(port, "POST", "/orders?size=16384", hs + [(KEY, '"f"'), ("X-Client", "c%d" % i)],
                         b'{"amount": 10}').status

    for i in range(200):  # warm: buffers and arenas at their working size
        one(-1 - i)
    base = gw.rss_kb()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        statuses = list(ex.map(one, range(4000)))  # 64 MiB of responses unbounded
    grown = gw.rss_kb() - base
    assert grown < 12 * 1024, "RSS grew by %d KiB" % grown
    assert set(statuses) <= {201, 503}, set(statuses)
    assert statuses.count(503) > 0  # the bound was reached
    text = h.request(admin_port, "GET", "/metrics", host="127.0.0.1").body.decode()
    assert 'tollgate_idempotency_requests_total{outcome="unavailable"} %d' % statuses.count(503) in text
    import re
    kept = int(re.search(r'tollgate_idempotency_requests_total\{outcome="too_large"\} (\d+)', text).group(1))
    stored = int(re.search(r'tollgate_idempotency_requests_total\{outcome="stored"\} (\d+)', text).group(1))
    assert kept > 0 and 0 < stored * 16384 < 768 * 1024, (kept, stored)  # responses: 3/4 of max_size
    # A response kept as not replayable answers its retry with 409, not a rerun.
    effects = up.count
    for i in (statuses.index(201), len(statuses) - 1 - statuses[::-1].index(201)):
        r = h.request(port, "POST", "/orders?size=16384", hs + [(KEY, '"f"'), ("X-Client", "c%d" % i)],
                      b'{"amount": 10}')
        assert (r.status == 201 and r.header("Idempotent-Replayed") == "true") or \
            (r.status == 409 and r.json()["title"] == "Response not replayable"), r
    assert up.count == effects
    r = h.request(port, "POST", "/orders", hs + [(KEY, '"new"'), ("X-Client", "late")], b"{}")
    assert r.status == 503 and r.header("Retry-After") == "1", r


# ------------------------------------------------------------ cluster ----
from test_redis_cluster import cluster, owner  # noqa: E402,F401 (a fixture)


def test_quota_and_replay_through_redis_cluster(gateway_factory, up, cluster):  # noqa: F811
    """With `redis: cluster:`, a record and its client's quota counter share a
    hash tag (one slot: the claim's one script reaches both), while clients
    spread over the nodes."""
    from test_rate_limit import key_slot
    port = h.free_port()
    cfg = idem_config(port, up, {"storage": "redis", "scope": ["route", "header:X-Client"],
                                 "max_keys_per_scope": 3})
    cfg["redis"] = {"cluster": {"nodes": [cluster[0].address]}, "timeout": "200ms"}
    gateway_factory(cfg)
    time.sleep(0.5)  # the slot map
    for c in range(12):
        hs = [("X-Client", "c%d" % c)]
        assert [post(port, key='"k%d"' % i, headers=hs).status for i in range(4)] == [201] * 3 + [429], c
        assert post(port, key='"k0"', headers=hs).header("Idempotent-Replayed") == "true"
    assert up.count == 36
    holders = 0
    for n in cluster:
        keys = n.cmd("KEYS", "tg:idem:*")
        holders += bool(keys)
        for k in keys:
            assert owner(cluster, key_slot(k)) is n
        records = [k for k in keys if not k.startswith("tg:idem:n:")]
        for k in records:  # its client's counter sits on the same node
            assert "tg:idem:n:" + k[len("tg:idem:"):k.index("}") + 1] in keys
    assert holders >= 2
