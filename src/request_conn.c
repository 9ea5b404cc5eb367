/* The connection facts of include/tollgate/request.h: the protocol is the
 * connection's proto.h interface, the TLS facts what conn_info.c recorded at
 * the handshake. A request without a connection (a unit test's) reads as a
 * plain HTTP/1.1 one. */
#include "conn.h"
#include "conn_info.h"
#include "proto.h"
#include "request.h"
#include "tollgate/request.h"

static const tg_tls_info_t *tls_info(const tg_request_t *r)
{
    return r->conn != NULL ? r->conn->tls_info : NULL;
}

const char *tg_request_protocol(const tg_request_t *r)
{
    return r->proto != NULL ? r->proto->name : "http/1.1";
}

const char *tg_request_tls_version(const tg_request_t *r)
{
    const tg_tls_info_t *t = tls_info(r);
    return t != NULL ? t->version : NULL;
}

const char *tg_request_tls_cipher(const tg_request_t *r)
{
    const tg_tls_info_t *t = tls_info(r);
    return t != NULL ? t->cipher : NULL;
}

const char *tg_request_tls_sni(const tg_request_t *r)
{
    const tg_tls_info_t *t = tls_info(r);
    return t != NULL ? t->sni : NULL;
}

const char *tg_request_tls_alpn(const tg_request_t *r)
{
    const tg_tls_info_t *t = tls_info(r);
    return t != NULL ? t->alpn : NULL;
}
