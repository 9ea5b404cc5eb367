"""`redis: cluster:` against three real `redis-server --cluster-enabled yes`.

The gateways learn the slot map from one seed, send each decision to the
primary of its slot (keys of many clients spread over all three), limits hold
across three gateways, and a slot migrated under traffic is followed through
ASK (keys moved, slot not yet reassigned) and MOVED (slot reassigned).
"""

import socket
import subprocess
import time

import pytest

import tg_harness as h
from test_rate_limit import KEY_RE, Redis, at_once, check_accuracy, get, key_slot, limited, rl_route, script_calls


def cluster_port():
    """A free port whose cluster bus port (+10000) is free and valid too."""
    while True:
        port = h.free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class Node(Redis):
    def __init__(self, workdir):
        super().__init__(cluster_port())
        self.workdir = str(workdir)

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-%d.conf" % self.port,
             "--cluster-node-timeout", "2000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert h.wait_port(self.port, 10, self.proc), "redis-server did not start"
        return self

    def node_id(self):
        return self.cmd("CLUSTER", "MYID")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def make_cluster(tmp_path, count, replicas):
    """count redis-server nodes made into one cluster (replicas per primary); killed after."""
    nodes = [Node(tmp_path).start() for _ in range(count)]
    try:
        subprocess.run(["redis-cli", "--cluster", "create"] + [n.address for n in nodes] +
                       ["--cluster-replicas", str(replicas), "--cluster-yes"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        wait_for(lambda: all("cluster_state:ok" in n.cmd("CLUSTER", "INFO") for n in nodes), 20, "cluster ok")
        yield nodes
    finally:
        for n in nodes:
            n.kill()


@pytest.fixture
def cluster(tmp_path):
    yield from make_cluster(tmp_path, 3, 0)


def start_gateways(gateway_factory, upstream, nodes, routes, n=3, workers=2):
    gws = []
    for i in range(n):
        port = h.free_port()
        cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])}, routes, workers=workers)
        cfg["redis"] = {"cluster": {"nodes": [nodes[0].address]}, "timeout": "100ms"}
        gws.append(gateway_factory(cfg, name="gw%d" % i))
    time.sleep(0.5)  # slot map: CLUSTER SLOTS once a seed connection is up
    return gws


def burst(gws, client, n):
    return [get(gws[i % len(gws)].port, "/a", [("X-Client", client)]).status for i in range(n)]


def owner(nodes, slot):
    for n in nodes:
        for r in n.cmd("CLUSTER", "SLOTS"):
            if r[0] <= slot <= r[1]:
                return next(m for m in nodes if m.port == r[2][1])
    raise AssertionError("slot %d unserved" % slot)


def test_cluster_keys_spread_and_limits_hold(gateway_factory, upstream, cluster):
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 3}, {"rate": 100, "per": "1h"}], on_error="deny")
    gws = start_gateways(gateway_factory, upstream, cluster, [rl_route("a", "/a", conf)])
    for c in range(30):
        assert burst(gws, "c%d" % c, 5) == [200] * 3 + [429] * 2, c
    counts = [n.cmd("DBSIZE") for n in cluster]
    assert sum(counts) == 60 and all(c > 0 for c in counts), counts
    for n in cluster:  # each node holds only keys of its own slots, both limits together
        for k in n.cmd("KEYS", "tg:rl:*"):
            assert owner(cluster, key_slot(k)) is n
    for gw in gws:
        assert "rate-limit: redis unavailable" not in gw.stderr()


def test_cluster_requests_ready_together_are_batched_per_slot(gateway_factory, upstream, cluster):
    """30 requests of 15 clients read in one iteration: one EVALSHA per slot
    (never one spanning slots: CROSSSLOT would apply on_error), each client's
    burst of 1 admitted exactly once."""
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 1}], on_error="deny")
    routes = [rl_route("a", "/a", conf), {"name": "plain", "match": {"path_prefix": "/plain"}, "upstream": "up"}]
    gw = start_gateways(gateway_factory, upstream, cluster, routes, n=1, workers=1)[0]
    for i in range(30):  # the script cached on every node (no NOSCRIPT below)
        assert get(gw.port, "/a", [("X-Client", "warm-up%d" % i)]).status == 200
    warm = {key_slot(k) for n in cluster for k in n.cmd("KEYS", "tg:rl:*")}
    clients = ["c%d" % (i % 15) for i in range(30)]
    before = script_calls(cluster)
    rs = at_once(gw, "/a", clients)
    calls = script_calls(cluster) - before
    for c in set(clients):
        assert sorted(r.status for r, x in zip(rs, clients) if x == c) == [200, 429], c
    slots = {key_slot(k) for n in cluster for k in n.cmd("KEYS", "tg:rl:*")} - warm
    assert calls == len(slots), (calls, len(slots))
    assert "rate-limit: redis unavailable" not in gw.stderr()


def test_cluster_slot_migrated_under_traffic_ask_then_moved(gateway_factory, upstream, cluster):
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 6}], on_error="deny")
    gws = start_gateways(gateway_factory, upstream, cluster, [rl_route("a", "/a", conf)])
    assert burst(gws, "mig", 2) == [200, 200]
    key = next(k for n in cluster for k in n.cmd("KEYS", "tg:rl:*") if KEY_RE.fullmatch(k).group(2) == "h:mig")
    slot = key_slot(key)
    src = owner(cluster, slot)
    dst = next(n for n in cluster if n is not src)
    # Migration step 1: importing/migrating, key still on the source.
    assert dst.cmd("CLUSTER", "SETSLOT", str(slot), "IMPORTING", src.node_id()) == "OK"
    assert src.cmd("CLUSTER", "SETSLOT", str(slot), "MIGRATING", dst.node_id()) == "OK"
    assert burst(gws, "mig", 1) == [200]
    # Step 2: the key moved, the slot not yet reassigned: the source answers ASK.
    assert src.cmd("MIGRATE", "127.0.0.1", str(dst.port), key, "0", "5000") == "OK"
    assert src.cmd("EXISTS", key).startswith("ASK %d " % slot)
    assert burst(gws, "mig", 1) == [200]
    # Step 3: the slot belongs to the destination: the source answers MOVED.
    for n in cluster:
        assert n.cmd("CLUSTER", "SETSLOT", str(slot), "NODE", dst.node_id()) == "OK"
    assert burst(gws, "mig", 4) == [200, 200, 429, 429]  # 6 in all: one bucket throughout
    assert src.cmd("EXISTS", key).startswith("MOVED %d " % slot)
    assert dst.cmd("EXISTS", key) == 1
    for gw in gws:
        assert "rate-limit: redis unavailable" not in gw.stderr()


def test_cluster_accuracy_three_instances(gateway_factory, upstream, cluster):
    """A client at 3x its limit for 4 s over 3 gateways: burst + rate * elapsed admitted (2%)."""
    conf = limited(limits=[{"rate": 20, "per": "1s", "burst": 10}])
    gws = start_gateways(gateway_factory, upstream, cluster, [rl_route("a", "/a", conf)])
    check_accuracy(gws, "/a", 20, 10, 4.0)


@pytest.fixture
def cluster_with_replicas(tmp_path):
    yield from make_cluster(tmp_path, 6, 1)


def test_cluster_primary_killed_replica_promoted(gateway_factory, upstream, cluster_with_replicas):
    nodes = cluster_with_replicas
    conf = limited(limits=[{"rate": 1, "per": "1m", "burst": 4}], on_error="allow")
    gws = start_gateways(gateway_factory, upstream, nodes, [rl_route("a", "/a", conf)])
    assert burst(gws, "k", 2) == [200, 200]
    key = next(k for n in nodes for k in n.cmd("KEYS", "tg:rl:*") if KEY_RE.fullmatch(k).group(2) == "h:k")
    slot = key_slot(key)
    victim = owner([n for n in nodes if n.cmd("ROLE")[0] == "master"], slot)
    replica = next(n for n in nodes if n.cmd("ROLE")[0] == "slave" and n.cmd("ROLE")[2] == victim.port)
    wait_for(lambda: replica.cmd("DBSIZE") >= 1, 30,
             "the bucket replicated")
    victim.kill()
    # During the failover (node timeout 2 s) on_error allow decides; then the
    # promoted replica holds the bucket and the limit resumes where it was.
    statuses = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statuses.append(burst(gws, "probe", 1)[0])
        if replica.cmd("ROLE")[0] == "master" and len(statuses) > 5:
            break
        time.sleep(0.2)
    assert replica.cmd("ROLE")[0] == "master"
    assert set(statuses) <= {200, 429}
    time.sleep(1.5)  # every worker's map refreshed (at most 500 ms after a failed call, 10 s periodic)
    assert burst(gws, "k", 4) == [200, 200, 429, 429]
    assert replica.cmd("EXISTS", key) == 1
