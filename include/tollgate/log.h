/*
 * tollgate public API: the gateway's error log.
 *
 * One line per call, in the core's own format, on stderr or the file the
 * config's `log.path` names (reopened on SIGUSR1):
 *
 *     2026-11-23T13:37:55.123Z [warn] rate-limit: redis unavailable (timeout)
 *
 * or, with `log.format: json`, one JSON object per line:
 *
 *     {"time":"2026-11-23T13:37:55.123Z","level":"warn","msg":"rate-limit: ..."}
 *
 * The time is UTC wall clock with milliseconds. Each line is written with one
 * write, so lines from worker threads, plugin threads and the core never
 * interleave; tg_log() may be called from any thread, tg_request_log() from
 * the request's worker (below). A message longer
 * than TG_LOG_LINE_MAX bytes is cut. Control characters in the message (CR,
 * LF, NUL, other bytes below 0x20 but HTAB, and DEL) are written as "\xNN"
 * ("\u00NN" in JSON), so a value quoted from a request can never start a
 * line of its own. Messages below the level chosen (`log.level`, or
 * `tollgate --log-level`, which wins; notice by default) are dropped before
 * they are formatted. A warning or error identical to one the same thread
 * wrote less than 10 s ago is not written but counted; the next one written
 * after that says "(repeated N times)" (JSON: "repeated": N), so a failing
 * backend costs one line per thread per 10 s, not one per request.
 */
#ifndef TOLLGATE_LOG_H
#define TOLLGATE_LOG_H

#include <stdbool.h>

#include "tollgate/request.h"

/* Most severe first; the default level is TG_LOG_NOTICE. */
typedef enum {
    TG_LOG_ERROR = 0, /* something failed and nobody else will say so */
    TG_LOG_WARN,      /* degraded, e.g. a backend unavailable, a fallback in use */
    TG_LOG_NOTICE,    /* normal but significant: started, reloaded, recovered */
    TG_LOG_INFO,      /* per-event detail an operator may want while debugging */
    TG_LOG_DEBUG,
} tg_log_level_t;

/* Longest line written, its newline included. */
#define TG_LOG_LINE_MAX 2048

/* Whether a message at level would be written: lets a caller skip costly
 * arguments. */
bool tg_log_enabled(tg_log_level_t level);

/* "<time> [level] <message>". */
void tg_log(tg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same line, for a message about request r, ending with what identifies
 * the request: " (worker 1, route api, request 5f0c...)" (JSON: "worker",
 * "route", "request_id"; the route null when none). The route is "-"
 * before routing and when no route matched; the request id is the one the
 * client and the upstream see (X-Request-Id). Call it on r's worker thread
 * while r is alive (from a hook, or a callback of tg_fetch / tg_redis_command
 * started for r). */
void tg_request_log(const tg_request_t *r, tg_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
