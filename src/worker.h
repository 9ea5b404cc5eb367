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
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "request_id.h"
#include "upstream_pool.h"

typedef struct tg_conn_s tg_conn_t;
typedef struct tg_arena_s tg_arena_t;

typedef struct tg_worker_s tg_worker_t;

/*
 * A config generation on one worker: the config, the upstream pools built for
 * it and the plugins' per-worker state. A reload makes a new generation
 * current; requests keep the one they started with, which is freed when its
 * last request ends.
 */
typedef struct tg_gen_s {
    tg_worker_t *worker;
    tg_config_t *cfg;
    tg_upool_t *pools;  /* one per cfg->upstreams[i] */
    void **plugin_data; /* per cfg->instances[i]: worker_init() result */
    size_t inflight;    /* requests using this generation */
    bool retired;
    struct tg_gen_s *next; /* retired list */
} tg_gen_t;

/* A reload handed from the main thread to a worker. */
typedef struct {
    tg_config_t *cfg; /* a reference for the worker */
    int *fds;         /* per cfg->listeners[i]: a new socket, or -1 to keep old_index[i] */
    size_t *old_index;
} tg_worker_reload_t;

struct tg_worker_s {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    tg_config_t *cfg; /* gen->cfg: the config new requests use */
    tg_gen_t *gen;
    tg_gen_t *retired;
    size_t nlisten;
    struct evconnlistener **listeners;
    struct event *accept_resume; /* re-enables accepting after EMFILE */
    int notify_fd;               /* eventfd: the main thread asks us to stop */
    struct event *notify_ev;
    struct event *drain_deadline;
    struct event *heap_trim;    /* heap_trim.h */
    unsigned parked_since_trim; /* heap_trim.h */
    uint64_t requests_started;  /* tg_worker_gen_acquire calls: is the worker quiet? */
    uint64_t trim_requests;     /* requests_started when heap_trim was armed */
    pcre2_match_data *match_data;
    tg_request_id_gen_t ids;
    tg_conn_t *conns; /* every open client connection (for draining) */
    size_t nconns;
    tg_arena_t **spare_arenas; /* arenas of idle connections, reused */
    size_t nspare, spare_cap;
    bool draining;
    bool emfile_logged;
    struct tg_worker_metrics_s *metrics; /* this worker's counters (metrics.h) */
    struct evbuffer *stage;              /* reused by every response's first part (response.h) */
    struct evbuffer *scratch;            /* reused for upstream request heads (proxy.c) */
    struct tg_redis_s *redis;            /* this worker's Redis connection (redis.h), or NULL */
    tg_config_t *redis_cfg;              /* the config whose redis: the connection uses */
    pthread_mutex_t lock;                /* guards the two fields below (main thread -> worker) */
    tg_worker_reload_t *pending_reload;
    bool stop_requested;
    /* systemd watchdog (sd_notify.h): the loop stamps alive_ms (monotonic)
     * from a timer, so the main thread can tell a hung worker from a live
     * one; UINT64_MAX once the loop has ended (stopped, not hung). */
    struct event *heartbeat;
    _Atomic uint64_t alive_ms;
};

/* Whether every started worker ran its loop within the last max_age_ms;
 * when not, the first late one is named in why. */
bool tg_workers_alive(const tg_worker_t *w, unsigned n, uint64_t max_age_ms, char *why,
                      size_t whylen);

/* The worker running on this thread (NULL on other threads). */
extern _Thread_local tg_worker_t *tg_current_worker;

/* Prepares a worker (in the main thread): base, pools, listeners on fds. */
int tg_worker_init(tg_worker_t *w, unsigned id, tg_config_t *cfg, int *fds, size_t nfds);
int tg_worker_start(tg_worker_t *w);
/* Thread-safe: asks the worker to stop accepting and drain. */
void tg_worker_request_stop(tg_worker_t *w);
/* Thread-safe: hands a reload to the worker (which takes ownership of r). */
void tg_worker_request_reload(tg_worker_t *w, tg_worker_reload_t *r);

/* A request starts / ends on generation g. */
tg_gen_t *tg_worker_gen_acquire(tg_worker_t *w);
void tg_worker_gen_release(tg_gen_t *g);
void tg_worker_join(tg_worker_t *w);
void tg_worker_destroy(tg_worker_t *w);

/* Connection bookkeeping for conn.c. */
void tg_worker_conn_added(tg_worker_t *w, tg_conn_t *c);
void tg_worker_conn_removed(tg_worker_t *w, tg_conn_t *c);
tg_arena_t *tg_worker_get_arena(tg_worker_t *w);
void tg_worker_put_arena(tg_worker_t *w, tg_arena_t *a);
/* Frees spare arenas beyond keep (a quiet worker after a burst). */
void tg_worker_shrink_arenas(tg_worker_t *w, size_t keep);

#endif
