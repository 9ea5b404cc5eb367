/*
 * tollgate public API: admin actions provided by plugins (API 2.8; 2.11: a
 * Redis connection for an action).
 *
 * A plugin may serve one POST path on the admin endpoint (the cache's
 * POST /cache/purge). The request passes the same checks as POST /reload
 * first (Host, admin token, no Origin, no body or Content-Type:
 * application/json, at most 1 KiB of body): the action only sees requests the
 * admin token rules let through. Actions run on the admin thread.
 */
#ifndef TOLLGATE_ADMIN_H
#define TOLLGATE_ADMIN_H

#include <stddef.h>

#include "tollgate/redis.h"

/* Longest answer an action may write (NUL included). */
#define TG_ADMIN_ACTION_OUT_MAX 4096

/* Serves one POST: body holds len bytes (not NUL-terminated; len may be 0).
 * Writes a JSON answer (NUL-terminated, at most TG_ADMIN_ACTION_OUT_MAX
 * bytes) into out and returns the HTTP status (200..599; anything else
 * answers 500). Called on the admin thread, never twice at once. */
typedef int (*tg_admin_action_fn)(void *data, const char *body, size_t len, char *out);

/* Serves POST path (starts with "/", at most 63 bytes, not a path of the
 * core's: /healthz, /readyz, /metrics, /config, /reload) with fn(data).
 * Thread-safe. Returns 0, or -1 when path is invalid or already served (by
 * another fn or data). */
int tg_admin_action_add(const char *path, tg_admin_action_fn fn, void *data);

/* Stops serving path for data. Returns only once no call of the action is
 * running, so data may be freed afterwards. Thread-safe; an unknown pair is
 * ignored. */
void tg_admin_action_remove(const char *path, void *data);

/* ---- API 2.11: Redis for an action ----
 * An action that must reach the top-level `redis:` (the cache's purge of its
 * Redis entries) opens a connection of its own on the admin thread: the
 * workers' connections belong to their threads. The connection follows the
 * same configuration (address, AUTH, SELECT, Sentinel, Cluster: each command
 * goes to the primary of its first key's slot) and lives for one action: the
 * action stays synchronous and blocks the admin thread (health checks and
 * scrapes included) while it waits, at most the connect timeout to open, and
 * per command the configured timeout. Only from an action (the admin
 * thread). */
typedef struct tg_admin_redis_s tg_admin_redis_t;

/* Connects (waiting until the connection is ready). NULL with a reason in err
 * (errlen bytes) when `redis:` is not configured or the connection failed. */
tg_admin_redis_t *tg_admin_redis_open(char *err, size_t errlen);

/* Sends argv as tg_redis_command() does; cb runs during tg_admin_redis_wait()
 * (and may send more). A command that meets "redis not connected" (a Cluster
 * primary still connecting) is sent again until the connect timeout has
 * passed. Returns 0, or -1 when cb was already called with an error. A call
 * cannot be cancelled. */
int tg_admin_redis_command(tg_admin_redis_t *c, tg_redis_cb_t cb, void *data, int argc,
                           const char **argv, const size_t *argvlen);

/* Runs the connection until every command sent (callbacks' included) has been
 * answered: each has the configured timeout, so this returns. */
void tg_admin_redis_wait(tg_admin_redis_t *c);

/* Closes; NULL is allowed. */
void tg_admin_redis_close(tg_admin_redis_t *c);

#endif
