/*
 * tollgate public API: plugin metrics, exposed on the admin endpoint's
 * /metrics in Prometheus text format. Counters are registered at create()
 * time and counted per worker without locks; the admin endpoint sums them.
 */
#ifndef TOLLGATE_METRICS_H
#define TOLLGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tg_metrics_s tg_metrics_t;
typedef struct tg_request_s tg_request_t;

/* A counter family with one label whose values are known up front (e.g.
 * reason = expired | bad_signature | ...). nvalues may be 0 for a counter
 * without labels (label and values NULL). Registering the same name twice
 * returns the same id when the shape matches. Returns an id >= 0, or -1 when
 * the name is invalid or clashes. */
int tg_metrics_counter(tg_metrics_t *m, const char *name, const char *help, const char *label,
                       const char *const *values, size_t nvalues);

/* Adds delta to the counter id, label value index vi (0 without labels), in
 * the request's worker. Cheap: no lock, no atomic read-modify-write. */
void tg_metrics_add(tg_request_t *r, int id, size_t vi, uint64_t delta);

/* Same, from a worker_init'ed context without a request. */
void tg_metrics_add_worker(tg_metrics_t *m, unsigned worker_id, int id, size_t vi, uint64_t delta);

#endif
