/*
 * Stored responses: building, reference counting, age.
 */
#include "cache_entry.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tollgate/clock.h"

tg_cache_entry_t *tg_cache_entry_new(void)
{
    tg_cache_entry_t *e = calloc(1, sizeof(*e));
    if (e != NULL)
        atomic_init(&e->refs, 1);
    return e;
}

void tg_cache_entry_ref(tg_cache_entry_t *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void tg_cache_entry_unref(tg_cache_entry_t *e)
{
    if (e == NULL)
        return;
    unsigned old = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
    assert(old > 0);
    if (old != 1)
        return;
    for (size_t i = 0; i < e->nheaders; i++) {
        free(e->headers[i].name);
        free(e->headers[i].value);
    }
    free(e->headers);
    free(e->key);
    free(e->route);
    free(e->path);
    free(e->vary);
    free(e->vary_key);
    free(e->content_type);
    free(e->body);
    free(e);
}

int64_t tg_cache_now(void)
{
    return (int64_t)(tg_wall_us() / 1000000);
}

int64_t tg_cache_entry_age(const tg_cache_entry_t *e, int64_t now)
{
    int64_t resident = now > e->response_time ? now - e->response_time : 0;
    return e->initial_age + resident;
}

int tg_cache_entry_add_header(tg_cache_entry_t *e, const char *name, size_t nlen, const char *value,
                              size_t vlen)
{
    tg_cache_hdr_t *hs = realloc(e->headers, (e->nheaders + 1) * sizeof(*hs));
    if (hs == NULL)
        return -1;
    e->headers = hs;
    tg_cache_hdr_t *h = &hs[e->nheaders];
    h->name = strndup(name, nlen);
    h->value = malloc(vlen + 1);
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        return -1;
    }
    memcpy(h->value, value, vlen);
    h->value[vlen] = '\0';
    h->value_len = vlen;
    e->nheaders++;
    return 0;
}

const char *tg_cache_entry_header(const tg_cache_entry_t *e, const char *name)
{
    for (size_t i = 0; i < e->nheaders; i++)
        if (strcasecmp(e->headers[i].name, name) == 0)
            return e->headers[i].value;
    return NULL;
}

static size_t slen(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

void tg_cache_entry_account(tg_cache_entry_t *e)
{
    size_t n = sizeof(*e) + e->klen + slen(e->route) + slen(e->path) + slen(e->vary) +
               slen(e->vary_key) + slen(e->content_type) + e->body_len +
               e->nheaders * sizeof(tg_cache_hdr_t);
    for (size_t i = 0; i < e->nheaders; i++)
        n += strlen(e->headers[i].name) + 1 + e->headers[i].value_len + 1;
    e->size = n;
}
