/*
 * TLS with OpenSSL 3 (the I/O is stream.c's): termination on
 * listeners (certificates chosen by SNI, ALPN h2 and/or http/1.1, session tickets
 * with rotating keys, optional client certificates) and TLS toward upstreams
 * (verification on by default, SNI, optional client certificate).
 *
 * Everything is built at config load into SSL_CTXs that the workers share
 * read-only (SSL_new on a shared SSL_CTX is thread-safe); the only mutable
 * shared state, the session ticket keys, is behind a mutex.
 */
#ifndef TG_TLS_H
#define TG_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "tollgate/conf.h"

/* A listener's `tls:` (tg_listen_conf_t.tls). */
typedef struct tg_tls_server_s tg_tls_server_t;
/* An upstream's `tls:` (tg_upstream_conf_t.tls). */
typedef struct tg_tls_client_s tg_tls_client_t;

/* Parses a listener's `tls:` map: loads every certificate and key (paths
 * relative to dir) and checks that each key matches its certificate. listen
 * is the listener's address as written (it keeps sessions of different
 * listeners apart). *out stays NULL for an empty node. Errors are
 * "FILE:LINE:COL: message" at the offending node. */
int tg_tls_server_parse(const tg_conf_node_t *n, const char *dir, const char *listen,
                        tg_tls_server_t **out, tg_conf_err_t *err);

/* NULL is allowed. Connections still open keep their SSL_CTX alive. */
void tg_tls_server_free(tg_tls_server_t *s);

/* A new server-side SSL on the listener's default context (SNI may switch
 * it). NULL on failure. */
SSL *tg_tls_server_ssl(const tg_tls_server_t *s);

/* Whether ALPN chose h2 on this (handshaken) connection. */
bool tg_tls_alpn_h2(SSL *ssl);

/* Counts tollgate_tls_handshake_failures_total for a client connection that
 * failed before its handshake completed; a connection closed before sending a
 * byte (a port probe) does not count. Never logs. */
void tg_tls_count_handshake_failure(SSL *ssl, unsigned worker_id);

/* Parses an upstream's `tls:` map; targets are the upstream's (already
 * parsed): server_name defaults to each target's host. */
int tg_tls_client_parse(const tg_conf_node_t *n, const char *dir, const tg_target_t *targets,
                        size_t ntargets, tg_tls_client_t **out, tg_conf_err_t *err);

void tg_tls_client_free(tg_tls_client_t *c);

/* A new client-side SSL for target: SNI (unless the name is an IP literal)
 * and, with verify, the name checked against the certificate. NULL on
 * failure. The connect and the handshake are tg_stream_connect's. */
SSL *tg_tls_client_ssl(const tg_tls_client_t *c, size_t target);

#endif
