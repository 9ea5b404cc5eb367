/*
 * What the cache keeps of a response (RFC 9111 section 3): whether it may be
 * stored, its copy as an entry with the freshness facts of section 4.2, and
 * the refresh of an entry by a 304 (section 4.3.4). From response_head.
 */
#ifndef TG_CACHE_CAPTURE_H
#define TG_CACHE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache_entry.h"
#include "cache_policy.h"
#include "tollgate/request.h"

/* The config's values for responses that do not say (milliseconds). */
typedef struct {
    uint64_t default_ttl_ms; /* freshness without freshness information; 0: not stored */
    uint64_t swr_ms;         /* stale-while-revalidate */
    uint64_t sie_ms;         /* stale-if-error */
} tg_cache_defaults_t;

/* Every Cache-Control field of the response head into cc. */
void tg_cache_read_cc(tg_request_t *r, tg_cc_t *cc);
/* Whether the response to this GET may be stored by a shared cache; auth:
 * the request carried Authorization. */
bool tg_cache_storable(const tg_cache_defaults_t *d, tg_request_t *r, const tg_cc_t *cc, bool auth);
/* The response head as a new entry under key (the body comes later), NULL
 * when memory ran out. */
tg_cache_entry_t *tg_cache_capture(const tg_cache_defaults_t *d, tg_request_t *r, const tg_cc_t *cc,
                                   const char *key, size_t klen);
/* old with the fields and freshness of the 304 in the response head, as a
 * new entry (accounted); NULL when memory ran out. */
tg_cache_entry_t *tg_cache_refresh(const tg_cache_defaults_t *d, tg_request_t *r, const tg_cc_t *cc,
                                   const tg_cache_entry_t *old);

#endif
