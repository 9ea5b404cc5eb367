/* Unit tests for plugins/cache: Cache-Control parsing, HTTP dates, entity-tag
 * matching, age arithmetic, the memory store (LRU bound, variants, purge,
 * claims) and the key's parts. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/cache/cache_codec.c"
#include "plugins/cache/cache_entry.c"
#include "plugins/cache/cache_policy.c"
#include "plugins/cache/cache_store.c"

START_TEST(cache_control)
{
    tg_cc_t cc;
    tg_cc_init(&cc);
    const char *v =
        "public, max-age=60, s-maxage=\"30\", stale-while-revalidate=5, Must-Revalidate";
    tg_cc_parse(v, strlen(v), &cc);
    ck_assert(cc.public_ && cc.must_revalidate && cc.any);
    ck_assert_int_eq(cc.max_age, 60);
    ck_assert_int_eq(cc.s_maxage, 30);
    ck_assert_int_eq(cc.swr, 5);
    ck_assert_int_eq(cc.sie, -1);
    tg_cc_init(&cc);
    v = "no-store, private=\"X\", no-cache=\"Set-Cookie\", max-age=abc, foo=bar";
    tg_cc_parse(v, strlen(v), &cc);
    ck_assert(cc.no_store && cc.private_ && cc.no_cache);
    ck_assert_int_eq(cc.max_age, 0); /* invalid: stale */
    tg_cc_init(&cc);
    v = "max-age=99999999999999";
    tg_cc_parse(v, strlen(v), &cc);
    ck_assert_int_eq(cc.max_age, 2147483648LL);
}
END_TEST

START_TEST(dates_and_etags)
{
    ck_assert_int_eq(tg_http_date("Sun, 06 Nov 1994 08:49:37 GMT", 29), 784111777);
    ck_assert_int_eq(tg_http_date("Sunday, 06-Nov-94 08:49:37 GMT", 30), 784111777);
    ck_assert_int_eq(tg_http_date("Sun Nov  6 08:49:37 1994", 24), 784111777);
    ck_assert_int_eq(tg_http_date("0", 1), -1);
    ck_assert_int_eq(tg_http_date("Sun, 06 Nov 1994 08:49:37 GMTx", 30), -1);
    ck_assert(tg_etag_match("\"a\", W/\"b\"", 10, "\"b\""));
    ck_assert(tg_etag_match("\"b\"", 3, "W/\"b\""));
    ck_assert(tg_etag_match("*", 1, "\"z\""));
    ck_assert(!tg_etag_match("\"a\"", 3, "\"b\""));
    ck_assert(!tg_etag_match("\"a\"", 3, NULL));
    ck_assert_int_eq(tg_delta_seconds("12", 2), 12);
    ck_assert_int_eq(tg_delta_seconds("-1", 2), -1);
}
END_TEST

static tg_cache_entry_t *entry(const char *key, const char *route, const char *path, size_t body,
                               const char *vary_key)
{
    tg_cache_entry_t *e = tg_cache_entry_new();
    e->key = strdup(key);
    e->klen = strlen(key);
    e->route = strdup(route);
    e->path = strdup(path);
    if (vary_key != NULL) {
        e->vary = strdup("accept-language");
        e->vary_key = strdup(vary_key);
    }
    e->body = calloc(1, body + 1);
    e->body_len = body;
    tg_cache_entry_account(e);
    return e;
}

static bool any(const tg_cache_entry_t *e, void *arg)
{
    (void)e;
    (void)arg;
    return true;
}

static bool variant(const tg_cache_entry_t *e, void *arg)
{
    return e->vary_key != NULL && strcmp(e->vary_key, arg) == 0;
}

START_TEST(store_bound_and_lru)
{
    tg_cache_store_t *s = tg_cache_store_new(1 << 20);
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        tg_cache_store_put(s, entry(key, "r", "/p", 4096, NULL));
    }
    ck_assert_uint_le(tg_cache_store_bytes(s), 1 << 20);
    tg_cache_entry_t *e = tg_cache_store_get(s, "k1999", 5, any, NULL);
    ck_assert_ptr_nonnull(e);
    tg_cache_entry_unref(e);
    ck_assert_ptr_null(tg_cache_store_get(s, "k0", 2, any, NULL));
    /* Larger than a shard's part: never stored. */
    tg_cache_store_put(s, entry("big", "r", "/p", 1 << 20, NULL));
    ck_assert_ptr_null(tg_cache_store_get(s, "big", 3, any, NULL));
    tg_cache_store_free(s);
}
END_TEST

START_TEST(store_variants_and_purge)
{
    tg_cache_store_t *s = tg_cache_store_new(1 << 20);
    tg_cache_store_put(s, entry("a", "r", "/p/1", 10, "en"));
    tg_cache_store_put(s, entry("a", "r", "/p/1", 10, "fr"));
    tg_cache_store_put(s, entry("a", "r", "/p/1", 20, "fr")); /* replaces fr */
    tg_cache_store_put(s, entry("b", "r", "/p/2", 10, NULL));
    tg_cache_store_put(s, entry("c", "other", "/p/3", 10, NULL));
    tg_cache_entry_t *e = tg_cache_store_get(s, "a", 1, variant, "fr");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->body_len, 20);
    /* A reader keeps its entry after a purge. */
    ck_assert_uint_eq(tg_cache_store_purge(s, "r", "/p/1", false), 2);
    ck_assert_uint_eq(e->body_len, 20);
    tg_cache_entry_unref(e);
    ck_assert_ptr_null(tg_cache_store_get(s, "a", 1, variant, "en"));
    ck_assert_uint_eq(tg_cache_store_purge(s, "r", "/p/", true), 1);
    ck_assert_uint_eq(tg_cache_store_purge(s, "other", "/", true), 1);
    ck_assert_uint_eq(tg_cache_store_bytes(s), 0);
    tg_cache_store_free(s);
}
END_TEST

START_TEST(claims)
{
    tg_cache_store_t *s = tg_cache_store_new(1 << 20);
    uint64_t holder = 0;
    uint64_t id = tg_cache_pending_claim(s, "k", 1, 1000, 30000, &holder);
    ck_assert_uint_gt(id, 0);
    ck_assert_uint_eq(tg_cache_pending_claim(s, "k", 1, 2000, 30000, &holder), 0);
    ck_assert_uint_eq(holder, id);
    ck_assert(tg_cache_pending_held(s, "k", 1, id));
    /* Too old: taken over; the old holder's release changes nothing. */
    uint64_t id2 = tg_cache_pending_claim(s, "k", 1, 40000, 30000, &holder);
    ck_assert_uint_gt(id2, id);
    tg_cache_pending_release(s, "k", 1, id);
    ck_assert(tg_cache_pending_held(s, "k", 1, id2));
    tg_cache_pending_release(s, "k", 1, id2);
    ck_assert(!tg_cache_pending_held(s, "k", 1, id2));
    tg_cache_store_free(s);
}
END_TEST

START_TEST(age)
{
    tg_cache_entry_t *e = tg_cache_entry_new();
    e->response_time = 1000;
    e->initial_age = 5;
    ck_assert_int_eq(tg_cache_entry_age(e, 1010), 15);
    ck_assert_int_eq(tg_cache_entry_age(e, 990), 5); /* clock stepped back */
    tg_cache_entry_unref(e);
}
END_TEST

START_TEST(codec_round_trip)
{
    tg_cache_entry_t *e = entry("k", "r", "/p", 5, "en");
    memcpy(e->body, "he\0lo", 5);
    e->status = 203;
    e->lifetime = 60;
    e->swr = 5;
    e->must_revalidate = true;
    tg_cache_entry_add_header(e, "ETag", 4, "\"v\"", 3);
    e->etag = tg_cache_entry_header(e, "ETag");
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(tg_cache_encode(e, b), 0);
    size_t len = evbuffer_get_length(b);
    const char *p = (const char *)evbuffer_pullup(b, -1);
    tg_cache_entry_t *d = tg_cache_decode(p, len);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->status, 203);
    ck_assert_int_eq(d->lifetime, 60);
    ck_assert_int_eq(d->swr, 5);
    ck_assert(d->must_revalidate && !d->no_cache);
    ck_assert_uint_eq(d->body_len, 5);
    ck_assert_mem_eq(d->body, "he\0lo", 5);
    ck_assert_str_eq(d->etag, "\"v\"");
    ck_assert_str_eq(d->vary_key, "en");
    ck_assert_ptr_null(d->content_type);
    tg_cache_entry_unref(d);
    /* Every truncation, and a foreign value, is refused. */
    for (size_t n = 0; n < len; n++)
        ck_assert_ptr_null(tg_cache_decode(p, n));
    ck_assert_ptr_null(tg_cache_decode("TGC2", 4));
    evbuffer_free(b);
    tg_cache_entry_unref(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *t = tcase_create("cache");
    tcase_add_test(t, cache_control);
    tcase_add_test(t, dates_and_etags);
    tcase_add_test(t, store_bound_and_lru);
    tcase_add_test(t, store_variants_and_purge);
    tcase_add_test(t, claims);
    tcase_add_test(t, age);
    tcase_add_test(t, codec_round_trip);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
