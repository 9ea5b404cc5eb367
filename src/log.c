/* The error log (include/tollgate/log.h): one formatted line, one write. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tollgate/clock.h"

tg_log_level_t tg_log_level = TG_LOG_NOTICE;

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

/* Room for the request tail: worker, a route name, a 128-byte request id. */
#define TAIL_MAX 512

bool tg_log_enabled(tg_log_level_t level)
{
    /* Unsigned: a level outside the enum is never enabled, never an index. */
    return (unsigned)level <= (unsigned)tg_log_level;
}

/* Appends s[0..len) to out[*n..cap) with control characters as "\xNN", so
 * that a message is always one line; stops where the next byte does not fit. */
static void append_escaped(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ctl = (c < 0x20 && c != '\t') || c == 0x7f;
        if (*n + (ctl ? 4 : 1) > cap)
            return;
        if (ctl) {
            memcpy(out + *n, "\\x", 2);
            out[*n + 2] = hex[c >> 4];
            out[*n + 3] = hex[c & 15];
            *n += 4;
        } else {
            out[(*n)++] = (char)c;
        }
    }
}

/* "<time> [level] <message><tail>\n"; the tail (already escaped) is never cut. */
static void write_line(tg_log_level_t level, const char *tail, size_t tail_len, const char *fmt,
                       va_list ap)
{
    char msg[TG_LOG_LINE_MAX], line[TG_LOG_LINE_MAX];
    uint64_t now = tg_wall_us();
    time_t secs = (time_t)(now / 1000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int h = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(now % 1000000u / 1000u), level_names[level]);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = h < 0 ? 0 : (size_t)h;
    size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    append_escaped(line, sizeof(line) - 1 - tail_len, &n, msg, mlen);
    memcpy(line + n, tail, tail_len);
    n += tail_len;
    line[n++] = '\n';
    /* One write per line so that lines from several threads never interleave. */
    fwrite(line, 1, n, stderr);
    fflush(stderr);
}

void tg_log(tg_log_level_t level, const char *fmt, ...)
{
    if (!tg_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, "", 0, fmt, ap);
    va_end(ap);
}

void tg_request_log(const tg_request_t *r, tg_log_level_t level, const char *fmt, ...)
{
    if (!tg_log_enabled(level))
        return;
    size_t id_len;
    const char *id = tg_request_id(r, &id_len);
    const char *route = tg_request_route(r);
    char raw[TAIL_MAX], tail[TAIL_MAX];
    int k = snprintf(raw, sizeof(raw), " (worker %u, route %s, request %.*s)",
                     tg_request_worker_id(r), route != NULL ? route : "-", (int)id_len, id);
    size_t tail_len = 0;
    append_escaped(tail, sizeof(tail), &tail_len, raw,
                   k < 0                     ? 0
                   : (size_t)k < sizeof(raw) ? (size_t)k
                                             : sizeof(raw) - 1);
    va_list ap;
    va_start(ap, fmt);
    write_line(level, tail, tail_len, fmt, ap);
    va_end(ap);
}
