/*
 * Entry <-> byte string: "TGC1", the numbers as 8-byte little-endian
 * integers, then each string as a 4-byte length and its bytes (length
 * 0xffffffff: absent).
 */
#include "cache_codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "TGC1"
#define ABSENT 0xffffffffu

static void put_u64(struct evbuffer *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    evbuffer_add(b, x, 8);
}

static void put_str(struct evbuffer *b, const char *s, size_t len)
{
    uint32_t n = s != NULL ? (uint32_t)len : ABSENT;
    unsigned char x[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 24)};
    evbuffer_add(b, x, 4);
    if (s != NULL)
        evbuffer_add(b, s, len);
}

static void put_cstr(struct evbuffer *b, const char *s)
{
    put_str(b, s, s != NULL ? strlen(s) : 0);
}

int tg_cache_encode(const tg_cache_entry_t *e, struct evbuffer *out)
{
    uint64_t flags =
        (uint64_t)e->must_revalidate | (uint64_t)e->no_cache << 1 | (uint64_t)e->shared_auth << 2;
    evbuffer_add(out, MAGIC, 4);
    put_u64(out, (uint64_t)e->status);
    put_u64(out, (uint64_t)e->response_time);
    put_u64(out, (uint64_t)e->initial_age);
    put_u64(out, (uint64_t)e->lifetime);
    put_u64(out, (uint64_t)e->swr);
    put_u64(out, (uint64_t)e->sie);
    put_u64(out, flags);
    put_u64(out, e->nheaders);
    put_cstr(out, e->route);
    put_cstr(out, e->path);
    put_cstr(out, e->vary);
    put_cstr(out, e->vary_key);
    put_cstr(out, e->content_type);
    for (size_t i = 0; i < e->nheaders; i++) {
        put_cstr(out, e->headers[i].name);
        put_str(out, e->headers[i].value, e->headers[i].value_len);
    }
    put_str(out, e->body != NULL ? e->body : "", e->body_len);
    return 0;
}

typedef struct {
    const unsigned char *p;
    size_t left;
    bool bad;
} reader_t;

static uint64_t get_u64(reader_t *r)
{
    if (r->left < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | r->p[i];
    r->p += 8;
    r->left -= 8;
    return v;
}

/* A malloc'ed NUL-terminated copy; NULL when absent (or bad). */
static char *get_str(reader_t *r, size_t *len)
{
    if (r->left < 4) {
        r->bad = true;
        return NULL;
    }
    uint32_t n = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                 (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    if (n == ABSENT)
        return NULL;
    char *s = n <= r->left ? malloc((size_t)n + 1) : NULL;
    if (s == NULL) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->left -= n;
    if (len != NULL)
        *len = n;
    return s;
}

tg_cache_entry_t *tg_cache_decode(const char *p, size_t len)
{
    if (len < 4 || memcmp(p, MAGIC, 4) != 0)
        return NULL;
    reader_t r = {(const unsigned char *)p + 4, len - 4, false};
    tg_cache_entry_t *e = tg_cache_entry_new();
    if (e == NULL)
        return NULL;
    e->status = (int)get_u64(&r);
    e->response_time = (int64_t)get_u64(&r);
    e->initial_age = (int64_t)get_u64(&r);
    e->lifetime = (int64_t)get_u64(&r);
    e->swr = (int64_t)get_u64(&r);
    e->sie = (int64_t)get_u64(&r);
    uint64_t flags = get_u64(&r), nheaders = get_u64(&r);
    e->must_revalidate = flags & 1;
    e->no_cache = flags & 2;
    e->shared_auth = flags & 4;
    e->route = get_str(&r, NULL);
    e->path = get_str(&r, NULL);
    e->vary = get_str(&r, NULL);
    e->vary_key = get_str(&r, NULL);
    e->content_type = get_str(&r, NULL);
    if (r.bad || nheaders > r.left || e->route == NULL || e->path == NULL ||
        (e->vary == NULL) != (e->vary_key == NULL))
        goto bad;
    for (uint64_t i = 0; i < nheaders; i++) {
        size_t vlen = 0;
        char *n = get_str(&r, NULL), *v = get_str(&r, &vlen);
        int rc = n != NULL && v != NULL ? tg_cache_entry_add_header(e, n, strlen(n), v, vlen) : -1;
        free(n);
        free(v);
        if (rc < 0)
            goto bad;
    }
    e->body = get_str(&r, &e->body_len);
    if (r.bad || e->body == NULL || r.left != 0)
        goto bad;
    e->etag = tg_cache_entry_header(e, "ETag");
    e->last_modified = tg_cache_entry_header(e, "Last-Modified");
    tg_cache_entry_account(e);
    return e;
bad:
    tg_cache_entry_unref(e);
    return NULL;
}
