/*
 * jwt plugin: algorithm table, PEM / JWKS / secret loading into pinned keys.
 */
#include "jwt_keys.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_verify.h"

/* RS keys below 2048 bits are refused (RFC 7518 3.3). */
#define MIN_RSA_BITS 2048
/* Largest key file read; a public key PEM or a JWKS is a few KiB. */
#define MAX_KEY_FILE (1 << 20)

static const tg_jwt_alg_info_t algs[] = {
    [TG_JWT_HS256] = {"HS256", TG_JWT_KIND_HMAC, "SHA256", 32, 0, NULL},
    [TG_JWT_HS384] = {"HS384", TG_JWT_KIND_HMAC, "SHA384", 48, 0, NULL},
    [TG_JWT_HS512] = {"HS512", TG_JWT_KIND_HMAC, "SHA512", 64, 0, NULL},
    [TG_JWT_RS256] = {"RS256", TG_JWT_KIND_RSA, "SHA256", 0, 0, NULL},
    [TG_JWT_RS384] = {"RS384", TG_JWT_KIND_RSA, "SHA384", 0, 0, NULL},
    [TG_JWT_RS512] = {"RS512", TG_JWT_KIND_RSA, "SHA512", 0, 0, NULL},
    [TG_JWT_ES256] = {"ES256", TG_JWT_KIND_EC, "SHA256", 32, NID_X9_62_prime256v1, "P-256"},
    [TG_JWT_ES384] = {"ES384", TG_JWT_KIND_EC, "SHA384", 48, NID_secp384r1, "P-384"},
    [TG_JWT_ES512] = {"ES512", TG_JWT_KIND_EC, "SHA512", 66, NID_secp521r1, "P-521"},
};
#define NALGS (sizeof(algs) / sizeof(algs[0]))

const tg_jwt_alg_info_t *tg_jwt_alg_info(tg_jwt_alg_t alg)
{
    if (alg <= TG_JWT_ALG_INVALID || (size_t)alg >= NALGS)
        return NULL;
    return &algs[alg];
}

tg_jwt_alg_t tg_jwt_alg_from_name(const char *name, size_t len)
{
    for (size_t i = 1; i < NALGS; i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0)
            return (tg_jwt_alg_t)i;
    return TG_JWT_ALG_INVALID;
}

static int key_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int key_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static tg_jwt_key_t *new_key(tg_jwt_keyset_t *ks, const char *kid, tg_jwt_alg_t alg, char *err,
                             size_t errlen)
{
    for (size_t i = 0; kid != NULL && i < ks->n; i++)
        if (ks->items[i].kid != NULL && strcmp(ks->items[i].kid, kid) == 0) {
            key_error(err, errlen, "duplicate kid \"%s\"", kid);
            return NULL;
        }
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 4;
        tg_jwt_key_t *items = realloc(ks->items, cap * sizeof(*items));
        if (items == NULL) {
            key_error(err, errlen, "out of memory");
            return NULL;
        }
        ks->items = items;
        ks->cap = cap;
    }
    tg_jwt_key_t *k = &ks->items[ks->n];
    memset(k, 0, sizeof(*k));
    k->alg = alg;
    if (kid != NULL && (k->kid = strdup(kid)) == NULL) {
        key_error(err, errlen, "out of memory");
        return NULL;
    }
    ks->n++;
    return k;
}

int tg_jwt_keyset_add_secret(tg_jwt_keyset_t *ks, const char *kid, tg_jwt_alg_t alg,
                             const void *secret, size_t len, char *err, size_t errlen)
{
    const tg_jwt_alg_info_t *ai = tg_jwt_alg_info(alg);
    if (ai == NULL || ai->kind != TG_JWT_KIND_HMAC)
        return key_error(err, errlen, "a secret can only be used with HS256, HS384 or HS512");
    /* RFC 7518 3.2: "A key of the same size as the hash output ... or larger
     * MUST be used with this algorithm." */
    if (len < ai->size)
        return key_error(err, errlen,
                         "%s secret must be at least %zu bytes (RFC 7518 3.2), got %zu", ai->name,
                         ai->size, len);
    unsigned char *copy = malloc(len);
    if (copy == NULL)
        return key_error(err, errlen, "out of memory");
    tg_jwt_key_t *k = new_key(ks, kid, alg, err, errlen);
    if (k == NULL) {
        free(copy);
        return -1;
    }
    memcpy(copy, secret, len);
    k->secret = copy;
    k->secret_len = len;
    return 0;
}

/* Checks that pkey is of the family and size alg needs. */
static int check_pkey(EVP_PKEY *pkey, tg_jwt_alg_t alg, char *err, size_t errlen)
{
    const tg_jwt_alg_info_t *ai = tg_jwt_alg_info(alg);
    if (ai == NULL || ai->kind == TG_JWT_KIND_HMAC)
        return key_error(err, errlen, "a public key cannot be used with %s: use a secret",
                         ai ? ai->name : "this algorithm");
    if (ai->kind == TG_JWT_KIND_RSA) {
        /* EVP_PKEY_is_a(.., "RSA") is false for RSA-PSS keys: RS* is PKCS#1 v1.5. */
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return key_error(err, errlen, "%s needs an RSA key", ai->name);
        if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS)
            return key_error(err, errlen, "RSA key of %d bits is too small (at least %d)",
                             EVP_PKEY_get_bits(pkey), MIN_RSA_BITS);
        return 0;
    }
    char group[64];
    if (!EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        NULL))
        return key_error(err, errlen, "%s needs an EC key on %s", ai->name, ai->crv);
    if (OBJ_sn2nid(group) != ai->curve_nid)
        return key_error(err, errlen, "%s needs an EC key on %s, this key is on %s", ai->name,
                         ai->crv, group);
    return 0;
}

static int add_pkey(tg_jwt_keyset_t *ks, const char *kid, tg_jwt_alg_t alg, EVP_PKEY *pkey,
                    char *err, size_t errlen)
{
    if (check_pkey(pkey, alg, err, errlen) < 0) {
        EVP_PKEY_free(pkey);
        return -1;
    }
    tg_jwt_key_t *k = new_key(ks, kid, alg, err, errlen);
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return -1;
    }
    k->pkey = pkey;
    return 0;
}

int tg_jwt_keyset_add_pem(tg_jwt_keyset_t *ks, const char *kid, tg_jwt_alg_t alg, const char *pem,
                          size_t len, char *err, size_t errlen)
{
    if (len > INT_MAX)
        return key_error(err, errlen, "PEM too large");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return key_error(err, errlen, "out of memory");
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return key_error(err, errlen,
                         "not a PEM public key (expected \"-----BEGIN PUBLIC KEY-----\")");
    return add_pkey(ks, kid, alg, pkey, err, errlen);
}

/* Reads a whole small file; NUL-terminated, *len without the NUL. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        key_error(err, errlen, "cannot open %s: %m", path);
        return NULL;
    }
    char *buf = malloc(MAX_KEY_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_KEY_FILE + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || n > MAX_KEY_FILE;
    fclose(f);
    if (bad) {
        free(buf);
        key_error(err, errlen, "cannot read %s (error, or larger than %d bytes)", path,
                  MAX_KEY_FILE);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int tg_jwt_keyset_add_pem_file(tg_jwt_keyset_t *ks, const char *kid, tg_jwt_alg_t alg,
                               const char *path, char *err, size_t errlen)
{
    size_t len;
    char *pem = read_file(path, &len, err, errlen);
    if (pem == NULL)
        return -1;
    char inner[256];
    int rc = tg_jwt_keyset_add_pem(ks, kid, alg, pem, len, inner, sizeof(inner));
    free(pem);
    if (rc < 0)
        return key_error(err, errlen, "%s: %s", path, inner);
    return 0;
}

/* ---- JWKS (RFC 7517, RFC 7518 section 6) ---- */

/* A base64url member of a JWK, decoded into out (cap bytes); returns the
 * length or -1. */
static int jwk_b64(const json_t *jwk, const char *name, unsigned char *out, size_t cap, char *err,
                   size_t errlen)
{
    const json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v))
        return key_error(err, errlen, "member \"%s\" missing or not a string", name);
    long n = tg_jwt_b64url_decode(json_string_value(v), json_string_length(v), out, cap);
    if (n <= 0)
        return key_error(err, errlen, "member \"%s\" is not valid base64url of at most %zu bytes",
                         name, cap);
    return (int)n;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *jwk_rsa(const json_t *jwk, char *err, size_t errlen)
{
    unsigned char n[1024], e[16];
    int nlen = jwk_b64(jwk, "n", n, sizeof(n), err, errlen);
    int elen = nlen < 0 ? -1 : jwk_b64(jwk, "e", e, sizeof(e), err, errlen);
    if (elen < 0)
        return NULL;
    BIGNUM *bn = BN_bin2bn(n, nlen, NULL), *be = BN_bin2bn(e, elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = pkey_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    if (pkey == NULL)
        key_error(err, errlen, "invalid RSA key");
    return pkey;
}

static EVP_PKEY *jwk_ec(const json_t *jwk, tg_jwt_alg_t alg, char *err, size_t errlen)
{
    const tg_jwt_alg_info_t *ai = tg_jwt_alg_info(alg);
    /* Uncompressed point 04 || x || y (SEC 1 2.3.3); RFC 7518 6.2.1.2 wants
     * x and y at the full coordinate length. */
    unsigned char pt[1 + 2 * 66];
    pt[0] = 0x04;
    int xl = jwk_b64(jwk, "x", pt + 1, ai->size, err, errlen);
    int yl = xl < 0 ? -1 : jwk_b64(jwk, "y", pt + 1 + ai->size, ai->size, err, errlen);
    if (yl < 0)
        return NULL;
    if ((size_t)xl != ai->size || (size_t)yl != ai->size) {
        key_error(err, errlen, "x and y must be %zu bytes each for %s", ai->size, ai->crv);
        return NULL;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(ai->curve_nid),
                                        0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * ai->size))
        pkey = pkey_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    /* fromdata decodes the point; the public check also proves it is on the curve. */
    EVP_PKEY_CTX *chk = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    if (pkey != NULL && (chk == NULL || EVP_PKEY_public_check(chk) <= 0)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(chk);
    if (pkey == NULL)
        key_error(err, errlen, "invalid EC key (point not on %s)", ai->crv);
    return pkey;
}

/* The algorithm of one JWK: "alg" when given (and then it must fit the key),
 * else derived from "crv" for EC; RSA keys must name theirs. */
static tg_jwt_alg_t jwk_alg(const json_t *jwk, bool rsa, char *err, size_t errlen)
{
    const json_t *a = json_object_get(jwk, "alg");
    tg_jwt_alg_t alg = TG_JWT_ALG_INVALID;
    if (a != NULL) {
        if (!json_is_string(a) ||
            (alg = tg_jwt_alg_from_name(json_string_value(a), json_string_length(a))) ==
                TG_JWT_ALG_INVALID) {
            key_error(err, errlen, "unsupported \"alg\"");
            return TG_JWT_ALG_INVALID;
        }
        if (tg_jwt_alg_info(alg)->kind != (rsa ? TG_JWT_KIND_RSA : TG_JWT_KIND_EC)) {
            key_error(err, errlen, "\"alg\" %s does not fit a key of type %s",
                      tg_jwt_alg_info(alg)->name, rsa ? "RSA" : "EC");
            return TG_JWT_ALG_INVALID;
        }
    } else if (rsa) {
        key_error(err, errlen, "RSA key without \"alg\"");
        return TG_JWT_ALG_INVALID;
    }
    if (rsa)
        return alg;
    const json_t *crv = json_object_get(jwk, "crv");
    for (tg_jwt_alg_t e = TG_JWT_ES256; e <= TG_JWT_ES512; e++)
        if (json_is_string(crv) && strcmp(json_string_value(crv), tg_jwt_alg_info(e)->crv) == 0) {
            if (alg != TG_JWT_ALG_INVALID && alg != e) {
                key_error(err, errlen, "\"alg\" %s does not fit curve %s",
                          tg_jwt_alg_info(alg)->name, tg_jwt_alg_info(e)->crv);
                return TG_JWT_ALG_INVALID;
            }
            return e;
        }
    key_error(err, errlen, "missing or unsupported \"crv\" (P-256, P-384 or P-521)");
    return TG_JWT_ALG_INVALID;
}

/* Adds one JWK; 1 when added, 0 when skipped, -1 on error. */
static int add_jwk(tg_jwt_keyset_t *ks, const json_t *jwk, char *err, size_t errlen)
{
    const json_t *kty = json_object_get(jwk, "kty"), *use = json_object_get(jwk, "use");
    const json_t *kid = json_object_get(jwk, "kid");
    if (!json_is_object(jwk) || !json_is_string(kty))
        return key_error(err, errlen, "not a JWK object with \"kty\"");
    /* RFC 7517 4.2: keys for encryption are not for us. */
    if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return 0;
    bool rsa = strcmp(json_string_value(kty), "RSA") == 0;
    if (!rsa && strcmp(json_string_value(kty), "EC") != 0)
        return 0; /* oct, OKP...: not served by this plugin */
    if (kid != NULL && !json_is_string(kid))
        return key_error(err, errlen, "\"kid\" is not a string");
    tg_jwt_alg_t alg = jwk_alg(jwk, rsa, err, errlen);
    if (alg == TG_JWT_ALG_INVALID)
        return -1;
    EVP_PKEY *pkey = rsa ? jwk_rsa(jwk, err, errlen) : jwk_ec(jwk, alg, err, errlen);
    if (pkey == NULL)
        return -1;
    return add_pkey(ks, kid ? json_string_value(kid) : NULL, alg, pkey, err, errlen) < 0 ? -1 : 1;
}

int tg_jwt_keyset_add_jwks(tg_jwt_keyset_t *ks, const json_t *jwks, size_t *added, char *err,
                           size_t errlen)
{
    const json_t *keys = json_object_get(jwks, "keys");
    if (!json_is_array(keys))
        return key_error(err, errlen, "not a JWK Set: no \"keys\" array");
    size_t count = 0;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        char inner[256];
        int rc = add_jwk(ks, json_array_get(keys, i), inner, sizeof(inner));
        if (rc < 0)
            return key_error(err, errlen, "keys[%zu]: %s", i, inner);
        count += (size_t)rc;
    }
    if (added != NULL)
        *added = count;
    return 0;
}

int tg_jwt_keyset_add_jwks_file(tg_jwt_keyset_t *ks, const char *path, size_t *added, char *err,
                                size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (text == NULL)
        return -1;
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (doc == NULL)
        return key_error(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    char inner[300];
    int rc = tg_jwt_keyset_add_jwks(ks, doc, added, inner, sizeof(inner));
    json_decref(doc);
    if (rc < 0)
        return key_error(err, errlen, "%s: %s", path, inner);
    return 0;
}

void tg_jwt_keyset_free(tg_jwt_keyset_t *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->items[i].kid);
        EVP_PKEY_free(ks->items[i].pkey);
        if (ks->items[i].secret != NULL)
            OPENSSL_cleanse(ks->items[i].secret, ks->items[i].secret_len);
        free(ks->items[i].secret);
    }
    free(ks->items);
    memset(ks, 0, sizeof(*ks));
}
