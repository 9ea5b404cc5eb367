/*
 * jwt_sign: signs a JWT with libjwt, an implementation independent of the jwt
 * plugin's own code, for the integration tests (tests/integration/test_jwt.py).
 *
 *   jwt_sign ALG KEY_FILE CLAIMS_JSON [HEADER_JSON]
 *
 * ALG is libjwt's name ("HS256", "RS256", "ES256", ..., "none"); KEY_FILE
 * holds the HMAC secret's bytes or a PEM private key ("-" for none);
 * CLAIMS_JSON is the payload object; HEADER_JSON adds header members (e.g.
 * {"kid":"k1"}); libjwt writes "alg" and "typ" itself. Prints the token.
 */
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 65536

static int fail(const char *what)
{
    fprintf(stderr, "jwt_sign: %s\n", what);
    return 1;
}

/* The whole file into key (NUL-terminated: libjwt's PEM reader wants a string). */
static long read_key(const char *path, unsigned char *key)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t n = fread(key, 1, KEY_MAX - 1, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad)
        return -1;
    key[n] = '\0';
    return (long)n;
}

int main(int argc, char **argv)
{
    static unsigned char key[KEY_MAX];
    if (argc < 4 || argc > 5)
        return fail("usage: jwt_sign ALG KEY_FILE CLAIMS_JSON [HEADER_JSON]");
    jwt_alg_t alg = jwt_str_alg(argv[1]);
    if (alg == JWT_ALG_INVAL)
        return fail("unknown algorithm");
    long key_len = 0;
    if (strcmp(argv[2], "-") != 0 && (key_len = read_key(argv[2], key)) < 0)
        return fail("cannot read the key file");
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return fail("jwt_new failed");
    int rc = 1;
    char *out = NULL;
    if (jwt_add_grants_json(jwt, argv[3]) != 0) {
        fail("CLAIMS_JSON is not a JSON object");
    } else if (argc == 5 && jwt_add_headers_json(jwt, argv[4]) != 0) {
        fail("HEADER_JSON is not a JSON object");
    } else if (jwt_set_alg(jwt, alg, alg == JWT_ALG_NONE ? NULL : key,
                           alg == JWT_ALG_NONE ? 0 : (int)key_len) != 0) {
        fail("jwt_set_alg refused the key");
    } else if ((out = jwt_encode_str(jwt)) == NULL) {
        fail("jwt_encode_str failed");
    } else {
        printf("%s\n", out);
        rc = 0;
    }
    free(out);
    jwt_free(jwt);
    return rc;
}
