/*
 * The plugin contract of include/tollgate/plugin.h and request.h, exercised
 * from outside: a second out-of-tree plugin, built only against the public
 * headers, for tests/integration/test_plugin_contract.py.
 *
 *   - name: contract
 *     path: <build>/tests/contract.so
 *     config:
 *       tag: a                # appended to the response header X-Contract-Tags
 *                             # (response_head); names the plugin's log lines
 *       header: X-Contract    # request header set to the tag (checked at load)
 *       resume: none          # request_head: none | sync | sync_twice | async:
 *                             # pause, resumed inside the hook or from a timer
 *       resume_status: continue  # given to tg_request_resume(): continue |
 *                             # responded (a 403 first) | error | pause
 *       then: pause           # returned after a sync resume: pause | continue
 *       delay: 20ms           # async: the timer
 *       check_api: false      # call the setters in request_head and
 *                             # response_head, asserting their codes; the
 *                             # result is the response header X-Contract-Check
 *       request_body: continue   # continue | upper | respond | error | pause
 *       response_head: continue  # continue | respond | error | pause
 *       response_body: continue  # continue | pause (asks for a buffered body)
 *       stray_resume: false   # response_head calls tg_request_resume()
 *       facts: false          # request_head: the connection's facts as the
 *                             # response header X-Contract-Facts,
 *                             # "protocol|tls_version|tls_cipher|sni|alpn"
 *                             # ("-" for NULL)
 *
 * worker_init, worker_fini and destroy log one notice line each (tg_log),
 * "contract[TAG]: worker_init 0"; the log hook one about its request
 * (tg_request_log), "contract[TAG]: log 200 /path (worker 0, route a, ...)".
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tollgate/plugin.h"

enum { RESUME_NONE, RESUME_SYNC, RESUME_SYNC_TWICE, RESUME_ASYNC };
enum { ACT_CONTINUE, ACT_UPPER, ACT_RESPOND, ACT_ERROR, ACT_PAUSE };

typedef struct {
    char *tag;
    char *header;
    unsigned resume; /* RESUME_* */
    tg_filter_status_t resume_status;
    tg_filter_status_t then;
    uint64_t delay_ms;
    bool check_api;
    unsigned request_body, response_head, response_body; /* ACT_* */
    bool stray_resume;
    bool facts;
} contract_t;

typedef struct {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
} contract_worker_t;

typedef struct {
    tg_request_t *r;
    const contract_t *conf;
    struct event *timer;
    char failed[512]; /* checks that did not hold: "what=got;" */
    size_t nfailed;
} contract_ctx_t;

/* ---- config ---- */

/* A request header name from the config: the core's own rule, at load. */
static int get_header(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    switch (tg_request_header_check(s, NULL, 0)) {
    case 0:
        break;
    case TG_EFORBIDDEN:
        return tg_conf_error(err, n, "header \"%s\" belongs to the gateway: a plugin cannot set it",
                             s);
    default:
        return tg_conf_error(err, n, "\"%s\" is not a header name", s);
    }
    char **header = out;
    if ((*header = strdup(s)) == NULL)
        return tg_conf_error(err, n, "out of memory");
    return 0;
}

/* ENUM stores the index of the word: these lists follow the enums' order. */
static const char *const resumes[] = {"none", "sync", "sync_twice", "async", NULL};
static const char *const statuses[] = {"continue", "pause", "responded", "error", NULL};
static const char *const thens[] = {"continue", "pause", NULL};
static const char *const actions[] = {"continue", "upper", "respond", "error", "pause", NULL};
_Static_assert(TG_FILTER_CONTINUE == 0 && TG_FILTER_PAUSE == 1 && TG_FILTER_RESPONDED == 2 &&
                   TG_FILTER_ERROR == 3,
               "statuses[] and thens[] follow tg_filter_status_t");

static const tg_conf_field_t fields[] = {
    {"tag", TG_CONF_FIELD_STRING, TG_CONF_AT(contract_t, tag), .max = 31, .def_str = "-"},
    {"header", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(contract_t, header), .parse = get_header},
    {"resume", TG_CONF_FIELD_ENUM, TG_CONF_AT(contract_t, resume), .names = resumes},
    {"resume_status", TG_CONF_FIELD_ENUM, TG_CONF_AT(contract_t, resume_status), .names = statuses},
    {"then", TG_CONF_FIELD_ENUM, TG_CONF_AT(contract_t, then), .names = thens,
     .def = TG_FILTER_PAUSE},
    {"delay", TG_CONF_FIELD_DURATION, TG_CONF_AT(contract_t, delay_ms), .def = 20},
    {"check_api", TG_CONF_FIELD_BOOL, TG_CONF_AT(contract_t, check_api)},
    {"request_body", TG_CONF_FIELD_ENUM, TG_CONF_AT(contract_t, request_body), .names = actions},
    {"response_head", TG_CONF_FIELD_ENUM, TG_CONF_AT(contract_t, response_head), .names = actions},
    {"response_body", TG_CONF_FIELD_ENUM, TG_CONF_AT(contract_t, response_body), .names = actions},
    {"stray_resume", TG_CONF_FIELD_BOOL, TG_CONF_AT(contract_t, stray_resume)},
    {"facts", TG_CONF_FIELD_BOOL, TG_CONF_AT(contract_t, facts)},
    TG_CONF_END,
};

static void free_conf(contract_t *c)
{
    tg_conf_fields_free(fields, c);
    free(c->header); /* CUSTOM: ours to free */
    free(c);
}

static void destroy(void *inst)
{
    contract_t *c = inst;
    tg_log(TG_LOG_NOTICE, "contract[%s]: destroy", c->tag);
    free_conf(c);
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    (void)env;
    contract_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    if (tg_conf_read(node, fields, NULL, c, err) < 0) {
        free_conf(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* ---- worker state ---- */

static void *worker_init(void *inst, struct event_base *base, unsigned worker_id)
{
    const contract_t *c = inst;
    contract_worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->id = worker_id;
    w->thread = pthread_self();
    w->base = base;
    tg_log(TG_LOG_NOTICE, "contract[%s]: worker_init %u", c->tag, worker_id);
    return w;
}

static void worker_fini(void *inst, void *worker)
{
    const contract_t *c = inst;
    contract_worker_t *w = worker;
    tg_log(TG_LOG_NOTICE, "contract[%s]: worker_fini %u", c->tag, w ? w->id : 0u);
    free(w);
}

/* ---- checks ---- */

static void check(contract_ctx_t *x, const char *what, long got, long want)
{
    if (got == want)
        return;
    x->nfailed++;
    size_t used = strlen(x->failed);
    snprintf(x->failed + used, sizeof(x->failed) - used, "%s=%ld;", what, got);
}
#define CHECK(x, expr, want) check(x, #expr, (long)(expr), (long)(want))

/* The hook runs on the thread, loop and worker state worker_init() made. */
static void check_worker(contract_ctx_t *x, const tg_filter_t *f, tg_request_t *r)
{
    const contract_worker_t *w = f->worker;
    CHECK(x, w != NULL, 1);
    if (w == NULL)
        return;
    CHECK(x, pthread_equal(w->thread, pthread_self()) != 0, 1);
    CHECK(x, w->base == tg_request_event_base(r), 1);
    CHECK(x, w->id, tg_request_worker_id(r));
}

static void body_never(void *data, const char *body, size_t len)
{
    (void)data;
    (void)body;
    (void)len;
    abort(); /* tg_request_read_body() refused: never called */
}

static void check_request_api(contract_ctx_t *x, tg_request_t *r)
{
    const char *rn, *rv;
    size_t rnl, rvl;
    CHECK(x, tg_response_header_at(r, 0, &rn, &rnl, &rv, &rvl), 0); /* not in request_head */
    /* This plugin has a request_body hook: the body must stream through it. */
    CHECK(x, tg_request_read_body(r, 0, body_never, NULL), TG_ESTATE);
    CHECK(x, tg_request_set_header(r, "X-Contract-Set", "v1", 2), 0);
    CHECK(x, tg_request_set_header(r, "X-Contract-Tab", "a\tb", 3), 0);
    char n[24];
    snprintf(n, sizeof(n), "%zu", tg_request_remove_header(r, "X-Contract-Remove"));
    CHECK(x, tg_request_set_header(r, "X-Contract-Removed", n, strlen(n)), 0);
    /* This hop's fields and the ones the gateway writes itself. */
    static const char *const owned[] = {
        "Connection",        "Keep-Alive",      "Proxy-Connection", "TE",           "Trailer",
        "Transfer-Encoding", "Upgrade",         "Content-Length",   "Host",         "Expect",
        "X-Request-Id",      "X-Forwarded-For", "content-length",   "X_Request_Id", NULL};
    for (const char *const *o = owned; *o; o++)
        CHECK(x, tg_request_set_header(r, *o, "x", 1), TG_EFORBIDDEN);
    CHECK(x, tg_request_set_header(r, "Bad Name", "x", 1), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, "X:Y", "x", 1), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, "", "x", 1), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, NULL, "x", 1), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, "X-Injected", "a\r\nX-Evil: 1", 12), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, "X-Injected", "a\nb", 3), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, "X-Injected", "a\0b", 3), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, "X-Injected", "\x01", 1), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, "X-Injected", "\x7f", 1), TG_EINVAL);
    CHECK(x, tg_request_set_header(r, "X-Injected", NULL, 1), TG_EINVAL);
    /* Response headers added from a request phase. */
    CHECK(x, tg_request_add_response_header(r, "X-Contract-Added", "yes", 3), 0);
    static const char *const resp_owned[] = {
        "Connection",        "Keep-Alive", "Proxy-Connection", "TE",           "Trailer",
        "Transfer-Encoding", "Upgrade",    "Content-Length",   "X-Request-Id", NULL};
    for (const char *const *o = resp_owned; *o; o++)
        CHECK(x, tg_request_add_response_header(r, *o, "x", 1), TG_EFORBIDDEN);
    CHECK(x, tg_request_add_response_header(r, "X-Injected", "x\r\ny", 4), TG_EINVAL);
    CHECK(x, tg_request_add_response_header(r, "X Injected", "x", 1), TG_EINVAL);
    /* A name checked once (API 2.13): the same rule, then values only. */
    {
        tg_response_name_t named, untouched = {"kept", 4};
        static const char named_text[] = "X-Contract-Named";
        CHECK(x, tg_response_name_init(&named, named_text), 0);
        CHECK(x, named.name == named_text && named.len == 16, 1);
        for (const char *const *o = resp_owned; *o; o++)
            CHECK(x, tg_response_name_init(&untouched, *o), TG_EFORBIDDEN);
        CHECK(x, tg_response_name_init(&untouched, "X Injected"), TG_EINVAL);
        CHECK(x, tg_response_name_init(&untouched, ""), TG_EINVAL);
        CHECK(x, untouched.len == 4 && strcmp(untouched.name, "kept") == 0, 1);
        CHECK(x, tg_request_add_response_header_named(r, &named, "x\r\ny", 4), TG_EINVAL);
        CHECK(x, tg_request_add_response_header_named(r, &named, NULL, 1), TG_EINVAL);
        CHECK(x, tg_request_add_response_header_named(r, &named, "named", 5), 0);
    }
    /* The response head is not open in a request phase. */
    CHECK(x, tg_response_set_header(r, "X-Early", "v", 1), TG_ESTATE);
    CHECK(x, tg_response_set_status(r, 201), TG_ESTATE);
    CHECK(x, tg_response_remove_header(r, "X-Early"), 0);
    size_t len;
    CHECK(x, tg_response_header(r, "X-Early", &len) == NULL, 1);
    {
        const char *en, *ev;
        size_t enl, evl;
        CHECK(x, tg_response_header_at(r, 0, &en, &enl, &ev, &evl), 0);
    }
    /* Refused answers record nothing: the request goes on. */
    CHECK(x, tg_request_respond(r, 199, "text/plain", "x", 1), TG_EINVAL);
    CHECK(x, tg_request_respond(r, 600, "text/plain", "x", 1), TG_EINVAL);
    CHECK(x, tg_request_respond(r, 200, "text/plain\r\nX-Evil: 1", "x", 1), TG_EINVAL);
    CHECK(x, tg_request_respond_error(r, 99, "x"), TG_EINVAL);
    CHECK(x, tg_request_set_path(r, "relative", 8), TG_EINVAL);
    CHECK(x, tg_request_set_query(r, "a b", 3), TG_EINVAL);
    size_t plen;
    const char *path = tg_request_path(r, &plen);
    if (plen == 10 && memcmp(path, "/a/rewrite", 10) == 0) {
        CHECK(x, tg_request_set_path(r, "/a/rewritten", 12), 0);
        CHECK(x, tg_request_set_query(r, "q=1", 3), 0);
    }
    /* The same rules without a request (for config values at load). */
    CHECK(x, tg_request_header_check("X-Fine", "ok", 2), 0);
    CHECK(x, tg_request_header_check("Expect", NULL, 0), TG_EFORBIDDEN);
    CHECK(x, tg_response_header_check("Expect", NULL, 0), 0);
    CHECK(x, tg_response_header_check("content-length", NULL, 0), TG_EFORBIDDEN);
    CHECK(x, tg_response_header_check("X-Fine", "a\r\n", 3), TG_EINVAL);
}

static void check_response_api(contract_ctx_t *x, tg_request_t *r)
{
    CHECK(x, tg_response_set_header(r, "X-Contract-Resp", "ok", 2), 0);
    size_t len;
    const char *v = tg_response_header(r, "x-contract-resp", &len);
    CHECK(x, v != NULL && len == 2 && memcmp(v, "ok", 2) == 0, 1);
    char n[24];
    snprintf(n, sizeof(n), "%zu", tg_response_remove_header(r, "X-Upstream-Name"));
    CHECK(x, tg_response_set_header(r, "X-Contract-Removed-Resp", n, strlen(n)), 0);
    static const char *const owned[] = {
        "Connection",        "Keep-Alive", "Proxy-Connection", "TE",           "Trailer",
        "Transfer-Encoding", "Upgrade",    "Content-Length",   "X-Request-Id", NULL};
    for (const char *const *o = owned; *o; o++)
        CHECK(x, tg_response_set_header(r, *o, "1", 1), TG_EFORBIDDEN);
    CHECK(x, tg_response_set_header(r, "a:b", "x", 1), TG_EINVAL);
    CHECK(x, tg_response_set_header(r, "X-Injected", "a\rb", 3), TG_EINVAL);
    CHECK(x, tg_response_set_header(r, "X-Injected", "a\nb", 3), TG_EINVAL);
    CHECK(x, tg_response_header(r, "X-Injected", &len) == NULL, 1);
    /* tg_response_header_at walks the same headers: X-Contract-Resp is one. */
    const char *hn, *hv;
    size_t hnl, hvl, i = 0, seen = 0;
    for (; tg_response_header_at(r, i, &hn, &hnl, &hv, &hvl); i++)
        seen += hnl == 15 && strncasecmp(hn, "X-Contract-Resp", 15) == 0 && hvl == 2;
    CHECK(x, seen, 1);
    CHECK(x, tg_response_header_at(r, i, &hn, &hnl, &hv, &hvl), 0);
    CHECK(x, tg_request_read_body(r, 0, body_never, NULL), TG_ESTATE); /* not request_head */
    int status = tg_response_status(r);
    CHECK(x, tg_response_set_status(r, 600), TG_EINVAL);
    CHECK(x, tg_response_set_status(r, 199), TG_EINVAL);
    CHECK(x, tg_response_set_status(r, 101), TG_EINVAL);
    if (status == 200) {
        CHECK(x, tg_response_set_status(r, 204), TG_EINVAL);
        CHECK(x, tg_response_set_status(r, 304), TG_EINVAL);
        CHECK(x, tg_response_set_status(r, 203), 0);
        CHECK(x, tg_response_status(r), 203);
    }
}

/* The connection's facts (request.h: protocol API 2.5, TLS 2.7), one string per response. */
static void add_facts(tg_request_t *r)
{
    const char *v[] = {tg_request_protocol(r), tg_request_tls_version(r), tg_request_tls_cipher(r),
                       tg_request_tls_sni(r), tg_request_tls_alpn(r)};
    char buf[512];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]) && n < sizeof(buf); i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "|" : "", v[i] ? v[i] : "-");
    tg_request_add_response_header(r, "X-Contract-Facts", buf, n < sizeof(buf) ? n : 0);
}

/* ---- hooks ---- */

static void cleanup(void *data)
{
    contract_ctx_t *x = data;
    if (x->timer != NULL) {
        event_free(x->timer);
        x->timer = NULL;
    }
}

static void resume_now(contract_ctx_t *x, int status)
{
    if (status == TG_FILTER_RESPONDED) {
        char body[64];
        int n = snprintf(body, sizeof(body), "answered by contract %s\n", x->conf->tag);
        tg_request_respond(x->r, 401, "text/plain", "replaced below", 14);
        tg_request_respond(x->r, 403, "text/plain", body, (size_t)n); /* the answer that counts */
    }
    tg_request_resume(x->r, status);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    contract_ctx_t *x = arg;
    event_free(x->timer);
    x->timer = NULL;
    resume_now(x, x->conf->resume_status);
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const contract_t *c = f->instance;
    contract_ctx_t *x = f->ctx;
    x->r = r;
    x->conf = c;
    check_worker(x, f, r);
    if (c->header != NULL)
        CHECK(x, tg_request_set_header(r, c->header, c->tag, strlen(c->tag)), 0);
    if (c->check_api)
        check_request_api(x, r);
    if (c->facts)
        add_facts(r);
    switch (c->resume) {
    case RESUME_SYNC:
        resume_now(x, c->resume_status);
        return (tg_filter_status_t)c->then;
    case RESUME_SYNC_TWICE:
        resume_now(x, c->resume_status);
        tg_request_resume(r, TG_FILTER_ERROR); /* ignored: one resume per pause */
        return (tg_filter_status_t)c->then;
    case RESUME_ASYNC: {
        x->timer = evtimer_new(tg_request_event_base(r), timer_cb, x);
        struct timeval tv = tg_timeval_ms(c->delay_ms);
        evtimer_add(x->timer, &tv);
        tg_request_on_cleanup(r, cleanup, x);
        return TG_FILTER_PAUSE;
    }
    default:
        return TG_FILTER_CONTINUE;
    }
}

static tg_filter_status_t request_body(tg_request_t *r, const tg_filter_t *f,
                                       struct evbuffer *chunk, bool last)
{
    (void)last;
    const contract_t *c = f->instance;
    switch (c->request_body) {
    case ACT_UPPER: {
        size_t n = evbuffer_get_length(chunk);
        unsigned char *p = evbuffer_pullup(chunk, -1);
        for (size_t i = 0; i < n; i++)
            p[i] = (unsigned char)toupper(p[i]);
        return TG_FILTER_CONTINUE;
    }
    case ACT_RESPOND:
        tg_request_respond(r, 413, "text/plain", "body refused by contract\n", 25);
        return TG_FILTER_RESPONDED;
    case ACT_ERROR:
        return TG_FILTER_ERROR;
    case ACT_PAUSE:
        return TG_FILTER_PAUSE;
    default:
        return TG_FILTER_CONTINUE;
    }
}

/* Appends the tag to X-Contract-Tags: which response_head hooks saw the
 * response that went out. */
static void append_tag(contract_ctx_t *x, tg_request_t *r, const contract_t *c)
{
    size_t len;
    const char *old = tg_response_header(r, "X-Contract-Tags", &len);
    char buf[256];
    int n = old ? snprintf(buf, sizeof(buf), "%.*s,%s", (int)len, old, c->tag)
                : snprintf(buf, sizeof(buf), "%s", c->tag);
    CHECK(x, tg_response_set_header(r, "X-Contract-Tags", buf, (size_t)n), 0);
}

static tg_filter_status_t response_head(tg_request_t *r, const tg_filter_t *f)
{
    const contract_t *c = f->instance;
    contract_ctx_t *x = f->ctx;
    append_tag(x, r, c);
    if (c->check_api)
        check_response_api(x, r);
    if (c->stray_resume)
        tg_request_resume(r, TG_FILTER_ERROR); /* not paused: ignored */
    if (c->response_body == ACT_PAUSE)
        tg_response_buffer_body(r, 1 << 20);
    if (c->check_api || x->nfailed) {
        const char *res = x->nfailed ? x->failed : "ok";
        tg_request_add_response_header(r, "X-Contract-Check", res, strlen(res));
    }
    switch (c->response_head) {
    case ACT_RESPOND: {
        char body[64];
        int n = snprintf(body, sizeof(body), "replaced by contract %s\n", c->tag);
        tg_request_respond(r, 503, "text/plain", body, (size_t)n);
        return TG_FILTER_RESPONDED;
    }
    case ACT_ERROR:
        return TG_FILTER_ERROR;
    case ACT_PAUSE:
        return TG_FILTER_PAUSE;
    default:
        return TG_FILTER_CONTINUE;
    }
}

static tg_filter_status_t response_body(tg_request_t *r, const tg_filter_t *f,
                                        struct evbuffer *chunk, bool last)
{
    (void)r;
    (void)chunk;
    (void)last;
    const contract_t *c = f->instance;
    return c->response_body == ACT_PAUSE ? TG_FILTER_PAUSE : TG_FILTER_CONTINUE;
}

static void log_request(tg_request_t *r, const tg_filter_t *f)
{
    const contract_t *c = f->instance;
    size_t len;
    const char *path = tg_request_path(r, &len);
    tg_request_log(r, TG_LOG_NOTICE, "contract[%s]: log %d %.*s", c->tag, tg_response_status(r),
                   path ? (int)len : 1, path ? path : "-");
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "contract",
    .ctx_size = sizeof(contract_ctx_t),
    .create = create,
    .destroy = destroy,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .request_head = request_head,
    .request_body = request_body,
    .response_head = response_head,
    .response_body = response_body,
    .log = log_request,
};
