/*
 * Process-wide metrics: the Prometheus `process_*` family (CPU seconds,
 * resident and virtual memory, open and maximum descriptors, start time, as
 * the official client libraries name them), `tollgate_build_info`, and the
 * configuration reloads (results, time of the last success, whether the
 * last one succeeded). Read from /proc and getrusage at scrape time: nothing
 * is counted on the request path.
 */
#ifndef TG_PROCESS_METRICS_H
#define TG_PROCESS_METRICS_H

#include <event2/buffer.h>
#include <stdbool.h>

/* At startup (main thread): the start time, and the first load as a
 * successful reload's time (Prometheus does the same). */
void tg_process_metrics_start(void);

/* A reload finished (main thread): ok or not, and why not (NULL when ok). */
void tg_process_metrics_reload(bool ok, const char *error);

/* Reload figures for the status page. */
typedef struct {
    unsigned long long ok, failed;
    double last_success; /* wall clock seconds */
    double last_attempt;
    bool last_ok;
} tg_reload_stats_t;
void tg_process_metrics_reloads(tg_reload_stats_t *out);

/* The last reloads, newest first (at most TG_RELOAD_HISTORY). */
#define TG_RELOAD_HISTORY 10
typedef struct {
    double time; /* wall clock seconds */
    bool ok;
    char error[240]; /* "" when ok */
} tg_reload_event_t;
size_t tg_process_metrics_recent_reloads(tg_reload_event_t *out);

void tg_process_metrics_render(struct evbuffer *out);

#endif
