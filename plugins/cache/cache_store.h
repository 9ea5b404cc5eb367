/*
 * The cache's memory store: one per process, shared by every worker thread
 * and every cache instance (routes, config generations), bounded by bytes.
 *
 * Entries live in 16 shards picked by the key's hash, each with its own mutex,
 * hash chain and LRU list: a hit locks one shard for a lookup and an LRU
 * move, so workers contend only when their keys share a shard. An entry is
 * immutable once stored and refcounted: a reader keeps its reference while it
 * answers, while a purge or an eviction unlinks it at once.
 *
 * Pending marks (collapsed forwarding): one request per key claims the key
 * while it fetches; the others see the claim and wait for an entry.
 */
#ifndef TG_CACHE_STORE_H
#define TG_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache_entry.h"

#define TG_CACHE_SHARDS 16

typedef struct tg_cache_store_s tg_cache_store_t;

tg_cache_store_t *tg_cache_store_new(uint64_t max_size);
void tg_cache_store_free(tg_cache_store_t *s);
/* Changes the bound (a reload); entries over it go at the next insert. */
void tg_cache_store_set_limit(tg_cache_store_t *s, uint64_t max_size);
/* Bytes held (entries' tg_cache_entry_t.size summed). */
uint64_t tg_cache_store_bytes(tg_cache_store_t *s);

/* The most recently used entry under key whose secondary key fits the
 * request (match(e, arg) true), with a reference (tg_cache_entry_unref), or
 * NULL. */
tg_cache_entry_t *tg_cache_store_get(tg_cache_store_t *s, const char *key, size_t klen,
                                     bool (*match)(const tg_cache_entry_t *e, void *arg),
                                     void *arg);
/* Stores e (takes the caller's reference), replacing the entry with the same
 * key and secondary key; evicts least recently used entries of the shard
 * while it holds more than its part of the bound. An entry larger than a
 * shard's part is not stored. */
void tg_cache_store_put(tg_cache_store_t *s, tg_cache_entry_t *e);
/* Removes every entry of route whose path equals path (prefix false) or
 * starts with it (prefix true). Returns how many. */
size_t tg_cache_store_purge(tg_cache_store_t *s, const char *route, const char *path, bool prefix);

/* Claims key for one fetch: returns a claim id (> 0) when nobody held it (or
 * the holder is older than max_ms: taken over), else 0 with *holder set to
 * the current claim's id. */
uint64_t tg_cache_pending_claim(tg_cache_store_t *s, const char *key, size_t klen, uint64_t now_ms,
                                uint64_t max_ms, uint64_t *holder);
/* Whether claim id on key is still held. */
bool tg_cache_pending_held(tg_cache_store_t *s, const char *key, size_t klen, uint64_t id);
/* Releases claim id (a no-op when it was taken over). */
void tg_cache_pending_release(tg_cache_store_t *s, const char *key, size_t klen, uint64_t id);

#endif
