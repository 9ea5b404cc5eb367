/*
 * A Redis connection for a plugin's admin action (tollgate/admin.h, API
 * 2.11): the workers' connections belong to their threads, so an action opens
 * its own, from the same `redis:` configuration, on a private event base that
 * it runs until its commands are answered (the admin loop is busy running the
 * action: a loop of its own is the one that may run here).
 */
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "redis.h"
#include "tollgate/admin.h"
#include "tollgate/clock.h"

struct tg_admin_redis_s {
    tg_config_t *cfg; /* holds the redis: configuration */
    struct event_base *base;
    tg_redis_t *rc;
    unsigned pending; /* commands sent and not yet answered */
};

/* A command of an action, kept so that it can be sent again: a Cluster's
 * primaries connect after the slot map is known (the connection is ready
 * once one of them is), and a command for one still connecting fails "redis
 * not connected"; it is retried until the connect timeout has passed. */
typedef struct {
    tg_admin_redis_t *c;
    tg_redis_cb_t cb;
    void *data;
    uint64_t deadline_ms;
    int argc;
    const char **argv; /* copies, in the same block */
    size_t *lens;
} admin_call_t;

#define ADMIN_RETRY_MS 20

static void admin_call_send(admin_call_t *call);

static void admin_call_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    admin_call_send(arg);
}

static void admin_call_done(void *data, const struct redisReply *reply, const char *error)
{
    admin_call_t *call = data;
    if (error != NULL && strcmp(error, "redis not connected") == 0 &&
        tg_now_ms() < call->deadline_ms) {
        struct timeval tv = tg_timeval_ms(ADMIN_RETRY_MS);
        if (event_base_once(call->c->base, -1, EV_TIMEOUT, admin_call_retry, call, &tv) == 0)
            return;
    }
    call->c->pending--;
    call->cb(call->data, reply, error);
    free(call);
}

static void admin_call_send(admin_call_t *call)
{
    tg_redis_send(call->c->rc, admin_call_done, call, call->argc, call->argv, call->lens);
}

int tg_admin_redis_command(tg_admin_redis_t *c, tg_redis_cb_t cb, void *data, int argc,
                           const char **argv, const size_t *argvlen)
{
    size_t total = sizeof(admin_call_t) + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++)
        total += argvlen[i];
    admin_call_t *call = malloc(total);
    if (call == NULL) {
        cb(data, NULL, "out of memory");
        return -1;
    }
    *call = (admin_call_t){c,    cb,
                           data, tg_now_ms() + c->cfg->redis->connect_timeout_ms,
                           argc, (const char **)(call + 1),
                           NULL};
    call->lens = (size_t *)(call->argv + argc);
    char *p = (char *)(call->lens + argc);
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], argvlen[i]);
        call->argv[i] = p;
        call->lens[i] = argvlen[i];
        p += argvlen[i];
    }
    c->pending++;
    admin_call_send(call);
    return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

tg_admin_redis_t *tg_admin_redis_open(char *err, size_t errlen)
{
    unsigned nworkers = 0;
    tg_admin_redis_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->cfg = tg_admin_thread_config(&nworkers)) == NULL) {
        snprintf(err, errlen, "%s", c == NULL ? "out of memory" : "not on the admin thread");
        free(c);
        return NULL;
    }
    if (c->cfg->redis == NULL) {
        snprintf(err, errlen, "redis not configured");
        goto fail;
    }
    /* Its own loop: the admin loop is running this action. Not a worker: the
     * id past the workers' keeps it out of their per-worker metrics. */
    c->base = event_base_new();
    c->rc = c->base != NULL ? tg_redis_new(c->cfg->redis, c->base, nworkers) : NULL;
    if (c->rc == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    bool expired = false;
    struct event *timer = evtimer_new(c->base, on_timer, &expired);
    struct timeval tv = tg_timeval_ms(2 * c->cfg->redis->connect_timeout_ms);
    if (timer != NULL)
        evtimer_add(timer, &tv);
    while (timer != NULL && !expired && !tg_redis_ready(c->rc))
        event_base_loop(c->base, EVLOOP_ONCE);
    if (timer != NULL)
        event_free(timer);
    if (tg_redis_ready(c->rc))
        return c;
    snprintf(err, errlen, "redis not connected");
fail:
    tg_admin_redis_close(c);
    return NULL;
}

void tg_admin_redis_wait(tg_admin_redis_t *c)
{
    while (c->pending > 0)
        event_base_loop(c->base, EVLOOP_ONCE);
}

void tg_admin_redis_close(tg_admin_redis_t *c)
{
    if (c == NULL)
        return;
    if (c->rc != NULL)
        tg_redis_free(c->rc);
    if (c->base != NULL)
        event_base_free(c->base);
    tg_config_unref(c->cfg);
    free(c);
}
