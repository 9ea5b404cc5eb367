/*
 * The `local` backend: GCRA buckets in process memory, shared by the workers
 * of this gateway instance (not by other instances: that is what Redis is for).
 *
 * 64 shards, each a chained hash table with its own mutex and an LRU list, so
 * two workers contend only when their keys land in the same shard. Entries
 * are bounded (max_entries in total): a new key evicts its shard's least
 * recently used entry, and entries whose buckets are full again (nothing left
 * to remember) are dropped from the LRU tail as requests pass. The hash is
 * seeded per table so clients cannot aim their keys at one chain.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "rate_limit.h"

#define NSHARDS 64
#define EPS_US 1e-3 /* float slack at the exact boundary of a bucket */

typedef struct entry_s {
    struct entry_s *hnext;       /* hash chain */
    struct entry_s *prev, *next; /* LRU list, most recent first */
    uint64_t hash;
    double full_us; /* every bucket is full again from then on */
    double tats[TG_RL_MAX_LIMITS];
    size_t len;
    char key[];
} entry_t;

typedef struct {
    pthread_mutex_t lock;
    entry_t **table;
    size_t mask;
    entry_t *head, *tail;
    size_t count, cap;
    char pad[64]; /* keeps two shards' locks off one cache line */
} shard_t;

struct tg_rl_local_s {
    uint64_t seed;
    shard_t shards[NSHARDS];
};

/* ---- GCRA (see rate_limit.h) ------------------------------------------- */

bool tg_rl_gcra(double *tats, const tg_rl_limit_t *limits, size_t nlimits, uint64_t cost,
                double now_us, tg_rl_result_t *out)
{
    double wait = 0;
    for (size_t i = 0; i < nlimits; i++) {
        const tg_rl_limit_t *l = &limits[i];
        double tat = tats[i] > now_us ? tats[i] : now_us;
        double allow_at = tat + (double)cost * l->t_us - (double)l->burst * l->t_us;
        if (allow_at - now_us > wait)
            wait = allow_at - now_us;
    }
    out->allowed = wait <= EPS_US;
    out->retry_us = out->allowed ? 0 : (uint64_t)ceil(wait);
    for (size_t i = 0; i < nlimits; i++) {
        const tg_rl_limit_t *l = &limits[i];
        double tat = tats[i] > now_us ? tats[i] : now_us;
        if (out->allowed)
            tat += (double)cost * l->t_us;
        tats[i] = tat;
        double rem = floor((double)l->burst - (tat - now_us) / l->t_us + 1e-9);
        out->remaining[i] = rem < 0 ? 0 : (uint64_t)rem;
        out->reset_us[i] = (uint64_t)ceil(tat - now_us);
    }
    return out->allowed;
}

/* ---- the table ----------------------------------------------------------- */

static uint64_t hash_key(uint64_t seed, const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    /* FNV's high bits barely change between short similar keys ("k1", "k2"):
     * a murmur3 finalizer spreads them, since the shard is taken from them. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

tg_rl_local_t *tg_rl_local_new(size_t max_entries)
{
    tg_rl_local_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    if (getrandom(&l->seed, sizeof(l->seed), GRND_NONBLOCK) != sizeof(l->seed))
        l->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    size_t cap = max_entries / NSHARDS ? max_entries / NSHARDS : 1;
    size_t nb = 16;
    while (nb < cap)
        nb *= 2;
    for (size_t i = 0; i < NSHARDS; i++) {
        shard_t *s = &l->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->cap = cap;
        s->mask = nb - 1;
        s->table = calloc(nb, sizeof(*s->table));
        if (s->table == NULL) {
            tg_rl_local_free(l);
            return NULL;
        }
    }
    return l;
}

void tg_rl_local_free(tg_rl_local_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < NSHARDS; i++) {
        shard_t *s = &l->shards[i];
        for (entry_t *e = s->head, *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        free(s->table);
        pthread_mutex_destroy(&s->lock);
    }
    free(l);
}

static void lru_unlink(shard_t *s, entry_t *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
}

static void lru_push(shard_t *s, entry_t *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head != NULL)
        s->head->prev = e;
    else
        s->tail = e;
    s->head = e;
}

static void remove_entry(shard_t *s, entry_t *e)
{
    entry_t **pp = &s->table[e->hash & s->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(s, e);
    s->count--;
    free(e);
}

static entry_t *find(shard_t *s, uint64_t h, const char *key, size_t len)
{
    for (entry_t *e = s->table[h & s->mask]; e != NULL; e = e->hnext)
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static entry_t *insert(shard_t *s, uint64_t h, const char *key, size_t len)
{
    if (s->count >= s->cap)
        remove_entry(s, s->tail); /* bounded memory beats perfect memory */
    entry_t *e = malloc(sizeof(*e) + len);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->len = len;
    memcpy(e->key, key, len);
    e->hnext = s->table[h & s->mask];
    s->table[h & s->mask] = e;
    lru_push(s, e);
    s->count++;
    return e;
}

static double full_at(const double *tats, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = tats[i] > m ? tats[i] : m;
    return m;
}

void tg_rl_local_decide(tg_rl_local_t *l, const char *key, size_t len, const tg_rl_limit_t *limits,
                        size_t nlimits, uint64_t cost, uint64_t now_us, tg_rl_result_t *out)
{
    uint64_t h = hash_key(l->seed, key, len);
    shard_t *s = &l->shards[h >> 58];
    double now = (double)now_us;
    pthread_mutex_lock(&s->lock);
    /* Idle eviction: a full bucket is the same as no entry. */
    for (int i = 0; i < 2 && s->tail != NULL && s->tail->full_us <= now; i++)
        remove_entry(s, s->tail);
    entry_t *e = find(s, h, key, len);
    if (e != NULL) {
        tg_rl_gcra(e->tats, limits, nlimits, cost, now, out);
        lru_unlink(s, e);
        lru_push(s, e);
    } else {
        double tats[TG_RL_MAX_LIMITS] = {0};
        /* A refused new key changed nothing: no entry for it. */
        if (tg_rl_gcra(tats, limits, nlimits, cost, now, out) &&
            (e = insert(s, h, key, len)) != NULL)
            memcpy(e->tats, tats, sizeof(tats));
    }
    if (e != NULL)
        e->full_us = full_at(e->tats, nlimits);
    pthread_mutex_unlock(&s->lock);
}

size_t tg_rl_local_count(tg_rl_local_t *l)
{
    size_t n = 0;
    for (size_t i = 0; i < NSHARDS; i++) {
        pthread_mutex_lock(&l->shards[i].lock);
        n += l->shards[i].count;
        pthread_mutex_unlock(&l->shards[i].lock);
    }
    return n;
}
