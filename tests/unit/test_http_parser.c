/* Unit tests for src/http_parser.c: request and response heads. */
#include "http_parser.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CAP 64

static tg_http_header_t hdrs[CAP];

static int req_cap(const char *s, size_t len, tg_http_request_t *req, size_t cap)
{
    memset(req, 0xA5, sizeof(*req)); /* the parser must set every output */
    req->headers = hdrs;
    req->num_headers = cap;
    return tg_http_parse_request(s, len, req);
}

static int req_parse(const char *s, tg_http_request_t *req)
{
    return req_cap(s, strlen(s), req, CAP);
}

static int resp_parse(const char *s, tg_http_response_t *resp)
{
    memset(resp, 0xA5, sizeof(*resp));
    resp->headers = hdrs;
    resp->num_headers = CAP;
    return tg_http_parse_response(s, strlen(s), resp);
}

#define ck_assert_mem(p, n, lit)                                  \
    do {                                                          \
        ck_assert_uint_eq((n), sizeof(lit) - 1);                  \
        ck_assert_int_eq(memcmp((p), (lit), sizeof(lit) - 1), 0); \
    } while (0)

/* ---- valid requests ---- */

START_TEST(get_with_headers)
{
    const char *m = "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent:  curl/8 \t\r\n"
                    "Accept:*/*\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n\r\nBODY";
    tg_http_request_t req;
    int r = req_parse(m, &req);
    ck_assert_int_eq(r, (int)(strlen(m) - 4));
    ck_assert_mem(req.method, req.method_len, "GET");
    ck_assert_mem(req.target, req.target_len, "/a/b?c=d");
    ck_assert_int_eq(req.minor_version, 1);
    ck_assert_uint_eq(req.num_headers, 5);
    ck_assert_mem(hdrs[0].name, hdrs[0].name_len, "Host");
    ck_assert_mem(hdrs[0].value, hdrs[0].value_len, "example.com");
    ck_assert_mem(hdrs[1].value, hdrs[1].value_len, "curl/8");
    ck_assert_mem(hdrs[2].value, hdrs[2].value_len, "*/*");
    ck_assert_uint_eq(hdrs[3].value_len, 0);
    ck_assert_mem(hdrs[4].value, hdrs[4].value_len, "caf\xc3\xa9");
    ck_assert_int_eq(req.host_index, 0);
    ck_assert_int_eq(req.body_kind, TG_BODY_NONE);
    ck_assert_uint_eq(req.flags, 0);
    ck_assert_int_eq(req.error_status, 0);
}
END_TEST

START_TEST(post_content_length)
{
    tg_http_request_t req;
    const char *m = "POST /x HTTP/1.1\r\nContent-Length: 0042\r\nhost: h\r\n\r\n";
    ck_assert_int_eq(req_parse(m, &req), (int)strlen(m));
    ck_assert_int_eq(req.body_kind, TG_BODY_LENGTH);
    ck_assert_uint_eq(req.content_length, 42);
    ck_assert_int_eq(req.host_index, 1);
    /* identical values collapse (RFC 9110 section 8.6) */
    m = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\nContent-Length: 07\r\n\r\n";
    ck_assert_int_gt(req_parse(m, &req), 0);
    ck_assert_uint_eq(req.content_length, 7);
    m = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n";
    ck_assert_int_gt(req_parse(m, &req), 0);
    ck_assert_uint_eq(req.content_length, UINT64_C(9223372036854775807));
    m = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    ck_assert_int_gt(req_parse(m, &req), 0);
    ck_assert_int_eq(req.body_kind, TG_BODY_LENGTH);
    ck_assert_uint_eq(req.content_length, 0);
}
END_TEST

START_TEST(post_chunked)
{
    tg_http_request_t req;
    const char *m = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n";
    ck_assert_int_eq(req_parse(m, &req), (int)strlen(m));
    ck_assert_int_eq(req.body_kind, TG_BODY_CHUNKED);
    m = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n\r\n";
    ck_assert_int_gt(req_parse(m, &req), 0);
    ck_assert_int_eq(req.body_kind, TG_BODY_CHUNKED);
}
END_TEST

START_TEST(http10_and_forms)
{
    tg_http_request_t req;
    ck_assert_int_gt(req_parse("GET / HTTP/1.0\r\n\r\n", &req), 0);
    ck_assert_int_eq(req.minor_version, 0);
    ck_assert_int_eq(req.host_index, -1);
    ck_assert_uint_eq(req.num_headers, 0);
    ck_assert_int_gt(
        req_parse("GET http://a.example:8080/p?q HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", &req),
        0);
    ck_assert_mem(req.target, req.target_len, "http://a.example:8080/p?q");
    ck_assert_int_gt(req_parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req), 0);
    ck_assert_mem(req.target, req.target_len, "*");
    ck_assert_int_gt(
        req_parse("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n", &req), 0);
    ck_assert_int_gt(req_parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &req), 0);
    ck_assert_int_gt(req_parse("GET / HTTP/1.1\r\nHost: xn--caf-dma.Example_1~\r\n\r\n", &req), 0);
    /* the whole rule is src/host.c's (tests/unit/test_host.c) */
    ck_assert_int_eq(req_parse("GET / HTTP/1.1\r\nHost: a%41\r\n\r\n", &req), TG_HTTP_ERROR);
    ck_assert_int_eq(req.error_status, 400);
    ck_assert_str_eq(req.error_reason, "invalid Host header");
    ck_assert_int_gt(req_parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &req), 0); /* empty is allowed */
    ck_assert_int_eq(req.host_index, 0);
    /* RFC 9112 section 2.2: leading empty lines are skipped and counted */
    ck_assert_int_eq(req_parse("\r\n\r\nGET / HTTP/1.0\r\n\r\n", &req), 22);
    ck_assert_mem(req.method, req.method_len, "GET");
}
END_TEST

START_TEST(flags)
{
    tg_http_request_t req;
    const char *m = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, UPGRADE\r\n"
                    "connection: close\r\nUpgrade: websocket\r\nExpect: 100-Continue\r\n\r\n";
    ck_assert_int_gt(req_parse(m, &req), 0);
    ck_assert_uint_eq(req.flags, TG_HF_CONN_CLOSE | TG_HF_CONN_KEEPALIVE | TG_HF_CONN_UPGRADE |
                                     TG_HF_HAS_UPGRADE | TG_HF_EXPECT_CONTINUE);
    ck_assert_int_gt(req_parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n"
                               "Connection: foo, closed\r\n\r\n",
                               &req),
                     0);
    ck_assert_uint_eq(req.flags, TG_HF_EXPECT_OTHER);
}
END_TEST

START_TEST(target_limit)
{
    tg_http_request_t req;
    size_t n = 8192;
    char *m = malloc(n + 64);
    if (m == NULL)
        ck_abort_msg("out of memory");
    memcpy(m, "GET /", 5);
    memset(m + 5, 'a', n - 1);
    strcpy(m + 4 + n, " HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(req_parse(m, &req), (int)strlen(m));
    ck_assert_uint_eq(req.target_len, n);
    memset(m + 5, 'a', n);
    strcpy(m + 5 + n, " HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(req_parse(m, &req), TG_HTTP_ERROR);
    ck_assert_int_eq(req.error_status, 414);
    /* reported before the end of the target arrives */
    ck_assert_int_eq(req_cap(m, 4 + n + 1, &req, CAP), TG_HTTP_ERROR);
    ck_assert_int_eq(req.error_status, 414);
    ck_assert_int_eq(req_cap(m, 4 + n, &req, CAP), TG_HTTP_INCOMPLETE);
    free(m);
}
END_TEST

START_TEST(header_capacity)
{
    tg_http_request_t req;
    const char *m = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    ck_assert_int_eq(req_cap(m, strlen(m), &req, 3), (int)strlen(m));
    ck_assert_uint_eq(req.num_headers, 3);
    ck_assert_int_eq(req_cap(m, strlen(m), &req, 2), TG_HTTP_ERROR);
    ck_assert_int_eq(req.error_status, 431);
    ck_assert_int_eq(req_cap(m, strlen(m), &req, 0), TG_HTTP_ERROR);
    ck_assert_int_eq(req.error_status, 431);
    /* capacity is left alone on INCOMPLETE so the struct can be reused */
    ck_assert_int_eq(req_cap(m, 20, &req, 3), TG_HTTP_INCOMPLETE);
    ck_assert_uint_eq(req.num_headers, 3);
}
END_TEST

/* ---- rejections ---- */

typedef struct {
    const char *msg;
    int status;
    const char *reason; /* NULL: any */
    size_t len;         /* sizeof - 1: some messages hold a NUL */
} reject_t;

#define R(m, st, why)             \
    {                             \
        m, st, why, sizeof(m) - 1 \
    }

#define HOST "Host: h\r\n"
static const reject_t rejects[] = {
    /* request line */
    R("GET  / HTTP/1.1\r\n" HOST "\r\n", 400, NULL),
    R("GET /  HTTP/1.1\r\n" HOST "\r\n", 400, "invalid HTTP version"),
    R("GET\t/ HTTP/1.1\r\n" HOST "\r\n", 400, "invalid method"),
    R("G@T / HTTP/1.1\r\n" HOST "\r\n", 400, "invalid method"),
    R(" GET / HTTP/1.1\r\n" HOST "\r\n", 400, "invalid method"),
    R("GET /a\x01 HTTP/1.1\r\n" HOST "\r\n", 400, "invalid character in request-target"),
    R("GET /a\x7f HTTP/1.1\r\n" HOST "\r\n", 400, "invalid character in request-target"),
    R("GET /\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n", 400, "invalid character in request-target"),
    R("GET /a b HTTP/1.1\r\n" HOST "\r\n", 400, "invalid HTTP version"),
    R("GET /a\tb HTTP/1.1\r\n" HOST "\r\n", 400, "invalid character in request-target"),
    R("GET /\r\n" HOST "\r\n", 400, "missing HTTP version"),
    R("GET * HTTP/1.1\r\n" HOST "\r\n", 400, "asterisk-form request-target without OPTIONS"),
    R("options * HTTP/1.1\r\n" HOST "\r\n", 400, "asterisk-form request-target without OPTIONS"),
    R("GET foo HTTP/1.1\r\n" HOST "\r\n", 400, "invalid request-target"),
    R("GET / HTTP/1.2\r\n" HOST "\r\n", 505, NULL),
    R("GET / HTTP/2.0\r\n" HOST "\r\n", 505, NULL),
    R("GET / HTTP/0.9\r\n" HOST "\r\n", 505, NULL),
    R("GET / http/1.1\r\n" HOST "\r\n", 400, "invalid HTTP version"),
    R("GET / HTTP/1.1x\r\n" HOST "\r\n", 400, NULL),
    R("GET / HTTP/1.10\r\n" HOST "\r\n", 400, NULL),
    R("GET / HTTP/1\r\n" HOST "\r\n", 400, "invalid HTTP version"),
    R("GET / HTTP/11.1\r\n" HOST "\r\n", 400, "invalid HTTP version"),
    R("GET / HTTP/1.1 \r\n" HOST "\r\n", 400, NULL),
    R("GET / HTTP/1.1\n" HOST "\r\n", 400, "bare LF"),
    R("GET / HTTP/1.1\rX" HOST "\r\n", 400, "bare CR"),
    R("\n\nGET / HTTP/1.1\r\n" HOST "\r\n", 400, "bare LF"),
    R("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n", 400,
      "too many empty lines before request line"),
    /* header fields */
    R("GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "bare LF"),
    R("GET / HTTP/1.1\r\n" HOST "\n", 400, "bare LF"),
    R("GET / HTTP/1.1\r\n" HOST "\r\r\n", 400, "bare CR"),
    R("GET / HTTP/1.1\r\n" HOST "X: a\rb\r\n\r\n", 400, "bare CR"),
    R("GET / HTTP/1.1\r\n" HOST "X : a\r\n\r\n", 400, "whitespace between field name and colon"),
    R("GET / HTTP/1.1\r\n" HOST "X\t: a\r\n\r\n", 400, "whitespace between field name and colon"),
    R("GET / HTTP/1.1\r\n" HOST "X(y): a\r\n\r\n", 400, "invalid header name"),
    R("GET / HTTP/1.1\r\n" HOST ": a\r\n\r\n", 400, "invalid header name"),
    R("GET / HTTP/1.1\r\n" HOST "NoColon\r\n\r\n", 400, "header line without colon"),
    R("GET / HTTP/1.1\r\n" HOST "X: a\x01\r\n\r\n", 400, "invalid character in header value"),
    R("GET / HTTP/1.1\r\n" HOST "X: a\x7f\r\n\r\n", 400, "invalid character in header value"),
    R("GET / HTTP/1.1\r\n" HOST "X: \x00\r\n\r\n", 400, "invalid character in header value"),
    R("GET / HTTP/1.1\r\n" HOST "X: a\r\n b\r\n\r\n", 400, "obs-fold in header section"),
    R("GET / HTTP/1.1\r\n" HOST "X: a\r\n\tb\r\n\r\n", 400, "obs-fold in header section"),
    R("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "obs-fold in header section"),
    /* framing (RFC 9112 section 6) */
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
      "both Content-Length and Transfer-Encoding"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
      "both Content-Length and Transfer-Encoding"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: +5\r\n\r\n", 400, "invalid Content-Length"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 0x10\r\n\r\n", 400, "invalid Content-Length"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length:\r\n\r\n", 400, "invalid Content-Length"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 1 2\r\n\r\n", 400, "invalid Content-Length"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 5,\r\n\r\n", 400, "invalid Content-Length"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 1.0\r\n\r\n", 400, "invalid Content-Length"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 9223372036854775808\r\n\r\n", 400,
      "Content-Length too large"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 18446744073709551617\r\n\r\n", 400,
      "Content-Length too large"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
      "conflicting Content-Length values"),
    R("POST / HTTP/1.1\r\n" HOST "Content-Length: 5, 6\r\n\r\n", 400,
      "conflicting Content-Length values"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n\r\n", 400,
      "unsupported transfer coding"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip, chunked\r\n\r\n", 400,
      "unsupported transfer coding"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, gzip\r\n\r\n", 400,
      "unsupported transfer coding"),
    R("POST / HTTP/1.1\r\n" HOST
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
      400, "unsupported transfer coding"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, chunked\r\n\r\n", 400,
      "chunked applied more than once"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      400, "chunked applied more than once"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked;q=1\r\n\r\n", 400,
      "unsupported transfer coding"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: \"chunked\"\r\n\r\n", 400,
      "unsupported transfer coding"),
    R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\r\n\r\n", 400, "empty Transfer-Encoding"),
    R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
      "Transfer-Encoding in an HTTP/1.0 request"),
    R("GET / HTTP/1.1\r\n\r\n", 400, "missing Host header"),
    R("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, "duplicate Host header"),
    R("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host header"),
    R("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400, "invalid Host header"),
    R("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host header"),
    R("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "invalid Host header"),
    R("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", 400, "invalid Host header"),
};

START_TEST(reject)
{
    const reject_t *t = &rejects[_i];
    tg_http_request_t req;
    ck_assert_int_eq(req_cap(t->msg, t->len, &req, CAP), TG_HTTP_ERROR);
    ck_assert_int_eq(req.error_status, t->status);
    ck_assert_ptr_nonnull(req.error_reason);
    if (t->reason != NULL)
        ck_assert_str_eq(req.error_reason, t->reason);
}
END_TEST

/* ---- byte by byte feeding ---- */

static const char *const feed_msgs[] = {
    "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent:  curl/8 \t\r\nX-Empty:\r\n\r\n",
    "\r\nPOST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 12, 12\r\nConnection: close\r\n\r\nBODY",
    "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    "OPTIONS * HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nX : b\r\n\r\n",
    "GET / HTTP/1.7\r\nHost: h\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nA: b\rc\r\n\r\n",
    "GET / HTTP/1.1\r\nA: b\r\n\r\n",
    "GET /\x7f HTTP/1.1\r\nA: b\r\n\r\n",
};

static int same_request(const tg_http_request_t *a, const tg_http_request_t *b)
{
    if (a->error_status != b->error_status || a->num_headers != b->num_headers)
        return 0;
    if (a->error_status != 0)
        return strcmp(a->error_reason, b->error_reason) == 0;
    return a->method == b->method && a->target_len == b->target_len && a->flags == b->flags &&
           a->body_kind == b->body_kind && a->content_length == b->content_length &&
           a->host_index == b->host_index;
}

START_TEST(byte_by_byte)
{
    const char *m = feed_msgs[_i];
    size_t len = strlen(m), k;
    tg_http_request_t whole, part;
    tg_http_header_t h2[CAP];
    int r = req_cap(m, len, &whole, CAP), rp = TG_HTTP_INCOMPLETE;
    ck_assert_int_ne(r, TG_HTTP_INCOMPLETE);
    for (k = 0; k <= len; k++) {
        part.headers = h2;
        part.num_headers = CAP;
        rp = tg_http_parse_request(m, k, &part);
        if (rp != TG_HTTP_INCOMPLETE)
            break;
    }
    ck_assert_int_eq(rp, r);
    ck_assert(same_request(&whole, &part));
    if (r > 0) {
        ck_assert_uint_eq(k, (size_t)r); /* complete exactly at the end of the head */
        for (size_t i = 0; i < whole.num_headers; i++) {
            ck_assert_ptr_eq(h2[i].name, hdrs[i].name);
            ck_assert_uint_eq(h2[i].value_len, hdrs[i].value_len);
        }
    }
}
END_TEST

/* ---- guard page: any over-read faults ---- */

static char *guard_page(size_t *pg)
{
    long ps = sysconf(_SC_PAGESIZE);
    char *mem =
        mmap(NULL, 2 * (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(mprotect(mem + ps, (size_t)ps, PROT_NONE), 0);
    *pg = (size_t)ps;
    return mem;
}

START_TEST(guard_page_request)
{
    size_t ps;
    char *mem = guard_page(&ps);
    tg_http_request_t req;
    for (size_t i = 0; i < sizeof(feed_msgs) / sizeof(feed_msgs[0]); i++) {
        size_t len = strlen(feed_msgs[i]);
        for (size_t k = 0; k <= len; k++) {
            char *b = mem + ps - k;
            memcpy(b, feed_msgs[i], k);
            (void)req_cap(b, k, &req, CAP);
        }
    }
    munmap(mem, 2 * ps);
}
END_TEST

/* ---- responses ---- */

START_TEST(response_basic)
{
    tg_http_response_t resp;
    const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";
    ck_assert_int_eq(resp_parse(m, &resp), (int)strlen(m) - 5);
    ck_assert_int_eq(resp.minor_version, 1);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_mem(resp.reason, resp.reason_len, "OK");
    ck_assert_uint_eq(resp.num_headers, 2);
    ck_assert_int_eq(resp.body_kind, TG_BODY_LENGTH);
    ck_assert_uint_eq(resp.content_length, 5);
    ck_assert_uint_eq(resp.flags, TG_HF_CONN_KEEPALIVE);
    ck_assert_ptr_null(resp.error_reason);
    ck_assert_int_gt(resp_parse("HTTP/1.0 404 Not  Found \r\n\r\n", &resp), 0);
    ck_assert_mem(resp.reason, resp.reason_len, "Not  Found ");
    ck_assert_int_eq(resp.body_kind, TG_BODY_UNTIL_CLOSE);
    ck_assert_int_eq(resp_parse("HTTP/1.1 200\r\n\r\n", &resp), 16);
    ck_assert_uint_eq(resp.reason_len, 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp_parse("HTTP/1.1 999 \r\n\r\n", &resp), 17);
    ck_assert_uint_eq(resp.reason_len, 0);
    ck_assert_int_eq(resp.status, 999);
}
END_TEST

START_TEST(response_framing)
{
    tg_http_response_t resp;
    ck_assert_int_gt(resp_parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &resp), 0);
    ck_assert_int_eq(resp.body_kind, TG_BODY_CHUNKED);
    ck_assert_int_gt(resp_parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: , CHUNKED ,\r\n\r\n", &resp),
                     0);
    ck_assert_int_eq(resp.body_kind, TG_BODY_CHUNKED);
    ck_assert_int_gt(resp_parse("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", &resp), 0);
    ck_assert_uint_eq(resp.content_length, 3);
    ck_assert_int_gt(
        resp_parse("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", &resp), 0);
    ck_assert_uint_eq(resp.flags, TG_HF_HAS_UPGRADE | TG_HF_CONN_UPGRADE);
    /* a 101 with "Content-Length: 0" announces nothing */
    ck_assert_int_gt(resp_parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Content-Length: 0\r\n\r\n",
                                &resp),
                     0);
    /* HEAD and 304 answers may carry the representation's framing fields */
    ck_assert_int_gt(
        resp_parse("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", &resp), 0);
    ck_assert_int_eq(tg_http_response_body(&resp, 0), TG_BODY_NONE);
}
END_TEST

/* Whether the upstream connection may carry another exchange. */
START_TEST(response_reusable)
{
    tg_http_response_t resp;
    static const struct {
        const char *m;
        int head;
        bool reusable;
    } t[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, true},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, true},
        {"HTTP/1.1 200 OK\r\n\r\n", 0, false}, /* until close */
        {"HTTP/1.1 200 OK\r\n\r\n", 1, true},  /* HEAD: no body whatever */
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", 0, false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", 0, false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n", 0, true},
        {"HTTP/1.1 204 No Content\r\n\r\n", 0, true},
        {"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 0, true},
        {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 0, false},
        {"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 0, false},
        {"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 0, true},
        {"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 0, true},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, true},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        ck_assert_int_gt(resp_parse(t[i].m, &resp), 0);
        ck_assert_msg(tg_http_response_reusable(&resp, t[i].head) == t[i].reusable, "%s", t[i].m);
    }
}
END_TEST

START_TEST(response_body_rules)
{
    tg_http_response_t resp;
    static const struct {
        const char *m;
        int head;
        tg_body_kind_t kind;
    } t[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, TG_BODY_LENGTH},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, TG_BODY_NONE},
        {"HTTP/1.1 100 Continue\r\n\r\n", 0, TG_BODY_NONE},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 0, TG_BODY_NONE},
        {"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 0, TG_BODY_NONE},
        {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 0, TG_BODY_NONE},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, TG_BODY_NONE},
        {"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n", 0, TG_BODY_CHUNKED},
        {"HTTP/1.1 200 OK\r\n\r\n", 0, TG_BODY_UNTIL_CLOSE},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        ck_assert_int_gt(resp_parse(t[i].m, &resp), 0);
        ck_assert_int_eq(tg_http_response_body(&resp, t[i].head), t[i].kind);
    }
}
END_TEST

static const char *const bad_responses[] = {
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 2000 OK\r\n\r\n",
    "HTTP/1.1 099 Low\r\n\r\n",
    "HTTP/1.1  200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\n\r\n",
    "HTTP/1.1 200 OK\r\nA: b\n\r\n",
    "HTTP/2 200 OK\r\n\r\n",
    "HTTP/2.0 200 OK\r\n\r\n",
    "HTTP/1.1 200 O\x01K\r\n\r\n",
    "HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
    "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
    "ICY 200 OK\r\n\r\n",
    /* framing the gateway would have to guess at (RFC 9112 section 6.3) */
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 3 3\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 0x3\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 3,\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
    "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n",
    "HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nContent-Length: 10\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nTransfer-Encoding: chunked\r\n\r\n",
};

START_TEST(response_reject)
{
    tg_http_response_t resp;
    ck_assert_int_eq(resp_parse(bad_responses[_i], &resp), TG_HTTP_ERROR);
    ck_assert_ptr_nonnull(resp.error_reason);
}
END_TEST

START_TEST(response_capacity_and_feed)
{
    const char *m = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t len = strlen(m), ps;
    tg_http_response_t resp;
    char *mem = guard_page(&ps);
    resp.headers = hdrs;
    resp.num_headers = 2;
    ck_assert_int_eq(tg_http_parse_response(m, len, &resp), TG_HTTP_ERROR);
    for (size_t k = 0; k < len; k++) {
        char *b = mem + ps - k;
        memcpy(b, m, k);
        resp.headers = hdrs;
        resp.num_headers = 3;
        ck_assert_int_eq(tg_http_parse_response(b, k, &resp), TG_HTTP_INCOMPLETE);
    }
    ck_assert_int_eq(tg_http_parse_response(m, len, &resp), (int)len);
    ck_assert_int_eq(resp.body_kind, TG_BODY_CHUNKED);
    munmap(mem, 2 * ps);
}
END_TEST

/* The word-at-a-time value scan against the byte rule (RFC 9110 section
 * 5.5: HTAB, SP, VCHAR, obs-text): every byte value at every position of a
 * 24-byte value is accepted or refused as alone it would be. */
START_TEST(value_every_byte)
{
    for (int pos = 1; pos < 23; pos++) {
        for (int b = 0; b < 256; b++) {
            char m[128];
            int n = snprintf(m, sizeof(m), "GET / HTTP/1.1\r\nHost: a\r\nX-V: ");
            memset(m + n, 'v', 24);
            m[n + pos] = (char)b;
            memcpy(m + n + 24, "\r\n\r\n", 5);
            tg_http_request_t req;
            int r = req_cap(m, (size_t)n + 28, &req, CAP);
            bool allowed = b == '\t' || (b >= 0x20 && b != 0x7f);
            ck_assert_msg((r > 0) == allowed, "byte %d at %d: %d", b, pos, r);
            if (allowed)
                ck_assert_uint_eq(hdrs[1].value_len, 24);
        }
    }
}
END_TEST

START_TEST(name_eq)
{
    ck_assert(tg_http_name_eq("Content-Length", 14, "content-length", 14));
    ck_assert(!tg_http_name_eq("Content-Lengt", 13, "content-length", 14));
    ck_assert(!tg_http_name_eq("Content_Length", 14, "content-length", 14));
    ck_assert(!tg_http_name_eq("\r", 1, "-", 1));
    tg_http_header_t h = {"HOST", 4, "x", 1};
    ck_assert(TG_HTTP_NAME_IS(&h, "host"));
}
END_TEST

/* The word-at-a-time comparison against a byte-by-byte reference: every byte
 * value at every position of names of 1 to 24 bytes (CR must not pass for
 * '-', '@' not for '`', 0xC1 not for 'a'). */
START_TEST(name_eq_every_byte)
{
    static const char lit[] = "x-forwarded-proto-abc-09";
    char name[32];
    for (size_t len = 1; len <= 24; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (int b = 0; b < 256; b++) {
                memcpy(name, lit, len);
                name[pos] = (char)b;
                int lower = b >= 'A' && b <= 'Z' ? b + 32 : b;
                int want = lower == (unsigned char)lit[pos];
                ck_assert_msg(tg_http_name_eq(name, len, lit, len) == want,
                              "len %zu pos %zu byte %d", len, pos, b);
            }
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http_parser");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, get_with_headers);
    tcase_add_test(tc, post_content_length);
    tcase_add_test(tc, post_chunked);
    tcase_add_test(tc, http10_and_forms);
    tcase_add_test(tc, flags);
    tcase_add_test(tc, target_limit);
    tcase_add_test(tc, header_capacity);
    tcase_add_loop_test(tc, reject, 0, (int)(sizeof(rejects) / sizeof(rejects[0])));
    tcase_add_loop_test(tc, byte_by_byte, 0, (int)(sizeof(feed_msgs) / sizeof(feed_msgs[0])));
    tcase_add_test(tc, guard_page_request);
    tcase_add_test(tc, response_basic);
    tcase_add_test(tc, response_framing);
    tcase_add_test(tc, response_body_rules);
    tcase_add_test(tc, response_reusable);
    tcase_add_loop_test(tc, response_reject, 0,
                        (int)(sizeof(bad_responses) / sizeof(bad_responses[0])));
    tcase_add_test(tc, response_capacity_and_feed);
    tcase_add_test(tc, name_eq);
    tcase_add_test(tc, value_every_byte);
    tcase_add_test(tc, name_eq_every_byte);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
