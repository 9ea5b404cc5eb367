/*
 * An out-of-tree plugin, built only against include/tollgate/ (the same
 * install headers a third party gets), used by the chain integration tests.
 *
 *   - name: sample
 *     path: <build>/tests/plugins/sample.so
 *     config:
 *       tag: a                 # appended to request header X-Chain and response header X-Chain-Resp
 *       respond_path: /early   # answer this path with respond_status, without the upstream
 *       respond_status: 418
 *       pause: 50ms            # pause every request this long on a timer before continuing
 *       stall_path: /stall     # block the worker thread on this path (a plugin stuck in a
 *       stall: 1s              #   blocking call) this long: the watchdog test
 *       upper_body: true       # upper-case the response body (streaming response_body hook)
 *       buffer_body: 1MiB      # ask for the whole body, append "!" to it
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate/plugin.h"

typedef struct {
    char *tag;          /* "" when not configured */
    char *respond_path; /* "" when not configured */
    uint64_t respond_status;
    uint64_t pause_ms;
    char *stall_path; /* "" when not configured */
    uint64_t stall_ms;
    bool upper_body;
    uint64_t buffer_body;
    int counter; /* metric id */
} sample_t;

typedef struct {
    struct event *timer;
    tg_request_t *req;
} sample_ctx_t;

/* The config, declared once: tg_conf_read() checks the keys, types and
 * bounds, and reports mistakes at their FILE:LINE:COL. */
static const tg_conf_field_t fields[] = {
    {"tag", TG_CONF_FIELD_STRING, TG_CONF_AT(sample_t, tag), .max = 31, .def_str = ""},
    {"respond_path", TG_CONF_FIELD_STRING, TG_CONF_AT(sample_t, respond_path), .max = 127,
     .def_str = ""},
    {"respond_status", TG_CONF_FIELD_UINT, TG_CONF_AT(sample_t, respond_status), .min = 200,
     .max = 599, .def = 418},
    {"pause", TG_CONF_FIELD_DURATION, TG_CONF_AT(sample_t, pause_ms)},
    {"stall_path", TG_CONF_FIELD_STRING, TG_CONF_AT(sample_t, stall_path), .max = 127,
     .def_str = ""},
    {"stall", TG_CONF_FIELD_DURATION, TG_CONF_AT(sample_t, stall_ms)},
    {"upper_body", TG_CONF_FIELD_BOOL, TG_CONF_AT(sample_t, upper_body)},
    {"buffer_body", TG_CONF_FIELD_SIZE, TG_CONF_AT(sample_t, buffer_body)},
    TG_CONF_END,
};

static void destroy(void *inst)
{
    tg_conf_fields_free(fields, inst);
    free(inst);
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    sample_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tg_conf_error(err, node, "out of memory");
    if (tg_conf_read(node, fields, NULL, s, err) < 0) {
        destroy(s);
        return -1;
    }
    s->counter = tg_metrics_counter(env->metrics, "tollgate_sample_requests_total",
                                    "Requests seen by the sample plugin.", NULL, NULL, 0);
    *out = s;
    return 0;
}

/* "old,tag", or "tag" when there is no old value (or a very long one). */
static size_t join_tag(char buf[256], const char *old, size_t len, const char *tag)
{
    size_t n = 0;
    if (old != NULL && len < 200) {
        memcpy(buf, old, len);
        n = len;
        buf[n++] = ',';
    }
    size_t tl = strlen(tag); /* at most 31 (the table's max) */
    memcpy(buf + n, tag, tl);
    return n + tl;
}

static void cleanup(void *data)
{
    sample_ctx_t *c = data;
    if (c->timer != NULL) {
        event_free(c->timer);
        c->timer = NULL;
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sample_ctx_t *c = arg;
    event_free(c->timer);
    c->timer = NULL;
    tg_request_resume(c->req, TG_FILTER_CONTINUE);
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const sample_t *s = f->instance;
    sample_ctx_t *c = f->ctx;
    tg_metrics_add(r, s->counter, 0, 1);
    if (s->tag[0] && c->req == NULL) {
        size_t len;
        const char *old = tg_request_header(r, "X-Chain", &len);
        char buf[256];
        tg_request_set_header(r, "X-Chain", buf, join_tag(buf, old, len, s->tag));
    }
    size_t plen;
    const char *path = tg_request_path(r, &plen);
    if (s->respond_path[0] && strcmp(path, s->respond_path) == 0) {
        static const char body[] = "answered by the sample plugin\n";
        tg_request_log(r, TG_LOG_INFO, "sample[%s]: answered %s with %u", s->tag, path,
                       (unsigned)s->respond_status);
        tg_request_respond(r, (int)s->respond_status, "text/plain", body, sizeof(body) - 1);
        return TG_FILTER_RESPONDED;
    }
    if (s->stall_path[0] && strcmp(path, s->stall_path) == 0) {
        struct timespec ts = {.tv_sec = (time_t)(s->stall_ms / 1000),
                              .tv_nsec = (long)(s->stall_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    if (s->pause_ms && c->req == NULL) {
        c->req = r;
        c->timer = evtimer_new(tg_request_event_base(r), timer_cb, c);
        struct timeval tv = tg_timeval_ms(s->pause_ms);
        evtimer_add(c->timer, &tv);
        tg_request_on_cleanup(r, cleanup, c);
        return TG_FILTER_PAUSE;
    }
    return TG_FILTER_CONTINUE;
}

static tg_filter_status_t response_head(tg_request_t *r, const tg_filter_t *f)
{
    const sample_t *s = f->instance;
    if (s->tag[0]) {
        size_t len;
        const char *old = tg_response_header(r, "X-Chain-Resp", &len);
        char buf[256];
        tg_response_set_header(r, "X-Chain-Resp", buf, join_tag(buf, old, len, s->tag));
    }
    if (s->buffer_body)
        tg_response_buffer_body(r, (size_t)s->buffer_body);
    else if (s->upper_body)
        tg_response_filter_body(r);
    return TG_FILTER_CONTINUE;
}

static tg_filter_status_t response_body(tg_request_t *r, const tg_filter_t *f,
                                        struct evbuffer *chunk, bool last)
{
    const sample_t *s = f->instance;
    if (s->upper_body) {
        size_t n = evbuffer_get_length(chunk);
        unsigned char *p = evbuffer_pullup(chunk, -1);
        for (size_t i = 0; i < n; i++)
            p[i] = (unsigned char)toupper(p[i]);
    }
    if (s->buffer_body && last && tg_response_body_buffered(r))
        evbuffer_add(chunk, "!", 1);
    return TG_FILTER_CONTINUE;
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "sample",
    .version = "1.0",
    .ctx_size = sizeof(sample_ctx_t),
    .create = create,
    .destroy = destroy,
    .request_head = request_head,
    .response_head = response_head,
    .response_body = response_body,
};
