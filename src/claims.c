#include "claims.h"

#include <string.h>

#include "tollgate/request.h"

static tg_claim_t *find(const tg_claims_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].name, name) == 0)
            return &c->items[i];
    return NULL;
}

int tg_claims_set(tg_claims_t *c, tg_arena_t *arena, const char *name, const char *value,
                  size_t len)
{
    if (name == NULL || name[0] == '\0')
        return -1;
    tg_claim_t *cl = find(c, name);
    if (cl == NULL) {
        if (c->n == TG_REQUEST_CLAIMS_MAX)
            return -1;
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 8;
            tg_claim_t *items = tg_arena_alloc(arena, cap * sizeof(*items));
            if (c->n)
                memcpy(items, c->items, c->n * sizeof(*items));
            c->items = items;
            c->cap = cap;
        }
        cl = &c->items[c->n++];
        cl->name = tg_arena_strndup(arena, name, strlen(name));
    }
    cl->value = tg_arena_strndup(arena, value, len);
    cl->len = len;
    return 0;
}

const char *tg_claims_get(const tg_claims_t *c, const char *name, size_t *len)
{
    const tg_claim_t *cl = find(c, name);
    *len = cl ? cl->len : 0;
    return cl ? cl->value : NULL;
}

int tg_claims_set_subject(tg_claims_t *c, tg_arena_t *arena, const char *value, size_t len)
{
    if (len == 0)
        return -1;
    c->subject = tg_arena_strndup(arena, value, len);
    c->subject_len = len;
    return 0;
}

int tg_claims_set_consumer(tg_claims_t *c, tg_arena_t *arena, const char *value, size_t len)
{
    if (len == 0)
        return -1;
    c->consumer = tg_arena_strndup(arena, value, len);
    c->consumer_len = len;
    return 0;
}
