/* Unit tests for src/upstream_pool.c and src/balance.c: target choice
 * (smooth weighted round robin, weighted least connections, p2c_ewma,
 * Maglev hashing, targets already tried, all_down) and passive health on the
 * targets' cross-worker state. Pure bookkeeping: no connection is opened
 * (the time is an argument). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "upstream_pool.h"
#include "upstream_shared.h"

#define N 8
static tg_target_t targets[N];
static tg_upstream_conf_t conf;
static tg_upool_t pool;
static char names[N][32];

static void setup_n(size_t n, tg_balance_t balance)
{
    memset(&conf, 0, sizeof(conf));
    memset(targets, 0, sizeof(targets));
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "10.0.0.%zu:80", i + 1);
        targets[i].name = names[i];
        targets[i].weight = 1;
        targets[i].shared = tg_tshared_get("unit", names[i]);
    }
    conf.name = "unit";
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
    for (size_t i = 0; i < conf.ntargets; i++)
        tg_tshared_put(targets[i].shared);
}

static size_t pick(uint64_t now, uint64_t tried)
{
    tg_pick_result_t why;
    size_t t = tg_balance_pick(&pool, now, tried, false, 0, &why);
    ck_assert_int_eq(why, TG_PICK_OK);
    return t;
}

START_TEST(test_round_robin)
{
    setup_n(3, TG_BALANCE_ROUND_ROBIN);
    ck_assert_uint_eq(pick(0, 0), 0);
    ck_assert_uint_eq(pick(0, 0), 1);
    ck_assert_uint_eq(pick(0, 0), 2);
    ck_assert_uint_eq(pick(0, 0), 0);
    /* a target that already failed for this request is skipped */
    ck_assert_uint_ne(pick(0, 1u << 1), 1);
    teardown();
}
END_TEST

START_TEST(test_weighted_round_robin_is_smooth)
{
    setup_n(3, TG_BALANCE_ROUND_ROBIN);
    targets[0].weight = 5;
    /* nginx's example: weights 5, 1, 1 give a a a b a c a, not a a a a a b c */
    const size_t want[] = {0, 0, 1, 0, 2, 0, 0};
    for (size_t i = 0; i < 7; i++)
        ck_assert_uint_eq(pick(0, 0), want[i]);
    size_t count[3] = {0};
    for (int i = 0; i < 700; i++)
        count[pick(0, 0)]++;
    ck_assert_uint_eq(count[0], 500);
    ck_assert_uint_eq(count[1], 100);
    teardown();
}
END_TEST

START_TEST(test_least_conn)
{
    setup_n(3, TG_BALANCE_LEAST_CONN);
    pool.targets[0].active = 2;
    pool.targets[1].active = 0;
    pool.targets[2].active = 1;
    ck_assert_uint_eq(pick(0, 0), 1);
    ck_assert_uint_eq(pick(0, 1u << 1), 2);
    /* per unit of weight: 2 active on weight 4 beat 1 on weight 1 */
    targets[0].weight = 4;
    ck_assert_uint_eq(pick(0, 1u << 1), 0);
    teardown();
}
END_TEST

START_TEST(test_p2c_prefers_the_faster)
{
    setup_n(3, TG_BALANCE_P2C_EWMA);
    tg_balance_observe(&pool, 0, 1000, 1);
    tg_balance_observe(&pool, 1, 1000, 1);
    tg_balance_observe(&pool, 2, 10000, 1);
    size_t count[3] = {0};
    for (int i = 0; i < 3000; i++)
        count[pick(0, 0)]++;
    /* the slow one wins only when it is drawn twice: never, as the pair is distinct */
    ck_assert_uint_eq(count[2], 0);
    ck_assert_uint_gt(count[0], 800);
    ck_assert_uint_gt(count[1], 800);
    /* load counts: a fast target with many requests in flight loses */
    pool.targets[0].active = 50;
    pool.targets[1].active = 50;
    size_t slow = 0;
    for (int i = 0; i < 300; i++)
        slow += pick(0, 0) == 2;
    ck_assert_uint_gt(slow, 100);
    teardown();
}
END_TEST

START_TEST(test_p2c_ewma_peaks_and_decays)
{
    setup_n(1, TG_BALANCE_P2C_EWMA);
    tg_balance_observe(&pool, 0, 1000, 1000000);
    tg_balance_observe(&pool, 0, 50000, 1000001); /* a slow answer counts at once */
    ck_assert(pool.targets[0].ewma_us == 50000.0);
    tg_balance_observe(&pool, 0, 1000, 21000001); /* 20 s later: mostly forgotten */
    ck_assert(pool.targets[0].ewma_us < 8000.0);
    teardown();
    /* time without answers decays it too: a slow target is tried again later */
    setup_n(2, TG_BALANCE_P2C_EWMA);
    tg_balance_observe(&pool, 0, 1000, 1000000);
    tg_balance_observe(&pool, 1, 50000, 1000000);
    size_t slow = 0;
    for (int i = 0; i < 100; i++)
        slow += pick(1000, 0) == 1; /* 1 s later (ms): still the fast one */
    ck_assert_uint_eq(slow, 0);
    /* a minute later the fast one still answers in 1 ms, the slow one was
     * not heard of since: its 50 ms decayed below that, it is tried again */
    tg_balance_observe(&pool, 0, 1000, 60900000);
    ck_assert_uint_eq(pick(61000, 0), 1);
    teardown();
}
END_TEST

static size_t hash_pick(uint64_t h, uint64_t tried)
{
    tg_pick_result_t why;
    return tg_balance_pick(&pool, 0, tried, true, h, &why);
}

START_TEST(test_maglev_moves_few_keys)
{
    tg_arena_t *a = tg_arena_create(4096);
    setup_n(5, TG_BALANCE_HASH);
    const char *nm[6] = {names[0], names[1], names[2], names[3], names[4], "10.0.0.9:80"};
    uint32_t w[6] = {1, 1, 1, 1, 1, 1};
    ck_assert_int_eq(tg_maglev_build(&conf.maglev, a, nm, w, 5), 0);
    enum { KEYS = 20000 };
    static uint16_t before[KEYS];
    size_t per[6] = {0};
    for (uint32_t k = 0; k < KEYS; k++) {
        before[k] = (uint16_t)hash_pick(tg_hash64(&k, sizeof(k), 0), 0);
        per[before[k]]++;
    }
    for (size_t i = 0; i < 5; i++) /* even: 4000 each, within 10% */
        ck_assert(per[i] > 3600 && per[i] < 4400);
    /* a sixth target takes about 1/6 of the keys and moves no others */
    tg_maglev_t six;
    ck_assert_int_eq(tg_maglev_build(&six, a, nm, w, 6), 0);
    size_t moved = 0, elsewhere = 0;
    for (uint32_t k = 0; k < KEYS; k++) {
        size_t t = six.entry[tg_hash64(&k, sizeof(k), 0) % six.size];
        moved += t != before[k];
        elsewhere += t != before[k] && t != 5;
    }
    ck_assert(moved > KEYS / 6 - KEYS / 30 && moved < KEYS / 6 + KEYS / 30);
    ck_assert(elsewhere < KEYS / 50);
    /* the same key keeps its target; a tried (or down) one sends it elsewhere */
    uint64_t h = tg_hash64("alice", 5, 0);
    size_t t0 = hash_pick(h, 0);
    ck_assert_uint_eq(hash_pick(h, 0), t0);
    ck_assert_uint_ne(hash_pick(h, 1ull << t0), t0);
    teardown();
    tg_arena_destroy(a);
}
END_TEST

START_TEST(test_weighted_maglev)
{
    tg_arena_t *a = tg_arena_create(4096);
    setup_n(2, TG_BALANCE_HASH);
    const char *nm[2] = {names[0], names[1]};
    uint32_t w[2] = {3, 1};
    ck_assert_int_eq(tg_maglev_build(&conf.maglev, a, nm, w, 2), 0);
    size_t n0 = 0;
    for (uint32_t i = 0; i < conf.maglev.size; i++)
        n0 += conf.maglev.entry[i] == 0;
    ck_assert(n0 * 4 > conf.maglev.size * 3 - 8 && n0 * 4 < conf.maglev.size * 3 + 8);
    teardown();
    tg_arena_destroy(a);
}
END_TEST

START_TEST(test_passive_health)
{
    setup_n(2, TG_BALANCE_ROUND_ROBIN);
    /* max_fails 2: one failure keeps the target in rotation */
    tg_upool_report_failure(&pool, 0, 100);
    ck_assert_uint_eq(targets[0].shared->down_until, 0);
    tg_upool_report_failure(&pool, 0, 100);
    ck_assert_uint_eq(targets[0].shared->down_until, 1100);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(pick(500, 0), 1);
    /* rested long enough: back */
    ck_assert_uint_eq(pick(1100, 0), 0);
    /* a success forgets the failures */
    tg_upool_report_failure(&pool, 1, 2000);
    tg_upool_report_success(&pool, 1);
    tg_upool_report_failure(&pool, 1, 2000);
    ck_assert_uint_eq(targets[1].shared->down_until, 0);
    teardown();
}
END_TEST

START_TEST(test_state_is_shared_by_name)
{
    setup_n(2, TG_BALANCE_ROUND_ROBIN);
    /* another worker's pool (or the next config's) sees the same target state */
    tg_tshared_t *again = tg_tshared_get("unit", names[0]);
    ck_assert_ptr_eq(again, targets[0].shared);
    ck_assert_ptr_ne(tg_tshared_get("other", names[0]), again);
    tg_upool_report_failure(&pool, 0, 100);
    tg_upool_report_failure(&pool, 0, 100);
    ck_assert_uint_eq(again->down_until, 1100);
    tg_tshared_put(again);
    teardown();
}
END_TEST

START_TEST(test_all_down)
{
    setup_n(3, TG_BALANCE_ROUND_ROBIN);
    for (size_t i = 0; i < 3; i++)
        targets[i].shared->down_until = 900;
    /* fail_open (default): all of them share the traffic */
    size_t seen = 0;
    for (int i = 0; i < 3; i++)
        seen |= 1u << pick(100, 0);
    ck_assert_uint_eq(seen, 7);
    /* fail_closed: none */
    conf.all_down = TG_ALL_DOWN_FAIL_CLOSED;
    tg_pick_result_t why;
    ck_assert_uint_eq(tg_balance_pick(&pool, 100, 0, false, 0, &why), SIZE_MAX);
    ck_assert_int_eq(why, TG_PICK_ALL_DOWN);
    /* a health-check verdict takes a target out just the same */
    targets[1].shared->down_until = 0;
    targets[1].shared->unhealthy = true;
    ck_assert_uint_eq(tg_balance_pick(&pool, 100, 0, false, 0, &why), SIZE_MAX);
    targets[1].shared->unhealthy = false;
    ck_assert_uint_eq(pick(100, 0), 1);
    teardown();
}
END_TEST

START_TEST(test_max_connections)
{
    setup_n(2, TG_BALANCE_ROUND_ROBIN);
    conf.circuit.max_connections = 2;
    targets[0].shared->conns = 2;
    ck_assert_uint_eq(pick(0, 0), 1);
    ck_assert_uint_eq(pick(0, 0), 1);
    targets[1].shared->conns = 5;
    tg_pick_result_t why;
    ck_assert_uint_eq(tg_balance_pick(&pool, 0, 0, false, 0, &why), SIZE_MAX);
    ck_assert_int_eq(why, TG_PICK_MAX_CONNS);
    targets[0].shared->conns = targets[1].shared->conns = 0;
    teardown();
}
END_TEST

START_TEST(test_one_target_always)
{
    setup_n(1, TG_BALANCE_ROUND_ROBIN);
    ck_assert_uint_eq(pick(0, 1), 0); /* tried: again rather than none */
    teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("upstream_pool");
    TCase *tc = tcase_create("pick");
    tcase_add_test(tc, test_round_robin);
    tcase_add_test(tc, test_weighted_round_robin_is_smooth);
    tcase_add_test(tc, test_least_conn);
    tcase_add_test(tc, test_p2c_prefers_the_faster);
    tcase_add_test(tc, test_p2c_ewma_peaks_and_decays);
    tcase_add_test(tc, test_maglev_moves_few_keys);
    tcase_add_test(tc, test_weighted_maglev);
    tcase_add_test(tc, test_passive_health);
    tcase_add_test(tc, test_state_is_shared_by_name);
    tcase_add_test(tc, test_all_down);
    tcase_add_test(tc, test_max_connections);
    tcase_add_test(tc, test_one_target_always);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
