#include "pool.h"

#include <event2/event_struct.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer sees use-after-free and overflows in malloc'd memory
 * only: sanitizer builds give every object its own allocation. */
void *tg_pool_alloc(size_t size)
{
    return size == 0 || size > TG_POOL_MAX ? NULL : calloc(1, size);
}

void tg_pool_free(void *p, size_t size)
{
    (void)size;
    free(p);
}
#else

#define BLOCK ((size_t)64 * 1024)
#define GRAIN 16 /* class granularity and object alignment */
#define HDR 64   /* the block header, before the first object */
#define NCLASS (TG_POOL_MAX / GRAIN)

typedef struct slot_s {
    struct slot_s *next;
} slot_t;

/* At the start of its block (BLOCK-aligned, so an object finds its block by
 * masking its address); objects follow from offset HDR. */
typedef struct block_s {
    struct block_s *prev, *next; /* the class's blocks that have room */
    slot_t *free;                /* objects given back */
    uint32_t size;               /* object size (the class's) */
    uint32_t nslots, nfree;
    uint32_t fresh; /* objects never handed out start at this index: their
                       pages stay untouched (not resident) until needed */
} block_t;

_Static_assert(sizeof(block_t) <= HDR, "the block header fits before the first object");

/* Per thread: the blocks with room, by class. */
static _Thread_local block_t *room[NCLASS];

static void unlink_block(block_t *b, unsigned cls)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        room[cls] = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->prev = b->next = NULL;
}

static void push_block(block_t *b, unsigned cls)
{
    b->prev = NULL;
    b->next = room[cls];
    if (b->next)
        b->next->prev = b;
    room[cls] = b;
}

/* A BLOCK-aligned mapping: map twice the size, unmap what is around. */
static block_t *new_block(uint32_t size)
{
    char *p = mmap(NULL, 2 * BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *start = (char *)(((uintptr_t)p + BLOCK - 1) & ~(uintptr_t)(BLOCK - 1));
    if (start > p)
        munmap(p, (size_t)(start - p));
    munmap(start + BLOCK, (size_t)(p + BLOCK - start));
    block_t *b = (block_t *)start; /* zero-filled by the kernel */
    b->size = size;
    b->nslots = b->nfree = (uint32_t)((BLOCK - HDR) / size);
    return b;
}

void *tg_pool_alloc(size_t size)
{
    if (size == 0 || size > TG_POOL_MAX)
        return NULL;
    unsigned cls = (unsigned)((size + GRAIN - 1) / GRAIN - 1);
    block_t *b = room[cls];
    if (b == NULL) {
        if ((b = new_block((cls + 1) * GRAIN)) == NULL)
            return NULL;
        push_block(b, cls);
    }
    void *p;
    if (b->free != NULL) {
        p = b->free;
        b->free = b->free->next;
    } else {
        p = (char *)b + HDR + (size_t)b->fresh++ * b->size;
    }
    if (--b->nfree == 0)
        unlink_block(b, cls);
    memset(p, 0, size);
    return p;
}

void tg_pool_free(void *p, size_t size)
{
    if (p == NULL)
        return;
    unsigned cls = (unsigned)((size + GRAIN - 1) / GRAIN - 1);
    block_t *b = (block_t *)((uintptr_t)p & ~(uintptr_t)(BLOCK - 1));
    slot_t *s = p;
    s->next = b->free;
    b->free = s;
    if (b->nfree++ == 0)
        push_block(b, cls);
    /* Empty: back to the kernel, unless it is the class's only block with
     * room (a connection that comes and goes must not map and unmap). */
    if (b->nfree == b->nslots && (b->prev != NULL || b->next != NULL)) {
        unlink_block(b, cls);
        munmap(b, BLOCK);
    }
}
#endif

struct event *tg_pool_event_new(struct event_base *base, evutil_socket_t fd, short what,
                                event_callback_fn cb, void *arg)
{
    struct event *ev = tg_pool_alloc(sizeof(*ev));
    if (ev != NULL && event_assign(ev, base, fd, what, cb, arg) < 0) {
        tg_pool_free(ev, sizeof(*ev));
        return NULL;
    }
    return ev;
}

void tg_pool_event_free(struct event *ev)
{
    if (ev == NULL)
        return;
    event_del(ev);
    tg_pool_free(ev, sizeof(*ev));
}
