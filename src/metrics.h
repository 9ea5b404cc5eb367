/*
 * Metrics: counted per worker without locks (each worker writes only its own
 * counters, with relaxed atomic loads/stores so a concurrent scrape reads whole
 * values), summed by the admin endpoint when scraped.
 *
 * Core metrics: requests by route and status class, a latency histogram per
 * route, upstream pool gauges and counters, upstream errors by kind. Plugin
 * metrics: counter families registered through include/tollgate/metrics.h.
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "metrics_text.h"
#include "tollgate/metrics.h"
#include "upstream_pool.h"

typedef struct tg_worker_s tg_worker_t;
typedef struct tg_request_s tg_request_t;

/* Plugin counter slots per worker; registration fails past this. */
#define TG_METRICS_MAX_SLOTS 4096

/* The process-wide registry of plugin counter families (registration happens
 * at config load, on the main thread). */
tg_metrics_t *tg_metrics_registry(void);

typedef struct tg_worker_metrics_s tg_worker_metrics_t;

/* Frees every registered family (at exit, once no worker runs; tests). Ids
 * handed out before are invalid afterwards. */
void tg_metrics_registry_reset(void);

/* Per-worker storage sized for cfg (its routes) and the registry. */
tg_worker_metrics_t *tg_worker_metrics_new(const tg_config_t *cfg);
void tg_worker_metrics_free(tg_worker_metrics_t *m);

/* The slot of upstream i (of the config m was made for) that the worker's pool
 * for it counts into; NULL when out of range. */
tg_upool_stats_t *tg_worker_metrics_upstream(tg_worker_metrics_t *m, size_t i);

/* After a reload (on the worker thread): storage for new_cfg that carries over
 * the counts of routes with the same name and every plugin counter. The old
 * storage is kept (freed with the new one) since a scrape may be reading it. */
tg_worker_metrics_t *tg_worker_metrics_rebuild(tg_worker_metrics_t *old, const tg_config_t *old_cfg,
                                               const tg_config_t *new_cfg);

/* Called by the core once per finished request (route may be NULL: 404s and
 * malformed requests count under route=""). status 0 = no response sent. */
void tg_metrics_request_done(tg_worker_t *w, const tg_route_t *route, int status,
                             uint64_t duration_us);

/* A WebSocket handshake succeeded (101 forwarded) and its tunnel starts:
 * counted in tollgate_websocket_connections_total. */
void tg_metrics_websocket_opened(tg_worker_t *w);

/* An idle keep-alive client connection parked (conn.c): counted in
 * tollgate_connections_parked_total. */
void tg_metrics_connection_parked(tg_worker_t *w);

/* The workers whose counters tg_metrics_add_worker() and the renderer use
 * (NULL, 0 at shutdown). */
void tg_metrics_set_workers(tg_worker_t *workers, unsigned n);

/* Renders everything in Prometheus text exposition format 0.0.4, summing the
 * workers' counters and reading each worker's upstream pools. */
void tg_metrics_render(struct evbuffer *out, const tg_config_t *cfg, tg_worker_t *workers,
                       unsigned nworkers);

/* The same, in OpenMetrics 1.0 when openmetrics (exemplars, "# EOF"). */
void tg_metrics_render_format(struct evbuffer *out, const tg_config_t *cfg, tg_worker_t *workers,
                              unsigned nworkers, bool openmetrics);

/* A route's counters summed over the workers (the status page): responses by
 * status class (0: none, then 1xx..5xx) and the duration histogram's buckets
 * (metrics_text.h; not cumulative). ri = cfg->nroutes: requests without a
 * route. */
typedef struct {
    uint64_t status[6];
    uint64_t bucket[TG_MTEXT_NBUCKETS];
} tg_route_totals_t;
void tg_metrics_route_totals(const tg_config_t *cfg, tg_worker_t *workers, unsigned nworkers,
                             size_t ri, tg_route_totals_t *out);

/* Upstream ui's connections now, over the workers. */
void tg_metrics_upstream_conns(const tg_config_t *cfg, tg_worker_t *workers, unsigned nworkers,
                               size_t ui, uint64_t *active, uint64_t *idle);

/* The worker's traffic counters (traffic_metrics.h); NULL when m is. */
struct tg_traffic_s *tg_worker_metrics_traffic(const tg_worker_metrics_t *m);

#endif
