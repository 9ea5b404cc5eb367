#include "worker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "arena.h"
#include "chain.h"
#include "conn.h"
#include "metrics.h"
#include "redis.h"
#include "log.h"

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
    struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};
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

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    tg_worker_t *w = arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        tg_log_warn("worker %u: eventfd read: %s", w->id, strerror(errno));
    if (w->draining)
        return;
    w->draining = true;
    close_listeners(w);
    struct timeval tv = {(time_t)(w->cfg->limits.drain_timeout_ms / 1000),
                         (suseconds_t)((w->cfg->limits.drain_timeout_ms % 1000) * 1000)};
    evtimer_add(w->drain_deadline, &tv);
    for (tg_conn_t *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        tg_conn_drain(c);
    }
    if (w->nconns == 0)
        event_base_loopbreak(w->base);
}

int tg_worker_init(tg_worker_t *w, unsigned id, tg_config_t *cfg, int *fds, size_t nfds)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->cfg = tg_config_ref(cfg);
    w->notify_fd = -1;
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
    w->match_data = pcre2_match_data_create(1, NULL);
    w->pools = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*w->pools));
    w->listeners = calloc(nfds ? nfds : 1, sizeof(*w->listeners));
    w->spare_arenas = calloc(SPARE_ARENAS, sizeof(*w->spare_arenas));
    w->spare_cap = SPARE_ARENAS;
    w->metrics = tg_worker_metrics_new(cfg);
    w->stage = evbuffer_new();
    if (!w->stage || !w->metrics || !w->match_data || !w->pools || !w->listeners || !w->spare_arenas)
        return -1;
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (tg_upool_init(&w->pools[i], w->base, &cfg->upstreams[i]) < 0)
            return -1;
    tg_request_id_seed(&w->ids);
    w->nlisten = nfds;
    for (size_t i = 0; i < nfds; i++) {
        w->listeners[i] = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fds[i]);
        if (w->listeners[i] == NULL)
            return -1;
        evconnlistener_set_error_cb(w->listeners[i], accept_error_cb);
    }
    w->accept_resume = evtimer_new(w->base, accept_resume_cb, w);
    w->drain_deadline = evtimer_new(w->base, drain_deadline_cb, w);
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->notify_fd < 0 || !w->accept_resume || !w->drain_deadline)
        return -1;
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, notify_cb, w);
    if (w->notify_ev == NULL || event_add(w->notify_ev, NULL) < 0)
        return -1;
    return 0;
}

_Thread_local tg_worker_t *tg_current_worker;

static void *worker_main(void *arg)
{
    tg_worker_t *w = arg;
    tg_current_worker = w;
    /* Plugin and Redis state is created on the thread that will use it. */
    w->plugin_data = tg_chain_worker_init(w->cfg, w->base, w->id);
    if (w->cfg->redis != NULL)
        w->redis = tg_redis_new(w->cfg->redis, w->base, w->id);
    event_base_dispatch(w->base);
    /* Connections still open after the drain deadline end here, while the
     * plugins' worker state they may log into still exists. */
    while (w->conns != NULL)
        tg_conn_abort(w->conns);
    tg_chain_worker_fini(w->cfg, w->plugin_data);
    w->plugin_data = NULL;
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

void tg_worker_request_stop(tg_worker_t *w)
{
    uint64_t one = 1;
    if (write(w->notify_fd, &one, sizeof(one)) < 0)
        tg_log_warn("worker %u: cannot notify: %s", w->id, strerror(errno));
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
    if (w->pools) {
        for (size_t i = 0; i < w->cfg->nupstreams; i++)
            tg_upool_destroy(&w->pools[i]);
        free(w->pools);
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
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->accept_resume)
        event_free(w->accept_resume);
    if (w->drain_deadline)
        event_free(w->drain_deadline);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    if (w->base)
        event_base_free(w->base);
    tg_config_unref(w->cfg);
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
