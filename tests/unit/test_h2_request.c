/* Unit tests for src/h2_request.c: RFC 9113 section 8.3 checks and the
 * HTTP/1.1 head an HTTP/2 request becomes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "h2_request.h"

static tg_h2_req_t r;
static struct evbuffer *out;

static void setup(void)
{
    ck_assert_int_eq(tg_h2_req_init(&r, 4096), 0);
    out = evbuffer_new();
}

static void teardown(void)
{
    tg_h2_req_free(&r);
    evbuffer_free(out);
}

static int field(const char *n, const char *v)
{
    return tg_h2_req_field(&r, (const uint8_t *)n, strlen(n), (const uint8_t *)v, strlen(v));
}

static void base(const char *method, const char *path)
{
    ck_assert_int_eq(field(":method", method), 0);
    ck_assert_int_eq(field(":scheme", "https"), 0);
    ck_assert_int_eq(field(":authority", "api.example.com"), 0);
    ck_assert_int_eq(field(":path", path), 0);
}

static const char *head(bool end_stream, bool *chunked, int *rc)
{
    *rc = tg_h2_req_finish(&r, end_stream, out, chunked);
    evbuffer_add(out, "", 1);
    return (const char *)evbuffer_pullup(out, -1);
}

START_TEST(get_becomes_http11)
{
    base("GET", "/a/b?x=1");
    ck_assert_int_eq(field("accept", "*/*"), 0);
    bool chunked;
    int rc;
    const char *h = head(true, &chunked, &rc);
    ck_assert_int_eq(rc, TG_H2_REQ_OK);
    ck_assert(!chunked);
    ck_assert_str_eq(h, "GET /a/b?x=1 HTTP/1.1\r\nhost: api.example.com\r\naccept: */*\r\n\r\n");
}
END_TEST

/* RFC 9113 section 8.2.3: cookie fields are joined with "; ". */
START_TEST(cookies_joined)
{
    base("GET", "/");
    ck_assert_int_eq(field("cookie", "a=1"), 0);
    ck_assert_int_eq(field("x-y", "z"), 0);
    ck_assert_int_eq(field("cookie", "b=2"), 0);
    bool chunked;
    int rc;
    const char *h = head(true, &chunked, &rc);
    ck_assert_str_eq(
        h, "GET / HTTP/1.1\r\nhost: api.example.com\r\nx-y: z\r\ncookie: a=1; b=2\r\n\r\n");
}
END_TEST

/* A reused request (the next stream's) keeps its buffers and nothing of
 * the last head: no allocation for a head like the last one. */
START_TEST(reset_keeps_buffers_not_fields)
{
    base("GET", "/first");
    ck_assert_int_eq(field("cookie", "a=1"), 0);
    ck_assert_int_eq(field("x-first", "1"), 0);
    bool chunked;
    int rc;
    head(true, &chunked, &rc);
    char *fields = r.fields, *text = r.text;
    tg_h2_req_reset(&r);
    evbuffer_drain(out, evbuffer_get_length(out));
    ck_assert_ptr_eq(r.fields, fields);
    ck_assert_ptr_eq(r.text, text);
    ck_assert_ptr_null(r.cookies);
    base("GET", "/2");
    ck_assert_int_eq(field("x-second", "2"), 0);
    const char *h = head(true, &chunked, &rc);
    ck_assert_int_eq(rc, TG_H2_REQ_OK);
    ck_assert_str_eq(h, "GET /2 HTTP/1.1\r\nhost: api.example.com\r\nx-second: 2\r\n\r\n");
    ck_assert_ptr_eq(r.fields, fields);
}
END_TEST

START_TEST(body_framing)
{
    base("POST", "/up");
    bool chunked;
    int rc;
    const char *h = head(false, &chunked, &rc);
    ck_assert(chunked);
    ck_assert_ptr_nonnull(strstr(h, "transfer-encoding: chunked\r\n\r\n"));
    teardown();
    setup();
    base("POST", "/up");
    ck_assert_int_eq(field("content-length", "5"), 0);
    h = head(false, &chunked, &rc);
    ck_assert(!chunked);
    ck_assert_ptr_nonnull(strstr(h, "content-length: 5\r\n\r\n"));
    ck_assert_ptr_null(strstr(h, "transfer-encoding"));
}
END_TEST

/* :authority becomes Host; a Host equal to it (any case) is allowed and not
 * repeated; one that differs makes the request malformed. */
START_TEST(authority_and_host)
{
    base("GET", "/");
    ck_assert_int_eq(field("host", "API.example.com"), 0);
    bool chunked;
    int rc;
    const char *h = head(true, &chunked, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(h, "GET / HTTP/1.1\r\nhost: api.example.com\r\n\r\n");
    teardown();
    setup();
    base("GET", "/");
    ck_assert_int_eq(field("host", "evil.example.com"), 0);
    head(true, &chunked, &rc);
    ck_assert_int_eq(rc, TG_H2_REQ_MALFORMED);
    ck_assert_str_eq(r.reason, ":authority and host differ");
    teardown();
    setup(); /* no :authority: the Host field is kept */
    ck_assert_int_eq(field(":method", "GET"), 0);
    ck_assert_int_eq(field(":scheme", "http"), 0);
    ck_assert_int_eq(field(":path", "/"), 0);
    ck_assert_int_eq(field("host", "h.example"), 0);
    h = head(true, &chunked, &rc);
    ck_assert_str_eq(h, "GET / HTTP/1.1\r\nhost: h.example\r\n\r\n");
}
END_TEST

static void expect_malformed(const char *const *fields, const char *reason)
{
    teardown();
    setup();
    int rc = 0;
    for (size_t i = 0; fields[i] != NULL && rc == 0; i += 2)
        rc = field(fields[i], fields[i + 1]);
    if (rc == 0) {
        bool chunked;
        head(true, &chunked, &rc);
    }
    ck_assert_msg(rc == TG_H2_REQ_MALFORMED, "%s: rc %d", reason, rc);
    ck_assert_str_eq(r.reason, reason);
}

#define F(...) ((const char *const[]){__VA_ARGS__, NULL})
#define OK3 ":method", "GET", ":scheme", "https", ":path", "/"

START_TEST(malformed_requests)
{
    expect_malformed(F(":method", "GET", ":scheme", "https"), "missing :scheme or :path");
    expect_malformed(F(":scheme", "https", ":path", "/"), "missing :method");
    expect_malformed(F(OK3, ":method", "POST"), "repeated pseudo-header");
    expect_malformed(F(":method", "GET", "accept", "x", ":path", "/"),
                     "pseudo-header after a regular field");
    expect_malformed(F(OK3, ":protocol", "websocket"), "unknown pseudo-header");
    expect_malformed(F(OK3, ":status", "200"), "unknown pseudo-header");
    expect_malformed(F(OK3, "Accept", "x"), "invalid field name");
    expect_malformed(F(OK3, "connection", "close"), "connection-specific header field");
    expect_malformed(F(OK3, "upgrade", "websocket"), "connection-specific header field");
    expect_malformed(F(OK3, "keep-alive", "1"), "connection-specific header field");
    expect_malformed(F(OK3, "proxy-connection", "x"), "connection-specific header field");
    expect_malformed(F(OK3, "transfer-encoding", "chunked"), "connection-specific header field");
    expect_malformed(F(OK3, "te", "gzip"), "te other than trailers");
    expect_malformed(F(OK3, "x", "a\r\nb: c"), "invalid field value");
    expect_malformed(F(":method", "GET", ":scheme", "https", ":path", "a"), "invalid :path");
    expect_malformed(F(":method", "GET", ":scheme", "https", ":path", ""), "empty :path");
    expect_malformed(F(":method", "G T", ":scheme", "https", ":path", "/"), "invalid :method");
    expect_malformed(F(OK3, ":authority", "u@h"), "invalid :authority");
    expect_malformed(F(":method", "CONNECT", ":authority", "h:443", ":path", "/"),
                     "invalid CONNECT pseudo-headers");
    expect_malformed(F(OK3, "host", "a", "host", "a"), "repeated host");
}
END_TEST

START_TEST(te_trailers_and_options_star)
{
    ck_assert_int_eq(field(":method", "OPTIONS"), 0);
    ck_assert_int_eq(field(":scheme", "http"), 0);
    ck_assert_int_eq(field(":path", "*"), 0);
    ck_assert_int_eq(field(":authority", "h"), 0);
    ck_assert_int_eq(field("te", "trailers"), 0);
    bool chunked;
    int rc;
    const char *h = head(true, &chunked, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(h, "OPTIONS * HTTP/1.1\r\nhost: h\r\nte: trailers\r\n\r\n");
}
END_TEST

/* The header list size counts name + value + 32 per field (pseudo-headers
 * included); past the limit the rest is counted, not kept. */
START_TEST(list_size_limit)
{
    base("GET", "/");
    char big[2048];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    ck_assert_int_eq(field("a", big), 0);
    ck_assert_int_eq(field("b", big), TG_H2_REQ_TOO_LARGE);
    ck_assert_int_eq(field("c", "d"), TG_H2_REQ_TOO_LARGE);
    /* :method GET, :scheme https, :authority api.example.com, :path /, a, b, c */
    ck_assert_uint_eq(r.list_size, 10 + 12 + 25 + 6 + 2048 + 2048 + 2 + 7 * TG_H2_FIELD_OVERHEAD);
    bool chunked;
    int rc;
    head(true, &chunked, &rc);
    ck_assert_int_eq(rc, TG_H2_REQ_TOO_LARGE);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("h2_request");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, get_becomes_http11);
    tcase_add_test(tc, cookies_joined);
    tcase_add_test(tc, body_framing);
    tcase_add_test(tc, authority_and_host);
    tcase_add_test(tc, malformed_requests);
    tcase_add_test(tc, te_trailers_and_options_star);
    tcase_add_test(tc, list_size_limit);
    tcase_add_test(tc, reset_keeps_buffers_not_fields);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
