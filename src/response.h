/*
 * The one response pipeline: every response a client gets goes through here,
 * generated (errors, plugin answers, route actions, aggregation results) or
 * proxied (an upstream's head and body): the response_head hooks, the body
 * through the response_body hooks (streamed, or buffered whole when a plugin
 * asked for it), then the connection's protocol (proto.h: head, body, end,
 * abort), which frames it for the wire.
 */
#ifndef TG_RESPONSE_H
#define TG_RESPONSE_H

#include "request.h"

/* Sends req->run.reply (recorded by tg_request_respond* or the gateway) as
 * the request's response, which then ends. What was held of a response it
 * replaces is dropped. */
void tg_response_reply(tg_request_t *req);

/* A gateway error ({"error": msg, "request_id": ...}) as the response. */
void tg_response_error(tg_request_t *req, int status, const char *msg);

/* resp was parsed from the upstream (headers array of capacity cap, pointing
 * into the upstream input, which the caller drains afterwards). Returns
 * false, writing nothing, when a response_head hook replaced the response:
 * the caller then sends req->run.reply instead (the upstream's body unread). */
bool tg_response_forward_head(tg_request_t *req, tg_http_response_t *resp, size_t cap);

/* Writes a 101 head for a WebSocket handshake; the caller then starts the
 * tunnel. */
void tg_response_forward_upgrade(tg_request_t *req, const tg_http_response_t *resp);

/* Moves body bytes from the upstream input toward the client. eof: the
 * upstream closed. Returns TG_BODY_MORE, TG_BODY_DONE or an error. */
int tg_response_pump(tg_request_t *req, struct evbuffer *in, bool eof);

/* The first part of an upstream response is held (tg_response_hold) while
 * its head and first body bytes are read, so that a broken body can still
 * become a clean reply; release sends it (send) or drops it. */
void tg_response_hold(tg_request_t *req);
void tg_response_release(tg_request_t *req, bool send);

/* Whether a byte of this response's head may have reached the client. False
 * while it is held or waits for a buffered body: an error then still becomes
 * a clean reply. */
bool tg_response_head_sent(const tg_request_t *req);

/* Forgets what the response_head hooks asked for (buffered or filtered body)
 * and a pending head: the reply that replaces a response whose head never
 * went out (a refused or broken body) is sent as generated, without going
 * through the body hooks that were meant for the upstream's body. */
void tg_response_drop_filters(tg_request_t *req);

/* The whole response was given: the request ends. */
void tg_response_done(tg_request_t *req);

/* The response in progress cannot be completed: the request ends and the
 * client connection closes after what is queued (a truncated response must
 * never look complete). */
void tg_response_fail(tg_request_t *req);

/* 100 Continue toward the client. */
void tg_response_continue(tg_request_t *req);

#endif
