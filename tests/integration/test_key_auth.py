"""The bundled key-auth plugin through the real binary: header and query
sources, 401s that say nothing about which keys exist, duplicates, scopes,
strip_key, forward_consumer (a client cannot inject or shadow it), the keys
file reloaded with the config, and the consumer as rate-limit key and
request-log field, the key never in the log."""

import hashlib
import json
import os
import signal
import time

import pytest

import tg_harness as h

KEYS = {"alice": "ak_live_alice_0123456789abcdef", "bob": "bk_live_bob_0123456789abcdef",
        "bob2": "bk_live_bob_rotated_ffff", "carol": "ck carol+key/with=odd&chars"}


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def keys_yaml(consumers):
    out = ["consumers:"]
    if not consumers:
        return "consumers: []\n"
    for name, digests, scopes in consumers:
        out.append("  - name: %s" % name)
        out.append("    sha256: [%s]" % ", ".join('"%s"' % d for d in digests))
        if scopes:
            out.append("    scopes: [%s]" % ", ".join(scopes))
    return "\n".join(out) + "\n"


DEFAULT_CONSUMERS = [("alice", [sha(KEYS["alice"])], ["orders:read", "orders:write"]),
                     ("bob", [sha(KEYS["bob"]), sha(KEYS["bob2"])], ["orders:read"]),
                     ("carol", [sha(KEYS["carol"])], [])]


def start(gateway_factory, upstream, tmp_path, conf=None, consumers=None, route_plugins=None,
          global_plugins=None):
    (tmp_path / "api-keys.yaml").write_text(keys_yaml(DEFAULT_CONSUMERS if consumers is None else consumers))
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])},
                           [h.route("all", "up", {"path_prefix": "/"})])
    ka = {"keys_file": "api-keys.yaml", "forward_consumer": "X-Consumer", "strip_key": True}
    ka.update(conf or {})
    cfg["plugins"] = (global_plugins or []) + [{"name": "key-auth", "config": ka}] + (route_plugins or [])
    gw = gateway_factory(cfg, port=port)
    return gw, port, cfg


def get(port, target="/orders", key=None, headers=()):
    hs = list(headers)
    if key is not None:
        hs.append(("X-Api-Key", key))
    return h.request(port, "GET", target, headers=hs)


def seen(r, name):
    return [v for n, v in json.loads(r.body)["headers"] if n.lower() == name.lower()]


def assert_401(r, message):
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == 'Key realm="tollgate"'
    assert r.header("Content-Type") == "application/json"
    assert r.json() == {"error": message, "request_id": r.header("X-Request-Id")}


def test_header_key_accepted_consumer_forwarded_key_stripped(gateway_factory, upstream, tmp_path):
    _, port, _ = start(gateway_factory, upstream, tmp_path)
    r = get(port, key=KEYS["alice"])
    assert r.status == 200, r
    assert seen(r, "X-Consumer") == ["alice"]
    assert seen(r, "X-Api-Key") == []
    # key rotation: both of bob's keys are his; surrounding white space is not part of it
    assert seen(get(port, key=KEYS["bob"]), "X-Consumer") == ["bob"]
    assert seen(get(port, key="  " + KEYS["bob2"] + "\t"), "X-Consumer") == ["bob"]
    # header names compare case-insensitively
    r = get(port, headers=[("x-api-KEY", KEYS["carol"])])
    assert seen(r, "X-Consumer") == ["carol"]


def test_refusals_say_nothing_about_keys(gateway_factory, upstream, tmp_path):
    _, port, _ = start(gateway_factory, upstream, tmp_path)
    assert_401(get(port), "missing API key")
    assert_401(get(port, key=""), "missing API key")
    wrong = [KEYS["alice"][:-1], KEYS["alice"] + "x", KEYS["alice"].upper(), "x" * 4000, sha(KEYS["alice"]),
             "Bearer " + KEYS["alice"]]
    answers = set()
    for k in wrong:
        r = get(port, key=k)
        assert_401(r, "invalid API key")
        answers.add((r.status, tuple((n, v) for n, v in r.headers if n.lower() != "x-request-id"), r.body.replace(
            r.header("X-Request-Id").encode(), b"")))
    assert len(answers) == 1, answers  # byte for byte the same answer, but for the request id
    assert upstream.requests == 0


def test_a_second_key_is_refused(gateway_factory, upstream, tmp_path):
    _, port, _ = start(gateway_factory, upstream, tmp_path)
    assert_401(get(port, headers=[("X-Api-Key", KEYS["alice"]), ("X-Api-Key", KEYS["alice"])]),
               "more than one API key")
    assert_401(get(port, headers=[("X-Api-Key", KEYS["alice"]), ("x-api-key", "other")]),
               "more than one API key")
    assert upstream.requests == 0


def test_underscore_spelling_is_a_second_copy(gateway_factory, upstream, tmp_path):
    port = h.free_port()
    (tmp_path / "k.yaml").write_text(keys_yaml(DEFAULT_CONSUMERS))
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])},
                           [h.route("all", "up", {"path_prefix": "/"})],
                           limits={"headers_with_underscores": "allow"})
    cfg["plugins"] = [{"name": "key-auth", "config": {"keys_file": "k.yaml"}}]
    gateway_factory(cfg, port=port)
    assert_401(get(port, headers=[("X-Api-Key", KEYS["alice"]), ("X_Api_Key", KEYS["bob"])]),
               "more than one API key")
    assert get(port, key=KEYS["alice"]).status == 200


def test_client_cannot_inject_the_consumer_header(gateway_factory, upstream, tmp_path):
    _, port, _ = start(gateway_factory, upstream, tmp_path)
    r = get(port, key=KEYS["bob"], headers=[("X-Consumer", "alice"), ("x-consumer", "admin")])
    assert r.status == 200
    assert seen(r, "X-Consumer") == ["bob"]
    assert_401(get(port, key="nope", headers=[("X-Consumer", "alice")]), "invalid API key")


def test_query_source(gateway_factory, upstream, tmp_path):
    _, port, _ = start(gateway_factory, upstream, tmp_path, conf={"query": "api_key"})
    enc = "ck%20carol%2Bkey%2Fwith%3Dodd%26chars"  # KEYS["carol"] percent-encoded
    r = h.request(port, "GET", "/o?a=1&api_key=%s&b=%%20" % enc)
    assert r.status == 200, r
    assert seen(r, "X-Consumer") == ["carol"]
    assert json.loads(r.body)["target"] == "/o?a=1&b=%20"  # the key is gone, the rest byte for byte
    r = h.request(port, "GET", "/o?%61pi_key=" + KEYS["alice"])  # the name spelled with an escape
    assert json.loads(r.body)["target"] == "/o"
    assert seen(r, "X-Consumer") == ["alice"]
    assert_401(h.request(port, "GET", "/o?api_key=%s&%%61pi_key=x" % KEYS["alice"]), "more than one API key")
    assert_401(h.request(port, "GET", "/o?api_key=%s&api_key" % KEYS["alice"]), "more than one API key")
    assert_401(h.request(port, "GET", "/o", [("X-Api-Key", KEYS["alice"])]), "missing API key")
    assert_401(h.request(port, "GET", "/o?api_key="), "missing API key")


def test_key_kept_without_strip_key(gateway_factory, upstream, tmp_path):
    _, port, _ = start(gateway_factory, upstream, tmp_path, conf={"strip_key": False, "query": "k"})
    r = h.request(port, "GET", "/o?k=%s&z=1" % KEYS["alice"])
    assert json.loads(r.body)["target"] == "/o?k=%s&z=1" % KEYS["alice"]


def test_scopes_required_on_the_instance(gateway_factory, upstream, tmp_path):
    _, port, _ = start(gateway_factory, upstream, tmp_path, conf={"scopes": ["orders:write"]})
    assert get(port, key=KEYS["alice"]).status == 200
    r = get(port, key=KEYS["bob"])
    assert r.status == 403, r
    assert r.json()["error"] == "insufficient scope"
    assert r.header("WWW-Authenticate") is None
    assert_401(get(port, key="nope"), "invalid API key")


def test_keys_file_reloaded_with_the_config(gateway_factory, upstream, tmp_path):
    gw, port, cfg = start(gateway_factory, upstream, tmp_path)
    assert get(port, key=KEYS["alice"]).status == 200
    # alice revoked, dave added; the config file itself is unchanged
    dave = "dk_new_dave_key"
    (tmp_path / "api-keys.yaml").write_text(keys_yaml([("bob", [sha(KEYS["bob"])], []),
                                                      ("dave", [sha(dave)], [])]))
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while get(port, key=dave).status != 200:
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.05)
    assert_401(get(port, key=KEYS["alice"]), "invalid API key")
    assert seen(get(port, key=dave), "X-Consumer") == ["dave"]
    # a broken keys file: the reload fails at its FILE:LINE:COL, the running keys stay
    (tmp_path / "api-keys.yaml").write_text("consumers:\n  - name: eve\n    sha256: nothex\n")
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    want = "%s:3:13: expected the key's SHA-256" % (tmp_path / "api-keys.yaml")
    while want not in gw.stderr():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.05)
    assert get(port, key=dave).status == 200
    # revoking everyone is a valid reload
    (tmp_path / "api-keys.yaml").write_text("consumers: []\n")
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while get(port, key=dave).status != 401:
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.05)


def test_consumer_is_a_rate_limit_key(gateway_factory, upstream, tmp_path):
    rl = {"name": "rate-limit", "config": {"key": "consumer", "limits": [{"rate": 2, "per": "1m"}],
                                           "backend": "local"}}
    gw, port, _ = start(gateway_factory, upstream, tmp_path, route_plugins=[rl])
    assert [get(port, key=KEYS["alice"]).status for _ in range(3)] == [200, 200, 429]
    # bob's two keys are one consumer: one bucket
    assert [get(port, key=k).status for k in (KEYS["bob"], KEYS["bob2"], KEYS["bob"])] == [200, 200, 429]
    assert get(port, key=KEYS["carol"]).status == 200
    assert "rate-limit key 'consumer'" not in gw.stderr()


def test_consumer_is_a_template_variable(gateway_factory, upstream, tmp_path):
    hd = {"name": "headers", "config": {"request": {"set": {"X-Who": "consumer={consumer}"}}}}
    _, port, _ = start(gateway_factory, upstream, tmp_path, route_plugins=[hd])
    assert seen(get(port, key=KEYS["bob2"]), "X-Who") == ["consumer=bob"]


def test_consumer_key_without_key_auth_warns(tmp_path):
    cfg = h.gateway_config(1, {"up": h.upstream_conf(["127.0.0.1:2"])}, [h.route("all", "up", {"path_prefix": "/"})])
    cfg["plugins"] = [{"name": "rate-limit", "config": {"key": "consumer", "limits": [{"rate": 2, "per": "1m"}],
                                                        "backend": "local"}}]
    path = tmp_path / "c.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(path)
    assert rc == 0, err
    assert "rate-limit key 'consumer' needs an authentication plugin" in err, err


def test_consumer_logged_key_never(gateway_factory, upstream, tmp_path):
    log = {"name": "request-log", "config": {"path": "access.log",
                                             "fields": ["status", "query", "consumer", "auth_error"]}}
    gw, port, _ = start(gateway_factory, upstream, tmp_path, conf={"query": "api_key"}, global_plugins=[log])
    assert h.request(port, "GET", "/o?api_key=%s&x=1" % KEYS["alice"]).status == 200
    assert h.request(port, "GET", "/o?api_key=wrong").status == 401
    assert gw.stop() == 0
    data = (tmp_path / "access.log").read_text()
    assert KEYS["alice"] not in data and "wrong" not in data
    # each worker hands its own lines to the writer: order across workers is not kept
    lines = sorted((json.loads(ln) for ln in data.splitlines()), key=lambda ln: ln["status"])
    assert lines == [{"status": 200, "query": "api_key=***&x=1", "consumer": "alice", "auth_error": None},
                     {"status": 401, "query": "api_key=***", "consumer": None, "auth_error": "invalid"}]


@pytest.mark.parametrize("conf, keys_text, where, message", [
    ({"header": "X-Key", "query": "k"}, None, "c.yaml", '"header" and "query" together'),
    ({"forward_consumer": "Content-Length"}, None, "c.yaml", "is the gateway's own"),
    ({}, "consumers:\n  - name: a\n    sha256: abc\n", "api-keys.yaml:3:13:", "expected the key's SHA-256"),
    ({}, "consumers:\n  - { name: a, sha256: %s }\n  - { name: b, sha256: %s }\n" % (sha("k"), sha("k")),
     "api-keys.yaml:3:", 'this digest is already the key of consumer "a"'),
    ({}, "consumer: []\n", "api-keys.yaml:1:1:", "unknown key 'consumer' in the keys file (did you mean 'consumers'?)"),
    ({"keys_file": "missing.yaml"}, None, "c.yaml", "missing.yaml: cannot open"),
])
def test_config_errors(tmp_path, conf, keys_text, where, message):
    (tmp_path / "api-keys.yaml").write_text(keys_text or "consumers: []\n")
    cfg = h.gateway_config(1, {"up": h.upstream_conf(["127.0.0.1:2"])}, [h.route("all", "up", {"path_prefix": "/"})])
    ka = {"keys_file": "api-keys.yaml"}
    ka.update(conf)
    cfg["plugins"] = [{"name": "key-auth", "config": ka}]
    path = tmp_path / "c.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(path)
    assert rc == 1, err
    assert err.startswith(os.path.join(str(tmp_path), where)), err
    assert message in err, err
