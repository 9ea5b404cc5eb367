"""Large bodies and backpressure (memory stays bounded), graceful shutdown."""

import hashlib
import os
import signal
import time

import tg_harness as h
from upstream import pattern_sha256

MIB = 1024 * 1024


def small_quarantine_env():
    """Under ASan, freed memory sits in a 256 MB quarantine and would count as RSS:
    shrink it so that the measurement is about the gateway's buffering."""
    env = dict(os.environ)
    opts = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
    return env


def test_backpressure_200mb_slow_reader(proxy):
    px = proxy(upstream={"timeout": "10s"}, limits={"idle_timeout": "30s"}, env=small_quarantine_env())
    n = 200 * MIB
    for _ in range(3):  # warm up buffers and pools
        assert h.request(px.port, "GET", "/bytes/100000").status == 200
    time.sleep(0.2)
    base = px.gw.rss_kb()
    peak = [base]
    state = {"got": 0, "next_sample": 0}
    sha = hashlib.sha256()

    def sink(data):
        sha.update(data)
        state["got"] += len(data)
        if state["got"] < 8 * MIB:
            time.sleep(0.005)  # a slow reader for the first 8 MiB
        if state["got"] >= state["next_sample"]:
            peak[0] = max(peak[0], px.gw.rss_kb())
            state["next_sample"] += 4 * MIB

    with h.Conn(px.port, timeout=30, rcvbuf=65536) as c:
        c.send(h.build_request("GET", "/bytes/%d" % n))
        for _ in range(15):  # not reading at all for 3 s
            time.sleep(0.2)
            peak[0] = max(peak[0], px.gw.rss_kb())
        r = c.read_response(sink=sink)
    assert r.status == 200 and r.complete, r
    assert state["got"] == n
    assert sha.hexdigest() == pattern_sha256(n)
    grew_mib = (peak[0] - base) / 1024.0
    assert grew_mib < 64, "gateway RSS grew by %.1f MiB (base %d kB, peak %d kB)" % (grew_mib, base, peak[0])


def test_upload_10mb_memory_bounded(proxy):
    """A streamed 10 MB upload does not grow the gateway by its size."""
    px = proxy(env=small_quarantine_env())
    n = 10 * 1000 * 1000
    base = px.gw.rss_kb()
    from upstream import pattern_chunks
    with h.Conn(px.port, timeout=30) as c:
        c.send(h.build_request("POST", "/up/big", [("Content-Length", str(n))]))
        peak = base
        for i, piece in enumerate(pattern_chunks(n)):
            c.send(piece)
            if i % 16 == 0:
                peak = max(peak, px.gw.rss_kb())
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_sha256"] == pattern_sha256(n)
    assert (peak - base) / 1024.0 < 64


def test_graceful_shutdown_completes_inflight_request(proxy):
    px = proxy()
    with h.Conn(px.port, timeout=10) as c:
        c.send(h.build_request("GET", "/delay/1500"))
        assert px.up.wait_heads(1, 3), "request did not reach the upstream"
        t0 = time.monotonic()
        px.gw.signal(signal.SIGTERM)
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["target"] == "/delay/1500"
        assert time.monotonic() - t0 >= 1.0
    rc = px.gw.proc.wait(timeout=10)
    assert rc == 0
    px.gw.check_clean_exit()


def test_shutdown_stops_accepting(proxy):
    px = proxy()
    assert h.request(px.port, "GET", "/x").status == 200
    px.gw.signal(signal.SIGTERM)
    assert px.gw.proc.wait(timeout=10) == 0
    import socket
    s = socket.socket()
    try:
        s.settimeout(1)
        refused = s.connect_ex(("127.0.0.1", px.port)) != 0
    finally:
        s.close()
    assert refused
    px.gw.check_clean_exit()
