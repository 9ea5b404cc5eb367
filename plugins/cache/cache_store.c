/*
 * The memory store: 16 shards, each a mutex, a chained hash table that
 * doubles as it fills, an LRU list and its part of the byte bound.
 */
#include "cache_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A claim: one fetch in flight for key (collapsed forwarding). */
typedef struct pending_s {
    struct pending_s *next;
    uint64_t hash, id, since_ms;
    size_t klen;
    char key[];
} pending_t;

typedef struct {
    pthread_mutex_t lock;
    tg_cache_entry_t **table;
    size_t nbuckets, count;
    tg_cache_entry_t *head, *tail; /* LRU: head most recently used */
    uint64_t bytes;
    pending_t *pending;
} shard_t;

struct tg_cache_store_s {
    shard_t shards[TG_CACHE_SHARDS];
    _Atomic uint64_t limit; /* per shard */
    _Atomic uint64_t next_id;
};

static uint64_t hash_key(const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static shard_t *shard_of(tg_cache_store_t *s, uint64_t h)
{
    return &s->shards[(h >> 56) % TG_CACHE_SHARDS];
}

tg_cache_store_t *tg_cache_store_new(uint64_t max_size)
{
    tg_cache_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < TG_CACHE_SHARDS; i++) {
        shard_t *sh = &s->shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        sh->nbuckets = 64;
        if ((sh->table = calloc(sh->nbuckets, sizeof(*sh->table))) == NULL) {
            tg_cache_store_free(s);
            return NULL;
        }
    }
    tg_cache_store_set_limit(s, max_size);
    atomic_init(&s->next_id, 1);
    return s;
}

void tg_cache_store_free(tg_cache_store_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < TG_CACHE_SHARDS; i++) {
        shard_t *sh = &s->shards[i];
        for (tg_cache_entry_t *e = sh->head, *n; e != NULL; e = n) {
            n = e->next;
            tg_cache_entry_unref(e);
        }
        for (pending_t *p = sh->pending, *n; p != NULL; p = n) {
            n = p->next;
            free(p);
        }
        free(sh->table);
        pthread_mutex_destroy(&sh->lock);
    }
    free(s);
}

void tg_cache_store_set_limit(tg_cache_store_t *s, uint64_t max_size)
{
    atomic_store(&s->limit, max_size / TG_CACHE_SHARDS);
}

uint64_t tg_cache_store_bytes(tg_cache_store_t *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < TG_CACHE_SHARDS; i++) {
        pthread_mutex_lock(&s->shards[i].lock);
        n += s->shards[i].bytes;
        pthread_mutex_unlock(&s->shards[i].lock);
    }
    return n;
}

/* ---- under the shard's lock ---- */

static void lru_unlink(shard_t *sh, tg_cache_entry_t *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        sh->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        sh->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(shard_t *sh, tg_cache_entry_t *e)
{
    e->prev = NULL;
    e->next = sh->head;
    if (sh->head != NULL)
        sh->head->prev = e;
    sh->head = e;
    if (sh->tail == NULL)
        sh->tail = e;
}

/* Unlinks e from table and LRU and drops the store's reference. */
static void remove_entry(shard_t *sh, tg_cache_entry_t *e)
{
    tg_cache_entry_t **pp = &sh->table[e->hash & (sh->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(sh, e);
    sh->bytes -= e->size;
    sh->count--;
    tg_cache_entry_unref(e);
}

static void grow(shard_t *sh)
{
    size_t n = sh->nbuckets * 2;
    tg_cache_entry_t **t = calloc(n, sizeof(*t));
    if (t == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < sh->nbuckets; i++)
        for (tg_cache_entry_t *e = sh->table[i], *next; e != NULL; e = next) {
            next = e->hnext;
            e->hnext = t[e->hash & (n - 1)];
            t[e->hash & (n - 1)] = e;
        }
    free(sh->table);
    sh->table = t;
    sh->nbuckets = n;
}

static bool same_key(const tg_cache_entry_t *e, uint64_t h, const char *key, size_t klen)
{
    return e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0;
}

static bool same_variant(const tg_cache_entry_t *a, const tg_cache_entry_t *b)
{
    if ((a->vary_key == NULL) != (b->vary_key == NULL))
        return false;
    return a->vary_key == NULL ||
           (strcmp(a->vary_key, b->vary_key) == 0 && strcmp(a->vary, b->vary) == 0);
}

/* ---- entries ---- */

tg_cache_entry_t *tg_cache_store_get(tg_cache_store_t *s, const char *key, size_t klen,
                                     bool (*match)(const tg_cache_entry_t *e, void *arg), void *arg)
{
    uint64_t h = hash_key(key, klen);
    shard_t *sh = shard_of(s, h);
    tg_cache_entry_t *found = NULL;
    pthread_mutex_lock(&sh->lock);
    for (tg_cache_entry_t *e = sh->table[h & (sh->nbuckets - 1)]; e != NULL; e = e->hnext) {
        if (!same_key(e, h, key, klen) || !match(e, arg))
            continue;
        lru_unlink(sh, e);
        lru_push(sh, e);
        tg_cache_entry_ref(e);
        found = e;
        break;
    }
    pthread_mutex_unlock(&sh->lock);
    return found;
}

void tg_cache_store_put(tg_cache_store_t *s, tg_cache_entry_t *e)
{
    uint64_t limit = atomic_load(&s->limit);
    if (e->size > limit) {
        tg_cache_entry_unref(e);
        return;
    }
    e->hash = hash_key(e->key, e->klen);
    shard_t *sh = shard_of(s, e->hash);
    pthread_mutex_lock(&sh->lock);
    tg_cache_entry_t **bucket = &sh->table[e->hash & (sh->nbuckets - 1)];
    for (tg_cache_entry_t *o = *bucket; o != NULL; o = o->hnext)
        if (same_key(o, e->hash, e->key, e->klen) && same_variant(o, e)) {
            remove_entry(sh, o);
            break;
        }
    while (sh->bytes + e->size > limit && sh->tail != NULL)
        remove_entry(sh, sh->tail);
    if (sh->count >= sh->nbuckets)
        grow(sh);
    bucket = &sh->table[e->hash & (sh->nbuckets - 1)];
    e->hnext = *bucket;
    *bucket = e;
    lru_push(sh, e);
    sh->bytes += e->size;
    sh->count++;
    pthread_mutex_unlock(&sh->lock);
}

static bool path_matches(const tg_cache_entry_t *e, const char *route, const char *path,
                         bool prefix)
{
    if (strcmp(e->route, route) != 0)
        return false;
    return prefix ? strncmp(e->path, path, strlen(path)) == 0 : strcmp(e->path, path) == 0;
}

size_t tg_cache_store_purge(tg_cache_store_t *s, const char *route, const char *path, bool prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < TG_CACHE_SHARDS; i++) {
        shard_t *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        for (tg_cache_entry_t *e = sh->head, *next; e != NULL; e = next) {
            next = e->next;
            if (path_matches(e, route, path, prefix)) {
                remove_entry(sh, e);
                n++;
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return n;
}

/* ---- claims ---- */

static pending_t **find_pending(shard_t *sh, uint64_t h, const char *key, size_t klen)
{
    pending_t **pp = &sh->pending;
    while (*pp != NULL &&
           !((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0))
        pp = &(*pp)->next;
    return pp;
}

uint64_t tg_cache_pending_claim(tg_cache_store_t *s, const char *key, size_t klen, uint64_t now_ms,
                                uint64_t max_ms, uint64_t *holder)
{
    uint64_t h = hash_key(key, klen), id = 0;
    shard_t *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->lock);
    pending_t **pp = find_pending(sh, h, key, klen);
    if (*pp != NULL && now_ms - (*pp)->since_ms < max_ms) {
        *holder = (*pp)->id;
    } else {
        pending_t *p = *pp;
        if (p == NULL && (p = malloc(sizeof(*p) + klen)) != NULL) {
            p->next = sh->pending;
            sh->pending = p;
            p->hash = h;
            p->klen = klen;
            memcpy(p->key, key, klen);
        }
        if (p != NULL) {
            p->id = id = atomic_fetch_add(&s->next_id, 1);
            p->since_ms = now_ms;
        }
        /* Out of memory: no claim, the request fetches uncollapsed. */
        *holder = 0;
        if (id == 0)
            id = UINT64_MAX;
    }
    pthread_mutex_unlock(&sh->lock);
    return id;
}

bool tg_cache_pending_held(tg_cache_store_t *s, const char *key, size_t klen, uint64_t id)
{
    uint64_t h = hash_key(key, klen);
    shard_t *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->lock);
    pending_t *p = *find_pending(sh, h, key, klen);
    bool held = p != NULL && p->id == id;
    pthread_mutex_unlock(&sh->lock);
    return held;
}

void tg_cache_pending_release(tg_cache_store_t *s, const char *key, size_t klen, uint64_t id)
{
    uint64_t h = hash_key(key, klen);
    shard_t *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->lock);
    pending_t **pp = find_pending(sh, h, key, klen);
    if (*pp != NULL && (*pp)->id == id) {
        pending_t *p = *pp;
        *pp = p->next;
        free(p);
    }
    pthread_mutex_unlock(&sh->lock);
}
