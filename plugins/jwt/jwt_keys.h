/*
 * jwt plugin: algorithms and verification keys.
 *
 * Every key is pinned to one algorithm when it is loaded (RFC 8725 3.1: never
 * let the token choose how it is verified), and its type is checked against
 * that algorithm then: an RSA key of at least 2048 bits for RS*, an EC key on
 * the algorithm's own curve for ES*, a secret at least as long as the hash for
 * HS* (RFC 7518 3.2). A loaded key set is immutable and shared by workers.
 */
#ifndef TG_JWT_KEYS_H
#define TG_JWT_KEYS_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    TG_JWT_ALG_INVALID = 0,
    TG_JWT_HS256,
    TG_JWT_HS384,
    TG_JWT_HS512,
    TG_JWT_RS256,
    TG_JWT_RS384,
    TG_JWT_RS512,
    TG_JWT_ES256,
    TG_JWT_ES384,
    TG_JWT_ES512,
} tg_jwt_alg_t;

typedef enum { TG_JWT_KIND_HMAC, TG_JWT_KIND_RSA, TG_JWT_KIND_EC } tg_jwt_kind_t;

typedef struct {
    const char *name;   /* "RS256", as written in the JOSE header */
    tg_jwt_kind_t kind; /* key family the algorithm needs */
    const char *md;     /* OpenSSL digest name */
    size_t size;        /* HMAC: digest bytes; EC: bytes of one coordinate (r, s, x, y) */
    int curve_nid;      /* EC: the only curve allowed (RFC 7518 3.4); 0 otherwise */
    const char *crv;    /* EC: JWK curve name (RFC 7518 6.2.1.1); NULL otherwise */
} tg_jwt_alg_info_t;

/* NULL for TG_JWT_ALG_INVALID. */
const tg_jwt_alg_info_t *tg_jwt_alg_info(tg_jwt_alg_t alg);
/* Exact, case-sensitive (RFC 7515 4.1.1); TG_JWT_ALG_INVALID for "none" and
 * anything unknown. */
tg_jwt_alg_t tg_jwt_alg_from_name(const char *name, size_t len);

typedef struct {
    char *kid;             /* NUL-terminated; NULL when the key has none */
    tg_jwt_alg_t alg;      /* the only algorithm this key verifies */
    EVP_PKEY *pkey;        /* RS* / ES*: public key */
    unsigned char *secret; /* HS*: the shared secret */
    size_t secret_len;
} tg_jwt_key_t;

typedef struct tg_jwt_keyset_s {
    tg_jwt_key_t *items; /* n keys, in configuration order */
    size_t n;
    size_t cap;
    /* Searched after this set when verifying (the keys fetched from jwks_uri
     * after the configured ones); not owned, never freed through this. */
    const struct tg_jwt_keyset_s *next;
} tg_jwt_keyset_t;

/* The loaders return 0, or -1 with a message in err (errlen bytes). kid may be
 * NULL; a kid already in the set is an error. */
int tg_jwt_keyset_add_secret(tg_jwt_keyset_t *ks, const char *kid, tg_jwt_alg_t alg,
                             const void *secret, size_t len, char *err, size_t errlen);
/* A PEM SubjectPublicKeyInfo ("BEGIN PUBLIC KEY") file. */
int tg_jwt_keyset_add_pem_file(tg_jwt_keyset_t *ks, const char *kid, tg_jwt_alg_t alg,
                               const char *path, char *err, size_t errlen);
/* Same from memory (tests, fuzzing). */
int tg_jwt_keyset_add_pem(tg_jwt_keyset_t *ks, const char *kid, tg_jwt_alg_t alg, const char *pem,
                          size_t len, char *err, size_t errlen);
/* A JSON Web Key Set (RFC 7517 5): RSA and EC signature keys. Keys with
 * "use" other than "sig" and of other key types are skipped; *added (may be
 * NULL) gets how many keys were taken. */
int tg_jwt_keyset_add_jwks(tg_jwt_keyset_t *ks, const json_t *jwks, size_t *added, char *err,
                           size_t errlen);
int tg_jwt_keyset_add_jwks_file(tg_jwt_keyset_t *ks, const char *path, size_t *added, char *err,
                                size_t errlen);
void tg_jwt_keyset_free(tg_jwt_keyset_t *ks);

#endif
