/*
 * Sentinel discovery for a worker's Redis connection (redis.c).
 *
 * resolve: asks the configured Sentinels in turn (one short-lived connection,
 * AUTH when sentinel.password is set, SENTINEL get-master-addr-by-name) and
 * calls back once with the primary's address, or with an error once every
 * Sentinel failed. The caller bounds it in time (redis.c's connect timer) and
 * cancels it on timeout.
 *
 * watch: one long-lived connection per worker to a Sentinel, subscribed to
 * +switch-master; a switch of our master calls on_switch with the new
 * primary. A lost watch connection reconnects to the next Sentinel after
 * 1 s. Both run on the worker's event_base and never block.
 */
#ifndef TG_REDIS_SENTINEL_H
#define TG_REDIS_SENTINEL_H

#include <event2/event.h>

#include "redis.h"

typedef struct tg_redis_sentinel_s tg_redis_sentinel_t;

/* host is NULL on failure, with why set. */
typedef void (*tg_redis_sentinel_cb_t)(void *data, const char *host, int port, const char *why);

/* Starts the watch. on_resolved answers tg_redis_sentinel_resolve();
 * on_switch reports a +switch-master of conf->sentinel_master. */
tg_redis_sentinel_t *tg_redis_sentinel_new(const tg_redis_conf_t *conf, struct event_base *base,
                                           tg_redis_sentinel_cb_t on_resolved,
                                           tg_redis_sentinel_cb_t on_switch, void *data);
/* Starts a resolve (a running one is cancelled first). */
void tg_redis_sentinel_resolve(tg_redis_sentinel_t *s);
/* The running resolve, if any, will not call back. */
void tg_redis_sentinel_cancel(tg_redis_sentinel_t *s);
/* Closes both connections without callbacks. NULL is allowed. */
void tg_redis_sentinel_free(tg_redis_sentinel_t *s);

#endif
