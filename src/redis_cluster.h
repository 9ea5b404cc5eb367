/*
 * Redis Cluster for a worker (redis.c): the slot map, one connection per
 * primary (each a tg_redis_t of its own, so timeouts, stalls and reconnects
 * work as for a single server), MOVED and ASK.
 *
 * The slot map comes from CLUSTER SLOTS, asked of any ready node (checked
 * every 100 ms): until it is known, every TG_REDIS_CLUSTER_REFRESH_MS, soon
 * after a MOVED, and every 500 ms while a primary of the map has no ready
 * connection (a replica may be taking over; noticed without traffic).
 *
 * A command goes to the primary of the slot of its key:
 * argv[1], or for EVAL/EVALSHA the first key (argv[3]); every key of one
 * command must share a hash tag (Redis refuses CROSSSLOT otherwise). MOVED
 * updates the slot and resends; ASK sends ASKING and the command to the
 * named node; at most TG_REDIS_CLUSTER_REDIRECTS redirects per command, each
 * attempt with the configured timeout. Nodes that left the map keep their
 * connection until the worker stops (a map change is rare; no churn).
 */
#ifndef TG_REDIS_CLUSTER_H
#define TG_REDIS_CLUSTER_H

#include <event2/event.h>
#include <stdbool.h>

#include "redis.h"

#define TG_REDIS_CLUSTER_REFRESH_MS 10000
#define TG_REDIS_CLUSTER_REDIRECTS 3
#define TG_REDIS_CLUSTER_MAX_NODES 64

typedef struct tg_redis_cluster_s tg_redis_cluster_t;

/* Called exactly once per tg_redis_cluster_send(), as tg_redis_cb_t is. */
typedef void (*tg_redis_cluster_done_t)(void *call, const struct redisReply *reply,
                                        const char *error);

tg_redis_cluster_t *tg_redis_cluster_new(const tg_redis_conf_t *conf, struct event_base *base,
                                         unsigned worker_id);
void tg_redis_cluster_free(tg_redis_cluster_t *cl);
/* Returns 0 when done will be called later, -1 when it was already called
 * (with an error: no slot map yet, node not connected, out of memory). */
int tg_redis_cluster_send(tg_redis_cluster_t *cl, tg_redis_cluster_done_t done, void *call,
                          int argc, const char **argv, const size_t *argvlen);
/* The slot map is known and at least one primary is ready. */
bool tg_redis_cluster_ready(const tg_redis_cluster_t *cl);
/* The Cluster slot of a key (CRC16 of its hash tag, mod 16384). */
unsigned tg_redis_cluster_slot(const char *key, size_t len);

#endif
