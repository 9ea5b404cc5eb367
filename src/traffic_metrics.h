/*
 * Traffic metrics beside the request counters of metrics.c: requests in
 * flight and bytes per route, upstream response time (a histogram) per
 * upstream, client connections open per listener and protocol,
 * and the exemplars (trace ids of sampled requests) of both duration
 * histograms. Counted per worker, without locks, like metrics.c (one writer
 * per counter; the scrape sums).
 *
 * Storage is per worker and per config: it lives in the worker's metrics
 * (metrics.c creates, carries over on reload and frees it). A request that
 * started on an older config is counted by its route's and upstream's name.
 */
#ifndef TG_TRAFFIC_METRICS_H
#define TG_TRAFFIC_METRICS_H

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics_text.h"

typedef struct tg_traffic_s tg_traffic_t;
typedef struct tg_config_s tg_config_t;
typedef struct tg_worker_s tg_worker_t;
typedef struct tg_request_s tg_request_t;

/* Listener/protocol pairs counted (process-wide); more share the last. */
#define TG_TRAFFIC_LISTENERS 64
/* The slot of a connection that is not a client's (an HTTP/2 stream's exchange). */
#define TG_TRAFFIC_NONE 0xffu

/* Client connection protocols (the protocol label). */
enum { TG_PROTO_HTTP1 = 0, TG_PROTO_H2, TG_PROTO_COUNT };

tg_traffic_t *tg_traffic_new(const tg_config_t *cfg);
void tg_traffic_free(tg_traffic_t *t);
/* After a reload: counts of routes and upstreams with the same name, and
 * every connection count, carried from `from` (made for old_cfg). */
void tg_traffic_carry(tg_traffic_t *to, const tg_traffic_t *from, const tg_config_t *old_cfg,
                      const tg_config_t *new_cfg);

/* The request was routed (req->route set): in flight from now. */
void tg_traffic_request_routed(tg_request_t *req);
/* The request ended (after its log hooks). */
void tg_traffic_request_done(tg_request_t *req, uint64_t duration_us);

/* A client connection was accepted on the listener named (as written in
 * listen:); returns its slot, for tg_traffic_conn_closed(). */
unsigned tg_traffic_conn_opened(tg_worker_t *w, const char *listener, unsigned proto);
/* The connection switched protocol (HTTP/2 after ALPN or the preface): it
 * moves to that protocol's slot, which is returned. */
unsigned tg_traffic_conn_protocol(tg_worker_t *w, unsigned slot, unsigned proto);
/* Also for a slot that counts nothing (TG_TRAFFIC_NONE). */
void tg_traffic_conn_closed(tg_worker_t *w, unsigned slot);

/* The newest exemplar of route ri's (cfg->nroutes: no route) duration
 * bucket b over the workers; out->trace_id is "" when there is none. */
void tg_traffic_route_exemplar(const tg_config_t *cfg, tg_worker_t *workers, unsigned n, size_t ri,
                               size_t b, tg_exemplar_t *out);

void tg_traffic_render(struct evbuffer *out, const tg_config_t *cfg, tg_worker_t *workers,
                       unsigned n);

/* Figures for the status page, summed over the workers. */
uint64_t tg_traffic_in_flight(const tg_config_t *cfg, tg_worker_t *workers, unsigned n, size_t ri);
/* Upstream ui's response time buckets (not cumulative). */
void tg_traffic_upstream(const tg_config_t *cfg, tg_worker_t *workers, unsigned n, size_t ui,
                         uint64_t bucket[TG_MTEXT_NBUCKETS]);

typedef struct {
    const char *name;     /* the listener as written in listen: */
    const char *protocol; /* "http/1.1", "h2" */
    uint64_t open, accepted;
} tg_listener_conns_t;
/* Every listener/protocol pair seen so far (at most max); returns how many. */
size_t tg_traffic_listeners(tg_worker_t *workers, unsigned n, tg_listener_conns_t *out, size_t max);

#endif
