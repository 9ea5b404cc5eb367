/*
 * A worker thread: its own event_base, its own SO_REUSEPORT listening
 * sockets, its own upstream pools and connections. Workers share nothing
 * mutable but the refcounted config, so the hot path takes no lock.
 */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdbool.h>

#include "config.h"
#include "request_id.h"
#include "upstream_pool.h"

typedef struct tg_conn_s tg_conn_t;
typedef struct tg_arena_s tg_arena_t;

typedef struct tg_worker_s {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    tg_config_t *cfg;
    int *listen_fds; /* handed over by the server, owned by the listeners once started */
    size_t nlisten;
    struct evconnlistener **listeners;
    struct event *accept_resume; /* re-enables accepting after EMFILE */
    int notify_fd;               /* eventfd: the main thread asks us to stop */
    struct event *notify_ev;
    struct event *drain_deadline;
    pcre2_match_data *match_data;
    tg_upool_t *pools; /* one per cfg->upstreams[i] */
    tg_request_id_gen_t ids;
    tg_conn_t *conns; /* every open client connection (for draining) */
    size_t nconns;
    tg_arena_t **spare_arenas; /* arenas of idle connections, reused */
    size_t nspare, spare_cap;
    bool draining;
    bool emfile_logged;
    struct tg_worker_metrics_s *metrics; /* this worker's counters (metrics.h) */
    void **plugin_data;                  /* per cfg->instances[i]: worker_init() result */
    struct evbuffer *stage;              /* reused by every response's first part (response.h) */
    struct tg_redis_s *redis;            /* this worker's Redis connection (redis.h), or NULL */
} tg_worker_t;

/* The worker running on this thread (NULL on other threads). */
extern _Thread_local tg_worker_t *tg_current_worker;

/* Prepares a worker (in the main thread): base, pools, listeners on fds. */
int tg_worker_init(tg_worker_t *w, unsigned id, tg_config_t *cfg, int *fds, size_t nfds);
int tg_worker_start(tg_worker_t *w);
/* Thread-safe: asks the worker to stop accepting and drain. */
void tg_worker_request_stop(tg_worker_t *w);
void tg_worker_join(tg_worker_t *w);
void tg_worker_destroy(tg_worker_t *w);

/* Connection bookkeeping for conn.c. */
void tg_worker_conn_added(tg_worker_t *w, tg_conn_t *c);
void tg_worker_conn_removed(tg_worker_t *w, tg_conn_t *c);
tg_arena_t *tg_worker_get_arena(tg_worker_t *w);
void tg_worker_put_arena(tg_worker_t *w, tg_arena_t *a);

#endif
