/*
 * jwt plugin: token cache (hash chains over a fixed slot array, clock eviction).
 */
#include "jwt_cache.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

typedef struct {
    unsigned char key[TG_JWT_CACHE_KEY];
    json_t *claims; /* NULL: free slot */
    double exp, nbf;
    uint32_t next; /* bucket chain, or free list */
    bool has_exp, has_nbf;
    bool ref; /* clock: used since the hand last passed */
} entry_t;

struct tg_jwt_cache_s {
    entry_t *e;
    uint32_t *bucket;
    uint32_t cap, mask, hand, count, free_list;
    double leeway;
};

tg_jwt_cache_t *tg_jwt_cache_new(size_t capacity, double leeway)
{
    if (capacity == 0 || capacity > (1u << 30))
        return NULL;
    size_t nb = 1;
    while (nb < capacity * 2)
        nb <<= 1;
    tg_jwt_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->e = calloc(capacity, sizeof(*c->e));
    c->bucket = malloc(nb * sizeof(*c->bucket));
    if (c->e == NULL || c->bucket == NULL) {
        tg_jwt_cache_free(c);
        return NULL;
    }
    for (size_t i = 0; i < nb; i++)
        c->bucket[i] = NIL;
    for (size_t i = 0; i < capacity; i++)
        c->e[i].next = i + 1 < capacity ? (uint32_t)(i + 1) : NIL;
    c->cap = (uint32_t)capacity;
    c->mask = (uint32_t)(nb - 1);
    c->free_list = 0;
    c->leeway = leeway;
    return c;
}

void tg_jwt_cache_free(tg_jwt_cache_t *c)
{
    if (c == NULL)
        return;
    for (uint32_t i = 0; c->e != NULL && i < c->cap; i++)
        json_decref(c->e[i].claims);
    free(c->e);
    free(c->bucket);
    free(c);
}

/* The key is already a uniform hash: its first bytes make the bucket. */
static uint32_t *bucket_of(tg_jwt_cache_t *c, const unsigned char *key)
{
    uint32_t h;
    memcpy(&h, key, sizeof(h));
    return &c->bucket[h & c->mask];
}

static void unlink_entry(tg_jwt_cache_t *c, uint32_t i)
{
    uint32_t *p = bucket_of(c, c->e[i].key);
    while (*p != i)
        p = &c->e[*p].next;
    *p = c->e[i].next;
    json_decref(c->e[i].claims);
    c->e[i].claims = NULL;
    c->e[i].next = c->free_list;
    c->free_list = i;
    c->count--;
}

json_t *tg_jwt_cache_get(tg_jwt_cache_t *c, const unsigned char key[TG_JWT_CACHE_KEY], double now)
{
    for (uint32_t i = *bucket_of(c, key); i != NIL; i = c->e[i].next) {
        entry_t *e = &c->e[i];
        if (memcmp(e->key, key, TG_JWT_CACHE_KEY) != 0)
            continue;
        if (e->has_exp && now >= e->exp + c->leeway) {
            unlink_entry(c, i);
            return NULL;
        }
        if (e->has_nbf && now + c->leeway < e->nbf)
            return NULL; /* only if the clock went back since it was stored */
        e->ref = true;
        return e->claims;
    }
    return NULL;
}

/* A slot for a new entry: a free one, else the clock hand's victim. */
static uint32_t take_slot(tg_jwt_cache_t *c)
{
    if (c->free_list == NIL) {
        while (c->e[c->hand].ref) {
            c->e[c->hand].ref = false;
            c->hand = (c->hand + 1) % c->cap;
        }
        uint32_t victim = c->hand;
        c->hand = (c->hand + 1) % c->cap;
        unlink_entry(c, victim);
    }
    uint32_t i = c->free_list;
    c->free_list = c->e[i].next;
    return i;
}

void tg_jwt_cache_put(tg_jwt_cache_t *c, const unsigned char key[TG_JWT_CACHE_KEY], json_t *claims)
{
    for (uint32_t i = *bucket_of(c, key); i != NIL; i = c->e[i].next)
        if (memcmp(c->e[i].key, key, TG_JWT_CACHE_KEY) == 0)
            return; /* same token, same claims */
    uint32_t i = take_slot(c);
    entry_t *e = &c->e[i];
    memcpy(e->key, key, TG_JWT_CACHE_KEY);
    e->claims = json_incref(claims);
    const json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    e->has_exp = json_is_number(exp);
    e->exp = e->has_exp ? json_number_value(exp) : 0;
    e->has_nbf = json_is_number(nbf);
    e->nbf = e->has_nbf ? json_number_value(nbf) : 0;
    e->ref = false;
    uint32_t *b = bucket_of(c, key);
    e->next = *b;
    *b = i;
    c->count++;
}

size_t tg_jwt_cache_count(const tg_jwt_cache_t *c)
{
    return c->count;
}

void tg_jwt_cache_clear(tg_jwt_cache_t *c)
{
    for (uint32_t i = 0; i < c->cap; i++)
        if (c->e[i].claims != NULL)
            unlink_entry(c, i);
}
