#include "conn_info.h"

#include <stdlib.h>
#include <string.h>

tg_tls_info_t *tg_tls_info_record(SSL *ssl)
{
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    size_t sni_len = sni != NULL ? strlen(sni) : 0;
    /* The strings follow the struct: one allocation, freed with it. */
    tg_tls_info_t *t = malloc(sizeof(*t) + (sni ? sni_len + 1 : 0) + (alpn_len ? alpn_len + 1 : 0));
    if (t == NULL)
        return NULL;
    char *p = (char *)(t + 1);
    t->version = SSL_get_version(ssl);
    t->cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
    t->sni = NULL;
    t->alpn = NULL;
    if (sni != NULL) {
        memcpy(p, sni, sni_len + 1);
        t->sni = p;
        p += sni_len + 1;
    }
    /* Selected by us from our own list (tls.c), so printable ASCII without
     * NUL: safe to hand out as a C string. */
    if (alpn_len > 0) {
        memcpy(p, alpn, alpn_len);
        p[alpn_len] = '\0';
        t->alpn = p;
    }
    return t;
}
