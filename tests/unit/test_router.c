#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

/* tg_conf_error lives in src/conf_node.c; this weak copy (same format) only
 * keeps the suite linkable while that file is absent. */
__attribute__((weak)) int tg_conf_error(tg_conf_err_t *err, const tg_conf_node_t *node,
                                        const char *fmt, ...)
{
    int n = snprintf(err->msg, sizeof(err->msg), "%s:%u:%u: ", node->file, node->line, node->col);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

#define MAXR 64

static tg_route_t routes[MAXR];
static tg_config_t cfg;
static pcre2_match_data *md;

static void setup(void)
{
    memset(routes, 0, sizeof(routes));
    memset(&cfg, 0, sizeof(cfg));
    cfg.routes = routes;
    md = pcre2_match_data_create(8, NULL);
}

static void teardown(void)
{
    tg_router_free(cfg.router);
    for (size_t i = 0; i < cfg.nroutes; i++)
        pcre2_code_free(routes[i].regex);
    pcre2_match_data_free(md);
}

static pcre2_code *compile(const char *re, int jit)
{
    int errc;
    PCRE2_SIZE erroff;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &errc, &erroff, NULL);
    ck_assert_ptr_nonnull(code);
    if (jit)
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
}

/* host: NULL, "example.com" or "*.example.com"; path: the exact path, prefix
 * or regex depending on kind. */
static tg_route_t *add(const char *name, const char *host, tg_path_match_t kind, const char *path)
{
    ck_assert_uint_lt(cfg.nroutes, MAXR);
    tg_route_t *r = &routes[cfg.nroutes];
    r->index = cfg.nroutes++;
    r->name = (char *)name;
    if (host && host[0] == '*') {
        r->host = (char *)host + 1;
        r->host_wildcard = true;
    } else {
        r->host = (char *)host;
    }
    r->path_kind = kind;
    if (kind == TG_PATH_REGEX) {
        r->regex = compile(path, 1);
    } else if (path) {
        r->path = (char *)path;
        r->path_len = strlen(path);
    }
    return r;
}

static void build_ok(void)
{
    tg_conf_err_t err = {{0}};
    int rc = tg_router_build(&cfg, &err);
    ck_assert_msg(rc == 0, "build failed: %s", err.msg);
    ck_assert_ptr_nonnull(cfg.router);
}

static const char *match_full(const char *method, const char *host, const char *path,
                              const tg_http_header_t *h, size_t nh)
{
    tg_route_query_t q = {
        .host = host,
        .host_len = host ? strlen(host) : 0,
        .path = path,
        .path_len = strlen(path),
        .method = method,
        .method_len = strlen(method),
        .method_bit = tg_router_method_bit(method, strlen(method)),
        .headers = h,
        .nheaders = nh,
    };
    const tg_route_t *r = tg_router_match(cfg.router, &q, md);
    return r ? r->name : "(none)";
}

static const char *match(const char *method, const char *host, const char *path)
{
    return match_full(method, host, path, NULL, 0);
}

#define HDR(n, v)                          \
    {                                      \
        n, sizeof(n) - 1, v, sizeof(v) - 1 \
    }

START_TEST(test_method_bit)
{
    static const struct {
        const char *m;
        uint32_t bit;
    } t[] = {
        {"GET", TG_METHOD_GET},         {"HEAD", TG_METHOD_HEAD},
        {"POST", TG_METHOD_POST},       {"PUT", TG_METHOD_PUT},
        {"DELETE", TG_METHOD_DELETE},   {"PATCH", TG_METHOD_PATCH},
        {"OPTIONS", TG_METHOD_OPTIONS}, {"TRACE", TG_METHOD_TRACE},
        {"CONNECT", TG_METHOD_CONNECT}, {"get", TG_METHOD_OTHER},
        {"Get", TG_METHOD_OTHER},       {"GETS", TG_METHOD_OTHER},
        {"GE", TG_METHOD_OTHER},        {"PURGE", TG_METHOD_OTHER},
        {"", TG_METHOD_OTHER},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_msg(tg_router_method_bit(t[i].m, strlen(t[i].m)) == t[i].bit, "%s", t[i].m);
    /* len is honoured: "GETX" cut to 3 is GET */
    ck_assert_uint_eq(tg_router_method_bit("GETX", 3), TG_METHOD_GET);
}
END_TEST

START_TEST(test_path_precedence)
{
    /* File order is the reverse of precedence on purpose. */
    add("any", NULL, TG_PATH_ANY, NULL);
    add("re_ap", NULL, TG_PATH_REGEX, "^/ap");
    add("re_api", NULL, TG_PATH_REGEX, "^/api/");
    add("pre", NULL, TG_PATH_PREFIX, "/api");
    add("ex", NULL, TG_PATH_EXACT, "/api/users");
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/api/users"), "ex");
    ck_assert_str_eq(match("GET", NULL, "/api/users/1"), "pre");
    ck_assert_str_eq(match("GET", NULL, "/api"), "pre");
    ck_assert_str_eq(match("GET", NULL, "/apix"), "re_ap"); /* prefix is segment-aware */
    ck_assert_str_eq(match("GET", NULL, "/other"), "any");
}
END_TEST

START_TEST(test_regex_file_order)
{
    add("r1", NULL, TG_PATH_REGEX, "^/v[0-9]+/");
    add("r2", NULL, TG_PATH_REGEX, "^/v1/");
    add("r3", NULL, TG_PATH_REGEX, "x$");
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/v1/a"), "r1");
    ck_assert_str_eq(match("GET", NULL, "/v/x"), "r3");
    ck_assert_str_eq(match("GET", NULL, "/v/y"), "(none)");
}
END_TEST

START_TEST(test_regex_without_jit)
{
    tg_route_t *r = add("plain", NULL, TG_PATH_ANY, NULL);
    r->path_kind = TG_PATH_REGEX;
    r->regex = compile("^/items/[0-9]+$", 0);
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/items/42"), "plain");
    ck_assert_str_eq(match("GET", NULL, "/items/4x"), "(none)");
}
END_TEST

START_TEST(test_regex_needs_match_data)
{
    add("re", NULL, TG_PATH_REGEX, "^/");
    add("any", NULL, TG_PATH_ANY, NULL);
    build_ok();
    tg_route_query_t q = {
        .path = "/x", .path_len = 2, .method = "GET", .method_len = 3, .method_bit = TG_METHOD_GET};
    ck_assert_str_eq(tg_router_match(cfg.router, &q, NULL)->name, "any");
    ck_assert_str_eq(tg_router_match(cfg.router, &q, md)->name, "re");
}
END_TEST

START_TEST(test_longest_prefix)
{
    add("root", NULL, TG_PATH_PREFIX, "/");
    add("api", NULL, TG_PATH_PREFIX, "/api");
    add("v1", NULL, TG_PATH_PREFIX, "/api/v1");
    add("v1slash", NULL, TG_PATH_PREFIX, "/api/v1/");
    add("v1b", NULL, TG_PATH_PREFIX, "/api/v1"); /* same length: file order */
    routes[4].methods = TG_METHOD_POST;
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/api/v1/x"), "v1slash");
    ck_assert_str_eq(match("GET", NULL, "/api/v1/"), "v1slash");
    ck_assert_str_eq(match("GET", NULL, "/api/v1"), "v1");
    ck_assert_str_eq(match("GET", NULL, "/api/v2"), "api");
    ck_assert_str_eq(match("GET", NULL, "/api/v10"), "api");
    ck_assert_str_eq(match("GET", NULL, "/apiv1"), "root");
    ck_assert_str_eq(match("GET", NULL, "/"), "root");
    ck_assert_str_eq(match("GET", NULL, "/other/x"), "root");
}
END_TEST

START_TEST(test_prefix_segments)
{
    add("users", NULL, TG_PATH_PREFIX, "/api/users");
    add("slash", NULL, TG_PATH_PREFIX, "/static/");
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/api/users"), "users");
    ck_assert_str_eq(match("GET", NULL, "/api/users/"), "users");
    ck_assert_str_eq(match("GET", NULL, "/api/users/7"), "users");
    ck_assert_str_eq(match("GET", NULL, "/api/usersX"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/api/user"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/API/users"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/static/"), "slash");
    ck_assert_str_eq(match("GET", NULL, "/static/app.js"), "slash");
    ck_assert_str_eq(match("GET", NULL, "/static"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/staticX"), "(none)");
}
END_TEST

START_TEST(test_exact_bytes)
{
    add("a", NULL, TG_PATH_EXACT, "/a");
    add("a%41", NULL, TG_PATH_EXACT, "/a%41");
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/a"), "a");
    ck_assert_str_eq(match("GET", NULL, "/a/"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/A"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/a%41"), "a%41");
    ck_assert_str_eq(match("GET", NULL, "/a%4"), "(none)");
}
END_TEST

/* Enough exact paths, added out of order, to exercise the binary search. */
START_TEST(test_many_exact)
{
    static char paths[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/p%d", (i * 17) % 40);
        add(paths[i], NULL, TG_PATH_EXACT, paths[i]);
    }
    build_ok();
    for (int i = 0; i < 40; i++) {
        char want[16];
        snprintf(want, sizeof(want), "/p%d", i);
        ck_assert_str_eq(match("GET", NULL, want), want);
    }
    ck_assert_str_eq(match("GET", NULL, "/p40"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/p"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/q"), "(none)");
}
END_TEST

START_TEST(test_hosts)
{
    add("anyhost", NULL, TG_PATH_EXACT, "/x"); /* more specific path, but host-less */
    add("wild", "*.example.com", TG_PATH_PREFIX, "/");
    add("exact", "api.example.com", TG_PATH_PREFIX, "/");
    add("wild_eu", "*.eu.example.com", TG_PATH_PREFIX, "/");
    add("v6", "[::1]", TG_PATH_PREFIX, "/");
    add("dotted", "other.test.", TG_PATH_PREFIX, "/");
    build_ok();
    ck_assert_str_eq(match("GET", "api.example.com", "/x"), "exact");
    ck_assert_str_eq(match("GET", "API.Example.COM", "/x"), "exact");
    ck_assert_str_eq(match("GET", "api.example.com:8443", "/x"), "exact");
    ck_assert_str_eq(match("GET", "Api.Example.Com.:80", "/x"), "exact");
    ck_assert_str_eq(match("GET", "api.example.com.", "/x"), "exact");
    ck_assert_str_eq(match("GET", "x.example.com", "/x"), "wild");
    ck_assert_str_eq(match("GET", "X.EXAMPLE.COM:1", "/x"), "wild");
    ck_assert_str_eq(match("GET", "a.b.example.com", "/x"), "wild");
    ck_assert_str_eq(match("GET", "a.eu.example.com", "/x"), "wild_eu");
    ck_assert_str_eq(match("GET", "a.b.eu.example.com", "/x"), "wild_eu");
    ck_assert_str_eq(match("GET", "eu.example.com", "/x"), "wild");
    ck_assert_str_eq(match("GET", "example.com", "/x"), "anyhost");
    ck_assert_str_eq(match("GET", ".example.com", "/x"), "anyhost");
    ck_assert_str_eq(match("GET", "xexample.com", "/x"), "anyhost");
    ck_assert_str_eq(match("GET", "example.com.evil", "/x"), "anyhost");
    ck_assert_str_eq(match("GET", "api.example.co", "/x"), "anyhost");
    ck_assert_str_eq(match("GET", NULL, "/x"), "anyhost");
    ck_assert_str_eq(match("GET", "", "/x"), "anyhost");
    ck_assert_str_eq(match("GET", ":80", "/x"), "anyhost");
    ck_assert_str_eq(match("GET", NULL, "/y"), "(none)");
    ck_assert_str_eq(match("GET", "[::1]:8080", "/y"), "v6");
    ck_assert_str_eq(match("GET", "[::1]", "/y"), "v6");
    ck_assert_str_eq(match("GET", "[::2]:8080", "/y"), "(none)");
    ck_assert_str_eq(match("GET", "other.test", "/y"), "dotted");
    ck_assert_str_eq(match("GET", "OTHER.test.:9", "/y"), "dotted");
}
END_TEST

/* A host group without a match falls through: exact -> wildcard -> host-less. */
START_TEST(test_host_fall_through)
{
    add("exact_post", "api.example.com", TG_PATH_PREFIX, "/")->methods = TG_METHOD_POST;
    add("exact_admin", "api.example.com", TG_PATH_PREFIX, "/admin");
    add("wild_put", "*.example.com", TG_PATH_ANY, NULL)->methods = TG_METHOD_PUT;
    add("wild_eu_put", "*.eu.example.com", TG_PATH_ANY, NULL)->methods = TG_METHOD_PUT;
    add("wild_eu_del", "*.eu.example.com", TG_PATH_ANY, NULL)->methods = TG_METHOD_DELETE;
    add("anyhost", NULL, TG_PATH_PREFIX, "/");
    build_ok();
    ck_assert_str_eq(match("POST", "api.example.com", "/a"), "exact_post");
    ck_assert_str_eq(match("GET", "api.example.com", "/admin/x"), "exact_admin");
    ck_assert_str_eq(match("PUT", "api.example.com", "/a"), "wild_put");
    ck_assert_str_eq(match("GET", "api.example.com", "/a"), "anyhost");
    ck_assert_str_eq(match("PUT", "a.eu.example.com", "/a"), "wild_eu_put");
    ck_assert_str_eq(match("DELETE", "a.eu.example.com", "/a"), "wild_eu_del");
    ck_assert_str_eq(match("PATCH", "a.eu.example.com", "/a"), "anyhost");
    /* a shorter wildcard is still tried after the longest one */
    ck_assert_str_eq(match("PUT", "a.b.eu.example.com", "/a"), "wild_eu_put");
    routes[3].methods = TG_METHOD_GET; /* only wild_put remains for PUT */
    build_ok();
    ck_assert_str_eq(match("PUT", "a.eu.example.com", "/a"), "wild_put");
}
END_TEST

START_TEST(test_method_fall_through)
{
    add("ex_post", NULL, TG_PATH_EXACT, "/users")->methods = TG_METHOD_POST;
    add("pre_get", NULL, TG_PATH_PREFIX, "/users")->methods = TG_METHOD_GET | TG_METHOD_HEAD;
    add("re_put", NULL, TG_PATH_REGEX, "^/users")->methods = TG_METHOD_PUT;
    add("any_del", NULL, TG_PATH_ANY, NULL)->methods = TG_METHOD_DELETE;
    build_ok();
    ck_assert_str_eq(match("POST", NULL, "/users"), "ex_post");
    ck_assert_str_eq(match("GET", NULL, "/users"), "pre_get");
    ck_assert_str_eq(match("HEAD", NULL, "/users"), "pre_get");
    ck_assert_str_eq(match("PUT", NULL, "/users"), "re_put");
    ck_assert_str_eq(match("DELETE", NULL, "/users"), "any_del");
    ck_assert_str_eq(match("PATCH", NULL, "/users"), "(none)");
    ck_assert_str_eq(match("POST", NULL, "/users/1"), "(none)");
    ck_assert_str_eq(match("get", NULL, "/users"), "(none)");
}
END_TEST

START_TEST(test_extension_methods)
{
    static char *purge[] = {"PURGE", "LINK", NULL};
    tg_route_t *r = add("purge", NULL, TG_PATH_PREFIX, "/");
    r->methods = TG_METHOD_OTHER | TG_METHOD_GET;
    r->method_names = purge;
    add("rest", NULL, TG_PATH_ANY, NULL);
    build_ok();
    ck_assert_str_eq(match("PURGE", NULL, "/a"), "purge");
    ck_assert_str_eq(match("LINK", NULL, "/a"), "purge");
    ck_assert_str_eq(match("GET", NULL, "/a"), "purge");
    ck_assert_str_eq(match("purge", NULL, "/a"), "rest");
    ck_assert_str_eq(match("PURGEX", NULL, "/a"), "rest");
    ck_assert_str_eq(match("PURG", NULL, "/a"), "rest");
    ck_assert_str_eq(match("POST", NULL, "/a"), "rest");
    ck_assert_str_eq(match("UNLINK", NULL, "/a"), "rest");
}
END_TEST

START_TEST(test_headers)
{
    static tg_header_match_t v2[] = {{"x-version", "2"}};
    static tg_header_match_t both[] = {{"x-version", "2"}, {"x-tenant", "Acme"}};
    tg_route_t *r = add("both", NULL, TG_PATH_PREFIX, "/");
    r->headers = both;
    r->nheaders = 2;
    r = add("v2", NULL, TG_PATH_PREFIX, "/");
    r->headers = v2;
    r->nheaders = 1;
    add("default", NULL, TG_PATH_PREFIX, "/");
    build_ok();
    tg_http_header_t h1[] = {HDR("Host", "x"), HDR("X-Version", "2")};
    ck_assert_str_eq(match_full("GET", NULL, "/", h1, 2), "v2");
    tg_http_header_t h2[] = {HDR("x-tenant", "Acme"), HDR("X-VERSION", "2")};
    ck_assert_str_eq(match_full("GET", NULL, "/", h2, 2), "both");
    tg_http_header_t h3[] = {HDR("x-tenant", "acme"), HDR("x-version", "2")};
    ck_assert_str_eq(match_full("GET", NULL, "/", h3, 2), "v2"); /* values are case-sensitive */
    tg_http_header_t h4[] = {HDR("x-version", "20"), HDR("x-version", "")};
    ck_assert_str_eq(match_full("GET", NULL, "/", h4, 2), "default");
    tg_http_header_t h5[] = {HDR("x-version", "1"), HDR("x-version", "2")};
    ck_assert_str_eq(match_full("GET", NULL, "/", h5, 2), "v2"); /* any of repeated headers */
    tg_http_header_t h6[] = {HDR("x-versio", "2"), HDR("x-version2", "2"), HDR("x-tenant", "Acme")};
    ck_assert_str_eq(match_full("GET", NULL, "/", h6, 3), "default");
    ck_assert_str_eq(match_full("GET", NULL, "/", NULL, 0), "default");
}
END_TEST

START_TEST(test_no_match)
{
    add("a", "a.test", TG_PATH_EXACT, "/a");
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/a"), "(none)");
    ck_assert_str_eq(match("GET", "b.test", "/a"), "(none)");
    ck_assert_str_eq(match("GET", "a.test", "/b"), "(none)");
    ck_assert_str_eq(match("GET", "a.test", "/a"), "a");
}
END_TEST

START_TEST(test_empty_router)
{
    build_ok();
    ck_assert_str_eq(match("GET", "x", "/"), "(none)");
    ck_assert_str_eq(match("GET", NULL, "/"), "(none)");
    tg_router_free(NULL);
}
END_TEST

static const char *build_err(tg_conf_err_t *err)
{
    memset(err, 0, sizeof(*err));
    ck_assert_int_eq(tg_router_build(&cfg, err), -1);
    return err->msg;
}

START_TEST(test_duplicate_exact)
{
    add("first", "a.test", TG_PATH_EXACT, "/x")->methods = TG_METHOD_GET;
    add("other_host", "b.test", TG_PATH_EXACT, "/x")->methods = TG_METHOD_GET;
    add("other_method", "a.test", TG_PATH_EXACT, "/x")->methods = TG_METHOD_POST;
    build_ok();
    add("second", "A.test", TG_PATH_EXACT, "/x")->methods = TG_METHOD_GET;
    tg_conf_err_t err;
    ck_assert_str_eq(build_err(&err), "route 'second': same host, path, methods and headers as "
                                      "route 'first': it can never match");
    /* the previous router is kept on failure */
    ck_assert_str_eq(match("GET", "a.test", "/x"), "first");
}
END_TEST

START_TEST(test_duplicate_at_node)
{
    static tg_header_match_t h1[] = {{"x-a", "1"}, {"x-b", "2"}};
    static tg_header_match_t h2[] = {{"X-B", "2"}, {"x-a", "1"}};
    tg_conf_node_t node = {.type = TG_CONF_MAP, .file = "gw.yaml", .line = 12, .col = 5};
    tg_route_t *r = add("one", NULL, TG_PATH_PREFIX, "/p");
    r->headers = h1;
    r->nheaders = 2;
    r = add("two", NULL, TG_PATH_PREFIX, "/p");
    r->headers = h2;
    r->nheaders = 2;
    r->node = &node;
    tg_conf_err_t err;
    ck_assert_str_eq(build_err(&err), "gw.yaml:12:5: route 'two': same host, path, methods and "
                                      "headers as route 'one': it can never match");
    ck_assert_ptr_null(cfg.router);
}
END_TEST

START_TEST(test_duplicate_method_names)
{
    static char *n1[] = {"PURGE", "LINK", NULL};
    static char *n2[] = {"LINK", "PURGE", NULL};
    static char *n3[] = {"LINK", NULL};
    tg_route_t *r = add("one", NULL, TG_PATH_EXACT, "/p");
    r->methods = TG_METHOD_OTHER;
    r->method_names = n1;
    r = add("three", NULL, TG_PATH_EXACT, "/p");
    r->methods = TG_METHOD_OTHER;
    r->method_names = n3;
    build_ok();
    r = add("two", NULL, TG_PATH_EXACT, "/p");
    r->methods = TG_METHOD_OTHER;
    r->method_names = n2;
    tg_conf_err_t err;
    ck_assert_ptr_nonnull(strstr(build_err(&err), "route 'two': same host"));
}
END_TEST

START_TEST(test_duplicate_any_path)
{
    add("one", "*.a.test", TG_PATH_ANY, NULL);
    add("two", "*.b.test", TG_PATH_ANY, NULL);
    add("three", "a.test", TG_PATH_ANY, NULL);
    build_ok();
    add("four", "*.A.TEST", TG_PATH_ANY, NULL);
    tg_conf_err_t err;
    ck_assert_ptr_nonnull(strstr(build_err(&err), "route 'four': same host"));
}
END_TEST

START_TEST(test_invalid_routes)
{
    tg_conf_err_t err;
    tg_route_t *r = add("nopath", NULL, TG_PATH_EXACT, NULL);
    ck_assert_str_eq(build_err(&err), "route 'nopath': path must start with '/'");
    r->path = "api";
    r->path_len = 3;
    ck_assert_str_eq(build_err(&err), "route 'nopath': path must start with '/'");
    r->path = "/api";
    r->path_len = 4;
    r->path_kind = TG_PATH_REGEX;
    ck_assert_str_eq(build_err(&err), "route 'nopath': path_regex is not compiled");
    r->path_kind = TG_PATH_EXACT;
    r->host = ".";
    r->host_wildcard = true;
    ck_assert_str_eq(build_err(&err), "route 'nopath': invalid wildcard host");
    r->host = "";
    r->host_wildcard = false;
    ck_assert_str_eq(build_err(&err), "route 'nopath': empty host");
    r->host = NULL;
    build_ok();
}
END_TEST

/* Rebuilding replaces (and frees) the previous router. */
START_TEST(test_rebuild)
{
    add("a", NULL, TG_PATH_PREFIX, "/");
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/z"), "a");
    add("b", NULL, TG_PATH_PREFIX, "/z");
    build_ok();
    ck_assert_str_eq(match("GET", NULL, "/z"), "b");
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_method_bit);
    tcase_add_test(tc, test_path_precedence);
    tcase_add_test(tc, test_regex_file_order);
    tcase_add_test(tc, test_regex_without_jit);
    tcase_add_test(tc, test_regex_needs_match_data);
    tcase_add_test(tc, test_longest_prefix);
    tcase_add_test(tc, test_prefix_segments);
    tcase_add_test(tc, test_exact_bytes);
    tcase_add_test(tc, test_many_exact);
    tcase_add_test(tc, test_hosts);
    tcase_add_test(tc, test_host_fall_through);
    tcase_add_test(tc, test_method_fall_through);
    tcase_add_test(tc, test_extension_methods);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_no_match);
    tcase_add_test(tc, test_empty_router);
    tcase_add_test(tc, test_duplicate_exact);
    tcase_add_test(tc, test_duplicate_at_node);
    tcase_add_test(tc, test_duplicate_method_names);
    tcase_add_test(tc, test_duplicate_any_path);
    tcase_add_test(tc, test_invalid_routes);
    tcase_add_test(tc, test_rebuild);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(router_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
