/*
 * jwt plugin: claim checks against a fixed clock (RFC 7519 4.1).
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt/jwt_claims.c"

#define NOW 1700000000.0

static char *issuers[] = {"https://a.example", "https://b.example"};
static char *audiences[] = {"users-api", "admin-api"};
static char *required[] = {"sub", "exp"};
static char *scopes[] = {"users:read", "users:write"};

static const tg_jwt_policy_t policy = {
    .issuers = issuers,
    .n_issuers = 2,
    .audiences = audiences,
    .n_audiences = 2,
    .required = required,
    .n_required = 2,
    .scopes = scopes,
    .n_scopes = 2,
    .leeway = 30,
};

/* A payload from JSON text with NOW-relative "exp"/"nbf"/"iat" given as
 * offsets: check("{...}", now). */
static tg_jwt_reason_t check(const char *text, double now)
{
    json_t *c = json_loads(text, 0, NULL);
    ck_assert_msg(c != NULL, "bad test JSON %s", text);
    tg_jwt_reason_t why = tg_jwt_check_claims(&policy, c, now);
    json_decref(c);
    return why;
}

#define GOOD_TAIL \
    "\"iss\":\"https://b.example\",\"aud\":\"users-api\",\"scope\":\"a users:read users:write\"}"

START_TEST(accepts_valid)
{
    ck_assert_int_eq(check("{\"sub\":\"x\",\"exp\":1700000100," GOOD_TAIL, NOW), TG_JWT_OK);
    /* Fractional NumericDate (RFC 7519 2) and aud as an array. */
    ck_assert_int_eq(
        check("{\"sub\":\"x\",\"exp\":1700000000.5,\"iss\":\"https://a.example\","
              "\"aud\":[\"other\",\"admin-api\"],\"scp\":[\"users:write\",\"users:read\"]}",
              NOW),
        TG_JWT_OK);
}
END_TEST

START_TEST(exp_boundaries)
{
    /* Expired once now >= exp + leeway. */
    ck_assert_int_eq(check("{\"sub\":\"x\",\"exp\":1699999971," GOOD_TAIL, NOW), TG_JWT_OK);
    ck_assert_int_eq(check("{\"sub\":\"x\",\"exp\":1699999970," GOOD_TAIL, NOW), TG_JWT_EXPIRED);
    ck_assert_int_eq(check("{\"sub\":\"x\",\"exp\":1000," GOOD_TAIL, NOW), TG_JWT_EXPIRED);
    ck_assert_int_eq(check("{\"sub\":\"x\",\"exp\":\"1800000000\"," GOOD_TAIL, NOW),
                     TG_JWT_MALFORMED);
    ck_assert_int_eq(check("{\"sub\":\"x\",\"exp\":null," GOOD_TAIL, NOW), TG_JWT_MALFORMED);
    ck_assert_int_eq(check("{\"sub\":\"x\"," GOOD_TAIL, NOW), TG_JWT_MISSING_CLAIM);
}
END_TEST

START_TEST(nbf_iat)
{
    const char *head = "{\"sub\":\"x\",\"exp\":1800000000,";
    char buf[400];
    snprintf(buf, sizeof(buf), "%s\"nbf\":1700000030," GOOD_TAIL, head);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_OK);
    snprintf(buf, sizeof(buf), "%s\"nbf\":1700000031," GOOD_TAIL, head);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_NOT_YET_VALID);
    ck_assert_int_eq(check(buf, NOW + 1), TG_JWT_OK);
    snprintf(buf, sizeof(buf), "%s\"iat\":1700000030," GOOD_TAIL, head);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_OK);
    snprintf(buf, sizeof(buf), "%s\"iat\":1700000031," GOOD_TAIL, head);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_ISSUED_IN_FUTURE);
    snprintf(buf, sizeof(buf), "%s\"iat\":true," GOOD_TAIL, head);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_MALFORMED);
    snprintf(buf, sizeof(buf), "%s\"nbf\":[1]," GOOD_TAIL, head);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_MALFORMED);
}
END_TEST

START_TEST(times_without_leeway)
{
    json_t *c = json_pack("{s:i,s:i}", "exp", 100, "nbf", 50);
    ck_assert_int_eq(tg_jwt_check_times(c, 99.999, 0), TG_JWT_OK);
    ck_assert_int_eq(tg_jwt_check_times(c, 100, 0), TG_JWT_EXPIRED);
    ck_assert_int_eq(tg_jwt_check_times(c, 50, 0), TG_JWT_OK);
    ck_assert_int_eq(tg_jwt_check_times(c, 49.5, 0), TG_JWT_NOT_YET_VALID);
    ck_assert_int_eq(tg_jwt_check_times(c, 49.5, 1), TG_JWT_OK);
    json_decref(c);
    c = json_object(); /* no time claims at all: nothing to check here */
    ck_assert_int_eq(tg_jwt_check_times(c, 1e12, 0), TG_JWT_OK);
    json_decref(c);
}
END_TEST

START_TEST(issuer)
{
    const char *t = "{\"sub\":\"x\",\"exp\":1800000000,\"aud\":\"users-api\",\"scope\":\"users:"
                    "read users:write\"";
    char buf[400];
    snprintf(buf, sizeof(buf), "%s}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_WRONG_ISSUER);
    snprintf(buf, sizeof(buf), "%s,\"iss\":\"https://c.example\"}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_WRONG_ISSUER);
    snprintf(buf, sizeof(buf), "%s,\"iss\":\"https://a.example/\"}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_WRONG_ISSUER);
    snprintf(buf, sizeof(buf), "%s,\"iss\":[\"https://a.example\"]}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_WRONG_ISSUER);
}
END_TEST

START_TEST(audience)
{
    const char *t = "{\"sub\":\"x\",\"exp\":1800000000,\"iss\":\"https://"
                    "a.example\",\"scope\":\"users:read users:write\"";
    char buf[400];
    snprintf(buf, sizeof(buf), "%s}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_WRONG_AUDIENCE);
    snprintf(buf, sizeof(buf), "%s,\"aud\":\"users\"}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_WRONG_AUDIENCE);
    snprintf(buf, sizeof(buf), "%s,\"aud\":[]}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_WRONG_AUDIENCE);
    snprintf(buf, sizeof(buf), "%s,\"aud\":[1,\"x\",{\"a\":\"users-api\"}]}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_WRONG_AUDIENCE);
    snprintf(buf, sizeof(buf), "%s,\"aud\":[1,\"users-api\"]}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_OK);
}
END_TEST

START_TEST(scopes_)
{
    const char *t =
        "{\"sub\":\"x\",\"exp\":1800000000,\"iss\":\"https://a.example\",\"aud\":\"users-api\"";
    char buf[400];
    snprintf(buf, sizeof(buf), "%s}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_INSUFFICIENT_SCOPE);
    snprintf(buf, sizeof(buf), "%s,\"scope\":\"users:read\"}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_INSUFFICIENT_SCOPE);
    snprintf(buf, sizeof(buf), "%s,\"scope\":\"users:read users:writer\"}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_INSUFFICIENT_SCOPE);
    snprintf(buf, sizeof(buf), "%s,\"scope\":\"users:readusers:write\"}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_INSUFFICIENT_SCOPE);
    snprintf(buf, sizeof(buf), "%s,\"scope\":\"  users:write   users:read \"}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_OK);
    snprintf(buf, sizeof(buf), "%s,\"scope\":\"users:read\",\"scp\":[\"users:write\"]}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_OK);
    snprintf(buf, sizeof(buf), "%s,\"scp\":\"users:write users:read\"}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_OK);
    snprintf(buf, sizeof(buf), "%s,\"scope\":[\"users:write\",\"users:read\"]}", t);
    ck_assert_int_eq(check(buf, NOW), TG_JWT_INSUFFICIENT_SCOPE);
}
END_TEST

START_TEST(empty_policy)
{
    tg_jwt_policy_t none = {0};
    json_t *c = json_object();
    ck_assert_int_eq(tg_jwt_check_claims(&none, c, NOW), TG_JWT_OK);
    json_decref(c);
}
END_TEST

START_TEST(order_of_checks)
{
    /* Missing claim first, then time, then issuer, audience, scope. */
    ck_assert_int_eq(check("{\"exp\":1}", NOW), TG_JWT_MISSING_CLAIM);
    ck_assert_int_eq(check("{\"sub\":\"x\",\"exp\":1}", NOW), TG_JWT_EXPIRED);
    ck_assert_int_eq(check("{\"sub\":\"x\",\"exp\":1800000000}", NOW), TG_JWT_WRONG_ISSUER);
}
END_TEST

START_TEST(policy_free)
{
    tg_jwt_policy_t p = {0};
    p.scopes = calloc(2, sizeof(char *));
    p.scopes[0] = strdup("a");
    p.scopes[1] = strdup("b");
    p.n_scopes = 2;
    tg_jwt_policy_free(&p);
    ck_assert_ptr_null(p.scopes);
    ck_assert_int_eq(p.n_scopes, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jwt_claims");
    TCase *t = tcase_create("claims");
    tcase_add_test(t, accepts_valid);
    tcase_add_test(t, exp_boundaries);
    tcase_add_test(t, nbf_iat);
    tcase_add_test(t, times_without_leeway);
    tcase_add_test(t, issuer);
    tcase_add_test(t, audience);
    tcase_add_test(t, scopes_);
    tcase_add_test(t, empty_policy);
    tcase_add_test(t, order_of_checks);
    tcase_add_test(t, policy_free);
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
