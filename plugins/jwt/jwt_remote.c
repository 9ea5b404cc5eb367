/*
 * jwt plugin: jwks_uri fetching and refresh on a worker's event loop.
 */
#include "jwt_remote.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/clock.h"
#include "tollgate/fetch.h"
#include "tollgate/log.h"
#include "tollgate/plugin.h"

/* After a failed fetch, try again this soon (or at refresh_ms if sooner). */
#define RETRY_MS 5000
/* A key set is a few KiB; more is not a key set. */
#define MAX_JWKS (256 * 1024)

struct tg_jwt_remote_s {
    const tg_jwt_remote_conf_t *conf;
    struct event *timer;
    tg_fetch_t *inflight;
    tg_jwt_keyset_t *keys; /* never NULL */
    uint64_t last_start_ms;
    bool started;
    bool holding; /* a readiness hold until the first download finished */
    void (*on_change)(void *arg);
    void *arg;
};

static void arm(tg_jwt_remote_t *r, uint64_t ms)
{
    struct timeval tv = tg_timeval_ms(ms);
    evtimer_add(r->timer, &tv);
}

/* A new set from a 200 response; NULL (with a warning logged) otherwise. */
static tg_jwt_keyset_t *parse_set(const tg_jwt_remote_t *r, const tg_fetch_result_t *res)
{
    char err[400] = "";
    tg_jwt_keyset_t *ks = NULL;
    json_t *doc = NULL;
    if (res->error != NULL || res->status != 200) {
        snprintf(err, sizeof(err), "%s", res->error ? res->error : "status is not 200");
    } else if ((doc = json_loadb(res->body, res->body_len, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
        snprintf(err, sizeof(err), "not JSON");
    } else if ((ks = calloc(1, sizeof(*ks))) == NULL ||
               tg_jwt_keyset_add_jwks(ks, doc, NULL, err, sizeof(err)) < 0) {
        if (ks != NULL)
            tg_jwt_keyset_free(ks);
        free(ks);
        ks = NULL;
    }
    json_decref(doc);
    if (ks == NULL)
        tg_log(TG_LOG_WARN, "jwt: jwks_uri %s (upstream %s): %s; keeping the previous keys",
               r->conf->path, r->conf->upstream, err[0] ? err : "error");
    return ks;
}

static void fetched(void *data, const tg_fetch_result_t *res)
{
    tg_jwt_remote_t *r = data;
    r->inflight = NULL;
    if (r->holding) {
        /* The first download finished (even if it failed): /readyz may answer. */
        r->holding = false;
        tg_readiness_release();
    }
    tg_jwt_keyset_t *ks = parse_set(r, res);
    uint64_t next = r->conf->refresh_ms;
    if (ks == NULL) {
        next = next < RETRY_MS ? next : RETRY_MS;
    } else {
        tg_jwt_keyset_free(r->keys);
        free(r->keys);
        r->keys = ks;
        if (r->on_change != NULL)
            r->on_change(r->arg);
    }
    arm(r, next);
}

static void start_fetch(evutil_socket_t fd, short what, void *data)
{
    (void)fd;
    (void)what;
    tg_jwt_remote_t *r = data;
    if (r->inflight != NULL)
        return;
    static const char *const headers[] = {"Accept", "application/json", NULL};
    tg_fetch_opts_t opts = {
        .method = "GET", .path = r->conf->path, .headers = headers, .max_body = MAX_JWKS};
    r->last_start_ms = tg_now_ms();
    r->started = true;
    /* NULL: fetched() already ran with the error and re-armed the timer. */
    r->inflight = tg_fetch_start(r->conf->upstream, &opts, fetched, r);
}

tg_jwt_remote_t *tg_jwt_remote_start(const tg_jwt_remote_conf_t *conf, struct event_base *base,
                                     void (*on_change)(void *arg), void *arg)
{
    tg_jwt_remote_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->conf = conf;
    r->on_change = on_change;
    r->arg = arg;
    r->keys = calloc(1, sizeof(*r->keys));
    r->timer = evtimer_new(base, start_fetch, r);
    if (r->keys == NULL || r->timer == NULL) {
        tg_jwt_remote_stop(r);
        return NULL;
    }
    r->holding = true;
    tg_readiness_hold();
    arm(r, 0);
    return r;
}

const tg_jwt_keyset_t *tg_jwt_remote_keys(const tg_jwt_remote_t *r)
{
    return r->keys;
}

void tg_jwt_remote_poke(tg_jwt_remote_t *r)
{
    if (r->inflight != NULL || !r->started ||
        tg_now_ms() - r->last_start_ms < TG_JWT_REMOTE_MIN_INTERVAL_MS)
        return;
    evtimer_del(r->timer);
    arm(r, 0);
}

void tg_jwt_remote_stop(tg_jwt_remote_t *r)
{
    if (r == NULL)
        return;
    if (r->holding) {
        r->holding = false;
        tg_readiness_release();
    }
    if (r->inflight != NULL)
        tg_fetch_cancel(r->inflight);
    if (r->timer != NULL)
        event_free(r->timer);
    if (r->keys != NULL)
        tg_jwt_keyset_free(r->keys);
    free(r->keys);
    free(r);
}

void tg_jwt_remote_conf_free(tg_jwt_remote_conf_t *c)
{
    if (c == NULL)
        return;
    free(c->upstream);
    free(c->path);
    free(c);
}
