/*
 * W3C Trace Context (https://www.w3.org/TR/trace-context/), the pure part:
 * reading a `traceparent` value, writing one, and the sampling decision.
 * No request, no connection: bytes in, ids out.
 */
#ifndef TG_TRACE_CONTEXT_H
#define TG_TRACE_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TG_TRACEPARENT_LEN 55

/* What a valid traceparent carries. */
typedef struct {
    uint8_t trace_id[16];
    uint8_t parent_id[8];
    uint8_t flags; /* trace-flags; bit 0 = sampled */
} tg_traceparent_t;

/* Parses v[0..len) (trace-context section 3.2). Returns 0, or -1 when the
 * value is invalid and must be replaced: a version that is not two
 * lower-case hex digits or is "ff"; version 00 not exactly 55 bytes; a later
 * version shorter than 55 bytes or whose 56th byte is not '-'; ids or flags
 * that are not lower-case hex of their length; an all-zero trace or parent
 * id; separators other than '-'. */
int tg_traceparent_parse(const char *v, size_t len, tg_traceparent_t *out);

/* Writes "00-<trace>-<span>-<flags>" (55 bytes) and a NUL into out. */
void tg_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char out[TG_TRACEPARENT_LEN + 1]);

/* Lower-case hex of n bytes, NUL-terminated (out holds 2n + 1). */
void tg_trace_hex(const uint8_t *b, size_t n, char *out);

/* The ratio sampler, as OpenTelemetry's TraceIdRatioBased: the last 7 bytes
 * of the trace id, read as a number, below ratio * 2^56. Deterministic per
 * trace id, so every gateway of a trace with the same ratio agrees. ratio is
 * clamped to [0, 1]. */
bool tg_trace_ratio_sampled(const uint8_t trace_id[16], double ratio);

/* Whether n bytes are all zero (an invalid id). */
bool tg_trace_id_zero(const uint8_t *b, size_t n);

#endif
