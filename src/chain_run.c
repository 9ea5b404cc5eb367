#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "conn.h"
#include "log.h"
#include "request.h"

static tg_filter_t filter_of(tg_req_t *req, size_t i)
{
    const tg_chain_t *c = req->chain;
    tg_plugin_inst_t *pi = c->items[i];
    void **wd = req->gen->plugin_data;
    tg_filter_t f = {
        .instance = pi->instance,
        .worker = wd ? wd[pi->index] : NULL,
        .ctx = pi->plugin->ctx_size ? req->plugin_ctx + c->ctx_offset[i] : NULL,
    };
    return f;
}

static void reply_500(tg_req_t *req, const char *plugin)
{
    req->reply.set = true;
    req->reply.status = 500;
    req->reply.content_type = "application/json";
    req->reply.body =
        tg_arena_printf(req->arena, "{\"error\":\"plugin %s failed\",\"request_id\":\"%s\"}\n",
                        plugin, req->request_id);
    req->reply.len = strlen(req->reply.body);
}

/* A response_body hook stopped the response: its answer (or a 500) is what
 * the client gets if the head has not gone out yet (see plugin.h). */
static int stop_response(tg_req_t *req, const char *plugin, tg_filter_status_t st)
{
    if (st == TG_FILTER_ERROR || !req->reply.set)
        reply_500(req, plugin);
    /* The reply body is the gateway's JSON error, which names the request. */
    size_t n = req->reply.len;
    while (n > 0 && req->reply.body[n - 1] == '\n')
        n--;
    tg_log_warn("plugin %s refused the response body: %d %.*s", plugin, req->reply.status,
                (int)(n < 300 ? n : 300), req->reply.body);
    return -1;
}

int tg_chain_request_head(tg_req_t *req)
{
    const tg_chain_t *c = req->chain;
    for (; req->chain_pos < c->n; req->chain_pos++) {
        const tg_plugin_t *d = c->items[req->chain_pos]->plugin;
        if (d->request_head == NULL)
            continue;
        tg_filter_t f = filter_of(req, req->chain_pos);
        req->in_hook = true;
        tg_filter_status_t st = d->request_head(req, &f);
        req->in_hook = false;
        switch (st) {
        case TG_FILTER_CONTINUE:
            if (req->reply.set)
                return TG_CHAIN_DONE;
            break;
        case TG_FILTER_PAUSE:
            req->paused = true;
            return TG_CHAIN_PAUSED;
        case TG_FILTER_RESPONDED:
            if (!req->reply.set)
                reply_500(req, d->name);
            return TG_CHAIN_DONE;
        case TG_FILTER_ERROR:
        default:
            reply_500(req, d->name);
            return TG_CHAIN_DONE;
        }
    }
    return TG_CHAIN_NEXT;
}

void tg_chain_response_head(tg_req_t *req)
{
    const tg_chain_t *c = req->chain;
    for (size_t i = c->n; i-- > 0;) {
        const tg_plugin_t *d = c->items[i]->plugin;
        if (d->response_head == NULL)
            continue;
        tg_filter_t f = filter_of(req, i);
        req->in_hook = true;
        d->response_head(req, &f);
        req->in_hook = false;
    }
}

int tg_chain_body(tg_req_t *req, bool response, struct evbuffer *chunk, bool last)
{
    const tg_chain_t *c = req->chain;
    for (size_t k = 0; k < c->n; k++) {
        /* Request bodies flow through the chain in order, responses backwards. */
        size_t i = response ? c->n - 1 - k : k;
        const tg_plugin_t *d = c->items[i]->plugin;
        tg_filter_status_t (*hook)(tg_request_t *, const tg_filter_t *, struct evbuffer *, bool) =
            response ? d->response_body : d->request_body;
        if (hook == NULL)
            continue;
        tg_filter_t f = filter_of(req, i);
        req->in_hook = true;
        tg_filter_status_t st = hook(req, &f, chunk, last);
        req->in_hook = false;
        if (response && (st == TG_FILTER_RESPONDED || st == TG_FILTER_ERROR))
            return stop_response(req, d->name, st);
        if (st == TG_FILTER_ERROR)
            return -1;
    }
    return 0;
}

void tg_chain_log(tg_req_t *req)
{
    const tg_chain_t *c = req->chain;
    if (c == NULL || !c->has_log)
        return;
    for (size_t i = 0; i < c->n; i++) {
        const tg_plugin_t *d = c->items[i]->plugin;
        if (d->log == NULL)
            continue;
        tg_filter_t f = filter_of(req, i);
        d->log(req, &f);
    }
}

void **tg_chain_worker_init(const tg_config_t *cfg, struct event_base *base, unsigned worker_id)
{
    void **data = calloc(cfg->ninstances ? cfg->ninstances : 1, sizeof(void *));
    if (data == NULL)
        abort();
    for (size_t i = 0; i < cfg->ninstances; i++) {
        const tg_plugin_inst_t *pi = cfg->instances[i];
        if (pi->plugin->worker_init)
            data[i] = pi->plugin->worker_init(pi->instance, base, worker_id);
    }
    return data;
}

void tg_chain_worker_fini(const tg_config_t *cfg, void **data)
{
    if (data == NULL)
        return;
    for (size_t i = cfg->ninstances; i-- > 0;) {
        const tg_plugin_inst_t *pi = cfg->instances[i];
        if (pi->plugin->worker_fini)
            pi->plugin->worker_fini(pi->instance, data[i]);
    }
    free(data);
}
