"""Configuration reload: SIGHUP and POST /reload swap the config without
dropping a request; a config that fails keeps the running one."""

import signal
import threading
import time
import urllib.request

import tg_harness as h


def write_config(gw, cfg):
    with open(gw.cfg_path, "w") as f:
        f.write(h.yaml_text(cfg))


def base_config(port, up, routes=None, extra=None):
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           routes or [h.route("all", "up", {"path_prefix": "/"})], workers=2)
    cfg.update(extra or {})
    return cfg


def test_sighup_adds_a_route_and_keeps_connections(gateway_factory, upstream):
    port = h.free_port()
    cfg = base_config(port, upstream, [h.route("a", "up", {"path_prefix": "/a"})])
    gw = gateway_factory(cfg)
    with h.Conn(port) as c:
        c.send(h.build_request("GET", "/b/x"))
        assert c.read_response().status == 404
        cfg["routes"].append(h.route("b", "up", {"path_prefix": "/b"}))
        write_config(gw, cfg)
        gw.signal(signal.SIGHUP)
        time.sleep(0.5)
        # the same keep-alive connection: its next request uses the new config
        c.send(h.build_request("GET", "/b/x"))
        assert c.read_response().status == 200


def test_bad_config_keeps_the_running_one(gateway_factory, upstream):
    port = h.free_port()
    cfg = base_config(port, upstream)
    gw = gateway_factory(cfg)
    with open(gw.cfg_path, "w") as f:
        f.write(h.yaml_text(cfg).replace("routes:", "routes:\n  - name: broken\n    upstream: nowhere"))
    gw.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert h.request(port, "GET", "/x").status == 200
    assert "reload failed" in gw.stderr()
    assert "unknown upstream 'nowhere'" in gw.stderr()


def test_no_request_fails_through_20_reloads(gateway_factory, upstream):
    port = h.free_port()
    cfg = base_config(port, upstream)
    gw = gateway_factory(cfg)
    stop = threading.Event()
    results = {"ok": 0, "bad": []}

    def client():
        while not stop.is_set():
            try:
                with h.Conn(port, timeout=5) as c:
                    for _ in range(20):
                        c.send(h.build_request("GET", "/delay/5"))
                        r = c.read_response()
                        if r.status == 200:
                            results["ok"] += 1
                        else:
                            results["bad"].append(r.status)
            except Exception as e:  # noqa: BLE001 - any failure counts
                results["bad"].append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        cfg["limits"]["idle_timeout"] = "%ds" % (30 + i)
        write_config(gw, cfg)
        gw.signal(signal.SIGHUP)
        time.sleep(0.1)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert results["bad"] == []
    assert results["ok"] > 100
    assert gw.stderr().count("reloaded") == 20


def test_listener_added_and_removed(gateway_factory, upstream):
    port, port2 = h.free_port(), h.free_port()
    cfg = base_config(port, upstream)
    gw = gateway_factory(cfg)
    cfg["listen"].append({"address": "127.0.0.1:%d" % port2})
    write_config(gw, cfg)
    gw.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert h.request(port2, "GET", "/x").status == 200
    cfg["listen"] = [{"address": "127.0.0.1:%d" % port2}]
    write_config(gw, cfg)
    gw.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert h.request(port2, "GET", "/x").status == 200
    try:
        h.request(port, "GET", "/x")
        raise AssertionError("the removed listener still accepts")
    except OSError:
        pass
    gw.port = port2  # for the fixture's shutdown checks


def test_post_reload_on_admin(gateway_factory, upstream):
    port, admin = h.free_port(), h.free_port()
    cfg = base_config(port, upstream, [h.route("a", "up", {"path_prefix": "/a"})],
                      {"admin": {"address": "127.0.0.1:%d" % admin}})
    gw = gateway_factory(cfg)
    h.wait_port(admin, 5)
    cfg["routes"].append(h.route("b", "up", {"path_prefix": "/b"}))
    write_config(gw, cfg)
    # No body: urllib would label even an empty one as a form, which the admin refuses (415).
    req = urllib.request.Request("http://127.0.0.1:%d/reload" % admin, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    assert h.request(port, "GET", "/b/x").status == 200
    # a bad config: 400 with the position, the running config stays
    with open(gw.cfg_path, "a") as f:
        f.write("bogus_key: 1\n")
    req = urllib.request.Request("http://127.0.0.1:%d/reload" % admin, method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a bad config reloaded")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert "unknown key 'bogus_key'" in e.read().decode()
    assert h.request(port, "GET", "/b/x").status == 200


def test_sighup_as_soon_as_the_port_opens(tmp_path, upstream):
    """A supervisor may reload the moment the port accepts: the kernel completes
    handshakes from listen() on, so signals must be caught before it (they
    were not, and SIGHUP's default action killed the process)."""
    for i in range(10):
        port = h.free_port()
        gw = h.Gateway(base_config(port, upstream), tmp_path, port, name="early%d" % i)
        gw._err = open(gw.err_path, "wb")
        gw._out = open(gw.out_path, "wb")
        gw.proc = h.subprocess.Popen([h.BINARY, "-c", gw.cfg_path], stdout=gw._out,
                                     stderr=gw._err, cwd=gw.workdir)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and gw.proc.poll() is None:
                try:
                    h.socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    pass  # no sleep: signal in the first instant the port is open
            gw.signal(signal.SIGHUP)
            time.sleep(0.3)
            assert gw.proc.poll() is None, "killed by an early SIGHUP:\n" + gw.stderr()
            assert h.request(port, "GET", "/x").status == 200
        finally:
            assert gw.stop() == 0, gw.stderr()
