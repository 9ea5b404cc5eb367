/* Unit tests for src/claims.c: the claim contract of include/tollgate/request.h
 * ("the authenticated client"). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "claims.h"
#include "tollgate/request.h"

static tg_arena_t *arena;
static tg_claims_t claims;

static void setup(void)
{
    arena = tg_arena_create(256);
    memset(&claims, 0, sizeof(claims));
}

static void teardown(void)
{
    tg_arena_destroy(arena);
}

START_TEST(test_set_get_and_replace)
{
    size_t len = 99;
    ck_assert_ptr_null(tg_claims_get(&claims, "sub", &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(tg_claims_set(&claims, arena, "sub", "alice", 5), 0);
    ck_assert_int_eq(tg_claims_set(&claims, arena, "n", "42", 2), 0);
    const char *v = tg_claims_get(&claims, "sub", &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(v, "alice"); /* followed by a NUL */
    ck_assert_int_eq(tg_claims_set(&claims, arena, "sub", "bob", 3), 0);
    ck_assert_str_eq(tg_claims_get(&claims, "sub", &len), "bob");
    ck_assert_uint_eq(len, 3);
    ck_assert_uint_eq(claims.n, 2);
    /* names compare exactly */
    ck_assert_ptr_null(tg_claims_get(&claims, "Sub", &len));
}
END_TEST

START_TEST(test_values_are_copied_and_may_hold_nul)
{
    char buf[] = "a\0b";
    ck_assert_int_eq(tg_claims_set(&claims, arena, "x", buf, 3), 0);
    buf[0] = 'z';
    size_t len;
    const char *v = tg_claims_get(&claims, "x", &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(v, "a\0b", 4), 0);
    ck_assert_int_eq(tg_claims_set(&claims, arena, "empty", "", 0), 0);
    ck_assert_ptr_nonnull(tg_claims_get(&claims, "empty", &len));
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_empty_name_refused)
{
    ck_assert_int_eq(tg_claims_set(&claims, arena, "", "v", 1), -1);
    ck_assert_int_eq(tg_claims_set(&claims, arena, NULL, "v", 1), -1);
    ck_assert_uint_eq(claims.n, 0);
}
END_TEST

START_TEST(test_at_most_max_names)
{
    char name[16];
    for (int i = 0; i < TG_REQUEST_CLAIMS_MAX; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        ck_assert_int_eq(tg_claims_set(&claims, arena, name, name, strlen(name)), 0);
    }
    ck_assert_int_eq(tg_claims_set(&claims, arena, "one-more", "v", 1), -1);
    size_t len;
    ck_assert_ptr_null(tg_claims_get(&claims, "one-more", &len));
    /* replacing a published name still works */
    ck_assert_int_eq(tg_claims_set(&claims, arena, "c0", "new", 3), 0);
    ck_assert_str_eq(tg_claims_get(&claims, "c0", &len), "new");
    /* every earlier value survived the array's growth */
    ck_assert_str_eq(tg_claims_get(&claims, "c63", &len), "c63");
}
END_TEST

START_TEST(test_subject)
{
    ck_assert_int_eq(tg_claims_set_subject(&claims, arena, "", 0), -1);
    ck_assert_ptr_null(claims.subject);
    ck_assert_int_eq(tg_claims_set_subject(&claims, arena, "alice", 5), 0);
    ck_assert_int_eq(tg_claims_set_subject(&claims, arena, "bob", 3), 0);
    ck_assert_str_eq(claims.subject, "bob");
    ck_assert_uint_eq(claims.subject_len, 3);
}
END_TEST

START_TEST(test_consumer)
{
    ck_assert_int_eq(tg_claims_set_consumer(&claims, arena, "", 0), -1);
    ck_assert_ptr_null(claims.consumer);
    ck_assert_int_eq(tg_claims_set_consumer(&claims, arena, "alice", 5), 0);
    char name[] = "bob";
    ck_assert_int_eq(tg_claims_set_consumer(&claims, arena, name, 3), 0);
    name[0] = 'x'; /* copied */
    ck_assert_str_eq(claims.consumer, "bob");
    ck_assert_uint_eq(claims.consumer_len, 3);
    ck_assert_ptr_null(claims.subject); /* its own slot */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("claims");
    TCase *tc = tcase_create("claims");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_set_get_and_replace);
    tcase_add_test(tc, test_values_are_copied_and_may_hold_nul);
    tcase_add_test(tc, test_empty_name_refused);
    tcase_add_test(tc, test_at_most_max_names);
    tcase_add_test(tc, test_subject);
    tcase_add_test(tc, test_consumer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
