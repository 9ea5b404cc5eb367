/*
 * Upstream connections of one worker for one upstream: target choice
 * (round robin / least connections), passive health (a target failing
 * max_fails times in a row rests for fail_timeout), and a pool of idle
 * keep-alive connections per target. Worker-local: no locks.
 */
#ifndef TG_UPSTREAM_POOL_H
#define TG_UPSTREAM_POOL_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "stream.h"

typedef struct tg_upool_s tg_upool_t;
typedef struct tg_uconn_s tg_uconn_t;

struct tg_uconn_s {
    tg_upool_t *pool;
    size_t target;
    tg_stream_t *s;
    tg_uconn_t *prev, *next; /* idle list of its target */
    bool idle;
    bool connected;
    unsigned uses; /* requests carried so far; > 0 means it came from the pool */
};

typedef struct {
    unsigned fails;        /* consecutive failures */
    uint64_t down_until;   /* monotonic ms; skipped until then */
    unsigned active;       /* connections carrying a request (least_conn) */
    tg_uconn_t *idle_head; /* most recently used first */
} tg_target_state_t;

#define TG_UPOOL_HEALTH_TARGETS 64

/* Counters and gauges of one upstream on one worker. They live in the
 * worker's metrics (not in the pool) so that a scrape on the admin thread never
 * reads a pool that a reload is freeing; single writer (the worker), relaxed
 * atomic stores, whole values for the reader. */
typedef struct {
    uint64_t created; /* connections opened */
    uint64_t reused;  /* requests sent on a pooled connection */
    uint64_t connect_errors;
    uint64_t timeouts;
    uint64_t resets;
    uint64_t rests;  /* a target put to rest (passive health: max_fails failures in a row) */
    uint64_t idle;   /* gauge: idle pooled connections */
    uint64_t active; /* gauge: connections carrying a request */
    /* passive health of the first TG_UPOOL_HEALTH_TARGETS targets: monotonic
     * ms until which the target rests, 0 when it is in use (the status page) */
    uint64_t down_until[TG_UPOOL_HEALTH_TARGETS];
} tg_upool_stats_t;

#define TG_STAT_ADD(p, field, d)                                                            \
    __atomic_store_n(&(p)->stats->field,                                                    \
                     __atomic_load_n(&(p)->stats->field, __ATOMIC_RELAXED) + (uint64_t)(d), \
                     __ATOMIC_RELAXED)
#define TG_STAT_INC(p, field) TG_STAT_ADD(p, field, 1)

struct tg_upool_s {
    struct event_base *base;
    const tg_upstream_conf_t *conf;
    tg_target_state_t *targets;
    size_t rr_next;
    unsigned nidle;
    unsigned nactive;
    tg_upool_stats_t *stats; /* &own, or the worker metrics' slot for this upstream */
    tg_upool_stats_t own;
};

int tg_upool_init(tg_upool_t *p, struct event_base *base, const tg_upstream_conf_t *conf);
void tg_upool_destroy(tg_upool_t *p);

/* Chooses a target, skipping resting ones and those in tried (bit i = target i
 * already failed for this request) while others remain. */
size_t tg_upool_pick(tg_upool_t *p, uint64_t now_ms, uint64_t tried);

/* An idle pooled connection to target, or NULL. The caller sets callbacks. */
tg_uconn_t *tg_upool_take_idle(tg_upool_t *p, size_t target);

/* Starts a new non-blocking connection to target (TLS when the upstream has
 * `tls:`); NULL on immediate failure (errno set). The caller sets callbacks
 * and timeouts (the write timeout bounds connect + handshake); CONNECTED or
 * an error comes through the event callback. */
tg_uconn_t *tg_upool_connect(tg_upool_t *p, size_t target);

/* Done with a connection: back to the idle pool when reusable (and there is
 * room), parked (no buffers), otherwise closed. */
void tg_upool_release(tg_uconn_t *c, bool reusable);

/* Passive health bookkeeping. */
void tg_upool_report_failure(tg_upool_t *p, size_t target, uint64_t now_ms);
void tg_upool_report_success(tg_upool_t *p, size_t target);

#endif
