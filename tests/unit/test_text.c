/* Unit tests for src/text.c and the inline tg_hex_value (include/tollgate/text.h),
 * byte by byte against the RFC grammars. Inputs sit at the end of a malloc'd
 * block so that ASan catches a read past their length. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/text.h"

static char *at_end(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    return b;
}

/* RFC 9110 section 5.6.2. */
static bool ref_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 9110 section 5.5: field-vchar, SP, HTAB. */
static bool ref_field(int c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80;
}

START_TEST(token_every_byte)
{
    for (int c = 0; c < 256; c++) {
        char one = (char)c, three[3] = {'a', (char)c, 'z'};
        ck_assert_msg(tg_token_valid(&one, 1) == ref_tchar(c), "byte 0x%02x", c);
        ck_assert_msg(tg_token_valid(three, 3) == ref_tchar(c), "byte 0x%02x", c);
    }
}
END_TEST

START_TEST(token_strings)
{
    ck_assert(tg_token_valid("X-User-Id", 9));
    ck_assert(tg_token_valid("!#$%&'*+-.^_`|~09azAZ", 21));
    ck_assert(!tg_token_valid("", 0));
    ck_assert(!tg_token_valid("a b", 3));
    ck_assert(!tg_token_valid("a:b", 3));
    ck_assert(!tg_token_valid("a\0b", 3)); /* the length, not a NUL, ends the input */
    ck_assert(tg_token_valid("ab\0", 2));
    char *v = at_end("Content-Type", 12);
    ck_assert(tg_token_valid(v, 12));
    free(v);
}
END_TEST

START_TEST(field_value_every_byte)
{
    for (int c = 0; c < 256; c++) {
        char one = (char)c, three[3] = {'a', (char)c, 'z'};
        ck_assert_msg(tg_field_value_valid(&one, 1) == ref_field(c), "byte 0x%02x", c);
        ck_assert_msg(tg_field_value_valid(three, 3) == ref_field(c), "byte 0x%02x", c);
    }
}
END_TEST

START_TEST(query_bytes_every_byte)
{
    for (int c = 0; c < 256; c++) {
        char one = (char)c, three[3] = {'a', (char)c, 'z'};
        bool want = c >= 0x21 && c <= 0x7e && c != '#';
        ck_assert_msg(tg_query_bytes_valid(&one, 1) == want, "byte 0x%02x", c);
        ck_assert_msg(tg_query_bytes_valid(three, 3) == want, "byte 0x%02x", c);
    }
    ck_assert(tg_query_bytes_valid("", 0));
    ck_assert(tg_query_bytes_valid(NULL, 0));
    ck_assert(tg_query_bytes_valid("a=1&b=%20", 9));
    ck_assert(!tg_query_bytes_valid("a=1 b", 5));
    ck_assert(!tg_query_bytes_valid("a=1#f", 5));
}
END_TEST

START_TEST(field_value_strings)
{
    ck_assert(tg_field_value_valid("", 0));
    ck_assert(tg_field_value_valid("Bearer realm=\"x\", a=b", 21));
    ck_assert(tg_field_value_valid(" padded\t", 8));
    ck_assert(tg_field_value_valid("caf\xc3\xa9", 5)); /* obs-text */
    ck_assert(!tg_field_value_valid("a\r\nX-Injected: 1", 16));
    ck_assert(!tg_field_value_valid("a\nb", 3));
    ck_assert(!tg_field_value_valid("a\0b", 3));
    ck_assert(!tg_field_value_valid("a\x7f", 2));
    char *v = at_end("value", 5);
    ck_assert(tg_field_value_valid(v, 5));
    free(v);
}
END_TEST

START_TEST(hex_value_every_byte)
{
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        ck_assert_msg(tg_hex_value((unsigned char)c) == want, "byte 0x%02x", c);
    }
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, token_every_byte);
    tcase_add_test(tc, token_strings);
    tcase_add_test(tc, field_value_every_byte);
    tcase_add_test(tc, field_value_strings);
    tcase_add_test(tc, query_bytes_every_byte);
    tcase_add_test(tc, hex_value_every_byte);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(text_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
