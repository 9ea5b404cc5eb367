#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 16u

typedef struct block_s {
    struct block_s *next;
    size_t size; /* usable bytes after the header */
    size_t used;
} block_t;

typedef struct cleanup_s {
    struct cleanup_s *next;
    void (*fn)(void *);
    void *data;
} cleanup_t;

struct tg_arena_s {
    block_t *head;  /* current block; the first block is last in the list */
    block_t *first; /* kept across resets */
    cleanup_t *cleanups;
    size_t total_used;
};

#define BLOCK_HDR ((sizeof(block_t) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

static block_t *block_new(size_t size)
{
    block_t *b = malloc(BLOCK_HDR + size);
    if (b == NULL)
        abort();
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

tg_arena_t *tg_arena_create(size_t first_block)
{
    tg_arena_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        abort();
    a->first = a->head = block_new(first_block ? first_block : 4096);
    return a;
}

void *tg_arena_alloc(tg_arena_t *a, size_t size)
{
    size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    block_t *b = a->head;
    if (b->size - b->used < size) {
        /* Grow geometrically but give large objects a block of their own size. */
        size_t want = b->size * 2;
        if (want < size)
            want = size;
        b = block_new(want);
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b + BLOCK_HDR + b->used;
    b->used += size;
    a->total_used += size;
    return p;
}

void *tg_arena_calloc(tg_arena_t *a, size_t size)
{
    void *p = tg_arena_alloc(a, size);
    memset(p, 0, size);
    return p;
}

char *tg_arena_strndup(tg_arena_t *a, const char *s, size_t len)
{
    char *p = tg_arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *tg_arena_printf(tg_arena_t *a, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    if (fmt == NULL) /* (gcc's sanitizer builds cannot prove it is not) */
        fmt = "";
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = tg_arena_alloc(a, (size_t)n + 1);
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
        return p;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void tg_arena_on_cleanup(tg_arena_t *a, void (*fn)(void *), void *data)
{
    cleanup_t *c = tg_arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
}

static void run_cleanups(tg_arena_t *a)
{
    /* A cleanup may allocate from the arena or register another cleanup. */
    while (a->cleanups != NULL) {
        cleanup_t *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->data);
    }
}

void tg_arena_reset(tg_arena_t *a)
{
    run_cleanups(a);
    block_t *b = a->head;
    while (b != a->first) {
        block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = a->first;
    a->first->used = 0;
    a->total_used = 0;
}

void tg_arena_destroy(tg_arena_t *a)
{
    if (a == NULL)
        return;
    tg_arena_reset(a);
    free(a->first);
    free(a);
}

size_t tg_arena_used(const tg_arena_t *a)
{
    return a->total_used;
}
