/*
 * The cache's reading of HTTP caching fields (RFC 9111): Cache-Control
 * directives, HTTP dates, and the freshness arithmetic of section 4.2.
 * Pure functions: no request, no store.
 */
#ifndef TG_CACHE_POLICY_H
#define TG_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Cache-Control directives (RFC 9111 section 5.2, RFC 5861); seconds, -1
 * when absent. */
typedef struct {
    int64_t max_age, s_maxage, swr, sie;
    bool no_store, no_cache, private_, public_, must_revalidate, proxy_revalidate;
    bool any; /* some directive was present */
} tg_cc_t;

/* Sets every field to "absent". */
void tg_cc_init(tg_cc_t *cc);
/* Adds the directives of one Cache-Control field value to cc (a message may
 * carry several fields). Unknown directives are ignored (section 5.2.3); a
 * qualified no-cache="f" or private="f" counts as the unqualified form (we
 * never store a response without some of its fields). */
void tg_cc_parse(const char *v, size_t len, tg_cc_t *cc);

/* An HTTP-date (IMF-fixdate, RFC 9110 section 5.6.7; also the obsolete RFC
 * 850 and asctime forms) as seconds since the epoch; -1 when invalid. */
int64_t tg_http_date(const char *v, size_t len);

/* A delta-seconds value (Age), saturated at 2^31 (RFC 9111 section 1.2.2);
 * -1 when invalid. */
int64_t tg_delta_seconds(const char *v, size_t len);

/* Whether the entity-tag et is in the If-None-Match list v (weak comparison,
 * RFC 9110 section 13.1.2; "*" matches any). */
bool tg_etag_match(const char *v, size_t len, const char *et);

#endif
