/*
 * What a client connection is, as plugins and the access log see it
 * (tg_request_protocol, tg_request_tls_* in include/tollgate/request.h):
 * its application protocol and, under TLS, the negotiated version, cipher,
 * server name (SNI) and ALPN protocol. Decided once per connection, when its
 * TLS handshake ends; a request only reads it. A plain connection carries no
 * record at all (its facts are constants).
 */
#ifndef TG_CONN_INFO_H
#define TG_CONN_INFO_H

#include <openssl/ssl.h>

/* A connection's application protocol (tg_conn_t.proto). */
typedef enum {
    TG_PROTO_HTTP1 = 0, /* HTTP/1.0 and 1.1: ALPN "http/1.1", or none */
    TG_PROTO_H2,        /* HTTP/2 (ALPN "h2") */
} tg_proto_t;

/* A TLS connection's facts. Every string is NUL-terminated and lives as long
 * as the record; version and cipher are OpenSSL's static names. */
typedef struct {
    const char *version; /* "TLSv1.3", "TLSv1.2" (SSL_get_version) */
    const char
        *cipher;     /* OpenSSL's name: "TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256" */
    const char *sni; /* the server name the client sent; NULL when it sent none */
    const char *alpn; /* the ALPN protocol selected; NULL when none was */
} tg_tls_info_t;

/* Reads the facts of ssl, whose handshake just completed, into one
 * allocation (free()). NULL when out of memory. */
tg_tls_info_t *tg_tls_info_record(SSL *ssl);

/* "http/1.1" or "h2" (the ALPN names). */
const char *tg_proto_name(tg_proto_t p);

#endif
