/* Unit tests for src/retry_policy.c: conditions, jittered backoff bounds,
 * the retry budget. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outlier.h"
#include "request.h"
#include "retry_policy.h"
#include "split.h"
#include "upstream_shared.h"

/* ---- retry policy ---- */

START_TEST(test_backoff_is_full_jitter_within_bounds)
{
    tg_retry_policy_t p = {.backoff_base_ms = 25, .backoff_max_ms = 250};
    uint64_t most[5] = {0};
    for (uint64_t rnd = 0; rnd < 100000; rnd += 7) {
        for (unsigned n = 1; n <= 4; n++) {
            uint64_t w = tg_retry_backoff_ms(&p, n, rnd * 2654435761u);
            uint64_t cap = n == 1 ? 25 : n == 2 ? 50 : n == 3 ? 100 : 200;
            ck_assert_uint_le(w, cap);
            most[n] = w > most[n] ? w : most[n];
        }
        ck_assert_uint_le(tg_retry_backoff_ms(&p, 9, rnd), 250);
    }
    ck_assert_uint_eq(most[1], 25); /* the whole range is reached */
    ck_assert_uint_eq(most[4], 200);
}
END_TEST

START_TEST(test_failures_count_under_their_status)
{
    tg_retry_policy_t p = {0};
    p.statuses[(504 - 400) / 64] |= 1ull << ((504 - 400) % 64);
    ck_assert(tg_retry_on_failure(&p, TG_FAIL_TIMEOUT));
    ck_assert(!tg_retry_on_failure(&p, TG_FAIL_RESET));
    p.on = TG_FAIL_RESET;
    ck_assert(tg_retry_on_failure(&p, TG_FAIL_RESET));
    ck_assert(tg_retry_on_status(&p, 504) && !tg_retry_on_status(&p, 503));
    ck_assert(!tg_retry_on_status(&p, 200) && !tg_retry_on_status(&p, 600));
}
END_TEST

START_TEST(test_budget)
{
    tg_ushared_t u = {0};
    /* a quiet upstream: 3 retries at once all the same */
    atomic_store(&u.requests, 1);
    for (int i = 0; i < 3; i++)
        ck_assert(tg_retry_budget_take(&u, 20));
    ck_assert(!tg_retry_budget_take(&u, 20));
    /* 100 in flight, 20%: 20 */
    atomic_store(&u.requests, 100);
    for (int i = 3; i < 20; i++)
        ck_assert(tg_retry_budget_take(&u, 20));
    ck_assert(!tg_retry_budget_take(&u, 20));
    tg_retry_budget_give(&u);
    ck_assert(tg_retry_budget_take(&u, 20));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("retry_policy");
    TCase *tc = tcase_create("retry_policy");
    tcase_add_test(tc, test_backoff_is_full_jitter_within_bounds);
    tcase_add_test(tc, test_failures_count_under_their_status);
    tcase_add_test(tc, test_budget);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
