/*
 * libevent's allocations, routed by size. A worker's tiny ones go to its
 * pools (pool.h): libevent's per-descriptor map entries (16 bytes, made the
 * first time a descriptor number gets an event and kept until the loop
 * ends). From malloc, each new one landed between the buffers of the
 * connections accepted around it; once those buffers were freed, every page
 * kept a few live entries and stayed resident: after a burst of 8,000 new
 * connections the heap held ~270 bytes per idle connection that a second
 * burst (entries already made) did not add. Packed apart, they cost their
 * 32 bytes. Everything else goes to malloc, as before.
 *
 * Each allocation carries an 8-byte header (its size and origin) because
 * libevent frees without a size; so libevent's memory is 8-byte aligned,
 * which its structures (pointers, 64-bit integers) need, not 16. Pools are per thread and unlocked, so only
 * worker threads, which free what they allocate, use them
 * (tg_ev_alloc_thread_pools); an entry freed by another thread after its
 * worker ended (event_base_free after the join) is safe, as nothing runs
 * concurrently on that block any more.
 */
#include "ev_alloc.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

#define TINY 32

typedef struct {
    struct {
        uint32_t size;
        uint32_t pooled;
    } h;
} hdr_t;

_Static_assert(sizeof(hdr_t) == 8, "an 8-byte header keeps 8-byte alignment");

static _Thread_local bool use_pools;

static void *ev_malloc(size_t size)
{
    hdr_t *h;
    bool pooled = use_pools && size <= TINY;
    if (size > UINT32_MAX - sizeof(hdr_t))
        return NULL;
    h = pooled ? tg_pool_alloc(sizeof(hdr_t) + size) : malloc(sizeof(hdr_t) + size);
    if (h == NULL)
        return NULL;
    h->h.size = (uint32_t)size;
    h->h.pooled = pooled;
    return h + 1;
}

static void ev_free(void *p)
{
    if (p == NULL)
        return;
    hdr_t *h = (hdr_t *)p - 1;
    if (h->h.pooled)
        tg_pool_free(h, sizeof(hdr_t) + h->h.size);
    else
        free(h);
}

static void *ev_realloc(void *p, size_t size)
{
    if (p == NULL)
        return ev_malloc(size);
    hdr_t *h = (hdr_t *)p - 1;
    if (!h->h.pooled && !(use_pools && size <= TINY)) {
        if (size > UINT32_MAX - sizeof(hdr_t))
            return NULL;
        hdr_t *n = realloc(h, sizeof(hdr_t) + size);
        if (n == NULL)
            return NULL;
        n->h.size = (uint32_t)size;
        return n + 1;
    }
    void *q = ev_malloc(size);
    if (q == NULL)
        return NULL;
    memcpy(q, p, h->h.size < size ? h->h.size : size);
    ev_free(p);
    return q;
}

void tg_ev_alloc_init(void)
{
    event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
}

void tg_ev_alloc_thread_pools(void)
{
    use_pools = true;
}
