/*
 * The plugin contract of include/tollgate/plugin.h and request.h, exercised
 * from outside: a second out-of-tree plugin, built only against the public
 * headers, for tests/integration/test_plugin_contract.py.
 *
 *   - name: contract
 *     path: <build>/tests/contract.so
 *     config:
 *       tag: a                # appended to the response header X-Contract-Tags
 *                             # (response_head); names the plugin's stderr lines
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
 *
 * worker_init, worker_fini, destroy and log print one line each to stderr:
 * "contract[TAG]: worker_init 0", "contract[TAG]: log 200 /path".
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/plugin.h"

enum { RESUME_NONE, RESUME_SYNC, RESUME_SYNC_TWICE, RESUME_ASYNC };
enum { ACT_CONTINUE, ACT_UPPER, ACT_RESPOND, ACT_ERROR, ACT_PAUSE };

typedef struct {
    char tag[32];
    char *header;
    int resume;
    int resume_status; /* a tg_filter_status_t */
    int then;          /* a tg_filter_status_t */
    uint64_t delay_ms;
    bool check_api;
    int request_body, response_head, response_body; /* ACT_* */
    bool stray_resume;
} contract_t;

typedef struct {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    char tag[32];
} contract_worker_t;

typedef struct {
    tg_request_t *r;
    const contract_t *conf;
    struct event *timer;
    char failed[512]; /* checks that did not hold: "what=got;" */
    size_t nfailed;
} contract_ctx_t;

/* ---- config ---- */

typedef struct {
    const char *name;
    int value;
} choice_t;

static int get_choice(const tg_conf_node_t *n, const choice_t *choices, int *out,
                      tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    char list[256] = "";
    for (const choice_t *c = choices; c->name != NULL; c++) {
        if (strcmp(s, c->name) == 0) {
            *out = c->value;
            return 0;
        }
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", c == choices ? "" : ", ",
                 c->name);
    }
    return tg_conf_error(err, n, "\"%s\" is not one of %s", s, list);
}

static const choice_t resumes[] = {{"none", RESUME_NONE},
                                   {"sync", RESUME_SYNC},
                                   {"sync_twice", RESUME_SYNC_TWICE},
                                   {"async", RESUME_ASYNC},
                                   {NULL, 0}};
static const choice_t statuses[] = {{"continue", TG_FILTER_CONTINUE},
                                    {"responded", TG_FILTER_RESPONDED},
                                    {"error", TG_FILTER_ERROR},
                                    {"pause", TG_FILTER_PAUSE},
                                    {NULL, 0}};
static const choice_t thens[] = {
    {"pause", TG_FILTER_PAUSE}, {"continue", TG_FILTER_CONTINUE}, {NULL, 0}};
static const choice_t actions[] = {{"continue", ACT_CONTINUE}, {"upper", ACT_UPPER},
                                   {"respond", ACT_RESPOND},   {"error", ACT_ERROR},
                                   {"pause", ACT_PAUSE},       {NULL, 0}};

/* A request header name from the config: the core's own rule, at load. */
static int get_header(const tg_conf_node_t *n, char **out, tg_conf_err_t *err)
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
    if ((*out = strdup(s)) == NULL)
        return tg_conf_error(err, n, "out of memory");
    return 0;
}

static int parse(contract_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    static const char *const keys[] = {
        "tag",       "header",       "resume",        "resume_status", "then",         "delay",
        "check_api", "request_body", "response_head", "response_body", "stray_resume", NULL};
    const tg_conf_node_t *n;
    const char *s;
    if (node->type == TG_CONF_NULL)
        return 0;
    if (tg_conf_check_keys(node, keys, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "tag"))) {
        if (tg_conf_get_string(n, &s, err) < 0)
            return -1;
        if (strlen(s) >= sizeof(c->tag))
            return tg_conf_error(err, n, "tag longer than %zu bytes", sizeof(c->tag) - 1);
        strcpy(c->tag, s);
    }
    if ((n = tg_conf_map_get(node, "header")) && get_header(n, &c->header, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "resume")) && get_choice(n, resumes, &c->resume, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "resume_status")) &&
        get_choice(n, statuses, &c->resume_status, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "then")) && get_choice(n, thens, &c->then, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "delay")) && tg_conf_get_duration_ms(n, &c->delay_ms, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "check_api")) && tg_conf_get_bool(n, &c->check_api, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "request_body")) &&
        get_choice(n, actions, &c->request_body, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "response_head")) &&
        get_choice(n, actions, &c->response_head, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "response_body")) &&
        get_choice(n, actions, &c->response_body, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "stray_resume")) &&
        tg_conf_get_bool(n, &c->stray_resume, err) < 0)
        return -1;
    return 0;
}

static void free_conf(contract_t *c)
{
    free(c->header);
    free(c);
}

static void destroy(void *inst)
{
    contract_t *c = inst;
    fprintf(stderr, "contract[%s]: destroy\n", c->tag);
    free_conf(c);
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    (void)env;
    contract_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    strcpy(c->tag, "-");
    c->then = TG_FILTER_PAUSE;
    c->delay_ms = 20;
    if (parse(c, node, err) < 0) {
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
    strcpy(w->tag, c->tag);
    fprintf(stderr, "contract[%s]: worker_init %u\n", c->tag, worker_id);
    return w;
}

static void worker_fini(void *inst, void *worker)
{
    const contract_t *c = inst;
    contract_worker_t *w = worker;
    fprintf(stderr, "contract[%s]: worker_fini %u\n", c->tag, w ? w->id : 0u);
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

static void check_request_api(contract_ctx_t *x, tg_request_t *r)
{
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
    /* The response head is not open in a request phase. */
    CHECK(x, tg_response_set_header(r, "X-Early", "v", 1), TG_ESTATE);
    CHECK(x, tg_response_set_status(r, 201), TG_ESTATE);
    CHECK(x, tg_response_remove_header(r, "X-Early"), 0);
    size_t len;
    CHECK(x, tg_response_header(r, "X-Early", &len) == NULL, 1);
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
        struct timeval tv = {(time_t)(c->delay_ms / 1000),
                             (suseconds_t)(c->delay_ms % 1000) * 1000};
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
    fprintf(stderr, "contract[%s]: log %d %.*s\n", c->tag, tg_response_status(r),
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
