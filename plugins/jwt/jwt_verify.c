/*
 * jwt plugin: compact JWS parsing and signature verification.
 */
#include "jwt_verify.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Decoded size of the largest segment a TG_JWT_MAX_TOKEN token can hold. */
#define SEG_MAX (TG_JWT_MAX_TOKEN / 4 * 3 + 3)

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long tg_jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    /* One leftover character carries 6 bits: never a whole byte (RFC 4648 4). */
    if (len % 4 == 1)
        return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Non-zero pad bits: a second spelling of the same bytes (RFC 4648 3.5). */
    return acc == 0 ? (long)o : -1;
}

/* One DER INTEGER (X.690 8.3) of the unsigned big-endian p[0..n). */
static size_t der_integer(const unsigned char *p, size_t n, unsigned char *out)
{
    while (n > 1 && p[0] == 0) {
        p++;
        n--;
    }
    size_t pad = (p[0] & 0x80) ? 1 : 0; /* keep it positive */
    out[0] = 0x02;
    out[1] = (unsigned char)(n + pad);
    out[2] = 0;
    memcpy(out + 2 + pad, p, n);
    return 2 + pad + n;
}

long tg_jwt_ecdsa_raw_to_der(const unsigned char *rs, size_t len, unsigned char *der, size_t cap)
{
    if (len == 0 || len % 2 != 0 || len > 2 * 66)
        return -1;
    unsigned char body[2 * (3 + 66)];
    size_t half = len / 2;
    size_t blen = der_integer(rs, half, body);
    blen += der_integer(rs + half, half, body + blen);
    size_t hlen = blen < 128 ? 2 : 3; /* short or one-byte long form length */
    if (hlen + blen > cap)
        return -1;
    der[0] = 0x30;
    if (hlen == 2) {
        der[1] = (unsigned char)blen;
    } else {
        der[1] = 0x81;
        der[2] = (unsigned char)blen;
    }
    memcpy(der + hlen, body, blen);
    return (long)(hlen + blen);
}

static const tg_jwt_key_t *find_kid(const tg_jwt_keyset_t *ks, const char *kid, size_t kid_len)
{
    for (; ks != NULL; ks = ks->next)
        for (size_t i = 0; i < ks->n; i++) {
            const tg_jwt_key_t *k = &ks->items[i];
            if (k->kid != NULL && strlen(k->kid) == kid_len && memcmp(k->kid, kid, kid_len) == 0)
                return k;
        }
    return NULL;
}

tg_jwt_reason_t tg_jwt_pin(const tg_jwt_keyset_t *ks, tg_jwt_alg_t alg, const char *kid,
                           size_t kid_len, const tg_jwt_key_t **key)
{
    *key = NULL;
    if (tg_jwt_alg_info(alg) == NULL)
        return TG_JWT_UNSUPPORTED_ALG;
    if (kid != NULL) {
        const tg_jwt_key_t *k = find_kid(ks, kid, kid_len);
        if (k == NULL)
            return TG_JWT_UNKNOWN_KEY;
        /* The key decides the algorithm, not the token. */
        if (k->alg != alg)
            return TG_JWT_UNSUPPORTED_ALG;
        *key = k;
        return TG_JWT_OK;
    }
    for (; ks != NULL; ks = ks->next)
        for (size_t i = 0; i < ks->n; i++)
            if (ks->items[i].alg == alg)
                return TG_JWT_OK;
    return TG_JWT_UNSUPPORTED_ALG;
}

static const EVP_MD *digest(tg_jwt_alg_t alg)
{
    const char *md = tg_jwt_alg_info(alg)->md;
    if (strcmp(md, "SHA256") == 0)
        return EVP_sha256();
    if (strcmp(md, "SHA384") == 0)
        return EVP_sha384();
    return EVP_sha512();
}

static int verify_hmac(const tg_jwt_key_t *key, const unsigned char *in, size_t len,
                       const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(digest(key->alg), key->secret, (int)key->secret_len, in, len, mac, &mac_len) == NULL)
        return 0;
    /* Constant time: a timing oracle on the MAC would let it be guessed byte by byte. */
    return mac_len == sig_len && CRYPTO_memcmp(mac, sig, sig_len) == 0;
}

static int verify_pkey(const tg_jwt_key_t *key, const unsigned char *in, size_t len,
                       const unsigned char *sig, size_t sig_len)
{
    const tg_jwt_alg_info_t *ai = tg_jwt_alg_info(key->alg);
    unsigned char der[160];
    if (ai->kind == TG_JWT_KIND_EC) {
        if (sig_len != 2 * ai->size)
            return 0;
        long n = tg_jwt_ecdsa_raw_to_der(sig, sig_len, der, sizeof(der));
        if (n < 0)
            return 0;
        sig = der;
        sig_len = (size_t)n;
    } else if (sig_len != (size_t)EVP_PKEY_get_size(key->pkey)) {
        return 0; /* RFC 8017 8.2.2 step 1: length checking */
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL &&
             EVP_DigestVerifyInit(ctx, NULL, digest(key->alg), NULL, key->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, in, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

int tg_jwt_verify_sig(const tg_jwt_key_t *key, const unsigned char *input, size_t input_len,
                      const unsigned char *sig, size_t sig_len)
{
    if (tg_jwt_alg_info(key->alg)->kind == TG_JWT_KIND_HMAC)
        return verify_hmac(key, input, input_len, sig, sig_len);
    return verify_pkey(key, input, input_len, sig, sig_len);
}

/* A base64url segment holding a JSON object; NULL when it is anything else. */
static json_t *segment_object(const char *seg, size_t len, unsigned char *buf)
{
    long n = tg_jwt_b64url_decode(seg, len, buf, SEG_MAX);
    if (n <= 0)
        return NULL;
    /* Duplicate members are refused: RFC 7515 4 / RFC 7519 4 let a parser
     * pick either, and two parsers picking differently is an attack. */
    json_t *obj = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* "typ" is optional (RFC 7519 5.1; AWS Cognito, for one, sends none). When
 * present it must say JWT (RFC 7519 5.1) or at+jwt (an OAuth access token,
 * RFC 9068 2.1): any other type is another kind of JWT (secevent+jwt,
 * logout+jwt, dpop+jwt...) that must not pass for an access token (RFC 8725
 * 3.11). Media types compare case-insensitively and "application/" may be
 * left out (RFC 7515 4.1.9). */
static bool typ_ok(const json_t *typ)
{
    if (typ == NULL)
        return true;
    if (!json_is_string(typ))
        return false;
    const char *t = json_string_value(typ);
    if (strncasecmp(t, "application/", 12) == 0)
        t += 12;
    return strcasecmp(t, "JWT") == 0 || strcasecmp(t, "at+jwt") == 0;
}

/* Header checks; on TG_JWT_OK, *key as tg_jwt_pin gives it. */
static tg_jwt_reason_t check_header(const tg_jwt_keyset_t *ks, const json_t *hdr, tg_jwt_alg_t *alg,
                                    const tg_jwt_key_t **key)
{
    const json_t *a = json_object_get(hdr, "alg"), *kid = json_object_get(hdr, "kid");
    if (!json_is_string(a) || (kid != NULL && !json_is_string(kid)) ||
        !typ_ok(json_object_get(hdr, "typ")))
        return TG_JWT_MALFORMED;
    /* RFC 7515 4.1.11: we implement no extension, so any "crit" must fail. */
    if (json_object_get(hdr, "crit") != NULL)
        return TG_JWT_MALFORMED;
    *alg = tg_jwt_alg_from_name(json_string_value(a), json_string_length(a));
    return tg_jwt_pin(ks, *alg, kid ? json_string_value(kid) : NULL,
                      kid ? json_string_length(kid) : 0, key);
}

static bool verify_any(const tg_jwt_keyset_t *ks, tg_jwt_alg_t alg, const tg_jwt_key_t *key,
                       const unsigned char *in, size_t len, const unsigned char *sig,
                       size_t sig_len)
{
    if (key != NULL)
        return tg_jwt_verify_sig(key, in, len, sig, sig_len) == 1;
    for (; ks != NULL; ks = ks->next)
        for (size_t i = 0; i < ks->n; i++)
            if (ks->items[i].alg == alg && tg_jwt_verify_sig(&ks->items[i], in, len, sig, sig_len))
                return true;
    return false;
}

tg_jwt_reason_t tg_jwt_verify(const tg_jwt_keyset_t *ks, const char *token, size_t len,
                              json_t **claims)
{
    *claims = NULL;
    if (len == 0 || len > TG_JWT_MAX_TOKEN)
        return TG_JWT_MALFORMED;
    const char *end = token + len;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return TG_JWT_MALFORMED; /* RFC 7515 7.1: exactly three parts */
    unsigned char buf[SEG_MAX];
    json_t *hdr = segment_object(token, (size_t)(d1 - token), buf);
    if (hdr == NULL)
        return TG_JWT_MALFORMED;
    tg_jwt_alg_t alg = TG_JWT_ALG_INVALID;
    const tg_jwt_key_t *key = NULL;
    tg_jwt_reason_t why = check_header(ks, hdr, &alg, &key);
    json_decref(hdr);
    if (why != TG_JWT_OK)
        return why;
    json_t *payload = segment_object(d1 + 1, (size_t)(d2 - d1 - 1), buf);
    if (payload == NULL)
        return TG_JWT_MALFORMED;
    long sig_len = tg_jwt_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), buf, SEG_MAX);
    if (sig_len < 0) {
        json_decref(payload);
        return TG_JWT_MALFORMED;
    }
    /* The signing input is the first two segments as sent (RFC 7515 5.2 step 8). */
    if (!verify_any(ks, alg, key, (const unsigned char *)token, (size_t)(d2 - token), buf,
                    (size_t)sig_len)) {
        json_decref(payload);
        return TG_JWT_BAD_SIGNATURE;
    }
    *claims = payload;
    return TG_JWT_OK;
}
