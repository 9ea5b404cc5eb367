"""Every request head the gateway rejects before routing gets exactly one reply,
carrying `Connection: close`, and then the connection is closed: the bytes after
a head we refused cannot be trusted to start a request (issue 10, item 1).

Each case sends the bad head followed by a valid pipelined request on the same
connection and checks: one response with the expected status, `Connection:
close`, EOF with nothing after it, and the upstream never saw the pipelined
request. The cases cover every rejection of src/http_parser.c (requests),
src/request_head.c (target forms, Host/authority, path) and src/conn.c (431,
408)."""

import os
import time

import pytest

import tg_harness as h

AFTER = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"


def _req(line, *fields):
    head = line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"
    return head


def _get(target, host=b"x"):
    return _req(b"GET " + target + b" HTTP/1.1", b"Host: " + host)


CASES = {
    # ---- src/http_parser.c: request line ----
    "leading_empty_lines": (b"\r\n" * 5 + _get(b"/"), 400),
    "bare_lf_request_line": (b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400),
    "bare_cr_request_line": (b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
    "junk_after_version": (b"GET / HTTP/1.1x\r\nHost: x\r\n\r\n", 400),
    "method_leading_space": (b" GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "method_tab": (b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "method_bad_char": (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "two_spaces_before_target": (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "target_ctl": (b"GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "target_non_ascii": (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "target_space": (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "missing_version": (b"GET /\r\nHost: x\r\n\r\n", 400),
    "version_lowercase": (b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
    "version_garbage": (b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400),
    "version_2_0": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "version_1_2": (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    "version_0_9": (b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505),
    "target_too_long": (_get(b"/" + b"a" * 8192), 414),
    "asterisk_without_options": (_get(b"*"), 400),
    "relative_target": (_get(b"foo"), 400),
    # ---- src/http_parser.c: header section ----
    "obs_fold": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-A: a", b" b"), 400),
    "too_many_fields": (_req(b"GET / HTTP/1.1", b"Host: x", *[b"X-%d: 1" % i for i in range(12)]), 431),
    "space_before_colon": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-A : 1"), 400),
    "line_without_colon": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-A"), 400),
    "empty_field_name": (_req(b"GET / HTTP/1.1", b"Host: x", b": 1"), 400),
    "field_name_bad_char": (_req(b"GET / HTTP/1.1", b"Host: x", b"X@Y: 1"), 400),
    "value_ctl": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-A: a\x01b"), 400),
    "value_del": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-A: a\x7fb"), 400),
    "value_nul": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-A: a\x00b"), 400),
    "bare_lf_field": (b"GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", 400),
    "bare_cr_field": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\r\n\r\n", 400),
    "cl_invalid": (_req(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 1x"), 400),
    "cl_too_large": (_req(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 99999999999999999999"), 400),
    "cl_conflict": (_req(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 1", b"Content-Length: 2"), 400),
    "cl_empty_element": (_req(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 1,,1"), 400),
    "te_in_http10": (_req(b"POST / HTTP/1.0", b"Host: x", b"Transfer-Encoding: chunked"), 400),
    "te_chunked_twice": (_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked, chunked"), 400),
    "te_unsupported": (_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: gzip"), 400),
    "te_empty": (_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: ,"), 400),
    "cl_and_te": (_req(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 0", b"Transfer-Encoding: chunked"),
                  400),
    "missing_host": (_req(b"GET / HTTP/1.1", b"X-A: 1"), 400),
    "duplicate_host": (_req(b"GET / HTTP/1.1", b"Host: x", b"Host: x"), 400),
    # ---- Host validation (src/host.c, item 13) ----
    "host_percent": (_get(b"/", b"a%41.example"), 400),
    "host_percent_dot": (_get(b"/", b"example%2ecom"), 400),
    "host_brackets_name": (_get(b"/", b"[foo]"), 400),
    "host_brackets_name_port": (_get(b"/", b"[foo]:80"), 400),
    "host_brackets_ipv4": (_get(b"/", b"[127.0.0.1]"), 400),
    "host_ipv6_zone": (_get(b"/", b"[fe80::1%25eth0]"), 400),
    "host_ipv6_unbracketed": (_get(b"/", b"::1"), 400),
    "host_port_alpha": (_get(b"/", b"x:http"), 400),
    "host_port_zero": (_get(b"/", b"x:0"), 400),
    "host_port_out_of_range": (_get(b"/", b"x:65536"), 400),
    "host_port_empty": (_get(b"/", b"x:"), 400),
    "host_port_twice": (_get(b"/", b"x:80:80"), 400),
    "host_only_port": (_get(b"/", b":80"), 400),
    "host_userinfo": (_get(b"/", b"user@x"), 400),
    "host_comma": (_get(b"/", b"a,b"), 400),
    "host_space": (_get(b"/", b"a b"), 400),
    "host_slash": (_get(b"/", b"a/b"), 400),
    "host_empty_label": (_get(b"/", b"a..b"), 400),
    "host_numeric_shorthand": (_get(b"/", b"127.1"), 400),
    "host_numeric_hex": (_get(b"/", b"0x7f.0.0.1"), 400),
    # ---- src/request_head.c: request-target forms ----
    "connect_authority_form": (b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    "connect_origin_form": (_req(b"CONNECT / HTTP/1.1", b"Host: x"), 405),
    "connect_lowercase": (_req(b"connect x:443 HTTP/1.1", b"Host: x"), 400),
    "options_asterisk": (_req(b"OPTIONS * HTTP/1.1", b"Host: x"), 400),
    "get_authority_form": (_get(b"x:443"), 400),
    "post_authority_form": (_req(b"POST x:443 HTTP/1.1", b"Host: x", b"Content-Length: 0"), 400),
    "mailto_target": (_get(b"mailto:a@b"), 400),
    "ftp_absolute": (_get(b"ftp://x/"), 400),
    "absolute_userinfo": (_get(b"http://u@x/"), 400),
    "absolute_userinfo_password": (_get(b"http://u:p@x/"), 400),
    "absolute_empty_userinfo": (_get(b"http://@x/"), 400),
    "absolute_empty_authority": (_get(b"http:///a"), 400),
    "absolute_scheme_only": (_get(b"http://"), 400),
    "absolute_empty_authority_query": (_get(b"https://?a=1"), 400),
    "absolute_port_zero": (_get(b"http://x:0/"), 400),
    "absolute_port_alpha": (_get(b"http://x:abc/"), 400),
    "absolute_port_empty": (_get(b"http://x:/"), 400),
    "absolute_brackets_name": (_get(b"http://[foo]/"), 400),
    "absolute_percent_host": (_get(b"http://a%41/"), 400),
    "absolute_numeric_shorthand": (_get(b"http://127.1/"), 400),
    "absolute_fragment_in_authority": (_get(b"http://x#y/"), 400),
    # ---- src/request_head.c: path ----
    "fragment": (_get(b"/a#b"), 400),
    "encoded_slash": (_get(b"/a%2Fb"), 400),
    "encoded_nul": (_get(b"/a%00b"), 400),
    "bad_percent": (_get(b"/a%zz"), 400),
    "semicolon": (_get(b"/a;b"), 400),
    "backslash": (_get(b"/a\\b"), 400),
    "absolute_encoded_slash": (_get(b"http://x/a%2fb"), 400),
    # ---- src/conn.c ----
    "head_too_large_no_end": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * (20 * 1024), 431),
    "head_too_large_complete": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-A: " + b"a" * (20 * 1024)), 431),
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    from upstream import UpstreamServer
    up = UpstreamServer("up")
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           [h.route("all", "up", {"path_prefix": "/"})],
                           limits={"max_headers": 10, "header_timeout": "1s"}, workers=1)
    gw = h.Gateway(cfg, tmp_path_factory.mktemp("head_errors"), port).start()
    yield gw, up
    up.stop()
    gw.check_clean_exit()


def _one_reply_then_close(port, data, status):
    with h.Conn(port, timeout=3) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == status, r
        assert r.header("connection") == "close", r
        assert r.complete, r
        # nothing after the one reply: no second response, just EOF
        c.expect_closed(3)
        return r


@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected_head_one_reply_then_close(shared, case):
    gw, up = shared
    data, status = CASES[case]
    _one_reply_then_close(gw.port, data + AFTER, status)
    time.sleep(0.05)
    assert "/after" not in up.targets(), "the request pipelined after a rejected head was served"


def test_header_timeout_one_reply_then_close(shared):
    gw, up = shared
    with h.Conn(gw.port, timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        r = c.read_response()
        assert r.status == 408, r
        assert r.header("connection") == "close", r
        c.expect_closed(3)


def test_rejected_head_after_good_request(shared):
    """A valid request, then CONNECT on the same connection: the first is
    served and kept alive, the second gets one 405 and the connection closes."""
    gw, up = shared
    with h.Conn(gw.port, timeout=3) as c:
        c.send(_get(b"/first") + b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n" + AFTER)
        r1 = c.read_response()
        assert r1.status == 200 and r1.header("connection") != "close", r1
        r2 = c.read_response()
        assert r2.status == 405 and r2.header("connection") == "close", r2
        # RFC 9110 section 15.5.6: a 405 carries Allow.
        assert r2.header("allow") == "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS", r2
        c.expect_closed(3)
    assert "/after" not in up.targets()


def test_still_serves_after_rejections(shared):
    gw, up = shared
    r = h.request(gw.port, "GET", "/fine", host="Example.COM:8080")
    assert r.status == 200 and r.json()["target"] == "/fine"
    r = h.request(gw.port, "GET", "/v6", host="[::1]:8080")
    assert r.status == 200
    r = h.request(gw.port, "GET", "http://a.example:8080/abs?q=1")
    assert r.status == 200 and r.json()["target"] == "/abs?q=1"


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("attack", [
    b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_client_that_never_reads(proxy, attack):
    """The 38-byte CONNECT of issue 10 from a client that never reads: the
    worker must not spin or grow, keeps answering others, and the bad
    connection holds one reply and then EOF."""
    p = proxy(workers=1)
    bad = h.Conn(p.port, timeout=5, rcvbuf=4096)
    try:
        bad.send(attack)
        time.sleep(0.3)
        cpu0, rss0 = _cpu_seconds(p.gw.pid), p.gw.rss_kb()
        t0 = time.monotonic()
        for i in range(10):
            r = h.request(p.port, "GET", "/other%d" % i, timeout=3)
            assert r.status == 200, r
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        cpu = _cpu_seconds(p.gw.pid) - cpu0
        grown = p.gw.rss_kb() - rss0
        assert cpu < 0.3, "gateway used %.2f s of CPU in 1 s with one bad client" % cpu
        assert grown < 8 * 1024, "gateway grew %d KiB in 1 s with one bad client" % grown
        r = bad.read_response()
        assert r.status in (400, 405) and r.header("connection") == "close", r
        bad.expect_closed(3)
    finally:
        bad.close()
