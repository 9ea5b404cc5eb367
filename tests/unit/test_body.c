/* Unit tests for src/body.c: moving Content-Length, chunked and
 * read-until-close bodies between evbuffers, with and without re-framing. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"

static struct evbuffer *src, *dst;
static tg_body_t b;

static void setup(void)
{
    src = evbuffer_new();
    dst = evbuffer_new();
}

static void teardown(void)
{
    evbuffer_free(src);
    evbuffer_free(dst);
}

static void feed(const char *s)
{
    evbuffer_add(src, s, strlen(s));
}

/* dst as a string (drained). */
static char *take(void)
{
    static char out[4096];
    size_t n = evbuffer_remove(dst, out, sizeof(out) - 1);
    out[n] = '\0';
    return out;
}

START_TEST(test_length_stops_at_the_end)
{
    tg_body_init(&b, TG_BODY_LENGTH, 5, 0, false);
    feed("hel");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_MORE);
    feed("loNEXT");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_DONE);
    ck_assert_str_eq(take(), "hello");
    ck_assert_uint_eq(evbuffer_get_length(src), 4); /* the next request's bytes stay */
    ck_assert_uint_eq(b.moved, 5);
}
END_TEST

START_TEST(test_length_reframed_and_truncated)
{
    tg_body_init(&b, TG_BODY_LENGTH, 0, 0, false);
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_DONE);
    tg_body_init(&b, TG_BODY_LENGTH, 10, 0, false);
    feed("abc");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_MORE);
    ck_assert_int_eq(tg_body_eof(&b, dst), TG_BODY_ERROR);
    ck_assert_str_eq(b.error, "connection closed before the end of the body");
}
END_TEST

START_TEST(test_chunked_decoded)
{
    tg_body_init(&b, TG_BODY_CHUNKED, 0, 0, false);
    feed("5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_DONE);
    ck_assert_str_eq(take(), "hello world");
    ck_assert_uint_eq(b.moved, 11);
    ck_assert_uint_eq(evbuffer_get_length(src), 4);
}
END_TEST

START_TEST(test_chunked_reframed_canonically)
{
    tg_body_init(&b, TG_BODY_CHUNKED, 0, 0, true);
    feed("0005;ext\r\nhello\r\n0\r\nTrailer: x\r\n\r\n");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_DONE);
    ck_assert_str_eq(take(), "5\r\nhello\r\n0\r\n\r\n");
}
END_TEST

START_TEST(test_chunked_errors_and_limit)
{
    tg_body_init(&b, TG_BODY_CHUNKED, 0, 0, false);
    feed("zz\r\n");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_ERROR);
    ck_assert_ptr_nonnull(b.error);
    evbuffer_drain(src, evbuffer_get_length(src));
    tg_body_init(&b, TG_BODY_CHUNKED, 0, 4, false);
    feed("5\r\nhello\r\n0\r\n\r\n");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_TOO_LARGE);
    evbuffer_drain(src, evbuffer_get_length(src));
    tg_body_init(&b, TG_BODY_CHUNKED, 0, 0, false);
    feed("5\r\nhel");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_MORE);
    ck_assert_int_eq(tg_body_eof(&b, dst), TG_BODY_ERROR);
}
END_TEST

START_TEST(test_until_close)
{
    tg_body_init(&b, TG_BODY_UNTIL_CLOSE, 0, 0, true);
    feed("abc");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_MORE);
    ck_assert_int_eq(tg_body_eof(&b, dst), TG_BODY_DONE);
    ck_assert_str_eq(take(), "3\r\nabc\r\n0\r\n\r\n");
    tg_body_init(&b, TG_BODY_UNTIL_CLOSE, 0, 2, false);
    feed("abc");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 1 << 20), TG_BODY_TOO_LARGE);
}
END_TEST

START_TEST(test_backpressure_stops_the_pump)
{
    tg_body_init(&b, TG_BODY_LENGTH, 6, 0, false);
    evbuffer_add(dst, "queued", 6);
    feed("abcdef");
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 4), TG_BODY_MORE);
    ck_assert_uint_eq(evbuffer_get_length(src), 6);
    evbuffer_drain(dst, 6);
    ck_assert_int_eq(tg_body_pump(&b, src, dst, 4), TG_BODY_DONE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("body");
    TCase *tc = tcase_create("body");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_length_stops_at_the_end);
    tcase_add_test(tc, test_length_reframed_and_truncated);
    tcase_add_test(tc, test_chunked_decoded);
    tcase_add_test(tc, test_chunked_reframed_canonically);
    tcase_add_test(tc, test_chunked_errors_and_limit);
    tcase_add_test(tc, test_until_close);
    tcase_add_test(tc, test_backpressure_stops_the_pump);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
