/*
 * The idempotency plugin's memory store: one per process, shared by every
 * worker and every instance of the plugin (a reload keeps its records: the
 * new config's instances take a reference before the old ones drop theirs).
 *
 * A hash table under one mutex: a claim is a lookup and an insert, a commit a
 * lookup and a swap, far from the hot path of requests without a key.
 *
 * Bounds (docs/idempotency.md, "Memory store"): every record is charged its
 * key, value and overhead (REC_OVERHEAD), in progress or completed, against
 * the store's max_size and against its scope (the client: records with the
 * same scope hash) for the instance's quota of records and bytes. A min-heap
 * by deadline removes expired records first, before any bound is checked, so
 * the counts are those of live records. A live record is never evicted: that
 * could let a retry run twice. So a claim over a bound is refused (429 at the
 * scope's quota, 503 when the store is full), and a response that does not
 * fit is stored as "not replayable" (the caller's choice on -2 from swap).
 * Responses may grow the store to RESPONSE_SHARE of max_size only: the rest
 * is kept for claims (a few hundred bytes each), so large responses, however
 * many clients send them, never leave the store without room for new keys.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "idempotency.h"
#include "tollgate/clock.h"

#define NBUCKETS 65536
#define SCOPE_BUCKETS 4096

typedef struct scope_s scope_t;

typedef struct rec_s {
    struct rec_s *next;           /* bucket chain */
    struct rec_s *snext, **sprev; /* the scope's records */
    scope_t *scope;
    size_t heap_at; /* index in the deadline heap */
    uint8_t key[TG_IDEM_HASH];
    uint64_t expires_ms;
    size_t len;
    char *value;
} rec_t;

struct scope_s {
    scope_t *next;
    uint8_t hash[TG_IDEM_HASH];
    uint64_t count, bytes;
    uint64_t retry_ms; /* at its quota: the earliest deadline seen (a cache) */
    rec_t *recs;
};

/* What a record costs beyond its value: its struct, the value's and the
 * struct's malloc headers (16 bytes each with glibc), two heap slots (the
 * array doubles) and a bucket's share. A scope costs its struct the same way. */
#define REC_OVERHEAD (sizeof(rec_t) + 2 * 16 + 2 * sizeof(rec_t *) + 8)
#define SCOPE_OVERHEAD (sizeof(scope_t) + 16)
#define RESPONSE_SHARE(max) ((max) / 4 * 3)

struct tg_idem_mem_s {
    pthread_mutex_t lock;
    unsigned refs;
    uint64_t max_size, bytes;
    size_t count;
    rec_t **heap; /* min-heap by expires_ms */
    size_t heap_cap;
    rec_t *buckets[NBUCKETS];
    scope_t *scopes[SCOPE_BUCKETS];
};

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_idem_mem_t *global;

tg_idem_mem_t *tg_idem_mem_acquire(uint64_t max_size)
{
    pthread_mutex_lock(&global_lock);
    if (global == NULL && (global = calloc(1, sizeof(*global))) != NULL)
        pthread_mutex_init(&global->lock, NULL);
    if (global != NULL) {
        global->refs++;
        pthread_mutex_lock(&global->lock);
        global->max_size = max_size; /* the latest config's bound */
        pthread_mutex_unlock(&global->lock);
    }
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
        for (size_t i = 0; i < m->count; i++)
            free_rec(m->heap[i]);
        for (size_t b = 0; b < SCOPE_BUCKETS; b++)
            for (scope_t *s = m->scopes[b], *next; s != NULL; s = next) {
                next = s->next;
                free(s);
            }
        free(m->heap);
        pthread_mutex_destroy(&m->lock);
        free(m);
        global = NULL;
    }
    pthread_mutex_unlock(&global_lock);
}

/* ------------------------------------------------- the deadline heap ---- */

static void heap_set(tg_idem_mem_t *m, size_t i, rec_t *e)
{
    m->heap[i] = e;
    e->heap_at = i;
}

static void heap_up(tg_idem_mem_t *m, size_t i)
{
    rec_t *e = m->heap[i];
    while (i > 0 && m->heap[(i - 1) / 2]->expires_ms > e->expires_ms) {
        heap_set(m, i, m->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(m, i, e);
}

static void heap_down(tg_idem_mem_t *m, size_t i)
{
    rec_t *e = m->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->count)
            break;
        if (c + 1 < m->count && m->heap[c + 1]->expires_ms < m->heap[c]->expires_ms)
            c++;
        if (m->heap[c]->expires_ms >= e->expires_ms)
            break;
        heap_set(m, i, m->heap[c]);
        i = c;
    }
    heap_set(m, i, e);
}

/* e's deadline changed: restore the heap order. */
static void heap_fix(tg_idem_mem_t *m, rec_t *e)
{
    heap_up(m, e->heap_at);
    heap_down(m, e->heap_at);
}

/* --------------------------------------------------------- records ---- */

static size_t bucket_of(const uint8_t key[TG_IDEM_HASH])
{
    return ((size_t)key[0] << 8 | key[1]) % NBUCKETS; /* the key is a SHA-256 */
}

static scope_t **scope_slot(tg_idem_mem_t *m, const uint8_t hash[TG_IDEM_HASH])
{
    scope_t **pp = &m->scopes[((size_t)hash[0] << 8 | hash[1]) % SCOPE_BUCKETS];
    while (*pp != NULL && memcmp((*pp)->hash, hash, TG_IDEM_HASH) != 0)
        pp = &(*pp)->next;
    return pp;
}

static rec_t **rec_slot(tg_idem_mem_t *m, const uint8_t key[TG_IDEM_HASH])
{
    rec_t **pp = &m->buckets[bucket_of(key)];
    while (*pp != NULL && memcmp((*pp)->key, key, TG_IDEM_HASH) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void remove_rec(tg_idem_mem_t *m, rec_t *e)
{
    rec_t **pp = rec_slot(m, e->key);
    *pp = e->next;
    rec_t *last = m->heap[--m->count];
    if (last != e) {
        heap_set(m, e->heap_at, last);
        heap_fix(m, last);
    }
    scope_t *s = e->scope;
    *e->sprev = e->snext;
    if (e->snext != NULL)
        e->snext->sprev = e->sprev;
    s->count--;
    s->bytes -= REC_OVERHEAD + e->len;
    m->bytes -= REC_OVERHEAD + e->len;
    if (s->count == 0) {
        *scope_slot(m, s->hash) = s->next;
        free(s);
        m->bytes -= SCOPE_OVERHEAD;
    }
    free_rec(e);
}

/* Expired records go first, oldest deadline first. */
static void expire(tg_idem_mem_t *m, uint64_t now)
{
    while (m->count > 0 && m->heap[0]->expires_ms <= now)
        remove_rec(m, m->heap[0]);
}

/* When the scope's records may next drop below its quota: its earliest
 * deadline, walked once and kept until it passes (a swap may have moved it
 * later: Retry-After is a hint). */
static uint64_t scope_retry(scope_t *s, uint64_t now)
{
    if (s->retry_ms > now)
        return s->retry_ms - now;
    uint64_t min = UINT64_MAX;
    for (rec_t *e = s->recs; e != NULL; e = e->snext)
        if (e->expires_ms < min)
            min = e->expires_ms;
    s->retry_ms = min;
    return min > now ? min - now : 1;
}

static bool over_quota(const scope_t *s, const tg_idem_quota_t *q, uint64_t add)
{
    return s != NULL &&
           ((q->keys > 0 && s->count >= q->keys) || (q->bytes > 0 && s->bytes + add > q->bytes));
}

static char *copy(const char *v, size_t len)
{
    char *c = malloc(len ? len : 1);
    if (c != NULL && len > 0)
        memcpy(c, v, len);
    return c;
}

static int insert(tg_idem_mem_t *m, rec_t **pp, scope_t **sp, const uint8_t key[TG_IDEM_HASH],
                  const uint8_t scope[TG_IDEM_HASH], const char *value, size_t len,
                  uint64_t deadline)
{
    if (m->count == m->heap_cap) {
        size_t cap = m->heap_cap ? 2 * m->heap_cap : 1024;
        rec_t **h = realloc(m->heap, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        m->heap = h;
        m->heap_cap = cap;
    }
    scope_t *s = *sp;
    if (s == NULL && (s = calloc(1, sizeof(*s))) == NULL)
        return -1;
    rec_t *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->value = copy(value, len)) == NULL) {
        free(e);
        if (*sp == NULL)
            free(s);
        return -1;
    }
    if (*sp == NULL) {
        memcpy(s->hash, scope, TG_IDEM_HASH);
        *sp = s;
        m->bytes += SCOPE_OVERHEAD;
    }
    memcpy(e->key, key, TG_IDEM_HASH);
    e->len = len;
    e->expires_ms = deadline;
    e->scope = s;
    e->snext = s->recs;
    e->sprev = &s->recs;
    if (s->recs != NULL)
        s->recs->sprev = &e->snext;
    s->recs = e;
    s->count++;
    s->bytes += REC_OVERHEAD + len;
    m->bytes += REC_OVERHEAD + len;
    *pp = e;
    heap_set(m, m->count++, e);
    heap_up(m, e->heap_at);
    return 0;
}

int tg_idem_mem_claim(tg_idem_mem_t *m, const uint8_t key[TG_IDEM_HASH],
                      const uint8_t scope[TG_IDEM_HASH], const tg_idem_quota_t *q,
                      const char *value, size_t len, uint64_t ttl_ms, char **old, size_t *old_len,
                      uint64_t *retry_ms)
{
    uint64_t now = tg_now_ms(), cost = REC_OVERHEAD + len;
    int rc = TG_IDEM_MEM_FULL;
    pthread_mutex_lock(&m->lock);
    expire(m, now);
    rec_t **pp = rec_slot(m, key);
    if (*pp != NULL) {
        *old_len = (*pp)->len;
        *old = copy((*pp)->value, (*pp)->len);
        rc = *old != NULL ? 1 : TG_IDEM_MEM_FULL;
        goto out;
    }
    scope_t **sp = scope_slot(m, scope);
    if (over_quota(*sp, q, cost)) {
        *retry_ms = scope_retry(*sp, now);
        rc = TG_IDEM_MEM_QUOTA;
        goto out;
    }
    if (m->bytes + cost + (*sp == NULL ? SCOPE_OVERHEAD : 0) > m->max_size)
        goto out;
    if (insert(m, pp, sp, key, scope, value, len, now + ttl_ms) == 0)
        rc = 0;
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int tg_idem_mem_swap(tg_idem_mem_t *m, const uint8_t key[TG_IDEM_HASH], const tg_idem_quota_t *q,
                     const char *expect, size_t expect_len, const char *value, size_t len,
                     uint64_t ttl_ms)
{
    uint64_t now = tg_now_ms();
    char *c = value != NULL ? copy(value, len) : NULL;
    if (value != NULL && c == NULL)
        return -1;
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    expire(m, now);
    rec_t *e = *rec_slot(m, key);
    if (e == NULL || e->len != expect_len || memcmp(e->value, expect, expect_len) != 0)
        goto out;
    rc = 1;
    if (c == NULL) {
        remove_rec(m, e);
        goto out;
    }
    uint64_t grow = len > e->len ? len - e->len : 0;
    if (grow > 0 && (m->bytes + grow > RESPONSE_SHARE(m->max_size) ||
                     (q->bytes > 0 && e->scope->bytes + grow > q->bytes))) {
        rc = TG_IDEM_MEM_QUOTA; /* no room: the record stays the owner's */
        goto out;
    }
    m->bytes = m->bytes - e->len + len;
    e->scope->bytes = e->scope->bytes - e->len + len;
    free(e->value);
    e->value = c;
    e->len = len;
    e->expires_ms = now + ttl_ms;
    heap_fix(m, e);
    c = NULL;
out:
    pthread_mutex_unlock(&m->lock);
    free(c);
    return rc;
}

void tg_idem_mem_usage(tg_idem_mem_t *m, uint64_t *bytes, size_t *records)
{
    pthread_mutex_lock(&m->lock);
    *bytes = m->bytes;
    *records = m->count;
    pthread_mutex_unlock(&m->lock);
}
