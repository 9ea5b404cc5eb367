/* Unit tests for src/units.c (include/tollgate/units.h), and that the config
 * readers (conf_node.c) take the same syntax. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conf_node.h"
#include "tollgate/units.h"

#define SENTINEL UINT64_C(0xdeadbeef)

/* Parses s copied to the end of a malloc'd block (ASan: no read past len). */
static int parse(int (*fn)(const char *, size_t, uint64_t *), const char *s, size_t n,
                 uint64_t *out)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    *out = SENTINEL;
    int rc = fn(b, n, out);
    free(b);
    return rc;
}

static void ok(int (*fn)(const char *, size_t, uint64_t *), const char *s, uint64_t want)
{
    uint64_t v;
    ck_assert_msg(parse(fn, s, strlen(s), &v) == 0, "'%s'", s);
    ck_assert_msg(v == want, "'%s': %llu", s, (unsigned long long)v);
}

static void fails(int (*fn)(const char *, size_t, uint64_t *), const char *s, size_t n, int rc)
{
    uint64_t v;
    ck_assert_msg(parse(fn, s, n, &v) == rc, "'%.*s'", (int)n, s);
    ck_assert_msg(v == SENTINEL, "'%.*s' wrote its output", (int)n, s); /* untouched */
}

#define FAILS(fn, lit, rc) fails(fn, lit, sizeof(lit) - 1, rc)

START_TEST(uint_parse)
{
    ok(tg_uint_parse, "0", 0);
    ok(tg_uint_parse, "42", 42);
    ok(tg_uint_parse, "007", 7);
    ok(tg_uint_parse, "18446744073709551615", UINT64_MAX);
    FAILS(tg_uint_parse, "18446744073709551616", TG_UNITS_OVERFLOW);
    FAILS(tg_uint_parse, "99999999999999999999999", TG_UNITS_OVERFLOW);
    FAILS(tg_uint_parse, "", TG_UNITS_SYNTAX);
    FAILS(tg_uint_parse, "-1", TG_UNITS_SYNTAX);
    FAILS(tg_uint_parse, "+1", TG_UNITS_SYNTAX);
    FAILS(tg_uint_parse, " 1", TG_UNITS_SYNTAX);
    FAILS(tg_uint_parse, "1 ", TG_UNITS_SYNTAX);
    FAILS(tg_uint_parse, "1k", TG_UNITS_SYNTAX);
    FAILS(tg_uint_parse, "0x10", TG_UNITS_SYNTAX);
    FAILS(tg_uint_parse, "1\0002", TG_UNITS_SYNTAX);
}
END_TEST

START_TEST(duration_parse)
{
    ok(tg_duration_parse_ms, "250ms", 250);
    ok(tg_duration_parse_ms, "0s", 0);
    ok(tg_duration_parse_ms, "10s", 10000);
    ok(tg_duration_parse_ms, "1m", 60000);
    ok(tg_duration_parse_ms, "2h", 7200000);
    ok(tg_duration_parse_ms, "1d", 86400000);
    ok(tg_duration_parse_ms, "1m30s", 90000);
    ok(tg_duration_parse_ms, "1h1m1s1ms", 3661001);
    ok(tg_duration_parse_ms, "1s1s", 2000); /* parts add up */
    ok(tg_duration_parse_ms, "18446744073709551615ms", UINT64_MAX);
    FAILS(tg_duration_parse_ms, "", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "10", TG_UNITS_SYNTAX); /* the unit is never guessed */
    FAILS(tg_duration_parse_ms, "s", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "1m30", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "10 s", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "10S", TG_UNITS_SYNTAX);
    ok(tg_duration_parse_ms, "1.5s", 1500);
    ok(tg_duration_parse_ms, "0.25s", 250);
    ok(tg_duration_parse_ms, "1.5h", 5400000);
    ok(tg_duration_parse_ms, "1m0.5s", 60500);
    ok(tg_duration_parse_ms, "2.000ms", 2);
    ok(tg_duration_parse_ms, "0.001d", 86400);
    FAILS(tg_duration_parse_ms, "0.000000001d", TG_UNITS_PRECISION); /* 86.4 us */
    FAILS(tg_duration_parse_ms, "1.s", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, ".5s", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "1.5", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "1,5s", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "0.1234567891s", TG_UNITS_SYNTAX); /* 10 digits */
    FAILS(tg_duration_parse_ms, "0.5ms", TG_UNITS_PRECISION);
    FAILS(tg_duration_parse_ms, "1.0001s", TG_UNITS_PRECISION);
    FAILS(tg_duration_parse_ms, "-1s", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "10s\0", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "10\0s", TG_UNITS_SYNTAX);
    FAILS(tg_duration_parse_ms, "18446744073709551616ms", TG_UNITS_OVERFLOW);
    FAILS(tg_duration_parse_ms, "213503982335d", TG_UNITS_OVERFLOW);
    FAILS(tg_duration_parse_ms, "18446744073709551615ms1ms", TG_UNITS_OVERFLOW);
    /* Syntax wins over overflow: this is not a duration at all. */
    FAILS(tg_duration_parse_ms, "99999999999999999999999sx", TG_UNITS_SYNTAX);
}
END_TEST

START_TEST(size_parse)
{
    ok(tg_size_parse, "0", 0);
    ok(tg_size_parse, "512", 512);
    ok(tg_size_parse, "512B", 512);
    ok(tg_size_parse, "16KiB", 16384);
    ok(tg_size_parse, "10MiB", 10485760);
    ok(tg_size_parse, "1GiB", 1073741824);
    ok(tg_size_parse, "16KB", 16000);
    ok(tg_size_parse, "10MB", 10000000);
    ok(tg_size_parse, "1GB", 1000000000);
    ok(tg_size_parse, "16k", 16384);
    ok(tg_size_parse, "16K", 16384);
    ok(tg_size_parse, "10m", 10485760);
    ok(tg_size_parse, "10M", 10485760);
    ok(tg_size_parse, "1g", 1073741824);
    ok(tg_size_parse, "1G", 1073741824);
    FAILS(tg_size_parse, "", TG_UNITS_SYNTAX);
    FAILS(tg_size_parse, "KiB", TG_UNITS_SYNTAX);
    FAILS(tg_size_parse, "16 KiB", TG_UNITS_SYNTAX);
    FAILS(tg_size_parse, "16kib", TG_UNITS_SYNTAX);
    FAILS(tg_size_parse, "16Ki", TG_UNITS_SYNTAX);
    FAILS(tg_size_parse, "16KiBx", TG_UNITS_SYNTAX);
    FAILS(tg_size_parse, "1.5M", TG_UNITS_SYNTAX);
    FAILS(tg_size_parse, "16\0KiB", TG_UNITS_SYNTAX); /* a NUL is not the end */
    FAILS(tg_size_parse, "16KiB\0", TG_UNITS_SYNTAX);
    FAILS(tg_size_parse, "18446744073709551616", TG_UNITS_OVERFLOW);
    FAILS(tg_size_parse, "17179869184GiB", TG_UNITS_OVERFLOW);
    FAILS(tg_size_parse, "99999999999999999999x", TG_UNITS_SYNTAX);
}
END_TEST

/* The config readers are these parsers plus FILE:LINE:COL messages. */
START_TEST(config_readers_agree)
{
    const char *yaml = "a: 1m30s\nb: 16KiB\nc: 10\nd: 99999999999999999999999s\ne: 16 KiB\n";
    tg_conf_doc_t *doc;
    tg_conf_err_t err;
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
    const tg_conf_node_t *root = tg_conf_doc_root(doc);
    uint64_t v;
    ck_assert_int_eq(tg_conf_get_duration_ms(tg_conf_map_get(root, "a"), &v, &err), 0);
    ck_assert_uint_eq(v, 90000);
    ck_assert_int_eq(tg_conf_get_size(tg_conf_map_get(root, "b"), &v, &err), 0);
    ck_assert_uint_eq(v, 16384);
    ck_assert_int_eq(tg_conf_get_uint(tg_conf_map_get(root, "c"), 0, 100, &v, &err), 0);
    ck_assert_uint_eq(v, 10);
    ck_assert_int_eq(tg_conf_get_duration_ms(tg_conf_map_get(root, "c"), &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:3:4: expected a duration like 10s, got '10'");
    ck_assert_int_eq(tg_conf_get_duration_ms(tg_conf_map_get(root, "d"), &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:4:4: duration '99999999999999999999999s' is too large");
    ck_assert_int_eq(tg_conf_get_size(tg_conf_map_get(root, "e"), &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:5:4: expected a size like 16KiB, got '16 KiB'");
    ck_assert_int_eq(tg_conf_get_uint(tg_conf_map_get(root, "a"), 0, 100, &v, &err), -1);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected an integer, got '1m30s'");
    tg_conf_doc_free(doc);
}
END_TEST

static Suite *units_suite(void)
{
    Suite *s = suite_create("units");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, uint_parse);
    tcase_add_test(tc, duration_parse);
    tcase_add_test(tc, size_parse);
    tcase_add_test(tc, config_readers_agree);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(units_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
