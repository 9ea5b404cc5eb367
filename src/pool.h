/*
 * Pools of fixed-size objects for long-lived, numerous objects: streams and
 * the client connections that live in them (stream.c). Objects come from
 * 64 KiB blocks mapped apart from the malloc heap, packed by size class
 * (multiples of 16 bytes, up to TG_POOL_MAX): ten thousand idle keep-alive
 * connections then sit densely in few pages instead of being scattered
 * between the short-lived buffers of busy connections, where each would keep
 * a whole page of freed memory resident (glibc returns heap pages only from
 * the top). A block goes back to the kernel when its last object is freed
 * and its class has another block with room. No header per object.
 *
 * One set of pools per thread, without locks: an object is freed on the
 * thread that allocated it (a worker's loop).
 */
#ifndef TG_POOL_H
#define TG_POOL_H

#include <event2/event.h>
#include <stddef.h>

/* Largest object a pool takes; larger sizes are the caller's to malloc. */
#define TG_POOL_MAX 1024

/* A zeroed object of size bytes (1..TG_POOL_MAX), aligned to 16; NULL when
 * out of memory. */
void *tg_pool_alloc(size_t size);

/* Gives back p, allocated by tg_pool_alloc(size) on this thread. NULL is
 * allowed. */
void tg_pool_free(void *p, size_t size);

/* event_new / event_free with the event in a pool: the events that come and
 * go with a connection's activity (its timer, a stream's EV_WRITE) then do
 * not interleave with what stays in the malloc heap. */
struct event *tg_pool_event_new(struct event_base *base, evutil_socket_t fd, short what,
                                event_callback_fn cb, void *arg);
void tg_pool_event_free(struct event *ev); /* NULL is allowed */

#endif
