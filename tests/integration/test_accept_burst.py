"""10,000 new connections opened in one burst are all accepted and served,
and the kernel drops none of them at the gateway's listening sockets (issue
11): their drop counters (sk_drops, `ss -m` "d": every ListenOverflows /
ListenDrops of that socket, a full accept queue or a dropped SYN) stay 0. The
network namespace's TcpExt counters are printed beside (other programs count
there too). The only time bound is a generous one; the figures (seconds to
open, seconds until every connection was answered) are printed."""

import errno
import re
import resource
import select
import shutil
import socket
import subprocess
import time

import pytest

import tg_harness as h

N = 10000
REQUEST = b"GET /burst HTTP/1.1\r\nHost: burst.test\r\n\r\n"
COUNTERS = ("ListenOverflows", "ListenDrops", "TCPReqQFullDrop")


def tcpext():
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            d = dict(zip(names.split()[1:], (int(v) for v in values.split()[1:])))
            return {k: d.get(k, 0) for k in COUNTERS}
    raise AssertionError("no TcpExt in /proc/net/netstat")


def listener_drops(port):
    """sk_drops of every socket listening on port (one per worker)."""
    out = subprocess.run(["ss", "-ltnmH", "sport = :%d" % port], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout
    return [int(d) for d in re.findall(r"skmem:\([^)]*\bd(\d+)\)", out)]


@pytest.fixture
def nofile():
    """Room for N client sockets here and N in the gateway (it inherits the
    soft limit, and raises its own to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = N + 1000
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def wait_all(ep, socks, pending, step, deadline):
    """Runs step(i) for each socket in pending as epoll reports it until it
    returns True; returns the indexes still pending at the deadline."""
    while pending and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.5):
            i = fd_index[fd]
            if i in pending and step(i):
                pending.discard(i)
    return pending


fd_index = {}


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_burst_of_10000_connections_all_served(gateway_factory, nofile):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf(["127.0.0.1:1"])},
                           [{"name": "burst", "match": {"path_prefix": "/"}, "respond": {"body": "hi\n"}}],
                           limits={"header_timeout": "60s", "idle_timeout": "60s"})
    gw = gateway_factory(cfg)
    assert listener_drops(port) == [0, 0]
    before = tcpext()
    socks = []
    ep = select.epoll()
    fd_index.clear()
    t0 = time.monotonic()
    try:
        for i in range(N):  # the burst: every connect at once, non-blocking
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            assert err in (0, errno.EINPROGRESS), errno.errorcode.get(err, err)
            socks.append(s)
            fd_index[s.fileno()] = i
            ep.register(s.fileno(), select.EPOLLOUT)
        t_opened = time.monotonic() - t0

        def connected(i):
            err = socks[i].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            assert err == 0, "connection %d: %s" % (i, errno.errorcode.get(err, err))
            socks[i].send(REQUEST)  # a few bytes: the socket buffer takes them
            ep.modify(socks[i].fileno(), select.EPOLLIN)
            return True

        left = wait_all(ep, socks, set(range(N)), connected, time.monotonic() + 60)
        assert not left, "%d connections never completed" % len(left)

        got = [b""] * N

        def answered(i):
            data = socks[i].recv(4096)
            assert data, "connection %d closed by the gateway: %r" % (i, got[i])
            got[i] += data
            return got[i].endswith(b"\r\n\r\nhi\n")

        left = wait_all(ep, socks, set(range(N)), answered, time.monotonic() + 60)
        elapsed = time.monotonic() - t0
        assert not left, "%d connections got no answer" % len(left)
        assert all(g.startswith(b"HTTP/1.1 200 ") for g in got)
        after = tcpext()
        drops = listener_drops(port)
        print("%d connections opened in %.2f s, all answered after %.2f s; listener drops %s; "
              "namespace %s -> %s" % (N, t_opened, elapsed, drops, before, after))
        assert drops == [0, 0], "the kernel dropped connections at the gateway's listeners"
        assert elapsed < 30, "%.1f s to answer %d connections" % (elapsed, N)
    finally:
        ep.close()
        for s in socks:
            s.close()
    assert gw.proc.poll() is None, gw.stderr()
