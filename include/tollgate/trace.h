/*
 * tollgate public API: the request's trace (W3C Trace Context, exported as
 * OpenTelemetry spans when `tracing:` is configured).
 *
 * The gateway makes one SERVER span per request and a CLIENT span per
 * upstream try; a plugin adds what it decided to the SERVER span, as an
 * attribute (a fact about the request: "jwt.subject") or an event (something
 * that happened at a time: "rate_limit.rejected"). Call these on the
 * request's worker thread while the request is alive (from a hook, or a
 * callback started for it). Text is copied (cut at 256 bytes); a request
 * keeps at most 64 attributes and events together, later ones are ignored.
 * Keys follow OpenTelemetry's naming: lower-case, dot-separated, the plugin's
 * name first ("jwt.reject_reason").
 */
#ifndef TOLLGATE_TRACE_H
#define TOLLGATE_TRACE_H

#include <stdbool.h>

#include "tollgate/request.h"

/* Whether the request's spans are recorded (sampled, and a collector is
 * configured): lets a plugin skip formatting a value nobody will see. */
bool tg_request_traced(const tg_request_t *r);

/* A string attribute on the SERVER span. Returns 0 (also when the request is
 * not traced: nothing is kept), or TG_EINVAL for an empty or NULL key or a
 * NULL value. */
int tg_request_span_attr(tg_request_t *r, const char *key, const char *value);

/* An event on the SERVER span, now, with one string attribute (key and value
 * both NULL: none). Returns 0 (also when not traced), or TG_EINVAL for an
 * empty or NULL name, or a key without a value or the reverse. */
int tg_request_span_event(tg_request_t *r, const char *name, const char *key, const char *value);

/* The request's trace id (32 lower-case hex digits) and the gateway's span
 * id (16), NUL-terminated, as the upstream's traceparent carries them (the
 * span id there is the try's, whose parent this span is). Returns false,
 * writing nothing, for a request whose head was rejected before it was
 * routed (it has no trace). */
bool tg_request_trace_ids(const tg_request_t *r, char trace_id[33], char span_id[17]);

#endif
