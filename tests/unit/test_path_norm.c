#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path_norm.h"

/* expect == NULL: rejected, and reason must contain `why`. */
typedef struct {
    const char *in;
    const char *expect;
    const char *why;
    unsigned flags; /* TG_PATH_* */
} case_t;

#define KEEP TG_PATH_KEEP_ENCODED_SLASH

static const case_t cases[] = {
    /* unchanged */
    {"/", "/", NULL, 0},
    {"/a", "/a", NULL, 0},
    {"/a/", "/a/", NULL, 0},
    {"/api/v1/users/42", "/api/v1/users/42", NULL, 0},
    {"/a%20b", "/a%20b", NULL, 0},
    {"/a%3Fb", "/a%3Fb", NULL, 0},
    {"/a%25b", "/a%25b", NULL, 0},
    {"/a%C3%A9", "/a%C3%A9", NULL, 0},
    {"/!$&'()*+,=:@-._~", "/!$&'()*+,=:@-._~", NULL, 0},
    {"/user@host:8080", "/user@host:8080", NULL, 0},
    {"/a..b/c.d/.e/..f", "/a..b/c.d/.e/..f", NULL, 0},
    {"/...", "/...", NULL, 0},
    /* decoding of unreserved characters */
    {"/%41", "/A", NULL, 0},
    {"/%61%62%63", "/abc", NULL, 0},
    {"/a/%7Euser", "/a/~user", NULL, 0},
    {"/a/%7euser", "/a/~user", NULL, 0},
    {"/%2D%2e%5F%7E%30%39", "/-._~09", NULL, 0},
    {"/a%2Db", "/a-b", NULL, 0},
    /* what stays encoded gets upper-case hex (RFC 3986 section 6.2.2.1) */
    {"/a%3fb", "/a%3Fb", NULL, 0},
    {"/a%c3%a9", "/a%C3%A9", NULL, 0},
    {"/a%7b%7D%5b%5E%60%7c%22%3c", "/a%7B%7D%5B%5E%60%7C%22%3C", NULL, 0},
    {"/%ff%fe%80%7f%1f%0a%0D", "/%FF%FE%80%7F%1F%0A%0D", NULL, 0},
    /* sub-delims, ":" and "@" are decoded: routing sees what upstreams see */
    {"/v1/ops/42%3Acancel", "/v1/ops/42:cancel", NULL, 0},
    {"/v1/ops/42%3acancel", "/v1/ops/42:cancel", NULL, 0},
    {"/%21%24%26%27%28%29%2A%2B%2C%3D%3A%40", "/!$&'()*+,=:@", NULL, 0},
    {"/%2a%2b%2c%3d%3a", "/*+,=:", NULL, 0},
    {"/user%40host%3A8080", "/user@host:8080", NULL, 0},
    /* never decoded twice; "%" itself stays encoded */
    {"/a%252Fb", "/a%252Fb", NULL, 0},
    {"/a%252fb", "/a%252fb", NULL, 0},
    {"/a%25252F", "/a%25252F", NULL, 0},
    {"/a%252e%252e/b", "/a%252e%252e/b", NULL, 0},
    {"/%25%32%46", "/%252F", NULL, 0},
    {"/%25%33%41", "/%253A", NULL, 0},
    /* overlong and invalid UTF-8 stay bytes: %C0%AE is not "." */
    {"/a/%c0%ae%c0%ae/b", "/a/%C0%AE%C0%AE/b", NULL, 0},
    {"/a/%C0%AF../b", "/a/%C0%AF../b", NULL, 0},
    {"/a/%e0%80%ae/b", "/a/%E0%80%AE/b", NULL, 0},
    {"/%ed%a0%80", "/%ED%A0%80", NULL, 0},
    /* dot segments (RFC 3986 section 5.2.4) */
    {"/a/./b/../c", "/a/c", NULL, 0},
    {"/a/b/c/./../../g", "/a/g", NULL, 0},
    {"/a/.", "/a/", NULL, 0},
    {"/a/..", "/", NULL, 0},
    {"/a/b/..", "/a/", NULL, 0},
    {"/a/b/../", "/a/", NULL, 0},
    {"/.", "/", NULL, 0},
    {"/..", "/", NULL, 0},
    {"/../a", "/a", NULL, 0},
    {"/../../../etc/passwd", "/etc/passwd", NULL, 0},
    {"/a/../../b", "/b", NULL, 0},
    {"/./", "/", NULL, 0},
    {"/public/%2e%2e/admin", "/admin", NULL, 0},
    {"/public/%2E%2E/admin", "/admin", NULL, 0},
    {"/public/.%2e/admin", "/admin", NULL, 0},
    {"/public/%2e/admin", "/public/admin", NULL, 0},
    {"/public/%2E./admin", "/admin", NULL, 0},
    {"/public/%2e%2E/admin", "/admin", NULL, 0},
    {"/public/.%2E/admin", "/admin", NULL, 0},
    {"/a/b/%2e%2e/%2E%2e/c", "/c", NULL, 0},
    {"/a/%2e%2e%2e/b", "/a/.../b", NULL, 0},
    {"/a/%2e%2ex/b", "/a/..x/b", NULL, 0},
    {"/a/..b/c", "/a/..b/c", NULL, 0},
    /* slashes merged */
    {"//a///b", "/a/b", NULL, 0},
    {"//", "/", NULL, 0},
    {"/a//", "/a/", NULL, 0},
    {"/a/.//b", "/a/b", NULL, 0},
    {"//../a", "/a", NULL, 0},
    /* Empty segments are merged away before ".." applies (as nginx's
     * merge_slashes does), so ".." climbs over "a", not over "". */
    {"/a//..//b", "/b", NULL, 0},
    /* rejected */
    {"/public/..%2fadmin", NULL, "encoded slash", 0},
    {"/a%2Fb", NULL, "encoded slash", 0},
    {"/a%5cb", NULL, "encoded backslash", 0},
    {"/a%5Cb", NULL, "encoded backslash", 0},
    {"/a%00b", NULL, "encoded NUL", 0},
    {"/a;b", NULL, "path parameter", 0},
    {"/a;jsessionid=1", NULL, "path parameter", 0},
    {"/a%3bb", NULL, "encoded path parameter", 0},
    {"/a%3Bb", NULL, "encoded path parameter", 0},
    /* a decoded %3B must not sneak a ";" past the rule, in any spelling */
    {"/v1/ops/42%3bcancel", NULL, "encoded path parameter", 0},
    {"/a%3B", NULL, "encoded path parameter", 0},
    {"/a/%3b/../b", NULL, "encoded path parameter", 0},
    {"/a#b", NULL, "fragment", 0},
    {"/a%23b", NULL, "encoded fragment", 0},
    {"/a\\b", NULL, "backslash", 0},
    {"/%zz", NULL, "malformed percent", 0},
    {"/%4", NULL, "malformed percent", 0},
    {"/%", NULL, "malformed percent", 0},
    {"/a%g1", NULL, "malformed percent", 0},
    {"/a%1g", NULL, "malformed percent", 0},
    {"/%%41", NULL, "malformed percent", 0},
    {"/%-1", NULL, "malformed percent", 0},
    {"/%+1", NULL, "malformed percent", 0},
    {"/% 1", NULL, "malformed percent", 0},
    {"/a%", NULL, "malformed percent", 0},
    {"/a/%/b", NULL, "malformed percent", 0},
    {"/%2", NULL, "malformed percent", 0},
    {"/%\xc3\xa9", NULL, "malformed percent", 0},
    {"", NULL, "start with /", 0},
    {"a", NULL, "start with /", 0},
    {"a/b", NULL, "start with /", 0},
    {"*", NULL, "start with /", 0},
    {"/a b", NULL, "invalid character", 0},
    {"/a\tb", NULL, "invalid character", 0},
    {"/a\x7f", NULL, "invalid character", 0},
    {"/caf\xc3\xa9", NULL, "invalid character", 0},
    {"/a?b", NULL, "invalid character", 0},
    {"/a<b>", NULL, "invalid character", 0},
    {"/a\"b", NULL, "invalid character", 0},
    {"/a[0]", NULL, "invalid character", 0},
    {"/a|b", NULL, "invalid character", 0},
    {"/a`b", NULL, "invalid character", 0},
    {"/a{b}", NULL, "invalid character", 0},
    {"/a^b", NULL, "invalid character", 0},
    /* an error after dot-segment removal is still an error */
    {"/../a%2f", NULL, "encoded slash", 0},
    {"/a%2fb", NULL, "encoded slash", 0},
    {"/a/%2F", NULL, "encoded slash", 0},
    /* limits.encoded_slashes: keep: %2F is an ordinary character of its segment */
    {"/a%2Fb", "/a%2Fb", NULL, KEEP},
    {"/a%2fb", "/a%2Fb", NULL, KEEP},
    {"/projects/group%2Fname/issues", "/projects/group%2Fname/issues", NULL, KEEP},
    {"/public/..%2Fadmin", "/public/..%2Fadmin", NULL, KEEP},
    {"/public/..%2fadmin", "/public/..%2Fadmin", NULL, KEEP},
    {"/public/%2e%2e%2fadmin", "/public/..%2Fadmin", NULL, KEEP},
    {"/a/%2F..", "/a/%2F..", NULL, KEEP},
    {"/a/..%2F", "/a/..%2F", NULL, KEEP},
    {"/a/.%2F./b", "/a/.%2F./b", NULL, KEEP},
    {"/a/%2F/../b", "/a/b", NULL, KEEP},
    {"/a/%2F/./b", "/a/%2F/b", NULL, KEEP},
    {"/%2F%2F", "/%2F%2F", NULL, KEEP},
    {"//%2F//", "/%2F/", NULL, KEEP},
    {"/a%252Fb", "/a%252Fb", NULL, KEEP},
    {"/a%3A%2Fb", "/a:%2Fb", NULL, KEEP},
    /* keep changes nothing else */
    {"/a%5Cb", NULL, "encoded backslash", KEEP},
    {"/a%3Bb", NULL, "encoded path parameter", KEEP},
    {"/a%23b", NULL, "encoded fragment", KEEP},
    {"/a%00b", NULL, "encoded NUL", KEEP},
    {"/a;b", NULL, "path parameter", KEEP},
    {"/a%2", NULL, "malformed percent", KEEP},
};

START_TEST(test_table)
{
    const case_t *c = &cases[_i];
    size_t len = strlen(c->in);
    /* Exactly len + 1 bytes on the heap so that ASan catches an overrun. */
    char *out = malloc(len + 1);
    size_t out_len = 12345;
    const char *reason = NULL;
    int rc = tg_path_normalize(c->in, len, c->flags, out, &out_len, &reason);
    if (c->expect) {
        ck_assert_msg(rc == 0, "'%s' rejected: %s", c->in, reason ? reason : "(null)");
        ck_assert_msg(out_len == strlen(c->expect) && memcmp(out, c->expect, out_len) == 0,
                      "'%s' -> '%.*s', want '%s'", c->in, (int)out_len, out, c->expect);
    } else {
        ck_assert_msg(rc == -1, "'%s' accepted as '%.*s'", c->in, (int)out_len, out);
        ck_assert_ptr_nonnull(reason);
        ck_assert_msg(strstr(reason, c->why) != NULL, "'%s': reason '%s', want '%s'", c->in, reason,
                      c->why);
    }
    free(out);
}
END_TEST

/* Embedded NUL (raw) is an invalid character, not a terminator. */
START_TEST(test_raw_nul)
{
    const char in[] = {'/', 'a', '\0', 'b'};
    char out[sizeof(in) + 1];
    size_t out_len;
    const char *reason = NULL;
    ck_assert_int_eq(tg_path_normalize(in, sizeof(in), 0, out, &out_len, &reason), -1);
    ck_assert_str_eq(reason, "invalid character in path");
}
END_TEST

/* len is honoured: bytes after it are not read, so a path cut just before a
 * bad byte is fine and a "%4" cut from "%41" is malformed. */
START_TEST(test_len_bound)
{
    char out[32];
    size_t out_len;
    const char *reason = NULL;
    ck_assert_int_eq(tg_path_normalize("/abc;x", 4, 0, out, &out_len, &reason), 0);
    ck_assert_uint_eq(out_len, 4);
    ck_assert_int_eq(memcmp(out, "/abc", 4), 0);
    ck_assert_int_eq(tg_path_normalize("/%41", 3, 0, out, &out_len, &reason), -1);
    ck_assert_str_eq(reason, "malformed percent-encoding in path");
}
END_TEST

/* Normalizing a normalized path changes nothing. */
START_TEST(test_idempotent)
{
    const case_t *c = &cases[_i];
    if (c->expect == NULL)
        return;
    size_t len = strlen(c->expect);
    char *out = malloc(len + 1);
    size_t out_len;
    const char *reason = NULL;
    ck_assert_int_eq(tg_path_normalize(c->expect, len, c->flags, out, &out_len, &reason), 0);
    ck_assert_uint_eq(out_len, len);
    ck_assert_int_eq(memcmp(out, c->expect, len), 0);
    free(out);
}
END_TEST

/* Every byte value, raw and encoded in either hex case: decoded exactly when
 * it is allowed raw in a segment, otherwise kept upper-case or rejected. */
static const char raw_ok_set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789-._~!$&'()*+,=:@";

START_TEST(test_every_byte)
{
    unsigned v = (unsigned)_i & 255, flags = _i > 255 ? KEEP : 0;
    bool allowed = v != 0 && strchr(raw_ok_set, (int)v) != NULL;
    bool refused = v == 0 || v == ';' || v == '#' || v == '\\' || (v == '/' && !flags);
    char out[16], in[16];
    size_t out_len;
    const char *reason = NULL;
    for (int lower = 0; lower < 2; lower++) {
        snprintf(in, sizeof(in), lower ? "/x%%%02xy" : "/x%%%02Xy", v);
        int rc = tg_path_normalize(in, strlen(in), flags, out, &out_len, &reason);
        ck_assert_msg(rc == (refused ? -1 : 0), "%s flags %u: rc %d", in, flags, rc);
        if (refused)
            continue;
        char want[16];
        if (allowed)
            snprintf(want, sizeof(want), "/x%cy", (char)v);
        else
            snprintf(want, sizeof(want), "/x%%%02Xy", v);
        ck_assert_msg(out_len == strlen(want) && memcmp(out, want, out_len) == 0,
                      "%s -> '%.*s', want '%s'", in, (int)out_len, out, want);
    }
    /* the raw byte: accepted exactly when allowed raw (or "/") */
    char raw[4] = {'/', 'x', (char)v, 'y'};
    int rc = tg_path_normalize(raw, 4, flags, out, &out_len, &reason);
    ck_assert_msg(rc == (allowed || v == '/' ? 0 : -1), "raw 0x%02x: rc %d", v, rc);
}
END_TEST

/* A long path of ".." segments: no stack, no quadratic blow-up, stays at root. */
START_TEST(test_long)
{
    size_t n = 100000;
    char *in = malloc(3 * n + 2);
    char *out = malloc(3 * n + 3);
    for (size_t i = 0; i < n; i++)
        memcpy(in + 3 * i, "/..", 3);
    memcpy(in + 3 * n, "/x", 2);
    size_t out_len;
    const char *reason = NULL;
    ck_assert_int_eq(tg_path_normalize(in, 3 * n + 2, 0, out, &out_len, &reason), 0);
    ck_assert_uint_eq(out_len, 2);
    ck_assert_int_eq(memcmp(out, "/x", 2), 0);
    free(in);
    free(out);
}
END_TEST

static Suite *path_norm_suite(void)
{
    Suite *s = suite_create("path_norm");
    TCase *tc = tcase_create("core");
    int n = (int)(sizeof(cases) / sizeof(cases[0]));
    tcase_add_loop_test(tc, test_table, 0, n);
    tcase_add_loop_test(tc, test_idempotent, 0, n);
    tcase_add_loop_test(tc, test_every_byte, 0, 512);
    tcase_add_test(tc, test_raw_nul);
    tcase_add_test(tc, test_len_bound);
    tcase_add_test(tc, test_long);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(path_norm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
