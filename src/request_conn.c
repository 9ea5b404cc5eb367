/* The TLS connection facts of include/tollgate/request.h: what conn_info.c
 * recorded at the handshake. A request without a connection (a unit test's)
 * reads as a plain one. An HTTP/2 stream's exchange reads its connection's. */
#include "conn.h"
#include "conn_info.h"
#include "request.h"
#include "tollgate/request.h"

static const tg_tls_info_t *tls_info(const tg_request_t *r)
{
    return r->conn != NULL ? r->conn->tls_info : NULL;
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
