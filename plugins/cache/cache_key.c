/*
 * Cache keys (cache_key.h).
 */
#include "cache_key.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tollgate/arena.h"
#include "tollgate/text.h"

#define SEP '\x1f'
/* More query parameters than this are kept in the client's order: the key
 * then differs by order, a miss at worst. */
#define MAX_PARAMS 64

int tg_cache_part_parse(const char *s, tg_cache_part_t *out)
{
    static const char *const names[] = {"method", "host", "path", "query"};
    out->header = NULL;
    for (size_t i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            out->kind = (tg_cache_part_kind_t)i;
            return 0;
        }
    if (strncmp(s, "header:", 7) == 0 && tg_token_valid(s + 7, strlen(s + 7))) {
        out->kind = KEY_HEADER;
        out->header = strdup(s + 7);
        return out->header != NULL ? 0 : -1;
    }
    return -1;
}

typedef struct {
    const char *p;
    size_t len;
} piece_t;

static int cmp_piece(const void *a, const void *b)
{
    const piece_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* The query with its parameters sorted, so that ?a=1&b=2 and ?b=2&a=1 share
 * an entry. */
static void add_query(struct evbuffer *b, const char *q, size_t len)
{
    piece_t ps[MAX_PARAMS];
    size_t n = 0, i = 0;
    while (i <= len && n < MAX_PARAMS) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        if (j > i)
            ps[n++] = (piece_t){q + i, j - i};
        i = j + 1;
    }
    if (n == MAX_PARAMS) {
        evbuffer_add(b, q, len);
        return;
    }
    qsort(ps, n, sizeof(ps[0]), cmp_piece);
    for (size_t k = 0; k < n; k++) {
        if (k > 0)
            evbuffer_add(b, "&", 1);
        evbuffer_add(b, ps[k].p, ps[k].len);
    }
}

static void add_part(struct evbuffer *b, tg_request_t *r, const tg_cache_part_t *p)
{
    size_t len = 0;
    const char *v = NULL;
    switch (p->kind) {
    case KEY_METHOD:
        v = tg_request_method(r, &len);
        if (len == 4 && memcmp(v, "HEAD", 4) == 0)
            v = "GET", len = 3;
        break;
    case KEY_HOST: {
        v = tg_request_host(r, &len);
        for (size_t i = 0; v != NULL && i < len; i++) {
            char c = v[i];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            evbuffer_add(b, &c, 1);
        }
        return;
    }
    case KEY_PATH:
        v = tg_request_path(r, &len);
        break;
    case KEY_QUERY:
        v = tg_request_query(r, &len);
        if (v != NULL)
            add_query(b, v, len);
        return;
    case KEY_HEADER:
        v = tg_request_header(r, p->header, &len);
        break;
    }
    if (v != NULL)
        evbuffer_add(b, v, len);
}

static char *drain_to_arena(tg_request_t *r, struct evbuffer *b, size_t *len)
{
    size_t n = evbuffer_get_length(b);
    char *out = tg_arena_alloc(tg_request_arena(r), n + 1);
    if (out != NULL) {
        evbuffer_copyout(b, out, n);
        out[n] = '\0';
    }
    evbuffer_free(b);
    if (len != NULL)
        *len = n;
    return out;
}

char *tg_cache_key(tg_request_t *r, const tg_cache_part_t *parts, size_t nparts, size_t *len)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        return NULL;
    const char *route = tg_request_route(r);
    if (route != NULL)
        evbuffer_add(b, route, strlen(route));
    for (size_t i = 0; i < nparts; i++) {
        char sep = SEP;
        evbuffer_add(b, &sep, 1);
        add_part(b, r, &parts[i]);
    }
    return drain_to_arena(r, b, len);
}

char *tg_cache_vary_key(tg_request_t *r, const char *vary)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        return NULL;
    size_t pos = 0, vlen = strlen(vary);
    tg_span_t name;
    while (tg_list_next(vary, vlen, &pos, &name)) {
        char n[128];
        if (name.len >= sizeof(n))
            continue;
        memcpy(n, name.p, name.len);
        n[name.len] = '\0';
        size_t len = 0;
        const char *v = tg_request_header(r, n, &len);
        evbuffer_add(b, n, name.len);
        evbuffer_add(b, v != NULL ? ":" : "!", 1); /* absent differs from empty */
        if (v != NULL)
            evbuffer_add(b, v, len);
        evbuffer_add(b, "\n", 1);
    }
    return drain_to_arena(r, b, NULL);
}
