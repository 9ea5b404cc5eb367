/* Unit tests for src/percent.c: percent-decoding (lenient, "+", strict) and
 * percent-encoding (include/tollgate/text.h). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/text.h"

/* in copied to the end of a malloc'd block (ASan: no read past len). */
static char *at_end(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    return b;
}

static void decodes_n(const char *in, unsigned flags, const char *want, size_t want_len)
{
    size_t n = strlen(in);
    char *v = at_end(in, n), out[128];
    ssize_t got =
        flags ? tg_percent_decode_flags(v, n, out, flags) : (ssize_t)tg_percent_decode(v, n, out);
    ck_assert_int_eq(got, (ssize_t)want_len);
    ck_assert_mem_eq(out, want, want_len);
    free(v);
}

/* want is a string literal: its length is known, NULs included. */
#define decodes(in, flags, want) decodes_n(in, flags, want, sizeof(want) - 1)

START_TEST(lenient)
{
    decodes("", 0, "");
    decodes("plain", 0, "plain");
    decodes("%61b%2Fc%2fd", 0, "ab/c/d");
    /* Not an encoding: kept as is, also at the very end. */
    decodes("%zz%4+%", 0, "%zz%4+%");
    decodes("%4", 0, "%4");
    decodes("a%", 0, "a%");
    decodes("a+b", 0, "a+b");
    decodes("%00x", 0, "\0x");  /* compares the length: a NUL is data */
    decodes("%252F", 0, "%2F"); /* decoded once */
}
END_TEST

START_TEST(in_place)
{
    char buf[] = "%41%42c%";
    size_t n = tg_percent_decode(buf, strlen(buf), buf);
    ck_assert_uint_eq(n, 4);
    ck_assert_mem_eq(buf, "ABc%", 4);
    char b2[] = "a+%2B";
    ck_assert_int_eq(tg_percent_decode_flags(b2, 5, b2, TG_PERCENT_PLUS), 3);
    ck_assert_mem_eq(b2, "a +", 3);
}
END_TEST

START_TEST(plus)
{
    decodes("a+b%2B", TG_PERCENT_PLUS, "a b+");
    decodes("+%zz", TG_PERCENT_PLUS, " %zz");
}
END_TEST

START_TEST(strict)
{
    decodes("a%20b+", TG_PERCENT_STRICT, "a b+");
    decodes("", TG_PERCENT_STRICT, "");
    static const char *const bad[] = {"%", "a%", "%4", "%zz", "%4g", "x%%41", "%+1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        char *v = at_end(bad[i], n), out[16];
        ck_assert_msg(tg_percent_decode_flags(v, n, out, TG_PERCENT_STRICT) == -1, "%s", bad[i]);
        ck_assert_msg(tg_percent_decode_flags(v, n, out, TG_PERCENT_STRICT | TG_PERCENT_PLUS) == -1,
                      "%s", bad[i]);
        free(v);
    }
    decodes("a+%41", TG_PERCENT_STRICT | TG_PERCENT_PLUS, "a A");
}
END_TEST

START_TEST(encode_every_byte)
{
    for (int c = 0; c < 256; c++) {
        char in = (char)c, out[3];
        size_t n = tg_percent_encode(&in, 1, out);
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved) {
            ck_assert_uint_eq(n, 1);
            ck_assert_int_eq(out[0], c);
        } else {
            static const char hex[] = "0123456789ABCDEF";
            ck_assert_uint_eq(n, 3);
            ck_assert(out[0] == '%' && out[1] == hex[c >> 4] && out[2] == hex[c & 15]);
        }
    }
}
END_TEST

/* encode then decode gives the input back, for every byte string shape. */
START_TEST(round_trip)
{
    char in[256], enc[3 * 256], dec[3 * 256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)(255 - i);
    size_t n = tg_percent_encode(in, sizeof(in), enc);
    ck_assert_uint_le(n, sizeof(enc));
    ck_assert_ptr_null(memchr(enc, '/', n));
    ck_assert_ptr_null(memchr(enc, '?', n));
    ck_assert_ptr_null(memchr(enc, '&', n));
    ck_assert_int_eq(tg_percent_decode_flags(enc, n, dec, TG_PERCENT_STRICT), 256);
    ck_assert_mem_eq(dec, in, sizeof(in));
    ck_assert_uint_eq(tg_percent_encode("", 0, enc), 0);
}
END_TEST

static Suite *percent_suite(void)
{
    Suite *s = suite_create("percent");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, lenient);
    tcase_add_test(tc, in_place);
    tcase_add_test(tc, plus);
    tcase_add_test(tc, strict);
    tcase_add_test(tc, encode_every_byte);
    tcase_add_test(tc, round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(percent_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
