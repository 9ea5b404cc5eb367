/*
 * libFuzzer target: the jwt plugin's token parser and verifier.
 *
 * The input is a token tried against a key set holding one key of every
 * algorithm family (HS256 with and without kid, RS256, ES256), so the
 * base64url decoder, the header checks, key pinning, the r||s -> DER
 * conversion and every OpenSSL verify path see attacker bytes. Keys are
 * built once from constants: no files are read. Claims of accepted tokens go
 * through the claim checks and the cache too.
 *
 * Build: tests/fuzz/build.sh jwt (sources: plugins/jwt/jwt_keys.c
 * plugins/jwt/jwt_verify.c plugins/jwt/jwt_claims.c plugins/jwt/jwt_cache.c,
 * link -lcrypto -ljansson).
 */
#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt/jwt_cache.h"
#include "plugins/jwt/jwt_claims.h"
#include "plugins/jwt/jwt_keys.h"
#include "plugins/jwt/jwt_verify.h"

/* RSA 2048 and EC P-256 public keys made for this target only (openssl genpkey;
 * the private halves were used for the seed corpus, then thrown away). */
static const char rsa_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAy2Jy8DSCuLGrbY/I18S/\n"
                              "dPfiSb8Plvp2ab72xuzeRpX8ymDrqXX7bz2d2l3jYU2XS3xo5oOpPtk1faDnED4n\n"
                              "El6zQ39uNfVy+Mlh7cLKIgikcKKAlkPQr33tstrJzfFe9tR9ENffo+vaq54WJjWq\n"
                              "Kj1/oMKGwEkXong7713LCV6bWqtJaSnPUvaoDk9xOskotHTAWB2K+9Ssx0jGTRXH\n"
                              "VqLhNqXxddPIkHljUJkeUZjjDk/FZ666wW0ckky6LTTMsUyWkiZ+EY2pNZdCcz43\n"
                              "ocIrxsS50PSPg5ywZOXBH1GISbCVQXeyRn9DjV73Oc52mp6Wkc5vqcCnZ1+wpqP0\n"
                              "owIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";
static const char ec256_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfyHjjzNVpb2htJ2pKWQqHr5XueUs\n"
                                "xj7jlk3xP3HaCH7WPMFsLaHg0imv9QCMKc1XQVlN4/N7VTlJpTVrb9zVSA==\n"
                                "-----END PUBLIC KEY-----\n";

static tg_jwt_keyset_t keys;
static tg_jwt_cache_t *cache;
static char *aud[] = {"fuzz"};
static char *scope[] = {"read"};
static const tg_jwt_policy_t policy = {
    .audiences = aud, .n_audiences = 1, .scopes = scope, .n_scopes = 1, .leeway = 30};

static void must(int rc, const char *err)
{
    if (rc < 0) {
        fprintf(stderr, "fuzz_jwt setup: %s\n", err);
        exit(1);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[300];
    const char *secret = "fuzz-secret-0123456789abcdef0123456789";
    must(tg_jwt_keyset_add_secret(&keys, "hs", TG_JWT_HS256, secret, strlen(secret), err,
                                  sizeof(err)),
         err);
    must(tg_jwt_keyset_add_secret(&keys, NULL, TG_JWT_HS256, secret, strlen(secret), err,
                                  sizeof(err)),
         err);
    must(tg_jwt_keyset_add_pem(&keys, "rs", TG_JWT_RS256, rsa_pem, sizeof(rsa_pem) - 1, err,
                               sizeof(err)),
         err);
    must(tg_jwt_keyset_add_pem(&keys, "es", TG_JWT_ES256, ec256_pem, sizeof(ec256_pem) - 1, err,
                               sizeof(err)),
         err);
    cache = tg_jwt_cache_new(64, policy.leeway);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *claims = NULL;
    unsigned char key[TG_JWT_CACHE_KEY];
    tg_jwt_reason_t why = tg_jwt_verify(&keys, (const char *)data, size, &claims);
    if (why != TG_JWT_OK) {
        if (claims != NULL)
            __builtin_trap(); /* refused tokens must not leak claims */
        return 0;
    }
    (void)tg_jwt_check_claims(&policy, claims, 1700000000.0);
    SHA256(data, size, key);
    tg_jwt_cache_put(cache, key, claims);
    (void)tg_jwt_cache_get(cache, key, 1700000000.0);
    json_decref(claims);
    return 0;
}
