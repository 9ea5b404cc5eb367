/* The error log (include/tollgate/log.h): one formatted line, one write, to
 * stderr or the file `log.path` names, as text or JSON; repeated identical
 * warnings and errors are held back and counted. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tollgate/clock.h"

tg_log_level_t tg_log_level = TG_LOG_NOTICE;

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

/* Where lines go: 2 (stderr), or the file's descriptor (tg_log_set_output). */
static atomic_int log_fd = 2;
static atomic_bool log_json;

/* Room for the request tail: worker, a route name, a 128-byte request id. */
#define TAIL_MAX 512
/* Identical warnings and errors within this window are counted, not written. */
#define REPEAT_SLOTS 8
unsigned tg_log_repeat_window_ms = 10000;

bool tg_log_enabled(tg_log_level_t level)
{
    /* Unsigned: a level outside the enum is never enabled, never an index. */
    return (unsigned)level <= (unsigned)tg_log_level;
}

/* Appends s[0..len) to out[*n..cap) with control characters as "\xNN", so
 * that a message is always one line; stops where the next byte does not
 * fit. json: '"' and '\\' get a backslash too, and controls are "\u00NN". */
static void append_escaped(char *out, size_t cap, size_t *n, const char *s, size_t len, bool json)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ctl = (c < 0x20 && c != '\t') || c == 0x7f || (json && c == '\t');
        bool quote = json && (c == '"' || c == '\\');
        size_t need = ctl ? (json ? 6 : 4) : quote ? 2 : 1;
        if (*n + need > cap)
            return;
        if (ctl && json) {
            memcpy(out + *n, "\\u00", 4);
            out[*n + 4] = hex[c >> 4];
            out[*n + 5] = hex[c & 15];
        } else if (ctl) {
            memcpy(out + *n, "\\x", 2);
            out[*n + 2] = hex[c >> 4];
            out[*n + 3] = hex[c & 15];
        } else if (quote) {
            out[*n] = '\\';
            out[*n + 1] = (char)c;
        } else {
            out[*n] = (char)c;
        }
        *n += need;
    }
}

/* What identifies a request in its lines (tg_request_log). */
typedef struct {
    unsigned worker;
    const char *route; /* NULL: none */
    const char *id;
    size_t id_len;
} who_t;

/* ---- repeats ---- */

typedef struct {
    uint64_t hash;
    uint64_t since_ms;  /* the window's start: when the message was last written */
    unsigned long held; /* identical ones not written since */
} repeat_t;

/* Per thread: no lock on the path of a log line. */
static _Thread_local repeat_t repeats[REPEAT_SLOTS];

static uint64_t fnv(tg_log_level_t level, const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)level;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h | 1; /* 0 marks a free slot */
}

/* Whether to write the message now; *held: how many identical ones were held
 * back since it was last written (said in the line). */
static bool repeat_check(tg_log_level_t level, const char *msg, size_t n, unsigned long *held)
{
    *held = 0;
    if (level > TG_LOG_WARN)
        return true;
    uint64_t h = fnv(level, msg, n), now = tg_now_ms();
    repeat_t *oldest = &repeats[0];
    for (size_t i = 0; i < REPEAT_SLOTS; i++) {
        repeat_t *r = &repeats[i];
        if (r->hash == h) {
            if (now - r->since_ms < tg_log_repeat_window_ms) {
                r->held++;
                return false;
            }
            *held = r->held;
            r->held = 0;
            r->since_ms = now;
            return true;
        }
        if (r->since_ms < oldest->since_ms)
            oldest = r;
    }
    /* The slot given up loses its count: nothing identical came for the
     * longest time, and the next one starts a window of its own. */
    *oldest = (repeat_t){.hash = h, .since_ms = now};
    return true;
}

void tg_log_forget_repeats(void)
{
    memset(repeats, 0, sizeof(repeats));
}

/* ---- lines ---- */

static size_t put_time(char *line, size_t cap, tg_log_level_t level, bool json)
{
    uint64_t now = tg_wall_us();
    time_t secs = (time_t)(now / 1000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int h = snprintf(line, cap,
                     json ? "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\","
                            "\"msg\":\""
                          : "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(now % 1000000u / 1000u), level_names[level]);
    return h < 0 ? 0 : (size_t)h;
}

/* The tail: " (worker 1, route api, request 5f0c...)" in text, the fields
 * "worker", "route", "request_id" in JSON; escaped, never cut. */
static size_t put_tail(char *tail, const who_t *who, unsigned long held, bool json)
{
    char raw[TAIL_MAX];
    size_t n = 0;
    int k;
    if (json) {
        memcpy(tail, "\"", 1);
        n = 1;
        if (held > 0) {
            k = snprintf(raw, sizeof(raw), ",\"repeated\":%lu", held);
            memcpy(tail + n, raw, (size_t)k);
            n += (size_t)k;
        }
        if (who != NULL) {
            k = snprintf(raw, sizeof(raw), ",\"worker\":%u,\"route\":", who->worker);
            memcpy(tail + n, raw, (size_t)k);
            n += (size_t)k;
            if (who->route == NULL) {
                memcpy(tail + n, "null", 4);
                n += 4;
            } else {
                tail[n++] = '"';
                append_escaped(tail, TAIL_MAX - 200, &n, who->route, strlen(who->route), true);
                tail[n++] = '"';
            }
            memcpy(tail + n, ",\"request_id\":\"", 15);
            n += 15;
            append_escaped(tail, TAIL_MAX - 4, &n, who->id, who->id_len, true);
            tail[n++] = '"';
        }
        tail[n++] = '}';
        return n;
    }
    if (held > 0) {
        k = snprintf(raw, sizeof(raw), " (repeated %lu times)", held);
        memcpy(tail, raw, (size_t)k);
        n = (size_t)k;
    }
    if (who != NULL) {
        k = snprintf(raw, sizeof(raw), " (worker %u, route %s, request %.*s)", who->worker,
                     who->route != NULL ? who->route : "-", (int)who->id_len, who->id);
        append_escaped(tail, TAIL_MAX - 1, &n, raw,
                       k < 0                     ? 0
                       : (size_t)k < sizeof(raw) ? (size_t)k
                                                 : sizeof(raw) - 1,
                       false);
    }
    return n;
}

static void write_all(const char *p, size_t n)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_acquire);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to say it */
        p += w;
        n -= (size_t)w;
    }
}

static void write_line(tg_log_level_t level, const who_t *who, const char *fmt, va_list ap)
{
    char msg[TG_LOG_LINE_MAX], line[TG_LOG_LINE_MAX], tail[TAIL_MAX];
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    unsigned long held;
    if (!repeat_check(level, msg, mlen, &held))
        return;
    bool json = atomic_load_explicit(&log_json, memory_order_relaxed);
    size_t n = put_time(line, sizeof(line), level, json);
    size_t tail_len = put_tail(tail, who, held, json);
    append_escaped(line, sizeof(line) - 1 - tail_len, &n, msg, mlen, json);
    memcpy(line + n, tail, tail_len);
    n += tail_len;
    line[n++] = '\n';
    /* One write per line so that lines from several threads never interleave. */
    write_all(line, n);
}

void tg_log(tg_log_level_t level, const char *fmt, ...)
{
    if (!tg_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, NULL, fmt, ap);
    va_end(ap);
}

void tg_request_log(const tg_request_t *r, tg_log_level_t level, const char *fmt, ...)
{
    if (!tg_log_enabled(level))
        return;
    who_t who = {.worker = tg_request_worker_id(r), .route = tg_request_route(r)};
    who.id = tg_request_id(r, &who.id_len);
    va_list ap;
    va_start(ap, fmt);
    write_line(level, &who, fmt, ap);
    va_end(ap);
}

/* ---- destination ---- */

int tg_log_set_output(const char *path, bool json, char *err, size_t errlen)
{
    /* file_fd is ours: opened once, then re-pointed in place with dup2 and
     * never closed, so a thread that loaded it writes to one file or the
     * other, never to a closed or reused descriptor. */
    static int file_fd = -1;
    if (path == NULL || strcmp(path, "stderr") == 0) {
        atomic_store_explicit(&log_fd, 2, memory_order_release);
        if (file_fd >= 0)
            dup2(2, file_fd); /* let the old file go (rotated away, say) */
    } else {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            snprintf(err, errlen, "log: cannot open %s: %s", path, strerror(errno));
            return -1;
        }
        if (file_fd < 0) {
            file_fd = fd;
        } else {
            dup2(fd, file_fd);
            close(fd);
        }
        atomic_store_explicit(&log_fd, file_fd, memory_order_release);
    }
    atomic_store(&log_json, json);
    return 0;
}
