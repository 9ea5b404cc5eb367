/*
 * The cache's Redis entries, found again for a purge: a per-route index kept
 * beside the entries (storage redis).
 *
 * "tollgate:cache-index:<route>" is a sorted set with one member per stored
 * entry, "<path>\0<the entry's Redis key>", scored by the wall second the
 * entry expires at. Each store adds its member, drops the members whose entry
 * has expired and keeps the set alive while its latest entry may be (one
 * EVAL, after the entry's SET: the index is its own key, so entries still
 * spread over a Cluster's slots). A purge runs on the admin thread over a
 * connection of its own (tollgate/admin.h): ZSCAN of the route's index for
 * the path or prefix, then DEL of every entry found and ZREM of its member;
 * the count is that of the DELs that removed a key (an entry that expired
 * meanwhile is not counted).
 */
#ifndef TG_CACHE_REDIS_INDEX_H
#define TG_CACHE_REDIS_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "cache_entry.h"
#include "tollgate/request.h"

#define TG_CACHE_REDIS_PREFIX "tollgate:cache:"
#define TG_CACHE_INDEX_PREFIX "tollgate:cache-index:"

/* Indexes e, stored under key (its full Redis name) for keep_s seconds from
 * now. Fire and forget, on the request's worker connection. */
void tg_cache_redis_index(tg_request_t *r, const tg_cache_entry_t *e, const char *key,
                          int64_t keep_s);

/* Removes route's Redis entries whose path is path (prefix false) or starts
 * with it (prefix true); on the admin thread. Returns the count, or -1 with
 * a reason in err. */
long tg_cache_redis_purge(const char *route, const char *path, bool prefix, char *err,
                          size_t errlen);

#endif
