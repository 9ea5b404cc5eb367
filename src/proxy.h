/*
 * The upstream half of a request: route it, pick a target, send the head,
 * stream the body both ways with backpressure, retry where that is safe, and
 * map upstream failures to 502/504 (or a closed connection once the response
 * has started: a truncated response must never look complete).
 */
#ifndef TG_PROXY_H
#define TG_PROXY_H

#include "request.h"

/* A parsed request head: route, check limits and start forwarding. */
void tg_proxy_handle(tg_request_t *req);

/* Makes chain the request's chain, with fresh per-request plugin slots. */
void tg_proxy_bind_chain(tg_request_t *req, const tg_chain_t *chain);

/* tg_request_resume(): continues the chain after a paused plugin. */
void tg_proxy_resume(tg_request_t *req, int status);

/* Client input arrived / client output drained while req is active. */
void tg_proxy_client_readable(tg_request_t *req);
void tg_proxy_client_drained(tg_request_t *req);

/* The request ends: an upstream connection still attached is closed (only a
 * response that completed returns its connection to the pool). */
void tg_proxy_release(tg_request_t *req);

#endif
