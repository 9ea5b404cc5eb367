#include "dispatch.h"

#include <event2/buffer.h>
#include <string.h>

#include "aggregate.h"
#include "body_read.h"
#include "log.h"
#include "proxy.h"
#include "response.h"
#include "route_action.h"
#include "router.h"
#include "trace_span.h"
#include "traffic_metrics.h"
#include "worker.h"

static void strip_prefix(tg_request_t *req)
{
    const tg_route_t *r = req->route;
    size_t n = r->strip_prefix_len;
    if (r->strip_prefix == NULL || req->client.path_len < n ||
        memcmp(req->client.path, r->strip_prefix, n) != 0)
        return;
    if (req->client.path_len > n && req->client.path[n] != '/' && r->strip_prefix[n - 1] != '/')
        return; /* "/api" does not strip from "/apix" */
    /* The result is a suffix of the client's path (kept whole for the access
     * log), rooted: "/api" -> "/", "/api/" + "x" -> "/x". */
    size_t rest = req->client.path_len - n;
    if (rest == 0) {
        req->client.path = tg_arena_strndup(req->arena, "/", 1);
        req->client.path_len = 1;
    } else if (req->client.path[n] != '/') {
        req->client.path += n - 1; /* the prefix ends with "/" */
        req->client.path_len = rest + 1;
    } else {
        req->client.path += n;
        req->client.path_len = rest;
    }
}

void tg_dispatch_bind_chain(tg_request_t *req, const tg_chain_t *chain)
{
    req->run.chain = chain;
    req->run.pos = 0;
    req->run.ctx = chain && chain->ctx_size ? tg_arena_calloc(req->arena, chain->ctx_size) : NULL;
}

/* Expect: 100-continue is answered once the request passed its plugins (a
 * client that is refused, 401 or 429, never sends the body). */
void tg_dispatch_send_continue(tg_request_t *req)
{
    const tg_http_request_t *h = &req->client.http;
    if ((h->flags & TG_HF_EXPECT_CONTINUE) && !req->client.body.done && h->minor_version >= 1 &&
        !req->client.sent_continue) {
        tg_response_continue(req);
        req->client.sent_continue = true;
    }
}

/* After the request_head hooks (tg_chain_*): the upstream, or the answer. */
static void chain_done(tg_request_t *req, int outcome)
{
    switch (outcome) {
    case TG_CHAIN_NEXT:
        /* Route actions run after the plugins: their templates may read
         * what plugins published (claims). */
        if (req->route->redirect != NULL || req->route->respond != NULL) {
            tg_route_answer(req);
            tg_response_reply(req);
            break;
        }
        if (req->route->rewrite != NULL && tg_route_rewrite(req) < 0) {
            tg_response_reply(req);
            break;
        }
        tg_dispatch_send_continue(req);
        if (req->route->aggregate != NULL)
            tg_aggregate_start(req);
        else
            tg_proxy_start(req);
        break;
    case TG_CHAIN_PAUSED:
        break;
    case TG_CHAIN_DONE:
    default:
        tg_response_reply(req);
        break;
    }
}

void tg_dispatch_resume(tg_request_t *req, int status)
{
    if (req->run.hook == TG_HOOK_REQUEST_HEAD) {
        tg_chain_note_resume(req, status); /* applied when the hook returns */
        return;
    }
    if (!req->run.paused) {
        tg_log_warn("tg_request_resume() on request %.*s, which is not paused: ignored",
                    (int)req->request_id_len, req->request_id);
        return;
    }
    req->run.paused = false;
    chain_done(req, tg_chain_resume(req, status));
}

void tg_dispatch_request(tg_request_t *req)
{
    const tg_limits_t *lim = &req->cfg->limits;
    const tg_http_request_t *h = &req->client.http;
    tg_body_init(&req->client.body, h->body_kind, h->content_length, lim->max_body_size,
                 h->body_kind == TG_BODY_CHUNKED);
    tg_trace_begin(req);
    tg_route_query_t q = {
        .host = req->client.host,
        .host_len = req->client.host_len,
        .path = req->client.path,
        .path_len = req->client.path_len,
        .method = h->method,
        .method_len = h->method_len,
        .method_bit = req->client.method_bit,
        .headers = h->headers,
        .nheaders = h->num_headers,
    };
    req->client.client_path = req->client.path;
    req->client.client_path_len = req->client.path_len;
    req->route = tg_router_match(req->cfg->router, &q, req->gen->worker->match_data);
    if (req->route == NULL) {
        tg_response_error(req, 404, "no route");
        return;
    }
    tg_traffic_request_routed(req);
    tg_dispatch_bind_chain(req, req->route->chain);
    if (h->flags & TG_HF_EXPECT_OTHER) {
        tg_response_error(req, 417, "unsupported expectation");
        return;
    }
    uint64_t max_body = lim->max_body_size;
    if (req->route->has_max_body_size) /* the route's, instead of limits' */
        req->client.body.limit = max_body = req->route->max_body_size;
    if (h->body_kind == TG_BODY_LENGTH && max_body && h->content_length > max_body) {
        tg_response_error(req, 413, "request body too large");
        return;
    }
    strip_prefix(req);
    if (req->route->upstream != NULL)
        req->up.pool = &req->gen->pools[req->route->upstream->index];
    /* Other protocols are not tunnelled: their Upgrade was removed with the
     * hop-by-hop fields, as on any route. */
    req->up.upgrade = req->route->websocket && req->client.ws_requested;
    if (req->run.chain->has_request_body && req->client.body.kind != TG_BODY_NONE &&
        !req->client.body.done) {
        /* Plugins may change the body's length: it travels chunked. */
        req->client.body_tmp = evbuffer_new();
        req->client.body.out_chunked = false;
    }
    chain_done(req, tg_chain_request_head(req));
}

void tg_dispatch_client_readable(tg_request_t *req)
{
    if (req->client.kept_done != NULL) /* a plugin reads the body first */
        tg_body_read_pump(req);
    else
        tg_proxy_client_readable(req);
}

void tg_dispatch_client_drained(tg_request_t *req)
{
    tg_proxy_client_drained(req);
}

void tg_dispatch_release(tg_request_t *req)
{
    if (req->client.kept_body != NULL) { /* read for a plugin, never handed on */
        evbuffer_free(req->client.kept_body);
        req->client.kept_body = NULL;
    }
    tg_proxy_release(req);
}
