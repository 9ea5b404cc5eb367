/*
 * What a TLS client connection negotiated, as plugins and the access log
 * see it (tg_request_tls_* in include/tollgate/request.h): version, cipher,
 * server name (SNI) and ALPN protocol. Read once per connection, when its
 * handshake ends; a request only reads the record. A plain connection has
 * none. (The application protocol is the connection's proto.h interface:
 * tg_request_protocol returns its name.)
 */
#ifndef TG_CONN_INFO_H
#define TG_CONN_INFO_H

#include <openssl/ssl.h>

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

#endif
