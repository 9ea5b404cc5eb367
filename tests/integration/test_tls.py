"""TLS: termination on listeners (SNI, protocol limits, ALPN, client
certificates, session resumption, handshake failure metric) and TLS toward
upstreams (verification, SNI, client certificate, pooling), plus `tollgate -t`
on TLS settings. Certificates are made per module with the openssl CLI."""

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

import tg_harness as h
from upstream import UpstreamServer, pattern_sha256

REPO = h.REPO


# ------------------------------------------------------------------ PKI ----
class PKI:
    def __init__(self, d):
        self.d = str(d)

    def path(self, name):
        return os.path.join(self.d, name)

    def _openssl(self, *args):
        p = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.returncode == 0, p.stderr.decode()

    def ca(self, name, cn):
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-days", "30", "-subj", "/CN=" + cn, "-keyout", self.path(name + ".key"),
                      "-out", self.path(name + ".crt"))

    def cert(self, name, cn, ca, sans=None, usage="serverAuth"):
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=%s\n" % usage)
            if sans:
                f.write("subjectAltName=%s\n" % sans)
        self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-subj", "/CN=" + cn, "-keyout", self.path(name + ".key"), "-out", self.path(name + ".csr"))
        self._openssl("x509", "-req", "-in", self.path(name + ".csr"), "-CA", self.path(ca + ".crt"),
                      "-CAkey", self.path(ca + ".key"), "-days", "30", "-set_serial",
                      str(int.from_bytes(os.urandom(8), "big")), "-extfile", ext, "-out", self.path(name + ".crt"))

    def pair(self, name):
        return {"cert": self.path(name + ".crt"), "key": self.path(name + ".key")}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    p.ca("ca", "tollgate test CA")
    p.ca("other-ca", "some other CA")
    p.ca("client-ca", "tollgate test client CA")
    p.cert("api", "api.test", "ca", "DNS:api.test")
    p.cert("admin", "admin.test", "ca", "DNS:admin.test")
    p.cert("wild", "wild", "ca", "DNS:*.wild.test")
    p.cert("cn-only", "cn.test", "ca")
    p.cert("up-name", "upstream.test", "ca", "DNS:upstream.test")
    p.cert("up-ip", "127.0.0.1", "ca", "IP:127.0.0.1")
    p.cert("up-other", "other.test", "ca", "DNS:other.test")
    p.cert("client", "good client", "client-ca", usage="clientAuth")
    p.cert("client-bad", "stranger", "other-ca", usage="clientAuth")
    p.cert("gw", "gateway", "client-ca", usage="clientAuth")
    return p


def san_names(cert):
    return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")


# ------------------------------------------------------------- clients ----
def client_ctx(pki, check_hostname=True, cert=None, minv=None, maxv=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.path("ca.crt"))
    ctx.check_hostname = check_hostname
    if cert:
        ctx.load_cert_chain(pki.path(cert + ".crt"), pki.path(cert + ".key"))
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_conn(port, ctx, name="api.test", session=None):
    c = h.Conn(port)
    try:
        c.sock = ctx.wrap_socket(c.sock, server_hostname=name, session=session)
    except BaseException:
        c.close()
        raise
    return c


def tls_get(port, ctx, name="api.test", target="/", method="GET", body=b"", session=None):
    with tls_conn(port, ctx, name, session) as c:
        c.send(h.build_request(method, target, body=body, host=name or "default.test"))
        r = c.read_response(method)
        r.tls_version = c.sock.version()
        r.session = c.sock.session
        r.session_reused = c.sock.session_reused
        r.alpn = c.sock.selected_alpn_protocol()
        r.peer = c.sock.getpeercert()
        return r


def expect_tls_failure(port, ctx, name="api.test"):
    """The handshake fails: at once, or (TLS 1.3, a rejected client
    certificate) as an alert on the first read; never an HTTP response."""
    try:
        c = tls_conn(port, ctx, name)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return
    with c:
        try:
            c.send(h.build_request("GET", "/", host=name))
            data = c.sock.recv(65536)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return
        assert data == b"", "got an answer over a failed handshake: %r" % data[:200]


# ------------------------------------------------------------- gateway ----
def server_tls(pki, certs=("api", "admin"), **kw):
    conf = {"certificates": [pki.pair(c) for c in certs]}
    conf.update(kw)
    return conf


@pytest.fixture
def tls_gw(gateway_factory, upstream_factory, pki):
    """make(tls=..., up=..., up_tls=..., workers=..., admin=False, upstream=..., limits=...) -> ns(gw, port, up, admin).
    tls=False: a plain listener."""

    def make(tls=None, up=None, up_tls=None, workers=2, admin=False, upstream=None, limits=None):
        import types
        up = up or upstream_factory("up")
        port = h.free_port()
        uconf = h.upstream_conf([up.address], **(upstream or {}))
        if up_tls is not None:
            uconf["tls"] = up_tls
        cfg = h.gateway_config(port, {"up": uconf}, [h.route("all", "up", {"path_prefix": "/"})],
                               limits=limits, workers=workers)
        if tls is not False:
            cfg["listen"][0]["tls"] = tls if tls is not None else server_tls(pki)
        admin_port = None
        if admin:
            admin_port = h.free_port()
            cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
        gw = gateway_factory(cfg, port=port)
        if admin:
            h.wait_port(admin_port, 5)
        return types.SimpleNamespace(gw=gw, port=port, up=up, admin=admin_port, cfg=cfg)

    return make


# ---------------------------------------------------------------- SNI -----
def test_sni_selects_certificate(tls_gw, pki):
    g = tls_gw(tls=server_tls(pki, certs=("api", "admin", "wild", "cn-only")))
    ctx = client_ctx(pki)
    for name, want in [("api.test", ["api.test"]), ("admin.test", ["admin.test"]),
                       ("ADMIN.test", ["admin.test"]), ("x.wild.test", ["*.wild.test"])]:
        r = tls_get(g.port, ctx, name)
        assert r.status == 200, (name, r)
        assert san_names(r.peer) == want, name
    # CN without SAN is matched too.
    r = tls_get(g.port, ctx, "cn.test")
    assert dict(x[0] for x in r.peer["subject"])["commonName"] == "cn.test"
    # Unknown names, a wildcard's two-label miss and no SNI at all: the default (first) certificate.
    loose = client_ctx(pki, check_hostname=False)
    for name in ["unknown.test", "a.b.wild.test", "wild.test", None]:
        r = tls_get(g.port, loose, name)
        assert r.status == 200
        assert san_names(r.peer) == ["api.test"], name


def test_sni_with_curl(tls_gw, pki):
    g = tls_gw()
    for name, cn in [("api.test", "api.test"), ("admin.test", "admin.test")]:
        p = subprocess.run(["curl", "-sS", "-v", "--cacert", pki.path("ca.crt"), "--resolve",
                            "%s:%d:127.0.0.1" % (name, g.port), "https://%s:%d/hello" % (name, g.port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        err = p.stderr.decode()
        assert p.returncode == 0, err
        assert "subject: CN=%s" % cn in err
        assert "ALPN: server accepted h2" in err  # curl offers h2 first; SNI switched contexts
        assert b'"target": "/hello"' in p.stdout


def test_forwarded_proto_https(tls_gw, pki):
    g = tls_gw()
    r = tls_get(g.port, client_ctx(pki), target="/fp")
    assert r.status == 200
    rec = g.up.records[-1]
    protos = [v for n, v in rec["headers"] if n.lower() == "x-forwarded-proto"]
    assert protos == ["https"]


# ----------------------------------------------------------- protocols ----
def test_tls13_only_listener_rejects_tls12_client(tls_gw, pki):
    g = tls_gw(tls=server_tls(pki, protocols=["TLSv1.3"]))
    expect_tls_failure(g.port, client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2))
    r = tls_get(g.port, client_ctx(pki))
    assert r.status == 200 and r.tls_version == "TLSv1.3"


def test_tls12_only_listener_rejects_tls13_client(tls_gw, pki):
    g = tls_gw(tls=server_tls(pki, protocols=["TLSv1.2"]))
    expect_tls_failure(g.port, client_ctx(pki, minv=ssl.TLSVersion.TLSv1_3))
    r = tls_get(g.port, client_ctx(pki))
    assert r.status == 200 and r.tls_version == "TLSv1.2"


def test_tls12_ciphers(tls_gw, pki):
    g = tls_gw(tls=server_tls(pki, protocols=["TLSv1.2"], ciphers="ECDHE-ECDSA-CHACHA20-POLY1305"))
    with tls_conn(g.port, client_ctx(pki)) as c:
        assert c.sock.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"
    ctx = client_ctx(pki)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    expect_tls_failure(g.port, ctx)


def test_alpn_h2_by_default_and_http11_only(tls_gw, pki):
    g = tls_gw()
    # Default alpn [h2, http/1.1]: h2 when offered (test_http2.py speaks it),
    # http/1.1 for a client that offers only that.
    with tls_conn(g.port, client_ctx(pki, alpn=["h2", "http/1.1"])) as c:
        assert c.sock.selected_alpn_protocol() == "h2"
    r = tls_get(g.port, client_ctx(pki, alpn=["http/1.1"]))
    assert r.status == 200 and r.alpn == "http/1.1"
    # alpn: [http/1.1] turns h2 off; h2 alone is then never selected and the
    # connection goes on without ALPN.
    g = tls_gw(tls=server_tls(pki, alpn=["http/1.1"]))
    r = tls_get(g.port, client_ctx(pki, alpn=["h2", "http/1.1"]))
    assert r.status == 200 and r.alpn == "http/1.1"
    r = tls_get(g.port, client_ctx(pki, alpn=["h2"]))
    assert r.status == 200 and r.alpn is None


def test_keepalive_pause_and_pipelining_over_tls(tls_gw, pki):
    g = tls_gw()
    with tls_conn(g.port, client_ctx(pki)) as c:
        c.send(h.build_request("GET", "/a", host="api.test") + h.build_request("GET", "/b", host="api.test"))
        assert [c.read_response().json()["target"] for _ in range(2)] == ["/a", "/b"]
        time.sleep(1.5)  # idle longer than the parking delay: parked, the session survives
        c.send(h.build_request("GET", "/c", host="api.test"))
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/c"
        assert {rec["conn_id"] for rec in g.up.records} == {1}


def test_tls_connection_parks_and_comes_back(tls_gw, pki):
    # An idle TLS keep-alive connection parks like a plain one (buffers
    # freed, the SSL kept): counted in tollgate_connections_parked_total, and
    # the next request, pipelined, works on the same TLS session.
    g = tls_gw(admin=True, workers=1, limits={"idle_timeout": "10s"})
    name = "tollgate_connections_parked_total"
    with tls_conn(g.port, client_ctx(pki)) as c:
        c.send(h.build_request("GET", "/a", host="api.test"))
        assert c.read_response().status == 200
        before = h.metric(g.admin, name)
        deadline = time.monotonic() + 5
        while h.metric(g.admin, name) == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert h.metric(g.admin, name) == before + 1
        c.send(h.build_request("GET", "/b", host="api.test") + h.build_request("GET", "/c", host="api.test"))
        assert [c.read_response().json()["target"] for _ in range(2)] == ["/b", "/c"]
    assert {rec["conn_id"] for rec in g.up.records} == {1}


def test_parked_tls_connection_idle_timeout_sends_close_notify(tls_gw, pki):
    g = tls_gw(limits={"idle_timeout": "2500ms"}, workers=1)
    with tls_conn(g.port, client_ctx(pki)) as c:
        c.send(h.build_request("GET", "/a", host="api.test"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        c.settimeout(6)
        # close_notify: a clean TLS EOF (b""), not SSLEOFError
        assert c.sock.recv(100) == b""
        assert 2.0 <= time.monotonic() - t0 <= 4.5


def test_partial_record_on_an_idle_connection_still_times_out(tls_gw, pki):
    # Part of a TLS record after a request: OpenSSL holds it, so the idle
    # connection cannot park (its buffers are busy); the idle timeout must
    # still end it.
    import os
    import ssl
    g = tls_gw(limits={"idle_timeout": "2500ms"}, workers=1)
    with tls_conn(g.port, client_ctx(pki)) as c:
        c.send(h.build_request("GET", "/a", host="api.test"))
        assert c.read_response().status == 200
        os.write(c.sock.fileno(), b"\x17\x03\x03\x00\x40xyz")  # a header announcing 64 bytes, and 3
        t0 = time.monotonic()
        c.settimeout(6)
        try:
            assert c.sock.recv(100) == b""
        except (ssl.SSLError, ConnectionError):
            pass  # closed mid-record: any end will do, but an end
        assert 2.0 <= time.monotonic() - t0 <= 4.5


# ---------------------------------------------------------------- mTLS ----
def test_client_certificate_required(tls_gw, pki):
    g = tls_gw(tls=server_tls(pki, client_ca=pki.path("client-ca.crt")), admin=True)
    r = tls_get(g.port, client_ctx(pki, cert="client"))
    assert r.status == 200
    expect_tls_failure(g.port, client_ctx(pki))
    expect_tls_failure(g.port, client_ctx(pki, cert="client-bad"))
    expect_tls_failure(g.port, client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2))
    assert tls_get(g.port, client_ctx(pki, cert="client", maxv=ssl.TLSVersion.TLSv1_2)).status == 200


def test_handshake_failures_metric(tls_gw, pki):
    g = tls_gw(tls=server_tls(pki, protocols=["TLSv1.3"]), admin=True)
    name = "tollgate_tls_handshake_failures_total"
    assert h.metric(g.admin, name) == 0
    tls_get(g.port, client_ctx(pki))  # a good handshake
    s = socket.create_connection(("127.0.0.1", g.port))  # a port probe: no byte sent
    s.close()
    with h.Conn(g.port) as c:  # plain HTTP on the TLS port: an alert, no HTTP answer
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert not c.read_available(1.0).startswith(b"HTTP/")
        except ConnectionResetError:
            pass
    for _ in range(2):
        expect_tls_failure(g.port, client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2))
    deadline = time.monotonic() + 3
    while h.metric(g.admin, name) != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert h.metric(g.admin, name) == 3


# ---------------------------------------------------------- resumption ----
@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_session_resumption(tls_gw, pki, version):
    g = tls_gw(workers=2)
    v = getattr(ssl.TLSVersion, version.replace(".", "_"))
    ctx = client_ctx(pki, minv=v, maxv=v)
    first = tls_get(g.port, ctx)
    assert first.status == 200 and not first.session_reused and first.tls_version == version
    # Several connections, so that both workers (SO_REUSEPORT) see one: the keys are shared.
    for _ in range(6):
        r = tls_get(g.port, ctx, session=first.session)
        assert r.status == 200
        assert r.session_reused, "session not resumed"


def test_tls13_each_resumption_gets_a_new_ticket(tls_gw, pki):
    """TLS 1.3 clients use a ticket once (RFC 8446 C.4; OpenSSL's client cache,
    wrk, browsers): a resumed handshake must hand out a new ticket, or every
    other connection of such a client is a full handshake."""
    g = tls_gw(workers=1)
    ctx = client_ctx(pki, minv=ssl.TLSVersion.TLSv1_3)
    session = tls_get(g.port, ctx).session
    for _ in range(4):
        r = tls_get(g.port, ctx, session=session)
        assert r.status == 200 and r.session_reused
        # The client names a session by its ticket's hash: a new ticket, a new id.
        assert r.session.id != session.id, "no new ticket after a TLS 1.3 resumption"
        session = r.session


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_session_tickets_off_resumes_from_the_cache(tls_gw, pki, version):
    g = tls_gw(workers=1, tls=dict(server_tls(pki), session_tickets=False))
    v = getattr(ssl.TLSVersion, version.replace(".", "_"))
    ctx = client_ctx(pki, minv=v, maxv=v)
    first = tls_get(g.port, ctx)
    assert first.status == 200 and not first.session_reused
    if version == "TLSv1.2":
        assert not first.session.has_ticket
    assert tls_get(g.port, ctx, session=first.session).session_reused


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_no_resumption_with_tickets_and_cache_off(tls_gw, pki, version):
    """Both off: every connection is a full handshake (what bench/tls measures)."""
    g = tls_gw(workers=1, tls=dict(server_tls(pki), session_tickets=False, session_cache=False))
    v = getattr(ssl.TLSVersion, version.replace(".", "_"))
    ctx = client_ctx(pki, minv=v, maxv=v)
    first = tls_get(g.port, ctx)
    assert first.status == 200
    for _ in range(2):
        r = tls_get(g.port, ctx, session=first.session)
        assert r.status == 200 and not r.session_reused


def test_no_resumption_across_listeners(gateway_factory, upstream_factory, pki):
    """A session from a listener without client certificates must not open one that requires them."""
    up = upstream_factory("up")
    p1, p2 = h.free_port(), h.free_port()
    cfg = h.gateway_config(p1, {"up": h.upstream_conf([up.address])},
                           [h.route("all", "up", {"path_prefix": "/"})], workers=1)
    cfg["listen"][0]["tls"] = server_tls(pki)
    cfg["listen"].append({"address": "127.0.0.1:%d" % p2,
                          "tls": server_tls(pki, client_ca=pki.path("client-ca.crt"))})
    gateway_factory(cfg, port=p1)
    ctx = client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2)
    first = tls_get(p1, ctx)
    assert first.status == 200
    assert tls_get(p1, ctx, session=first.session).session_reused
    expect_tls_failure_with_session(p2, ctx, first.session)


def expect_tls_failure_with_session(port, ctx, session):
    try:
        c = tls_conn(port, ctx, session=session)
    except (ssl.SSLError, ConnectionResetError):
        return
    with c:
        assert not c.sock.session_reused
        try:
            c.send(h.build_request("GET", "/", host="api.test"))
            assert c.sock.recv(100) == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass


# ----------------------------------------------------- TLS upstreams -------
class TlsUpstream(UpstreamServer):
    """The test upstream behind TLS; records the SNI names it was asked for."""

    def __init__(self, pki, cert, name="tls-up", client_ca=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.path(cert + ".crt"), pki.path(cert + ".key"))
        if client_ca:
            self.ctx.load_verify_locations(pki.path(client_ca + ".crt"))
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sni = []
        self.alpn = []
        self.handshake_errors = []
        self.ctx.set_alpn_protocols(["h2", "http/1.1"])
        self.ctx.sni_callback = lambda sslobj, name, ctx: self.sni.append(name)
        super().__init__(name=name)

    def _serve(self, s, conn_id):
        try:
            s.settimeout(10)
            t = self.ctx.wrap_socket(s, server_side=True)
            t.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            with self.lock:
                self.handshake_errors.append(repr(e))
                self._socks.discard(s)
            s.close()
            return
        self.alpn.append(t.selected_alpn_protocol())
        with self.lock:
            self._socks.discard(s)
            self._socks.add(t)
        super()._serve(t, conn_id)


@pytest.fixture
def tls_upstream(pki):
    servers = []

    def make(cert, **kw):
        s = TlsUpstream(pki, cert, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def up_tls(pki, **kw):
    conf = {"ca": pki.path("ca.crt"), "server_name": "upstream.test"}
    conf.update(kw)
    return {k: v for k, v in conf.items() if v is not None}


def test_upstream_tls_verified(tls_gw, tls_upstream, pki):
    up = tls_upstream("up-name")
    g = tls_gw(tls=False, up=up, up_tls=up_tls(pki))
    r = h.request(g.port, "GET", "/x")  # plain client, TLS upstream
    assert r.status == 200, r
    assert r.json()["target"] == "/x"
    assert up.sni == ["upstream.test"]
    assert up.alpn == ["http/1.1"]


def test_upstream_tls_wrong_name_is_502(tls_gw, tls_upstream, pki):
    up = tls_upstream("up-other")
    g = tls_gw(tls=False, up=up, up_tls=up_tls(pki))
    r = h.request(g.port, "GET", "/x")
    assert r.status == 502, r
    assert up.requests == 0
    assert up.handshake_errors  # the gateway aborted the handshake


def test_upstream_tls_unknown_ca_is_502(tls_gw, tls_upstream, pki):
    up = tls_upstream("up-name")
    g = tls_gw(tls=False, up=up, up_tls=up_tls(pki, ca=None))  # system CAs do not know the test CA
    assert h.request(g.port, "GET", "/x").status == 502
    assert up.requests == 0


def test_upstream_tls_verify_false(tls_gw, tls_upstream, pki):
    up = tls_upstream("up-other")
    g = tls_gw(tls=False, up=up, up_tls={"verify": False})
    r = h.request(g.port, "GET", "/x")
    assert r.status == 200, r
    assert up.sni == [None]  # target 127.0.0.1: an IP literal is not sent as SNI


def test_upstream_tls_default_server_name_is_target_host(tls_gw, tls_upstream, pki):
    up = tls_upstream("up-ip")
    g = tls_gw(tls=False, up=up, up_tls=up_tls(pki, server_name=None))
    assert h.request(g.port, "GET", "/x").status == 200
    up2 = tls_upstream("up-name", name="up2")  # names upstream.test, not 127.0.0.1
    g2 = tls_gw(tls=False, up=up2, up_tls=up_tls(pki, server_name=None))
    assert h.request(g2.port, "GET", "/x").status == 502


def test_upstream_tls_client_certificate(tls_gw, tls_upstream, pki):
    up = tls_upstream("up-name", client_ca="client-ca")
    g = tls_gw(tls=False, up=up, up_tls=up_tls(pki, **pki.pair("gw")))
    assert h.request(g.port, "GET", "/x").status == 200
    up2 = tls_upstream("up-name", name="up2", client_ca="client-ca")
    g2 = tls_gw(tls=False, up=up2, up_tls=up_tls(pki), upstream={"retries": 0})
    assert h.request(g2.port, "GET", "/x").status == 502
    assert up2.requests == 0


def test_upstream_tls_connections_pooled(tls_gw, tls_upstream, pki):
    up = tls_upstream("up-name")
    g = tls_gw(tls=False, up=up, up_tls=up_tls(pki), workers=1)
    with h.Conn(g.port) as c:
        for i in range(5):
            c.send(h.build_request("GET", "/k%d" % i))
            r = c.read_response()
            assert r.status == 200
    for i in range(3):  # new client connections, same pooled upstream connection
        assert h.request(g.port, "GET", "/n%d" % i).status == 200
    assert up.requests == 8
    assert up.connections == 1
    assert {rec["conn_id"] for rec in up.records} == {1}


def test_upstream_tls_handshake_timeout_is_504(tls_gw, pki):
    """An upstream that accepts TCP but never answers the ClientHello."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        ls.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(ls.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        addr = "127.0.0.1:%d" % ls.getsockname()[1]
        fake = type("U", (), {"address": addr})()
        g = tls_gw(tls=False, up=fake, up_tls=up_tls(pki), upstream={"connect_timeout": "300ms", "retries": 0})
        t0 = time.monotonic()
        r = h.request(g.port, "GET", "/x")
        assert r.status == 504, r
        assert time.monotonic() - t0 < 2.5
    finally:
        stop.set()
        t.join()
        for s in held:
            s.close()
        ls.close()


def test_large_bodies_over_tls_both_sides(tls_gw, tls_upstream, pki):
    up = tls_upstream("up-name")
    g = tls_gw(up=up, up_tls=up_tls(pki), workers=1)
    body = os.urandom(3 * 1024 * 1024 + 17)
    r = tls_get(g.port, client_ctx(pki), target="/upload", method="POST", body=body)
    assert r.status == 200
    assert r.json()["body_len"] == len(body)
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    n = 5 * 1024 * 1024 + 3
    r = tls_get(g.port, client_ctx(pki), target="/bytes/%d" % n)
    assert r.status == 200 and len(r.body) == n
    assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(n)


def test_slow_reader_backpressure_over_tls(tls_gw, tls_upstream, pki):
    """A client reading slowly: the gateway stops reading the TLS upstream and
    resumes (no bytes stuck inside OpenSSL's buffers)."""
    up = tls_upstream("up-name")
    g = tls_gw(up=up, up_tls=up_tls(pki), workers=1)
    n = 6 * 1024 * 1024 + 5
    got = hashlib.sha256()
    total = [0]

    def sink(b):
        got.update(b)
        total[0] += len(b)
        if total[0] % (1 << 20) < len(b):
            time.sleep(0.2)

    with tls_conn(g.port, client_ctx(pki)) as c:
        c.send(h.build_request("GET", "/bytes/%d" % n, host="api.test"))
        r = c.read_response(sink=sink)
    assert r.status == 200 and total[0] == n
    assert got.hexdigest() == pattern_sha256(n)


# -------------------------------------------------------------- tollgate -t
def write_conf(tmp_path, tls_block):
    port = h.free_port()
    text = ('listen:\n'
            '  - address: "127.0.0.1:%d"\n'
            '    tls:\n' % port) + tls_block + (
            'upstreams:\n'
            '  up:\n'
            '    targets: ["127.0.0.1:9"]\n'
            'routes:\n'
            '  - upstream: up\n')
    path = tmp_path / "tls-check.yaml"
    path.write_text(text)
    return str(path)


def test_check_key_mismatch(tmp_path, pki):
    path = write_conf(tmp_path, '      certificates:\n'
                                '        - { cert: "%s", key: "%s" }\n'
                                '        - { cert: "%s", key: "%s" }\n'
                      % (pki.path("api.crt"), pki.path("api.key"), pki.path("admin.crt"), pki.path("api.key")))
    rc, err = h.run_check(path)
    assert rc == 1
    assert "%s:6:11: private key %s does not match certificate %s" % (
        path, pki.path("api.key"), pki.path("admin.crt")) in err, err


@pytest.mark.parametrize("block, where, msg", [
    ('      certificates:\n        - { cert: missing.crt, key: missing.key }\n', "5:11",
     "cannot load certificate missing.crt"),
    ('      certificates:\n        - { cert: CERT }\n', "5:11", "cert and key must be given together"),
    ('      certificates:\n        - { cert: CERT, key: KEY }\n      protocols: [TLSv1.2, TLSv1.1]\n', "6:28",
     "unsupported protocol 'TLSv1.1'"),
    ('      certificates:\n        - { cert: CERT, key: KEY }\n      ciphers: "NOPE-NOTHING"\n', "6:16",
     "invalid ciphers 'NOPE-NOTHING'"),
    ('      certificates:\n        - { cert: CERT, key: KEY }\n      client_ca: nowhere.pem\n', "6:18",
     "cannot load client CA nowhere.pem"),
    ('      certificates:\n        - { cert: CERT, key: KEY }\n      http2: true\n', "6:7",
     "unknown key 'http2' in tls"),
    ('      protocols: [TLSv1.3]\n', "4:7", "missing required key 'certificates'"),
])
def test_check_errors(tmp_path, pki, block, where, msg):
    block = block.replace("CERT", pki.path("api.crt")).replace("KEY", pki.path("api.key"))
    path = write_conf(tmp_path, block)
    rc, err = h.run_check(path)
    assert rc == 1
    assert "%s:%s: %s" % (path, where, msg) in err, err


def test_check_upstream_tls_errors(tmp_path, pki):
    port = h.free_port()
    base = ('listen:\n  - address: "127.0.0.1:%d"\nupstreams:\n  up:\n    targets: ["127.0.0.1:9"]\n'
            '    tls:\n' % port)
    cases = [('      cert: "%s"\n' % pki.path("gw.crt"), "7:7", "cert and key must be given together"),
             ('      cert: "%s"\n      key: "%s"\n' % (pki.path("gw.crt"), pki.path("api.key")), "7:7",
              "private key %s does not match certificate %s" % (pki.path("api.key"), pki.path("gw.crt"))),
             ('      ca: nowhere.pem\n', "7:11", "cannot load CA nowhere.pem"),
             ('      verify: maybe\n', "7:15", ""),
             ('      sni: x\n', "7:7", "unknown key 'sni' in tls")]
    for block, where, msg in cases:
        path = tmp_path / "up.yaml"
        path.write_text(base + block)
        rc, err = h.run_check(str(path))
        assert rc == 1, block
        assert "%s:%s: %s" % (path, where, msg) in err, (block, err)


def test_check_admin_tls_rejected(tmp_path, pki):
    path = tmp_path / "admin.yaml"
    path.write_text('listen:\n  - address: "127.0.0.1:%d"\nadmin:\n  address: "127.0.0.1:%d"\n'
                    '  tls:\n    certificates: []\n' % (h.free_port(), h.free_port()))
    rc, err = h.run_check(str(path))
    assert rc == 1
    assert "%s:6:5: tls is not supported on admin" % path in err, err


def test_demo_config_checks(tmp_path):
    shutil.copy(os.path.join(REPO, "conf", "tls.yaml"), tmp_path / "tls.yaml")
    p = subprocess.run(["bash", os.path.join(REPO, "scripts", "gen-demo-certs"), str(tmp_path / "tls")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    rc, err = h.run_check(tmp_path / "tls.yaml")
    assert rc == 0, err


def test_health_checks_over_upstream_tls(tls_gw, tls_upstream, pki):
    """The prober speaks TLS to a TLS upstream (SNI and verification as for requests)."""
    up = tls_upstream("up-name")
    hc = {"path": "/healthz", "interval": "200ms", "timeout": "150ms", "healthy": 1, "unhealthy": 1}
    g = tls_gw(tls=False, up=up, up_tls=up_tls(pki), upstream={"health_check": hc})
    deadline = time.monotonic() + 3
    while sum(1 for t in up.targets() if t == "/healthz") < 2:
        assert time.monotonic() < deadline, "no probe over TLS"
        time.sleep(0.05)
    assert "upstream.test" in up.sni
    assert "is unhealthy" not in g.gw.stderr()
    up.mode = "status:500"
    while "is unhealthy: status 500" not in g.gw.stderr():
        assert time.monotonic() < deadline + 3
        time.sleep(0.05)
