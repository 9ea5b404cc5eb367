/*
 * jwt plugin: the per-worker token cache: expiry, nbf, clock eviction.
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt/jwt_cache.c"

static void key_of(unsigned n, unsigned char key[TG_JWT_CACHE_KEY])
{
    /* Spread like a hash would be, but collide on purpose in the low byte
     * every 4 keys so chains get exercised. */
    memset(key, 0, TG_JWT_CACHE_KEY);
    key[0] = (unsigned char)(n % 4);
    memcpy(key + 8, &n, sizeof(n));
}

static json_t *claims(double exp, double nbf)
{
    json_t *c = json_pack("{s:s}", "sub", "alice");
    if (exp > 0)
        json_object_set_new(c, "exp", json_real(exp));
    if (nbf > 0)
        json_object_set_new(c, "nbf", json_integer((json_int_t)nbf));
    return c;
}

START_TEST(hit_and_expiry)
{
    tg_jwt_cache_t *c = tg_jwt_cache_new(8, 2.0);
    unsigned char k[TG_JWT_CACHE_KEY];
    key_of(1, k);
    ck_assert_ptr_null(tg_jwt_cache_get(c, k, 100));
    json_t *cl = claims(110, 0);
    tg_jwt_cache_put(c, k, cl);
    ck_assert_ptr_eq(tg_jwt_cache_get(c, k, 100), cl);
    ck_assert_ptr_eq(tg_jwt_cache_get(c, k, 111.9), cl); /* within leeway */
    ck_assert_int_eq(tg_jwt_cache_count(c), 1);
    ck_assert_ptr_null(tg_jwt_cache_get(c, k, 112)); /* exp + leeway: dropped */
    ck_assert_int_eq(tg_jwt_cache_count(c), 0);
    ck_assert_ptr_null(tg_jwt_cache_get(c, k, 100)); /* gone for good */
    ck_assert_int_eq(cl->refcount, 1);               /* the cache let go of it */
    json_decref(cl);
    tg_jwt_cache_free(c);
}
END_TEST

START_TEST(nbf_not_served_early)
{
    tg_jwt_cache_t *c = tg_jwt_cache_new(4, 0);
    unsigned char k[TG_JWT_CACHE_KEY];
    key_of(7, k);
    json_t *cl = claims(0, 200);
    tg_jwt_cache_put(c, k, cl);
    ck_assert_ptr_null(tg_jwt_cache_get(c, k, 199));
    ck_assert_ptr_eq(tg_jwt_cache_get(c, k, 200), cl);
    ck_assert_ptr_eq(tg_jwt_cache_get(c, k, 1e12), cl); /* no exp: kept */
    json_decref(cl);
    tg_jwt_cache_free(c);
}
END_TEST

START_TEST(bounded_clock_eviction)
{
    tg_jwt_cache_t *c = tg_jwt_cache_new(4, 0);
    unsigned char k[TG_JWT_CACHE_KEY];
    json_t *cl = claims(1000, 0);
    for (unsigned i = 0; i < 4; i++) {
        key_of(i, k);
        tg_jwt_cache_put(c, k, cl);
    }
    ck_assert_int_eq(tg_jwt_cache_count(c), 4);
    /* Touch 0, 1 and 3: the clock spares them and evicts 2. */
    for (unsigned i = 0; i < 4; i++) {
        key_of(i, k);
        if (i != 2)
            ck_assert_ptr_nonnull(tg_jwt_cache_get(c, k, 1));
    }
    key_of(100, k);
    tg_jwt_cache_put(c, k, cl);
    ck_assert_int_eq(tg_jwt_cache_count(c), 4);
    key_of(2, k);
    ck_assert_ptr_null(tg_jwt_cache_get(c, k, 1));
    for (unsigned i = 0; i < 4; i++) {
        key_of(i == 2 ? 100 : i, k);
        ck_assert_msg(tg_jwt_cache_get(c, k, 1) != NULL, "key %u evicted", i);
    }
    /* Many more: never more than the capacity, every reference accounted. */
    for (unsigned i = 200; i < 1200; i++) {
        key_of(i, k);
        tg_jwt_cache_put(c, k, cl);
        ck_assert_int_le(tg_jwt_cache_count(c), 4);
    }
    ck_assert_int_eq(cl->refcount, 1 + 4);
    tg_jwt_cache_free(c);
    ck_assert_int_eq(cl->refcount, 1);
    json_decref(cl);
}
END_TEST

START_TEST(put_twice_keeps_one)
{
    tg_jwt_cache_t *c = tg_jwt_cache_new(2, 0);
    unsigned char k[TG_JWT_CACHE_KEY];
    key_of(5, k);
    json_t *cl = claims(1000, 0);
    tg_jwt_cache_put(c, k, cl);
    tg_jwt_cache_put(c, k, cl);
    ck_assert_int_eq(tg_jwt_cache_count(c), 1);
    ck_assert_int_eq(cl->refcount, 2);
    tg_jwt_cache_free(c);
    json_decref(cl);
    ck_assert_ptr_null(tg_jwt_cache_new(0, 0));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jwt_cache");
    TCase *t = tcase_create("cache");
    tcase_add_test(t, hit_and_expiry);
    tcase_add_test(t, nbf_not_served_early);
    tcase_add_test(t, bounded_clock_eviction);
    tcase_add_test(t, put_twice_keeps_one);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
