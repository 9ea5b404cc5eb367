/*
 * request-log: one JSON object per request, one per line (JSON Lines), with
 * the keys listed in `fields`, in that order.
 *
 *   plugins:
 *     - name: request-log
 *       config:
 *         path: /var/log/tollgate/access.log   # or "stdout"
 *         fields: [time, request_id, status]   # default: DEFAULT_FIELDS
 *
 * The event loop never waits on the disk: each worker formats lines into its
 * own buffer and hands full buffers (and, every FLUSH_MS, partial ones) to the
 * instance's writer thread (log_writer.c). Headers are never logged, except
 * User-Agent when `user_agent` is asked for: credentials travel in headers.
 * Credentials that travel elsewhere are masked: a query parameter (or
 * header) that a plugin marked as one (tg_sensitive_add, e.g. the jwt
 * plugin's `query:` sources) is logged as `name=***`. The connection's TLS
 * facts (`tls_version`, `tls_cipher`, `sni`, `alpn`; null when plain) are
 * read from what the core recorded at the handshake.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log_writer.h"
#include "tollgate/plugin.h"
#include "tollgate/trace.h"

/* A partial buffer waits at most this long before it is written, so that
 * `tail -f` keeps up with a quiet gateway. The timer is armed by the first
 * line of a buffer only: an idle worker does not wake up for nothing. */
#define FLUSH_MS 200
/* Bytes queued for the writer beyond which lines are dropped (and counted):
 * a stuck disk must cost memory boundedly, never latency. */
#define MAX_QUEUED ((size_t)64 * 1024 * 1024)
/* A buffer is handed over when less than this is left in it (most lines
 * are a few hundred bytes), so that appending rarely grows it. */
#define HEADROOM 4096

typedef enum {
    F_TIME,
    F_REQUEST_ID,
    F_CLIENT_IP,
    F_METHOD,
    F_PATH,
    F_STATUS,
    F_BYTES_IN,
    F_BYTES_OUT,
    F_DURATION_MS,
    F_UPSTREAM_MS,
    F_UPSTREAM_ADDR,
    F_RETRIES,
    F_ROUTE,
    F_SUBJECT,
    F_TRACE_ID,
    F_SPAN_ID,
    /* not logged unless listed */
    F_QUERY,
    F_HOST,
    F_USER_AGENT,
    F_UPSTREAM,
    F_AUTH_ERROR,
    F_RATE_LIMIT,
    F_PROFILE,
    F_UPSTREAM_PATH,
    F_CONSUMER,
    F_PROTOCOL,
    F_TLS_VERSION,
    F_TLS_CIPHER,
    F_SNI,
    F_ALPN,
    F_COUNT,
} field_t;

#define DEFAULT_FIELDS (F_SPAN_ID + 1)

/* Each field's name as it appears in a line, `,"name":`, and its length:
 * the name itself is key + 2, key_len - 4 bytes. */
#define KEY(name)                          \
    {                                      \
        ",\"" name "\":", sizeof(name) + 3 \
    }
static const struct {
    const char *key;
    uint8_t key_len;
} field_keys[F_COUNT] = {
    [F_TIME] = KEY("time"),
    [F_REQUEST_ID] = KEY("request_id"),
    [F_CLIENT_IP] = KEY("client_ip"),
    [F_METHOD] = KEY("method"),
    [F_PATH] = KEY("path"),
    [F_STATUS] = KEY("status"),
    [F_BYTES_IN] = KEY("bytes_in"),
    [F_BYTES_OUT] = KEY("bytes_out"),
    [F_DURATION_MS] = KEY("duration_ms"),
    [F_UPSTREAM_MS] = KEY("upstream_ms"),
    [F_UPSTREAM_ADDR] = KEY("upstream_addr"),
    [F_RETRIES] = KEY("retries"),
    [F_ROUTE] = KEY("route"),
    [F_SUBJECT] = KEY("subject"),
    [F_TRACE_ID] = KEY("trace_id"),
    [F_SPAN_ID] = KEY("span_id"),
    [F_QUERY] = KEY("query"),
    [F_HOST] = KEY("host"),
    [F_USER_AGENT] = KEY("user_agent"),
    [F_UPSTREAM] = KEY("upstream"),
    [F_AUTH_ERROR] = KEY("auth_error"),
    [F_RATE_LIMIT] = KEY("rate_limit"),
    [F_PROFILE] = KEY("profile"),
    [F_UPSTREAM_PATH] = KEY("upstream_path"),
    [F_CONSUMER] = KEY("consumer"),
    [F_PROTOCOL] = KEY("protocol"),
    [F_TLS_VERSION] = KEY("tls_version"),
    [F_TLS_CIPHER] = KEY("tls_cipher"),
    [F_SNI] = KEY("sni"),
    [F_ALPN] = KEY("alpn"),
};
#undef KEY

/* Request variables behind fields (include/tollgate/request.h). */
static const char *const field_vars[F_COUNT] = {
    [F_AUTH_ERROR] = "auth.error",
    [F_RATE_LIMIT] = "rate_limit.decision",
    [F_PROFILE] = "shape.profile",
};

typedef struct {
    uint8_t fields[F_COUNT]; /* field_t, in output order */
    size_t nfields;
    tg_reqlog_writer_t *writer;
    tg_metrics_t *metrics;
    int dropped_id; /* counter id, -1 without a registry */
} reqlog_t;

typedef struct {
    reqlog_t *rl;
    unsigned worker_id;
    struct event *timer;
    bool armed;           /* timer pending */
    tg_reqlog_buf_t *buf; /* lines not handed over yet; NULL after a failed allocation */
} reqlog_worker_t;

/* One value of a line: a string (p == NULL: null) or, for variables set as
 * integers, a number. */
typedef struct {
    const char *p;
    size_t len;
    bool is_int;
    int64_t i;
} value_t;

/* What a line is made of, gathered from the request (or by a test). */
typedef struct {
    tg_request_stats_t st;
    int status;
    value_t v[F_COUNT]; /* string fields */
} record_t;

/* ---- JSON text (RFC 8259) ------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 section 4: no
 * overlong forms, no surrogates, nothing past U+10FFFF), 0 when there is none. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4;
    else
        return 0;
    if (s[0] == 0xE0)
        lo = 0xA0;
    else if (s[0] == 0xED)
        hi = 0x9F;
    else if (s[0] == 0xF0)
        lo = 0x90;
    else if (s[0] == 0xF4)
        hi = 0x8F;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

/* Escapes s as the inside of a JSON string (RFC 8259 section 7) into out,
 * which holds 6 n bytes (the most it can grow); returns the length. Runs of
 * plain ASCII are copied at once. Quote and backslash get a
 * backslash, control characters and DEL become \u00XX, well-formed UTF-8 is
 * kept and every byte that is not part of it becomes \ufffd, so that any
 * input yields valid JSON in valid UTF-8. */
static size_t json_escape(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x7F && u[run] != '"' && u[run] != '\\')
            run++;
        memcpy(out + o, s + i, run - i);
        o += run - i;
        if ((i = run) == n)
            break;
        unsigned char c = u[i];
        size_t k = 1;
        if (c == '"' || c == '\\') {
            out[o] = '\\';
            out[o + 1] = (char)c;
            o += 2;
        } else if (c < 0x20 || c == 0x7F) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else if ((k = utf8_seq_len(u + i, n - i)) > 0) {
            memcpy(out + o, s + i, k);
            o += k;
        } else {
            k = 1;
            memcpy(out + o, "\\ufffd", 6);
            o += 6;
        }
        i += k;
    }
    return o;
}

/* What json_escape writes for s, counted. */
static size_t escaped_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t k = 1;
        if (c == '"' || c == '\\')
            o += 2;
        else if (c < 0x20 || c == 0x7F)
            o += 6;
        else if (c < 0x80)
            o++;
        else if ((k = utf8_seq_len(u + i, n - i)) > 0)
            o += k;
        else
            o += 6, k = 1;
        i += k;
    }
    return o;
}

/* RFC 3339 section 5.6 date-time in UTC with milliseconds:
 * "2026-11-23T13:37:55.123Z". out holds at least 32 bytes; returns the length. */
static size_t format_time(char *out, uint64_t us)
{
    /* The "YYYY-MM-DDTHH:MM:SS" part changes once a second: each worker
     * thread keeps its last one (gmtime_r + snprintf per line showed in the
     * benchmark's profile). */
    static _Thread_local time_t cached_secs = -1;
    static _Thread_local char cached[24];
    time_t secs = (time_t)(us / 1000000);
    if (secs != cached_secs) {
        struct tm tm;
        if (gmtime_r(&secs, &tm) == NULL)
            memset(&tm, 0, sizeof(tm));
        int n = snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (n != 19)
            return 0;
        cached_secs = secs;
    }
    unsigned ms = (unsigned)(us / 1000 % 1000);
    memcpy(out, cached, 19);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = '\0';
    return 24;
}

/* Decimal digits of v without printf, NUL-terminated; out holds at least 21 bytes. */
static size_t format_u64(char *out, uint64_t v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

/* Microseconds as milliseconds with three decimals, in integers so that no
 * float rounding shows: 1234567 -> "1234.567". */
static size_t format_ms(char *out, uint64_t us)
{
    size_t n = format_u64(out, us / 1000);
    unsigned frac = (unsigned)(us % 1000);
    out[n] = '.';
    out[n + 1] = (char)('0' + frac / 100);
    out[n + 2] = (char)('0' + frac / 10 % 10);
    out[n + 3] = (char)('0' + frac % 10);
    out[n + 4] = '\0';
    return n + 4;
}

/* ---- lines --------------------------------------------------------------- */

static int reserve(tg_reqlog_buf_t *b, size_t n)
{
    return b->cap - b->len >= n ? 0 : tg_reqlog_buf_reserve(b, n);
}

static int put(tg_reqlog_buf_t *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int put_string(tg_reqlog_buf_t *b, const value_t *v)
{
    char num[32];
    if (v->is_int) {
        size_t neg = v->i < 0;
        num[0] = '-';
        uint64_t mag = neg ? 0 - (uint64_t)v->i : (uint64_t)v->i;
        return put(b, num, neg + format_u64(num + neg, mag));
    }
    if (v->p == NULL)
        return put(b, "null", 4);
    /* Room for the most it can grow when the buffer has it (the usual case);
     * otherwise exactly what it needs, so that a buffer grows only for a line
     * larger than itself (line_added hands buffers over at their size). */
    size_t free_bytes = b->cap - b->len;
    size_t room =
        free_bytes >= 2 && v->len <= (free_bytes - 2) / 6 ? 6 * v->len : escaped_len(v->p, v->len);
    if (reserve(b, room + 2) < 0)
        return -1;
    b->data[b->len] = '"';
    size_t n = json_escape(b->data + b->len + 1, v->p, v->len);
    b->data[b->len + 1 + n] = '"';
    b->len += n + 2;
    return 0;
}

static int put_value(tg_reqlog_buf_t *b, field_t f, const record_t *rec)
{
    char num[32];
    size_t n;
    switch (f) {
    case F_TIME:
        num[0] = '"';
        n = format_time(num + 1, rec->st.start_us);
        num[n + 1] = '"';
        return put(b, num, n + 2);
    case F_STATUS:
        return put(b, num, format_u64(num, rec->status > 0 ? (uint64_t)rec->status : 0));
    case F_BYTES_IN:
        return put(b, num, format_u64(num, rec->st.bytes_in));
    case F_BYTES_OUT:
        return put(b, num, format_u64(num, rec->st.bytes_out));
    case F_DURATION_MS:
        return put(b, num, format_ms(num, rec->st.duration_us));
    case F_UPSTREAM_MS:
        if (rec->st.upstream_us < 0)
            return put(b, "null", 4);
        return put(b, num, format_ms(num, (uint64_t)rec->st.upstream_us));
    default:
        return put_string(b, &rec->v[f]);
    }
}

/* Appends one line; on failure (out of memory) b is left as it was. */
static int format_line(tg_reqlog_buf_t *b, const reqlog_t *rl, const record_t *rec)
{
    size_t start = b->len;
    int rc = put(b, "{", 1);
    for (size_t i = 0; i < rl->nfields && rc == 0; i++) {
        field_t f = rl->fields[i];
        size_t skip = i == 0; /* no comma before the first */
        rc = put(b, field_keys[f].key + skip, field_keys[f].key_len - skip);
        rc = rc ? rc : put_value(b, f, rec);
    }
    rc = rc ? rc : put(b, "}\n", 2);
    if (rc < 0) {
        b->len = start;
        return -1;
    }
    b->lines++;
    return 0;
}

/* ---- gathering a record from the request --------------------------------- */

static value_t str_value(const char *p, size_t len)
{
    return (value_t){.p = p, .len = p ? len : 0};
}

static value_t cstr_value(const char *p)
{
    return str_value(p, p ? strlen(p) : 0);
}

static value_t var_value(const tg_request_t *r, const char *key)
{
    size_t len = 0;
    const char *s = tg_request_var_str(r, key, &len);
    if (s != NULL)
        return str_value(s, len);
    value_t v = {0};
    v.is_int = tg_request_var_int(r, key, &v.i);
    return v;
}

/* A header's value, or "***" when a plugin marked the header as a credential. */
static value_t header_value(const tg_request_t *r, const char *name, const char *p, size_t len)
{
    if (p != NULL && tg_request_sensitive(r, TG_SENSITIVE_HEADER, name, strlen(name)))
        return str_value("***", 3);
    return str_value(p, len);
}

/* Whether the parameter q[at, stop) has a value and a name marked as a
 * credential; *name_len is the length of its name. */
static bool param_sensitive(const tg_request_t *r, const char *q, size_t at, size_t stop,
                            size_t *name_len)
{
    const char *eq = memchr(q + at, '=', stop - at);
    *name_len = eq ? (size_t)(eq - (q + at)) : stop - at;
    return eq != NULL && tg_request_sensitive(r, TG_SENSITIVE_QUERY, q + at, *name_len);
}

/* End of the "&"-separated parameter that starts at q[at]. */
static size_t param_end(const char *q, size_t len, size_t at)
{
    const char *amp = memchr(q + at, '&', len - at);
    return amp ? (size_t)(amp - q) : len;
}

/* The client's query with the value of every credential parameter replaced
 * by "***"; the query itself (no copy) when it has none. */
static value_t query_value(tg_request_t *r)
{
    size_t len, nl, at, stop;
    const char *q = tg_request_client_query(r, &len);
    bool any = false;
    for (at = 0; q != NULL && !any && at <= len; at = stop + 1) {
        stop = param_end(q, len, at);
        any = param_sensitive(r, q, at, stop, &nl);
    }
    if (!any)
        return str_value(q, len);
    /* A masked value grows by 3 bytes at most ("=" -> "=***"), and every
     * parameter with a value takes 2 bytes at least ("=" and "&"). */
    char *out = tg_arena_alloc(tg_request_arena(r), len + 3 * (len / 2 + 1));
    size_t o = 0;
    for (at = 0; at <= len; at = stop + 1) {
        stop = param_end(q, len, at);
        if (at > 0)
            out[o++] = '&';
        if (param_sensitive(r, q, at, stop, &nl)) {
            memcpy(out + o, q + at, nl);
            memcpy(out + o + nl, "=***", 4);
            o += nl + 4;
        } else {
            memcpy(out + o, q + at, stop - at);
            o += stop - at;
        }
    }
    return str_value(out, o);
}

/* The path that went upstream: null when no upstream was asked. */
static value_t upstream_path_value(const tg_request_t *r)
{
    size_t len = 0;
    if (tg_request_upstream_addr(r) == NULL)
        return (value_t){0};
    const char *p = tg_request_path(r, &len);
    return str_value(p, len);
}

/* The W3C trace id and the gateway's span id (null for a head rejected
 * before routing, which has none). */
static value_t trace_value(tg_request_t *r, bool trace)
{
    char tid[33], sid[17];
    if (!tg_request_trace_ids(r, tid, sid))
        return (value_t){0};
    const char *v = trace ? tid : sid;
    size_t n = trace ? 32 : 16;
    return str_value(tg_arena_strndup(tg_request_arena(r), v, n), n);
}

static value_t request_value(tg_request_t *r, field_t f)
{
    size_t len = 0;
    const char *p = NULL;
    switch (f) {
    case F_REQUEST_ID:
        p = tg_request_id(r, &len);
        break;
    case F_METHOD:
        p = tg_request_method(r, &len);
        break;
    case F_PATH:
        p = tg_request_client_path(r, &len);
        break;
    case F_UPSTREAM_PATH:
        return upstream_path_value(r);
    case F_PROTOCOL:
        p = tg_request_protocol(r);
        len = strlen(p);
        break;
    case F_QUERY:
        return query_value(r);
    case F_HOST:
        p = tg_request_host(r, &len);
        return header_value(r, "Host", p, len);
    case F_USER_AGENT:
        p = tg_request_header(r, "User-Agent", &len);
        return header_value(r, "User-Agent", p, len);
    case F_CLIENT_IP:
        return cstr_value(tg_request_client_ip(r));
    case F_ROUTE:
        return cstr_value(tg_request_route(r));
    case F_UPSTREAM:
        return cstr_value(tg_request_upstream(r));
    case F_UPSTREAM_ADDR:
        return cstr_value(tg_request_upstream_addr(r));
    case F_RETRIES: /* null when no upstream was asked, as upstream_addr */
        if (tg_request_upstream_addr(r) == NULL)
            return (value_t){0};
        return (value_t){.is_int = true, .i = tg_request_retries(r)};
    case F_SUBJECT:
        p = tg_request_subject(r, &len);
        break;
    case F_CONSUMER:
        p = tg_request_consumer(r, &len);
        break;
    case F_TRACE_ID:
    case F_SPAN_ID:
        return trace_value(r, f == F_TRACE_ID);
    /* The connection's TLS facts: null on a plain connection. */
    case F_TLS_VERSION:
        return cstr_value(tg_request_tls_version(r));
    case F_TLS_CIPHER:
        return cstr_value(tg_request_tls_cipher(r));
    case F_SNI:
        return cstr_value(tg_request_tls_sni(r));
    case F_ALPN:
        return cstr_value(tg_request_tls_alpn(r));
    default:
        if (field_vars[f] != NULL)
            return var_value(r, field_vars[f]);
        return (value_t){0};
    }
    return str_value(p, len);
}

static void gather(tg_request_t *r, const reqlog_t *rl, record_t *rec)
{
    tg_request_stats(r, &rec->st);
    int status = tg_response_status(r);
    rec->status = status > 0 ? status : 0;
    for (size_t i = 0; i < rl->nfields; i++)
        rec->v[rl->fields[i]] = request_value(r, rl->fields[i]);
}

/* ---- per worker ---------------------------------------------------------- */

/* Hands the worker's lines to the writer and counts what was lost. */
static void flush(reqlog_worker_t *w)
{
    if (w->buf == NULL || w->buf->lines == 0)
        return;
    uint64_t dropped = 0;
    w->buf = tg_reqlog_writer_push(w->rl->writer, w->buf, &dropped);
    if (dropped > 0 && w->rl->dropped_id >= 0)
        tg_metrics_add_worker(w->rl->metrics, w->worker_id, w->rl->dropped_id, 0, dropped);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reqlog_worker_t *w = arg;
    w->armed = false;
    flush(w);
}

/* After a line was added: hand a full buffer over, or make sure the timer
 * will hand it over soon. */
static void line_added(reqlog_worker_t *w)
{
    if (w->buf->cap - w->buf->len < HEADROOM)
        flush(w);
    if (!w->armed && w->buf != NULL && w->buf->lines > 0) {
        struct timeval tv = tg_timeval_ms(FLUSH_MS);
        w->armed = evtimer_add(w->timer, &tv) == 0;
    }
}

static void *reqlog_worker_init(void *instance, struct event_base *base, unsigned worker_id)
{
    reqlog_worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->rl = instance;
    w->worker_id = worker_id;
    w->buf = tg_reqlog_buf_new(TG_REQLOG_BUF_SIZE);
    w->timer = evtimer_new(base, tick_cb, w);
    if (w->timer == NULL) {
        tg_reqlog_buf_free(w->buf);
        free(w);
        return NULL;
    }
    return w;
}

static void reqlog_worker_fini(void *instance, void *worker)
{
    (void)instance;
    reqlog_worker_t *w = worker;
    if (w == NULL)
        return;
    event_free(w->timer);
    flush(w);
    tg_reqlog_buf_free(w->buf);
    free(w);
}

static void count_lost(reqlog_worker_t *w, uint64_t n)
{
    if (w->rl->dropped_id >= 0)
        tg_metrics_add_worker(w->rl->metrics, w->worker_id, w->rl->dropped_id, 0, n);
}

static void reqlog_log(tg_request_t *r, const tg_filter_t *f)
{
    reqlog_worker_t *w = f->worker;
    if (w == NULL)
        return; /* worker_init failed (out of memory) */
    if (w->buf == NULL && (w->buf = tg_reqlog_buf_new(TG_REQLOG_BUF_SIZE)) == NULL) {
        count_lost(w, 1);
        return;
    }
    record_t rec;
    gather(r, w->rl, &rec);
    if (format_line(w->buf, w->rl, &rec) < 0)
        count_lost(w, 1);
    line_added(w);
}

/* ---- config -------------------------------------------------------------- */

/* fields: into rl->fields and rl->nfields (out is the whole reqlog_t). */
static int parse_fields(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    reqlog_t *rl = out;
    if (n->type != TG_CONF_SEQ || n->count == 0)
        return tg_conf_error(err, n, "fields: expected a non-empty list of field names");
    bool seen[F_COUNT] = {false};
    for (size_t i = 0; i < n->count; i++) {
        const char *name;
        if (tg_conf_get_string(n->items[i], &name, err) < 0)
            return -1;
        size_t f = 0;
        while (f < F_COUNT &&
               (strlen(name) != field_keys[f].key_len - 4u ||
                memcmp(field_keys[f].key + 2, name, field_keys[f].key_len - 4u) != 0))
            f++;
        if (f == F_COUNT)
            return tg_conf_error(err, n->items[i], "unknown request-log field '%s'", name);
        if (seen[f]) /* a JSON object with a key twice is ambiguous (RFC 8259 section 4) */
            return tg_conf_error(err, n->items[i], "field '%s' listed twice", name);
        seen[f] = true;
        rl->fields[rl->nfields++] = (uint8_t)f;
    }
    return 0;
}

static void default_fields(reqlog_t *rl)
{
    for (size_t f = 0; f < DEFAULT_FIELDS; f++)
        rl->fields[f] = (uint8_t)f;
    rl->nfields = DEFAULT_FIELDS;
}

/* tollgate -t: the file could be opened for appending (it is writable, or
 * it is absent and its directory is writable), without creating it. */
static int check_log(const tg_conf_node_t *n, const char *full, tg_conf_err_t *err)
{
    if (access(full, F_OK) == 0)
        return access(full, W_OK) == 0
                   ? 0
                   : tg_conf_error(err, n, "cannot open log file %s: %s", full, strerror(errno));
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", full);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (access(dir, W_OK) != 0)
        return tg_conf_error(err, n, "cannot open log file %s: %s", full, strerror(errno));
    return 0;
}

/* Opens path (relative to the config's directory); returns the fd or -1.
 * check_only: returns 0 (not a descriptor) when it could be opened. */
static int open_log(const tg_conf_node_t *n, const char *dir, bool check_only, char *full,
                    size_t fullsz, tg_conf_err_t *err)
{
    const char *path;
    if (tg_conf_get_string(n, &path, err) < 0)
        return -1;
    if (path[0] == '\0')
        return tg_conf_error(err, n, "path: empty");
    int len = path[0] == '/' || dir == NULL ? snprintf(full, fullsz, "%s", path)
                                            : snprintf(full, fullsz, "%s/%s", dir, path);
    if (len < 0 || (size_t)len >= fullsz)
        return tg_conf_error(err, n, "path: too long");
    if (check_only)
        return check_log(n, full, err);
    int fd = open(full, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return tg_conf_error(err, n, "cannot open log file %s: %s", full, strerror(errno));
    return fd;
}

/* What the config map holds, before the file is opened. */
typedef struct {
    reqlog_t *rl;
    const tg_conf_node_t *path;
} reqlog_keys_t;

static int read_fields(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    return parse_fields(n, *(reqlog_t **)out, err);
}

static const tg_conf_field_t conf_fields[] = {
    {"path", TG_CONF_FIELD_NODE, TG_CONF_AT(reqlog_keys_t, path), .flags = TG_CONF_REQUIRED,
     .help = "a file or \"stdout\""},
    {"fields", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(reqlog_keys_t, rl), .parse = read_fields},
    TG_CONF_END,
};

static int reqlog_create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **instance,
                         tg_conf_err_t *err)
{
    reqlog_t *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return tg_conf_error(err, node, "out of memory");
    rl->dropped_id = -1;
    reqlog_keys_t keys = {.rl = rl};
    if (tg_conf_read(node, conf_fields, NULL, &keys, err) < 0)
        goto fail;
    if (rl->nfields == 0)
        default_fields(rl);
    const tg_conf_node_t *path = keys.path;
    bool to_stdout = path->type == TG_CONF_SCALAR && strcmp(path->value, "stdout") == 0;
    char full[PATH_MAX];
    int fd = to_stdout ? STDOUT_FILENO
                       : open_log(path, env->config_dir, env->check_only, full, sizeof(full), err);
    if (fd < 0)
        goto fail;
    if (env->check_only) { /* checked: nothing to write to */
        *instance = rl;
        return 0;
    }
    rl->writer = tg_reqlog_writer_start(fd, to_stdout ? NULL : full, MAX_QUEUED);
    if (rl->writer == NULL) {
        if (!to_stdout)
            close(fd);
        tg_conf_error(err, node, "request-log: cannot start the writer thread");
        goto fail;
    }
    if (env->metrics != NULL) {
        rl->metrics = env->metrics;
        rl->dropped_id = tg_metrics_counter(
            env->metrics, "tollgate_request_log_dropped_total",
            "Request log lines lost: the writer fell behind or the file refused them", NULL, NULL,
            0);
    }
    *instance = rl;
    return 0;
fail:
    tg_reqlog_writer_destroy(rl->writer);
    free(rl);
    return -1;
}

static void reqlog_destroy(void *instance)
{
    reqlog_t *rl = instance;
    tg_reqlog_writer_destroy(rl->writer);
    free(rl);
}

static void reqlog_reopen(void *instance)
{
    reqlog_t *rl = instance;
    tg_reqlog_writer_reopen(rl->writer);
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "request-log",
    .version = TG_VERSION,
    .create = reqlog_create,
    .destroy = reqlog_destroy,
    .worker_init = reqlog_worker_init,
    .worker_fini = reqlog_worker_fini,
    .log = reqlog_log,
    .reopen = reqlog_reopen,
};
