/*
 * Sentinel discovery and the +switch-master watch (see redis_sentinel.h).
 *
 * hiredis 0.14 facts relied on (as in redis.c): a failed connect calls
 * onConnect(REDIS_ERR) and frees the context; a lost connection runs pending
 * and subscription callbacks with reply NULL, then onDisconnect, then frees it;
 * redisAsyncFree() inside a callback of that context is deferred until the
 * callback returns. Every callback checks that its context is still the
 * current one, so a context being torn down never reaches us twice.
 */
#include "redis_sentinel.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tollgate/clock.h"

#define WATCH_RETRY_MS 1000

struct tg_redis_sentinel_s {
    const tg_redis_conf_t *conf;
    struct event_base *base;
    tg_redis_sentinel_cb_t on_resolved, on_switch;
    void *data;
    redisAsyncContext *qac; /* the resolve's connection, NULL when none runs */
    size_t qidx;            /* Sentinel the resolve asks now */
    size_t qtried;          /* Sentinels tried by this resolve */
    char qwhy[160];         /* last failure, for the final error */
    redisAsyncContext *wac; /* the watch connection, NULL while waiting to retry */
    size_t widx;
    struct event *watch_timer;
};

static redisAsyncContext *connect_to(tg_redis_sentinel_t *s, size_t idx,
                                     redisConnectCallback *on_conn,
                                     redisDisconnectCallback *on_disc)
{
    const tg_redis_node_t *n = &s->conf->sentinels[idx];
    redisAsyncContext *ac = redisAsyncConnect(n->host, n->port);
    if (ac == NULL)
        return NULL;
    if (ac->err || redisLibeventAttach(ac, s->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = s;
    redisAsyncSetConnectCallback(ac, on_conn);
    redisAsyncSetDisconnectCallback(ac, on_disc);
    if (s->conf->sentinel_password != NULL) {
        const char *argv[] = {"AUTH", s->conf->sentinel_password};
        redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, NULL); /* an error shows next */
    }
    return ac;
}

/* Closes ac without its callbacks reaching us (they see ac is not current). */
static void close_quietly(redisAsyncContext *ac)
{
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);
}

/* ---- resolve ------------------------------------------------------------ */

static void ask_next(tg_redis_sentinel_t *s);

/* The current Sentinel failed: why, then the next one or the final error.
 * ac is already going away (hiredis frees it) when gone is true. */
static void query_failed(tg_redis_sentinel_t *s, redisAsyncContext *ac, bool gone, const char *why)
{
    const tg_redis_node_t *n = &s->conf->sentinels[s->qidx];
    snprintf(s->qwhy, sizeof(s->qwhy), "sentinel %s:%d: %s", n->host, n->port, why);
    s->qac = NULL;
    if (!gone)
        close_quietly(ac);
    s->qidx = (s->qidx + 1) % s->conf->nsentinels;
    if (++s->qtried >= s->conf->nsentinels) {
        s->on_resolved(s->data, NULL, 0, s->qwhy);
        return;
    }
    ask_next(s);
}

static void query_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    tg_redis_sentinel_t *s = ac->data;
    const redisReply *reply = r;
    if (ac != s->qac)
        return;
    if (reply == NULL) {
        query_failed(s, ac, true, ac->err ? ac->errstr : "connection lost");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[128];
        snprintf(why, sizeof(why), "%.*s", (int)reply->len, reply->str);
        query_failed(s, ac, false, why);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        query_failed(s, ac, false, "does not know the master");
        return;
    }
    char host[64];
    snprintf(host, sizeof(host), "%s", reply->element[0]->str);
    int port = atoi(reply->element[1]->str);
    s->qac = NULL;
    close_quietly(ac); /* deferred by hiredis until we return */
    s->on_resolved(s->data, host, port, NULL);
}

static void query_connected(const redisAsyncContext *ac, int status)
{
    tg_redis_sentinel_t *s = ac->data;
    if (ac == s->qac && status != REDIS_OK)
        query_failed(s, (redisAsyncContext *)ac, true, ac->errstr);
}

static void query_disconnected(const redisAsyncContext *ac, int status)
{
    (void)status;
    tg_redis_sentinel_t *s = ac->data;
    if (ac == s->qac)
        query_failed(s, (redisAsyncContext *)ac, true, ac->err ? ac->errstr : "closed");
}

static void ask_next(tg_redis_sentinel_t *s)
{
    redisAsyncContext *ac = connect_to(s, s->qidx, query_connected, query_disconnected);
    if (ac == NULL) {
        /* Cannot even start (no memory, no fd): count it and move on. */
        s->qac = NULL;
        s->qidx = (s->qidx + 1) % s->conf->nsentinels;
        snprintf(s->qwhy, sizeof(s->qwhy), "cannot open a connection to a sentinel");
        if (++s->qtried >= s->conf->nsentinels)
            s->on_resolved(s->data, NULL, 0, s->qwhy);
        else
            ask_next(s);
        return;
    }
    s->qac = ac;
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", s->conf->sentinel_master};
    redisAsyncCommandArgv(ac, query_reply, NULL, 3, argv, NULL);
}

void tg_redis_sentinel_cancel(tg_redis_sentinel_t *s)
{
    if (s == NULL || s->qac == NULL)
        return;
    redisAsyncContext *ac = s->qac;
    s->qac = NULL;
    close_quietly(ac);
}

void tg_redis_sentinel_resolve(tg_redis_sentinel_t *s)
{
    tg_redis_sentinel_cancel(s);
    s->qtried = 0;
    ask_next(s);
}

/* ---- watch -------------------------------------------------------------- */

static void watch_lost(tg_redis_sentinel_t *s, const char *why)
{
    const tg_redis_node_t *n = &s->conf->sentinels[s->widx];
    tg_log_info("redis: sentinel watch on %s:%d lost: %s; next sentinel in %d ms", n->host, n->port,
                why, WATCH_RETRY_MS);
    s->wac = NULL;
    s->widx = (s->widx + 1) % s->conf->nsentinels;
    struct timeval tv = tg_timeval_ms(WATCH_RETRY_MS);
    evtimer_add(s->watch_timer, &tv);
}

/* "+switch-master" payload: "<name> <old-ip> <old-port> <new-ip> <new-port>". */
static void on_message(tg_redis_sentinel_t *s, const char *text)
{
    char name[256], oldip[64], newip[64];
    int oldport, newport;
    if (sscanf(text, "%255s %63s %d %63s %d", name, oldip, &oldport, newip, &newport) != 5 ||
        strcmp(name, s->conf->sentinel_master) != 0)
        return;
    s->on_switch(s->data, newip, newport, NULL);
}

static void watch_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    tg_redis_sentinel_t *s = ac->data;
    const redisReply *reply = r;
    if (ac != s->wac)
        return;
    if (reply == NULL) {
        watch_lost(s, ac->err ? ac->errstr : "connection lost");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[128];
        snprintf(why, sizeof(why), "%.*s", (int)reply->len, reply->str);
        s->wac = NULL;
        close_quietly(ac);
        watch_lost(s, why);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "message") == 0 &&
        reply->element[2]->type == REDIS_REPLY_STRING)
        on_message(s, reply->element[2]->str);
}

static void watch_connected(const redisAsyncContext *ac, int status)
{
    tg_redis_sentinel_t *s = ac->data;
    if (ac == s->wac && status != REDIS_OK)
        watch_lost(s, ac->errstr);
}

static void watch_disconnected(const redisAsyncContext *ac, int status)
{
    (void)status;
    tg_redis_sentinel_t *s = ac->data;
    if (ac == s->wac)
        watch_lost(s, ac->err ? ac->errstr : "closed");
}

static void watch_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_redis_sentinel_t *s = arg;
    redisAsyncContext *ac = connect_to(s, s->widx, watch_connected, watch_disconnected);
    if (ac == NULL) {
        watch_lost(s, "cannot open a connection");
        return;
    }
    s->wac = ac;
    const char *argv[] = {"SUBSCRIBE", "+switch-master"};
    redisAsyncCommandArgv(ac, watch_reply, NULL, 2, argv, NULL);
}

/* ---- lifecycle ---------------------------------------------------------- */

tg_redis_sentinel_t *tg_redis_sentinel_new(const tg_redis_conf_t *conf, struct event_base *base,
                                           tg_redis_sentinel_cb_t on_resolved,
                                           tg_redis_sentinel_cb_t on_switch, void *data)
{
    tg_redis_sentinel_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    *s = (tg_redis_sentinel_t){.conf = conf,
                               .base = base,
                               .on_resolved = on_resolved,
                               .on_switch = on_switch,
                               .data = data};
    s->watch_timer = evtimer_new(base, watch_start, s);
    if (s->watch_timer == NULL) {
        free(s);
        return NULL;
    }
    watch_start(-1, 0, s);
    return s;
}

void tg_redis_sentinel_free(tg_redis_sentinel_t *s)
{
    if (s == NULL)
        return;
    tg_redis_sentinel_cancel(s);
    if (s->wac != NULL) {
        redisAsyncContext *ac = s->wac;
        s->wac = NULL;
        close_quietly(ac);
    }
    event_free(s->watch_timer);
    free(s);
}
