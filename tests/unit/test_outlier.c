/* Unit tests for src/outlier.c: ejection, doubling, max_ejection_percent,
 * the reset of the doubling. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outlier.h"
#include "request.h"
#include "retry_policy.h"
#include "split.h"
#include "upstream_shared.h"

/* ---- outlier detection ---- */

static tg_target_t targets[4];
static tg_upstream_conf_t up;

static void outlier_setup(size_t n, uint32_t pct)
{
    memset(&up, 0, sizeof(up));
    memset(targets, 0, sizeof(targets));
    up.name = "o";
    up.targets = targets;
    up.ntargets = n;
    up.shared = tg_ushared_get("unit-outlier");
    char name[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "t%zu", i);
        targets[i].name = "t";
        targets[i].shared = tg_tshared_get("unit-outlier", name);
        memset(targets[i].shared, 0, sizeof(*targets[i].shared));
    }
    memset(up.shared, 0, sizeof(*up.shared));
    up.outlier = (tg_outlier_conf_t){.consecutive_5xx = 3,
                                     .consecutive_gateway_errors = 2,
                                     .base_ejection_time_ms = 1000,
                                     .max_ejection_percent = pct};
}

static void outlier_teardown(void)
{
    for (size_t i = 0; i < up.ntargets; i++)
        tg_tshared_put(targets[i].shared);
    tg_ushared_put(up.shared);
}

START_TEST(test_ejection_and_doubling)
{
    outlier_setup(2, 50);
    tg_tshared_t *t = targets[0].shared;
    tg_outlier_report(&up, 0, TG_OUTCOME_5XX, 500, 100);
    tg_outlier_report(&up, 0, TG_OUTCOME_OK, 200, 100); /* a success breaks the series */
    tg_outlier_report(&up, 0, TG_OUTCOME_5XX, 500, 100);
    tg_outlier_report(&up, 0, TG_OUTCOME_5XX, 500, 100);
    ck_assert_uint_eq(t->down_until, 0);
    tg_outlier_report(&up, 0, TG_OUTCOME_5XX, 500, 100);
    ck_assert_uint_eq(t->down_until, 1100);
    ck_assert_uint_eq(up.shared->ejections, 1);
    /* back, fails again at once: twice as long */
    tg_outlier_report(&up, 0, TG_OUTCOME_GATEWAY, 0, 1200);
    tg_outlier_report(&up, 0, TG_OUTCOME_GATEWAY, 0, 1200);
    ck_assert_uint_eq(t->down_until, 3200);
    /* a success a whole base time after the ejection ended: the base again */
    tg_outlier_report(&up, 0, TG_OUTCOME_OK, 200, 4300);
    tg_outlier_report(&up, 0, TG_OUTCOME_5XX, 502, 5000);
    tg_outlier_report(&up, 0, TG_OUTCOME_5XX, 503, 5000); /* 502/503 are gateway errors */
    ck_assert_uint_eq(t->down_until, 6000);
    outlier_teardown();
}
END_TEST

START_TEST(test_max_ejection_percent)
{
    outlier_setup(4, 50);
    for (size_t i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++)
            tg_outlier_report(&up, i, TG_OUTCOME_GATEWAY, 0, 100);
    ck_assert_uint_eq(up.shared->ejections, 2); /* half of 4 */
    outlier_teardown();
    outlier_setup(1, 10); /* 10% of one target: one may always be out */
    tg_outlier_report(&up, 0, TG_OUTCOME_GATEWAY, 0, 100);
    tg_outlier_report(&up, 0, TG_OUTCOME_GATEWAY, 0, 100);
    ck_assert_uint_eq(up.shared->ejections, 1);
    outlier_teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outlier");
    TCase *tc = tcase_create("outlier");
    tcase_add_test(tc, test_ejection_and_doubling);
    tcase_add_test(tc, test_max_ejection_percent);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
