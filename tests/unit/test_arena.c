/* Unit tests for src/arena.c: alignment, copies, growth past a block, and
 * cleanups (reverse order, on reset and on destroy). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

static int order[8];
static int norder;

static void record(void *data)
{
    order[norder++] = (int)(intptr_t)data;
}

START_TEST(test_alignment_and_copies)
{
    tg_arena_t *a = tg_arena_create(128);
    for (size_t n = 1; n < 40; n += 3) {
        void *p = tg_arena_alloc(a, n);
        ck_assert_uint_eq((uintptr_t)p % 16, 0);
    }
    unsigned char *z = tg_arena_calloc(a, 64);
    for (int i = 0; i < 64; i++)
        ck_assert_uint_eq(z[i], 0);
    char *s = tg_arena_strndup(a, "abcdef", 3);
    ck_assert_str_eq(s, "abc");
    ck_assert_str_eq(tg_arena_printf(a, "%s-%d", "x", 42), "x-42");
    tg_arena_destroy(a);
}
END_TEST

START_TEST(test_allocations_past_the_first_block)
{
    tg_arena_t *a = tg_arena_create(64);
    char *big = tg_arena_alloc(a, 100000);
    memset(big, 'x', 100000); /* ASan: the whole block is ours */
    char *small[100];
    for (int i = 0; i < 100; i++) {
        small[i] = tg_arena_alloc(a, 50);
        memset(small[i], i, 50);
    }
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(small[i][49], i);
    ck_assert_uint_ge(tg_arena_used(a), 100000 + 100 * 50);
    tg_arena_reset(a);
    ck_assert_uint_eq(tg_arena_used(a), 0);
    ck_assert_ptr_nonnull(tg_arena_alloc(a, 10));
    tg_arena_destroy(a);
}
END_TEST

START_TEST(test_cleanups_run_in_reverse_on_reset_and_destroy)
{
    tg_arena_t *a = tg_arena_create(256);
    norder = 0;
    for (intptr_t i = 1; i <= 3; i++)
        tg_arena_on_cleanup(a, record, (void *)i);
    tg_arena_reset(a);
    ck_assert_int_eq(norder, 3);
    ck_assert_int_eq(order[0], 3);
    ck_assert_int_eq(order[1], 2);
    ck_assert_int_eq(order[2], 1);
    /* a reset arena has no cleanups left; new ones run at destroy */
    tg_arena_on_cleanup(a, record, (void *)7);
    tg_arena_destroy(a);
    ck_assert_int_eq(norder, 4);
    ck_assert_int_eq(order[3], 7);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("arena");
    tcase_add_test(tc, test_alignment_and_copies);
    tcase_add_test(tc, test_allocations_past_the_first_block);
    tcase_add_test(tc, test_cleanups_run_in_reverse_on_reset_and_destroy);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
