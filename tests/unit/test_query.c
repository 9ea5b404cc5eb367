/*
 * One parameter of a query string: finding it under any spelling, removing it
 * (src/query.c, include/tollgate/text.h).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/text.h"

static size_t qfind(const char *q, const char *name, tg_span_t *param, tg_span_t *value)
{
    return tg_query_find(q, strlen(q), name, param, value);
}

static void span_is(tg_span_t s, const char *want)
{
    ck_assert_uint_eq(s.len, strlen(want));
    ck_assert_mem_eq(s.p, want, s.len);
}

START_TEST(query_find)
{
    tg_span_t p, v;
    ck_assert_uint_eq(qfind("x=1&access_token=abc&y=2", "access_token", &p, &v), 1);
    span_is(p, "access_token=abc");
    span_is(v, "abc");
    ck_assert_uint_eq(qfind("access_token=a&access_token=b", "access_token", &p, &v), 2);
    span_is(v, "a"); /* the first */
    /* A name spelled with percent-encodings is the same name. */
    ck_assert_uint_eq(qfind("%61ccess_token=f", "access_token", &p, &v), 1);
    span_is(v, "f");
    ck_assert_uint_eq(qfind("access_token=a&%61ccess%5Ftoken=f", "access_token", &p, &v), 2);
    ck_assert_uint_eq(qfind("%61%63%63%65%73%73%5F%74%6F%6B%65%6E=f", "access_token", &p, &v), 1);
    /* A bare name and an empty value count too. */
    ck_assert_uint_eq(qfind("access_token=a&access_token", "access_token", &p, &v), 2);
    ck_assert_uint_eq(qfind("access_token", "access_token", &p, &v), 1);
    span_is(v, "");
    ck_assert_uint_eq(qfind("access_token=", "access_token", &p, &v), 1);
    span_is(v, "");
    /* Not the name: case, prefix, suffix, encoded "=" inside the name, "+". */
    ck_assert_uint_eq(
        qfind("Access_token=a&access_tokens=b&xaccess_token=c", "access_token", &p, &v), 0);
    ck_assert_uint_eq(qfind("access_token%3Da=b&access+token=c&&", "access_token", &p, &v), 0);
    ck_assert_uint_eq(qfind("", "access_token", &p, &v), 0);
    /* The value stays raw. */
    ck_assert_uint_eq(qfind("t=a%2Eb=c", "t", &p, &v), 1);
    span_is(v, "a%2Eb=c");
}
END_TEST

static void without(const char *q, const char *name, const char *want)
{
    tg_span_t p, v;
    char out[128];
    ck_assert_uint_eq(qfind(q, name, &p, &v), 1);
    size_t n = tg_query_without(q, strlen(q), p, out);
    ck_assert_msg(n == strlen(want) && memcmp(out, want, n) == 0, "%s -> %.*s, want %s", q, (int)n,
                  out, want);
}

START_TEST(query_without)
{
    without("x=1&access_token=abc&y=%20&z", "access_token", "x=1&y=%20&z");
    without("access_token=abc&y=2", "access_token", "y=2");
    without("y=2&access_token=abc", "access_token", "y=2");
    without("access_token=abc", "access_token", "");
    without("access_token", "access_token", "");
    without("a=1&&%61ccess_token=abc", "access_token", "a=1&");
    without("&access_token=abc&", "access_token", "&");
}
END_TEST

START_TEST(query_name_too_long)
{
    /* A name past TG_QUERY_NAME_MAX is never found (the decoding buffer is bounded). */
    char name[TG_QUERY_NAME_MAX + 2], q[TG_QUERY_NAME_MAX + 8];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(q, sizeof(q), "%s=1", name);
    tg_span_t p, v;
    ck_assert_uint_eq(qfind(q, name, &p, &v), 0);
    name[TG_QUERY_NAME_MAX] = '\0';
    q[TG_QUERY_NAME_MAX] = '=';
    q[TG_QUERY_NAME_MAX + 1] = '1';
    q[TG_QUERY_NAME_MAX + 2] = '\0';
    ck_assert_uint_eq(qfind(q, name, &p, &v), 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("query");
    TCase *t = tcase_create("query");
    tcase_add_test(t, query_find);
    tcase_add_test(t, query_without);
    tcase_add_test(t, query_name_too_long);
    suite_add_tcase(s, t);
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
