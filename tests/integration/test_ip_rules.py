"""The bundled ip-rules plugin through the real binary: allow and deny lists
on the peer address (127.0.0.x loopback sources), on the X-Forwarded-For
client behind a trusted proxy (and not from an untrusted peer), IPv6 and
IPv4-mapped peers on a dual-stack listener, config errors."""

import socket

import pytest

import tg_harness as h


def start(gateway_factory, upstream, conf, trusted=("10.0.0.0/8",), listen=None, route_plugins=None):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])},
                           [h.route("all", "up", {"path_prefix": "/"})], trusted_proxies=trusted)
    if listen is not None:
        cfg["listen"] = [{"address": listen % port}]
    if route_plugins is not None:
        cfg["routes"][0]["plugins"] = route_plugins
    else:
        cfg["plugins"] = [{"name": "ip-rules", "config": conf}]
    gw = gateway_factory(cfg, port=port)
    return gw, port


def assert_refused(r, status=403, message="forbidden"):
    assert r.status == status, r
    assert r.header("Content-Type") == "application/json"
    body = r.json()
    assert body["error"] == message
    assert body["request_id"] == r.header("X-Request-Id")


def test_allow_list_on_the_peer(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream, {"allow": ["127.0.0.1/32", "127.0.0.8/29"]})
    assert h.request(port, "GET", "/a").status == 200
    assert h.request(port, "GET", "/a", source="127.0.0.9").status == 200
    assert h.request(port, "GET", "/a", source="127.0.0.15").status == 200
    assert_refused(h.request(port, "GET", "/a", source="127.0.0.2"))
    assert_refused(h.request(port, "GET", "/a", source="127.0.0.16"))
    # A refused request never reaches the upstream.
    assert upstream.targets() == ["/a"] * 3


def test_deny_list_status_and_message(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream,
                    {"deny": ["127.0.0.2"], "status": 404, "message": "no such thing"})
    assert h.request(port, "GET", "/a").status == 200
    assert_refused(h.request(port, "GET", "/a", source="127.0.0.2"), 404, "no such thing")
    assert h.request(port, "GET", "/a", source="127.0.0.3").status == 200


def test_forwarded_client_behind_a_trusted_proxy(gateway_factory, upstream):
    """127.0.0.2 is a trusted proxy: the client is the rightmost untrusted
    X-Forwarded-For address, which the rules see; another peer's
    X-Forwarded-For is ignored (removed), so it cannot pose as an allowed client."""
    _, port = start(gateway_factory, upstream, {"allow": ["203.0.113.0/24"]},
                    trusted=("127.0.0.2", "10.0.0.0/8"))

    def xff(v, source):
        return h.request(port, "GET", "/x", [("X-Forwarded-For", v)], source=source)

    assert xff("203.0.113.7", "127.0.0.2").status == 200
    assert xff("198.51.100.1, 203.0.113.7, 10.1.1.1", "127.0.0.2").status == 200
    assert_refused(xff("203.0.113.7, 198.51.100.1", "127.0.0.2"))
    assert_refused(xff("203.0.113.7", "127.0.0.3"))  # untrusted peer: its XFF is not believed
    assert_refused(h.request(port, "GET", "/x", source="127.0.0.2"))  # the proxy itself


def test_deny_forwarded_client(gateway_factory, upstream):
    _, port = start(gateway_factory, upstream, {"deny": ["198.51.100.0/24", "2001:db8::/32"]},
                    trusted=("127.0.0.1",))
    assert h.request(port, "GET", "/x", [("X-Forwarded-For", "203.0.113.1")]).status == 200
    assert_refused(h.request(port, "GET", "/x", [("X-Forwarded-For", "198.51.100.9")]))
    assert_refused(h.request(port, "GET", "/x", [("X-Forwarded-For", "2001:db8::5")]))
    assert h.request(port, "GET", "/x", [("X-Forwarded-For", "2001:db9::5")]).status == 200


def _ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def v6_request(port, target="/"):
    s = socket.create_connection(("::1", port), timeout=5)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % target).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1])
    finally:
        s.close()


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_ipv6_and_ipv4_mapped_peers_on_a_dual_stack_listener(gateway_factory, upstream):
    """Listening on [::], an IPv4 client is ::ffff:127.0.0.1: it matches the
    IPv4 block. ::1 matches only an IPv6 block."""
    _, port = start(gateway_factory, upstream, {"allow": ["127.0.0.0/8"]}, listen="[::]:%d")
    assert h.request(port, "GET", "/a").status == 200  # ::ffff:127.0.0.1
    assert v6_request(port) == 403
    upstream2 = upstream
    _, port2 = start(gateway_factory, upstream2, {"allow": ["::1/128"]}, listen="[::]:%d")
    assert v6_request(port2) == 200
    assert h.request(port2, "GET", "/a").status == 403


def test_on_a_route_only(gateway_factory, upstream):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])},
                           [dict(h.route("admin", "up", {"path_prefix": "/admin"}),
                                 plugins=[{"name": "ip-rules", "config": {"allow": ["10.0.0.0/8"]}}]),
                            h.route("all", "up", {"path_prefix": "/"})])
    gateway_factory(cfg, port=port)
    assert_refused(h.request(port, "GET", "/admin/x"))
    assert h.request(port, "GET", "/public").status == 200


@pytest.mark.parametrize("conf, where, message", [
    ({"allow": ["10.0.0.0/8"], "deny": ["10.1.0.0/16"]}, "deny", '"allow" and "deny" together'),
    ({"status": 403}, None, 'ip-rules needs "allow" or "deny"'),
    ({"allow": ["10.0.0.0/33"]}, "allow", 'invalid address block "10.0.0.0/33"'),
    ({"allow": ["10.0.0.0/8"], "status": 302}, "status", ""),
])
def test_config_errors(tmp_path, conf, where, message):
    cfg = h.gateway_config(1, {"up": h.upstream_conf(["127.0.0.1:2"])},
                           [h.route("all", "up", {"path_prefix": "/"})])
    cfg["plugins"] = [{"name": "ip-rules", "config": conf}]
    path = tmp_path / "c.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(path)
    assert rc == 1, err
    assert err.startswith(str(path) + ":"), err
    assert message in err, err
    if where is not None:
        # the key's line, or the next one where the writer puts a list's first item
        line = next(i + 1 for i, l in enumerate(path.read_text().splitlines()) if l.strip().startswith(where + ":"))
        assert err.startswith(("%s:%d:" % (path, line), "%s:%d:" % (path, line + 1))), err
