/*
 * One OTLP/HTTP export request, blocking, on the exporter's thread: over a
 * kept-alive connection to the collector (plain, or TLS with the
 * certificate and name verified, trace_conf.h), bounded by the `timeout`.
 */
#ifndef TG_OTLP_HTTP_H
#define TG_OTLP_HTTP_H

#include <stddef.h>

#include "trace_conf.h"

typedef struct ssl_st SSL;

/* The kept connection; {-1, NULL} when none. */
typedef struct {
    int fd;
    SSL *ssl;
} tg_otlp_link_t;

#define TG_OTLP_LINK_NONE     \
    {                         \
        .fd = -1, .ssl = NULL \
    }

/* Sends req[0..len) (a whole HTTP request) and reads the answer; returns
 * its status, or -1 (no connection, TLS refused, timeout, broken answer;
 * errno says why). A kept connection the collector had closed is replaced
 * once, silently. The connection is kept when the answer allows it. */
int tg_otlp_post(tg_otlp_link_t *l, const tg_tracing_conf_t *c, const char *req, size_t len);

void tg_otlp_link_close(tg_otlp_link_t *l);

#endif
