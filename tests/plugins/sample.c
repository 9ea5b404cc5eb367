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
 *       upper_body: true       # upper-case the response body (streaming response_body hook)
 *       buffer_body: 1MiB      # ask for the whole body, append "!" to it
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/plugin.h"

typedef struct {
    char tag[32];
    char respond_path[128];
    uint64_t respond_status;
    uint64_t pause_ms;
    bool upper_body;
    uint64_t buffer_body;
    int counter; /* metric id */
} sample_t;

typedef struct {
    struct event *timer;
    tg_request_t *req;
} sample_ctx_t;

static int copy_str(const tg_conf_node_t *n, char *dst, size_t cap, tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    if (strlen(s) >= cap)
        return tg_conf_error(err, n, "too long");
    strcpy(dst, s);
    return 0;
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    static const char *const keys[] = {
        "tag", "respond_path", "respond_status", "pause", "upper_body", "buffer_body", NULL};
    sample_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tg_conf_error(err, node, "out of memory");
    s->respond_status = 418;
    const tg_conf_node_t *n;
    int rc = 0;
    if (node->type != TG_CONF_NULL)
        rc = tg_conf_check_keys(node, keys, err);
    if (rc == 0 && (n = tg_conf_map_get(node, "tag")))
        rc = copy_str(n, s->tag, sizeof(s->tag), err);
    if (rc == 0 && (n = tg_conf_map_get(node, "respond_path")))
        rc = copy_str(n, s->respond_path, sizeof(s->respond_path), err);
    if (rc == 0 && (n = tg_conf_map_get(node, "respond_status")))
        rc = tg_conf_get_uint(n, 200, 599, &s->respond_status, err);
    if (rc == 0 && (n = tg_conf_map_get(node, "pause")))
        rc = tg_conf_get_duration_ms(n, &s->pause_ms, err);
    if (rc == 0 && (n = tg_conf_map_get(node, "upper_body")))
        rc = tg_conf_get_bool(n, &s->upper_body, err);
    if (rc == 0 && (n = tg_conf_map_get(node, "buffer_body")))
        rc = tg_conf_get_size(n, &s->buffer_body, err);
    if (rc < 0) {
        free(s);
        return -1;
    }
    s->counter = tg_metrics_counter(env->metrics, "tollgate_sample_requests_total",
                                    "Requests seen by the sample plugin.", NULL, NULL, 0);
    *out = s;
    return 0;
}

static void destroy(void *inst)
{
    free(inst);
}

static void append_tag(tg_request_t *r, const sample_t *s)
{
    size_t len;
    const char *old = tg_request_header(r, "X-Chain", &len);
    char buf[256];
    size_t n = 0;
    if (old != NULL && len < 200) {
        memcpy(buf, old, len);
        n = len;
        buf[n++] = ',';
    }
    size_t tl = strlen(s->tag);
    memcpy(buf + n, s->tag, tl);
    tg_request_set_header(r, "X-Chain", buf, n + tl);
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
    if (s->tag[0] && c->req == NULL)
        append_tag(r, s);
    size_t plen;
    const char *path = tg_request_path(r, &plen);
    if (s->respond_path[0] && strcmp(path, s->respond_path) == 0) {
        static const char body[] = "answered by the sample plugin\n";
        tg_request_respond(r, (int)s->respond_status, "text/plain", body, sizeof(body) - 1);
        return TG_FILTER_RESPONDED;
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
        size_t n = 0;
        if (old != NULL && len < 200) {
            memcpy(buf, old, len);
            n = len;
            buf[n++] = ',';
        }
        size_t tl = strlen(s->tag);
        memcpy(buf + n, s->tag, tl);
        tg_response_set_header(r, "X-Chain-Resp", buf, n + tl);
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
