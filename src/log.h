/* The gateway's own error log (stderr): the core side of include/tollgate/log.h,
 * "2026-11-23T13:37:55.123Z [level] message". */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/log.h"

/* Set by main before any thread starts (and by a reload's `log.level`, unless
 * -l was given); read by every thread. */
extern tg_log_level_t tg_log_level;

/* Where lines go: path NULL or "stderr", or a file (opened for appending,
 * created 0640; reopened in place when called again with its path, as after
 * SIGUSR1), and whether lines are JSON objects ({"time", "level", "msg", and
 * for a request "worker", "route", "request_id"; "repeated" when identical
 * lines were held back}) instead of text. Main thread. Returns 0, or -1 with
 * err filled, changing nothing. */
int tg_log_set_output(const char *path, bool json, char *err, size_t errlen);

/* Repeated identical warnings and errors from one thread within 10 s are
 * held back and counted; the next one written after the window says
 * "(repeated N times)". Tests forget the thread's history with this. */
void tg_log_forget_repeats(void);
extern unsigned tg_log_repeat_window_ms; /* 10000; tests shorten it */

#define tg_log_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)
#define tg_log_warn(...) tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_log_notice(...) tg_log(TG_LOG_NOTICE, __VA_ARGS__)
#define tg_log_info(...)                      \
    do {                                      \
        if (tg_log_level >= TG_LOG_INFO)      \
            tg_log(TG_LOG_INFO, __VA_ARGS__); \
    } while (0)
#define tg_log_debug(...)                      \
    do {                                       \
        if (tg_log_level >= TG_LOG_DEBUG)      \
            tg_log(TG_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
