/*
 * The authenticated client as plugins publish it (include/tollgate/request.h,
 * "the authenticated client"): a subject, a consumer and named claims, all text, owned by
 * the core and stored in the request's arena. An authentication plugin
 * writes; other plugins, aggregation templates and loggers read.
 */
#ifndef TG_CLAIMS_H
#define TG_CLAIMS_H

#include <stddef.h>

#include "arena.h"

typedef struct {
    const char *name;  /* NUL-terminated copy */
    const char *value; /* len bytes, then a NUL */
    size_t len;
} tg_claim_t;

typedef struct {
    tg_claim_t *items; /* in the request's arena; grows by doubling */
    size_t n, cap;
    const char *subject; /* NULL until published */
    size_t subject_len;
    const char *consumer; /* NULL until published (tg_request_set_consumer) */
    size_t consumer_len;
} tg_claims_t;

/* Publishes (replaces) claim name. Returns 0, or -1 when name is empty or
 * TG_REQUEST_CLAIMS_MAX claims are already published. */
int tg_claims_set(tg_claims_t *c, tg_arena_t *arena, const char *name, const char *value,
                  size_t len);
/* The value of claim name, NULL (and *len 0) when not published. */
const char *tg_claims_get(const tg_claims_t *c, const char *name, size_t *len);
/* Publishes (replaces) the subject. Returns 0, or -1 when len is 0. */
int tg_claims_set_subject(tg_claims_t *c, tg_arena_t *arena, const char *value, size_t len);
/* Publishes (replaces) the consumer. Returns 0, or -1 when len is 0. */
int tg_claims_set_consumer(tg_claims_t *c, tg_arena_t *arena, const char *value, size_t len);

#endif
