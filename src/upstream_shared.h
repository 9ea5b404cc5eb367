/*
 * What every worker knows about an upstream and its targets at once: the
 * state that failure isolation decides on (passive health and outlier
 * ejection, the active health checks' verdict, circuit-breaker counts, the
 * retry budget). Workers are threads of one process, so this is plain memory
 * of C11 atomics, read on the hot path without a lock.
 *
 * The objects live in a process-wide registry, found by name at load: an
 * upstream by its name, a target by "upstream/address". A reload that keeps
 * a name keeps its state (an ejected target stays ejected, in-flight counts
 * stay right while requests of two generations run), and the last config
 * that names it frees it. Lookups take a mutex; only loads and the resolver
 * do them.
 */
#ifndef TG_UPSTREAM_SHARED_H
#define TG_UPSTREAM_SHARED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One target (one address) of an upstream. */
typedef struct tg_tshared_s {
    atomic_uint conns;           /* open connections to it, all workers (max_connections) */
    atomic_uint fails;           /* passive health: consecutive failures */
    _Atomic uint64_t down_until; /* passive rest or outlier ejection: monotonic ms */
    atomic_bool unhealthy;       /* the active health checks took it out */
    atomic_uint c5xx;            /* outlier: consecutive 5xx answers */
    atomic_uint cgw;             /* outlier: consecutive gateway errors */
    atomic_uint ejections;       /* outlier: ejections in a row (the time doubles) */
    _Atomic uint64_t ejected_at; /* outlier: monotonic ms of the last ejection */
    atomic_uint checks_ok;       /* health checks: consecutive successes */
    atomic_uint checks_failed;   /* health checks: consecutive failures */
    /* A re-resolved slot's last address (src/resolve.c; main thread only):
     * a config loaded while its name does not resolve starts from it. */
    struct sockaddr_storage last_addr;
    socklen_t last_len; /* 0: none */
} tg_tshared_t;

/* The circuit breaker's limits, as named in the 503 and in /metrics. */
typedef enum {
    TG_LIMIT_MAX_CONNECTIONS = 0,
    TG_LIMIT_MAX_PENDING,
    TG_LIMIT_MAX_REQUESTS,
    TG_LIMIT_COUNT,
} tg_limit_t;

extern const char *const tg_limit_names[TG_LIMIT_COUNT];

/* Health check outcomes, as counted in /metrics. */
typedef enum { TG_CHECK_OK = 0, TG_CHECK_FAILED, TG_CHECK_TIMEOUT, TG_CHECK_COUNT } tg_check_t;

extern const char *const tg_check_names[TG_CHECK_COUNT];

/* One upstream. Counters only grow (they survive reloads with the name). */
typedef struct tg_ushared_s {
    atomic_uint requests; /* requests in flight toward it (max_requests, retry budget) */
    atomic_uint pending;  /* requests waiting for a new connection (max_pending) */
    atomic_uint retrying; /* requests on a retry now (retry budget) */
    _Atomic uint64_t overloaded[TG_LIMIT_COUNT]; /* 503s by limit */
    _Atomic uint64_t retries;                    /* retries made */
    _Atomic uint64_t budget_exhausted;           /* retries the budget refused */
    _Atomic uint64_t ejections;                  /* outlier ejections */
    _Atomic uint64_t checks[TG_CHECK_COUNT];     /* health checks by outcome */
} tg_ushared_t;

#define TG_SHARED_INC(counter) atomic_fetch_add_explicit(&(counter), 1, memory_order_relaxed)

/* Takes one of a counter's max slots (max 0: no limit); false when full. */
static inline bool tg_shared_enter(atomic_uint *c, uint32_t max)
{
    unsigned old = atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    if (max && old >= max) {
        atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

static inline void tg_shared_leave(atomic_uint *c)
{
    atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
}

/* Finds or creates the upstream's state (a reference; NULL when out of memory). */
tg_ushared_t *tg_ushared_get(const char *upstream);
void tg_ushared_put(tg_ushared_t *u);

/* Finds or creates a target's state, keyed by upstream and address. */
tg_tshared_t *tg_tshared_get(const char *upstream, const char *address);
void tg_tshared_put(tg_tshared_t *t);

/* Whether the target takes traffic now: no health verdict against it, no
 * passive rest or ejection running. */
static inline bool tg_tshared_usable(const tg_tshared_t *t, uint64_t now_ms)
{
    return !atomic_load_explicit(&t->unhealthy, memory_order_relaxed) &&
           atomic_load_explicit(&t->down_until, memory_order_relaxed) <= now_ms;
}

#endif
