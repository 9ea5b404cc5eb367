#include "response.h"

#include <string.h>

#include "proto.h"
#include "worker.h"

/* Header fields of a generated reply that fit without an allocation. */
#define REPLY_STACK 8

/* The deferred head of a buffered response keeps its headers past the
 * upstream buffer they pointed into. */
static void keep_head(tg_request_t *req, tg_http_response_t *resp)
{
    tg_http_response_t *k = tg_arena_alloc(req->arena, sizeof(*k));
    *k = *resp;
    k->headers = tg_arena_alloc(req->arena, sizeof(tg_http_header_t) * (resp->num_headers + 1));
    for (size_t i = 0; i < resp->num_headers; i++) {
        const tg_http_header_t *h = &resp->headers[i];
        k->headers[i] =
            (tg_http_header_t){tg_arena_strndup(req->arena, h->name, h->name_len), h->name_len,
                               tg_arena_strndup(req->arena, h->value, h->value_len), h->value_len};
    }
    k->reason = tg_arena_strndup(req->arena, resp->reason, resp->reason_len);
    req->resp.head = k;
}

/* The worker's scratch buffer: between the upstream input (or a reply's
 * bytes) and the protocol; always left empty. */
static struct evbuffer *scratch(const tg_request_t *req)
{
    return req->gen->worker->scratch;
}

/* response_head hooks on resp (headers array of capacity cap); returns true
 * when one of them answered instead (req->run.reply), which then replaces
 * resp. *resp follows a hook that replaced the header array. */
static bool head_hooks(tg_request_t *req, tg_http_response_t **resp, size_t cap)
{
    if (req->run.chain == NULL || !req->run.chain->has_response_head)
        return false;
    req->resp.head = *resp;
    req->resp.head_cap = cap;
    int replaced = tg_chain_response_head(req);
    *resp = req->resp.head;
    req->resp.head = NULL;
    return replaced != 0;
}

static void head_out(tg_request_t *req, const tg_http_response_t *resp, tg_out_kind_t kind,
                     uint64_t length)
{
    req->resp.status = resp->status;
    req->proto->head(req, resp, kind, length);
}

void tg_response_forward_upgrade(tg_request_t *req, const tg_http_response_t *resp)
{
    head_out(req, resp, TG_OUT_UPGRADE, 0);
}

bool tg_response_forward_head(tg_request_t *req, tg_http_response_t *resp, size_t cap)
{
    bool head = req->client.method_bit == TG_METHOD_HEAD;
    tg_body_kind_t kind = tg_http_response_body(resp, head);
    req->up.keepalive = tg_http_response_reusable(resp, head);
    if (head_hooks(req, &resp, cap))
        return false;
    /* Body hooks run only for responses a plugin asked for: everything else
     * keeps its framing (and its Content-Length). */
    bool transform = req->run.chain->has_response_body && kind != TG_BODY_NONE &&
                     (req->resp.buffer_limit || req->resp.filter);
    tg_body_init(&req->resp.body, kind, resp->content_length, 0, false);
    if (transform) {
        req->resp.tmp = evbuffer_new();
        if (req->resp.buffer_limit) {
            req->resp.buffering = true;
            req->resp.head_pending = true;
            keep_head(req, resp);
            return true;
        }
    }
    tg_out_kind_t out = kind == TG_BODY_NONE                   ? TG_OUT_NONE
                        : kind == TG_BODY_LENGTH && !transform ? TG_OUT_LENGTH
                                                               : TG_OUT_STREAM;
    head_out(req, resp, out, resp->content_length);
    return true;
}

/* The head kept by keep_head() goes out. */
static void write_pending_head(tg_request_t *req, tg_out_kind_t kind, uint64_t length)
{
    tg_http_response_t *resp = req->resp.head;
    req->resp.head = NULL;
    req->resp.head_pending = false;
    head_out(req, resp, kind, length);
}

static void body_out(tg_request_t *req, struct evbuffer *data)
{
    if (evbuffer_get_length(data) > 0)
        req->proto->body(req, data);
}

/* Buffered mode: the whole body, then the hooks once, then an exact
 * Content-Length. Too large: give up and stream it through the hooks (-3).
 * The head goes out only after the hooks accepted the body (or its first
 * piece), so that a hook refusing it can still replace the response. */
static int pump_buffered(tg_request_t *req, int r)
{
    /* Over the limit even when complete: one read may bring a whole body
     * larger than it (tg_body_pump stops after max_out, not at it). */
    bool over = evbuffer_get_length(req->resp.tmp) > req->resp.buffer_limit;
    if (r != TG_BODY_DONE && !over)
        return TG_BODY_MORE;
    if (over) {
        req->resp.buffering = false;
        return -3; /* continue as a stream */
    }
    if (tg_chain_body(req, true, req->resp.tmp, true) < 0)
        return TG_BODY_ERROR;
    write_pending_head(req, TG_OUT_LENGTH, evbuffer_get_length(req->resp.tmp));
    body_out(req, req->resp.tmp);
    return TG_BODY_DONE;
}

int tg_response_pump(tg_request_t *req, struct evbuffer *in, bool eof)
{
    if (!req->resp.buffering && req->proto->pending(req) > TG_OUT_HIGH)
        return TG_BODY_MORE;
    struct evbuffer *tmp = req->resp.tmp ? req->resp.tmp : scratch(req);
    size_t max = req->resp.buffering ? req->resp.buffer_limit + 1 : TG_OUT_HIGH;
    int r = tg_body_pump(&req->resp.body, in, tmp, max);
    if (r == TG_BODY_MORE && eof && evbuffer_get_length(in) == 0)
        r = tg_body_eof(&req->resp.body, tmp);
    if (req->resp.tmp == NULL) {
        /* Bytes before an error go out too: the response is truncated anyway
         * once its head left (else the caller drops the held part). */
        body_out(req, tmp);
        return r;
    }
    if (r < 0)
        return r;
    if (req->resp.buffering) {
        int b = pump_buffered(req, r);
        if (b != -3)
            return b;
    }
    if (tg_chain_body(req, true, req->resp.tmp, r == TG_BODY_DONE) < 0)
        return TG_BODY_ERROR;
    if (req->resp.head_pending) /* a buffered body that outgrew its limit */
        write_pending_head(req, TG_OUT_STREAM, 0);
    body_out(req, req->resp.tmp);
    return r;
}

void tg_response_drop_filters(tg_request_t *req)
{
    req->resp.head = NULL;
    req->resp.head_pending = false;
    req->resp.buffering = false;
    req->resp.buffer_limit = 0;
    req->resp.filter = false;
    req->resp.replaced = true;
}

bool tg_response_head_sent(const tg_request_t *req)
{
    return !req->resp.held && !req->resp.head_pending;
}

void tg_response_hold(tg_request_t *req)
{
    req->resp.held = true;
    req->proto->hold(req);
}

void tg_response_release(tg_request_t *req, bool send)
{
    if (!req->resp.held)
        return;
    req->resp.held = false;
    req->proto->release(req, send);
}

void tg_response_done(tg_request_t *req)
{
    req->resp.completed = true;
    req->proto->end(req);
}

void tg_response_fail(tg_request_t *req)
{
    tg_response_release(req, true); /* what is there goes, truncated */
    req->proto->abort(req);
}

void tg_response_continue(tg_request_t *req)
{
    req->proto->interim(req, 100);
}

/* ---- generated replies ---- */

/* req->run.reply as a response head (headers in the arena when the stack
 * array is too small). */
static void reply_head(tg_request_t *req, tg_http_response_t *resp, tg_http_header_t *stack,
                       size_t *cap)
{
    const tg_reply_t *rp = &req->run.reply;
    *cap = rp->nheaders + 1 <= REPLY_STACK ? REPLY_STACK : rp->nheaders + 1;
    tg_http_header_t *hs =
        *cap == REPLY_STACK ? stack : tg_arena_alloc(req->arena, *cap * sizeof(*hs));
    *resp = (tg_http_response_t){.status = rp->status, .headers = hs};
    if (rp->content_type != NULL)
        hs[resp->num_headers++] =
            (tg_http_header_t){"Content-Type", 12, rp->content_type, strlen(rp->content_type)};
    for (size_t i = 0; i < rp->nheaders; i++)
        hs[resp->num_headers++] = rp->headers[i];
}

void tg_response_reply(tg_request_t *req)
{
    /* Whatever was held of a response this one replaces is dropped. */
    tg_response_release(req, false);
    tg_http_header_t stack[REPLY_STACK];
    tg_http_response_t head, *resp = &head;
    size_t cap;
    reply_head(req, &head, stack, &cap);
    if (head_hooks(req, &resp, cap)) { /* a hook's answer (or a 500) replaces this reply */
        tg_response_drop_filters(req);
        tg_response_reply(req);
        return;
    }
    const tg_reply_t *rp = &req->run.reply;
    struct evbuffer *body = scratch(req);
    evbuffer_add(body, rp->body, rp->len);
    /* A plugin that asked for whole bodies (response shaping) gets generated
     * ones too: aggregated documents are shaped like upstream ones. */
    if (req->resp.buffer_limit && !req->resp.replaced && req->run.chain->has_response_body) {
        /* A body over the limit is shown as unbuffered, like a proxied one. */
        req->resp.buffering = rp->len <= req->resp.buffer_limit;
        if (tg_chain_body(req, true, body, true) < 0) {
            /* A hook refused it: req->run.reply now holds its answer. */
            evbuffer_drain(body, evbuffer_get_length(body));
            tg_response_drop_filters(req);
            tg_response_reply(req);
            return;
        }
    }
    head_out(req, resp, TG_OUT_LENGTH, evbuffer_get_length(body));
    if (req->client.method_bit != TG_METHOD_HEAD)
        body_out(req, body);
    evbuffer_drain(body, evbuffer_get_length(body));
    tg_response_done(req);
}

void tg_response_error(tg_request_t *req, int status, const char *msg)
{
    tg_request_respond_error(req, status, msg);
    tg_response_reply(req);
}
