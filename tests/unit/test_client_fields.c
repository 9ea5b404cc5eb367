/* Unit tests for src/client_fields.c: which client fields go past this hop. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_fields.h"

#define MAXH 128

/* "Name: value\n..." -> fields pointing into text (which must outlive them). */
static size_t fields(char *text, tg_http_header_t *hs)
{
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line != NULL && n < MAXH; line = strtok(NULL, "\n")) {
        char *colon = strchr(line, ':');
        ck_assert_ptr_nonnull(colon);
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        hs[n++] = (tg_http_header_t){line, (size_t)(colon - line), v, strlen(v)};
    }
    return n;
}

/* The names left, joined by ','; or "400: reason". */
static char *run(const char *in, tg_underscores_t u, bool trusted)
{
    static char out[4096];
    char *text = strdup(in);
    tg_http_header_t hs[MAXH];
    size_t n = fields(text, hs);
    tg_client_fields_policy_t p = {.underscores = u, .trusted_peer = trusted};
    const char *reason = NULL;
    out[0] = '\0';
    if (tg_client_fields_filter(hs, &n, &p, NULL, &reason) < 0) {
        snprintf(out, sizeof(out), "400: %s", reason);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i)
                strcat(out, ",");
            strncat(out, hs[i].name, hs[i].name_len);
        }
    }
    free(text);
    return out;
}

#define DROP TG_UNDERSCORES_DROP
#define REJECT TG_UNDERSCORES_REJECT
#define ALLOW TG_UNDERSCORES_ALLOW

START_TEST(hop_by_hop)
{
    ck_assert_str_eq(run("Connection: keep-alive, X-Foo\nX-Foo: 1\nKeep-Alive: 3\nTE: trailers\n"
                         "Trailer: X\nTransfer-Encoding: chunked\nUpgrade: h2c\n"
                         "Proxy-Connection: x\nX-Stay: 1\n",
                         DROP, false),
                     "X-Stay");
    /* Connection options are case-insensitive and may come in several lines. */
    ck_assert_str_eq(
        run("Connection: x-foo\nX-FOO: 1\nconnection: ,X-Bar,\nx-bar: 2\nA: 1\n", DROP, false),
        "A");
    /* Options that name no field, or fields the gateway owns, are harmless. */
    ck_assert_str_eq(
        run("Connection: Host, Content-Length, \"x\", a b\nHost: h\nContent-Length: 0\n", DROP,
            false),
        "");
}
END_TEST

START_TEST(too_many_options)
{
    char in[2048] = "Connection: ";
    for (int i = 0; i < TG_MAX_CONN_OPTIONS; i++)
        strcat(in, "a,");
    strcat(in, "\nA: 1\n");
    ck_assert_str_eq(run(in, DROP, false), "");
    /* one more, in a second line */
    strcat(in, "Connection: b\n");
    ck_assert_str_eq(run(in, DROP, false), "400: too many Connection options");
}
END_TEST

static const char forwarding[] = "X-Forwarded-For: 1.2.3.4\nX-Forwarded-Proto: https\n"
                                 "X-Forwarded-Host: h\nX-Forwarded-Port: 443\n"
                                 "X-Forwarded-Prefix: /p\nForwarded: for=1.2.3.4\n"
                                 "X-Real-IP: 1.2.3.4\nx-real-ip: 5.6.7.8\nX-Other: 1\n";

START_TEST(forwarding_fields)
{
    ck_assert_str_eq(run(forwarding, DROP, false), "X-Other");
    ck_assert_str_eq(run(forwarding, DROP, true),
                     "X-Forwarded-For,X-Forwarded-Proto,X-Forwarded-Host,X-Forwarded-Port,"
                     "X-Forwarded-Prefix,Forwarded,X-Real-IP,x-real-ip,X-Other");
    /* A trusted peer's Connection still applies to them. */
    ck_assert_str_eq(run("Connection: X-Real-IP\nX-Real-IP: 1\nX-Forwarded-For: 2\n", DROP, true),
                     "X-Forwarded-For");
}
END_TEST

START_TEST(underscores)
{
    static const char in[] = "X_User_Id: admin\nX-User_Id: admin\nA: 1\nX_Custom: 1\n";
    ck_assert_str_eq(run(in, DROP, false), "A");
    ck_assert_str_eq(run(in, ALLOW, false), "X_User_Id,X-User_Id,A,X_Custom");
    ck_assert_str_eq(run(in, REJECT, false), "400: underscore in header field name");
    ck_assert_str_eq(run("A: 1\nB: 2\n", REJECT, false), "A,B");
    /* Whatever the policy, never a spelling of a field the gateway owns. */
    static const char owned[] = "X-Forwarded_For: 1\nX_Forwarded_Proto: https\nX_REAL_IP: 1\n"
                                "X_Request_Id: r\nContent_Length: 5\nTransfer_Encoding: chunked\n"
                                "Host_: h\nhost_x: h\nX_Forwarded_Prefix: /\nProxy_Connection: x\n"
                                "Keep_Alive: 1\nUp_grade: x\nForwarded: for=1\nOk_1: y\n";
    ck_assert_str_eq(run(owned, ALLOW, false), "Host_,host_x,Up_grade,Ok_1");
    ck_assert_str_eq(run(owned, ALLOW, true), "Host_,host_x,Up_grade,Forwarded,Ok_1");
    ck_assert_str_eq(run(owned, DROP, true), "Forwarded");
    /* Connection options match '_' spellings too. */
    ck_assert_str_eq(run("Connection: X-Foo\nX_Foo: 1\n", ALLOW, false), "");
}
END_TEST

START_TEST(track_index)
{
    char text[] = "Connection: a\na: 1\nHost: h\nB: 2\n";
    tg_http_header_t hs[MAXH];
    size_t n = fields(text, hs);
    tg_client_fields_policy_t p = {0};
    const char *reason;
    int host = 2;
    ck_assert_int_eq(tg_client_fields_filter(hs, &n, &p, &host, &reason), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(host, 0);
    ck_assert_int_eq(memcmp(hs[0].name, "Host", 4), 0);
    int gone = 0;
    n = 2;
    hs[0] = (tg_http_header_t){"TE", 2, "x", 1};
    ck_assert_int_eq(tg_client_fields_filter(hs, &n, &p, &gone, &reason), 0);
    ck_assert_int_eq(gone, -1);
}
END_TEST

START_TEST(folded_eq)
{
    ck_assert(tg_field_name_folded_eq("X_User_Id", 9, "x-user-id", 9));
    ck_assert(tg_field_name_folded_eq("X-USER-ID", 9, "x_user_id", 9));
    ck_assert(!tg_field_name_folded_eq("X_User_Id", 9, "x-user-i", 8));
    ck_assert(!tg_field_name_folded_eq("X.User.Id", 9, "x-user-id", 9));
    ck_assert(!tg_field_name_folded_eq("\xc0", 1, "\xe0", 1));
    ck_assert(tg_field_name_folded_eq("", 0, "", 0));
}
END_TEST

/* What plugins may not set (request.h): this hop's fields both ways, and the
 * ones the gateway writes itself in that direction. */
START_TEST(gateway_owned)
{
    static const char *const both[] = {
        "Connection",        "Keep-Alive", "Proxy-Connection", "TE",           "Trailer",
        "Transfer-Encoding", "Upgrade",    "Content-Length",   "X-Request-Id", "x_request_id"};
    for (size_t i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
        ck_assert_msg(tg_field_gateway_owned(both[i], strlen(both[i]), false), "%s", both[i]);
        ck_assert_msg(tg_field_gateway_owned(both[i], strlen(both[i]), true), "%s", both[i]);
    }
    static const char *const req_only[] = {"Host", "Expect", "X-Forwarded-For"};
    for (size_t i = 0; i < sizeof(req_only) / sizeof(req_only[0]); i++) {
        ck_assert(tg_field_gateway_owned(req_only[i], strlen(req_only[i]), false));
        ck_assert(!tg_field_gateway_owned(req_only[i], strlen(req_only[i]), true));
    }
    ck_assert(!tg_field_gateway_owned("X-Forwarded-Proto", 17, false));
    ck_assert(!tg_field_gateway_owned("X-User-Id", 9, false));
    ck_assert(!tg_field_gateway_owned("Content-Type", 12, true));
}
END_TEST

static Suite *client_fields_suite(void)
{
    Suite *s = suite_create("client_fields");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hop_by_hop);
    tcase_add_test(tc, too_many_options);
    tcase_add_test(tc, forwarding_fields);
    tcase_add_test(tc, underscores);
    tcase_add_test(tc, track_index);
    tcase_add_test(tc, folded_eq);
    tcase_add_test(tc, gateway_owned);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_fields_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
