/*
 * What the cache keeps of a response (cache_capture.h).
 */
#include "cache_capture.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache_key.h"
#include "tollgate/text.h"

static bool status_storable(int s)
{
    /* Heuristically cacheable statuses (RFC 9110 section 15.1). */
    static const int ok[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (ok[i] == s)
            return true;
    return false;
}

void tg_cache_read_cc(tg_request_t *r, tg_cc_t *cc)
{
    tg_cc_init(cc);
    const char *n, *v;
    size_t nl, vl;
    for (size_t i = 0; tg_response_header_at(r, i, &n, &nl, &v, &vl); i++)
        if (nl == 13 && strncasecmp(n, "Cache-Control", 13) == 0)
            tg_cc_parse(v, vl, cc);
}

static int64_t header_date(tg_request_t *r, const char *name)
{
    size_t len;
    const char *v = tg_response_header(r, name, &len);
    return v != NULL ? tg_http_date(v, len) : -2;
}

/* Freshness lifetime in seconds (RFC 9111 section 4.2.1), -1 without
 * freshness information. */
static int64_t lifetime_of(const tg_cache_defaults_t *c, tg_request_t *r, const tg_cc_t *cc,
                           int64_t date)
{
    if (cc->s_maxage >= 0)
        return cc->s_maxage;
    if (cc->max_age >= 0)
        return cc->max_age;
    int64_t expires = header_date(r, "Expires");
    if (expires == -1) /* invalid: already expired (section 5.3) */
        return 0;
    if (expires >= 0)
        return expires > date ? expires - date : 0;
    return c->default_ttl_ms > 0 ? (int64_t)(c->default_ttl_ms / 1000) : -1;
}

/* Fields never stored: recomputed (Age), ours (Cache-Status), framing and
 * what tg_request_add_response_header() refuses. */
static bool skip_header(const char *n, size_t nl)
{
    static const char *const skip[] = {"Age", "Cache-Status", "Content-Type", "Set-Cookie", NULL};
    for (const char *const *s = skip; *s; s++)
        if (strlen(*s) == nl && strncasecmp(*s, n, nl) == 0)
            return true;
    char name[128];
    if (nl >= sizeof(name))
        return true;
    memcpy(name, n, nl);
    name[nl] = '\0';
    return tg_response_header_check(name, NULL, 0) != 0;
}

static char *lower_dup(const char *v, size_t len)
{
    char *s = strndup(v, len);
    for (size_t i = 0; s != NULL && i < len; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
    return s;
}

/* Copies the head's fields into e. -1 out of memory. */
static int capture_headers(tg_request_t *r, tg_cache_entry_t *e)
{
    const char *n, *v;
    size_t nl, vl;
    for (size_t i = 0; tg_response_header_at(r, i, &n, &nl, &v, &vl); i++)
        if (!skip_header(n, nl) && tg_cache_entry_add_header(e, n, nl, v, vl) < 0)
            return -1;
    e->etag = tg_cache_entry_header(e, "ETag");
    e->last_modified = tg_cache_entry_header(e, "Last-Modified");
    size_t len;
    const char *ct = tg_response_header(r, "Content-Type", &len);
    if (ct != NULL && (e->content_type = strndup(ct, len)) == NULL)
        return -1;
    return 0;
}

/* The freshness facts of the response head into e (section 4.2.3). */
static void capture_times(const tg_cache_defaults_t *c, tg_request_t *r, const tg_cc_t *cc,
                          tg_cache_entry_t *e, int64_t now)
{
    int64_t date = header_date(r, "Date");
    if (date < 0)
        date = now;
    size_t len;
    const char *age = tg_response_header(r, "Age", &len);
    int64_t age_value = age != NULL ? tg_delta_seconds(age, len) : 0;
    int64_t apparent = now > date ? now - date : 0;
    e->response_time = now;
    e->initial_age = apparent > age_value ? apparent : age_value;
    int64_t lt = lifetime_of(c, r, cc, date);
    e->lifetime = lt > 0 ? lt : 0;
    e->swr = cc->swr >= 0 ? cc->swr : (int64_t)(c->swr_ms / 1000);
    e->sie = cc->sie >= 0 ? cc->sie : (int64_t)(c->sie_ms / 1000);
    /* s-maxage implies proxy-revalidate for a shared cache (section 5.2.2.10). */
    e->must_revalidate = cc->must_revalidate || cc->proxy_revalidate || cc->s_maxage >= 0;
    e->no_cache = cc->no_cache;
    e->shared_auth = cc->public_ || cc->s_maxage >= 0 || cc->must_revalidate;
}

/* RFC 9111 section 3: may this response be stored? */
bool tg_cache_storable(const tg_cache_defaults_t *c, tg_request_t *r, const tg_cc_t *cc, bool auth)
{
    size_t len;
    const char *m = tg_request_method(r, &len);
    if (len != 3 || memcmp(m, "GET", 3) != 0)
        return false;
    if (!status_storable(tg_response_status(r)) || cc->no_store || cc->private_)
        return false;
    if (tg_response_header(r, "Set-Cookie", &len) != NULL ||
        tg_response_header(r, "Content-Range", &len) != NULL)
        return false;
    const char *vary = tg_response_header(r, "Vary", &len);
    if (vary != NULL && tg_list_has(vary, len, "*", 1))
        return false;
    if (auth && !(cc->public_ || cc->s_maxage >= 0 || cc->must_revalidate))
        return false;
    /* Without freshness information (and no default_ttl) only a no-cache
     * response with a validator is worth keeping. */
    int64_t date = header_date(r, "Date");
    int64_t lt = lifetime_of(c, r, cc, date >= 0 ? date : tg_cache_now());
    bool validator = tg_response_header(r, "ETag", &len) != NULL ||
                     tg_response_header(r, "Last-Modified", &len) != NULL;
    return lt > 0 || ((cc->no_cache || lt == 0) && validator);
}

tg_cache_entry_t *tg_cache_capture(const tg_cache_defaults_t *c, tg_request_t *r, const tg_cc_t *cc,
                                   const char *key, size_t klen)
{
    tg_cache_entry_t *e = tg_cache_entry_new();
    if (e == NULL)
        return NULL;
    size_t len, plen;
    const char *route = tg_request_route(r);
    /* Purges name the path the client asked for (before strip_prefix). */
    const char *path = tg_request_client_path(r, &plen);
    const char *vary = tg_response_header(r, "Vary", &len);
    e->status = tg_response_status(r);
    e->key = strndup(key, klen);
    e->klen = klen;
    e->route = strdup(route != NULL ? route : "");
    e->path = strndup(path, plen);
    if (vary != NULL) {
        e->vary = lower_dup(vary, len);
        const char *vk = e->vary != NULL ? tg_cache_vary_key(r, e->vary) : NULL;
        e->vary_key = vk != NULL ? strdup(vk) : NULL;
    }
    if (e->key == NULL || e->route == NULL || e->path == NULL ||
        (vary != NULL && e->vary_key == NULL) || capture_headers(r, e) < 0) {
        tg_cache_entry_unref(e);
        return NULL;
    }
    capture_times(c, r, cc, e, tg_cache_now());
    return e;
}

/* A 304 to our validators: the stored entry with the 304's fields and
 * freshness (RFC 9111 section 4.3.4). */
tg_cache_entry_t *tg_cache_refresh(const tg_cache_defaults_t *c, tg_request_t *r, const tg_cc_t *cc,
                                   const tg_cache_entry_t *old)
{
    tg_cache_entry_t *e = tg_cache_entry_new();
    if (e == NULL)
        return NULL;
    e->status = old->status;
    e->key = strndup(old->key, old->klen);
    e->klen = old->klen;
    e->route = strdup(old->route);
    e->path = strdup(old->path);
    e->vary = old->vary != NULL ? strdup(old->vary) : NULL;
    e->vary_key = old->vary_key != NULL ? strdup(old->vary_key) : NULL;
    e->content_type = old->content_type != NULL ? strdup(old->content_type) : NULL;
    e->body = malloc(old->body_len + 1);
    e->body_len = old->body_len;
    bool ok = e->key && e->route && e->path && e->body && (!old->vary || e->vary) &&
              (!old->vary_key || e->vary_key) && (!old->content_type || e->content_type);
    if (ok)
        memcpy(e->body, old->body, old->body_len);
    /* The 304's fields replace the stored ones of the same name. */
    for (size_t i = 0; ok && i < old->nheaders; i++) {
        size_t len;
        if (tg_response_header(r, old->headers[i].name, &len) == NULL)
            ok = tg_cache_entry_add_header(e, old->headers[i].name, strlen(old->headers[i].name),
                                           old->headers[i].value, old->headers[i].value_len) == 0;
    }
    const char *n, *v;
    size_t nl, vl;
    for (size_t i = 0; ok && tg_response_header_at(r, i, &n, &nl, &v, &vl); i++)
        if (!skip_header(n, nl) && !(nl == 14 && strncasecmp(n, "Content-Length", 14) == 0))
            ok = tg_cache_entry_add_header(e, n, nl, v, vl) == 0;
    if (!ok) {
        tg_cache_entry_unref(e);
        return NULL;
    }
    e->etag = tg_cache_entry_header(e, "ETag");
    e->last_modified = tg_cache_entry_header(e, "Last-Modified");
    /* The freshness of the refreshed entry: the 304's Cache-Control when it
     * has one, else the stored response's. */
    tg_cc_t merged = *cc;
    if (!cc->any) {
        tg_cc_init(&merged);
        const char *scc = tg_cache_entry_header(e, "Cache-Control");
        if (scc != NULL)
            tg_cc_parse(scc, strlen(scc), &merged);
    }
    capture_times(c, r, &merged, e, tg_cache_now());
    tg_cache_entry_account(e);
    return e;
}
