#include "worker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "chain.h"
#include "conn.h"
#include "ev_alloc.h"
#include "h2_conn.h"
#include "heap_trim.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "sd_notify.h"
#include "tollgate/clock.h"

#define SPARE_ARENAS 64
#define ARENA_FIRST_BLOCK 8192
/* After EMFILE the listener rests this long instead of spinning on a socket
 * that stays readable while no descriptor is free. */
#define ACCEPT_BACKOFF_MS 100

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    tg_worker_t *w = arg;
    if (w->draining) {
        close(fd);
        return;
    }
    size_t idx = 0;
    while (idx + 1 < w->nlisten && w->listeners[idx] != l)
        idx++;
    tg_conn_accept(w, idx, fd, sa, salen);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_worker_t *w = arg;
    if (w->draining)
        return;
    for (size_t i = 0; i < w->nlisten; i++)
        if (w->listeners[i])
            evconnlistener_enable(w->listeners[i]);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    tg_worker_t *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        tg_log_warn("worker %u: accept: %s", w->id, strerror(err));
        return;
    }
    if (!w->emfile_logged) {
        tg_log_error("worker %u: accept: %s; pausing accepts for %d ms", w->id, strerror(err),
                     ACCEPT_BACKOFF_MS);
        w->emfile_logged = true;
    }
    for (size_t i = 0; i < w->nlisten; i++)
        if (w->listeners[i])
            evconnlistener_disable(w->listeners[i]);
    struct timeval tv = tg_timeval_ms(ACCEPT_BACKOFF_MS);
    evtimer_add(w->accept_resume, &tv);
}

static void close_listeners(tg_worker_t *w)
{
    for (size_t i = 0; i < w->nlisten; i++) {
        if (w->listeners[i]) {
            evconnlistener_free(w->listeners[i]);
            w->listeners[i] = NULL;
        }
    }
}

static void drain_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_worker_t *w = arg;
    if (w->nconns > 0)
        tg_log_warn("worker %u: drain deadline reached with %zu connections open", w->id,
                    w->nconns);
    event_base_loopbreak(w->base);
}

/* ---- generations ---- */

static tg_gen_t *gen_new(tg_worker_t *w, tg_config_t *cfg)
{
    tg_gen_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->worker = w;
    g->cfg = cfg;
    g->pools = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*g->pools));
    if (g->pools == NULL) {
        free(g);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        tg_upool_init(&g->pools[i], w->base, &cfg->upstreams[i]);
        tg_upool_stats_t *st = tg_worker_metrics_upstream(w->metrics, i);
        if (st != NULL)
            g->pools[i].stats = st;
    }
    return g;
}

/* Plugins' per-worker state is made on the worker thread itself. */
static void gen_start(tg_gen_t *g)
{
    g->plugin_data = tg_chain_worker_init(g->cfg, g->worker->base, g->worker->id);
}

static void gen_free(tg_gen_t *g)
{
    if (g->plugin_data != NULL)
        tg_chain_worker_fini(g->cfg, g->plugin_data);
    for (size_t i = 0; i < g->cfg->nupstreams; i++)
        tg_upool_destroy(&g->pools[i]);
    free(g->pools);
    tg_config_unref(g->cfg);
    free(g);
}

tg_gen_t *tg_worker_gen_acquire(tg_worker_t *w)
{
    w->requests_started++;
    w->gen->inflight++;
    return w->gen;
}

void tg_worker_gen_release(tg_gen_t *g)
{
    if (--g->inflight > 0 || !g->retired)
        return;
    tg_worker_t *w = g->worker;
    for (tg_gen_t **p = &w->retired; *p != NULL; p = &(*p)->next) {
        if (*p == g) {
            *p = g->next;
            break;
        }
    }
    gen_free(g);
}

static void retire(tg_worker_t *w, tg_gen_t *g)
{
    g->retired = true;
    if (g->inflight == 0) {
        gen_free(g);
        return;
    }
    g->next = w->retired;
    w->retired = g;
}

/* ---- listeners ---- */

static struct evconnlistener *listen_on(tg_worker_t *w, int fd)
{
    /* Backlog 0: the socket is already listening with listen[].backlog
     * (server.c); -1 would make libevent call listen(fd, 128) over it. */
    struct evconnlistener *l =
        evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    if (l != NULL)
        evconnlistener_set_error_cb(l, accept_error_cb);
    else
        close(fd);
    return l;
}

/* A kept socket whose listen[].backlog changed: listen(2) again on a
 * listening socket only sets the new backlog (its queue is kept). */
static void keep_backlog(struct evconnlistener *l, const tg_listen_conf_t *old,
                         const tg_listen_conf_t *now)
{
    if (l == NULL || old->backlog == now->backlog)
        return;
    if (listen(evconnlistener_get_fd(l), (int)now->backlog) < 0)
        tg_log_error("listen %s: cannot set backlog %u: %s", now->name, (unsigned)now->backlog,
                     strerror(errno));
}

/* New listener set in the order of the new config: kept ones move, new
 * sockets get a listener, the rest close. */
static void swap_listeners(tg_worker_t *w, const tg_worker_reload_t *r)
{
    size_t n = r->cfg->nlisteners;
    struct evconnlistener **next = calloc(n ? n : 1, sizeof(*next));
    if (next == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (r->fds[i] >= 0) {
            next[i] = listen_on(w, r->fds[i]);
        } else if (r->old_index[i] < w->nlisten) {
            next[i] = w->listeners[r->old_index[i]];
            w->listeners[r->old_index[i]] = NULL;
            keep_backlog(next[i], &w->cfg->listeners[r->old_index[i]], &r->cfg->listeners[i]);
        }
    }
    close_listeners(w);
    free(w->listeners);
    w->listeners = next;
    w->nlisten = n;
}

static void apply_reload(tg_worker_t *w, tg_worker_reload_t *r)
{
    /* Metrics first: the new pools count into the new storage. */
    tg_worker_metrics_t *m = tg_worker_metrics_rebuild(w->metrics, w->cfg, r->cfg);
    if (m != NULL)
        __atomic_store_n(&w->metrics, m, __ATOMIC_RELEASE); /* the old one stays readable */
    tg_gen_t *g = gen_new(w, r->cfg);
    if (g == NULL) {
        tg_log_error("worker %u: reload: out of memory, keeping the running config", w->id);
        tg_config_unref(r->cfg);
        for (size_t i = 0; i < r->cfg->nlisteners; i++)
            if (r->fds[i] >= 0)
                close(r->fds[i]);
        return;
    }
    gen_start(g);
    if (!w->draining)
        swap_listeners(w, r);
    tg_gen_t *old = w->gen;
    w->gen = g;
    w->cfg = g->cfg;
    retire(w, old);
    tg_h2_conns_reloaded(w);
}

static void begin_drain(tg_worker_t *w)
{
    if (w->draining)
        return;
    w->draining = true;
    close_listeners(w);
    struct timeval tv = tg_timeval_ms(w->cfg->limits.drain_timeout_ms);
    evtimer_add(w->drain_deadline, &tv);
    for (tg_conn_t *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        tg_conn_drain(c);
    }
    if (w->nconns == 0)
        event_base_loopbreak(w->base);
}

static void free_reload(tg_worker_reload_t *r)
{
    free(r->fds);
    free(r->old_index);
    free(r);
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    tg_worker_t *w = arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        tg_log_warn("worker %u: eventfd read: %s", w->id, strerror(errno));
    pthread_mutex_lock(&w->lock);
    tg_worker_reload_t *r = w->pending_reload;
    w->pending_reload = NULL;
    bool stop = w->stop_requested;
    pthread_mutex_unlock(&w->lock);
    if (r != NULL) {
        apply_reload(w, r);
        free_reload(r);
    }
    if (stop)
        begin_drain(w);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_worker_t *w = arg;
    atomic_store_explicit(&w->alive_ms, tg_now_ms(), memory_order_relaxed);
}

/* Only when systemd watches us: a quarter of its interval, so one late
 * stamp is not yet a hang. */
static int heartbeat_start(tg_worker_t *w)
{
    atomic_store_explicit(&w->alive_ms, tg_now_ms(), memory_order_relaxed);
    uint64_t usec = tg_sd_watchdog_usec() / 4;
    if (usec == 0)
        return 0;
    struct timeval tv = {.tv_sec = (time_t)(usec / 1000000),
                         .tv_usec = (suseconds_t)(usec % 1000000)};
    w->heartbeat = event_new(w->base, -1, EV_PERSIST, heartbeat_cb, w);
    return w->heartbeat != NULL && event_add(w->heartbeat, &tv) == 0 ? 0 : -1;
}

int tg_worker_init(tg_worker_t *w, unsigned id, tg_config_t *cfg, int *fds, size_t nfds)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->notify_fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    /* The changelist folds the EPOLLOUT add/remove pairs that every response
     * causes into fewer epoll_ctl calls. No lock: nothing else touches the base. */
    struct event_config *ec = event_config_new();
    if (ec == NULL)
        return -1;
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (w->base == NULL)
        return -1;
    w->metrics = tg_worker_metrics_new(cfg);
    if (w->metrics == NULL)
        return -1;
    w->gen = gen_new(w, tg_config_ref(cfg));
    if (w->gen == NULL)
        return -1;
    w->cfg = cfg;
    w->redis_cfg = tg_config_ref(cfg);
    w->match_data = pcre2_match_data_create(1, NULL);
    w->listeners = calloc(nfds ? nfds : 1, sizeof(*w->listeners));
    w->spare_arenas = calloc(SPARE_ARENAS, sizeof(*w->spare_arenas));
    w->spare_cap = SPARE_ARENAS;
    w->stage = evbuffer_new();
    w->scratch = evbuffer_new();
    if (!w->stage || !w->scratch || !w->metrics || !w->match_data || !w->listeners ||
        !w->spare_arenas)
        return -1;
    tg_request_id_seed(&w->ids);
    w->nlisten = nfds;
    for (size_t i = 0; i < nfds; i++) {
        w->listeners[i] = listen_on(w, fds[i]);
        if (w->listeners[i] == NULL)
            return -1;
    }
    w->accept_resume = evtimer_new(w->base, accept_resume_cb, w);
    w->drain_deadline = evtimer_new(w->base, drain_deadline_cb, w);
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->notify_fd < 0 || !w->accept_resume || !w->drain_deadline || tg_heap_trim_init(w) < 0)
        return -1;
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, notify_cb, w);
    if (w->notify_ev == NULL || event_add(w->notify_ev, NULL) < 0)
        return -1;
    return heartbeat_start(w);
}

_Thread_local tg_worker_t *tg_current_worker;

bool tg_workers_alive(const tg_worker_t *w, unsigned n, uint64_t max_age_ms, char *why,
                      size_t whylen)
{
    uint64_t now = tg_now_ms();
    for (unsigned i = 0; i < n; i++) {
        uint64_t t = atomic_load_explicit(&w[i].alive_ms, memory_order_relaxed);
        if (t != UINT64_MAX && now > t && now - t > max_age_ms) {
            snprintf(why, whylen, "worker %u has not run its event loop for %llu ms", w[i].id,
                     (unsigned long long)(now - t));
            return false;
        }
    }
    return true;
}

static void *worker_main(void *arg)
{
    tg_worker_t *w = arg;
    tg_current_worker = w;
    tg_ev_alloc_thread_pools();
    /* Plugin and Redis state is created on the thread that will use it. The
     * Redis connection keeps the first config's redis: (a change of Redis
     * address needs a restart). */
    gen_start(w->gen);
    if (w->redis_cfg->redis != NULL)
        w->redis = tg_redis_new(w->redis_cfg->redis, w->base, w->id);
    event_base_dispatch(w->base);
    atomic_store_explicit(&w->alive_ms, UINT64_MAX, memory_order_relaxed);
    /* Connections still open after the drain deadline end here, while the
     * plugins' worker state they may log into still exists. */
    while (w->conns != NULL)
        tg_conn_abort(w->conns);
    while (w->retired != NULL) {
        tg_gen_t *g = w->retired;
        w->retired = g->next;
        gen_free(g);
    }
    gen_free(w->gen);
    w->gen = NULL;
    if (w->redis != NULL) {
        tg_redis_free(w->redis);
        w->redis = NULL;
    }
    return NULL;
}

int tg_worker_start(tg_worker_t *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

static void wake(tg_worker_t *w)
{
    uint64_t one = 1;
    if (write(w->notify_fd, &one, sizeof(one)) < 0)
        tg_log_warn("worker %u: cannot notify: %s", w->id, strerror(errno));
}

void tg_worker_request_stop(tg_worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->stop_requested = true;
    pthread_mutex_unlock(&w->lock);
    wake(w);
}

void tg_worker_request_reload(tg_worker_t *w, tg_worker_reload_t *r)
{
    pthread_mutex_lock(&w->lock);
    tg_worker_reload_t *older = w->pending_reload;
    w->pending_reload = r;
    pthread_mutex_unlock(&w->lock);
    if (older != NULL) {
        /* Two reloads before the worker woke up: only the newest counts. */
        for (size_t i = 0; i < older->cfg->nlisteners; i++)
            if (older->fds[i] >= 0)
                close(older->fds[i]);
        tg_config_unref(older->cfg);
        free_reload(older);
    }
    wake(w);
}

void tg_worker_join(tg_worker_t *w)
{
    pthread_join(w->thread, NULL);
}

void tg_worker_destroy(tg_worker_t *w)
{
    while (w->conns != NULL)
        tg_conn_abort(w->conns);
    if (w->listeners)
        close_listeners(w);
    free(w->listeners);
    if (w->gen != NULL) /* a worker that never ran */
        gen_free(w->gen);
    if (w->pending_reload != NULL) {
        tg_config_unref(w->pending_reload->cfg);
        free_reload(w->pending_reload);
    }
    for (size_t i = 0; i < w->nspare; i++)
        tg_arena_destroy(w->spare_arenas[i]);
    free(w->spare_arenas);
    if (w->match_data)
        pcre2_match_data_free(w->match_data);
    if (w->metrics)
        tg_worker_metrics_free(w->metrics);
    if (w->stage)
        evbuffer_free(w->stage);
    if (w->scratch)
        evbuffer_free(w->scratch);
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->heartbeat)
        event_free(w->heartbeat);
    if (w->accept_resume)
        event_free(w->accept_resume);
    if (w->drain_deadline)
        event_free(w->drain_deadline);
    tg_heap_trim_free(w);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    if (w->base)
        event_base_free(w->base);
    tg_config_unref(w->redis_cfg);
    pthread_mutex_destroy(&w->lock);
    memset(w, 0, sizeof(*w));
}

void tg_worker_conn_added(tg_worker_t *w, tg_conn_t *c)
{
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    w->emfile_logged = false;
}

void tg_worker_conn_removed(tg_worker_t *w, tg_conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    if (w->draining && w->nconns == 0)
        event_base_loopbreak(w->base);
}

tg_arena_t *tg_worker_get_arena(tg_worker_t *w)
{
    if (w->nspare > 0)
        return w->spare_arenas[--w->nspare];
    return tg_arena_create(ARENA_FIRST_BLOCK);
}

void tg_worker_put_arena(tg_worker_t *w, tg_arena_t *a)
{
    if (w->nspare < w->spare_cap)
        w->spare_arenas[w->nspare++] = a;
    else
        tg_arena_destroy(a);
}

void tg_worker_shrink_arenas(tg_worker_t *w, size_t keep)
{
    while (w->nspare > keep)
        tg_arena_destroy(w->spare_arenas[--w->nspare]);
}
