/*
 * Every error of a config at once (bounded), instead of the first one only.
 *
 * A load that wants them all opens a collection on its thread
 * (tg_conf_errors_begin). Parsers then mark *recovery points*: places where
 * a failed step can be recorded and skipped without leaving anything half
 * read that a later step depends on (the next listener, upstream, route,
 * plugin entry, map key):
 *
 *     if (parse_route(...) < 0 && tg_conf_errors_recover(err) < 0)
 *         return -1;
 *
 * recover() records err's message and returns 0 to say "go on"; a message
 * already recorded (the same failure seen again by an outer recovery point,
 * err still holding it) is not counted twice. Without a collection it
 * returns -1, and parsing stops at the first error as before. The load
 * fails at its end when anything was recorded. Main thread only in
 * practice; the state is thread-local, so nothing is shared.
 */
#ifndef TG_CONF_ERRORS_H
#define TG_CONF_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/conf.h"

/* Messages kept; later ones are counted only (a broken file must not flood
 * a terminal, and the first ones are what to fix first). */
#define TG_CONF_MAX_ERRORS 20

typedef struct {
    char msgs[TG_CONF_MAX_ERRORS][sizeof(((tg_conf_err_t *)0)->msg)];
    size_t n;     /* kept in msgs */
    size_t total; /* recorded, kept or not (identical messages once) */
    size_t seen;  /* recover() calls, duplicates included (tg_conf_errors_mark) */
    char last[sizeof(((tg_conf_err_t *)0)->msg)]; /* the latest recorded, kept or not */
} tg_conf_errors_t;

/* Collects into errs (zeroed here) until tg_conf_errors_end(). */
void tg_conf_errors_begin(tg_conf_errors_t *errs);
void tg_conf_errors_end(void);
/* Whether a collection is open on this thread. */
bool tg_conf_errors_collecting(void);

/* Grows with every recover() (0 without a collection): a caller compares two
 * marks to learn whether anything failed and was recorded in between. */
size_t tg_conf_errors_mark(void);
/* See above: 0 = recorded (or already recorded), go on; -1 = no collection. */
int tg_conf_errors_recover(const tg_conf_err_t *err);

/* Names what is being read ("plugin 'jwt' in route 'users'"), appended as
 * " [ctx]" to every message recorded until it is set back to NULL. ctx must
 * live until then. */
void tg_conf_errors_context(const char *ctx);
/* The same insertion into one message (for the error a failed step returns
 * when nothing collects). */
void tg_conf_err_annotate(tg_conf_err_t *err, const char *ctx);

#endif
