/*
 * The dispatch step, between the connection and what answers a request: a
 * parsed head is routed, checked against the limits, bound to its route's
 * plugin chain and run through the request_head hooks; then the route's
 * action answers it (redirect, respond), or the aggregator, or the upstream
 * client (proxy.c). Every answer goes out through the response pipeline
 * (response.h). The connection calls only this for a request.
 */
#ifndef TG_DISPATCH_H
#define TG_DISPATCH_H

#include "request.h"

/* A parsed request head (req->client filled by request_head.c). */
void tg_dispatch_request(tg_request_t *req);

/* Makes chain the request's chain, with fresh per-request plugin slots. */
void tg_dispatch_bind_chain(tg_request_t *req, const tg_chain_t *chain);

/* tg_request_resume(): continues the chain after a paused plugin. */
void tg_dispatch_resume(tg_request_t *req, int status);

/* Client input arrived / client output drained while req is active. */
void tg_dispatch_client_readable(tg_request_t *req);
void tg_dispatch_client_drained(tg_request_t *req);

/* The request ends (or stops reading its body): an upstream connection still
 * attached is closed (only a response that completed returns it to its
 * pool). */
void tg_dispatch_release(tg_request_t *req);

#endif
