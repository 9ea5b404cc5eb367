"""Command line: --version, --help, -t (config test) with file:line:col errors, ${ENV}."""

import os
import re
import subprocess

import pytest

import tg_harness as h

GOOD = """\
workers: 2
listen:
  - address: "127.0.0.1:{port}"
limits:
  header_timeout: 10s
  idle_timeout: 60s
  body_timeout: 60s
  max_header_size: 16KiB
  max_body_size: 10MiB
trusted_proxies: ["10.0.0.0/8"]
upstreams:
  users:
    targets: ["127.0.0.1:{up1}", "127.0.0.1:{up2}"]
    balance: round_robin
    keepalive: 64
    connect_timeout: 1s
    timeout: 30s
    retries: 1
    max_fails: 3
    fail_timeout: 10s
routes:
  - name: users
    match:
      host: "api.example.com"
      path_prefix: /api/users
      methods: [GET, POST]
      headers: {{ X-Env: canary }}
    strip_prefix: /api
    upstream: users
  - name: versioned
    match:
      path_regex: "^/v[0-9]+/users/[0-9]+$"
    upstream: users
"""


def good_text(port=None):
    return GOOD.format(port=port or h.free_port(), up1=h.free_port(), up2=h.free_port())


def pos_of(text, needle):
    """1-based (line, col) of the first occurrence of needle."""
    i = text.index(needle)
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


def write(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def env_without(*names):
    env = dict(os.environ)
    for n in names:
        env.pop(n, None)
    return env


def test_version():
    p = subprocess.run([h.BINARY, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert p.returncode == 0
    assert re.search(rb"\d+\.\d+", p.stdout + p.stderr), (p.stdout, p.stderr)


def test_help():
    p = subprocess.run([h.BINARY, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert p.returncode == 0
    assert b"-c" in p.stdout + p.stderr, (p.stdout, p.stderr)


def test_check_good_config(tmp_path):
    rc, err = h.run_check(write(tmp_path, good_text()))
    assert rc == 0, err


def _bad(original, replacement, needle, count=1, last=False):
    def make(text):
        if last:
            i = text.rindex(original)
            return text[:i] + replacement + text[i + len(original):]
        assert text.count(original) >= 1
        return text.replace(original, replacement, count)
    return make, needle


BAD_CASES = {
    "unknown_key": _bad("  idle_timeout: 60s\n", "  idle_timeout: 60s\n  bogus_key: 1\n", "bogus_key"),
    "unknown_key_in_upstream": _bad("    keepalive: 64\n", "    keepalive: 64\n    keep_alive: 64\n", "keep_alive"),
    "bad_duration": _bad("header_timeout: 10s", "header_timeout: 10x", "10x"),
    "bad_duration_upstream": _bad("connect_timeout: 1s", "connect_timeout: 1sec", "1sec"),
    "bad_size": _bad("max_header_size: 16KiB", "max_header_size: 16XB", "16XB"),
    "unknown_upstream": _bad("    upstream: users\n", "    upstream: nope\n", "nope", last=True),
    "invalid_regex": _bad('path_regex: "^/v[0-9]+/users/[0-9]+$"', "path_regex: ^/v[0-9]+/users/(unclosed",
                          "^/v[0-9]+/users/(unclosed"),
    "unset_env": _bad("    timeout: 30s\n", "    timeout: ${TG_IT_SURELY_UNSET_VAR}\n", "${TG_IT_SURELY_UNSET_VAR}"),
}

# Where the message must say what is wrong, this is a word it must contain.
BAD_WORDS = {"unknown_key": "bogus_key", "unknown_key_in_upstream": "keep_alive", "unknown_upstream": "nope",
             "unset_env": "TG_IT_SURELY_UNSET_VAR"}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_check_bad_config_reports_position(tmp_path, case):
    make, needle = BAD_CASES[case]
    text = make(good_text())
    path = write(tmp_path, text)
    line, col = pos_of(text, needle)
    rc, err = h.run_check(path, env=env_without("TG_IT_SURELY_UNSET_VAR"))
    assert rc == 1, "rc=%r stderr=%r" % (rc, err)
    m = re.search(r"^" + re.escape(path) + r":(\d+):(\d+): (.*)$", err, re.M)
    assert m, "no '%s:LINE:COL: ' line in stderr: %r" % (path, err)
    got_line, got_col = int(m.group(1)), int(m.group(2))
    assert got_line == line, "line %d, expected %d: %r" % (got_line, line, m.group(0))
    if case == "invalid_regex":
        # The node's column, or the column of the offending character inside the regex.
        assert col <= got_col <= col + len(needle), "col %d, expected %d..%d: %r" % (
            got_col, col, col + len(needle), m.group(0))
    else:
        assert got_col == col, "col %d, expected %d: %r" % (got_col, col, m.group(0))
    if case in BAD_WORDS:
        assert BAD_WORDS[case] in m.group(3), m.group(0)


def test_env_substitution(tmp_path, gateway_factory, upstream):
    port = h.free_port()
    text = GOOD.format(port="${TG_IT_PORT}", up1="${TG_IT_UP_PORT}", up2="${TG_IT_UP_PORT}")
    text = text.replace("    timeout: 30s", "    timeout: ${TG_IT_TIMEOUT}")
    text += ("  - name: all\n    match:\n      path_prefix: /\n    upstream: users\n")
    env = dict(os.environ, TG_IT_PORT=str(port), TG_IT_UP_PORT=str(upstream.port), TG_IT_TIMEOUT="5s")
    path = write(tmp_path, text)
    rc, err = h.run_check(path, env=env)
    assert rc == 0, err
    gw = gateway_factory(text, env=env, port=port)
    r = h.request(gw.port, "GET", "/env/check")
    assert r.status == 200, r
    assert r.json()["target"] == "/env/check"
