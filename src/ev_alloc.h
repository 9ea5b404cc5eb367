/*
 * libevent's memory functions (ev_alloc.c): tiny allocations of worker
 * threads from the worker's pools, the rest from malloc.
 */
#ifndef TG_EV_ALLOC_H
#define TG_EV_ALLOC_H

/* Installs them: before any other libevent call (main). */
void tg_ev_alloc_init(void);

/* The calling thread (a worker's loop, which frees what it allocates)
 * takes libevent's tiny allocations from its pools. */
void tg_ev_alloc_thread_pools(void);

#endif
