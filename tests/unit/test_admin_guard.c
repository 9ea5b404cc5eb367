/*
 * Unit tests for src/admin_guard.c: which Host names the admin endpoint, the
 * admin token (syntax, Bearer parsing, digest comparison) and the content
 * types POST /reload accepts.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "admin_guard.h"

typedef struct {
    const char *host;
    bool ok;
} host_case_t;

/* conf_host "admin.internal", the connection arrived on 10.0.0.5. */
static const host_case_t host_cases[] = {
    {"localhost", true},
    {"LocalHost:9901", true},
    {"localhost:1", true},
    {"localhost:65535", true},
    {"127.0.0.1", true},
    {"127.0.0.1:9901", true},
    {"127.255.0.9:8080", true}, /* all of 127.0.0.0/8 */
    {"[::1]", true},
    {"[::1]:9901", true},
    {"[0:0:0:0:0:0:0:1]:9901", true},
    {"[::ffff:127.0.0.1]:9901", true},
    {"admin.internal:9901", true}, /* the configured name */
    {"ADMIN.Internal", true},
    {"10.0.0.5:9901", true}, /* the address the connection arrived on */
    {"10.0.0.5", true},
    {"[::ffff:10.0.0.5]:9901", true},
    /* DNS rebinding: a name the page's DNS controls */
    {"evil.example:9901", false},
    {"evil.example", false},
    {"127.0.0.1.evil.example:9901", false},
    {"localhost.evil.example", false},
    {"admin.internal.evil.example", false},
    {"localhost.", false},
    {"xlocalhost", false},
    {"user@localhost:9901", false},
    /* other addresses */
    {"10.0.0.6:9901", false},
    {"0.0.0.0:9901", false},
    {"[::]:9901", false},
    {"[::2]", false},
    {"128.0.0.1", false},
    {"127.1", false},      /* short forms are names to a resolver, not literals here */
    {"0x7f.0.0.1", false}, /* likewise */
    {"2130706433", false},
    /* syntax */
    {"", false},
    {":9901", false},
    {"localhost:", false},
    {"localhost:0", false},
    {"localhost:65536", false},
    {"localhost:099999", false},
    {"localhost:9901x", false},
    {"localhost:+80", false},
    {"localhost:9901:1", false},
    {" localhost", false},
    {"localhost ", false},
    {"::1", false},
    {"[::1", false},
    {"[::1]x", false},
    {"[::1]:", false},
    {"[localhost]", false},
    {"[127.0.0.1]", false},
    {"[fe80::1%25eth0]", false},
    {"[]", false},
    {"*", false},
};

START_TEST(test_host)
{
    const host_case_t *c = &host_cases[_i];
    struct sockaddr_in local = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.0.0.5", &local.sin_addr);
    bool got = tg_admin_host_ok(c->host, "admin.internal", (const struct sockaddr *)&local);
    ck_assert_msg(got == c->ok, "Host '%s': expected %s", c->host, c->ok ? "ok" : "refused");
}
END_TEST

START_TEST(test_host_edge)
{
    struct sockaddr_in6 local6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "fd00::5", &local6.sin6_addr);
    const struct sockaddr *l6 = (const struct sockaddr *)&local6;
    ck_assert(tg_admin_host_ok("[fd00::5]:9901", NULL, l6));
    ck_assert(tg_admin_host_ok("[FD00:0::5]", NULL, l6));
    ck_assert(!tg_admin_host_ok("[fd00::6]:9901", NULL, l6));
    ck_assert(!tg_admin_host_ok(NULL, NULL, l6));
    /* No local address known: loopback and names still work. */
    ck_assert(tg_admin_host_ok("127.0.0.1:1", NULL, NULL));
    ck_assert(!tg_admin_host_ok("10.0.0.5", NULL, NULL));
    /* Wildcard listeners add no name. */
    ck_assert(!tg_admin_host_ok("*:9901", "*", NULL));
    ck_assert(!tg_admin_host_ok("x", "", NULL));
}
END_TEST

START_TEST(test_conf_host)
{
    static const char *const cases[][2] = {
        {"127.0.0.1:9901", "127.0.0.1"},
        {"[::1]:9901", "::1"},
        {":9901", ""},
        {"*:9901", "*"},
        {"admin.internal:9901", "admin.internal"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        tg_admin_conf_host(cases[i][0], out, sizeof(out));
        ck_assert_str_eq(out, cases[i][1]);
    }
}
END_TEST

START_TEST(test_token_syntax)
{
    ck_assert(tg_admin_token_valid("0123456789abcdef"));
    ck_assert(tg_admin_token_valid("AZaz09-._~+/AZaz09"));
    ck_assert(tg_admin_token_valid("0123456789abcde=="));
    ck_assert(!tg_admin_token_valid("0123456789abcde")); /* 15 */
    ck_assert(!tg_admin_token_valid(""));
    ck_assert(!tg_admin_token_valid("================"));
    ck_assert(!tg_admin_token_valid("0123456789 abcdef"));
    ck_assert(!tg_admin_token_valid("0123456789abcdef\t"));
    ck_assert(!tg_admin_token_valid("01234567=89abcdef"));
    ck_assert(!tg_admin_token_valid("0123456789abcdef\"x"));
}
END_TEST

START_TEST(test_bearer)
{
    unsigned char d[TG_ADMIN_DIGEST_LEN];
    const char *tok = "s3cr3t-admin-token";
    tg_admin_token_digest(tok, strlen(tok), d);
    ck_assert(tg_admin_bearer_ok("Bearer s3cr3t-admin-token", d));
    ck_assert(tg_admin_bearer_ok("bearer s3cr3t-admin-token", d));
    ck_assert(tg_admin_bearer_ok("BEARER   s3cr3t-admin-token \t", d));
    ck_assert(!tg_admin_bearer_ok("Bearer s3cr3t-admin-toke", d));
    ck_assert(!tg_admin_bearer_ok("Bearer s3cr3t-admin-tokenx", d));
    ck_assert(!tg_admin_bearer_ok("Bearer S3cr3t-admin-token", d));
    ck_assert(!tg_admin_bearer_ok("Bearers3cr3t-admin-token", d));
    ck_assert(!tg_admin_bearer_ok("Bearer\ts3cr3t-admin-token", d));
    ck_assert(!tg_admin_bearer_ok("Basic s3cr3t-admin-token", d));
    ck_assert(!tg_admin_bearer_ok(" Bearer s3cr3t-admin-token", d));
    ck_assert(!tg_admin_bearer_ok("Bearer", d));
    ck_assert(!tg_admin_bearer_ok("Bearer ", d));
    ck_assert(!tg_admin_bearer_ok("Bearer  ", d));
    ck_assert(!tg_admin_bearer_ok("", d));
    ck_assert(!tg_admin_bearer_ok(NULL, d));
    /* The digest of nothing is not a wildcard. */
    unsigned char empty[TG_ADMIN_DIGEST_LEN];
    tg_admin_token_digest("", 0, empty);
    ck_assert(!tg_admin_bearer_ok("Bearer ", empty));
}
END_TEST

START_TEST(test_reload_type)
{
    ck_assert(tg_admin_reload_type_ok(NULL, 0));
    ck_assert(!tg_admin_reload_type_ok(NULL, 1));
    ck_assert(tg_admin_reload_type_ok("application/json", 0));
    ck_assert(tg_admin_reload_type_ok("application/json", 2));
    ck_assert(tg_admin_reload_type_ok("Application/JSON; charset=utf-8", 2));
    ck_assert(tg_admin_reload_type_ok(" application/json ;x=y", 2));
    /* the CORS "simple" types a page sends cross-site without a preflight */
    ck_assert(!tg_admin_reload_type_ok("application/x-www-form-urlencoded", 0));
    ck_assert(!tg_admin_reload_type_ok("multipart/form-data; boundary=x", 0));
    ck_assert(!tg_admin_reload_type_ok("text/plain", 0));
    ck_assert(!tg_admin_reload_type_ok("TEXT/PLAIN;charset=utf-8", 3));
    /* anything else */
    ck_assert(!tg_admin_reload_type_ok("", 0));
    ck_assert(!tg_admin_reload_type_ok("application/jsonx", 0));
    ck_assert(!tg_admin_reload_type_ok("application/json-seq", 0));
    ck_assert(!tg_admin_reload_type_ok("application/jso", 0));
    ck_assert(!tg_admin_reload_type_ok("text/json", 0));
}
END_TEST

static Suite *admin_guard_suite(void)
{
    Suite *s = suite_create("admin_guard");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_host, 0, (int)(sizeof(host_cases) / sizeof(host_cases[0])));
    tcase_add_test(tc, test_host_edge);
    tcase_add_test(tc, test_conf_host);
    tcase_add_test(tc, test_token_syntax);
    tcase_add_test(tc, test_bearer);
    tcase_add_test(tc, test_reload_type);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(admin_guard_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
