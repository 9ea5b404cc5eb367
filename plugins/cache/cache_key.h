/*
 * Cache keys: the primary key from the configured parts (method, host,
 * path, query with its parameters sorted, header:<Name>), and the secondary
 * key from a response's Vary (RFC 9111 section 4.1).
 */
#ifndef TG_CACHE_KEY_H
#define TG_CACHE_KEY_H

#include <stddef.h>

#include "tollgate/request.h"

typedef enum { KEY_METHOD, KEY_HOST, KEY_PATH, KEY_QUERY, KEY_HEADER } tg_cache_part_kind_t;

typedef struct {
    tg_cache_part_kind_t kind;
    char *header; /* KEY_HEADER: the name */
} tg_cache_part_t;

/* Parses one configured part ("method", "header:Accept-Language"). 0, or -1
 * when it is none of them. */
int tg_cache_part_parse(const char *s, tg_cache_part_t *out);

/* The primary key of r in its arena: the route's name, then each part,
 * separated by 0x1f. HEAD reads as GET (a HEAD is answered from the GET's
 * entry). NULL when memory ran out. */
char *tg_cache_key(tg_request_t *r, const tg_cache_part_t *parts, size_t nparts, size_t *len);

/* The request's values of the names in vary (a response's Vary, names
 * lower-cased, ", "-joined), each trimmed, "\n"-terminated; in the arena. */
char *tg_cache_vary_key(tg_request_t *r, const char *vary);

#endif
