/*
 * The failure-isolation side of one request's upstream tries, for the
 * upstream client (proxy.c): admission (split choice, max_requests), target
 * choice and connection under the circuit breaker (max_connections,
 * max_pending), the route's retry policy (may this try be followed by
 * another, the budget, the backoff and the per-try and route deadlines on one
 * timer), bodies kept whole for a retry, and the 503 that names a limit. The
 * state is req->up.tries (retry_policy.h); proxy.c keeps the state machine
 * (attempt, failure, response head) and calls these.
 */
#ifndef TG_UPSTREAM_TRY_H
#define TG_UPSTREAM_TRY_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "request.h"

/* Chooses the split side (after the plugins) and takes a max_requests slot;
 * false when the request was refused (503, the request is gone). */
bool tg_try_admit(tg_request_t *req);

/* Before the first try: the balance key's hash, the route deadline, the
 * timer (timer_cb with req: deadlines and the end of a backoff). */
void tg_try_first(tg_request_t *req, event_callback_fn timer_cb);

/* A connection for this try: pooled, or new (counted in max_pending until
 * established). false: refused (503, gone); else *uc, or NULL when
 * connecting to *target failed (errno). */
bool tg_try_connect(tg_request_t *req, size_t *target, tg_uconn_t **uc);

/* The try's new connection is established or gone (max_pending). */
void tg_try_connected(tg_request_t *req);

/* Arms the timer for this try: the earlier of the route deadline and
 * per_try_timeout. */
void tg_try_arm(tg_request_t *req);

/* The route's policy lets a try that failed with kind (tg_fail_kind_t), or
 * answered status (kind 0), be followed by another (attempts, conditions,
 * method, deadline, budget: a budget slot is taken). The caller checks the
 * state (no response head sent, body resendable). */
bool tg_try_policy_allows(tg_request_t *req, unsigned kind, int status);

/* The request's body can be sent again: none, empty, or kept whole. */
bool tg_try_body_resendable(const tg_request_t *req);

/* A retry is decided: counted; returns the backoff to wait (the timer is
 * armed for it), or 0 to try at once. */
uint64_t tg_try_backoff(tg_request_t *req);

/* Whether the body is read whole before the first try (the policy may send
 * it twice); then tries.body holds it. */
bool tg_try_keep_body(tg_request_t *req);

/* The time to the response head (the route's timeout, else the upstream's). */
uint64_t tg_try_response_timeout(const tg_request_t *req);

/* The request ends: the timer, the kept body and the shared counts go. */
void tg_try_release(tg_request_t *req);

#endif
