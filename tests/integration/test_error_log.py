"""The error log: `log:` level/format/path (reopened on SIGUSR1), -l wins over
log.level, upstream failures at warn with target, phase and errno plus the
request's worker/route/id, repeated identical errors held back, and no plugin
writing to stderr on its own."""

import glob
import json
import os
import re
import signal
import subprocess
import time

import tg_harness as h

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_for(path, needle, timeout=5):
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            text = ""
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError("%r not in %s:\n%s" % (needle, path, text))


def dead_config(port, dead, log):
    cfg = h.gateway_config(port, {"down": h.upstream_conf(["127.0.0.1:%d" % dead], retries=0)},
                           [h.route("broken", "down", {"path_prefix": "/"})])
    cfg["log"] = log
    return cfg


def test_json_file_and_upstream_failure_at_warn(gateway_factory, tmp_path):
    port, dead = h.free_port(), h.free_port()
    path = tmp_path / "error.log"
    gw = gateway_factory(dead_config(port, dead, {"level": "info", "format": "json", "path": str(path)}))
    r = h.request(port, "GET", "/x")
    assert r.status == 502
    text = wait_for(path, "connect failed")
    lines = [json.loads(l) for l in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "msg"} <= set(l) for l in lines)
    (fail,) = [l for l in lines if "connect failed" in l["msg"] and l["level"] == "warn"]
    assert fail["level"] == "warn"
    assert fail["msg"] == ("upstream down: target 127.0.0.1:%d: connect failed: Connection refused (errno 111)"
                           % dead)
    assert fail["route"] == "broken"
    assert fail["request_id"] == r.header("X-Request-Id")
    assert fail["worker"] in (0, 1)
    assert any(l["level"] == "notice" and "ready" in l["msg"] for l in lines)
    assert "connect failed" not in gw.stderr()


def test_repeated_identical_errors_held_back(gateway_factory, tmp_path):
    port, dead = h.free_port(), h.free_port()
    path = tmp_path / "error.log"
    gateway_factory(dead_config(port, dead, {"path": str(path)}))
    c = h.Conn(port)
    for _ in range(100):
        c.send(h.build_request("GET", "/x"))
        assert c.read_response().status == 502
    c.close()
    text = wait_for(path, "connect failed")
    # one line per worker thread per 10 s, not one per request
    assert 1 <= text.count("connect failed") <= 2, text


def test_text_level_and_reopen_on_sigusr1(gateway_factory, tmp_path, upstream):
    port = h.free_port()
    path = tmp_path / "error.log"
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])}, [h.route("a", "up")])
    cfg["log"] = {"level": "warn", "format": "text", "path": "error.log"}  # relative to the config
    gw = gateway_factory(cfg)
    assert h.request(port, "GET", "/x").status == 200
    time.sleep(0.2)
    assert "ready" not in path.read_text()  # a notice, below warn
    os.rename(path, tmp_path / "error.log.1")
    gw.signal(signal.SIGUSR1)
    deadline = time.time() + 5
    while time.time() < deadline and not path.exists():
        time.sleep(0.05)
    assert path.exists()
    cfg["log"]["level"] = "notice"
    with open(gw.cfg_path, "w") as f:
        f.write(h.yaml_text(cfg))
    gw.signal(signal.SIGHUP)
    text = wait_for(path, "reloaded")
    assert re.search(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[notice\] reloaded ", text, re.M)


def test_command_line_level_wins(tmp_path, upstream):
    port = h.free_port()
    path = tmp_path / "error.log"
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])}, [h.route("a", "up")])
    cfg["log"] = {"level": "error", "path": str(path)}
    cfg_path = tmp_path / "gw.yaml"
    cfg_path.write_text(h.yaml_text(cfg))
    for args, shown in (([], False), (["-l", "notice"], True)):
        p = subprocess.Popen([h.BINARY, "-c", str(cfg_path)] + args, stderr=subprocess.PIPE)
        try:
            assert h.wait_port(port, 10, p)
            time.sleep(0.2)
            assert ("tollgate ready" in path.read_text()) == shown
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(10) == 0
        path.write_text("")


def test_unwritable_log_path_fails_startup(tmp_path, upstream):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])}, [h.route("a", "up")])
    cfg["log"] = {"path": "/nonexistent/dir/error.log"}
    cfg_path = tmp_path / "gw.yaml"
    cfg_path.write_text(h.yaml_text(cfg))
    p = subprocess.run([h.BINARY, "-c", str(cfg_path)], stderr=subprocess.PIPE, timeout=10)
    assert p.returncode == 1
    assert b"cannot open /nonexistent/dir/error.log" in p.stderr


def test_no_plugin_writes_to_stderr_itself():
    """Plugins log through tg_log/tg_request_log (include/tollgate/log.h)."""
    for path in glob.glob(os.path.join(REPO, "plugins", "*", "*.c")):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                code = line.split("//", 1)[0]
                assert not re.search(r"\b(stderr|perror)\b", code), "%s:%d: %s" % (path, n, line.strip())
