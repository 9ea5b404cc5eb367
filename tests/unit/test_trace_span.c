/* Unit tests for src/trace_span.c: what a request's trace context becomes
 * from its headers, the headers sent on, and the plugin API of
 * include/tollgate/trace.h (tg_request_span_attr/_event, tg_request_traced,
 * tg_request_trace_ids). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "conn.h"
#include "request.h"
#include "tollgate/trace.h"
#include "trace_conf.h"
#include "trace_span.h"

#define PARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static tg_config_t cfg;
static tg_tracing_conf_t tracing;
static tg_conn_t conn;
static tg_request_t req;
static tg_http_header_t hs[8];

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(&req, 0, sizeof(req));
    tracing.sample_ratio = 1.0;
    req.conn = &conn;
    req.cfg = &cfg;
    req.arena = tg_arena_create(4096);
    req.client.http.headers = hs;
    req.client.http.num_headers = 0;
}

static void teardown(void)
{
    tg_arena_destroy(req.arena);
}

static void header(const char *name, const char *value)
{
    hs[req.client.http.num_headers++] = (tg_http_header_t){
        .name = name, .name_len = strlen(name), .value = value, .value_len = strlen(value)};
}

static char *sent(void)
{
    static char buf[512];
    size_t n = tg_trace_write_headers(&req, req.trace.up_span, buf);
    ck_assert_uint_le(n, TG_TRACE_HEADERS_MAX(&req));
    buf[n] = '\0';
    return buf;
}

START_TEST(continued)
{
    header("traceparent", PARENT);
    header("tracestate", "a=1");
    header("TraceState", "b=2");
    tg_trace_begin(&req);
    ck_assert(req.trace.has_parent && req.trace.sampled);
    ck_assert(!req.trace.recording); /* no tracing: section: ids, but nothing recorded */
    char tid[33], sid[17];
    ck_assert(tg_request_trace_ids(&req, tid, sid));
    ck_assert_str_eq(tid, "0af7651916cd43dd8448eb211c80319c");
    ck_assert_str_ne(sid, "b7ad6b7169203331");
    tg_trace_attempt(&req); /* no upstream: nothing recorded, but a new span id */
    char *h = sent();
    ck_assert_int_eq(strncmp(h, "traceparent: 00-0af7651916cd43dd8448eb211c80319c-", 49), 0);
    ck_assert_int_eq(strncmp(h + 65, "-01\r\ntracestate: a=1,b=2\r\n", 26), 0);
    ck_assert_int_ne(strncmp(h + 49, sid, 16), 0); /* the try's span, not the server span */
}
END_TEST

START_TEST(replaced)
{
    header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x");
    header("tracestate", "a=1");
    tg_trace_begin(&req);
    ck_assert(!req.trace.has_parent && !req.trace.sampled);
    char *h = sent();
    ck_assert_ptr_null(strstr(h, "0af7651916cd43dd8448eb211c80319c"));
    ck_assert_ptr_null(strstr(h, "tracestate")); /* it belonged to the refused parent */
    ck_assert_int_eq(strncmp(h + 65, "-00\r\n", 5), 0);
}
END_TEST

START_TEST(two_parents_are_invalid)
{
    header("traceparent", PARENT);
    header("traceparent", PARENT);
    tg_trace_begin(&req);
    ck_assert(!req.trace.has_parent);
}
END_TEST

START_TEST(sampling)
{
    cfg.tracing = &tracing;
    tracing.sample_ratio = 0.0;
    tg_trace_begin(&req);
    ck_assert(!req.trace.sampled && !req.trace.recording);
    ck_assert(!tg_request_traced(&req));
    /* a sampled parent is followed whatever the ratio */
    header("traceparent", PARENT);
    memset(&req.trace, 0, sizeof(req.trace));
    tg_trace_begin(&req);
    ck_assert(req.trace.sampled && req.trace.recording);
    ck_assert(tg_request_traced(&req));
    /* an unsampled parent goes by the ratio */
    hs[0].value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    tracing.sample_ratio = 1.0;
    memset(&req.trace, 0, sizeof(req.trace));
    tg_trace_begin(&req);
    ck_assert(req.trace.has_parent && req.trace.sampled);
}
END_TEST

START_TEST(plugin_api)
{
    char tid[33], sid[17];
    ck_assert(!tg_request_trace_ids(&req, tid, sid)); /* no trace before it begins */
    /* not traced: accepted, nothing kept */
    tg_trace_begin(&req);
    ck_assert_int_eq(tg_request_span_attr(&req, "a.b", "v"), 0);
    ck_assert_ptr_null(req.trace.attrs);
    ck_assert_int_eq(tg_request_span_attr(&req, "", "v"), TG_EINVAL);
    ck_assert_int_eq(tg_request_span_attr(&req, NULL, "v"), TG_EINVAL);
    ck_assert_int_eq(tg_request_span_attr(&req, "k", NULL), TG_EINVAL);
    ck_assert_int_eq(tg_request_span_event(&req, "", NULL, NULL), TG_EINVAL);
    ck_assert_int_eq(tg_request_span_event(&req, "e", "k", NULL), TG_EINVAL);
    ck_assert_int_eq(tg_request_span_event(&req, "e", NULL, "v"), TG_EINVAL);
    /* traced: copied, cut at 256 bytes, at most 64 together */
    req.trace.recording = true;
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(tg_request_span_attr(&req, "k", big), 0);
    ck_assert_uint_eq(strlen(req.trace.attrs->value), 256);
    ck_assert_ptr_ne(req.trace.attrs->value, big);
    ck_assert_int_eq(tg_request_span_event(&req, "e", NULL, NULL), 0);
    ck_assert_ptr_null(req.trace.events->key);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(tg_request_span_attr(&req, "n", "v"), 0);
    size_t n = 0;
    for (const tg_span_attr_t *a = req.trace.attrs; a; a = a->next)
        n++;
    ck_assert_uint_eq(n, 63); /* and the event */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_span");
    TCase *tc = tcase_create("trace_span");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, continued);
    tcase_add_test(tc, replaced);
    tcase_add_test(tc, two_parents_are_invalid);
    tcase_add_test(tc, sampling);
    tcase_add_test(tc, plugin_api);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
