"""`redis: sentinel:` against a real primary, a replica and three Sentinels.

Three gateways (2 workers each) rate-limit through the primary the Sentinels
name; a failover (SENTINEL FAILOVER, or the primary killed) happens under
traffic: requests keep being decided per on_error while it lasts, every worker
of every gateway ends up on the new primary, limits are enforced there
afterwards, and nothing crashes (the gateway fixture checks clean exits).
"""

import os
import shutil
import subprocess
import threading
import time

import pytest

import tg_harness as h
from test_rate_limit import Redis, check_accuracy, get, limited, rl_route

MASTER = "mymaster"
SENTINEL_BIN = shutil.which("redis-sentinel")


class Sentinel(Redis):
    def __init__(self, workdir, primary_port):
        super().__init__()
        self.conf = os.path.join(str(workdir), "sentinel-%d.conf" % self.port)
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\n" % (self.port, workdir))
            f.write("sentinel monitor %s 127.0.0.1 %d 2\n" % (MASTER, primary_port))
            f.write("sentinel down-after-milliseconds %s 1000\n" % MASTER)
            f.write("sentinel failover-timeout %s 5000\n" % MASTER)

    def start(self):
        argv = [SENTINEL_BIN, self.conf] if SENTINEL_BIN else ["redis-server", self.conf, "--sentinel"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert h.wait_port(self.port, 10, self.proc), "redis-sentinel did not start"
        return self


class Server(Redis):
    """A redis-server working in workdir (replication writes an RDB file there)."""

    def __init__(self, workdir, primary_port=None):
        super().__init__()
        self.workdir = str(workdir)
        self.primary_port = primary_port

    def start(self):
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.workdir, "--dbfilename", "dump-%d.rdb" % self.port]
        if self.primary_port:
            argv += ["--replicaof", "127.0.0.1", str(self.primary_port)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert h.wait_port(self.port, 10, self.proc), "redis-server did not start"
        return self


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def master_info(sentinel):
    flat = sentinel.cmd("SENTINEL", "master", MASTER)
    return dict(zip(flat[::2], flat[1::2]))


@pytest.fixture
def topology(tmp_path):
    primary = Server(tmp_path).start()
    replica = Server(tmp_path, primary.port).start()
    sentinels = []
    try:
        wait_for(lambda: "master_link_status:up" in replica.cmd("INFO", "replication"), 15, "replication")
        sentinels = [Sentinel(tmp_path, primary.port).start() for _ in range(3)]
        # FAILOVER needs a replica the Sentinels know and agree is healthy.
        wait_for(lambda: all(master_info(s)["flags"] == "master" and master_info(s)["num-slaves"] == "1" and
                             master_info(s)["num-other-sentinels"] == "2" for s in sentinels),
                 30, "the sentinels to see the replica and each other")
        yield primary, replica, sentinels
    finally:
        for p in [primary, replica] + sentinels:
            p.kill()


def sentinel_conf(sentinels, **kw):
    conf = {"sentinel": {"master": MASTER, "nodes": [s.address for s in sentinels]}, "timeout": "100ms"}
    conf.update(kw)
    return conf


def start_gateways(gateway_factory, upstream, sentinels, routes, n=3):
    gws = []
    for i in range(n):
        port = h.free_port()
        cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])}, routes, workers=2)
        cfg["redis"] = sentinel_conf(sentinels)
        gws.append(gateway_factory(cfg, name="gw%d" % i))
    return gws


def connected_to(gw, port):
    """Workers whose latest "connected" line names this primary port."""
    latest = {}
    for line in gw.stderr().splitlines():
        if "redis: connected to sentinel master 'mymaster'" in line:
            worker = line.rsplit("(worker ", 1)[1].rstrip(")")
            latest[worker] = line
    return {w for w, l in latest.items() if "127.0.0.1:%d)" % port in l}


class Traffic(threading.Thread):
    """Requests round-robin over the gateways until stopped; records statuses."""

    def __init__(self, gws):
        super().__init__(daemon=True)
        self.gws = gws
        self.statuses = []
        self.failures = []
        self.stop_flag = threading.Event()

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            gw = self.gws[i % len(self.gws)]
            t = time.monotonic()
            try:
                r = get(gw.port, "/a", [("X-Client", "traffic-%d" % (i % 7))])
                self.statuses.append((r.status, time.monotonic() - t))
            except Exception as e:  # a crash or a hang shows here
                self.failures.append(repr(e))
            i += 1
            time.sleep(0.01)

    def stop(self):
        self.stop_flag.set()
        self.join(10)


def burst(gws, client, n):
    return [get(gws[i % len(gws)].port, "/a", [("X-Client", client)]).status for i in range(n)]


def check_failover(gws, old, new, traffic):
    """Every worker ends up on the new primary; limits hold there."""
    wait_for(lambda: all(connected_to(gw, new.port) == {"0", "1"} for gw in gws), 20,
             "every worker on the new primary")
    time.sleep(0.3)
    traffic.stop()
    assert traffic.failures == [], traffic.failures[:5]
    # on_error allow during the switch: 200 or 429, never an error status; each
    # decision bounded by the timeout (100 ms) plus scheduling slack.
    assert {s for s, _ in traffic.statuses} <= {200, 429}, traffic.statuses
    assert max(t for _, t in traffic.statuses) < 1.0
    # Limits on the new primary: burst 5 over the three gateways, then refused.
    assert burst(gws, "after", 9) == [200] * 5 + [429] * 4
    assert any("after" in k for k in new.cmd("KEYS", "tg:rl:*"))
    assert new.cmd("ROLE")[0] == "master"


def test_sentinel_failover_under_traffic(gateway_factory, upstream, topology):
    primary, replica, sentinels = topology
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 5}], on_error="allow")
    gws = start_gateways(gateway_factory, upstream, sentinels, [rl_route("a", "/a", conf)])
    wait_for(lambda: all(connected_to(gw, primary.port) == {"0", "1"} for gw in gws), 30, "workers connected")
    assert burst(gws, "before", 7) == [200] * 5 + [429] * 2
    wait_for(lambda: replica.cmd("KEYS", "tg:rl:*"), 30, "the bucket replicated")
    traffic = Traffic(gws)
    traffic.start()
    time.sleep(0.5)
    assert sentinels[0].cmd("SENTINEL", "FAILOVER", MASTER) == "OK"
    wait_for(lambda: sentinels[1].cmd("SENTINEL", "get-master-addr-by-name", MASTER)[1] == str(replica.port),
             20, "the sentinels to name the replica")
    check_failover(gws, primary, replica, traffic)
    # The bucket replicated before the switch still limits "before".
    assert burst(gws, "before", 1) == [429]
    for gw in gws:
        assert "switched to 127.0.0.1:%d" % replica.port in gw.stderr()


def test_sentinel_primary_killed_under_traffic(gateway_factory, upstream, topology):
    primary, replica, sentinels = topology
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 5}], on_error="allow")
    gws = start_gateways(gateway_factory, upstream, sentinels, [rl_route("a", "/a", conf)])
    wait_for(lambda: all(connected_to(gw, primary.port) == {"0", "1"} for gw in gws), 30, "workers connected")
    traffic = Traffic(gws)
    traffic.start()
    time.sleep(0.5)
    primary.kill()
    check_failover(gws, primary, replica, traffic)


def test_sentinel_accuracy_three_instances(gateway_factory, upstream, topology):
    """A client at 3x its limit for 4 s over 3 gateways: burst + rate * elapsed admitted (2%)."""
    primary, replica, sentinels = topology
    conf = limited(limits=[{"rate": 20, "per": "1s", "burst": 10}])
    gws = start_gateways(gateway_factory, upstream, sentinels, [rl_route("a", "/a", conf)])
    wait_for(lambda: all(connected_to(gw, primary.port) == {"0", "1"} for gw in gws), 30, "workers connected")
    check_accuracy(gws, "/a", 20, 10, 4.0)


def test_sentinel_unknown_master_is_logged_and_on_error_applies(gateway_factory, upstream, topology):
    primary, replica, sentinels = topology
    port = h.free_port()
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 5}], on_error="deny")
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])}, [rl_route("a", "/a", conf)],
                           workers=1)
    cfg["redis"] = sentinel_conf(sentinels)
    cfg["redis"]["sentinel"]["master"] = "nosuchmaster"
    gw = gateway_factory(cfg)
    time.sleep(0.5)
    assert get(gw.port, "/a", [("X-Client", "x")]).status == 503
    err = gw.stderr()
    assert "redis: cannot connect to sentinel master 'nosuchmaster': sentinel 127.0.0.1:" in err, err
    assert "does not know the master" in err
