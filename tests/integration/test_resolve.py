"""DNS: upstream names resolved with evdns against a test nameserver (a
process the test starts, tests/integration/dns_server.py) that changes its
answers: all A records are targets, traffic follows a change without an
error, pooled connections to addresses that stay are kept, and a failed
resolution keeps the last good set."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

import tg_harness as h
from upstream import UpstreamServer

HERE = os.path.dirname(os.path.abspath(__file__))


class Dns:
    def __init__(self, tmp_path):
        self.path = str(tmp_path / "records.json")
        self.set({})
        portfile = str(tmp_path / "dns.port")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "dns_server.py"), self.path, portfile])
        deadline = time.monotonic() + 5
        while not os.path.exists(portfile):
            assert time.monotonic() < deadline, "dns server did not start"
            time.sleep(0.02)
        self.address = "127.0.0.1:%s" % open(portfile).read()

    def set(self, records):
        with open(self.path + ".tmp", "w") as f:
            json.dump(records, f)
        os.rename(self.path + ".tmp", self.path)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def dns(tmp_path):
    d = Dns(tmp_path)
    yield d
    d.stop()


@pytest.fixture
def pair():
    a = UpstreamServer("a", host="127.0.0.2")
    b = UpstreamServer("b", host="127.0.0.3", port=a.port)
    yield a, b
    a.stop()
    b.stop()


def start(gateway_factory, dns, port_up, workers=1, extra=None):
    port = h.free_port()
    cfg = h.gateway_config(port, {"svc": h.upstream_conf(["svc.test:%d" % port_up], resolve="300ms",
                                                         max_fails=0)},
                           [h.route("all", "svc", {"path_prefix": "/"})], workers=workers)
    cfg["resolver"] = [dns.address]
    cfg.update(extra or {})
    return gateway_factory(cfg)


def servers(port, n):
    with h.Conn(port) as c:
        out = []
        for i in range(n):
            c.send(h.build_request("GET", "/d?i=%d" % i))
            r = c.read_response()
            assert r.status == 200, r
            out.append(r.json()["server"])
        return out


def test_traffic_follows_the_name(gateway_factory, dns, pair, tmp_path):
    a, b = pair
    dns.set({"svc.test": {"A": ["127.0.0.2"]}})
    gw = start(gateway_factory, dns, a.port)
    assert set(servers(gw.port, 6)) == {"a"}
    conns_a = a.connections
    # both records: both are targets; the pooled connection to a stays
    dns.set({"svc.test": {"A": ["127.0.0.2", "127.0.0.3"]}})
    deadline = time.monotonic() + 3
    while set(servers(gw.port, 4)) != {"a", "b"}:
        assert time.monotonic() < deadline, "the second address never got traffic"
    assert a.connections == conns_a, "a pooled connection to an address that stayed was dropped"
    assert "svc.test:%d resolves to 127.0.0.2, 127.0.0.3" % a.port in gw.stderr()
    # a moves away, with traffic running: no request fails
    statuses = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            statuses.append(h.request(gw.port, "GET", "/l").status)

    t = threading.Thread(target=load)
    t.start()
    dns.set({"svc.test": {"A": ["127.0.0.3"]}})
    time.sleep(1.0)
    stop.set()
    t.join()
    assert statuses and set(statuses) == {200}, statuses
    assert set(servers(gw.port, 6)) == {"b"}


def test_failed_resolution_keeps_the_last_good_set(gateway_factory, dns, pair):
    a, b = pair
    dns.set({"svc.test": {"A": ["127.0.0.2", "127.0.0.3"]}})
    gw = start(gateway_factory, dns, a.port)
    assert set(servers(gw.port, 4)) == {"a", "b"}
    dns.set({"_mode": "servfail"})
    deadline = time.monotonic() + 5
    while "keeping the last good addresses" not in gw.stderr():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert set(servers(gw.port, 4)) == {"a", "b"}
    dns.set({"svc.test": {"A": []}})  # no record: also keeps the set
    time.sleep(0.8)
    assert set(servers(gw.port, 4)) == {"a", "b"}


def test_name_that_does_not_resolve_at_load(tmp_path, dns):
    dns.set({})
    port = h.free_port()
    cfg = h.gateway_config(port, {"svc": h.upstream_conf(["nope.test:80"], resolve="1s")},
                           [h.route("all", "svc", {"path_prefix": "/"})])
    cfg["resolver"] = [dns.address]
    path = tmp_path / "bad.yaml"
    path.write_text(h.yaml_text(cfg))
    rc, err = h.run_check(str(path))
    assert rc != 0 and "cannot resolve 'nope.test'" in err, err


def test_addresses_in_the_access_log_and_metrics(gateway_factory, dns, pair, tmp_path):
    a, b = pair
    dns.set({"svc.test": {"A": ["127.0.0.2", "127.0.0.3"]}})
    admin = h.free_port()
    log = tmp_path / "access.log"
    gw = start(gateway_factory, dns, a.port, extra={
        "admin": {"address": "127.0.0.1:%d" % admin},
        "plugins": [{"name": "request-log", "config": {"path": str(log), "fields": ["upstream_addr"]}}]})
    got = {}
    for s in servers(gw.port, 4):
        got[s] = True
    deadline = time.monotonic() + 3
    while len(log.read_text().splitlines() if log.exists() else []) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    addrs = {json.loads(ln)["upstream_addr"] for ln in log.read_text().splitlines()}
    assert addrs == {"127.0.0.2:%d" % a.port, "127.0.0.3:%d" % a.port}, addrs
    m = h.request(admin, "GET", "/metrics", host="localhost").body.decode()
    series = [ln for ln in m.splitlines() if ln.startswith("tollgate_upstream_target_healthy{")]
    assert sorted(series) == [
        'tollgate_upstream_target_healthy{upstream="svc",target="127.0.0.2:%d"} 1' % a.port,
        'tollgate_upstream_target_healthy{upstream="svc",target="127.0.0.3:%d"} 1' % a.port], series


def test_reload_while_the_name_does_not_resolve(gateway_factory, dns, pair):
    import signal
    a, b = pair
    dns.set({"svc.test": {"A": ["127.0.0.2", "127.0.0.3"]}})
    gw = start(gateway_factory, dns, a.port)
    assert set(servers(gw.port, 4)) == {"a", "b"}
    dns.set({"_mode": "servfail"})
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 8
    while "reloaded" not in gw.stderr() and "reload failed" not in gw.stderr():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "reload failed" not in gw.stderr(), gw.stderr()
    assert "cannot resolve 'svc.test': keeping the last good addresses" in gw.stderr()
    assert set(servers(gw.port, 4)) == {"a", "b"}
