#include "aggregate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "request.h"
#include "tollgate/clock.h"
#include "tollgate/fetch.h"
#include "tollgate/request.h"
#include "tollgate/text.h"

/* ---- templates ---- */

static const struct {
    const char *prefix;
    tg_tpl_kind_t kind;
} sources[] = {
    {"jwt.", TG_TPL_JWT},   {"query.", TG_TPL_QUERY}, {"header.", TG_TPL_HEADER},
    {"path.", TG_TPL_PATH}, {"var.", TG_TPL_VAR},
};

/* A part is in the path until a literal "?" has been added. */
static bool in_path(const tg_template_t *t)
{
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].kind == TG_TPL_LITERAL && memchr(t->parts[i].text, '?', t->parts[i].len))
            return false;
    return true;
}

static void add_part(tg_template_t *t, tg_tpl_kind_t kind, const char *s, size_t len)
{
    bool path = in_path(t);
    tg_tpl_part_t *p = realloc(t->parts, (t->nparts + 1) * sizeof(*p));
    if (p == NULL)
        abort();
    t->parts = p;
    t->parts[t->nparts].kind = kind;
    t->parts[t->nparts].text = strndup(s, len);
    t->parts[t->nparts].len = len;
    t->parts[t->nparts].in_path = path;
    t->nparts++;
}

static int check_group(const tg_route_t *route, const char *name, const tg_conf_node_t *n,
                       tg_conf_err_t *err)
{
    if (route->regex == NULL)
        return tg_conf_error(err, n, "{path.%s} needs a path_regex with a (?<%s>...) group", name,
                             name);
    if (pcre2_substring_number_from_name(route->regex, (PCRE2_SPTR)name) < 0)
        return tg_conf_error(err, n, "path_regex has no group named '%s'", name);
    return 0;
}

static int parse_var(tg_template_t *t, const tg_route_t *route, const char *v, size_t len,
                     const tg_conf_node_t *n, tg_conf_err_t *err)
{
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        size_t pl = strlen(sources[i].prefix);
        if (len > pl && strncmp(v, sources[i].prefix, pl) == 0) {
            add_part(t, sources[i].kind, v + pl, len - pl);
            if (sources[i].kind == TG_TPL_PATH)
                return check_group(route, t->parts[t->nparts - 1].text, n, err);
            return 0;
        }
    }
    return tg_conf_error(err, n,
                         "unknown template variable {%.*s}: use jwt.<claim>, query.<name>, "
                         "header.<Name>, path.<group> or var.<key>",
                         (int)len, v);
}

static int parse_template(tg_template_t *t, const tg_route_t *route, const tg_conf_node_t *n,
                          tg_conf_err_t *err)
{
    const char *s = n->value;
    if (s[0] != '/')
        return tg_conf_error(err, n, "call path must start with \"/\"");
    while (*s) {
        const char *open = strchr(s, '{');
        if (open == NULL) {
            add_part(t, TG_TPL_LITERAL, s, strlen(s));
            break;
        }
        if (open > s)
            add_part(t, TG_TPL_LITERAL, s, (size_t)(open - s));
        const char *close = strchr(open, '}');
        if (close == NULL)
            return tg_conf_error(err, n, "unterminated '{' in template");
        if (parse_var(t, route, open + 1, (size_t)(close - open - 1), n, err) < 0)
            return -1;
        s = close + 1;
    }
    return 0;
}

static void template_free(tg_template_t *t)
{
    for (size_t i = 0; i < t->nparts; i++)
        free(t->parts[i].text);
    free(t->parts);
}

/* ---- config ---- */

static int parse_call(tg_config_t *cfg, tg_route_t *route, const tg_conf_node_t *n,
                      tg_agg_call_t *call, tg_conf_err_t *err)
{
    static const char *const keys[] = {"key", "upstream", "path", "optional", NULL};
    if (tg_conf_check_keys(n, keys, err) < 0)
        return -1;
    const tg_conf_node_t *k = tg_conf_map_get(n, "key"), *u = tg_conf_map_get(n, "upstream"),
                         *p = tg_conf_map_get(n, "path"), *o = tg_conf_map_get(n, "optional");
    if (k == NULL || u == NULL || p == NULL)
        return tg_conf_error(err, n, "a call needs key, upstream and path");
    const char *key, *up;
    if (tg_conf_get_string(k, &key, err) < 0 || tg_conf_get_string(u, &up, err) < 0)
        return -1;
    if (p->type != TG_CONF_SCALAR)
        return tg_conf_error(err, p, "expected a path template");
    call->key = strdup(key);
    call->upstream = tg_config_upstream(cfg, up);
    if (call->upstream == NULL)
        return tg_conf_error(err, u, "unknown upstream '%s'", up);
    if (o != NULL && tg_conf_get_bool(o, &call->optional, err) < 0)
        return -1;
    return parse_template(&call->path, route, p, err);
}

static int parse_pass_headers(tg_aggregate_t *a, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    if (n->type != TG_CONF_SEQ)
        return tg_conf_error(err, n, "expected a list of header names");
    a->pass_headers = calloc(n->count + 1, sizeof(char *));
    for (size_t i = 0; i < n->count; i++) {
        const char *s;
        if (tg_conf_get_string(n->items[i], &s, err) < 0)
            return -1;
        a->pass_headers[a->npass++] = strdup(s);
    }
    return 0;
}

int tg_aggregate_parse(tg_config_t *cfg, tg_route_t *route, const tg_conf_node_t *node,
                       tg_aggregate_t **out, tg_conf_err_t *err)
{
    static const char *const keys[] = {"timeout", "calls", "pass_headers", NULL};
    if (node->type != TG_CONF_MAP)
        return tg_conf_error(err, node, "expected a map with timeout and calls");
    if (tg_conf_check_keys(node, keys, err) < 0)
        return -1;
    tg_aggregate_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        abort();
    *out = a;
    a->timeout_ms = 2000;
    const tg_conf_node_t *t = tg_conf_map_get(node, "timeout"),
                         *calls = tg_conf_map_get(node, "calls"),
                         *ph = tg_conf_map_get(node, "pass_headers");
    if (t != NULL && tg_conf_get_duration_ms(t, &a->timeout_ms, err) < 0)
        return -1;
    if (ph != NULL) {
        if (parse_pass_headers(a, ph, err) < 0)
            return -1;
    } else {
        a->pass_headers = calloc(2, sizeof(char *));
        a->pass_headers[a->npass++] = strdup("Authorization");
    }
    if (calls == NULL || calls->type != TG_CONF_SEQ || calls->count == 0)
        return tg_conf_error(err, calls ? calls : node,
                             "aggregate needs a non-empty list of calls");
    a->calls = calloc(calls->count, sizeof(*a->calls));
    for (size_t i = 0; i < calls->count; i++) {
        a->ncalls++;
        if (parse_call(cfg, route, calls->items[i], &a->calls[i], err) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (strcmp(a->calls[k].key, a->calls[i].key) == 0)
                return tg_conf_error(err, calls->items[i], "duplicate call key '%s'",
                                     a->calls[i].key);
    }
    return 0;
}

void tg_aggregate_free(tg_aggregate_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->ncalls; i++) {
        free(a->calls[i].key);
        template_free(&a->calls[i].path);
    }
    free(a->calls);
    for (size_t i = 0; i < a->npass; i++)
        free(a->pass_headers[i]);
    free(a->pass_headers);
    free(a);
}

/* ---- running ---- */

/* Query values and path segments arrive percent-encoded: they are decoded
 * first, so that re-encoding is exact and "%2F" can never turn into a "/"
 * (nor "%252F" into "%2F"). plus: "+" means a space (query strings). */
static char *decode(tg_req_t *req, const char *raw, size_t raw_len, bool plus, size_t *len)
{
    char *v = tg_arena_alloc(req->arena, raw_len + 1);
    *len = (size_t)tg_percent_decode_flags(raw, raw_len, v, plus ? TG_PERCENT_PLUS : 0);
    return v;
}

static char *query_value(tg_req_t *req, const char *name, size_t *len)
{
    size_t raw_len;
    const char *raw = tg_request_query_param(req, name, &raw_len);
    return raw ? decode(req, raw, raw_len, true, len) : NULL;
}

static const char *path_group(tg_req_t *req, const char *name, size_t *len)
{
    const tg_route_t *r = req->route;
    if (r->regex == NULL)
        return NULL;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->regex, NULL);
    const char *v = NULL;
    if (pcre2_match(r->regex, (PCRE2_SPTR)req->path, req->path_len, 0, 0, md, NULL) > 0) {
        PCRE2_SIZE n;
        if (pcre2_substring_length_byname(md, (PCRE2_SPTR)name, &n) == 0) {
            char *buf = tg_arena_alloc(req->arena, n + 1);
            PCRE2_SIZE cap = n + 1;
            if (pcre2_substring_copy_byname(md, (PCRE2_SPTR)name, (PCRE2_UCHAR *)buf, &cap) == 0)
                v = decode(req, buf, cap, false, len);
        }
    }
    pcre2_match_data_free(md);
    return v;
}

static const char *part_value(tg_req_t *req, const tg_tpl_part_t *p, size_t *len)
{
    switch (p->kind) {
    case TG_TPL_JWT:
        return tg_request_claim(req, p->text, len);
    case TG_TPL_QUERY:
        return query_value(req, p->text, len);
    case TG_TPL_HEADER:
        return tg_request_header(req, p->text, len);
    case TG_TPL_PATH:
        return path_group(req, p->text, len);
    case TG_TPL_VAR:
        return tg_request_var_str(req, p->text, len);
    case TG_TPL_LITERAL:
    default:
        *len = p->len;
        return p->text;
    }
}

static const char *kind_prefix(tg_tpl_kind_t kind)
{
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
        if (sources[i].kind == kind)
            return sources[i].prefix;
    return "";
}

/* A value in the path part may not be a whole segment of its own making:
 * missing and "" would give "//", "." and ".." survive percent-encoding (they
 * are unreserved) and would be dot-segments upstream. Checked on every path
 * value, wherever it sits in its segment, so that two values or a value and a
 * literal dot can never add up to one either. NULL when the value is fine. */
static const char *bad_segment_value(const char *v, size_t len)
{
    if (v == NULL)
        return "is missing";
    if (len == 0)
        return "is empty";
    if (len == 1 && v[0] == '.')
        return "is '.'";
    if (len == 2 && v[0] == '.' && v[1] == '.')
        return "is '..'";
    return NULL;
}

/* Renders a template into *out; a missing value outside the path renders as
 * empty. Returns NULL, or the 400 message naming the refused value. */
static const char *render(tg_req_t *req, const tg_template_t *t, const char **out)
{
    struct evbuffer *b = evbuffer_new();
    for (size_t i = 0; i < t->nparts; i++) {
        const tg_tpl_part_t *p = &t->parts[i];
        size_t len = 0;
        const char *v = part_value(req, p, &len);
        const char *bad =
            p->in_path && p->kind != TG_TPL_LITERAL ? bad_segment_value(v, len) : NULL;
        if (bad != NULL) {
            evbuffer_free(b);
            return tg_arena_printf(req->arena, "template value {%s%s} %s", kind_prefix(p->kind),
                                   p->text, bad);
        }
        if (v == NULL || len == 0)
            continue;
        if (p->kind == TG_TPL_LITERAL) {
            evbuffer_add(b, v, len);
            continue;
        }
        char *enc = tg_arena_alloc(req->arena, len * 3);
        evbuffer_add(b, enc, tg_percent_encode(v, len, enc));
    }
    size_t n = evbuffer_get_length(b);
    *out = tg_arena_strndup(req->arena, (const char *)evbuffer_pullup(b, -1), n);
    evbuffer_free(b);
    return NULL;
}

typedef struct agg_run_s agg_run_t;

typedef struct {
    agg_run_t *run;
    size_t index;
    tg_fetch_t *fetch; /* NULL once done */
    json_t *value;     /* NULL: failed */
    const char *error;
} agg_slot_t;

struct agg_run_s {
    tg_req_t *req;
    const tg_aggregate_t *agg;
    agg_slot_t *slots;
    size_t pending;
    struct event *timer;
    bool starting; /* calls are still being started: nobody answers yet */
    bool finished;
};

static void answer(agg_run_t *run)
{
    tg_req_t *req = run->req;
    const tg_aggregate_t *a = run->agg;
    run->finished = true;
    if (run->timer) {
        event_free(run->timer);
        run->timer = NULL;
    }
    json_t *doc = json_object();
    struct evbuffer *partial = evbuffer_new();
    for (size_t i = 0; i < a->ncalls; i++) {
        agg_slot_t *s = &run->slots[i];
        if (s->value == NULL && !a->calls[i].optional) {
            char *msg = tg_arena_printf(req->arena, "aggregate call '%s' failed: %s",
                                        a->calls[i].key, s->error ? s->error : "error");
            tg_request_respond_error(req, 502, msg);
            json_decref(doc);
            evbuffer_free(partial);
            tg_conn_send_reply(req->conn);
            return;
        }
        if (s->value == NULL)
            evbuffer_add_printf(partial, "%s%s", evbuffer_get_length(partial) ? ", " : "",
                                a->calls[i].key);
        json_object_set(doc, a->calls[i].key, s->value ? s->value : json_null());
    }
    if (evbuffer_get_length(partial) > 0)
        tg_request_add_response_header(req, "X-Tollgate-Partial",
                                       (const char *)evbuffer_pullup(partial, -1),
                                       evbuffer_get_length(partial));
    evbuffer_free(partial);
    char *body = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    tg_request_respond(req, 200, "application/json", body, strlen(body));
    free(body);
    tg_conn_send_reply(req->conn);
}

static bool is_json(const char *ct, size_t len)
{
    if (ct == NULL)
        return false;
    const char *semi = memchr(ct, ';', len);
    size_t n = semi ? (size_t)(semi - ct) : len;
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static void call_done(void *data, const tg_fetch_result_t *res)
{
    agg_slot_t *s = data;
    agg_run_t *run = s->run;
    s->fetch = NULL;
    if (res->error != NULL) {
        s->error = res->error;
    } else if (res->status < 200 || res->status > 299) {
        s->error = tg_arena_printf(run->req->arena, "status %d", res->status);
    } else if (!is_json(res->content_type, res->content_type_len)) {
        s->error = "response is not JSON";
    } else {
        s->value = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, NULL);
        if (s->value == NULL)
            s->error = "invalid JSON";
    }
    if (--run->pending == 0 && !run->finished && !run->starting)
        answer(run);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    agg_run_t *run = arg;
    for (size_t i = 0; i < run->agg->ncalls; i++) {
        agg_slot_t *s = &run->slots[i];
        if (s->fetch != NULL) {
            tg_fetch_cancel(s->fetch);
            s->fetch = NULL;
            s->error = "timeout";
        }
    }
    answer(run);
}

/* The request ended (client gone, or answered): nothing may call back. */
static void run_cleanup(void *arg)
{
    agg_run_t *run = arg;
    for (size_t i = 0; i < run->agg->ncalls; i++) {
        if (run->slots[i].fetch != NULL)
            tg_fetch_cancel(run->slots[i].fetch);
        if (run->slots[i].value != NULL)
            json_decref(run->slots[i].value);
    }
    if (run->timer)
        event_free(run->timer);
}

static const char **call_headers(tg_req_t *req, const tg_aggregate_t *a)
{
    const char **h = tg_arena_calloc(req->arena, (2 * a->npass + 5) * sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < a->npass; i++) {
        size_t len;
        const char *v = tg_request_header(req, a->pass_headers[i], &len);
        if (v == NULL)
            continue;
        h[n++] = a->pass_headers[i];
        h[n++] = tg_arena_strndup(req->arena, v, len);
    }
    h[n++] = "X-Request-Id";
    h[n++] = req->request_id;
    h[n++] = "Accept";
    h[n++] = "application/json";
    return h;
}

void tg_aggregate_start(tg_req_t *req)
{
    const tg_aggregate_t *a = req->route->aggregate;
    /* Every path is rendered before any call starts: a refused value answers
     * 400 with nothing sent upstream. */
    const char **paths = tg_arena_calloc(req->arena, a->ncalls * sizeof(*paths));
    for (size_t i = 0; i < a->ncalls; i++) {
        const char *bad = render(req, &a->calls[i].path, &paths[i]);
        if (bad != NULL) {
            tg_request_respond_error(req, 400, bad);
            tg_conn_send_reply(req->conn);
            return;
        }
    }
    agg_run_t *run = tg_arena_calloc(req->arena, sizeof(*run));
    run->req = req;
    run->agg = a;
    run->slots = tg_arena_calloc(req->arena, a->ncalls * sizeof(*run->slots));
    run->pending = a->ncalls;
    tg_arena_on_cleanup(req->arena, run_cleanup, run);
    run->timer = evtimer_new(req->conn->worker->base, timeout_cb, run);
    struct timeval tv = tg_timeval_ms(a->timeout_ms);
    evtimer_add(run->timer, &tv);
    req->up_start_us = tg_now_us();
    const char **headers = call_headers(req, a);
    run->starting = true;
    for (size_t i = 0; i < a->ncalls; i++) {
        agg_slot_t *s = &run->slots[i];
        s->run = run;
        s->index = i;
        tg_fetch_opts_t o = {.path = paths[i], .headers = headers, .timeout_ms = a->timeout_ms};
        /* A fetch failing at once calls back now: run->pending counts it. */
        s->fetch = tg_fetch_start(a->calls[i].upstream->name, &o, call_done, s);
    }
    run->starting = false;
    if (run->pending == 0)
        answer(run);
}
