/*
 * The worker's Redis connection: hiredis 0.14 async on the worker's
 * event_base. See redis.h for the states and the timeout scheme.
 *
 * hiredis facts this file relies on (0.14):
 *   - a failed connect calls onConnect(REDIS_ERR) and then frees the context
 *     itself, without onDisconnect;
 *   - a connection error runs every pending callback with reply NULL, then
 *     onDisconnect(REDIS_ERR), then frees the context;
 *   - redisAsyncFree() does the same (onDisconnect only if it was connected);
 *     called inside a reply callback it is deferred until that callback returns;
 *   - a reply is freed by hiredis when its callback returns.
 */
#include "redis.h"

#include <arpa/inet.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "conf_node.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "tollgate/clock.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define FREE_CALLS_MAX 1024 /* recycled call structs kept per connection */

enum { KIND_TIMEOUT = 0, KIND_DISCONNECTED, KIND_ERROR };
static const char *const kind_names[] = {"timeout", "disconnected", "error"};

typedef enum { RS_DISCONNECTED = 0, RS_CONNECTING, RS_READY } rs_state_t;

struct tg_redis_call_s {
    tg_redis_call_t *prev, *next; /* outstanding calls, oldest first */
    tg_redis_t *rc;
    tg_redis_cb_t cb; /* NULL once answered by a timeout, or cancelled */
    void *data;
    uint64_t sent_ms;     /* monotonic */
    uint64_t deadline_ms; /* sent_ms + timeout */
};

struct tg_redis_s {
    const tg_redis_conf_t *conf;
    struct event_base *base;
    unsigned worker_id;
    redisAsyncContext *ac; /* NULL while disconnected */
    rs_state_t state;
    int handshake_left; /* AUTH / SELECT replies still awaited */
    bool ever_ready;
    bool outage_logged; /* the current outage was logged */
    bool closing;       /* tg_redis_free() in progress */
    uint64_t backoff_ms;
    uint64_t stall_ms;
    struct event *retry_timer;
    struct event *connect_timer;
    struct event *call_timer;
    bool call_timer_armed;
    uint64_t call_timer_at;
    tg_redis_call_t *head, *tail; /* every call hiredis still holds */
    tg_redis_call_t *expire;      /* first call the timer has not passed yet */
    tg_redis_call_t *free_calls;
    size_t nfree;
    tg_redis_stats_t stats;
};

/* ---- helpers ------------------------------------------------------------ */

static void add_timer_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = tg_timeval_ms(ms);
    evtimer_add(ev, &tv);
}

static void count(tg_redis_t *rc, size_t kind)
{
    uint64_t *field = kind == KIND_TIMEOUT        ? &rc->stats.timeouts
                      : kind == KIND_DISCONNECTED ? &rc->stats.disconnected
                                                  : &rc->stats.errors;
    (*field)++;
    if (rc->conf->metric_errors >= 0)
        tg_metrics_add_worker(tg_metrics_registry(), rc->worker_id, rc->conf->metric_errors, kind,
                              1);
}

static tg_redis_call_t *call_get(tg_redis_t *rc)
{
    tg_redis_call_t *c = rc->free_calls;
    if (c != NULL) {
        rc->free_calls = c->next;
        rc->nfree--;
        return c;
    }
    return malloc(sizeof(*c));
}

static void call_put(tg_redis_t *rc, tg_redis_call_t *c)
{
    if (rc->nfree >= FREE_CALLS_MAX) {
        free(c);
        return;
    }
    c->next = rc->free_calls;
    rc->free_calls = c;
    rc->nfree++;
}

static void call_link(tg_redis_t *rc, tg_redis_call_t *c)
{
    c->next = NULL;
    c->prev = rc->tail;
    if (rc->tail != NULL)
        rc->tail->next = c;
    else
        rc->head = c;
    rc->tail = c;
    if (rc->expire == NULL)
        rc->expire = c;
}

static void call_unlink(tg_redis_t *rc, tg_redis_call_t *c)
{
    if (rc->expire == c)
        rc->expire = c->next;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        rc->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        rc->tail = c->prev;
}

/* ---- the call timer ----------------------------------------------------- */

/* Next moment the timer has work: the next deadline, or the moment the oldest
 * unanswered call counts as a stall. */
static void arm_call_timer(tg_redis_t *rc)
{
    uint64_t at;
    if (rc->expire != NULL)
        at = rc->expire->deadline_ms;
    else if (rc->head != NULL)
        at = rc->head->sent_ms + rc->stall_ms;
    else {
        if (rc->call_timer_armed)
            evtimer_del(rc->call_timer);
        rc->call_timer_armed = false;
        return;
    }
    if (rc->call_timer_armed && rc->call_timer_at <= at)
        return; /* fires earlier anyway and re-arms then */
    uint64_t now = tg_now_ms();
    add_timer_ms(rc->call_timer, at > now ? at - now : 0);
    rc->call_timer_armed = true;
    rc->call_timer_at = at;
}

static void drop_connection(tg_redis_t *rc, const char *why);

static void call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_redis_t *rc = arg;
    rc->call_timer_armed = false;
    uint64_t now = tg_now_ms();
    while (rc->expire != NULL && rc->expire->deadline_ms <= now) {
        tg_redis_call_t *c = rc->expire;
        rc->expire = c->next;
        if (c->cb == NULL)
            continue; /* cancelled */
        tg_redis_cb_t cb = c->cb;
        c->cb = NULL; /* the late reply is dropped */
        count(rc, KIND_TIMEOUT);
        cb(c->data, NULL, "timeout");
    }
    if (rc->head != NULL && rc->ac != NULL && now - rc->head->sent_ms >= rc->stall_ms) {
        char why[64];
        snprintf(why, sizeof(why), "no reply for %llu ms", (unsigned long long)rc->stall_ms);
        drop_connection(rc, why);
    }
    arm_call_timer(rc);
}

/* ---- connection state --------------------------------------------------- */

static void schedule_retry(tg_redis_t *rc)
{
    if (rc->closing)
        return;
    add_timer_ms(rc->retry_timer, rc->backoff_ms);
    rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
}

/* The connection is gone (or never came up): log once per outage, retry. */
static void on_lost(tg_redis_t *rc, const char *why)
{
    rc->state = RS_DISCONNECTED;
    rc->ac = NULL;
    evtimer_del(rc->connect_timer);
    if (rc->closing)
        return;
    if (!rc->outage_logged) {
        if (rc->ever_ready)
            tg_log_warn("redis: connection to %s lost: %s (worker %u)", rc->conf->name, why,
                        rc->worker_id);
        else
            tg_log_warn("redis: cannot connect to %s: %s (worker %u)", rc->conf->name, why,
                        rc->worker_id);
        rc->outage_logged = true;
    }
    schedule_retry(rc);
}

/* Closes the current context ourselves: pending calls get "connection lost"
 * (reply_cb with NULL), then we retry. */
static void drop_connection(tg_redis_t *rc, const char *why)
{
    redisAsyncContext *ac = rc->ac;
    rc->ac = NULL;
    rc->state = RS_DISCONNECTED;
    if (ac != NULL) {
        ac->onDisconnect = NULL; /* on_lost below instead */
        ac->onConnect = NULL;
        redisAsyncFree(ac);
    }
    on_lost(rc, why);
}

static void become_ready(tg_redis_t *rc)
{
    rc->state = RS_READY;
    evtimer_del(rc->connect_timer);
    rc->backoff_ms = BACKOFF_MIN_MS;
    rc->stats.connects++;
    if (rc->outage_logged)
        tg_log_notice("redis: connected to %s (worker %u)", rc->conf->name, rc->worker_id);
    else
        tg_log_info("redis: connected to %s (worker %u)", rc->conf->name, rc->worker_id);
    rc->outage_logged = false;
    rc->ever_ready = true;
}

static void handshake_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    tg_redis_t *rc = ac->data;
    const redisReply *reply = r;
    if (reply == NULL || ac != rc->ac)
        return; /* the connection is going away: disconnect handling follows */
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof(why), "handshake failed: %.*s", (int)reply->len, reply->str);
        drop_connection(rc, why);
        return;
    }
    if (--rc->handshake_left == 0)
        become_ready(rc);
}

static void send_handshake(tg_redis_t *rc)
{
    const tg_redis_conf_t *cf = rc->conf;
    rc->handshake_left = 0;
    if (cf->password != NULL) {
        const char *argv[] = {"AUTH", cf->password};
        redisAsyncCommandArgv(rc->ac, handshake_cb, NULL, 2, argv, NULL);
        rc->handshake_left++;
    }
    if (cf->database != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%u", (unsigned)cf->database);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(rc->ac, handshake_cb, NULL, 2, argv, NULL);
        rc->handshake_left++;
    }
    /* A frozen server still completes TCP connects (the kernel's backlog):
     * only an answer proves it is alive. */
    const char *ping[] = {"PING"};
    redisAsyncCommandArgv(rc->ac, handshake_cb, NULL, 1, ping, NULL);
    rc->handshake_left++;
}

static void connect_cb(const redisAsyncContext *ac, int status)
{
    tg_redis_t *rc = ac->data;
    if (ac != rc->ac)
        return;
    if (status != REDIS_OK) {
        on_lost(rc, ac->errstr); /* hiredis frees ac when we return */
        return;
    }
    send_handshake(rc);
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    (void)status;
    tg_redis_t *rc = ac->data;
    if (ac != rc->ac)
        return;
    on_lost(rc, ac->err ? ac->errstr : "closed");
}

static void start_connect(tg_redis_t *rc)
{
    const tg_redis_conf_t *cf = rc->conf;
    redisAsyncContext *ac = cf->unix_path != NULL ? redisAsyncConnectUnix(cf->unix_path)
                                                  : redisAsyncConnect(cf->host, cf->port);
    if (ac == NULL) {
        on_lost(rc, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        on_lost(rc, why);
        return;
    }
    ac->data = rc;
    if (redisLibeventAttach(ac, rc->base) != REDIS_OK) {
        redisAsyncFree(ac);
        on_lost(rc, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    rc->ac = ac;
    rc->state = RS_CONNECTING;
    add_timer_ms(rc->connect_timer, cf->connect_timeout_ms);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_connect(arg);
}

static void connect_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_redis_t *rc = arg;
    if (rc->state == RS_CONNECTING)
        drop_connection(rc, "connect timeout");
}

/* ---- commands ----------------------------------------------------------- */

static void reply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    tg_redis_call_t *c = privdata;
    tg_redis_t *rc = c->rc;
    const redisReply *reply = r;
    call_unlink(rc, c);
    if (reply == NULL && ac == rc->ac)
        rc->state = RS_DISCONNECTED; /* no new command on a dying context */
    if (c->cb == NULL) {
        if (reply != NULL)
            rc->stats.late_replies++;
    } else if (reply == NULL) {
        count(rc, KIND_DISCONNECTED);
        c->cb(c->data, NULL, rc->closing ? "shutdown" : "connection lost");
    } else {
        if (reply->type == REDIS_REPLY_ERROR)
            count(rc, KIND_ERROR);
        c->cb(c->data, reply, NULL);
    }
    call_put(rc, c);
    if (!rc->closing)
        arm_call_timer(rc);
}

tg_redis_call_t *tg_redis_send(tg_redis_t *rc, tg_redis_cb_t cb, void *data, int argc,
                               const char **argv, const size_t *argvlen)
{
    tg_redis_call_t *c = NULL;
    if (rc->state == RS_READY)
        c = call_get(rc);
    if (c != NULL) {
        uint64_t now = tg_now_ms();
        *c = (tg_redis_call_t){.rc = rc,
                               .cb = cb,
                               .data = data,
                               .sent_ms = now,
                               .deadline_ms = now + rc->conf->timeout_ms};
        if (redisAsyncCommandArgv(rc->ac, reply_cb, c, argc, argv, argvlen) == REDIS_OK) {
            call_link(rc, c);
            arm_call_timer(rc);
            return c;
        }
        call_put(rc, c);
    }
    count(rc, KIND_DISCONNECTED);
    cb(data, NULL, "redis not connected");
    return NULL;
}

bool tg_redis_ready(const tg_redis_t *rc)
{
    return rc != NULL && rc->state == RS_READY;
}

void tg_redis_get_stats(const tg_redis_t *rc, tg_redis_stats_t *out)
{
    *out = rc->stats;
}

/* ---- public API (include/tollgate/redis.h) ------------------------------ */

static tg_redis_t *redis_of(const tg_request_t *r)
{
    const tg_request_t *req = (const tg_request_t *)r;
    return req->conn != NULL && req->conn->worker != NULL ? req->conn->worker->redis : NULL;
}

tg_redis_call_t *tg_redis_command(tg_request_t *r, tg_redis_cb_t cb, void *data, int argc,
                                  const char **argv, const size_t *argvlen)
{
    tg_redis_t *rc = redis_of(r);
    if (rc == NULL) {
        cb(data, NULL, "redis not configured");
        return NULL;
    }
    return tg_redis_send(rc, cb, data, argc, argv, argvlen);
}

void tg_redis_cancel(tg_redis_call_t *call)
{
    if (call != NULL)
        call->cb = NULL;
}

bool tg_redis_connected(tg_request_t *r)
{
    return tg_redis_ready(redis_of(r));
}

/* ---- lifecycle ---------------------------------------------------------- */

tg_redis_t *tg_redis_new(const tg_redis_conf_t *conf, struct event_base *base, unsigned worker_id)
{
    tg_redis_t *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return NULL;
    rc->conf = conf;
    rc->base = base;
    rc->worker_id = worker_id;
    rc->backoff_ms = BACKOFF_MIN_MS;
    rc->stall_ms =
        conf->timeout_ms * 10 > TG_REDIS_STALL_MS ? conf->timeout_ms * 10 : TG_REDIS_STALL_MS;
    rc->retry_timer = evtimer_new(base, retry_cb, rc);
    rc->connect_timer = evtimer_new(base, connect_timer_cb, rc);
    rc->call_timer = evtimer_new(base, call_timer_cb, rc);
    if (rc->retry_timer == NULL || rc->connect_timer == NULL || rc->call_timer == NULL) {
        tg_redis_free(rc);
        return NULL;
    }
    start_connect(rc);
    return rc;
}

void tg_redis_free(tg_redis_t *rc)
{
    if (rc == NULL)
        return;
    rc->closing = true;
    rc->state = RS_DISCONNECTED;
    redisAsyncContext *ac = rc->ac;
    rc->ac = NULL;
    if (ac != NULL) {
        ac->onDisconnect = NULL;
        ac->onConnect = NULL;
        redisAsyncFree(ac); /* pending calls: reply_cb(NULL) -> "shutdown" */
    }
    if (rc->retry_timer)
        event_free(rc->retry_timer);
    if (rc->connect_timer)
        event_free(rc->connect_timer);
    if (rc->call_timer)
        event_free(rc->call_timer);
    while (rc->free_calls != NULL) {
        tg_redis_call_t *c = rc->free_calls;
        rc->free_calls = c->next;
        free(c);
    }
    free(rc);
}

/* ---- config ------------------------------------------------------------- */

static const char *const redis_keys[] = {"address",  "timeout",  "connect_timeout",
                                         "password", "database", NULL};

static char *dup_s(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort(); /* same policy as the config arena: no memory at load, no gateway */
    return d;
}

static int parse_unix(tg_redis_conf_t *rc, const tg_config_t *cfg, const tg_conf_node_t *n,
                      const char *path, tg_conf_err_t *err)
{
    char buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    if (*path == '\0')
        return tg_conf_error(err, n, "empty unix socket path");
    int len = path[0] == '/' || cfg == NULL || cfg->dir == NULL
                  ? snprintf(buf, sizeof(buf), "%s", path)
                  : snprintf(buf, sizeof(buf), "%s/%s", cfg->dir, path);
    if (len < 0 || (size_t)len >= sizeof(buf) - 1)
        return tg_conf_error(err, n, "unix socket path too long (at most %zu bytes)",
                             sizeof(buf) - 2);
    rc->unix_path = dup_s(buf);
    return 0;
}

static int parse_tcp(tg_redis_conf_t *rc, const tg_conf_node_t *n, const char *text,
                     tg_conf_err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char eb[300], ip[INET6_ADDRSTRLEN];
    if (text[0] == ':' || text[0] == '*')
        return tg_conf_error(err, n, "redis address needs a host: '%s'", text);
    if (tg_config_parse_address(text, &ss, &len, eb, sizeof(eb)) < 0)
        return tg_conf_error(err, n, "%s", eb);
    const void *a;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)&ss;
        a = &sin->sin_addr;
        rc->port = ntohs(sin->sin_port);
    } else {
        const struct sockaddr_in6 *sin6 = (const void *)&ss;
        a = &sin6->sin6_addr;
        rc->port = ntohs(sin6->sin6_port);
    }
    inet_ntop(ss.ss_family, a, ip, sizeof(ip));
    rc->host = dup_s(ip);
    return 0;
}

static int parse_address(tg_redis_conf_t *rc, const tg_config_t *cfg, const tg_conf_node_t *map,
                         tg_conf_err_t *err)
{
    const tg_conf_node_t *n = tg_conf_map_get(map, "address");
    const char *text;
    if (n == NULL)
        return tg_conf_error(err, map, "missing required key 'address'");
    if (tg_conf_get_string(n, &text, err) < 0)
        return -1;
    rc->name = dup_s(text);
    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix(rc, cfg, n, text + 5, err);
    return parse_tcp(rc, n, text, err);
}

static int parse_duration(const tg_conf_node_t *map, const char *key, uint64_t *out,
                          tg_conf_err_t *err)
{
    const tg_conf_node_t *n = tg_conf_map_get(map, key);
    if (n == NULL)
        return 0;
    if (tg_conf_get_duration_ms(n, out, err) < 0)
        return -1;
    if (*out == 0)
        return tg_conf_error(err, n, "must be greater than 0");
    return 0;
}

static int parse_rest(tg_redis_conf_t *rc, const tg_conf_node_t *map, tg_conf_err_t *err)
{
    const tg_conf_node_t *n;
    const char *s;
    uint64_t v;
    if ((n = tg_conf_map_get(map, "password")) != NULL && n->type != TG_CONF_NULL) {
        if (tg_conf_get_string(n, &s, err) < 0)
            return -1;
        if (*s != '\0') /* "${REDIS_PASSWORD}" left unset: no AUTH */
            rc->password = dup_s(s);
    }
    if ((n = tg_conf_map_get(map, "database")) != NULL) {
        if (tg_conf_get_uint(n, 0, INT32_MAX, &v, err) < 0)
            return -1;
        rc->database = (uint32_t)v;
    }
    if (parse_duration(map, "timeout", &rc->timeout_ms, err) < 0)
        return -1;
    return parse_duration(map, "connect_timeout", &rc->connect_timeout_ms, err);
}

int tg_redis_conf_parse(tg_config_t *cfg, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    if (node->type != TG_CONF_MAP)
        return tg_conf_error(err, node, "expected a map");
    if (tg_conf_check_keys_in(node, redis_keys, "redis", err) < 0)
        return -1;
    tg_redis_conf_t *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return tg_conf_error(err, node, "out of memory");
    rc->timeout_ms = 50;
    rc->connect_timeout_ms = 1000;
    if (parse_address(rc, cfg, node, err) < 0 || parse_rest(rc, node, err) < 0) {
        tg_redis_conf_free(rc);
        return -1;
    }
    rc->metric_errors = tg_metrics_counter(tg_metrics_registry(), "tollgate_redis_errors_total",
                                           "Failed Redis calls by kind.", "kind", kind_names, 3);
    cfg->redis = rc;
    return 0;
}

void tg_redis_conf_free(tg_redis_conf_t *conf)
{
    if (conf == NULL)
        return;
    free(conf->name);
    free(conf->host);
    free(conf->unix_path);
    free(conf->password);
    free(conf);
}
