"""Running out of file descriptors must neither spin the CPU nor crash: the
listener pauses (docs/design.md) and accepting resumes once descriptors free up."""

import os
import socket
import subprocess
import time

import tg_harness as h


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def test_emfile_does_not_spin(tmp_path, upstream):
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([upstream.address])},
                           [h.route("all", "up", {"path_prefix": "/"})], workers=1,
                           limits={"header_timeout": "30s", "idle_timeout": "30s"})
    path = tmp_path / "gw.yaml"
    path.write_text(h.yaml_text(cfg))
    err = open(tmp_path / "gw.stderr", "w")
    proc = subprocess.Popen(["prlimit", "--nofile=48:48", h.BINARY, "-c", str(path)],
                            stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert h.wait_port(port, 10, proc)
        socks = []
        for _ in range(80):  # more than the gateway can hold
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        time.sleep(2.0)
        used = cpu_seconds(proc.pid) - before
        assert used < 0.5, "the gateway burnt %.2f s of CPU in 2 s at EMFILE" % used
        for s in socks:
            s.close()
        time.sleep(0.5)
        r = h.request(port, "GET", "/after")
        assert r.status == 200
        assert proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        err.close()
    assert "pausing accepts" in open(tmp_path / "gw.stderr").read()
