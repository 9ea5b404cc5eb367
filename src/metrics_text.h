/*
 * Writing the metrics exposition: Prometheus text format 0.0.4, or
 * OpenMetrics 1.0 when the scraper asked for it (Accept:
 * application/openmetrics-text). The differences are handled here, so that
 * every renderer (metrics.c, traffic_metrics.c, process_metrics.c, the
 * exporter's counters) writes its families once:
 *   - an OpenMetrics counter family is named without "_total" in its HELP
 *     and TYPE lines (its samples keep it);
 *   - histogram buckets and counters may carry an exemplar;
 *   - the exposition ends with "# EOF".
 * The mode is per thread (the admin thread renders), set by
 * tg_mtext_begin() and cleared by tg_mtext_end().
 */
#ifndef TG_METRICS_TEXT_H
#define TG_METRICS_TEXT_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>

/* The duration buckets every histogram uses: upper bounds in microseconds
 * (inclusive) and their "le" text; the last bucket is +Inf. */
#define TG_MTEXT_NBUCKETS 14
extern const uint64_t tg_mtext_bucket_us[TG_MTEXT_NBUCKETS - 1];
extern const char *const tg_mtext_bucket_le[TG_MTEXT_NBUCKETS];
/* The bucket of a duration. */
unsigned tg_mtext_bucket(uint64_t us);

/* A trace that fell in a bucket: OpenMetrics exemplar. */
typedef struct {
    char trace_id[33]; /* "" when none */
    uint64_t value_us;
    uint64_t wall_ms; /* when it was recorded */
} tg_exemplar_t;

void tg_mtext_begin(bool openmetrics);
/* Writes "# EOF\n" in OpenMetrics mode. */
void tg_mtext_end(struct evbuffer *out);
bool tg_mtext_openmetrics(void);

/* "# HELP name help\n# TYPE name type\n" (a counter's name without "_total"
 * in OpenMetrics). */
void tg_mtext_header(struct evbuffer *out, const char *name, const char *help, const char *type);

/* name{k1="v1",k2="v2"} value; k1 or k2 may be NULL. */
void tg_mtext_sample(struct evbuffer *out, const char *name, const char *k1, const char *v1,
                     const char *k2, const char *v2, uint64_t value);

/* The same, with an exemplar in OpenMetrics mode when ex has a trace id. */
void tg_mtext_sample_ex(struct evbuffer *out, const char *name, const char *k1, const char *v1,
                        const char *k2, const char *v2, uint64_t value, const tg_exemplar_t *ex);

/* Microseconds as seconds with 6 decimals: name{k1="v1"} 1.234567 */
void tg_mtext_seconds(struct evbuffer *out, const char *name, const char *k1, const char *v1,
                      uint64_t us);

/* A label value (quote: also '"') or HELP text, escaped. */
void tg_mtext_escaped(struct evbuffer *out, const char *s, bool quote);

#endif
