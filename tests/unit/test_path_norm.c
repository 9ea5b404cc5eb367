#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "path_norm.h"

/* expect == NULL: rejected, and reason must contain `why`. */
typedef struct {
    const char *in;
    const char *expect;
    const char *why;
} case_t;

static const case_t cases[] = {
    /* unchanged */
    {"/", "/", NULL},
    {"/a", "/a", NULL},
    {"/a/", "/a/", NULL},
    {"/api/v1/users/42", "/api/v1/users/42", NULL},
    {"/a%20b", "/a%20b", NULL},
    {"/a%3fb", "/a%3fb", NULL},
    {"/a%3Fb", "/a%3Fb", NULL},
    {"/a%25b", "/a%25b", NULL},
    {"/a%C3%A9", "/a%C3%A9", NULL},
    {"/a%c3%a9", "/a%c3%a9", NULL},
    {"/!$&'()*+,=:@-._~", "/!$&'()*+,=:@-._~", NULL},
    {"/user@host:8080", "/user@host:8080", NULL},
    {"/a..b/c.d/.e/..f", "/a..b/c.d/.e/..f", NULL},
    {"/...", "/...", NULL},
    /* decoding of unreserved characters */
    {"/%41", "/A", NULL},
    {"/%61%62%63", "/abc", NULL},
    {"/a/%7Euser", "/a/~user", NULL},
    {"/a/%7euser", "/a/~user", NULL},
    {"/%2D%2e%5F%7E%30%39", "/-._~09", NULL},
    {"/a%2Db", "/a-b", NULL},
    /* dot segments (RFC 3986 section 5.2.4) */
    {"/a/./b/../c", "/a/c", NULL},
    {"/a/b/c/./../../g", "/a/g", NULL},
    {"/a/.", "/a/", NULL},
    {"/a/..", "/", NULL},
    {"/a/b/..", "/a/", NULL},
    {"/a/b/../", "/a/", NULL},
    {"/.", "/", NULL},
    {"/..", "/", NULL},
    {"/../a", "/a", NULL},
    {"/../../../etc/passwd", "/etc/passwd", NULL},
    {"/a/../../b", "/b", NULL},
    {"/./", "/", NULL},
    {"/public/%2e%2e/admin", "/admin", NULL},
    {"/public/%2E%2E/admin", "/admin", NULL},
    {"/public/.%2e/admin", "/admin", NULL},
    {"/public/%2e/admin", "/public/admin", NULL},
    {"/a/..b/c", "/a/..b/c", NULL},
    /* slashes merged */
    {"//a///b", "/a/b", NULL},
    {"//", "/", NULL},
    {"/a//", "/a/", NULL},
    {"/a/.//b", "/a/b", NULL},
    {"//../a", "/a", NULL},
    /* Empty segments are merged away before ".." applies (as nginx's
     * merge_slashes does), so ".." climbs over "a", not over "". */
    {"/a//..//b", "/b", NULL},
    /* rejected */
    {"/public/..%2fadmin", NULL, "encoded slash"},
    {"/a%2Fb", NULL, "encoded slash"},
    {"/a%5cb", NULL, "encoded backslash"},
    {"/a%5Cb", NULL, "encoded backslash"},
    {"/a%00b", NULL, "encoded NUL"},
    {"/a;b", NULL, "path parameter"},
    {"/a;jsessionid=1", NULL, "path parameter"},
    {"/a%3bb", NULL, "encoded path parameter"},
    {"/a%3Bb", NULL, "encoded path parameter"},
    {"/a#b", NULL, "fragment"},
    {"/a%23b", NULL, "encoded fragment"},
    {"/a\\b", NULL, "backslash"},
    {"/%zz", NULL, "malformed percent"},
    {"/%4", NULL, "malformed percent"},
    {"/%", NULL, "malformed percent"},
    {"/a%g1", NULL, "malformed percent"},
    {"/a%1g", NULL, "malformed percent"},
    {"", NULL, "start with /"},
    {"a", NULL, "start with /"},
    {"a/b", NULL, "start with /"},
    {"*", NULL, "start with /"},
    {"/a b", NULL, "invalid character"},
    {"/a\tb", NULL, "invalid character"},
    {"/a\x7f", NULL, "invalid character"},
    {"/caf\xc3\xa9", NULL, "invalid character"},
    {"/a?b", NULL, "invalid character"},
    {"/a<b>", NULL, "invalid character"},
    {"/a\"b", NULL, "invalid character"},
    {"/a[0]", NULL, "invalid character"},
    {"/a|b", NULL, "invalid character"},
    {"/a`b", NULL, "invalid character"},
    {"/a{b}", NULL, "invalid character"},
    {"/a^b", NULL, "invalid character"},
    /* an error after dot-segment removal is still an error */
    {"/../a%2f", NULL, "encoded slash"},
};

START_TEST(test_table)
{
    const case_t *c = &cases[_i];
    size_t len = strlen(c->in);
    /* Exactly len + 1 bytes on the heap so that ASan catches an overrun. */
    char *out = malloc(len + 1);
    size_t out_len = 12345;
    const char *reason = NULL;
    int rc = tg_path_normalize(c->in, len, out, &out_len, &reason);
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
    ck_assert_int_eq(tg_path_normalize(in, sizeof(in), out, &out_len, &reason), -1);
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
    ck_assert_int_eq(tg_path_normalize("/abc;x", 4, out, &out_len, &reason), 0);
    ck_assert_uint_eq(out_len, 4);
    ck_assert_int_eq(memcmp(out, "/abc", 4), 0);
    ck_assert_int_eq(tg_path_normalize("/%41", 3, out, &out_len, &reason), -1);
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
    ck_assert_int_eq(tg_path_normalize(c->expect, len, out, &out_len, &reason), 0);
    ck_assert_uint_eq(out_len, len);
    ck_assert_int_eq(memcmp(out, c->expect, len), 0);
    free(out);
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
    ck_assert_int_eq(tg_path_normalize(in, 3 * n + 2, out, &out_len, &reason), 0);
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
