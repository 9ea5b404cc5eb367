/* The gateway's own error log (stderr): the core side of include/tollgate/log.h,
 * "2026-11-23T13:37:55.123Z [level] message". */
#ifndef TG_LOG_H
#define TG_LOG_H

#include "tollgate/log.h"

/* Set once by main before any thread starts; read by every thread. */
extern tg_log_level_t tg_log_level;

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
