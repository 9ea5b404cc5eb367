/* Unit tests for src/json_escape.c: the inside of the JSON strings the
 * gateway writes itself. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json_escape.h"

static char *escaped(const char *s, size_t len)
{
    static char out[256];
    struct evbuffer *b = evbuffer_new();
    tg_json_escape(b, s, len);
    size_t n = evbuffer_remove(b, out, sizeof(out) - 1);
    out[n] = '\0';
    evbuffer_free(b);
    return out;
}

START_TEST(test_plain_text_is_copied)
{
    ck_assert_str_eq(escaped("hello, world ~!", 15), "hello, world ~!");
    ck_assert_str_eq(escaped("", 0), "");
}
END_TEST

START_TEST(test_quotes_backslashes_controls)
{
    ck_assert_str_eq(escaped("a\"b\\c", 5), "a\\\"b\\\\c");
    ck_assert_str_eq(escaped("\n\r\t\x01\x1f\x7f", 6),
                     "\\u000a\\u000d\\u0009\\u0001\\u001f\\u007f");
    ck_assert_str_eq(escaped("a\0b", 3), "a\\u0000b");
}
END_TEST

START_TEST(test_bytes_above_ascii_become_escapes)
{
    /* byte by byte: the output is ASCII whatever the input's encoding */
    ck_assert_str_eq(escaped("caf\xc3\xa9", 5), "caf\\u00c3\\u00a9");
    ck_assert_str_eq(escaped("\xff", 1), "\\u00ff");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json_escape");
    TCase *tc = tcase_create("json_escape");
    tcase_add_test(tc, test_plain_text_is_copied);
    tcase_add_test(tc, test_quotes_backslashes_controls);
    tcase_add_test(tc, test_bytes_above_ascii_become_escapes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
