/*
 * tollgate public API: the worker's Redis connection (top-level `redis:`).
 *
 * One connection per worker (behind `sentinel:`, to the primary the Sentinels
 * name; with `cluster:`, one per primary, each command sent to the primary of
 * its key's slot: argv[1], or the first key of EVAL/EVALSHA, and all keys of
 * one command must share a hash tag), shared by every plugin, commands
 * pipelined, hiredis async on the worker's event loop. Each command has the configured
 * timeout; the callback is called exactly once on the worker thread (with the
 * reply, or with reply NULL and an error text), unless the call was cancelled
 * first. A plugin that pauses a request on a Redis call cancels the call from
 * a tg_request_on_cleanup() handler, so a client that leaves never leads to a
 * callback on a freed request.
 */
#ifndef TOLLGATE_REDIS_H
#define TOLLGATE_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/request.h"

struct redisReply;
typedef struct tg_redis_call_s tg_redis_call_t;

/* error is one of "redis not configured", "redis not connected", "timeout",
 * "connection lost", "shutdown", "out of memory" (reply NULL then); a Redis error reply is a
 * reply of type REDIS_REPLY_ERROR with error NULL. */
typedef void (*tg_redis_cb_t)(void *data, const struct redisReply *reply, const char *error);

/* Sends argv on the request's worker connection. Returns the call (for
 * tg_redis_cancel), or NULL when the callback was already called with an
 * error (not configured / not connected: no waiting for a dead Redis). */
tg_redis_call_t *tg_redis_command(tg_request_t *r, tg_redis_cb_t cb, void *data, int argc,
                                  const char **argv, const size_t *argvlen);

/* The callback of call will not be called. Safe until the callback ran. */
void tg_redis_cancel(tg_redis_call_t *call);

/* Whether the worker's connection is up right now (for fast fallbacks). */
bool tg_redis_connected(tg_request_t *r);

/* API 2.12: which keys may share one command. With `cluster:`, the Cluster
 * slot of key (0..16383, CRC16 of its hash tag): only keys of one slot may
 * share a command. Otherwise -1 (one server: any keys may), also when Redis is
 * not configured. */
int tg_redis_key_slot(tg_request_t *r, const char *key, size_t len);

#endif
