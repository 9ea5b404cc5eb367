/*
 * The key space of the idempotency plugin: which client a key belongs to.
 *
 *   scope: [route, jwt.sub]   # route | ip | consumer | subject | jwt.<claim> | header:<Name>
 *
 * A record's name is SHA-256 over the plugin instance's salt, then for every
 * part its kind, a presence byte and its value, then the key, each
 * length-prefixed (8 bytes): no choice of values ("..", "", separators,
 * encoded bytes) can make two different tuples hash the same input, so the
 * same key from two clients never meets. Values are hashed as received (no
 * percent- or case-folding: two spellings are two clients, which can only
 * keep records apart, never merge them). A header part takes every line of
 * that header in order, so duplicate headers are part of the identity.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "idempotency.h"
#include "tollgate/text.h"

static bool is_claim(const char *s)
{
    return *s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789_-.:") == strlen(s);
}

static int parse_part(const tg_conf_node_t *n, tg_idem_scope_t *s, tg_conf_err_t *err)
{
    const char *v;
    if (tg_conf_get_string(n, &v, err) < 0)
        return -1;
    tg_idem_scope_part_t *p = &s->parts[s->nparts];
    if (strcmp(v, "route") == 0) {
        p->kind = TG_IDEM_SCOPE_ROUTE;
    } else if (strcmp(v, "ip") == 0) {
        p->kind = TG_IDEM_SCOPE_IP;
    } else if (strcmp(v, "consumer") == 0) {
        p->kind = TG_IDEM_SCOPE_CONSUMER;
        s->uses_consumer = true;
    } else if (strcmp(v, "subject") == 0) {
        p->kind = TG_IDEM_SCOPE_SUBJECT;
        s->uses_jwt = true;
    } else if (strncmp(v, "jwt.", 4) == 0 && is_claim(v + 4)) {
        p->kind = TG_IDEM_SCOPE_JWT;
        p->name = strdup(v + 4);
        s->uses_jwt = true;
    } else if (strncmp(v, "header:", 7) == 0 && tg_token_valid(v + 7, strlen(v + 7))) {
        p->kind = TG_IDEM_SCOPE_HEADER;
        p->name = strdup(v + 7);
    } else {
        return tg_conf_error(err, n,
                             "invalid scope part '%s': expected route, ip, consumer, subject, "
                             "jwt.<claim> or header:<Name>",
                             v);
    }
    if ((p->kind == TG_IDEM_SCOPE_JWT || p->kind == TG_IDEM_SCOPE_HEADER) && p->name == NULL)
        return tg_conf_error(err, n, "out of memory");
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].kind == p->kind &&
            (p->name == NULL || strcasecmp(s->parts[i].name, p->name) == 0)) {
            free(p->name);
            p->name = NULL;
            return tg_conf_error(err, n, "scope part '%s' is listed twice", v);
        }
    s->nparts++;
    return 0;
}

int tg_idem_scope_parse(const tg_conf_node_t *n, tg_idem_scope_t *s, tg_conf_err_t *err)
{
    if (n->type == TG_CONF_SCALAR)
        return parse_part(n, s, err);
    if (n->type != TG_CONF_SEQ || n->count == 0)
        return tg_conf_error(err, n, "expected a scope part or a non-empty list of them");
    if (n->count > TG_IDEM_SCOPE_MAX)
        return tg_conf_error(err, n, "at most %d scope parts", TG_IDEM_SCOPE_MAX);
    for (size_t i = 0; i < n->count; i++)
        if (parse_part(n->items[i], s, err) < 0)
            return -1;
    return 0;
}

void tg_idem_scope_free(tg_idem_scope_t *s)
{
    for (size_t i = 0; i < s->nparts; i++)
        free(s->parts[i].name);
    s->nparts = 0;
}

void tg_idem_digest_put(EVP_MD_CTX *md, const void *p, size_t len)
{
    uint64_t n = len;
    EVP_DigestUpdate(md, &n, sizeof(n));
    if (len > 0)
        EVP_DigestUpdate(md, p, len);
}

/* Every line of header name, in order; false when there is none. */
static bool put_header(EVP_MD_CTX *md, tg_request_t *r, const char *name)
{
    size_t nl = strlen(name), count = 0;
    const char *hn, *hv;
    size_t hnl, hvl;
    for (size_t i = 0; tg_request_header_at(r, i, &hn, &hnl, &hv, &hvl); i++)
        if (hnl == nl && strncasecmp(hn, name, nl) == 0) {
            tg_idem_digest_put(md, hv, hvl);
            count++;
        }
    EVP_DigestUpdate(md, &count, sizeof(count));
    return count > 0;
}

static const char *part_value(const tg_idem_scope_part_t *p, tg_request_t *r, size_t *len)
{
    switch (p->kind) {
    case TG_IDEM_SCOPE_ROUTE: {
        const char *v = tg_request_route(r);
        *len = v ? strlen(v) : 0;
        return v;
    }
    case TG_IDEM_SCOPE_IP: {
        const char *v = tg_request_client_ip(r);
        *len = v ? strlen(v) : 0;
        return v;
    }
    case TG_IDEM_SCOPE_CONSUMER:
        return tg_request_consumer(r, len);
    case TG_IDEM_SCOPE_SUBJECT:
        return tg_request_subject(r, len);
    case TG_IDEM_SCOPE_JWT:
        return tg_request_claim(r, p->name, len);
    case TG_IDEM_SCOPE_HEADER:
    default:
        *len = 0;
        return NULL;
    }
}

/* "route", "jwt.sub", "header:X-Client": as written in the config. */
static void part_label(const tg_idem_scope_part_t *p, char *out, size_t size)
{
    static const char *const labels[] = {"route", "ip", "consumer", "subject", "jwt.", "header:"};
    snprintf(out, size, "%s%s", labels[p->kind], p->name != NULL ? p->name : "");
}

int tg_idem_scope_hash(const tg_idem_scope_t *s, tg_request_t *r, const char *salt, const char *key,
                       size_t key_len, uint8_t out[TG_IDEM_HASH], uint8_t scope_out[TG_IDEM_HASH],
                       char *missing, size_t missing_size)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = 0;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        snprintf(missing, missing_size, "out of memory");
        return -2;
    }
    tg_idem_digest_put(md, salt, strlen(salt));
    for (size_t i = 0; i < s->nparts && rc == 0; i++) {
        const tg_idem_scope_part_t *p = &s->parts[i];
        uint8_t kind = (uint8_t)p->kind;
        EVP_DigestUpdate(md, &kind, 1);
        if (p->kind == TG_IDEM_SCOPE_HEADER) {
            if (!put_header(md, r, p->name))
                rc = -1;
        } else {
            size_t len = 0;
            const char *v = part_value(p, r, &len);
            if (v == NULL) /* an anonymous client would share one key space */
                rc = -1;
            else
                tg_idem_digest_put(md, v, len);
        }
        if (rc < 0)
            part_label(p, missing, missing_size);
    }
    unsigned int n = 0;
    EVP_MD_CTX *scope = EVP_MD_CTX_new();
    if (scope == NULL || EVP_MD_CTX_copy_ex(scope, md) != 1) {
        EVP_MD_CTX_free(scope);
        EVP_MD_CTX_free(md);
        snprintf(missing, missing_size, "out of memory");
        return -2;
    }
    EVP_DigestFinal_ex(scope, scope_out, &n);
    EVP_MD_CTX_free(scope);
    tg_idem_digest_put(md, key, key_len);
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
    return rc;
}

/* RFC 8941 section 3.3.3 (Parsing a String): DQUOTE, then %x20-21 / %x23-5B /
 * %x5D-7E or a backslash before '"' or '\', then DQUOTE, nothing after. */
int tg_idem_key_parse(const char *v, size_t len, char *out)
{
    if (len < 2 || v[0] != '"' || v[len - 1] != '"')
        return -1;
    size_t n = 0;
    for (size_t i = 1; i < len - 1; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\\') {
            if (i + 1 >= len - 1 || (v[i + 1] != '"' && v[i + 1] != '\\'))
                return -1;
            c = (unsigned char)v[++i];
        } else if (c == '"' || c < 0x20 || c > 0x7e) {
            return -1;
        }
        if (n >= TG_IDEM_KEY_MAX)
            return -1;
        out[n++] = (char)c;
    }
    return n == 0 ? -1 : (int)n;
}
