/*
 * A stored response: status, headers, body and the facts freshness is
 * computed from (RFC 9111 section 4.2). Immutable once stored; refcounted
 * (the store holds one reference, every reader one more).
 */
#ifndef TG_CACHE_ENTRY_H
#define TG_CACHE_ENTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name; /* NUL-terminated */
    char *value;
    size_t value_len;
} tg_cache_hdr_t;

typedef struct tg_cache_entry_s tg_cache_entry_t;
struct tg_cache_entry_s {
    /* the store's (under the shard's lock) */
    tg_cache_entry_t *hnext, *prev, *next;
    uint64_t hash;
    atomic_uint refs;

    char *key; /* primary key (route and the configured parts) */
    size_t klen;
    char *route;             /* for purges: route name, "" for the global chain */
    char *path;              /* the request path */
    char *vary;              /* the response's Vary (lower-case names, ", "-joined), NULL without */
    char *vary_key;          /* the storing request's values of those names */
    int status;              /* 200, 203, 204, 300, 301, 308, 404, 405, 410, 414 or 501 */
    char *content_type;      /* NULL without */
    tg_cache_hdr_t *headers; /* the others the client gets (see cache.c) */
    size_t nheaders;
    char *body;
    size_t body_len;
    const char *etag;          /* a header value above, NULL without */
    const char *last_modified; /* likewise */

    int64_t response_time; /* wall seconds when the response arrived */
    int64_t initial_age;   /* corrected_initial_age (section 4.2.3) */
    int64_t lifetime;      /* freshness lifetime, seconds (section 4.2.1) */
    int64_t swr, sie;      /* stale-while-revalidate / stale-if-error windows, seconds */
    bool must_revalidate;  /* never served stale (must-/proxy-revalidate, s-maxage) */
    bool no_cache;         /* revalidated before every use */
    bool shared_auth;      /* may answer requests with Authorization */
    size_t size;           /* bytes accounted against max_size */
};

/* A zeroed entry with one reference. */
tg_cache_entry_t *tg_cache_entry_new(void);
void tg_cache_entry_ref(tg_cache_entry_t *e);
/* Drops a reference; the last one frees the entry. NULL is allowed. */
void tg_cache_entry_unref(tg_cache_entry_t *e);
/* The wall clock in seconds (ages and HTTP dates). */
int64_t tg_cache_now(void);
/* Age now (section 4.2.3). */
int64_t tg_cache_entry_age(const tg_cache_entry_t *e, int64_t now);
/* Adds header name: value (copied). 0, or -1 out of memory. */
int tg_cache_entry_add_header(tg_cache_entry_t *e, const char *name, size_t nlen, const char *value,
                              size_t vlen);
/* The value of header name, NULL without. */
const char *tg_cache_entry_header(const tg_cache_entry_t *e, const char *name);
/* Sets e->size from what it holds. */
void tg_cache_entry_account(tg_cache_entry_t *e);

#endif
