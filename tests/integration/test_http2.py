"""HTTP/2 for clients: h2c with prior knowledge and h2 over TLS by ALPN, each
stream on the HTTP/1.1 request path (routing, plugins, upstreams, error
replies), flow control as backpressure, the defences (rapid reset,
CONTINUATION flood, oversized header list, malformed requests, zero window,
max_concurrent_streams), graceful GOAWAY, and real clients (curl, nghttp)
next to a python-h2 client that sends what real clients never would."""

import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import h2.config
import h2.connection
import h2.events
import h2.errors
import h2.settings
import hpack
import pytest

import tg_harness as h
from upstream import pattern_sha256

PROTOCOL_ERROR, REFUSED_STREAM, ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR = 1, 7, 11, 3


# --------------------------------------------------------------- client ----
class H2:
    """A python-h2 client on a raw socket: validation off, so it sends what
    it is told to."""

    def __init__(self, port, ctx=None, name="api.test", window=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if ctx is not None:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=name)
            assert self.sock.selected_alpn_protocol() == "h2"
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.c = h2.connection.H2Connection(cfg)
        self.c.initiate_connection()
        if window is not None:
            self.c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.streams = {}
        self.goaway = None
        self.closed = False
        self.settings = {}
        self.auto_window = window is None

    def flush(self):
        data = self.c.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _st(self, sid):
        return self.streams.setdefault(sid, {"headers": None, "data": b"", "ended": False, "reset": None})

    def pump(self, timeout=0.2):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        for ev in self.c.receive_data(data):
            if isinstance(ev, h2.events.InformationalResponseReceived):
                self._st(ev.stream_id).setdefault("interim", []).append(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.ResponseReceived):
                self._st(ev.stream_id)["headers"] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                self._st(ev.stream_id)["data"] += ev.data
                if self.auto_window:
                    self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self._st(ev.stream_id)["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                self._st(ev.stream_id)["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.settings.update({k: v.new_value for k, v in ev.changed_settings.items()})
        try:
            self.flush()
        except OSError:
            pass
        return True

    def request(self, path, method="GET", headers=(), body=None, authority="api.test", end=True):
        sid = self.c.get_next_available_stream_id()
        hs = [(":method", method), (":scheme", "https"), (":authority", authority), (":path", path)]
        hs += list(headers)
        self.c.send_headers(sid, hs, end_stream=body is None and end)
        if body is not None:
            self.c.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def wait(self, sid, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self._st(sid)
            if st["ended"] or st["reset"] is not None or self.closed:
                return st
            self.pump()
        raise AssertionError("stream %d: no answer: %r" % (sid, self._st(sid)))

    def wait_goaway(self, timeout=10):
        deadline = time.monotonic() + timeout
        while self.goaway is None and not self.closed and time.monotonic() < deadline:
            self.pump()
        return self.goaway

    def get(self, path, **kw):
        st = self.wait(self.request(path, **kw))
        assert st["headers"] is not None, st
        return int(st["headers"][":status"]), st["headers"], st["data"]


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def raw_h2(port):
    """A raw connection that has sent the preface and an empty SETTINGS."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    return s


def read_frames(s, timeout=5):
    """Frames until the server closes (or timeout): [(type, flags, sid, payload)]."""
    s.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            d = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        buf += d
    out = []
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        out.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]))
        buf = buf[9 + n:]
    return out


def first_frame(s, ftype, timeout=5):
    """Reads frame by frame until one of ftype; returns its payload."""
    s.settimeout(timeout)
    while True:
        hd = b""
        while len(hd) < 9:
            hd += s.recv(9 - len(hd))
        n = int.from_bytes(hd[:3], "big")
        p = b""
        while len(p) < n:
            p += s.recv(n - len(p))
        if hd[3] == ftype:
            return p


def goaway_code(frames):
    for t, _, _, p in frames:
        if t == 7:
            return struct.unpack(">I", p[4:8])[0]
    return None


# ------------------------------------------------------------- fixtures ----
@pytest.fixture
def h2gw(gateway_factory, upstream_factory):
    """make(limits=..., routes=..., admin=..., h2limits=...) -> ns(port, up, admin, gw)."""

    def make(limits=None, routes=None, admin=True, h2limits=None, workers=1, tls=None, log=None, env=None):
        import types
        up = upstream_factory("up")
        port = h.free_port()
        rts = routes if routes is not None else [h.route("all", "up", {"path_prefix": "/"})]
        lim = dict(limits or {})
        if h2limits:
            lim["http2"] = h2limits
        cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, rts, limits=lim,
                               workers=workers)
        if tls is None:
            cfg["listen"][0]["http2"] = "prior_knowledge"
        else:
            cfg["listen"][0]["tls"] = tls
        admin_port = None
        if admin:
            admin_port = h.free_port()
            cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
        if log:
            cfg["plugins"] = [{"name": "request-log", "config": {"path": log,
                                                                  "fields": ["method", "path", "status",
                                                                             "protocol"]}}]
        gw = gateway_factory(cfg, port=port, env=env)
        if admin:
            h.wait_port(admin_port, 5)
        return types.SimpleNamespace(port=port, up=up, admin=admin_port, gw=gw, cfg=cfg)

    return make


def metric(admin_port, name, **labels):
    r = h.request(admin_port, "GET", "/metrics", host="127.0.0.1")
    want = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}" if labels else "")
    for line in r.body.decode().splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def curl(*args, timeout=30):
    p = subprocess.run(["curl", "-sS"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p


# ---------------------------------------------------------- real clients ----
def test_curl_prior_knowledge_and_http11_on_the_same_listener(h2gw):
    g = h2gw()
    p = curl("--http2-prior-knowledge", "-D", "-", "http://127.0.0.1:%d/a/../b?x=1" % g.port,
             "-H", "Cookie: a=1", "-H", "Cookie: b=2")
    out = p.stdout.decode()
    assert out.startswith("HTTP/2 200"), out
    body = json.loads(out.split("\r\n\r\n", 1)[1])
    assert body["target"] == "/b?x=1"  # the canonical path, as for HTTP/1.1
    assert body["version"] == "HTTP/1.1"  # upstreams stay HTTP/1.1
    hs = {k.lower(): v for k, v in body["headers"]}
    assert hs["host"] == "127.0.0.1:%d" % g.port  # :authority becomes Host
    assert hs["x-forwarded-for"] == "127.0.0.1"
    assert "x-request-id" in out.lower()
    # curl sends one cookie field per -H: joined for the upstream.
    assert [v for k, v in body["headers"] if k.lower() == "cookie"] == ["a=1; b=2"]
    r = h.request(g.port, "GET", "/h1")
    assert r.status == 200 and json.loads(r.body)["target"] == "/h1"


def test_nghttp_many_streams(h2gw):
    g = h2gw()
    urls = ["http://127.0.0.1:%d/n/%d" % (g.port, i) for i in range(20)]
    p = subprocess.run(["nghttp", "-n", "-s"] + urls, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().count(" 200 ") == 20


def test_error_replies_are_the_same(h2gw):
    g = h2gw(routes=[h.route("api", "up", {"path_prefix": "/api"})], limits={"max_body_size": "1KiB"})
    with H2(g.port) as c:
        status, hs, body = c.get("/nowhere")
        assert status == 404 and hs["content-type"] == "application/json"
        doc = json.loads(body)
        assert doc["error"] == "no route" and doc["request_id"] == hs["x-request-id"]
        status, hs, body = c.get("/api/x", method="POST", body=b"x" * 2000,
                                 headers=[("content-length", "2000")])
        assert status == 413 and json.loads(body)["error"] == "request body too large"
        status, _, _ = c.get("/api/ok")  # the connection goes on
        assert status == 200
    assert metric(g.admin, "tollgate_http2_connections_total") == 1
    assert metric(g.admin, "tollgate_http2_streams_total") == 3


def test_post_bodies_with_and_without_length(h2gw):
    g = h2gw()
    data = os.urandom(300000)
    import hashlib
    with H2(g.port) as c:
        sid = c.request("/up", method="POST", headers=[("content-length", str(len(data)))], end=False)
        # window: 64 KiB default per stream on the client side; send as allowed
        _send_all(c, sid, data)
        st = c.wait(sid)
        doc = json.loads(st["data"])
        assert doc["body_len"] == len(data) and doc["body_sha256"] == hashlib.sha256(data).hexdigest()
        sid = c.request("/up2", method="POST", end=False)
        _send_all(c, sid, data)
        doc = json.loads(c.wait(sid)["data"])
        assert doc["chunked"] and doc["body_len"] == len(data)


def _send_all(c, sid, data):
    off = 0
    while off < len(data):
        room = min(c.c.local_flow_control_window(sid), c.c.max_outbound_frame_size, len(data) - off)
        if room <= 0:
            c.pump(0.05)
            continue
        c.c.send_data(sid, data[off:off + room])
        off += room
        c.flush()
    c.c.end_stream(sid)
    c.flush()


def test_concurrent_streams_across_routes_with_plugins(h2gw):
    routes = [
        {"name": "tagged", "match": {"path_prefix": "/tagged"}, "upstream": "up",
         "plugins": [{"name": "headers", "config": {"response": {"add": {"X-Served-By": "{route}"}}}}]},
        {"name": "denied", "match": {"path_prefix": "/denied"}, "upstream": "up",
         "plugins": [{"name": "ip-rules", "config": {"deny": ["127.0.0.0/8"]}}]},
        {"name": "slow", "match": {"path_prefix": "/delay"}, "upstream": "up"},
        h.route("plain", "up", {"path_prefix": "/"}),
    ]
    g = h2gw(routes=routes)
    with H2(g.port) as c:
        slow = c.request("/delay/800")
        sids = {}
        for i in range(30):
            path = ["/tagged/%d", "/denied/%d", "/plain/%d"][i % 3] % i
            sids[c.request(path)] = path
        t0 = time.monotonic()
        for sid, path in sids.items():
            st = c.wait(sid)
            status = int(st["headers"][":status"])
            if path.startswith("/tagged"):
                assert status == 200 and st["headers"]["x-served-by"] == "tagged"
            elif path.startswith("/denied"):
                assert status == 403
            else:
                assert status == 200 and json.loads(st["data"])["target"] == path
        assert time.monotonic() - t0 < 0.7, "a slow stream held the others back"
        assert int(c.wait(slow)["headers"][":status"]) == 200


def test_head_and_no_body_statuses(h2gw):
    g = h2gw()
    with H2(g.port) as c:
        st = c.wait(c.request("/head-test", method="HEAD"))
        assert st["headers"][":status"] == "200" and st["data"] == b""
        assert st["headers"]["content-length"] == "11"
        st = c.wait(c.request("/204"))
        assert st["headers"][":status"] == "204" and st["data"] == b""
        st = c.wait(c.request("/chunked/5"))
        assert st["headers"][":status"] == "200" and "transfer-encoding" not in st["headers"]


def test_h2_over_tls_by_alpn(h2gw, tmp_path):
    d = str(tmp_path)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=api.test", "-addext", "subjectAltName=DNS:api.test",
                    "-keyout", d + "/k.pem", "-out", d + "/c.pem"], check=True, capture_output=True)
    tls = {"certificates": [{"cert": d + "/c.pem", "key": d + "/k.pem"}]}
    g = h2gw(tls=tls)
    p = curl("--http2", "-k", "-D", "-", "--resolve", "api.test:%d:127.0.0.1" % g.port,
             "https://api.test:%d/tls" % g.port)
    out = p.stdout.decode()
    assert out.startswith("HTTP/2 200"), (out, p.stderr)
    hs = {k.lower(): v for k, v in json.loads(out.split("\r\n\r\n", 1)[1])["headers"]}
    assert hs["x-forwarded-proto"] == "https"
    p = curl("--http1.1", "-k", "-D", "-", "--resolve", "api.test:%d:127.0.0.1" % g.port,
             "https://api.test:%d/tls" % g.port)
    assert p.stdout.startswith(b"HTTP/1.1 200")
    # alpn: [http/1.1] turns h2 off.
    tls["alpn"] = ["http/1.1"]
    g = h2gw(tls=tls)
    p = curl("--http2", "-k", "-D", "-", "--resolve", "api.test:%d:127.0.0.1" % g.port,
             "https://api.test:%d/tls" % g.port)
    assert p.stdout.startswith(b"HTTP/1.1 200"), p.stdout


# -------------------------------------------------------------- hostile ----
def test_malformed_requests_are_stream_errors(h2gw):
    g = h2gw()
    bad = [
        [(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "/"), (":foo", "x")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "a")],
        [(":method", "GET"), ("x-a", "1"), (":scheme", "https"), (":authority", "a"), (":path", "/")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "/"), ("X-Upper", "1")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "/"), ("connection", "close")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "/"), ("te", "gzip")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "/"), ("host", "b")],
        # WebSocket over h2 (RFC 8441 is not offered): refused, the connection goes on.
        [(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "/ws"),
         ("upgrade", "websocket")],
        [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":authority", "a"),
         (":path", "/ws")],
    ]
    before = metric(g.admin, "tollgate_http2_defences_total", defence="malformed_request")
    with H2(g.port) as c:
        for hs in bad:
            sid = c.c.get_next_available_stream_id()
            c.c.send_headers(sid, hs, end_stream=True)
            c.flush()
            st = c.wait(sid)
            assert st["reset"] == PROTOCOL_ERROR, (hs, st)
        assert c.get("/still-fine")[0] == 200
    assert metric(g.admin, "tollgate_http2_defences_total", defence="malformed_request") >= before + len(bad)


def test_oversized_header_list_gets_431_on_its_stream(h2gw):
    g = h2gw(h2limits={"max_header_list_size": "4KiB"})
    with H2(g.port) as c:
        assert c.settings.get(h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE) in (None, 4096)
        status, hs, body = c.get("/big", headers=[("x-big-%d" % i, "v" * 200) for i in range(30)])
        doc = json.loads(body)
        assert status == 431 and doc["error"] == "request header fields too large"
        assert doc["request_id"] == hs["x-request-id"]  # the gateway's usual error reply
        assert c.get("/small")[0] == 200
    assert metric(g.admin, "tollgate_http2_defences_total", defence="header_list_too_large") == 1


def test_hpack_bomb_ends_the_connection(h2gw):
    g = h2gw(h2limits={"max_header_list_size": "4KiB"})
    s = raw_h2(g.port)
    enc = hpack.Encoder()
    # One 4000-byte entry in the table, then referenced many times: a few
    # bytes each on the wire, 4 KB each decoded.
    block = enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a"),
                        ("x-bomb", "b" * 4000)])
    block += bytes([0x80 | 62]) * 200  # indexed: the dynamic table's newest entry
    s.sendall(frame(1, 0x4 | 0x1, 1, block))
    assert goaway_code(read_frames(s, 3)) == ENHANCE_YOUR_CALM
    s.close()
    assert metric(g.admin, "tollgate_http2_defences_total", defence="hpack_bomb") == 1


def test_rapid_reset_gets_goaway_enhance_your_calm(h2gw):
    g = h2gw(h2limits={"max_concurrent_streams": 1000})
    s = raw_h2(g.port)
    enc = hpack.Encoder()
    out = b""
    for i in range(400):
        sid = 1 + 2 * i
        out += frame(1, 0x4, sid, enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/delay/500"),
                                               (":authority", "a")]))
        out += frame(3, 0, sid, struct.pack(">I", 8))  # RST_STREAM CANCEL
    s.sendall(out)
    frames = read_frames(s, 5)
    assert goaway_code(frames) == ENHANCE_YOUR_CALM
    s.close()
    assert metric(g.admin, "tollgate_http2_defences_total", defence="rapid_reset") == 1
    # Far fewer upstream requests than streams: each reset aborted its exchange.
    assert g.up.requests < 400


def test_continuation_flood_gets_goaway(h2gw):
    g = h2gw()
    s = raw_h2(g.port)
    enc = hpack.Encoder()
    s.sendall(frame(1, 0x1, 1, enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/"),
                                           (":authority", "a")])))
    for i in range(40):  # never END_HEADERS
        try:
            s.sendall(frame(9, 0, 1, enc.encode([("x-c%d" % i, "v")])))
        except OSError:
            break
    assert goaway_code(read_frames(s, 3)) == ENHANCE_YOUR_CALM
    s.close()
    assert metric(g.admin, "tollgate_http2_defences_total", defence="continuation_flood") == 1


@pytest.mark.parametrize("kind", ["settings", "ping", "empty_data"])
def test_frame_floods_get_goaway(h2gw, kind):
    g = h2gw()
    s = raw_h2(g.port)
    enc = hpack.Encoder()
    out = b""
    if kind == "empty_data":
        out += frame(1, 0x4, 1, enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/delay/2000"),
                                            (":authority", "a")]))
    for i in range(1000):
        if kind == "settings":
            out += frame(4, 0, 0, b"")
        elif kind == "ping":
            out += frame(6, 0, 0, struct.pack(">Q", i))
        else:
            out += frame(0, 0, 1, b"")
    try:
        s.sendall(out)
    except OSError:
        pass
    assert goaway_code(read_frames(s, 3)) == ENHANCE_YOUR_CALM
    s.close()
    assert metric(g.admin, "tollgate_http2_defences_total", defence=kind + "_flood") == 1


def test_window_never_opened_resets_the_stream(h2gw):
    g = h2gw(limits={"send_timeout": "1s"})
    with H2(g.port, window=0) as c:
        sid = c.request("/bytes/100000")
        st = c.wait(sid, timeout=6)
        assert st["reset"] == FLOW_CONTROL_ERROR, st
        assert st["data"] == b""
    assert metric(g.admin, "tollgate_http2_defences_total", defence="zero_window_stall") == 1


def _three_streams(port, ack):
    s = raw_h2(port)
    settings = first_frame(s, 4)
    assert (3, 2) in [struct.unpack(">HI", settings[i:i + 6]) for i in range(0, len(settings), 6)]
    if ack:
        s.sendall(frame(4, 1, 0, b""))
    enc = hpack.Encoder()
    for sid in (1, 3, 5):
        s.sendall(frame(1, 0x5, sid, enc.encode([(":method", "GET"), (":scheme", "http"),
                                                 (":path", "/delay/300"), (":authority", "a")])))
    frames = read_frames(s, 2)
    s.close()
    return frames


def test_max_concurrent_streams_enforced(h2gw):
    g = h2gw(h2limits={"max_concurrent_streams": 2})
    # Before the client acknowledged the limit: the extra stream is refused.
    frames = _three_streams(g.port, ack=False)
    rst = [(sid, struct.unpack(">I", p)[0]) for t, _, sid, p in frames if t == 3]
    assert rst == [(5, REFUSED_STREAM)]
    assert sorted(sid for t, _, sid, _ in frames if t == 1) == [1, 3]
    # After: a client that ignores it loses the connection (nghttp2's choice).
    frames = _three_streams(g.port, ack=True)
    assert goaway_code(frames) == PROTOCOL_ERROR
    assert metric(g.admin, "tollgate_http2_defences_total", defence="refused_stream") == 2


# ------------------------------------------------------------ lifecycle ----
def test_idle_connection_gets_goaway(h2gw):
    g = h2gw(h2limits={"idle_timeout": "1s"})
    with H2(g.port) as c:
        assert c.get("/x")[0] == 200
        ga = c.wait_goaway(5)
        assert ga is not None and ga.error_code == 0


def test_idle_timeout_counts_from_the_last_stream(h2gw):
    # The idle timer is armed once and not moved by each stream: when it
    # fires, the connection must still get its whole idle time counted from
    # the last stream's end.
    g = h2gw(h2limits={"idle_timeout": "2s"})
    with H2(g.port) as c:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.2:
            c.pump(0.2)
        assert c.get("/x")[0] == 200
        last = time.monotonic()
        ga = c.wait_goaway(6)
        assert ga is not None and ga.error_code == 0
        assert time.monotonic() - last >= 1.8, "closed %.2fs after the last stream" % (time.monotonic() - last)
        assert time.monotonic() - t0 < 5


def test_sigterm_sends_goaway_and_lets_streams_finish(h2gw):
    # Raw frames: python-h2 stops reading streams once it saw a GOAWAY.
    g = h2gw(admin=False)
    s = raw_h2(g.port)
    s.sendall(frame(1, 0x5, 1, hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"),
                                                       (":path", "/delay/1000"), (":authority", "a")])))
    g.up.wait_heads(1)
    g.gw.signal(signal.SIGTERM)
    frames = read_frames(s, 5)  # until the gateway closes
    s.close()
    kinds = [(t, sid) for t, _, sid, _ in frames if t in (0, 1, 7)]
    goaway = [p for t, _, _, p in frames if t == 7][0]
    assert struct.unpack(">II", goaway[:8]) == (1, 0)  # last stream 1, NO_ERROR
    assert kinds.index((7, 0)) < kinds.index((1, 1))  # GOAWAY first, then the response
    assert any(t == 0 and sid == 1 and f & 1 for t, f, sid, _ in frames)  # DATA with END_STREAM
    assert g.gw.proc.wait(timeout=10) == 0


def test_large_download_and_upload_bounded_memory(h2gw, tmp_path):
    size = 100 * 1024 * 1024
    # ASan's quarantine would hold every freed buffer: keep it small (as test_streaming does).
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
    g = h2gw(limits={"max_body_size": "0"}, env=env)
    rss0 = g.gw.rss_kb()
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-o", "-", "http://127.0.0.1:%d/bytes/%d" %
                        (g.port, size)], stdout=subprocess.PIPE, timeout=120)
    import hashlib
    assert len(p.stdout) == size and hashlib.sha256(p.stdout).hexdigest() == pattern_sha256(size)
    rss1 = g.gw.rss_kb()
    f = tmp_path / "up.bin"
    with open(f, "wb") as w:
        chunk = os.urandom(1 << 20)
        for _ in range(100):
            w.write(chunk)
    p = curl("--http2-prior-knowledge", "--data-binary", "@%s" % f, "-H", "Content-Type: application/octet-stream",
             "http://127.0.0.1:%d/upload" % g.port, timeout=120)
    assert json.loads(p.stdout)["body_len"] == size, p.stderr
    rss2 = g.gw.rss_kb()
    assert rss1 - rss0 < 40 * 1024 and rss2 - rss0 < 40 * 1024, (rss0, rss1, rss2)


def test_access_log_protocol(h2gw, tmp_path):
    log = str(tmp_path / "access.log")
    g = h2gw(log=log)
    with H2(g.port) as c:
        assert c.get("/p2")[0] == 200
    assert h.request(g.port, "GET", "/p1").status == 200
    assert h.request(g.port, "GET", "/p0", version="HTTP/1.0").status == 200
    deadline = time.monotonic() + 5
    lines = []
    while time.monotonic() < deadline and len(lines) < 3:
        lines = [json.loads(x) for x in open(log).read().splitlines()] if os.path.exists(log) else []
        time.sleep(0.05)
    protos = {x["path"]: x["protocol"] for x in lines}
    assert protos == {"/p2": "HTTP/2.0", "/p1": "HTTP/1.1", "/p0": "HTTP/1.0"}


def test_reload_sends_goaway_and_new_connections_get_the_new_config(h2gw):
    g = h2gw(routes=[h.route("a", "up", {"path_prefix": "/a"})], admin=False)
    s = raw_h2(g.port)
    enc = hpack.Encoder()
    s.sendall(frame(1, 0x5, 1, enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/b/x"),
                                           (":authority", "a")])))
    s.sendall(frame(1, 0x5, 3, enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/a/delay/800"),
                                           (":authority", "a")])))
    g.up.wait_heads(1)
    g.cfg["routes"].append(h.route("b", "up", {"path_prefix": "/b"}))
    with open(g.gw.cfg_path, "w") as f:
        f.write(h.yaml_text(g.cfg))
    g.gw.signal(signal.SIGHUP)
    frames = read_frames(s, 4)  # until the gateway closes the connection
    s.close()
    goaway = [p for t, _, _, p in frames if t == 7]
    assert goaway and struct.unpack(">II", goaway[0][:8]) == (3, 0)
    # The stream in flight finished (on the config it started with).
    assert any(t == 0 and sid == 3 and f & 1 for t, f, sid, _ in frames)
    with H2(g.port) as c:
        assert c.get("/b/x")[0] == 200


def test_early_response_stops_the_upload(h2gw, tmp_path):
    # A 413 before the body was read: RST_STREAM NO_ERROR after the response
    # (RFC 9113 section 8.1); the client stops sending, nothing hangs.
    g = h2gw(limits={"max_body_size": "1KiB"})
    with H2(g.port) as c:
        sid = c.request("/up", method="POST", headers=[("content-length", "10000000")], end=False)
        st = c.wait(sid)
        assert st["headers"][":status"] == "413" and json.loads(st["data"])["error"] == "request body too large"
        deadline = time.monotonic() + 3
        while st["reset"] is None and time.monotonic() < deadline:
            c.pump()
        assert st["reset"] == 0
        assert c.get("/after")[0] == 200
    f = tmp_path / "big"
    f.write_bytes(b"\0" * (20 << 20))
    # nghttp sees the 413, then the reset. (curl 7.88 reports that reset as
    # error 92 after the response, against nginx's identical answer too.)
    p = subprocess.run(["nghttp", "-v", "-d", str(f), "http://127.0.0.1:%d/up" % g.port],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    out = p.stdout.decode()
    assert ":status: 413" in out and "error_code=NO_ERROR" in out, out[-2000:]


def test_upstream_framing_and_broken_bodies(h2gw):
    g = h2gw()
    with H2(g.port) as c:
        st = c.wait(c.request("/no-length/300000"))  # read until the upstream closes
        assert st["headers"][":status"] == "200" and len(st["data"]) == 300000 and st["ended"]
        st = c.wait(c.request("/chunked/7"))
        assert st["headers"][":status"] == "200" and st["ended"]
        # Content-Length 1000, 10 bytes, close: never a complete-looking answer.
        st = c.wait(c.request("/close-mid"))
        if st["headers"] is not None and st["headers"][":status"] == "200":
            assert st["reset"] == 2 and not st["ended"], st  # INTERNAL_ERROR
        else:
            assert st["headers"][":status"] == "502", st
        assert c.get("/fine")[0] == 200


def test_expect_100_continue(h2gw):
    g = h2gw()
    with H2(g.port) as c:
        sid = c.request("/up", method="POST", end=False,
                        headers=[("content-length", "5"), ("expect", "100-continue")])
        deadline = time.monotonic() + 5
        while "interim" not in c._st(sid) and time.monotonic() < deadline:
            c.pump()
        assert c._st(sid)["interim"] == ["100"]
        c.c.send_data(sid, b"hello", end_stream=True)
        c.flush()
        st = c.wait(sid)
        assert st["headers"][":status"] == "200" and json.loads(st["data"])["body_len"] == 5


def test_header_block_left_open_ends_the_connection(h2gw):
    # HEADERS without END_HEADERS, then silence: nothing else may come on the
    # connection until the block ends, so header_timeout ends the connection.
    g = h2gw(limits={"header_timeout": "1s"})
    s = raw_h2(g.port)
    s.sendall(frame(1, 0x1, 1, hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"),
                                                       (":path", "/"), (":authority", "a")])))
    t0 = time.monotonic()
    frames = read_frames(s, 5)
    s.close()
    assert goaway_code(frames) == PROTOCOL_ERROR
    assert 0.9 < time.monotonic() - t0 < 3.5


def test_request_body_that_stops_gets_408(h2gw):
    g = h2gw(limits={"body_timeout": "1s"})
    with H2(g.port) as c:
        sid = c.request("/up", method="POST", headers=[("content-length", "100")], end=False)
        c.c.send_data(sid, b"x" * 10)
        c.flush()
        t0 = time.monotonic()
        st = c.wait(sid, timeout=5)
        assert st["headers"][":status"] == "408", st
        assert json.loads(st["data"])["error"] == "request body timeout"
        assert 0.9 < time.monotonic() - t0 < 3
        assert c.get("/next")[0] == 200
