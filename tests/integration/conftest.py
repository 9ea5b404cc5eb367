"""tollgate black-box integration tests.

README
======
These tests start the real gateway binary against an in-process test upstream
(tests/integration/upstream.py) and talk to it over raw sockets, so what is
asserted is exactly what went over the wire.

Requirements: Debian's python3 with pytest (stdlib only otherwise) and a built
gateway.

  # whole suite (about 2-3 minutes)
  /usr/bin/python3 -m pytest -q tests/integration

  # one file / one test / one parametrized case
  /usr/bin/python3 -m pytest -q tests/integration/test_smuggling.py
  /usr/bin/python3 -m pytest -q tests/integration/test_forwarding.py::test_target_forwarded_byte_exact
  /usr/bin/python3 -m pytest -q "tests/integration/test_smuggling.py::test_smuggling_rejected[cl_and_te]"
  /usr/bin/python3 -m pytest -q tests/integration -k expect

  # another binary (e.g. an ASan build)
  TOLLGATE_BIN=/work/main/build-asan/tollgate /usr/bin/python3 -m pytest -q tests/integration

Each test writes its config to its pytest tmp_path (gw.yaml), and the
gateway's stderr to gw.stderr there; run with `--basetemp=/tmp/tg-it` to keep
them in a known place. Every gateway is stopped with SIGTERM at the end of its
test, which must exit 0 within 10 s with no sanitizer report in stderr.

Layout: tg_harness.py (ports, YAML config writer, Gateway process, raw HTTP
client), upstream.py (scriptable origin server), test_*.py (one file per
behaviour area).
"""

import os
import socket
import time
import types

import pytest

import tg_harness as h
from upstream import UpstreamServer


@pytest.fixture(scope="session", autouse=True)
def _binary_present():
    assert os.access(h.BINARY, os.X_OK), "tollgate binary not found at %s (set TOLLGATE_BIN)" % h.BINARY


@pytest.fixture
def upstream_factory():
    servers = []

    def make(name="up", mode="normal"):
        s = UpstreamServer(name=name, mode=mode)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def upstream(upstream_factory):
    return upstream_factory("up")


@pytest.fixture
def gateway_factory(tmp_path):
    gateways = []

    def start(config, env=None, port=None, name=None):
        if port is None:
            port = config["listen"][0]["address"].rsplit(":", 1)[1]
        gw = h.Gateway(config, tmp_path, int(port), env=env, name=name or "gw%d" % len(gateways))
        gateways.append(gw)
        return gw.start()

    yield start
    errors = []
    for gw in gateways:
        try:
            gw.check_clean_exit()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n\n".join(errors)


@pytest.fixture
def proxy(gateway_factory, upstream_factory):
    """make(limits=..., upstream=..., routes=..., workers=...) -> ns(gw, up, port).

    Default: one upstream "up" and one catch-all route (path_prefix /)."""

    def make(limits=None, upstream=None, routes=None, workers=2, up=None, extra_upstreams=None, env=None):
        up = up or upstream_factory("up")
        port = h.free_port()
        ups = {"up": h.upstream_conf([up.address], **(upstream or {}))}
        ups.update(extra_upstreams or {})
        rts = routes if routes is not None else [h.route("all", "up", {"path_prefix": "/"})]
        cfg = h.gateway_config(port, ups, rts, limits=limits, workers=workers)
        gw = gateway_factory(cfg, env=env)
        return types.SimpleNamespace(gw=gw, up=up, port=port, cfg=cfg)

    return make

@pytest.fixture
def blackhole():
    """A listener whose accept queue is full, so that new connects hang (SYNs dropped)."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(ls.getsockname())
        except BlockingIOError:
            pass
        fillers.append(s)
    time.sleep(0.1)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(ls.getsockname())
        hangs = False
    except socket.timeout:
        hangs = True
    probe.close()
    assert hangs, "could not build a listener that makes connects hang"
    yield "127.0.0.1:%d" % ls.getsockname()[1]
    for s in fillers:
        s.close()
    ls.close()
