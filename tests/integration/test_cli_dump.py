"""tollgate -T (the effective config) and -V (build information)."""

import os
import re
import subprocess

import yaml

import tg_harness as h


def run(*args, env=None):
    p = subprocess.run([h.BINARY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


MAIN = """\
x-fast: &fast
  timeout: 1.5s
  retries: 0
listen:
  - address: "127.0.0.1:{port}"
admin:
  address: "127.0.0.1:{admin}"
  token: "${{TG_IT_ADMIN_TOKEN}}"
include: ["conf.d/*.yaml"]
upstreams:
  users:
    <<: *fast
    targets: ["127.0.0.1:9001"]
routes:
  - name: users
    match:
      path_prefix: /users
      headers: {{X-Internal-Key: "routing-secret"}}
    upstream: users
"""

ORDERS = """\
upstreams:
  orders:
    targets: ["127.0.0.1:9002"]
routes:
  - name: orders
    match: {path_prefix: /orders}
    upstream: orders
    plugins:
      - name: request-log
        config: {path: stdout}
"""


def write_tree(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "orders.yaml").write_text(ORDERS)
    path = tmp_path / "main.yaml"
    path.write_text(MAIN.format(port=h.free_port(), admin=h.free_port()))
    return path


def test_dump_is_the_effective_config(tmp_path):
    path = write_tree(tmp_path)
    token = "a-very-secret-admin-token-0123456789"
    rc, out, err = run("-T", "-c", str(path), env=dict(os.environ, TG_IT_ADMIN_TOKEN=token))
    assert rc == 0, err
    assert token not in out and "routing-secret" not in out
    doc = yaml.safe_load(out)
    # includes merged, anchors expanded, the x- key gone
    assert list(doc["upstreams"]) == ["users", "orders"]
    assert [r["name"] for r in doc["routes"]] == ["users", "orders"]
    assert "x-fast" not in doc and "include" not in doc
    users = doc["upstreams"]["users"]
    assert users["timeout"] == "1.5s" and users["retries"] == 0
    # defaults filled (and marked), auto resolved
    assert users["keepalive"] == 32 and users["connect_timeout"] == "1s"
    assert "keepalive: 32  # default" in out
    assert doc["limits"]["header_timeout"] == "10s"
    assert isinstance(doc["workers"], int) and doc["workers"] >= 1
    assert doc["listen"][0]["backlog"] == 4096
    # secrets masked, plugin configs shown
    assert doc["admin"]["token"] == "***"
    assert doc["routes"][0]["match"]["headers"] == {"X-Internal-Key": "***"}
    assert doc["routes"][1]["plugins"][0]["config"]["path"] == "stdout"


def test_dump_reads_back(tmp_path):
    """What -T prints is itself a config that loads to the same dump."""
    path = write_tree(tmp_path)
    text = path.read_text().replace("  token: \"${TG_IT_ADMIN_TOKEN}\"\n", "")
    path.write_text(text)
    rc, out, err = run("-T", "-c", str(path))
    assert rc == 0, err
    again = tmp_path / "again.yaml"
    again.write_text(out)
    rc2, out2, err2 = run("-T", "-c", str(again))
    assert rc2 == 0, err2
    strip = lambda s: "\n".join(line for line in s.splitlines() if not line.startswith("# "))
    assert yaml.safe_load(strip(out2)) == yaml.safe_load(strip(out))


def test_dump_of_a_bad_config_fails_like_check(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("listen: []\nlimits: {idle_timeout: 0.5ms}\n")
    rc, out, err = run("-T", "-c", str(path))
    assert rc == 1
    assert out == ""
    assert "%s:2:24: duration '0.5ms' is finer than a millisecond" % path in err, err
    assert "%s:1:9: expected at least one listen address" % path in err, err


def test_build_info():
    rc, out, err = run("-V")
    assert rc == 0, err
    assert re.match(r"tollgate \d+\.\d+\.\d+ \(git [0-9a-f]{7,}(-dirty)?\)\n", out) or \
        re.match(r"tollgate \d+\.\d+\.\d+ \(git not a git checkout\)\n", out), out
    assert re.search(r"^built with (gcc|clang) \d", out, re.M), out
    for lib in ("libevent 2.", "OpenSSL 3.", "PCRE2 10.", "libyaml 0.", "hiredis ", "jansson 2."):
        assert "  " + lib in out, (lib, out)
    m = re.search(r"^plugins in (\S+) \(this core: API (\d+)\.(\d+)\):$", out, re.M)
    assert m, out
    api = "API %s.%s" % (m.group(2), m.group(3))
    for name in ("cors", "headers", "ip-rules", "jwt", "key-auth", "rate-limit", "request-log",
                 "response-shape"):
        assert re.search(r"^  %s \d+\.\d+\.\d+ \(%s\)$" % (re.escape(name), api), out, re.M), (name, out)
