/* Unit tests for src/template.c: compiling (every variable, every config error
 * at FILE:LINE:COL, groups and {path_rest} checked against the route) and
 * rendering hostile values in each mode (include/tollgate/template.h). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "request.h"
#include "template.h"

static tg_arena_t *arena;
static tg_request_t req;
static tg_http_header_t hs[4];
static tg_conf_err_t err;
static tg_route_t prefix_route, slash_route, regex_route, exact_route, any_route;

static void setup(void)
{
    arena = tg_arena_create(1024);
    memset(&req, 0, sizeof(req));
    req.arena = arena;
    req.client.from_xff = true; /* tg_request_client_ip() reads client_ip, not a connection */
    strcpy(req.client.ip, "203.0.113.9");
    strcpy(req.request_id, "0123456789abcdef");
    req.request_id_len = 16;
    req.client.http.headers = hs;
    req.client.headers_cap = 4;
    prefix_route = (tg_route_t){
        .name = "docs", .path_kind = TG_PATH_PREFIX, .path = "/docs/v1", .path_len = 8};
    slash_route =
        (tg_route_t){.name = "slash", .path_kind = TG_PATH_PREFIX, .path = "/docs/", .path_len = 6};
    exact_route = (tg_route_t){.name = "exact", .path_kind = TG_PATH_EXACT, .path = "/x"};
    any_route = (tg_route_t){.name = "any"};
    int code;
    PCRE2_SIZE off;
    regex_route = (tg_route_t){.name = "users", .path_kind = TG_PATH_REGEX};
    regex_route.regex = pcre2_compile((PCRE2_SPTR) "^/api/v(?<ver>[0-9]+)/users/(?<id>[^/]+)$",
                                      PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    ck_assert_ptr_nonnull(regex_route.regex);
}

static void teardown(void)
{
    pcre2_code_free(regex_route.regex);
    tg_arena_destroy(arena);
}

static tg_conf_node_t node(const char *s)
{
    return (tg_conf_node_t){.type = TG_CONF_SCALAR,
                            .file = "t.yaml",
                            .line = 3,
                            .col = 7,
                            .value = s,
                            .len = strlen(s)};
}

static void request(const tg_route_t *route, const char *path, const char *query)
{
    req.route = route;
    req.client.path = tg_arena_strndup(arena, path, strlen(path));
    req.client.path_len = strlen(path);
    req.client.client_path = req.client.path;
    req.client.client_path_len = req.client.path_len;
    req.client.query = query;
    req.client.query_len = query ? strlen(query) : 0;
}

static void header(const char *name, const char *value, size_t len)
{
    hs[req.client.http.num_headers++] = (tg_http_header_t){name, strlen(name), value, len};
}

/* Compiles for route (NULL: as a plugin does); 0 or -1 with err filled. */
static int compile(const char *text, tg_template_mode_t mode, const tg_route_t *route)
{
    tg_conf_node_t n = node(text);
    memset(&err, 0, sizeof(err));
    tg_template_t *t = tg_template_compile_route(&n, mode, route, &err);
    tg_template_free(t);
    return t ? 0 : -1;
}

/* Renders text for the current request; *out is a NUL-terminated copy. */
static int render(const char *text, tg_template_mode_t mode, const char **out)
{
    tg_conf_node_t n = node(text);
    memset(&err, 0, sizeof(err));
    tg_template_t *t = tg_template_compile_route(&n, mode, req.route, &err);
    ck_assert_msg(t != NULL, "compile %s: %s", text, err.msg);
    const char *v;
    size_t len;
    int rc = tg_template_render(&req, t, &v, &len);
    ck_assert_uint_eq(len, strlen(v));
    *out = tg_arena_strndup(arena, v, len); /* a literal's text dies with t */
    tg_template_free(t);
    return rc;
}

static void expect(const char *text, tg_template_mode_t mode, const char *want)
{
    const char *out;
    ck_assert_msg(render(text, mode, &out) == 0, "%s refused: %s", text, out);
    ck_assert_str_eq(out, want);
}

static void refused(const char *text, tg_template_mode_t mode, const char *why)
{
    const char *out;
    ck_assert_msg(render(text, mode, &out) == -1, "%s rendered %s", text, out);
    ck_assert_str_eq(out, why);
}

START_TEST(test_compile_errors)
{
    static const struct {
        const char *text;
        tg_template_mode_t mode;
        const tg_route_t *route;
        const char *msg;
    } cases[] = {
        {"{bogus}", TG_TEMPLATE_HEADER, NULL,
         "t.yaml:3:7: unknown template variable {bogus}: use jwt.<claim>, query.<name>, "
         "header.<Name>, path.<group>, var.<key>, client_ip, route, request_id, consumer, "
         "path_rest or a "
         "named group of the route's path_regex"},
        {"{id}", TG_TEMPLATE_HEADER, NULL, NULL}, /* bare: no route, no group */
        {"{nope}", TG_TEMPLATE_PATH, &regex_route, NULL},
        {"{jwt.}", TG_TEMPLATE_HEADER, NULL, NULL},
        {"{}", TG_TEMPLATE_HEADER, NULL, NULL},
        {"{path.id}", TG_TEMPLATE_HEADER, NULL,
         "t.yaml:3:7: {path.id}: path groups exist only in route templates (aggregate, rewrite, "
         "redirect, respond)"},
        {"/{path.id}", TG_TEMPLATE_PATH, &prefix_route,
         "t.yaml:3:7: {path.id} needs a path_regex with a (?<id>...) group"},
        {"/{path.nope}", TG_TEMPLATE_PATH, &regex_route,
         "t.yaml:3:7: path_regex has no group named 'nope'"},
        {"/a{path_rest}", TG_TEMPLATE_PATH, &regex_route,
         "t.yaml:3:7: {path_rest} needs a path or path_prefix route: on a path_regex route, use "
         "its named groups"},
        {"/a{path_rest}", TG_TEMPLATE_PATH, NULL,
         "t.yaml:3:7: {path_rest} in a path exists only in route templates"},
        {"/v2/{path_rest}", TG_TEMPLATE_PATH, &prefix_route,
         "t.yaml:3:7: {path_rest} starts with '/' on this route: drop the '/' before it"},
        {"/{path_rest}", TG_TEMPLATE_URL, &any_route,
         "t.yaml:3:7: {path_rest} starts with '/' on this route: drop the '/' before it"},
        {"x{jwt.sub}", TG_TEMPLATE_PATH, NULL, "t.yaml:3:7: a path template must start with \"/\""},
        {"{jwt.sub}", TG_TEMPLATE_PATH, NULL, "t.yaml:3:7: a path template must start with \"/\""},
        {"/a b", TG_TEMPLATE_PATH, NULL,
         "t.yaml:3:7: template text holds a space, a control character or '#'"},
        {"/a#{jwt.sub}", TG_TEMPLATE_PATH, NULL,
         "t.yaml:3:7: template text holds a space, a control character or '#'"},
        {"a\r\nX-Evil: 1", TG_TEMPLATE_HEADER, NULL,
         "t.yaml:3:7: template text is not a valid header value (control characters)"},
        {"{jwt.sub", TG_TEMPLATE_HEADER, NULL, "t.yaml:3:7: unterminated '{' in template"},
        {"{header.Bad Name}", TG_TEMPLATE_HEADER, NULL,
         "t.yaml:3:7: invalid header name in {header.Bad Name}"},
        {"//evil.example/{jwt.sub}", TG_TEMPLATE_URL, NULL,
         "t.yaml:3:7: a redirect URL must start with \"/\" (not \"//\" nor \"/\\\"), "
         "\"http://\" or \"https://\""},
        {"/\\evil.example/", TG_TEMPLATE_URL, NULL, NULL},
        {"javascript:alert(1)", TG_TEMPLATE_URL, NULL, NULL},
        {"https://{header.Host}/x", TG_TEMPLATE_URL, NULL,
         "t.yaml:3:7: invalid host in redirect URL"},
        {"https://a.example{jwt.sub}", TG_TEMPLATE_URL, NULL,
         "t.yaml:3:7: a template variable cannot be part of the URL's host: put a '/' after the "
         "host"},
        {"https://a.example{path_rest}", TG_TEMPLATE_URL, &slash_route,
         "t.yaml:3:7: {path_rest} does not start with '/' on this route (its prefix ends with "
         "'/'): write \"/{path_rest}\""},
        {"https://user@a.example/", TG_TEMPLATE_URL, NULL,
         "t.yaml:3:7: invalid host in redirect URL"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(compile(cases[i].text, cases[i].mode, cases[i].route) == -1, "%s",
                      cases[i].text);
        if (cases[i].msg != NULL)
            ck_assert_str_eq(err.msg, cases[i].msg);
        else
            ck_assert_msg(strstr(err.msg, "t.yaml:3:7: ") == err.msg, "%s", err.msg);
    }
    /* and what compiles */
    ck_assert_int_eq(compile("{id}-{path.ver}", TG_TEMPLATE_HEADER, &regex_route), 0);
    ck_assert_int_eq(compile("/x/{path_rest}", TG_TEMPLATE_PATH, &slash_route), 0);
    ck_assert_int_eq(compile("https://a.example{path_rest}", TG_TEMPLATE_URL, &prefix_route), 0);
    ck_assert_int_eq(compile("https://a.example{path_rest}", TG_TEMPLATE_URL, &exact_route), 0);
    ck_assert_int_eq(compile("HTTPS://a.example:8443/{jwt.sub}", TG_TEMPLATE_URL, NULL), 0);
    ck_assert_int_eq(compile("{path_rest}", TG_TEMPLATE_HEADER, NULL), 0);
    ck_assert_int_eq(compile("", TG_TEMPLATE_HEADER, NULL), 0);
}
END_TEST

START_TEST(test_parts)
{
    tg_conf_node_t n = node("/u/{jwt.sub}/{id}?q={query.q}&r={route}");
    tg_template_t *t = tg_template_compile_route(&n, TG_TEMPLATE_PATH, &regex_route, &err);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->nparts, 8);
    ck_assert_int_eq(t->parts[3].kind, TG_TPL_PATH);
    ck_assert_int_eq(t->parts[3].group, 2);
    ck_assert_str_eq(t->parts[3].spelled, "id");
    ck_assert(t->parts[3].in_path);
    ck_assert_int_eq(t->parts[5].kind, TG_TPL_QUERY);
    ck_assert(!t->parts[5].in_path);
    ck_assert_int_eq(t->parts[7].kind, TG_TPL_ROUTE);
    ck_assert(t->has_group && t->has_query && !tg_template_is_literal(t));
    tg_template_free(t);
    n = node("tollgate");
    t = tg_template_compile(&n, TG_TEMPLATE_HEADER, &err);
    ck_assert(tg_template_is_literal(t));
    tg_template_free(t);
}
END_TEST

START_TEST(test_header_mode_values)
{
    request(&prefix_route, "/docs/v1/a%20b", "u=a%20b&p=a+b&crlf=a%0D%0AX-Evil:%201&nul=a%00");
    header("X-In", "v1, v2", 6);
    header("X-Obs", "caf\xc3\xa9", 5);
    tg_request_set_claim(&req, "sub", "alice", 5);
    tg_request_set_claim(&req, "evil", "a\r\nX-Evil: 1", 12);
    tg_request_set_claim(&req, "nul", "a\0b", 3);
    tg_request_set_claim(&req, "tab", "a\tb", 3);
    tg_request_var_set_str(&req, "k", "v", 1);
    expect("user={jwt.sub}", TG_TEMPLATE_HEADER, "user=alice");
    expect("{jwt.tab}", TG_TEMPLATE_HEADER, "a\tb");
    expect("{header.x-in}|{header.X-Obs}", TG_TEMPLATE_HEADER, "v1, v2|caf\xc3\xa9");
    expect("{query.u}/{query.p}", TG_TEMPLATE_HEADER, "a b/a b");
    expect("{client_ip} {route} {request_id} {var.k}", TG_TEMPLATE_HEADER,
           "203.0.113.9 docs 0123456789abcdef v");
    expect("{path_rest}", TG_TEMPLATE_HEADER, "/a%20b");
    /* a value that would end the field, or a NUL, never reaches a header */
    refused("x {jwt.evil}", TG_TEMPLATE_HEADER,
            "template value {jwt.evil} is not a valid header value");
    refused("{jwt.nul}", TG_TEMPLATE_HEADER,
            "template value {jwt.nul} is not a valid header value");
    refused("{query.crlf}", TG_TEMPLATE_HEADER,
            "template value {query.crlf} is not a valid header value");
    refused("{query.nul}", TG_TEMPLATE_HEADER,
            "template value {query.nul} is not a valid header value");
    /* missing: no half-built value */
    refused("Bearer {jwt.none}", TG_TEMPLATE_HEADER, "template value {jwt.none} is missing");
    refused("{header.X-None}", TG_TEMPLATE_HEADER, "template value {header.X-None} is missing");
    expect("tollgate", TG_TEMPLATE_HEADER, "tollgate");
}
END_TEST

START_TEST(test_path_mode_values)
{
    request(&any_route, "/x", "q=a%26b%3Dc&enc=%252F&dots=%2e%2E&sp=a+b");
    tg_request_set_claim(&req, "sub", "../admin", 8);
    tg_request_set_claim(&req, "dot", ".", 1);
    tg_request_set_claim(&req, "dots", "..", 2);
    tg_request_set_claim(&req, "empty", "", 0);
    tg_request_set_claim(&req, "qs", "a?b#c&d", 7);
    tg_request_set_claim(&req, "crlf", "a\r\nb", 4);
    /* no value adds a segment, a parameter or a fragment */
    expect("/users/{jwt.sub}", TG_TEMPLATE_PATH, "/users/..%2Fadmin");
    expect("/users/{jwt.qs}", TG_TEMPLATE_PATH, "/users/a%3Fb%23c%26d");
    expect("/users/{jwt.crlf}", TG_TEMPLATE_PATH, "/users/a%0D%0Ab");
    expect("/s?q={query.q}", TG_TEMPLATE_PATH, "/s?q=a%26b%3Dc");
    expect("/s?q={query.sp}", TG_TEMPLATE_PATH, "/s?q=a%20b");
    /* decoded once, encoded once: %252F stays %252F, never "/" */
    expect("/s/{query.enc}", TG_TEMPLATE_PATH, "/s/%252F");
    /* the path part refuses what would be a segment of its own making */
    refused("/u/{jwt.dots}", TG_TEMPLATE_PATH, "template value {jwt.dots} is '..'");
    refused("/u/{query.dots}/p", TG_TEMPLATE_PATH, "template value {query.dots} is '..'");
    refused("/u/{jwt.dot}", TG_TEMPLATE_PATH, "template value {jwt.dot} is '.'");
    refused("/u/.{jwt.dot}", TG_TEMPLATE_PATH, "template value {jwt.dot} is '.'");
    refused("/u/{jwt.empty}", TG_TEMPLATE_PATH, "template value {jwt.empty} is empty");
    refused("/u/{jwt.none}", TG_TEMPLATE_PATH, "template value {jwt.none} is missing");
    /* the query part takes them (encoded), a missing one as empty */
    expect("/u?a={jwt.dots}&b={jwt.none}&c={jwt.empty}", TG_TEMPLATE_PATH, "/u?a=..&b=&c=");
    expect("/u{path_rest}", TG_TEMPLATE_PATH, "/u/x"); /* no path condition: the whole path */
}
END_TEST

START_TEST(test_path_groups_and_rest)
{
    request(&regex_route, "/api/v2/users/a%20b", NULL);
    expect("/users/{id}?api={ver}", TG_TEMPLATE_PATH, "/users/a%20b?api=2");
    expect("/users/{path.id}", TG_TEMPLATE_PATH, "/users/a%20b");
    /* groups read the client's path even after a plugin changed the upstream one */
    req.client.path = "/elsewhere";
    req.client.path_len = 10;
    expect("{id}", TG_TEMPLATE_HEADER, "a b");
    /* encoded_slashes: keep lets "%2F" into a segment: decoded, then encoded again */
    request(&regex_route, "/api/v2/users/a%2Fb", NULL);
    expect("/users/{id}", TG_TEMPLATE_PATH, "/users/a%2Fb");
    /* a path the regex does not match (the route was chosen otherwise): missing */
    request(&regex_route, "/nope", NULL);
    refused("/users/{id}", TG_TEMPLATE_PATH, "template value {id} is missing");

    request(&prefix_route, "/docs/v1/guide/a%20b", "x=1");
    expect("/v2{path_rest}", TG_TEMPLATE_PATH, "/v2/guide/a%20b");
    expect("https://docs.example.com/v2{path_rest}", TG_TEMPLATE_URL,
           "https://docs.example.com/v2/guide/a%20b");
    expect("https://docs.example.com{path_rest}", TG_TEMPLATE_URL,
           "https://docs.example.com/guide/a%20b");
    /* in the query part it is a value like any other */
    expect("/login?next={path_rest}", TG_TEMPLATE_URL, "/login?next=%2Fguide%2Fa%2520b");
    request(&prefix_route, "/docs/v1", NULL);
    expect("/v2{path_rest}", TG_TEMPLATE_PATH, "/v2");
    request(&slash_route, "/docs/guide", NULL);
    expect("/v2/{path_rest}", TG_TEMPLATE_PATH, "/v2/guide");
    request(&exact_route, "/x", NULL);
    expect("/y{path_rest}", TG_TEMPLATE_PATH, "/y");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("template");
    TCase *tc = tcase_create("template");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_compile_errors);
    tcase_add_test(tc, test_parts);
    tcase_add_test(tc, test_header_mode_values);
    tcase_add_test(tc, test_path_mode_values);
    tcase_add_test(tc, test_path_groups_and_rest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
