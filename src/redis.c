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
 *   - a reply is freed by hiredis when its callback returns;
 *   - a command only appends to the output buffer and asks for the write
 *     event (ev.addWrite); redisAsyncHandleWrite() writes what is buffered.
 *
 * Writes: instead of waiting for the socket's write event (an epoll_ctl to
 * add it, one more loop iteration, an epoll_ctl to remove it), the commands
 * of an iteration are written at its end by `flush` (event_active, so it runs
 * after the callbacks already due in this iteration, e.g. a rate-limit
 * batch): one write(2) per iteration, no epoll_ctl. Only a write that could
 * not finish (socket buffer full) falls back to the write event.
 */
#include "redis.h"
#include "redis_cluster.h"
#include "redis_sentinel.h"

#include <arpa/inet.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "tollgate/clock.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define FREE_CALLS_MAX 1024 /* recycled call structs kept per connection */

enum { KIND_TIMEOUT = 0, KIND_DISCONNECTED, KIND_ERROR };

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
    struct event *flush; /* writes what this iteration's commands buffered */
    bool flushing;       /* inside redisAsyncHandleWrite() from flush_cb */
    bool call_timer_armed;
    uint64_t call_timer_at;
    tg_redis_call_t *head, *tail; /* every call hiredis still holds */
    tg_redis_call_t *expire;      /* first call the timer has not passed yet */
    tg_redis_call_t *free_calls;
    size_t nfree;
    tg_redis_stats_t stats;
    tg_redis_sentinel_t *sentinel; /* sentinel mode: discovery and the +switch-master watch */
    tg_redis_cluster_t *cluster;   /* cluster mode: this rc only hands commands to it */
    char primary_host[64];         /* sentinel mode: the primary resolved last */
    int primary_port;
    char peer[96]; /* what we connect to, for logs */
};

#define ROLE_CHECK ((void *)1) /* handshake_cb privdata of the ROLE command */

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
    tg_redis_sentinel_cancel(rc->sentinel);
    if (rc->closing)
        return;
    if (!rc->outage_logged) {
        if (rc->ever_ready)
            tg_log_warn("redis: connection to %s lost: %s (worker %u)", rc->peer, why,
                        rc->worker_id);
        else
            tg_log_warn("redis: cannot connect to %s: %s (worker %u)", rc->peer, why,
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
    /* Behind Sentinel, which primary a worker uses is news worth a line. */
    if (rc->outage_logged || rc->sentinel != NULL)
        tg_log_notice("redis: connected to %s (worker %u)", rc->peer, rc->worker_id);
    else
        tg_log_info("redis: connected to %s (worker %u)", rc->peer, rc->worker_id);
    rc->outage_logged = false;
    rc->ever_ready = true;
}

/* What ROLE says, when it is not "master" (a Sentinel may answer with a
 * primary that was just demoted): NULL when it is master. */
static const char *not_master(const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return "an unexpected ROLE reply";
    return strcmp(reply->element[0]->str, "master") == 0 ? NULL : reply->element[0]->str;
}

static void handshake_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    tg_redis_t *rc = ac->data;
    const redisReply *reply = r;
    if (reply == NULL || ac != rc->ac)
        return; /* the connection is going away: disconnect handling follows */
    char why[160];
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "handshake failed: %.*s", (int)reply->len, reply->str);
        drop_connection(rc, why);
        return;
    }
    const char *role = privdata == ROLE_CHECK ? not_master(reply) : NULL;
    if (role != NULL) {
        snprintf(why, sizeof(why), "role is %s, not master", role);
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
        /* AUTH [username] password: the ACL form only with a username. */
        const char *argv[] = {"AUTH", cf->username != NULL ? cf->username : cf->password,
                              cf->password};
        redisAsyncCommandArgv(rc->ac, handshake_cb, NULL, cf->username != NULL ? 3 : 2, argv, NULL);
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
     * only an answer proves it is alive. Behind Sentinel, ROLE answers that
     * and also whether this is still the primary. */
    const char *ping[] = {cf->sentinel_master != NULL ? "ROLE" : "PING"};
    redisAsyncCommandArgv(rc->ac, handshake_cb, cf->sentinel_master != NULL ? ROLE_CHECK : NULL, 1,
                          ping, NULL);
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

/* ev.addWrite: write at the end of this iteration, or (from flush_cb: the
 * socket buffer is full) when the socket is writable again. */
static void add_write(void *privdata)
{
    redisLibeventEvents *e = privdata;
    tg_redis_t *rc = e->context->data;
    if (rc->flushing)
        redisLibeventAddWrite(privdata);
    else
        event_active(rc->flush, EV_WRITE, 1);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_redis_t *rc = arg;
    if (rc->ac == NULL)
        return; /* the connection went away: its commands were failed */
    rc->flushing = true;
    redisAsyncHandleWrite(rc->ac); /* may end in disconnect_cb */
    rc->flushing = false;
}

static void connect_server(tg_redis_t *rc, const char *host, int port)
{
    const tg_redis_conf_t *cf = rc->conf;
    redisAsyncContext *ac = cf->unix_path != NULL ? redisAsyncConnectUnix(cf->unix_path)
                                                  : redisAsyncConnect(host, port);
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
    /* After the attach: its write event is added already, for the connect. */
    ac->ev.addWrite = add_write;
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    rc->ac = ac;
}

/* Drops the connection (if any) and starts again without the backoff. */
static void reconnect_now(tg_redis_t *rc, const char *why)
{
    if (rc->state == RS_READY)
        drop_connection(rc, why);
    evtimer_del(rc->retry_timer);
    rc->backoff_ms = BACKOFF_MIN_MS;
    add_timer_ms(rc->retry_timer, 0);
}

/* Sentinel mode: connect_timeout bounds the question to the Sentinels and the
 * connection together (one timer armed in start_connect). */
static void sentinel_resolved(void *data, const char *host, int port, const char *why)
{
    tg_redis_t *rc = data;
    if (rc->state != RS_CONNECTING || rc->ac != NULL)
        return;
    if (host == NULL) {
        on_lost(rc, why);
        return;
    }
    snprintf(rc->primary_host, sizeof(rc->primary_host), "%s", host);
    rc->primary_port = port;
    snprintf(rc->peer, sizeof(rc->peer), "%s (%s:%d)", rc->conf->name, host, port);
    connect_server(rc, host, port);
}

/* Reconnects at once: the primary moved. In-flight calls get "connection
 * lost" and their plugin's on_error policy applies. */
static void sentinel_switched(void *data, const char *host, int port, const char *why)
{
    (void)why;
    tg_redis_t *rc = data;
    if (rc->state == RS_READY && rc->primary_port == port && strcmp(rc->primary_host, host) == 0)
        return;
    tg_log_notice("redis: %s switched to %s:%d (worker %u)", rc->conf->name, host, port,
                  rc->worker_id);
    if (rc->state == RS_CONNECTING)
        return; /* the resolve or ROLE check under way will see it */
    reconnect_now(rc, "+switch-master");
}

static void start_connect(tg_redis_t *rc)
{
    rc->state = RS_CONNECTING;
    add_timer_ms(rc->connect_timer, rc->conf->connect_timeout_ms);
    if (rc->sentinel != NULL)
        tg_redis_sentinel_resolve(rc->sentinel);
    else
        connect_server(rc, rc->conf->host, rc->conf->port);
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
    if (rc->closing)
        return;
    arm_call_timer(rc);
    /* Writes to a demoted primary: its Sentinels moved on (and our watch may
     * have missed the message), so ask them again. */
    if (rc->sentinel != NULL && reply != NULL && reply->type == REDIS_REPLY_ERROR && ac == rc->ac &&
        rc->state == RS_READY && strncmp(reply->str, "READONLY", 8) == 0)
        reconnect_now(rc, "READONLY: the primary was demoted");
}

/* Cluster mode: the call the plugin holds (for tg_redis_cancel) while
 * redis_cluster.c routes the command and follows its redirects. */
static void cluster_done(void *call, const redisReply *reply, const char *error)
{
    tg_redis_call_t *c = call;
    tg_redis_t *rc = c->rc;
    if (c->cb != NULL)
        c->cb(c->data, reply, error);
    call_put(rc, c);
}

static tg_redis_call_t *cluster_send(tg_redis_t *rc, tg_redis_cb_t cb, void *data, int argc,
                                     const char **argv, const size_t *argvlen)
{
    tg_redis_call_t *c = call_get(rc);
    if (c == NULL) {
        cb(data, NULL, "redis not connected");
        return NULL;
    }
    *c = (tg_redis_call_t){.rc = rc, .cb = cb, .data = data};
    return tg_redis_cluster_send(rc->cluster, cluster_done, c, argc, argv, argvlen) == 0 ? c : NULL;
}

static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Writes v in decimal at p; returns the end. */
static char *put_uint(char *p, size_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

char *tg_redis_format(int argc, const char **argv, const size_t *argvlen, char *buf, size_t cap,
                      size_t *len)
{
    size_t total = 1 + digits((size_t)argc) + 2; /* "*<argc>\r\n" */
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        total += 1 + digits(n) + 2 + n + 2; /* "$<n>\r\n<arg>\r\n" */
    }
    /* NUL-terminated, not counted in len: hiredis 0.14 peeks one byte past a
     * one-argument command (__redisAsyncCommand's hasnext). */
    char *out = total + 1 <= cap ? buf : malloc(total + 1);
    if (out == NULL)
        return NULL;
    char *p = out;
    *p++ = '*';
    p = put_uint(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        *p++ = '$';
        p = put_uint(p, n);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    *p = '\0';
    *len = (size_t)(p - out);
    return out;
}

/* argv, or an already formatted command (cmd, len) when argv is NULL. */
static tg_redis_call_t *send_one(tg_redis_t *rc, tg_redis_cb_t cb, void *data, int argc,
                                 const char **argv, const size_t *argvlen, const char *cmd,
                                 size_t len)
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
        char buf[4096];
        const char *text =
            argv != NULL ? tg_redis_format(argc, argv, argvlen, buf, sizeof(buf), &len) : cmd;
        int st =
            text != NULL ? redisAsyncFormattedCommand(rc->ac, reply_cb, c, text, len) : REDIS_ERR;
        if (text != cmd && text != buf)
            free((char *)text);
        if (st == REDIS_OK) {
            call_link(rc, c);
            arm_call_timer(rc);
            return c;
        }
        call_put(rc, c);
    }
    count(rc, KIND_DISCONNECTED);
    if (cb != NULL)
        cb(data, NULL, "redis not connected");
    return NULL;
}

tg_redis_call_t *tg_redis_send(tg_redis_t *rc, tg_redis_cb_t cb, void *data, int argc,
                               const char **argv, const size_t *argvlen)
{
    if (rc->cluster != NULL)
        return cluster_send(rc, cb, data, argc, argv, argvlen);
    return send_one(rc, cb, data, argc, argv, argvlen, NULL, 0);
}

tg_redis_call_t *tg_redis_send_formatted(tg_redis_t *rc, tg_redis_cb_t cb, void *data,
                                         const char *cmd, size_t len)
{
    return send_one(rc, cb, data, 0, NULL, NULL, cmd, len);
}

bool tg_redis_ready(const tg_redis_t *rc)
{
    if (rc != NULL && rc->cluster != NULL)
        return tg_redis_cluster_ready(rc->cluster);
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

int tg_redis_key_slot(tg_request_t *r, const char *key, size_t len)
{
    const tg_redis_t *rc = redis_of(r);
    if (rc == NULL || rc->cluster == NULL)
        return -1;
    return (int)tg_redis_cluster_slot(key, len);
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
    rc->flush = event_new(base, -1, 0, flush_cb, rc);
    snprintf(rc->peer, sizeof(rc->peer), "%s", conf->name);
    if (conf->sentinel_master != NULL)
        rc->sentinel = tg_redis_sentinel_new(conf, base, sentinel_resolved, sentinel_switched, rc);
    if (conf->nseeds > 0)
        rc->cluster = tg_redis_cluster_new(conf, base, worker_id);
    if (rc->retry_timer == NULL || rc->connect_timer == NULL || rc->call_timer == NULL ||
        rc->flush == NULL || (conf->sentinel_master != NULL && rc->sentinel == NULL) ||
        (conf->nseeds > 0 && rc->cluster == NULL)) {
        tg_redis_free(rc);
        return NULL;
    }
    if (rc->cluster == NULL)
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
    tg_redis_sentinel_free(rc->sentinel);
    tg_redis_cluster_free(rc->cluster); /* its pending calls end with "shutdown" */
    if (rc->retry_timer)
        event_free(rc->retry_timer);
    if (rc->connect_timer)
        event_free(rc->connect_timer);
    if (rc->call_timer)
        event_free(rc->call_timer);
    if (rc->flush)
        event_free(rc->flush);
    while (rc->free_calls != NULL) {
        tg_redis_call_t *c = rc->free_calls;
        rc->free_calls = c->next;
        free(c);
    }
    free(rc);
}
