/*
 * tollgate public API: admin actions provided by plugins (API 2.8).
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

#endif
