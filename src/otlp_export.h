/*
 * The span exporter: one thread per process that sends the spans workers
 * hand it to an OTLP/HTTP collector (JSON encoding), in batches.
 *
 * Workers never wait for it: tg_otlp_submit() appends to a bounded queue
 * under a mutex held for a pointer swap, and a full queue drops the spans
 * and counts them. The thread sends a batch when `batch.max_spans` are
 * queued or every `batch.interval`, over one kept-alive connection, each
 * attempt bounded by `timeout`; a failed attempt (no connection, timeout,
 * 429, 502, 503, 504) is retried twice with backoff (250 ms, then 1 s),
 * then the batch is dropped and counted. Any other answer drops it at once.
 */
#ifndef TG_OTLP_EXPORT_H
#define TG_OTLP_EXPORT_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>

#include "trace_conf.h"

/* Main thread, at start and after each reload: conf (NULL: tracing off; the
 * queue is sent first) becomes the exporter's settings. Starts the thread the
 * first time it is needed. Takes its own reference. */
void tg_otlp_configure(tg_tracing_conf_t *conf);

/* At exit (main thread, workers stopped): sends what is queued (one attempt,
 * bounded by the timeout) and stops the thread. */
void tg_otlp_stop(void);

/* Any thread: queues nspans spans (json: comma-separated OTLP span objects,
 * malloc'ed; ownership passes). Returns false when they were dropped. */
bool tg_otlp_submit(char *json, size_t len, unsigned nspans);

/* The exporter's counts so far (the status page). */
void tg_otlp_counts(unsigned long long *exported, unsigned long long *dropped_queue,
                    unsigned long long *dropped_failed);

/* tollgate_tracing_spans_{exported,dropped}_total, Prometheus text. */
void tg_otlp_metrics_render(struct evbuffer *out);

#endif
