"""Config ergonomics (issue 16): anchors and merge keys, include of conf.d/,
every error of a file at once with suggestions, fractional durations,
plugin errors that name plugin and route, -t that creates no file."""

import os
import re
import subprocess

import tg_harness as h


def check(path, *extra):
    p = subprocess.run([h.BINARY, "-t", "-c", str(path), *extra], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stderr.decode()


def error_lines(err):
    return [line for line in err.splitlines() if not line.startswith("tollgate: ")]


BROKEN = """\
listen:
  - address: "127.0.0.1:{port}"
limits:
  header_timeut: 10s
  body_timeout: 10x
upstreams:
  users:
    targets: ["127.0.0.1:9001"]
    retires: 2
routes:
  - name: a
    match: {{path_prefix: /a, hots: x}}
    upstream: user
  - name: b
    match: {{path_prefix: /b}}
    upstream: users
    plugins:
      - name: jwtt
      - name: request-log
        config: {{path: access.log, feilds: [status]}}
"""


def test_every_error_at_once_with_suggestions(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN.format(port=h.free_port()))
    rc, err = check(path)
    assert rc == 1, err
    p = str(path)
    assert error_lines(err) == [
        p + ":4:3: unknown key 'header_timeut' in limits (did you mean 'header_timeout'?)",
        p + ":5:17: expected a duration like 10s, got '10x'",
        p + ":9:5: unknown key 'retires' in upstream 'users' (did you mean 'retries'?)",
        p + ":12:30: unknown key 'hots' in match (did you mean 'host'?)",
        p + ":13:15: unknown upstream 'user' (did you mean 'users'?)",
        p + ":18:9: unknown plugin 'jwtt' (did you mean 'jwt'?)",
        p + ":20:36: unknown key 'feilds' (did you mean 'fields'?) [plugin 'request-log' in route 'b']",
    ], err
    assert "test failed" in err


def test_unknown_names_list_the_known_ones(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("listen:\n  - address: \"127.0.0.1:%d\"\n"
                    "upstreams:\n  alpha: {targets: [\"127.0.0.1:9001\"]}\n"
                    "  beta: {targets: [\"127.0.0.1:9002\"]}\n"
                    "routes:\n  - upstream: zzzzzz\n"
                    "plugins:\n  - name: qqqqqq\n" % h.free_port())
    rc, err = check(path)
    assert rc == 1
    assert "unknown upstream 'zzzzzz' (known: alpha, beta)" in err, err
    m = re.search(r"unknown plugin 'qqqqqq' \(known: ([a-z, -]+)\)", err)
    assert m, err
    assert {"jwt", "rate-limit", "request-log", "cors"} <= set(m.group(1).split(", ")), err


def test_errors_are_bounded(tmp_path):
    path = tmp_path / "many.yaml"
    text = "listen:\n  - address: \"127.0.0.1:%d\"\nlimits:\n" % h.free_port()
    text += "".join("  bogus_%d: 1\n" % i for i in range(25))
    path.write_text(text)
    rc, err = check(path)
    assert rc == 1
    lines = err.splitlines()
    assert len([x for x in lines if "unknown key 'bogus_" in x]) == 20, err
    assert "tollgate: 5 more errors not shown (the first 20 are)" in lines, err


def test_plugin_error_names_the_plugin_and_the_global_chain(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("listen:\n  - address: \"127.0.0.1:%d\"\n"
                    "plugins:\n  - name: request-log\n    config: {fields: [status]}\n" % h.free_port())
    rc, err = check(path)
    assert rc == 1
    assert "%s:5:13: missing required key 'path' (a file or \"stdout\") [plugin 'request-log' in the global plugins]" % path in err, err


def test_anchors_merge_keys_and_fractional_durations_run(tmp_path, gateway_factory, upstream):
    port = h.free_port()
    text = """\
x-upstream-defaults: &defaults
  connect_timeout: 0.5s
  timeout: 1.5s
  retries: 0
listen:
  - address: "127.0.0.1:{port}"
limits:
  header_timeout: 2.5s
upstreams:
  users:
    <<: *defaults
    targets: &targets ["127.0.0.1:{up}"]
  orders:
    <<: *defaults
    timeout: 0.25s
    targets: *targets
routes:
  - name: users
    match: {{path_prefix: /users}}
    upstream: users
  - name: orders
    match: {{path_prefix: /orders}}
    upstream: orders
""".format(port=port, up=upstream.port)
    path = tmp_path / "anchors.yaml"
    path.write_text(text)
    rc, err = check(path)
    assert rc == 0, err
    # The gateway itself, with the effective values: GET /users reaches the upstream.
    gw = gateway_factory(text, port=port)
    r = h.request(gw.port, "GET", "/users/1")
    assert r.status == 200, r
    r = h.request(gw.port, "GET", "/orders/1")
    assert r.status == 200, r


def test_include_conf_d(tmp_path, gateway_factory, upstream):
    port = h.free_port()
    confd = tmp_path / "conf.d"
    confd.mkdir()
    (confd / "10-users.yaml").write_text(
        "upstreams:\n  users: {targets: [\"127.0.0.1:%d\"]}\n"
        "routes:\n  - name: users\n    match: {path_prefix: /users}\n    upstream: users\n" % upstream.port)
    (confd / "20-orders.yaml").write_text(
        "routes:\n  - name: orders\n    match: {path_prefix: /orders}\n    upstream: users\n")
    main = "listen:\n  - address: \"127.0.0.1:%d\"\ninclude: [\"conf.d/*.yaml\"]\n" % port
    path = tmp_path / "main.yaml"
    path.write_text(main)
    rc, err = check(path)
    assert rc == 0, err
    gw = gateway_factory(main, port=port)
    assert h.request(gw.port, "GET", "/orders/7").status == 200
    assert h.request(gw.port, "GET", "/nothing").status == 404
    # A mistake in an included file is reported at its own FILE:LINE:COL.
    (confd / "20-orders.yaml").write_text(
        "routes:\n  - name: orders\n    match: {path_prefix: /orders}\n    upstream: nope\n")
    rc, err = check(path)
    assert rc == 1
    assert "%s:4:15: unknown upstream 'nope' (known: users)" % (confd / "20-orders.yaml") in err, err


def test_check_creates_no_file(tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    path = tmp_path / "log.yaml"
    path.write_text("listen:\n  - address: \"127.0.0.1:%d\"\n"
                    "plugins:\n  - name: request-log\n    config: {path: logs/access.log}\n" % h.free_port())
    rc, err = check(path)
    assert rc == 0, err
    assert os.listdir(logdir) == []
    # A directory that is not there is still an error, as at start.
    path.write_text(path.read_text().replace("logs/access.log", "nowhere/access.log"))
    rc, err = check(path)
    assert rc == 1
    assert "cannot open log file" in err and "nowhere/access.log" in err, err
    assert not (tmp_path / "nowhere").exists()
