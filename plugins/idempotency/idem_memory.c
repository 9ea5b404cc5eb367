/*
 * The idempotency plugin's memory store: one per process, shared by every
 * worker and every instance of the plugin (a reload keeps its records: the
 * new config's instances take a reference before the old ones drop theirs).
 *
 * A hash table under one mutex: a claim is a lookup and an insert, a commit a
 * lookup and a swap, far from the hot path of requests without a key. Records
 * expire at their deadline (checked on access). At MAX_RECORDS live records
 * the table is swept (at most once a second: a sweep walks every bucket under
 * the lock), and a claim that still finds it full is refused (the request gets
 * a 503) rather than evicting a live record, which could let a retry run
 * twice. So a client minting keys can fill it for `ttl`: use redis (with its
 * own maxmemory) where clients are not trusted that far.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "idempotency.h"
#include "tollgate/clock.h"

#define MAX_RECORDS 100000
#define NBUCKETS 65536

typedef struct rec_s {
    struct rec_s *next;
    uint8_t key[TG_IDEM_HASH];
    uint64_t expires_ms;
    size_t len;
    char *value;
} rec_t;

struct tg_idem_mem_s {
    pthread_mutex_t lock;
    unsigned refs;
    size_t count;
    uint64_t swept_ms; /* last full sweep: at most one a second while full */
    rec_t *buckets[NBUCKETS];
};

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_idem_mem_t *global;

tg_idem_mem_t *tg_idem_mem_acquire(void)
{
    pthread_mutex_lock(&global_lock);
    if (global == NULL && (global = calloc(1, sizeof(*global))) != NULL)
        pthread_mutex_init(&global->lock, NULL);
    if (global != NULL)
        global->refs++;
    tg_idem_mem_t *m = global;
    pthread_mutex_unlock(&global_lock);
    return m;
}

static void free_rec(rec_t *e)
{
    free(e->value);
    free(e);
}

void tg_idem_mem_release(tg_idem_mem_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&global_lock);
    if (--m->refs == 0) {
        for (size_t b = 0; b < NBUCKETS; b++)
            for (rec_t *e = m->buckets[b], *next; e != NULL; e = next) {
                next = e->next;
                free_rec(e);
            }
        pthread_mutex_destroy(&m->lock);
        free(m);
        global = NULL;
    }
    pthread_mutex_unlock(&global_lock);
}

static size_t bucket_of(const uint8_t key[TG_IDEM_HASH])
{
    return ((size_t)key[0] << 8 | key[1]) % NBUCKETS; /* the key is a SHA-256 */
}

/* The live record of key (an expired one is removed on the way). */
static rec_t **find(tg_idem_mem_t *m, const uint8_t key[TG_IDEM_HASH], uint64_t now)
{
    rec_t **pp = &m->buckets[bucket_of(key)];
    while (*pp != NULL) {
        rec_t *e = *pp;
        if (e->expires_ms <= now) {
            *pp = e->next;
            free_rec(e);
            m->count--;
            continue;
        }
        if (memcmp(e->key, key, TG_IDEM_HASH) == 0)
            return pp;
        pp = &e->next;
    }
    return pp;
}

static void sweep(tg_idem_mem_t *m, uint64_t now)
{
    for (size_t b = 0; b < NBUCKETS; b++)
        for (rec_t **pp = &m->buckets[b]; *pp != NULL;) {
            rec_t *e = *pp;
            if (e->expires_ms > now) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            free_rec(e);
            m->count--;
        }
}

static char *copy(const char *v, size_t len)
{
    char *c = malloc(len ? len : 1);
    if (c != NULL && len > 0)
        memcpy(c, v, len);
    return c;
}

int tg_idem_mem_claim(tg_idem_mem_t *m, const uint8_t key[TG_IDEM_HASH], const char *value,
                      size_t len, uint64_t ttl_ms, char **old, size_t *old_len)
{
    uint64_t now = tg_now_ms();
    int rc = -1;
    pthread_mutex_lock(&m->lock);
    rec_t **pp = find(m, key, now);
    if (*pp != NULL) {
        *old_len = (*pp)->len;
        *old = copy((*pp)->value, (*pp)->len);
        rc = *old != NULL ? 1 : -1;
        goto out;
    }
    if (m->count >= MAX_RECORDS && now - m->swept_ms >= 1000) {
        m->swept_ms = now;
        sweep(m, now);
        pp = find(m, key, now);
    }
    if (m->count >= MAX_RECORDS) {
        goto out;
    }
    rec_t *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->value = copy(value, len)) == NULL) {
        free(e);
        goto out;
    }
    memcpy(e->key, key, TG_IDEM_HASH);
    e->len = len;
    e->expires_ms = now + ttl_ms;
    *pp = e;
    m->count++;
    rc = 0;
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int tg_idem_mem_swap(tg_idem_mem_t *m, const uint8_t key[TG_IDEM_HASH], const char *expect,
                     size_t expect_len, const char *value, size_t len, uint64_t ttl_ms)
{
    uint64_t now = tg_now_ms();
    char *c = value != NULL ? copy(value, len) : NULL;
    if (value != NULL && c == NULL)
        return -1;
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    rec_t **pp = find(m, key, now);
    rec_t *e = *pp;
    if (e != NULL && e->len == expect_len && memcmp(e->value, expect, expect_len) == 0) {
        if (c == NULL) {
            *pp = e->next;
            free_rec(e);
            m->count--;
        } else {
            free(e->value);
            e->value = c;
            e->len = len;
            e->expires_ms = now + ttl_ms;
            c = NULL;
        }
        rc = 1;
    }
    pthread_mutex_unlock(&m->lock);
    free(c);
    return rc;
}
