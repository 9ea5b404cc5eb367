/*
 * Unit tests for plugins/idempotency: the Idempotency-Key value (RFC 8941
 * sf-string), the record layout read back from a store, and the memory store
 * (claim, owner-only swap, expiry, one store shared by threads). The plugin's
 * files are included: they are not part of the core library.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/idempotency/idem_memory.c"
#include "plugins/idempotency/idem_record.c"
#include "plugins/idempotency/idem_scope.c"

static int key(const char *v, char *out)
{
    return tg_idem_key_parse(v, strlen(v), out);
}

START_TEST(key_is_an_sf_string)
{
    char out[TG_IDEM_KEY_MAX];
    ck_assert_int_eq(key("\"abc-123\"", out), 7);
    ck_assert(memcmp(out, "abc-123", 7) == 0);
    ck_assert_int_eq(key("\"a\\\"b\\\\c\"", out), 5); /* "a\"b\\c" */
    ck_assert(memcmp(out, "a\"b\\c", 5) == 0);
    ck_assert_int_eq(key("\" \"", out), 1);
    ck_assert_int_eq(key("\"\"", out), -1);            /* empty */
    ck_assert_int_eq(key("abc", out), -1);             /* a token, not a string */
    ck_assert_int_eq(key("\"abc", out), -1);           /* unterminated */
    ck_assert_int_eq(key("\"a\"b\"", out), -1);        /* bare quote inside */
    ck_assert_int_eq(key("\"a\\n\"", out), -1);        /* only \" and \\ escape */
    ck_assert_int_eq(key("\"a\\\"", out), -1);         /* escape eats the closing quote */
    ck_assert_int_eq(key("\"a\tb\"", out), -1);        /* control */
    ck_assert_int_eq(key("\"caf\xc3\xa9\"", out), -1); /* not ASCII */
    ck_assert_int_eq(key("\"a\";x=1", out), -1);       /* parameters are not a string */
    char longest[TG_IDEM_KEY_MAX + 3];
    memset(longest, 'x', sizeof(longest));
    longest[0] = '"';
    longest[TG_IDEM_KEY_MAX + 1] = '"';
    longest[TG_IDEM_KEY_MAX + 2] = '\0';
    ck_assert_int_eq(key(longest, out), TG_IDEM_KEY_MAX);
    char too_long[TG_IDEM_KEY_MAX + 4];
    memset(too_long, 'x', sizeof(too_long));
    too_long[0] = '"';
    too_long[TG_IDEM_KEY_MAX + 2] = '"';
    too_long[TG_IDEM_KEY_MAX + 3] = '\0';
    ck_assert_int_eq(key(too_long, out), -1);
}
END_TEST

static size_t completed(char *v, const char *status, const char *body)
{
    size_t n = 0;
    v[n++] = 'C';
    memset(v + n, 7, TG_IDEM_HASH);
    n += TG_IDEM_HASH;
    memcpy(v + n, status, 3);
    n += 3;
    uint32_t count = 2, nl = 12, vl = 16, nl2 = 5, vl2 = 0;
    memcpy(v + n, &count, 4);
    n += 4;
    memcpy(v + n, &nl, 4);
    memcpy(v + n + 4, &vl, 4);
    memcpy(v + n + 8, "Content-TypeApplication/json", 28);
    n += 8 + 28;
    memcpy(v + n, &nl2, 4);
    memcpy(v + n + 4, &vl2, 4);
    memcpy(v + n + 8, "X-Emp", 5);
    n += 8 + 5;
    memcpy(v + n, body, strlen(body));
    return n + strlen(body);
}

START_TEST(records_parse)
{
    char v[256];
    tg_idem_record_t rec;
    size_t n = completed(v, "201", "{\"id\":1}");
    ck_assert_int_eq(tg_idem_record_parse(v, n, &rec), 0);
    ck_assert_int_eq(rec.kind, 'C');
    ck_assert_int_eq(rec.status, 201);
    ck_assert_uint_eq(rec.nfields, 2);
    ck_assert_uint_eq(rec.body_len, 8);
    ck_assert(memcmp(rec.body, "{\"id\":1}", 8) == 0);
    const char *hn, *hv;
    size_t hnl, hvl;
    ck_assert(tg_idem_record_field(&rec, 1, &hn, &hnl, &hv, &hvl));
    ck_assert(hnl == 5 && memcmp(hn, "X-Emp", 5) == 0 && hvl == 0);
    ck_assert(!tg_idem_record_field(&rec, 2, &hn, &hnl, &hv, &hvl));
    /* Cut anywhere inside the header block: refused, never read past the end. */
    for (size_t cut = 0; cut < n - 8; cut++)
        ck_assert_int_eq(tg_idem_record_parse(v, cut, &rec), -1);
    ck_assert_int_eq(tg_idem_record_parse(v, n - 8, &rec), 0); /* no body: fine */
    ck_assert_uint_eq(rec.body_len, 0);
    completed(v, "099", "");
    ck_assert_int_eq(tg_idem_record_parse(v, n - 8, &rec), -1); /* status out of range */
    memset(v, 0, sizeof(v));
    v[0] = 'P';
    ck_assert_int_eq(tg_idem_record_parse(v, 1 + TG_IDEM_HASH + TG_IDEM_TOKEN_HEX, &rec), 0);
    ck_assert_int_eq(tg_idem_record_parse(v, TG_IDEM_HASH + TG_IDEM_TOKEN_HEX, &rec), -1);
    v[0] = 'N';
    memcpy(v + 1 + TG_IDEM_HASH, "200", 3);
    ck_assert_int_eq(tg_idem_record_parse(v, 1 + TG_IDEM_HASH + 3, &rec), 0);
    ck_assert_int_eq(rec.status, 200);
    v[0] = 'X';
    ck_assert_int_eq(tg_idem_record_parse(v, 1 + TG_IDEM_HASH + 3, &rec), -1);
}
END_TEST

static const tg_idem_quota_t no_quota = {0, 0};
static const uint8_t scope_a[TG_IDEM_HASH] = {0xa};

START_TEST(memory_claim_swap_expire)
{
    tg_idem_mem_t *m = tg_idem_mem_acquire(64 << 20);
    ck_assert_ptr_eq(tg_idem_mem_acquire(64 << 20), m); /* one per process */
    tg_idem_mem_release(m);
    uint8_t k[TG_IDEM_HASH] = {1, 2, 3};
    char *old = NULL;
    size_t old_len = 0;
    uint64_t retry;
    const tg_idem_quota_t *q = &no_quota;
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, q, "Pmine", 5, 60000, &old, &old_len, &retry),
                     0);
    ck_assert_int_eq(
        tg_idem_mem_claim(m, k, scope_a, q, "Pother", 6, 60000, &old, &old_len, &retry), 1);
    ck_assert(old_len == 5 && memcmp(old, "Pmine", 5) == 0);
    free(old);
    /* Only the owner's value may be swapped. */
    ck_assert_int_eq(tg_idem_mem_swap(m, k, q, "Pother", 6, "Cx", 2, 60000), 0);
    ck_assert_int_eq(tg_idem_mem_swap(m, k, q, "Pmine", 5, "Cdone", 5, 60000), 1);
    ck_assert_int_eq(
        tg_idem_mem_claim(m, k, scope_a, q, "Pthird", 6, 60000, &old, &old_len, &retry), 1);
    ck_assert(old_len == 5 && memcmp(old, "Cdone", 5) == 0);
    free(old);
    /* Release: the next claim wins. */
    uint8_t k2[TG_IDEM_HASH] = {9};
    ck_assert_int_eq(tg_idem_mem_claim(m, k2, scope_a, q, "Pa", 2, 60000, &old, &old_len, &retry),
                     0);
    ck_assert_int_eq(tg_idem_mem_swap(m, k2, q, "Pa", 2, NULL, 0, 0), 1);
    ck_assert_int_eq(tg_idem_mem_claim(m, k2, scope_a, q, "Pb", 2, 50, &old, &old_len, &retry), 0);
    usleep(80000); /* expired */
    ck_assert_int_eq(tg_idem_mem_claim(m, k2, scope_a, q, "Pc", 2, 60000, &old, &old_len, &retry),
                     0);
    ck_assert_int_eq(tg_idem_mem_swap(m, k2, q, "Pb", 2, NULL, 0, 0), 0);
    tg_idem_mem_release(m);
}
END_TEST

static void key_of(uint8_t k[TG_IDEM_HASH], uint32_t i)
{
    memset(k, 0, TG_IDEM_HASH);
    memcpy(k, &i, 4); /* keys spread over buckets, as SHA-256s are */
}

/* Every record is charged (in progress too) against max_size; a full store
 * refuses new keys and never evicts a live record; expired records go first. */
START_TEST(memory_byte_bound_refuses_without_eviction)
{
    tg_idem_mem_t *m = tg_idem_mem_acquire(64 << 10);
    uint8_t k[TG_IDEM_HASH], sc[TG_IDEM_HASH];
    char *old = NULL, value[200];
    size_t old_len, records;
    uint64_t retry, bytes;
    memset(value, 'P', sizeof(value));
    uint32_t n = 0;
    for (;; n++) {
        key_of(k, n);
        key_of(sc, n); /* every record its own client: no quota applies */
        int rc = tg_idem_mem_claim(m, k, sc, &no_quota, value, sizeof(value), 100, &old, &old_len,
                                   &retry);
        tg_idem_mem_usage(m, &bytes, &records);
        ck_assert_uint_le(bytes, 64 << 10);
        if (rc != 0) {
            ck_assert_int_eq(rc, TG_IDEM_MEM_FULL);
            break;
        }
    }
    ck_assert_uint_gt(n, 100); /* 200-byte values: a couple of hundred fit */
    ck_assert_uint_eq(records, n);
    ck_assert_uint_eq(bytes, n * (REC_OVERHEAD + sizeof(value) + SCOPE_OVERHEAD));
    key_of(k, 5);
    key_of(sc, 5);
    ck_assert_int_eq(/* still there: not evicted */
                     tg_idem_mem_claim(m, k, sc, &no_quota, "x", 1, 100, &old, &old_len, &retry),
                     1);
    free(old);
    usleep(150000); /* all expired: they go first, the claim fits */
    key_of(k, 1000000);
    ck_assert_int_eq(tg_idem_mem_claim(m, k, sc, &no_quota, "x", 1, 60000, &old, &old_len, &retry),
                     0);
    tg_idem_mem_usage(m, &bytes, &records);
    ck_assert_uint_eq(records, 1);
    ck_assert_uint_eq(bytes, REC_OVERHEAD + 1 + SCOPE_OVERHEAD);
    tg_idem_mem_release(m); /* the last reference: the store goes */
    m = tg_idem_mem_acquire(64 << 10);
    ck_assert_uint_eq(m->count, 0);
    tg_idem_mem_release(m);
}
END_TEST

/* One client at its quota of keys gets QUOTA (with a retry hint) while
 * another client still claims; a release or an expiry gives room back. */
START_TEST(memory_scope_quota_of_keys)
{
    tg_idem_mem_t *m = tg_idem_mem_acquire(64 << 20);
    const tg_idem_quota_t q = {3, 0};
    const uint8_t scope_b[TG_IDEM_HASH] = {0xb};
    uint8_t k[TG_IDEM_HASH];
    char *old = NULL;
    size_t old_len;
    uint64_t retry = 0;
    for (uint32_t i = 0; i < 3; i++) {
        key_of(k, i);
        ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, &q, "P", 1, 300, &old, &old_len, &retry),
                         0);
    }
    key_of(k, 3);
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, &q, "P", 1, 300, &old, &old_len, &retry),
                     TG_IDEM_MEM_QUOTA);
    ck_assert(retry > 0 && retry <= 300);
    key_of(k, 0); /* a key it holds still answers */
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, &q, "P", 1, 300, &old, &old_len, &retry), 1);
    free(old);
    key_of(k, 3);
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_b, &q, "P", 1, 300, &old, &old_len, &retry), 0);
    key_of(k, 1);
    ck_assert_int_eq(tg_idem_mem_swap(m, k, &q, "P", 1, NULL, 0, 0), 1); /* released */
    key_of(k, 4);
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, &q, "P", 1, 300, &old, &old_len, &retry), 0);
    key_of(k, 5);
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, &q, "P", 1, 300, &old, &old_len, &retry),
                     TG_IDEM_MEM_QUOTA);
    usleep(350000);
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, &q, "P", 1, 300, &old, &old_len, &retry), 0);
    tg_idem_mem_release(m);
}
END_TEST

/* A response that would take the scope past its bytes, or the store past
 * max_size, is refused by swap and the record stays the owner's. */
START_TEST(memory_swap_over_bytes_is_refused)
{
    tg_idem_mem_t *m = tg_idem_mem_acquire(64 << 10);
    const tg_idem_quota_t q = {0, 4096};
    static char big[8192], huge[70000];
    uint8_t k[TG_IDEM_HASH] = {7};
    char *old = NULL;
    size_t old_len;
    uint64_t retry;
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, &q, "Pk", 2, 60000, &old, &old_len, &retry),
                     0);
    ck_assert_int_eq(tg_idem_mem_swap(m, k, &q, "Pk", 2, big, sizeof(big), 60000),
                     TG_IDEM_MEM_QUOTA);
    ck_assert_int_eq(tg_idem_mem_swap(m, k, &no_quota, "Pk", 2, huge, sizeof(huge), 60000),
                     TG_IDEM_MEM_QUOTA);
    ck_assert_int_eq(tg_idem_mem_swap(m, k, &q, "Pk", 2, "N", 1, 60000), 1); /* still its own */
    ck_assert_int_eq(tg_idem_mem_claim(m, k, scope_a, &q, "Pk", 2, 60000, &old, &old_len, &retry),
                     1);
    ck_assert(old_len == 1 && old[0] == 'N');
    free(old);
    tg_idem_mem_release(m);
}
END_TEST

/* The deadline heap: records of mixed deadlines, swapped to later ones,
 * removed out of order, expire exactly when due. */
START_TEST(memory_deadlines_in_any_order)
{
    tg_idem_mem_t *m = tg_idem_mem_acquire(64 << 20);
    uint8_t k[TG_IDEM_HASH];
    char *old = NULL;
    size_t old_len, records;
    uint64_t retry, bytes;
    for (uint32_t i = 0; i < 500; i++) {
        key_of(k, i);
        uint64_t ttl = i % 2 ? 60000 : 20 + (i * 7919) % 80;
        ck_assert_int_eq(
            tg_idem_mem_claim(m, k, scope_a, &no_quota, "P", 1, ttl, &old, &old_len, &retry), 0);
    }
    for (uint32_t i = 0; i < 500; i += 4) { /* short ones made long, long ones released */
        key_of(k, i);
        ck_assert_int_eq(tg_idem_mem_swap(m, k, &no_quota, "P", 1, "C", 1, 60000), 1);
        key_of(k, i + 1);
        ck_assert_int_eq(tg_idem_mem_swap(m, k, &no_quota, "P", 1, NULL, 0, 0), 1);
    }
    usleep(150000);
    key_of(k, 1000);
    ck_assert_int_eq(
        tg_idem_mem_claim(m, k, scope_a, &no_quota, "P", 1, 60000, &old, &old_len, &retry), 0);
    tg_idem_mem_usage(m, &bytes, &records);
    ck_assert_uint_eq(records, 125 + 125 + 1); /* i % 4 == 0 and == 3, and the new one */
    for (uint32_t i = 0; i < 500; i++) {
        key_of(k, i);
        int rc = tg_idem_mem_claim(m, k, scope_a, &no_quota, "Q", 1, 60000, &old, &old_len, &retry);
        ck_assert_int_eq(rc, i % 4 == 0 || i % 4 == 3 ? 1 : 0);
        if (rc == 1)
            free(old);
    }
    tg_idem_mem_release(m);
}
END_TEST

static tg_idem_mem_t *shared;
static int wins;
static pthread_mutex_t wins_lock = PTHREAD_MUTEX_INITIALIZER;

static void *claimer(void *arg)
{
    (void)arg;
    uint8_t k[TG_IDEM_HASH] = {42};
    for (int i = 0; i < 1000; i++) {
        char *old = NULL;
        size_t len;
        k[5] = (uint8_t)(i & 0xff);
        k[6] = (uint8_t)(i >> 8);
        uint64_t retry;
        int rc =
            tg_idem_mem_claim(shared, k, scope_a, &no_quota, "P", 1, 60000, &old, &len, &retry);
        free(old);
        if (rc == 0) {
            pthread_mutex_lock(&wins_lock);
            wins++;
            pthread_mutex_unlock(&wins_lock);
        }
    }
    return NULL;
}

START_TEST(memory_one_winner_per_key_across_threads)
{
    shared = tg_idem_mem_acquire(64 << 20);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, claimer, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(wins, 1000);
    tg_idem_mem_release(shared);
}
END_TEST

static Suite *idempotency_suite(void)
{
    Suite *s = suite_create("idempotency");
    TCase *tc = tcase_create("idempotency");
    tcase_add_test(tc, key_is_an_sf_string);
    tcase_add_test(tc, records_parse);
    tcase_add_test(tc, memory_claim_swap_expire);
    tcase_add_test(tc, memory_one_winner_per_key_across_threads);
    tcase_add_test(tc, memory_byte_bound_refuses_without_eviction);
    tcase_add_test(tc, memory_scope_quota_of_keys);
    tcase_add_test(tc, memory_swap_over_bytes_is_refused);
    tcase_add_test(tc, memory_deadlines_in_any_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(idempotency_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
