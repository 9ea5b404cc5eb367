/* Unit tests for plugins/cors: configured origins (parse errors,
 * normalization), matching browsers' Origin values, hostile ones included,
 * the plugin's config rules and its preflight method and header checks. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conf_node.h"

#include "plugins/cors/cors.c"
#include "plugins/cors/origin.c"

static tg_conf_doc_t *doc;
static tg_conf_err_t err;

static void teardown(void)
{
    tg_conf_doc_free(doc);
    doc = NULL;
}

static bool matches(const char *entry, const char *origin)
{
    tg_cors_origin_t e;
    const char *why;
    ck_assert_msg(tg_cors_origin_parse(entry, &e, &why) == 0, "%s: %s", entry, why);
    bool m = tg_cors_origin_match(&e, origin, strlen(origin));
    tg_cors_origin_free(&e);
    return m;
}

static void parse_error(const char *entry, const char *want)
{
    tg_cors_origin_t e;
    const char *why = "";
    ck_assert_msg(tg_cors_origin_parse(entry, &e, &why) == -1, "'%s' parsed", entry);
    ck_assert_msg(strstr(why, want) != NULL, "%s: got '%s', want '%s'", entry, why, want);
    tg_cors_origin_free(&e);
}

START_TEST(exact_origins)
{
    ck_assert(matches("https://app.example.com", "https://app.example.com"));
    /* browsers send lower case; anything else compares case-insensitively */
    ck_assert(matches("https://App.Example.COM", "https://app.example.com"));
    ck_assert(matches("https://app.example.com", "HTTPS://APP.EXAMPLE.COM"));
    /* the default port is dropped from the entry, as browsers drop it */
    ck_assert(matches("https://app.example.com:443", "https://app.example.com"));
    ck_assert(matches("http://app.example.com:80", "http://app.example.com"));
    ck_assert(!matches("http://app.example.com:443", "http://app.example.com"));
    ck_assert(matches("http://127.0.0.1:8080", "http://127.0.0.1:8080"));
    ck_assert(matches("http://[::1]:8080", "http://[::1]:8080"));
    static const char *const no[] = {
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://app.example.com.",
        "https://app.example.com/",
        "https://app.example.co",
        "https://app.example.comm",
        "https://xapp.example.com",
        "https://app.example.com.evil.com",
        "https://app.example.com:443",
        "null",
        "",
        "https://app.example.com ",
        " https://app.example.com",
        "https://app.example.com\t",
        "https://user@app.example.com",
        "https://app.example.com, https://evil.com",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!matches("https://app.example.com", no[i]), "'%s' matched", no[i]);
    /* NUL inside the header value: never equal */
    tg_cors_origin_t e;
    const char *why;
    ck_assert_int_eq(tg_cors_origin_parse("https://a.example.com", &e, &why), 0);
    ck_assert(!tg_cors_origin_match(&e, "https://a.example.com\0", 22));
    ck_assert(!tg_cors_origin_match(&e, "https://a\0example.com", 21));
    tg_cors_origin_free(&e);
}
END_TEST

START_TEST(wildcard_origins)
{
    const char *w = "https://*.example.com";
    ck_assert(matches(w, "https://a.example.com"));
    ck_assert(matches(w, "https://a.b.example.com")); /* any depth, as Kong and Envoy */
    ck_assert(matches(w, "https://A-1.Example.Com"));
    ck_assert(matches("https://*.example.com:8443", "https://a.example.com:8443"));
    ck_assert(matches("https://*.example.com:443", "https://a.example.com"));
    static const char *const no[] = {
        "https://example.com",  /* the parent itself */
        "https://.example.com", /* empty label */
        "https://a..example.com",
        "https://evilexample.com",
        "https://example.com.evil.com",
        "https://a.example.com.evil.com",
        "https://a.example.com.",
        "http://a.example.com",       /* scheme */
        "https://a.example.com:8443", /* port */
        "https://a.example.com:443",
        "https://a.example.com:",
        "https://a_b.example.com",
        "https://a%2e.example.com",
        "https://a.example.com/",
        "https://a.example.com/x.example.com",
        "https://evil.com#.example.com",
        "https://evil.com?.example.com",
        "https://evil.com\\.example.com",
        "https://evil.com@a.example.com",
        "https://a.example.com@evil.com",
        "https://[::1].example.com",
        "https://*.example.com",
        "null",
        "https://a.example.com:99999",
        "https://a.example.com:0443",
        "https:/a.example.com",
        "//a.example.com",
        "https://a b.example.com",
        "https://a.example.com\r\nX: y",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!matches(w, no[i]), "'%s' matched", no[i]);
    ck_assert(!matches("https://*.example.com:8443", "https://a.example.com"));
}
END_TEST

START_TEST(null_origin)
{
    ck_assert(matches("null", "null"));
    ck_assert(!matches("null", "NULL"));
    ck_assert(!matches("null", "null "));
    ck_assert(!matches("https://app.example.com", "null"));
    ck_assert(!matches("https://*.example.com", "null"));
}
END_TEST

START_TEST(origin_parse_errors)
{
    parse_error("https://app.example.com/", "an origin has no path");
    parse_error("https://app.example.com/x", "an origin has no path");
    parse_error("app.example.com", "invalid origin");
    parse_error("https://", "invalid origin");
    parse_error("https://app.example.com:", "invalid origin");
    parse_error("https://app.example.com:65536", "invalid origin");
    parse_error("https://user@app.example.com", "invalid origin");
    parse_error("1https://a.com", "invalid origin");
    parse_error("https://a.*.example.com", "one leading label");
    parse_error("https://*example.com", "one leading label");
    parse_error("*.example.com", "one leading label");
    parse_error("https://*.*.example.com", "one leading label");
    parse_error("https://**.example.com", "one leading label");
    parse_error("https://*.com", "at least two labels");
    parse_error("https://*.1.2.3", "not IP addresses");
    parse_error("https://*.example.com/", "invalid wildcard origin");
    parse_error("https://*.[::1]", "invalid wildcard origin");
    parse_error("NULL", "invalid origin");
    char big[TG_CORS_ORIGIN_MAX + 16];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "https://", 8);
    big[sizeof(big) - 1] = '\0';
    parse_error(big, "too long");
}
END_TEST

/* ---- the plugin's config and preflight checks ---- */

static int create_from(const char *yaml, cors_t **out)
{
    tg_conf_doc_free(doc);
    doc = NULL;
    ck_assert_int_eq(tg_conf_doc_parse("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
    const tg_conf_node_t *node = tg_conf_map_get(tg_conf_doc_root(doc), "config");
    tg_plugin_env_t env = {0};
    memset(&err, 0, sizeof(err));
    void *inst = NULL;
    int rc = tg_plugin.create(node, &env, &inst, &err);
    *out = inst;
    return rc;
}

static void config_error(const char *yaml, const char *want)
{
    cors_t *c = NULL;
    ck_assert_int_eq(create_from(yaml, &c), -1);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s: got '%s', want '%s'", yaml, err.msg, want);
}

START_TEST(config_built)
{
    cors_t *c;
    ck_assert_int_eq(create_from("config:\n  origins: [\"https://a.example.com\", "
                                 "\"https://*.example.org\", \"null\"]\n"
                                 "  methods: [get, Put, PATCH, purge]\n"
                                 "  headers: [Authorization, X-Trace]\n"
                                 "  expose_headers: [RateLimit-Remaining, X-Id]\n"
                                 "  credentials: true\n  max_age: 10m\n",
                                 &c),
                     0);
    ck_assert_uint_eq(c->n_origins, 3);
    /* the six methods Fetch normalizes are upper-cased; others kept as written */
    ck_assert_str_eq(c->allow_methods, "GET, PUT, PATCH, purge");
    ck_assert_str_eq(c->allow_headers, "Authorization, X-Trace");
    ck_assert_str_eq(c->expose_text, "RateLimit-Remaining, X-Id");
    ck_assert_str_eq(c->max_age, "600");
    ck_assert(c->credentials);
    ck_assert(origin_allowed(c, "https://x.example.org", 21));
    ck_assert(origin_allowed(c, "null", 4));
    ck_assert(!origin_allowed(c, "https://example.org", 19));
    ck_assert(method_allowed(c, "PUT", 3));
    ck_assert(method_allowed(c, "purge", 5));
    ck_assert(!method_allowed(c, "PURGE", 5)); /* methods are case-sensitive */
    ck_assert(!method_allowed(c, "DELETE", 6));
    ck_assert(method_allowed(c, "POST", 4)); /* CORS-safelisted: the browser allows it anyway */
    ck_assert(method_allowed(c, "HEAD", 4));
    ck_assert(!method_allowed(c, "put", 3));
    ck_assert(headers_allowed(c, "authorization,x-trace", 21));
    ck_assert(headers_allowed(c, " X-TRACE , ,authorization ", 26));
    ck_assert(headers_allowed(c, "", 0));
    ck_assert(!headers_allowed(c, "authorization,x-other", 21));
    ck_assert(!headers_allowed(c, "x-trace2", 8));
    ck_assert(!headers_allowed(c, "x trace", 7));
    tg_plugin.destroy(c);

    ck_assert_int_eq(create_from("config:\n  origins: \"*\"\n  headers: \"*\"\n", &c), 0);
    ck_assert(c->any_origin);
    ck_assert(c->any_header);
    ck_assert_ptr_null(c->allow_headers);
    ck_assert_str_eq(c->allow_methods, "GET, HEAD, POST, PUT, PATCH, DELETE"); /* default */
    ck_assert_str_eq(c->max_age, "");
    ck_assert(headers_allowed(c, "x-anything,y", 12));
    ck_assert(!headers_allowed(c, "x(y)", 4));
    ck_assert(origin_allowed(c, "https://whoever.test", 20));
    tg_plugin.destroy(c);
}
END_TEST

START_TEST(config_errors)
{
    config_error("config: {}\n", "missing required key 'origins'");
    config_error("config:\n  origins: []\n", "t.yaml:2:12:");
    config_error("config:\n  origins: [\"https://a.com\", \"https://a.com/\"]\n",
                 "t.yaml:2:30: an origin has no path: scheme://host[:port], e.g. "
                 "https://app.example.com: \"https://a.com/\"");
    config_error("config:\n  origins: [\"*\", \"https://a.com\"]\n",
                 "t.yaml:2:12: \"*\" allows every origin");
    config_error("config:\n  origins: [\"*\"]\n  credentials: true\n",
                 "t.yaml:2:12: \"*\" with credentials: true");
    config_error("config:\n  origins: [\"https://a.com\"]\n  methods: [\"GE T\"]\n",
                 "t.yaml:3:13: \"GE T\" is not a method");
    config_error("config:\n  origins: [\"https://a.com\"]\n  headers: [\"X-A\", \"X:B\"]\n",
                 "t.yaml:3:20: \"X:B\" is not a header name");
    config_error("config:\n  origins: [\"https://a.com\"]\n  headers: [\"*\", X-A]\n",
                 "\"*\" allows every request header");
    config_error("config:\n  origins: [\"https://a.com\"]\n  expose_headers: [\"a b\"]\n",
                 "t.yaml:3:20: \"a b\" is not a header name");
    config_error("config:\n  origins: [\"https://a.com\"]\n  max_age: 600\n", "t.yaml:3:12:");
    config_error("config:\n  origins: [\"https://a.com\"]\n  max_age: 25h\n", "above 24h");
    config_error("config:\n  origins: [\"https://a.com\"]\n  orgins: x\n", "unknown key 'orgins'");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cors");
    TCase *t = tcase_create("cors");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_add_test(t, exact_origins);
    tcase_add_test(t, wildcard_origins);
    tcase_add_test(t, null_origin);
    tcase_add_test(t, origin_parse_errors);
    tcase_add_test(t, config_built);
    tcase_add_test(t, config_errors);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
