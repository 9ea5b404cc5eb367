#include "route_action.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host.h"
#include "request.h"
#include "template.h"
#include "tollgate/text.h"

/* ---- config ---- */

static int parse_redirect_status(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    uint64_t *status = out;
    if (tg_conf_get_uint(n, 301, 308, status, err) < 0)
        return -1;
    if (*status == 304 || *status == 305 || *status == 306)
        return tg_conf_error(err, n, "a redirect status is 301, 302, 303, 307 or 308");
    return 0;
}

typedef struct {
    const tg_conf_node_t *to;
    uint64_t status;
    bool keep_query;
} redirect_conf_t;

static const tg_conf_field_t redirect_fields[] = {
    {"to", TG_CONF_FIELD_NODE, TG_CONF_AT(redirect_conf_t, to), .flags = TG_CONF_REQUIRED,
     .help = "the redirect URL template"},
    {"status", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(redirect_conf_t, status),
     .parse = parse_redirect_status},
    {"keep_query", TG_CONF_FIELD_BOOL, TG_CONF_AT(redirect_conf_t, keep_query)},
    TG_CONF_END,
};

static int parse_redirect(tg_route_t *r, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    redirect_conf_t rc = {.status = 302}; /* nginx `return URL` */
    if (tg_conf_read(n, redirect_fields, "redirect", &rc, err) < 0)
        return -1;
    tg_redirect_t *rd = calloc(1, sizeof(*rd));
    if (rd == NULL)
        abort();
    r->redirect = rd;
    rd->status = rc.status;
    rd->keep_query = rc.keep_query;
    rd->to = tg_template_compile_route(rc.to, TG_TEMPLATE_URL, r, err);
    return rd->to ? 0 : -1;
}

static const tg_conf_field_t respond_fields[] = {
    {"status", TG_CONF_FIELD_UINT, TG_CONF_AT(tg_respond_t, status), .min = 200, .max = 599,
     .def = 200},
    {"body", TG_CONF_FIELD_STRING, TG_CONF_AT(tg_respond_t, body)},
    {"content_type", TG_CONF_FIELD_STRING, TG_CONF_AT(tg_respond_t, content_type),
     .flags = TG_CONF_NONEMPTY},
    {"headers", TG_CONF_FIELD_NODE, TG_CONF_AT(tg_respond_t, headers_node)},
    TG_CONF_END,
};

static int parse_reply_headers(tg_route_t *r, tg_respond_t *rs, const tg_conf_node_t *n,
                               tg_conf_err_t *err)
{
    if (n == NULL || n->type == TG_CONF_NULL)
        return 0;
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a map of header names to values");
    rs->headers = calloc(n->count, sizeof(*rs->headers));
    if (rs->headers == NULL)
        abort();
    for (size_t i = 0; i < n->count; i++) {
        const char *name = n->keys[i]->value;
        int rc = tg_response_header_check(name, NULL, 0);
        if (rc == TG_EINVAL)
            return tg_conf_error(err, n->keys[i], "invalid header name '%s'", name);
        if (rc == TG_EFORBIDDEN)
            return tg_conf_error(err, n->keys[i], "'%s' is written by the gateway itself", name);
        if (strcasecmp(name, "Content-Type") == 0)
            return tg_conf_error(err, n->keys[i], "use content_type for Content-Type");
        tg_tpl_header_t *h = &rs->headers[rs->nheaders++];
        h->name = strdup(name);
        if (h->name == NULL)
            abort();
        h->value = tg_template_compile_route(n->items[i], TG_TEMPLATE_HEADER, r, err);
        if (h->value == NULL)
            return -1;
    }
    return 0;
}

static int parse_respond(tg_route_t *r, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    tg_respond_t *rs = calloc(1, sizeof(*rs));
    if (rs == NULL)
        abort();
    r->respond = rs;
    if (tg_conf_read(n, respond_fields, "respond", rs, err) < 0)
        return -1;
    if (rs->content_type != NULL &&
        !tg_field_value_valid(rs->content_type, strlen(rs->content_type)))
        return tg_conf_error(err, tg_conf_map_get(n, "content_type"),
                             "content_type is not a valid header value");
    /* RFC 9110 sections 15.3.5 and 15.4.5: these never carry content. */
    if ((rs->status == 204 || rs->status == 304) && rs->body != NULL && rs->body[0] != '\0')
        return tg_conf_error(err, tg_conf_map_get(n, "body"), "a %u response has no body",
                             (unsigned)rs->status);
    if (rs->content_type == NULL && rs->body != NULL && rs->body[0] != '\0' &&
        (rs->content_type = strdup("text/plain; charset=utf-8")) == NULL)
        abort();
    int rc = parse_reply_headers(r, rs, rs->headers_node, err);
    rs->headers_node = NULL;
    return rc;
}

static int parse_rewrite(tg_route_t *r, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    if (r->upstream == NULL)
        return tg_conf_error(err, n, "rewrite needs an upstream route");
    if (r->strip_prefix != NULL)
        return tg_conf_error(err, n,
                             "rewrite and strip_prefix both set the upstream path: use "
                             "{path_rest} in the rewrite");
    r->rewrite = tg_template_compile_route(n, TG_TEMPLATE_PATH, r, err);
    if (r->rewrite == NULL)
        return -1;
    /* nginx: a replacement ending with "?" does not get the client's query. */
    r->rewrite_drops_query = n->len > 0 && n->value[n->len - 1] == '?';
    return 0;
}

static int parse_host_header(tg_route_t *r, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    if (r->upstream == NULL)
        return tg_conf_error(err, n, "host_header needs an upstream route");
    if (strcmp(s, "pass") == 0) {
        r->host_mode = TG_HOST_PASS;
    } else if (strcmp(s, "upstream") == 0) {
        r->host_mode = TG_HOST_UPSTREAM;
    } else if (tg_host_valid(s, strlen(s))) {
        r->host_mode = TG_HOST_LITERAL;
        r->host_literal = strdup(s);
        if (r->host_literal == NULL)
            abort();
    } else {
        return tg_conf_error(err, n,
                             "host_header is pass, upstream or a valid host[:port], not '%s'", s);
    }
    return 0;
}

int tg_route_action_parse(tg_route_t *r, const tg_conf_node_t *map, tg_conf_err_t *err)
{
    const tg_conf_node_t *n;
    if ((n = tg_conf_map_get(map, "redirect")) != NULL && parse_redirect(r, n, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(map, "respond")) != NULL && parse_respond(r, n, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(map, "rewrite")) != NULL && parse_rewrite(r, n, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(map, "host_header")) != NULL && parse_host_header(r, n, err) < 0)
        return -1;
    return 0;
}

void tg_route_action_free(tg_route_t *r)
{
    if (r->redirect != NULL) {
        tg_template_free(r->redirect->to);
        free(r->redirect);
    }
    if (r->respond != NULL) {
        tg_respond_t *rs = r->respond;
        for (size_t i = 0; i < rs->nheaders; i++) {
            free(rs->headers[i].name);
            tg_template_free(rs->headers[i].value);
        }
        free(rs->headers);
        tg_conf_fields_free(respond_fields, rs);
        free(rs);
    }
    tg_template_free(r->rewrite);
    free(r->host_literal);
}

/* ---- running ---- */

static void reply_header(tg_request_t *req, size_t cap, const char *name, const char *v, size_t len)
{
    tg_reply_t *rp = &req->run.reply;
    if (rp->headers == NULL)
        rp->headers = tg_arena_alloc(req->arena, cap * sizeof(*rp->headers));
    rp->headers[rp->nheaders++] = (tg_http_header_t){name, strlen(name), v, len};
}

static void redirect(tg_request_t *req, const tg_redirect_t *rd)
{
    const char *loc;
    size_t len;
    if (tg_template_render(req, rd->to, &loc, &len) < 0) {
        tg_request_respond_error(req, 400, loc);
        return;
    }
    if (rd->keep_query && req->client.query != NULL) {
        const char *sep = !rd->to->has_query ? "?" : loc[len - 1] == '?' ? "" : "&";
        loc = tg_arena_printf(req->arena, "%s%s%.*s", loc, sep, (int)req->client.query_len,
                              req->client.query);
        len = strlen(loc);
    }
    /* Encoded values, a canonical path and a client's query bytes always
     * are; checked anyway, as every value that reaches a header is. */
    if (!tg_field_value_valid(loc, len)) {
        tg_request_respond_error(req, 500, "invalid redirect target");
        return;
    }
    tg_request_respond(req, (int)rd->status, NULL, NULL, 0);
    reply_header(req, 1, "Location", loc, len);
}

static void respond(tg_request_t *req, const tg_respond_t *rs)
{
    tg_request_respond(req, (int)rs->status, rs->content_type, rs->body,
                       rs->body ? strlen(rs->body) : 0);
    for (size_t i = 0; i < rs->nheaders; i++) {
        const char *v;
        size_t len;
        /* A value that cannot be rendered leaves its header out. */
        if (tg_template_render(req, rs->headers[i].value, &v, &len) == 0)
            reply_header(req, rs->nheaders, rs->headers[i].name, v, len);
    }
}

void tg_route_answer(tg_request_t *req)
{
    const tg_route_t *r = req->route;
    if (r->redirect != NULL)
        redirect(req, r->redirect);
    else
        respond(req, r->respond);
}

int tg_route_rewrite(tg_request_t *req)
{
    const tg_route_t *r = req->route;
    const char *out;
    size_t len;
    if (tg_template_render(req, r->rewrite, &out, &len) < 0) {
        tg_request_respond_error(req, 400, out);
        return -1;
    }
    bool drop = r->rewrite_drops_query;
    if (drop)
        len--; /* the final "?" only says that the client's query goes */
    const char *q = memchr(out, '?', len);
    size_t plen = q ? (size_t)(q - out) : len;
    if (tg_request_set_path(req, out, plen) < 0) {
        tg_request_respond_error(req, 500, "invalid rewritten path");
        return -1;
    }
    if (q == NULL) /* no query in the template: the client's stays (unless dropped) */
        return drop ? tg_request_set_query(req, NULL, 0) : 0;
    const char *tq = q + 1;
    size_t tlen = len - plen - 1;
    if (drop || req->client.query_len == 0)
        return tg_request_set_query(req, tq, tlen);
    /* nginx rewrite: the template's parameters, then the client's. */
    char *both = tg_arena_printf(req->arena, "%.*s%s%.*s", (int)tlen, tq, tlen ? "&" : "",
                                 (int)req->client.query_len, req->client.query);
    return tg_request_set_query(req, both, strlen(both));
}

const char *tg_route_host(const tg_request_t *req, const tg_target_t *t, size_t *len)
{
    const tg_route_t *r = req->route;
    const char *h;
    switch (r ? r->host_mode : TG_HOST_PASS) {
    case TG_HOST_LITERAL:
        h = r->host_literal;
        break;
    case TG_HOST_UPSTREAM:
        h = t->host_header;
        break;
    case TG_HOST_PASS:
    default:
        if (req->client.host != NULL) {
            *len = req->client.host_len;
            return req->client.host;
        }
        h = t->host_header; /* an HTTP/1.0 client without Host */
        break;
    }
    *len = strlen(h);
    return h;
}
