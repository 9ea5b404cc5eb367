/*
 * jwt plugin: token parameters in queries and cookies (jwt_source.c).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt/jwt_source.c"

static size_t qfind(const char *q, const char *name, tg_jwt_span_t *param, tg_jwt_span_t *value)
{
    return tg_jwt_query_find(q, strlen(q), name, param, value);
}

static void span_is(tg_jwt_span_t s, const char *want)
{
    ck_assert_uint_eq(s.len, strlen(want));
    ck_assert_mem_eq(s.p, want, s.len);
}

START_TEST(query_find)
{
    tg_jwt_span_t p, v;
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
    tg_jwt_span_t p, v;
    char out[128];
    ck_assert_uint_eq(qfind(q, name, &p, &v), 1);
    size_t n = tg_jwt_query_without(q, strlen(q), p, out);
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

static size_t cfind(const char *v, const char *name, tg_jwt_span_t *value)
{
    return tg_jwt_cookie_find(v, strlen(v), name, value);
}

START_TEST(cookie_find)
{
    tg_jwt_span_t v;
    ck_assert_uint_eq(cfind("theme=dark; session=abc; lang=en", "session", &v), 1);
    span_is(v, "abc");
    ck_assert_uint_eq(cfind("session=\"abc\"", "session", &v), 1);
    span_is(v, "abc");
    ck_assert_uint_eq(cfind("session=a; session=b", "session", &v), 2);
    span_is(v, "a");
    /* White space around a name or a value is not another name. */
    ck_assert_uint_eq(cfind("session =a;session= b ;\tsession\t=c", "session", &v), 3);
    span_is(v, "a");
    ck_assert_uint_eq(cfind("session=", "session", &v), 1);
    span_is(v, "");
    /* Names compare exactly (RFC 6265 5.4). */
    ck_assert_uint_eq(cfind("Session=a; sessionx=b; xsession=c; session; =session", "session", &v),
                      0);
    ck_assert_uint_eq(cfind("", "session", &v), 0);
    ck_assert_uint_eq(cfind(";;", "session", &v), 0);
}
END_TEST

static void cwithout(const char *const *lines, const char *want)
{
    char out[256];
    size_t n = 0;
    for (; *lines; lines++)
        n = tg_jwt_cookie_without(*lines, strlen(*lines), "session", out, n);
    ck_assert_msg(n == strlen(want) && memcmp(out, want, n) == 0, "-> %.*s, want %s", (int)n, out,
                  want);
}

START_TEST(cookie_without)
{
    cwithout((const char *[]){"theme=dark; session=abc; lang=en", NULL}, "theme=dark; lang=en");
    cwithout((const char *[]){"session=abc", NULL}, "");
    cwithout((const char *[]){"a=b", "session=abc", NULL}, "a=b");
    cwithout((const char *[]){"a=1;b=2;session=x", "c=3", NULL}, "a=1; b=2; c=3");
    cwithout((const char *[]){" session = x ; ;flag", NULL}, "flag");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jwt_source");
    TCase *t = tcase_create("sources");
    tcase_add_test(t, query_find);
    tcase_add_test(t, query_without);
    tcase_add_test(t, cookie_find);
    tcase_add_test(t, cookie_without);
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
