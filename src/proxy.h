/*
 * The upstream client: pick a target, send the head, stream the request body
 * up and the response down (through the response pipeline, response.h) with
 * backpressure, retry where that is safe, and map upstream failures to
 * 502/504 (or a truncated response once its head went out: a truncated
 * response must never look complete). Started by the dispatch step.
 */
#ifndef TG_PROXY_H
#define TG_PROXY_H

#include "request.h"

/* A routed request whose plugins let it through: forward it upstream. */
void tg_proxy_start(tg_request_t *req);

/* Client input arrived / client output drained while req is active. */
void tg_proxy_client_readable(tg_request_t *req);
void tg_proxy_client_drained(tg_request_t *req);

/* The request ends: an upstream connection still attached is closed (only a
 * response that completed returns its connection to the pool). */
void tg_proxy_release(tg_request_t *req);

#endif
