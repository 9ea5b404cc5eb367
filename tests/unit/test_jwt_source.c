/*
 * jwt plugin: token cookies (jwt_source.c).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt/jwt_source.c"

static void span_is(tg_span_t s, const char *want)
{
    ck_assert_uint_eq(s.len, strlen(want));
    ck_assert_mem_eq(s.p, want, s.len);
}

static size_t cfind(const char *v, const char *name, tg_span_t *value)
{
    return tg_jwt_cookie_find(v, strlen(v), name, value);
}

START_TEST(cookie_find)
{
    tg_span_t v;
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
