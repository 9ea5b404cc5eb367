/*
 * The response half toward the client: response_head hooks, framing (kept
 * Content-Length, chunked, or close-delimited for HTTP/1.0), hop-by-hop
 * removal, and the body through the response_body hooks (streamed, or
 * buffered whole when a plugin asked for it).
 */
#ifndef TG_RESPONSE_H
#define TG_RESPONSE_H

#include "request.h"

/* resp was parsed from the upstream (headers array of capacity cap, pointing
 * into the upstream input, which the caller drains afterwards). Returns
 * false, writing nothing, when a response_head hook replaced the response:
 * the caller then sends req->run.reply instead (the upstream's body unread). */
bool tg_response_forward_head(tg_request_t *req, tg_http_response_t *resp, size_t cap);

/* Writes a 101 head (with this hop's Connection/Upgrade pair) for a
 * WebSocket handshake; the caller then starts the tunnel. */
void tg_response_forward_upgrade(tg_request_t *req, const tg_http_response_t *resp);

/* Where response bytes go: req->resp.stage while the first part of a response is
 * staged (so a broken upstream body can still become a clean 502), else the
 * client's output buffer. */
struct evbuffer *tg_response_out(tg_request_t *req);

/* Moves body bytes from the upstream input toward the client. eof: the
 * upstream closed. Returns TG_BODY_MORE, TG_BODY_DONE or an error. */
int tg_response_pump(tg_request_t *req, struct evbuffer *in, bool eof);

/* Whether a byte of this response's head may have reached the client. False
 * while it is staged (req->resp.stage) or waits for a buffered body: an error
 * then still becomes a clean reply. Call before draining the stage. */
bool tg_response_head_sent(const tg_request_t *req);

/* Forgets what the response_head hooks asked for (buffered or filtered body)
 * and a pending head: the reply that replaces a response whose head never
 * went out (a refused or broken body) is sent as generated, without going
 * through the body hooks that were meant for the upstream's body. */
void tg_response_drop_filters(tg_request_t *req);

#endif
