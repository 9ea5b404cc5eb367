/*
 * jwt plugin: per-worker cache of verified tokens.
 *
 * RS256 / ES256 verification costs far more than proxying a request, and
 * clients send the same token many times. Entries are keyed by the SHA-256 of
 * the token (the token itself is not kept), hold the decoded claims, and are
 * evicted by the clock algorithm once the cache is full. An entry is never
 * served at or past exp + leeway (it is dropped then) nor before nbf - leeway.
 * One worker thread only: no locks.
 */
#ifndef TG_JWT_CACHE_H
#define TG_JWT_CACHE_H

#include <jansson.h>
#include <stddef.h>

#define TG_JWT_CACHE_KEY 32 /* SHA-256 */

typedef struct tg_jwt_cache_s tg_jwt_cache_t;

/* capacity >= 1 entries; NULL when out of memory. */
tg_jwt_cache_t *tg_jwt_cache_new(size_t capacity, double leeway);
void tg_jwt_cache_free(tg_jwt_cache_t *c);

/* key: SHA-256 of the token. Borrowed claims (valid until the next call on
 * this cache: incref to keep them), or NULL on a miss. */
json_t *tg_jwt_cache_get(tg_jwt_cache_t *c, const unsigned char key[TG_JWT_CACHE_KEY], double now);
/* Remembers claims (the cache takes its own reference), evicting if full. */
void tg_jwt_cache_put(tg_jwt_cache_t *c, const unsigned char key[TG_JWT_CACHE_KEY], json_t *claims);
size_t tg_jwt_cache_count(const tg_jwt_cache_t *c);
/* Forgets everything (the key set changed: a key may have been withdrawn). */
void tg_jwt_cache_clear(tg_jwt_cache_t *c);

#endif
