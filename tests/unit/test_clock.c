/* Unit tests for src/clock.c (include/tollgate/clock.h). */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "tollgate/clock.h"

/* Monotonic clocks never go back, and the precise one moves within a sleep. */
START_TEST(monotonic)
{
    uint64_t ms = tg_now_ms(), us = tg_now_us();
    for (int i = 0; i < 100000; i++) {
        uint64_t m = tg_now_ms(), u = tg_now_us();
        ck_assert_uint_ge(m, ms);
        ck_assert_uint_ge(u, us);
        ms = m;
        us = u;
    }
    struct timespec pause = {0, 20 * 1000 * 1000};
    uint64_t before_us = tg_now_us(), before_ms = tg_now_ms();
    nanosleep(&pause, NULL);
    uint64_t slept_us = tg_now_us() - before_us, slept_ms = tg_now_ms() - before_ms;
    ck_assert_uint_ge(slept_us, 20000);
    ck_assert_uint_lt(slept_us, 2000000);
    /* Coarse: one kernel tick (at most 10 ms at HZ=100) either side. */
    ck_assert_uint_ge(slept_ms, 10);
    ck_assert_uint_lt(slept_ms, 2000);
}
END_TEST

/* The coarse and precise monotonic clocks count from the same origin: the
 * coarse one is never ahead, and behind by a tick (plus scheduling slack). */
START_TEST(same_clock)
{
    uint64_t ms = tg_now_ms(), us = tg_now_us();
    ck_assert_uint_le(ms, us / 1000);
    ck_assert_uint_le(us / 1000, ms + 1000);
}
END_TEST

START_TEST(wall)
{
    uint64_t w = tg_wall_us();
    time_t t = time(NULL);
    ck_assert_uint_le(w / 1000000, (uint64_t)t + 1);
    ck_assert_uint_ge(w / 1000000 + 1, (uint64_t)t);
}
END_TEST

START_TEST(timeval_ms)
{
    static const struct {
        uint64_t ms;
        long sec, usec;
    } cases[] = {{0, 0, 0},         {1, 0, 1000},   {999, 0, 999000},       {1000, 1, 0},
                 {1500, 1, 500000}, {55000, 55, 0}, {86400001, 86400, 1000}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct timeval tv = tg_timeval_ms(cases[i].ms);
        ck_assert_int_eq(tv.tv_sec, cases[i].sec);
        ck_assert_int_eq(tv.tv_usec, cases[i].usec);
    }
    /* Any input: tv_usec stays a valid microsecond count. */
    struct timeval big = tg_timeval_ms(UINT64_C(1) << 40);
    ck_assert_int_eq(big.tv_sec, (long)((UINT64_C(1) << 40) / 1000));
    ck_assert_int_lt(big.tv_usec, 1000000);
}
END_TEST

static Suite *clock_suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, monotonic);
    tcase_add_test(tc, same_clock);
    tcase_add_test(tc, wall);
    tcase_add_test(tc, timeval_ms);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(clock_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
