#include "body_read.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>

#include "chain.h"
#include "dispatch.h"
#include "proto.h"
#include "response.h"
#include "worker.h"

/* The first pump runs from the event loop, after the hook returned PAUSE:
 * the body may already sit in the input buffer (no further read event would
 * come), and an error answer must not be sent from inside a hook. */
typedef struct {
    tg_request_t *req;
    struct event *ev;
} kick_t;

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kick_t *k = arg;
    tg_body_read_pump(k->req);
}

static void kick_free(void *arg)
{
    kick_t *k = arg;
    event_free(k->ev);
}

int tg_request_read_body(tg_request_t *r, size_t limit,
                         void (*done)(void *data, const char *body, size_t len), void *data)
{
    if (r->run.hook != TG_HOOK_REQUEST_HEAD || r->client.kept_done != NULL ||
        r->client.kept_body != NULL || r->up.tries.body != NULL ||
        (r->run.chain != NULL && r->run.chain->has_request_body) || done == NULL)
        return TG_ESTATE;
    tg_body_t *b = &r->client.body;
    if (b->kind == TG_BODY_NONE || b->done) {
        done(data, "", 0);
        return 0;
    }
    kick_t *k = tg_arena_calloc(r->arena, sizeof(*k));
    k->req = r;
    k->ev = evtimer_new(r->gen->worker->base, kick_cb, k);
    if (k->ev == NULL || (r->client.kept_body = evbuffer_new()) == NULL) {
        if (k->ev != NULL)
            event_free(k->ev);
        return TG_ESTATE;
    }
    tg_arena_on_cleanup(r->arena, kick_free, k);
    if (limit > 0 && (b->limit == 0 || limit < b->limit))
        b->limit = limit;
    b->out_chunked = false; /* the plugin gets the bytes; they go on with a length */
    r->client.kept_done = done;
    r->client.kept_data = data;
    tg_dispatch_send_continue(r);
    struct timeval now = {0, 0};
    evtimer_add(k->ev, &now);
    return 0;
}

static void finish(tg_request_t *req)
{
    struct evbuffer *body = req->client.kept_body;
    void (*done)(void *, const char *, size_t) = req->client.kept_done;
    size_t n = evbuffer_get_length(body);
    req->client.kept_body = NULL;
    req->client.kept_done = NULL;
    req->proto->input_done(req);
    /* From now on the body is a known length, kept whole: the upstream head
     * says Content-Length, and a retry resends it (tg_try_body_resendable). */
    req->client.body.kind = TG_BODY_LENGTH;
    req->client.http.content_length = n;
    req->client.body_started = true;
    req->up.tries.body = body;
    const char *bytes = n ? (const char *)evbuffer_pullup(body, (ev_ssize_t)n) : "";
    done(req->client.kept_data, bytes, n);
}

void tg_body_read_pump(tg_request_t *req)
{
    if (req->client.kept_done == NULL)
        return;
    tg_body_t *b = &req->client.body;
    int r;
    if (b->kind == TG_BODY_LENGTH && b->limit > 0 && b->moved + b->remaining > b->limit)
        r = TG_BODY_TOO_LARGE;
    else
        r = tg_body_pump(b, req->proto->input(req), req->client.kept_body, SIZE_MAX);
    if (r == TG_BODY_MORE)
        return;
    if (r == TG_BODY_DONE) {
        finish(req);
        return;
    }
    req->client.kept_done = NULL; /* the plugin's read ends with the core's answer */
    req->run.paused = false;
    tg_response_error(req, r == TG_BODY_TOO_LARGE ? 413 : 400,
                      r == TG_BODY_TOO_LARGE ? "request body too large"
                                             : (b->error ? b->error : "invalid request body"));
}
