/* The public request API of include/tollgate/request.h over tg_request_t. */
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "client_fields.h"
#include "conn.h"
#include "dispatch.h"
#include "field_list.h"
#include "http_response.h"
#include "json_escape.h"
#include "proto.h"
#include "request.h"
#include "resolve.h"
#include "sensitive.h"
#include "tollgate/clock.h"
#include "tollgate/request.h"
#include "tollgate/text.h"

const char *tg_request_method(const tg_request_t *r, size_t *len)
{
    *len = r->client.http.method_len;
    return r->client.http.method;
}

const char *tg_request_path(const tg_request_t *r, size_t *len)
{
    *len = r->client.path_len;
    return r->client.path;
}

const char *tg_request_client_path(const tg_request_t *r, size_t *len)
{
    if (r->client.client_path == NULL)
        return tg_request_path(r, len);
    *len = r->client.client_path_len;
    return r->client.client_path;
}

const char *tg_request_query(const tg_request_t *r, size_t *len)
{
    *len = r->client.query_len;
    return r->client.query;
}

const char *tg_request_client_query(const tg_request_t *r, size_t *len)
{
    if (!r->client.query_replaced)
        return tg_request_query(r, len);
    *len = r->client.client_query_len;
    return r->client.client_query;
}

const char *tg_request_query_param(const tg_request_t *r, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    const char *q = r->client.query, *end = r->client.query + r->client.query_len;
    while (q != NULL && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) >= nlen && memcmp(q, name, nlen) == 0 &&
            (q + nlen == stop || q[nlen] == '=')) {
            const char *v = q + nlen == stop ? stop : q + nlen + 1;
            *len = (size_t)(stop - v);
            return v;
        }
        q = amp ? amp + 1 : NULL;
    }
    *len = 0;
    return NULL;
}

const char *tg_request_client_ip(const tg_request_t *r)
{
    return r->client.from_xff ? r->client.ip : r->conn->peer_ip;
}

const struct sockaddr *tg_request_client_addr(const tg_request_t *r)
{
    return r->client.from_xff ? (const struct sockaddr *)&r->client.addr : &r->conn->peer.sa;
}

const char *tg_request_host(const tg_request_t *r, size_t *len)
{
    *len = r->client.host_len;
    return r->client.host;
}

const char *tg_request_protocol(const tg_request_t *r)
{
    if (strcmp(r->proto->name, "h2") == 0)
        return "HTTP/2.0";
    return r->client.http.minor_version == 0 && r->client.http.method != NULL ? "HTTP/1.0"
                                                                              : "HTTP/1.1";
}

const char *tg_request_id(const tg_request_t *r, size_t *len)
{
    *len = r->request_id_len;
    return r->request_id;
}

const char *tg_request_route(const tg_request_t *r)
{
    return r->route ? r->route->name : NULL;
}

const char *tg_request_upstream(const tg_request_t *r)
{
    return r->up.pool ? r->up.pool->conf->name : NULL;
}

const char *tg_request_upstream_addr(const tg_request_t *r)
{
    if (r->up.pool == NULL || !r->up.target_used)
        return NULL;
    const tg_target_t *t = &r->up.pool->conf->targets[r->up.target];
    if (!t->dynamic || r->up.tries.endpoint == NULL)
        return t->name;
    /* a re-resolved name: the address the last try went to */
    char *buf = tg_arena_alloc(r->arena, 64);
    return buf ? tg_endpoint_label(r->up.tries.endpoint, buf, 64) : t->name;
}

unsigned tg_request_retries(const tg_request_t *r)
{
    return r->up.tries.retries;
}

tg_arena_t *tg_request_arena(tg_request_t *r)
{
    return r->arena;
}

struct event_base *tg_request_event_base(tg_request_t *r)
{
    return r->conn->worker->base;
}

unsigned tg_request_worker_id(const tg_request_t *r)
{
    return r->conn->worker->id;
}

/* ---- headers ---- */

static bool name_is(const tg_http_header_t *h, const char *name, size_t nlen)
{
    return h->name_len == nlen && strncasecmp(h->name, name, nlen) == 0;
}

size_t tg_request_header_count(const tg_request_t *r)
{
    return r->client.http.num_headers;
}

bool tg_request_header_at(const tg_request_t *r, size_t i, const char **name, size_t *name_len,
                          const char **value, size_t *value_len)
{
    if (i >= r->client.http.num_headers)
        return false;
    const tg_http_header_t *h = &r->client.http.headers[i];
    *name = h->name;
    *name_len = h->name_len;
    *value = h->value;
    *value_len = h->value_len;
    return true;
}

static const char *find(const tg_http_header_t *hs, size_t n, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (name_is(&hs[i], name, nlen)) {
            *len = hs[i].value_len;
            return hs[i].value;
        }
    }
    *len = 0;
    return NULL;
}

const char *tg_request_header(const tg_request_t *r, const char *name, size_t *len)
{
    return find(r->client.http.headers, r->client.http.num_headers, name, len);
}

/* folded: '_' and '-' alike (request headers, see tg_request_set_header). */
static size_t remove_all(tg_http_header_t *hs, size_t *n, const char *name, bool folded)
{
    size_t nlen = strlen(name), w = 0, removed = 0;
    for (size_t i = 0; i < *n; i++) {
        if (folded ? tg_field_name_folded_eq(hs[i].name, hs[i].name_len, name, nlen)
                   : name_is(&hs[i], name, nlen))
            removed++;
        else
            hs[w++] = hs[i];
    }
    *n = w;
    return removed;
}

/* The next slot of an arena array of headers, growing it (in the arena)
 * when full. */
static tg_http_header_t *grow(tg_arena_t *a, tg_http_header_t **hs, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        tg_http_header_t *grown = tg_arena_alloc(a, ncap * sizeof(*grown));
        if (*n)
            memcpy(grown, *hs, *n * sizeof(*grown));
        *hs = grown;
        *cap = ncap;
    }
    return &(*hs)[(*n)++];
}

/* Appends a copy of name and value. */
static void append(tg_arena_t *a, tg_http_header_t **hs, size_t *n, size_t *cap, const char *name,
                   const char *value, size_t value_len)
{
    tg_http_header_t *h = grow(a, hs, n, cap);
    h->name_len = strlen(name);
    h->name = tg_arena_strndup(a, name, h->name_len);
    h->value = tg_arena_strndup(a, value, value_len);
    h->value_len = value_len;
}

/* What a plugin may set (request.h): a token name the gateway does not own in
 * that direction, a value that cannot end the field. */
static int header_check(const char *name, const char *value, size_t value_len, bool response)
{
    size_t nlen = name ? strlen(name) : 0;
    if (!tg_token_valid(name, nlen) || (value != NULL && !tg_field_value_valid(value, value_len)))
        return TG_EINVAL;
    return tg_field_gateway_owned(name, nlen, response) ? TG_EFORBIDDEN : 0;
}

int tg_request_header_check(const char *name, const char *value, size_t value_len)
{
    return header_check(name, value, value_len, false);
}

int tg_response_header_check(const char *name, const char *value, size_t value_len)
{
    return header_check(name, value, value_len, true);
}

/* A setter's check: value NULL stands for "" (with value_len 0). */
static int set_check(const char *name, const char **value, size_t value_len, bool response)
{
    if (*value == NULL) {
        if (value_len > 0)
            return TG_EINVAL;
        *value = "";
    }
    return header_check(name, *value, value_len, response);
}

int tg_request_set_header(tg_request_t *r, const char *name, const char *value, size_t value_len)
{
    int rc = set_check(name, &value, value_len, false);
    if (rc < 0)
        return rc;
    remove_all(r->client.http.headers, &r->client.http.num_headers, name, true);
    append(r->arena, &r->client.http.headers, &r->client.http.num_headers, &r->client.headers_cap,
           name, value, value_len);
    return 0;
}

int tg_request_add_header(tg_request_t *r, const char *name, const char *value, size_t value_len)
{
    int rc = set_check(name, &value, value_len, false);
    if (rc < 0)
        return rc;
    append(r->arena, &r->client.http.headers, &r->client.http.num_headers, &r->client.headers_cap,
           name, value, value_len);
    return 0;
}

size_t tg_request_remove_header(tg_request_t *r, const char *name)
{
    return remove_all(r->client.http.headers, &r->client.http.num_headers, name, true);
}

int tg_request_set_path(tg_request_t *r, const char *path, size_t len)
{
    if (len == 0 || path[0] != '/' || memchr(path, '?', len) || memchr(path, ' ', len))
        return TG_EINVAL;
    r->client.path = tg_arena_strndup(r->arena, path, len);
    r->client.path_len = len;
    return 0;
}

int tg_request_set_query(tg_request_t *r, const char *query, size_t len)
{
    if (query != NULL && !tg_query_bytes_valid(query, len))
        return TG_EINVAL;
    if (!r->client.query_replaced) {
        r->client.client_query = r->client.query;
        r->client.client_query_len = r->client.query_len;
        r->client.query_replaced = true;
    }
    r->client.query = query ? tg_arena_strndup(r->arena, query, len) : NULL;
    r->client.query_len = query ? len : 0;
    return 0;
}

bool tg_request_sensitive(const tg_request_t *r, tg_sensitive_kind_t kind, const char *name,
                          size_t len)
{
    const tg_sensitive_t *s = r->cfg ? r->cfg->sensitive : NULL;
    if (s == NULL || len == 0)
        return false;
    if (kind != TG_SENSITIVE_QUERY)
        return tg_sensitive_has(s, kind, name, len);
    /* Decoding never lengthens, and shortens 3 bytes to 1 at most. */
    char buf[3 * TG_SENSITIVE_NAME_MAX];
    if (len > sizeof(buf))
        return false;
    return tg_sensitive_has(s, kind, buf, tg_percent_decode(name, len, buf));
}

/* ---- answering ---- */

/* RFC 9110 section 15: a final status has three digits, 2xx to 5xx. */
static bool status_ok(int status)
{
    return status >= 200 && status <= 599;
}

int tg_request_respond(tg_request_t *r, int status, const char *content_type, const char *body,
                       size_t body_len)
{
    if (!status_ok(status) ||
        (content_type != NULL && !tg_field_value_valid(content_type, strlen(content_type))))
        return TG_EINVAL;
    r->run.reply.set = true;
    r->run.reply.status = status;
    r->run.reply.content_type =
        content_type ? tg_arena_strndup(r->arena, content_type, strlen(content_type)) : NULL;
    r->run.reply.body = body_len ? tg_arena_strndup(r->arena, body, body_len) : "";
    r->run.reply.len = body_len;
    r->run.reply.headers = NULL; /* an earlier answer's go with it */
    r->run.reply.nheaders = 0;
    return 0;
}

int tg_request_respond_error(tg_request_t *r, int status, const char *msg)
{
    if (!status_ok(status))
        return TG_EINVAL;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, "{\"error\":\"", 10);
    tg_json_escape(b, msg, strlen(msg));
    evbuffer_add(b, "\",\"request_id\":\"", 16);
    tg_json_escape(b, r->request_id, r->request_id_len);
    evbuffer_add(b, "\"}\n", 3);
    size_t len = evbuffer_get_length(b);
    int rc = tg_request_respond(r, status, "application/json", (const char *)evbuffer_pullup(b, -1),
                                len);
    evbuffer_free(b);
    return rc;
}

int tg_request_add_response_header(tg_request_t *r, const char *name, const char *value,
                                   size_t value_len)
{
    int rc = set_check(name, &value, value_len, true);
    if (rc < 0)
        return rc;
    append(r->arena, &r->resp.extra, &r->resp.nextra, &r->resp.extra_cap, name, value, value_len);
    return 0;
}

int tg_response_name_init(tg_response_name_t *n, const char *name)
{
    int rc = header_check(name, NULL, 0, true);
    if (rc < 0)
        return rc;
    n->name = name;
    n->len = strlen(name);
    return 0;
}

int tg_request_add_response_header_named(tg_request_t *r, const tg_response_name_t *n,
                                         const char *value, size_t value_len)
{
    if (value == NULL && value_len > 0)
        return TG_EINVAL;
    if (value == NULL)
        value = "";
    if (!tg_field_value_valid(value, value_len))
        return TG_EINVAL;
    tg_http_header_t *h = grow(r->arena, &r->resp.extra, &r->resp.nextra, &r->resp.extra_cap);
    h->name = n->name; /* the caller keeps it for longer than the request */
    h->name_len = n->len;
    h->value = tg_arena_strndup(r->arena, value, value_len);
    h->value_len = value_len;
    return 0;
}

void tg_request_resume(tg_request_t *r, int status)
{
    tg_dispatch_resume(r, status);
}

void tg_request_on_cleanup(tg_request_t *r, void (*fn)(void *data), void *data)
{
    tg_arena_on_cleanup(r->arena, fn, data);
}

/* ---- response ---- */

int tg_response_status(const tg_request_t *r)
{
    if (r->resp.head != NULL)
        return r->resp.head->status;
    return r->resp.status;
}

/* The response head is open for changes: a response_head hook runs. */
static bool head_open(const tg_request_t *r)
{
    return r->run.hook == TG_HOOK_RESPONSE_HEAD && r->resp.head != NULL;
}

/* No body (RFC 9110 sections 15.3.5 and 15.4.5): the framing toward the
 * client was chosen from the upstream's status before the hooks ran. */
static bool bodiless(int status)
{
    return status == 204 || status == 304;
}

int tg_response_set_status(tg_request_t *r, int status)
{
    if (!head_open(r))
        return TG_ESTATE;
    if (!status_ok(status) || bodiless(status) != bodiless(r->resp.head->status))
        return TG_EINVAL;
    r->resp.head->status = status;
    return 0;
}

const char *tg_response_header(const tg_request_t *r, const char *name, size_t *len)
{
    if (!head_open(r)) {
        *len = 0;
        return NULL;
    }
    return find(r->resp.head->headers, r->resp.head->num_headers, name, len);
}

bool tg_response_header_at(const tg_request_t *r, size_t i, const char **name, size_t *name_len,
                           const char **value, size_t *value_len)
{
    if (!head_open(r) || i >= r->resp.head->num_headers)
        return false;
    const tg_http_header_t *h = &r->resp.head->headers[i];
    *name = h->name;
    *name_len = h->name_len;
    *value = h->value;
    *value_len = h->value_len;
    return true;
}

int tg_response_set_header(tg_request_t *r, const char *name, const char *value, size_t value_len)
{
    if (!head_open(r))
        return TG_ESTATE;
    int rc = set_check(name, &value, value_len, true);
    if (rc < 0)
        return rc;
    remove_all(r->resp.head->headers, &r->resp.head->num_headers, name, false);
    append(r->arena, &r->resp.head->headers, &r->resp.head->num_headers, &r->resp.head_cap, name,
           value, value_len);
    return 0;
}

int tg_response_add_header(tg_request_t *r, const char *name, const char *value, size_t value_len)
{
    if (!head_open(r))
        return TG_ESTATE;
    int rc = set_check(name, &value, value_len, true);
    if (rc < 0)
        return rc;
    append(r->arena, &r->resp.head->headers, &r->resp.head->num_headers, &r->resp.head_cap, name,
           value, value_len);
    return 0;
}

size_t tg_response_remove_header(tg_request_t *r, const char *name)
{
    if (!head_open(r))
        return 0;
    return remove_all(r->resp.head->headers, &r->resp.head->num_headers, name, false);
}

void tg_response_buffer_body(tg_request_t *r, size_t limit)
{
    r->resp.buffer_limit = limit ? limit : 1;
}

void tg_response_filter_body(tg_request_t *r)
{
    r->resp.filter = true;
}

bool tg_response_body_buffered(const tg_request_t *r)
{
    return r->resp.buffering;
}

/* ---- vars ---- */

static tg_var_t *var_find(const tg_request_t *r, const char *key)
{
    for (tg_var_t *v = r->run.vars; v != NULL; v = v->next)
        if (strcmp(v->key, key) == 0)
            return v;
    return NULL;
}

static tg_var_t *var_slot(tg_request_t *r, const char *key)
{
    tg_var_t *v = var_find(r, key);
    if (v == NULL) {
        v = tg_arena_calloc(r->arena, sizeof(*v));
        v->key = tg_arena_strndup(r->arena, key, strlen(key));
        v->next = r->run.vars;
        r->run.vars = v;
    }
    return v;
}

void tg_request_var_set_str(tg_request_t *r, const char *key, const char *value, size_t len)
{
    tg_var_t *v = var_slot(r, key);
    v->type = TG_VAR_STR;
    v->str = tg_arena_strndup(r->arena, value, len);
    v->len = len;
}

void tg_request_var_set_int(tg_request_t *r, const char *key, int64_t value)
{
    tg_var_t *v = var_slot(r, key);
    v->type = TG_VAR_INT;
    v->i = value;
}

void tg_request_var_set_ptr(tg_request_t *r, const char *key, void *value)
{
    tg_var_t *v = var_slot(r, key);
    v->type = TG_VAR_PTR;
    v->ptr = value;
}

const char *tg_request_var_str(const tg_request_t *r, const char *key, size_t *len)
{
    const tg_var_t *v = var_find(r, key);
    if (v == NULL || v->type != TG_VAR_STR) {
        *len = 0;
        return NULL;
    }
    *len = v->len;
    return v->str;
}

bool tg_request_var_int(const tg_request_t *r, const char *key, int64_t *value)
{
    const tg_var_t *v = var_find(r, key);
    if (v == NULL || v->type != TG_VAR_INT)
        return false;
    *value = v->i;
    return true;
}

void *tg_request_var_ptr(const tg_request_t *r, const char *key)
{
    const tg_var_t *v = var_find(r, key);
    return v && v->type == TG_VAR_PTR ? v->ptr : NULL;
}

/* ---- the authenticated client ---- */

int tg_request_set_claim(tg_request_t *r, const char *name, const char *value, size_t len)
{
    return tg_claims_set(&r->run.claims, r->arena, name, value, len);
}

const char *tg_request_claim(const tg_request_t *r, const char *name, size_t *len)
{
    return tg_claims_get(&r->run.claims, name, len);
}

int tg_request_set_subject(tg_request_t *r, const char *subject, size_t len)
{
    return tg_claims_set_subject(&r->run.claims, r->arena, subject, len);
}

const char *tg_request_subject(const tg_request_t *r, size_t *len)
{
    *len = r->run.claims.subject_len;
    return r->run.claims.subject;
}

int tg_request_set_consumer(tg_request_t *r, const char *name, size_t len)
{
    return tg_claims_set_consumer(&r->run.claims, r->arena, name, len);
}

const char *tg_request_consumer(const tg_request_t *r, size_t *len)
{
    *len = r->run.claims.consumer_len;
    return r->run.claims.consumer;
}

/* ---- stats ---- */

void tg_request_stats(const tg_request_t *r, tg_request_stats_t *out)
{
    out->start_us = r->time.start_us;
    out->duration_us = tg_now_us() - r->time.start_mono_us;
    out->upstream_us = r->time.up_start_us && r->time.up_head_us
                           ? (int64_t)(r->time.up_head_us - r->time.up_start_us)
                           : -1;
    out->bytes_in = r->client.head_len + r->client.body.moved;
    out->bytes_out = r->resp.bytes_out;
    out->completed = r->resp.completed;
}
