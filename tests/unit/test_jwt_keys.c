/*
 * jwt plugin: key loading, and the config errors for keys that do not fit
 * their algorithm (RFC 7518 3.2-3.4, RFC 8725 3.1).
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt/jwt_keys.c"
#include "plugins/jwt/jwt_verify.c"

#define DATA TG_TEST_DATA "/jwt/"

static tg_jwt_keyset_t ks;
static char err[400];

static void setup(void)
{
    memset(&ks, 0, sizeof(ks));
    err[0] = '\0';
}

static void teardown(void)
{
    tg_jwt_keyset_free(&ks);
}

static int pem(const char *kid, tg_jwt_alg_t alg, const char *file)
{
    return tg_jwt_keyset_add_pem_file(&ks, kid, alg, file, err, sizeof(err));
}

#define assert_err(expr, text)                                                                \
    do {                                                                                      \
        ck_assert_int_eq((expr), -1);                                                         \
        ck_assert_msg(strstr(err, (text)) != NULL, "error \"%s\" lacks \"%s\"", err, (text)); \
    } while (0)

START_TEST(pem_fits_alg)
{
    ck_assert_int_eq(pem("a", TG_JWT_RS256, DATA "rsa.pub.pem"), 0);
    ck_assert_int_eq(pem("b", TG_JWT_ES256, DATA "ec256.pub.pem"), 0);
    ck_assert_int_eq(pem("c", TG_JWT_ES384, DATA "ec384.pub.pem"), 0);
    ck_assert_int_eq(pem("d", TG_JWT_ES512, DATA "ec512.pub.pem"), 0);
    ck_assert_int_eq(ks.n, 4);
    ck_assert_str_eq(ks.items[3].kid, "d");
    ck_assert_int_eq(ks.items[3].alg, TG_JWT_ES512);
    ck_assert_ptr_nonnull(ks.items[3].pkey);
}
END_TEST

START_TEST(pem_type_mismatch)
{
    assert_err(pem(NULL, TG_JWT_RS256, DATA "ec256.pub.pem"), "RS256 needs an RSA key");
    assert_err(pem(NULL, TG_JWT_ES256, DATA "rsa.pub.pem"), "ES256 needs an EC key on P-256");
    assert_err(pem(NULL, TG_JWT_ES256, DATA "ec384.pub.pem"), "this key is on secp384r1");
    assert_err(pem(NULL, TG_JWT_ES512, DATA "ec256.pub.pem"), "needs an EC key on P-521");
    assert_err(pem(NULL, TG_JWT_ES256, DATA "ec_k1.pub.pem"), "this key is on secp256k1");
    assert_err(pem(NULL, TG_JWT_RS256, DATA "rsa_small.pub.pem"), "1024 bits is too small");
    assert_err(pem(NULL, TG_JWT_HS256, DATA "rsa.pub.pem"), "use a secret");
    assert_err(pem(NULL, TG_JWT_RS256, DATA "jwks.json"), "not a PEM public key");
    assert_err(pem(NULL, TG_JWT_RS256, DATA "no-such-file.pem"), "cannot open");
    ck_assert_int_eq(ks.n, 0);
}
END_TEST

START_TEST(secrets)
{
    const char *s = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_err(tg_jwt_keyset_add_secret(&ks, NULL, TG_JWT_HS256, s, 31, err, sizeof(err)),
               "at least 32 bytes");
    assert_err(tg_jwt_keyset_add_secret(&ks, NULL, TG_JWT_HS512, s, 63, err, sizeof(err)),
               "at least 64 bytes");
    assert_err(tg_jwt_keyset_add_secret(&ks, NULL, TG_JWT_RS256, s, 64, err, sizeof(err)),
               "only be used with HS");
    ck_assert_int_eq(tg_jwt_keyset_add_secret(&ks, "k", TG_JWT_HS256, s, 32, err, sizeof(err)), 0);
    ck_assert_int_eq(tg_jwt_keyset_add_secret(&ks, NULL, TG_JWT_HS512, s, 64, err, sizeof(err)), 0);
    ck_assert_int_eq(ks.items[0].secret_len, 32);
    ck_assert_mem_eq(ks.items[0].secret, s, 32);
    assert_err(tg_jwt_keyset_add_secret(&ks, "k", TG_JWT_HS384, s, 48, err, sizeof(err)),
               "duplicate kid \"k\"");
    assert_err(pem("k", TG_JWT_RS256, DATA "rsa.pub.pem"), "duplicate kid");
    ck_assert_int_eq(ks.n, 2);
}
END_TEST

/* One JWK from the fixture set, modified by the test. */
static json_t *fixture_jwk(const char *kid)
{
    json_t *set = json_load_file(DATA "jwks.json", 0, NULL);
    ck_assert_ptr_nonnull(set);
    size_t i;
    json_t *k, *out = NULL;
    json_array_foreach(json_object_get(set, "keys"), i, k) {
        if (strcmp(json_string_value(json_object_get(k, "kid")), kid) == 0)
            out = json_deep_copy(k);
    }
    json_decref(set);
    ck_assert_ptr_nonnull(out);
    return out;
}

static int add_one(json_t *jwk)
{
    json_t *set = json_pack("{s:[o]}", "keys", jwk);
    size_t added = 99;
    int rc = tg_jwt_keyset_add_jwks(&ks, set, &added, err, sizeof(err));
    json_decref(set);
    return rc < 0 ? -1 : (int)added;
}

START_TEST(jwks_file)
{
    size_t added = 0;
    ck_assert_int_eq(tg_jwt_keyset_add_jwks_file(&ks, DATA "jwks.json", &added, err, sizeof(err)),
                     0);
    ck_assert_int_eq(added, 2); /* use:enc and kty:oct skipped */
    ck_assert_str_eq(ks.items[0].kid, "j-rs");
    ck_assert_int_eq(ks.items[0].alg, TG_JWT_RS256);
    ck_assert_str_eq(ks.items[1].kid, "j-es");
    ck_assert_int_eq(ks.items[1].alg, TG_JWT_ES256); /* derived from crv */
    assert_err(tg_jwt_keyset_add_jwks_file(&ks, DATA "jwks.json", &added, err, sizeof(err)),
               "duplicate kid \"j-rs\"");
    assert_err(tg_jwt_keyset_add_jwks_file(&ks, DATA "rsa.pub.pem", &added, err, sizeof(err)),
               "rsa.pub.pem:1:");
}
END_TEST

START_TEST(jwks_bad_keys)
{
    json_t *k = fixture_jwk("j-rs");
    json_object_del(k, "alg");
    assert_err(add_one(k), "RSA key without \"alg\"");
    k = fixture_jwk("j-rs");
    json_object_set_new(k, "alg", json_string("ES256"));
    assert_err(add_one(k), "does not fit a key of type RSA");
    k = fixture_jwk("j-rs");
    json_object_set_new(k, "n", json_string("AQAB=="));
    assert_err(add_one(k), "member \"n\" is not valid base64url");
    k = fixture_jwk("j-es");
    json_object_set_new(k, "alg", json_string("ES384"));
    assert_err(add_one(k), "does not fit curve P-256");
    k = fixture_jwk("j-es");
    json_object_set_new(k, "crv", json_string("secp256k1"));
    assert_err(add_one(k), "unsupported \"crv\"");
    k = fixture_jwk("j-es");
    json_object_set_new(k, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
    assert_err(add_one(k), "point not on P-256");
    k = fixture_jwk("j-es");
    json_object_set_new(k, "x", json_string("AAAA"));
    assert_err(add_one(k), "x and y must be 32 bytes");
    k = fixture_jwk("j-es");
    json_object_set_new(k, "kid", json_integer(3));
    assert_err(add_one(k), "\"kid\" is not a string");
    k = fixture_jwk("j-rs");
    json_object_set_new(k, "use", json_string("enc"));
    ck_assert_int_eq(add_one(k), 0);
    ck_assert_int_eq(add_one(json_pack("{s:s}", "kty", "OKP")), 0);
    assert_err(add_one(json_string("x")), "keys[0]: not a JWK object");
    ck_assert_int_eq(ks.n, 0);
    json_t *notset = json_pack("{s:{}}", "keys");
    assert_err(tg_jwt_keyset_add_jwks(&ks, notset, NULL, err, sizeof(err)), "no \"keys\" array");
    json_decref(notset);
}
END_TEST

START_TEST(jwks_rsa_small_refused)
{
    /* A 1024-bit modulus (n of 128 bytes of 0xff..): refused like a PEM one. */
    unsigned char n[128];
    memset(n, 0xff, sizeof(n));
    char b64[200];
    static const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i + 2 < sizeof(n); i += 3) {
        unsigned v = (unsigned)n[i] << 16 | (unsigned)n[i + 1] << 8 | n[i + 2];
        for (int j = 3; j >= 0; j--)
            b64[o++] = alpha[(v >> (6 * j)) & 63];
    }
    /* 128 = 42 * 3 + 2: two bytes left, three characters */
    unsigned v = (unsigned)n[126] << 16 | (unsigned)n[127] << 8;
    b64[o++] = alpha[(v >> 18) & 63];
    b64[o++] = alpha[(v >> 12) & 63];
    b64[o++] = alpha[(v >> 6) & 63];
    b64[o] = '\0';
    json_t *k = json_pack("{s:s,s:s,s:s,s:s}", "kty", "RSA", "alg", "RS256", "n", b64, "e", "AQAB");
    assert_err(add_one(k), "1024 bits is too small");
}
END_TEST

START_TEST(alg_table)
{
    ck_assert_ptr_null(tg_jwt_alg_info(TG_JWT_ALG_INVALID));
    ck_assert_str_eq(tg_jwt_alg_info(TG_JWT_ES512)->crv, "P-521");
    ck_assert_int_eq(tg_jwt_alg_info(TG_JWT_ES512)->size, 66);
    ck_assert_int_eq(tg_jwt_alg_info(TG_JWT_HS384)->size, 48);
    for (tg_jwt_alg_t a = TG_JWT_HS256; a <= TG_JWT_ES512; a++) {
        const char *name = tg_jwt_alg_info(a)->name;
        ck_assert_int_eq(tg_jwt_alg_from_name(name, strlen(name)), a);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jwt_keys");
    TCase *t = tcase_create("keys");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, pem_fits_alg);
    tcase_add_test(t, pem_type_mismatch);
    tcase_add_test(t, secrets);
    tcase_add_test(t, jwks_file);
    tcase_add_test(t, jwks_bad_keys);
    tcase_add_test(t, jwks_rsa_small_refused);
    tcase_add_test(t, alg_table);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
