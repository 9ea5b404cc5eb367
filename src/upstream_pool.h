/*
 * Upstream connections of one worker for one upstream: a pool of idle
 * keep-alive connections per target, what the balancer keeps per worker
 * (src/balance.h), and passive health (a target failing max_fails times in a
 * row, on any worker, rests for fail_timeout: the state is the target's
 * cross-worker one, src/upstream_shared.h). Worker-local but for that.
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
    uint64_t idle_since_ms;  /* released to the pool (monotonic): parked a second later */
    bool idle;
    bool connected;
    unsigned uses; /* requests carried so far; > 0 means it came from the pool */
    const struct tg_endpoint_s *endpoint; /* a re-resolved slot's address it went to */
};

typedef struct {
    unsigned active;       /* connections carrying a request (least_conn, p2c_ewma) */
    tg_uconn_t *idle_head; /* most recently used first */
    tg_uconn_t *idle_tail; /* idle the longest: trimmed first */
    int64_t wrr_current;   /* smooth weighted round robin */
    double ewma_us;        /* p2c_ewma: peak latency EWMA */
    uint64_t ewma_stamp_us;
} tg_target_state_t;

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
    uint64_t idle;   /* gauge: idle pooled connections */
    uint64_t active; /* gauge: connections carrying a request */
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
    uint64_t rng;        /* p2c_ewma, backoff jitter */
    uint8_t *scratch_ok; /* balance: ntargets bytes when more than 64 */
    unsigned nidle;
    unsigned nactive;
    struct event *park_ev;   /* parks and trims idle connections (park_cb); made on first use */
    uint64_t park_due_ms;    /* when park_ev fires (monotonic), 0 = not pending */
    tg_upool_stats_t *stats; /* &own, or the worker metrics' slot for this upstream */
    tg_upool_stats_t own;
};

int tg_upool_init(tg_upool_t *p, struct event_base *base, const tg_upstream_conf_t *conf);
void tg_upool_destroy(tg_upool_t *p);

/* An idle pooled connection to target, or NULL. The caller sets callbacks. */
tg_uconn_t *tg_upool_take_idle(tg_upool_t *p, size_t target);

/* Starts a new non-blocking connection to target (TLS when the upstream has
 * `tls:`); NULL on immediate failure (errno set; EBUSY: the target is at
 * circuit_breaker.max_connections). The caller sets callbacks
 * and timeouts (the write timeout bounds connect + handshake); CONNECTED or
 * an error comes through the event callback. */
tg_uconn_t *tg_upool_connect(tg_upool_t *p, size_t target);

/* Done with a connection: back to the idle pool when reusable (parked,
 * without buffers, once idle for a second), otherwise closed. Idle
 * connections above `keepalive` are closed once idle `keepalive_trim`, the
 * longest idle first (at once when it is 0). */
void tg_upool_release(tg_uconn_t *c, bool reusable);

/* Passive health bookkeeping, on the target's cross-worker state. */
void tg_upool_report_failure(tg_upool_t *p, size_t target, uint64_t now_ms);
void tg_upool_report_success(tg_upool_t *p, size_t target);

#endif
