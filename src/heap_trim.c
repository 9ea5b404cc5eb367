#include "heap_trim.h"

#include <malloc.h>

#include "tollgate/clock.h"

/* Parks (buffers given back) that make a trim worth its cost: a few
 * hundred connections' worth of 4-16 KiB of buffers each. */
#define TRIM_AFTER_PARKS 256
/* The trim runs after a TRIM_DELAY_MS window in which fewer than
 * QUIET_REQUESTS requests started: a burst's parks coalesce into one trim,
 * once the burst is over; a busy worker only looks again a window later. */
#define TRIM_DELAY_MS 1000
#define QUIET_REQUESTS 64
/* Spare request arenas a quiet worker keeps (a burst leaves up to 64). */
#define QUIET_SPARE_ARENAS 4

static void arm(tg_worker_t *w)
{
    struct timeval tv = tg_timeval_ms(TRIM_DELAY_MS);
    w->trim_requests = w->requests_started;
    evtimer_add(w->heap_trim, &tv);
}

static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_worker_t *w = arg;
    if (w->requests_started - w->trim_requests >= QUIET_REQUESTS) { /* busy: later */
        arm(w);
        return;
    }
    w->parked_since_trim = 0;
    tg_worker_shrink_arenas(w, QUIET_SPARE_ARENAS);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

int tg_heap_trim_init(tg_worker_t *w)
{
    w->heap_trim = evtimer_new(w->base, trim_cb, w);
    return w->heap_trim != NULL ? 0 : -1;
}

void tg_heap_trim_free(tg_worker_t *w)
{
    if (w->heap_trim != NULL)
        event_free(w->heap_trim);
    w->heap_trim = NULL;
}

void tg_heap_trim_parked(tg_worker_t *w)
{
    if (++w->parked_since_trim == TRIM_AFTER_PARKS)
        arm(w);
}
