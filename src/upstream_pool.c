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

#include "resolve.h"
#include "tls.h"
#include "tollgate/clock.h"
#include "upstream_shared.h"

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
    p->rng = ((uintptr_t)p ^ tg_now_us()) | 1;
    if (conf->ntargets > 64)
        p->scratch_ok = malloc(conf->ntargets);
    return p->targets && (conf->ntargets <= 64 || p->scratch_ok) ? 0 : -1;
}

static void uconn_free(tg_uconn_t *c)
{
    tg_stream_free(c->s);
    atomic_fetch_sub_explicit(&c->pool->conf->targets[c->target].shared->conns, 1,
                              memory_order_relaxed);
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
    else
        t->idle_tail = c->prev;
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
    free(p->scratch_ok);
    if (p->park_ev != NULL)
        event_free(p->park_ev);
    p->park_ev = NULL;
    p->targets = NULL;
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
    const tg_target_t *tc = &p->conf->targets[target];
    tg_uconn_t *c = t->idle_head;
    /* A re-resolved slot that changed address: its connections go to a
     * server that is no longer the name's. */
    while (c != NULL && tc->dynamic && c->endpoint != tg_target_endpoint(tc)) {
        idle_unlink(c);
        uconn_free(c);
        c = t->idle_head;
    }
    if (c == NULL)
        return NULL;
    idle_unlink(c);
    tg_stream_setcb(c->s, NULL, NULL);
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
    const tg_endpoint_t *ep = tc->dynamic ? tg_target_endpoint(tc) : NULL;
    const struct sockaddr_storage *addr = ep ? &ep->addr : &tc->addr;
    socklen_t addrlen = ep ? ep->addrlen : tc->addrlen;
    if (tc->dynamic && ep == NULL) {
        errno = EHOSTUNREACH; /* the name has no address for this slot now */
        return NULL;
    }
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    set_nodelay(fd);
    tg_uconn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    /* circuit_breaker.max_connections holds across workers: the slot is
     * taken before the connection exists. */
    if (!tg_shared_enter(&tc->shared->conns, p->conf->circuit.max_connections)) {
        close(fd);
        free(c);
        errno = EBUSY;
        return NULL;
    }
    const tg_tls_client_t *tls = p->conf->tls;
    SSL *ssl = tls != NULL ? tg_tls_client_ssl(tls, target) : NULL;
    c->s = tls == NULL || ssl != NULL ? tg_stream_new(p->base, fd, ssl) : NULL;
    if (c->s == NULL) {
        SSL_free(ssl);
        close(fd);
        free(c);
        tg_shared_leave(&tc->shared->conns);
        errno = ENOMEM;
        return NULL;
    }
    c->pool = p;
    c->target = target;
    c->endpoint = ep;
    tg_stream_connect(c->s, (const struct sockaddr *)addr, addrlen);
    p->targets[target].active++;
    p->nactive++;
    TG_STAT_INC(p, active);
    TG_STAT_INC(p, created);
    return c;
}

static const tg_stream_cbs_t idle_cbs = {
    .read = idle_read_cb, .write = NULL, .event = idle_event_cb};

/* Parking a connection released a moment ago would cost the next request
 * on it its buffers again (two evbuffers, their callbacks, the write event):
 * a busy pool keeps them, one idle for a second gives them back. */
#define PARK_AFTER_MS 1000

/* The connection idle the longest, over all targets, if idle since before
 * `before`. */
static tg_uconn_t *oldest_idle(tg_upool_t *p, uint64_t before)
{
    tg_uconn_t *oldest = NULL;
    for (size_t i = 0; i < p->conf->ntargets; i++) {
        tg_uconn_t *c = p->targets[i].idle_tail;
        if (c != NULL && c->idle_since_ms <= before &&
            (oldest == NULL || c->idle_since_ms < oldest->idle_since_ms))
            oldest = c;
    }
    return oldest;
}

/* Closes idle connections above keepalive that have been idle trim_ms.
 * Closing the surplus only after a while, not when a connection is released,
 * is what keeps a pool smaller than the load's concurrency from opening and
 * closing a connection per request (and from piling up TIME_WAIT sockets,
 * which exhausts the ephemeral ports toward a busy upstream). */
static void trim(tg_upool_t *p, uint64_t now)
{
    uint64_t trim_ms = p->conf->keepalive_trim_ms;
    while (p->nidle > p->conf->keepalive) {
        tg_uconn_t *c = oldest_idle(p, now >= trim_ms ? now - trim_ms : 0);
        if (c == NULL)
            return;
        idle_unlink(c);
        uconn_free(c);
    }
}

/* When the longest idle connection above keepalive is to be closed
 * (monotonic ms, not before now + 1), 0 when the pool is not above it. */
static uint64_t trim_due(tg_upool_t *p, uint64_t now)
{
    if (p->nidle <= p->conf->keepalive)
        return 0;
    uint64_t due = oldest_idle(p, UINT64_MAX)->idle_since_ms + p->conf->keepalive_trim_ms;
    return due > now ? due : now + 1;
}

/* When park_cb has work next (monotonic ms): the earliest park or trim
 * still to come, 0 for none. A park that failed (output still pending) is
 * retried when the connection is next released, not in a loop. */
static uint64_t next_due(tg_upool_t *p, uint64_t now)
{
    uint64_t next = 0;
    for (size_t i = 0; i < p->conf->ntargets; i++) {
        for (tg_uconn_t *c = p->targets[i].idle_head; c != NULL; c = c->next) {
            uint64_t due = c->idle_since_ms + PARK_AFTER_MS;
            if (!tg_stream_parked(c->s) && due > now && (next == 0 || due < next))
                next = due;
        }
    }
    uint64_t trim_at = trim_due(p, now);
    return next == 0 || (trim_at != 0 && trim_at < next) ? trim_at : next;
}

static void schedule(tg_upool_t *p, uint64_t due, uint64_t now)
{
    struct timeval tv = tg_timeval_ms(due - now);
    evtimer_add(p->park_ev, &tv);
    p->park_due_ms = due;
}

static void park_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_upool_t *p = arg;
    uint64_t now = tg_now_ms();
    p->park_due_ms = 0;
    trim(p, now);
    for (size_t i = 0; i < p->conf->ntargets; i++) {
        for (tg_uconn_t *c = p->targets[i].idle_head; c != NULL; c = c->next) {
            if (!tg_stream_parked(c->s) && now - c->idle_since_ms >= PARK_AFTER_MS)
                tg_stream_park(c->s); /* empty both ways: idle_read_cb closes on any byte */
        }
    }
    uint64_t next = next_due(p, now);
    if (next > 0)
        schedule(p, next, now);
}

/* c was just released (idle since now): its park, and a trim if the pool
 * is above keepalive, must be on the timer. */
static void arm_park(tg_upool_t *p, uint64_t now)
{
    if (p->park_ev == NULL && (p->park_ev = evtimer_new(p->base, park_cb, p)) == NULL)
        return; /* out of memory: the connection stays unparked until used or closed */
    uint64_t due = now + PARK_AFTER_MS, trim_at = trim_due(p, now);
    if (trim_at != 0 && trim_at < due)
        due = trim_at;
    if (p->park_due_ms == 0 || due < p->park_due_ms)
        schedule(p, due, now);
}

void tg_upool_release(tg_uconn_t *c, bool reusable)
{
    tg_upool_t *p = c->pool;
    tg_target_state_t *t = &p->targets[c->target];
    t->active--;
    p->nactive--;
    TG_STAT_ADD(p, active, -1);
    c->uses++;
    bool no_room = p->conf->keepalive == 0 ||
                   (p->nidle >= p->conf->keepalive && p->conf->keepalive_trim_ms == 0);
    if (!reusable || !c->connected || no_room || tg_stream_input_length(c->s) > 0 ||
        tg_stream_output_length(c->s) > 0) {
        uconn_free(c);
        return;
    }
    c->idle = true;
    c->prev = NULL;
    c->next = t->idle_head;
    if (c->next)
        c->next->prev = c;
    else
        t->idle_tail = c;
    t->idle_head = c;
    p->nidle++;
    TG_STAT_INC(p, idle);
    tg_stream_setcb(c->s, &idle_cbs, c);
    tg_stream_set_timeouts(c->s, IDLE_TIMEOUT_MS, 0);
    tg_stream_set_watermarks(c->s, 0, 0);
    tg_stream_read_enable(c->s, true);
    tg_stream_keep_buffers(c->s); /* TLS: until it parks, as client connections */
    c->idle_since_ms = tg_now_ms();
    arm_park(p, c->idle_since_ms);
}

void tg_upool_report_failure(tg_upool_t *p, size_t target, uint64_t now_ms)
{
    tg_tshared_t *t = p->conf->targets[target].shared;
    unsigned fails = atomic_fetch_add_explicit(&t->fails, 1, memory_order_relaxed) + 1;
    if (p->conf->max_fails && fails >= p->conf->max_fails) {
        uint64_t until = now_ms + p->conf->fail_timeout_ms;
        /* An outlier ejection may already run longer: never shorten it. */
        if (atomic_load_explicit(&t->down_until, memory_order_relaxed) < until)
            atomic_store_explicit(&t->down_until, until, memory_order_relaxed);
        atomic_store_explicit(&t->fails, 0, memory_order_relaxed);
    }
}

void tg_upool_report_success(tg_upool_t *p, size_t target)
{
    tg_tshared_t *t = p->conf->targets[target].shared;
    if (atomic_load_explicit(&t->fails, memory_order_relaxed) != 0)
        atomic_store_explicit(&t->fails, 0, memory_order_relaxed);
}
