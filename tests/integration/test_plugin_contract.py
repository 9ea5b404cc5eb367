"""The plugin contract (include/tollgate/plugin.h, request.h) through the real
binary, driven by tests/plugins/contract.c: an out-of-tree plugin built from the
public headers alone (built beside the binary as tests/contract.so). The
sample plugin (test_chain.py) stands in where a second kind of plugin helps."""

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

import tg_harness as h

CONTRACT = os.path.join(os.path.dirname(h.BINARY), "tests", "contract.so")
SAMPLE = os.path.join(os.path.dirname(h.BINARY), "tests", "sample.so")


def contract(tag, **config):
    config["tag"] = tag
    return {"name": "contract", "path": CONTRACT, "config": config}


def sample(tag, **config):
    config["tag"] = tag
    return {"name": "sample", "path": SAMPLE, "config": config}


def route(name, prefix, plugins=None):
    r = h.route(name, "up", {"path_prefix": prefix})
    if plugins is not None:
        r["plugins"] = plugins
    return r


@pytest.fixture
def gw(gateway_factory, upstream_factory):
    """make(route_plugins, global_plugins=(), workers=1, limits=None, tls=None) -> ns(port, up,
    gw): one route /a; tls: the listener's `tls:` map."""

    class NS:
        pass

    def make(route_plugins, global_plugins=(), workers=1, limits=None, tls=None):
        ns = NS()
        ns.up = upstream_factory("up")
        ns.port = h.free_port()
        cfg = h.gateway_config(ns.port, {"up": h.upstream_conf([ns.up.address])},
                               [route("a", "/a", list(route_plugins))], limits=limits, workers=workers)
        cfg["plugins"] = list(global_plugins)
        if tls is not None:
            cfg["listen"][0]["tls"] = tls
        ns.cfg = cfg
        ns.gw = gateway_factory(cfg)
        return ns

    return make


def seen_headers(resp):
    """The request headers the test upstream received (its echo)."""
    return [(k.lower(), v) for k, v in resp.json()["headers"]]


def seen(resp, name):
    return [v for k, v in seen_headers(resp) if k == name.lower()]


# ---- TG_FILTER_PAUSE and tg_request_resume() ----

def test_resume_inside_the_hook_applies_when_it_returns_pause(gw):
    """A resume before the hook returns (a callback that came back at once) is recorded; the
    hook's PAUSE then continues the chain at once instead of hanging the request."""
    ns = gw([contract("s", resume="sync", header="X-Contract-S"), contract("b", header="X-Contract-B")])
    resp = h.request(ns.port, "GET", "/a/x", timeout=3)
    assert resp.status == 200, resp
    assert seen(resp, "X-Contract-S") == ["s"] and seen(resp, "X-Contract-B") == ["b"]
    assert resp.header("X-Contract-Check") is None  # no check failed (worker state, thread, loop)
    assert "resume" not in ns.gw.stderr()


@pytest.mark.parametrize("status,expect", [("responded", 403), ("error", 500), ("pause", 500)])
def test_resume_inside_the_hook_with_each_status(gw, status, expect):
    ns = gw([contract("s", resume="sync", resume_status=status), contract("b", header="X-Contract-B")])
    before = ns.up.requests
    resp = h.request(ns.port, "GET", "/a/x", timeout=3)
    assert resp.status == expect, resp
    if status == "responded":
        assert resp.body == b"answered by contract s\n"
    else:  # ERROR, and PAUSE (which counts as ERROR), name the plugin
        assert resp.json()["error"] == "plugin contract failed"
    assert ns.up.requests == before  # the rest of the chain and the upstream were skipped
    # the response phases of the whole chain ran on the answer (b's request_head never ran)
    assert resp.header("X-Contract-Tags") == "b,s"


@pytest.mark.parametrize("status,expect", [("continue", 200), ("responded", 403), ("error", 500)])
def test_resume_from_a_timer(gw, status, expect):
    ns = gw([contract("t", resume="async", resume_status=status, delay="200ms"),
             contract("b", header="X-Contract-B")])
    t0 = time.monotonic()
    resp = h.request(ns.port, "GET", "/a/x", timeout=5)
    assert time.monotonic() - t0 >= 0.18
    assert resp.status == expect, resp
    if status == "continue":
        assert seen(resp, "X-Contract-B") == ["b"]
    if status == "responded":
        assert resp.body == b"answered by contract t\n"
    if status == "error":
        assert resp.json()["error"] == "plugin contract failed"


def test_resume_inside_the_hook_then_continue_is_ignored_with_a_warning(gw):
    ns = gw([contract("s", resume="sync", resume_status="error", then="continue"),
             contract("b", header="X-Contract-B")])
    resp = h.request(ns.port, "GET", "/a/x", timeout=3)
    assert resp.status == 200, resp  # the hook's CONTINUE stands, not the resume's ERROR
    assert seen(resp, "X-Contract-B") == ["b"]
    assert re.search(r"plugin contract called tg_request_resume\(\) inside request_head, then "
                     r"returned CONTINUE.*the resume is ignored", ns.gw.stderr()), ns.gw.stderr()


def test_continue_after_an_answer_sends_the_answer(gw):
    """The plugin answered (403) and resumed RESPONDED inside the hook, then returned CONTINUE:
    the resume is ignored, and a request_head CONTINUE with an answer sends it."""
    ns = gw([contract("s", resume="sync", resume_status="responded", then="continue"), contract("b")])
    before = ns.up.requests
    resp = h.request(ns.port, "GET", "/a/x", timeout=3)
    assert resp.status == 403 and resp.body == b"answered by contract s\n"
    assert ns.up.requests == before
    assert "the resume is ignored" in ns.gw.stderr()


def test_second_resume_of_one_pause_is_ignored(gw):
    ns = gw([contract("s", resume="sync_twice", resume_status="continue"), contract("b")])
    resp = h.request(ns.port, "GET", "/a/x", timeout=3)
    assert resp.status == 200, resp  # the first resume (CONTINUE) counts, not the second (ERROR)
    assert "tg_request_resume() called twice in one request_head" in ns.gw.stderr()


def test_resume_of_a_request_that_is_not_paused_is_ignored(gw):
    ns = gw([contract("s", stray_resume=True)])
    resp = h.request(ns.port, "GET", "/a/x", timeout=3)
    assert resp.status == 200, resp
    assert "which is not paused: ignored" in ns.gw.stderr()


def test_client_leaving_while_paused_runs_the_cleanup(gw):
    ns = gw([contract("t", resume="async", delay="300ms")])
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", ns.port))
        s.sendall(h.build_request("GET", "/a/x"))
        s.close()
    time.sleep(0.6)  # the timers would fire on freed requests (ASan build) without the cleanup
    assert h.request(ns.port, "GET", "/a/after").status == 200


# ---- header and answer setters ----

def test_setters_validate_and_refuse_with_codes(gw):
    """contract.c asserts every code (X-Contract-Check: ok); here: what reached the wire."""
    ns = gw([contract("c", check_api=True)])
    raw = h.build_request("GET", "/a/x", [("X-Contract-Remove", "1")])
    with h.Conn(ns.port) as c:
        c.send(raw)
        resp = c.read_response()
    assert resp.header("X-Contract-Check") == "ok", resp.header("X-Contract-Check")
    assert resp.status == 203  # tg_response_set_status() from response_head
    up = seen_headers(resp)
    assert seen(resp, "X-Contract-Set") == ["v1"]
    assert seen(resp, "X-Contract-Tab") == ["a\tb"]
    assert seen(resp, "X-Contract-Removed") == ["1"] and not seen(resp, "X-Contract-Remove")
    assert not [k for k, v in up if k in ("x-injected", "x-evil", "x_request_id")]
    assert len(seen(resp, "Host")) == 1 and seen(resp, "Host") != ["x"]
    assert len(seen(resp, "X-Request-Id")) == 1 and seen(resp, "X-Request-Id") != ["x"]
    assert not seen(resp, "Transfer-Encoding") and not seen(resp, "Content-Length")
    # the response
    assert resp.header("X-Contract-Added") == "yes"
    assert resp.header("X-Contract-Resp") == "ok"
    assert resp.header("X-Upstream-Name") is None and resp.header("X-Contract-Removed-Resp") == "1"
    assert resp.header("X-Injected") is None and resp.header("X-Evil") is None
    assert resp.header_all("Content-Length") == [str(len(resp.body))]
    assert resp.header("Transfer-Encoding") is None and resp.header("Upgrade") is None
    assert len(resp.header_all("X-Request-Id")) == 1 and resp.header("X-Request-Id") != "x"


def test_set_path_and_query_go_upstream(gw):
    ns = gw([contract("c", check_api=True)])
    resp = h.request(ns.port, "GET", "/a/rewrite?x=y")
    assert resp.header("X-Contract-Check") == "ok"
    assert resp.json()["target"] == "/a/rewritten?q=1"


def test_setters_on_a_generated_reply(gw):
    """A 404 without a route goes through the global chain's response hooks."""
    ns = gw([], global_plugins=[contract("g", check_api=True)])
    resp = h.request(ns.port, "GET", "/nowhere")
    assert resp.status == 404
    assert resp.header("X-Contract-Check") == "ok"
    assert resp.header("X-Contract-Tags") == "g"
    assert resp.header_all("Content-Length") == [str(len(resp.body))]
    # tg_request_log(): the core's line format, ending with what names the request (no route)
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[notice\] contract\[g\]: log 404 /nowhere "
                     r"\(worker 0, route -, request %s\)$" % re.escape(resp.header("X-Request-Id")),
                     ns.gw.stderr(), re.M), ns.gw.stderr()


@pytest.mark.parametrize("head,status", [
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * (20 * 1024), 431),  # too large, never ends
    (b"GET / HTTP/1.1\r\nHost: x\r\n", 408),  # never ends (header_timeout)
])
def test_response_hooks_run_for_a_head_that_could_not_be_parsed(gw, head, status):
    ns = gw([], global_plugins=[contract("g")], limits={"header_timeout": "300ms"})
    with h.Conn(ns.port) as c:
        c.send(head)
        resp = c.read_response()
    assert resp.status == status
    assert resp.header("X-Contract-Tags") == "g"
    assert wait_for(lambda: re.search(r"contract\[g\]: log %d - \(worker 0, route -, " % status,
                                      ns.gw.stderr())), ns.gw.stderr()


# ---- response_head statuses ----

def test_response_head_responded_replaces_an_upstream_response(gw):
    ns = gw([contract("a"), contract("b", response_head="respond"), contract("c", check_api=True)])
    with h.Conn(ns.port) as conn:
        conn.send(h.build_request("GET", "/a/x"))
        resp = conn.read_response()
        assert resp.status == 503
        assert resp.body == b"replaced by contract b\n"
        # c ran on the upstream's response (its header is gone with it), b answered, a ran on the answer
        assert resp.header("X-Contract-Tags") == "a"
        assert resp.header("X-Upstream-Name") is None
        assert resp.header("X-Contract-Resp") is None  # c's tg_response_set_header: gone
        assert resp.header("X-Contract-Added") == "yes"  # c's tg_request_add_response_header: stays
        assert resp.header_all("X-Contract-Named") == ["named"]  # c's refused values added nothing
        assert resp.header("X-Contract-Check") == "ok"
        assert resp.header_all("Content-Length") == [str(len(resp.body))]
        # the connection stays usable
        conn.send(h.build_request("GET", "/a/y"))
        assert conn.read_response().status == 503
    assert "plugin contract refused the response head: 503" in ns.gw.stderr()


def test_response_head_responded_replaces_a_plugin_answer_once(gw):
    """b answers in request_head, then replaces its own answer in response_head: the new answer
    goes through a's response_head only (never b's again, which would answer forever)."""
    ns = gw([contract("a"), contract("b", resume="sync", resume_status="responded", response_head="respond")])
    resp = h.request(ns.port, "GET", "/a/x", timeout=3)
    assert resp.status == 503
    assert resp.body == b"replaced by contract b\n"
    assert resp.header("X-Contract-Tags") == "a"


@pytest.mark.parametrize("how", ["error", "pause"])
def test_response_head_error_is_a_500_naming_the_plugin(gw, how):
    ns = gw([contract("a"), contract("b", response_head=how)])
    resp = h.request(ns.port, "GET", "/a/x")
    assert resp.status == 500
    assert resp.json()["error"] == "plugin contract failed"
    assert resp.header("X-Contract-Tags") == "a"
    assert "plugin contract returned %s on the response head: 500" % how.upper() in ns.gw.stderr()


def test_response_body_pause_counts_as_error(gw):
    ns = gw([contract("a", response_body="pause")])
    resp = h.request(ns.port, "GET", "/a/x")
    assert resp.status == 500  # the head was held with the buffered body: a clean 500
    assert "plugin contract returned PAUSE on the response body: 500" in ns.gw.stderr()


# ---- request_body statuses ----

def test_request_body_transform_goes_upstream_chunked(gw):
    ns = gw([contract("a", request_body="upper")])
    body = b"hello, body " * 1000
    resp = h.request(ns.port, "POST", "/a/x", [("Content-Length", str(len(body)))], body)
    assert resp.status == 200
    got = resp.json()
    assert got["chunked"] is True
    assert got["body_sha256"] == hashlib.sha256(body.upper()).hexdigest()


def test_request_body_responded_refuses_the_body(gw):
    ns = gw([contract("a", request_body="respond")])
    body = b"x" * (4 << 20)
    with h.Conn(ns.port) as c:
        c.send(h.build_request("POST", "/a/x", [("Content-Length", str(len(body)))]))
        try:
            c.send(body)
        except OSError:
            pass  # the gateway may close while the body is still coming
        resp = c.read_response()
        assert resp.status == 413
        assert resp.body == b"body refused by contract\n"
        assert resp.header("Connection") == "close"  # the rest of the body was never read
        c.expect_closed()
    assert "plugin contract refused the request body: 413" in ns.gw.stderr()


@pytest.mark.parametrize("how", ["error", "pause"])
def test_request_body_error_is_a_500(gw, how):
    ns = gw([contract("a", request_body=how)])
    body = b"y" * 1000
    resp = h.request(ns.port, "POST", "/a/x", [("Content-Length", str(len(body)))], body)
    assert resp.status == 500
    assert resp.json()["error"] == "plugin contract failed"


# ---- chain order and which hooks run ----

def test_response_hooks_of_every_plugin_run_after_an_early_answer(gw):
    """sample answers in request_head: c never saw the request, yet its response_head and log
    run (plugin.h: every response the client gets goes through the whole chain)."""
    ns = gw([contract("a"), sample("s", respond_path="/a/early"), contract("c")])
    resp = h.request(ns.port, "GET", "/a/early")
    assert resp.status == 418
    assert resp.header("X-Contract-Tags") == "c,a"  # last plugin first
    err = ns.gw.stderr()
    assert "contract[a]: log 418 /a/early" in err and "contract[c]: log 418 /a/early" in err
    assert err.index("contract[a]: log") < err.index("contract[c]: log")  # log: chain order


# ---- lifecycle ----

def lines(gw, what):
    return re.findall(r"\[notice\] contract\[(\w+)\]: %s (\d+)$" % what, gw.stderr(), re.M)


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_worker_init_and_fini_run_per_worker_and_config_generation(gw):
    ns = gw([contract("r")], global_plugins=[contract("g")], workers=2)
    assert wait_for(lambda: len(lines(ns.gw, "worker_init")) == 4)
    assert sorted(lines(ns.gw, "worker_init")) == [("g", "0"), ("g", "1"), ("r", "0"), ("r", "1")]
    assert lines(ns.gw, "worker_fini") == []
    resp = h.request(ns.port, "GET", "/a/x")
    assert resp.status == 200 and resp.header("X-Contract-Check") is None  # hooks saw their worker's state
    ns.gw.signal(signal.SIGHUP)  # a new generation: worker_init again, the old one's worker_fini
    assert wait_for(lambda: len(lines(ns.gw, "worker_init")) == 8 and len(lines(ns.gw, "worker_fini")) == 4)
    assert sorted(lines(ns.gw, "worker_fini")) == [("g", "0"), ("g", "1"), ("r", "0"), ("r", "1")]
    assert h.request(ns.port, "GET", "/a/x").status == 200
    assert ns.gw.stop() == 0
    assert len(lines(ns.gw, "worker_fini")) == 8  # and the current generation's at shutdown
    # destroy: each generation's instances, after that generation's worker_fini
    err = ns.gw.stderr()
    assert err.count("contract[g]: destroy") == 2 and err.count("contract[r]: destroy") == 2
    assert err.rindex("destroy") > err.rindex("worker_fini")


def test_check_creates_and_destroys_without_worker_init(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text(h.yaml_text(h.gateway_config(h.free_port(), {"up": h.upstream_conf(["127.0.0.1:2"])},
                                              [route("a", "/a", [contract("k")])])))
    rc, err = h.run_check(p)
    assert rc == 0, err
    assert "contract[k]: destroy" in err and "worker_init" not in err


def test_websocket_101_skips_response_head_but_logs(gateway_factory):
    from test_websocket import EchoServer, echo_roundtrip, handshake
    srv = EchoServer()
    try:
        port = h.free_port()
        cfg = h.gateway_config(port, {"ws": h.upstream_conf(["127.0.0.1:%d" % srv.port])},
                               [dict(h.route("ws", "ws", {"path_prefix": "/ws"}), websocket=True)], workers=1)
        cfg["plugins"] = [contract("g")]
        gw = gateway_factory(cfg)
        with h.Conn(port) as c:
            r = handshake(c, "websocket")
            assert r.status == 101, r
            assert r.header("X-Contract-Tags") is None
            assert echo_roundtrip(c, "hi") == "echo:hi"
        assert wait_for(lambda: "contract[g]: log 101 /ws/x" in gw.stderr()), gw.stderr()
    finally:
        srv.stop()


# ---- the connection's facts (request.h: tg_request_protocol, API 2.5; TLS, 2.7) ----

def facts(resp):
    return resp.header("X-Contract-Facts").split("|")


def test_connection_facts_plain(gw):
    ns = gw([contract("f", facts=True)])
    with h.Conn(ns.port) as c:
        for _ in range(2):
            c.send(h.build_request("GET", "/a/x"))
            assert facts(c.read_response()) == ["HTTP/1.1", "-", "-", "-", "-"]


@pytest.fixture(scope="module")
def facts_cert(tmp_path_factory):
    return h.self_signed_cert(tmp_path_factory.mktemp("facts-pki"), "facts.test")


def facts_ctx(facts_cert, version, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(facts_cert["cert"])
    ctx.check_hostname = False
    ctx.minimum_version = ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def test_connection_facts_tls13_sni_alpn_survive_parking(gw, facts_cert):
    # Recorded at the handshake; the same on every request of the connection,
    # also after it parked (idle > 1 s) and came back.
    ns = gw([contract("f", facts=True)], tls={"certificates": [facts_cert]})
    ctx = facts_ctx(facts_cert, ssl.TLSVersion.TLSv1_3, alpn=["http/1.1"])
    with h.Conn(ns.port) as c:
        c.sock = ctx.wrap_socket(c.sock, server_hostname="facts.test")
        want = ["HTTP/1.1", "TLSv1.3", c.sock.cipher()[0], "facts.test", "http/1.1"]
        assert want[2].startswith("TLS_")
        for pause in (0, 1.5):
            time.sleep(pause)
            c.send(h.build_request("GET", "/a/x", host="facts.test"))
            assert facts(c.read_response()) == want


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_connection_facts_over_http2(gw, facts_cert):
    # Every HTTP/2 stream reads the facts of the connection it came on.
    ns = gw([contract("f", facts=True)], tls={"certificates": [facts_cert]})
    for _ in range(2):
        p = subprocess.run(["curl", "--http2", "-sk", "-D", "-", "-o", "/dev/null", "--resolve",
                            "facts.test:%d:127.0.0.1" % ns.port, "https://facts.test:%d/a/x" % ns.port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        head = p.stdout.decode()
        assert head.startswith("HTTP/2 200"), (head, p.stderr)
        got = [ln.split(":", 1)[1].strip() for ln in head.split("\r\n")
               if ln.lower().startswith("x-contract-facts:")]
        assert len(got) == 1, head
        f = got[0].split("|")
        assert f[0:2] == ["HTTP/2.0", "TLSv1.3"] and f[2].startswith("TLS_") and f[3:] == ["facts.test", "h2"], f


def test_connection_facts_tls12_without_sni_or_alpn(gw, facts_cert):
    ns = gw([contract("f", facts=True)], tls={"certificates": [facts_cert], "protocols": ["TLSv1.2"]})
    ctx = facts_ctx(facts_cert, ssl.TLSVersion.TLSv1_2)
    with h.Conn(ns.port) as c:
        c.sock = ctx.wrap_socket(c.sock, server_hostname=None)  # no SNI
        c.send(h.build_request("GET", "/a/x"))
        r = c.read_response()
        assert facts(r) == ["HTTP/1.1", "TLSv1.2", c.sock.cipher()[0], "-", "-"]
        assert c.sock.cipher()[0].startswith("ECDHE-ECDSA-")


def test_config_error_points_at_the_value(tmp_path):
    text = """workers: 1
listen:
  - address: "127.0.0.1:1"
upstreams:
  up: { targets: ["127.0.0.1:2"] }
routes:
  - name: a
    upstream: up
    plugins:
      - name: contract
        path: %s
        config:
          tag: t
          header: Content-Length
""" % CONTRACT
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    rc, err = h.run_check(p)
    assert rc == 1
    assert err.startswith('%s:14:19: header "Content-Length" belongs to the gateway: a plugin cannot '
                          'set it' % p), err
    p.write_text(text.replace("header: Content-Length", "resume: later"))
    rc, err = h.run_check(p)
    assert rc == 1
    assert err.startswith("%s:14:19: resume must be none, sync, sync_twice or async, got 'later'" % p), err
