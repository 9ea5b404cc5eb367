"""listen[].backlog (issue 10, item 13): every worker's listening socket keeps
the configured backlog (default 4096, capped by net.core.somaxconn). Before,
evconnlistener_new(..., -1, fd) re-listened with 128 over it, and a burst of
connections dropped SYNs.

`ss -ltn` shows a listening socket's backlog as its Send-Q (Linux)."""

import shutil
import signal
import subprocess
import time

import pytest

import tg_harness as h

pytestmark = pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")


def _somaxconn():
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


def _backlogs(port):
    """Send-Q of every TCP socket listening on 127.0.0.1:port."""
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout
    return sorted(int(line.split()[2]) for line in out.splitlines() if line.strip())


def _config(port, up, backlog=None, workers=2):
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           [h.route("all", "up", {"path_prefix": "/"})], workers=workers)
    if backlog is not None:
        cfg["listen"][0]["backlog"] = backlog
    return cfg


def test_default_backlog_is_4096(gateway_factory, upstream):
    port = h.free_port()
    gw = gateway_factory(_config(port, upstream))
    assert _backlogs(port) == [min(4096, _somaxconn())] * 2
    assert h.request(port, "GET", "/x").status == 200
    assert "capped" not in gw.stderr() or _somaxconn() < 4096


def test_configured_backlog(gateway_factory, upstream):
    port = h.free_port()
    gateway_factory(_config(port, upstream, backlog=100))
    assert _backlogs(port) == [100, 100]


def test_backlog_capped_by_somaxconn_and_logged(gateway_factory, upstream):
    cap = _somaxconn()
    if cap >= 65535:
        pytest.skip("net.core.somaxconn is %d: nothing to cap" % cap)
    port = h.free_port()
    gw = gateway_factory(_config(port, upstream, backlog=65535))
    assert _backlogs(port) == [cap, cap]
    assert "backlog 65535 capped at net.core.somaxconn = %d" % cap in gw.stderr()


def test_reload_changes_backlog_of_kept_listener(gateway_factory, upstream):
    port = h.free_port()
    gw = gateway_factory(_config(port, upstream, backlog=100))
    assert _backlogs(port) == [100, 100]
    with open(gw.cfg_path, "w") as f:
        f.write(h.yaml_text(_config(port, upstream, backlog=200)))
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while _backlogs(port) != [200, 200] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _backlogs(port) == [200, 200], gw.stderr()
    assert h.request(port, "GET", "/x").status == 200


@pytest.mark.parametrize("value,message", [
    ("0", "backlog must be between 1 and 65535"),
    ("65536", "backlog must be between 1 and 65535"),
    ("-1", "expected an integer, got '-1'"),
    ("lots", "expected an integer, got 'lots'"),
])
def test_invalid_backlog_rejected(tmp_path, upstream, value, message):
    port = h.free_port()
    text = h.yaml_text(_config(port, upstream)).replace(
        'address: 127.0.0.1:%d\n' % port, 'address: 127.0.0.1:%d\n    backlog: %s\n' % (port, value))
    assert "backlog" in text
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    line = text.splitlines().index("    backlog: %s" % value) + 1
    rc, err = h.run_check(path)
    assert rc != 0
    assert "%s:%d:14: %s" % (path, line, message) in err, err
