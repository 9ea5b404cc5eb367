/* Unit tests for src/h1_head.c: the one HTTP/1.1 response head writer, for
 * generated replies and upstream responses alike. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "h1_head.h"

static struct evbuffer *out;

static void setup(void)
{
    out = evbuffer_new();
}

static void teardown(void)
{
    evbuffer_free(out);
}

#define H(n, v) ((tg_http_header_t){n, sizeof(n) - 1, v, sizeof(v) - 1})

/* out as a string (drained); the returned length must match what was added. */
static char *take(size_t written)
{
    static char s[4096];
    ck_assert_uint_eq(evbuffer_get_length(out), written);
    size_t n = evbuffer_remove(out, s, sizeof(s) - 1);
    s[n] = '\0';
    return s;
}

START_TEST(test_generated_reply_with_length)
{
    tg_http_header_t hs[] = {H("Content-Type", "application/json")};
    tg_http_response_t resp = {.status = 404, .headers = hs, .num_headers = 1};
    tg_http_header_t extra[] = {H("X-Extra", "1")};
    tg_h1_head_t h = {.resp = &resp,
                      .extra = extra,
                      .nextra = 1,
                      .request_id = "abc",
                      .request_id_len = 3,
                      .framing = TG_H1_LENGTH,
                      .length = 12,
                      .keepalive = true};
    size_t n = tg_h1_head_write(out, &h);
    ck_assert_str_eq(take(n), "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                              "X-Extra: 1\r\nX-Request-Id: abc\r\nContent-Length: 12\r\n\r\n");
}
END_TEST

START_TEST(test_hop_fields_and_framing_of_the_upstream_dropped)
{
    tg_http_header_t hs[] = {H("Connection", "x-hop"), H("X-Hop", "1"),
                             H("Keep-Alive", "t=5"),   H("Transfer-Encoding", "chunked"),
                             H("Content-Length", "7"), H("X-Request-Id", "theirs"),
                             H("Server", "o")};
    tg_http_response_t resp = {
        .status = 200, .reason = "Fine", .reason_len = 4, .headers = hs, .num_headers = 7};
    tg_h1_head_t h = {.resp = &resp,
                      .request_id = "r",
                      .request_id_len = 1,
                      .framing = TG_H1_CHUNKED,
                      .keepalive = false};
    size_t n = tg_h1_head_write(out, &h);
    ck_assert_str_eq(take(n), "HTTP/1.1 200 Fine\r\nServer: o\r\nX-Request-Id: r\r\n"
                              "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
}
END_TEST

START_TEST(test_bodiless_keeps_the_representation_length)
{
    tg_http_header_t hs[] = {H("Content-Length", "42")};
    tg_http_response_t resp = {.status = 200, .headers = hs, .num_headers = 1};
    tg_h1_head_t h = {.resp = &resp,
                      .request_id = "r",
                      .request_id_len = 1,
                      .framing = TG_H1_NONE,
                      .keepalive = true,
                      .client10 = true};
    size_t n = tg_h1_head_write(out, &h);
    ck_assert_str_eq(take(n), "HTTP/1.1 200 OK\r\nX-Request-Id: r\r\nContent-Length: 42\r\n"
                              "Connection: keep-alive\r\n\r\n");
    resp.status = 204; /* never a length on a 204 */
    n = tg_h1_head_write(out, &h);
    ck_assert_str_eq(take(n), "HTTP/1.1 204 No Content\r\nX-Request-Id: r\r\n"
                              "Connection: keep-alive\r\n\r\n");
}
END_TEST

START_TEST(test_close_delimited_and_upgrade)
{
    tg_http_header_t hs[] = {H("Upgrade", "websocket"), H("Connection", "Upgrade"),
                             H("Sec-WebSocket-Accept", "k")};
    tg_http_response_t resp = {.status = 101, .headers = hs, .num_headers = 3};
    tg_h1_head_t h = {.resp = &resp,
                      .request_id = "r",
                      .request_id_len = 1,
                      .framing = TG_H1_UPGRADE,
                      .keepalive = true};
    size_t n = tg_h1_head_write(out, &h);
    ck_assert_str_eq(take(n),
                     "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: k\r\n"
                     "X-Request-Id: r\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    tg_http_response_t plain = {.status = 200};
    h = (tg_h1_head_t){.resp = &plain,
                       .request_id = "r",
                       .request_id_len = 1,
                       .framing = TG_H1_CLOSE,
                       .keepalive = false,
                       .client10 = true};
    n = tg_h1_head_write(out, &h);
    ck_assert_str_eq(take(n), "HTTP/1.1 200 OK\r\nX-Request-Id: r\r\nConnection: close\r\n\r\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h1_head");
    TCase *tc = tcase_create("h1_head");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_generated_reply_with_length);
    tcase_add_test(tc, test_hop_fields_and_framing_of_the_upstream_dropped);
    tcase_add_test(tc, test_bodiless_keeps_the_representation_length);
    tcase_add_test(tc, test_close_delimited_and_upgrade);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
