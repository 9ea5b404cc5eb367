/*
 * Every error of a config at once (bounded), instead of the first one only.
 *
 * A load that wants them all opens a collection on its thread
 * (tg_conf_errors_begin). Parsers then mark *recovery points*: places where
 * a failed step can be recorded and skipped without leaving anything half
 * read that a later step depends on (the next listener, upstream, route,
 * plugin entry, map key):
 *
 *     size_t mark = tg_conf_errors_mark();
 *     if (parse_route(...) < 0 && tg_conf_errors_recover(mark, err) < 0)
 *         return -1;
 *
 * recover() records err's message unless something deeper already recorded
 * the failure since the mark (so a message is never counted twice), and
 * returns 0 to say "go on"; without a collection it returns -1, and parsing
 * stops at the first error as before. The load fails at its end when
 * anything was recorded. Main thread only in practice; the state is
 * thread-local, so nothing is shared.
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
    size_t seen;  /* failures recovered from, duplicates included (the marks) */
} tg_conf_errors_t;

/* Collects into errs (zeroed here) until tg_conf_errors_end(). */
void tg_conf_errors_begin(tg_conf_errors_t *errs);
void tg_conf_errors_end(void);
/* Whether a collection is open on this thread. */
bool tg_conf_errors_collecting(void);

/* How many errors were recorded so far (0 without a collection). */
size_t tg_conf_errors_mark(void);
/* See above: 0 = recorded (or already recorded), go on; -1 = no collection. */
int tg_conf_errors_recover(size_t mark, const tg_conf_err_t *err);

/* Names what is being read ("plugin 'jwt' in route 'users'"), appended as
 * " [ctx]" to every message recorded until it is set back to NULL. ctx must
 * live until then. */
void tg_conf_errors_context(const char *ctx);
/* The same insertion into one message (for the error a failed step returns
 * when nothing collects). */
void tg_conf_err_annotate(tg_conf_err_t *err, const char *ctx);

#endif
