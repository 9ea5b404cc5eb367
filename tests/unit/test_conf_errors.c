/* Unit tests for src/conf_errors.c: collecting, marks, context, bound. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_errors.h"

static tg_conf_err_t msg(const char *text)
{
    tg_conf_err_t e;
    snprintf(e.msg, sizeof(e.msg), "%s", text);
    return e;
}

START_TEST(without_collection_stops)
{
    tg_conf_err_t e = msg("a.yaml:1:2: bad");
    ck_assert(!tg_conf_errors_collecting());
    ck_assert_uint_eq(tg_conf_errors_mark(), 0);
    ck_assert_int_eq(tg_conf_errors_recover(&e), -1);
}
END_TEST

START_TEST(records_once_per_failure)
{
    tg_conf_errors_t errs;
    tg_conf_errors_begin(&errs);
    size_t m = tg_conf_errors_mark();
    tg_conf_err_t e = msg("a.yaml:1:2: inner");
    ck_assert_int_eq(tg_conf_errors_recover(&e), 0);
    /* An outer recovery point with the same failure in err: not a second message. */
    ck_assert_int_eq(tg_conf_errors_recover(&e), 0);
    ck_assert_uint_eq(errs.total, 1);
    ck_assert_str_eq(errs.msgs[0], "a.yaml:1:2: inner");
    ck_assert_uint_ne(tg_conf_errors_mark(), m);
    /* Another failure after it is recorded, whatever the marks say. */
    tg_conf_err_t e2 = msg("a.yaml:3:2: later");
    ck_assert_int_eq(tg_conf_errors_recover(&e2), 0);
    ck_assert_uint_eq(errs.total, 2);
    tg_conf_errors_end();
    ck_assert(!tg_conf_errors_collecting());
}
END_TEST

START_TEST(bounded)
{
    tg_conf_errors_t errs;
    tg_conf_errors_begin(&errs);
    for (int i = 0; i < TG_CONF_MAX_ERRORS + 5; i++) {
        char text[64];
        snprintf(text, sizeof(text), "a.yaml:%d:1: e", i + 1);
        tg_conf_err_t e = msg(text);
        ck_assert_int_eq(tg_conf_errors_recover(&e), 0);
    }
    tg_conf_errors_end();
    ck_assert_uint_eq(errs.n, TG_CONF_MAX_ERRORS);
    ck_assert_uint_eq(errs.total, TG_CONF_MAX_ERRORS + 5);
    ck_assert_str_eq(errs.msgs[0], "a.yaml:1:1: e");
}
END_TEST

START_TEST(context)
{
    tg_conf_err_t e = msg("dir:1/a.yaml:12:9: unknown key 'x'");
    tg_conf_err_annotate(&e, "plugin 'jwt' in route 'r'");
    ck_assert_str_eq(e.msg, "dir:1/a.yaml:12:9: unknown key 'x' [plugin 'jwt' in route 'r']");
    tg_conf_errors_t errs;
    tg_conf_errors_begin(&errs);
    tg_conf_errors_context("plugin 'cors' in the global plugins");
    e = msg("a.yaml:3:4: bad");
    tg_conf_errors_recover(&e);
    tg_conf_errors_context(NULL);
    e = msg("a.yaml:5:4: other");
    tg_conf_errors_recover(&e);
    tg_conf_errors_end();
    ck_assert_str_eq(errs.msgs[0], "a.yaml:3:4: bad [plugin 'cors' in the global plugins]");
    ck_assert_str_eq(errs.msgs[1], "a.yaml:5:4: other");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conf_errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, without_collection_stops);
    tcase_add_test(tc, records_once_per_failure);
    tcase_add_test(tc, bounded);
    tcase_add_test(tc, context);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
