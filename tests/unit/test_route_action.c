/* Unit tests for src/route_action.c: redirect, respond, rewrite and
 * host_header read from a route (errors at FILE:LINE:COL), and what each does
 * to a request. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "request.h"
#include "route_action.h"
#include "template.h"

static char dir[] = "/tmp/tg_test_route_action_XXXXXX";
static char olddir[PATH_MAX];
static tg_config_t *cfg;
static tg_conf_err_t err;
static tg_arena_t *arena;
static tg_request_t req;

/* Routes start on line 6, the route's own keys on line 8. */
#define HEAD                                                                                  \
    "listen:\n  - address: \":18080\"\nupstreams:\n  u:\n    targets: [\"127.0.0.1:9001\"]\n" \
    "routes:\n  - name: r\n"

static void setup(void)
{
    strcpy(dir, "/tmp/tg_test_route_action_XXXXXX");
    ck_assert_ptr_nonnull(getcwd(olddir, sizeof(olddir)));
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chdir(dir), 0);
    arena = tg_arena_create(1024);
}

static void teardown(void)
{
    tg_config_unref(cfg);
    cfg = NULL;
    tg_arena_destroy(arena);
    unlink("t.yaml");
    ck_assert_int_eq(chdir(olddir), 0);
    rmdir(dir);
}

static int load(const char *yaml)
{
    tg_config_unref(cfg);
    cfg = NULL;
    FILE *f = fopen("t.yaml", "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    memset(&err, 0, sizeof(err));
    return tg_config_load("t.yaml", &cfg, &err);
}

/* Loads one route and makes req a request for path?query on it. */
static const tg_route_t *route(const char *yaml, const char *path, const char *query)
{
    ck_assert_msg(load(yaml) == 0, "load failed: %s", err.msg);
    memset(&req, 0, sizeof(req));
    req.arena = arena;
    req.route = &cfg->routes[0];
    req.client.path = tg_arena_strndup(arena, path, strlen(path));
    req.client.path_len = strlen(path);
    req.client.client_path = req.client.path;
    req.client.client_path_len = req.client.path_len;
    req.client.query = query;
    req.client.query_len = query ? strlen(query) : 0;
    req.client.host = "client.example";
    req.client.host_len = 14;
    req.client.from_xff = true;
    strcpy(req.client.ip, "192.0.2.1");
    return req.route;
}

START_TEST(test_config_errors)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"    upstream: u\n    redirect: { to: /x }\n",
         "t.yaml:9:15: a route has one of upstream, split, aggregate, redirect and respond: "
         "'upstream' "
         "and 'redirect' are both set"},
        {"    redirect: { to: /x }\n    respond: { status: 200 }\n",
         "t.yaml:9:14: a route has one of upstream, split, aggregate, redirect and respond: "
         "'redirect' "
         "and 'respond' are both set"},
        {"    match: { path: /a }\n", "t.yaml:7:5: missing required key 'upstream'"},
        {"    redirect: { to: /x, status: 300 }\n", "t.yaml:8:33: must be between 301 and 308"},
        {"    redirect: { to: /x, status: 304 }\n",
         "t.yaml:8:33: a redirect status is 301, 302, 303, 307 or 308"},
        {"    redirect: { status: 301 }\n",
         "t.yaml:8:15: missing required key 'to' (the redirect URL template)"},
        {"    redirect: { to: \"//evil.example{path_rest}\" }\n", NULL},
        {"    redirect: { to: /x, code: 301 }\n", NULL},
        {"    match: { path_regex: \"^/u/(?<id>[0-9]+)$\" }\n    upstream: u\n"
         "    rewrite: \"/users/{nope}\"\n",
         "t.yaml:10:14: unknown template variable {nope}: use jwt.<claim>, query.<name>, "
         "header.<Name>, path.<group>, var.<key>, client_ip, route, request_id, consumer, "
         "path_rest or a "
         "named group of the route's path_regex"},
        {"    match: { path_prefix: /a }\n    upstream: u\n    rewrite: \"/users/{id}\"\n", NULL},
        {"    upstream: u\n    strip_prefix: /a\n    rewrite: /b\n",
         "t.yaml:10:14: rewrite and strip_prefix both set the upstream path: use {path_rest} in "
         "the rewrite"},
        {"    respond: { status: 200 }\n    rewrite: /b\n",
         "t.yaml:9:14: rewrite needs an upstream route"},
        {"    respond: { status: 200 }\n    host_header: upstream\n",
         "t.yaml:9:18: host_header needs an upstream route"},
        {"    upstream: u\n    host_header: \"bad host\"\n",
         "t.yaml:9:18: host_header is pass, upstream or a valid host[:port], not 'bad host'"},
        {"    upstream: u\n    host_header: \"a.example:0\"\n", NULL},
        {"    respond: { status: 204, body: x }\n", "t.yaml:8:35: a 204 response has no body"},
        {"    respond: { status: 99 }\n", "t.yaml:8:24: status must be between 200 and 599"},
        {"    respond: { headers: { Content-Length: \"5\" } }\n",
         "t.yaml:8:27: 'Content-Length' is written by the gateway itself"},
        {"    respond: { headers: { Content-Type: x } }\n",
         "t.yaml:8:27: use content_type for Content-Type"},
        {"    respond: { headers: { X-A: \"{bogus}\" } }\n", NULL},
        {"    respond: { content_type: \"a\\nb\" }\n", NULL},
        {"    redirect: { to: /x }\n    websocket: true\n",
         "t.yaml:9:16: a websocket route needs an upstream"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), HEAD "%s", cases[i].yaml);
        ck_assert_msg(load(yaml) == -1, "loaded: %s", cases[i].yaml);
        if (cases[i].msg != NULL)
            ck_assert_str_eq(err.msg, cases[i].msg);
        else
            ck_assert_msg(strncmp(err.msg, "t.yaml:", 7) == 0, "%s", err.msg);
    }
}
END_TEST

static const tg_http_header_t *reply_header(const char *name)
{
    for (size_t i = 0; i < req.run.reply.nheaders; i++)
        if (strcmp(req.run.reply.headers[i].name, name) == 0)
            return &req.run.reply.headers[i];
    return NULL;
}

static void expect_location(const char *want)
{
    const tg_http_header_t *h = reply_header("Location");
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(h->value_len, strlen(want));
    ck_assert_mem_eq(h->value, want, h->value_len);
}

START_TEST(test_redirect)
{
    const char *y =
        HEAD "    match: { path_prefix: /docs/v1 }\n"
             "    redirect: { to: \"https://docs.example.com/v2{path_rest}\", status: 301 }\n";
    route(y, "/docs/v1/guide/a%20b", "x=1");
    tg_route_answer(&req);
    ck_assert(req.run.reply.set);
    ck_assert_int_eq(req.run.reply.status, 301);
    ck_assert_uint_eq(req.run.reply.len, 0);
    ck_assert_ptr_null(req.run.reply.content_type);
    /* nginx `return`: the query is not carried unless asked */
    expect_location("https://docs.example.com/v2/guide/a%20b");

    route(HEAD "    match: { path_prefix: /old }\n"
               "    redirect: { to: \"/new{path_rest}\", keep_query: true }\n",
          "/old/x", "a=1&b=%20");
    tg_route_answer(&req);
    ck_assert_int_eq(req.run.reply.status, 302);
    expect_location("/new/x?a=1&b=%20");
    route(HEAD "    match: { path_prefix: /old }\n"
               "    redirect: { to: \"/new?from=old\", keep_query: true }\n",
          "/old/x", "a=1");
    tg_route_answer(&req);
    expect_location("/new?from=old&a=1");
    route(HEAD "    match: { path_prefix: /old }\n"
               "    redirect: { to: \"/new/{query.id}\", status: 308 }\n",
          "/old", "id=..");
    tg_route_answer(&req);
    ck_assert_int_eq(req.run.reply.status, 400);
    ck_assert_ptr_null(reply_header("Location"));
}
END_TEST

START_TEST(test_respond)
{
    route(HEAD
          "    match: { path_regex: \"^/beta/(?<id>[a-z]+)$\" }\n"
          "    respond:\n      status: 503\n      body: '{\"error\":\"maintenance\"}'\n"
          "      content_type: application/json\n"
          "      headers: { Retry-After: \"600\", X-Id: \"{id}\", X-None: \"{header.X-None}\" }\n",
          "/beta/abc", NULL);
    tg_route_answer(&req);
    ck_assert_int_eq(req.run.reply.status, 503);
    ck_assert_str_eq(req.run.reply.content_type, "application/json");
    ck_assert_uint_eq(req.run.reply.len, 23);
    ck_assert_mem_eq(req.run.reply.body, "{\"error\":\"maintenance\"}", 23);
    ck_assert_uint_eq(req.run.reply.nheaders, 2); /* X-None could not be rendered: left out */
    ck_assert_str_eq(reply_header("Retry-After")->value, "600");
    ck_assert_str_eq(reply_header("X-Id")->value, "abc");
    /* a body without a type is text; no body, no type */
    route(HEAD "    respond: { body: hi }\n", "/", NULL);
    tg_route_answer(&req);
    ck_assert_int_eq(req.run.reply.status, 200);
    ck_assert_str_eq(req.run.reply.content_type, "text/plain; charset=utf-8");
    route(HEAD "    respond: { status: 204 }\n", "/", NULL);
    tg_route_answer(&req);
    ck_assert_ptr_null(req.run.reply.content_type);
    /* a later answer (a plugin's) replaces the route's headers too */
    route(HEAD "    respond: { headers: { X-A: a } }\n", "/", NULL);
    tg_route_answer(&req);
    ck_assert_uint_eq(req.run.reply.nheaders, 1);
    tg_request_respond(&req, 401, NULL, NULL, 0);
    ck_assert_uint_eq(req.run.reply.nheaders, 0);
}
END_TEST

static void expect_upstream(const char *path, const char *query)
{
    ck_assert_uint_eq(req.client.path_len, strlen(path));
    ck_assert_mem_eq(req.client.path, path, req.client.path_len);
    if (query == NULL) {
        ck_assert_ptr_null(req.client.query);
        return;
    }
    ck_assert_ptr_nonnull(req.client.query);
    ck_assert_uint_eq(req.client.query_len, strlen(query));
    ck_assert_mem_eq(req.client.query, query, req.client.query_len);
}

#define USERS                                                                         \
    HEAD "    match: { path_regex: \"^/api/v(?<ver>[0-9]+)/users/(?<id>[^/]+)$\" }\n" \
         "    upstream: u\n"

START_TEST(test_rewrite)
{
    /* nginx: the template's query, then the client's */
    route(USERS "    rewrite: \"/users/{id}?api={ver}\"\n", "/api/v2/users/42", "x=1");
    ck_assert_int_eq(tg_route_rewrite(&req), 0);
    expect_upstream("/users/42", "api=2&x=1");
    ck_assert_str_eq(req.client.client_path, "/api/v2/users/42");
    route(USERS "    rewrite: \"/users/{id}?api={ver}\"\n", "/api/v2/users/a%20b", NULL);
    ck_assert_int_eq(tg_route_rewrite(&req), 0);
    expect_upstream("/users/a%20b", "api=2");
    /* no query in the template: the client's stays */
    route(USERS "    rewrite: \"/users/{id}\"\n", "/api/v2/users/42", "x=1");
    ck_assert_int_eq(tg_route_rewrite(&req), 0);
    expect_upstream("/users/42", "x=1");
    /* a final "?": the client's query goes */
    route(USERS "    rewrite: \"/users/{id}?\"\n", "/api/v2/users/42", "x=1");
    ck_assert_int_eq(tg_route_rewrite(&req), 0);
    expect_upstream("/users/42", NULL);
    route(USERS "    rewrite: \"/users/{id}?api={ver}?\"\n", "/api/v2/users/42", "x=1");
    ck_assert_int_eq(tg_route_rewrite(&req), 0);
    expect_upstream("/users/42", "api=2");
    /* {path_rest} on a prefix route */
    route(HEAD
          "    match: { path_prefix: /v1 }\n    upstream: u\n    rewrite: \"/v2{path_rest}\"\n",
          "/v1/a/b", NULL);
    ck_assert_int_eq(tg_route_rewrite(&req), 0);
    expect_upstream("/v2/a/b", NULL);
    /* a refused value: 400, nothing changed */
    route(HEAD "    match: { path_prefix: /v1 }\n    upstream: u\n"
               "    rewrite: \"/u/{header.X-User}\"\n",
          "/v1", NULL);
    ck_assert_int_eq(tg_route_rewrite(&req), -1);
    ck_assert_int_eq(req.run.reply.status, 400);
    expect_upstream("/v1", NULL);
}
END_TEST

START_TEST(test_host_header)
{
    const tg_target_t *t;
    size_t len;
    route(HEAD "    upstream: u\n", "/", NULL);
    t = &cfg->upstreams[0].targets[0];
    ck_assert_str_eq(tg_route_host(&req, t, &len), "client.example"); /* pass: the default */
    req.client.host = NULL; /* an HTTP/1.0 client without Host: the target's */
    ck_assert_str_eq(tg_route_host(&req, t, &len), "127.0.0.1:9001");
    route(HEAD "    upstream: u\n    host_header: upstream\n", "/", NULL);
    t = &cfg->upstreams[0].targets[0]; /* each route() loads a new config */
    ck_assert_str_eq(tg_route_host(&req, t, &len), "127.0.0.1:9001");
    ck_assert_uint_eq(len, 14);
    route(HEAD "    upstream: u\n    host_header: \"api.internal:8443\"\n", "/", NULL);
    t = &cfg->upstreams[0].targets[0];
    ck_assert_str_eq(tg_route_host(&req, t, &len), "api.internal:8443");
    route(HEAD "    upstream: u\n    host_header: pass\n", "/", NULL);
    t = &cfg->upstreams[0].targets[0];
    ck_assert_str_eq(tg_route_host(&req, t, &len), "client.example");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route_action");
    TCase *tc = tcase_create("route_action");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_redirect);
    tcase_add_test(tc, test_respond);
    tcase_add_test(tc, test_rewrite);
    tcase_add_test(tc, test_host_header);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
