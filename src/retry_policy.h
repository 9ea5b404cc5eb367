/*
 * A route's upstream policy: `timeout` (the whole exchange up to the response
 * head, over every try), `max_body_size`, and `retry` (how many tries, on
 * which failures and statuses, for which methods, with what backoff and
 * under which budget). Parsed once at load; the request path asks the
 * questions below. The retry state of one request is tg_tries_t.
 */
#ifndef TG_RETRY_POLICY_H
#define TG_RETRY_POLICY_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "tollgate/arena.h"
#include "tollgate/conf.h"

typedef struct tg_ushared_s tg_ushared_t;

/* Failures the gateway sees before a response head. */
typedef enum {
    TG_FAIL_CONNECT = 1u << 0, /* connect refused, unreachable, or timed out */
    TG_FAIL_RESET = 1u << 1,   /* the connection closed or reset before a response head */
    TG_FAIL_TIMEOUT = 1u << 2, /* no response head in time (upstream timeout, per_try_timeout) */
} tg_fail_kind_t;

/* Bodies up to this size are kept whole so that a retry can send them again
 * (only on routes whose policy allows the request's method). */
#define TG_RETRY_BODY_MAX (64u * 1024u)

/* Retries never exceed budget% of the upstream's in-flight requests, but this
 * many may always run at once (Envoy's min_retry_concurrency), so that a
 * quiet upstream still gets its retries. */
#define TG_RETRY_BUDGET_MIN 3u

typedef struct tg_retry_policy_s {
    uint32_t attempts;           /* total tries, first included (1..10) */
    uint32_t on;                 /* tg_fail_kind_t bits */
    uint64_t statuses[4];        /* bit s-400: retry on an upstream status s (400..599) */
    uint64_t per_try_timeout_ms; /* a try without a response head by then fails; 0 = none */
    uint64_t backoff_base_ms;    /* jittered exponential backoff between tries */
    uint64_t backoff_max_ms;
    uint32_t methods;    /* TG_METHOD_* bits allowed to be retried */
    uint32_t budget_pct; /* 1..100: share of in-flight requests that may be retries */
} tg_retry_policy_t;

/* Reads a route's `timeout`, `max_body_size` and `retry` from its map into
 * the members given (each may stay 0 / NULL when absent). */
int tg_route_policy_parse(const tg_conf_node_t *route, tg_arena_t *arena, uint64_t *timeout_ms,
                          uint64_t *max_body_size, bool *has_max_body_size,
                          tg_retry_policy_t **retry, tg_conf_err_t *err);

static inline bool tg_retry_on_status(const tg_retry_policy_t *p, int status)
{
    return status >= 400 && status <= 599 &&
           (p->statuses[(status - 400) / 64] >> ((status - 400) % 64) & 1u);
}

/* A gateway failure is retried when the policy names its kind, or names the
 * status the gateway would answer with (502 for connect and reset, 504 for a
 * timeout), so `on: [502, 503, 504]` covers what the client would see. */
bool tg_retry_on_failure(const tg_retry_policy_t *p, tg_fail_kind_t kind);

/* Jittered exponential backoff before retry number n (1-based): a uniform
 * draw in [0, min(max, base * 2^(n-1))] ("full jitter"); rnd is random bits. */
uint64_t tg_retry_backoff_ms(const tg_retry_policy_t *p, unsigned n, uint64_t rnd);

/* Takes a slot of the upstream's retry budget (u->retrying), or returns false. */
bool tg_retry_budget_take(tg_ushared_t *u, uint32_t budget_pct);
void tg_retry_budget_give(tg_ushared_t *u);

/* One request's tries. Zeroed with the request. */
typedef struct {
    unsigned retries;                     /* retries made (access log `retries`) */
    bool counted;                         /* in the upstream's in-flight requests */
    bool retrying;                        /* holds a slot of the retry budget */
    bool pending;                         /* in the upstream's pending count (connecting) */
    bool backing_off;                     /* timer runs the backoff, then the next try */
    bool buffering;                       /* the body is read whole before the first try */
    bool has_hash;                        /* hash holds the request's balance key hash */
    uint64_t hash;                        /* */
    struct event *timer;                  /* deadline of the try / the exchange, or the backoff */
    uint64_t deadline_ms;                 /* route timeout, monotonic; 0 = none */
    uint64_t try_deadline_ms;             /* per_try_timeout of the current try; 0 = none */
    uint64_t try_start_us;                /* monotonic start of the current try (EWMA) */
    struct evbuffer *body;                /* the request body, kept whole for retries */
    const struct tg_endpoint_s *endpoint; /* a re-resolved slot's address of the last try */
} tg_tries_t;

#endif
