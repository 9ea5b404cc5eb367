/* Unit tests for src/h2_session.c, in memory: a libnghttp2 client session
 * talks to ours through two buffers; the handler records what it is given. */
#include <check.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_session.h"
#include "tollgate/clock.h"

typedef struct {
    int requests, rejects, closed, bodies;
    char head[4096];
    bool chunked, end_stream;
    int reject_status;
    size_t body_len;
    bool respond; /* answer 200 "ok" at once */
    int rid;      /* with an X-Request-Id made of this number (when > 0) */
} rec_t;

static rec_t rec;
static tg_h2_t *srv;
static nghttp2_session *cli;
static struct evbuffer *wire;
/* what the client saw */
static int c_status[64];
static char c_data[64][256];
static uint32_t c_rst[64];
static int c_goaway = -1;
static int c_rid_seen, c_rid_never_indexed;

static int on_request(tg_h2_stream_t *st, struct evbuffer *head, bool chunked, bool end_stream,
                      void *arg)
{
    (void)arg;
    rec.requests++;
    size_t n = evbuffer_get_length(head);
    if (n >= sizeof(rec.head))
        n = sizeof(rec.head) - 1;
    evbuffer_copyout(head, rec.head, n);
    rec.head[n] = 0;
    rec.chunked = chunked;
    rec.end_stream = end_stream;
    if (rec.respond) {
        char rid[16];
        int k = snprintf(rid, sizeof(rid), "%08d", rec.rid);
        tg_http_header_t hs[] = {{"Content-Type", 12, "text/plain", 10},
                                 {"X-Request-Id", 12, rid, (size_t)k}};
        ck_assert_int_eq(tg_h2_stream_respond(st, 200, hs, rec.rid > 0 ? 2 : 1, false), 0);
        rec.rid += rec.rid > 0;
        evbuffer_add(tg_h2_stream_out(st), "ok", 2);
        tg_h2_stream_resume(st, true);
    }
    return 0;
}

static int on_reject(tg_h2_stream_t *st, int status, const char *msg, void *arg)
{
    (void)msg, (void)arg;
    rec.rejects++;
    rec.reject_status = status;
    return tg_h2_stream_respond(st, status, NULL, 0, true);
}

static void on_body(tg_h2_stream_t *st, bool end, void *arg)
{
    (void)end, (void)arg;
    rec.bodies++;
    size_t n = tg_h2_stream_in_length(st);
    rec.body_len += n;
    if (n > 0) {
        evbuffer_drain(tg_h2_stream_in(st), n);
        tg_h2_stream_consumed(st, n);
    }
}

static void on_drained(tg_h2_stream_t *st, void *arg)
{
    (void)st, (void)arg;
}

static void on_closed(tg_h2_stream_t *st, void *arg)
{
    (void)st, (void)arg;
    rec.closed++;
}

static const tg_h2_handler_t handler = {on_request, on_reject, on_body, on_drained, on_closed};

/* ---- the client ---- */

static int c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)s, (void)ud;
    if (nl == 12 && memcmp(name, "x-request-id", 12) == 0) {
        c_rid_seen++;
        c_rid_never_indexed += (flags & NGHTTP2_NV_FLAG_NO_INDEX) != 0;
    }
    if (nl == 7 && memcmp(name, ":status", 7) == 0 && f->hd.stream_id < 128)
        c_status[f->hd.stream_id / 2] = atoi((const char *)value) * (vl > 0);
    return 0;
}

static int c_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                        void *ud)
{
    (void)s, (void)flags, (void)ud;
    if (id < 128)
        strncat(c_data[id / 2], (const char *)d, n < 255 ? n : 255);
    return 0;
}

static int c_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s, (void)ud;
    if (f->hd.type == NGHTTP2_RST_STREAM && f->hd.stream_id < 128)
        c_rst[f->hd.stream_id / 2] = f->rst_stream.error_code + 1;
    if (f->hd.type == NGHTTP2_GOAWAY)
        c_goaway = (int)f->goaway.error_code;
    return 0;
}

static void setup(void)
{
    memset(&rec, 0, sizeof(rec));
    memset(c_status, 0, sizeof(c_status));
    memset(c_data, 0, sizeof(c_data));
    memset(c_rst, 0, sizeof(c_rst));
    c_goaway = -1;
    c_rid_seen = c_rid_never_indexed = 0;
    tg_h2_limits_t lim = {.max_concurrent_streams = 100,
                          .initial_window_size = 65535,
                          .max_header_list_size = 2048,
                          .idle_timeout_ms = 1000};
    tg_h2_timeouts_t to = {.header_ms = 1000, .stall_ms = 1000};
    srv = tg_h2_new(&lim, &to, 0, &handler, NULL);
    ck_assert_ptr_nonnull(srv);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_frame);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_http_messaging(opt, 1); /* it sends what it is told */
    ck_assert_int_eq(nghttp2_session_client_new2(&cli, cb, NULL, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0);
    wire = evbuffer_new();
}

static void teardown(void)
{
    tg_h2_free(srv);
    nghttp2_session_del(cli);
    evbuffer_free(wire);
}

/* Client -> server until quiet; returns tg_h2_recv's last result. */
static int exchange(void)
{
    int r = 0;
    for (int round = 0; round < 50; round++) {
        const uint8_t *p;
        ssize_t n;
        bool moved = false;
        while ((n = nghttp2_session_mem_send(cli, &p)) > 0) {
            moved = true;
            if (r == 0)
                r = tg_h2_recv(srv, p, (size_t)n);
        }
        tg_h2_send(srv, wire, 1 << 20);
        size_t len = evbuffer_get_length(wire);
        if (len > 0) {
            moved = true;
            nghttp2_session_mem_recv(cli, evbuffer_pullup(wire, -1), len);
            evbuffer_drain(wire, len);
        }
        if (!moved)
            break;
    }
    return r;
}

#define NV(n, v)                                                                           \
    {                                                                                      \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE \
    }

static int32_t get(const char *path)
{
    nghttp2_nv nva[] = {
        NV(":method", "GET"),
        NV(":scheme", "https"),
        NV(":authority", "api.test"),
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
        NV("cookie", "a=1"),
        NV("cookie", "b=2")};
    return nghttp2_submit_request(cli, NULL, nva, 6, NULL, NULL);
}

START_TEST(request_and_response)
{
    rec.respond = true;
    int32_t id = get("/x?y");
    ck_assert_int_eq(exchange(), 0);
    ck_assert_int_eq(rec.requests, 1);
    ck_assert_str_eq(rec.head, "GET /x?y HTTP/1.1\r\nhost: api.test\r\ncookie: a=1; b=2\r\n\r\n");
    ck_assert(rec.end_stream && !rec.chunked);
    ck_assert_int_eq(c_status[id / 2], 200);
    ck_assert_str_eq(c_data[id / 2], "ok");
    ck_assert_int_eq(rec.closed, 1);
    ck_assert_uint_eq(tg_h2_open_streams(srv), 0);
}
END_TEST

/* A value new in every response stays out of the HPACK table: each one
 * would evict an entry and lengthen the encoder's search. */
START_TEST(request_id_is_never_indexed)
{
    rec.respond = true;
    rec.rid = 1;
    size_t table = nghttp2_session_get_hd_inflate_dynamic_table_size(cli);
    for (int i = 0; i < 3; i++) {
        get("/");
        ck_assert_int_eq(exchange(), 0);
    }
    ck_assert_int_eq(c_rid_seen, 3);
    ck_assert_int_eq(c_rid_never_indexed, 3);
    /* content-type: text/plain, indexed once and then referenced */
    ck_assert_uint_eq(nghttp2_session_get_hd_inflate_dynamic_table_size(cli) - table, 12 + 10 + 32);
}
END_TEST

/* Streams one after the other reuse the closed ones' objects: each head is
 * its own. */
START_TEST(sequential_streams_reuse_objects)
{
    rec.respond = true;
    for (int i = 0; i < 6; i++) {
        char path[16];
        snprintf(path, sizeof(path), "/s%d", i);
        int32_t id = get(path);
        ck_assert_int_eq(exchange(), 0);
        char want[128];
        snprintf(want, sizeof(want),
                 "GET %s HTTP/1.1\r\nhost: api.test\r\ncookie: a=1; b=2\r\n\r\n", path);
        ck_assert_str_eq(rec.head, want);
        ck_assert_str_eq(c_data[id / 2], "ok");
    }
    ck_assert_int_eq(rec.requests, 6);
    ck_assert_int_eq(rec.closed, 6);
}
END_TEST

START_TEST(malformed_is_a_stream_error)
{
    nghttp2_nv nva[] = {NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"),
                        NV(":authority", "a"), NV("host", "b")};
    int32_t id = nghttp2_submit_request(cli, NULL, nva, 5, NULL, NULL);
    ck_assert_int_eq(exchange(), 0);
    ck_assert_int_eq(rec.requests, 0);
    ck_assert_uint_eq(c_rst[id / 2], NGHTTP2_PROTOCOL_ERROR + 1);
    ck_assert_int_eq(c_goaway, -1); /* the connection goes on */
    rec.respond = true;
    id = get("/next");
    exchange();
    ck_assert_int_eq(c_status[id / 2], 200);
}
END_TEST

START_TEST(header_list_over_the_limit_is_rejected_431)
{
    char big[1500];
    memset(big, 'v', sizeof(big));
    nghttp2_nv nva[] = {NV(":method", "GET"),
                        NV(":scheme", "https"),
                        NV(":path", "/"),
                        NV(":authority", "a"),
                        {(uint8_t *)"x-a", (uint8_t *)big, 3, sizeof(big), NGHTTP2_NV_FLAG_NONE},
                        {(uint8_t *)"x-b", (uint8_t *)big, 3, sizeof(big), NGHTTP2_NV_FLAG_NONE}};
    int32_t id = nghttp2_submit_request(cli, NULL, nva, 6, NULL, NULL);
    ck_assert_int_eq(exchange(), 0);
    ck_assert_int_eq(rec.requests, 0);
    ck_assert_int_eq(rec.rejects, 1);
    ck_assert_int_eq(c_status[id / 2], 431);
}
END_TEST

START_TEST(rapid_reset_ends_the_connection)
{
    int r = 0;
    for (int i = 0; i < TG_H2_RESET_BURST + 20 && r == 0; i++) {
        int32_t id = get("/r");
        r = exchange(); /* HEADERS out first: a reset before them sends neither */
        nghttp2_submit_rst_stream(cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        if (r == 0)
            r = exchange();
    }
    ck_assert_int_eq(r, -1);
    exchange();
    ck_assert_int_eq(c_goaway, NGHTTP2_ENHANCE_YOUR_CALM);
}
END_TEST

static size_t body_left;

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s, (void)id, (void)src, (void)ud;
    size_t n = body_left < len ? body_left : len;
    memset(buf, 'b', n);
    body_left -= n;
    if (body_left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* 200,000 bytes through a 64 KiB stream window: it only moves because the
 * handler consumes what it is given (no automatic WINDOW_UPDATE). */
/* Resets the client provokes (here: malformed requests) use the same
 * budget as its own. */
START_TEST(provoked_resets_count_as_rapid_reset)
{
    int r = 0;
    for (int i = 0; i < TG_H2_RESET_BURST + 20 && r == 0; i++) {
        nghttp2_nv nva[] = {NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"),
                            NV(":authority", "a"), NV("connection", "close")};
        nghttp2_submit_request(cli, NULL, nva, 5, NULL, NULL);
        r = exchange();
    }
    exchange();
    ck_assert_int_eq(c_goaway, NGHTTP2_ENHANCE_YOUR_CALM);
    ck_assert_int_eq(rec.requests, 0);
}
END_TEST

START_TEST(request_body_window_follows_consumption)
{
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "https"), NV(":path", "/u"),
                        NV(":authority", "a")};
    nghttp2_data_provider dp = {.source.ptr = NULL, .read_callback = body_read};
    body_left = 200000;
    nghttp2_submit_request(cli, NULL, nva, 4, &dp, NULL);
    ck_assert_int_eq(exchange(), 0);
    ck_assert_int_eq(rec.requests, 1);
    ck_assert(rec.chunked && !rec.end_stream);
    ck_assert_uint_eq(rec.body_len, 200000);
}
END_TEST

START_TEST(header_block_left_open_times_out)
{
    /* HEADERS without END_HEADERS, by hand. */
    exchange(); /* the prefaces */
    uint8_t f[9 + 1] = {0, 0, 1, NGHTTP2_HEADERS, 0, 0, 0, 0, 1, 0x82 /* :method GET */};
    ck_assert_int_eq(tg_h2_recv(srv, f, sizeof(f)), 0);
    ck_assert_uint_eq(tg_h2_open_streams(srv), 1);
    ck_assert_int_eq(tg_h2_tick(srv, tg_now_ms()), 0);
    ck_assert_int_eq(tg_h2_tick(srv, tg_now_ms() + 1000), -1);
    tg_h2_send(srv, wire, 1 << 20);
    ck_assert_uint_gt(evbuffer_get_length(wire), 0); /* the GOAWAY */
    evbuffer_drain(wire, evbuffer_get_length(wire));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("h2_session");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, request_and_response);
    tcase_add_test(tc, request_id_is_never_indexed);
    tcase_add_test(tc, sequential_streams_reuse_objects);
    tcase_add_test(tc, malformed_is_a_stream_error);
    tcase_add_test(tc, header_list_over_the_limit_is_rejected_431);
    tcase_add_test(tc, rapid_reset_ends_the_connection);
    tcase_add_test(tc, provoked_resets_count_as_rapid_reset);
    tcase_add_test(tc, request_body_window_follows_consumption);
    tcase_add_test(tc, header_block_left_open_times_out);
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
