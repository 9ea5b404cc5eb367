/*
 * jwt plugin: base64url, ES r||s -> DER, key pinning, and whole-token
 * verification against tokens made by python3-jwt / cryptography
 * (tests/unit/data/jwt/gen.py), never by our code.
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt/jwt_keys.c"
#include "plugins/jwt/jwt_verify.c"

#define DATA TG_TEST_DATA "/jwt/"

static const char *const names[] = TG_JWT_REASON_NAMES;

/* ---- base64url ---- */

static long dec(const char *in, unsigned char *out, size_t cap)
{
    return tg_jwt_b64url_decode(in, strlen(in), out, cap);
}

START_TEST(b64url_vectors)
{
    /* RFC 4648 10 test vectors, unpadded. */
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},           {"Zg", "f"},          {"Zm8", "fo"},         {"Zm9v", "foo"},
             {"Zm9vYg", "foob"}, {"Zm9vYmE", "fooba"}, {"Zm9vYmFy", "foobar"}};
    unsigned char out[16];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        long n = dec(v[i].in, out, sizeof(out));
        ck_assert_int_eq(n, (long)strlen(v[i].out));
        ck_assert_mem_eq(out, v[i].out, (size_t)n);
    }
}
END_TEST

START_TEST(b64url_alphabet)
{
    unsigned char out[8];
    ck_assert_int_eq(dec("-_-_", out, sizeof(out)), 3);
    ck_assert_mem_eq(out, "\xfb\xff\xbf", 3);
    ck_assert_int_eq(dec("+/+/", out, sizeof(out)), -1); /* standard alphabet */
    ck_assert_int_eq(dec("Zg==", out, sizeof(out)), -1); /* padding */
    ck_assert_int_eq(dec("Zm8", out, sizeof(out)), 2);   /* "fo" */
    ck_assert_int_eq(dec("Zm9", out, sizeof(out)), -1);  /* "fo" + non-zero pad bits */
    ck_assert_int_eq(dec("Z", out, sizeof(out)), -1);    /* 6 bits: no byte */
    ck_assert_int_eq(dec("Zh", out, sizeof(out)), -1);   /* non-zero pad bits */
    ck_assert_int_eq(dec("Zm9w", out, sizeof(out)), 3);
    ck_assert_int_eq(dec("Zm 9", out, sizeof(out)), -1);
    ck_assert_int_eq(tg_jwt_b64url_decode("Zm9\0", 4, out, sizeof(out)), -1);
    ck_assert_int_eq(dec("Zm9vYmFy", out, 5), -1); /* does not fit */
    ck_assert_int_eq(dec("Zm9vYmFy", out, 6), 6);
}
END_TEST

/* ---- r || s -> DER ---- */

static size_t unhex(const char *h, unsigned char *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return n;
}

START_TEST(ecdsa_der_vectors)
{
    json_t *vecs = json_load_file(DATA "der.json", 0, NULL);
    ck_assert_ptr_nonnull(vecs);
    ck_assert_int_ge(json_array_size(vecs), 8);
    size_t i;
    json_t *v;
    json_array_foreach(vecs, i, v) {
        unsigned char rs[200], want[200], der[150];
        size_t rl = unhex(json_string_value(json_object_get(v, "raw")), rs);
        size_t wl = unhex(json_string_value(json_object_get(v, "der")), want);
        long n = tg_jwt_ecdsa_raw_to_der(rs, rl, der, sizeof(der));
        ck_assert_msg(n == (long)wl, "vector %zu: length %ld, want %zu", i, n, wl);
        ck_assert_mem_eq(der, want, wl);
    }
    json_decref(vecs);
}
END_TEST

START_TEST(ecdsa_der_limits)
{
    unsigned char rs[140] = {0}, der[150];
    ck_assert_int_eq(tg_jwt_ecdsa_raw_to_der(rs, 0, der, sizeof(der)), -1);
    ck_assert_int_eq(tg_jwt_ecdsa_raw_to_der(rs, 63, der, sizeof(der)), -1);
    ck_assert_int_eq(tg_jwt_ecdsa_raw_to_der(rs, 134, der, sizeof(der)), -1);
    memset(rs, 0xff, sizeof(rs));
    ck_assert_int_eq(tg_jwt_ecdsa_raw_to_der(rs, 132, der, sizeof(der)), 141);
    ck_assert_int_eq(tg_jwt_ecdsa_raw_to_der(rs, 132, der, 140), -1);
    ck_assert_int_eq(der[0], 0x30);
}
END_TEST

/* ---- the key set of the suite (see gen.py) ---- */

static tg_jwt_keyset_t ks;
static json_t *fixtures;

static void add_pem(const char *kid, tg_jwt_alg_t alg, const char *file)
{
    char err[300];
    int rc = tg_jwt_keyset_add_pem_file(&ks, kid, alg, file, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s: %s", file, err);
}

static void add_secret(const char *kid, tg_jwt_alg_t alg, const char *name)
{
    char err[300];
    const char *s = json_string_value(json_object_get(json_object_get(fixtures, "secrets"), name));
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tg_jwt_keyset_add_secret(&ks, kid, alg, s, strlen(s), err, sizeof(err)), 0);
}

static void setup(void)
{
    char err[300];
    fixtures = json_load_file(DATA "tokens.json", 0, NULL);
    ck_assert_ptr_nonnull(fixtures);
    add_pem("rs", TG_JWT_RS256, DATA "rsa.pub.pem");
    add_pem("rs512", TG_JWT_RS512, DATA "rsa.pub.pem");
    add_pem(NULL, TG_JWT_RS384, DATA "rsa.pub.pem");
    add_pem("es256", TG_JWT_ES256, DATA "ec256.pub.pem");
    add_pem("es384", TG_JWT_ES384, DATA "ec384.pub.pem");
    add_pem("es512", TG_JWT_ES512, DATA "ec512.pub.pem");
    add_secret("hs", TG_JWT_HS256, "hs256");
    add_secret(NULL, TG_JWT_HS384, "hs384");
    add_secret(NULL, TG_JWT_HS512, "hs512");
    size_t added = 0;
    ck_assert_msg(tg_jwt_keyset_add_jwks_file(&ks, DATA "jwks.json", &added, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(added, 2);
}

static void teardown(void)
{
    tg_jwt_keyset_free(&ks);
    json_decref(fixtures);
}

START_TEST(fixture_tokens)
{
    json_t *cases = json_object_get(fixtures, "cases");
    ck_assert_int_ge(json_array_size(cases), 40);
    size_t i, ok = 0;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *tok = json_string_value(json_object_get(c, "token"));
        const char *want = json_string_value(json_object_get(c, "expect"));
        json_t *claims = NULL;
        tg_jwt_reason_t why = tg_jwt_verify(&ks, tok, strlen(tok), &claims);
        const char *got = why == TG_JWT_OK ? "ok" : names[why];
        ck_assert_msg(strcmp(got, want) == 0, "%s: got %s, want %s", name, got, want);
        if (why == TG_JWT_OK) {
            ck_assert_str_eq(json_string_value(json_object_get(claims, "sub")), "alice");
            ok++;
        } else {
            ck_assert_ptr_null(claims);
        }
        json_decref(claims);
    }
    ck_assert_int_eq(ok, 16);
}
END_TEST

static tg_jwt_reason_t pin(tg_jwt_alg_t alg, const char *kid, const tg_jwt_key_t **key)
{
    return tg_jwt_pin(&ks, alg, kid, kid ? strlen(kid) : 0, key);
}

START_TEST(pinning)
{
    const tg_jwt_key_t *k = (const tg_jwt_key_t *)1;
    ck_assert_int_eq(pin(TG_JWT_RS256, "rs", &k), TG_JWT_OK);
    ck_assert_str_eq(k->kid, "rs");
    ck_assert_int_eq(k->alg, TG_JWT_RS256);
    /* The kid's key decides the algorithm. */
    ck_assert_int_eq(pin(TG_JWT_HS256, "rs", &k), TG_JWT_UNSUPPORTED_ALG);
    ck_assert_ptr_null(k);
    ck_assert_int_eq(pin(TG_JWT_RS512, "rs", &k), TG_JWT_UNSUPPORTED_ALG);
    ck_assert_int_eq(pin(TG_JWT_RS256, "hs", &k), TG_JWT_UNSUPPORTED_ALG);
    ck_assert_int_eq(pin(TG_JWT_RS256, "nope", &k), TG_JWT_UNKNOWN_KEY);
    ck_assert_int_eq(pin(TG_JWT_ALG_INVALID, "rs", &k), TG_JWT_UNSUPPORTED_ALG);
    ck_assert_int_eq(pin(TG_JWT_ALG_INVALID, NULL, &k), TG_JWT_UNSUPPORTED_ALG);
    /* A kid is compared by length too: "r" is not "rs". */
    ck_assert_int_eq(tg_jwt_pin(&ks, TG_JWT_RS256, "rs", 1, &k), TG_JWT_UNKNOWN_KEY);
    /* No kid: every key of the algorithm, kid or not. */
    ck_assert_int_eq(pin(TG_JWT_RS384, NULL, &k), TG_JWT_OK);
    ck_assert_ptr_null(k);
    ck_assert_int_eq(pin(TG_JWT_HS256, NULL, &k), TG_JWT_OK);
    ck_assert_int_eq(pin(TG_JWT_ES384, NULL, &k), TG_JWT_OK);
    ck_assert_int_eq(tg_jwt_alg_from_name("none", 4), TG_JWT_ALG_INVALID);
    ck_assert_int_eq(tg_jwt_alg_from_name("RS256", 5), TG_JWT_RS256);
    ck_assert_int_eq(tg_jwt_alg_from_name("RS2560", 6), TG_JWT_ALG_INVALID);
    ck_assert_int_eq(tg_jwt_alg_from_name("RS25", 4), TG_JWT_ALG_INVALID);
}
END_TEST

START_TEST(pinning_no_key_of_alg)
{
    tg_jwt_keyset_t one = {0};
    char err[200];
    const tg_jwt_key_t *k;
    const char *s = "0123456789abcdef0123456789abcdef";
    ck_assert_int_eq(tg_jwt_keyset_add_secret(&one, NULL, TG_JWT_HS256, s, 32, err, sizeof(err)),
                     0);
    ck_assert_int_eq(tg_jwt_pin(&one, TG_JWT_RS256, NULL, 0, &k), TG_JWT_UNSUPPORTED_ALG);
    ck_assert_int_eq(tg_jwt_pin(&one, TG_JWT_HS256, NULL, 0, &k), TG_JWT_OK);
    /* A kid never falls back to keys without one. */
    ck_assert_int_eq(tg_jwt_pin(&one, TG_JWT_HS256, "x", 1, &k), TG_JWT_UNKNOWN_KEY);
    tg_jwt_keyset_free(&one);
}
END_TEST

START_TEST(pinning_chained_sets)
{
    /* The fetched set (jwks_uri) is searched after the configured one. */
    tg_jwt_keyset_t fetched = {0};
    char err[200];
    const tg_jwt_key_t *k;
    const char *s = "0123456789abcdef0123456789abcdef0123456789abcdef";
    ck_assert_int_eq(
        tg_jwt_keyset_add_secret(&fetched, "remote", TG_JWT_HS384, s, 48, err, sizeof(err)), 0);
    ck_assert_int_eq(
        tg_jwt_keyset_add_secret(&fetched, "rs", TG_JWT_HS256, s, 32, err, sizeof(err)), 0);
    ck_assert_int_eq(pin(TG_JWT_HS384, "remote", &k), TG_JWT_UNKNOWN_KEY);
    ks.next = &fetched;
    ck_assert_int_eq(pin(TG_JWT_HS384, "remote", &k), TG_JWT_OK);
    ck_assert_ptr_eq(k, &fetched.items[0]);
    /* A configured kid cannot be shadowed by a fetched one. */
    ck_assert_int_eq(pin(TG_JWT_HS256, "rs", &k), TG_JWT_UNSUPPORTED_ALG);
    ck_assert_int_eq(pin(TG_JWT_RS256, "rs", &k), TG_JWT_OK);
    ck_assert_ptr_eq(k, &ks.items[0]);
    ks.next = NULL;
    tg_jwt_keyset_free(&fetched);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jwt_verify");
    TCase *t = tcase_create("codec");
    tcase_add_test(t, b64url_vectors);
    tcase_add_test(t, b64url_alphabet);
    tcase_add_test(t, ecdsa_der_vectors);
    tcase_add_test(t, ecdsa_der_limits);
    suite_add_tcase(s, t);
    t = tcase_create("tokens");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, fixture_tokens);
    tcase_add_test(t, pinning);
    tcase_add_test(t, pinning_no_key_of_alg);
    tcase_add_test(t, pinning_chained_sets);
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
