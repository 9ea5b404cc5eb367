/*
 * tollgate public API: requests of the gateway's own to an upstream
 * (subrequests for aggregation, key set downloads), sent through the
 * worker's pool of that upstream, so keep-alive reuse, target choice, passive
 * health and timeouts are the same as for proxied requests.
 *
 * Call on a worker thread (from a hook, or a timer on the base that
 * worker_init() received). The callback runs exactly once on that thread,
 * unless the fetch was cancelled first.
 */
#ifndef TOLLGATE_FETCH_H
#define TOLLGATE_FETCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct tg_fetch_s tg_fetch_t;

typedef struct {
    const char *method;         /* default "GET" */
    const char *path;           /* origin-form target: path and query, already percent-encoded */
    const char *const *headers; /* name, value, name, value, ..., NULL */
    const char *body;           /* sent with Content-Length when body_len > 0 */
    size_t body_len;
    uint64_t timeout_ms; /* whole exchange; 0 = the upstream's connect_timeout + timeout */
    size_t max_body;     /* larger responses fail with "response too large"; 0 = 1 MiB */
} tg_fetch_opts_t;

typedef struct {
    int status;        /* 0 when error is set */
    const char *error; /* NULL, or "unknown upstream", "connect failed", "timeout",
                                 "connection closed", "invalid response", "response too large" */
    const char *body;  /* valid during the callback only */
    size_t body_len;
    const char *content_type; /* NULL when absent; valid during the callback only */
    size_t content_type_len;
} tg_fetch_result_t;

typedef void (*tg_fetch_cb_t)(void *data, const tg_fetch_result_t *res);

/* Returns the fetch (for tg_fetch_cancel), or NULL when cb was already called
 * with an error (unknown upstream, no worker thread, out of sockets). */
tg_fetch_t *tg_fetch_start(const char *upstream, const tg_fetch_opts_t *opts, tg_fetch_cb_t cb,
                           void *data);

/* cb will not be called; the connection is closed. Safe until cb ran. */
void tg_fetch_cancel(tg_fetch_t *f);

#endif
