"""Self-checks of the test upstream and client, without the gateway: when these
fail, the harness is broken, not tollgate."""

import hashlib

import tg_harness as h
from upstream import chunked_payload, pattern_bytes, pattern_sha256


def test_yaml_writer():
    text = h.yaml_text({"a": 1, "b": ["x", {"c": "1s", "d": "*.example.com"}], "e": {"f": "^/v[0-9]+$"},
                        "g": [], "h": "127.0.0.1:80"})
    assert text == ('a: 1\nb:\n  - x\n  - c: 1s\n    d: "*.example.com"\ne:\n  f: "^/v[0-9]+$"\n'
                    'g: []\nh: 127.0.0.1:80\n')


def test_pattern_is_consistent():
    assert hashlib.sha256(pattern_bytes(300000)).hexdigest() == pattern_sha256(300000)
    assert pattern_bytes(600)[251:502] == pattern_bytes(251)


def test_upstream_echo_keepalive_and_pipelining(upstream):
    with h.Conn(upstream.port) as c:
        c.send(h.build_request("POST", "/x?q=1", [("X-A", "1")], b"hello")
               + h.build_request("GET", "/y", [("X-B", "2")]))
        r1 = c.read_response()
        r2 = c.read_response()
    j1, j2 = r1.json(), r2.json()
    assert (j1["method"], j1["target"], j1["body_len"]) == ("POST", "/x?q=1", 5)
    assert j1["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert ["X-A", "1"] in j1["headers"]
    assert (j2["target"], j2["conn_id"], j2["req_no"]) == ("/y", j1["conn_id"], 2)
    assert upstream.connections == 1 and upstream.requests == 2


def test_upstream_chunked_request_and_response(upstream):
    data = [b"a" * 5, b"b" * 70000]
    with h.Conn(upstream.port) as c:
        c.send(h.build_request("POST", "/chunked/4", [("Transfer-Encoding", "chunked")])
               + h.chunk_encode(data))
        r = c.read_response()
    assert r.chunked and r.body == chunked_payload(4) and r.chunk_sizes == [len(x) for x in
                                                                             [b"chunk 0;", b"chunk 1;" * 2,
                                                                              b"chunk 2;" * 3, b"chunk 3;" * 4]]
    rec = upstream.records[0]
    assert rec["chunked"] and rec["chunk_sizes"] == [5, 70000] and rec["body_len"] == 70005


def test_upstream_special_paths(upstream):
    r = h.request(upstream.port, "GET", "/bytes/200000")
    assert r.body == pattern_bytes(200000)
    r = h.request(upstream.port, "GET", "/status/418")
    assert r.status == 418
    with h.Conn(upstream.port) as c:
        c.send(h.build_request("GET", "/close-mid"))
        r = c.read_response()
        assert not r.complete and r.body == b"0123456789"
    with h.Conn(upstream.port) as c:
        c.send(h.build_request("GET", "/no-length/5000"))
        r = c.read_response()
        assert r.body == pattern_bytes(5000)
    with h.Conn(upstream.port) as c:
        c.send(h.build_request("HEAD", "/head-test") + h.build_request("GET", "/204") + h.build_request("GET", "/x"))
        assert c.read_response("HEAD").header("content-length") == "11"
        assert c.read_response().status == 204
        assert c.read_response().status == 200
    upstream.raw["/raw"] = (b"HTTP/1.1 299 X\r\nContent-Length: 2\r\n\r\nok", True)
    r = h.request(upstream.port, "GET", "/raw")
    assert (r.status, r.body) == (299, b"ok")


def test_upstream_modes(upstream_factory):
    never = upstream_factory("never", mode="never")
    with h.Conn(never.port, timeout=0.5) as c:
        c.send(h.build_request("GET", "/"))
        assert c.read_available(0.5) == b""
    assert never.heads == 1 and never.requests == 0
    closer = upstream_factory("closer", mode="close")
    with h.Conn(closer.port) as c:
        c.send(h.build_request("GET", "/"))
        c.expect_closed()
    assert closer.heads == 1
