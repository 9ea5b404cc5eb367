/* Unit tests for src/admin_action.c: the promises of include/tollgate/admin.h
 * (paths refused, one owner per path, removal by owner, status clamping). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_action.c"

static int calls;

static int act(void *data, const char *body, size_t len, char *out)
{
    calls++;
    snprintf(out, TG_ADMIN_ACTION_OUT_MAX, "{\"len\": %zu, \"data\": \"%s\"}", len,
             (const char *)data);
    (void)body;
    return 200;
}

static int bad_status(void *data, const char *body, size_t len, char *out)
{
    (void)data, (void)body, (void)len;
    strcpy(out, "{}");
    return 42;
}

START_TEST(register_run_remove)
{
    char out[TG_ADMIN_ACTION_OUT_MAX];
    ck_assert_int_eq(tg_admin_action_add("/x/purge", act, "a"), 0);
    ck_assert(tg_admin_action_exists("/x/purge", 8));
    ck_assert(!tg_admin_action_exists("/x/purg", 7));
    ck_assert_int_eq(tg_admin_action_run("/x/purge", 8, "{}", 2, out), 200);
    ck_assert_str_eq(out, "{\"len\": 2, \"data\": \"a\"}");
    /* Another owner cannot take or remove it. */
    ck_assert_int_eq(tg_admin_action_add("/x/purge", act, "b"), -1);
    tg_admin_action_remove("/x/purge", "b");
    ck_assert(tg_admin_action_exists("/x/purge", 8));
    tg_admin_action_remove("/x/purge", "a");
    ck_assert(!tg_admin_action_exists("/x/purge", 8));
    ck_assert_int_eq(tg_admin_action_run("/x/purge", 8, "", 0, out), 0);
    ck_assert_int_eq(calls, 1);
}
END_TEST

START_TEST(paths_refused)
{
    const char *bad[] = {"",
                         "/",
                         "x/purge",
                         "/a b",
                         "/a?b",
                         "/reload",
                         "/healthz",
                         "/readyz",
                         "/config",
                         "/metrics",
                         "/0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(tg_admin_action_add(bad[i], act, NULL) == -1, "%s", bad[i]);
    ck_assert_int_eq(tg_admin_action_add("/ok", NULL, NULL), -1);
}
END_TEST

START_TEST(status_out_of_range_is_500)
{
    char out[TG_ADMIN_ACTION_OUT_MAX];
    ck_assert_int_eq(tg_admin_action_add("/bad", bad_status, NULL), 0);
    ck_assert_int_eq(tg_admin_action_run("/bad", 4, "", 0, out), 500);
    tg_admin_action_remove("/bad", NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin_action");
    TCase *t = tcase_create("admin_action");
    tcase_add_test(t, register_run_remove);
    tcase_add_test(t, paths_refused);
    tcase_add_test(t, status_out_of_range_is_500);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
