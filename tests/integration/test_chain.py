"""The plugin chain through the real binary, driven by the out-of-tree sample
plugin (tests/plugins/sample.c, built beside the binary as tests/sample.so)."""

import os
import socket
import time

import pytest

import tg_harness as h

SAMPLE = os.path.join(os.path.dirname(h.BINARY), "tests", "sample.so")


def sample(tag=None, **config):
    if tag is not None:
        config["tag"] = tag
    return {"name": "sample", "path": SAMPLE, "config": config}


@pytest.fixture
def chain(gateway_factory, upstream_factory):
    def make(global_plugins, routes):
        up = upstream_factory("up")
        port = h.free_port()
        cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, routes, workers=1)
        cfg["plugins"] = global_plugins
        gw = gateway_factory(cfg)
        return port, up

    return make


def r(name, prefix, plugins=None):
    route = h.route(name, "up", {"path_prefix": prefix})
    if plugins is not None:
        route["plugins"] = plugins
    return route


def test_chain_runs_in_written_order(chain):
    port, up = chain([], [r("a", "/a", [sample("r1"), sample("r2"), sample("r3")])])
    resp = h.request(port, "GET", "/a/x")
    assert resp.status == 200
    seen = dict((k.lower(), v) for k, v in resp.json()["headers"])
    # request phase in order, response phase last plugin first
    assert seen["x-chain"] == "r1,r2,r3"
    assert resp.header("X-Chain-Resp") == "r3,r2,r1"


def test_client_connection_cannot_remove_a_plugin_set_header(chain):
    """The client's Connection names fields *it* sent; its X-Chain is gone before the plugins
    run (hop-by-hop), and the X-Chain the plugin sets reaches the upstream."""
    port, up = chain([], [r("a", "/a", [sample("r1")])])
    resp = h.request(port, "GET", "/a/x", [("Connection", "X-Chain"), ("X-Chain", "client")])
    assert resp.status == 200, resp
    seen = [(k.lower(), v) for k, v in resp.json()["headers"]]
    assert [v for k, v in seen if k == "x-chain"] == ["r1"], seen


def test_global_chain_and_route_replacement(chain):
    # a route entry with config: for a global plugin's name replaces that instance
    port, up = chain([sample("g")], [r("plain", "/plain"), r("own", "/own", [sample("mine")])])
    assert h.request(port, "GET", "/plain/x").header("X-Chain-Resp") == "g"
    assert h.request(port, "GET", "/own/x").header("X-Chain-Resp") == "mine"


def test_plugin_answers_early_and_upstream_never_sees_it(chain):
    port, up = chain([], [r("a", "/a", [sample("r1", respond_path="/a/early", respond_status=418)])])
    before = up.requests
    resp = h.request(port, "GET", "/a/early")
    assert resp.status == 418
    assert resp.body == b"answered by the sample plugin\n"
    assert resp.header("X-Chain-Resp") == "r1"
    assert resp.header("X-Request-Id")
    assert up.requests == before


def test_paused_plugin_resumes_from_timer(chain):
    port, up = chain([], [r("a", "/a", [sample("p", pause="300ms"), sample("after")])])
    t0 = time.monotonic()
    resp = h.request(port, "GET", "/a/x")
    elapsed = time.monotonic() - t0
    assert resp.status == 200
    assert elapsed >= 0.28
    seen = dict((k.lower(), v) for k, v in resp.json()["headers"])
    assert seen["x-chain"] == "p,after"


def test_client_leaving_while_paused_is_cleaned_up(chain):
    port, up = chain([], [r("a", "/a", [sample("p", pause="500ms")])])
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(h.build_request("GET", "/a/x"))
        s.close()
    time.sleep(0.8)  # the timers fire after the requests are gone: must be cancelled
    resp = h.request(port, "GET", "/a/after")
    assert resp.status == 200


def test_route_switches_global_plugin_off(chain):
    port, up = chain([sample("g")], [r("off", "/off", [{"name": "sample", "enabled": False}]), r("on", "/on")])
    on = h.request(port, "GET", "/on/x")
    off = h.request(port, "GET", "/off/x")
    assert on.header("X-Chain-Resp") == "g"
    assert off.header("X-Chain-Resp") is None
    assert "x-chain" not in [k.lower() for k, v in off.json()["headers"]]


def test_streaming_body_transform_rechunks(chain):
    port, up = chain([], [r("a", "/a", [sample("t", upper_body=True)])])
    resp = h.request(port, "GET", "/a/hello")
    assert resp.status == 200
    assert resp.header("Transfer-Encoding") == "chunked"
    assert b'"METHOD": "GET"' in resp.body or b'"METHOD":"GET"' in resp.body


def test_buffered_body_gets_exact_length(chain):
    port, up = chain([], [r("a", "/a", [sample("b", buffer_body="1MiB")])])
    resp = h.request(port, "GET", "/a/hello")
    assert resp.status == 200
    assert resp.body.endswith(b"!")
    assert int(resp.header("Content-Length")) == len(resp.body)


def test_plugin_without_body_request_keeps_framing(chain):
    port, up = chain([], [r("a", "/a", [sample("t")])])
    resp = h.request(port, "GET", "/a/hello")
    assert resp.header("Content-Length") is not None


def test_plugin_config_error_points_at_its_line(tmp_path):
    text = """workers: 1
listen:
  - address: "127.0.0.1:1"
upstreams:
  up: { targets: ["127.0.0.1:2"] }
routes:
  - name: a
    upstream: up
    plugins:
      - name: sample
        path: %s
        config:
          pause: 10x
""" % SAMPLE
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    rc, err = h.run_check(p)
    assert rc == 1
    assert err.startswith("%s:13:18: " % p), err


def test_unknown_plugin_is_a_config_error(tmp_path):
    text = """listen:
  - address: "127.0.0.1:1"
upstreams:
  up: { targets: ["127.0.0.1:2"] }
plugins:
  - name: no-such-plugin
routes:
  - { name: a, upstream: up }
"""
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    rc, err = h.run_check(p)
    assert rc == 1
    assert err.startswith("%s:6:5: unknown plugin 'no-such-plugin'" % p), err

