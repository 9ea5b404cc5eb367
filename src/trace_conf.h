/*
 * The `tracing:` section: where spans go (OTLP/HTTP JSON), which requests are
 * sampled, and the exporter's batching. Parsed once at load; shared, read
 * only, by the workers (sampling) and the exporter thread (otlp_export.h),
 * which holds its own reference across reloads.
 *
 *   tracing:
 *     otlp_endpoint: "http://127.0.0.1:4318/v1/traces"  # https://, or an upstream's name
 *     ca_file: /etc/ssl/collector-ca.pem   # https: CAs to verify it (default: the system's)
 *     protocol: http/json
 *     service_name: tollgate
 *     sample_ratio: 0.1
 *     headers: { Authorization: "Bearer ${OTLP_TOKEN}" }
 *     resource: { deployment.environment.name: prod }   # more resource attributes
 *     batch: { max_spans: 512, interval: 2s, queue: 8192 }
 *     timeout: 10s                                       # one export attempt
 */
#ifndef TG_TRACE_CONF_H
#define TG_TRACE_CONF_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tollgate/conf.h"

typedef struct tg_config_s tg_config_t;

typedef struct tg_tracing_conf_s {
    atomic_uint refcount;
    char *endpoint;               /* as written, for logs */
    struct sockaddr_storage addr; /* the collector, resolved at load */
    socklen_t addrlen;
    char *host_header; /* Host toward it */
    char *path;        /* request target, "/v1/traces" for an upstream name */
    char *service_name;
    double sample_ratio; /* [0, 1], for requests without a sampled parent */
    char **headers;      /* name, value, name, value...: sent with every export */
    size_t nheaders;     /* pairs */
    char **resource;     /* key, value...: resource attributes after service.name */
    size_t nresource;    /* pairs */
    uint32_t max_spans;  /* spans per export request */
    uint64_t interval_ms;
    uint32_t queue;         /* spans waiting at most; more are dropped and counted */
    uint64_t timeout_ms;    /* one export attempt: connect, send, answer */
    struct ssl_ctx_st *tls; /* https: verifies the collector (system CAs or ca_file); NULL: http */
    char *tls_name;         /* the URL's host: SNI (unless an IP literal) and the name checked */
} tg_tracing_conf_t;

/* Reads the section (n not NULL) into *out. cfg's upstreams are already
 * read (an endpoint may name one). */
int tg_tracing_conf_parse(const tg_config_t *cfg, const tg_conf_node_t *n, tg_tracing_conf_t **out,
                          tg_conf_err_t *err);

tg_tracing_conf_t *tg_tracing_conf_ref(tg_tracing_conf_t *t);
void tg_tracing_conf_unref(tg_tracing_conf_t *t);

#endif
