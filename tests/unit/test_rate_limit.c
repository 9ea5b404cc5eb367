/*
 * Unit tests for plugins/rate-limit: the GCRA step, the local backend's shared
 * table (bounds, eviction, threads) and the Redis script's reply parsing.
 * The plugin's files are included: they are not part of the core library.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/rate-limit/bucket_local.c"
#include "plugins/rate-limit/bucket_redis.c"

static tg_rl_limit_t limit(uint64_t rate, uint64_t per_ms, uint64_t burst)
{
    tg_rl_limit_t l = {.rate = rate, .per_ms = per_ms, .burst = burst};
    l.t_us = (double)per_ms * 1000.0 / (double)rate;
    return l;
}

START_TEST(gcra_burst_then_rate)
{
    tg_rl_limit_t l = limit(20, 1000, 10); /* a token every 50 ms, 10 at once */
    double tat = 0;
    tg_rl_result_t res;
    double now = 1e9;
    for (int i = 0; i < 10; i++) {
        ck_assert(tg_rl_gcra(&tat, &l, 1, 1, now, &res));
        ck_assert_uint_eq(res.remaining[0], (uint64_t)(9 - i));
        ck_assert_uint_eq(res.reset_us[0], (uint64_t)(i + 1) * 50000);
    }
    ck_assert(!tg_rl_gcra(&tat, &l, 1, 1, now, &res));
    ck_assert_uint_eq(res.retry_us, 50000);
    ck_assert_uint_eq(res.remaining[0], 0);
    ck_assert(!tg_rl_gcra(&tat, &l, 1, 1, now + 49999, &res));
    ck_assert_uint_eq(res.retry_us, 1);
    ck_assert(tg_rl_gcra(&tat, &l, 1, 1, now + 50000, &res)); /* exactly one token later */
    ck_assert(!tg_rl_gcra(&tat, &l, 1, 1, now + 50000, &res));

    /* Admitted over 5 s at any arrival pattern faster than the rate: burst + rate * t. */
    tat = 0;
    int admitted = 0;
    for (double t = 0; t <= 5e6; t += 1e6 / 60)
        admitted += tg_rl_gcra(&tat, &l, 1, 1, now + t, &res);
    ck_assert_int_eq(admitted, 10 + 100);
}
END_TEST

START_TEST(gcra_all_limits_must_admit)
{
    tg_rl_limit_t ls[2] = {limit(10, 1000, 10), limit(3, 60000, 3)};
    double tats[2] = {0, 0};
    tg_rl_result_t res;
    for (int i = 0; i < 3; i++)
        ck_assert(tg_rl_gcra(tats, ls, 2, 1, 1e9, &res));
    double before[2] = {tats[0], tats[1]};
    ck_assert(!tg_rl_gcra(tats, ls, 2, 1, 1e9, &res));
    /* Refused: nothing consumed from the limit that would have admitted. */
    ck_assert(tats[0] == before[0] && tats[1] == before[1]);
    ck_assert_uint_eq(res.remaining[0], 7);
    ck_assert_uint_eq(res.remaining[1], 0);
    ck_assert_uint_eq(res.retry_us, 20000000);
    /* Cost larger than what is left is refused, a smaller one passes. */
    tg_rl_limit_t one = limit(10, 1000, 10);
    double tat = 0;
    ck_assert(tg_rl_gcra(&tat, &one, 1, 8, 1e9, &res));
    ck_assert_uint_eq(res.remaining[0], 2);
    ck_assert(!tg_rl_gcra(&tat, &one, 1, 3, 1e9, &res));
    ck_assert_uint_eq(res.retry_us, 100000);
    ck_assert(tg_rl_gcra(&tat, &one, 1, 2, 1e9, &res));
}
END_TEST

START_TEST(local_keys_are_separate_and_bounded)
{
    tg_rl_local_t *l = tg_rl_local_new(64 * 4); /* 4 entries per shard */
    tg_rl_limit_t lim = limit(1, 60000, 1);
    tg_rl_result_t res;
    tg_rl_local_decide(l, "a", 1, &lim, 1, 1, 1000, &res);
    ck_assert(res.allowed);
    tg_rl_local_decide(l, "a", 1, &lim, 1, 1, 1000, &res);
    ck_assert(!res.allowed);
    tg_rl_local_decide(l, "b", 1, &lim, 1, 1, 1000, &res);
    ck_assert(res.allowed);
    /* Same bytes, different length: another key. */
    tg_rl_local_decide(l, "a\0", 2, &lim, 1, 1, 1000, &res);
    ck_assert(res.allowed);
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        tg_rl_local_decide(l, key, (size_t)n, &lim, 1, 1, 1000, &res);
        ck_assert(res.allowed);
    }
    ck_assert_uint_le(tg_rl_local_count(l), 64 * 4);
    ck_assert_uint_ge(tg_rl_local_count(l), 64 * 3);
    tg_rl_local_free(l);
}
END_TEST

START_TEST(local_full_buckets_are_dropped)
{
    tg_rl_local_t *l = tg_rl_local_new(64 * 100);
    tg_rl_limit_t lim = limit(1, 1000, 1);
    tg_rl_result_t res;
    char key[32];
    for (int i = 0; i < 500; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        tg_rl_local_decide(l, key, (size_t)n, &lim, 1, 1, 1000000, &res);
    }
    size_t before = tg_rl_local_count(l);
    ck_assert_uint_eq(before, 500);
    /* 10 s later every bucket is full again: traffic through a shard sweeps
     * its full buckets away (2 per decision), new keys stay. */
    for (int i = 0; i < 4000; i++) {
        int n = snprintf(key, sizeof(key), "late%d", i % 200);
        tg_rl_local_decide(l, key, (size_t)n, &lim, 1, 1, 11000000, &res);
    }
    /* (shards that no new key reached keep theirs until traffic passes) */
    ck_assert_uint_ge(tg_rl_local_count(l), 200);
    ck_assert_uint_lt(tg_rl_local_count(l), 260);
    tg_rl_local_free(l);
}
END_TEST

typedef struct {
    tg_rl_local_t *l;
    tg_rl_limit_t lim;
    int admitted;
} worker_arg_t;

static void *hammer(void *p)
{
    worker_arg_t *a = p;
    tg_rl_result_t res;
    for (int i = 0; i < 20000; i++) {
        tg_rl_local_decide(a->l, "shared", 6, &a->lim, 1, 1, 5000000, &res);
        a->admitted += res.allowed;
    }
    return NULL;
}

START_TEST(local_shared_by_threads)
{
    tg_rl_local_t *l = tg_rl_local_new(100000);
    worker_arg_t args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg_t){.l = l, .lim = limit(1, 60000, 1000)};
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += args[i].admitted;
    }
    ck_assert_int_eq(total, 1000); /* the burst, exactly once across threads */
    tg_rl_local_free(l);
}
END_TEST

static redisReply *int_reply(long long v)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_INTEGER;
    r->integer = v;
    return r;
}

/* A script reply: now, then per group k, then (a, b) per limit. */
static redisReply *array_reply(const long long *vals, size_t n)
{
    redisReply *arr = calloc(1, sizeof(*arr));
    arr->type = REDIS_REPLY_ARRAY;
    arr->elements = n;
    arr->element = calloc(n, sizeof(redisReply *));
    for (size_t i = 0; i < n; i++)
        arr->element[i] = int_reply(vals[i]);
    return arr;
}

static void array_free(redisReply *arr)
{
    for (size_t i = 0; i < arr->elements; i++)
        free(arr->element[i]);
    free(arr->element);
    free(arr);
}

START_TEST(reply_parsing)
{
    /* Two groups over two limits. Group 0 (3 requests, 2 admitted): limit 1
     * with 0.1 s of its 1 s used, limit 2 (a token per 20 s) fresh. */
    tg_rl_limit_t ls[2] = {limit(10, 1000, 10), limit(3, 60000, 3)};
    long long now = 1000000000000LL;
    long long vals[] = {now, 2, 100000, 0, 0, 0, /* group 1 */ 0, 1000000, 0, 40000000, 0};
    redisReply *arr = array_reply(vals, 11);
    ck_assert_uint_eq(tg_rl_reply_groups(arr, 2), 2);
    ck_assert_uint_eq(tg_rl_reply_groups(arr, 1), 0); /* 10 is not a multiple of 3 */
    tg_rl_group_t g;
    tg_rl_result_t res;
    ck_assert_int_eq(tg_rl_reply_group(arr, 0, 2, 3, &g), 0);
    tg_rl_group_next(&g, ls, 2, 1, &res);
    ck_assert(res.allowed);
    ck_assert_uint_eq(res.retry_us, 0);
    ck_assert_uint_eq(res.remaining[0], 8);
    ck_assert_uint_eq(res.reset_us[0], 200000);
    ck_assert_uint_eq(res.remaining[1], 2);
    ck_assert_uint_eq(res.reset_us[1], 20000000);
    tg_rl_group_next(&g, ls, 2, 1, &res);
    ck_assert(res.allowed);
    ck_assert_uint_eq(res.remaining[1], 1);
    ck_assert_uint_eq(res.reset_us[1], 40000000);
    tg_rl_group_next(&g, ls, 2, 1, &res); /* the third: refused, consumes nothing */
    ck_assert(!res.allowed);
    ck_assert_uint_eq(res.remaining[0], 7);
    ck_assert_uint_eq(res.reset_us[0], 300000);
    ck_assert_uint_eq(res.remaining[1], 1);
    ck_assert_uint_eq(res.reset_us[1], 40000000);
    /* Group 1 (1 request, refused): limit 1 full for 1 s, limit 2 two
     * tokens used. Limit 1 has room again in one token (0.1 s). */
    ck_assert_int_eq(tg_rl_reply_group(arr, 1, 2, 1, &g), 0);
    tg_rl_group_next(&g, ls, 2, 1, &res);
    ck_assert(!res.allowed);
    ck_assert_uint_eq(res.remaining[0], 0);
    ck_assert_uint_eq(res.reset_us[0], 1000000);
    ck_assert_uint_eq(res.remaining[1], 1);
    ck_assert_uint_eq(res.retry_us, 100000);
    /* Cost 2 also needs a second token of limit 2 (one left): 20 s more. */
    ck_assert_int_eq(tg_rl_reply_group(arr, 1, 2, 1, &g), 0);
    tg_rl_group_next(&g, ls, 2, 2, &res);
    ck_assert_uint_eq(res.retry_us, 20000000);
    ck_assert_int_eq(tg_rl_reply_group(arr, 2, 2, 1, &g), -1); /* no such group */
    ck_assert_int_eq(tg_rl_reply_group(arr, 0, 2, 1, &g), -1); /* 2 admitted of 1 sent */
    ck_assert_int_eq(tg_rl_reply_group(arr, 0, 4, 3, &g), -1); /* wrong shape */
    arr->element[3]->integer = -5;
    ck_assert_int_eq(tg_rl_reply_group(arr, 0, 2, 3, &g), -1);
    arr->element[3]->integer = 0;
    arr->element[5]->integer = 4294967296LL; /* b is a fraction of 2^32 */
    ck_assert_int_eq(tg_rl_reply_group(arr, 0, 2, 3, &g), -1);
    arr->element[5]->integer = 0;
    arr->element[9]->type = REDIS_REPLY_STRING;
    ck_assert_int_eq(tg_rl_reply_group(arr, 1, 2, 1, &g), -1);
    array_free(arr);
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "ERR", .len = 3};
    ck_assert_uint_eq(tg_rl_reply_groups(&err, 1), 0);
    ck_assert_int_eq(tg_rl_reply_group(&err, 0, 1, 1, &g), -1);
    ck_assert_uint_eq(tg_rl_reply_groups(NULL, 1), 0);
    ck_assert_int_eq(tg_rl_reply_group(NULL, 0, 1, 1, &g), -1);

    char sha[41];
    tg_rl_script_sha(sha);
    ck_assert_uint_eq(strlen(sha), 40);
    ck_assert_uint_eq(strspn(sha, "0123456789abcdef"), 40);
}
END_TEST

/* The replay of a group gives, request by request, what one call per
 * request would: the same admissions and the same doubles, so a fractional
 * emission interval rounds the same way (tg_rl_gcra is that step; its
 * Remaining and Retry-After come from the exact TAT, the script's from the
 * whole microseconds it returned). */
START_TEST(group_replay_matches_sequential_gcra)
{
    tg_rl_limit_t ls[2] = {limit(3, 1000, 5), limit(7, 60000, 3)}; /* T = 333333.33.. us */
    double now = 1796334222079040.0;
    double tats[2] = {now + 333333.25, now}; /* as if one request an instant ago */
    long long vals[6] = {(long long)now, 3, 333333, 1073741824 /* 0.25 */, 0, 0};
    redisReply *arr = array_reply(vals, 6);
    tg_rl_group_t g;
    ck_assert_int_eq(tg_rl_reply_group(arr, 0, 2, 6, &g), 0);
    for (int j = 0; j < 6; j++) {
        tg_rl_result_t want, got;
        bool ok = tg_rl_gcra(tats, ls, 2, 1, now, &want);
        tg_rl_group_next(&g, ls, 2, 1, &got);
        ck_assert_int_eq(got.allowed, ok);
        ck_assert_int_eq(got.allowed, j < 3); /* limit 2: 3 tokens (limit 1: 4 left) */
        for (int i = 0; i < 2; i++) {
            ck_assert(g.tat[i] == tats[i]);
            ck_assert_uint_eq(got.reset_us[i], want.reset_us[i]);
            double rem = floor((double)ls[i].burst - (double)got.reset_us[i] / ls[i].t_us + 1e-9);
            ck_assert_uint_eq(got.remaining[i], rem > 0 ? (uint64_t)rem : 0);
        }
    }
    array_free(arr);
}
END_TEST

static Suite *rate_limit_suite(void)
{
    Suite *s = suite_create("rate_limit");
    TCase *tc = tcase_create("rate_limit");
    tcase_add_test(tc, gcra_burst_then_rate);
    tcase_add_test(tc, gcra_all_limits_must_admit);
    tcase_add_test(tc, local_keys_are_separate_and_bounded);
    tcase_add_test(tc, local_full_buckets_are_dropped);
    tcase_add_test(tc, local_shared_by_threads);
    tcase_add_test(tc, reply_parsing);
    tcase_add_test(tc, group_replay_matches_sequential_gcra);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rate_limit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
