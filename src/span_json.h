/*
 * A request's spans as OTLP/JSON span objects (the protobuf JSON mapping of
 * opentelemetry.proto.trace.v1.Span: hex ids, nanosecond times as strings,
 * 64-bit integers as strings), with the HTTP semantic conventions' stable
 * attribute names (http.request.method, http.response.status_code,
 * url.path, server.address, client.address, error.type, ...).
 */
#ifndef TG_SPAN_JSON_H
#define TG_SPAN_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef struct tg_request_s tg_request_t;

/* The SERVER span and every CLIENT span of req, comma-separated (the inside
 * of a "spans" array), malloc'ed; *len its length, *nspans how many.
 * end_ns is the SERVER span's end. NULL when out of memory. */
char *tg_span_json(const tg_request_t *req, uint64_t end_ns, size_t *len, unsigned *nspans);

#endif
