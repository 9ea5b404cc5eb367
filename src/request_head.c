#include "request_head.h"

#include <arpa/inet.h>
#include <string.h>

#include "client_addr.h"
#include "client_fields.h"
#include "conn.h"
#include "field_list.h"
#include "host.h"
#include "path_norm.h"
#include "router.h"

static int fail(tg_request_t *req, int status, const char *reason)
{
    req->client.http.error_status = status;
    req->client.http.error_reason = reason;
    return TG_HTTP_ERROR;
}

static bool prefix_ci(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (len < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != lit[i])
            return false;
    }
    return true;
}

/* RFC 9112 section 3.2: origin-form, absolute-form (the authority replaces
 * Host), asterisk-form and authority-form (which we do not serve). */
static int split_target(tg_request_t *req, const char **path, size_t *path_len)
{
    const char *t = req->client.http.target;
    size_t len = req->client.http.target_len;
    if (req->client.method_bit == TG_METHOD_CONNECT)
        return fail(req, 405, "CONNECT is not supported");
    if (len > 0 && t[0] == '/') {
        *path = t;
        *path_len = len;
        return 0;
    }
    size_t skip = prefix_ci(t, len, "http://") ? 7 : prefix_ci(t, len, "https://") ? 8 : 0;
    if (skip == 0)
        return fail(req, 400,
                    len == 1 && t[0] == '*' ? "asterisk-form request-target is not supported"
                                            : "invalid request-target");
    const char *auth = t + skip;
    size_t alen = 0;
    while (skip + alen < len && auth[alen] != '/' && auth[alen] != '?')
        alen++;
    /* The same rule as for Host (src/host.h): no userinfo, no empty host. */
    if (!tg_host_valid(auth, alen))
        return fail(req, 400, "invalid authority in request-target");
    req->client.host = auth;
    req->client.host_len = alen;
    *path = auth + alen;
    *path_len = len - skip - alen;
    return 0;
}

static int canonical_path(tg_request_t *req)
{
    const char *path;
    size_t plen;
    if (split_target(req, &path, &plen) < 0)
        return TG_HTTP_ERROR;
    if (memchr(path, '#', plen) != NULL)
        return fail(req, 400, "fragment in request-target");
    const char *q = memchr(path, '?', plen);
    if (q != NULL) {
        req->client.query = q + 1;
        req->client.query_len = plen - (size_t)(q + 1 - path);
        plen = (size_t)(q - path);
    }
    if (plen == 0) {
        /* absolute-form without a path: RFC 9112 section 3.2.2 says "/". */
        req->client.path = tg_arena_strndup(req->arena, "/", 1);
        req->client.path_len = 1;
        return 0;
    }
    req->client.path = tg_arena_alloc(req->arena, plen + 1);
    const char *reason = NULL;
    if (tg_path_normalize(path, plen, req->cfg->limits.path_flags, req->client.path,
                          &req->client.path_len, &reason) < 0)
        return fail(req, 400, reason ? reason : "invalid path");
    req->client.path[req->client.path_len] = '\0';
    return 0;
}

static void take_request_id(tg_request_t *req)
{
    for (size_t i = 0; i < req->client.http.num_headers; i++) {
        const tg_http_header_t *h = &req->client.http.headers[i];
        if (TG_HTTP_NAME_IS(h, "x-request-id") && tg_request_id_valid(h->value, h->value_len)) {
            memcpy(req->request_id, h->value, h->value_len);
            req->request_id[h->value_len] = '\0';
            req->request_id_len = h->value_len;
            return;
        }
    }
    tg_request_id_generate(&req->conn->worker->ids, req->request_id);
    req->request_id_len = 32;
}

/* RFC 6455 section 4.1 and RFC 9110 section 7.8: a GET without a body,
 * Connection listing "upgrade" and Upgrade listing "websocket" (any case, in
 * any of its lines). An Upgrade line that is not a protocol list makes the
 * request an ordinary one. Read before the hop-by-hop fields are removed. */
static bool websocket_requested(const tg_request_t *req)
{
    const tg_http_request_t *h = &req->client.http;
    if (req->client.method_bit != TG_METHOD_GET || !(h->flags & TG_HF_CONN_UPGRADE) ||
        h->minor_version < 1 || h->body_kind != TG_BODY_NONE)
        return false;
    int found = 0;
    for (size_t i = 0; i < h->num_headers; i++) {
        if (!TG_HTTP_NAME_IS(&h->headers[i], "upgrade"))
            continue;
        int r = tg_list_upgrade_websocket(h->headers[i].value, h->headers[i].value_len);
        if (r < 0)
            return false;
        found |= r;
    }
    return found != 0;
}

/* The client is the peer, or behind a trusted peer the address its
 * X-Forwarded-For vouches for (client_addr.h); computed once, read by
 * tg_request_client_ip() and tg_request_client_addr(). */
static void find_client(tg_request_t *req)
{
    const tg_config_t *cfg = req->cfg;
    if (!req->client.peer_trusted ||
        !tg_client_addr_from_xff(req->client.http.headers, req->client.http.num_headers,
                                 cfg->trusted_proxies, cfg->ntrusted_proxies, &req->client.addr))
        return;
    const void *a = req->client.addr.ss_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)&req->client.addr)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)&req->client.addr)->sin6_addr;
    if (inet_ntop(req->client.addr.ss_family, a, req->client.ip, sizeof(req->client.ip)) != NULL)
        req->client.from_xff = true;
}

/* Only the client's end-to-end fields stay in http.headers (client_fields.h). */
static int filter_fields(tg_request_t *req)
{
    const tg_config_t *cfg = req->cfg;
    req->client.peer_trusted =
        cfg->ntrusted_proxies > 0 &&
        tg_config_is_trusted_proxy(cfg, (const struct sockaddr *)&req->conn->peer);
    req->client.ws_requested = websocket_requested(req);
    tg_client_fields_policy_t policy = {
        .underscores = cfg->limits.headers_with_underscores,
        .trusted_peer = req->client.peer_trusted,
    };
    const char *reason = NULL;
    if (tg_client_fields_filter(req->client.http.headers, &req->client.http.num_headers, &policy,
                                &req->client.http.host_index, &reason) < 0)
        return fail(req, 400, reason);
    find_client(req);
    return 0;
}

static void relocate(tg_request_t *req, const char *from, char *to)
{
    ptrdiff_t d = to - from;
    req->client.http.method += d;
    req->client.http.target += d;
    for (size_t i = 0; i < req->client.http.num_headers; i++) {
        req->client.http.headers[i].name += d;
        req->client.http.headers[i].value += d;
    }
}

int tg_request_head_parse(tg_request_t *req, const char *buf, size_t len)
{
    uint32_t cap = req->cfg->limits.max_headers;
    req->client.http.headers = tg_arena_alloc(req->arena, sizeof(tg_http_header_t) * cap);
    req->client.http.num_headers = cap;
    req->client.headers_cap = cap;
    int r = tg_http_parse_request(buf, len, &req->client.http);
    if (r < 0)
        return r;
    /* The head is copied once (a few hundred bytes) so that it outlives the
     * input buffer, which keeps filling with body and pipelined bytes. */
    req->client.head = tg_arena_alloc(req->arena, (size_t)r);
    memcpy(req->client.head, buf, (size_t)r);
    req->client.head_len = (size_t)r;
    relocate(req, buf, req->client.head);
    req->client.method_bit =
        tg_router_method_bit(req->client.http.method, req->client.http.method_len);
    if (canonical_path(req) < 0)
        return TG_HTTP_ERROR;
    if (req->client.host == NULL && req->client.http.host_index >= 0) {
        const tg_http_header_t *h = &req->client.http.headers[req->client.http.host_index];
        req->client.host = h->value;
        req->client.host_len = h->value_len;
    }
    if (filter_fields(req) < 0)
        return TG_HTTP_ERROR;
    take_request_id(req);
    return r;
}

static bool is_tchar_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t';
}

unsigned tg_request_connection_tokens(const tg_http_header_t *hs, size_t n, tg_span_t *tokens,
                                      unsigned max)
{
    unsigned count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!TG_HTTP_NAME_IS(&hs[i], "connection"))
            continue;
        const char *v = hs[i].value, *end = v + hs[i].value_len;
        while (v < end) {
            while (v < end && is_tchar_sep(*v))
                v++;
            const char *s = v;
            while (v < end && !is_tchar_sep(*v))
                v++;
            if (v > s && count < max) {
                tokens[count].p = s;
                tokens[count].len = (size_t)(v - s);
                count++;
            }
        }
    }
    return count;
}

bool tg_request_is_hop_header(const tg_http_header_t *h, const tg_span_t *tokens, unsigned ntokens)
{
    switch (h->name_len) {
    case 2:
        if (TG_HTTP_NAME_IS(h, "te"))
            return true;
        break;
    case 7:
        if (TG_HTTP_NAME_IS(h, "trailer") || TG_HTTP_NAME_IS(h, "upgrade"))
            return true;
        break;
    case 10:
        if (TG_HTTP_NAME_IS(h, "connection") || TG_HTTP_NAME_IS(h, "keep-alive"))
            return true;
        break;
    case 16:
        if (TG_HTTP_NAME_IS(h, "proxy-connection"))
            return true;
        break;
    case 17:
        if (TG_HTTP_NAME_IS(h, "transfer-encoding"))
            return true;
        break;
    default:
        break;
    }
    for (unsigned i = 0; i < ntokens; i++) {
        if (tokens[i].len == h->name_len && strncasecmp(tokens[i].p, h->name, h->name_len) == 0)
            return true;
    }
    return false;
}
