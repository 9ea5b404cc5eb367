/* Unit tests for src/upstream_pool.c: target choice (round robin, least
 * connections, targets already tried) and passive health. Pure bookkeeping:
 * no connection is opened (tg_upool_pick takes the time as an argument). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "upstream_pool.h"

static tg_target_t targets[3];
static tg_upstream_conf_t conf;
static tg_upool_t pool;

static void setup_n(size_t n, tg_balance_t balance)
{
    memset(&conf, 0, sizeof(conf));
    conf.targets = targets;
    conf.ntargets = n;
    conf.balance = balance;
    conf.max_fails = 2;
    conf.fail_timeout_ms = 1000;
    ck_assert_int_eq(tg_upool_init(&pool, NULL, &conf), 0);
}

static void teardown(void)
{
    tg_upool_destroy(&pool);
}

START_TEST(test_round_robin)
{
    setup_n(3, TG_BALANCE_ROUND_ROBIN);
    ck_assert_uint_eq(tg_upool_pick(&pool, 0, 0), 0);
    ck_assert_uint_eq(tg_upool_pick(&pool, 0, 0), 1);
    ck_assert_uint_eq(tg_upool_pick(&pool, 0, 0), 2);
    ck_assert_uint_eq(tg_upool_pick(&pool, 0, 0), 0);
    /* a target that already failed for this request is skipped */
    ck_assert_uint_eq(tg_upool_pick(&pool, 0, 1u << 1), 2);
    teardown();
}
END_TEST

START_TEST(test_least_conn)
{
    setup_n(3, TG_BALANCE_LEAST_CONN);
    pool.targets[0].active = 2;
    pool.targets[1].active = 0;
    pool.targets[2].active = 1;
    ck_assert_uint_eq(tg_upool_pick(&pool, 0, 0), 1);
    ck_assert_uint_eq(tg_upool_pick(&pool, 0, 1u << 1), 2);
    teardown();
}
END_TEST

START_TEST(test_passive_health)
{
    setup_n(2, TG_BALANCE_ROUND_ROBIN);
    /* max_fails 2: one failure keeps the target in rotation */
    tg_upool_report_failure(&pool, 0, 100);
    ck_assert_uint_eq(pool.targets[0].down_until, 0);
    tg_upool_report_failure(&pool, 0, 100);
    ck_assert_uint_eq(pool.targets[0].down_until, 1100);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(tg_upool_pick(&pool, 500, 0), 1);
    /* rested long enough: back */
    ck_assert_uint_eq(tg_upool_pick(&pool, 1100, 0), 0);
    /* a success forgets the failures */
    tg_upool_report_failure(&pool, 1, 2000);
    tg_upool_report_success(&pool, 1);
    tg_upool_report_failure(&pool, 1, 2000);
    ck_assert_uint_eq(pool.targets[1].down_until, 0);
    teardown();
}
END_TEST

START_TEST(test_all_resting_tries_the_shortest_rest)
{
    setup_n(3, TG_BALANCE_ROUND_ROBIN);
    pool.targets[0].down_until = 900;
    pool.targets[1].down_until = 300;
    pool.targets[2].down_until = 600;
    ck_assert_uint_eq(tg_upool_pick(&pool, 100, 0), 1);
    /* the same when every target was tried */
    ck_assert_uint_eq(tg_upool_pick(&pool, 1000, 7), 1);
    teardown();
}
END_TEST

START_TEST(test_one_target_always)
{
    setup_n(1, TG_BALANCE_ROUND_ROBIN);
    pool.targets[0].down_until = 5000;
    ck_assert_uint_eq(tg_upool_pick(&pool, 0, 1), 0);
    teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("upstream_pool");
    TCase *tc = tcase_create("pick");
    tcase_add_test(tc, test_round_robin);
    tcase_add_test(tc, test_least_conn);
    tcase_add_test(tc, test_passive_health);
    tcase_add_test(tc, test_all_resting_tries_the_shortest_rest);
    tcase_add_test(tc, test_one_target_always);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
