/*
 * Outlier detection (Envoy's): a target that answers consecutive_5xx 5xx in a
 * row, or fails consecutive_gateway_errors times in a row at the gateway's
 * level (connect failure, reset, timeout, or a 502/503/504 answer), is
 * ejected for base_ejection_time, doubled with each ejection in a row. It
 * shares the target's cross-worker state with passive health (max_fails
 * rests it the same way, through down_until) and the health checks' verdict
 * (src/upstream_shared.h). At most max_ejection_percent of the targets are
 * out at once, but always one may be.
 */
#ifndef TG_OUTLIER_H
#define TG_OUTLIER_H

#include <stdint.h>

#include "config.h"

/* What one try of a request came to. */
typedef enum {
    TG_OUTCOME_OK = 0,  /* a response head below 500 */
    TG_OUTCOME_5XX,     /* a 5xx answer (a 502, 503 or 504 counts as a gateway error too) */
    TG_OUTCOME_GATEWAY, /* connect failure, reset or timeout */
} tg_outcome_t;

/* Ejections in a row never make the time longer than this (Envoy's
 * max_ejection_time default), unless the base is longer itself. */
#define TG_OUTLIER_MAX_EJECTION_MS 300000u

/* Records an outcome of target; may eject it. status is the answer's, or 0. */
void tg_outlier_report(const tg_upstream_conf_t *u, size_t target, tg_outcome_t o, int status,
                       uint64_t now_ms);

#endif
