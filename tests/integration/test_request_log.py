"""The bundled request-log plugin: JSON lines checked field by field against
what went over the wire, escaping of client-controlled bytes, no credentials
in the log, field selection, SIGUSR1 reopen, nothing lost at SIGTERM, and a
route that switches the plugin off."""

import datetime
import json
import os
import re
import signal
import ssl
import threading
import time
import urllib.request

import tg_harness as h

DEFAULT_FIELDS = ["time", "request_id", "client_ip", "method", "path", "status", "bytes_in", "bytes_out",
                  "duration_ms", "upstream_ms", "upstream_addr", "retries", "route", "subject", "trace_id",
                  "span_id"]


def log_config(path="access.log", fields=None):
    conf = {"path": path}
    if fields is not None:
        conf["fields"] = fields
    return {"name": "request-log", "config": conf}


def start(gateway_factory, upstream_factory, tmp_path, plugin=None, routes=None, workers=2, admin_port=None):
    up = upstream_factory("up")
    port = h.free_port()
    rts = routes if routes is not None else [h.route("all", "up", {"path_prefix": "/"})]
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, rts, workers=workers)
    if admin_port is not None:
        cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    cfg["plugins"] = [plugin or log_config()]
    gw = gateway_factory(cfg)
    return gw, up, port


def raw_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), "last line cut: %r" % data[-200:]
    return [ln for ln in data.split(b"\n") if ln]


def read_log(path):
    """Every line parsed; the bytes must be UTF-8 and each line one JSON object."""
    out = []
    for ln in raw_lines(path):
        obj = json.loads(ln.decode("utf-8"))  # strict: invalid UTF-8 raises
        assert isinstance(obj, dict), ln
        out.append(obj)
    return out


def stop_clean(gw):
    assert gw.stop() == 0, gw.stderr()[-3000:]


def wait_lines(path, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and len(raw_lines(path)) >= n:
            return
        time.sleep(0.02)
    raise AssertionError("%s: fewer than %d lines after %ss" % (path, n, timeout))


def send(port, raw, method="GET"):
    """Sends raw bytes on a new connection; returns the response."""
    with h.Conn(port) as c:
        c.send(raw)
        return c.read_response(method)


def test_lines_match_requests(gateway_factory, upstream_factory, tmp_path):
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path)
    t0 = time.time()
    sent = []
    for method, target, body in [("GET", "/users/42?x=1", b""), ("POST", "/orders", b"hello world"),
                                 ("GET", "/status/503", b""), ("HEAD", "/head-test", b"")]:
        raw = h.build_request(method, target, body=body)
        r = send(port, raw, method)
        sent.append((method, target, raw, r))
    t1 = time.time()
    stop_clean(gw)
    log = read_log(tmp_path / "access.log")
    assert len(log) == len(sent)
    by_id = {e["request_id"]: e for e in log}
    for method, target, raw, r in sent:
        rid = r.header("X-Request-Id")
        assert rid, r
        e = by_id[rid]
        assert list(e.keys()) == DEFAULT_FIELDS
        assert e["method"] == method
        assert e["path"] == target.split("?")[0]
        assert e["status"] == r.status
        assert e["client_ip"] == "127.0.0.1"
        assert e["route"] == "all"
        assert e["upstream_addr"] == up.address
        assert e["subject"] is None
        assert e["bytes_in"] == len(raw)
        assert e["bytes_out"] == len(r.raw_head) + len(r.body)
        assert isinstance(e["duration_ms"], float) and 0 <= e["duration_ms"] < (t1 - t0) * 1000 + 1
        assert isinstance(e["upstream_ms"], float) and 0 <= e["upstream_ms"] <= e["duration_ms"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), e["time"]
        ts = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        assert t0 - 0.002 <= ts <= t1 + 0.001, (t0, ts, t1)
    # numbers as written: three decimals, integers without quotes
    for ln in raw_lines(tmp_path / "access.log"):
        assert re.search(rb'"duration_ms":\d+\.\d{3},"upstream_ms":\d+\.\d{3},', ln), ln
        assert re.search(rb'"status":\d{3},"bytes_in":\d+,"bytes_out":\d+,', ln), ln


def test_client_ip_behind_trusted_proxies(gateway_factory, upstream_factory, tmp_path):
    """client_ip is the client the trusted balancer vouches for (rightmost untrusted
    X-Forwarded-For address), the peer otherwise; the upstream still gets the real peer
    appended to X-Forwarded-For."""
    up = upstream_factory("up")
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           [h.route("all", "up", {"path_prefix": "/"})], trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    cfg["plugins"] = [log_config(fields=["request_id", "client_ip"])]
    gw = gateway_factory(cfg)
    cases = [  # (source address, X-Forwarded-For lines, logged client_ip)
        (None, ["203.0.113.7"], "203.0.113.7"),
        (None, ["198.51.100.1, 203.0.113.8, 10.0.0.1"], "203.0.113.8"),
        (None, ["2001:DB8::1", "10.2.2.2"], "2001:db8::1"),
        (None, ["203.0.113.9, junk"], "127.0.0.1"),
        (None, ["203.0.113.9, junk, 10.0.0.3"], "10.0.0.3"),
        (None, [], "127.0.0.1"),
        ("127.0.0.2", ["203.0.113.10"], "127.0.0.2"),
    ]
    want = {}
    for source, xff, ip in cases:
        r = h.request(port, "GET", "/who", [("X-Forwarded-For", v) for v in xff], source=source)
        assert r.status == 200, r
        want[r.header("X-Request-Id")] = ip
        sent = [v for n, v in r.json()["headers"] if n.lower() == "x-forwarded-for"]
        peer = source or "127.0.0.1"
        assert sent == [", ".join(xff + [peer]) if source is None else peer], (xff, sent)
    stop_clean(gw)
    got = {e["request_id"]: e["client_ip"] for e in read_log(tmp_path / "access.log")}
    assert got == want


def test_rejected_requests_are_logged(gateway_factory, upstream_factory, tmp_path):
    routes = [h.route("api", "up", {"path_prefix": "/api"})]
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, routes=routes)
    r404 = send(port, h.build_request("GET", "/nope"))
    assert r404.status == 404
    r400 = send(port, b"GET /api/x HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n")
    assert r400.status == 400
    stop_clean(gw)
    log = read_log(tmp_path / "access.log")
    assert [e["status"] for e in log] == [404, 400] or sorted(e["status"] for e in log) == [400, 404]
    e404 = next(e for e in log if e["status"] == 404)
    assert e404["request_id"] == r404.header("X-Request-Id")
    assert (e404["method"], e404["path"], e404["route"]) == ("GET", "/nope", None)
    assert e404["upstream_ms"] is None and e404["upstream_addr"] is None
    assert e404["bytes_out"] == len(r404.raw_head) + len(r404.body)
    e400 = next(e for e in log if e["status"] == 400)
    assert e400["route"] is None and e400["upstream_ms"] is None
    assert e400["client_ip"] == "127.0.0.1"
    if r400.header("X-Request-Id"):
        assert e400["request_id"] == r400.header("X-Request-Id")
    assert up.heads == 0


def _wire(s):
    """A str whose latin-1 encoding is the UTF-8 encoding of s (the harness
    sends header text as latin-1)."""
    return s.encode("utf-8").decode("latin-1")


def test_client_bytes_escaped(gateway_factory, upstream_factory, tmp_path):
    fields = ["path", "query", "user_agent", "host", "status"]
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, plugin=log_config(fields=fields))
    ua1 = 'Mozilla "quoted" \\ back\tslash caf\u00e9 \u20ac \U0001F600'
    r1 = send(port, h.build_request("GET", "/caf%C3%A9/a%22b?q=%22x%22&u=%C3%A9", [("User-Agent", _wire(ua1))]))
    assert r1.status == 200, r1
    # obs-text that is not UTF-8 (RFC 9110 section 5.5 allows it in values)
    r2 = send(port, h.build_request("GET", "/bin", [("User-Agent", "a\xffb\xc3(")]))
    stop_clean(gw)
    lines = raw_lines(tmp_path / "access.log")
    assert len(lines) == 2
    log = {}
    for ln in lines:
        e = json.loads(ln.decode("utf-8"))
        assert list(e.keys()) == fields
        log[e["path"]] = (e, ln)
    e1, ln1 = log["/caf%C3%A9/a%22b"]
    assert e1["user_agent"] == ua1  # round trip
    assert e1["query"] == "q=%22x%22&u=%C3%A9" and e1["host"] == "test.local"
    # as written: quote and backslash escaped, tab as \u0009, UTF-8 kept as is
    assert ('"user_agent":"Mozilla \\"quoted\\" \\\\ back\\u0009slash caf\u00e9 \u20ac \U0001F600"'
            .encode("utf-8")) in ln1, ln1
    e2, ln2 = log["/bin"]
    assert r2.status == e2["status"]
    assert e2["user_agent"] == "a\ufffdb\ufffd("
    assert b"a\\ufffdb\\ufffd(" in ln2
    assert e2["query"] is None


def test_control_bytes_in_target_escaped(gateway_factory, upstream_factory, tmp_path):
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path,
                         plugin=log_config(fields=["path", "status", "request_id"]))
    # Whatever the gateway answers (likely 400), the line must be valid JSON.
    r = send(port, b'GET /a"b\\c\x01\x7f\xff HTTP/1.1\r\nHost: x\r\n\r\n')
    stop_clean(gw)
    lines = raw_lines(tmp_path / "access.log")
    assert len(lines) == 1
    e = json.loads(lines[0].decode("utf-8"))
    assert e["status"] == r.status
    for b in (b"\x01", b"\x7f", b"\xff"):
        assert b not in lines[0]


def test_no_credentials_in_log(gateway_factory, upstream_factory, tmp_path):
    secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXN1Yg.s3cr3t-sig"
    fields = DEFAULT_FIELDS + ["host", "user_agent", "upstream", "auth_error", "rate_limit", "profile"]
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, plugin=log_config(fields=fields))
    r = send(port, h.build_request("GET", "/private", [("Authorization", "Bearer " + secret),
                                                       ("Cookie", "session=" + secret),
                                                       ("Proxy-Authorization", "Basic " + secret),
                                                       ("User-Agent", "curl/8")]))
    assert r.status == 200
    stop_clean(gw)
    data = (tmp_path / "access.log").read_bytes()
    assert b"s3cr3t" not in data and b"Bearer" not in data and b"session=" not in data
    (e,) = read_log(tmp_path / "access.log")
    assert list(e.keys()) == fields
    assert e["user_agent"] == "curl/8" and e["host"] == "test.local" and e["upstream"] == "up"
    assert e["auth_error"] is None and e["rate_limit"] is None and e["profile"] is None


JWT_SECRET = "request-log-test-hs256-secret-0123456789"


def _jwt_plugin(sources, strip=True):
    return {"name": "jwt", "config": {"keys": [{"algorithm": "HS256", "secret": JWT_SECRET}],
                                      "token_from": sources, "strip_token": strip}}


def _hs_token(sub, secret=JWT_SECRET):
    import jwt  # python3-jwt, only needed here
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, secret, "HS256")


def test_jwt_tokens_masked(gateway_factory, upstream_factory, tmp_path):
    """A query parameter or cookie that a jwt source reads never reaches the
    log: masked in `query` whatever the jwt plugin decided (200, 401 forged,
    401 twice, 404 before any plugin), and however its name is spelled."""
    fields = ["request_id", "status", "path", "query", "user_agent", "subject", "auth_error"]
    routes = [h.route("users", "up", {"path_prefix": "/users"})]
    routes[0]["plugins"] = [_jwt_plugin(["header:Authorization", "cookie:session", "query:access_token"])]
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, routes=routes,
                         plugin=log_config(fields=fields))
    good, forged = _hs_token("alice"), _hs_token("admin", "x" * 40)
    cases = [  # target, extra headers, status, logged query
        ("/users/1?a=1&access_token=" + good, [], 200, "a=1&access_token=***"),
        ("/users/1?access_token=%s&b=%%20" % forged, [], 401, "access_token=***&b=%20"),
        ("/users/1?%61ccess_token=" + good, [], 200, "%61ccess_token=***"),
        ("/users/1?access_token=%s&access%%5Ftoken=%s" % (good, forged), [], 401,
         "access_token=***&access%5Ftoken=***"),
        ("/users/1?access_token=", [], 401, "access_token=***"),
        ("/users/1?access_token&x", [("Cookie", "session=" + good)], 200, "access_token&x"),
        ("/nope?access_token=" + good, [], 404, "access_token=***"),
        ("/users/1?x=access_token%%3D%s" % forged, [("Cookie", "session=" + good)], 200,
         "x=access_token%3D" + forged),  # a value is not a parameter name
    ]
    ids = {}
    for target, headers, status, query in cases:
        r = send(port, h.build_request("GET", target, headers + [("User-Agent", "curl/8")]))
        assert r.status == status, (target, r)
        ids[r.header("X-Request-Id")] = (target, status, query)
    stop_clean(gw)
    data = (tmp_path / "access.log").read_bytes()
    assert good.split(".")[2].encode() not in data
    log = read_log(tmp_path / "access.log")
    assert len(log) == len(cases)
    for e in log:
        target, status, query = ids[e["request_id"]]
        assert (e["status"], e["query"], e["path"]) == (status, query, target.split("?")[0]), e
        assert e["user_agent"] == "curl/8"
    assert sorted(e["subject"] for e in log if e["subject"]) == ["alice"] * 4


def test_header_source_masked(gateway_factory, upstream_factory, tmp_path):
    """A header a jwt source reads is masked where the log shows headers
    (user_agent, host), on every route of the config."""
    routes = [h.route("ua", "up", {"path_prefix": "/ua"}), h.route("all", "up", {"path_prefix": "/"})]
    routes[0]["plugins"] = [_jwt_plugin(["header:User-Agent"], strip=False)]
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, routes=routes,
                         plugin=log_config(fields=["path", "status", "user_agent", "host"]))
    tok = _hs_token("alice")
    assert send(port, h.build_request("GET", "/ua/x", [("User-Agent", tok)])).status == 200
    assert send(port, h.build_request("GET", "/other", [("User-Agent", tok)])).status == 200
    stop_clean(gw)
    data = (tmp_path / "access.log").read_bytes()
    assert tok.encode() not in data
    assert sorted((e["path"], e["user_agent"], e["host"]) for e in read_log(tmp_path / "access.log")) == [
        ("/other", "***", "test.local"), ("/ua/x", "***", "test.local")]


def test_path_and_upstream_path(gateway_factory, upstream_factory, tmp_path):
    """`path` is what the client asked for (canonical), `upstream_path` what
    went upstream after strip_prefix (null when nothing went upstream)."""
    routes = [h.route("api", "up", {"path_prefix": "/api"}), h.route("root", "up", {"path": "/exact"})]
    routes[0]["strip_prefix"] = "/api"
    fields = ["request_id", "path", "upstream_path", "query", "status"]
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, routes=routes,
                         plugin=log_config(fields=fields))
    cases = [("/api/users/7?x=1", "/api/users/7", "/users/7", 200),
             ("/api/./users/%7e7/../8", "/api/users/8", "/users/8", 200),
             ("/api", "/api", "/", 200),
             ("/exact", "/exact", "/exact", 200),
             ("/nope", "/nope", None, 404)]
    want = {}
    for target, path, upath, status in cases:
        r = send(port, h.build_request("GET", target))
        assert r.status == status, (target, r)
        if status == 200:
            assert json.loads(r.body)["target"].split("?")[0] == upath
        want[r.header("X-Request-Id")] = (path, upath, status)
    stop_clean(gw)
    log = read_log(tmp_path / "access.log")
    assert len(log) == len(cases)
    for e in log:
        assert list(e.keys()) == fields
        assert (e["path"], e["upstream_path"], e["status"]) == want[e["request_id"]], e


def test_fields_subset_and_order(gateway_factory, upstream_factory, tmp_path):
    fields = ["status", "method", "request_id", "time"]
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, plugin=log_config(fields=fields))
    r = send(port, h.build_request("DELETE", "/x"))
    stop_clean(gw)
    (ln,) = raw_lines(tmp_path / "access.log")
    assert re.fullmatch(rb'\{"status":200,"method":"DELETE","request_id":"[^"]+","time":"[0-9T:.Z-]{24}"\}', ln), ln
    assert json.loads(ln)["request_id"] == r.header("X-Request-Id")


def test_connection_fields_plain_and_tls(gateway_factory, upstream_factory, tmp_path):
    """protocol, tls_version, tls_cipher, sni, alpn: what the handshake
    negotiated (as the client saw it), null on a plain connection."""
    fields = ["request_id", "protocol", "tls_version", "tls_cipher", "sni", "alpn"]
    cert = h.self_signed_cert(tmp_path, "log.test")
    up = upstream_factory("up")
    port, tls_port = h.free_port(), h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           [h.route("all", "up", {"path_prefix": "/"})], workers=1)
    cfg["listen"].append({"address": "127.0.0.1:%d" % tls_port, "tls": {"certificates": [cert]}})
    cfg["plugins"] = [log_config(fields=fields)]
    gw = gateway_factory(cfg)
    h.wait_port(tls_port, 5)
    plain = send(port, h.build_request("GET", "/p"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert["cert"])
    ctx.set_alpn_protocols(["http/1.1"])
    with h.Conn(tls_port) as c:
        c.sock = ctx.wrap_socket(c.sock, server_hostname="log.test")
        c.send(h.build_request("GET", "/t", host="log.test"))
        tls = c.read_response()
        version, cipher = c.sock.version(), c.sock.cipher()[0]
    stop_clean(gw)
    by_id = {e["request_id"]: e for e in read_log(tmp_path / "access.log")}
    assert by_id[plain.header("X-Request-Id")] == {
        "request_id": plain.header("X-Request-Id"), "protocol": "HTTP/1.1", "tls_version": None,
        "tls_cipher": None, "sni": None, "alpn": None}
    assert by_id[tls.header("X-Request-Id")] == {
        "request_id": tls.header("X-Request-Id"), "protocol": "HTTP/1.1", "tls_version": version,
        "tls_cipher": cipher, "sni": "log.test", "alpn": "http/1.1"}
    assert version == "TLSv1.3" and cipher.startswith("TLS_")


def test_stdout(gateway_factory, upstream_factory, tmp_path):
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path,
                         plugin=log_config(path="stdout", fields=["path", "status"]))
    send(port, h.build_request("GET", "/to-stdout"))
    stop_clean(gw)
    lines = [json.loads(ln) for ln in raw_lines(gw.out_path) if ln.startswith(b"{")]
    assert lines == [{"path": "/to-stdout", "status": 200}]


def test_reopen_on_sigusr1(gateway_factory, upstream_factory, tmp_path):
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, plugin=log_config(fields=["path"]))
    path, old = tmp_path / "access.log", tmp_path / "access.log.1"
    for i in range(3):
        send(port, h.build_request("GET", "/old/%d" % i))
    wait_lines(path, 3)  # the 200 ms flush
    os.rename(path, old)
    gw.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.exists(), "SIGUSR1 did not recreate the log file"
    for i in range(2):
        send(port, h.build_request("GET", "/new/%d" % i))
    stop_clean(gw)
    assert sorted(e["path"] for e in read_log(old)) == ["/old/0", "/old/1", "/old/2"]
    assert sorted(e["path"] for e in read_log(path)) == ["/new/0", "/new/1"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_burst_then_sigterm_loses_nothing(gateway_factory, upstream_factory, tmp_path):
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path,
                         plugin=log_config(fields=["request_id", "path", "status"]))
    nthreads, per = 8, 250
    ids, errors = [], []
    lock = threading.Lock()

    def client(t):
        try:
            with h.Conn(port) as c:
                got = []
                for i in range(per):
                    c.send(h.build_request("GET", "/burst/t%d-%d" % (t, i)))
                    r = c.read_response()
                    assert r.status == 200, r
                    got.append(r.header("X-Request-Id"))
            with lock:
                ids.extend(got)
        except Exception as e:  # reported below, in the main thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    gw.signal(signal.SIGTERM)  # at once: most lines still sit in worker buffers
    stop_clean(gw)
    log = read_log(tmp_path / "access.log")
    assert len(log) == nthreads * per
    assert sorted(e["request_id"] for e in log) == sorted(ids)
    assert {e["path"] for e in log} == {"/burst/t%d-%d" % (t, i) for t in range(nthreads) for i in range(per)}


def test_route_can_switch_it_off(gateway_factory, upstream_factory, tmp_path):
    routes = [h.route("quiet", "up", {"path_prefix": "/quiet"}), h.route("all", "up", {"path_prefix": "/"})]
    routes[0]["plugins"] = [{"name": "request-log", "enabled": False}]
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, routes=routes,
                         plugin=log_config(fields=["path", "route"]))
    assert send(port, h.build_request("GET", "/quiet/x")).status == 200
    assert send(port, h.build_request("GET", "/loud")).status == 200
    stop_clean(gw)
    assert read_log(tmp_path / "access.log") == [{"path": "/loud", "route": "all"}]


def test_dropped_metric_exposed(gateway_factory, upstream_factory, tmp_path):
    admin = h.free_port()
    gw, up, port = start(gateway_factory, upstream_factory, tmp_path, admin_port=admin)
    send(port, h.build_request("GET", "/x"))
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5).read().decode()
    assert re.search(r"^tollgate_request_log_dropped_total(\{\})? 0$", body, re.M), body[-2000:]


# ---- config errors ----------------------------------------------------------

def _check_config(tmp_path, plugin_conf):
    cfg = h.gateway_config(h.free_port(), {"up": h.upstream_conf(["127.0.0.1:9"])},
                           [h.route("all", "up", {"path_prefix": "/"})])
    cfg["plugins"] = [{"name": "request-log", "config": plugin_conf}]
    text = h.yaml_text(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    rc, err = h.run_check(path)
    return rc, err, text.split("\n"), str(path)


def _pos(lines, needle):
    """1-based line and column of the scalar holding needle (its quote if quoted)."""
    for i, ln in enumerate(lines):
        if needle in ln:
            col = ln.index(needle)
            if col > 0 and ln[col - 1] == '"':
                col -= 1
            return i + 1, col + 1
    raise AssertionError(needle)


def test_unknown_field_is_an_error_at_its_position(tmp_path):
    rc, err, lines, path = _check_config(tmp_path, {"path": "a.log", "fields": ["time", "bogus", "status"]})
    assert rc != 0
    line, col = _pos(lines, "bogus")
    assert "%s:%d:%d: unknown request-log field 'bogus'" % (path, line, col) in err, err


def test_unknown_key_and_missing_path(tmp_path):
    rc, err, lines, path = _check_config(tmp_path, {"path": "a.log", "rotate": "daily"})
    assert rc != 0
    line, col = _pos(lines, "rotate")
    assert "%s:%d:%d:" % (path, line, col) in err and "rotate" in err, err
    rc, err, lines, path = _check_config(tmp_path, {"fields": ["time"]})
    assert rc != 0 and "missing required key 'path'" in err, err


def test_unopenable_path(tmp_path):
    rc, err, lines, path = _check_config(tmp_path, {"path": "/nonexistent-dir/x/access.log"})
    assert rc != 0
    line, col = _pos(lines, "/nonexistent-dir")
    assert ("%s:%d:%d: cannot open log file /nonexistent-dir/x/access.log: No such file or directory"
            % (path, line, col)) in err, err
