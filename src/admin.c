#include "admin.h"
#include "admin_action.h"
#include "admin_guard.h"
#include "tollgate/plugin.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* the request's HTTP version */
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/queue.h> /* TAILQ_FOREACH over evhttp's headers */
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "status_page.h"

/* A scrape or a config dump is small and fast: a client that takes longer is
 * stuck, and the admin thread serves everyone. */
#define ADMIN_TIMEOUT_S 10
#define ADMIN_MAX_HEADERS 8192
#define ADMIN_MAX_BODY 1024

struct tg_admin_s {
    tg_config_t *cfg;
    tg_worker_t *workers;
    unsigned nworkers;
    struct event_base *base;
    struct evhttp *http;
    int stop_fd; /* eventfd: another thread asks the loop to end */
    struct event *stop_ev;
    pthread_t thread;
    bool started;
    atomic_bool ready;
    char conf_host[256]; /* host part of the bound admin.address, for Host checks */
    tg_status_t *status; /* /status.json's rate snapshots (status_page.h) */
};

/* ---- HTTP --------------------------------------------------------------- */

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                  struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    /* One reply, then close: whatever follows a refused request (pipelined
     * bytes, a body evhttp would have to skip) is never read. */
    if (code >= 400)
        evhttp_add_header(h, "Connection", "close");
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* evhttp would send the body: RFC 9110 section 9.3.2 wants the GET
         * response's headers (its length included) and no content. */
        char len[32];
        snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
        evhttp_add_header(h, "Content-Length", len);
        evhttp_send_reply(req, code, reason, NULL);
        return;
    }
    evhttp_send_reply(req, code, reason, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, text, strlen(text));
    reply(req, code, reason, "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

static void get_healthz(tg_admin_t *a, struct evhttp_request *req)
{
    (void)a;
    reply_text(req, 200, "OK", "ok\n");
}

static atomic_int readiness_holds;

void tg_readiness_hold(void)
{
    atomic_fetch_add(&readiness_holds, 1);
}

void tg_readiness_release(void)
{
    atomic_fetch_sub(&readiness_holds, 1);
}

static void get_readyz(tg_admin_t *a, struct evhttp_request *req)
{
    if (atomic_load(&a->ready) && atomic_load(&readiness_holds) == 0)
        reply_text(req, 200, "OK", "ready\n");
    else
        reply_text(req, 503, "Service Unavailable", "not ready\n");
}

/* a->cfg changes on reload (main thread) while the admin thread reads it. */
static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static int (*reload_fn)(void *arg, char *err, size_t errlen);
static void *reload_arg;

static tg_config_t *current_config(tg_admin_t *a)
{
    pthread_mutex_lock(&cfg_lock);
    tg_config_t *cfg = tg_config_ref(a->cfg);
    pthread_mutex_unlock(&cfg_lock);
    return cfg;
}

void tg_admin_set_config(tg_admin_t *a, tg_config_t *cfg)
{
    tg_config_ref(cfg);
    pthread_mutex_lock(&cfg_lock);
    tg_config_t *old = a->cfg;
    a->cfg = cfg;
    pthread_mutex_unlock(&cfg_lock);
    tg_config_unref(old);
}

void tg_admin_set_reload(tg_admin_t *a, int (*fn)(void *arg, char *err, size_t errlen), void *arg)
{
    (void)a;
    reload_fn = fn;
    reload_arg = arg;
}

/* POST /reload: 200 with the new config loaded, 400 with the FILE:LINE:COL
 * error of a config that failed (the running one stays). */
static void post_reload(tg_admin_t *a, struct evhttp_request *req)
{
    (void)a;
    char err[512] = "";
    if (reload_fn == NULL) {
        reply_text(req, 503, "Service Unavailable", "reload not available\n");
        return;
    }
    if (reload_fn(reload_arg, err, sizeof(err)) == 0) {
        reply_text(req, 200, "OK", "reloaded\n");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "reload failed: %s\n", err);
    reply(req, 400, "Bad Request", "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

static void get_metrics(tg_admin_t *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    tg_config_t *cfg = current_config(a);
    /* OpenMetrics when the scraper lists it (Prometheus does, first). */
    const char *accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
    bool om = accept != NULL && strstr(accept, "application/openmetrics-text") != NULL;
    tg_metrics_render_format(b, cfg, a->workers, a->nworkers, om);
    tg_config_unref(cfg);
    reply(req, 200, "OK",
          om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8",
          b);
    evbuffer_free(b);
}

static void get_status_json(tg_admin_t *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    tg_config_t *cfg = current_config(a);
    tg_status_json(a->status, b, cfg, a->workers, a->nworkers);
    tg_config_unref(cfg);
    reply(req, 200, "OK", "application/json", b);
    evbuffer_free(b);
}

static void get_status(tg_admin_t *a, struct evhttp_request *req)
{
    (void)a;
    struct evbuffer *b = evbuffer_new();
    tg_status_html(b);
    /* Its own script and style only: nothing else may run or load here. */
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
                      "default-src 'none'; script-src 'unsafe-inline'; style-src "
                      "'unsafe-inline'; connect-src 'self'");
    reply(req, 200, "OK", "text/html; charset=utf-8", b);
    evbuffer_free(b);
}

static void get_config(tg_admin_t *a, struct evhttp_request *req)
{
    tg_config_t *cfg = current_config(a);
    json_t *j = tg_admin_config_json(cfg);
    tg_config_unref(cfg);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    struct evbuffer *b = text ? evbuffer_new() : NULL;
    if (b == NULL) {
        free(text);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, text, strlen(text));
    evbuffer_add(b, "\n", 1);
    free(text);
    reply(req, 200, "OK", "application/json", b);
    evbuffer_free(b);
}

/* ---- who may ask (src/admin_guard.h) ------------------------------------ */

/* The request headers the checks read, found in one pass. */
typedef struct {
    const char *host, *authorization, *content_type;
    unsigned nhost, nauthorization, ncontent_type;
    bool origin;
} heads_t;

static void scan_heads(struct evhttp_request *req, heads_t *hd)
{
    struct evkeyval *kv;
    memset(hd, 0, sizeof(*hd));
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
        if (strcasecmp(kv->key, "Host") == 0) {
            hd->host = kv->value;
            hd->nhost++;
        } else if (strcasecmp(kv->key, "Authorization") == 0) {
            hd->authorization = kv->value;
            hd->nauthorization++;
        } else if (strcasecmp(kv->key, "Content-Type") == 0) {
            hd->content_type = kv->value;
            hd->ncontent_type++;
        } else if (strcasecmp(kv->key, "Origin") == 0) {
            hd->origin = true;
        }
    }
}

/* The address the connection arrived on (admin may listen on 0.0.0.0). */
static const struct sockaddr *local_addr(struct evhttp_request *req, struct sockaddr_storage *ss)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    socklen_t len = sizeof(*ss);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)ss, &len) < 0)
        return NULL;
    return (const struct sockaddr *)ss;
}

static bool token_ok(tg_admin_t *a, const heads_t *hd)
{
    tg_config_t *cfg = current_config(a);
    bool ok =
        !cfg->has_admin_token ||
        (hd->nauthorization == 1 && tg_admin_bearer_ok(hd->authorization, cfg->admin_token_sha256));
    tg_config_unref(cfg);
    return ok;
}

/* Host, then the token; false when it answered. A Host-less HTTP/1.0 request
 * passes: every browser sends Host, so it cannot come from a page, and old
 * health checkers send none. HTTP/1.1 needs exactly one (RFC 9112 section 3.2). */
static bool guard(tg_admin_t *a, struct evhttp_request *req, const heads_t *hd)
{
    struct sockaddr_storage ss;
    bool http10 = req->major == 1 && req->minor == 0;
    if (hd->nhost > 1 || (hd->nhost == 0 && !http10)) {
        reply_text(req, 400, "Bad Request", "exactly one Host header is required\n");
        return false;
    }
    if (hd->nhost == 1 && !tg_admin_host_ok(hd->host, a->conf_host, local_addr(req, &ss))) {
        reply_text(req, 403, "Forbidden", "Host does not name this admin endpoint\n");
        return false;
    }
    if (!token_ok(a, hd)) {
        /* RFC 6750 section 3.1: error only when a token was presented. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          hd->nauthorization == 0
                              ? "Bearer realm=\"tollgate admin\""
                              : "Bearer realm=\"tollgate admin\", error=\"invalid_token\"");
        reply_text(req, 401, "Unauthorized", "admin token required\n");
        return false;
    }
    return true;
}

/* open: no Host check and no token. Probes and scrapers address the endpoint
 * by whatever name their platform gives it (a service name, a node IP), and
 * these answers disclose no secret and change nothing. Everything else, an
 * unknown path included, is guarded. */
typedef struct {
    const char *path;
    bool open;
    bool post; /* POST only; otherwise GET and HEAD */
    void (*serve)(tg_admin_t *a, struct evhttp_request *req);
} endpoint_t;

static const endpoint_t endpoints[] = {
    {"/healthz", true, false, get_healthz},
    {"/readyz", true, false, get_readyz},
    {"/metrics", true, false, get_metrics},
    {"/config", false, false, get_config},
    {"/reload", false, true, post_reload},
    /* The same figures as /metrics, for people (status_page.h). */
    {"/status", true, false, get_status},
    {"/status.json", true, false, get_status_json},
};

static const endpoint_t *find_endpoint(const char *uri)
{
    size_t len = strcspn(uri, "?");
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
        if (strlen(endpoints[i].path) == len && strncmp(endpoints[i].path, uri, len) == 0)
            return &endpoints[i];
    return NULL;
}

/* Method, then (POST) the body's type; false when it answered. */
static bool method_ok(const endpoint_t *e, struct evhttp_request *req, const heads_t *hd)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    bool allowed = e->post ? m == EVHTTP_REQ_POST : m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    if (!allowed) {
        /* RFC 9110 section 15.5.6: a 405 lists the allowed methods. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          e->post ? "POST" : "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "method not allowed\n");
        return false;
    }
    size_t body = evbuffer_get_length(evhttp_request_get_input_buffer(req));
    if (e->post && (hd->ncontent_type > 1 || !tg_admin_reload_type_ok(hd->content_type, body))) {
        /* A form a page posts cross-site without a preflight. */
        reply_text(req, 415, "Unsupported Media Type",
                   "send no body, or Content-Type: application/json\n");
        return false;
    }
    return true;
}

/* A plugin's action (include/tollgate/admin.h): POST only, the body rules
 * of /reload. */
static void serve_action(struct evhttp_request *req, const char *uri, const heads_t *hd)
{
    static const endpoint_t post = {"", false, true, NULL};
    if (!method_ok(&post, req, hd))
        return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
    char out[TG_ADMIN_ACTION_OUT_MAX];
    int status = tg_admin_action_run(uri, strcspn(uri, "?"), body, len, out);
    if (status == 0) { /* removed meanwhile */
        reply_text(req, 404, "Not Found", "not found\n");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add_printf(b, "%s\n", out);
    reply(req, status, status == 200 ? "OK" : "Error", "application/json", b);
    evbuffer_free(b);
}

static void handle(struct evhttp_request *req, void *arg)
{
    tg_admin_t *a = arg;
    const char *uri = evhttp_request_get_uri(req);
    heads_t hd;
    scan_heads(req, &hd);
    /* Origin-form only: CONNECT, absolute-form and "*" are not requests for
     * this server (RFC 9112 section 3.2). */
    if (uri[0] != '/' || evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT) {
        /* evhttp neither frames nor closes a reply to CONNECT (it expects a
         * tunnel): answered as the refusal of a GET would be. */
        req->type = EVHTTP_REQ_GET;
        reply_text(req, 400, "Bad Request", "bad request target\n");
        return;
    }
    /* A browser marks cross-origin requests (and same-origin POSTs) with
     * Origin; no probe, scraper or curl sends it. */
    if (hd.origin) {
        reply_text(req, 403, "Forbidden", "requests with Origin are refused\n");
        return;
    }
    const endpoint_t *e = find_endpoint(uri);
    if ((e == NULL || !e->open) && !guard(a, req, &hd))
        return;
    if (e == NULL && tg_admin_action_exists(uri, strcspn(uri, "?"))) {
        serve_action(req, uri, &hd);
        return;
    }
    if (e == NULL) {
        reply_text(req, 404, "Not Found", "not found\n");
        return;
    }
    if (method_ok(e, req, &hd))
        e->serve(a, req);
}

/* The admin endpoint whose thread this is (plugin actions run on it). */
static _Thread_local tg_admin_t *admin_self;

tg_config_t *tg_admin_thread_config(unsigned *nworkers)
{
    if (admin_self == NULL)
        return NULL;
    *nworkers = admin_self->nworkers;
    return current_config(admin_self);
}

/* ---- thread and lifecycle ----------------------------------------------- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    tg_admin_t *a = arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        tg_log_warn("admin: eventfd read: %s", strerror(errno));
    event_base_loopbreak(a->base);
}

static void *admin_main(void *arg)
{
    tg_admin_t *a = arg;
    admin_self = a;
    event_base_dispatch(a->base);
    return NULL;
}

int tg_admin_listen(const tg_config_t *cfg, char *errbuf, size_t errlen)
{
    const tg_listen_conf_t *l = &cfg->admin;
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == 0 && listen(fd, 128) == 0)
        return fd;
    snprintf(errbuf, errlen, "cannot listen on %s: %s", l->name, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static void admin_free(tg_admin_t *a)
{
    if (a->http)
        evhttp_free(a->http);
    if (a->stop_ev)
        event_free(a->stop_ev);
    if (a->stop_fd >= 0)
        close(a->stop_fd);
    if (a->base)
        event_base_free(a->base);
    if (a->cfg)
        tg_config_unref(a->cfg);
    tg_status_free(a->status);
    free(a);
}

static int setup_http(tg_admin_t *a, int fd, char *errbuf, size_t errlen)
{
    a->http = evhttp_new(a->base);
    if (a->http == NULL) {
        close(fd);
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    /* Every method reaches handle(), which answers 405 itself (with Allow). */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(a->http, handle, a);
    if (evhttp_accept_socket_with_handle(a->http, fd) == NULL) {
        close(fd);
        snprintf(errbuf, errlen, "cannot listen on %s", a->cfg->admin.name);
        return -1;
    }
    return 0;
}

static int start_thread(tg_admin_t *a)
{
    /* Like the workers: signals are for the main thread's loop. */
    sigset_t set, old;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = pthread_create(&a->thread, NULL, admin_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    a->started = rc == 0;
    return rc;
}

tg_admin_t *tg_admin_start(tg_config_t *cfg, int fd, tg_worker_t *workers, unsigned nworkers,
                           char *errbuf, size_t errlen)
{
    tg_admin_t *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        close(fd);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    a->cfg = tg_config_ref(cfg);
    tg_admin_conf_host(cfg->admin.name, a->conf_host, sizeof(a->conf_host));
    a->workers = workers;
    a->nworkers = nworkers;
    a->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a->base = event_base_new();
    a->status = tg_status_new();
    if (a->stop_fd < 0 || a->base == NULL || a->status == NULL) {
        snprintf(errbuf, errlen, "cannot create the admin loop: %s", strerror(errno));
        close(fd);
        goto fail;
    }
    a->stop_ev = event_new(a->base, a->stop_fd, EV_READ | EV_PERSIST, stop_cb, a);
    if (a->stop_ev == NULL || event_add(a->stop_ev, NULL) < 0) {
        snprintf(errbuf, errlen, "cannot create the admin loop");
        close(fd);
        goto fail;
    }
    if (setup_http(a, fd, errbuf, errlen) < 0)
        goto fail; /* setup_http closed fd */
    int rc = start_thread(a);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot start the admin thread: %s", strerror(rc));
        goto fail;
    }
    return a;
fail:
    admin_free(a);
    return NULL;
}

void tg_admin_set_ready(tg_admin_t *a, bool ready)
{
    if (a != NULL)
        atomic_store(&a->ready, ready);
}

void tg_admin_stop(tg_admin_t *a)
{
    if (a == NULL)
        return;
    if (a->started) {
        uint64_t one = 1;
        if (write(a->stop_fd, &one, sizeof(one)) < 0)
            tg_log_warn("admin: cannot notify: %s", strerror(errno));
        pthread_join(a->thread, NULL);
    }
    admin_free(a);
}
