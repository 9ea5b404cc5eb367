#include "upstream_try.h"

#include <errno.h>
#include <event2/buffer.h>
#include <string.h>

#include "log.h"
#include "response.h"
#include "split.h"
#include "tollgate/clock.h"
#include "upstream_shared.h"
#include "worker.h"

/* The gateway's 503 for an upstream that may not take this request now: a
 * circuit-breaker limit or, with all_down: fail_closed, no usable target. */
static void refuse(tg_request_t *req, int limit_id)
{
    const char *limit = limit_id >= 0 ? tg_limit_names[limit_id] : NULL;
    const char *msg = "no healthy upstream target";
    if (limit != NULL) {
        TG_SHARED_INC(req->up.pool->conf->shared->overloaded[limit_id]);
        msg = tg_arena_printf(req->arena, "upstream overloaded: %s", limit);
        tg_request_add_response_header(req, "X-Tollgate-Overloaded", limit, strlen(limit));
    }
    tg_log_info("upstream %s: %s (request %.*s)", req->up.pool->conf->name, msg,
                (int)req->request_id_len, req->request_id);
    tg_response_error(req, 503, msg);
}

bool tg_try_admit(tg_request_t *req)
{
    if (req->route->split != NULL) /* after the plugins: sticky may read a claim */
        req->up.pool = &req->gen->pools[tg_split_choose(req->route->split, req)->index];
    const tg_upstream_conf_t *u = req->up.pool->conf;
    if (!u->counts_requests)
        return true;
    if (!tg_shared_enter(&u->shared->requests, u->circuit.max_requests)) {
        refuse(req, TG_LIMIT_MAX_REQUESTS);
        return false;
    }
    req->up.tries.counted = true;
    return true;
}

void tg_try_first(tg_request_t *req, event_callback_fn timer_cb)
{
    tg_tries_t *t = &req->up.tries;
    const tg_upstream_conf_t *u = req->up.pool->conf;
    if (u->balance == TG_BALANCE_HASH) {
        size_t len;
        const char *k = tg_key_get(&u->hash_key, req, &len);
        t->has_hash = k != NULL;
        t->hash = k ? tg_hash64(k, len, 0) : 0;
    }
    if (req->route->timeout_ms)
        t->deadline_ms = tg_now_ms() + req->route->timeout_ms;
    if (t->timer == NULL && (req->route->retry != NULL || req->route->timeout_ms))
        t->timer = evtimer_new(req->gen->worker->base, timer_cb, req);
}

void tg_try_connected(tg_request_t *req)
{
    if (req->up.tries.pending) {
        tg_shared_leave(&req->up.pool->conf->shared->pending);
        req->up.tries.pending = false;
    }
}

/* A target that reached max_connections meanwhile on another worker is left
 * for another one. */
bool tg_try_connect(tg_request_t *req, size_t *target, tg_uconn_t **uc)
{
    tg_upool_t *p = req->up.pool;
    for (size_t round = 0; round <= p->conf->ntargets; round++) {
        tg_pick_result_t why;
        size_t t = tg_balance_pick(p, tg_now_ms(), req->up.tried, req->up.tries.has_hash,
                                   req->up.tries.hash, &why);
        if (t == SIZE_MAX) {
            refuse(req, why == TG_PICK_MAX_CONNS ? TG_LIMIT_MAX_CONNECTIONS : -1);
            return false;
        }
        *target = t;
        if ((*uc = tg_upool_take_idle(p, t)) != NULL)
            return true;
        if (!tg_shared_enter(&p->conf->shared->pending, p->conf->circuit.max_pending)) {
            refuse(req, TG_LIMIT_MAX_PENDING);
            return false;
        }
        req->up.tries.pending = true;
        *uc = tg_upool_connect(p, t);
        if (*uc != NULL || errno != EBUSY)
            return true;
        tg_try_connected(req);
    }
    refuse(req, TG_LIMIT_MAX_CONNECTIONS);
    return false;
}

static void arm_at(tg_request_t *req, uint64_t at_ms)
{
    uint64_t now = tg_now_ms();
    struct timeval tv = tg_timeval_ms(at_ms > now ? at_ms - now : 0);
    evtimer_add(req->up.tries.timer, &tv);
}

void tg_try_arm(tg_request_t *req)
{
    tg_tries_t *t = &req->up.tries;
    if (t->timer == NULL)
        return;
    const tg_retry_policy_t *rp = req->route->retry;
    uint64_t at = t->deadline_ms;
    t->try_deadline_ms = rp && rp->per_try_timeout_ms ? tg_now_ms() + rp->per_try_timeout_ms : 0;
    if (t->try_deadline_ms && (at == 0 || t->try_deadline_ms < at))
        at = t->try_deadline_ms;
    if (at)
        arm_at(req, at);
    else
        evtimer_del(t->timer);
}

bool tg_try_policy_allows(tg_request_t *req, unsigned kind, int status)
{
    const tg_retry_policy_t *rp = req->route->retry;
    if (!(rp->methods & req->client.method_bit) || req->up.attempts >= rp->attempts)
        return false;
    if (kind != 0 ? !tg_retry_on_failure(rp, kind) : !tg_retry_on_status(rp, status))
        return false;
    if (req->up.tries.deadline_ms && tg_now_ms() >= req->up.tries.deadline_ms)
        return false;
    if (!req->up.tries.retrying) {
        if (!tg_retry_budget_take(req->up.pool->conf->shared, rp->budget_pct)) {
            TG_SHARED_INC(req->up.pool->conf->shared->budget_exhausted);
            tg_log_info("upstream %s: retry budget exhausted (request %.*s)",
                        req->up.pool->conf->name, (int)req->request_id_len, req->request_id);
            return false;
        }
        req->up.tries.retrying = true; /* held until the request ends */
    }
    return true;
}

bool tg_try_body_resendable(const tg_request_t *req)
{
    if (req->up.tries.body != NULL && req->client.body.done)
        return true;
    if (req->client.body_started)
        return false;
    return req->client.body.kind == TG_BODY_NONE ||
           (req->client.body.kind == TG_BODY_LENGTH && req->client.body.remaining == 0);
}

uint64_t tg_try_backoff(tg_request_t *req)
{
    tg_tries_t *t = &req->up.tries;
    t->retries++;
    TG_SHARED_INC(req->up.pool->conf->shared->retries);
    const tg_retry_policy_t *rp = req->route->retry;
    uint64_t wait =
        rp ? tg_retry_backoff_ms(rp, t->retries, req->up.pool->rng++ * 0x9e3779b97f4a7c15ull) : 0;
    if (wait == 0 || t->timer == NULL)
        return 0;
    t->backing_off = true;
    t->try_deadline_ms = 0;
    uint64_t at = tg_now_ms() + wait;
    arm_at(req, t->deadline_ms && t->deadline_ms < at ? t->deadline_ms : at);
    return wait;
}

/* A body the route's retry policy may have to send twice is read whole
 * first, up to TG_RETRY_BODY_MAX (nginx buffers request bodies for its
 * proxy_next_upstream the same way). Larger and chunked bodies stream and
 * are never retried once a byte went. */
bool tg_try_keep_body(tg_request_t *req)
{
    const tg_retry_policy_t *rp = req->route->retry;
    if (rp == NULL || rp->attempts < 2 || !(rp->methods & req->client.method_bit) ||
        req->client.body_tmp != NULL || req->up.upgrade ||
        req->client.body.kind != TG_BODY_LENGTH || req->client.body.done ||
        req->client.body.remaining == 0 || req->client.body.remaining > TG_RETRY_BODY_MAX)
        return false;
    req->up.tries.body = evbuffer_new();
    return req->up.tries.body != NULL;
}

uint64_t tg_try_response_timeout(const tg_request_t *req)
{
    return req->route->timeout_ms ? req->route->timeout_ms : req->up.pool->conf->timeout_ms;
}

void tg_try_release(tg_request_t *req)
{
    tg_tries_t *t = &req->up.tries;
    if (t->timer != NULL) {
        event_free(t->timer);
        t->timer = NULL;
    }
    if (t->body != NULL) {
        evbuffer_free(t->body);
        t->body = NULL;
    }
    if (req->up.pool == NULL)
        return;
    tg_try_connected(req);
    tg_ushared_t *u = req->up.pool->conf->shared;
    if (t->retrying)
        tg_retry_budget_give(u);
    if (t->counted)
        tg_shared_leave(&u->requests);
    t->retrying = t->counted = false;
}
