/*
 * Admin actions registered by plugins (include/tollgate/admin.h): the
 * admin thread's side.
 */
#ifndef TG_ADMIN_ACTION_H
#define TG_ADMIN_ACTION_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/admin.h"

/* Whether path (plen bytes, no query) is a registered action. */
bool tg_admin_action_exists(const char *path, size_t plen);

/* Runs the action for path: returns its status (500 for one out of range)
 * with out filled, or 0 when path is not (or no longer) registered. */
int tg_admin_action_run(const char *path, size_t plen, const char *body, size_t len, char *out);

#endif
