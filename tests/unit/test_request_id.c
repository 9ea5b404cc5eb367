/* Unit tests for src/request_id.c: which client ids are passed on, and the
 * generated ones. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "request_id.h"

START_TEST(test_valid_client_ids)
{
    ck_assert(tg_request_id_valid("abc-123", 7));
    ck_assert(tg_request_id_valid("!~", 2));
    char id[TG_REQUEST_ID_MAX + 1];
    memset(id, 'a', sizeof(id));
    ck_assert(tg_request_id_valid(id, TG_REQUEST_ID_MAX));
    ck_assert(!tg_request_id_valid(id, TG_REQUEST_ID_MAX + 1));
    ck_assert(!tg_request_id_valid("", 0));
    /* they land in JSON logs: no quotes, backslashes, spaces or controls */
    ck_assert(!tg_request_id_valid("a\"b", 3));
    ck_assert(!tg_request_id_valid("a\\b", 3));
    ck_assert(!tg_request_id_valid("a b", 3));
    ck_assert(!tg_request_id_valid("a\tb", 3));
    ck_assert(!tg_request_id_valid("a\x7f", 2));
    ck_assert(!tg_request_id_valid("\xc3\xa9", 2));
    ck_assert(!tg_request_id_valid("a\0b", 3));
}
END_TEST

START_TEST(test_generated_ids)
{
    tg_request_id_gen_t g;
    tg_request_id_seed(&g);
    char a[33], b[33];
    tg_request_id_generate(&g, a);
    tg_request_id_generate(&g, b);
    ck_assert_uint_eq(strlen(a), 32);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 32);
    ck_assert_str_ne(a, b);
    ck_assert(tg_request_id_valid(a, 32));
    /* two workers seeded separately do not repeat each other */
    tg_request_id_gen_t h;
    tg_request_id_seed(&h);
    tg_request_id_generate(&h, b);
    ck_assert_str_ne(a, b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("request_id");
    TCase *tc = tcase_create("request_id");
    tcase_add_test(tc, test_valid_client_ids);
    tcase_add_test(tc, test_generated_ids);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
