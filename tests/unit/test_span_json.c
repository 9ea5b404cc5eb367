/* Unit tests for src/span_json.c: the OTLP/JSON a request's spans become,
 * read back with jansson: valid JSON whatever the request carried, hex ids,
 * times as strings, the semantic conventions' names, status codes. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "proto.h"
#include "request.h"
#include "span_json.h"
#include "worker.h"

static tg_worker_t worker;
/* peer_ip is the connection's last, flexible member: room for it. */
static union {
    tg_conn_t c;
    char room[sizeof(tg_conn_t) + 64];
} conn_mem;
static tg_route_t route;
static tg_request_t req;
static tg_http_header_t hs[2];
static tg_client_span_t cs;
static const tg_proto_t h1 = {.name = "http/1.1"}, h2 = {.name = "h2"};

static void setup(void)
{
    memset(&req, 0, sizeof(req));
    memset(&cs, 0, sizeof(cs));
    hs[0] = (tg_http_header_t){.name = "User-Agent", .name_len = 10, .value = "ua", .value_len = 2};
    conn_mem.c.worker = &worker;
    strcpy(conn_mem.c.peer_ip, "10.0.0.1");
    route.name = "api";
    route.path = "/api";
    route.path_kind = TG_PATH_PREFIX;
    req.conn = &conn_mem.c;
    req.proto = &h1;
    req.route = &route;
    req.client.http.method = "GET";
    req.client.http.method_len = 3;
    req.client.http.headers = hs;
    req.client.http.num_headers = 1;
    req.client.http.minor_version = 1;
    req.client.path = "/api/x";
    req.client.path_len = 6;
    req.client.host = "[::1]:8080";
    req.client.host_len = 10;
    memcpy(req.request_id, "rid", 3);
    req.request_id_len = 3;
    req.resp.status = 200;
    for (int i = 0; i < 16; i++)
        req.trace.trace_id[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 8; i++) {
        req.trace.span_id[i] = (uint8_t)(0x10 + i);
        req.trace.parent_id[i] = (uint8_t)(0x20 + i);
        cs.span_id[i] = (uint8_t)(0x30 + i);
    }
    req.trace.begun = req.trace.recording = true;
    req.trace.start_ns = 1700000000000000000ull;
    cs.upstream = "users";
    cs.target = "127.0.0.1:9001";
    cs.start_ns = 1700000000000000100ull;
    cs.end_ns = 1700000000000000200ull;
    cs.status = 200;
}

/* The spans as a JSON array (caller decrefs). */
static json_t *spans(void)
{
    size_t len;
    unsigned n;
    char *s = tg_span_json(&req, 1700000000000000900ull, &len, &n);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(strlen(s), len);
    char *doc = malloc(len + 3);
    doc[0] = '[';
    memcpy(doc + 1, s, len);
    memcpy(doc + 1 + len, "]", 2);
    json_error_t e;
    json_t *j = json_loads(doc, 0, &e);
    ck_assert_msg(j != NULL, "invalid JSON: %s\n%s", e.text, doc);
    ck_assert_uint_eq(json_array_size(j), n);
    free(doc);
    free(s);
    return j;
}

static const char *attr(json_t *span, const char *key, const char *type)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(span, "attributes"), i, a) {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
            return json_string_value(json_object_get(json_object_get(a, "value"), type));
    }
    return NULL;
}

START_TEST(server_and_client)
{
    req.trace.has_parent = true;
    req.trace.clients = &cs;
    json_t *j = spans();
    json_t *s = json_array_get(j, 0), *c = json_array_get(j, 1);
    ck_assert_str_eq(json_string_value(json_object_get(s, "traceId")),
                     "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    ck_assert_str_eq(json_string_value(json_object_get(s, "spanId")), "1011121314151617");
    ck_assert_str_eq(json_string_value(json_object_get(s, "parentSpanId")), "2021222324252627");
    ck_assert_str_eq(json_string_value(json_object_get(c, "parentSpanId")), "1011121314151617");
    ck_assert_str_eq(json_string_value(json_object_get(c, "spanId")), "3031323334353637");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "kind")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "kind")), 3);
    ck_assert_str_eq(json_string_value(json_object_get(s, "startTimeUnixNano")),
                     "1700000000000000000");
    ck_assert_str_eq(json_string_value(json_object_get(s, "endTimeUnixNano")),
                     "1700000000000000900");
    ck_assert_str_eq(attr(s, "http.route", "stringValue"), "/api/*");
    ck_assert_str_eq(attr(s, "server.address", "stringValue"), "::1");
    ck_assert_str_eq(attr(s, "http.response.status_code", "intValue"), "200");
    ck_assert_str_eq(attr(s, "network.peer.address", "stringValue"), "10.0.0.1");
    ck_assert_str_eq(attr(s, "network.protocol.version", "stringValue"), "1.1");
    ck_assert_str_eq(attr(c, "server.port", "intValue"), "9001");
    ck_assert_ptr_null(attr(s, "error.type", "stringValue"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(s, "status"), "code")), 0);
    json_decref(j);
}
END_TEST

START_TEST(hostile_values_stay_json)
{
    /* a client writes these; the plugin API copies what a plugin gives */
    hs[0].value = "a\"b\\c\x01\x7f\xc3\xa9";
    hs[0].value_len = 9;
    req.client.http.method = "PURGE";
    req.client.http.method_len = 5;
    tg_span_attr_t a = {.key = "k\"\n", .value = "v\\\x02"};
    tg_span_event_t e = {.time_ns = 5, .name = "ev\"", .key = "x", .value = "\xff"};
    req.trace.attrs = &a;
    req.trace.events = &e;
    json_t *j = spans();
    json_t *s = json_array_get(j, 0);
    ck_assert_str_eq(attr(s, "user_agent.original", "stringValue"),
                     "a\"b\\c\x01\x7f\xc3\x83\xc2\xa9"); /* each byte >= 0x80 as \u00XX */
    ck_assert_str_eq(attr(s, "http.request.method", "stringValue"), "_OTHER");
    ck_assert_str_eq(attr(s, "http.request.method_original", "stringValue"), "PURGE");
    ck_assert_str_eq(attr(s, "k\"\n", "stringValue"), "v\\\x02");
    json_t *ev = json_array_get(json_object_get(s, "events"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "name")), "ev\"");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "timeUnixNano")), "5");
    json_decref(j);
}
END_TEST

START_TEST(http2_version)
{
    req.proto = &h2;
    json_t *j = spans();
    ck_assert_str_eq(attr(json_array_get(j, 0), "network.protocol.version", "stringValue"), "2");
    json_decref(j);
}
END_TEST

START_TEST(errors)
{
    req.resp.status = 502;
    cs.status = 0;
    cs.error = "upstream connect failed";
    req.trace.clients = &cs;
    json_t *j = spans();
    json_t *s = json_array_get(j, 0), *c = json_array_get(j, 1);
    ck_assert_str_eq(attr(s, "error.type", "stringValue"), "502");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(s, "status"), "code")), 2);
    ck_assert_str_eq(attr(c, "error.type", "stringValue"), "upstream connect failed");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "status"), "message")),
                     "upstream connect failed");
    ck_assert_ptr_null(attr(c, "http.response.status_code", "intValue"));
    json_decref(j);
    /* a 404 is the client's: no error on the SERVER span, one on a CLIENT span */
    req.resp.status = 404;
    cs.status = 404;
    cs.error = NULL;
    j = spans();
    ck_assert_ptr_null(attr(json_array_get(j, 0), "error.type", "stringValue"));
    ck_assert_str_eq(attr(json_array_get(j, 1), "error.type", "stringValue"), "404");
    json_decref(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("span_json");
    TCase *tc = tcase_create("span_json");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, server_and_client);
    tcase_add_test(tc, hostile_values_stay_json);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, http2_version);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
