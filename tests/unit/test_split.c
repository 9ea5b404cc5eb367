/* Unit tests for src/split.c: weights, override, sticky keys that only move
 * toward a growing side. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outlier.h"
#include "request.h"
#include "retry_policy.h"
#include "split.h"
#include "upstream_shared.h"

/* ---- split ---- */

static tg_upstream_conf_t ups[2] = {{.name = "v1"}, {.name = "v2"}};

/* A request whose only header is X-User: user. */
static tg_request_t *request_with_user(tg_request_t *req, tg_http_header_t *h, const char *user)
{
    memset(req, 0, sizeof(*req));
    h->name = "X-User";
    h->name_len = 6;
    h->value = user;
    h->value_len = strlen(user);
    req->client.http.headers = h;
    req->client.http.num_headers = 1;
    return req;
}

START_TEST(test_sticky_only_moves_toward_a_growing_side)
{
    tg_split_side_t sides[2] = {{&ups[0], 90}, {&ups[1], 10}};
    tg_split_t s = {.sides = sides, .nsides = 2, .total = 100};
    s.sticky.kind = TG_KEY_HEADER;
    s.sticky.name = "X-User";
    s.sticky.name_len = 6;
    static tg_request_t req;
    tg_http_header_t h;
    char user[32];
    const tg_upstream_conf_t *before[1000];
    size_t on_v2 = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(user, sizeof(user), "user-%d", i);
        before[i] = tg_split_choose(&s, request_with_user(&req, &h, user));
        ck_assert_ptr_eq(tg_split_choose(&s, &req), before[i]);
        on_v2 += before[i] == &ups[1];
    }
    ck_assert(on_v2 > 70 && on_v2 < 130);
    sides[0].weight = 75;
    sides[1].weight = 25;
    s.total = 100;
    size_t now_v2 = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(user, sizeof(user), "user-%d", i);
        const tg_upstream_conf_t *u = tg_split_choose(&s, request_with_user(&req, &h, user));
        if (before[i] == &ups[1])
            ck_assert_ptr_eq(u, &ups[1]);
        now_v2 += u == &ups[1];
    }
    ck_assert(now_v2 > 200 && now_v2 < 300);
}
END_TEST

START_TEST(test_weights_and_override)
{
    tg_split_side_t sides[2] = {{&ups[0], 90}, {&ups[1], 10}};
    tg_split_t s = {.sides = sides, .nsides = 2, .total = 100};
    static tg_request_t req;
    tg_http_header_t h;
    size_t v2 = 0;
    for (int i = 0; i < 20000; i++)
        v2 += tg_split_choose(&s, request_with_user(&req, &h, "x")) == &ups[1];
    ck_assert(v2 > 1800 && v2 < 2200);
    s.override_header = "X-User";
    s.override_value = "canary";
    s.override_upstream = &ups[1];
    for (int i = 0; i < 50; i++)
        ck_assert_ptr_eq(tg_split_choose(&s, request_with_user(&req, &h, "canary")), &ups[1]);
    sides[1].weight = 0; /* a side at 0 gets nothing (but the override) */
    s.total = 90;
    for (int i = 0; i < 1000; i++)
        ck_assert_ptr_eq(tg_split_choose(&s, request_with_user(&req, &h, "x")), &ups[0]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("split");
    TCase *tc = tcase_create("split");
    tcase_add_test(tc, test_sticky_only_moves_toward_a_growing_side);
    tcase_add_test(tc, test_weights_and_override);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
