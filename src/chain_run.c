#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "conn.h"
#include "log.h"
#include "request.h"

static tg_filter_t filter_of(tg_request_t *req, size_t i)
{
    const tg_chain_t *c = req->run.chain;
    tg_plugin_inst_t *pi = c->items[i];
    void **wd = req->gen->plugin_data;
    tg_filter_t f = {
        .instance = pi->instance,
        .worker = wd ? wd[pi->index] : NULL,
        .ctx = pi->plugin->ctx_size ? req->run.ctx + c->ctx_offset[i] : NULL,
    };
    return f;
}

static void reply_500(tg_request_t *req, const char *plugin)
{
    req->run.reply.set = true;
    req->run.reply.status = 500;
    req->run.reply.content_type = "application/json";
    req->run.reply.body =
        tg_arena_printf(req->arena, "{\"error\":\"plugin %s failed\",\"request_id\":\"%s\"}\n",
                        plugin, req->request_id);
    req->run.reply.len = strlen(req->run.reply.body);
}

static const char *status_name(tg_filter_status_t st)
{
    switch (st) {
    case TG_FILTER_CONTINUE:
        return "CONTINUE";
    case TG_FILTER_PAUSE:
        return "PAUSE";
    case TG_FILTER_RESPONDED:
        return "RESPONDED";
    case TG_FILTER_ERROR:
        return "ERROR";
    default:
        return "an unknown status";
    }
}

/* A hook other than request_head stopped the response: its answer (RESPONDED
 * with tg_request_respond*), else a 500, is what replaces it (see plugin.h).
 * PAUSE and unknown values count as ERROR. */
static void stop(tg_request_t *req, const char *plugin, const char *what, tg_filter_status_t st)
{
    bool answered = st == TG_FILTER_RESPONDED && req->run.reply.set;
    if (!answered)
        reply_500(req, plugin);
    /* The reply body is the gateway's JSON error, which names the request. */
    size_t n = req->run.reply.len;
    while (n > 0 && req->run.reply.body[n - 1] == '\n')
        n--;
    int shown = (int)(n < 300 ? n : 300);
    if (answered)
        tg_log_warn("plugin %s refused %s: %d %.*s", plugin, what, req->run.reply.status, shown,
                    req->run.reply.body);
    else
        tg_log_warn("plugin %s returned %s on %s: %d %.*s", plugin, status_name(st), what,
                    req->run.reply.status, shown, req->run.reply.body);
}

/* What tg_request_resume() may pass: anything else counts as ERROR. */
static tg_filter_status_t resume_status(int status)
{
    return status == TG_FILTER_CONTINUE || status == TG_FILTER_RESPONDED ? status : TG_FILTER_ERROR;
}

void tg_chain_note_resume(tg_request_t *req, int status)
{
    if (req->run.resume_noted) {
        tg_log_warn("plugin %s: tg_request_resume() called twice in one request_head (request "
                    "%.*s): the second call is ignored",
                    req->run.chain->items[req->run.pos]->plugin->name, (int)req->request_id_len,
                    req->request_id);
        return;
    }
    req->run.resume_noted = true;
    req->run.resume_status = resume_status(status);
}

/* tg_request_resume() ran inside the hook that returned st (a callback that
 * came back at once): with PAUSE the resume's status is the hook's outcome;
 * with anything else the hook's own status stands (plugin.h). */
static tg_filter_status_t settle_resume(tg_request_t *req, const char *plugin,
                                        tg_filter_status_t st)
{
    req->run.resume_noted = false;
    if (st == TG_FILTER_PAUSE)
        return (tg_filter_status_t)req->run.resume_status;
    tg_log_warn("plugin %s called tg_request_resume() inside request_head, then returned %s, "
                "not PAUSE (request %.*s): the resume is ignored",
                plugin, status_name(st), (int)req->request_id_len, req->request_id);
    return st;
}

/* What a request_head outcome (returned, or given to tg_request_resume)
 * means for the chain: TG_CHAIN_NEXT to go on with the next plugin. */
static int head_outcome(tg_request_t *req, const char *plugin, tg_filter_status_t st)
{
    switch (st) {
    case TG_FILTER_CONTINUE:
        return req->run.reply.set ? TG_CHAIN_DONE : TG_CHAIN_NEXT;
    case TG_FILTER_PAUSE:
        req->run.paused = true;
        return TG_CHAIN_PAUSED;
    case TG_FILTER_RESPONDED:
        if (!req->run.reply.set)
            reply_500(req, plugin);
        return TG_CHAIN_DONE;
    case TG_FILTER_ERROR:
    default:
        reply_500(req, plugin);
        return TG_CHAIN_DONE;
    }
}

int tg_chain_request_head(tg_request_t *req)
{
    const tg_chain_t *c = req->run.chain;
    for (; req->run.pos < c->n; req->run.pos++) {
        const tg_plugin_t *d = c->items[req->run.pos]->plugin;
        if (d->request_head == NULL)
            continue;
        tg_filter_t f = filter_of(req, req->run.pos);
        uint8_t outer = req->run.hook;
        req->run.hook = TG_HOOK_REQUEST_HEAD;
        tg_filter_status_t st = d->request_head(req, &f);
        req->run.hook = outer;
        if (req->run.resume_noted)
            st = settle_resume(req, d->name, st);
        int next = head_outcome(req, d->name, st);
        if (next != TG_CHAIN_NEXT)
            return next;
    }
    return TG_CHAIN_NEXT;
}

int tg_chain_resume(tg_request_t *req, int status)
{
    const char *name = req->run.chain->items[req->run.pos]->plugin->name;
    int next = head_outcome(req, name, resume_status(status));
    if (next != TG_CHAIN_NEXT)
        return next;
    req->run.pos++;
    return tg_chain_request_head(req);
}

int tg_chain_response_head(tg_request_t *req)
{
    const tg_chain_t *c = req->run.chain;
    for (size_t i = c->n - req->run.resp_head_ran; i-- > 0;) {
        const tg_plugin_t *d = c->items[i]->plugin;
        if (d->response_head == NULL)
            continue;
        tg_filter_t f = filter_of(req, i);
        uint8_t outer = req->run.hook;
        req->run.hook = TG_HOOK_RESPONSE_HEAD;
        tg_filter_status_t st = d->response_head(req, &f);
        req->run.hook = outer;
        if (st == TG_FILTER_CONTINUE)
            continue;
        /* The answer goes through the hooks that have not seen a response
         * yet: never again through this one, which could answer forever. */
        req->run.resp_head_ran = c->n - i;
        stop(req, d->name, "the response head", st);
        return 1;
    }
    return 0;
}

int tg_chain_body(tg_request_t *req, bool response, struct evbuffer *chunk, bool last)
{
    const tg_chain_t *c = req->run.chain;
    for (size_t k = 0; k < c->n; k++) {
        /* Request bodies flow through the chain in order, responses backwards. */
        size_t i = response ? c->n - 1 - k : k;
        const tg_plugin_t *d = c->items[i]->plugin;
        tg_filter_status_t (*hook)(tg_request_t *, const tg_filter_t *, struct evbuffer *, bool) =
            response ? d->response_body : d->request_body;
        if (hook == NULL)
            continue;
        tg_filter_t f = filter_of(req, i);
        uint8_t outer = req->run.hook;
        req->run.hook = TG_HOOK_BODY;
        tg_filter_status_t st = hook(req, &f, chunk, last);
        req->run.hook = outer;
        if (st != TG_FILTER_CONTINUE) {
            stop(req, d->name, response ? "the response body" : "the request body", st);
            return -1;
        }
    }
    return 0;
}

void tg_chain_log(tg_request_t *req)
{
    const tg_chain_t *c = req->run.chain;
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
