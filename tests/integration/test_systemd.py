"""systemd integration without systemd: a unix datagram socket stands in
for $NOTIFY_SOCKET (sd_notify(3)), and `tollgate -s reload` is run as
ExecReload would run it."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import tg_harness as h

CONFIG = """\
listen:
  - address: "127.0.0.1:{port}"
upstreams:
  up:
    targets: ["127.0.0.1:{up}"]
routes:
  - name: {route}
    match: {{path_prefix: /}}
    upstream: up
"""


class Notify:
    """The socket systemd would listen on; collects every datagram."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if self.path.startswith("@"):
            self.sock.bind("\0" + self.path[1:])
        else:
            self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, key, timeout=10):
        """The first message not yet consumed that has key=..., as a dict."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.messages):
                if key in m:
                    del self.messages[: i + 1]
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %ss; got %r" % (key, timeout, self.messages))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.messages.append(dict(line.split("=", 1) for line in data.split("\n") if line))

    def drain(self):
        """Forgets every message received so far, queued ones included."""
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(4096)
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        self.messages.clear()

    def close(self):
        self.sock.close()


def start(tmp_path, gateway_factory, upstream, notify_path, **env):
    port = h.free_port()
    text = CONFIG.format(port=port, up=upstream.port, route="one")
    e = dict(os.environ, NOTIFY_SOCKET=str(notify_path), **env)
    gw = gateway_factory(text, env=e, port=port)
    return gw, text


def reload_cmd(gw, *extra):
    return subprocess.run([h.BINARY, "-c", gw.cfg_path, "-s", "reload", *extra], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30, env=dict(os.environ, MAINPID=str(gw.pid)))


def test_ready_reloading_stopping(tmp_path, gateway_factory, upstream):
    n = Notify(tmp_path / "notify.sock")
    try:
        gw, text = start(tmp_path, gateway_factory, upstream, tmp_path / "notify.sock")
        m = n.wait_for("READY")
        assert m["READY"] == "1"
        assert "workers" in m.get("STATUS", ""), m
        # READY comes once listeners and workers are up: the port answers.
        assert h.request(gw.port, "GET", "/x").status == 200
        # A plain SIGHUP: RELOADING=1 with the monotonic time, then READY=1.
        before = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        gw.signal(signal.SIGHUP)
        m = n.wait_for("RELOADING")
        assert m["RELOADING"] == "1"
        assert before <= int(m["MONOTONIC_USEC"]) <= time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        m = n.wait_for("READY")
        assert m["STATUS"] == "configuration reloaded", m
        # A reload that fails is still followed by READY=1 (the old config runs).
        with open(gw.cfg_path, "w") as f:
            f.write(text.replace("upstream: up", "upstream: nope"))
        gw.signal(signal.SIGHUP)
        n.wait_for("RELOADING")
        m = n.wait_for("READY")
        assert m["STATUS"].startswith("reload failed"), m
        assert h.request(gw.port, "GET", "/x").status == 200
        gw.signal(signal.SIGTERM)
        assert n.wait_for("STOPPING")["STOPPING"] == "1"
        assert gw.stop() == 0
    finally:
        n.close()


def test_abstract_socket_and_watchdog(tmp_path, gateway_factory, upstream):
    name = "@tollgate-test-%d" % os.getpid()
    n = Notify(name)
    try:
        gw, _ = start(tmp_path, gateway_factory, upstream, name, WATCHDOG_USEC="200000")
        n.wait_for("READY")
        t0 = time.monotonic()
        for _ in range(3):
            assert n.wait_for("WATCHDOG", timeout=2)["WATCHDOG"] == "1"
        # Every 100 ms (half of WATCHDOG_USEC): three in well under a second.
        assert time.monotonic() - t0 < 1.0
    finally:
        n.close()


STALL_CONFIG = """\
workers: 1
listen:
  - address: "127.0.0.1:{port}"
upstreams:
  up:
    targets: ["127.0.0.1:{up}"]
routes:
  - name: all
    match: {{path_prefix: /}}
    upstream: up
    plugins:
      - name: sample
        path: {sample}
        config: {{stall_path: /stall, stall: 2500ms}}
"""


def test_watchdog_not_petted_while_a_worker_hangs(tmp_path, gateway_factory, upstream):
    """A worker stuck in a blocking plugin call is a hang even though the
    main loop still runs: no WATCHDOG=1 until it comes back."""
    sample = os.path.join(os.path.dirname(h.BINARY), "tests", "sample.so")
    name = "@tollgate-stall-%d" % os.getpid()
    n = Notify(name)
    try:
        port = h.free_port()
        text = STALL_CONFIG.format(port=port, up=upstream.port, sample=sample)
        gw = gateway_factory(text, env=dict(os.environ, NOTIFY_SOCKET=name, WATCHDOG_USEC="400000"),
                             port=port)
        n.wait_for("READY")
        n.wait_for("WATCHDOG", timeout=2)
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
        # The worker is inside the plugin's sleep once the main thread says so.
        deadline = time.monotonic() + 1.5
        while "has not run its event loop" not in gw.stderr():
            assert time.monotonic() < deadline, gw.stderr()
            time.sleep(0.02)
        n.drain()
        with pytest.raises(AssertionError):
            n.wait_for("WATCHDOG", timeout=0.5)
        # Back from the stall: the request is answered and petting resumes.
        s.settimeout(5)
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        s.close()
        assert n.wait_for("WATCHDOG", timeout=2)["WATCHDOG"] == "1"
    finally:
        n.close()


def test_watchdog_for_another_pid_is_ignored(tmp_path, gateway_factory, upstream):
    n = Notify(tmp_path / "n.sock")
    try:
        gw, _ = start(tmp_path, gateway_factory, upstream, tmp_path / "n.sock", WATCHDOG_USEC="100000",
                      WATCHDOG_PID="1")
        n.wait_for("READY")
        with pytest.raises(AssertionError):
            n.wait_for("WATCHDOG", timeout=0.5)
    finally:
        n.close()


def test_reload_command_waits_for_the_result(tmp_path, gateway_factory, upstream):
    gw, text = start(tmp_path, gateway_factory, upstream, tmp_path / "none.sock")
    # A good config: exit 0 once the gateway runs it.
    with open(gw.cfg_path, "w") as f:
        f.write(text.replace("name: one", "name: two"))
    p = reload_cmd(gw)
    assert p.returncode == 0, p.stderr
    assert b"reloaded" in p.stderr
    assert "reloaded %s" % gw.cfg_path in gw.stderr()
    # A bad file: every error, exit 1, the gateway is not even asked.
    with open(gw.cfg_path, "w") as f:
        f.write(text.replace("upstream: up", "upstream: nope").replace("path_prefix", "path_prefx"))
    p = reload_cmd(gw)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "unknown upstream 'nope'" in err and "did you mean 'path_prefix'?" in err, err
    assert gw.stderr().count("reloading the configuration") == 1
    # A file that checks but that the gateway cannot apply (its listen port
    # is taken): the gateway says no, and so does the command.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        with open(gw.cfg_path, "w") as f:
            f.write(text + "  - name: other\n    match: {path: /o}\n    upstream: up\n")
            f.write("")
        with open(gw.cfg_path) as f:
            cfg = f.read()
        cfg = cfg.replace("listen:\n", "listen:\n  - address: \"127.0.0.1:%d\"\n" % busy.getsockname()[1], 1)
        with open(gw.cfg_path, "w") as f:
            f.write(cfg)
        p = reload_cmd(gw)
        assert p.returncode == 1, p.stderr
        assert b"could not reload" in p.stderr, p.stderr
    finally:
        busy.close()
    assert h.request(gw.port, "GET", "/x").status == 200


def test_reload_command_errors(tmp_path, gateway_factory, upstream):
    gw, _ = start(tmp_path, gateway_factory, upstream, tmp_path / "none.sock")
    p = subprocess.run([h.BINARY, "-c", gw.cfg_path, "-s", "reload"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30, env={k: v for k, v in os.environ.items() if k != "MAINPID"})
    assert p.returncode == 2 and b"needs the gateway's pid" in p.stderr
    p = subprocess.run([h.BINARY, "-c", gw.cfg_path, "-s", "restart"], stderr=subprocess.PIPE, timeout=10)
    assert p.returncode == 2
    # No such process.
    dead = subprocess.Popen(["true"])
    dead.wait()
    p = subprocess.run([h.BINARY, "-c", gw.cfg_path, "-s", "reload", "-p", str(dead.pid)], stderr=subprocess.PIPE,
                       timeout=10)
    assert p.returncode == 1 and b"No such process" in p.stderr, p.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_root_reloads_a_gateway_of_another_user(upstream):
    """sudo tollgate -s reload: the gateway (as nobody) can only answer a
    process of its own user, so the command becomes that user first."""
    d = tempfile.mkdtemp(prefix="tg-reload-")
    os.chmod(d, 0o755)
    port = h.free_port()
    cfg = os.path.join(d, "gw.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(port=port, up=upstream.port, route="one"))
    os.chmod(cfg, 0o644)
    proc = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", h.BINARY, "-c", cfg],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert h.wait_port(port, 10, proc), proc.stderr.read()
        p = subprocess.run([h.BINARY, "-c", cfg, "-s", "reload", "-p", str(proc.pid)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 0, p.stderr
        assert b"reloaded" in p.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        shutil.rmtree(d)


def test_repeated_sigterm_still_exits_cleanly(proxy):
    """A supervisor that repeats SIGTERM while the gateway shuts down (kill
    twice, systemd and a script both stopping it) must still see exit status
    0: once the signal events are gone, SIGTERM is blocked, not fatal."""
    for _ in range(5):
        px = proxy(workers=2)
        assert h.request(px.port, "GET", "/x").status == 200
        proc = px.gw.proc
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.0005)
        assert proc.wait(timeout=5) == 0
