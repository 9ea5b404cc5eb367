#include "h1_head.h"

#include <string.h>

#include "head_write.h"
#include "http_response.h"
#include "request_head.h"

/* Connection options read from the response (tokens of its Connection). */
#define MAX_CONN_TOKENS 8

static bool skip_header(const tg_http_header_t *h, const tg_span_t *tokens, unsigned n)
{
    if (tg_request_is_hop_header(h, tokens, n))
        return true;
    return (h->name_len == 14 && TG_HTTP_NAME_IS(h, "content-length")) ||
           (h->name_len == 12 && TG_HTTP_NAME_IS(h, "x-request-id"));
}

static void put_framing(char **w, const tg_h1_head_t *h, const tg_http_header_t *cl)
{
    switch (h->framing) {
    case TG_H1_LENGTH:
        TG_PUT_LIT(w, "Content-Length: ");
        tg_put_u64(w, h->length);
        TG_PUT_LIT(w, "\r\n");
        break;
    case TG_H1_NONE:
        /* HEAD and 304 answers keep the length of the representation. */
        if (cl != NULL && h->resp->status != 204 && h->resp->status >= 200) {
            TG_PUT_LIT(w, "Content-Length: ");
            tg_put(w, cl->value, cl->value_len);
            TG_PUT_LIT(w, "\r\n");
        }
        break;
    case TG_H1_CHUNKED:
        TG_PUT_LIT(w, "Transfer-Encoding: chunked\r\n");
        break;
    case TG_H1_CLOSE:
        break;
    case TG_H1_UPGRADE:
        /* Hop-by-hop fields were dropped as usual; this hop's pair is ours
         * (proxy.c lets a 101 through only when its Upgrade is websocket). */
        TG_PUT_LIT(w, "Connection: upgrade\r\nUpgrade: websocket\r\n");
        return;
    }
    if (!h->keepalive)
        TG_PUT_LIT(w, "Connection: close\r\n");
    else if (h->client10)
        TG_PUT_LIT(w, "Connection: keep-alive\r\n");
}

size_t tg_h1_head_write(struct evbuffer *out, const tg_h1_head_t *h)
{
    const tg_http_response_t *resp = h->resp;
    tg_span_t tokens[MAX_CONN_TOKENS];
    unsigned ntok =
        tg_request_connection_tokens(resp->headers, resp->num_headers, tokens, MAX_CONN_TOKENS);
    const char *reason = resp->reason;
    size_t reason_len = resp->reason_len;
    if (reason == NULL) {
        reason = tg_http_reason(resp->status);
        reason_len = strlen(reason);
    }
    size_t cap = reason_len + h->request_id_len + 256;
    for (size_t i = 0; i < resp->num_headers; i++)
        cap += resp->headers[i].name_len + resp->headers[i].value_len + 4;
    for (size_t i = 0; i < h->nextra; i++)
        cap += h->extra[i].name_len + h->extra[i].value_len + 4;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)cap, &v, 1) < 1)
        return 0;
    char *w = v.iov_base;
    TG_PUT_LIT(&w, "HTTP/1.1 ");
    tg_put_status(&w, resp->status);
    TG_PUT_LIT(&w, " ");
    tg_put(&w, reason, reason_len);
    TG_PUT_LIT(&w, "\r\n");
    const tg_http_header_t *cl = NULL;
    for (size_t i = 0; i < resp->num_headers; i++) {
        const tg_http_header_t *f = &resp->headers[i];
        if (f->name_len == 14 && TG_HTTP_NAME_IS(f, "content-length"))
            cl = f;
        if (!skip_header(f, tokens, ntok))
            tg_put_header(&w, f);
    }
    for (size_t i = 0; i < h->nextra; i++)
        tg_put_header(&w, &h->extra[i]);
    TG_PUT_LIT(&w, "X-Request-Id: ");
    tg_put(&w, h->request_id, h->request_id_len);
    TG_PUT_LIT(&w, "\r\n");
    put_framing(&w, h, cl);
    TG_PUT_LIT(&w, "\r\n");
    v.iov_len = (size_t)(w - (char *)v.iov_base);
    evbuffer_commit_space(out, &v, 1);
    return v.iov_len;
}
