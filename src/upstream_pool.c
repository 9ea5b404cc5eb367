#include "upstream_pool.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls.h"
#include "tollgate/clock.h"

/* Pooled connections are dropped after this long unused: shorter than the
 * usual upstream keep-alive timeouts (nginx 75 s, node 5 s is the outlier the
 * stale-connection retry covers). */
#define IDLE_TIMEOUT_MS 55000

int tg_upool_init(tg_upool_t *p, struct event_base *base, const tg_upstream_conf_t *conf)
{
    memset(p, 0, sizeof(*p));
    p->base = base;
    p->conf = conf;
    p->stats = &p->own;
    p->targets = calloc(conf->ntargets, sizeof(*p->targets));
    return p->targets ? 0 : -1;
}

static void uconn_free(tg_uconn_t *c)
{
    tg_stream_free(c->s);
    free(c);
}

static void idle_unlink(tg_uconn_t *c)
{
    tg_target_state_t *t = &c->pool->targets[c->target];
    if (c->prev)
        c->prev->next = c->next;
    else
        t->idle_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->idle = false;
    c->pool->nidle--;
    TG_STAT_ADD(c->pool, idle, -1);
}

void tg_upool_destroy(tg_upool_t *p)
{
    if (p->targets == NULL)
        return;
    for (size_t i = 0; i < p->conf->ntargets; i++) {
        while (p->targets[i].idle_head) {
            tg_uconn_t *c = p->targets[i].idle_head;
            idle_unlink(c);
            uconn_free(c);
        }
    }
    free(p->targets);
    p->targets = NULL;
}

static bool usable(const tg_target_state_t *t, uint64_t now, uint64_t tried, size_t i)
{
    if (i < 64 && (tried >> i) & 1)
        return false;
    return t->down_until <= now;
}

size_t tg_upool_pick(tg_upool_t *p, uint64_t now, uint64_t tried)
{
    size_t n = p->conf->ntargets;
    if (n == 1)
        return 0;
    size_t best = SIZE_MAX;
    if (p->conf->balance == TG_BALANCE_LEAST_CONN) {
        for (size_t k = 0; k < n; k++) {
            size_t i = (p->rr_next + k) % n;
            if (usable(&p->targets[i], now, tried, i) &&
                (best == SIZE_MAX || p->targets[i].active < p->targets[best].active))
                best = i;
        }
        p->rr_next = (p->rr_next + 1) % n;
    } else {
        for (size_t k = 0; k < n && best == SIZE_MAX; k++) {
            size_t i = (p->rr_next + k) % n;
            if (usable(&p->targets[i], now, tried, i))
                best = i;
        }
        if (best != SIZE_MAX)
            p->rr_next = (best + 1) % n;
    }
    if (best != SIZE_MAX)
        return best;
    /* Everything is resting or already tried: try the one that rests the
     * shortest rather than failing without trying (nginx does the same). */
    best = 0;
    for (size_t i = 1; i < n; i++)
        if (p->targets[i].down_until < p->targets[best].down_until)
            best = i;
    return best;
}

/* An idle connection that becomes readable was closed by the upstream (or
 * sent garbage): either way it must never be handed out again. */
static void idle_event_cb(tg_stream_t *s, short what, void *arg)
{
    (void)s;
    (void)what;
    tg_uconn_t *c = arg;
    idle_unlink(c);
    uconn_free(c);
}

static void idle_read_cb(tg_stream_t *s, void *arg)
{
    idle_event_cb(s, TG_STREAM_READING, arg);
}

tg_uconn_t *tg_upool_take_idle(tg_upool_t *p, size_t target)
{
    tg_target_state_t *t = &p->targets[target];
    tg_uconn_t *c = t->idle_head;
    if (c == NULL)
        return NULL;
    idle_unlink(c);
    tg_stream_setcb(c->s, NULL, NULL, NULL, NULL);
    tg_stream_set_timeouts(c->s, 0, 0);
    t->active++;
    p->nactive++;
    TG_STAT_INC(p, active);
    TG_STAT_INC(p, reused);
    return c;
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

tg_uconn_t *tg_upool_connect(tg_upool_t *p, size_t target)
{
    const tg_target_t *tc = &p->conf->targets[target];
    int fd = socket(tc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    set_nodelay(fd);
    tg_uconn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    const tg_tls_client_t *tls = p->conf->tls;
    SSL *ssl = tls != NULL ? tg_tls_client_ssl(tls, target) : NULL;
    c->s = tls == NULL || ssl != NULL ? tg_stream_new(p->base, fd, ssl) : NULL;
    if (c->s == NULL) {
        SSL_free(ssl);
        close(fd);
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->pool = p;
    c->target = target;
    tg_stream_connect(c->s, (const struct sockaddr *)&tc->addr, (socklen_t)tc->addrlen);
    p->targets[target].active++;
    p->nactive++;
    TG_STAT_INC(p, active);
    TG_STAT_INC(p, created);
    return c;
}

void tg_upool_release(tg_uconn_t *c, bool reusable)
{
    tg_upool_t *p = c->pool;
    tg_target_state_t *t = &p->targets[c->target];
    t->active--;
    p->nactive--;
    TG_STAT_ADD(p, active, -1);
    c->uses++;
    if (!reusable || !c->connected || p->nidle >= p->conf->keepalive ||
        tg_stream_input_length(c->s) > 0 || tg_stream_output_length(c->s) > 0) {
        uconn_free(c);
        return;
    }
    c->idle = true;
    c->prev = NULL;
    c->next = t->idle_head;
    if (c->next)
        c->next->prev = c;
    t->idle_head = c;
    p->nidle++;
    TG_STAT_INC(p, idle);
    tg_stream_setcb(c->s, idle_read_cb, NULL, idle_event_cb, c);
    tg_stream_set_timeouts(c->s, IDLE_TIMEOUT_MS, 0);
    tg_stream_set_watermarks(c->s, 0, 0);
    tg_stream_read_enable(c->s, true);
    tg_stream_park(c->s); /* empty both ways (checked above) */
}

void tg_upool_report_failure(tg_upool_t *p, size_t target, uint64_t now_ms)
{
    tg_target_state_t *t = &p->targets[target];
    t->fails++;
    if (p->conf->max_fails && t->fails >= p->conf->max_fails) {
        t->down_until = now_ms + p->conf->fail_timeout_ms;
        t->fails = 0;
        TG_STAT_INC(p, rests);
        if (target < TG_UPOOL_HEALTH_TARGETS)
            __atomic_store_n(&p->stats->down_until[target], t->down_until, __ATOMIC_RELAXED);
    }
}

void tg_upool_report_success(tg_upool_t *p, size_t target)
{
    p->targets[target].fails = 0;
    if (p->targets[target].down_until != 0 && target < TG_UPOOL_HEALTH_TARGETS)
        __atomic_store_n(&p->stats->down_until[target], 0, __ATOMIC_RELAXED);
    p->targets[target].down_until = 0;
}
