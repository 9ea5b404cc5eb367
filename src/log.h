/* The gateway's own error log (stderr): "2026-11-23T13:37:55.123Z [level] message". */
#ifndef TG_LOG_H
#define TG_LOG_H

typedef enum {
    TG_LOG_ERROR = 0,
    TG_LOG_WARN,
    TG_LOG_NOTICE,
    TG_LOG_INFO,
    TG_LOG_DEBUG
} tg_log_level_t;

extern tg_log_level_t tg_log_level;

void tg_log(tg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
