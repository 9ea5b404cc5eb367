/* Unit tests for src/trace_context.c: traceparent values a client may send
 * (W3C Trace Context section 3.2 and its test suite's hostile cases), the
 * value written, and the ratio sampler. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_context.h"

#define GOOD "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static int parse(const char *v)
{
    tg_traceparent_t p;
    return tg_traceparent_parse(v, strlen(v), &p);
}

START_TEST(test_valid)
{
    tg_traceparent_t p;
    ck_assert_int_eq(tg_traceparent_parse(GOOD, strlen(GOOD), &p), 0);
    ck_assert_uint_eq(p.trace_id[0], 0x0a);
    ck_assert_uint_eq(p.trace_id[15], 0x9c);
    ck_assert_uint_eq(p.parent_id[0], 0xb7);
    ck_assert_uint_eq(p.parent_id[7], 0x31);
    ck_assert_uint_eq(p.flags, 1);
    ck_assert_int_eq(parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"), 0);
    /* unknown flag bits are kept for the caller to ignore */
    ck_assert_int_eq(parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff"), 0);
    /* a later version: the version-00 fields are read, the rest ignored */
    ck_assert_int_eq(parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), 0);
    ck_assert_int_eq(parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-ever"), 0);
}
END_TEST

START_TEST(test_hostile)
{
    static const char *const bad[] = {
        "",
        "00",
        /* version ff is forbidden; versions are lower-case hex */
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "0G-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "AA-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        /* version 00 is exactly 55 bytes */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
        /* a later version longer than 55 bytes continues with '-' */
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
        /* upper-case hex is not folded */
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0A",
        /* all-zero ids */
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        /* separators, lengths */
        "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331_01",
        "00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319cb-7ad6b7169203331-01",
        "00--af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        /* white space, signs, non-hex */
        " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 ",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333 -01",
        "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i]) < 0, "accepted '%s'", bad[i]);
    /* NUL inside: the length rules, not C strings */
    char nul[] = GOOD;
    nul[20] = '\0';
    tg_traceparent_t p;
    ck_assert_int_lt(tg_traceparent_parse(nul, sizeof(nul) - 1, &p), 0);
    ck_assert_int_lt(tg_traceparent_parse(NULL, 0, &p), 0);
    /* every single-byte change at a separator or in a field either still
     * parses as hex or is refused; it never reads past the value */
    for (size_t i = 0; i < 55; i++) {
        char v[56];
        memcpy(v, GOOD, 56);
        for (int c = 1; c < 256; c++) {
            v[i] = (char)c;
            (void)tg_traceparent_parse(v, 55, &p);
        }
    }
}
END_TEST

START_TEST(test_format)
{
    tg_traceparent_t p;
    ck_assert_int_eq(tg_traceparent_parse(GOOD, strlen(GOOD), &p), 0);
    char out[TG_TRACEPARENT_LEN + 1];
    tg_traceparent_format(p.trace_id, p.parent_id, 1, out);
    ck_assert_str_eq(out, GOOD);
    tg_traceparent_format(p.trace_id, p.parent_id, 0, out);
    ck_assert_str_eq(out, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    ck_assert_int_eq(parse(out), 0);
}
END_TEST

START_TEST(test_ratio)
{
    uint8_t id[16] = {0};
    ck_assert(!tg_trace_ratio_sampled(id, 0.0));
    ck_assert(tg_trace_ratio_sampled(id, 1.0));
    ck_assert(tg_trace_ratio_sampled(id, 0.001)); /* 0 is below any positive bound */
    memset(id, 0xff, 16);
    ck_assert(!tg_trace_ratio_sampled(id, 0.999));
    ck_assert(tg_trace_ratio_sampled(id, 1.0));
    /* only the last 7 bytes count */
    memset(id, 0, 16);
    id[8] = 0xff;
    ck_assert(tg_trace_ratio_sampled(id, 0.01));
    id[9] = 0x80; /* half-way */
    ck_assert(!tg_trace_ratio_sampled(id, 0.49));
    ck_assert(tg_trace_ratio_sampled(id, 0.51));
    /* statistically: 100000 pseudo-random ids at 0.1 */
    unsigned hits = 0;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 100000; i++) {
        for (int b = 0; b < 16; b += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(id + b, &x, 8);
        }
        hits += tg_trace_ratio_sampled(id, 0.1);
    }
    ck_assert_uint_gt(hits, 9700);
    ck_assert_uint_lt(hits, 10300);
}
END_TEST

/* The pair table against printf, for every byte value. */
START_TEST(test_hex_every_byte)
{
    uint8_t b[256];
    for (int i = 0; i < 256; i++)
        b[i] = (uint8_t)i;
    char out[513], want[513];
    tg_trace_hex(b, 256, out);
    for (int i = 0; i < 256; i++)
        snprintf(want + 2 * i, 3, "%02x", i);
    ck_assert_str_eq(out, want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_context");
    TCase *tc = tcase_create("trace_context");
    tcase_add_test(tc, test_valid);
    tcase_add_test(tc, test_hostile);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_ratio);
    tcase_add_test(tc, test_hex_every_byte);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
