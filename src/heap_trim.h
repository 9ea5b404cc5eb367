/*
 * Giving freed heap pages back after a burst of connections. A busy
 * connection's buffers (input and output chains, its request arena, the
 * upstream exchange) come from the malloc heap and are freed when it parks;
 * glibc keeps those pages resident unless they sit at the top of the heap, so
 * a burst of thousands of connections that then idle would keep the burst's
 * peak in RSS for as long as they stay. A worker that parked many
 * connections asks glibc, once it is quiet, to return every whole free page
 * (malloc_trim: madvise(MADV_DONTNEED) of free chunks), as HAProxy does when
 * it flushes its pools. Only after TRIM_AFTER_PARKS parks, and only in a
 * quiet moment (few requests started for a while): a busy worker never pays
 * for it (the madvise calls, the page faults when the heap grows again).
 */
#ifndef TG_HEAP_TRIM_H
#define TG_HEAP_TRIM_H

#include "worker.h"

/* On the worker's base (in tg_worker_init); -1 when out of memory. */
int tg_heap_trim_init(tg_worker_t *w);
void tg_heap_trim_free(tg_worker_t *w);

/* A client connection of w parked (its buffers went back to the heap). */
void tg_heap_trim_parked(tg_worker_t *w);

#endif
