/* The `tracing:` section (trace_conf.h). */
#include "trace_conf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "tollgate/text.h"

typedef struct {
    const tg_conf_node_t *endpoint, *headers, *resource, *batch, *ratio, *ca_file;
    uint8_t protocol;
    char *service_name;
    uint64_t timeout_ms;
} keys_t;

typedef struct {
    uint32_t max_spans, queue;
    uint64_t interval_ms;
} batch_t;

static const char *const protocols[] = {"http/json", "http/protobuf", NULL};

static const tg_conf_field_t fields[] = {
    {"otlp_endpoint", TG_CONF_FIELD_NODE, TG_CONF_AT(keys_t, endpoint), .flags = TG_CONF_REQUIRED,
     .help = "an http:// URL or an upstream's name"},
    {"protocol", TG_CONF_FIELD_ENUM, TG_CONF_AT(keys_t, protocol), .names = protocols},
    {"service_name", TG_CONF_FIELD_STRING, TG_CONF_AT(keys_t, service_name),
     .flags = TG_CONF_NONEMPTY, .def_str = "tollgate", .max = 255},
    {"sample_ratio", TG_CONF_FIELD_NODE, TG_CONF_AT(keys_t, ratio)},
    {"headers", TG_CONF_FIELD_NODE, TG_CONF_AT(keys_t, headers)},
    {"resource", TG_CONF_FIELD_NODE, TG_CONF_AT(keys_t, resource)},
    {"batch", TG_CONF_FIELD_NODE, TG_CONF_AT(keys_t, batch)},
    {"timeout", TG_CONF_FIELD_DURATION, TG_CONF_AT(keys_t, timeout_ms), .min = 1, .max = 600000,
     .def = 10000},
    {"ca_file", TG_CONF_FIELD_NODE, TG_CONF_AT(keys_t, ca_file)},
    TG_CONF_END,
};

static const tg_conf_field_t batch_fields[] = {
    {"max_spans", TG_CONF_FIELD_UINT, TG_CONF_AT(batch_t, max_spans), .min = 1, .max = 65536,
     .def = 512},
    {"interval", TG_CONF_FIELD_DURATION, TG_CONF_AT(batch_t, interval_ms), .min = 10,
     .max = 3600000, .def = 2000},
    {"queue", TG_CONF_FIELD_UINT, TG_CONF_AT(batch_t, queue), .min = 1, .max = 1048576,
     .def = 8192},
    TG_CONF_END,
};

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* "http[s]://host[:port][/path]". */
static int parse_url(tg_tracing_conf_t *t, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    const char *s = n->value;
    bool https = strncmp(s, "https://", 8) == 0;
    s += https ? 8 : 7;
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    if (hlen == 0)
        return tg_conf_error(err, n, "otlp_endpoint has no host");
    char hostport[300];
    const char *close = memchr(s, ']', hlen);
    const char *colon =
        close ? (close + 1 < s + hlen && close[1] == ':' ? close + 1 : NULL) : memchr(s, ':', hlen);
    if (hlen + 4 > sizeof(hostport))
        return tg_conf_error(err, n, "otlp_endpoint host too long");
    snprintf(hostport, sizeof(hostport), "%.*s%s", (int)hlen, s,
             colon   ? ""
             : https ? ":443"
                     : ":80");
    char eb[256];
    if (tg_config_parse_address(hostport, &t->addr, &t->addrlen, eb, sizeof(eb)) < 0)
        return tg_conf_error(err, n, "otlp_endpoint: %s", eb);
    size_t plen = slash ? strlen(slash) : 0;
    if (plen > 0 && !tg_query_bytes_valid(slash, plen))
        return tg_conf_error(err, n, "otlp_endpoint: invalid path");
    t->host_header = dup_n(s, hlen);
    if (https) {
        const char *h = s;
        size_t l = colon ? (size_t)(colon - s) : hlen;
        if (l >= 2 && h[0] == '[') { /* [v6] */
            h++;
            l -= 2;
        }
        t->tls_name = dup_n(h, l);
    }
    t->path = plen ? dup_n(slash, plen) : dup_n("/v1/traces", 10);
    return 0;
}

static int parse_endpoint(const tg_config_t *cfg, tg_tracing_conf_t *t, const tg_conf_node_t *n,
                          tg_conf_err_t *err)
{
    const char *v;
    if (tg_conf_get_string(n, &v, err) < 0)
        return -1;
    t->endpoint = dup_n(v, n->len);
    if (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0)
        return parse_url(t, n, err);
    const tg_upstream_conf_t *u = tg_config_upstream(cfg, v);
    if (u == NULL)
        return tg_conf_error(err, n, "otlp_endpoint '%s' is neither an http:// URL nor an upstream",
                             v);
    if (u->tls != NULL)
        return tg_conf_error(err, n, "otlp_endpoint: upstream '%s' uses tls, not supported yet", v);
    if (u->targets[0].dynamic)
        return tg_conf_error(err, n,
                             "otlp_endpoint: upstream '%s' re-resolves its targets: name the "
                             "collector by URL",
                             v);
    /* The first target: the exporter keeps one connection, not a pool. */
    memcpy(&t->addr, &u->targets[0].addr, sizeof(t->addr));
    t->addrlen = u->targets[0].addrlen;
    t->host_header = dup_n(u->targets[0].host_header, strlen(u->targets[0].host_header));
    t->path = dup_n("/v1/traces", 10);
    return 0;
}

/* https: the collector's certificate is verified, against ca_file or the
 * system's CAs, and its name against the URL's host. */
static int make_tls(const tg_config_t *cfg, tg_tracing_conf_t *t, const tg_conf_node_t *ca,
                    tg_conf_err_t *err)
{
    if (t->tls_name == NULL)
        return ca == NULL ? 0 : tg_conf_error(err, ca, "ca_file is for an https:// otlp_endpoint");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return tg_conf_error(err, ca, "tracing: cannot create a TLS context");
    t->tls = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca == NULL) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
            return tg_conf_error(err, NULL, "tracing: cannot load the system's CA certificates");
        return 0;
    }
    const char *v;
    if (tg_conf_get_string(ca, &v, err) < 0)
        return -1;
    char path[4096];
    snprintf(path, sizeof(path), "%s%s%s", v[0] == '/' ? "" : cfg->dir, v[0] == '/' ? "" : "/", v);
    if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) {
        ERR_clear_error();
        return tg_conf_error(err, ca, "cannot load CA certificates from %s", path);
    }
    return 0;
}

static int parse_ratio(tg_tracing_conf_t *t, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    t->sample_ratio = 1.0;
    if (n == NULL)
        return 0;
    const char *v;
    if (tg_conf_get_string(n, &v, err) < 0)
        return -1;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !(d >= 0.0 && d <= 1.0))
        return tg_conf_error(err, n, "sample_ratio must be a number between 0 and 1");
    t->sample_ratio = d;
    return 0;
}

/* A map of strings into name/value pairs; header names must be tokens and
 * not ones the exporter writes itself. */
static int parse_pairs(const tg_conf_node_t *n, bool headers, char ***out, size_t *count,
                       tg_conf_err_t *err)
{
    if (n == NULL || n->type == TG_CONF_NULL)
        return 0;
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a map");
    *out = calloc(2 * n->count + 1, sizeof(char *));
    if (*out == NULL)
        abort();
    for (size_t i = 0; i < n->count; i++) {
        const tg_conf_node_t *k = n->keys[i], *v = n->items[i];
        const char *val;
        if (tg_conf_get_string(v, &val, err) < 0)
            return -1;
        if (headers && !tg_token_valid(k->value, k->len))
            return tg_conf_error(err, k, "invalid header name '%s'", k->value);
        if (headers &&
            (strcasecmp(k->value, "host") == 0 || strcasecmp(k->value, "content-length") == 0 ||
             strcasecmp(k->value, "content-type") == 0 ||
             strcasecmp(k->value, "transfer-encoding") == 0 ||
             strcasecmp(k->value, "connection") == 0))
            return tg_conf_error(err, k, "header '%s' is written by the exporter", k->value);
        if (headers && !tg_field_value_valid(val, v->len))
            return tg_conf_error(err, v, "invalid header value");
        if (!headers && k->len == 0)
            return tg_conf_error(err, k, "empty resource attribute name");
        (*out)[2 * i] = dup_n(k->value, k->len);
        (*out)[2 * i + 1] = dup_n(val, v->len);
        (*count)++;
    }
    return 0;
}

int tg_tracing_conf_parse(const tg_config_t *cfg, const tg_conf_node_t *n, tg_tracing_conf_t **out,
                          tg_conf_err_t *err)
{
    keys_t k = {0};
    batch_t b = {0};
    tg_tracing_conf_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        abort();
    atomic_init(&t->refcount, 1);
    int rc = tg_conf_read(n, fields, "tracing", &k, err);
    if (rc == 0 && k.protocol == 1) {
        rc = tg_conf_error(err, tg_conf_map_get(n, "protocol"),
                           "protocol http/protobuf is not supported yet: use http/json");
    }
    if (rc == 0)
        rc = tg_conf_read(k.batch, batch_fields, "batch", &b, err);
    if (rc == 0)
        rc = parse_endpoint(cfg, t, k.endpoint, err);
    if (rc == 0)
        rc = make_tls(cfg, t, k.ca_file, err);
    if (rc == 0)
        rc = parse_ratio(t, k.ratio, err);
    if (rc == 0)
        rc = parse_pairs(k.headers, true, &t->headers, &t->nheaders, err);
    if (rc == 0)
        rc = parse_pairs(k.resource, false, &t->resource, &t->nresource, err);
    t->service_name = k.service_name;
    k.service_name = NULL;
    t->max_spans = b.max_spans;
    t->interval_ms = b.interval_ms;
    t->queue = b.queue;
    t->timeout_ms = k.timeout_ms;
    if (rc == 0 && t->max_spans > t->queue)
        rc = tg_conf_error(err, k.batch, "batch: max_spans (%u) is larger than queue (%u)",
                           t->max_spans, t->queue);
    tg_conf_fields_free(fields, &k);
    if (rc < 0) {
        tg_tracing_conf_unref(t);
        return -1;
    }
    *out = t;
    return 0;
}

tg_tracing_conf_t *tg_tracing_conf_ref(tg_tracing_conf_t *t)
{
    unsigned old = atomic_fetch_add(&t->refcount, 1);
    assert(old > 0);
    (void)old;
    return t;
}

static void free_pairs(char **p, size_t n)
{
    for (size_t i = 0; p != NULL && i < 2 * n; i++)
        free(p[i]);
    free(p);
}

void tg_tracing_conf_unref(tg_tracing_conf_t *t)
{
    if (t == NULL)
        return;
    unsigned old = atomic_fetch_sub(&t->refcount, 1);
    assert(old > 0);
    if (old != 1)
        return;
    free(t->endpoint);
    free(t->tls_name);
    SSL_CTX_free(t->tls);
    free(t->host_header);
    free(t->path);
    free(t->service_name);
    free_pairs(t->headers, t->nheaders);
    free_pairs(t->resource, t->nresource);
    free(t);
}
