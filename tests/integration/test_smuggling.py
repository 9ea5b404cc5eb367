"""Request smuggling defences: each malformed request gets a 400, the connection
is closed, and nothing reaches the upstream.

Errors in the request head must stop the request before its head is sent on
(upstream.heads == 0); errors inside a chunked body must stop it before a
complete request reaches the upstream (upstream.requests == 0)."""

import time

import pytest

import tg_harness as h

HEAD_ERRORS = {
    "cl_and_te": b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    "te_and_cl": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                 b"0\r\n\r\n",
    "two_different_cl": b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "cl_list": b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde",
    "cl_not_a_number": b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
    "te_gzip_chunked": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te_chunked_identity": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "te_chunked_twice": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_xchunked": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te_obs_fold": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "obs_fold_other": b"GET /s HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "bare_cr_in_value": b"GET /s HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "nul_in_value": b"GET /s HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare_lf_lines": b"GET /s HTTP/1.1\nHost: x\nX-A: 1\n\n",
    "bare_lf_one_line": b"GET /s HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
    "space_before_colon": b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nabcde",
    "space_before_colon_te": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "invalid_method": b"GE T /s HTTP/1.1\r\nHost: x\r\n\r\n",
    "invalid_method_char": b"G(T /s HTTP/1.1\r\nHost: x\r\n\r\n",
    "invalid_header_name": b"GET /s HTTP/1.1\r\nHost: x\r\nX Y: 1\r\n\r\n",
    "invalid_header_name_char": b"GET /s HTTP/1.1\r\nHost: x\r\nX@Y: 1\r\n\r\n",
    "te_in_http10": b"POST /s HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "missing_host_http11": b"GET /s HTTP/1.1\r\nX-A: 1\r\n\r\n",
    "two_hosts": b"GET /s HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "space_in_target": b"GET /s x HTTP/1.1\r\nHost: x\r\n\r\n",
}

BODY_ERRORS = {
    "chunk_size_zz": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow_16": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    "chunk_size_negative": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "chunk_data_too_long": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    "chunk_bare_lf": b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One gateway for all cases (they are independent requests on new connections)."""
    from upstream import UpstreamServer
    up = UpstreamServer("up")
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           [h.route("all", "up", {"path_prefix": "/"})])
    gw = h.Gateway(cfg, tmp_path_factory.mktemp("smuggling"), port).start()
    yield gw, up
    up.stop()
    gw.check_clean_exit()


def _expect_400_and_close(port, data):
    with h.Conn(port, timeout=3) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 400, r
        c.expect_closed(3)


@pytest.mark.parametrize("case", sorted(HEAD_ERRORS))
def test_smuggling_rejected(shared, case):
    gw, up = shared
    heads0 = up.heads
    _expect_400_and_close(gw.port, HEAD_ERRORS[case])
    time.sleep(0.1)
    assert up.heads == heads0, "the upstream received the request head"


@pytest.mark.parametrize("case", sorted(BODY_ERRORS))
def test_bad_chunked_body_rejected(shared, case):
    gw, up = shared
    reqs0 = up.requests
    _expect_400_and_close(gw.port, BODY_ERRORS[case])
    time.sleep(0.1)
    assert up.requests == reqs0, "the upstream received a complete request"


def test_gateway_still_serves_after_attacks(shared):
    gw, up = shared
    r = h.request(gw.port, "GET", "/fine")
    assert r.status == 200 and r.json()["target"] == "/fine"
    assert "/smuggled" not in up.targets()
